"""wasm_import.runtime._wasmtime: wasmtime's core API through ctypes, on tiny core modules
written as WAT (wasmtime-py is used here only to assemble the text)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, List

import pytest
import wasmtime

from wasm_import._errors import DecodeError, InstancePoisonedError, LimitExceeded, LinkError, Trap
from wasm_import._limits import Limits
from wasm_import.runtime._wasmtime import (
    CoreModule, ExportDesc, Extern, FuncType, GlobalType, ImportDesc, MemoryType, Store, TableType,
    engine_fingerprint,
)

PAGE = 65536
I32_I32 = FuncType(("i32",), ("i32",))

ADDER = """
(module
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "mix") (param i32 i64 f32 f64) (result f64 i64 i32 f32)
    local.get 3 local.get 1 local.get 0 local.get 2)
  (func (export "nothing"))
)"""

HOSTED = """
(module
  (import "host" "twice" (func $twice (param i32) (result i32)))
  (import "host" "reenter" (func $reenter (param i32) (result i32)))
  (func (export "call-twice") (param i32) (result i32) local.get 0 call $twice)
  (func (export "call-reenter") (param i32) (result i32) local.get 0 call $reenter)
  (func (export "plus-one") (param i32) (result i32) local.get 0 i32.const 1 i32.add)
)"""

TRAPS = """
(module
  (memory (export "memory") 1)
  (func $deep unreachable)
  (func $middle call $deep)
  (func (export "boom") call $middle)
  (func (export "oob") (result i32) i32.const 70000 i32.load)
  (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_u)
  (func $rec (export "recurse") (param i32) (result i32) local.get 0 i32.const 1 i32.add call $rec)
  (func (export "spin") (loop br 0))
  (func (export "count") (param i32) (result i32) (local i32)
    (loop local.get 1 i32.const 1 i32.add local.tee 1 local.get 0 i32.lt_u br_if 0)
    local.get 1)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "grow-or-trap") (param i32)
    local.get 0 memory.grow i32.const -1 i32.eq if unreachable end)
)"""


def module(wat: str) -> CoreModule:
    return CoreModule.compile(wasmtime.wat2wasm(wat))


@pytest.fixture(scope="module")
def adder() -> CoreModule:
    return module(ADDER)


@pytest.fixture(scope="module")
def traps() -> CoreModule:
    return module(TRAPS)


# -- modules ----------------------------------------------------------------------------------------

def test_module_descriptors() -> None:
    m = module("""(module
      (import "env" "f" (func (param i32 i64) (result f32)))
      (import "env" "mem" (memory 1 4))
      (import "env" "tab" (table 2 funcref))
      (import "env" "g" (global (mut i64)))
      (func (export "run") (result f64) f64.const 1)
      (memory (export "m") 2)
      (global (export "c") f32 (f32.const 1)))""")
    assert m.imports == (
        ImportDesc("env", "f", "func", FuncType(("i32", "i64"), ("f32",))),
        ImportDesc("env", "mem", "memory", MemoryType(1, 4, False, False)),
        ImportDesc("env", "tab", "table", TableType("funcref", 2, None)),
        ImportDesc("env", "g", "global", GlobalType("i64", True)),
    )
    assert m.exports == (
        ExportDesc("run", "func", FuncType((), ("f64",))),
        ExportDesc("m", "memory", MemoryType(2, None, False, False)),
        ExportDesc("c", "global", GlobalType("f32", False)),
    )


def test_invalid_module_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"^here: wasmtime could not compile the core module"):
        CoreModule.compile(b"\0asm\x01\0\0\0\x05", where="here")


def test_serialize_and_deserialize(adder: CoreModule, tmp_path: Any) -> None:
    data = adder.serialize()
    again = CoreModule.deserialize(data)
    assert again.exports == adder.exports
    store = Store()
    assert store.caller(store.instantiate(again, []).exports["add"])(40, 2) == (42,)
    path = tmp_path / "adder.cwasm"
    path.write_bytes(data)
    mapped = CoreModule.deserialize_file(str(path))
    assert store.caller(store.instantiate(mapped, []).exports["add"])(1, 2) == (3,)
    assert engine_fingerprint().startswith("wasmtime-49.0.0;core;")


# -- calls ------------------------------------------------------------------------------------------

def test_calls_with_every_scalar_type(adder: CoreModule) -> None:
    store = Store()
    exports = store.instantiate(adder, []).exports
    add = store.caller(exports["add"])
    assert add(2, 3) == (5,)
    assert add(0xFFFFFFFF, 2) == (1,)  # i32 wraps, and comes back unsigned
    assert add(0x80000000, 0) == (0x80000000,)
    mix = store.caller(exports["mix"])
    assert mix(7, 2**64 - 1, 1.5, 2.25) == (2.25, 2**64 - 1, 7, 1.5)
    assert store.caller(exports["nothing"])() == ()


def test_bad_arguments_are_type_errors(adder: CoreModule) -> None:
    store = Store()
    add = store.caller(store.instantiate(adder, []).exports["add"])
    with pytest.raises(TypeError, match="expected 2 arguments, got 1"):
        add(1)
    with pytest.raises(TypeError, match="bad arguments"):
        add(-1, 2)
    with pytest.raises(TypeError, match="bad arguments"):
        add("1", 2)
    assert add(1, 2) == (3,) and store.poisoned is None


def test_two_stores_are_independent(adder: CoreModule) -> None:
    a, b = Store(), Store()
    fa = a.instantiate(adder, []).exports["add"]
    with pytest.raises(ValueError, match="another store"):
        b.caller(fa)
    with pytest.raises(LinkError, match="belongs to another store"):
        b.instantiate(module(HOSTED), [fa, fa])


# -- host functions ---------------------------------------------------------------------------------

def test_host_functions_and_reentry() -> None:
    store = Store()
    calls: List[int] = []
    inner: List[Any] = []

    def twice(x: int) -> int:
        calls.append(x)
        return 2 * x

    def reenter(x: int) -> tuple:
        # a host function calling back into the same store, which calls a host function
        return (inner[0](x)[0] + 1,)

    exports = store.instantiate(module(HOSTED), [store.host_func(I32_I32, twice),
                                                 store.host_func(I32_I32, reenter)]).exports
    inner.append(store.caller(exports["call-twice"]))
    assert store.caller(exports["call-twice"])(21) == (42,)
    assert store.caller(exports["call-reenter"])(5) == (11,)
    assert calls == [21, 5]


def test_host_results_of_every_arity() -> None:
    m = module("""(module
      (import "h" "none" (func $none (param i64 f64)))
      (import "h" "many" (func $many (result i32 i64 f32 f64)))
      (func (export "run") (result i32 i64 f32 f64)
        i64.const -1 f64.const 0.5 call $none call $many))""")
    store = Store()
    seen: List[Any] = []
    none = store.host_func(FuncType(("i64", "f64"), ()), lambda a, b: seen.append((a, b)))
    many = store.host_func(FuncType((), ("i32", "i64", "f32", "f64")), lambda: [1, 2**63, 0.25, -1.5])
    assert store.caller(store.instantiate(m, [none, many]).exports["run"])() == (1, 2**63, 0.25, -1.5)
    assert seen == [(2**64 - 1, 0.5)]


def test_host_exception_is_reraised_unchanged() -> None:
    store = Store()
    error = ValueError("from the host")

    def twice(x: int) -> int:
        raise error

    exports = store.instantiate(module(HOSTED), [store.host_func(I32_I32, twice),
                                                 store.host_func(I32_I32, lambda x: x)]).exports
    with pytest.raises(ValueError) as info:
        store.caller(exports["call-twice"])(1)
    assert info.value is error
    assert store.poisoned == "a host function raised ValueError"
    with pytest.raises(InstancePoisonedError, match="a host function raised ValueError"):
        store.caller(exports["plus-one"])(1)


def test_host_exception_travels_through_nested_calls() -> None:
    store = Store()
    error = KeyError("deep")
    seen: List[BaseException] = []
    inner: List[Any] = []

    def twice(x: int) -> int:
        raise error

    def reenter(x: int) -> int:
        try:
            return inner[0](x)[0]
        except BaseException as e:
            seen.append(e)
            raise

    exports = store.instantiate(module(HOSTED), [store.host_func(I32_I32, twice),
                                                 store.host_func(I32_I32, reenter)]).exports
    inner.append(store.caller(exports["call-twice"]))
    with pytest.raises(KeyError) as info:
        store.caller(exports["call-reenter"])(3)
    assert info.value is error and seen == [error]


def test_host_function_returning_the_wrong_shape() -> None:
    store = Store()
    exports = store.instantiate(module(HOSTED), [store.host_func(I32_I32, lambda x: "no"),
                                                 store.host_func(I32_I32, lambda x: (1, 2))]).exports
    with pytest.raises(TypeError, match=r"returned 'no': expected 1 flat value\(s\) of types i32"):
        store.caller(exports["call-twice"])(1)
    store = Store()
    exports = store.instantiate(module(HOSTED), [store.host_func(I32_I32, lambda x: x),
                                                 store.host_func(I32_I32, lambda x: (1, 2))]).exports
    with pytest.raises(TypeError, match=r"returned \(1, 2\)"):
        store.caller(exports["call-reenter"])(1)


def test_host_exception_in_start_function() -> None:
    m = module("""(module (import "h" "f" (func $f (param i32) (result i32)))
      (func $start i32.const 1 call $f drop) (start $start))""")
    store = Store()
    with pytest.raises(ZeroDivisionError):
        store.instantiate(m, [store.host_func(I32_I32, lambda x: 1 // 0)])


def test_link_errors() -> None:
    store = Store()
    m = module(HOSTED)
    with pytest.raises(LinkError, match="needs 2 imports, got 0"):
        store.instantiate(m, [])
    wrong = store.host_func(FuncType(("i64",), ("i32",)), lambda x: x)
    with pytest.raises(LinkError, match=r"import 0 \('host' 'twice'\): expected a function of type "
                                        r"\[i32\] -> \[i32\], got \[i64\] -> \[i32\]"):
        store.instantiate(m, [wrong, wrong])
    with pytest.raises(LinkError, match="expected an Extern, got int"):
        store.instantiate(m, [1, 2])  # type: ignore[list-item]


def test_imports_between_instances() -> None:
    provider = module("""(module (memory (export "mem") 1) (global (export "g") (mut i32) (i32.const 5))
      (table (export "t") 1 funcref) (func (export "f") (result i32) i32.const 9))""")
    user = module("""(module (import "p" "mem" (memory 1)) (import "p" "g" (global $g (mut i32)))
      (import "p" "t" (table 1 funcref)) (import "p" "f" (func $f (result i32)))
      (func (export "run") (result i32)
        i32.const 8 i32.const 77 i32.store
        global.get $g call $f i32.add global.set $g global.get $g))""")
    store = Store()
    p = store.instantiate(provider, []).exports
    u = store.instantiate(user, [p["mem"], p["g"], p["t"], p["f"]]).exports
    assert isinstance(p["t"], Extern) and p["t"].kind == "table"
    assert store.caller(u["run"])() == (14,)
    assert store.global_get(p["g"]) == 14
    store.global_set(p["g"], 2**32 - 1)
    assert store.global_get(p["g"]) == 2**32 - 1
    assert store.memory(p["mem"]).view()[8] == 77


# -- memory -----------------------------------------------------------------------------------------

def test_memory_view_is_exactly_the_memory(traps: CoreModule) -> None:
    store = Store()
    exports = store.instantiate(traps, []).exports
    memory = store.memory(exports["memory"])
    view = memory.view()
    assert view.format == "B" and len(view) == PAGE == memory.size() and not view.readonly
    view[PAGE - 4:PAGE] = b"\x01\x02\x03\x04"
    with pytest.raises(IndexError):
        view[PAGE]
    with pytest.raises(ValueError):
        view[PAGE - 2:PAGE + 2] = b"abcd"
    assert store.caller(exports["grow"])(2) == (1,)
    assert memory.size() == 3 * PAGE and len(memory.view()) == 3 * PAGE
    assert bytes(memory.view()[PAGE - 4:PAGE]) == b"\x01\x02\x03\x04"
    with memory.view() as released:
        released[0] = 9
    assert memory.view()[0] == 9  # releasing one view leaves later ones usable
    del store, exports
    assert view[PAGE - 1] == 4  # a view keeps its store alive


# -- traps ------------------------------------------------------------------------------------------

def test_trap_has_reason_and_backtrace(traps: CoreModule) -> None:
    store = Store()
    exports = store.instantiate(traps, []).exports
    with pytest.raises(Trap) as info:
        store.caller(exports["boom"])()
    trap = info.value
    assert type(trap) is Trap
    assert trap.message == "wasm trap: wasm `unreachable` instruction executed"
    lines = trap.trace.splitlines()
    assert lines[0] == "wasm backtrace:" and len(lines) == 4
    assert lines[1].endswith("<unknown>!deep") and lines[2].endswith("<unknown>!middle")
    assert store.poisoned == trap.message
    with pytest.raises(InstancePoisonedError, match="unreachable"):
        store.caller(exports["div"])(1, 1)


@pytest.mark.parametrize("name, args, message", [
    ("oob", (), "wasm trap: out of bounds memory access "
                "(memory fault at wasm address 0x11170 in linear memory of size 0x10000)"),
    ("div", (1, 0), "wasm trap: integer divide by zero"),
    ("recurse", (0,), "wasm trap: call stack exhausted"),
])
def test_trap_reasons(traps: CoreModule, name: str, args: tuple, message: str) -> None:
    store = Store()
    with pytest.raises(Trap) as info:
        store.caller(store.instantiate(traps, []).exports[name])(*args)
    assert info.value.message == message and "wasm backtrace:" in info.value.trace


def test_trap_in_start_function() -> None:
    m = module("(module (func $s unreachable) (start $s))")
    store = Store()
    with pytest.raises(Trap, match="unreachable"):
        store.instantiate(m, [])
    assert store.poisoned is not None
    with pytest.raises(InstancePoisonedError):
        store.instantiate(module(ADDER), [])


# -- limits -----------------------------------------------------------------------------------------

def test_fuel_is_per_call(traps: CoreModule) -> None:
    store = Store(Limits(fuel=10_000))
    exports = store.instantiate(traps, []).exports
    count = store.caller(exports["count"])
    for _ in range(3):  # each call gets the whole budget again
        assert count(1000) == (1000,)
    with pytest.raises(LimitExceeded) as info:
        count(1_000_000)
    assert info.value.limit == "fuel" and isinstance(info.value, Trap)
    assert str(info.value).startswith("the call used up its fuel of 10000 units (wasm trap: all fuel consumed")
    assert "wasm backtrace:" in info.value.trace
    with pytest.raises(InstancePoisonedError):
        count(1)


def test_unlimited_store_has_fuel_enough(traps: CoreModule) -> None:
    store = Store()
    assert store.caller(store.instantiate(traps, []).exports["count"])(5_000_000) == (5_000_000,)


def test_timeout_stops_an_endless_loop(traps: CoreModule) -> None:
    store = Store(Limits(timeout=0.1))
    exports = store.instantiate(traps, []).exports
    count, spin = store.caller(exports["count"]), store.caller(exports["spin"])
    start = time.monotonic()
    while time.monotonic() - start < 0.3:  # calls that together run far past one timeout
        assert count(10_000) == (10_000,)
    start = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        spin()
    elapsed = time.monotonic() - start
    assert info.value.limit == "timeout" and 0.1 <= elapsed < 0.5
    assert info.value.message == "the call ran longer than its timeout of 0.1 s (wasm trap: interrupt)"
    assert "wasm backtrace:" in info.value.trace
    with pytest.raises(InstancePoisonedError):
        count(1)


# A 1 s timeout with three busy Python threads: tests/runtime/test_robust.py, through the
# whole stack and in a child process (median of three runs, as the machines here are shared).


def test_memory_cap(traps: CoreModule) -> None:
    store = Store(Limits(memory=3 * PAGE))
    exports = store.instantiate(traps, []).exports
    grow = store.caller(exports["grow"])
    assert grow(1) == (1,)
    assert grow(2) == (0xFFFFFFFF,)  # 4 pages would exceed 3: memory.grow fails in the guest
    assert grow(1) == (2,) and store.memory(exports["memory"]).size() == 3 * PAGE
    with pytest.raises(LimitExceeded) as info:
        store.caller(exports["grow-or-trap"])(1)  # the guest traps after a refused growth
    assert info.value.limit == "memory"
    assert info.value.message == ("the instance needs more memory than its limit of 196608 bytes "
                                  "(wasm trap: wasm `unreachable` instruction executed)")
    with pytest.raises(LimitExceeded, match="limit of 65535 bytes") as info:
        Store(Limits(memory=PAGE - 1)).instantiate(traps, [])
    assert info.value.limit == "memory"


def test_trap_far_below_the_memory_cap_is_a_plain_trap(traps: CoreModule) -> None:
    store = Store(Limits(memory=64 * PAGE))
    with pytest.raises(Trap) as info:
        store.caller(store.instantiate(traps, []).exports["boom"])()
    assert type(info.value) is Trap


# -- threads and Ctrl-C -----------------------------------------------------------------------------

def test_stores_run_in_parallel_threads(traps: CoreModule) -> None:
    """Two stores in two threads are in wasm at the same time (ctypes lets go of the GIL),
    and Python code runs meanwhile."""
    spans: List[tuple] = []

    def run() -> None:
        store = Store()
        count = store.caller(store.instantiate(traps, []).exports["count"])
        start = time.monotonic()
        assert count(100_000_000) == (100_000_000,)
        spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    ticks = 0
    while any(t.is_alive() for t in threads):
        ticks += 1
        time.sleep(0.001)
    assert len(spans) == 2
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end  # the two calls overlapped
    assert ticks > 10


SIGINT_SCRIPT = """
import os, signal, sys, threading, time, wasmtime
from wasm_import._limits import Limits
from wasm_import.runtime._wasmtime import CoreModule, Store
m = CoreModule.compile(wasmtime.wat2wasm('(module (func (export "spin") (loop br 0)))'))
limits = Limits(timeout=30.0) if sys.argv[1] == "timed" else Limits()
store = Store(limits)
spin = store.caller(store.instantiate(m, []).exports["spin"])
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
start = time.monotonic()
try:
    spin()
except KeyboardInterrupt:
    print("interrupted after %.3f" % (time.monotonic() - start - 0.3))
print("poisoned:", store.poisoned)
# the interpreter is healthy: a new store runs, and Ctrl-C outside wasm works as always
store = Store(limits)
spin = store.caller(store.instantiate(m, []).exports["spin"])
threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    time.sleep(5)
except KeyboardInterrupt:
    print("sleep interrupted")
"""


@pytest.mark.parametrize("mode", ["untimed", "timed"])
def test_sigint_stops_an_endless_loop(mode: str) -> None:
    out = subprocess.run([sys.executable, "-c", SIGINT_SCRIPT, mode], capture_output=True, text=True,
                         timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("interrupted after "), out.stdout
    assert float(lines[0].split()[-1]) < 1.0
    assert lines[1:] == ["poisoned: interrupted by KeyboardInterrupt", "sleep interrupted"]
