"""Compiled components for the core runtime: a plan plus the compiled core modules.

    data ──build_plan──► ComponentPlan ─┐
         ──CoreModule.compile (each)────┴─► CompiledComponent ──serialize──► bytes (the cache)

A `CompiledComponent` is what every instance of one component shares: the plan of how
its core modules are wired (`_plan`), each core module compiled by wasmtime, and what an
instantiation would otherwise ask wasmtime about every time (`host_types`: the function
type each module declares for the imports the host provides; each module's memory
exports). It is made once per component and cached by `wasm_import.bindings._cache`
like the old engine's code. Its bytes put the largest module's compiled code at byte 0, so that
wasmtime can map that one straight from the cache file (`CoreModule.deserialize_file`;
a componentize-py guest's libpython is 24 of its 40 MB, and a copy costs ~1 ms per MB):

    [largest module's code (an ELF file)][pad to 16][head][other modules' code, each 16-aligned][meta]
    head, little-endian: magic "WICR" | u32 format | u64 meta offset | u64 meta length
    meta: pickle of (the plan, pickled apart, host_types, memory exports per module,
          (offset, length) per module)

The head follows the ELF code, whose length its own header gives (section headers come
last: e_shoff + e_shnum * e_shentsize); should a wasmtime ever write it otherwise,
`serialize` puts the head at byte 0 instead and every module is copied on load. The other
modules are copied in by wasmtime from a private map of the file in a background thread
(`_Loading`): a warm import does not wait for them, the first instantiation does. The cache
checks its own checksum trailer before any of this is read; the meta is still read by an
unpickler that admits only the plan's and the WIT model's classes, and wasmtime gets each
module back only through `CoreModule.deserialize_at`/`deserialize_file`.
"""

from __future__ import annotations

import ctypes
import io
import mmap
import pickle
import struct
import threading
import zlib
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple, Union

from .._errors import DecodeError
from ._wasmtime import CoreModule, FuncType, engine_fingerprint

if TYPE_CHECKING:  # the plan's module loads when a plan is first needed, not with a warm import
    from . import _plan

__all__ = ["CompiledComponent", "compile_component", "deserialize", "deserialize_file", "fingerprint"]

_MAGIC = b"WICR"
_FORMAT = 3
_HEAD = struct.Struct("<4sIQQ")
_ELF_MAGIC = b"\x7fELF"
_ELF64_SECTIONS = struct.Struct("<Q")  # e_shoff at 0x28; e_shentsize, e_shnum at 0x3A
_ELF64_SECTION_COUNT = struct.Struct("<HH")
_ALIGN = 16

HostTypes = Tuple[Optional[Tuple[Optional[FuncType], ...]], ...]
Wiring = Tuple[Optional[Tuple[Tuple[Any, ...], ...]], ...]


