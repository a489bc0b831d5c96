"""`wasi:clocks` and `wasi:random` 0.3.

The clocks of 0.3: `monotonic-clock` (`now`, `get-resolution`, and the async `wait-for` /
`wait-until` that replace 0.2's pollables: here `async def`s sleeping on the event loop,
so a waiting guest task lets every other task of the process run) and `system-clock`
(0.2's `wall-clock`, its `instant` a record of seconds and nanoseconds). `wasi:random`
is 0.2's, with 0.3's names (`get-insecure-seed`); a request gives at most
`max-len` bytes and never more than 64 MiB at once (0.3 allows fewer than asked for).
"""

from __future__ import annotations

import asyncio
import os
import time
import types as _types
from typing import Any, Literal

from ._context import _MAX_RANDOM, WasiContext, register_interface

__all__ = ["Instant"]

P3 = "0.3"


def _ns(**members: Any) -> Any:
    return _types.SimpleNamespace(**members)


class Instant:
    """A `wasi:clocks/system-clock.instant` value (records are matched by their fields)."""

    __dataclass_fields__ = {"seconds": None, "nanoseconds": None}

    def __init__(self, seconds: int, nanoseconds: int) -> None:
        self.seconds = seconds
        self.nanoseconds = nanoseconds

    def __repr__(self) -> str:
        return f"Instant(seconds={self.seconds}, nanoseconds={self.nanoseconds})"


def _resolution_ns(clock: Literal["monotonic", "time"]) -> int:
    return int(time.get_clock_info(clock).resolution * 1e9) or 1


def _monotonic_clock(ctx: WasiContext, iface: Any) -> Any:
    async def wait_for(how_long: int) -> None:
        await asyncio.sleep(how_long / 1e9)

    async def wait_until(when: int) -> None:
        await asyncio.sleep(max(0, when - time.monotonic_ns()) / 1e9)

    resolution = _resolution_ns("monotonic")
    return _ns(now=time.monotonic_ns, get_resolution=lambda: resolution, wait_for=wait_for, wait_until=wait_until)


def _system_clock(ctx: WasiContext, iface: Any) -> Any:
    def now() -> Instant:
        ns = time.time_ns()
        return Instant(ns // 1_000_000_000, ns % 1_000_000_000)

    resolution = _resolution_ns("time")
    return _ns(now=now, get_resolution=lambda: resolution)


def _random(ctx: WasiContext, iface: Any) -> Any:
    return _ns(get_random_bytes=lambda max_len: os.urandom(min(max_len, _MAX_RANDOM)),
               get_random_u64=lambda: int.from_bytes(os.urandom(8), "little"))


def _insecure(ctx: WasiContext, iface: Any) -> Any:
    rng = ctx._insecure
    return _ns(get_insecure_random_bytes=lambda max_len: rng.randbytes(min(max_len, _MAX_RANDOM)),
               get_insecure_random_u64=lambda: rng.getrandbits(64))


register_interface("wasi:clocks/types", lambda ctx, iface: _ns(), P3)
register_interface("wasi:clocks/monotonic-clock", _monotonic_clock, P3)
register_interface("wasi:clocks/system-clock", _system_clock, P3)
register_interface("wasi:random/random", _random, P3)
register_interface("wasi:random/insecure", _insecure, P3)
register_interface("wasi:random/insecure-seed", lambda ctx, iface: _ns(get_insecure_seed=lambda: ctx._insecure_seed), P3)
