"""Typed calls into real components from ../shared/corpus, following EXPECTED.md exactly.

Only components whose exports need nothing beyond WASI are here; the ones that import
custom interfaces are exercised in test_linking_corpus.py.
"""

from __future__ import annotations

import math

import pytest

import wasm_import
from wasm_import import DecodeError, Err, Ok, Some, Trap, Wasi

U64_MAX = 2**64 - 1


def load(corpus, rel):
    return wasm_import.load(corpus / rel)


# -- adders and asmjs-bigint ---------------------------------------------------------------

@pytest.mark.parametrize("rel", [
    "jco/adder.component.wasm",
    "jco/examples__transpile__adder__adder.wasm",
    "component-docs/example-host__add.wasm",
])
def test_adders(corpus, rel):
    mod = load(corpus, rel)
    assert mod.add.add(1, 2) == 3
    assert mod.exports["docs:adder/add@0.1.0"].add(40, 2) == 42


def test_asmjs_bigint(corpus):
    mod = load(corpus, "jco/asmjs_bigint.component.wasm")
    assert mod.add(1, 2) == 3
    assert mod.add(2**33, -(2**42)) == -4389456576512


# -- numbers ---------------------------------------------------------------------------------

INT_RANGES = {
    "u8": (0, 255), "s8": (-128, 127), "u16": (0, 65535), "s16": (-32768, 32767),
    "u32": (0, 2**32 - 1), "s32": (-(2**31), 2**31 - 1), "u64": (0, U64_MAX), "s64": (-(2**63), 2**63 - 1),
}


def test_numbers_exports(corpus):
    api = load(corpus, "jco/numbers.component.wasm").instantiate().exports["test:numbers/test"]
    for name, (lo, hi) in INT_RANGES.items():
        f = getattr(api, f"roundtrip_{name}")
        for v in (1, lo, hi):
            assert f(v) == v, (name, v)
    for f in (api.roundtrip_f32, api.roundtrip_f64):
        assert f(1.0) == 1.0
        assert f(math.inf) == math.inf
        assert f(-math.inf) == -math.inf
        assert math.isnan(f(math.nan))
    for c in ("a", " ", "🚩"):
        assert api.roundtrip_char(c) == c
    api.set_scalar(2)
    assert api.get_scalar() == 2
    api.set_scalar(4)
    assert api.get_scalar() == 4


def test_numbers_range_errors_name_function_param_and_type(corpus):
    api = load(corpus, "jco/numbers.component.wasm").test
    with pytest.raises(ValueError, match=r"roundtrip_u8\(\): parameter 'a' \(u8\).*256"):
        api.roundtrip_u8(256)
    with pytest.raises(TypeError, match=r"roundtrip_s32\(\): parameter 'a' \(s32\).*str"):
        api.roundtrip_s32("1")
    with pytest.raises(ValueError, match=r"lone surrogate"):
        api.roundtrip_char("\ud800")
    with pytest.raises(TypeError, match="takes 1 argument"):
        api.roundtrip_u8()


# -- strings -----------------------------------------------------------------------------------

def test_strings(corpus):
    mod = load(corpus, "jco/strings.component.wasm")
    # Root exports only; test-imports needs the custom imports (see the linking tests).
    assert mod.return_empty() == ""
    assert mod.roundtrip("str") == "str"
    assert mod.roundtrip("🚀🚀🚀 𠈄𓀀") == "🚀🚀🚀 𠈄𓀀"
    with pytest.raises(ValueError, match="not valid Unicode"):
        mod.roundtrip("bad \udc80 surrogate")


# -- lists -------------------------------------------------------------------------------------

def test_lists(corpus):
    api = load(corpus, "jco/lists.component.wasm").test
    api.empty_list_param(b"")
    api.empty_string_param("")
    assert api.empty_list_result() == b""
    assert api.empty_string_result() == ""
    api.list_param(b"\x01\x02\x03\x04")
    api.list_param(bytearray(b"\x01\x02\x03\x04"))
    api.list_param(memoryview(b"\x01\x02\x03\x04"))
    api.list_param2("foo")
    api.list_param3(["foo", "bar", "baz"])
    api.list_param4([["foo", "bar"], ["baz"]])
    api.list_param5([(1, 2, 3), (4, 5, 6)])
    api.list_param_large(["string"] * 1000)
    assert api.list_result() == b"\x01\x02\x03\x04\x05"
    assert api.list_result2() == "hello!"
    assert api.list_result3() == ["hello,", "world!"]
    for s in ("x", "", "hello ⚑ world"):
        assert api.string_roundtrip(s) == s
    assert api.list_roundtrip(b"\x00\xff" * 1000) == b"\x00\xff" * 1000


