"""The canonical ABI (sync): Python values <-> linear memory and flat core values.

For each WIT type a `Converter` is built once per (type, resource policy) by a `Codec`
and reused on every call. A converter has four working halves, after the spec's
`store`/`load`/`lower_flat`/`lift_flat`:

    store(cx, value, ptr)      check `value`, write it at `ptr` (ptr is aligned, and the
                               caller made sure `size` bytes fit there)
    load(cx, ptr)              read the value at `ptr` (same guarantee)
    lower(cx, value, out)      check `value`, append its flat core values to the list `out`
    lift(cx, flat, i)          the value whose flat core values start at flat[i]

Checks and Python classes come from `wasm_import.types._checks` (the backend-neutral half, with
today's error texts); layouts from `_layout`.

Memory safety: memory is touched only through `cx.view`, a bounds-checked memoryview that
`CallContext.refresh` takes afresh from `Memory.view()`; `CallContext.alloc` (the only
place that runs guest code while values move) refreshes it after every realloc, and a
write reads `cx.view` at the moment it writes, so no stale view of a moved memory is ever
used. A pointer or length from the guest is checked (alignment, end within memory) before
anything is read, and a bad one is a `Trap`. A Python list is copied once and its length
read from the copy; str/bytes are encoded or copied first and memory is allocated for
exactly what was copied; an array's buffer is held (so it cannot be resized) and its byte
size read once. A lying `__len__` or another thread mutating the value cannot make a write
overrun its allocation.

Lists of numbers are `array.array`s on the Python side: one slice copy each way.

Strings: utf8, utf16 and latin1+utf16 (the spec's tagged code units, high bit = utf16).
Going into memory, Python knows the encoded size, so exactly that is allocated with one
realloc; coming out, invalid code units are a Trap.

Resources are delegated to a resource policy (see `ResourcePolicy`); `_handles` has the
handle-table rules a policy applies.
"""

from __future__ import annotations

import array
import struct
import sys
import threading
import weakref
from operator import countOf as _count_of
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from ..types import _checks as ck
from ..wit import _model as w
from .._errors import Trap
from ..types._names import snake
from ..types._pytypes import array_code, wit_type_name
from .._values import Err, host_result
from . import _layout as L
from ._handles import PASS_THROUGH, CallScope, InstanceState, resource_drop, resource_new, resource_rep

__all__ = ["CallOptions", "Options", "CallContext", "ResourcePolicy", "Converter", "Codec", "codec_for",
           "export_caller", "host_callback", "core_functype", "lift_values", "lower_values",
           "lowered_lift_callback", "resource_new", "resource_drop", "resource_rep", "PASS_THROUGH",
           "OptionsLike"]

_MASK32 = 0xFFFFFFFF
_MAX_EMPTY_ITEMS = (1 << 28) - 1  # the spec's MAX_LIST_BYTE_LENGTH, as a count where bytes cannot bound it
_MASK64 = 0xFFFFFFFFFFFFFFFF
_LITTLE = sys.byteorder == "little"
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_PAIR = struct.Struct("<II")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_I32_BITS = struct.Struct("<I")
_I64_BITS = struct.Struct("<Q")


# -- options and the call context ----------------------------------------------------------------

class CallOptions:
    """A canon lift/lower's options, resolved to live objects (built once per function per
    instance). `memory` has `.view()`; `realloc(old_ptr, old_size, align, new_size) -> ptr`;
    `post_return(*flat_results)`; `inst` is the InstanceState of the component instance the
    canon lives in (its handle table)."""

    __slots__ = ("memory", "realloc", "post_return", "string_encoding", "inst")

    def __init__(self, memory: Any = None, realloc: Optional[Callable[..., int]] = None,
                 post_return: Optional[Callable[..., Any]] = None, string_encoding: str = "utf8",
                 inst: Optional[InstanceState] = None, state: Optional[InstanceState] = None) -> None:
        if string_encoding not in ("utf8", "utf16", "latin1+utf16"):
            raise ValueError(f"unknown string encoding {string_encoding!r}")
        inst = inst if inst is not None else state
        self.memory = memory
        self.realloc = realloc
        self.post_return = post_return
        self.string_encoding = string_encoding
        self.inst = inst if inst is not None else InstanceState()


Options = CallOptions

# Options, or a function giving them on first use (a lowering may be wired before the core
# instance holding its memory exists).
OptionsLike = Any


def _lazily(build: Callable[[CallOptions], Callable[..., Any]], options: OptionsLike) -> Callable[..., Any]:
    """build(options), or, for options given as a function, a stand-in that builds on its
    first call (the options are resolved then) and forwards to what it built."""
    if isinstance(options, CallOptions):
        return build(options)
    built: List[Callable[..., Any]] = []
    lock = threading.Lock()

    def first(*args: Any) -> Any:
        if not built:
            with lock:
                if not built:
                    built.append(build(options()))
        return built[0](*args)

    return first


class CallContext:
    """What converters see during one call: the options, the borrow scope of the call, and
    the current view of memory. `exits` are callbacks run when the call ends (a resource
    policy uses them to invalidate borrowed objects)."""

    __slots__ = ("opts", "inst", "scope", "view", "exits")

    def __init__(self, opts: CallOptions, scope: Optional[CallScope] = None) -> None:
        self.opts = opts
        self.inst = opts.inst
        self.scope = scope if scope is not None else CallScope()
        self.view: Any = None
        self.exits: List[Callable[[], Any]] = []

    def refresh(self) -> memoryview:
        """Take a fresh view of memory (after anything that may have run guest code)."""
        memory = self.opts.memory
        if memory is None:
            raise Trap("this function moves strings or lists but its canonical options name no memory")
        self.view = view = memory.view()
        return view  # type: ignore[no-any-return]

    def realloc(self, old: int, old_size: int, align: int, new_size: int) -> int:
        """Call the guest's realloc; the new pointer, checked to hold `new_size` bytes."""
        realloc = self.opts.realloc
        if realloc is None:
            raise Trap("this function passes strings or lists into the guest but its canonical "
                       "options name no realloc")
        inst = self.inst
        inst.may_leave = False
        try:
            ptr = realloc(old, old_size, align, new_size)
        finally:
            inst.may_leave = True
        view = self.refresh()
        if ptr % align:
            raise Trap(f"realloc returned a misaligned pointer {ptr:#x} (alignment {align})")
        if ptr + new_size > len(view):
            raise Trap(f"realloc returned {ptr:#x} for {new_size} bytes, past the end of memory "
                       f"({len(view)} bytes)")
        return ptr  # type: ignore[no-any-return]

    def alloc(self, align: int, nbytes: int) -> int:
        if nbytes > _MASK32:
            raise ValueError(f"{nbytes} bytes do not fit in a 32-bit memory")
        return self.realloc(0, 0, align, nbytes)

    def checked_range(self, ptr: int, nbytes: int, align: int, what: str) -> None:
        """Trap unless [ptr, ptr + nbytes) lies in memory and ptr is aligned."""
        if ptr % align:
            raise Trap(f"{what}: pointer {ptr:#x} is not aligned to {align}")
        if ptr + nbytes > len(self.view):
            raise Trap(f"{what}: {nbytes} bytes at {ptr:#x} run past the end of memory "
                       f"({len(self.view)} bytes)")

    def finish(self) -> None:
        exits, self.exits = self.exits, []
        for fn in exits:
            fn()


