"""What WASI 0.3's filesystem and sockets share: a `stream<T>` the host fills, and the
`future<result<_, error-code>>` that tells the guest how it ended.

A `Pumped` stream is handed to the guest as a function's result; its filler starts once
the runtime has bound it to the guest's end (so every write reaches the guest, in
order) and runs as a job of the instance's async runtime. The filler sees the guest
dropping its end (`gone`), so a file is not read to its end, nor a socket drained, for
nobody: 0.2's input streams stop the same way when the guest drops them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Tuple

from .._async import Stream

__all__ = ["Pumped", "settle", "outcome_future", "in_thread"]


class Pumped(Stream):
    """A host-written stream filled by `await fill(self)` once the guest holds its end;
    closed (the guest sees the end of the stream) when `fill` returns or fails."""

    def __init__(self, fill: Callable[["Pumped"], Awaitable[None]]) -> None:
        super().__init__()
        self._fill = fill

    def _bind(self, shared: Any) -> None:
        super()._bind(shared)
        shared.runtime.spawn(self._run())

    async def _run(self) -> None:
        try:
            await self._fill(self)
        finally:
            self.close()

    @property
    def gone(self) -> bool:
        """Has the guest dropped its end (nothing written from now on reaches anyone)?"""
        writer = self._writer
        return writer is not None and (writer.done or writer.shared.dropped)


def outcome_future() -> "asyncio.Future[Any]":
    """A future for the `future<result<...>>` handed to the guest beside a stream."""
    return asyncio.get_running_loop().create_future()


def settle(fut: "asyncio.Future[Any]", value: Any) -> None:
    """Resolve `fut` with `value` unless it already has one."""
    if not fut.done():
        fut.set_result(value)


def in_thread(fn: Callable[[], Any], name: str) -> "asyncio.Future[Any]":
    """`fn()` on a daemon thread; its outcome as a future of the running loop. (Not the
    default executor: `asyncio.run` waits for that one's threads at exit, and a thread
    blocked on a silent server or a FIFO would hold the process.)"""
    loop = asyncio.get_running_loop()
    fut: "asyncio.Future[Any]" = loop.create_future()

    def done(ok: bool, value: Any) -> None:
        if not fut.done():
            (fut.set_result if ok else fut.set_exception)(value)

    def run() -> None:
        try:
            outcome: Tuple[bool, Any] = (True, fn())
        except BaseException as e:  # noqa: BLE001  (handed to the awaiting task)
            outcome = (False, e)
        try:
            loop.call_soon_threadsafe(done, *outcome)
        except RuntimeError:  # the loop is gone: nobody waits any more
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut
