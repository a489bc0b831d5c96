"""The runtime under values and events that should never
hurt the process: lists mutated by another thread during calls, list/str/bytes subclasses
whose `__len__` (and friends) lie, Ctrl-C during an endless guest loop, a timeout while
other Python threads keep the GIL busy, and calls of `async func` exports (the callback form runs; a stackful lift is refused clearly).

The rule (issue 12, "memory safety by construction"): whatever Python hands us, a call
returns the right value or raises a clean TypeError/ValueError, and the process lives.
Guests: tests/guests/bulk (echo functions), hostile (`spin`), asyncfn (an async lift).
"""

from __future__ import annotations

import array
import asyncio
import gc
import inspect
import logging
import sys
import threading
from typing import Any, Callable, List

import pytest
import wasmtime

from tests._build import build_wat_guest
from wasm_import import InstancePoisonedError, Trap
from tests.runtime._engines import load_core, run_child

U32_MAX = 2**32 - 1


@pytest.fixture(scope="module")
def bulk() -> Any:
    module = load_core(build_wat_guest("bulk"))
    return module.instantiate(imports={"test:bulk/host": {"tick": lambda x: x}}).api


@pytest.fixture
def busy_switching() -> Any:
    """Switch threads as often as the interpreter allows, so another thread's mutations
    land between the steps of a call rather than between calls."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _hammer(call: Callable[[], Any], mutate: Callable[[int], None], calls: int,
            accept: Callable[[Any], bool]) -> List[str]:
    """`calls` calls while another thread runs `mutate(i)` for i = 0, 1, 2...; returns
    the problems found (results that are not acceptable, exceptions other than
    TypeError/ValueError). Counts how many calls returned and how many were refused."""
    stop = threading.Event()

    def run() -> None:
        i = 0
        while not stop.is_set():
            mutate(i)
            i += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    problems: List[str] = []
    ok = refused = 0
    try:
        for _ in range(calls):
            try:
                result = call()
            except (TypeError, ValueError):
                refused += 1
                continue
            except Exception as e:  # noqa: BLE001  the finding is reported, not raised
                problems.append(f"{type(e).__name__}: {e}")
                continue
            if accept(result):
                ok += 1
            else:
                problems.append(f"unacceptable result {str(result)[:200]}")
    finally:
        stop.set()
        thread.join()
    assert ok + refused + len(problems) == calls
    assert ok > 0, "no call returned at all: the test would show nothing"
    return problems


# -- lists mutated by another thread ---------------------------------------------------------

def test_list_u32_mutated_by_another_thread(bulk: Any, busy_switching: Any) -> None:
    shared: List[Any] = list(range(1000))

    def mutate(i: int) -> None:
        op = i % 8
        if op == 0:
            shared.append(i & 0xFFFF)
        elif op == 1 and shared:
            shared.pop()
        elif op == 2:
            shared[:] = list(range(i % 3000))  # replaced wholesale, longer or shorter
        elif op == 3:
            shared.insert(0, 7)
        elif op == 4:
            shared.append(-1)  # out of range for u32: a call that sees it refuses
        elif op == 5:
            shared.append("x")  # not an int: likewise
        elif op in (6, 7) and shared:
            del shared[-1]  # takes the bad items out again (with op 1 and 2)

    def accept(result: Any) -> bool:
        return (type(result) is array.array and result.typecode == "I" and len(result) <= 3000 + 10_000
                and all(0 <= x <= 0xFFFF for x in result))

    assert _hammer(lambda: bulk.echo_u32s(shared), mutate, 3000, accept) == []


def test_array_u32_mutated_by_another_thread(bulk: Any, busy_switching: Any) -> None:
    """An array goes in as one copy of its buffer: while a call holds it, another thread
    cannot resize it (BufferError there), and values changed in place give consistent data."""
    shared = array.array("I", range(1000))
    refused_resizes = [0]

    def mutate(i: int) -> None:
        try:
            if i % 3 == 0:
                shared.append(i & 0xFFFF)
            elif i % 3 == 1 and len(shared) > 10:
                del shared[-5:]
            else:
                shared[i % len(shared)] = i & 0xFFFF
        except BufferError:  # resizing while a call copies it: refused, not torn
            refused_resizes[0] += 1
        except IndexError:
            pass

    def accept(result: Any) -> bool:
        return (type(result) is array.array and result.typecode == "I" and len(result) <= 1000 + 10_000
                and all(0 <= x <= 0xFFFF for x in result))

    assert _hammer(lambda: bulk.echo_u32s(shared), mutate, 3000, accept) == []


def test_list_of_strings_mutated_by_another_thread(bulk: Any, busy_switching: Any) -> None:
    words = ["", "a", "héllo", "wörld ✓", "x" * 300]
    shared: List[Any] = list(words) * 20

    def mutate(i: int) -> None:
        op = i % 6
        if op == 0:
            shared.append(words[i % len(words)])
        elif op == 1 and shared:
            shared.pop(0)
        elif op == 2:
            shared[:] = words * (i % 40)
        elif op == 3:
            shared.append(i)  # not a str
        elif op == 4 and shared:
            shared.pop()
        elif op == 5 and shared:
            shared[len(shared) // 2] = words[(i // 6) % len(words)]

    def accept(result: Any) -> bool:
        return isinstance(result, list) and all(x in words for x in result)

    assert _hammer(lambda: bulk.echo_strings(shared), mutate, 2000, accept) == []


def test_bytearray_and_record_list_mutated_by_another_thread(bulk: Any, busy_switching: Any) -> None:
    blob = bytearray(b"abc" * 1000)

    def grow_and_shrink(i: int) -> None:
        if i % 2:
            blob.extend(b"abc" * (i % 50))
        else:
            del blob[: 3 * (i % 50)]

    def same_pattern(result: Any) -> bool:
        return isinstance(result, bytes) and len(result) % 3 == 0 and result == b"abc" * (len(result) // 3)

    assert _hammer(lambda: bulk.echo_bytes(blob), grow_and_shrink, 3000, same_pattern) == []

    samples = [bulk.Sample(i, float(i), -float(i), bool(i % 2)) for i in range(50)]
    shared: List[Any] = list(samples)

    def shuffle(i: int) -> None:
        if i % 3 == 0:
            shared.append(samples[i % 50])
        elif i % 3 == 1 and shared:
            shared.pop(0)
        else:
            shared.append(None) if i % 9 == 2 else (shared.remove(None) if None in shared else None)

    def only_samples(result: Any) -> bool:
        return isinstance(result, list) and all(r in samples for r in result)

    assert _hammer(lambda: bulk.echo_samples(shared), shuffle, 2000, only_samples) == []


# -- subclasses that lie -----------------------------------------------------------------------

class LongList(list):
    def __len__(self) -> int:
        return 10**9


class EmptyList(list):
    def __len__(self) -> int:
        return 0


class NegativeLenList(list):
    def __len__(self) -> int:
        return -1  # len() itself refuses: ValueError


class DoubledIterList(list):
    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from list.__iter__(self)
        yield from list.__iter__(self)


class NoIterList(list):
    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(())


class LyingItemList(list):
    def __getitem__(self, i: Any) -> Any:
        return 2**40  # out of range for u32, if anyone asks


class LongStr(str):
    def __len__(self) -> int:
        return 10**9


class EmptyStr(str):
    def __len__(self) -> int:
        return 0


class OtherEncodingStr(str):
    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return b"\xff\xfe not what the str holds" * 1000


class OtherStr(str):
    def __str__(self) -> str:
        return "something else entirely" * 1000

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter("zz")


class LongBytes(bytes):
    def __len__(self) -> int:
        return 10**9


class EmptyBytes(bytes):
    def __len__(self) -> int:
        return 0


class OtherBytes(bytes):
    def __bytes__(self) -> bytes:
        return b"other" * 100000

    def __getitem__(self, i: Any) -> Any:
        return b"\x00" * 100000


class LongBytearray(bytearray):
    def __len__(self) -> int:
        return 10**9


class LyingIndexInt(int):
    def __index__(self) -> int:
        return 2**40

    def __int__(self) -> int:
        return -5


LIST_ITEMS = [0, 1, 2, 65535, U32_MAX]
LISTS = [cls(LIST_ITEMS) for cls in (LongList, EmptyList, NegativeLenList, DoubledIterList, NoIterList,
                                     LyingItemList)]
STRING = "héllo wörld ✓ " * 50
STRINGS = [cls(STRING) for cls in (LongStr, EmptyStr, OtherEncodingStr, OtherStr)]
BLOB = bytes(range(256)) * 20
BLOBS = [cls(BLOB) for cls in (LongBytes, EmptyBytes, OtherBytes, LongBytearray)]


def _right_or_clean(call: Callable[[Any], Any], value: Any, right: List[Any], times: int) -> List[str]:
    """Calls `call(value)` `times` times: each must return one of `right` (exactly, type
    included) or raise TypeError/ValueError. "Right" is what the value holds, or what its
    own conversions say it holds (a list subclass's `__iter__`, a bytes subclass's
    `__bytes__`): consistent data. Never data from neither, a bigger copy, or a crash."""
    problems = []
    for _ in range(times):
        try:
            result = call(value)
        except (TypeError, ValueError):
            continue
        except Exception as e:  # noqa: BLE001
            problems.append(f"{type(value).__name__}: {type(e).__name__}: {e}")
            continue
        if not any(result == r and type(result) is type(r) for r in right):
            problems.append(f"{type(value).__name__}: wrong result {str(result)[:120]}")
    return problems


def _iterated(value: Any) -> List[Any]:
    """[what iterating `value` gives], or [] when even list() refuses it."""
    try:
        return [list(value)]
    except (TypeError, ValueError):
        return []


@pytest.mark.parametrize("value", LISTS, ids=lambda v: type(v).__name__)
def test_lying_list_subclasses(bulk: Any, value: Any) -> None:
    right = [array.array("I", items) for items in (list.copy(value), *_iterated(value))]
    assert _right_or_clean(bulk.echo_u32s, value, right, 500) == []
    strings = type(value)(["a", "bé", ""])
    assert _right_or_clean(bulk.echo_strings, strings, [list.copy(strings), *_iterated(strings)], 300) == []


@pytest.mark.parametrize("value", STRINGS, ids=lambda v: type(v).__name__)
def test_lying_str_subclasses(bulk: Any, value: Any) -> None:
    assert _right_or_clean(bulk.echo_string, value, [str.__str__(value)], 1000) == []
    assert _right_or_clean(bulk.echo_strings, [value, value], [[str.__str__(value)] * 2], 300) == []


@pytest.mark.parametrize("value", BLOBS, ids=lambda v: type(v).__name__)
def test_lying_bytes_subclasses(bulk: Any, value: Any) -> None:
    assert _right_or_clean(bulk.echo_bytes, value, [BLOB, bytes(value)], 1000) == []


def test_int_subclass_with_lying_index(bulk: Any) -> None:
    liar = LyingIndexInt(7)
    assert _right_or_clean(lambda v: bulk.add(v, 1), liar, [8], 500) == []
    assert _right_or_clean(bulk.echo_u32s, [1, liar, 3], [array.array("I", [1, 7, 3])], 500) == []


def test_still_right_after_the_liars(bulk: Any) -> None:
    """After all of the above the instance still works (nothing was left half-written)."""
    assert bulk.echo_u32s(LIST_ITEMS) == array.array("I", LIST_ITEMS)
    assert bulk.echo_string(STRING) == STRING
    assert bulk.echo_bytes(BLOB) == BLOB
    assert bulk.add(2, 3) == 5


# -- Ctrl-C and timeouts (in a child process: a failure would hang or kill it) --------------------

SPIN_UNTIL_SIGINT = """
import os, signal, sys, threading, time
import wasm_import
from wasm_import import Limits
from tests._build import build_wat_guest
from wasm_import import InstancePoisonedError, Trap