class ResourcePolicy(Protocol):
    """How own/borrow handles become Python values and back; `typedef` is the resource's
    TypeDef (unaliased). Handles are i32 indices in `cx.inst.handles`."""

    def lift_own(self, cx: CallContext, typedef: w.TypeDef, handle: int) -> Any: ...
    def lift_borrow(self, cx: CallContext, typedef: w.TypeDef, handle: int) -> Any: ...
    def lower_own(self, cx: CallContext, typedef: w.TypeDef, value: Any) -> int: ...
    def lower_borrow(self, cx: CallContext, typedef: w.TypeDef, value: Any) -> int: ...


# -- converters -----------------------------------------------------------------------------------

Store = Callable[[CallContext, Any, int], None]
Load = Callable[[CallContext, int], Any]
Lower = Callable[[CallContext, Any, List[Any]], None]
Lift = Callable[[CallContext, Sequence[Any], int], Any]


class Converter:
    """Lift/lower/load/store for one WIT type, plus what callers precompile from:
    `size`, `align`, `flat`; for a scalar, `code` (its struct code), `check` (v -> the value
    `code` packs; raises TypeError/ValueError), `to_flat` and `from_flat` (its flat core
    value), `from_memory` (None, or a fix-up of what `code` unpacks). `allocates`: storing or
    lowering may call realloc. `prim`: the primitive, for scalars."""

    __slots__ = ("wit", "size", "align", "flat", "store", "load", "lower", "lift", "code", "check",
                 "to_flat", "from_flat", "from_memory", "allocates", "prim", "scalar_record")

    def __init__(self, ty: w.Type, store: Store, load: Load, lower: Lower, lift: Lift,
                 allocates: bool) -> None:
        lay = L.layout(ty)
        self.wit = wit_type_name(ty)
        self.size, self.align, self.flat = lay.size, lay.align, lay.flat
        self.store, self.load, self.lower, self.lift = store, load, lower, lift
        self.allocates = allocates
        self.code: Optional[str] = None
        self.check: Optional[Callable[[Any], Any]] = None
        self.to_flat: Optional[Callable[[Any], Any]] = None
        self.from_flat: Optional[Callable[[Any], Any]] = None
        self.from_memory: Optional[Callable[[Any], Any]] = None
        self.prim: Optional[w.Primitive] = None
        # for a record/tuple of scalars: (exact class or None, parts, make, where, field converters, unpack)
        self.scalar_record: Optional[Tuple[Any, ...]] = None


def _f32_round(v: float) -> float:
    """v rounded to the nearest f32, as C's (float) cast does (too large: infinity)."""
    try:
        return _F32.unpack(_F32.pack(v))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")


def _char_from(i: int) -> str:
    if i >= 0x110000 or 0xD800 <= i <= 0xDFFF:
        raise Trap(f"invalid char value {i:#x} from the guest (not a Unicode scalar value)")
    return chr(i)


def _scalar(ty: w.Primitive) -> Converter:
    """bool, integers, floats, char."""
    check: Callable[[Any], Any]
    to_flat: Callable[[Any], Any]
    from_flat: Callable[[Any], Any]
    from_memory: Optional[Callable[[Any], Any]] = None
    match ty:
        case w.Primitive.BOOL:
            check, code = ck.bool_check, "?"
            to_flat = int
            from_flat = bool
        case w.Primitive.U8 | w.Primitive.U16 | w.Primitive.U32 | w.Primitive.U64:
            check = ck.int_check(ty)
            bits = L.size(ty) * 8
            code = {8: "B", 16: "H", 32: "I", 64: "Q"}[bits]
            mask = (1 << bits) - 1
            to_flat = _identity
            from_flat = (lambda i: i & mask) if bits < 32 else _identity
        case w.Primitive.S8 | w.Primitive.S16 | w.Primitive.S32 | w.Primitive.S64:
            check = ck.int_check(ty)
            bits = L.size(ty) * 8
            code = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
            core_mask = _MASK64 if bits == 64 else _MASK32
            mask, sign = (1 << bits) - 1, 1 << (bits - 1)
            to_flat = lambda v: v & core_mask  # noqa: E731
            from_flat = lambda i: ((i & mask) ^ sign) - sign  # noqa: E731
        case w.Primitive.F32:
            base = ck.float_check(ty)
            check = lambda v: _f32_round(base(v))  # noqa: E731
            code, to_flat, from_flat = "f", _identity, float
        case w.Primitive.F64:
            check, code, to_flat, from_flat = ck.float_check(ty), "d", _identity, float
        case w.Primitive.CHAR:
            check, code, to_flat = ck.char_check, "I", _identity
            from_flat = from_memory = _char_from
        case _:
            raise AssertionError(ty)
    st = struct.Struct("<" + code)
    pack, unpack = st.pack_into, st.unpack_from

    def store(cx: CallContext, v: Any, ptr: int) -> None:
        pack(cx.view, ptr, check(v))

    if from_memory is None:
        def load(cx: CallContext, ptr: int) -> Any:
            return unpack(cx.view, ptr)[0]
    else:
        fix = from_memory

        def load(cx: CallContext, ptr: int) -> Any:
            return fix(unpack(cx.view, ptr)[0])

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        out.append(to_flat(check(v)))

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> Any:
        return from_flat(flat[i])

    conv = Converter(ty, store, load, lower, lift, allocates=False)
    conv.code, conv.check, conv.to_flat, conv.from_flat = code, check, to_flat, from_flat
    conv.from_memory, conv.prim = from_memory, ty
    return conv


def _identity(v: Any) -> Any:
    return v


# -- ranges: strings and lists live at (ptr, length) -------------------------------------------------

def _ranged(ty: w.Type, store_range: Callable[[CallContext, Any], Tuple[int, int]],
            load_range: Callable[[CallContext, int, int], Any]) -> Converter:
    """A converter for a value stored elsewhere and referred to by (ptr, length)."""

    def store(cx: CallContext, v: Any, ptr: int) -> None:
        begin, n = store_range(cx, v)
        _PAIR.pack_into(cx.view, ptr, begin, n)

    def load(cx: CallContext, ptr: int) -> Any:
        begin, n = _PAIR.unpack_from(cx.view, ptr)
        return load_range(cx, begin, n)

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        out.extend(store_range(cx, v))

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> Any:
        return load_range(cx, flat[i], flat[i + 1])

    return Converter(ty, store, load, lower, lift, allocates=True)


def _encoder(encoding: str) -> Callable[[str], Tuple[bytes, int, int]]:
    """encode(s) -> (bytes, code units as the guest counts them, alignment)."""
    tag = 1 << 31

    def utf8(s: str) -> Tuple[bytes, int, int]:
        data = str.encode(s, "utf-8")
        return data, len(data), 1

    def utf16(s: str) -> Tuple[bytes, int, int]:
        data = str.encode(s, "utf-16-le")
        return data, len(data) >> 1, 2

    def latin1_or_utf16(s: str) -> Tuple[bytes, int, int]:
        try:
            data = str.encode(s, "latin-1")
        except UnicodeEncodeError:
            data = str.encode(s, "utf-16-le")
            return data, (len(data) >> 1) | tag, 2
        return data, len(data), 2

    return {"utf8": utf8, "utf16": utf16, "latin1+utf16": latin1_or_utf16}[encoding]


