"""A guest that misbehaves (tests/guests/hostile) gets a clear Trap, loses only its own
instance, and never takes the host process down."""

from __future__ import annotations

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


def test_many_traps_leak_nothing_that_breaks_later_calls(hostile: Any) -> None:
    for _ in range(50):
        with pytest.raises(Trap):
            hostile.instantiate().api.out_of_bounds()
    assert hostile.instantiate().api.grow(1) == 1
