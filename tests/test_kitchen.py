"""Typed calls on the repo's own `kitchen` guest: one echo per WIT type kind, results,
resources, per-instance state, traps and argument errors."""

from __future__ import annotations

import array
import inspect
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wasm_import
from wasm_import import Err, Ok, Some, Trap


def outcome(fn, *args):
    """A function returning `result<T, E>` returns T or raises Err(e): fold that back
    into Ok(T) / Err(e) so a round trip can be compared."""
    try:
        return Ok(fn(*args))
    except Err as e:
        return e


@pytest.fixture(scope="module")
def kitchen(kitchen_wasm):
    return wasm_import.load(kitchen_wasm)


@pytest.fixture(scope="module")
def echo(kitchen):
    return kitchen.instantiate().echo


def test_scalars(echo):
    assert echo.echo_bool(True) is True
    assert echo.echo_u8(255) == 255
    assert echo.echo_s8(-128) == -128
    assert echo.echo_u16(65535) == 65535
    assert echo.echo_s16(-32768) == -32768
    assert echo.echo_u32(2**32 - 1) == 2**32 - 1
    assert echo.echo_s32(-(2**31)) == -(2**31)
    assert echo.echo_u64(2**64 - 1) == 2**64 - 1
    assert echo.echo_s64(-(2**63)) == -(2**63)
    assert echo.echo_f32(0.1) == pytest.approx(0.1) and echo.echo_f32(0.1) != 0.1  # f32 rounds
    assert echo.echo_f64(0.1) == 0.1
    assert math.isnan(echo.echo_f64(math.nan))
    assert echo.echo_f32(math.inf) == math.inf
    assert echo.echo_char("🚩") == "🚩"
    assert echo.echo_string("héllo") == "héllo"


def test_lists_and_tuples(echo):
    assert echo.echo_bytes(b"\x00\x01\xff") == b"\x00\x01\xff"
    assert echo.echo_bytes(bytearray(b"ab")) == b"ab"
    assert echo.echo_string_list(["a", "", "ç"]) == ["a", "", "ç"]
    # lists of numbers come back as arrays (one copy, no int per item); lists or arrays go in
    u32s = [array.array("I", [1, 2]), array.array("I"), array.array("I", [3])]
    assert echo.echo_nested_list([[1, 2], [], (3,)]) == u32s
    assert echo.echo_nested_list(u32s) == u32s
    assert echo.echo_tuple((1, "x", 2.5)) == (1, "x", 2.5)


def test_records_variants_enums_flags(echo):
    person = echo.PersonInfo(full_name="Ada", age_years=36, email_address=None, tag_list=["x"])
    assert echo.echo_record(person) == person
    for shape in (echo.Shape_None_(), echo.Shape_Circle(1.5), echo.Shape_Rectangle(echo.RectSize(2.0, 3.0)),
                  echo.Shape_NamedShape("blob"), echo.Shape_UnitSquare()):
        assert echo.echo_variant(shape) == shape
        drawing = echo.Drawing(title_text="t", main_shape=shape, layer_index=7)
        assert echo.echo_drawing(drawing) == drawing
    assert echo.echo_enum(echo.TrafficLight.GREEN_ARROW) is echo.TrafficLight.GREEN_ARROW
    perms = echo.Permissions.READ | echo.Permissions.EXEC_BIT
    assert echo.echo_flags(perms) == perms
    every = echo.Flags32(2**32 - 1)
    assert echo.echo_flags32(every) == every
    assert echo.echo_flags32(echo.Flags32.B31) == echo.Flags32.B31


def test_options_and_results(echo):
    assert echo.echo_option(None) is None
    assert echo.echo_option("x") == "x"
    for v in (None, Some(None), Some(0), Some(7)):
        assert echo.echo_nested_option(v) == v
    assert echo.echo_result(Ok(3)) == 3
    with pytest.raises(Err) as info:
        echo.echo_result(Err("bad"))
    assert info.value == Err("bad")
    for fn, values in ((echo.echo_result_err_only, (Ok(), Err("e"))),
                       (echo.echo_result_ok_only, (Ok("v"), Err())),
                       (echo.echo_result_empty, (Ok(), Err()))):
        for v in values:
            assert outcome(fn, v) == v
    assert echo.echo_result_list([Ok(1), Err("two"), Ok(3)]) == [Ok(1), Err("two"), Ok(3)]
    assert echo.echo_option_list(["a", None]) == ["a", None]