def _string(encoding: str) -> Converter:
    check = ck.str_check
    encode = _encoder(encoding)
    tag = 1 << 31

    def store_range(cx: CallContext, v: Any) -> Tuple[int, int]:
        try:
            data, units, align = encode(check(v))
        except UnicodeEncodeError as e:
            raise ck.encode_error(e) from None
        n = len(data)
        ptr = cx.alloc(align, n)
        cx.view[ptr:ptr + n] = data
        return ptr, units

    def load_range(cx: CallContext, ptr: int, units: int) -> str:
        if encoding == "utf16" or (encoding != "utf8" and units & tag):
            return _load_utf16(cx, ptr, units & ~tag if encoding != "utf16" else units)
        if ptr + units > len(cx.view):
            raise Trap(f"string pointer/length out of bounds of memory: {units} bytes at {ptr:#x} run past "
                       f"the end of memory ({len(cx.view)} bytes)")
        if encoding == "utf8":
            try:
                return str(cx.view[ptr:ptr + units], "utf-8")
            except UnicodeDecodeError as e:
                raise Trap(f"invalid utf-8 in a string from the guest (byte {e.start} of the "
                           f"{units} at {ptr:#x})") from None
        if ptr & 1:
            raise Trap(f"string pointer {ptr:#x} is not aligned to 2")
        return str(cx.view[ptr:ptr + units], "latin-1")

    return _ranged(w.Primitive.STRING, store_range, load_range)


def _load_utf16(cx: CallContext, ptr: int, units: int) -> str:
    n = 2 * units
    if ptr & 1:
        raise Trap(f"string pointer {ptr:#x} is not aligned to 2")
    if ptr + n > len(cx.view):
        raise Trap(f"string of {units} utf-16 code units at {ptr:#x} runs past the end of memory "
                   f"({len(cx.view)} bytes)")
    try:
        return str(cx.view[ptr:ptr + n], "utf-16-le")
    except UnicodeDecodeError:
        raise Trap(f"invalid utf-16 in a string from the guest ({units} code units at {ptr:#x})") from None


def _checked_list_range(cx: CallContext, ptr: int, n: int, size: int, align: int, wit: str) -> int:
    nbytes = n * size
    if not size and n > _MAX_EMPTY_ITEMS:  # nothing in memory bounds a list of empty values
        raise Trap(f"{wit} of {n} empty elements is longer than the spec allows")
    if ptr % align:
        raise Trap(f"{wit} at {ptr:#x} is not aligned to {align}")
    if ptr + nbytes > len(cx.view):
        raise Trap(f"list pointer/length out of bounds of memory: {wit} of {n} elements at {ptr:#x} runs past "
                   f"the end of memory ({len(cx.view)} bytes)")
    return nbytes


def _bytes_list(ty: w.Type) -> Converter:
    """list<u8> as bytes: one slice copy each way."""
    wit = wit_type_name(ty)
    check = ck.bytes_check(wit)

    def store_range(cx: CallContext, v: Any) -> Tuple[int, int]:
        data = check(v)
        n = len(data)
        ptr = cx.alloc(1, n)
        cx.view[ptr:ptr + n] = data
        return ptr, n

    def load_range(cx: CallContext, ptr: int, n: int) -> bytes:
        if ptr + n > len(cx.view):
            raise Trap(f"list pointer/length out of bounds of memory: {wit} of {n} bytes at {ptr:#x} runs past "
                       f"the end of memory ({len(cx.view)} bytes)")
        return cx.view[ptr:ptr + n].tobytes()

    return _ranged(ty, store_range, load_range)


def _list(ty: w.Type, el: Converter) -> Converter:
    """list<T> (T not u8): a list of numbers in bulk, as an `array.array`; anything else
    element by element, as a list."""
    wit = wit_type_name(ty)
    assert isinstance(ty, w.TypeDef) and isinstance(ty.kind, w.List)
    code = array_code(ty.kind.element)
    if code is not None:
        return _numbers_list(ty, el, code)
    check = ck.list_check(wit)
    size, align = el.size, el.align
    el_store, el_load = el.store, el.load

    def store_range(cx: CallContext, v: Any) -> Tuple[int, int]:
        items = check(v)
        n = len(items)
        ptr = cx.alloc(align, n * size)
        for i, item in enumerate(items):
            try:
                el_store(cx, item, ptr + i * size)
            except (TypeError, ValueError) as e:
                raise ck.prefixed(f"item {i}", e) from None
        return ptr, n

    def load_range(cx: CallContext, ptr: int, n: int) -> List[Any]:
        _checked_list_range(cx, ptr, n, size, align, wit)
        return [el_load(cx, ptr + i * size) for i in range(n)]

    return _ranged(ty, store_range, load_range)


def _numbers_list(ty: w.Type, el: Converter, code: str) -> Converter:
    """list<number> <-> array.array(code): one slice copy each way (plus a byte swap on a
    big-endian host). A list or tuple going in is checked in bulk: `array` range-checks the
    items, and a C-level count of their exact types refuses `bool` (an `int` subclass)."""
    wit = wit_type_name(ty)
    check = ck.numbers_check(wit, code)
    size, align = el.size, el.align
    el_check = el.check
    assert el_check is not None and size == array.array(code).itemsize
    exact = float if code in "fd" else int

    def from_items(items: List[Any]) -> "array.array[Any]":
        if _count_of(map(type, items), exact) == len(items):  # type objects compared by identity, in C
            try:
                return array.array(code, items)
            except (OverflowError, TypeError):
                pass
        checked = []  # subclasses, bad items: one by one (for the message)
        for i, item in enumerate(items):
            try:
                checked.append(el_check(item))
            except (TypeError, ValueError) as e:
                raise ck.prefixed(f"item {i}", e) from None
        return array.array(code, checked)

    def store_range(cx: CallContext, v: Any) -> Tuple[int, int]:
        data = check(v)
        if data.__class__ is list:
            data = memoryview(from_items(data)).cast("B")
        assert isinstance(data, memoryview)
        with data:  # the user's buffer is held (cannot be resized) until it is copied, then let go
            if not _LITTLE:
                swapped = array.array(code, data.tobytes())
                swapped.byteswap()
                data = memoryview(swapped).cast("B")
            nbytes = data.nbytes
            ptr = cx.alloc(align, nbytes)
            cx.view[ptr:ptr + nbytes] = data
        return ptr, nbytes // size

    def load_range(cx: CallContext, ptr: int, n: int) -> "array.array[Any]":
        nbytes = _checked_list_range(cx, ptr, n, size, align, wit)
        out = array.array(code)
        out.frombytes(cx.view[ptr:ptr + nbytes])
        if not _LITTLE:
            out.byteswap()
        return out

    return _ranged(ty, store_range, load_range)