def test_lists_minmax_exports_trap_and_poison(corpus):
    inst = load(corpus, "jco/lists.component.wasm").instantiate()
    with pytest.raises(Trap) as info:
        inst.test.list_minmax8(b"\x00\xff", [-128, 127])
    assert "unreachable" in str(info.value) or "wasm" in str(info.value)
    assert inst.poisoned
    with pytest.raises(wasm_import.InstancePoisonedError, match="trapped earlier"):
        inst.test.list_result()


def test_default_instance_is_recreated_after_a_trap(corpus):
    mod = load(corpus, "jco/lists.component.wasm")
    with pytest.raises(Trap):
        mod.test.list_minmax16([0, 65535], [-32768, 32767])
    assert mod.test.list_result2() == "hello!"


def test_lists_do_not_leak(corpus):
    mod = load(corpus, "jco/lists.component.wasm")
    before = mod.allocated_bytes()
    mod.test.list_result3()
    mod.test.list_param3(["foo", "bar", "baz"])
    assert mod.allocated_bytes() == before


# -- records -----------------------------------------------------------------------------------

def test_records(corpus):
    api = load(corpus, "jco/records.component.wasm").test
    assert api.multiple_results() == (100, 200)
    assert api.swap_tuple((1, 2)) == (2, 1)
    F1, F2 = api.F1, api.F2
    for v in (F1.A, F1(0), F1.B, F1.A | F1.B):
        assert api.roundtrip_flags1(v) == v
    for v in (F2.C, F2(0), F2.D, F2.C | F2.E):
        assert api.roundtrip_flags2(v) == v
    for r in (api.R1(a=8, b=F1(0)), api.R1(a=0, b=F1.A | F1.B)):
        assert api.roundtrip_record1(r) == r
    assert api.tuple1((1,)) == (1,)
    with pytest.raises(TypeError, match=r"roundtrip_flags1\(\): parameter 'a' \(f1\)"):
        api.roundtrip_flags1(F2.C)


# -- variants ----------------------------------------------------------------------------------

def test_variants(corpus):
    api = load(corpus, "jco/variants.component.wasm").test
    assert api.roundtrip_option(1.0) == 1
    assert api.roundtrip_option(None) is None
    assert api.roundtrip_option(2.0) == 2
    # A returned result<f64, u8> returns the ok value or raises Err(e).
    assert api.roundtrip_result(Ok(2)) == 2.0
    assert api.roundtrip_result(Ok(4)) == 4.0
    with pytest.raises(Err) as info:
        api.roundtrip_result(Err(5.3))
    assert info.value.value == 5
    assert api.roundtrip_enum(api.E1.A) is api.E1.A
    assert api.roundtrip_enum(api.E1.B) is api.E1.B
    assert api.invert_bool(True) is False
    assert api.invert_bool(False) is True
    a = (api.C1_A(1), api.C2_A(2), api.C3_A(3), api.C4_A(4), api.C5_A(5), api.C6_A(6.0))
    b = (api.C1_B(1), api.C2_B(2.0), api.C3_B(3.0), api.C4_B(4.0), api.C5_B(5.0), api.C6_B(6.0))
    assert api.variant_casts(a) == a
    assert api.variant_casts(b) == b
    z = (api.Z1_A(1), api.Z2_A(2), api.Z3_A(3.0), api.Z4_A(4.0))
    assert api.variant_zeros(z) == z
    api.variant_typedefs(None, False, Err())
    with pytest.raises(Trap):
        api.variant_enums(True, Ok(), api.MyErrno.SUCCESS)


# -- flavorful ---------------------------------------------------------------------------------

