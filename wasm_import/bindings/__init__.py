"""Bindings: a component's WIT world made into a Python module, on top of the runtime.

    _plan       the plan of a module's bindings (functions, resources, interfaces), made
                once per component from its world
    _component  `ComponentModule` and `ComponentInstance`, and `load()` (what `import foo`
                and `wasm_import.load` return)
    _instance   one instance: the runtime's instance behind the plan's functions (calls,
                traps, limits, poisoning)
    _linking    `imports=` checked against the world and made into host functions
    _calllock   waiting for a busy instance without deadlocking
    _cache      the compiled-code cache (`__pycache__/foo.wasm.<tag>.cwasm`) that `load()`
                and the import hook read through

It knows the runtime only through its interface (`runtime.backend()`, `runtime._instance`,
`runtime._handles`), never wasmtime. Above it are `hook/` and `cli/`. Importing this
package imports none of its modules; the names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ComponentModule", "ComponentInstance", "load"]

if TYPE_CHECKING:  # pragma: no cover
    from ._component import ComponentInstance, ComponentModule, load


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _component

        return getattr(_component, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