def _map(ty: w.Type, pairs: Converter) -> Converter:
    """map<K, V> as a dict, laid out as list<tuple<K, V>> (the spec's despecialization)."""
    expected = f"{wit_type_name(ty)} (a dict)"

    def items(v: Any) -> List[Any]:
        if not isinstance(v, dict):
            raise ck.wrong(expected, v)
        return list(dict.items(v))

    def store(cx: CallContext, v: Any, ptr: int) -> None:
        pairs.store(cx, items(v), ptr)

    def load(cx: CallContext, ptr: int) -> Any:
        return dict(pairs.load(cx, ptr))

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        pairs.lower(cx, items(v), out)

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> Any:
        return dict(pairs.lift(cx, flat, i))

    return Converter(ty, store, load, lower, lift, allocates=True)


def _fixed_list(ty: w.Type, el: Converter, length: int) -> Converter:
    """list<T, N>: N elements in place, N times T's flat values."""
    wit = wit_type_name(ty)
    check = ck.tuple_check(wit, length)
    size, width = el.size, len(el.flat)

    def store(cx: CallContext, v: Any, ptr: int) -> None:
        for i, item in enumerate(check(v)):
            try:
                el.store(cx, item, ptr + i * size)
            except (TypeError, ValueError) as e:
                raise ck.prefixed(f"item {i}", e) from None

    def load(cx: CallContext, ptr: int) -> List[Any]:
        return [el.load(cx, ptr + i * size) for i in range(length)]

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        for i, item in enumerate(check(v)):
            try:
                el.lower(cx, item, out)
            except (TypeError, ValueError) as e:
                raise ck.prefixed(f"item {i}", e) from None

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> List[Any]:
        return [el.lift(cx, flat, i + k * width) for k in range(length)]

    return Converter(ty, store, load, lower, lift, el.allocates)


# -- records and tuples ---------------------------------------------------------------------------

def _fields(ty: w.Type, convs: Tuple[Converter, ...], parts: Callable[[Any], Tuple[Any, ...]],
            make: Callable[..., Any], where: Callable[[int, Exception], Exception],
            cls: Optional[type] = None) -> Converter:
    """A record or tuple: `parts(v)` takes the value apart, `make(*values)` builds one."""
    types = tuple(L.despecialize(ty).fields)  # type: ignore[union-attr]
    offsets = L.field_offsets(types)
    widths = [len(c.flat) for c in convs]
    flat_at = tuple(sum(widths[:k]) for k in range(len(convs)))
    n = len(convs)
    allocates = any(c.allocates for c in convs)
    scalar = all(c.code is not None for c in convs) and n > 0

    if scalar:
        # All scalars: one precompiled struct for the whole record.
        fmt, at = "<", 0
        for c, off in zip(convs, offsets):
            fmt += "x" * (off - at) + c.code  # type: ignore[operator]
            at = off + c.size
        st = struct.Struct(fmt)
        pack, unpack = st.pack_into, st.unpack_from
        checks = tuple(c.check for c in convs)
        fixes = tuple((k, c.from_memory) for k, c in enumerate(convs) if c.from_memory is not None)

        def checked(v: Any) -> List[Any]:
            values = list(parts(v))
            for k in range(n):
                try:
                    values[k] = checks[k](values[k])  # type: ignore[misc]
                except (TypeError, ValueError) as e:
                    raise where(k, e) from None
            return values

        def store(cx: CallContext, v: Any, ptr: int) -> None:
            pack(cx.view, ptr, *checked(v))

        if fixes:
            def load(cx: CallContext, ptr: int) -> Any:
                values = list(unpack(cx.view, ptr))
                for k, fix in fixes:
                    values[k] = fix(values[k])
                return make(*values)
        else:
            def load(cx: CallContext, ptr: int) -> Any:
                return make(*unpack(cx.view, ptr))
    else:
        stores = tuple(c.store for c in convs)
        loads = tuple(c.load for c in convs)

        def store(cx: CallContext, v: Any, ptr: int) -> None:
            values = parts(v)
            for k in range(n):
                try:
                    stores[k](cx, values[k], ptr + offsets[k])
                except (TypeError, ValueError) as e:
                    raise where(k, e) from None

        def load(cx: CallContext, ptr: int) -> Any:
            return make(*[loads[k](cx, ptr + offsets[k]) for k in range(n)])

    lowers = tuple(c.lower for c in convs)
    lifts = tuple(c.lift for c in convs)

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        values = parts(v)
        for k in range(n):
            try:
                lowers[k](cx, values[k], out)
            except (TypeError, ValueError) as e:
                raise where(k, e) from None

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> Any:
        return make(*[lifts[k](cx, flat, i + flat_at[k]) for k in range(n)])

    conv = Converter(ty, store, load, lower, lift, allocates)
    if scalar:
        conv.scalar_record = (cls, parts, make, where, convs, None if fixes else unpack)
    return conv


# -- variants, enums, options, results, flags -------------------------------------------------------

def _coercions(have: Tuple[str, ...], want: Tuple[str, ...]) -> Optional[Tuple[Tuple[str, str], ...]]:
    pairs = tuple(zip(have, want))
    return None if all(h == w_ for h, w_ in pairs) else pairs


def _to_joined(fv: Any, have: str, want: str) -> Any:
    """A payload's flat value carried in the variant's joined flat type (spec: lower_flat_variant)."""
    if have == want:
        return fv
    if have == "f32":
        return _I32_BITS.unpack(_F32.pack(fv))[0]
    if have == "f64":
        return _I64_BITS.unpack(_F64.pack(fv))[0]
    return fv  # i32 in i64


def _from_joined(fv: Any, have: str, want: str) -> Any:
    """The inverse (spec: lift_flat_variant's CoerceValueIter): `have` is the joined type."""
    if have == want:
        return fv
    if want == "f32":
        return _F32.unpack(_I32_BITS.pack(fv & _MASK32))[0]
    if want == "f64":
        return _F64.unpack(_I64_BITS.pack(fv))[0]
    return fv & _MASK32  # i32 from i64


