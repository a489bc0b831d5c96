"""Values, errors and scale-out (issue 11), on the `values` guest and the corpus.

The `values` guest (tests/guests/values, componentize-py with WASI) hands out resources by
several paths (returns, lists, records, a renamed `use`), calls a host import returning a
nested result, raises a Python exception after writing to stderr, and eats memory.
"""

from __future__ import annotations

import pytest

import wasm_import
from tests import _build
from wasm_import import Err, Ok


@pytest.fixture(scope="session")
def values_wasm():
    return _build.build_python_guest("values")


class Token:
    """The host's `test:values/vault.token`."""

    def __init__(self, v):
        self.v = v

    def peek(self):
        return self.v + 1000


def _host(nested=lambda x: Ok(x), nested_unit=lambda x: Ok()):
    return {"nested": nested, "nested_unit": nested_unit}


def values_imports(**host):
    return {"test:values/host": _host(**host), "test:values/vault": {"Token": Token}}


@pytest.fixture
def values_mod(values_wasm):
    mod = wasm_import.load(values_wasm, name="values")
    mod.link(values_imports())
    return mod


# -- 1. one class per resource type ------------------------------------------------------------

@pytest.mark.parametrize("where", ["module", "instance"])
def test_resource_objects_are_of_the_class_exposed_whatever_the_path(values_mod, where):
    src = values_mod if where == "module" else values_mod.instantiate(values_imports())
    shapes, api = src.shapes, src.api
    Thing = shapes.Thing
    assert api.Widget is Thing  # `use shapes.{thing as widget}`: the same class
    if where == "instance":
        assert issubclass(Thing, values_mod.shapes.Thing) and Thing is not values_mod.shapes.Thing
    else:
        assert Thing is values_mod.shapes.Thing
    listed = shapes.make_many(3)  # in a list
    assert [type(t) for t in listed] == [Thing] * 3
    made = api.make(4)  # returned under the renamed `use`
    assert type(made) is Thing and isinstance(made, api.Widget) and isinstance(made, values_mod.shapes.Thing)
    held = shapes.holders(2)  # inside records
    assert [type(h.item) for h in held] == [Thing, Thing]
    assert [type(h) for h in held] == [shapes.Holder] * 2 and api.Holder is shapes.Holder
    unwrapped = api.unwrap(held[1])  # a record in, the resource back out
    assert type(unwrapped) is Thing
    constructed = Thing(9)
    # ... and every one of them passes back into any function taking the type
    assert shapes.total([*listed, made, unwrapped, constructed]) == 0 + 1 + 2 + 4 + 1 + 9
    assert api.read(listed[2]) == 2 and api.read(constructed) == 9
    assert api.consume(made) == 4 and api.consume(constructed) == 9


def test_objects_of_one_instance_are_not_of_another_instances_class(values_mod):
    a, b = values_mod.instantiate(values_imports()), values_mod.instantiate(values_imports())
    t = a.shapes.make_many(1)[0]
    assert isinstance(t, a.shapes.Thing) and not isinstance(t, b.shapes.Thing)
    with pytest.raises(ValueError, match="belongs to another instance"):
        b.api.read(t)


def test_host_resource_under_a_renamed_use_passes_back_owned_and_borrowed(values_mod):
    dropped = []

    class Watched(Token):
        def __wasm_drop__(self):
            dropped.append(self.v)

    inst = values_mod.instantiate({**values_imports(), "test:values/vault": {"Token": Watched}})
    t = inst.api.issue(5)  # made by the guest through the host constructor
    assert type(t) is Watched and t.v == 5
    assert inst.api.check(t) == 1005  # lent (borrow<ticket>) to an export: it stays ours
    assert inst.api.check(t) == 1005
    assert dropped == []
    assert inst.api.redeem(t) == 1005  # moved (own<ticket>): the guest drops it
    assert dropped == [5]
    mine = Watched(8)  # made by the host, lent to the guest
    assert inst.api.check(mine) == 1008 and dropped == [5]
    assert len(inst._engine.host_table) == 0


