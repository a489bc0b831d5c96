"""Correct use of every kind of export of the `kitchen` guest: mypy --strict and pyright
must accept it with the generated `kitchen.pyi`, and it runs (tests/test_stubs.py)."""

from __future__ import annotations

import array
from typing import List, Optional, Tuple

import wasm_import  # installs the import hook
from wasm_import import Err, Ok, Some, Wasi

import kitchen

# root functions
total: int = kitchen.add(2, 3)
assert total == 5
count: int = kitchen.bump()

echo = kitchen.echo

# primitives
flag: bool = echo.echo_bool(True)
small: int = echo.echo_u8(255) + echo.echo_s8(-128) + echo.echo_u16(1) + echo.echo_s16(-1)
big: int = echo.echo_u32(1) + echo.echo_s32(-1) + echo.echo_u64(2**64 - 1) + echo.echo_s64(-(2**63))
ratio: float = echo.echo_f32(1.5) + echo.echo_f64(-2.25)
letter: str = echo.echo_char("x")
text: str = echo.echo_string("hello")
raw: bytes = echo.echo_bytes(b"\x00\x01")

# lists and tuples
words: List[str] = echo.echo_string_list(["a", "b"])
grid: List[array.array[int]] = echo.echo_nested_list([[1], [2, 3]])  # lists of numbers come back as arrays
assert grid == [array.array("I", [1]), array.array("I", [2, 3])] and grid[1][0] == 2
assert echo.echo_nested_list(grid) == grid  # arrays go back in as they are
triple: Tuple[int, str, float] = echo.echo_tuple((1, "a", 2.5))
assert triple == (1, "a", 2.5)

# records (dataclasses with snake_case fields)
person = echo.PersonInfo(full_name="Ann", age_years=7, email_address=None, tag_list=["x"])
same_person: kitchen.echo.PersonInfo = echo.echo_record(person)
assert same_person == person
age: int = same_person.age_years
drawing = echo.Drawing(title_text="t", main_shape=echo.Shape_Circle(2.0), layer_index=3)
assert echo.echo_drawing(drawing) == drawing

# variants: one class per case, the variant is their union
shapes: List[kitchen.echo.Shape] = [
    echo.Shape_None_(), echo.Shape_Circle(1.0), echo.Shape_Rectangle(echo.RectSize(width=1.0, height=2.0)),
    echo.Shape_NamedShape("blob"), echo.Shape_UnitSquare(),
]
for shape in shapes:
    back: kitchen.echo.Shape = echo.echo_variant(shape)
    assert back == shape
    if isinstance(back, echo.Shape_Circle):
        radius: float = back.value

# enums and flags
light: kitchen.echo.TrafficLight = echo.echo_enum(echo.TrafficLight.GREEN_ARROW)
assert light is echo.TrafficLight.GREEN_ARROW
perms: kitchen.echo.Permissions = echo.echo_flags(echo.Permissions.READ | echo.Permissions.EXEC_BIT)
assert echo.Permissions.READ in perms
wide: kitchen.echo.Flags32 = echo.echo_flags32(echo.Flags32.B0 | echo.Flags32.B31)

# options: T | None, and Some for a nested option
maybe: Optional[str] = echo.echo_option(None)
nested: Optional[Some[Optional[int]]] = echo.echo_nested_option(Some(None))
assert nested == Some(None)

# results: a parameter is Ok(...)/Err(...); a returned result returns T or raises Err
value: int = echo.echo_result(Ok(3))
results: List[wasm_import.Result[int, str]] = echo.echo_result_list([Ok(1), Err("no")])
quotient: int = echo.checked_div(7, 2)
try:
    echo.checked_div(1, 0)
except Err as e:
    message: object = e.value
number: int = echo.parse_number("42")
echo.require_even(2)
echo.try_unit(True)

# resources: constructor, methods, static functions (classmethods), with-blocks, drop()
with echo.Counter(5) as counter:
    after: int = counter.increment()
    assert after == 6 and counter.get() == 6
    other = echo.Counter(10)
    merged: kitchen.echo.Counter = echo.Counter.merge(counter, other)
    assert merged.get() == 16
    pair: Tuple[kitchen.echo.Counter, kitchen.echo.Counter] = echo.echo_resource_pair((merged, other))
    pair[0].drop()

# instances, exports, the module's own API
instance = kitchen.instantiate(wasi=Wasi())
assert instance.add(1, 1) == 2
assert instance.echo.echo_string("x") == "x"
per_instance: int = instance.bump()
interface = kitchen.exports["test:kitchen/echo@0.1.0"]
assert interface.echo_u8(1) == 1
root_add = kitchen.exports["add"]
assert root_add(1, 2) == 3
kitchen.link({})
world_name: str = kitchen.wit.name
