"""The one place that talks to wasmtime.

Everything above this module speaks in WIT-model terms; everything wasmtime-specific
(compiling, serializing, stores, WASI, linking host functions, calling exports, the
C value structs) lives here and in its helpers: `_engine_lib` (calls into wasmtime's C
library that need no wasmtime-py) and `_engine_values` (the C value structs). A faster
engine can be put in by replacing these three modules.

wasmtime-py is imported lazily, when the first instance is made: importing a component
only makes the engine and loads (or compiles) its code, through `_engine_lib`, so
`import wasm_import` stays cheap and a warm `import foo` takes milliseconds.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _engine_lib as _lib
from ._errors import DecodeError, GuestExit, InstancePoisonedError, LimitExceeded, Trap
from ._limits import NO_LIMITS, TICK, Limits, limit_message
from ._traps import OutputTail
from ._wasi import Wasi

if TYPE_CHECKING:  # pragma: no cover
    import wasmtime

__all__ = [
    "CompiledComponent", "compile_component", "deserialize", "deserialize_file", "fingerprint", "engine",
    "EngineInstance", "HostFunction", "HostResource", "CallContext", "export_invoker",
]

# Engine settings. They change the generated code, so they are part of `fingerprint()`
# and hence of every cache key. Epoch interruption and fuel are always compiled in, so
# per-instance timeouts and fuel limits never need a recompile.
_ENGINE_SETTINGS = (("epoch_interruption", True), ("consume_fuel", True))

_engine_lock = threading.Lock()


_wasmtime_version = _lib.wasmtime_version


def fingerprint() -> str:
    """Identifies the compiled-code format: wasmtime's version and our engine settings."""
    settings = ",".join(f"{k}={int(v)}" for k, v in _ENGINE_SETTINGS)
    return f"wasmtime-{_wasmtime_version()};{settings}"


@functools.lru_cache(maxsize=None)
def _engine_ptr() -> int:
    """The process-wide engine, as the C library's pointer. Compiled code is shared by
    every instance. It lives as long as the process."""
    with _engine_lock:
        made = _lib.new_engine(_ENGINE_SETTINGS)
        atexit.register(_release_at_exit)
        return made


@functools.lru_cache(maxsize=None)
def engine() -> "wasmtime.Engine":
    """wasmtime-py's view of the process-wide engine, for stores and linkers."""
    import wasmtime
    from wasmtime import _ffi

    wrapped = wasmtime.Engine.__new__(wasmtime.Engine)
    wrapped._set_ptr(ctypes.cast(_engine_ptr(), ctypes.POINTER(_ffi.wasm_engine_t)))
    _wrapped_engine.append(wrapped)
    return wrapped


_wrapped_engine: List[Any] = []

# Objects whose C side we release ourselves when the interpreter exits. During shutdown
# wasmtime-py's ctypes functions may already be gone when `__del__` runs, which prints
# "Exception ignored" noise; the OS reclaims the memory anyway, so at exit we let go.
_live: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _release_at_exit() -> None:
    for obj in list(_live):
        obj._release_at_exit()
    for wrapped in _wrapped_engine:
        wrapped._consume()


class CompiledComponent:
    """Compiled code for one component, shareable by any number of instances.

    It holds the C library's pointer until an instance is first made; then wasmtime-py's
    `Component` takes the pointer over (`component`), and frees it when it is collected.
    """

    __slots__ = ("_ptr", "_component", "_finalizer", "__weakref__")

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        self._component: Any = None
        self._finalizer = weakref.finalize(self, _lib.delete_component, ptr)
        self._finalizer.atexit = False
        _live.add(self)

    @property
    def component(self) -> Any:
        """The compiled code as a `wasmtime.component.Component`."""
        if self._component is None:
            from wasmtime import _ffi
            from wasmtime.component import Component

            self._finalizer.detach()
            ptr = ctypes.cast(self._ptr, ctypes.POINTER(_ffi.wasmtime_component_t))
            self._component = Component._from_ptr(ptr)
        return self._component

    def _release_at_exit(self) -> None:
        self._finalizer.detach()
        if self._component is not None:
            self._component._consume()

    def serialize(self) -> bytes:
        """The compiled code as bytes, for the cache (see `deserialize`)."""
        return _lib.serialize(self._ptr)