def test_corpus_resources_come_back_as_the_instances_class(corpus):
    from tests.test_linking_corpus import Y

    mod = wasm_import.load(corpus / "jco/resources.component.wasm")
    mod.link({"imports": {"Y": Y}})
    inst = mod.instantiate({"imports": {"Y": Y}})
    for api in (inst.exports["exports"], mod.exports["exports"]):
        x = api.X(5)
        added = api.X.add(x, 5)
        assert type(added) is api.X and added.get_a() == 10
        z = api.add(api.Z(1), api.Z(2))
        assert type(z) is api.Z and isinstance(z, mod.exports["exports"].Z) and z.get_a() == 3
        api.consume(added)


def test_corpus_resources_through_a_component_import(corpus):
    """A component's export satisfies another's import: objects of the provider's
    resource come back as the provider instance's class and pass back in."""
    from tests.test_linking_corpus import HostThing

    rel = "jco/resource_import_and_export.component.wasm"
    provider = wasm_import.load(corpus / rel, name="provider").instantiate({
        "test:resource-import-and-export/test": {"Thing": HostThing}, "toplevel-import": lambda a: a})
    ProviderThing = provider.exports["test:resource-import-and-export/test"].Thing
    seen = []

    def toplevel_import(a):
        seen.append(type(a))
        return a

    client = wasm_import.load(corpus / rel, name="client").instantiate({
        "test:resource-import-and-export/test": provider, "toplevel-import": toplevel_import})
    Thing = client.exports["test:resource-import-and-export/test"].Thing
    t1 = Thing(42)
    assert type(t1) is Thing
    # client +1 -> provider +1 -> host +1, foo: +2 at each of the three
    assert t1.foo() == 42 + 3 + 6
    t3 = Thing.baz(t1, Thing(1))
    assert type(t3) is Thing
    # `toplevel-export` takes the *imported* thing: here, the provider's
    given = ProviderThing(7)
    assert client.toplevel_export(given) is given
    assert seen == [ProviderThing]
    with pytest.raises(TypeError, match="expected the imported resource thing .*own exported Thing"):
        client.toplevel_export(Thing(7))


# -- 2. nested results: only a raised Err is the outer error -----------------------------------

def _raise(e):
    raise e


@pytest.mark.parametrize("behaviour, expected", [
    (lambda x: Ok(x), "ok(ok(7))"),                  # returned Ok value: the ok payload
    (lambda x: Err("one"), "ok(err(one))"),          # returned Err value: the ok payload too
    (lambda x: _raise(Err("two")), "err(two)"),      # raised Err: the outer error
])
def test_host_import_returning_a_nested_result(values_mod, behaviour, expected):
    inst = values_mod.instantiate(values_imports(nested=behaviour))
    assert inst.check_nested(7) == expected


@pytest.mark.parametrize("behaviour, expected", [
    (lambda x: Ok(), "ok(ok)"),
    (lambda x: Err("inner"), "ok(err(inner))"),
    (lambda x: _raise(Err("outer")), "err(outer)"),
])
def test_host_import_returning_a_nested_unit_result(values_mod, behaviour, expected):
    inst = values_mod.instantiate(values_imports(nested_unit=behaviour))
    assert inst.check_nested_unit(1) == expected


def test_a_nested_result_payload_must_be_a_result(values_mod):
    inst = values_mod.instantiate(values_imports(nested=lambda x: x))
    with pytest.raises(TypeError, match=r"import 'test:values/host' function 'nested' returned a bad "
                                        r"value for WIT type result<result<u32, string>, string>: "
                                        r"expected result<u32, string> \(Ok\(...\) or Err\(...\)\), got int 7"):
        inst.check_nested(7)


