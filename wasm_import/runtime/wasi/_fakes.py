"""Stand-ins for tests: a clock that never waits and random bytes from a seed.

WASI interfaces are ordinary imports, so replacing one is passing an object in `imports=`:

    clock = FakeClock()
    inst = module.instantiate(imports={"wasi:clocks/monotonic-clock": clock.monotonic,
                                       "wasi:clocks/wall-clock": clock.wall})
    rng = SeededRandom(42)
    inst = module.instantiate(imports={"wasi:random/random": rng, "wasi:random/insecure": rng,
                                       "wasi:random/insecure-seed": rng})
"""

from __future__ import annotations

import random
import types
from typing import Any, Tuple

from ._context import Datetime
from ._io import Pollable

__all__ = ["FakeClock", "SeededRandom"]


class _FakeTimer(Pollable):
    """Ready at once: waiting for it moves the fake clock forward to its instant."""

    def __init__(self, clock: "FakeClock", at: int) -> None:
        self._clock = clock
        self._at = at

    def ready(self) -> bool:
        self._clock.monotonic_ns = max(self._clock.monotonic_ns, self._at)
        return True


class FakeClock:
    """A clock whose time moves only when told (`advance`) or when the guest waits: a
    sleep returns at once, and the clock reads as if the time had passed.

    `monotonic` serves `wasi:clocks/monotonic-clock`, `wall` serves `wasi:clocks/wall-clock`
    (which moves with it, from `wall_start` seconds since the epoch)."""

    def __init__(self, start: float = 0.0, wall_start: float = 1_700_000_000.0) -> None:
        self.monotonic_ns = int(start * 1e9)
        self._wall_offset = int(wall_start * 1e9) - self.monotonic_ns
        self.monotonic = types.SimpleNamespace(
            now=lambda: self.monotonic_ns, resolution=lambda: 1,
            subscribe_instant=lambda when: _FakeTimer(self, when),
            subscribe_duration=lambda when: _FakeTimer(self, self.monotonic_ns + when))
        self.wall = types.SimpleNamespace(now=self._wall_now, resolution=lambda: Datetime(0, 1))

    def advance(self, seconds: float) -> None:
        self.monotonic_ns += int(seconds * 1e9)

    def _wall_now(self) -> Datetime:
        ns = self.monotonic_ns + self._wall_offset
        return Datetime(ns // 1_000_000_000, ns % 1_000_000_000)


class SeededRandom:
    """`wasi:random/random`, `insecure` and `insecure-seed` from one seed: the same bytes
    every run (never use it for anything secret)."""

    def __init__(self, seed: Any) -> None:
        self._rng = random.Random(seed)
        self._seed = (self._rng.getrandbits(64), self._rng.getrandbits(64))

    def get_random_bytes(self, len: int) -> bytes:  # noqa: A002 (the WIT parameter's name)
        return self._rng.randbytes(len)

    def get_random_u64(self) -> int:
        return self._rng.getrandbits(64)

    get_insecure_random_bytes = get_random_bytes
    get_insecure_random_u64 = get_random_u64

    def insecure_seed(self) -> Tuple[int, int]:
        return self._seed
