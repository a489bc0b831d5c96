"""The runtime: what compiles and runs components, below the bindings layer.

Our own component runtime on wasmtime's *core* API, as jco does in JavaScript:

    _parse, _plan     a component binary flattened into core instantiations and the canon
                      definitions wiring them (bytes -> ComponentPlan)
    _compiled         a plan plus its compiled core modules: what the cache stores
    _wasmtime, _clib  the only modules that talk to wasmtime (its C library, via ctypes)
    _layout, _abi,    the canonical ABI: sizes and flattening, converters between Python
    _handles          values and linear memory, resource handle tables
    _async            the component-model async ABI (tasks, streams, futures) on asyncio
    _instance         one instance of a component: a plan executed in a core store
    wasi/             WASI 0.2 (and 0.3) as ordinary Python host implementations

Importing this package imports none of them.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["backend"]


def backend() -> ModuleType:
    """The module with `compile_component`, `deserialize`, `deserialize_file`,
    `fingerprint` and `CompiledComponent` (what the compiled-code cache calls)."""
    from . import _compiled

    return _compiled