class CompiledComponent:
    """A component's plan and compiled core modules, shared by all its instances.

    `host_types[i]`, for each `plan.instances[i]` that instantiates a module: per import,
    the function type the module declares when the import is made by the host (a
    `Lowered` or `Intrinsic` reference), else None. Computed once, at compile time.

    Read from the cache, the plan stays pickled until the first instantiation needs it:
    an import only needs the WIT world, and unpickling the plan means loading the plan's
    classes, a quarter of a warm import's time."""

    __slots__ = ("_plan", "_plan_bytes", "_modules", "_loading", "host_types", "_wiring", "__weakref__")

    def __init__(self, plan: Union["_plan.ComponentPlan", bytes], modules: Union[Sequence[CoreModule], "_Loading"],
                 host_types: Optional[HostTypes] = None) -> None:
        self._plan: Optional[_plan.ComponentPlan] = None
        self._plan_bytes: Optional[bytes] = None
        if isinstance(plan, bytes):
            self._plan_bytes = plan
        else:
            self._plan = plan
        self._loading: Optional[_Loading] = None
        self._modules: Tuple[CoreModule, ...] = ()
        if isinstance(modules, _Loading):
            self._loading = modules
        else:
            self._modules = tuple(modules)
        self.host_types = host_types if host_types is not None else _host_types(self.plan, self.modules)
        self._wiring: Optional[Wiring] = None

    @property
    def plan(self) -> "_plan.ComponentPlan":
        if self._plan is None:
            from . import _plan

            try:
                plan = _MetaUnpickler(io.BytesIO(self._plan_bytes or b"")).load()
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
                raise DecodeError(f"compiled component is damaged: {e}") from None
            if not isinstance(plan, _plan.ComponentPlan) or len(plan.instances) != len(self.host_types):
                raise DecodeError("compiled component holds no plan")
            self._plan, self._plan_bytes = plan, None
        return self._plan

    @property
    def modules(self) -> Tuple[CoreModule, ...]:
        """The compiled core modules, in plan order (waiting for those still being
        loaded, see `_Loading`)."""
        loading = self._loading
        if loading is not None:
            self._modules = loading.wait()
            self._loading = None
        return self._modules

    def wiring(self) -> "Wiring":
        """Per `plan.instances` entry: None for a bag of exports, else per import of the
        module either `(instance, name)`, export `name` (UTF-8) of the core instance
        `plan.instances[instance]` (bags looked through), or `(-1, ref, functype)` for an
        item the host makes (a `Lowered` or `Intrinsic` ref, typed as the module declares).
        Worked out once per component, so an instantiation only follows it."""
        if self._wiring is None:
            from . import _plan

            instances = self.plan.instances
            wiring: List[Optional[Tuple[Any, ...]]] = []
            for step, types in zip(instances, self.host_types):
                if types is None or isinstance(step, _plan.Bag):  # (a Bag has no host types)
                    wiring.append(None)
                    continue
                wires: List[Any] = []
                for ref, functype in zip(step.args, types):
                    while isinstance(ref, _plan.CoreExport) and isinstance(instances[ref.instance], _plan.Bag):
                        ref = instances[ref.instance].exports[ref.name]  # type: ignore[union-attr]
                    if isinstance(ref, _plan.CoreExport):
                        wires.append((ref.instance, ref.name.encode()))
                    else:
                        wires.append((-1, ref, functype))
                wiring.append(tuple(wires))
            self._wiring = tuple(wiring)
        return self._wiring

    def serialize(self) -> bytes:
        codes = [module.serialize() for module in self.modules]
        first = max(range(len(codes)), key=lambda i: len(codes[i])) if codes else None
        out = io.BytesIO()
        if first is not None and _elf_length(codes[first]) == len(codes[first]):
            out.write(codes[first])
            _pad(out)
        else:
            first = None
        head_at = out.tell()
        out.write(_HEAD.pack(_MAGIC, _FORMAT, 0, 0))
        table: List[Tuple[int, int]] = []
        for i, code in enumerate(codes):
            if i == first:
                table.append((0, len(code)))
                continue
            _pad(out)
            table.append((out.tell(), len(code)))
            out.write(code)
        plan = pickle.dumps(self.plan, protocol=pickle.HIGHEST_PROTOCOL)
        meta = pickle.dumps((plan, self.host_types, tuple(m.memory_exports for m in self.modules),
                             tuple(table)), protocol=pickle.HIGHEST_PROTOCOL)
        meta_at = out.tell()
        out.write(meta)
        out.seek(head_at)
        out.write(_HEAD.pack(_MAGIC, _FORMAT, meta_at, len(meta)))
        return out.getvalue()


def _pad(out: io.BytesIO) -> None:
    out.write(b"\0" * (-out.tell() % _ALIGN))


def _elf_length(code: Union[bytes, memoryview, mmap.mmap]) -> int:
    """The length of the 64-bit ELF file at the start of `code` (its section header
    table is its end), or -1 when `code` does not start with one."""
    if len(code) < 64 or bytes(code[:4]) != _ELF_MAGIC or code[4] != 2:
        return -1
    (shoff,) = _ELF64_SECTIONS.unpack_from(code, 0x28)
    shentsize, shnum = _ELF64_SECTION_COUNT.unpack_from(code, 0x3A)
    return int(shoff + shentsize * shnum)


