"""WAVE text <-> Python values, typed by the WIT model (wasm_import.cli._wave).

The WIT types here are built directly as model TypeDefs: no component is needed.
"""

from __future__ import annotations

import array
import dataclasses
import enum
import math
from typing import Any, Dict, List, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasm_import import Err, Ok, Some
from wasm_import.wit import _model as w
from wasm_import.types._pytypes import array_code, class_for, is_option, variant_classes
from wasm_import.cli._wave import WaveError, parse, parse_call, to_wave

P = w.Primitive
OWNER = w.InterfaceRef("gen", w.PackageName("test", "wave"))


def named(kind: w.TypeDefKind, name: str) -> w.TypeDef:
    return w.TypeDef(kind, name, OWNER)


def anon(kind: w.TypeDefKind) -> w.TypeDef:
    return w.TypeDef(kind)


RECT = named(w.Record((w.Field("width", P.F64), w.Field("height", P.F64),
                       w.Field("note", anon(w.Option(P.STRING))))), "rect-size")
POINT = named(w.Record((w.Field("x", P.S32), w.Field("y", P.S32))), "point")
SHAPE = named(w.Variant((w.Case("none", None), w.Case("circle", P.F64), w.Case("rectangle", RECT),
                         w.Case("unit-square", None))), "shape")
LIGHT = named(w.Enum((w.EnumCase("red"), w.EnumCase("ok"), w.EnumCase("green-arrow"))), "light")
PERMS = named(w.Flags((w.Flag("read"), w.Flag("write"), w.Flag("exec-bit"))), "perms")
NESTED = anon(w.Option(anon(w.Option(P.U32))))
RESULT = anon(w.Result(P.U32, P.STRING))


# -- the notation of the issue, one example of each ---------------------------------------------

@pytest.mark.parametrize("text, ty, expected", [
    ("42", P.U32, 42),
    ("-1.5", P.F64, -1.5),
    ("'c'", P.CHAR, "c"),
    ('"str"', P.STRING, "str"),
    ("[1, 2]", anon(w.List(P.U32)), array.array("I", [1, 2])),
    ("[1, 2]", anon(w.List(P.U8)), b"\x01\x02"),
    ('(1, "a")', anon(w.Tuple((P.U8, P.STRING))), (1, "a")),
    ("{x: 1, y: 2}", POINT, class_for(POINT)(1, 2)),
    ("some(3)", anon(w.Option(P.U8)), 3),
    ("none", anon(w.Option(P.U8)), None),
    ("ok(1)", RESULT, Ok(1)),
    ('err("e")', RESULT, Err("e")),
    ("red", LIGHT, class_for(LIGHT).RED),  # type: ignore[attr-defined]
    ("{read, write}", PERMS, class_for(PERMS).READ | class_for(PERMS).WRITE),  # type: ignore[attr-defined]
    ("circle(2.0)", SHAPE, variant_classes(SHAPE).cases[1][1](2.0)),
])
def test_issue_examples(text: str, ty: w.Type, expected: Any) -> None:
    assert parse(text, ty) == expected


@pytest.mark.parametrize("text, ty, expected", [
    ("3", anon(w.Option(P.U8)), 3),                          # a flat `some`
    ("7", RESULT, Ok(7)),                                    # a flat `ok`
    ("some(none)", NESTED, Some(None)),
    ("some(some(4))", NESTED, Some(4)),
    ("ok", anon(w.Result(None, None)), Ok()),
    ("err", anon(w.Result(None, None)), Err()),
    ("%ok", LIGHT, class_for(LIGHT).OK),  # type: ignore[attr-defined]
    ("%none", SHAPE, variant_classes(SHAPE).cases[0][1]()),
    ("{width: 1, height: 2}", RECT, class_for(RECT)(1.0, 2.0, None)),   # omitted option field
    ("{height: 2, width: 1, note: \"n\",}", RECT, class_for(RECT)(1.0, 2.0, "n")),
    ("{}", PERMS, class_for(PERMS)(0)),
    ("(1)", anon(w.Tuple((P.U8,))), (1,)),
    ("(1,)", anon(w.Tuple((P.U8,))), (1,)),
    ("[1, 2, // a comment\n 3,]", anon(w.List(P.U16)), array.array("H", [1, 2, 3])),
    ("-inf", P.F32, -math.inf),
    ("6.5e3", P.F64, 6500.0),
    ("'\\u{1F680}'", P.CHAR, "\U0001F680"),
    ('"tab\\there \\"q\\" \\\\ \\n"', P.STRING, 'tab\there "q" \\ \n'),
    ('"""\n    Indentation determined\n      by ending delimiter\n  """', P.STRING,
     "  Indentation determined\n    by ending delimiter"),
    ("[(\"a\", 1), (\"b\", 2)]", anon(w.Map(P.STRING, P.U8)), {"a": 1, "b": 2}),
    ("[1, 2]", anon(w.FixedList(P.U8, 2)), [1, 2]),
    ("18446744073709551615", P.U64, 2**64 - 1),
    ("-9223372036854775808", P.S64, -2**63),
])
def test_parse(text: str, ty: w.Type, expected: Any) -> None:
    assert parse(text, ty) == expected


