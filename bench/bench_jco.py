"""Call overhead: wasm-import vs jco (the component model's JavaScript toolchain) in Node.

    python bench/bench_jco.py

Needs `node` and `npm`. The first run installs jco into .wasm-import-build/jco (about
340 MB) and transpiles the repo's hand-written `adder` component to JavaScript; later runs
reuse both. Then it times `add(x, y)` per call in Node (jco's generated bindings around
V8's wasm) and here (wasm-import on wasmtime), each best of three, and prints the ratio
jco / wasm-import (higher is better for us). The two run in different processes and
runtimes, so read the ratio as a rough comparison, not a precise one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import wasm_import  # noqa: E402
from tests._build import build_dir, build_wat_guest  # noqa: E402

JCO_VERSION = "1.35.0"
CALLS = 2_000_000

NODE_BENCH = """
import {{ add }} from './adder.js';
let best = Infinity, acc = 0;
for (let r = 0; r < 3; r++) {{
  const start = process.hrtime.bigint();
  for (let i = 0; i < {calls}; i++) acc += add.add(i & 1023, 2);
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9 / {calls});
}}
if (acc === 0) throw new Error('no calls ran');
console.log(JSON.stringify({{ seconds_per_call: best }}));
"""


def jco_dir() -> Path:
    """jco installed under the build directory (once)."""
    where = build_dir() / "jco"
    binary = where / "node_modules" / ".bin" / "jco"
    if not binary.exists():
        where.mkdir(parents=True, exist_ok=True)
        (where / "package.json").write_text(json.dumps({"private": True, "type": "module"}))
        subprocess.run(["npm", "install", "--silent", f"@bytecodealliance/jco@{JCO_VERSION}"],
                       cwd=where, check=True)
    return where


def transpiled_adder(where: Path) -> Path:
    out = where / "adder-js"
    if not (out / "adder.js").exists():
        subprocess.run([str(where / "node_modules" / ".bin" / "jco"), "transpile",
                        str(build_wat_guest("adder")), "-o", str(out), "--name", "adder", "--quiet"],
                       check=True, capture_output=True)
    return out


def jco_seconds_per_call(out: Path) -> float:
    script = out / "bench.mjs"
    script.write_text(NODE_BENCH.format(calls=CALLS))
    result = subprocess.run(["node", str(script)], cwd=out, check=True, capture_output=True, text=True)
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_call"])


def ours_seconds_per_call() -> float:
    add = wasm_import.load(build_wat_guest("adder")).instantiate().add.add
    best = float("inf")
    calls = CALLS // 10
    for _ in range(3):
        start = time.perf_counter()
        for i in range(calls):
            add(i & 1023, 2)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> int:
    if not (shutil.which("node") and shutil.which("npm")):
        print("bench_jco: needs node and npm on PATH", file=sys.stderr)
        return 2
    where = jco_dir()
    (where / "package.json").write_text(json.dumps({"private": True, "type": "module"}))
    out = transpiled_adder(where)
    jco, ours = jco_seconds_per_call(out), ours_seconds_per_call()
    print(f"{'case':24} {'jco (node)':>14} {'wasm-import':>14} {'ratio':>8}")
    print(f"{'scalar add, WAT guest':24} {jco * 1e6:12.2f}us {ours * 1e6:12.2f}us {jco / ours:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
