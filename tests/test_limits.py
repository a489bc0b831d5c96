"""Per-instance limits on a component that misbehaves on request (tests/guests/hostile):
a timeout by epoch interruption, fuel per call, and a cap on linear memory."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, List, Tuple

import pytest

import wasm_import
from tests.test_threads import all_overlap
from wasm_import import InstancePoisonedError, LimitExceeded, Limits, Trap

PAGE = 65536


@pytest.fixture(scope="module")
def hostile(hostile_wasm: Path) -> Any:
    return wasm_import.load(hostile_wasm)


# -- timeout --------------------------------------------------------------------------------------

def test_timeout_stops_an_endless_loop(hostile: Any) -> None:
    inst = hostile.instantiate(limits=Limits(timeout=0.05))
    start = time.perf_counter()
    with pytest.raises(LimitExceeded) as info:
        inst.api.spin()
    elapsed = time.perf_counter() - start
    assert info.value.limit == "timeout" and isinstance(info.value, Trap)
    assert "timeout of 0.05 s" in str(info.value) and "wasm backtrace" in info.value.trace
    assert 0.05 <= elapsed < 2.0
    assert inst.poisoned
    with pytest.raises(InstancePoisonedError):
        inst.api.count(1)


def test_timeout_is_per_call(hostile: Any) -> None:
    inst = hostile.instantiate(limits=Limits(timeout=0.02))
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < 0.1:  # together far longer than one timeout
        assert inst.api.count(1000) == 1000
        calls += 1
    assert calls > 1 and not inst.poisoned


def test_timeout_of_one_instance_leaves_others_running(hostile: Any) -> None:
    unlimited = hostile.instantiate()
    timed = hostile.instantiate(limits=Limits(timeout=0.05))
    results: List[Any] = []
    worker = threading.Thread(target=lambda: results.append(unlimited.api.count(50_000_000)))
    worker.start()
    with pytest.raises(LimitExceeded):
        timed.api.spin()
    worker.join()
    assert results == [50_000_000] and not unlimited.poisoned


def test_timeouts_in_parallel_threads(hostile: Any) -> None:
    """Each instance's timeout ends its own spin, while the others spin on: all three
    spins are under way at one moment (serialized, each would end before the next began)."""
    instances = [hostile.instantiate(limits=Limits(timeout=0.05)) for _ in range(3)]
    errors: List[BaseException] = []
    intervals: List[Tuple[float, float]] = []

    def spin(inst: Any) -> None:
        start = time.perf_counter()
        try:
            inst.api.spin()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)
        intervals.append((start, time.perf_counter()))

    threads = [threading.Thread(target=spin, args=(inst,)) for inst in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [type(e) for e in errors] == [LimitExceeded] * 3
    assert all_overlap(intervals), intervals


def test_default_instance_takes_limits_from_link(hostile_wasm: Path) -> None:
    module = wasm_import.load(hostile_wasm)
    module.link(limits=Limits(timeout=0.05))
    with pytest.raises(LimitExceeded):
        module.api.spin()
    assert module.api.count(3) == 3  # a fresh default instance, still limited
    with pytest.raises(LimitExceeded):
        module.api.spin()


# -- fuel -----------------------------------------------------------------------------------------

def test_fuel_is_per_call(hostile: Any) -> None:
    inst = hostile.instantiate(limits=Limits(fuel=5_000))
    for _ in range(20):  # together far more than 5000 units
        assert inst.api.count(100) == 100
    with pytest.raises(LimitExceeded) as info:
        inst.api.count(1_000_000)
    assert info.value.limit == "fuel" and "fuel of 5000 units" in str(info.value)
    assert inst.poisoned


def test_zero_fuel_stops_the_first_instruction(hostile: Any) -> None:
    inst = hostile.instantiate(limits=Limits(fuel=0))
    with pytest.raises(LimitExceeded):
        inst.api.pages()


# -- memory ---------------------------------------------------------------------------------------

def test_memory_cannot_grow_past_the_cap(hostile: Any) -> None:
    inst = hostile.instantiate(limits=Limits(memory=3 * PAGE))
    assert inst.api.grow(1) == 1
    assert inst.api.grow(2) == -1  # 4 pages would exceed 3: memory.grow fails in the guest
    assert inst.api.grow(1) == 2
    assert inst.api.grow(1) == -1
    assert inst.api.pages() == 3 and not inst.poisoned


def test_memory_is_unlimited_by_default(hostile: Any) -> None:
    inst = hostile.instantiate()
    assert inst.api.grow(100) == 1 and inst.api.pages() == 101


def test_instance_larger_than_the_cap_cannot_be_made(hostile: Any) -> None:
    with pytest.raises(LimitExceeded) as info:
        hostile.instantiate(limits=Limits(memory=PAGE - 1))
    assert info.value.limit == "memory" and f"limit of {PAGE - 1} bytes" in str(info.value)


# -- all together, and bad limits -----------------------------------------------------------------

def test_all_limits_at_once(hostile: Any) -> None:
    inst = hostile.instantiate(limits=Limits(timeout=1.0, fuel=1_000_000, memory=2 * PAGE))
    assert inst.api.count(1000) == 1000 and inst.api.grow(1) == 1 and inst.api.grow(1) == -1
    with pytest.raises(LimitExceeded) as info:
        inst.api.spin()
    assert info.value.limit == "fuel"  # a million units run out long before a second passes


@pytest.mark.parametrize("kwargs, error", [
    ({"timeout": 0}, ValueError),
    ({"timeout": -1.0}, ValueError),
    ({"timeout": "1"}, TypeError),
    ({"timeout": True}, TypeError),
    ({"fuel": -1}, ValueError),
    ({"fuel": 1.5}, TypeError),
    ({"memory": 1 << 62}, ValueError),
    ({"memory": "64M"}, TypeError),
])
def test_bad_limits_are_refused(kwargs: Any, error: type) -> None:
    with pytest.raises(error) as info:
        Limits(**kwargs)
    assert f"Limits.{next(iter(kwargs))}" in str(info.value)