def _host_types(plan: "_plan.ComponentPlan", modules: Sequence[CoreModule]) -> HostTypes:
    from . import _plan

    out: List[Optional[Tuple[Optional[FuncType], ...]]] = []
    for step in plan.instances:
        if isinstance(step, _plan.Bag):
            out.append(None)
            continue
        imports = modules[step.module].imports
        out.append(tuple(_host_functype(imports, i, ref) for i, ref in enumerate(step.args)))
    return tuple(out)


def _host_functype(imports: Sequence[Any], i: int, ref: Any) -> Optional[FuncType]:
    """The type of import `i` if it is a function the host (not another core instance) gives."""
    from . import _plan

    if i >= len(imports) or isinstance(ref, _plan.CoreExport):
        return None
    found = imports[i].type
    return found if isinstance(found, FuncType) else None


def compile_component(data: Union[bytes, bytearray, memoryview], *, where: str = "<bytes>",
                      world: Any = None) -> CompiledComponent:
    """Plan `data` and compile its core modules. Raises DecodeError for bad input.
    `world`: its WIT world, when the caller decoded it already."""
    from . import _plan

    view = memoryview(data)
    plan = _plan.build_plan(bytes(view) if not isinstance(data, bytes) else data, world)
    modules: List[CoreModule] = []
    for i, (start, end) in enumerate(plan.modules):
        modules.append(CoreModule.compile(view[start:end], where=f"{where}: core module {i} "
                                          f"(bytes {start:#x}..{end:#x})"))
    return CompiledComponent(plan, modules)


class _Loading:
    """Core modules that wasmtime is copying in, in a background thread.

    wasmtime copies a module's code into memory of its own (`CoreModule.deserialize_at`:
    ~1 ms per MB, page faults mostly) and lets go of the GIL meanwhile, so a warm import
    returns while the copies go on beside the bindings being built; the first
    instantiation waits for the rest (`wait`). `release` (closing the map the bytes
    come from) runs once they are all copied."""

    def __init__(self, ready: List[Optional[CoreModule]], jobs: List["_Job"], release: Callable[[], None]) -> None:
        self._ready = ready
        self._jobs = jobs
        self._release = release
        self._released = False
        self._error: Optional[BaseException] = None
        if not jobs:
            self._thread: Optional[threading.Thread] = None
            self._run()
            return
        self._thread = threading.Thread(
            target=self._run, name="wasm-import: loading core modules", daemon=False)
        try:
            self._thread.start()
        except RuntimeError:  # no thread to be had: copy them now
            self._thread = None
            self._run()

    def _run(self) -> None:
        try:
            while True:
                try:
                    index, address, length, memory_exports = self._jobs.pop()  # atomic: no lock
                except IndexError:
                    break
                self._ready[index] = CoreModule.deserialize_at(address, length, memory_exports)
        except BaseException as e:  # noqa: BLE001  handed to whoever waits for the modules
            self._error = e
            del self._jobs[:]
        finally:
            if not self._jobs and not self._released:
                self._released = True
                self._release()

    def wait(self) -> Tuple[CoreModule, ...]:
        if self._thread is not None:
            self._thread.join()
        if self._jobs:  # the thread is gone (the process forked): finish here
            self._run()
        if self._error is not None:
            raise DecodeError(f"wasmtime could not load a compiled core module: {self._error}") from None
        return tuple(m for m in self._ready if m is not None)


_Job = Tuple[int, int, int, Tuple[str, ...]]  # module index, address, length, memory exports