def compile_component(data: bytes, *, where: str = "<bytes>") -> CompiledComponent:
    """Compile component bytes. Raises DecodeError when wasmtime rejects them."""
    try:
        return CompiledComponent(_lib.compile_component(_engine_ptr(), bytes(data)))
    except _lib.WasmtimeError as e:
        raise DecodeError(f"{where}: wasmtime could not compile the component: {e}") from None


def deserialize(data: bytes) -> CompiledComponent:
    """Load compiled code made by `CompiledComponent.serialize` in this same engine.

    wasmtime trusts these bytes completely: the caller must have validated them
    (the cache checks a checksum trailer before it gets here).
    """
    return CompiledComponent(_lib.deserialize(_engine_ptr(), bytes(data)))


def deserialize_file(path: str) -> CompiledComponent:
    """Like `deserialize`, but wasmtime maps the file instead of copying it through
    Python. Trusts the file just as completely: validate it first."""
    return CompiledComponent(_lib.deserialize_file(_engine_ptr(), path))


# -- stores, instances and calls ------------------------------------------------------------

_NO_LIMIT = 1 << 62


@dataclass(frozen=True)
class HostFunction:
    """A host function to define in the linker: `path` is the instance path
    (`("wasi:cli/env",)`, or `()` for the root) and `name` the function's WIT name.
    `invoke(args_ptr, nargs, results_ptr, nresults, cx)` lifts, calls, lowers."""

    path: Tuple[str, ...]
    name: str
    invoke: Optional[Callable[..., None]]
    # what the core runtime needs instead of `invoke` (it lifts and lowers by itself)
    plan: Any = None
    target: Optional[Callable[..., Any]] = None
    describe: str = ""


@dataclass(frozen=True)
class HostResource:
    """A host-defined resource type to define in the linker. `on_drop(instance, rep)`
    runs when the guest drops its last owned handle."""

    path: Tuple[str, ...]
    name: str
    type_id: int
    on_drop: Callable[["EngineInstance", int], None]


class CallContext:
    """Per-call state handed to value converters and host functions: the store's context
    pointer, the owning instance, and the Python exception a host function raised (kept
    here, not in a process-global slot, so concurrent instances never mix them up)."""

    __slots__ = ("context", "owner", "exception", "borrows")

    def __init__(self, context: Any, owner: "EngineInstance") -> None:
        self.context = context
        self.owner = owner
        self.exception: Optional[BaseException] = None
        self.borrows: List[Any] = []

    def _context(self) -> Any:  # lets wasmtime-py's resource helpers take us as a "store"
        return self.context


