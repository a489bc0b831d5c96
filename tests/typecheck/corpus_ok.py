"""Correct use of exports of corpus components (../shared/corpus/jco): mypy --strict and
pyright must accept it with the generated stubs, and it runs (tests/test_stubs.py)."""

from __future__ import annotations

from typing import List, Optional, Tuple

import wasm_import  # installs the import hook
from wasm_import import Err, Ok, Some

import adder_component
import asmjs_bigint_component
import example_guest_export
import flavorful_component
import numbers_component
import options_component
import records_component
import variants_component

# an exported interface of one function; a root function
three: int = adder_component.add.add(1, 2)
big: int = asmjs_bigint_component.add(2**33, -(2**42))
assert (three, big) == (3, -4389456576512)

# numbers: every scalar kind
numbers = numbers_component.test
byte: int = numbers.roundtrip_u8(255)
wide: int = numbers.roundtrip_s64(-(2**63))
real: float = numbers.roundtrip_f32(1.5) + numbers.roundtrip_f64(-1.0)
flag_char: str = numbers.roundtrip_char("🚩")
numbers.set_scalar(2)
scalar: int = numbers.get_scalar()

# records: tuples, flags, records
records = records_component.test
pair: Tuple[int, int] = records.multiple_results()
swapped: Tuple[int, int] = records.swap_tuple((1, 2))
assert swapped == (2, 1)
f1: records_component.test.F1 = records.roundtrip_flags1(records.F1.A | records.F1.B)
flags3: Tuple[records_component.test.Flag8, records_component.test.Flag16, records_component.test.Flag32] = \
    records.roundtrip_flags3(records.Flag8.B0, records.Flag16.B15, records.Flag32.B31)
r1: records_component.test.R1 = records.roundtrip_record1(records.R1(a=8, b=records.F1(0)))
assert r1 == records.R1(a=8, b=records.F1(0))
one: Tuple[int] = records.tuple1((1,))

# variants, enums, options and results
variants = variants_component.test
small: Optional[int] = variants.roundtrip_option(1.0)
as_float: float = variants.roundtrip_result(Ok(2))
try:
    variants.roundtrip_result(Err(5.3))
except Err as e:
    assert e.value == 5
letter: variants_component.test.E1 = variants.roundtrip_enum(variants.E1.B)
inverted: bool = variants.invert_bool(True)
casts = variants.variant_casts((  # `casts` is a tuple alias: no class
    variants.C1_A(1), variants.C2_B(2.0), variants.C3_A(3), variants.C4_B(4.0), variants.C5_A(5), variants.C6_B(6.0)))
zeros = variants.variant_zeros(
    (variants.Z1_A(1), variants.Z2_B(), variants.Z3_A(3.0), variants.Z4_B()))
variants.variant_typedefs(None, False, Err())

options = options_component.test
none_result: Optional[str] = options.option_none_result()
some_result: Optional[str] = options.option_some_result()
double: Optional[Some[Optional[int]]] = options.double_option_roundtrip(Some(42))
assert (none_result, some_result, double) == (None, "foo", Some(42))

# records with lists, aliases of records, variants holding lists
flavorful = flavorful_component.test
in_record: flavorful_component.test.ListInRecord3 = flavorful.f_list_in_record3(
    flavorful.ListInRecord3(a="list_in_record3 input"))
aliased: flavorful_component.test.ListInAlias = flavorful.f_list_in_record4(flavorful.ListInAlias(a="input4"))
typedefs: Tuple[bytes, List[str]] = flavorful.list_typedefs("typedef1", ["typedef2"])
assert typedefs == (b"typedef3", ["typedef4"])

# a guest resource: constructor, static function, method, borrow parameter
backend = example_guest_export.backend
with backend.Scalars() as scalars:
    a: int = backend.Scalars.get_a()
    b: int = scalars.get_b()
    both: int = backend.scalar_arg(scalars)
    assert (a, b, both) == (5, 2, 7)