def test_corpus_result_import_err_is_raised_not_returned(corpus):
    """flavorful's `errno-result: func() -> result<_, my-errno>`: raising Err(b) is the
    error the guest expects on its first call (and test-imports passes); returning the
    Err value instead is a payload where `_` has none, refused naming the import."""
    mod = wasm_import.load(corpus / "jco/flavorful.component.wasm")
    calls = []

    def raising():
        calls.append(1)
        if len(calls) == 1:
            raise Err(mod.test.MyErrno.B)

    mod.instantiate(imports={"test:flavorful/test": _FlavorfulHost(mod, raising)}).test_imports()
    assert len(calls) >= 2

    def returning():
        return Err(mod.test.MyErrno.B)

    inst = mod.instantiate(imports={"test:flavorful/test": _FlavorfulHost(mod, returning)})
    with pytest.raises(TypeError, match=r"function 'errno-result' returned a bad value for WIT type "
                                        r"result<_, my-errno>: expected result<_, my-errno>: Ok carries "
                                        r"no value here, got Err"):
        inst.test_imports()


class _FlavorfulHost:
    """What flavorful's test-imports expects of every other import (see test_linking_corpus)."""

    def __init__(self, mod, errno_result):
        api = mod.test
        self.errno_result = errno_result
        self.f_list_in_record1 = lambda a: None
        self.f_list_in_record2 = lambda: api.ListInRecord2("list_in_record2")
        self.f_list_in_record3 = lambda a: api.ListInRecord3("list_in_record3 output")
        self.f_list_in_record4 = lambda a: api.ListInRecord4("result4")
        self.f_list_in_variant1 = lambda a, b: None
        self.f_list_in_variant2 = lambda: "list_in_variant2"
        self.f_list_in_variant3 = lambda a: "output3"
        self.list_typedefs = lambda a, c: (b"typedef3", ["typedef4"])
        self.list_of_variants = lambda a, b, c: ([False, True], [Err(), Ok()], [api.MyErrno.A, api.MyErrno.B])


# -- 3. unknown import keys ----------------------------------------------------------------------

def test_a_misspelt_import_key_is_refused_at_instantiate(values_mod):
    imports = {**values_imports(), "test:values/hots": {}}
    with pytest.raises(wasm_import.LinkError) as caught:
        values_mod.instantiate(imports)
    text = str(caught.value)
    assert "the component imports no key\n  'test:values/hots' (did you mean 'test:values/host'?)" in text
    assert "it imports:\n" in text and "  test:values/host\n" in text and "  test:values/vault" in text
    with pytest.raises(wasm_import.LinkError, match="imports no keys\n  'nope'\n  'other'"):
        values_mod.link({"nope": 1, "other": 2})
    values_mod.instantiate(values_imports())  # the right keys, as before


def test_unknown_import_key_on_a_corpus_component(corpus):
    mod = wasm_import.load(corpus / "jco/numbers.component.wasm")
    with pytest.raises(wasm_import.LinkError) as caught:
        mod.instantiate(imports={"test:numbers/tests": object()})
    text = str(caught.value)
    assert "'test:numbers/tests' (did you mean 'test:numbers/test'?)" in text
    assert "it imports:\n  test:numbers/test\n" in text and "\n  wasi:cli/stdout@0.2.0\n" in text
    # a key without its @version is still known
    nested = wasm_import.load(corpus / "jco/simple-nested.component.wasm")
    inst = nested.instantiate(imports={"calvinrp:test-async-funcs/hello": {"hello_world": lambda: "hi"}})
    assert inst.exports["calvinrp:test-async-funcs/hello@0.1.0"].hello_world() == "hi"


# -- 4. a Trap carries the guest's last words on stderr ------------------------------------------

