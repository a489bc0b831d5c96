"""The plain import: `import adder` finds adder.wasm next to this script.

    python examples/hello.py
"""

import wasm_import  # noqa: F401  (installs the import hook)

import adder  # adder.wasm, a WebAssembly component (source: adder.wat)

print("1 + 2 =", adder.add.add(1, 2))
print("WIT signature:", adder.add.add.__doc__)
