"""wasm-import: WebAssembly components as native Python modules.

    import wasm_import          # installs the import hook (cheap: wasmtime loads lazily)
    import calculator           # finds calculator.wasm on sys.path
    calculator.add(1, 2)

    mod = wasm_import.load("calculator.wasm")          # the same, without the hook
    inst = mod.instantiate(imports={"test:demo/logger": my_logger})

See README.md for the tour.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Union

from . import wit
from ._errors import (DeadlockError, DecodeError, GuestExit, InstancePoisonedError, LimitExceeded, LinkError, Trap,
                      WasmImportError)
from ._limits import Limits
from .runtime._async import Future, FutureReader, Stream, StreamReader
from .hook import install, uninstall
from ._values import Err, Ok, Result, Some
from ._wasi import Dir, Net, Wasi

if TYPE_CHECKING:  # pragma: no cover
    from .bindings._component import ComponentInstance, ComponentModule

__all__ = [
    "Stream", "StreamReader", "Future", "FutureReader",
    "load",
    "install",
    "uninstall",
    "wit",
    "Wasi",
    "Dir",
    "Net",
    "Limits",
    "Some",
    "Ok",
    "Err",
    "Result",
    "WasmImportError",
    "DecodeError",
    "LinkError",
    "Trap",
    "GuestExit",
    "LimitExceeded",
    "InstancePoisonedError",
    "DeadlockError",
]

install()  # the import hook (wasm_import.hook): `import foo` finds foo.wasm


def load(source: Union[str, "os.PathLike[str]", bytes], *, name: Optional[str] = None) -> "ComponentModule":
    """Load a component from a path or bytes as a component module (no import hook needed).

    The module's exports are attributes; calls on it run on a default instance made on
    first use. `module.instantiate(imports=..., wasi=...)` makes independent instances.
    """
    from .bindings._component import load as _load

    return _load(source, name=name)
