"""Compiled components for the core runtime: a plan plus the compiled core modules.

    data ──build_plan──► ComponentPlan ─┐
         ──CoreModule.compile (each)────┴─► CompiledComponent ──serialize──► bytes (the cache)

A `CompiledComponent` is what every instance of one component shares: the plan of how
its core modules are wired (`_plan`), and each core module compiled by wasmtime. It is
made once per component and cached by `wasm_import._cache` like the old engine's code;
its bytes are:

    magic "WICR" | u32 format | u32 plan length | plan (pickle) | u32 n |
    n x (u64 length | serialized core module)

The cache checks its own checksum trailer before any of this is read; the plan is still
read by an unpickler that admits only the plan's and the WIT model's classes, and wasmtime
gets each module back only through `CoreModule.deserialize`.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from typing import Any, List, Sequence, Union

from .._errors import DecodeError
from . import _plan
from ._wasmtime import CoreModule, engine_fingerprint

__all__ = ["CompiledComponent", "compile_component", "deserialize", "deserialize_file", "fingerprint"]

_MAGIC = b"WICR"
_FORMAT = 1
_HEAD = struct.Struct("<4sII")
_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")


class CompiledComponent:
    """A component's plan and compiled core modules, shared by all its instances."""

    __slots__ = ("plan", "modules", "__weakref__")

    def __init__(self, plan: "_plan.ComponentPlan", modules: Sequence[CoreModule]) -> None:
        self.plan = plan
        self.modules = tuple(modules)

    def serialize(self) -> bytes:
        plan = pickle.dumps(self.plan, protocol=pickle.HIGHEST_PROTOCOL)
        out = io.BytesIO()
        out.write(_HEAD.pack(_MAGIC, _FORMAT, len(plan)))
        out.write(plan)
        out.write(_COUNT.pack(len(self.modules)))
        for module in self.modules:
            code = module.serialize()
            out.write(_LENGTH.pack(len(code)))
            out.write(code)
        return out.getvalue()


def compile_component(data: Union[bytes, bytearray, memoryview], *, where: str = "<bytes>") -> CompiledComponent:
    """Plan `data` and compile its core modules. Raises DecodeError for bad input."""
    view = memoryview(data)
    plan = _plan.build_plan(bytes(view) if not isinstance(data, bytes) else data)
    modules: List[CoreModule] = []
    for i, (start, end) in enumerate(plan.modules):
        modules.append(CoreModule.compile(view[start:end], where=f"{where}: core module {i} "
                                          f"(bytes {start:#x}..{end:#x})"))
    return CompiledComponent(plan, modules)


def deserialize(data: Union[bytes, memoryview]) -> CompiledComponent:
    """Read back what `CompiledComponent.serialize` wrote, in this same engine. The bytes
    must have been validated (the cache checks a checksum trailer first)."""
    view = memoryview(data)
    try:
        magic, version, plan_length = _HEAD.unpack_from(view, 0)
        if magic != _MAGIC or version != _FORMAT:
            raise DecodeError("not a compiled component of this runtime's format")
        pos = _HEAD.size
        plan = _PlanUnpickler(io.BytesIO(view[pos:pos + plan_length])).load()
        pos += plan_length
        (count,) = _COUNT.unpack_from(view, pos)
        pos += _COUNT.size
        modules = []
        for _ in range(count):
            (length,) = _LENGTH.unpack_from(view, pos)
            pos += _LENGTH.size
            if pos + length > len(view):
                raise DecodeError("compiled component is truncated")
            modules.append(CoreModule.deserialize(bytes(view[pos:pos + length])))
            pos += length
    except (struct.error, pickle.UnpicklingError, EOFError) as e:
        raise DecodeError(f"compiled component is damaged: {e}") from None
    if not isinstance(plan, _plan.ComponentPlan):
        raise DecodeError("compiled component holds no plan")
    return CompiledComponent(plan, modules)


def deserialize_file(path: str) -> CompiledComponent:
    with open(path, "rb") as f:
        return deserialize(f.read())


def fingerprint() -> str:
    """Identifies this runtime's compiled format (for cache keys), short enough to be
    stored whole: wasmtime's version and a checksum of the engine's settings."""
    full = engine_fingerprint()
    return f"core{_FORMAT};{full.split(';', 1)[0]};cfg-{zlib.crc32(full.encode()):08x}"


_ALLOWED_MODULES = frozenset({"wasm_import.runtime._plan", "wasm_import._wit_model", "builtins",
                              "collections", "enum"})


class _PlanUnpickler(pickle.Unpickler):
    """Admits only the plan's and the WIT model's classes (and plain containers)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _ALLOWED_MODULES and not name.startswith("_"):
            found = super().find_class(module, name)
            if module != "builtins" or found in (dict, list, tuple, set, frozenset, bool, int, str, bytes,
                                                  float, type(None)):
                return found
        raise pickle.UnpicklingError(f"a compiled component may not name {module}.{name}")
