"""Component-model async on the core runtime: call overhead and stream throughput.

    python bench/bench_async.py

Uses the repo's `asyncy` guest (componentize-py, built once, cached):

- async call overhead: `await api.slow_add(1, 2)` (an `async func` export: a task, the
  callback protocol, task.return) vs `api.add(1, 2)` (the same sum as a sync export);
- stream throughput: `api.blob(N, chunk)` returning `stream<u8>`, read by the host with
  `async for`, vs `api.echo_list(bytes(N))`, a sync `list<u8>` of the same size (which
  moves the bytes twice: in and out).

Both sides run a Python interpreter inside wasm, which dominates small calls; `blob` first
builds its chunk with a Python generator in the guest (about 0.25 s for 1 MiB), so the
1 MiB-chunk rows mostly measure that. Machines
here are noisy: compare within one run.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wasm_import  # noqa: E402
from tests._build import build_python_guest  # noqa: E402


async def _sleep_then(ms: int, x: int) -> int:
    await asyncio.sleep(ms / 1000)
    return x


async def main() -> None:
    mod = wasm_import.load(build_python_guest("asyncy"))
    api = mod.instantiate(imports={"test:asyncy/host": {"sleep_then": _sleep_then, "log": print}}).api
    n = 3000
    for _ in range(2):  # warm up, then measure
        t = time.perf_counter()
        for _ in range(n):
            api.add(1, 2)
        sync_us = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        for _ in range(n):
            await api.slow_add(1, 2)
        async_us = (time.perf_counter() - t) / n * 1e6
    print(f"sync export call   add(1, 2):         {sync_us:8.1f} us")
    print(f"async export call  await slow_add():  {async_us:8.1f} us  ({async_us / sync_us:.1f}x)")

    for size in (1 << 20, 100_000_000):
        for chunk in (1 << 16, 1 << 20):
            t = time.perf_counter()
            got = 0
            async for c in await api.blob(size, chunk):
                got += len(c)
            dt = time.perf_counter() - t
            assert got == size
            print(f"stream<u8> {size / 1e6:7.1f} MB, guest chunk {chunk >> 10:5d} KiB: "
                  f"{dt * 1e3:8.1f} ms  {size / dt / 1e6:7.0f} MB/s")
        data = bytes(size)
        t = time.perf_counter()
        out = api.echo_list(data)
        dt = time.perf_counter() - t
        assert len(out) == size
        print(f"list<u8>   {size / 1e6:7.1f} MB echo (in + out):        {dt * 1e3:8.1f} ms  "
              f"{size / dt / 1e6:7.0f} MB/s")

    t = time.perf_counter()
    await asyncio.gather(*(api.via_host(100, i) for i in range(100)))
    print(f"100 concurrent calls each awaiting a 100 ms host sleep: {(time.perf_counter() - t) * 1e3:.0f} ms "
          "(10000 ms in sequence)")


if __name__ == "__main__":
    asyncio.run(main())
