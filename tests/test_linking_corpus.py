"""Host imports for real components (../shared/corpus), as EXPECTED.md specifies them.

In these guests `test-imports` calls every host import with fixed arguments and asserts
on what comes back: a wrong value or a wrong lowering makes the guest trap. So each
`test_imports()` passing here is the acceptance test of the host -> guest direction.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import wasm_import
from wasm_import import Err, Ok


def load(corpus, rel):
    return wasm_import.load(corpus / rel)


# -- plain values ----------------------------------------------------------------------------

class NumbersHost:
    def __init__(self):
        self.scalar = 0

    def __getattr__(self, name):  # roundtrip-u8 ... roundtrip-char: identity
        if name.startswith("roundtrip_"):
            return lambda a: a
        raise AttributeError(name)

    def set_scalar(self, a):
        self.scalar = a

    def get_scalar(self):
        return self.scalar


def test_numbers(corpus):
    host = NumbersHost()
    inst = load(corpus, "jco/numbers.component.wasm").instantiate(imports={"test:numbers/test": host})
    inst.test_imports()
    assert host.scalar == 4


def test_numbers_legacy_with_custom_testwasi(corpus):
    logged = []
    host = NumbersHost()
    testwasi = SimpleNamespace(log=logged.append, log_err=logged.append)
    inst = load(corpus, "jco-legacy/numbers-733622fd.component.wasm").instantiate(
        imports={"test:numbers/test": host, "testwasi": testwasi})
    inst.test_imports()
    assert host.scalar == 4
    assert all(isinstance(m, bytes) for m in logged)


def test_strings(corpus):
    seen = []
    host = SimpleNamespace(take_basic=seen.append, return_unicode=lambda: "🚀🚀🚀 𠈄𓀀")
    load(corpus, "jco/strings.component.wasm").instantiate(
        imports={"test:strings/imports": host}).test_imports()
    assert seen == ["latin utf16"]


class ListsHost:
    def __init__(self):
        self.seen = {}

    def _record(self, name, value):
        self.seen[name] = value

    def empty_list_param(self, a): self._record("empty_list_param", a)
    def empty_string_param(self, a): self._record("empty_string_param", a)
    def empty_list_result(self): return b""
    def empty_string_result(self): return ""
    def list_param(self, a): self._record("list_param", a)
    def list_param2(self, a): self._record("list_param2", a)
    def list_param3(self, a): self._record("list_param3", a)
    def list_param4(self, a): self._record("list_param4", a)
    def list_param5(self, a): self._record("list_param5", a)
    def list_param_large(self, a): self._record("list_param_large", len(a))
    def list_result(self): return bytes([1, 2, 3, 4, 5])
    def list_result2(self): return "hello!"
    def list_result3(self): return ["hello,", "world!"]
    def list_roundtrip(self, a): return a
    def string_roundtrip(self, a): return a
    def list_minmax8(self, a, b): return (a, b)
    def list_minmax16(self, a, b): return (a, b)
    def list_minmax32(self, a, b): return (a, b)
    def list_minmax64(self, a, b): return (a, b)
    def list_minmax_float(self, a, b): return (a, b)


def test_lists(corpus):
    host = ListsHost()
    mod = load(corpus, "jco/lists.component.wasm")
    inst = mod.instantiate(imports={"test:lists/test": host})
    before = inst.allocated_bytes()
    inst.test_imports()
    assert host.seen == {
        "empty_list_param": b"", "empty_string_param": "", "list_param": b"\x01\x02\x03\x04",
        "list_param2": "foo", "list_param3": ["foo", "bar", "baz"],
        "list_param4": [["foo", "bar"], ["baz"]], "list_param5": [(1, 2, 3), (4, 5, 6)],
    } | ({"list_param_large": 1000} if "list_param_large" in host.seen else {})
    assert inst.allocated_bytes() == before


def test_records(corpus):
    host = SimpleNamespace(
        multiple_results=lambda: (4, 5), swap_tuple=lambda a: (a[1], a[0]),
        roundtrip_flags1=lambda a: a, roundtrip_flags2=lambda a: a,
        roundtrip_flags3=lambda a, b, c: (a, b, c), roundtrip_record1=lambda a: a, tuple1=lambda a: a)
    load(corpus, "jco/records.component.wasm").instantiate(
        imports={"test:records/test": host}).test_imports()


def test_variants(corpus):
    mod = load(corpus, "jco/variants.component.wasm")
    api = mod.test
    received = []

    def roundtrip_result(a):  # result<u32, f32> -> result<f64, u8>: return T or raise Err
        if isinstance(a, Ok):
            return float(a.value)
        raise Err(int(a.value))

    def variant_enums(a, b, c):
        received.append((a, b, c))
        return (False, Err(), api.MyErrno.A)

    host = SimpleNamespace(
        roundtrip_option=lambda a: None if a is None else int(a),
        roundtrip_result=roundtrip_result, roundtrip_enum=lambda a: a, invert_bool=lambda a: not a,
        variant_casts=lambda a: a, variant_zeros=lambda a: a, variant_typedefs=lambda a, b, c: None,
        variant_enums=variant_enums)
    mod.instantiate(imports={"test:variants/test": host}).test_imports()
    assert received == [(True, Ok(), api.MyErrno.SUCCESS)]


def test_flavorful(corpus):
    mod = load(corpus, "jco/flavorful.component.wasm")
    api = mod.test
    seen = []
    errno_calls = []

    def errno_result():
        errno_calls.append(1)
        if len(errno_calls) == 1:
            raise Err(api.MyErrno.B)

    def list_typedefs(a, c):
        seen.append(("typedefs", a, c))
        return (b"typedef3", ["typedef4"])

    def list_of_variants(a, b, c):
        seen.append(("variants", a, b, c))
        return ([False, True], [Err(), Ok()], [api.MyErrno.A, api.MyErrno.B])

    def f_list_in_record3(a):
        seen.append(("record3", a.a))
        return api.ListInRecord3("list_in_record3 output")

    def f_list_in_record4(a):
        seen.append(("record4", a.a))
        return api.ListInRecord4("result4")

    host = SimpleNamespace(
        f_list_in_record1=lambda a: seen.append(("record1", a.a)),
        f_list_in_record2=lambda: api.ListInRecord2("list_in_record2"),
        f_list_in_record3=f_list_in_record3, f_list_in_record4=f_list_in_record4,
        f_list_in_variant1=lambda a, b: seen.append(("variant1", a, b)),
        f_list_in_variant2=lambda: "list_in_variant2",
        f_list_in_variant3=lambda a: (seen.append(("variant3", a)), "output3")[1],
        errno_result=errno_result, list_typedefs=list_typedefs, list_of_variants=list_of_variants)
    mod.instantiate(imports={"test:flavorful/test": host}).test_imports()
    assert ("record1", "list_in_record1") in seen
    assert ("record3", "list_in_record3 input") in seen and ("record4", "input4") in seen
    assert ("variant1", "foo", Err("bar")) in seen and ("variant3", "input3") in seen
    assert ("typedefs", "typedef1", ["typedef2"]) in seen
    assert ("variants", [True, False], [Ok(), Err()], [api.MyErrno.SUCCESS, api.MyErrno.A]) in seen
    assert len(errno_calls) >= 2


def test_options(corpus):
    seen = []
    host = SimpleNamespace(
        option_none_param=lambda a: seen.append(("none", a)),
        option_some_param=lambda a: seen.append(("some", a)),
        option_none_result=lambda: None, option_some_result=lambda: "foo",
        option_roundtrip=lambda a: a, double_option_roundtrip=lambda a: a)
    load(corpus, "jco/options.component.wasm").instantiate(
        imports={"test:options/test": host}).test_imports()
    assert ("none", None) in seen and ("some", "foo") in seen


@pytest.mark.parametrize("rel", ["jco/many-arguments.component.wasm", "jco/many_arguments.component.wasm"])
def test_many_arguments(corpus, rel):
    received = []
    inst = load(corpus, rel).instantiate(
        imports={"imports": {"many_arguments": lambda *args: received.append(args)}})
    inst.many_arguments(*range(1, 17))
    assert received == [tuple(range(1, 17))]


def test_smoke(corpus):
    calls = []
    inst = load(corpus, "jco/smoke.component.wasm").instantiate(
        imports={"test:smoke/imports": {"thunk": lambda: calls.append("thunk")}})
    inst.thunk()
    assert calls == ["thunk"]


def test_type_section_suffix(corpus):
    calls = []
    inst = load(corpus, "jco/type_section_suffix.component.wasm").instantiate(imports={
        "test:suffix/imports": {"foo": lambda: calls.append("imports.foo")},
        "foo": lambda: calls.append("foo"), "bar": lambda: calls.append("bar")})
    inst.run()


def test_async_call(corpus):
    host = {"call_async": lambda: "called async", "call_sync": lambda: "called sync"}
    inst = load(corpus, "jco/async_call.component.wasm").instantiate(
        imports={"something:test/test-interface": host})
    assert inst.run_sync() == "called sync"
    assert inst.run_async() == "called async"


# -- resources ---------------------------------------------------------------------------------

class Y:
    def __init__(self, a):
        self.a = a

    def get_a(self):
        return self.a

    def set_a(self, a):
        self.a = a

    @staticmethod
    def add(y, a):
        return Y(y.a + a)


def test_resources(corpus):
    mod = load(corpus, "jco/resources.component.wasm")
    inst = mod.instantiate(imports={"imports": {"Y": Y}})
    api = inst.exports["exports"]
    assert inst.exports["exports"] is getattr(inst, "exports_")  # `exports` is reserved: trailing _
    assert api.test_imports() is None
    x = api.X(5)
    assert x.get_a() == 5
    x.set_a(10)
    assert x.get_a() == 10
    z1, z2 = api.Z(10), api.Z(20)
    x_add = api.X.add(x, 5)
    assert x_add.get_a() == 15
    assert api.add(z1, z2).get_a() == 30
    start = api.Z.num_dropped()
    z1.drop()
    z2.drop()
    api.consume(x_add)
    assert api.Z.num_dropped() == start + 2
    k = api.KebabCase(7)
    assert k.get_a() == 7
    assert api.KebabCase.take_owned(k) == 7


class HostThing:
    """The imported `thing`: +1 on new, +2 on foo, +3 on bar, +4 on baz."""

    def __init__(self, v):
        self.v = v + 1

    def foo(self):
        return self.v + 2

    def bar(self, v):
        self.v = v + 3

    @staticmethod
    def baz(a, b):
        return HostThing(a.foo() + b.foo() + 4)


@pytest.mark.parametrize("rel", ["jco/resource_import_and_export.component.wasm",
                                 "jco/resource-import-and-export.component.wasm"])
def test_resource_import_and_export(corpus, rel):
    mod = load(corpus, rel)
    inst = mod.instantiate(imports={
        "test:resource-import-and-export/test": {"Thing": HostThing},
        "toplevel-import": lambda a: a})
    Thing = inst.exports["test:resource-import-and-export/test"].Thing
    t1 = Thing(42)
    assert t1.foo() == 48
    t1.bar(33)
    assert t1.foo() == 43
    t2 = Thing(81)
    t3 = Thing.baz(t1, t2)
    assert t3.foo() == 33 + 3 + 3 + 81 + 1 + 1 + 2 + 2 + 4 + 1 + 2 + 4 + 1 + 1 + 2 + 2


@pytest.mark.parametrize("rel", ["jco/resource_borrow_simple.component.wasm",
                                 "jco/resource-borrow-simple.component.wasm"])
def test_resource_borrow_simple(corpus, rel):
    events = []

    class R:
        def __init__(self):
            events.append(("new", self))

        def __wasm_drop__(self):
            events.append(("drop", self))

    def test(r):
        events.append(("test", r))

    inst = load(corpus, rel).instantiate(imports={"r": R, "test": test})
    inst.test_imports()
    assert [e[0] for e in events] == ["new", "test", "drop"]
    assert events[0][1] is events[1][1] is events[2][1]  # the same Python object throughout
    assert len(inst._engine.host_table) == 0


def test_resource_floats(corpus):
    class ImportsFloat:
        def __init__(self, v):
            self.v = v + 2

        def get(self):
            return self.v + 4

        @classmethod
        def add(cls, a, b):
            return cls(a.v + b + 6)  # new(stored(a) + b + 6)

    class TestFloat:
        def __init__(self, v):
            self.v = v + 1

        def get(self):
            return self.v + 3

    inst = load(corpus, "jco/resource_floats.component.wasm").instantiate(imports={
        "imports": {"Float": ImportsFloat}, "test:resource-floats/test": {"Float": TestFloat}})
    Float = inst.exports["exports"].Float
    f = Float(22.0)
    assert f.get() == 32.0
    assert Float.add(f, 7.0).get() == 59.0


def test_resource_with_lists(corpus):
    class Thing:
        def __init__(self, l):
            self.l = l + b" HostThing"

        def foo(self):
            return self.l + b" HostThing.foo"

        def bar(self, l):
            self.l = l + b" HostThing.bar"

        @staticmethod
        def baz(l):
            return l + b" HostThing.baz"

    inst = load(corpus, "jco/resource_with_lists.component.wasm").instantiate(
        imports={"test:resource-with-lists/test": {"Thing": Thing}})
    T = inst.exports["test:resource-with-lists/test"].Thing
    t = T(b"Hi")
    assert t.foo() == b"Hi Thing HostThing HostThing.foo Thing.foo"
    t.bar(b"Hola")
    assert t.foo() == b"Hola Thing.bar HostThing.bar HostThing.foo Thing.foo"
    assert T.baz(b"Ohayo Gozaimas") == b"Ohayo Gozaimas Thing.baz HostThing.baz Thing.baz again"


def test_resource_borrow_import(corpus):
    class Thing:
        def __init__(self, v):
            self.v = v + 2

    inst = load(corpus, "jco/resource_borrow_import.component.wasm").instantiate(
        imports={"test:resource-borrow-import/test": {"Thing": Thing, "foo": lambda t: t.v + 3}})
    assert inst.test(42) == 52


@pytest.mark.parametrize("rel", ["jco/owning.component.wasm", "jco/borrowing.component.wasm"])
def test_ownership(corpus, rel):
    calls = []
    made = []

    class TheResource:
        def __init__(self, the_list):
            calls.append("constructor")
            self.the_list = the_list
            made.append(self)

    def list_and_resource(thing):
        calls.append("list-and-resource")
        assert thing.a == made[0].the_list
        assert thing.b is made[0]

    def bar(thing):
        calls.append("bar")

    def baz(thing):
        calls.append("baz")
        return thing

    def foo(a):
        calls.append("foo")
        return a

    inst = load(corpus, rel).instantiate(imports={
        "lists": {"foo": foo}, "thing-in": {"bar": bar}, "thing-in-and-out": {"baz": baz},
        "test:ownership/both-list-and-resource": {"TheResource": TheResource,
                                                  "list_and_resource": list_and_resource}})
    inst.foo()
    assert {"foo", "bar", "baz", "constructor", "list-and-resource"} <= set(calls)


# -- component to component --------------------------------------------------------------------

HELLO = "calvinrp:test-async-funcs/hello@0.1.0"


@pytest.mark.parametrize("rel", ["jco/simple-nested.component.wasm",
                                 "jco/simple-nested-optimized.component.wasm"])
def test_simple_nested_from_python(corpus, rel):
    inst = load(corpus, rel).instantiate(imports={HELLO: {"hello_world": lambda: "hi from Python"}})
    assert inst.exports[HELLO].hello_world() == "hi from Python"


def test_simple_nested_chain_component_to_component(corpus):
    """A's import comes from B, B's from Python: a chain of two components."""
    b_mod = load(corpus, "jco/simple-nested.component.wasm")
    b_mod.link({HELLO: {"hello_world": lambda: "from Python, through B"}})
    a_mod = load(corpus, "jco/simple-nested-optimized.component.wasm")
    private = a_mod.instantiate(imports={HELLO: b_mod})  # a module: a fresh private instance of B
    assert private.exports[HELLO].hello_world() == "from Python, through B"
    b_inst = b_mod.instantiate()
    shared = a_mod.instantiate(imports={"calvinrp:test-async-funcs/hello": b_inst})  # version left out
    assert shared.exports[HELLO].hello_world() == "from Python, through B"
