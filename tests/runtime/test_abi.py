"""The canonical ABI in Python (runtime/_layout, _abi, _handles), without wasmtime.

A guest is played by Python: linear memory is a bytearray behind `.view()` (which MOVES
when it grows, as a real memory may, so a converter that kept a stale view loses its
writes), and realloc is a bump allocator that records its calls. The guest side of a
call uses the same converters from the other end, so a round trip checks that lowering
and lifting agree; layouts and some memory images are checked against values worked out
by hand from CanonicalABI.md.
"""

from __future__ import annotations

import array
import dataclasses
import math
import struct
import threading
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from wasm_import.wit import _model as w
from wasm_import._errors import Trap
from wasm_import.types._pytypes import array_code, class_for, variant_classes
from wasm_import._values import Err, Ok, Some
from wasm_import.runtime import _abi, _handles as h, _layout as L

P = w.Primitive


# -- a Python guest ------------------------------------------------------------------------------------

class FakeMemory:
    """Linear memory over a bytearray. Growing replaces the bytearray (the base moves)."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.data = bytearray(size)

    def view(self) -> memoryview:
        return memoryview(self.data)

    def grow(self, nbytes: int) -> None:
        new = bytearray(len(self.data) + nbytes)
        new[:len(self.data)] = self.data
        self.data = new


class Bump:
    """realloc(old, old_size, align, new_size): bump allocation; grows memory (moving it)."""

    def __init__(self, memory: FakeMemory, start: int = 16) -> None:
        self.memory = memory
        self.top = start
        self.calls: List[Tuple[int, int, int, int]] = []

    def __call__(self, old: int, old_size: int, align: int, new_size: int) -> int:
        self.calls.append((old, old_size, align, new_size))
        ptr = L.align_to(self.top, align)
        self.top = ptr + new_size
        if self.top > len(self.memory.data):
            self.memory.grow(self.top - len(self.memory.data) + 4096)
        if old:
            n = min(old_size, new_size)
            self.memory.data[ptr:ptr + n] = self.memory.data[old:old + n]
        return ptr


def options(encoding: str = "utf8", size: int = 1 << 16, **kw: Any) -> _abi.CallOptions:
    mem = FakeMemory(size)
    return _abi.CallOptions(memory=mem, realloc=Bump(mem), string_encoding=encoding, **kw)


def fn(params: Tuple[w.Type, ...], result: Optional[w.Type], name: str = "f") -> w.Function:
    return w.Function(name, w.FunctionKind.FREESTANDING,
                      tuple(w.Param(f"p{i}", t) for i, t in enumerate(params)), result)


def td(kind: Any, name: Optional[str] = None) -> w.TypeDef:
    return w.TypeDef(kind, name)


def guest_echo(func: w.Function, opts: _abi.CallOptions, policy: Any = None, calls: Optional[list] = None) -> Any:
    """A core function `func` as a guest would implement it: it reads its params with the
    canonical ABI and returns its first param (all of them as a tuple if the result is a tuple)."""
    sig = _abi._Signature(func, _abi.codec_for(policy, opts.string_encoding), "lift")

    def core(*flat: Any) -> Tuple[Any, ...]:
        if calls is not None:
            calls.append(flat)
        cx = _abi.CallContext(opts)
        cx.refresh()
        args = _abi.lift_values(cx, sig, flat)
        if sig.result is None:
            return ()
        value = args[0]
        conv = sig.result
        if sig.flat.results_in_memory:
            ptr = cx.alloc(conv.align, conv.size)
            conv.store(cx, value, ptr)
            return (ptr,)
        out: List[Any] = []
        conv.lower(cx, value, out)
        return tuple(out)

    return core


def echo(ty: w.Type, encoding: str = "utf8", nparams: int = 1) -> Any:
    """A Python-callable export echoing a value of `ty` (passed `nparams` times, to push
    params past MAX_FLAT_PARAMS when asked)."""
    func = fn((ty,) * nparams, ty)
    opts = options(encoding)
    return _abi.export_caller(func, guest_echo(func, opts), opts, None, False, "echo")


# -- layout, checked against CanonicalABI.md by hand ---------------------------------------------------

def rec(*types: w.Type, name: str = "r") -> w.TypeDef:
    return td(w.Record(tuple(w.Field(f"f{i}", t) for i, t in enumerate(types))), name)


def var(*types: Optional[w.Type], name: str = "v") -> w.TypeDef:
    return td(w.Variant(tuple(w.Case(f"c{i}", t) for i, t in enumerate(types))), name)


LAYOUTS = [
    (P.BOOL, 1, 1, ("i32",)),
    (P.S16, 2, 2, ("i32",)),
    (P.U64, 8, 8, ("i64",)),
    (P.F32, 4, 4, ("f32",)),
    (P.CHAR, 4, 4, ("i32",)),
    (P.STRING, 8, 4, ("i32", "i32")),
    (td(w.List(P.U64)), 8, 4, ("i32", "i32")),
    (td(w.FixedList(P.U16, 3)), 6, 2, ("i32",) * 3),
    (rec(P.U8, P.U32, P.U16), 12, 4, ("i32",) * 3),
    (rec(P.U8, P.U64), 16, 8, ("i32", "i64")),
    (td(w.Tuple((P.U8, P.STRING))), 12, 4, ("i32", "i32", "i32")),
    (td(w.Option(P.STRING)), 12, 4, ("i32", "i32", "i32")),
    (td(w.Option(P.U8)), 2, 1, ("i32", "i32")),
    (td(w.Result(P.U8, P.U64)), 16, 8, ("i32", "i64")),
    (td(w.Result(None, None)), 1, 1, ("i32",)),
    (var(P.U32, P.F32), 8, 4, ("i32", "i32")),
    (var(P.F32, P.U64), 16, 8, ("i32", "i64")),
    (var(P.F64, P.U32), 16, 8, ("i32", "i64")),
    (var(P.F32, None), 8, 4, ("i32", "f32")),
    (var(rec(P.U8, P.F32, name="x"), P.F64), 16, 8, ("i32", "i64", "f32")),
    (td(w.Enum(tuple(w.EnumCase(f"e{i}") for i in range(3))), "e3"), 1, 1, ("i32",)),
    (td(w.Enum(tuple(w.EnumCase(f"e{i}") for i in range(257))), "e257"), 2, 2, ("i32",)),
    (td(w.Flags(tuple(w.Flag(f"f{i}") for i in range(8))), "fl8"), 1, 1, ("i32",)),
    (td(w.Flags(tuple(w.Flag(f"f{i}") for i in range(9))), "fl9"), 2, 2, ("i32",)),
    (td(w.Flags(tuple(w.Flag(f"f{i}") for i in range(32))), "fl32"), 4, 4, ("i32",)),
    (td(w.Flags(tuple(w.Flag(f"f{i}") for i in range(33))), "fl33"), 8, 4, ("i32", "i32")),
    (td(w.Map(P.STRING, P.U8)), 8, 4, ("i32", "i32")),
    (td(w.Own(td(w.Resource(), "res"))), 4, 4, ("i32",)),
    (td(w.Alias(P.U16), "alias"), 2, 2, ("i32",)),
]


@pytest.mark.parametrize("ty,size,align,flat", LAYOUTS, ids=[str(i) for i in range(len(LAYOUTS))])
def test_layout_matches_the_spec(ty: w.Type, size: int, align: int, flat: Tuple[str, ...]) -> None:
    assert (L.size(ty), L.alignment(ty), L.flatten(ty)) == (size, align, flat)


def test_field_and_payload_offsets() -> None:
    assert L.field_offsets((P.U8, P.U32, P.U16, P.U64)) == (0, 4, 8, 16)
    assert L.payload_offset((None, P.U64)) == 8
    assert L.payload_offset((None,) * 300) == 2


def test_flatten_functype_spills_past_the_limits() -> None:
    sixteen = fn((P.U32,) * 16, P.U32)
    assert L.flatten_functype(sixteen, "lift") == L.FlatSignature(("i32",) * 16, ("i32",), False, False)
    seventeen = fn((P.U32,) * 17, P.STRING)
    assert L.flatten_functype(seventeen, "lift") == L.FlatSignature(("i32",), ("i32",), True, True)
    assert L.flatten_functype(seventeen, "lower") == L.FlatSignature(("i32", "i32"), (), True, True)
    assert _abi.core_functype(fn((P.F32, P.S64), None), "lower").params == ("f32", "i64")


# -- scalars: flat values and the fast path -------------------------------------------------------------

def test_scalar_export_passes_flat_values_and_lifts_the_result() -> None:
    seen = []

    def core(*flat: Any) -> Tuple[Any, ...]:
        seen.append(flat)
        return (0xFFFFFFFF,)

    func = fn((P.U32, P.S8, P.BOOL, P.S64, P.F32, P.CHAR), P.S32)
    call = _abi.export_caller(func, core, options(), None, False, "m.f")
    assert call(7, -1, True, -2, 1e39, "é") == -1
    assert seen == [(7, 0xFFFFFFFF, 1, 0xFFFFFFFFFFFFFFFE, math.inf, 0xE9)]


@pytest.mark.parametrize("prim,flat,value", [
    (P.U8, 0x1FF, 0xFF), (P.S8, 0x80, -128), (P.S16, 0xFFFF8000, -32768), (P.U16, 0x12345, 0x2345),
    (P.S64, 0xFFFFFFFFFFFFFFFF, -1), (P.BOOL, 2, True), (P.CHAR, 0x1F600, "\U0001F600"),
])
def test_scalar_results_are_lifted_as_the_spec_says(prim: w.Primitive, flat: int, value: Any) -> None:
    call = _abi.export_caller(fn((), prim), lambda: (flat,), options(), None, False)
    assert call() == value


@pytest.mark.parametrize("bad", [0xD800, 0x110000])
def test_invalid_char_from_the_guest_traps(bad: int) -> None:
    call = _abi.export_caller(fn((), P.CHAR), lambda: (bad,), options(), None, False)
    with pytest.raises(Trap, match="invalid char"):
        call()


@pytest.mark.parametrize("prim,value,error,text", [
    (P.U8, 300, ValueError, "m.f(): parameter 'p0' (u8): expected u8 (an int in 0..255), got 300: out of range"),
    (P.U8, True, TypeError, "m.f(): parameter 'p0' (u8): expected u8 (an int in 0..255), got bool True"),
    (P.S32, "1", TypeError, "expected s32 (an int in -2147483648..2147483647), got str '1'"),
    (P.F64, True, TypeError, "expected f64 (a float), got bool True"),
    (P.F32, 1 << 1024, ValueError, "too large for a float"),
    (P.BOOL, 1, TypeError, "m.f(): parameter 'p0' (bool): expected bool, got int 1"),
    (P.CHAR, "ab", TypeError, "expected char (a one-character str), got str 'ab'"),
    (P.CHAR, "\ud800", ValueError, "lone surrogate"),
])
def test_scalar_checks_keep_todays_messages(prim: w.Primitive, value: Any, error: type, text: str) -> None:
    call = _abi.export_caller(fn((prim,), None), lambda *a: (), options(), None, False, "m.f")
    with pytest.raises(error) as info:
        call(value)
    assert text in str(info.value)


def test_arity_error() -> None:
    call = _abi.export_caller(fn((P.U32, P.U32), P.U32), lambda a, b: (a + b,), options(), None, False, "m.add")
    assert call(2, 3) == 5
    with pytest.raises(TypeError, match=r"m.add\(\) takes 2 arguments \(p0, p1\), got 1"):
        call(2)


def test_int_subclasses_are_plain_ints_and_cannot_lie_about_their_range() -> None:
    class Liar(int):
        def __le__(self, other: Any) -> bool:
            return True

        def __ge__(self, other: Any) -> bool:
            return True

    seen = []
    call = _abi.export_caller(fn((P.U8,), None), lambda *a: seen.append(a) or (), options(), None, False)
    call(Liar(7))
    assert seen == [(7,)] and type(seen[0][0]) is int
    with pytest.raises(ValueError, match="out of range"):
        call(Liar(300))


# -- round trips through memory ---------------------------------------------------------------------------

def test_string_and_bytes_round_trip_in_every_encoding() -> None:
    for enc in ("utf8", "utf16", "latin1+utf16"):
        call = echo(P.STRING, enc)
        for s in ("", "hello", "héllo", "snow ☃ and \U0001F600", "x" * 5000):
            assert call(s) == s
    b = echo(td(w.List(P.U8)))
    assert b(b"\x00\xff" * 1000) == b"\x00\xff" * 1000
    assert b(bytearray(b"ab")) == b"ab" and b(memoryview(b"cd")) == b"cd"


def test_string_memory_images() -> None:
    """What lands in memory, per encoding (pointer and tagged length as the spec says)."""
    for enc, s, data, units in [
        ("utf8", "aé", "aé".encode(), 3),
        ("utf16", "aé", "aé".encode("utf-16-le"), 2),
        ("latin1+utf16", "aé", "aé".encode("latin-1"), 2),
        ("latin1+utf16", "a☃", "a☃".encode("utf-16-le"), 2 | 1 << 31),
    ]:
        opts = options(enc)
        seen: List[Tuple[Any, ...]] = []
        call = _abi.export_caller(fn((P.STRING,), None), lambda *flat: seen.append(flat) or (), opts, None, False)
        call(s)
        (ptr, n), = seen
        assert n == units, enc
        assert bytes(opts.memory.data[ptr:ptr + len(data)]) == data
        assert opts.realloc.calls == [(0, 0, 1 if enc == "utf8" else 2, len(data))]


def test_lone_surrogate_is_refused_with_todays_message() -> None:
    call = echo(P.STRING)
    with pytest.raises(ValueError, match=r"parameter 'p0' \(string\): expected string, got a str that is not "
                                         r"valid Unicode \(lone surrogate at index 1\)"):
        call("a\udc80")
    with pytest.raises(TypeError, match="expected string \\(a str\\), got bytes"):
        call(b"x")


@pytest.mark.parametrize("enc,data,units", [
    ("utf8", b"\xff\xfe", 2), ("utf16", b"\x00\xd8", 1), ("latin1+utf16", b"\x00\xdc", 1 | 1 << 31),
])
def test_invalid_strings_from_the_guest_trap(enc: str, data: bytes, units: int) -> None:
    opts = options(enc)
    opts.memory.data[64:64 + len(data)] = data
    call = _abi.export_caller(fn((), td(w.Tuple((P.STRING, P.U8)))),
                              lambda: (_store_pair(opts, 128, 64, units),), opts, None, False)
    with pytest.raises(Trap, match="invalid utf"):
        call()


def _store_pair(opts: _abi.CallOptions, at: int, ptr: int, n: int) -> int:
    struct.pack_into("<II", opts.memory.data, at, ptr, n)
    return at


@pytest.mark.parametrize("ptr,n,text", [
    (1 << 16, 1, "past the end of memory"),
    ((1 << 16) - 4, 2, "past the end of memory"),
    (0xFFFFFFFC, 0xFFFFFFFF, "past the end of memory"),
    (2, 1, "not aligned to 4"),
])
def test_hostile_list_pointers_trap(ptr: int, n: int, text: str) -> None:
    opts = options()
    call = _abi.export_caller(fn((), td(w.List(P.U32))), lambda: (_store_pair(opts, 8, ptr, n),), opts,
                              None, False)
    with pytest.raises(Trap, match=text):
        call()


def test_hostile_return_pointer_and_realloc_trap() -> None:
    opts = options()
    call = _abi.export_caller(fn((), P.STRING), lambda: (0xFFFFFFF0,), opts, None, False)
    with pytest.raises(Trap, match="result in memory"):
        call()
    call = _abi.export_caller(fn((), P.STRING), lambda: (3,), opts, None, False)
    with pytest.raises(Trap, match="not aligned to 4"):
        call()
    bad = _abi.CallOptions(memory=FakeMemory(), realloc=lambda *a: 0xFFFF0, string_encoding="utf8")
    call = _abi.export_caller(fn((P.STRING,), None), lambda *a: (), bad, None, False)
    with pytest.raises(Trap, match="past the end of memory"):
        call("abc")
    odd = _abi.CallOptions(memory=FakeMemory(), realloc=lambda *a: 3, string_encoding="utf16")
    call = _abi.export_caller(fn((P.STRING,), None), lambda *a: (), odd, None, False)
    with pytest.raises(Trap, match="misaligned"):
        call("abc")


def test_numbers_lists_go_in_bulk_and_keep_todays_checks() -> None:
    for prim, values in [(P.U32, list(range(100000))), (P.S16, [-32768, 0, 32767]), (P.F64, [0.5, -1e300]),
                         (P.S64, [-(1 << 63), (1 << 63) - 1]), (P.F32, [0.5, 1.25]), (P.U16, [])]:
        call = echo(td(w.List(prim)))
        code = array_code(prim)
        assert code is not None
        want = array.array(code, values)
        for given_value in (values, tuple(values), want, memoryview(want)):
            got = call(given_value)
            assert type(got) is array.array and got.typecode == code and got == want
    call = echo(td(w.List(P.U32)))
    with pytest.raises(ValueError, match=r"parameter 'p0' \(list<u32>\): item 2: expected u32 .* got -1: out of range"):
        call([1, 2, -1])
    with pytest.raises(TypeError, match="item 1: expected u32 .*got bool True"):
        call([1, True])
    with pytest.raises(TypeError, match="expected list<u32> \\(a list, tuple or array.array\\('I'\\)\\), got str"):
        call("abc")
    with pytest.raises(TypeError, match="expected list<u32> .*got bytes"):
        call(b"abcd")  # raw bytes are not numbers: no silent reinterpretation
    # an array of another number type goes item by item, with the same checks
    assert call(array.array("q", [1, 2, 3])) == array.array("I", [1, 2, 3])
    assert call(array.array("B", [255])) == array.array("I", [255])
    with pytest.raises(ValueError, match="item 1: expected u32 .* got -5: out of range"):
        call(array.array("i", [1, -5]))
    with pytest.raises(TypeError, match="item 0: expected u32 .*got float"):
        call(array.array("d", [1.0]))
    # a 2-D or strided buffer of the right type is refused, not misread
    with pytest.raises(TypeError, match="expected list<u32>"):
        call(memoryview(array.array("I", [1, 2, 3, 4])).cast("B").cast("I", (2, 2)))
    assert call(memoryview(array.array("I", [1, 2, 3, 4]))[::2]) == array.array("I", [1, 3])


def test_lists_of_strings_and_records_move_with_a_moving_memory() -> None:
    """Memory starts tiny and moves on every grow: a stale view would lose writes."""
    point = rec(P.U8, P.STRING, name="pt")
    func = fn((td(w.List(point)),), td(w.List(point)))
    opts = options(size=64)
    call = _abi.export_caller(func, guest_echo(func, opts), opts, None, False)
    Pt = class_for(point)
    values = [Pt(i % 256, "s" * i) for i in range(300)]
    assert call(values) == values


T_REC = rec(P.U8, P.U32, P.U16, name="small")
T_VAR = var(None, P.U8, P.STRING, P.F32, P.U64, rec(P.F64, P.CHAR, name="inner"), name="big")
T_ENUM = td(w.Enum((w.EnumCase("a"), w.EnumCase("b-c"))), "en")
T_FLAGS = td(w.Flags(tuple(w.Flag(f"f{i}") for i in range(40))), "fl")
T_NESTED = td(w.Option(td(w.Option(P.U32))))
T_RESULT = td(w.Result(P.STRING, td(w.List(P.S8))))
T_TUPLE = td(w.Tuple((P.BOOL, P.F32, P.STRING, T_ENUM)))
T_FIXED = td(w.FixedList(P.CHAR, 2))
T_MAP = td(w.Map(P.STRING, td(w.Option(P.U16))))

ALL = [P.BOOL, P.U8, P.S8, P.U16, P.S16, P.U32, P.S32, P.U64, P.S64, P.F32, P.F64, P.CHAR, P.STRING,
       td(w.List(P.U8)), td(w.List(P.S32)), td(w.List(P.STRING)), T_REC, T_VAR, T_ENUM, T_FLAGS,
       T_NESTED, T_RESULT, T_TUPLE, T_FIXED, td(w.Option(P.F32)), td(w.Result(None, P.U8)),
       td(w.List(T_VAR)), rec(T_TUPLE, T_FLAGS, td(w.List(P.BOOL)), name="everything"), T_MAP]


def values(ty: w.Type) -> st.SearchStrategy[Any]:
    """Hypothesis values of a WIT type, as our Python mapping has them."""
    ty = w.unalias(ty)
    if isinstance(ty, w.Primitive):
        if ty is P.BOOL:
            return st.booleans()
        if ty in (P.F32,):
            return st.floats(width=32, allow_nan=False)
        if ty is P.F64:
            return st.floats(allow_nan=False)
        if ty is P.CHAR:
            return st.characters(blacklist_categories=("Cs",))
        if ty is P.STRING:
            return st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
        lo, hi, _ = __import__("wasm_import.types._checks", fromlist=["x"]).int_bounds(ty)
        return st.integers(lo, hi)
    kind = ty.kind
    match kind:
        case w.Record(fields=fields):
            cls = class_for(ty)
            return st.builds(cls, *[values(f.type) for f in fields])
        case w.Tuple(types=types):
            return st.tuples(*[values(t) for t in types])
        case w.Variant():
            strategies = [st.builds(cls, values(c.type)) if has else st.builds(cls)
                          for (_, cls, has), c in zip(variant_classes(ty).cases, kind.cases)]
            return st.one_of(*strategies)
        case w.Enum():
            return st.sampled_from(list(class_for(ty)))
        case w.Flags(flags=flags):
            return st.integers(0, (1 << len(flags)) - 1).map(class_for(ty))
        case w.Option(type=inner):
            nested = isinstance(w.unalias(inner), w.TypeDef) and isinstance(w.unalias(inner).kind, w.Option)
            inner_values = values(inner).map(Some) if nested else values(inner)
            return st.none() | inner_values
        case w.Result(ok=ok, err=err):
            return (values(ok).map(Ok) if ok else st.just(Ok(None))) | (values(err).map(Err) if err else st.just(Err(None)))
        case w.List(element=el):
            if w.unalias(el) is P.U8:
                return st.binary(max_size=40)
            code = array_code(el)
            if code is not None:  # a list, or the array it comes back as
                return st.lists(values(el), max_size=6) | st.lists(values(el), max_size=6).map(
                    lambda items: array.array(code, items))
            return st.lists(values(el), max_size=6)
        case w.FixedList(element=el, size=n):
            return st.lists(values(el), min_size=n, max_size=n)
        case w.Map(key=k, value=v):
            return st.dictionaries(values(k), values(v), max_size=5)
    raise AssertionError(ty)


@pytest.mark.parametrize("ty", ALL, ids=[str(i) for i in range(len(ALL))])
@pytest.mark.parametrize("encoding", ["utf8", "utf16", "latin1+utf16"])
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_kind_round_trips(ty: w.Type, encoding: str, data: Any) -> None:
    value = data.draw(values(ty))
    assert echo(ty, encoding)(value) == _as_lifted(value, ty)  # array == list is False
    # 17 params: everything goes through memory, result too
    many = data.draw(st.lists(values(ty), min_size=17, max_size=17))
    func = fn((ty,) * 17, td(w.Tuple((ty,) * 17)))
    opts = options(encoding)
    call = _abi.export_caller(func, _tuple_guest(func, opts), opts, None, False)
    assert call(*many) == tuple(_as_lifted(v, ty) for v in many)


def _as_lifted(v: Any, ty: w.Type) -> Any:
    """What lifting gives back for `v` going in: a list of numbers comes back as an
    array.array of its typecode; everything else as it went in (walked by the WIT type)."""
    ty = w.unalias(ty)
    if isinstance(ty, w.Primitive):
        return v
    match ty.kind:
        case w.List(element=el):
            if w.unalias(el) is P.U8:
                return v
            code = array_code(el)
            return array.array(code, v) if code is not None else [_as_lifted(x, el) for x in v]
        case w.FixedList(element=el):
            return [_as_lifted(x, el) for x in v]
        case w.Tuple(types=types):
            return tuple(_as_lifted(x, t) for x, t in zip(v, types))
        case w.Record(fields=fields):
            return dataclasses.replace(v, **{f.name.replace("-", "_"): _as_lifted(getattr(v, f.name.replace("-", "_")), f.type)
                                             for f in fields})
        case w.Variant(cases=cases):
            for (_, cls, has), case in zip(variant_classes(ty).cases, cases):
                if type(v) is cls and has and case.type is not None:
                    return cls(_as_lifted(v.value, case.type))
            return v
        case w.Option(type=inner):
            if v is None:
                return None
            if isinstance(v, Some):
                return Some(_as_lifted(v.value, inner))
            return _as_lifted(v, inner)
        case w.Result(ok=ok, err=err):
            if isinstance(v, Ok):
                return Ok(_as_lifted(v.value, ok) if ok is not None else v.value)
            return Err(_as_lifted(v.value, err) if err is not None else v.value)
        case w.Map(key=k, value=val):
            return {_as_lifted(a, k): _as_lifted(b, val) for a, b in v.items()}
    return v


def _tuple_guest(func: w.Function, opts: _abi.CallOptions) -> Any:
    sig = _abi._Signature(func, _abi.codec_for(None, opts.string_encoding), "lift")

    def core(*flat: Any) -> Tuple[Any, ...]:
        cx = _abi.CallContext(opts)
        cx.refresh()
        args = _abi.lift_values(cx, sig, flat)
        ptr = cx.alloc(sig.result.align, sig.result.size)
        sig.result.store(cx, tuple(args), ptr)
        return (ptr,)

    return core


def test_record_and_variant_errors_say_where() -> None:
    Small = class_for(T_REC)
    call = echo(T_REC)
    assert call(Small(1, 2, 3)) == Small(1, 2, 3)
    with pytest.raises(ValueError, match=r"parameter 'p0' \(small\): field 'f1' of Small: expected u32 .*: out of range"):
        call(Small(1, -2, 3))
    with pytest.raises(TypeError, match=r"expected record small \(Small\), got int 5"):
        call(5)
    big = variant_classes(T_VAR)
    vcall = echo(T_VAR)
    assert vcall(big.cases[2][1]("hi")) == big.cases[2][1]("hi")
    with pytest.raises(TypeError, match=r"Big_C2.value: expected string \(a str\), got int 3"):
        vcall(big.cases[2][1](3))
    with pytest.raises(TypeError, match=r"expected variant big \(Big_C0 \| Big_C1"):
        vcall("nope")
    with pytest.raises(TypeError, match=r"\(None or Some\(\.\.\.\)\), got int 3"):
        echo(T_NESTED)(3)
    with pytest.raises(TypeError, match=r"Ok\(\.\.\.\) or Err\(\.\.\.\)"):
        echo(T_RESULT)("x")


def test_map_is_a_dict() -> None:
    call = echo(T_MAP)
    assert call({"a": 1, "b": None}) == {"a": 1, "b": None}
    with pytest.raises(TypeError, match=r"expected map<string, option<u16>> \(a dict\), got list"):
        call([("a", 1)])


def test_a_guest_list_of_empty_values_is_bounded() -> None:
    opts = options()
    empty = td(w.Tuple(()))
    call = _abi.export_caller(fn((), td(w.List(empty))), lambda: (_store_pair(opts, 8, 16, 3),), opts, None, False)
    assert call() == [(), (), ()]
    call = _abi.export_caller(fn((), td(w.List(empty))), lambda: (_store_pair(opts, 8, 16, 1 << 30),), opts,
                              None, False)
    with pytest.raises(Trap, match="longer than the spec allows"):
        call()


def test_variant_case_index_from_the_guest_is_checked() -> None:
    call = _abi.export_caller(fn((), T_ENUM), lambda: (2,), options(), None, False)
    with pytest.raises(Trap, match="invalid case index 2 for en"):
        call()


def test_joined_flat_payloads_are_coerced() -> None:
    """variant { f32, u64 } flattens to [i32, i64]: an f32 travels as its bits in an i64."""
    ty = var(P.F32, P.U64, name="fu")
    seen = []
    call = _abi.export_caller(fn((ty,), None), lambda *flat: seen.append(flat) or (), options(), None, False)
    cls = variant_classes(ty).cases[0][1]
    call(cls(1.5))
    assert seen == [(0, struct.unpack("<I", struct.pack("<f", 1.5))[0])]
    assert echo(ty)(cls(1.5)) == cls(1.5)


def test_returned_result_raises_err() -> None:
    ty = td(w.Result(P.U32, P.STRING))
    opts = options()
    func = fn((ty,), ty)
    call = _abi.export_caller(func, guest_echo(func, opts), opts, None, True)
    assert call(Ok(5)) == 5
    with pytest.raises(Err) as info:
        call(Err("bad"))
    assert info.value.value == "bad"


# -- hostile Python values ---------------------------------------------------------------------------

def test_lying_len_subclasses_give_consistent_data() -> None:
    class LongList(list):
        def __len__(self) -> int:
            return 1 << 20

    class ShortList(list):
        def __len__(self) -> int:
            return 0

    class LongStr(str):
        def __len__(self) -> int:
            return 1 << 30

        def encode(self, *a: Any) -> bytes:
            return b"\xff" * 100

    class ShortBytes(bytes):
        def __len__(self) -> int:
            return 1

    ints = echo(td(w.List(P.U32)))
    strs = echo(td(w.List(P.STRING)))
    for _ in range(200):
        assert ints(LongList([1, 2, 3])) == array.array("I", [1, 2, 3])
        assert ints(ShortList([1, 2, 3])) == array.array("I", [1, 2, 3])
        assert strs(LongList(["a", "b"])) == ["a", "b"]
        assert echo(P.STRING)(LongStr("xyz")) == "xyz"
        assert echo(td(w.List(P.U8)))(ShortBytes(b"abcdef")) == b"abcdef"


def test_a_list_mutated_by_another_thread_gives_consistent_data() -> None:
    shared = list(range(1000))
    stop = threading.Event()

    def mutate() -> None:
        while not stop.is_set():
            shared.append(7)
            del shared[:3]
            shared.extend(["x"] * 2)
            del shared[-2:]

    ints = echo(td(w.List(P.U32)))
    t = threading.Thread(target=mutate)
    t.start()
    try:
        for _ in range(2000):
            try:
                got = ints(shared)
            except (TypeError, ValueError):
                continue
            assert all(isinstance(x, int) for x in got)
    finally:
        stop.set()
        t.join()


# -- host callbacks ----------------------------------------------------------------------------------------

def _guest_calls(func: w.Function, callback: Any, opts: _abi.CallOptions, args: List[Any]) -> Any:
    """Play a guest calling the import `func` through `callback`; what it gets back."""
    sig = _abi._Signature(func, _abi.codec_for(None, opts.string_encoding), "lower")
    cx = _abi.CallContext(opts)
    cx.refresh()
    flat = _abi.lower_values(cx, sig, args, lambda k, e: e)
    if sig.flat.results_in_memory:
        ret = cx.alloc(sig.result.align, sig.result.size)
        assert callback(*flat, ret) == ()
        cx.refresh()
        return sig.result.load(cx, ret)
    out = callback(*flat)
    cx.refresh()
    return sig.result.lift(cx, out, 0) if sig.result is not None else out


def test_host_callback_lifts_args_and_lowers_results() -> None:
    opts = options()
    got = []

    def target(*args: Any) -> Any:
        got.append(args)
        return [a * 2 for a in args[1]]

    func = fn((P.STRING, td(w.List(P.U32))), td(w.List(P.U32)))
    callback = _abi.host_callback(func, target, opts, None, False, "host.f")
    assert _guest_calls(func, callback, opts, ["héllo", [1, 2, 3]]) == array.array("I", [2, 4, 6])
    assert got == [("héllo", array.array("I", [1, 2, 3]))]  # the host is given an array


def test_host_callback_scalars_and_results() -> None:
    opts = options()
    add = _abi.host_callback(fn((P.U32, P.S8), P.S64), lambda a, b: a + b, opts, None, False)
    assert add(5, 0xFF) == (4,)
    neg = _abi.host_callback(fn((), P.S32), lambda: -1, opts, None, False)
    assert neg() == (0xFFFFFFFF,)
    bad = _abi.host_callback(fn((), P.U8), lambda: 256, opts, None, False, "host.g")
    with pytest.raises(ValueError, match=r"host.g returned a bad value for WIT type u8: expected u8 .* out of range"):
        bad()
    res = td(w.Result(P.STRING, P.U8))
    func = fn((P.BOOL,), res)

    def maybe(ok: bool) -> str:
        if ok:
            return "fine"
        raise Err(7)

    cb = _abi.host_callback(func, maybe, opts, None, True)
    assert _guest_calls(func, cb, opts, [True]) == Ok("fine")
    assert _guest_calls(func, cb, opts, [False]) == Err(7)
    nothing = _abi.host_callback(fn((), None), lambda: 42, opts, None, False)
    assert nothing() == ()


def test_host_callback_with_many_params_reads_them_from_memory() -> None:
    opts = options()
    func = fn((P.STRING,) * 17, P.STRING)
    cb = _abi.host_callback(func, lambda *a: "".join(a), opts, None, False)
    assert _guest_calls(func, cb, opts, [str(i) for i in range(17)]) == "".join(str(i) for i in range(17))


def test_host_callback_refuses_to_run_while_the_instance_may_not_leave() -> None:
    opts = options()
    cb = _abi.host_callback(fn((), None), lambda: None, opts, None, False)
    opts.inst.may_leave = False
    with pytest.raises(Trap, match="may not leave"):
        cb()


def test_lazy_options_are_resolved_on_first_call() -> None:
    made = []

    def later() -> _abi.CallOptions:
        made.append(1)
        return options()

    call = _abi.export_caller(fn((P.U8,), P.U8), lambda x: (x,), later, None, False)
    assert made == []
    assert call(3) == 3 and call(4) == 4 and made == [1]


def test_post_return_runs_after_the_result_is_lifted() -> None:
    order = []
    opts = options()
    opts.post_return = lambda *r: order.append(("post", r))
    func = fn((P.STRING,), P.STRING)
    guest = guest_echo(func, opts)

    def core(*flat: Any) -> Any:
        order.append("call")
        return guest(*flat)

    call = _abi.export_caller(func, core, opts, None, False)
    assert call("x") == "x"
    assert order[0] == "call" and order[1][0] == "post"
    scalar = _abi.export_caller(fn((), P.U8), lambda: (1,), opts, None, False)
    assert scalar() == 1 and order[-1] == ("post", (1,))


# -- handles and resources ----------------------------------------------------------------------------

RES = td(w.Resource(), "blob")
OWN, BORROW = td(w.Own(RES)), td(w.Borrow(RES))


def test_handle_table_follows_the_spec() -> None:
    table = h.HandleTable()
    rt = h.ResourceType("blob")
    a, b = table.add(h.Handle(rt, 10, True)), table.add(h.Handle(rt, 11, True))
    assert (a, b) == (1, 2) and len(table) == 2
    assert table.remove(a).rep == 10
    assert table.add(h.Handle(rt, 12, True)) == 1  # freed slots are reused
    for bad in (0, 3, -1, 1 << 40):
        with pytest.raises(Trap, match=f"unknown handle index {bad}"):
            table.get(bad)


def test_resource_new_rep_drop() -> None:
    dropped = []
    inst = h.InstanceState("guest")
    rt = h.ResourceType("blob", inst, dropped.append)
    other = h.ResourceType("other", inst)
    i = h.resource_new(inst, rt, 42)
    assert h.resource_rep(inst, rt, i) == 42
    with pytest.raises(Trap, match=f"handle index {i} is a blob handle, not other"):
        h.resource_rep(inst, other, i)
    h.resource_drop(inst, rt, i)
    assert dropped == [42]
    with pytest.raises(Trap, match="unknown handle index"):
        h.resource_drop(inst, rt, i)
    inst.may_leave = False
    with pytest.raises(Trap, match="may not leave"):
        h.resource_new(inst, rt, 1)


def test_borrows_lent_to_a_callee_must_be_dropped_before_it_returns() -> None:
    host_rt = h.ResourceType("blob")  # implemented by the host
    policy = h.SpecPolicy(lambda cx, typedef: host_rt)
    opts = options()
    guest_handles = []

    def forgets(handle: int) -> Tuple[int]:
        guest_handles.append(handle)
        return (h.resource_rep(opts.inst, host_rt, handle),)

    call = _abi.export_caller(fn((BORROW,), P.U32), forgets, opts, policy, False, "m.peek")
    with pytest.raises(Trap, match="borrow handles still remain at the end of the call to m.peek"):
        call(h.Rep(host_rt, 7))

    def drops(handle: int) -> Tuple[int]:
        rep = h.resource_rep(opts.inst, host_rt, handle)
        h.resource_drop(opts.inst, host_rt, handle)  # dropping a borrow runs no destructor
        return (rep,)

    call = _abi.export_caller(fn((BORROW,), P.U32), drops, opts, policy, False, "m.peek")
    assert call(h.Rep(host_rt, 7)) == 7
    with pytest.raises(TypeError, match="expected a blob resource, got int 7"):
        call(7)


def test_a_borrow_into_the_implementing_instance_is_the_rep_itself() -> None:
    opts = options()
    rt = h.ResourceType("blob", opts.inst)
    seen = []
    call = _abi.export_caller(fn((BORROW,), None), lambda i: seen.append(i) or (), opts,
                              h.SpecPolicy(lambda cx, t: rt), False)
    call(h.Rep(rt, 99))
    assert seen == [99] and len(opts.inst.handles) == 0


def test_own_results_and_params_move_handles() -> None:
    opts = options()
    rt = h.ResourceType("blob", opts.inst)
    policy = h.SpecPolicy(lambda cx, t: rt)
    made = _abi.export_caller(fn((), OWN), lambda: (h.resource_new(opts.inst, rt, 5),), opts, policy, False)
    rep = made()
    assert rep == h.Rep(rt, 5) and len(opts.inst.handles) == 0  # lifted out: the host owns it now
    got = []
    give = _abi.export_caller(fn((OWN,), None), lambda i: got.append(i) or (), opts, policy, False)
    give(rep)
    assert h.resource_rep(opts.inst, rt, got[0]) == 5


def test_host_callback_lends_borrows_for_the_call_only() -> None:
    opts = options()
    rt = h.ResourceType("blob", opts.inst)
    policy = h.SpecPolicy(lambda cx, t: rt)
    i = h.resource_new(opts.inst, rt, 3)
    during = []

    def target(b: h.Rep) -> None:
        during.append(opts.inst.handles.get(i).lends)
        with pytest.raises(Trap, match="lent out"):
            h.resource_drop(opts.inst, rt, i)

    cb = _abi.host_callback(fn((BORROW,), None), target, opts, policy, False)
    assert cb(i) == ()
    assert during == [1] and opts.inst.handles.get(i).lends == 0
    take = _abi.host_callback(fn((OWN,), None), lambda o: got.append(o), opts, policy, False)
    got: List[Any] = []
    take(i)
    assert got == [h.Rep(rt, 3)] and len(opts.inst.handles) == 0
    with pytest.raises(Trap, match="unknown handle index"):
        take(i)
    j = h.resource_new(opts.inst, rt, 4)
    borrowed = h.lower_borrow(opts.inst, h.CallScope(), h.ResourceType("x"), 1)
    with pytest.raises(Trap, match="is a x handle, not blob"):
        take(borrowed)
    assert h.resource_rep(opts.inst, rt, j) == 4


def test_composed_call_moves_values_and_handles_between_instances() -> None:
    """Instance A calls B's `f(s: string, b: borrow<blob>, o: own<blob>) -> list<string>`; blob
    is implemented by B, A's strings are utf16 and B's utf8."""
    a, b = options("utf16"), options("utf8")
    rt = h.ResourceType("blob", b.inst)
    func = fn((P.STRING, BORROW, OWN), td(w.List(P.STRING)))
    seen = []
    b_sig = _abi._Signature(func, _abi.codec_for(h.PASS_THROUGH, "utf8"), "lift")

    def b_core(*flat: Any) -> Tuple[int]:
        cx = _abi.CallContext(b)
        cx.refresh()
        s_ptr, s_len, borrowed, owned = flat
        seen.append((bytes(b.memory.data[s_ptr:s_ptr + s_len]).decode(), borrowed, h.resource_rep(b.inst, rt, owned)))
        ptr = cx.alloc(4, 8)
        b_sig.result.store(cx, [str(borrowed), "z"], ptr)
        return (ptr,)

    cb = _abi.lowered_lift_callback(func, b_core, b, a)
    lent = h.resource_new(a.inst, rt, 100)  # (A holds handles to B's blobs)
    moved = h.resource_new(a.inst, rt, 200)
    a_sig = _abi._Signature(func, _abi.codec_for(h.PASS_THROUGH, "utf16"), "lower")
    cx = _abi.CallContext(a)
    cx.refresh()
    flat: List[Any] = []
    a_sig.params[0].lower(cx, "héllo", flat)
    ret = cx.alloc(4, 8)
    assert cb(*flat, lent, moved, ret) == ()
    cx.refresh()
    assert a_sig.result.load(cx, ret) == ["100", "z"]
    assert seen == [("héllo", 100, 200)]
    assert a.inst.handles.get(lent).lends == 0 and len(a.inst.handles) == 1  # `moved` left A


def test_composition_through_python_values_with_pass_through() -> None:
    """The other way to compose: host_callback (caller side) -> Python values -> export_caller
    (callee side), resources moving as Reps by PASS_THROUGH."""
    a, b = options("latin1+utf16"), options("utf8")
    rt = h.ResourceType("blob", b.inst)
    func = fn((P.STRING, BORROW), P.STRING)
    got = []

    def b_core(s_ptr: int, s_len: int, rep: int) -> Tuple[int]:
        got.append((bytes(b.memory.data[s_ptr:s_ptr + s_len]).decode(), rep))
        cx = _abi.CallContext(b)
        cx.refresh()
        ret = cx.alloc(4, 8)
        _abi.codec_for(None, "utf8").converter(P.STRING).store(cx, "ok ☃", ret)
        return (ret,)

    callee = _abi.export_caller(func, b_core, b, h.PASS_THROUGH, False, "<composed>")
    callback = _abi.host_callback(func, callee, a, h.PASS_THROUGH, False)
    i = h.resource_new(a.inst, rt, 55)
    sig = _abi._Signature(func, _abi.codec_for(h.PASS_THROUGH, "latin1+utf16"), "lower")
    cx = _abi.CallContext(a)
    cx.refresh()
    flat: List[Any] = []
    sig.params[0].lower(cx, "hé", flat)
    ret = cx.alloc(4, 8)
    assert callback(*flat, i, ret) == ()
    cx.refresh()
    assert sig.result.load(cx, ret) == "ok ☃"
    assert got == [("hé", 55)] and a.inst.handles.get(i).lends == 0