class EngineInstance:
    """One instantiated component with its own store. Calls are serialized by a lock
    (a wasmtime store is single-threaded); a trap poisons the instance for good."""

    def __init__(self, compiled: CompiledComponent, *, functions: Sequence[HostFunction],
                 resources: Sequence[HostResource], wasi: Optional[Wasi],
                 limits: Limits = NO_LIMITS, define_unknown_as_traps: bool = False) -> None:
        import wasmtime
        import wasmtime.component as wc

        self.lock = threading.RLock()
        self.poisoned: Optional[str] = None
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stderr_tail = OutputTail()  # the guest's last words, for a Trap (see _traps)
        self._keepalive: List[Any] = []
        self.host_table: Any = None  # set by the bindings: Python objects behind host handles
        self.user: Any = None  # the bindings-level instance this engine instance serves
        self.current_call: Optional[CallContext] = None
        self._store = wasmtime.Store(engine())
        self.limits = limits
        self._store.set_fuel(_NO_LIMIT)
        self._store.set_epoch_deadline(_NO_LIMIT)
        if limits.memory is not None:
            self._store.set_limits(memory_size=limits.memory)
        linker = wc.Linker(engine())
        if wasi is not None:
            linker.add_wasip2()
            self._store.set_wasi(self._wasi_config(wasi))
        self._define(linker, functions, resources)
        if define_unknown_as_traps:
            linker.define_unknown_imports_as_traps(compiled.component)
        try:
            with self.limited():
                self._instance = linker.instantiate(self._store, compiled.component)
        except wasmtime.WasmtimeError as e:
            raise _trap_from(e, limits) from None
        self._component = compiled.component
        self.context = self._store._context()
        _live.add(self)

    def _release_at_exit(self) -> None:
        self.poisoned = "the interpreter is exiting"
        self._store._consume()

    # -- configuration ------------------------------------------------------------------

    def _wasi_config(self, wasi: Wasi) -> Any:
        import wasmtime

        config = wasmtime.WasiConfig()
        config.argv = list(wasi.args)
        config.env = list(wasi.env.items())
        for d in wasi.dirs:
            if not os.path.isdir(d.host):
                raise FileNotFoundError(f"Wasi.dirs: {d.host!r} is not a directory")
            config.preopen_dir(d.host, d.guest, not d.readonly)
        if wasi.stdin == "inherit":
            config.inherit_stdin()
        elif wasi.stdin:
            fd, path = tempfile.mkstemp(prefix="wasm-import-stdin-")
            with os.fdopen(fd, "wb") as f:
                f.write(wasi.stdin)
            config.stdin_file = path
            os.unlink(path)  # wasmtime opened it already
        for stream, mode, sink in (("stdout", wasi.stdout, self.stdout), ("stderr", wasi.stderr, self.stderr)):
            if stream == "stderr":  # whatever the mode, its tail is kept for a Trap
                setattr(config, "stderr_custom", _stderr_writer(mode, sink, self.stderr_tail))
            elif mode == "inherit":
                getattr(config, f"inherit_{stream}")()
            elif mode == "capture":
                setattr(config, f"{stream}_custom", sink.extend)
            else:
                setattr(config, f"{stream}_custom", lambda data: None)
        return config

    def _define(self, linker: Any, functions: Sequence[HostFunction],
                resources: Sequence[HostResource]) -> None:
        """Define host items instance by instance (a LinkerInstance locks its parent
        until closed, so each path is opened once, in order)."""
        paths: Dict[Tuple[str, ...], Tuple[List[HostResource], List[HostFunction]]] = {}
        for r in resources:
            paths.setdefault(r.path, ([], []))[0].append(r)
        for f in functions:
            paths.setdefault(f.path, ([], []))[1].append(f)
        with linker.root() as root:
            for path, (res, funcs) in paths.items():
                with contextlib.ExitStack() as stack:
                    li = root
                    for part in path:
                        li = stack.enter_context(li.add_instance(part))
                    for r in res:
                        self._add_resource(li, r)
                    for f in funcs:
                        self._add_func(li, f)

    def _add_func(self, li: Any, f: HostFunction) -> None:
        import wasmtime

        key = _register_host(_HostEntry(self, f.invoke))
        name = f.name.encode()
        err = ffi().wasmtime_component_linker_instance_add_func(
            li.ptr(), ctypes.create_string_buffer(name), len(name), _trampoline(), key, _finalizer())
        if err:
            raise wasmtime.WasmtimeError._from_ptr(err)

    def _add_resource(self, li: Any, r: HostResource) -> None:
        import wasmtime.component as wc

        me = weakref.ref(self)

        def destructor(_store: Any, rep: int) -> None:
            owner = me()
            if owner is not None:
                r.on_drop(owner, rep)

        li.add_resource(r.name, wc.ResourceType.host(r.type_id), destructor)

    # -- exports ------------------------------------------------------------------------

    def export_func(self, path: Sequence[str], name: str) -> Any:
        """The raw function `name` inside the exported instance path (empty = root)."""
        index = None
        for part in (*path, name):
            index = self._instance.get_export_index(self._store, part, index)
            if index is None:
                raise LookupError(f"the component exports no {'/'.join((*path, name))!r}")
        func = self._instance.get_func(self._store, index)
        if func is None:
            raise LookupError(f"export {'/'.join((*path, name))!r} is not a function")
        return func._func

    def check_usable(self) -> None:
        if self.poisoned is not None:
            raise InstancePoisonedError(
                f"this instance trapped earlier ({self.poisoned}) and cannot be entered again; "
                "make a new instance")

    # -- resources ----------------------------------------------------------------------

    def drop_resource(self, handle: Any) -> None:
        """Drop a guest resource handle (runs the guest destructor, within the limits)."""
        import wasmtime

        with self.lock:
            if self.poisoned is not None:
                handle._consume()  # the store is unusable; just release our reference
                return
            try:
                with self.limited():
                    handle.drop(self._store)
            except wasmtime.WasmtimeError as e:
                trap = _trap_from(e, self.limits)
                self.poisoned = str(trap)
                raise trap from None

    # -- limits -------------------------------------------------------------------------

    @contextlib.contextmanager
    def limited(self) -> Any:
        """Arm the per-call limits (fuel, a timeout) for one entry into the guest."""
        limits = self.limits
        if not limits.per_call:
            yield
            return
        if limits.fuel is not None:
            self._store.set_fuel(limits.fuel)
        if limits.timeout is None:
            yield
            return
        _ticker.begin()
        try:
            self._store.set_epoch_deadline(_ticks(limits.timeout))
            yield
        finally:
            _ticker.end()
            self._store.set_epoch_deadline(_NO_LIMIT)


