"""Where WIT values sit in linear memory and in flat core values (the canonical ABI's layout).

Follows the spec's `design/mvp/canonical-abi/definitions.py` (32-bit memories):

    despecialize   tuple -> record, enum/option/result -> variant, map -> list of tuples
    alignment, size (the spec's `elem_size`), flat (the spec's `flatten_type`)
    flatten_functype   MAX_FLAT_PARAMS = 16, MAX_FLAT_RESULTS = 1: beyond them, values go
                       through memory and a pointer travels instead

One `match` over WIT type kinds lives in `despecialize`; everything else works on the few
despecialized shapes it returns. Layouts are computed once per type and cached, since a
converter is built from them once and a call never asks again.

Flags with more than 32 members (allowed by older versions of the spec and by our WIT
model) take one i32 per 32 flags, as the spec used to say.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

from ..wit import _model as w

__all__ = [
    "MAX_FLAT_PARAMS", "MAX_FLAT_RESULTS", "MAX_FLAT_ASYNC_PARAMS", "flatten_async_functype", "PrimShape", "ListShape", "RecordShape", "VariantShape",
    "FlagsShape", "HandleShape", "AsyncShape", "Shape", "Layout", "FlatSignature",
    "despecialize", "layout", "alignment", "size", "flatten", "align_to", "discriminant_size",
    "join", "flatten_functype", "flags_words",
]

MAX_FLAT_PARAMS = 16
MAX_FLAT_RESULTS = 1


# -- despecialized shapes ---------------------------------------------------------------------

@dataclass(frozen=True)
class PrimShape:
    """bool, integers, floats, char, string, error-context."""
    prim: w.Primitive


@dataclass(frozen=True)
class ListShape:
    """list<T> (length None) and list<T, N>; map<K, V> is list<tuple<K, V>>."""
    element: w.Type
    length: Optional[int]


@dataclass(frozen=True)
class RecordShape:
    """record and tuple: fields in order."""
    fields: Tuple[w.Type, ...]


@dataclass(frozen=True)
class VariantShape:
    """variant, enum, option (none, some), result (ok, error): one optional payload per case."""
    cases: Tuple[Optional[w.Type], ...]


@dataclass(frozen=True)
class FlagsShape:
    count: int


@dataclass(frozen=True)
class HandleShape:
    """own<R> / borrow<R>: an i32 handle index. `resource` is the resource's TypeDef (unaliased)."""
    resource: w.TypeDef
    borrow: bool


@dataclass(frozen=True)
class AsyncShape:
    """future<T> / stream<T>: an i32 handle (laid out, not yet converted by the sync ABI)."""
    kind: str
    element: Optional[w.Type]


Shape = Union[PrimShape, ListShape, RecordShape, VariantShape, FlagsShape, HandleShape, AsyncShape]


def despecialize(ty: w.Type) -> Shape:
    """The spec's `despecialize`, from our WIT model to the shapes the ABI lays out."""
    ty = w.unalias(ty)
    if isinstance(ty, w.Primitive):
        return PrimShape(ty)
    kind = ty.kind
    match kind:
        case w.Record(fields=fields):
            return RecordShape(tuple(f.type for f in fields))
        case w.Tuple(types=types):
            return RecordShape(tuple(types))
        case w.Variant(cases=cases):
            return VariantShape(tuple(c.type for c in cases))
        case w.Enum(cases=cases):
            return VariantShape((None,) * len(cases))
        case w.Option(type=payload):
            return VariantShape((None, payload))
        case w.Result(ok=ok, err=err):
            return VariantShape((ok, err))
        case w.Flags(flags=flags):
            return FlagsShape(len(flags))
        case w.List(element=element):
            return ListShape(element, None)
        case w.FixedList(element=element, size=length):
            return ListShape(element, length)
        case w.Map(key=key, value=value):
            return ListShape(w.TypeDef(w.Tuple((key, value))), None)
        case w.Own(resource=resource) | w.Borrow(resource=resource):
            target = w.unalias(resource)
            assert isinstance(target, w.TypeDef)
            return HandleShape(target, isinstance(kind, w.Borrow))
        case w.Future(type=element):
            return AsyncShape("future", element)
        case w.Stream(type=element):
            return AsyncShape("stream", element)
        case w.Resource():
            raise TypeError(f"resource type {ty.name!r} is not a value type (use own<> or borrow<>)")
        case _:  # w.Alias was followed above
            raise TypeError(f"unknown WIT type kind {type(kind).__name__}")


