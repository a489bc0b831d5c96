"""wasm-import: WebAssembly components as native Python modules.

    import wasm_import          # installs the import hook (cheap: wasmtime loads lazily)
    import calculator           # finds calculator.wasm on sys.path
    calculator.add(1, 2)

See README.md for the tour.
"""

from __future__ import annotations

from . import wit
from ._errors import DecodeError, InstancePoisonedError, LinkError, Trap, WasmImportError

__all__ = [
    "wit",
    "WasmImportError",
    "DecodeError",
    "LinkError",
    "Trap",
    "InstancePoisonedError",
]
