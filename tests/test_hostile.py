"""A guest that misbehaves (tests/guests/hostile) gets a clear Trap, loses only its own
instance, and never takes the host process down."""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path
from typing import Any

import pytest

import wasm_import
from wasm_import import InstancePoisonedError, Trap


@pytest.fixture(scope="module")
def hostile(hostile_wasm: Path) -> Any:
    return wasm_import.load(hostile_wasm)


@pytest.mark.parametrize("call, reason", [
    (lambda api: api.recurse(), "call stack exhausted"),
    (lambda api: api.out_of_bounds(), "out of bounds memory access (memory fault at wasm address 0x7ffffff0"),
    (lambda api: api.bad_string(), "invalid utf-8"),
    (lambda api: api.huge_list(), "list pointer/length out of bounds of memory"),
], ids=["endless recursion", "load out of bounds", "string that is not UTF-8", "list longer than memory"])
def test_misbehaviour_is_a_trap_of_that_instance_only(hostile: Any, call: Any, reason: str) -> None:
    victim, bystander = hostile.instantiate(), hostile.instantiate()
    with pytest.raises(Trap) as info:
        call(victim.api)
    assert reason in info.value.message
    assert victim.poisoned and not bystander.poisoned
    with pytest.raises(InstancePoisonedError):
        victim.api.count(1)
    assert bystander.api.count(7) == 7


def test_default_instance_recovers_after_each_trap(hostile_wasm: Path) -> None:
    module = wasm_import.load(hostile_wasm)
    for _ in range(3):
        with pytest.raises(Trap):
            module.api.recurse()
        assert module.api.count(2) == 2  # a fresh default instance each time


def _resident_bytes() -> int:
    """This process's resident memory (Linux: /proc/self/statm), or 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 0


def test_many_traps_leak_nothing_that_breaks_later_calls(hostile: Any) -> None:
    """A trapped instance is freed like any other: the Python object goes (no reference
    kept by the trap, its traceback or the module), and with it the store, so resident
    memory does not grow with the number of traps."""
    def trap_once() -> "weakref.ref[Any]":
        instance = hostile.instantiate()
        with pytest.raises(Trap):
            instance.api.out_of_bounds()
        return weakref.ref(instance)

    for _ in range(20):  # warm up: allocator pools, caches made on first use
        trap_once()
    gc.collect()
    before = _resident_bytes()
    refs = [trap_once() for _ in range(300)]
    gc.collect()
    grown = _resident_bytes() - before
    assert [r for r in refs if r() is not None] == []
    # measured: keeping the 300 instances alive grows it by about 13 MB
    assert grown < 8 * 1024 * 1024, f"resident memory grew by {grown} bytes over 300 traps"
    assert hostile.instantiate().api.grow(1) == 1