# -- sizes, alignments and flat types ----------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """How one type sits in memory (`size` bytes at `align`) and as flat core values."""
    size: int
    align: int
    flat: Tuple[str, ...]


def align_to(ptr: int, alignment: int) -> int:
    return -(-ptr // alignment) * alignment


def discriminant_size(count: int) -> int:
    """Bytes of a variant's case index: u8 up to 256 cases, u16 up to 65536, else u32."""
    if count <= 1 << 8:
        return 1
    if count <= 1 << 16:
        return 2
    return 4


def flags_words(count: int) -> Tuple[int, int]:
    """(byte size, number of i32 flat values) of `count` flags."""
    if count == 0:
        return 0, 0
    if count <= 8:
        return 1, 1
    if count <= 16:
        return 2, 1
    n = -(-count // 32)
    return 4 * n, n


def join(a: str, b: str) -> str:
    """The flat type that holds either of two payload flat types (the spec's `join`)."""
    if a == b:
        return a
    if {a, b} == {"i32", "f32"}:
        return "i32"
    return "i64"


_PRIM_LAYOUTS: Dict[w.Primitive, Layout] = {
    w.Primitive.BOOL: Layout(1, 1, ("i32",)),
    w.Primitive.U8: Layout(1, 1, ("i32",)), w.Primitive.S8: Layout(1, 1, ("i32",)),
    w.Primitive.U16: Layout(2, 2, ("i32",)), w.Primitive.S16: Layout(2, 2, ("i32",)),
    w.Primitive.U32: Layout(4, 4, ("i32",)), w.Primitive.S32: Layout(4, 4, ("i32",)),
    w.Primitive.U64: Layout(8, 8, ("i64",)), w.Primitive.S64: Layout(8, 8, ("i64",)),
    w.Primitive.F32: Layout(4, 4, ("f32",)), w.Primitive.F64: Layout(8, 8, ("f64",)),
    w.Primitive.CHAR: Layout(4, 4, ("i32",)),
    w.Primitive.STRING: Layout(8, 4, ("i32", "i32")),
    w.Primitive.ERROR_CONTEXT: Layout(4, 4, ("i32",)),
}

_cache: Dict[w.Type, Layout] = {}
_lock = threading.Lock()


def layout(ty: w.Type) -> Layout:
    """Size, alignment and flat types of `ty` (cached)."""
    found = _cache.get(ty)
    if found is None:
        found = _compute(despecialize(ty))
        with _lock:
            _cache[ty] = found
    return found


def _compute(shape: Shape) -> Layout:
    match shape:
        case PrimShape(prim=prim):
            return _PRIM_LAYOUTS[prim]
        case ListShape(element=element, length=None):
            return Layout(8, 4, ("i32", "i32"))
        case ListShape(element=element, length=int(length)):
            el = layout(element)
            return Layout(el.size * length, el.align, el.flat * length)
        case RecordShape(fields=fields):
            offset, align, flat = 0, 1, ()  # type: Tuple[int, int, Tuple[str, ...]]
            for f in fields:
                fl = layout(f)
                offset = align_to(offset, fl.align) + fl.size
                align = max(align, fl.align)
                flat += fl.flat
            return Layout(align_to(offset, align), align, flat)
        case VariantShape(cases=cases):
            disc = discriminant_size(len(cases))
            payloads = [layout(c) for c in cases if c is not None]
            case_align = max((p.align for p in payloads), default=1)
            align = max(disc, case_align)
            size = align_to(disc, case_align) + max((p.size for p in payloads), default=0)
            joined: list = []
            for p in payloads:
                for i, ft in enumerate(p.flat):
                    if i < len(joined):
                        joined[i] = join(joined[i], ft)
                    else:
                        joined.append(ft)
            return Layout(align_to(size, align), align, ("i32", *joined))
        case FlagsShape(count=count):
            nbytes, words = flags_words(count)
            return Layout(nbytes, max(1, min(nbytes, 4)), ("i32",) * words)
        case HandleShape() | AsyncShape():
            return Layout(4, 4, ("i32",))
    raise AssertionError(shape)


def alignment(ty: w.Type) -> int:
    return layout(ty).align


def size(ty: w.Type) -> int:
    """The spec's `elem_size`."""
    return layout(ty).size


def flatten(ty: w.Type) -> Tuple[str, ...]:
    """The spec's `flatten_type`."""
    return layout(ty).flat


def payload_offset(cases: Tuple[Optional[w.Type], ...]) -> int:
    """Where a variant's payload starts, after its discriminant."""
    case_align = max((layout(c).align for c in cases if c is not None), default=1)
    return align_to(discriminant_size(len(cases)), case_align)


def field_offsets(fields: Tuple[w.Type, ...]) -> Tuple[int, ...]:
    """Where each field of a record (or tuple) starts."""
    offsets, offset = [], 0
    for f in fields:
        fl = layout(f)
        offset = align_to(offset, fl.align)
        offsets.append(offset)
        offset += fl.size
    return tuple(offsets)


# -- function signatures -----------------------------------------------------------------------

@dataclass(frozen=True)
class FlatSignature:
    """A function's core signature, and whether its params/results went through memory.

    `params_in_memory`: the flat params exceeded MAX_FLAT_PARAMS, so one i32 pointer to a
    tuple of all the params travels instead. `results_in_memory`: the flat results exceeded
    MAX_FLAT_RESULTS: for a lift, the callee returns an i32 pointer; for a lower, the caller
    passes an i32 return pointer as the last param and gets no results.
    """
    params: Tuple[str, ...]
    results: Tuple[str, ...]
    params_in_memory: bool
    results_in_memory: bool


def flatten_functype(func: w.Function, context: str) -> FlatSignature:
    """The spec's `flatten_functype` for sync functions; `context` is 'lift' or 'lower'."""
    if context not in ("lift", "lower"):
        raise ValueError(f"context must be 'lift' or 'lower', not {context!r}")
    params: Tuple[str, ...] = ()
    for p in func.params:
        params += flatten(p.type)
    results = flatten(func.result) if func.result is not None else ()
    params_in_memory = len(params) > MAX_FLAT_PARAMS
    if params_in_memory:
        params = ("i32",)
    results_in_memory = len(results) > MAX_FLAT_RESULTS
    if results_in_memory:
        if context == "lift":
            results = ("i32",)
        else:
            params += ("i32",)
            results = ()
    return FlatSignature(params, results, params_in_memory, results_in_memory)


MAX_FLAT_ASYNC_PARAMS = 4


def flatten_async_functype(func: w.Function, context: str, callback: bool = True) -> FlatSignature:
    """The spec's `flatten_functype` for an `async` canon lift or lower.

    lift: params as for sync (a pointer past MAX_FLAT_PARAMS); the result goes through
    task.return, so the core function returns only the callback code (i32), or nothing
    for a stackful lift. lower: params flat up to MAX_FLAT_ASYNC_PARAMS (else a pointer),
    then a return pointer when there is a result; the core function returns the packed
    subtask state. `results_in_memory` says a lower writes its result through that pointer.
    """
    params: Tuple[str, ...] = ()
    for p in func.params:
        params += flatten(p.type)
    has_result = func.result is not None
    if context == "lift":
        params_in_memory = len(params) > MAX_FLAT_PARAMS
        return FlatSignature(("i32",) if params_in_memory else params, ("i32",) if callback else (),
                             params_in_memory, False)
    if context != "lower":
        raise ValueError(f"context must be 'lift' or 'lower', not {context!r}")
    params_in_memory = len(params) > MAX_FLAT_ASYNC_PARAMS
    if params_in_memory:
        params = ("i32",)
    if has_result:
        params += ("i32",)
    return FlatSignature(params, ("i32",), params_in_memory, has_result)
