"""Thread safety: many threads calling one instance, one module's default instance, a
module's first use, and imports of one component, all at once.

A store is single-threaded, so calls into one instance are serialized by its lock;
separate instances run in parallel (ctypes releases the GIL while wasm runs)."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest

import wasm_import
from tests.test_hook import clean_imports, on_path, put  # noqa: F401 (fixture)

THREADS = 8


def run_in_threads(work: Callable[[int], Any], count: int = THREADS) -> List[Any]:
    """Run `work(i)` in `count` threads released together; their results, or re-raise."""
    results: List[Any] = [None] * count
    errors: List[BaseException] = []
    start = threading.Barrier(count)

    def body(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_one_instance_from_many_threads(adder_wasm: Path) -> None:
    add = wasm_import.load(adder_wasm).instantiate().add.add
    results = run_in_threads(lambda i: [add(i, j) for j in range(2000)])
    assert results == [[i + j for j in range(2000)] for i in range(THREADS)]


def test_first_use_of_a_module_from_many_threads(adder_wasm: Path) -> None:
    # Converters, callers and the default instance are all made lazily: race them.
    module = wasm_import.load(adder_wasm)
    results = run_in_threads(lambda i: module.add.add(i, 1))
    assert results == [i + 1 for i in range(THREADS)]
    assert module.__dict__["__wasm_default__"] is not None


def test_strings_and_records_from_many_threads(kitchen: Any) -> None:
    inst = kitchen.instantiate()
    echo = inst.echo

    def work(i: int) -> bool:
        for j in range(200):
            person = echo.PersonInfo(f"name {i}/{j}", j % 256, None, [str(i)] * (j % 4))
            assert echo.echo_record(person) == person
            assert echo.echo_string("é" * j) == "é" * j
        return True

    assert run_in_threads(work) == [True] * THREADS


def all_overlap(intervals: List[Tuple[float, float]]) -> bool:
    """Whether some moment lies inside every (start, end) interval: all were under way at once."""
    return max(start for start, _ in intervals) < min(end for _, end in intervals)


def test_separate_instances_in_parallel(hostile_wasm: Path) -> None:
    """Calls into separate instances run at the same time: wasm runs with the GIL released
    and each instance has its own lock. Were they serialized (by the GIL or a shared lock),
    one call would end before the next began; here every call is under way at one moment."""
    module = wasm_import.load(hostile_wasm)
    instances = [module.instantiate() for _ in range(THREADS)]
    for inst in instances:  # the first call of an export builds its converters (Python, under the GIL)
        inst.api.count(1)
    n = 50_000_000  # about 55 ms of wasm each, well above the ~20 ms the threads take to wake

    def work(i: int) -> Tuple[float, float, int]:
        start = time.perf_counter()
        result = instances[i].api.count(n + i)
        return start, time.perf_counter(), result

    runs = run_in_threads(work)
    assert [result for _, _, result in runs] == [n + i for i in range(THREADS)]
    assert all_overlap([(start, end) for start, end, _ in runs]), runs


def test_import_of_one_component_from_many_threads(clean_imports: None, tmp_path: Path,
                                                   adder_wasm: Path) -> None:
    put(on_path(tmp_path) / "threaded_adder.wasm", adder_wasm.read_bytes())

    def work(i: int) -> Any:
        module = importlib.import_module("threaded_adder")
        assert module.add.add(i, i) == 2 * i
        return module

    modules = run_in_threads(work)
    assert all(m is sys.modules["threaded_adder"] for m in modules)


def test_host_functions_run_on_the_calling_thread(hostuser_wasm: Path) -> None:
    from tests.test_linking import host_imports
    seen: List[str] = []

    class Log:
        def log(self, level: Any, msg: str) -> None:
            seen.append(threading.current_thread().name)

    module = wasm_import.load(hostuser_wasm)
    instances = [module.instantiate(imports=host_imports(Log())) for _ in range(4)]

    def work(i: int) -> str:
        threading.current_thread().name = f"worker-{i}"
        instances[i].run(1)
        return threading.current_thread().name

    names = run_in_threads(work, 4)
    assert sorted(set(seen)) == sorted(names)


@pytest.fixture(scope="module")
def kitchen(kitchen_wasm: Path) -> Any:
    return wasm_import.load(kitchen_wasm)
