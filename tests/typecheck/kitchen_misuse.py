"""Misuse of the `kitchen` guest: mypy --strict and pyright must report an error on every
line marked `# error` (tests/test_stubs.py checks both, line by line)."""

from __future__ import annotations

import kitchen

echo = kitchen.echo

kitchen.add(1, "2")  # error: wrong argument type
kitchen.add(1)  # error: missing argument
kitchen.subtract(1, 2)  # error: unknown attribute
echo.echo_enum(echo.TrafficLight.PURPLE)  # error: wrong enum member
echo.echo_u32(None)  # error: None where no option is declared
echo.echo_record(echo.PersonInfo(full_name=None, age_years=1, email_address=None, tag_list=[]))  # error: None
echo.echo_bytes([1, 2])  # error: a list is not bytes
echo.echo_variant(echo.RectSize(width=1.0, height=2.0))  # error: not a case of the variant
echo.echo_flags(echo.TrafficLight.RED)  # error: an enum is not the flags
echo.echo_nested_option(3)  # error: a nested option needs Some
echo.Counter(5).increment(1)  # error: too many arguments
echo.Counter.merge(1, 2)  # error: not counters
length: str = echo.echo_u8(1)  # error: returns int
kitchen.instantiate(imports={"nope": 1})  # error: unknown import
