"""Core call cost: the new runtime's `Store.caller` vs wasmtime-py's `Func.__call__`,
measured in the same run, on a hand-written core module.

    python bench/bench_core.py

Cases: `add(i32, i32) -> i32`; a call that makes one host call (`twice` in Python);
a memory view (`Memory.view()`, taken afresh before every access by the ABI layer).
Machines here are shared and noisy: every number is the best of several rounds, and the
ratios mean more than the absolute times.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wasmtime  # noqa: E402

from wasm_import.runtime._wasmtime import CoreModule, FuncType, Store  # noqa: E402

WAT = """
(module
  (import "host" "twice" (func $twice (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "call-host") (param i32) (result i32) local.get 0 call $twice)
)"""


def per_call(fn: Callable[[], object], rounds: int = 7, n: int = 50_000) -> float:
    """Best-of-`rounds` mean time per call, in microseconds."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main() -> None:
    wasm = wasmtime.wat2wasm(WAT)

    store = Store()
    module = CoreModule.compile(wasm)
    host = store.host_func(FuncType(("i32",), ("i32",)), lambda x: x * 2)
    exports = store.instantiate(module, [host]).exports
    add = store.caller(exports["add"])
    call_host = store.caller(exports["call-host"])
    memory = store.memory(exports["memory"])
    assert add(2, 3) == (5,) and call_host(21) == (42,)

    engine = wasmtime.Engine()
    py_store = wasmtime.Store(engine)
    py_twice = wasmtime.Func(py_store, wasmtime.FuncType([wasmtime.ValType.i32()], [wasmtime.ValType.i32()]),
                             lambda x: x * 2)
    py_exports = wasmtime.Instance(py_store, wasmtime.Module(engine, wasm), [py_twice]).exports(py_store)
    py_add, py_call_host, py_memory = py_exports["add"], py_exports["call-host"], py_exports["memory"]
    assert py_add(py_store, 2, 3) == 5 and py_call_host(py_store, 21) == 42

    rows = [
        ("add(i32, i32) -> i32", per_call(lambda: add(2, 3)), per_call(lambda: py_add(py_store, 2, 3))),
        ("call making one host call", per_call(lambda: call_host(21)),
         per_call(lambda: py_call_host(py_store, 21))),
        ("memory view (64 KiB)", per_call(memory.view), per_call(lambda: py_memory.data_ptr(py_store))),
    ]
    print(f"{'case':<28}{'ours (us)':>12}{'wasmtime-py (us)':>19}{'ratio':>9}")
    for name, ours, theirs in rows:
        print(f"{name:<28}{ours:>12.2f}{theirs:>19.2f}{theirs / ours:>8.1f}x")
    print("(memory view: ours is a bounds-checked memoryview; wasmtime-py's row is only data_ptr)")


if __name__ == "__main__":
    main()