def _stderr_writer(mode: Any, sink: bytearray, tail: OutputTail) -> Callable[[bytes], None]:
    """The guest's stderr: to this process's fd 2 ("inherit", as wasmtime would), into
    `sink` ("capture") or nowhere, and always into `tail`."""
    if mode == "inherit":
        def write(data: bytes) -> None:
            tail.write(data)
            view = memoryview(data)
            while view:
                view = view[os.write(2, view):]
    elif mode == "capture":
        def write(data: bytes) -> None:
            tail.write(data)
            sink.extend(data)
    elif callable(getattr(mode, "write", None)):  # a binary file object
        def write(data: bytes) -> None:
            tail.write(data)
            mode.write(data)
    else:
        write = tail.write
    return write


# A host function is found by its key in this table; the key travels through wasmtime as
# the callback's `data` pointer. Entries die with their instance's linker (finalizer).
class _HostEntry:
    __slots__ = ("instance", "invoke")

    def __init__(self, instance: EngineInstance, invoke: Callable[..., None]) -> None:
        self.instance = weakref.ref(instance)
        self.invoke = invoke


_host_entries: Dict[int, _HostEntry] = {}
_host_lock = threading.Lock()
_host_next = [1]


def _register_host(entry: _HostEntry) -> int:
    with _host_lock:
        key = _host_next[0]
        _host_next[0] += 1
        _host_entries[key] = entry
        return key


def ffi() -> Any:
    from wasmtime import _ffi

    return _ffi


@functools.lru_cache(maxsize=None)
def _trampoline() -> Any:
    f = ffi()

    @f.wasmtime_component_func_callback_t  # type: ignore[misc]
    def trampoline(key, context, _type, args, nargs, results, nresults):  # type: ignore[no-untyped-def]
        entry = _host_entries.get(key or 0)
        owner = entry.instance() if entry is not None else None
        cx = owner.current_call if owner is not None else None
        if entry is None or cx is None:
            return _error_ptr("host function called outside of a call")
        try:
            entry.invoke(args, nargs, results, nresults, cx)
        except BaseException as e:  # handed back to the caller of the export, untouched
            cx.exception = e
            return _error_ptr(f"host function raised {type(e).__name__}")
        return 0

    return trampoline


@functools.lru_cache(maxsize=None)
def _finalizer() -> Any:
    @ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[misc]
    def finalize(key):  # type: ignore[no-untyped-def]
        with _host_lock:
            _host_entries.pop(key or 0, None)

    return finalize


def resource_any(ptr: Any) -> Any:
    """Wrap a raw resource handle taken out of a value."""
    import wasmtime.component as wc

    return wc.ResourceAny._from_ptr(ptr)


def host_handle(rep: int, type_id: int, *, owned: bool, cx: CallContext) -> Any:
    """A raw handle to host resource `rep` of host type `type_id`, ready to put in a value."""
    import wasmtime.component as wc

    host = wc.ResourceHost.own(rep, type_id) if owned else wc.ResourceHost.borrow(rep, type_id)
    return host.to_any(cx)._consume()


def lend_host_handle(rep: int, type_id: int, cx: CallContext) -> Tuple[Any, Callable[[], None]]:
    """A handle to host resource `rep` for an export's `borrow<R>` parameter, and the
    function that ends the loan after the call. wasmtime cannot make a host borrow
    outside a host call ("no current scope"), so the host owns the handle for the call
    (the guest sees a borrow of it) and drops it afterwards."""
    import wasmtime.component as wc

    held = wc.ResourceHost.own(rep, type_id).to_any(cx)
    ptr = ffi().wasmtime_component_resource_any_clone(held.ptr())
    owner = cx.owner
    return ptr, lambda: owner.drop_resource(held)