@pytest.mark.parametrize("stderr", ["inherit", "capture", "discard"])
def test_trap_carries_the_python_exception_the_guest_printed(values_mod, stderr, capfd):
    inst = values_mod.instantiate(values_imports(), wasi=wasm_import.Wasi(stderr=stderr))
    with pytest.raises(wasm_import.Trap) as caught:
        inst.fail("the answer is not 42", 2)
    trap = caught.value
    lines = trap.stderr.split("\n")
    assert lines[:2] == ["noise line 0", "noise line 1"]
    assert "ValueError: the answer is not 42" in lines
    assert "Python function threw an unexpected exception" in trap.stderr
    text = str(trap)
    assert text.startswith("wasm trap: wasm `unreachable` instruction executed\nguest stderr (last ")
    assert "\n  | ValueError: the answer is not 42\n" in text
    assert text.index("guest stderr") < text.index("wasm backtrace:")
    err = capfd.readouterr().err
    assert ("ValueError: the answer is not 42" in err) == (stderr == "inherit")
    if stderr == "capture":
        assert b"ValueError: the answer is not 42" in inst.stderr


def test_trap_stderr_is_bounded_to_the_last_lines(values_mod):
    from wasm_import.runtime._traps import TAIL_LINES

    inst = values_mod.instantiate(values_imports(), wasi=wasm_import.Wasi(stderr="discard"))
    with pytest.raises(wasm_import.Trap) as caught:
        inst.fail("late", 500)
    lines = caught.value.stderr.split("\n")
    assert len(lines) == TAIL_LINES
    assert "noise line 0" not in lines and "ValueError: late" in lines


def test_trap_carries_a_c_assertion_message(corpus):
    mod = wasm_import.load(corpus / "jco/lists.component.wasm")
    with pytest.raises(wasm_import.Trap) as caught:
        mod.test.list_minmax8(b"", [])  # `assert(0)` in the C guest
    assert caught.value.stderr == ("Assertion failed: 0 (./tests/runtime/lists/wasm.c: "
                                   "exports_test_lists_test_list_minmax8: 365)")


def test_trap_without_output_has_empty_stderr(hostile_wasm):
    mod = wasm_import.load(hostile_wasm)
    with pytest.raises(wasm_import.Trap) as caught:
        mod.api.out_of_bounds()
    assert caught.value.stderr == ""
    assert "guest stderr" not in str(caught.value)


def test_trap_carries_a_rust_panic_message(corpus, capfd):
    mod = wasm_import.load(corpus / "jco/jco__components__env-allow.composed.wasm")
    with pytest.raises(wasm_import.Trap) as caught:
        mod.test_get_config()  # panics "not implemented" (stderr inherited)
    assert caught.value.stderr.split("\n")[:2] == [
        "thread '<unnamed>' panicked at tests/components/get-env/src/lib.rs:16:9:", "not implemented"]
    assert "\n  | not implemented\n" in str(caught.value)
    assert "not implemented" in capfd.readouterr().err


# -- 5. running out of memory under a cap is LimitExceeded("memory") -----------------------------

def test_python_guest_out_of_memory_under_a_cap(values_mod):
    inst = values_mod.instantiate(values_imports(), limits=wasm_import.Limits(memory=64 << 20),
                                  wasi=wasm_import.Wasi(stderr="discard"))
    assert inst.hog(16) == 16 << 20  # within the cap
    with pytest.raises(wasm_import.LimitExceeded) as caught:
        inst.hog(100)
    e = caught.value
    assert e.limit == "memory"
    assert str(e).startswith("the instance needs more memory than its limit of 67108864 bytes "
                             "(wasm trap: wasm `unreachable` instruction executed)")
    assert "object type name: MemoryError" in e.stderr  # the guest's own words come along
    assert inst.poisoned


def test_a_memory_error_without_a_cap_is_an_ordinary_trap(values_mod):
    inst = values_mod.instantiate(values_imports(), wasi=wasm_import.Wasi(stderr="discard"))
    with pytest.raises(wasm_import.Trap) as caught:
        inst.fail("MemoryError: says the guest", 0)
    assert type(caught.value) is wasm_import.Trap and "MemoryError" in caught.value.stderr