def _cases(ty: w.Type, payloads: Tuple[Optional[Converter], ...], case: Callable[[Any], Tuple[int, Any]],
           make: Callable[[int, Any], Any], where: Optional[Callable[[int, Exception], Exception]]) -> Converter:
    """A variant (and enum/option/result): `case(v)` -> (index, payload); `make(index, payload)`."""
    cases = L.despecialize(ty).cases  # type: ignore[union-attr]
    wit = wit_type_name(ty)
    count = len(payloads)
    disc = struct.Struct("<" + {1: "B", 2: "H", 4: "I"}[L.discriminant_size(count)])
    disc_pack, disc_unpack = disc.pack_into, disc.unpack_from
    off = L.payload_offset(cases)
    joined = L.flatten(ty)[1:]
    width = len(joined)
    stores = tuple(p.store if p else None for p in payloads)
    loads = tuple(p.load if p else None for p in payloads)
    lowers = tuple(p.lower if p else None for p in payloads)
    lifts = tuple(p.lift if p else None for p in payloads)
    coerce = tuple(_coercions(p.flat, joined[:len(p.flat)]) if p else None for p in payloads)
    allocates = any(p.allocates for p in payloads if p)

    def bad_case(i: int) -> Trap:
        return Trap(f"invalid case index {i} for {wit} (it has {count} cases)")

    def store(cx: CallContext, v: Any, ptr: int) -> None:
        i, payload = case(v)
        st = stores[i]
        if st is not None:
            try:
                st(cx, payload, ptr + off)
            except (TypeError, ValueError) as e:
                raise (where(i, e) if where else e) from None
        disc_pack(cx.view, ptr, i)

    def load(cx: CallContext, ptr: int) -> Any:
        i = disc_unpack(cx.view, ptr)[0]
        if i >= count:
            raise bad_case(i)
        ld = loads[i]
        return make(i, ld(cx, ptr + off) if ld is not None else None)

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        i, payload = case(v)
        out.append(i)
        lw = lowers[i]
        k = 0
        if lw is not None:
            start = len(out)
            try:
                lw(cx, payload, out)
            except (TypeError, ValueError) as e:
                raise (where(i, e) if where else e) from None
            k = len(out) - start
            pairs = coerce[i]
            if pairs is not None:
                for j, (have, want) in enumerate(pairs):
                    out[start + j] = _to_joined(out[start + j], have, want)
        if k < width:
            out.extend([0] * (width - k))

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> Any:
        c = flat[i]
        if c >= count:
            raise bad_case(c)
        lf = lifts[c]
        if lf is None:
            return make(c, None)
        pairs = coerce[c]
        if pairs is None:
            return make(c, lf(cx, flat, i + 1))
        vals = [_from_joined(flat[i + 1 + j], have, want) for j, (want, have) in enumerate(pairs)]
        return make(c, lf(cx, vals, 0))

    return Converter(ty, store, load, lower, lift, allocates)


def _flags(ty: w.TypeDef, module: str) -> Converter:
    parts = ck.FlagsParts(ty, module)
    nbytes, words = L.flags_words(len(ty.kind.flags))  # type: ignore[union-attr]

    def store(cx: CallContext, v: Any, ptr: int) -> None:
        cx.view[ptr:ptr + nbytes] = parts.bits(v).to_bytes(nbytes, "little")

    def load(cx: CallContext, ptr: int) -> Any:
        return parts.make(int.from_bytes(cx.view[ptr:ptr + nbytes], "little"))

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        bits = parts.bits(v)
        for _ in range(words):
            out.append(bits & _MASK32)
            bits >>= 32

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> Any:
        bits = 0
        for k in range(words):
            bits |= (flat[i + k] & _MASK32) << (32 * k)
        return parts.make(bits)

    return Converter(ty, store, load, lower, lift, allocates=False)


# -- resources ----------------------------------------------------------------------------------------

def _handle(ty: w.Type, policy: Any, resource: w.TypeDef, borrow: bool) -> Converter:
    if borrow:
        to_handle, from_handle = policy.lower_borrow, policy.lift_borrow
    else:
        to_handle, from_handle = policy.lower_own, policy.lift_own

    def store(cx: CallContext, v: Any, ptr: int) -> None:
        _U32.pack_into(cx.view, ptr, to_handle(cx, resource, v))

    def load(cx: CallContext, ptr: int) -> Any:
        return from_handle(cx, resource, _U32.unpack_from(cx.view, ptr)[0])

    def lower(cx: CallContext, v: Any, out: List[Any]) -> None:
        out.append(to_handle(cx, resource, v))

    def lift(cx: CallContext, flat: Sequence[Any], i: int) -> Any:
        return from_handle(cx, resource, flat[i])

    return Converter(ty, store, load, lower, lift, allocates=False)


def _unsupported(ty: w.Type, why: str) -> Converter:
    wit = wit_type_name(ty)

    def fail(*_: Any) -> Any:
        raise TypeError(f"values of WIT type {wit} are not supported by this runtime yet ({why})")

    return Converter(ty, fail, fail, fail, fail, allocates=False)


# -- the codec: converters for every type, made once --------------------------------------------------

class Codec:
    """Builds and caches converters for one resource policy, one string encoding, and
    one module name (where new record/variant classes say they live)."""

    def __init__(self, policy: Any, string_encoding: str = "utf8", module: str = "wasm_import.types") -> None:
        self.policy = policy
        self.string_encoding = string_encoding
        self.module = module
        self._cache: Dict[w.Type, Converter] = {}
        self._lock = threading.RLock()

    def converter(self, ty: w.Type) -> Converter:
        found = self._cache.get(ty)
        if found is None:
            with self._lock:
                found = self._cache.get(ty)
                if found is None:
                    found = self._cache[ty] = self._build(ty)
        return found

    def _build(self, ty: w.Type) -> Converter:
        target = w.unalias(ty)
        if isinstance(target, w.Primitive):
            if target is w.Primitive.STRING:
                return _string(self.string_encoding)
            if target is w.Primitive.ERROR_CONTEXT:
                return _unsupported(ty, "error-context")
            return _scalar(target)
        module, kind = self.module, target.kind
        match kind:
            case w.Record(fields=fields):
                rp = ck.RecordParts(target, module)
                convs = tuple(self.converter(f.type) for f in fields)
                return _fields(target, convs, rp.fields, rp.make, rp.in_field, rp.cls)
            case w.Tuple(types=types):
                tcheck = ck.tuple_check(wit_type_name(target), len(types))
                convs = tuple(self.converter(t) for t in types)
                return _fields(target, convs, tcheck, lambda *vs: vs,
                               lambda k, e: ck.prefixed(f"tuple item {k}", e))
            case w.Variant(cases=cases):
                vp = ck.VariantParts(target, module)
                payloads = tuple(self.converter(c.type) if c.type is not None else None for c in cases)
                return _cases(target, payloads, vp.case, vp.make, vp.in_payload)
            case w.Enum(cases=cases):
                ep = ck.EnumParts(target, module)
                members = ep.members
                return _cases(target, (None,) * len(cases), lambda v: (ep.index(v), None),
                              lambda i, _: members[i], None)
            case w.Option(type=payload):
                op = ck.OptionParts(payload, wit_type_name(target))
                return _cases(target, (None, self.converter(payload)), op.case, op.make, None)
            case w.Result(ok=ok, err=err):
                rs = ck.ResultParts(ok, err, wit_type_name(target))
                payloads = (self.converter(ok) if ok is not None else None,
                            self.converter(err) if err is not None else None)
                return _cases(target, payloads, rs.case, rs.make, None)
            case w.Flags():
                return _flags(target, module)
            case w.List(element=element):
                if w.unalias(element) is w.Primitive.U8:
                    return _bytes_list(target)
                return _list(target, self.converter(element))
            case w.FixedList(element=element, size=length):
                return _fixed_list(target, self.converter(element), length)
            case w.Map(key=key, value=value):
                pair = w.TypeDef(w.Tuple((key, value)))
                return _map(target, _list(w.TypeDef(w.List(pair)), self.converter(pair)))
            case w.Own(resource=resource) | w.Borrow(resource=resource):
                res = w.unalias(resource)
                assert isinstance(res, w.TypeDef)
                return _handle(target, self.policy, res, isinstance(kind, w.Borrow))
            case w.Stream():
                from ._async import stream_converter  # async values (imported late: a cycle)

                return stream_converter(target, self.converter)  # type: ignore[no-any-return]
            case w.Future():
                from ._async import future_converter

                return future_converter(target, self.converter)  # type: ignore[no-any-return]
            case _:
                raise TypeError(f"{wit_type_name(target)} is not a value type")