def test_empty_record_is_written_with_a_colon() -> None:
    only_optional = named(w.Record((w.Field("maybe", anon(w.Option(P.U8))),)), "all-optional")
    value = parse("{:}", only_optional)
    assert value == class_for(only_optional)(None)
    assert to_wave(value, only_optional) == "{:}"


def test_f32_is_rounded_and_printed_shortest() -> None:
    value = parse("0.1", P.F32)
    assert value != 0.1 and to_wave(value, P.F32) == "0.1"
    assert to_wave(1e30, P.F32) == "1e+30"


@pytest.mark.parametrize("value, ty, text", [
    (Some(None), NESTED, "some(none)"),
    (None, NESTED, "none"),
    ("it's \"x\"\n", P.STRING, '"it\'s \\"x\\"\\n"'),
    ("'", P.CHAR, "'\\''"),
    ("\x00", P.CHAR, "'\\u{0}'"),
    (b"\x00\xff", anon(w.List(P.U8)), "[0, 255]"),
    (class_for(RECT)(1.5, 2.0, None), RECT, "{width: 1.5, height: 2.0}"),
    (float("nan"), P.F64, "nan"),
    (Err(), anon(w.Result(P.U8, None)), "err"),
])
def test_print(value: Any, ty: w.Type, text: str) -> None:
    assert to_wave(value, ty) == text


@pytest.mark.parametrize("value, ty", [
    (300, P.U8), (True, P.U32), ("ab", P.CHAR), (None, P.STRING), (1, NESTED),
    (Ok("x"), anon(w.Result(None, P.STRING))), ([1, 2, 3], anon(w.FixedList(P.U8, 2))),
])
def test_print_rejects_values_of_another_type(value: Any, ty: w.Type) -> None:
    with pytest.raises((TypeError, ValueError)):
        to_wave(value, ty)


# -- errors: one line, then the text and a caret under the column -------------------------------

@pytest.mark.parametrize("text, ty, column, words", [
    ("256", P.U8, 1, "out of range for u8"),
    ("[1, 2 3]", anon(w.List(P.U8)), 7, "expected ',' or ']'"),
    ("blue", LIGHT, 1, "has no case 'blue'"),
    ("ok", LIGHT, 1, "write the case as %ok"),
    ("{width: 1}", RECT, 10, "lacks field height"),
    ("{width: 1, depth: 2}", RECT, 12, "has no field 'depth'"),
    ('"a\\qb"', P.STRING, 3, "bad escape"),
    ('"abc', P.STRING, 1, "unterminated string"),
    ("'ab'", P.CHAR, 1, "a char is one character"),
    ("circle", SHAPE, 1, "needs a payload"),
    ("1.5", P.S32, 1, "expected s32"),
    ("1 2", P.U32, 3, "after the value"),
    ("some(some(1))", anon(w.Option(P.U8)), 6, "expected u8"),
    ("{read, read}", PERMS, 8, "given twice"),
    ("1e39", P.F32, 1, "out of range for f32"),
    ("", P.U8, 1, "found the end of the text"),
])
def test_error_points_at_the_column(text: str, ty: w.Type, column: int, words: str) -> None:
    with pytest.raises(WaveError) as info:
        parse(text, ty)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.column == column, str(error)
    first, line, caret = str(error).split("\n")
    assert words in first
    assert line == "  " + text
    assert caret == "  " + " " * (column - 1) + "^"


def test_error_on_a_later_line_shows_that_line() -> None:
    with pytest.raises(WaveError) as info:
        parse("[1,\n 2,\n x]", anon(w.List(P.U8)))
    assert (info.value.line, info.value.column) == (3, 2)
    assert str(info.value).split("\n")[1:] == ["   x]", "   ^"]


