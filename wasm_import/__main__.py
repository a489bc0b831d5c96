"""`python -m wasm_import ...`: see `wasm_import._cli`."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