_codecs: "weakref.WeakKeyDictionary[Any, Dict[Tuple[str, str], Codec]]" = weakref.WeakKeyDictionary()
_codecs_lock = threading.Lock()
_NO_POLICY = type("NoResources", (), {})()


def codec_for(policy: Any, string_encoding: str = "utf8", module: str = "wasm_import.types") -> Codec:
    """The shared Codec of (policy, string encoding, module): converters are built once."""
    key_obj = policy if policy is not None else _NO_POLICY
    with _codecs_lock:
        per = _codecs.get(key_obj)
        if per is None:
            per = _codecs[key_obj] = {}
        codec = per.get((string_encoding, module))
        if codec is None:
            codec = per[(string_encoding, module)] = Codec(policy, string_encoding, module)
        return codec


# -- function signatures -------------------------------------------------------------------------------

class _Signature:
    """Everything a call precomputes about a function on one side (lift or lower)."""

    def __init__(self, func: w.Function, codec: Codec, context: str) -> None:
        self.func = func
        self.flat = L.flatten_functype(func, context)
        self.params = tuple(codec.converter(p.type) for p in func.params)
        self.result = codec.converter(func.result) if func.result is not None else None
        types = tuple(p.type for p in func.params)
        self.param_offsets = L.field_offsets(types)
        tuple_type = w.TypeDef(w.Tuple(types))
        self.params_size, self.params_align = L.size(tuple_type), L.alignment(tuple_type)
        self.param_widths = tuple(len(c.flat) for c in self.params)
        self.names = tuple(snake(p.name) for p in func.params)
        # whether a call needs a view of memory: strings and lists live there
        self.uses_memory = (self.flat.params_in_memory or self.flat.results_in_memory
                            or any(c.allocates for c in self.params)
                            or (self.result is not None and self.result.allocates))


def core_functype(func: w.Function, lift_or_lower: str) -> Any:
    """The flattened core signature of `func`, as the core layer's `FuncType` (`.params`,
    `.results`: 'i32'|'i64'|'f32'|'f64'). `_layout.flatten_functype` says more (whether
    params/results went through memory)."""
    from ._wasmtime import FuncType  # the core layer (loads wasmtime's library): only when wiring

    sig = L.flatten_functype(func, lift_or_lower)
    return FuncType(sig.params, sig.results)


def lower_values(cx: CallContext, sig: _Signature, values: Sequence[Any],
                 describe: Callable[[int, Exception], Exception]) -> List[Any]:
    """Params going into a callee: their flat values, or a pointer to them in memory."""
    params = sig.params
    if sig.flat.params_in_memory:
        ptr = cx.alloc(sig.params_align, sig.params_size)
        offsets = sig.param_offsets
        for k, conv in enumerate(params):
            try:
                conv.store(cx, values[k], ptr + offsets[k])
            except (TypeError, ValueError) as e:
                raise describe(k, e) from None
        return [ptr]
    out: List[Any] = []
    for k, conv in enumerate(params):
        try:
            conv.lower(cx, values[k], out)
        except (TypeError, ValueError) as e:
            raise describe(k, e) from None
    return out


def lift_values(cx: CallContext, sig: _Signature, flat: Sequence[Any]) -> List[Any]:
    """Params coming from a caller: lifted from flat values or from the memory they point to."""
    params = sig.params
    if sig.flat.params_in_memory:
        ptr = flat[0]
        cx.checked_range(ptr, sig.params_size, sig.params_align, "parameters in memory")
        return [conv.load(cx, ptr + off) for conv, off in zip(params, sig.param_offsets)]
    values, i = [], 0
    for conv, width in zip(params, sig.param_widths):
        values.append(conv.lift(cx, flat, i))
        i += width
    return values


def _lift_result(cx: CallContext, sig: _Signature, results: Sequence[Any]) -> Any:
    """The callee's result (lift side): flat, or at the pointer it returned."""
    conv = sig.result
    if conv is None:
        return None
    if sig.flat.results_in_memory:
        ptr = results[0]
        cx.refresh()
        cx.checked_range(ptr, conv.size, conv.align, "result in memory")
        return conv.load(cx, ptr)
    if sig.uses_memory:
        cx.refresh()
    return conv.lift(cx, results, 0)


def _lower_result(cx: CallContext, sig: _Signature, value: Any, flat_args: Sequence[Any]) -> Any:
    """A result going back to the guest that called (lower side): flat, or stored at the
    return pointer it passed as its last argument."""
    conv = sig.result
    assert conv is not None
    if sig.uses_memory:
        cx.refresh()
    if sig.flat.results_in_memory:
        ptr = flat_args[-1]
        cx.checked_range(ptr, conv.size, conv.align, "return pointer")
        conv.store(cx, value, ptr)
        return ()
    out: List[Any] = []
    conv.lower(cx, value, out)
    return out


def _post_return(cx: CallContext, results: Sequence[Any]) -> None:
    post = cx.opts.post_return
    if post is not None:
        inst = cx.inst
        inst.may_leave = False
        try:
            post(*results)
        finally:
            inst.may_leave = True


# -- calling an export -----------------------------------------------------------------------------------

def export_caller(func: w.Function, core_call: Callable[..., Sequence[Any]], options: OptionsLike,
                  policy: Any, returns_result: bool, qualname: Optional[str] = None,
                  module_name: str = "wasm_import.types") -> Callable[..., Any]:
    """`call(*python_args) -> python result` for an export lifted by `canon lift`.

    Checks the arguments (errors name the function and parameter:
    `f(): parameter 'x' (u8): expected u8 ...`), lowers them (flat, or through memory past
    MAX_FLAT_PARAMS), calls `core_call(*flat) -> tuple of flat results`, lifts the result,
    checks that borrows lent to the callee were dropped, and runs post-return. A returned
    `result<T, E>` returns T or raises Err(e) when `returns_result`. `options`: CallOptions,
    or a function returning them (resolved on the first call).
    """
    return _lazily(lambda opts: _export_caller(func, core_call, opts, policy, returns_result, qualname,
                                               module_name), options)


def _export_caller(func: w.Function, core_call: Callable[..., Sequence[Any]], options: CallOptions,
                   policy: Any, returns_result: bool, qualname: Optional[str],
                   module_name: str) -> Callable[..., Any]:
    codec = codec_for(policy, options.string_encoding, module_name)
    sig = _Signature(func, codec, "lift")
    label = qualname or snake(func.name)
    n = len(sig.params)
    arity = (f"{label}() takes {n} argument{'s' * (n != 1)} ({', '.join(sig.names)}), got {{}}")

    def describe(k: int, e: Exception) -> Exception:
        return type(e)(f"{label}(): parameter {sig.names[k]!r} ({sig.params[k].wit}): {e}")

    fast = _scalar_export(sig, core_call, options, arity, describe, label)
    if fast is not None:
        return fast

    post_return = options.post_return

    def call(*args: Any) -> Any:
        if len(args) != n:
            raise TypeError(arity.format(len(args)))
        cx = CallContext(options)
        try:
            if sig.uses_memory:
                cx.refresh()
            flat = lower_values(cx, sig, args, describe)
            results = core_call(*flat)
            value = _lift_result(cx, sig, results)
            cx.scope.check_returned(f"the call to {label}")
            if post_return is not None:
                _post_return(cx, results)
        finally:
            cx.finish()
        if returns_result:
            if isinstance(value, Err):
                raise value
            return value.value
        return value

    return call