def test_returned_results_return_or_raise(echo):
    assert echo.checked_div(7, 2) == 3
    with pytest.raises(Err) as info:
        echo.checked_div(1, 0)
    assert info.value.value == "division by zero"
    assert echo.parse_number("42") == 42
    with pytest.raises(Err) as info:
        echo.parse_number("")
    assert info.value.value == echo.ParseError_EmptyInput()
    assert "Raises: `wasm_import.Err(ParseError)`" in echo.parse_number.__doc__  # the variant's name
    assert echo.require_even(2) is None
    with pytest.raises(Err):
        echo.require_even(3)
    assert echo.try_unit(True) is None
    with pytest.raises(Err) as info:
        echo.try_unit(False)
    assert info.value.value is None


def test_resources(kitchen):
    inst = kitchen.instantiate()
    Counter = inst.echo.Counter
    with Counter(10) as a:
        assert a.increment() == 11
        b = Counter(5)
        merged = Counter.merge(a, b)
        assert merged.get() == 16
        first, second = inst.echo.echo_resource_pair((a, b))
    assert first.get() == 11 and second.get() == 5  # the pair moved in and came back
    with pytest.raises(ValueError, match="dropped or moved"):
        a.get()  # moved into echo_resource_pair
    assert isinstance(first, kitchen.echo.Counter)


def test_resources_cannot_cross_instances(kitchen):
    one, two = kitchen.instantiate(), kitchen.instantiate()
    counter = one.echo.Counter(1)
    with pytest.raises(ValueError, match="another instance"):
        two.echo.Counter.merge(counter, counter)
    with pytest.raises(ValueError, match="another instance"):
        two.echo.echo_resource_pair((counter, counter))
    assert counter.get() == 1  # nothing was moved by the failed call


def test_two_instances_keep_separate_state(kitchen):
    one, two = kitchen.instantiate(), kitchen.instantiate()
    assert [one.bump(), one.bump(), one.bump()] == [1, 2, 3]
    assert two.bump() == 1


def test_signatures_and_docs(kitchen):
    sig = inspect.signature(kitchen.echo.checked_div)
    assert list(sig.parameters) == ["a", "b"]
    assert sig.parameters["a"].annotation is int
    assert sig.return_annotation is int
    assert "checked-div: func(a: s32, b: s32) -> result<s32, string>" in kitchen.echo.checked_div.__doc__
    assert "Err" in kitchen.echo.checked_div.__doc__
    assert list(inspect.signature(kitchen.echo.Counter).parameters) == ["start"]
    assert kitchen.exports["test:kitchen/echo@0.1.0"] is kitchen.echo
    assert kitchen.exports["add"] is kitchen.add


def test_argument_errors_are_raised_before_entering_wasm(kitchen):
    inst = kitchen.instantiate()
    with pytest.raises(TypeError, match=r"echo_record\(\): parameter 'x' \(person-info\)"):
        inst.echo.echo_record("not a record")
    bad = inst.echo.PersonInfo(full_name="A", age_years=300, email_address=None, tag_list=[])
    with pytest.raises(ValueError, match=r"field 'age_years' of PersonInfo.*300"):
        inst.echo.echo_record(bad)
    with pytest.raises(TypeError, match=r"item 1"):
        inst.echo.echo_string_list(["a", 2])
    with pytest.raises(TypeError, match="TrafficLight"):
        inst.echo.echo_enum("red")
    # all-scalar parameters are checked and packed in one go; errors still name the parameter
    with pytest.raises(TypeError, match=r"add\(\): parameter 'b' \(s32\): expected s32 .*got str"):
        inst.add(1, "2")
    with pytest.raises(ValueError, match=r"add\(\): parameter 'a' \(s32\): .*2147483648: out of range"):
        inst.add(2**31, 0)
    with pytest.raises(TypeError, match=r"parameter 'b' \(s32\)"):
        inst.add(1, True + 0.5)
    assert not inst.poisoned
    assert inst.add(2, 3) == 5 and inst.add(-(2**31), 2**31 - 1) == -1