# -- call expressions -------------------------------------------------------------------------

def _lookup(name: str) -> Sequence[w.Type]:
    signatures: Dict[str, List[w.Type]] = {"add": [P.U32, P.U32], "docs:adder/add@0.1.0#add": [P.U32, P.U32],
                  "opt": [P.U32, anon(w.Option(P.U32)), anon(w.Option(P.U32))], "nothing": []}
    if name not in signatures:
        raise LookupError(f"no export named {name!r}")
    return signatures[name]


@pytest.mark.parametrize("text, name, args", [
    ("add(1, 2)", "add", (1, 2)),
    ("  add( 1 ,2 , ) ", "add", (1, 2)),
    ("docs:adder/add@0.1.0#add(1, 2)", "docs:adder/add@0.1.0#add", (1, 2)),
    ("opt(1)", "opt", (1, None, None)),          # trailing `none`s may be left out
    ("opt(1, 2)", "opt", (1, 2, None)),
    ("nothing()", "nothing", ()),
])
def test_parse_call(text: str, name: str, args: tuple) -> None:  # type: ignore[type-arg]
    call = parse_call(text, _lookup)
    assert (call.name, call.args) == (name, args)


@pytest.mark.parametrize("text, column, words", [
    ("add(1)", 6, "missing argument"),
    ("add(1, 2, 3)", 11, "too many arguments"),
    ("nope(1)", 1, "no export named 'nope'"),
    ("add(1, 'x')", 8, "expected u32"),
    ("add", 1, "expected a call"),
    ("add(1, 2) x", 11, "after the value"),
])
def test_parse_call_errors(text: str, column: int, words: str) -> None:
    with pytest.raises(WaveError) as info:
        parse_call(text, _lookup)
    assert info.value.column == column, str(info.value)
    assert words in str(info.value).split("\n")[0]


# -- round trip: printing then parsing gives the value back, for every WIT type kind -----------

LABELS = ["a", "b-c", "ok", "none", "some", "err", "true", "inf", "type", "x2", "HTTP3", "from"]
_counter = iter(range(10**9))