_FAST_GUARDS = {
    w.Primitive.BOOL: ("{a} is True or {a} is False", "(1 if {a} else 0)"),
    w.Primitive.F64: ("{a}.__class__ is float", "{a}"),
    w.Primitive.F32: ("{a}.__class__ is float", "f32r({a})"),
    w.Primitive.CHAR: ("False", "{a}"),
}


def _fast_lower(prim: w.Primitive) -> Tuple[str, str]:
    """(guard, flat expression) for a scalar argument in generated code."""
    found = _FAST_GUARDS.get(prim)
    if found is not None:
        return found
    lo, hi, _ = ck.int_bounds(prim)
    guard = f"{{a}}.__class__ is int and {lo} <= {{a}} <= {hi}"
    if lo == 0:
        return guard, "{a}"
    return guard, f"{{a}} & {_MASK64 if hi > _MASK32 else _MASK32}"


def _fast_lift(prim: w.Primitive, r: str) -> str:
    """A generated expression lifting the flat value `r`."""
    match prim:
        case w.Primitive.BOOL:
            return f"{r} != 0"
        case w.Primitive.F32 | w.Primitive.F64 | w.Primitive.U32 | w.Primitive.U64:
            return r
        case w.Primitive.U8 | w.Primitive.U16:
            return f"{r} & {(1 << (L.size(prim) * 8)) - 1}"
        case w.Primitive.CHAR:
            return f"charf({r})"
        case _:
            bits = L.size(prim) * 8
            return f"(({r} & {(1 << bits) - 1}) ^ {1 << (bits - 1)}) - {1 << (bits - 1)}"


def _scalar_export(sig: _Signature, core_call: Callable[..., Sequence[Any]], options: CallOptions,
                   arity: str, describe: Callable[[int, Exception], Exception],
                   label: str) -> Optional[Callable[..., Any]]:
    """For a function of scalars and records/tuples of scalars, with a scalar or such a
    record as result: one generated function that checks, calls and lifts with no call
    context and no per-value converter calls (the common small call must be cheap)."""
    if sig.flat.params_in_memory:
        return None
    if any(c.prim is None and c.scalar_record is None for c in sig.params):
        return None
    result = sig.result
    if result is not None and result.prim is None and result.scalar_record is None:
        return None
    names: Dict[str, Any] = {"core": core_call, "arity": arity, "f32r": _f32_round, "charf": _char_from,
                             "post": options.post_return, "opts": options, "Trap": Trap}
    n = len(sig.params)
    args = [f"a{k}" for k in range(n)]
    lines = ["def call(*args):", f"    if len(args) != {n}:", "        raise TypeError(arity.format(len(args)))"]
    if n:
        lines.append(f"    {', '.join(args)}, = args")
    flats: List[str] = []
    for k, conv in enumerate(sig.params):
        if conv.prim is not None:
            names[f"fix{k}"] = _fixer(conv.check, describe, k)  # type: ignore[arg-type]
            guard, flat = _fast_lower(conv.prim)
            lines += [f"    if not ({guard.format(a=args[k])}):", f"        a{k} = fix{k}(a{k})"]
            flats.append(flat.format(a=args[k]))
            continue
        cls, parts, _, where, fields, _ = conv.scalar_record  # type: ignore[misc]
        xs = [f"x{k}_{j}" for j in range(len(fields))]
        names[f"parts{k}"] = _fixer(parts, describe, k)
        if cls is not None and fields:
            attrs = [f"a{k}.{a}" for a in ck.RecordParts.attrs_of(cls)]
            lines += [f"    if a{k}.__class__ is cls{k}:", f"        {', '.join(xs)}, = {', '.join(attrs)},",
                      "    else:", f"        {', '.join(xs)}, = parts{k}(a{k})"]
            names[f"cls{k}"] = cls
        elif fields:
            lines.append(f"    {', '.join(xs)}, = parts{k}(a{k})")
        else:
            lines.append(f"    parts{k}(a{k})")
        for j, fconv in enumerate(fields):
            names[f"fix{k}_{j}"] = _fixer(fconv.check, _in_field(describe, where, j), k)  # type: ignore[arg-type]
            guard, flat = _fast_lower(fconv.prim)
            lines += [f"    if not ({guard.format(a=xs[j])}):", f"        {xs[j]} = fix{k}_{j}({xs[j]})"]
            flats.append(flat.format(a=xs[j]))
    parts = getattr(core_call, "parts", None)
    if parts is None:
        lines.append(f"    r = core({', '.join(flats)})")
    else:  # the core call inline: one Python frame less on the commonest call
        names.update(c_pack=parts.pack_into, c_buf=parts.buf, c_raw=parts.raw_call, c_ctx=parts.ctx,
                      c_fa=parts.func_address, c_ba=parts.buf_address, c_slots=parts.slots,
                      c_ta=parts.trap_address, c_trap=parts.trap, c_store=parts.store, c_unpack=parts.unpack,
                      c_deferred=parts.deferred, c_run_deferred=parts.run_deferred, c_bad=parts.bad_args,
                      c_struct_error=struct.error)
        packed = ", ".join(flats)
        lines += ["    if c_store.poisoned is not None:", "        c_store._check_usable()",
                  "    try:", f"        c_pack(c_buf, 0, {packed})",
                  "    except c_struct_error:", f"        raise c_bad(({packed}{',' if flats else ''})) from None",
                  "    try:", "        error = c_raw(c_ctx, c_fa, c_ba, c_slots, c_ta)",
                  "    except BaseException:", "        c_store._interrupted(c_trap)", "        raise",
                  "    if error or c_trap.value:", "        trap_value = c_trap.value", "        c_trap.value = None",
                  "        c_store._fail(error or 0, trap_value or 0)",
                  "    if c_deferred:", "        c_run_deferred()",
                  "    r = c_unpack(c_buf, 0)"]
    if result is None:
        ret = "None"
    elif result.prim is not None:
        ret = _fast_lift(result.prim, "r[0]")
    else:
        _, _, make, _, fields, unpack = result.scalar_record  # type: ignore[misc]
        names["make"] = make
        if len(result.flat) <= L.MAX_FLAT_RESULTS:  # one field: it came back flat
            ret = f"make({', '.join(_fast_lift(f.prim, f'r[{j}]') for j, f in enumerate(fields))})"  # type: ignore[arg-type]
        else:
            names["load"], names["unpack"] = result.load, unpack
            names["CallContext"] = CallContext
            lines += ["    ptr = r[0]", "    view = opts.memory.view()",
                      f"    if ptr % {result.align} or ptr + {result.size} > len(view):",
                      "        cx = CallContext(opts)", "        cx.view = view",
                      f"        cx.checked_range(ptr, {result.size}, {result.align}, 'result in memory')"]
            if unpack is not None:
                lines.append("    value = make(*unpack(view, ptr))")
            else:
                lines += ["    cx = CallContext(opts)", "    cx.view = view", "    value = load(cx, ptr)"]
            ret = "value"
    if options.post_return is not None:
        lines.append("    post(*r)")  # nothing of the result lives in memory any more
    lines.append(f"    return {ret}")
    exec(compile("\n".join(lines) + "\n", f"<wasm-import lift of {label}>", "exec"), names)
    return names["call"]  # type: ignore[no-any-return]