def host_rep(ptr: Any, cx: CallContext) -> int:
    """The rep of a host resource handle taken out of a value (consumes the handle)."""
    import wasmtime.component as wc

    return int(wc.ResourceAny._from_ptr(ptr).to_host(cx).rep)


def _ticks(timeout: float) -> int:
    """Epoch ticks that cover `timeout` seconds, counting the tick under way."""
    return int(-(-timeout // TICK)) + 1


class _EpochTicker:
    """Advances the engine's epoch every TICK seconds while any timed call runs (and
    sleeps otherwise). One thread per process, started on the first timed call."""

    def __init__(self) -> None:
        self._active = 0
        self._wake = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def begin(self) -> None:
        with self._wake:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wasm-import epoch ticker",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def end(self) -> None:
        with self._wake:
            self._active -= 1

    def _run(self) -> None:
        engine_ptr = _engine_ptr()
        while True:
            with self._wake:
                while self._active == 0:
                    self._wake.wait()
            time.sleep(TICK)
            _lib.increment_epoch(engine_ptr)


_ticker = _EpochTicker()


def _error_ptr(message: str) -> int:
    ptr = ffi().wasmtime_error_new(message.encode())
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


def _trap_from(error: Exception, limits: Limits = NO_LIMITS) -> Exception:
    """Turn a wasmtime error into Trap / GuestExit / LimitExceeded: the reason, and the
    wasm backtrace.

    wasmtime writes "error while executing at wasm backtrace:\n  0: ...\n\nCaused by:\n
    <reason>" (either part may be missing).
    """
    if type(error).__name__ == "ExitTrap":
        return GuestExit(getattr(error, "code", 1))
    text = str(error).strip()
    reason, trace = _lib.split_trap_text(text)
    limit = _limit_hit(text, limits)
    if limit is not None:
        return LimitExceeded(limit, limit_message(limit, limits, reason), trace)
    return Trap(reason, trace)


def _limit_hit(text: str, limits: Limits) -> Optional[str]:
    """Which limit (if any) wasmtime's error text says was hit."""
    if limits.timeout is not None and "wasm trap: interrupt" in text:
        return "timeout"
    if limits.fuel is not None and "all fuel consumed" in text:
        return "fuel"
    if limits.memory is not None and "exceeds memory limits" in text:
        return "memory"
    return None


def export_invoker(instance: EngineInstance, func: Any) -> Callable[[int, int, int, int, CallContext], None]:
    """A function calling export `func`, bound once so a call does no lookups, within the
    instance's per-call limits: `invoke(params, nparams, result, nresults, cx)` takes the
    addresses of the lowered params and of the result slot (0 when there is none). It
    raises what a host function raised (unchanged), or Trap (LimitExceeded when a limit
    was hit)."""
    raw_call = _lib.func_call()
    func_address = ctypes.addressof(func)
    context = ctypes.cast(instance.context, ctypes.c_void_p).value
    keep = (func, instance.context)  # the memory behind those addresses stays alive with us

    def invoke(params: int, nparams: int, result: int, nresults: int, cx: CallContext) -> None:
        previous = instance.current_call
        instance.current_call = cx
        try:
            err = raw_call(func_address, context, params, nparams, result or None, nresults)
        finally:
            instance.current_call = previous
        if err:
            _raise_call_error(instance, err, cx)

    invoke.keep = keep  # type: ignore[attr-defined]
    if not instance.limits.per_call:
        return invoke
    limited = instance.limited

    def invoke_limited(params: int, nparams: int, result: int, nresults: int, cx: CallContext) -> None:
        with limited():
            invoke(params, nparams, result, nresults, cx)

    return invoke_limited


def _raise_call_error(instance: EngineInstance, err: int, cx: CallContext) -> None:
    import wasmtime
    from wasmtime import _ffi

    error = wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(_ffi.wasmtime_error_t)))
    if cx.exception is not None:
        exc, cx.exception = cx.exception, None
        instance.poisoned = f"a host function raised {type(exc).__name__}"
        raise exc
    trap = _trap_from(error, instance.limits)
    instance.poisoned = trap.message if isinstance(trap, Trap) else str(trap)
    raise trap
