"""Per-instance limits: how long a call may run, how much it may compute, how much
memory the instance may hold.

    inst = module.instantiate(limits=Limits(timeout=0.5, fuel=10_000_000, memory=64 << 20))

- `timeout`: seconds of wall-clock time per call into the guest (epoch interruption: a
  background thread ticks the engine's epoch every `TICK` seconds while a timed call
  runs, so the bound is accurate to about one tick). Time spent in host functions counts,
  but a host function is never interrupted: the guest traps when it next runs wasm.
- `fuel`: units of fuel per call; wasmtime charges about one per wasm instruction.
- `memory`: bytes each linear memory of the instance may grow to. Growing past it makes
  `memory.grow` return -1 in the guest, which most guests' allocators turn into a trap;
  an instance whose initial memory is already larger cannot be made.

A call that runs out of time or fuel raises `LimitExceeded` (a `Trap`), and, as after
any trap, that instance cannot be entered again. The engine always compiles in epoch
and fuel checks, so limits never need a recompile and cached code serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Limits", "NO_LIMITS", "TICK", "limit_message"]

TICK = 0.005  # seconds between epoch ticks while a timed call runs


@dataclass(frozen=True)
class Limits:
    """Limits for one instance; None means unlimited. See the module docstring."""

    timeout: Optional[float] = None
    fuel: Optional[int] = None
    memory: Optional[int] = None

    def __post_init__(self) -> None:
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
                raise TypeError(f"Limits.timeout must be seconds (a number), got {self.timeout!r}")
            if not self.timeout > 0:
                raise ValueError(f"Limits.timeout must be positive, got {self.timeout!r}")
        for name in ("fuel", "memory"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Limits.{name} must be an int, got {value!r}")
            if value < 0 or value >= 1 << 62:
                raise ValueError(f"Limits.{name} must be between 0 and 2**62, got {value}")

    @property
    def per_call(self) -> bool:
        """Whether every call must arm a limit (a timeout or fuel)."""
        return self.timeout is not None or self.fuel is not None


NO_LIMITS = Limits()


_LIMIT_MESSAGES = {
    "timeout": "the call ran longer than its timeout of {limits.timeout} s ({reason})",
    "fuel": "the call used up its fuel of {limits.fuel} units ({reason})",
    "memory": "the instance needs more memory than its limit of {limits.memory} bytes ({reason})",
}


def limit_message(limit: str, limits: Limits, reason: str) -> str:
    """The message of a LimitExceeded for `limit` ("timeout", "fuel", "memory")."""
    return _LIMIT_MESSAGES[limit].format(limits=limits, reason=reason)