def _read(view: memoryview, base: int, path: Optional[str]
          ) -> Tuple[bytes, HostTypes, List[Optional[CoreModule]], List[_Job]]:
    """The component in `view` (the payload, maybe followed by the cache's own bytes),
    whose first byte is at address `base`; `path`: the file it is mapped from, if any.
    Returns the plan (still pickled), the host types, the modules loaded already (the one mapped from
    `path`) and the jobs of copying in the others."""
    try:
        elf_end = _elf_length(view)
        head_at = 0 if elf_end < 0 else elf_end + (-elf_end % _ALIGN)
        magic, version, meta_at, meta_length = _HEAD.unpack_from(view, head_at)
        if magic != _MAGIC or version != _FORMAT:
            raise DecodeError("not a compiled component of this runtime's format")
        if meta_at + meta_length > len(view):
            raise DecodeError("compiled component is truncated")
        with view[meta_at:meta_at + meta_length] as meta:
            plan, host_types, memories, table = _MetaUnpickler(io.BytesIO(meta)).load()
    except (struct.error, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DecodeError(f"compiled component is damaged: {e}") from None
    if not isinstance(plan, bytes) or len(table) != len(memories):
        raise DecodeError("compiled component holds no plan")
    ready: List[Optional[CoreModule]] = [None] * len(table)
    jobs: List[_Job] = []
    for index, ((offset, length), memory_exports) in enumerate(zip(table, memories)):
        if offset + length > len(view):
            raise DecodeError("compiled component is truncated")
        if offset == 0 and path is not None:  # mapped by wasmtime, no copy: now
            ready[index] = CoreModule.deserialize_file(path, memory_exports)
        else:
            jobs.append((index, base + offset, length, memory_exports))
    jobs.sort(key=lambda job: job[2])  # popped from the end: the largest first
    return plan, host_types, ready, jobs


def deserialize(data: Union[bytes, memoryview]) -> CompiledComponent:
    """Read back what `CompiledComponent.serialize` wrote, in this same engine. The bytes
    must have been validated (the cache checks a checksum trailer first)."""
    raw = data if isinstance(data, bytes) else bytes(data)
    plan, host_types, ready, jobs = _read(memoryview(raw), ctypes.cast(ctypes.c_char_p(raw), ctypes.c_void_p).value
                                          or 0, None)

    def release() -> None:  # the jobs point into `raw`: this keeps it alive until they are done
        del raw_alive[:]

    raw_alive = [raw]
    return CompiledComponent(plan, _Loading(ready, jobs, release), host_types)


def deserialize_file(path: str) -> CompiledComponent:
    """Like `deserialize`, for a file that starts with those bytes (the cache's own
    follow): the largest module is mapped by wasmtime, the others copied by wasmtime
    from a private map of the file; nothing passes through Python objects."""
    f = open(path, "rb")
    try:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    except BaseException:
        f.close()
        raise
    array: Any = (ctypes.c_char * len(mapped)).from_buffer(mapped)
    base = ctypes.addressof(array)

    def release() -> None:
        nonlocal array
        array = None
        mapped.close()
        f.close()

    try:
        with memoryview(mapped) as view:
            plan, host_types, ready, jobs = _read(view, base, path)
    except BaseException:
        release()
        raise
    return CompiledComponent(plan, _Loading(ready, jobs, release), host_types)


def fingerprint() -> str:
    """Identifies this runtime's compiled format (for cache keys), short enough to be
    stored whole: wasmtime's version and a checksum of the engine's settings."""
    full = engine_fingerprint()
    return f"core{_FORMAT};{full.split(';', 1)[0]};cfg-{zlib.crc32(full.encode()):08x}"


_ALLOWED = {"wasm_import.runtime._plan": None, "wasm_import.wit._model": None, "builtins": None,
            "collections": None, "enum": None, "wasm_import.runtime._wasmtime": frozenset({"FuncType"})}
_BUILTINS = (dict, list, tuple, set, frozenset, bool, int, str, bytes, float, type(None))


class _MetaUnpickler(pickle.Unpickler):
    """Admits only the plan's and the WIT model's classes, core function types (and
    plain containers)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _ALLOWED and not name.startswith("_"):
            names = _ALLOWED[module]
            if names is None or name in names:
                found = super().find_class(module, name)
                if module != "builtins" or found in _BUILTINS:
                    return found
        raise pickle.UnpicklingError(f"a compiled component may not name {module}.{name}")