def _name(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def _labels(min_size: int = 1) -> st.SearchStrategy[List[str]]:
    return st.lists(st.sampled_from(LABELS), min_size=min_size, max_size=4, unique=True)


PRIMITIVES = st.sampled_from([p for p in P if p is not P.ERROR_CONTEXT])
MAP_KEYS = st.sampled_from([P.STRING, P.U32, P.CHAR, P.BOOL, P.S8])

LEAF_TYPES = st.one_of(
    PRIMITIVES,
    _labels().map(lambda names: named(w.Enum(tuple(w.EnumCase(n) for n in names)), _name("enum"))),
    _labels().map(lambda names: named(w.Flags(tuple(w.Flag(n) for n in names)), _name("flags"))),
)


def _compound(children: st.SearchStrategy[w.Type]) -> st.SearchStrategy[w.Type]:
    maybe = st.none() | children
    return st.one_of(
        children.map(lambda t: anon(w.List(t))),
        st.tuples(children, st.integers(0, 3)).map(lambda a: anon(w.FixedList(a[0], a[1]))),
        st.tuples(MAP_KEYS, children).map(lambda a: anon(w.Map(a[0], a[1]))),
        st.lists(children, min_size=1, max_size=3).map(lambda ts: anon(w.Tuple(tuple(ts)))),
        children.map(lambda t: anon(w.Option(t))),
        st.tuples(maybe, maybe).map(lambda a: anon(w.Result(a[0], a[1]))),
        children.map(lambda t: named(w.Alias(t), _name("alias"))),
        _labels().flatmap(lambda names: st.lists(children, min_size=len(names), max_size=len(names)).map(
            lambda ts: named(w.Record(tuple(w.Field(n, t) for n, t in zip(names, ts))), _name("record")))),
        _labels().flatmap(lambda names: st.lists(maybe, min_size=len(names), max_size=len(names)).map(
            lambda ts: named(w.Variant(tuple(w.Case(n, t) for n, t in zip(names, ts))), _name("variant")))),
    )


WIT_TYPES = st.recursive(LEAF_TYPES, _compound, max_leaves=6)
TEXT = st.text(st.characters(codec="utf-8"), max_size=8)


def values_of(ty: w.Type) -> st.SearchStrategy[Any]:
    """Python values of WIT type `ty`, as the bindings make them."""
    ty = w.unalias(ty)
    if isinstance(ty, w.Primitive):
        return _PRIMITIVE_VALUES[ty]
    kind = ty.kind
    if isinstance(kind, w.List):
        if w.unalias(kind.element) is P.U8:
            return st.binary(max_size=4)
        code = array_code(kind.element)
        if code is not None:  # a list of numbers is an array
            return st.lists(values_of(kind.element), max_size=3).map(lambda xs: array.array(code, xs))
        return st.lists(values_of(kind.element), max_size=3)
    if isinstance(kind, w.FixedList):
        return st.lists(values_of(kind.element), min_size=kind.size, max_size=kind.size)
    if isinstance(kind, w.Map):
        return st.dictionaries(values_of(kind.key), values_of(kind.value), max_size=3)
    if isinstance(kind, w.Tuple):
        return st.tuples(*(values_of(t) for t in kind.types))
    if isinstance(kind, w.Record):
        return st.builds(class_for(ty), *(values_of(f.type) for f in kind.fields))
    if isinstance(kind, w.Variant):
        return st.one_of(*(st.builds(cls, values_of(case.type)) if case.type is not None else st.builds(cls)
                           for (_, cls, _), case in zip(variant_classes(ty).cases, kind.cases)))
    if isinstance(kind, w.Enum):
        members: Any = class_for(ty)
        return st.sampled_from(list(members))
    if isinstance(kind, w.Flags):
        return st.integers(0, 2 ** len(kind.flags) - 1).map(class_for(ty))
    if isinstance(kind, w.Option):
        inner = values_of(kind.type)
        return st.none() | (inner.map(Some) if is_option(kind.type) else inner)
    if isinstance(kind, w.Result):
        ok = values_of(kind.ok) if kind.ok is not None else st.none()
        err = values_of(kind.err) if kind.err is not None else st.none()
        return ok.map(Ok) | err.map(Err)
    raise AssertionError(f"no values for {ty}")


_PRIMITIVE_VALUES = {
    P.BOOL: st.booleans(),
    **{p: st.integers(lo, hi) for p, lo, hi in [
        (P.U8, 0, 2**8 - 1), (P.U16, 0, 2**16 - 1), (P.U32, 0, 2**32 - 1), (P.U64, 0, 2**64 - 1),
        (P.S8, -2**7, 2**7 - 1), (P.S16, -2**15, 2**15 - 1), (P.S32, -2**31, 2**31 - 1),
        (P.S64, -2**63, 2**63 - 1)]},
    P.F32: st.floats(width=32),
    P.F64: st.floats(),
    P.CHAR: st.characters(codec="utf-8"),
    P.STRING: TEXT,
}


def same(a: Any, b: Any) -> bool:
    """Equality that counts nan as equal to nan and tells -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, array.array) and a.typecode != b.typecode:
        return False
    if isinstance(a, (list, tuple, array.array)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, enum.Enum):
        return a is b or a == b
    return bool(a == b)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_round_trip_every_type_kind(data: st.DataObject) -> None:
    ty = data.draw(WIT_TYPES, label="type")
    value = data.draw(values_of(ty), label="value")
    text = to_wave(value, ty)
    back = parse(text, ty)
    assert same(back, value), f"{text!r} read back as {back!r}"
    assert to_wave(back, ty) == text


ALL_KINDS = {"record", "variant", "enum", "flags", "tuple", "list", "fixed-list", "map", "option",
             "result", "alias", "primitive"}


def test_round_trip_strategy_reaches_every_kind() -> None:
    """A guard against a type strategy that silently stops generating some kind."""
    seen: set = set()  # type: ignore[type-arg]

    def walk(ty: w.Type) -> None:
        if isinstance(ty, w.Primitive):
            seen.add("primitive")
            return
        name = type(ty.kind).__name__
        seen.add("fixed-list" if name == "FixedList" else name.lower())
        for child in _children(ty.kind):
            walk(child)

    @settings(max_examples=300, deadline=None, database=None)
    @given(WIT_TYPES)
    def collect(ty: w.Type) -> None:
        walk(ty)

    collect()
    assert seen >= ALL_KINDS, ALL_KINDS - seen


def _children(kind: Any) -> List[w.Type]:
    found: List[w.Type] = []
    for f in dataclasses.fields(kind):
        value = getattr(kind, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, (w.Field, w.Case)):
                item = item.type
            if isinstance(item, (w.Primitive, w.TypeDef)):
                found.append(item)
    return found