def test_a_crash_under_a_cap_is_not_called_a_memory_limit(values_mod):
    inst = values_mod.instantiate(values_imports(), limits=wasm_import.Limits(memory=64 << 20),
                                  wasi=wasm_import.Wasi(stderr="discard"))
    with pytest.raises(wasm_import.Trap) as caught:
        inst.fail("not about memory", 0)
    assert type(caught.value) is wasm_import.Trap


def test_rust_guest_out_of_memory_in_realloc_under_a_cap(corpus):
    """A Rust guest whose cabi_realloc cannot get memory for an argument: its alloc-error
    handler traps (trying to print from inside realloc); its frames say what happened."""
    class HostThing:  # as EXPECTED.md says
        def __init__(self, data):
            self.data = data + b" HostThing"

        def foo(self):
            return self.data + b" HostThing.foo"

        def bar(self, data):
            self.data = data + b" HostThing.bar"

        @staticmethod
        def baz(data):
            return data + b" HostThing.baz"

    mod = wasm_import.load(corpus / "jco/resource_with_lists.component.wasm")
    inst = mod.instantiate({"test:resource-with-lists/test": {"Thing": HostThing}},
                           limits=wasm_import.Limits(memory=32 << 20))
    Thing = inst.exports["test:resource-with-lists/test"].Thing
    with pytest.raises(wasm_import.LimitExceeded) as caught:
        Thing(b"x" * (40 << 20))
    assert caught.value.limit == "memory"
    assert "handle_alloc_error" in caught.value.trace
    fresh = mod.instantiate({"test:resource-with-lists/test": {"Thing": HostThing}},
                            limits=wasm_import.Limits(memory=32 << 20))
    small = fresh.exports["test:resource-with-lists/test"].Thing(b"Hi")  # fine within the cap
    assert small.foo() == b"Hi Thing HostThing HostThing.foo Thing.foo"


# -- 8. the default instance is replaced for everyone after a trap --------------------------------

def _hostuser_imports(now):
    store = {}

    class Store:
        def __init__(self, name):
            self.name = name

        def get(self, key):
            return store.get(key)

        def set(self, key, value):
            store[key] = value

    return {"test:host/logger": {"log": lambda level, msg: None},
            "test:host/kv": {"Store": Store, "open_count": lambda: 1}, "now": now}


def test_other_threads_never_see_the_default_instance_poisoned(hostuser_wasm):
    import threading

    mod = wasm_import.load(hostuser_wasm)
    failing = threading.local()

    def now():
        if getattr(failing, "on", False):
            raise KeyError("the clock fell over")
        return 5

    mod.link(_hostuser_imports(now))
    errors, results, stop = [], [], threading.Event()

    def steady():
        while not stop.is_set():
            try:
                results.append(mod.roundtrip_kv("k", "v"))
            except Exception as e:  # noqa: BLE001  (any is a failure of this test)
                errors.append(e)

    def trapper():
        failing.on = True
        for _ in range(15):
            with pytest.raises(KeyError, match="the clock fell over"):
                mod.fail_through()  # the host's exception poisons the default instance

    threads = [threading.Thread(target=steady) for _ in range(2)]
    for t in threads:
        t.start()
    trapper()
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert results and set(results) == {"v"}
    assert mod.roundtrip_kv("a", "b") == "b"


def test_an_instance_you_made_stays_poisoned(hostuser_wasm):
    mod = wasm_import.load(hostuser_wasm)

    def now():
        raise KeyError("no clock")

    inst = mod.instantiate(_hostuser_imports(now))
    with pytest.raises(KeyError):
        inst.fail_through()
    with pytest.raises(wasm_import.InstancePoisonedError) as caught:
        inst.roundtrip_kv("k", "v")
    assert caught.value.instance is inst


def test_corpus_default_instance_recovers_under_concurrent_traps(corpus):
    import threading

    mod = wasm_import.load(corpus / "jco/lists.component.wasm")
    errors, stop = [], threading.Event()

    def steady():
        while not stop.is_set():
            try:
                assert mod.test.string_roundtrip("hello ⚑ world") == "hello ⚑ world"
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=steady) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(10):
        with pytest.raises(wasm_import.Trap):
            mod.test.list_minmax8(b"", [])  # asserts in the guest: traps
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


