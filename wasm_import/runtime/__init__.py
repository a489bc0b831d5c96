"""The runtime: what compiles and runs components, below the bindings layer.

Two engines exist while the new one is completed:

- ``core`` (this package): our own component runtime on wasmtime's *core* API, as jco
  does in JavaScript. `_plan` flattens a component binary into core instantiations,
  `_wasmtime` is the only module that talks to wasmtime, `_abi`/`_layout`/`_handles` are
  the canonical ABI on bounds-checked views of linear memory, `_instance` runs a plan.
- ``component``: the first engine, through wasmtime-py's component C API
  (`wasm_import._engine`).

`backend(name)` gives the engine's compile/cache functions; which one a module uses is
chosen by `wasm_import.load(..., engine=...)`, else by the `WASM_IMPORT_ENGINE`
environment variable, else the default. Importing this package imports neither engine.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from types import ModuleType
from typing import Iterator, Optional

__all__ = ["ENGINES", "DEFAULT_ENGINE", "engine_name", "backend", "using"]

ENGINES = ("component", "core")
DEFAULT_ENGINE = "component"
ENGINE_ENV = "WASM_IMPORT_ENGINE"


_chosen: "contextvars.ContextVar[Optional[str]]" = contextvars.ContextVar("wasm_import_engine", default=None)


@contextlib.contextmanager
def using(name: Optional[str]) -> Iterator[None]:
    """Within the block, `backend()` means engine `name` (None: no change)."""
    if name is None:
        yield
        return
    token = _chosen.set(engine_name(name))
    try:
        yield
    finally:
        _chosen.reset(token)


def engine_name(requested: Optional[str] = None) -> str:
    """The engine to use: `requested`, else the one `using()` chose, else
    $WASM_IMPORT_ENGINE, else the default."""
    name = requested or _chosen.get() or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r} (from {'engine=' if requested else ENGINE_ENV}); "
                         f"choose one of {', '.join(ENGINES)}")
    return name


def backend(name: Optional[str] = None) -> ModuleType:
    """The module with `compile_component`, `deserialize`, `deserialize_file`,
    `fingerprint` and `CompiledComponent` of engine `name`."""
    if engine_name(name) == "core":
        from . import _compiled

        return _compiled
    from .. import _engine

    return _engine
