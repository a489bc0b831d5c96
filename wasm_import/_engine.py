"""The one place that talks to wasmtime.

Everything above this module speaks in WIT-model terms; everything wasmtime-specific
(compiling, serializing, stores, WASI, linking host functions, calling exports, the
C value structs) lives here and in its helper `_engine_values`. A faster engine can be
put in by replacing these two modules.

`wasmtime` itself is imported lazily, on the first compile, so `import wasm_import`
stays cheap.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from ._errors import DecodeError

if TYPE_CHECKING:  # pragma: no cover
    import wasmtime

__all__ = ["CompiledComponent", "compile_component", "deserialize", "fingerprint", "engine"]

# Engine settings. They change the generated code, so they are part of `fingerprint()`
# and hence of every cache key. Epoch interruption and fuel are always compiled in, so
# per-instance timeouts and fuel limits never need a recompile.
_ENGINE_SETTINGS = (("epoch_interruption", True), ("consume_fuel", True))

_engine_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


def fingerprint() -> str:
    """Identifies the compiled-code format: wasmtime's version and our engine settings."""
    settings = ",".join(f"{k}={int(v)}" for k, v in _ENGINE_SETTINGS)
    return f"wasmtime-{_wasmtime_version()};{settings}"


@functools.lru_cache(maxsize=None)
def engine() -> "wasmtime.Engine":
    """The process-wide engine. Compiled code is shared by every instance."""
    import wasmtime

    with _engine_lock:
        config = wasmtime.Config()
        for name, value in _ENGINE_SETTINGS:
            setattr(config, name, value)
        return wasmtime.Engine(config)


class CompiledComponent:
    """Compiled code for one component, shareable by any number of instances."""

    __slots__ = ("_component",)

    def __init__(self, component: Any) -> None:
        self._component = component

    def serialize(self) -> bytes:
        """The compiled code as bytes, for the cache (see `deserialize`)."""
        return bytes(self._component.serialize())


def compile_component(data: bytes, *, where: str = "<bytes>") -> CompiledComponent:
    """Compile component bytes. Raises DecodeError when wasmtime rejects them."""
    import wasmtime.component

    try:
        return CompiledComponent(wasmtime.component.Component(engine(), bytes(data)))
    except wasmtime.WasmtimeError as e:
        raise DecodeError(f"{where}: wasmtime could not compile the component: {e}") from None


def deserialize(data: bytes) -> CompiledComponent:
    """Load compiled code made by `CompiledComponent.serialize` in this same engine.

    wasmtime trusts these bytes completely: the caller must have validated them
    (the cache checks a checksum header before it gets here).
    """
    import wasmtime.component

    return CompiledComponent(wasmtime.component.Component.deserialize(engine(), data))