module = wasm_import.load(build_wat_guest("hostile"))
limits = Limits(timeout={timeout}) if {timeout} else None
inst = module.instantiate(limits=limits) if limits else module.instantiate()
sent = []

def interrupt():
    time.sleep(0.3)
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
try:
    inst.api.spin()
except KeyboardInterrupt:
    print("interrupted after", time.monotonic() - sent[0])
else:
    print("spin returned")
fresh = module.instantiate()
print("alive", fresh.api.count(1000))
"""


@pytest.mark.parametrize("timeout", [0, 60], ids=["no-timeout", "with-timeout"])
def test_sigint_stops_an_endless_guest_loop_within_a_second(timeout: int) -> None:
    child = run_child(SPIN_UNTIL_SIGINT.format(timeout=timeout), timeout=60)
    assert child.returncode == 0, child.stderr[-3000:]
    lines = child.stdout.splitlines()
    assert lines[0].startswith("interrupted after "), child.stdout + child.stderr[-2000:]
    assert float(lines[0].split()[-1]) < 1.0
    assert lines[1] == "alive 1000"


TIMEOUT_WITH_BUSY_THREADS = """
import threading, time
import wasm_import
from wasm_import import LimitExceeded, Limits
from tests._build import build_wat_guest

module = wasm_import.load(build_wat_guest("hostile"))
stop = threading.Event()

