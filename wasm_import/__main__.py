"""`python -m wasm_import ...`: see `wasm_import.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
