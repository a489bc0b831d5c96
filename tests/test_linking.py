"""Linking: imports satisfied by Python objects, classes, mocks and other components."""

from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace
from unittest.mock import Mock

import pytest

import wasm_import
from wasm_import import LinkError


class Store:
    """A host implementation of the imported resource `test:host/kv.store`."""

    opened = 0
    dropped: list = []

    def __init__(self, name: str) -> None:
        type(self).opened += 1
        self.name = name
        self.data: dict = {}

    def get(self, key: str):
        return self.data.get(key)

    def set(self, key: str, value: str) -> None:
        self.data[key] = value

    def __wasm_drop__(self) -> None:
        type(self).dropped.append(self.name)


@pytest.fixture(scope="module")
def hostuser(hostuser_wasm):
    return wasm_import.load(hostuser_wasm)


def host_imports(log, clock=None):
    ticks = clock or itertools.count(100, 5)
    kv = SimpleNamespace(Store=Store, open_count=lambda: Store.opened)
    return {"test:host/logger": log, "test:host/kv": kv, "now": lambda: next(ticks)}


def test_python_objects_mocks_and_resource_classes(hostuser):
    Store.opened, Store.dropped = 0, []
    log = Mock(spec=hostuser.imports.Logger)
    inst = hostuser.instantiate(imports=host_imports(log))
    assert inst.run(4) == "n=4 total=14 opened=1 elapsed=5"
    level = log.log.call_args_list[0].args[0]
    assert type(level).__name__ == "Level" and level.name == "INFO"
    assert log.log.call_args_list[0].args[1] == "run(4) start"
    assert [c.args[0].name for c in log.log.call_args_list] == ["INFO", "DEBUG"]
    assert Store.dropped == ["run"]  # the guest dropped its handle: the host saw it
    assert inst.roundtrip_kv("k", "v") == "v"


def test_version_may_be_left_out_and_dicts_work(hostuser):
    log = {"log": lambda level, msg: None}
    inst = hostuser.instantiate(imports={
        "test:host/logger": log,
        "test:host/kv": {"Store": Store, "open_count": lambda: 0},
        "now": lambda: 1,
    })
    assert inst.roundtrip_kv("a", "b") == "b"


def test_missing_imports_raise_link_error_with_signatures(hostuser):
    with pytest.raises(LinkError) as info:
        hostuser.instantiate(imports={"test:host/logger": SimpleNamespace()})
    text = str(info.value)
    assert "test:host/logger" in text and "log: func(level: level, msg: string)" in text
    assert "test:host/kv: nothing was given" in text
    assert "now: func() -> u64" in text
    assert "namespace()" in text  # says what was given instead


def test_default_instance_needs_link(hostuser_wasm):
    mod = wasm_import.load(hostuser_wasm)
    assert "run" in dir(mod)  # loads and can be inspected without imports
    with pytest.raises(LinkError):
        mod.run(1)
    mod.link(host_imports(Mock()))
    assert mod.run(2).startswith("n=2 total=1")


def test_host_exception_propagates_with_a_note(hostuser):
    class Boom(Exception):
        pass

    def now():
        raise Boom("clock broke")

    inst = hostuser.instantiate(imports={**host_imports(Mock()), "now": now})
    with pytest.raises(Boom, match="clock broke") as info:
        inst.fail_through()
    assert any("'now'" in note for note in info.value.__notes__)


def test_host_return_values_are_checked(hostuser):
    inst = hostuser.instantiate(imports={**host_imports(Mock()), "now": lambda: "soon"})
    with pytest.raises(TypeError, match=r"import 'now' function 'now' returned a bad value for WIT type u64"):
        inst.fail_through()


def test_host_exceptions_are_per_thread(hostuser):
    """No process-global exception slot: concurrent instances each get their own error."""
    errors = {}

    def worker(i):
        def now():
            raise RuntimeError(f"from thread {i}")

        inst = hostuser.instantiate(imports={**host_imports(Mock()), "now": now})
        for _ in range(20):
            try:
                inst.fail_through()
            except RuntimeError as e:
                errors.setdefault(i, set()).add(str(e))
            inst = hostuser.instantiate(imports={**host_imports(Mock()), "now": now})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == {i: {f"from thread {i}"} for i in range(4)}


# -- two borrows in one host call (wasmtime 50.0.x traps here; keep this test) ---------------

class R:
    def __init__(self, v: int) -> None:
        self.v = v

    def value(self) -> int:
        return self.v


def test_host_import_taking_two_borrows(twoborrows_wasm):
    seen = []

    def sum_(a, b):
        seen.append((type(a), type(b)))
        return a.v + b.v

    mod = wasm_import.load(twoborrows_wasm)
    inst = mod.instantiate(imports={"test:twoborrows/host": {"R": R, "sum": sum_}})
    assert inst.run() == 42
    assert seen == [(R, R)]
    assert inst.run_single() == 7


# -- component to component: private and shared instances -------------------------------------

COUNTER = "test:state/counter"


@pytest.fixture(scope="module")
def counter_and_relay(build_guest):
    return wasm_import.load(build_guest("counter")), wasm_import.load(build_guest("relay"))


def test_module_as_import_means_a_private_instance(counter_and_relay):
    counter, relay = counter_and_relay
    one = relay.instantiate(imports={COUNTER: counter})
    two = relay.instantiate(imports={COUNTER: counter})
    assert [one.counter.next(), one.counter.next()] == [1, 2]
    assert two.counter.next() == 1  # its own counter


def test_instance_as_import_is_shared(counter_and_relay):
    counter, relay = counter_and_relay
    shared = counter.instantiate()
    one = relay.instantiate(imports={COUNTER: shared})
    two = relay.instantiate(imports={COUNTER: shared})
    assert one.counter.next() == 1
    assert two.counter.next() == 2
    assert shared.counter.next() == 3


def test_chains_of_components(counter_and_relay):
    counter, relay = counter_and_relay
    middle = relay.instantiate(imports={COUNTER: counter})
    outer = relay.instantiate(imports={COUNTER: middle})
    assert [outer.counter.next(), middle.counter.next()] == [1, 2]


def test_component_whose_types_do_not_match_is_a_link_error(counter_and_relay, adder_wasm):
    _, relay = counter_and_relay
    adder = wasm_import.load(adder_wasm)
    with pytest.raises(LinkError, match="does not export it"):
        relay.instantiate(imports={COUNTER: adder})


def test_types_are_matched_structurally(counter_and_relay, build_guest):
    _, relay = counter_and_relay
    wrong = wasm_import.load(build_guest("stringcounter"))
    with pytest.raises(LinkError, match=r"next of the right type \(it is `next: func\(\) -> bool`\)"):
        relay.instantiate(imports={COUNTER: wrong})