# -- 9. bool is not a number; WAVE refuses lone surrogates; stubs skip core modules; --version ----

@pytest.mark.parametrize("args, param, wit", [
    ((1.0, True, 1), "b", "s32"),
    ((1.0, 2, False), "c", "u8"),
    ((True, 2, 3), "a", "f64"),
])
def test_bool_is_refused_for_every_numeric_parameter(values_mod, args, param, wit):
    with pytest.raises(TypeError, match=rf"mix\(\): parameter '{param}' \({wit}\): expected {wit}.*, got bool"):
        values_mod.mix(*args)
    assert values_mod.mix(1.5, -2, 3) == "1.5 -2 3"


def test_bool_is_refused_for_corpus_numbers(corpus):
    from tests.test_linking_corpus import NumbersHost

    mod = wasm_import.load(corpus / "jco/numbers.component.wasm")
    mod.link({"test:numbers/test": NumbersHost()})
    for name in ("u8", "s8", "u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64"):
        f = getattr(mod.test, f"roundtrip_{name}")
        with pytest.raises(TypeError, match=rf"roundtrip_{name}\(\): parameter 'a' \({name}\): .*got bool True"):
            f(True)
        assert f(1) == 1


def test_a_host_function_returning_bool_for_an_int_is_refused(corpus):
    from tests.test_linking_corpus import NumbersHost

    class BoolHost(NumbersHost):
        def roundtrip_u8(self, a):
            return True

    inst = wasm_import.load(corpus / "jco/numbers.component.wasm").instantiate(
        imports={"test:numbers/test": BoolHost()})
    with pytest.raises(TypeError, match=r"function 'roundtrip-u8' returned a bad value for WIT type u8: "
                                        r"expected u8 \(an int in 0..255\), got bool True"):
        inst.test_imports()


def test_wave_refuses_lone_surrogates_in_literals():
    from wasm_import.cli import _wave
    from wasm_import.wit._model import Primitive

    for text, ty, column in (('"ab\ud800"', Primitive.STRING, 4), ("'\udfff'", Primitive.CHAR, 2),
                             ('"\\u{d800}"', Primitive.STRING, 2)):
        with pytest.raises(_wave.WaveError, match=rf"is not a Unicode scalar value \(column {column}\)"):
            _wave.parse(text, ty)
    assert _wave.parse('"ok \\u{1f680}"', Primitive.STRING) == "ok \U0001f680"


def test_call_command_refuses_a_lone_surrogate_before_calling(corpus, capsys):
    from wasm_import.cli._main import main

    path = str(corpus / "jco/strings.component.wasm")
    assert main(["call", path, 'roundtrip("fine")']) == 0
    assert capsys.readouterr().out == '"fine"\n'
    assert main(["call", path, 'roundtrip("bad \ud800")']) == 2
    err = capsys.readouterr().err
    assert "lone surrogate (U+D800) is not a Unicode scalar value (column 16)" in err
    assert "roundtrip(\"bad \ufffd\")" in err


