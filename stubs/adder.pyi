"""The WebAssembly component adder.wasm (world `root`)."""
# Stub of the WebAssembly component adder.wasm, written by `python -m wasm_import stubs`.
# Do not edit: regenerate it (`--check` tells when it is stale).

import array as _array
import dataclasses as _dc
import enum as _enum
import types as _types
import typing as _t

import typing_extensions as _te

import wasm_import as _w
from wasm_import.bindings._component import ComponentInstance as _ComponentInstance


class add:
    """The exported interface `docs:adder/add@0.1.0`."""
    @staticmethod
    def add(x: int, y: int) -> int:
        """WIT: `add: func(x: u32, y: u32) -> u32`"""
_ns_add = add  # the name used inside this stub (never shadowed)

class imports:
    """A Protocol per imported interface, with the functions the component needs."""

class _Imports(_t.TypedDict, total=False): ...
_Exports = _t.TypedDict('_Exports', {
    'docs:adder/add@0.1.0': _t.Type[_ns_add],
}, total=True)

class _Instance:
    """An independent instance of the component, with its own store (from `instantiate()`)."""
    add: _t.Type[_ns_add]
    exports: _Exports
    module: _types.ModuleType
    @property
    def stdout(self) -> bytes: ...
    @property
    def stderr(self) -> bytes: ...
    @property
    def poisoned(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None:
        """Release what this instance holds on the host, now, and make it unusable.

        The guest's handles to host resources are dropped as if it had dropped them (each
        object's `__wasm_drop__` runs), and everything its WASI opened is closed: preopened
        and opened directories and files, sockets, HTTP connections, files it opened for
        stdio given as paths (file objects you passed as stdio stay open: they are yours).
        Later calls, on the instance and on its resource objects, raise
        `InstanceClosedError`; async calls in progress end with it. Idempotent. A call in
        progress in another thread is waited for; called from inside a host function of
        this instance, the guest's current call runs on to its end. An instance collected
        without close() has its WASI resources released by its finalizer all the same;
        `with module.instantiate(...) as inst:` closes it at the end of the block."""
    def __enter__(self) -> _Instance: ...
    def __exit__(self, *exc: _t.Any) -> None: ...

def instantiate(imports: _t.Optional[_Imports] = None, *, wasi: _t.Optional[_w.Wasi] = None, limits: _t.Optional[_w.Limits] = None, cancel: _t.Optional[_t.Literal['detach', 'deliver']] = None) -> _Instance:
    """A new, independent instance. `imports` maps WIT import names to what satisfies
    them; `wasi` grants the sandbox; `limits` bounds each call (see `Limits`); `cancel`
    says what cancelling the coroutine of an async call does: "detach" (the default:
    the guest's task runs on, its result is dropped) or "deliver" (the guest gets
    TASK_CANCELLED and may stop; for guests whose toolchain handles it). What is
    omitted comes from `link()`."""
def link(imports: _t.Optional[_Imports] = None, *, wasi: _t.Optional[_w.Wasi] = None, limits: _t.Optional[_w.Limits] = None, cancel: _t.Optional[_t.Literal['detach', 'deliver']] = None) -> None:
    """Choose the default instance's imports, WASI grants, limits and cancel mode
    (see `instantiate`). Takes effect for
    the next default instance: the current one, if any, is discarded and closed (its
    host resources released; once it returns, if a call in another thread is in it).
    A key that names nothing the component imports raises LinkError now."""
exports: _Exports
wit: _w.wit.World