def test_trap_poisons_instance_and_default_is_recreated(kitchen):
    inst = kitchen.instantiate()
    with pytest.raises(Trap) as info:
        inst.echo.fail()
    assert info.value.trace  # carries the wasm backtrace
    with pytest.raises(wasm_import.InstancePoisonedError):
        inst.add(1, 1)
    with pytest.raises(Trap):
        kitchen.echo.fail()
    assert kitchen.add(1, 1) == 2  # a fresh default instance


# -- hypothesis: generated values round-trip through the guest -----------------------------------

def _u(bits):
    return st.integers(0, 2**bits - 1)


def _s(bits):
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


@pytest.fixture(scope="module")
def strategies(echo):
    shapes = st.one_of(
        st.just(echo.Shape_None_()), st.builds(echo.Shape_Circle, st.floats(allow_nan=False)),
        st.builds(echo.Shape_Rectangle, st.builds(echo.RectSize, st.floats(allow_nan=False),
                                                  st.floats(allow_nan=False))),
        st.builds(echo.Shape_NamedShape, text), st.just(echo.Shape_UnitSquare()))
    return {
        "echo_u8": _u(8), "echo_s8": _s(8), "echo_u16": _u(16), "echo_s16": _s(16),
        "echo_u32": _u(32), "echo_s32": _s(32), "echo_u64": _u(64), "echo_s64": _s(64),
        "echo_f64": st.floats(allow_nan=False), "echo_char": st.characters(exclude_categories=("Cs",)),
        "echo_string": text, "echo_bytes": st.binary(max_size=64),
        "echo_string_list": st.lists(text, max_size=5),
        "echo_nested_list": st.lists(st.lists(_u(32), max_size=4).map(lambda xs: array.array("I", xs)), max_size=4),
        "echo_tuple": st.tuples(_u(8), text, st.floats(allow_nan=False)),
        "echo_record": st.builds(echo.PersonInfo, text, _u(8), st.none() | text, st.lists(text, max_size=3)),
        "echo_drawing": st.builds(echo.Drawing, text, shapes, _u(32)),
        "echo_variant": shapes,
        "echo_enum": st.sampled_from(list(echo.TrafficLight)),
        "echo_flags": st.builds(echo.Permissions, st.integers(0, 7)),
        "echo_flags32": st.builds(echo.Flags32, _u(32)),
        "echo_option": st.none() | text,
        "echo_nested_option": st.none() | st.builds(Some, st.none() | _u(32)),
        "echo_result": st.builds(Ok, _u(32)) | st.builds(Err, text),
        "echo_result_list": st.lists(st.builds(Ok, _u(32)) | st.builds(Err, text), max_size=4),
        "echo_option_list": st.lists(st.none() | text, max_size=4),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_values_round_trip(echo, strategies, data):
    name = data.draw(st.sampled_from(sorted(strategies)))
    value = data.draw(strategies[name])
    fn = getattr(echo, name)
    assert (outcome(fn, value) if name == "echo_result" else fn(value)) == value


def test_call_buffers_are_reused_safely(kitchen):
    """Each export reuses its value buffers; a payload-less case after one with a
    payload must not carry the old (freed) payload pointer. This crashed once."""
    echo = kitchen.instantiate().echo
    for _ in range(3):
        for shape in (echo.Shape_NamedShape("x" * 100), echo.Shape_UnitSquare(), echo.Shape_None_()):
            assert echo.echo_variant(shape) == shape
        assert echo.echo_option("text") == "text"
        assert echo.echo_option(None) is None
        with pytest.raises(TypeError):
            echo.echo_string_list(["ok", 1])  # fails half-way through lowering
        assert echo.echo_string_list(["ok"]) == ["ok"]