def test_stubs_of_a_folder_skip_core_modules(tmp_path, adder_wasm, capsys):
    import shutil

    import wasmtime

    from wasm_import.cli._main import main

    shutil.copy(adder_wasm, tmp_path / "adder.wasm")
    (tmp_path / "plain.wasm").write_bytes(wasmtime.wat2wasm("(module (func (export \"f\")))"))
    assert main(["stubs", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"skipped {tmp_path / 'plain.wasm'}: a core WebAssembly module, not a component\n"
    assert captured.out == f"wrote {tmp_path / 'adder.pyi'}\n"
    assert main(["stubs", str(tmp_path), "--check"]) == 0
    assert main(["stubs", str(tmp_path / "plain.wasm")]) == 1  # named explicitly: an error


def test_version_option():
    import subprocess
    import sys
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "wasm_import", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith(f"wasm-import {version('wasm-import')} (wasmtime {version('wasmtime')}, Python ")


# -- 6. pickling: values by value, modules and their functions by reference ----------------------

def _roundtrip(value):
    import pickle

    return pickle.loads(pickle.dumps(value))


def test_every_wit_value_class_pickles_to_an_equal_value_of_the_same_class(kitchen_wasm):
    from wasm_import import Some

    mod = wasm_import.load(kitchen_wasm)
    echo = mod.echo
    shapes = [echo.Shape_None_(), echo.Shape_Circle(1.5), echo.Shape_Rectangle(echo.RectSize(2.0, 3.0)),
              echo.Shape_NamedShape("blob"), echo.Shape_UnitSquare()]
    values = [
        Ok(1), Err("bad"), Ok(), Err(), Some(None), Some(Some(3)), Ok(Err(2)),  # wasm_import's own
        echo.PersonInfo(full_name="Ada", age_years=36, email_address=None, tag_list=["x"]),
        *shapes, echo.Drawing(title_text="t", main_shape=shapes[2], layer_index=7),
        *echo.TrafficLight, echo.Permissions(0), echo.Permissions.READ | echo.Permissions.EXEC_BIT,
    ]
    for value in values:
        back = _roundtrip(value)
        assert back == value and type(back) is type(value), value
    # values made by the component, too: the same classes
    drawing = echo.echo_drawing(values[-6])
    assert _roundtrip(drawing) == drawing and type(_roundtrip(drawing).main_shape) is echo.Shape_Rectangle


def test_corpus_values_pickle(corpus):
    mod = wasm_import.load(corpus / "jco/variants.component.wasm")
    t = mod.test
    for value in (t.E1.A, t.C1_A(1), t.C4_B(4.0), t.Z1_B(), t.MyErrno.SUCCESS):
        back = _roundtrip(value)
        assert back == value and type(back) is type(value)


def test_modules_and_their_functions_pickle_by_reference(values_mod, kitchen_wasm):
    assert _roundtrip(values_mod) is values_mod  # loaded from a file: found again by its path
    f = _roundtrip(values_mod.shapes.make_many)
    assert f == values_mod.shapes.make_many and f.__self__ is values_mod.shapes
    assert _roundtrip(values_mod.mix)(1.0, 2, 3) == "1.0 2 3"
    kitchen = wasm_import.load(kitchen_wasm)
    assert _roundtrip(kitchen.add)(2, 3) == 5 and _roundtrip(kitchen.echo) is kitchen.echo


def test_what_lives_in_one_process_refuses_to_pickle(values_mod, adder_wasm):
    import pickle

    inst = values_mod.instantiate(values_imports())
    with pytest.raises(TypeError, match=r"<instance of component 'values'> cannot be pickled: its state "
                                        r"\(memory, resources\) lives in this process's wasm store"):
        pickle.dumps(inst)
    with pytest.raises(TypeError, match="of a component instance cannot be pickled"):
        pickle.dumps(inst.shapes)
    with pytest.raises(TypeError, match="a Thing resource cannot be pickled: it is a handle"):
        pickle.dumps(values_mod.api.make(1))
    from_bytes = wasm_import.load(adder_wasm.read_bytes())
    with pytest.raises(TypeError, match="was loaded from bytes, so it cannot be pickled by reference"):
        pickle.dumps(from_bytes)


def _pool(workers=2):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: the workers share nothing with this process; everything goes by pickle
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _worker_pid(_):
    import os

    return os.getpid()


def test_process_pool_maps_a_component_function_over_two_workers(corpus):
    mod = wasm_import.load(corpus / "jco/records.component.wasm")
    t = mod.test
    records = [t.R1(a=i, b=t.F1.A if i % 2 else t.F1(0)) for i in range(40)]
    with _pool(2) as pool:
        pids = set(pool.map(_worker_pid, range(40), chunksize=1))
        out = list(pool.map(t.roundtrip_record1, records, chunksize=5))
        swapped = list(pool.map(t.swap_tuple, [(i, i * 1000) for i in range(10)]))
    assert len(pids) == 2
    assert out == records and all(type(r) is t.R1 for r in out)
    assert swapped == [(i * 1000, i) for i in range(10)]


def test_process_pool_with_the_repo_guest(adder_wasm, values_wasm):
    adder = wasm_import.load(adder_wasm)
    values = wasm_import.load(values_wasm, name="values")
    with _pool(2) as pool:
        assert list(pool.map(adder.add.add, range(10), range(10))) == [2 * i for i in range(10)]
        assert list(pool.map(values.mix, [0.5, 1.5], [1, 2], [3, 4])) == ["0.5 1 3", "1.5 2 4"]


def test_an_imported_module_pickles_by_its_import_name(tmp_path, adder_wasm, monkeypatch):
    import importlib
    import shutil
    import sys

    shutil.copy(adder_wasm, tmp_path / "pickled_adder.wasm")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    mod = importlib.import_module("pickled_adder")
    try:
        assert _roundtrip(mod) is mod
        assert _roundtrip(mod.add.add)(20, 22) == 42
        with _pool(2) as pool:  # the workers import it by name (sys.path goes along)
            assert list(pool.map(mod.add.add, [1, 2], [3, 4])) == [4, 6]
    finally:
        sys.modules.pop("pickled_adder", None)


# -- 7. instances calling each other from several threads: no deadlock -----------------------------

def _crossed_pair(hostuser_wasm, barrier):
    """Two hostuser instances whose `now` calls the other instance's `roundtrip_kv`."""
    mod = wasm_import.load(hostuser_wasm)
    pair = {}

    def now_of(me):
        def now():
            if barrier is not None:
                barrier.wait(timeout=10)  # both threads are now inside their own instance
            return len(pair["b" if me == "a" else "a"].roundtrip_kv("k", me))
        return now

    pair["a"] = mod.instantiate(_hostuser_imports(now_of("a")))
    pair["b"] = mod.instantiate(_hostuser_imports(now_of("b")))
    return pair


def test_crossed_calls_from_two_threads_raise_instead_of_hanging(hostuser_wasm):
    import threading

    from wasm_import import DeadlockError

    barrier = threading.Barrier(2)
    pair = _crossed_pair(hostuser_wasm, barrier)
    outcomes = {}

    def drive(name):
        try:
            outcomes[name] = pair[name].fail_through()
        except Exception as e:  # noqa: BLE001
            outcomes[name] = e

    threads = [threading.Thread(target=drive, args=(n,), daemon=True) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "deadlock: a thread is still waiting"
    errors = list(outcomes.values())
    assert len(errors) == 2 and all(isinstance(e, Exception) for e in errors)
    deadlocks = [e for e in errors if isinstance(e, DeadlockError)]
    assert deadlocks, errors
    assert "deadlock: the instance of component 'hostuser" in str(deadlocks[0])
    assert "this call fails instead of waiting forever" in str(deadlocks[0])


def test_crossed_calls_without_contention_work(hostuser_wasm):
    pair = _crossed_pair(hostuser_wasm, None)
    assert pair["a"].fail_through() == 1  # a's now() -> b.roundtrip_kv("k", "a") -> "a"
    assert pair["b"].fail_through() == 1


def test_threads_waiting_for_a_busy_corpus_instance_are_not_deadlocks(corpus):
    import threading

    inst = wasm_import.load(corpus / "jco/strings.component.wasm").instantiate(
        imports={"test:strings/imports": {"take_basic": lambda s: None, "return_unicode": lambda: "x"}})
    results, errors = [], []

    def work(i):
        try:
            for _ in range(50):
                results.append(inst.roundtrip(f"s{i}"))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 200
