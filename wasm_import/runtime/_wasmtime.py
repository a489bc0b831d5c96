"""wasmtime's core API, called through ctypes: the only module of the runtime that talks
to wasmtime.

Everything above speaks in flat core values (Python ints and floats; i32/i64 as UNSIGNED
ints, see RUNTIME.md) and in opaque handles (`Extern`), and never sees a pointer:

    CoreModule.compile(bytes) ──► CoreModule (imports/exports with their types)
    Store(limits) ─ instantiate(module, [Extern...]) ──► CoreInstance.exports {name: Extern}
                  ─ host_func(FuncType, callback)   ──► Extern (a function wasm can import)
                  ─ caller(Extern)                  ──► call(*flat) -> tuple of flat results
                  ─ memory(Extern)                  ──► Memory.view() (bounds-checked memoryview)

Why ctypes on plain addresses: wasmtime-py's `Func.__call__` costs about 20 µs, a bare
`wasmtime_func_call_unchecked` through a prototype taking ints about 0.6 µs. A call packs
its arguments with a `struct.Struct` built once per function type into a buffer built once
per caller (wasmtime's `wasmtime_val_raw_t` slots are 16 bytes each; results are written
over the arguments) and unpacks the results the same way.

Host functions: every host function of the process goes through ONE ctypes trampoline;
wasmtime hands it back the `env` pointer given at creation, which is a registry key
(store serial << 24 | function index), so no per-function CFUNCTYPE objects exist and a
store's callbacks die with the store. A Python exception raised by a callback is kept in
its store (a store runs one thing at a time, so this is per call: the innermost call that
sees the resulting trap takes it) and re-raised unchanged by that call; when that call was
itself made from a host callback, the exception travels on outwards the same way.

Limits (per outermost call): fuel is set before the call. A timeout is an epoch deadline
that wasmtime enforces by itself: the engine's epoch advances every `TICK` (on Linux by
POSIX timers calling `wasmtime_engine_increment_epoch` directly, so no Python and no GIL
is involved; elsewhere by a daemon thread), and a timed store's deadline callback is a C
function (`wasmtime_context_get_data`) that hands back the store's ready error. So the
guest stops within a tick of its deadline however busy Python's threads are; Python
raises `LimitExceeded` as soon as the calling thread has the GIL back. The short C calls
keep the GIL (PYFUNCTYPE) so that turning a trap into an exception does not wait for
the GIL again and again. The memory cap is wasmtime's store limiter: growth past it
makes `memory.grow` return -1, and a trap that follows while a memory of the store is
within one page (or 1/16) of the cap is reported as `LimitExceeded(limit="memory")`
(wasmtime does not say that growth was refused; this is the heuristic).

Ctrl-C: an untimed store's deadline callback is Python and runs every `_INTERRUPT_EVERY`
seconds while the main thread is in wasm. Running Python code there lets the interpreter
run its SIGINT handler; our handler (installed when the first store is made on the main
thread, chaining to the previous one) defers a signal that lands at the entry of one of
our callbacks (an exception raised there would escape ctypes) to the callback body,
where the previous handler runs, the `KeyboardInterrupt` it raises becomes a trap, and
the call re-raises it: the guest stops within about 50 ms. During a timed call (C
callback) a watcher thread reading `signal.set_wakeup_fd` (when nobody else uses it)
advances the epoch to that call's deadline on SIGINT, so the guest stops and Python's
handler raises as the call returns. Either way the store is poisoned and the
interpreter stays healthy.

Beyond RUNTIME.md's contract this module provides: `engine_fingerprint()`, the types
`FuncType`, `MemoryType`, `TableType`, `GlobalType`, `ImportDesc`, `ExportDesc`;
`CoreModule.deserialize_file(path)`; `Store.limits`; `Store.global_get(extern)` and
`Store.global_set(extern, value)`; `Memory.grow(pages)`; `CoreInstance.module`; the
callable from `Store.caller` has `.extern`. Argument errors of a call are TypeError.

Stack: wasmtime lets wasm use up to 512 KiB of native stack (`MAX_WASM_STACK`); a thread
whose native stack is smaller (see `threading.stack_size`) can crash on deep guest
recursion instead of trapping. Python's threads get the platform default (8 MiB on
Linux, 16 MiB on macOS) unless told otherwise.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import os
import signal
import struct
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import _clib
from ._clib import WasmtimeError, c_function
from .._errors import DecodeError, LimitExceeded, LinkError, Trap, unusable
from .._limits import NO_LIMITS, TICK, Limits, limit_message

__all__ = [
    "CoreModule", "Store", "CoreInstance", "Extern", "Memory", "FuncType", "MemoryType", "TableType",
    "GlobalType", "ImportDesc", "ExportDesc", "engine_fingerprint", "MAX_WASM_STACK",
]

_P = ctypes.c_void_p
_SIZE = ctypes.c_size_t
_U8 = ctypes.c_uint8
_U64 = ctypes.c_uint64

MAX_WASM_STACK = 512 * 1024  # wasmtime's default, stated so the fingerprint names it
_ENGINE_SETTINGS = (("epoch_interruption", True), ("consume_fuel", True))
_NO_FUEL_LIMIT = 1 << 62
_INTERRUPT_EVERY = 0.05  # seconds between deadline callbacks while the main thread runs wasm
_OTHER_THREAD_EVERY = 1.0  # ... while another thread does (they need the GIL; keep it rare)
_PAGE = 65536
_FAR = 1 << 62  # an epoch deadline that is never reached
_TIMEOUT_TEXT = "wasm trap: interrupt (the call ran past its timeout)"

# -- the C library ------------------------------------------------------------------------------


class _ByteVec(ctypes.Structure):
    """`wasm_byte_vec_t` (also `wasm_name_t`, `wasm_message_t`)."""

    _fields_ = [("size", _SIZE), ("data", _P)]


class _PtrVec(ctypes.Structure):
    """Any `wasm_<x>_vec_t` of pointers (valtypes, importtypes, exporttypes, frames)."""

    _fields_ = [("size", _SIZE), ("data", ctypes.POINTER(_P))]


class _ExternStruct(ctypes.Structure):
    """`wasmtime_extern_t`: a kind byte and a 24-byte union (func 16, memory 16, table 16,
    global 24 bytes), 8-aligned: 32 bytes. The item's own struct starts at offset 8."""

    _fields_ = [("kind", _U8), ("of", _U64 * 3)]


class _InstanceStruct(ctypes.Structure):
    """`wasmtime_instance_t`."""

    _fields_ = [("store_id", _U64), ("index", _SIZE)]


class _Limits(ctypes.Structure):
    """`wasm_limits_t`."""

    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


class _ValUnion(ctypes.Union):
    _fields_ = [("i32", ctypes.c_int32), ("i64", ctypes.c_int64), ("f32", ctypes.c_float),
                ("f64", ctypes.c_double), ("raw", _U8 * 24)]


class _Val(ctypes.Structure):
    """`wasmtime_val_t`: a kind byte and a 24-byte union, 32 bytes."""

    _fields_ = [("kind", _U8), ("of", _ValUnion)]


_EXTERN_FUNC, _EXTERN_GLOBAL, _EXTERN_TABLE, _EXTERN_MEMORY, _EXTERN_SHAREDMEMORY, _EXTERN_TAG = range(6)
_EXTERN_KINDS = {_EXTERN_FUNC: "func", _EXTERN_GLOBAL: "global", _EXTERN_TABLE: "table",
                 _EXTERN_MEMORY: "memory", _EXTERN_SHAREDMEMORY: "memory", _EXTERN_TAG: "tag"}