def test_flavorful(corpus):
    api = load(corpus, "jco/flavorful.component.wasm").test
    api.f_list_in_record1(api.ListInRecord1("list_in_record1"))
    assert api.f_list_in_record2() == api.ListInRecord2("list_in_record2")
    assert api.f_list_in_record3(api.ListInRecord3("list_in_record3 input")).a == "list_in_record3 output"
    assert api.f_list_in_record4(api.ListInRecord4("input4")).a == "result4"
    api.f_list_in_variant1("foo", Err("bar"))
    assert api.f_list_in_variant2() == "list_in_variant2"
    assert api.f_list_in_variant3("input3") == "output3"
    with pytest.raises(Err) as info:
        api.errno_result()
    assert info.value.value is api.MyErrno.B
    assert api.list_typedefs("typedef1", ["typedef2"]) == (b"typedef3", ["typedef4"])
    with pytest.raises(Trap):
        api.list_of_variants([True, False], [Ok(), Err()], [api.MyErrno.SUCCESS, api.MyErrno.A])


# -- options -----------------------------------------------------------------------------------

def test_options(corpus):
    api = load(corpus, "jco/options.component.wasm").test
    assert api.option_none_result() is None
    assert api.option_some_result() == "foo"
    assert api.option_roundtrip("foo") == "foo"
    assert api.option_roundtrip(None) is None
    for v in (Some(42), Some(None), None):
        assert api.double_option_roundtrip(v) == v
    with pytest.raises(TypeError, match=r"None or Some"):
        api.double_option_roundtrip(42)


# -- resources exported by the guest ---------------------------------------------------------

def test_example_guest_export(corpus):
    backend = load(corpus, "jco/example_guest_export.wasm").instantiate().exports[
        "example:component/backend@0.1.0"]
    s = backend.Scalars()
    assert backend.Scalars.get_a() == 5
    assert s.get_b() == 2
    assert backend.scalar_arg(s) == 7
    s.drop()
    with pytest.raises(ValueError, match="dropped or moved"):
        s.get_b()


def test_resource_borrow_export(corpus):
    api = load(corpus, "jco/resource_borrow_export.component.wasm").test
    with api.Thing(42) as thing:
        assert api.foo(thing) == 45


def test_resource_into_inner(corpus):
    mod = load(corpus, "jco/resource_into_inner.component.wasm")
    assert mod.test.test() is None


# -- WASI commands and virtualized components ------------------------------------------------

def test_hello_stdout_captured(corpus):
    mod = load(corpus, "jco/jco__components__hello_stdout.component.wasm")
    inst = mod.instantiate(wasi=Wasi(stdout="capture", stderr="capture"))
    assert inst.exports["wasi:cli/run@0.2.3"].run() is None
    assert inst.stdout == b"writing to stdout: hello, world\n"
    assert inst.stderr == b"writing to stderr: hello, world\n"


def test_dir_virt(corpus):
    mod = load(corpus, "jco/jco__commands__dir.virt.wasm")
    inst = mod.instantiate(wasi=Wasi(args=["dir.virt", "/foo"], stdout="capture", stderr="capture"))
    inst.run.run()
    assert inst.stdout == b"Listing directory: /foo\n - .\n - ..\n - foo\n"
    assert inst.stderr == b""
    bad = mod.instantiate(wasi=Wasi(args=["/foo"], stdout="capture", stderr="capture"))
    with pytest.raises((Err, Trap)):
        bad.run.run()


def test_env_allow_is_virtualized(corpus, monkeypatch):
    monkeypatch.setenv("CUSTOM", "host-value")
    mod = load(corpus, "jco/jco__components__env-allow.composed.wasm")
    assert mod.test_get_env() == [("CUSTOM", "VAL")]


def test_stdio(corpus):
    inst = load(corpus, "jco/jco__components__stdio.composed.wasm").instantiate(wasi=Wasi(stdout="capture"))
    inst.test_stdio()
    assert inst.stdout == b"Hello world\n"


def test_stdout_pollable_does_not_hang(corpus):
    inst = load(corpus, "jco/jco__components__stdout-pollable-hang.component.wasm").instantiate(
        wasi=Wasi(stdout="capture"))
    for export in inst.exports.values():
        if hasattr(export, "run"):
            export.run()
            break
    else:
        pytest.fail("no run export")


# -- pre-standard binaries ----------------------------------------------------------------------

@pytest.mark.parametrize("rel", ["jco-legacy/numbers-7800c38c.component.wasm",
                                 "jco-legacy/smoke-7800c38c.component.wasm"])
def test_pre_standard_binaries_raise_decode_error(corpus, rel):
    with pytest.raises(DecodeError, match="pre-standard"):
        load(corpus, rel)