def busy():
    n = 0
    while not stop.is_set():
        n += 1

threads = [threading.Thread(target=busy, daemon=True) for _ in range(3)]
for t in threads:
    t.start()
time.sleep(0.1)
for _ in range(5):
    inst = module.instantiate(limits=Limits(timeout=1.0))
    start = time.monotonic()
    try:
        inst.api.spin()
    except LimitExceeded as e:
        print("limit", e.limit, time.monotonic() - start)
    else:
        print("spin returned")
stop.set()
for t in threads:
    t.join()
"""


def test_one_second_timeout_fires_within_1_05_s_with_three_busy_threads() -> None:
    """Five timed calls while three Python threads spin: the median must be within
    1.05 s. The median, not every one: on the shared 2-core machines here the OS alone
    sometimes leaves a process unscheduled for tens of ms (without busy threads too), and
    after the guest stops the call still has to win the GIL back from three spinning
    threads; none may be early or later than 1.5 s."""
    child = run_child(TIMEOUT_WITH_BUSY_THREADS, timeout=60)
    assert child.returncode == 0, child.stderr[-3000:]
    lines = [line.split() for line in child.stdout.splitlines()]
    assert [line[:2] for line in lines] == [["limit", "timeout"]] * 5, child.stdout + child.stderr[-2000:]
    elapsed = sorted(float(line[2]) for line in lines)
    assert elapsed[0] >= 1.0 and elapsed[-1] <= 1.5, elapsed
    assert elapsed[2] <= 1.05, elapsed


# -- async exports ------------------------------------------------------------------------------------

def _run(result: Any) -> Any:
    """An async export returns a coroutine (the callback form runs on asyncio)."""
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def test_async_exports_run_or_trap_cleanly() -> None:
    module = load_core(build_wat_guest("asyncfn"))
    inst = module.instantiate()
    assert _run(inst.api.wait(41)) == 42
    with pytest.raises(Trap, match=r"api\.forget: the async task exited without calling task\.return"):
        _run(inst.api.forget(1))
    assert module.instantiate().api.ping(41) == 42


def test_an_async_trap_poisons_the_instance() -> None:
    """README: "a trap or exhausted limit fails the call and poisons the instance as for
    sync calls". A task that exits without task.return traps (the spec's trap_if), so
    the instance is spent, as wasmtime has it for every trap."""
    inst = load_core(build_wat_guest("asyncfn")).instantiate()
    with pytest.raises(Trap):
        _run(inst.api.forget(1))
    assert inst.poisoned
    with pytest.raises(InstancePoisonedError):
        inst.api.ping(1)


def test_an_async_trap_leaves_no_unretrieved_task_exception(caplog: pytest.LogCaptureFixture) -> None:
    """The trap reaches the caller; asyncio must not also log it as a task exception that
    nobody retrieved (that is noise on stderr for every trapping async call)."""
    inst = load_core(build_wat_guest("asyncfn")).instantiate()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(Trap):
            _run(inst.api.forget(1))
        gc.collect()
    assert [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()] == []


STACKFUL = """
(component
  (core module $m
    (func (export "work") (param i32))
    (func (export "ping") (param i32) (result i32) (local.get 0)))
  (core instance $i (instantiate $m))
  (func $work async (param "x" u32) (result u32) (canon lift (core func $i "work") async))
  (func $ping (param "x" u32) (result u32) (canon lift (core func $i "ping")))
  (instance $api (export "work" (func $work)) (export "ping" (func $ping)))
  (export "test:stackful/api" (instance $api)))
"""


def test_calling_a_stackful_async_export_raises_a_clear_exception() -> None:
    """A stackful lift (`async` without a callback; no toolchain ships them yet): the
    runtime names the function and the reason, and the rest of the component works."""
    module = load_core(wasmtime.wat2wasm(STACKFUL), "stackful")
    inst = module.instantiate()
    for _ in range(3):
        with pytest.raises(NotImplementedError,
                           match=r"^api\.work\(\) is lifted with the stackful async ABI \(no callback\), "
                                 r"which this runtime does not run"):
            _run(inst.api.work(5))
    assert not inst.poisoned
    assert inst.api.ping(5) == 5
