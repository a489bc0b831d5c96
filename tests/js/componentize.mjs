// node componentize.mjs SOURCE.js WIT_DIR WORLD OUT.wasm
// Builds a JavaScript guest with componentize-js and its default features.
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
const { component } = await componentize({ sourcePath, witPath, worldName });
await writeFile(out, component);