def _in_field(describe: Callable[[int, Exception], Exception], where: Callable[[int, Exception], Exception],
              j: int) -> Callable[[int, Exception], Exception]:
    return lambda k, e: describe(k, where(j, e))


def _fixer(check: Callable[[Any], Any], describe: Callable[[int, Exception], Exception],
           k: int) -> Callable[[Any], Any]:
    def fix(v: Any) -> Any:
        try:
            return check(v)
        except (TypeError, ValueError) as e:
            raise describe(k, e) from None
    return fix


# -- a host function the guest calls -------------------------------------------------------------------

def host_callback(func: w.Function, target: Callable[..., Any], options: OptionsLike, policy: Any,
                  returns_result: bool, label: Optional[str] = None,
                  module_name: str = "wasm_import.types") -> Callable[..., Any]:
    """The core callback for a `canon lower`ed host import: `callback(*flat_args) -> flat results`.

    Lifts the arguments (from flat values, or from memory past MAX_FLAT_PARAMS), calls
    `target`, and lowers what it returns (flat, or into the return pointer the guest passed;
    strings and lists through the guest's realloc). With `returns_result`, `target` returns
    T or raises Err(e). A function with no WIT result drops what `target` returns. A bad
    return value raises TypeError/ValueError naming `label` and the WIT type. `options`:
    CallOptions, or a function returning them (resolved on the first call).
    """
    return _lazily(lambda opts: _host_callback(func, target, opts, policy, returns_result, label,
                                               module_name), options)


def _host_callback(func: w.Function, target: Callable[..., Any], options: CallOptions, policy: Any,
                   returns_result: bool, label: Optional[str], module_name: str) -> Callable[..., Any]:
    codec = codec_for(policy, options.string_encoding, module_name)
    sig = _Signature(func, codec, "lower")
    label = label or f"host function {func.name}"
    expected = sig.result.wit if sig.result is not None else "nothing"
    inst = options.inst

    def bad_result(e: Exception) -> Exception:
        return type(e)(f"{label} returned a bad value for WIT type {expected}: {e}")

    fast = _scalar_host(sig, target, inst, bad_result, label)
    if fast is not None:
        return fast

    def callback(*flat: Any) -> Any:
        if not inst.may_leave:
            raise Trap(f"{label} was called while the instance may not leave (in realloc or post-return)")
        cx = CallContext(options)
        try:
            if sig.uses_memory:
                cx.refresh()
            args = lift_values(cx, sig, flat)
            # a returned `result`: what `target` returns is the ok payload (an Ok or Err
            # value too, for a nested result); only a raised Err is the error
            out = host_result(target, args) if returns_result else target(*args)
            if sig.result is None:
                return ()
            try:
                return _lower_result(cx, sig, out, flat)
            except (TypeError, ValueError) as e:
                raise bad_result(e) from None
        finally:
            cx.scope.end()
            cx.finish()

    return callback


def _scalar_host(sig: _Signature, target: Callable[..., Any], inst: InstanceState,
                 bad_result: Callable[[Exception], Exception], label: str) -> Optional[Callable[..., Any]]:
    """For scalars only: a generated callback without a call context."""
    if sig.flat.params_in_memory or any(c.prim is None for c in sig.params):
        return None
    if sig.result is not None and sig.result.prim is None:
        return None
    names: Dict[str, Any] = {"target": target, "inst": inst, "Trap": Trap, "bad": bad_result,
                             "charf": _char_from, "f32r": _f32_round,
                             "leave": f"{label} was called while the instance may not leave "
                                      "(in realloc or post-return)"}
    n = len(sig.params)
    lines = [f"def callback({', '.join(f'f{k}' for k in range(n))}):",
             "    if not inst.may_leave:", "        raise Trap(leave)"]
    call = f"target({', '.join(_fast_lift(c.prim, f'f{k}') for k, c in enumerate(sig.params))})"  # type: ignore[arg-type]
    if sig.result is None:
        lines += [f"    {call}", "    return ()"]
    else:
        conv = sig.result
        names["check"], names["to_flat"] = conv.check, conv.to_flat
        lines += [f"    out = {call}", "    try:", "        return (to_flat(check(out)),)",
                  "    except (TypeError, ValueError) as e:", "        raise bad(e) from None"]
    exec(compile("\n".join(lines) + "\n", f"<wasm-import lowering of {label}>", "exec"), names)
    return names["callback"]  # type: ignore[no-any-return]


# -- a call between two component instances (composed components) -----------------------------------------

def lowered_lift_callback(func: w.Function, callee_call: Callable[..., Sequence[Any]],
                          callee_options: OptionsLike, caller_options: OptionsLike,
                          policy: Any = PASS_THROUGH, label: Optional[str] = None) -> Callable[..., Any]:
    """The core callback for a `canon lower` of a function another instance `canon lift`s:
    lift the caller's arguments out of its memory, lower them into the callee's, call,
    lift the result from the callee (its borrows must be gone; post-return runs), and
    lower it into the caller. Resources move by the spec's rules through `policy` (for
    example `_handles.SpecPolicy`); the caller's lent handles are released at the end."""
    if not isinstance(callee_options, CallOptions) or not isinstance(caller_options, CallOptions):
        def resolve(_: Any) -> Callable[..., Any]:
            callee = callee_options if isinstance(callee_options, CallOptions) else callee_options()
            caller = caller_options if isinstance(caller_options, CallOptions) else caller_options()
            return lowered_lift_callback(func, callee_call, callee, caller, policy, label)
        return _lazily(resolve, lambda: None)
    caller_sig = _Signature(func, codec_for(policy, caller_options.string_encoding), "lower")
    callee_sig = _Signature(func, codec_for(policy, callee_options.string_encoding), "lift")
    label = label or func.name
    caller_inst = caller_options.inst

    def describe(k: int, e: Exception) -> Exception:
        return Trap(f"{label}: parameter {callee_sig.names[k]!r} could not be passed on: {e}")

    def callback(*flat: Any) -> Any:
        if not caller_inst.may_leave:
            raise Trap(f"{label} was called while the instance may not leave (in realloc or post-return)")
        caller = CallContext(caller_options)
        callee = CallContext(callee_options)
        try:
            if caller_sig.uses_memory:
                caller.refresh()
            args = lift_values(caller, caller_sig, flat)
            if callee_sig.uses_memory:
                callee.refresh()
            results = callee_call(*lower_values(callee, callee_sig, args, describe))
            value = _lift_result(callee, callee_sig, results)
            callee.scope.check_returned(f"the call to {label}")
            _post_return(callee, results)
            if caller_sig.result is None:
                return ()
            try:
                return _lower_result(caller, caller_sig, value, flat)
            except (TypeError, ValueError) as e:
                raise Trap(f"{label}: the result could not be passed back: {e}") from None
        finally:
            caller.scope.end()
            caller.finish()
            callee.finish()

    return callback