_TYPE_KINDS = ("func", "global", "table", "memory", "tag")  # wasm_externkind_t order
_VALKINDS = {0: "i32", 1: "i64", 2: "f32", 3: "f64", 4: "v128", 128: "externref", 129: "funcref"}
_VALKIND_CODES = {"i32": 0, "i64": 1, "f32": 2, "f64": 3}
_TRAP_OUT_OF_FUEL = 11  # wasmtime_trap_code_t


class _C:
    """wasmtime's C functions, declared once on plain addresses (ints in, ints out).

    Those that run wasm or compile (`g`) let go of the GIL, so other threads run
    meanwhile. The rest (`f`) are short and keep it: a thread that lets go of the GIL
    must win it back, which takes tens of ms while other threads are busy, and a trap
    or a memory view would pay that several times over."""

    def __init__(self) -> None:
        f = _py_function
        g = c_function
        self.config_new = f("wasm_config_new", _P)
        self.config_bool = {name: f(f"wasmtime_config_{name}_set", None, _P, ctypes.c_bool)
                            for name, _ in _ENGINE_SETTINGS}
        self.config_max_wasm_stack = f("wasmtime_config_max_wasm_stack_set", None, _P, _SIZE)
        self.engine_new = g("wasm_engine_new_with_config", _P, _P)
        self.increment_epoch = f("wasmtime_engine_increment_epoch", None, _P)
        self.module_new = g("wasmtime_module_new", _P, _P, _P, _SIZE, _P)
        self.module_delete = g("wasmtime_module_delete", None, _P)
        self.module_serialize = g("wasmtime_module_serialize", _P, _P, _P)
        self.module_deserialize = g("wasmtime_module_deserialize", _P, _P, _P, _SIZE, _P)
        self.module_deserialize_file = g("wasmtime_module_deserialize_file", _P, _P, ctypes.c_char_p, _P)
        self.module_imports = f("wasmtime_module_imports", None, _P, _P)
        self.module_exports = f("wasmtime_module_exports", None, _P, _P)
        self.importtype_vec_delete = f("wasm_importtype_vec_delete", None, _P)
        self.exporttype_vec_delete = f("wasm_exporttype_vec_delete", None, _P)
        self.importtype_module = f("wasm_importtype_module", _P, _P)
        self.importtype_name = f("wasm_importtype_name", _P, _P)
        self.importtype_type = f("wasm_importtype_type", _P, _P)
        self.exporttype_name = f("wasm_exporttype_name", _P, _P)
        self.exporttype_type = f("wasm_exporttype_type", _P, _P)
        self.externtype_kind = f("wasm_externtype_kind", _U8, _P)
        self.as_functype = f("wasm_externtype_as_functype_const", _P, _P)
        self.as_globaltype = f("wasm_externtype_as_globaltype_const", _P, _P)
        self.as_tabletype = f("wasm_externtype_as_tabletype_const", _P, _P)
        self.as_memorytype = f("wasm_externtype_as_memorytype_const", _P, _P)
        self.as_tagtype = f("wasm_externtype_as_tagtype_const", _P, _P)
        self.tagtype_functype = f("wasm_tagtype_functype", _P, _P)
        self.functype_params = f("wasm_functype_params", _P, _P)
        self.functype_results = f("wasm_functype_results", _P, _P)
        self.functype_new = f("wasm_functype_new", _P, _P, _P)
        self.valtype_new = f("wasm_valtype_new", _P, _U8)
        self.valtype_kind = f("wasm_valtype_kind", _U8, _P)
        self.valtype_vec_new = f("wasm_valtype_vec_new", None, _P, _SIZE, _P)
        self.globaltype_content = f("wasm_globaltype_content", _P, _P)
        self.globaltype_mutability = f("wasm_globaltype_mutability", _U8, _P)
        self.tabletype_element = f("wasm_tabletype_element", _P, _P)
        self.tabletype_limits = f("wasm_tabletype_limits", _P, _P)
        self.memorytype_minimum = f("wasmtime_memorytype_minimum", _U64, _P)
        self.memorytype_maximum = f("wasmtime_memorytype_maximum", ctypes.c_bool, _P, _P)
        self.memorytype_is64 = f("wasmtime_memorytype_is64", ctypes.c_bool, _P)
        self.memorytype_isshared = f("wasmtime_memorytype_isshared", ctypes.c_bool, _P)
        self.store_new = f("wasmtime_store_new", _P, _P, _P, _P)
        self.store_delete = g("wasmtime_store_delete", None, _P)
        self.store_context = f("wasmtime_store_context", _P, _P)
        self.store_limiter = f("wasmtime_store_limiter", None, _P, ctypes.c_int64, ctypes.c_int64,
                               ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
        self.store_epoch_deadline_callback = f("wasmtime_store_epoch_deadline_callback", None, _P, _P, _P, _P)
        self.set_epoch_deadline = f("wasmtime_context_set_epoch_deadline", None, _P, _U64)
        self.set_fuel = f("wasmtime_context_set_fuel", _P, _P, _U64)
        self.get_fuel = f("wasmtime_context_get_fuel", _P, _P, _P)
        self.instance_new = g("wasmtime_instance_new", _P, _P, _P, _P, _SIZE, _P, _P)
        self.instance_export_get = f("wasmtime_instance_export_get", ctypes.c_bool, _P, _P, _P, _SIZE, _P)
        self.func_new_unchecked = f("wasmtime_func_new_unchecked", None, _P, _P, _P, _P, _P, _P)
        self.func_call_unchecked = g("wasmtime_func_call_unchecked", _P, _P, _P, _P, _SIZE, _P)
        self.memory_data = f("wasmtime_memory_data", _P, _P, _P)
        self.memory_data_size = f("wasmtime_memory_data_size", _SIZE, _P, _P)
        self.memory_grow = g("wasmtime_memory_grow", _P, _P, _P, _U64, _P)
        self.global_get = f("wasmtime_global_get", None, _P, _P, _P)
        self.global_set = f("wasmtime_global_set", _P, _P, _P, _P)
        self.trap_new = f("wasmtime_trap_new", _P, ctypes.c_char_p, _SIZE)
        self.trap_code = f("wasmtime_trap_code", ctypes.c_bool, _P, _P)
        self.trap_message = f("wasm_trap_message", None, _P, _P)
        self.trap_delete = f("wasm_trap_delete", None, _P)
        self.error_new = f("wasmtime_error_new", _P, ctypes.c_char_p)
        self.context_set_data = f("wasmtime_context_set_data", None, _P, _P)
        self.error_message = f("wasmtime_error_message", None, _P, _P)
        self.error_delete = f("wasmtime_error_delete", None, _P)
        self.byte_vec_delete = f("wasm_byte_vec_delete", None, _P)
        # an item's type, asked of wasmtime only when it is needed (`Extern.type`)
        self.item_type = {_EXTERN_FUNC: f("wasmtime_func_type", _P, _P, _P),
                          _EXTERN_GLOBAL: f("wasmtime_global_type", _P, _P, _P),
                          _EXTERN_TABLE: f("wasmtime_table_type", _P, _P, _P),
                          _EXTERN_MEMORY: f("wasmtime_memory_type", _P, _P, _P)}
        self.as_externtype = {_EXTERN_FUNC: f("wasm_functype_as_externtype_const", _P, _P),
                              _EXTERN_GLOBAL: f("wasm_globaltype_as_externtype_const", _P, _P),
                              _EXTERN_TABLE: f("wasm_tabletype_as_externtype_const", _P, _P),
                              _EXTERN_MEMORY: f("wasm_memorytype_as_externtype_const", _P, _P)}
        self.type_delete = {_EXTERN_FUNC: f("wasm_functype_delete", None, _P),
                            _EXTERN_GLOBAL: f("wasm_globaltype_delete", None, _P),
                            _EXTERN_TABLE: f("wasm_tabletype_delete", None, _P),
                            _EXTERN_MEMORY: f("wasm_memorytype_delete", None, _P)}


def _py_function(name: str, restype: Any, *argtypes: Any) -> Any:
    """Like `c_function`, but the call keeps the GIL (PYFUNCTYPE): for short C functions."""
    address = ctypes.cast(getattr(_clib._lib(), name), _P).value
    if address is None:
        raise OSError(f"the wasmtime library has no function {name}")
    return ctypes.PYFUNCTYPE(restype, *argtypes)(address)


@functools.lru_cache(maxsize=None)
def _c() -> _C:
    return _C()


def _name(vec_address: Optional[int]) -> str:
    """The text of a `const wasm_name_t *` (not owned)."""
    if not vec_address:
        return ""
    vec = _ByteVec.from_address(vec_address)
    return ctypes.string_at(vec.data, vec.size).decode("utf-8", "replace") if vec.size else ""


def _take_error(error: int) -> str:
    """The message of an owned `wasmtime_error_t *`, which is freed. Through the
    GIL-keeping declarations: this runs on the way out of every trap, where each
    release of the GIL would have to be won back from the busy threads."""
    c = _c()
    vec = _ByteVec()
    c.error_message(error, ctypes.addressof(vec))
    try:
        return ctypes.string_at(vec.data, vec.size).decode("utf-8", "replace")
    finally:
        c.byte_vec_delete(ctypes.addressof(vec))
        c.error_delete(error)


def _check(error: Optional[int]) -> None:
    if error:
        raise WasmtimeError(_take_error(error))


# -- the engine -----------------------------------------------------------------------------

_engine_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _engine() -> int:
    """The process-wide engine (`wasm_engine_t *`), with fuel and epoch checks compiled in
    so that the same compiled code serves limited and unlimited stores. Lives as long as
    the process."""
    with _engine_lock:
        c = _c()
        config = c.config_new()
        for name, value in _ENGINE_SETTINGS:
            c.config_bool[name](config, value)
        c.config_max_wasm_stack(config, MAX_WASM_STACK)
        engine: int = c.engine_new(config)  # takes the config
        return engine


def engine_fingerprint() -> str:
    """Identifies the compiled-code format: wasmtime's version and the engine settings
    (a cache key must include it)."""
    settings = ",".join(f"{k}={int(v)}" for k, v in _ENGINE_SETTINGS)
    return f"wasmtime-{_clib.wasmtime_version()};core;{settings},max_wasm_stack={MAX_WASM_STACK}"


# -- types ----------------------------------------------------------------------------------


# NamedTuples rather than frozen dataclasses: just as immutable and comparable, and six
# of them made with this module cost a warm import of a component 2 ms less.

class FuncType(NamedTuple):
    """A core function type: value types are 'i32', 'i64', 'f32', 'f64' (others, such as
    'v128' or 'funcref', can appear in modules but cannot be called from Python here)."""

    params: Tuple[str, ...]
    results: Tuple[str, ...]


class MemoryType(NamedTuple):
    minimum: int  # pages
    maximum: Optional[int]
    is64: bool = False
    shared: bool = False


class TableType(NamedTuple):
    element: str  # 'funcref', 'externref', ...
    minimum: int
    maximum: Optional[int]


class GlobalType(NamedTuple):
    content: str
    mutable: bool


ExternType = Union[FuncType, MemoryType, TableType, GlobalType]


class ImportDesc(NamedTuple):
    module: str
    name: str
    kind: str  # 'func' | 'memory' | 'table' | 'global' | 'tag'
    type: ExternType


class ExportDesc(NamedTuple):
    name: str
    kind: str
    type: ExternType


def _valtypes(vec_address: int) -> Tuple[str, ...]:
    vec = _PtrVec.from_address(vec_address)
    kind = _c().valtype_kind
    return tuple(_VALKINDS.get(k, f"valtype#{k}") for k in (kind(vec.data[i]) for i in range(vec.size)))


def _functype_of(ft: int) -> FuncType:
    c = _c()
    return FuncType(_valtypes(c.functype_params(ft)), _valtypes(c.functype_results(ft)))


def _externtype(et: int) -> Tuple[str, ExternType]:
    """The kind and type of a `const wasm_externtype_t *`: one dispatch over extern kinds."""
    c = _c()
    kind = _TYPE_KINDS[c.externtype_kind(et)]
    if kind == "func":
        return kind, _functype_of(c.as_functype(et))
    if kind == "memory":
        mt = c.as_memorytype(et)
        maximum = _U64()
        has_max = c.memorytype_maximum(mt, ctypes.addressof(maximum))
        return kind, MemoryType(c.memorytype_minimum(mt), maximum.value if has_max else None,
                                bool(c.memorytype_is64(mt)), bool(c.memorytype_isshared(mt)))
    if kind == "table":
        tt = c.as_tabletype(et)
        limits = _Limits.from_address(c.tabletype_limits(tt))
        element = _VALKINDS.get(c.valtype_kind(c.tabletype_element(tt)), "ref")
        return kind, TableType(element, limits.min, None if limits.max == 0xFFFFFFFF else limits.max)
    if kind == "global":
        gt = c.as_globaltype(et)
        content = _VALKINDS.get(c.valtype_kind(c.globaltype_content(gt)), "ref")
        return kind, GlobalType(content, c.globaltype_mutability(gt) == 1)
    return kind, _functype_of(c.tagtype_functype(c.as_tagtype(et)))  # a tag: its payload type


@functools.lru_cache(maxsize=None)
def _wasm_functype(ft: FuncType) -> int:
    """A `wasm_functype_t *` for `ft`, made once and kept for the process (wasmtime copies
    what it needs when a function is made with it)."""
    c = _c()
    vecs = []
    for kinds in (ft.params, ft.results):
        ptrs = (_P * max(1, len(kinds)))(*[c.valtype_new(_VALKIND_CODES[k]) for k in kinds])
        vec = _PtrVec()
        c.valtype_vec_new(ctypes.addressof(vec), len(kinds), ctypes.addressof(ptrs))
        vecs.append(vec)
    made: int = c.functype_new(ctypes.addressof(vecs[0]), ctypes.addressof(vecs[1]))  # takes both vecs
    return made


# Flat values sit in 16-byte `wasmtime_val_raw_t` slots; i32/i64 unsigned per the ABI.
_SLOT_FORMATS = {"i32": "I12x", "i64": "Q8x", "f32": "f12x", "f64": "d8x"}


def _slots_format(kinds: Sequence[str], where: str) -> struct.Struct:
    for k in kinds:
        if k not in _SLOT_FORMATS:
            raise NotImplementedError(f"{where}: core value type {k!r} is not supported (only i32, i64, f32, f64)")
    return struct.Struct("<" + "".join(_SLOT_FORMATS[k] for k in kinds))


def _each(fill: Callable[[int, int], None], delete: Callable[[int], None], owner: int,
          read: Callable[[int], Any]) -> tuple:
    """`read` applied to each element of the pointer vector that `fill(owner, &vec)` makes
    (then freed with `delete`)."""
    vec = _PtrVec()
    fill(owner, ctypes.addressof(vec))
    try:
        return tuple(read(vec.data[i]) for i in range(vec.size))
    finally:
        delete(ctypes.addressof(vec))


# -- modules --------------------------------------------------------------------------------


class CoreModule:
    """A compiled core module (`wasmtime_module_t *`), shareable by any number of stores.

    `imports` and `exports` are described through the C API on first use, not when the
    module is made: a componentize-py guest's 38 modules have ~7,000 of them, and asking
    wasmtime about each took 150 ms of every warm import. Instantiation does not need
    them (wasmtime checks imports itself; see `Store.instantiate_wired`)."""

    __slots__ = ("_ptr", "_imports", "_exports", "_memory_exports", "_finalizer", "__weakref__")

    def __init__(self, ptr: int, memory_exports: Optional[Tuple[str, ...]] = None) -> None:
        self._ptr = ptr
        self._finalizer = weakref.finalize(self, _c().module_delete, ptr)
        self._finalizer.atexit = False  # the OS reclaims it; stores may still run at exit
        self._imports: Optional[Tuple[ImportDesc, ...]] = None
        self._exports: Optional[Tuple[ExportDesc, ...]] = None
        self._memory_exports = memory_exports

    @staticmethod
    def compile(data: Union[bytes, bytearray, memoryview], where: str = "<bytes>") -> "CoreModule":
        """Compile (and validate) a core module. DecodeError when wasmtime rejects it."""
        raw = bytes(data)
        out = _P()
        error = _c().module_new(_engine(), raw, len(raw), ctypes.addressof(out))
        if error:
            raise DecodeError(f"{where}: wasmtime could not compile the core module: {_take_error(error)}")
        return CoreModule(out.value or 0)

    def serialize(self) -> bytes:
        """The compiled code as bytes, for the cache (see `deserialize`)."""
        c = _c()
        vec = _ByteVec()
        _check(c.module_serialize(self._ptr, ctypes.addressof(vec)))
        try:
            return ctypes.string_at(vec.data, vec.size)
        finally:
            c.byte_vec_delete(ctypes.addressof(vec))

    @staticmethod
    def deserialize(data: Union[bytes, bytearray, memoryview]) -> "CoreModule":
        """Compiled code made by `serialize` with this engine. wasmtime trusts these bytes
        completely: the caller validates them first (the cache checks a checksum)."""
        raw = data if isinstance(data, bytes) else bytes(data)
        return CoreModule.deserialize_at(ctypes.cast(ctypes.c_char_p(raw), _P).value or 0, len(raw))

    @staticmethod
    def deserialize_at(address: int, length: int,
                       memory_exports: Optional[Tuple[str, ...]] = None) -> "CoreModule":
        """Like `deserialize`, from `length` bytes at `address` (a mapped file, say), which
        wasmtime copies: no Python copy. The caller keeps the bytes alive for the call.
        `memory_exports`: the names of the module's memory exports, when known."""
        out = _P()
        _check(_c().module_deserialize(_engine(), address, length, ctypes.addressof(out)))
        return CoreModule(out.value or 0, memory_exports)

    @staticmethod
    def deserialize_file(path: str, memory_exports: Optional[Tuple[str, ...]] = None) -> "CoreModule":
        """Like `deserialize`, but wasmtime maps the file (no copy at all); the module's
        code must start at byte 0 (bytes after it are ignored). Trusts it just as completely."""
        out = _P()
        _check(_c().module_deserialize_file(_engine(), os.fsencode(path), ctypes.addressof(out)))
        return CoreModule(out.value or 0, memory_exports)

    @property
    def imports(self) -> Tuple[ImportDesc, ...]:
        if self._imports is None:
            c = _c()

            def import_desc(it: int) -> ImportDesc:
                kind, ty = _externtype(c.importtype_type(it))
                return ImportDesc(_name(c.importtype_module(it)), _name(c.importtype_name(it)), kind, ty)

            self._imports = _each(c.module_imports, c.importtype_vec_delete, self._ptr, import_desc)
        return self._imports

    @property
    def exports(self) -> Tuple[ExportDesc, ...]:
        if self._exports is None:
            c = _c()

            def export_desc(et: int) -> ExportDesc:
                kind, ty = _externtype(c.exporttype_type(et))
                return ExportDesc(_name(c.exporttype_name(et)), kind, ty)

            self._exports = _each(c.module_exports, c.exporttype_vec_delete, self._ptr, export_desc)
        return self._exports

    @property
    def memory_exports(self) -> Tuple[str, ...]:
        """The names of the memories this module exports (a store with a memory cap
        watches them)."""
        if self._memory_exports is None:
            self._memory_exports = tuple(d.name for d in self.exports if d.kind == "memory")
        return self._memory_exports

    def __repr__(self) -> str:
        return f"<CoreModule: {len(self.imports)} imports, {len(self.exports)} exports>"


# -- stores ---------------------------------------------------------------------------------

# Live stores by serial, for the trampoline and the deadline callback (their `env`).
_stores: Dict[int, "weakref.ref[Store]"] = {}
_serials = itertools.count(1)
_FUNC_BITS = 24


class Extern:
    """An item of one store (a function, memory, table or global): usable as an import
    of another instance in the same store, or handed to `Store.caller`/`Store.memory`."""

    __slots__ = ("kind", "_type", "_store", "_raw")

    def __init__(self, store: "Store", kind: str, type: Any, raw: _ExternStruct) -> None:
        self.kind = kind
        self._type = type  # None: asked of wasmtime when first needed
        self._store = store
        self._raw = raw

    @property
    def type(self) -> Any:
        """The item's type (FuncType, MemoryType, TableType, GlobalType)."""
        if self._type is None:
            c = _c()
            code = _EXTERN_MEMORY if self._raw.kind == _EXTERN_SHAREDMEMORY else self._raw.kind
            getter = c.item_type.get(code)
            if getter is None:
                raise NotImplementedError(f"the type of a core {self.kind} is not available")
            owned = getter(self._store._ctx, self._address)
            try:
                self._type = _externtype(c.as_externtype[code](owned))[1]
            finally:
                c.type_delete[code](owned)
        return self._type

    @property
    def _address(self) -> int:
        """The address of the item's own struct (a `wasmtime_func_t *`, ...)."""
        return ctypes.addressof(self._raw) + 8

    def __repr__(self) -> str:
        return f"<Extern {self.kind} {self.type}>"


class CoreInstance:
    """An instantiated core module: its exports by name."""

    __slots__ = ("exports", "module", "_store", "_address")

    def __init__(self, module: CoreModule, exports: "_Exports") -> None:
        self.module = module
        self.exports = exports
        self._store = exports._store
        self._address = ctypes.addressof(exports._instance)  # a `wasmtime_instance_t *`


class _Exports(Mapping[str, Extern]):
    """A core instance's exports, each fetched from wasmtime by name when first asked for.

    Not all up front: `wasmtime_instance_export_nth(i)` walks the exports from the first
    one every time, so listing a module's n exports costs n²/2 (a componentize-py guest's
    libpython has ~1,900 exports: 0.45 s per instantiation), and a component uses few of
    a module's exports anyway. The kind comes with the item; its type is asked for only
    when needed (`Extern.type`)."""

    __slots__ = ("_store", "_module", "_instance", "_found")

    def __init__(self, store: "Store", module: CoreModule, instance: "_InstanceStruct") -> None:
        self._store = store
        self._module = module
        self._instance = instance
        self._found: Dict[str, Extern] = {}

    def __getitem__(self, name: str) -> Extern:
        found = self._found.get(name)
        if found is None:
            raw = _ExternStruct()
            encoded = name.encode()
            if not _c().instance_export_get(self._store._ctx, ctypes.addressof(self._instance), encoded,
                                            len(encoded), ctypes.addressof(raw)):
                raise KeyError(name)
            kind = _EXTERN_KINDS.get(raw.kind, f"extern#{raw.kind}")
            found = self._found[name] = Extern(self._store, kind, None, raw)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([d.name for d in self._module.exports])

    def __len__(self) -> int:
        return len(self._module.exports)


class Memory:
    """A linear memory of a store. Views are taken afresh: the memory may grow (and, in
    principle, move) during any call into wasm. Growth is the only thing that can move
    it, so a view of the same size as the last one is a new slice of the last one."""

    __slots__ = ("_store", "_extern", "_address", "_data", "_size", "_last_size", "_last_view")

    def __init__(self, store: "Store", extern: Extern) -> None:
        if extern.kind != "memory" or extern._raw.kind != _EXTERN_MEMORY:
            raise TypeError(f"not a (non-shared) memory: {extern!r}")
        self._store = store
        self._extern = extern
        self._address = extern._address
        c = _c()
        self._data = c.memory_data
        self._size = c.memory_data_size
        self._last_size = -1
        self._last_view = memoryview(b"")

    def size(self) -> int:
        """The current size in bytes."""
        return int(self._size(self._store._ctx, self._address))

    def view(self) -> memoryview:
        """A writable memoryview (format 'B') of exactly the current memory: every index
        and slice is bounds-checked by Python. It keeps the store alive; releasing it
        releases only this view."""
        size = self._size(self._store._ctx, self._address)
        if size != self._last_size:
            if size:
                array = (ctypes.c_ubyte * size).from_address(self._data(self._store._ctx, self._address))
                array._owner = self._store  # the store (and so the memory) outlives the view
                self._last_view = memoryview(array).cast("B")
            else:
                self._last_view = memoryview(b"").cast("B")
            self._last_size = size
        return self._last_view[:]

    def grow(self, pages: int) -> int:
        """Grow by `pages` (64 KiB each); the previous size in pages. Refusal (the cap,
        the maximum) raises LimitExceeded / WasmtimeError."""
        previous = _U64()
        error = _c().memory_grow(self._store._ctx, self._address, pages, ctypes.addressof(previous))
        if error:
            text = _take_error(error)
            if self._store.limits.memory is not None:
                raise LimitExceeded("memory", limit_message("memory", self._store.limits, text))
            raise WasmtimeError(text)
        return previous.value


def _delete_store(ptr: int, serial: int) -> None:
    _stores.pop(serial, None)
    _c().store_delete(ptr)


class Store:
    """One wasmtime store: the instances of one component instance, their memories and
    host functions. NOT thread-safe: callers serialize their use (a lock). Different
    stores run in parallel in different threads (ctypes releases the GIL)."""

    __slots__ = ("limits", "poisoned", "_ptr", "_ctx", "_serial", "_hosts", "_pending", "_deadline",
                 "_timed_out", "_depth", "_memories", "_keep", "__weakref__")

    def __init__(self, limits: Limits = NO_LIMITS) -> None:
        c = _c()
        engine = _engine()
        self.limits = limits
        self.poisoned: Optional[str] = None
        self._serial = next(_serials)
        self._hosts: List[_HostEntry] = []
        self._pending: Optional[BaseException] = None
        self._deadline: Optional[float] = None
        self._timed_out = False
        self._depth = 0
        self._memories: List[Extern] = []
        self._keep: List[Any] = []
        # The store's data is always a fresh, unused `wasmtime_error_t *` (freed with the
        # store): a timed store's deadline callback returns it (see `_enter`).
        self._ptr = c.store_new(engine, _new_error(_TIMEOUT_TEXT), _error_delete_address())
        self._ctx = c.store_context(self._ptr)
        _stores[self._serial] = weakref.ref(self)
        finalizer = weakref.finalize(self, _delete_store, self._ptr, self._serial)
        finalizer.atexit = False  # daemon threads may still be in wasm at exit; the OS reclaims
        _check(c.set_fuel(self._ctx, _NO_FUEL_LIMIT))
        if limits.timeout is None:
            c.store_epoch_deadline_callback(self._ptr, _deadline_callback_address(), self._serial, None)
        else:
            c.store_epoch_deadline_callback(self._ptr, _native_timeout_address(), None, None)
        c.set_epoch_deadline(self._ctx, _ticks(_INTERRUPT_EVERY) if limits.timeout is None else _FAR)
        if limits.memory is not None:
            c.store_limiter(self._ptr, limits.memory, -1, -1, -1, -1)
        _ticker.start()
        _install_sigint_handler()
        if limits.timeout is not None:
            _sigint_watcher.start()

    # -- instances ----------------------------------------------------------------------

    def instantiate(self, module: CoreModule, imports: Sequence[Extern]) -> CoreInstance:
        """Instantiate `module` with `imports` (in `module.imports` order). Wrong imports
        raise LinkError; a trap in the start function raises Trap (the store is then
        poisoned); an initial memory over the cap raises LimitExceeded("memory")."""
        self._check_usable()
        wanted = module.imports
        if len(imports) != len(wanted):
            raise LinkError(f"the core module needs {len(wanted)} imports, got {len(imports)}")
        for i, (item, desc) in enumerate(zip(imports, wanted)):
            where = f"import {i} ({desc.module!r} {desc.name!r})"
            if not isinstance(item, Extern):
                raise LinkError(f"{where}: expected an Extern, got {type(item).__name__}")
            if item._store is not self:
                raise LinkError(f"{where}: the {item.kind} belongs to another store")
            if item.kind != desc.kind:
                raise LinkError(f"{where}: expected a {desc.kind}, got a {item.kind}")
            if desc.kind == "func" and item.type != desc.type:
                raise LinkError(f"{where}: expected a function of type {_show(desc.type)}, "
                                f"got {_show(item.type)}")
        array = (_ExternStruct * max(1, len(imports)))()
        for i, item in enumerate(imports):
            array[i] = item._raw
        return self._instantiate(module, array, len(imports))

    def instantiate_wired(self, module: CoreModule,
                          imports: Sequence[Union[Extern, Tuple[CoreInstance, bytes]]]) -> CoreInstance:
        """`instantiate` without the Python-side checks, for a caller that wires what a
        plan computed: each import is an `Extern` of this store or `(instance, name)`,
        export `name` (UTF-8) of a core instance of this store, written straight into
        the array wasmtime takes (no `Extern` made). wasmtime still checks count, kinds
        and types: a mismatch is a LinkError in its words."""
        self._check_usable()
        size = ctypes.sizeof(_ExternStruct)
        array = (_ExternStruct * max(1, len(imports)))()
        base = ctypes.addressof(array)
        export_get = _c().instance_export_get
        ctx = self._ctx
        for i, item in enumerate(imports):
            if type(item) is tuple:
                instance, name = item
                if instance._store is not self:
                    raise LinkError(f"import {i}: the instance belongs to another store")
                if not export_get(ctx, instance._address, name, len(name), base + i * size):
                    raise LinkError(f"import {i}: the core instance exports no {name.decode(errors='replace')!r}")
            elif isinstance(item, Extern) and item._store is self:
                array[i] = item._raw
            else:
                raise LinkError(f"import {i}: expected an Extern of this store, got {item!r}")
        return self._instantiate(module, array, len(imports))

    def _instantiate(self, module: CoreModule, array: Any, count: int) -> CoreInstance:
        out = _InstanceStruct()
        trap = _P()
        c = _c()
        self._enter()
        try:
            error = c.instance_new(self._ctx, module._ptr, ctypes.addressof(array), count,
                                   ctypes.addressof(out), ctypes.addressof(trap))
        finally:
            self._leave()
        if error or trap.value:
            if error and not self._pending:
                text = _take_error(error)
                if self.limits.memory is not None and "exceeds memory limits" in text:
                    raise LimitExceeded("memory", limit_message("memory", self.limits, text))
                raise LinkError(f"wasmtime could not instantiate the core module: {text}")
            self._fail(error or 0, trap.value or 0)
        self._keep.append(module)
        instance = CoreInstance(module, _Exports(self, module, out))
        if self.limits.memory is not None:  # the memory cap looks at every memory of the store
            for name in module.memory_exports:
                self._memories.append(instance.exports[name])
        return instance

    # -- host functions -----------------------------------------------------------------

    def host_func(self, type: FuncType, callback: Callable[..., Any]) -> Extern:
        """A function wasm can import: `callback(*flat_args)` returns the flat results (a
        tuple/list, or a single value / None for one / no result). An exception it raises
        traps the guest and is re-raised, unchanged, by the call into this store."""
        if not isinstance(type, FuncType):
            raise TypeError(f"host_func needs a FuncType, got {type!r}")
        if not callable(callback):
            raise TypeError(f"host_func needs a callable, got {callback!r}")
        entry = _HostEntry(type, callback)
        index = len(self._hosts)
        if index >= 1 << _FUNC_BITS:
            raise RuntimeError("too many host functions in one store")
        self._hosts.append(entry)
        raw = _ExternStruct()
        raw.kind = _EXTERN_FUNC
        _c().func_new_unchecked(self._ctx, _wasm_functype(type), _trampoline_address(),
                                (self._serial << _FUNC_BITS) | index, None, ctypes.addressof(raw) + 8)
        return Extern(self, "func", type, raw)

    # -- calls ----------------------------------------------------------------------------

    def caller(self, func: Extern) -> Callable[..., tuple]:
        """A fast function calling `func`: `call(*flat_args) -> tuple of flat results`.
        Built once per function; a call packs into a buffer made here and goes straight
        to `wasmtime_func_call_unchecked`. Arms this store's limits for the outermost
        call; raises Trap/LimitExceeded (with the wasm backtrace), InstancePoisonedError,
        or what a host callback raised."""
        if not isinstance(func, Extern) or func.kind != "func":
            raise TypeError(f"caller needs a function Extern, got {func!r}")
        if func._store is not self:
            raise ValueError("caller: the function belongs to another store")
        ftype: FuncType = func.type
        where = f"calling a core function of type {_show(ftype)}"
        pack = _slots_format(ftype.params, where)
        unpack = _slots_format(ftype.results, where).unpack_from
        slots = max(len(ftype.params), len(ftype.results))
        buf = (ctypes.c_ubyte * (16 * max(1, slots)))()
        buf_address = ctypes.addressof(buf)
        trap = _P()
        trap_address = ctypes.addressof(trap)
        raw_call = _c().func_call_unchecked
        ctx = self._ctx
        func_address = func._address
        store = self
        nparams = len(ftype.params)
        pack_into = pack.pack_into
        deferred = _deferred_signal

        def bad_args(args: tuple) -> Exception:
            if len(args) != nparams:
                return TypeError(f"{where}: expected {nparams} arguments, got {len(args)}")
            return TypeError(f"{where}: bad arguments {args!r} (i32/i64 are unsigned ints, f32/f64 floats)")

        def call(*args: Any) -> tuple:
            if store.poisoned is not None:
                store._check_usable()
            try:
                pack_into(buf, 0, *args)
            except struct.error:
                raise bad_args(args) from None
            try:
                error = raw_call(ctx, func_address, buf_address, slots, trap_address)
            except BaseException:  # a signal handler raised (Ctrl-C) as the call returned
                store._interrupted(trap)
                raise
            if error or trap.value:
                trap_value, trap.value = trap.value, None
                store._fail(error or 0, trap_value or 0)
            if deferred:
                _run_deferred_signal()
            return unpack(buf, 0)

        if self.limits.per_call:
            unlimited = call

            def call(*args: Any) -> tuple:
                store._enter()
                try:
                    return unlimited(*args)
                finally:
                    store._leave()
        else:  # what `call` does, for a caller that inlines it (the ABI's generated fast paths)
            call.parts = CallParts(pack_into, buf, raw_call, ctx, func_address,  # type: ignore[attr-defined]
                                   buf_address, slots, trap_address, trap, store, unpack, deferred,
                                   _run_deferred_signal, bad_args)

        call.__qualname__ = call.__name__ = "core_call"
        call.extern = func  # type: ignore[attr-defined]  # keeps the struct at func_address alive
        return call

    def near_memory_cap(self) -> bool:
        """Whether a memory of this store is within a page (or 1/16) of the memory cap."""
        return _near_memory_cap(self)

    def memory(self, extern: Extern) -> Memory:
        if extern._store is not self:
            raise ValueError("memory: the memory belongs to another store")
        return Memory(self, extern)

    def global_get(self, extern: Extern) -> Union[int, float]:
        """The value of a global (i32/i64 unsigned, f32/f64 float)."""
        if extern.kind != "global" or extern._store is not self:
            raise TypeError(f"global_get needs a global of this store, got {extern!r}")
        val = _Val()
        _c().global_get(self._ctx, extern._address, ctypes.addressof(val))
        return _from_val(val)

    def global_set(self, extern: Extern, value: Union[int, float]) -> None:
        if extern.kind != "global" or extern._store is not self:
            raise TypeError(f"global_set needs a global of this store, got {extern!r}")
        val = _to_val(extern.type.content, value)
        _check(_c().global_set(self._ctx, extern._address, ctypes.addressof(val)))

    # -- limits, traps --------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.poisoned is not None:
            raise unusable(self.poisoned)

    def _enter(self) -> None:
        """Arm the per-call limits when this is the outermost entry into the store."""
        depth = self._depth
        self._depth = depth + 1
        if depth:
            return
        limits = self.limits
        c = _c()
        if limits.fuel is not None:
            _check(c.set_fuel(self._ctx, limits.fuel))
        if limits.timeout is not None:
            # wasmtime traps by itself when the epoch reaches the deadline: the callback
            # of a timed store is `wasmtime_context_get_data`, which hands back the store's
            # ready error, so no Python (and no GIL) is involved at the deadline
            self._timed_out = False
            self._deadline = time.monotonic() + limits.timeout
            c.set_epoch_deadline(self._ctx, _ticks(limits.timeout) + 1)
            if threading.get_ident() == _MAIN_THREAD:
                _main_timed[:] = [self]  # for Ctrl-C, see `_SigintWatcher`

    def _leave(self) -> None:
        self._depth -= 1
        if not self._depth:
            if self._deadline is not None:
                self._deadline = None
                _c().set_epoch_deadline(self._ctx, _FAR)
                if _main_timed and _main_timed[0] is self:
                    _main_timed.clear()
            if self.limits.fuel is not None:
                _check(_c().set_fuel(self._ctx, _NO_FUEL_LIMIT))

    def _interrupted(self, trap: _P) -> None:
        """A call into wasm was cut short by an exception raised as it returned (a
        KeyboardInterrupt): whatever it left is released and the store poisoned."""
        c = _c()
        if trap.value:
            c.trap_delete(trap.value)
            trap.value = None
        if self.limits.timeout is not None:
            # the deadline callback may have used up the store's error: never free it twice
            c.context_set_data(self._ctx, _new_error(_TIMEOUT_TEXT))
        self._pending = None
        self.poisoned = "interrupted by KeyboardInterrupt"

    def _fail(self, error: int, trap: int) -> None:
        """A call failed with `error` (a `wasmtime_error_t *`) or `trap` (a
        `wasm_trap_t *`), both owned here: raise what it means, poison the store."""
        c = _c()
        code = -1
        if trap:
            code_out = _U8()
            if c.trap_code(trap, ctypes.addressof(code_out)):
                code = code_out.value
            vec = _ByteVec()
            c.trap_message(trap, ctypes.addressof(vec))
            text = ctypes.string_at(vec.data, vec.size).rstrip(b"\0").decode("utf-8", "replace")
            c.byte_vec_delete(ctypes.addressof(vec))
            c.trap_delete(trap)
        if error:
            text = _take_error(error)
            if self.limits.timeout is not None and text.rstrip().endswith(_TIMEOUT_TEXT):
                self._timed_out = True  # the store's error was used up: give it a fresh one
                c.context_set_data(self._ctx, _new_error(_TIMEOUT_TEXT))
        pending, self._pending = self._pending, None
        if pending is not None:
            self.poisoned = (f"interrupted by {type(pending).__name__}" if isinstance(pending, KeyboardInterrupt)
                             else f"a host function raised {type(pending).__name__}")
            if isinstance(pending, Trap):  # raised by our side of the ABI: where the guest was
                self.poisoned = pending.message
                if not pending.trace:
                    pending._set_trace(_clib.split_trap_text(text)[1])
            raise pending
        exc = _trap_from(text, code, self)
        self.poisoned = exc.message
        raise exc

    def __repr__(self) -> str:
        state = f" poisoned ({self.poisoned})" if self.poisoned else ""
        return f"<Store #{self._serial}{state}>"


class CallParts(NamedTuple):
    """What a core caller (`Store.caller`, without per-call limits) is made of, for code
    that does the same call inline: `pack_into(buf, 0, *flat)`, then
    `error = raw_call(ctx, func_address, buf_address, slots, trap_address)` (an exception
    from it: `store._interrupted(trap)`), on `error or trap.value` take the trap value
    and `store._fail(error or 0, trap_value or 0)`, run `run_deferred()` if `deferred`,
    and `unpack(buf, 0)` the results."""

    pack_into: Any
    buf: Any
    raw_call: Any
    ctx: Any
    func_address: int
    buf_address: int
    slots: int
    trap_address: int
    trap: Any
    store: "Store"
    unpack: Any
    deferred: Any
    run_deferred: Any
    bad_args: Any


def _show(t: Any) -> str:
    if isinstance(t, FuncType):
        return f"[{' '.join(t.params)}] -> [{' '.join(t.results)}]"
    return repr(t)


def _from_val(val: _Val) -> Union[int, float]:
    kind = val.kind
    if kind == 0:
        return val.of.i32 & 0xFFFFFFFF
    if kind == 1:
        return val.of.i64 & 0xFFFFFFFFFFFFFFFF
    if kind == 2:
        return float(val.of.f32)
    if kind == 3:
        return float(val.of.f64)
    raise NotImplementedError(f"reading a global of value kind {_VALKINDS.get(kind, kind)} is not supported")


def _to_val(kind: str, value: Union[int, float]) -> _Val:
    val = _Val()
    if kind not in _VALKIND_CODES:
        raise NotImplementedError(f"writing a global of type {kind} is not supported")
    val.kind = _VALKIND_CODES[kind]
    if kind == "i32":
        val.of.i32 = ctypes.c_int32(int(value) & 0xFFFFFFFF).value
    elif kind == "i64":
        val.of.i64 = ctypes.c_int64(int(value) & 0xFFFFFFFFFFFFFFFF).value
    elif kind == "f32":
        val.of.f32 = float(value)
    else:
        val.of.f64 = float(value)
    return val


# -- traps ----------------------------------------------------------------------------------

def _trap_from(text: str, code: int, store: Store) -> Trap:
    """A Trap (or LimitExceeded) from wasmtime's text and trap code for a failed call,
    read as the component engine reads it, so the messages match."""
    reason, trace = _clib.split_trap_text(text)
    limits = store.limits
    limit = None
    if store._timed_out:
        limit, reason = "timeout", "wasm trap: interrupt"
    elif code == _TRAP_OUT_OF_FUEL and limits.fuel is not None:
        limit = "fuel"
    elif limits.memory is not None and _near_memory_cap(store):
        limit = "memory"
    if limit is not None:
        return LimitExceeded(limit, limit_message(limit, limits, reason), trace)
    return Trap(reason, trace)


def _near_memory_cap(store: Store) -> bool:
    """Whether a memory of `store` is so close to the cap that growth was plausibly just
    refused (wasmtime's limiter does not say; one page, or 1/16 of the cap)."""
    cap = store.limits.memory
    assert cap is not None
    headroom = max(_PAGE, cap // 16)
    size = _c().memory_data_size
    return any(m._raw.kind == _EXTERN_MEMORY and size(store._ctx, m._address) + headroom > cap
               for m in store._memories)


# -- the host trampoline --------------------------------------------------------------------


class _HostEntry:
    """One host function: its callback and the struct layouts of its flat values."""

    __slots__ = ("callback", "unpack", "pack", "nresults", "slots", "array", "type")

    def __init__(self, ftype: FuncType, callback: Callable[..., Any]) -> None:
        where = f"host function of type {_show(ftype)}"
        self.type = ftype
        self.callback = callback
        self.unpack = _slots_format(ftype.params, where).unpack_from
        self.pack = _slots_format(ftype.results, where).pack_into
        self.nresults = len(ftype.results)
        self.slots = max(len(ftype.params), len(ftype.results))
        self.array = ctypes.c_ubyte * (16 * max(1, self.slots))


def _new_trap(message: str) -> int:
    data = message.encode()
    trap: int = _c().trap_new(data, len(data))
    return trap


def _trampoline_py(env: Optional[int], caller: Optional[int], args: Optional[int], nargs: int) -> Optional[int]:
    """A call from wasm into a host function: find the store and the function by `env`,
    unpack the flat arguments, call, pack the results. Everything happens inside the
    `try` (see `_ENTRY_CODES` for why)."""
    store = None
    try:
        ref = _stores.get((env or 0) >> _FUNC_BITS)
        store = ref() if ref is not None else None
        if store is None:
            return _new_trap("a host function was called after its store was released")
        if _deferred_signal:
            _run_deferred_signal()
        entry = store._hosts[(env or 0) & _FUNC_MASK]
        if args is None and ctypes.sizeof(entry.array):
            raise RuntimeError("wasmtime passed no argument buffer to a host function that needs one")
        slots = entry.array.from_address(args or 0)  # NULL only when there is nothing to read
        returned = entry.callback(*entry.unpack(slots, 0))
        n = entry.nresults
        if n == 0:
            return None
        results = (returned,) if n == 1 and not isinstance(returned, (tuple, list)) else returned
        try:
            entry.pack(slots, 0, *results)
        except (struct.error, TypeError):
            raise TypeError(f"a host function of type {_show(entry.type)} returned {returned!r}: "
                            f"expected {n} flat value(s) of types {', '.join(entry.type.results)}") from None
        return None
    except BaseException as e:  # kept for the call into the store, which re-raises it
        if store is not None:
            store._pending = e
        return _new_trap(f"host function raised {type(e).__name__}")


_FUNC_MASK = (1 << _FUNC_BITS) - 1
_trampoline = ctypes.CFUNCTYPE(_P, _P, _P, _P, _SIZE)(_trampoline_py)


@functools.lru_cache(maxsize=None)
def _trampoline_address() -> int:
    return ctypes.cast(_trampoline, _P).value or 0


# -- epochs: timeouts and Ctrl-C ------------------------------------------------------------


def _ticks(seconds: float) -> int:
    """Epoch ticks covering `seconds` (at least one)."""
    return max(1, int(-(-seconds // TICK)))


def _new_error(message: str) -> int:
    error: int = _c().error_new(message.encode())
    return error


def _deadline_py(context: Optional[int], env: Optional[int], delta: Optional[int], kind: Optional[int]) -> Optional[int]:
    """The epoch-deadline callback of an untimed store: runs every `_INTERRUPT_EVERY`
    seconds while the main thread is in wasm, so a pending SIGINT is handled (and its
    KeyboardInterrupt becomes a trap); sets the next deadline (`*delta`, in ticks)."""
    store = None
    try:
        ref = _stores.get(env or 0)
        store = ref() if ref is not None else None
        every = _INTERRUPT_EVERY if threading.get_ident() == _MAIN_THREAD else _OTHER_THREAD_EVERY
        if store is not None and _deferred_signal:
            _run_deferred_signal()
        if delta is not None:  # (wasmtime always passes where the next deadline goes)
            _U64.from_address(delta).value = max(1, int(-(-every // TICK)))
        return None
    except BaseException as e:  # a KeyboardInterrupt from the SIGINT handler, re-raised by the call
        if store is not None:
            store._pending = e
        return _new_error(f"interrupted by {type(e).__name__}")


_deadline_callback = ctypes.CFUNCTYPE(_P, _P, _P, _P, _P)(_deadline_py)


@functools.lru_cache(maxsize=None)
def _deadline_callback_address() -> int:
    return ctypes.cast(_deadline_callback, _P).value or 0


@functools.lru_cache(maxsize=None)
def _native_timeout_address() -> int:
    """The deadline callback of a timed store: `wasmtime_context_get_data(context)`, called
    as `callback(context, data, &delta, &kind)`, returns the store's data, a ready
    `wasmtime_error_t *`: wasmtime fails the call with it. C all the way, no GIL."""
    return ctypes.cast(_clib._lib().wasmtime_context_get_data, _P).value or 0


@functools.lru_cache(maxsize=None)
def _error_delete_address() -> int:
    return ctypes.cast(_clib._lib().wasmtime_error_delete, _P).value or 0


_MAIN_THREAD = threading.main_thread().ident


class _Ticker:
    """Advances the engine's epoch every TICK seconds, from the first store on.

    On Linux a POSIX timer does it (`timer_create` with SIGEV_THREAD calling
    `wasmtime_engine_increment_epoch(engine)` directly): no Python, no GIL, so ticks
    stay on time however busy Python's threads are, and a timeout is exact to a tick.
    Elsewhere a daemon thread does it; `increment_epoch` is then called through a
    PYFUNCTYPE prototype (one atomic add, it keeps the GIL) so a tick needs the GIL only
    once, after its sleep, but ticks are late when other threads hold the GIL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._keep: Any = None

    def start(self) -> None:
        if self._running:
            return
        with self._lock:
            if not self._running:
                self._keep = self._native() or self._thread()
                self._running = True

    @staticmethod
    def _increment_address() -> int:
        return ctypes.cast(_clib._lib().wasmtime_engine_increment_epoch, _P).value or 0

    def _native(self) -> Any:
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if not hasattr(libc, "timer_create"):
                libc = ctypes.CDLL("librt.so.1", use_errno=True)
            create, settime = libc.timer_create, libc.timer_settime
        except (OSError, AttributeError):
            return None
        # Several timers, staggered: a timer whose notification is still pending when it
        # expires again merges the two (one tick lost), and the notification thread may
        # wait for a CPU when the machine is busy. With period _TIMERS * TICK, a delay
        # shorter than that costs no tick, so the epoch does not fall behind the clock.
        event = _SigEvent(value=_engine(), notify=_SIGEV_THREAD, function=self._increment_address())
        timers = []
        period = int(TICK * 1e9) * _TIMERS
        for i in range(_TIMERS):
            timer = _P()
            if create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer)) != 0:
                break
            first = int(TICK * 1e9) * (i + 1)
            spec = _ITimerSpec(_TimeSpec(period // 10**9, period % 10**9), _TimeSpec(first // 10**9, first % 10**9))
            if settime(timer, 0, ctypes.byref(spec), None) != 0:
                break
            timers.append(timer)
        if len(timers) < _TIMERS:
            delete = libc.timer_delete
            delete.argtypes = [_P]
            for timer in timers:
                delete(timer)
            return None
        return (event, timers)

    def _thread(self) -> Any:
        thread = threading.Thread(target=self._run, name="wasm-import epoch ticker", daemon=True)
        thread.start()
        return thread

    @classmethod
    def _run(cls) -> None:
        increment = ctypes.PYFUNCTYPE(None, _P)(cls._increment_address())
        engine = _engine()
        sleep = time.sleep
        while True:
            sleep(TICK)
            increment(engine)

    def after_fork(self) -> None:
        """Timers and threads do not survive fork(): the child starts its own."""
        self._running = False
        self._lock = threading.Lock()
        self._keep = None


class _SigEvent(ctypes.Structure):
    """Linux `struct sigevent` (64 bytes) with the SIGEV_THREAD members."""

    _fields_ = [("value", _P), ("signo", ctypes.c_int), ("notify", ctypes.c_int), ("function", _P),
                ("attribute", _P), ("_pad", ctypes.c_byte * 32)]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("interval", _TimeSpec), ("value", _TimeSpec)]


_SIGEV_THREAD = 2
_TIMERS = 10
_CLOCK_MONOTONIC = 1
_ticker = _Ticker()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ticker.after_fork)


# SIGINT: see the module docstring. The handler is ours only while it is installed; if
# someone replaces it later, their handler runs as Python runs it.
_deferred_signal: List[Tuple[int, Any]] = []
_previous_handler: List[Any] = []
# The Python functions wasmtime enters through ctypes, and those they call outside a try.
# A handler that raised at one of their instructions would escape ctypes (printed, lost,
# and the C return value left undefined), so a signal landing there is deferred to the body.
_ENTRY_CODES = frozenset({_trampoline_py.__code__, _deadline_py.__code__, _new_trap.__code__,
                          _new_error.__code__})


def _sigint(signum: int, frame: Any) -> None:
    if frame is not None and frame.f_code in _ENTRY_CODES:
        _deferred_signal.append((signum, frame))  # handled in the callback body, see below
        return
    _call_previous(signum, frame)


def _call_previous(signum: int, frame: Any) -> None:
    previous = _previous_handler[0] if _previous_handler else signal.default_int_handler
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        raise KeyboardInterrupt
    # SIG_IGN: nothing


def _run_deferred_signal() -> None:
    while _deferred_signal:
        signum, frame = _deferred_signal.pop(0)
        _call_previous(signum, frame)


_handler_installed = [False]


def _install_sigint_handler() -> None:
    """Install `_sigint` (once, from the main thread) in front of the current handler."""
    if _handler_installed[0] or threading.get_ident() != _MAIN_THREAD:
        return
    try:
        current = signal.getsignal(signal.SIGINT)
        if current is None or current == signal.SIG_IGN:
            _handler_installed[0] = True  # nobody wants SIGINT here; leave it alone
            return
        _previous_handler[:] = [current]
        signal.signal(signal.SIGINT, _sigint)
        _handler_installed[0] = True
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        _handler_installed[0] = True


# A timed store's deadline callback is C (see `_native_timeout_address`), so a SIGINT that
# arrives while the main thread runs a timed call cannot be seen by Python until the call
# ends. When nobody else uses `signal.set_wakeup_fd`, a watcher thread reads it and, on
# SIGINT (and only if SIGINT would raise KeyboardInterrupt), advances the epoch to that
# call's deadline: wasmtime stops the guest, and Python's handler raises as the call
# returns. Timed calls in other threads may stop early too then (their deadline passes).
_main_timed: List[Store] = []


class _SigintWatcher:
    def __init__(self) -> None:
        self._started = False

    def start(self) -> None:
        if self._started or threading.get_ident() != _MAIN_THREAD:
            return
        self._started = True
        try:
            read_fd, write_fd = os.pipe()
            os.set_blocking(write_fd, False)
            previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except (ValueError, OSError, AttributeError):
            return
        if previous != -1:  # someone else's (asyncio...): leave it to them
            signal.set_wakeup_fd(previous)
            os.close(read_fd)
            os.close(write_fd)
            return
        threading.Thread(target=self._run, args=(read_fd,), name="wasm-import SIGINT watcher",
                         daemon=True).start()

    @staticmethod
    def _run(read_fd: int) -> None:
        increment = ctypes.PYFUNCTYPE(None, _P)(_Ticker._increment_address())
        engine = _engine()
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if int(signal.SIGINT) not in data or not _main_timed:
                continue
            previous = _previous_handler[0] if _previous_handler else None
            if signal.getsignal(signal.SIGINT) is not _sigint or previous is not signal.default_int_handler:
                continue  # SIGINT does not raise KeyboardInterrupt here: let the call run on
            store = _main_timed[0]
            deadline = store._deadline
            if deadline is None:
                continue
            for _ in range(_ticks(max(0.0, deadline - time.monotonic())) + 2):
                increment(engine)


_sigint_watcher = _SigintWatcher()
