"""Component-model async on asyncio: tasks, waitables, subtasks, streams and futures.

Follows the spec's `Async.md` and `canonical-abi/definitions.py` (async parts), in the
*callback* form that componentize-py, wit-bindgen and Go emit (a stackful async lift is
refused). Our model of the spec's threads:

- Guest code runs only inside core calls, made on the asyncio loop's thread under the
  instance lock; so the spec's per-instance "exclusive" lock holds by construction.
- An async export call is a `Task`: the host lowers the arguments and calls the lifted
  core function, which returns a packed callback code. `EXIT` ends the task; `WAIT s`
  parks it (an asyncio await) until waitable set `s` has an event, which is delivered by
  calling the callback; `YIELD` lets the loop run once. The Python coroutine returns as
  soon as the guest calls `task.return`; the task may keep running after that (a guest
  filling a stream it returned), driven by a background asyncio task.
- Waitables (subtasks, stream and future ends) live in the instance's one handle table
  (shared with resources, as in the spec); waitable sets wake their waiting task when
  an event is set.
- Streams and futures are the spec's shared objects with a pending buffer on one side.
  A side is a guest end (a buffer in linear memory) or the host (Python values). Values
  cross with the element type's converter; `stream<u8>` moves `bytes` with one slice copy.
- An async-lowered host import whose Python implementation returns an awaitable becomes
  a subtask: its result is written to the guest's return pointer when the awaitable
  finishes, and the caller gets a SUBTASK event.

Every misuse by a guest is a `Trap` naming the built-in and the handle.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar

from ..wit import _model as w
from .._errors import Trap
from .._values import Err, Ok
from . import _layout as L

__all__ = ["AsyncRuntime", "HostStream", "HostFuture", "StreamReader", "FutureReader",
           "Stream", "Future", "stream_converter", "future_converter", "BLOCKED", "task_return_lifter", "on_loop"]

BLOCKED = 0xFFFF_FFFF
T = TypeVar("T")
# event codes
NONE, SUBTASK, STREAM_READ, STREAM_WRITE, FUTURE_READ, FUTURE_WRITE, TASK_CANCELLED = range(7)
# copy results
COMPLETED, DROPPED, CANCELLED = 0, 1, 2
# subtask states
STARTING, STARTED, RETURNED = 0, 1, 2
# callback codes
EXIT, YIELD, WAIT = 0, 1, 2
# copy-end states
IDLE, COPYING, CANCELLING, DONE = range(4)
# a task's cancellation (the spec's Task.State, as far as the caller's cancel goes)
NOT_CANCELLED, PENDING_CANCEL, CANCEL_DELIVERED = range(3)
# subtask states after a cancel
CANCELLED_BEFORE_STARTED, CANCELLED_BEFORE_RETURNED = 3, 4

_runtimes: "weakref.WeakKeyDictionary[Any, AsyncRuntime]" = weakref.WeakKeyDictionary()


def _runtime_of(inst_state: Any) -> "AsyncRuntime":
    found = _runtimes.get(inst_state)
    if found is None:
        raise Trap("streams and futures need an instance of the core runtime")
    return found


# -- waitables ----------------------------------------------------------------------------------

class Waitable:
    """Something a task can wait on: it has at most one pending event (a function giving
    the (code, index, payload) triple when delivered) and may be in one waitable set."""

    rt = None  # never a resource handle (resource built-ins see a type mismatch)

    def __init__(self) -> None:
        self.pending: Optional[Callable[[], Tuple[int, int, int]]] = None
        self.wset: Optional[WaitableSet] = None

    def set_pending_event(self, event: Callable[[], Tuple[int, int, int]]) -> None:
        self.pending = event
        if self.wset is not None:
            self.wset.notify()

    def get_pending_event(self) -> Tuple[int, int, int]:
        event, self.pending = self.pending, None
        assert event is not None
        return event()

    def join(self, wset: Optional["WaitableSet"]) -> None:
        if self.wset is not None:
            self.wset.elems.remove(self)
        self.wset = wset
        if wset is not None:
            wset.elems.append(self)
            if self.pending is not None:
                wset.notify()


class WaitableSet:
    rt = None

    def __init__(self) -> None:
        self.elems: List[Waitable] = []
        self.waiters: List["asyncio.Future[None]"] = []

    def has_pending_event(self) -> bool:
        return any(e.pending is not None for e in self.elems)

    def get_pending_event(self) -> Tuple[int, int, int]:
        for e in self.elems:
            if e.pending is not None:
                return e.get_pending_event()
        return (NONE, 0, 0)

    def notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    async def wait(self, task: "Task") -> None:
        """Until the set has an event, or the task's caller asks to cancel it."""
        while not self.has_pending_event() and task.cancel != PENDING_CANCEL:
            fut = asyncio.get_running_loop().create_future()
            self.waiters.append(fut)
            task.waiting = fut
            try:
                await fut
            finally:
                task.waiting = None
                if fut in self.waiters:  # woken by a cancel request, not by notify()
                    self.waiters.remove(fut)
            task.raise_failure()


class Subtask(Waitable):
    """A call the guest made with an async lower that did not finish at once."""

    def __init__(self) -> None:
        super().__init__()
        self.state = STARTED
        self.cancel_requested = False
        self.job: Optional["asyncio.Task[Any]"] = None
        self.end_scope: Callable[[], None] = lambda: None  # ends the borrows lent to the call
        self.awaitable: Any = None  # what the host function returned
        self.callee_task: Optional["Task"] = None  # the task of another subcomponent it calls

    def abandon(self) -> None:
        """Stop the host's work: cancel the job awaiting it, and close a coroutine that
        never started (or cancel a future), which that job cannot reach before it runs."""
        if self.job is not None:
            self.job.cancel()
        out = self.awaitable
        if inspect.iscoroutine(out) and inspect.getcoroutinestate(out) == inspect.CORO_CREATED:
            out.close()
        elif isinstance(out, asyncio.Future):
            out.cancel()

    def resolved(self) -> bool:
        return self.state in (RETURNED, CANCELLED_BEFORE_STARTED, CANCELLED_BEFORE_RETURNED)


# -- buffers: where values wait in a copy --------------------------------------------------------

class GuestBuffer:
    """`length` values at `ptr` in a guest's memory (the spec's BufferGuestImpl)."""

    def __init__(self, cx: Any, ptr: int, length: int, elem: Optional[w.Type], what: str) -> None:
        if length > (1 << 28) - 1:
            raise Trap(f"{what}: length {length} is too large")
        self.cx, self.ptr, self.length, self.progress = cx, ptr, length, 0
        self.size = L.size(elem) if elem is not None else 0
        if elem is not None and length > 0:
            cx.refresh()
            cx.checked_range(ptr, length * self.size, L.alignment(elem), what)

    def remain(self) -> int:
        return self.length - self.progress

    def read(self, n: int, conv: Any) -> Any:
        cx, ptr, size = self.cx, self.ptr, self.size
        self.ptr += n * size
        self.progress += n
        if conv is None:
            return [None] * n
        view = cx.refresh()
        if conv == "bytes":
            return bytes(view[ptr:ptr + n])
        return [conv.load(cx, ptr + k * size) for k in range(n)]

    def write(self, values: Any, conv: Any) -> None:
        cx, ptr, size, n = self.cx, self.ptr, self.size, len(values)
        self.ptr += n * size
        self.progress += n
        if conv is None:
            return
        view = cx.refresh()
        if conv == "bytes":
            view[ptr:ptr + n] = values
            return
        for k, v in enumerate(values):
            conv.store(cx, v, ptr + k * size)
            if k + 1 < n:
                cx.refresh()


class HostSource:
    """Values the host writes (a list, or bytes for stream<u8>)."""

    def __init__(self, values: Any) -> None:
        self.values, self.length, self.progress = values, len(values), 0

    def remain(self) -> int:
        return self.length - self.progress

    def read(self, n: int, conv: Any) -> Any:
        start = self.progress
        self.progress += n
        return self.values[start:start + n]


class HostSink:
    """Room for up to `length` values the host reads."""

    def __init__(self, length: int, as_bytes: bool) -> None:
        self.length, self.progress = length, 0
        self.chunks: List[Any] = []
        self.as_bytes = as_bytes

    def remain(self) -> int:
        return self.length - self.progress

    def write(self, values: Any, conv: Any) -> None:
        self.progress += len(values)
        self.chunks.append(values)

    def take(self) -> Any:
        if self.as_bytes:
            return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        return [v for c in self.chunks for v in c]


# -- shared streams and futures (the spec's SharedStreamImpl / SharedFutureImpl) ----------------

class SharedStream:
    def __init__(self, elem: Optional[w.Type], conv: Any, runtime: "AsyncRuntime") -> None:
        self.elem = elem
        self.conv = conv  # element converter ("bytes" for u8, None for no payload)
        self.runtime = runtime
        self.dropped = False
        self.pending_buffer: Any = None
        self.pending_on_copy: Any = None
        self.pending_on_copy_done: Any = None

    def reset_pending(self) -> None:
        self.pending_buffer = self.pending_on_copy = self.pending_on_copy_done = None

    def set_pending(self, buffer: Any, on_copy: Any, on_copy_done: Any) -> None:
        self.pending_buffer, self.pending_on_copy, self.pending_on_copy_done = buffer, on_copy, on_copy_done

    def reset_and_notify_pending(self, result: int) -> None:
        done = self.pending_on_copy_done
        self.reset_pending()
        done(result)

    def cancel(self) -> None:
        if self.pending_buffer is not None:
            self.reset_and_notify_pending(CANCELLED)

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            if self.pending_buffer is not None:
                self.reset_and_notify_pending(DROPPED)

    def read(self, dst: Any, on_copy: Any, on_copy_done: Any) -> None:
        self._copy(dst, on_copy, on_copy_done, reading=True)

    def write(self, src: Any, on_copy: Any, on_copy_done: Any) -> None:
        self._copy(src, on_copy, on_copy_done, reading=False)

    def _copy(self, mine: Any, on_copy: Any, on_copy_done: Any, reading: bool) -> None:
        if self.dropped:
            on_copy_done(DROPPED)
        elif self.pending_buffer is None:
            self.set_pending(mine, on_copy, on_copy_done)
        else:
            other = self.pending_buffer
            if other.remain() > 0:
                if mine.remain() > 0:
                    n = min(mine.remain(), other.remain())
                    src, dst = (other, mine) if reading else (mine, other)
                    dst.write(src.read(n, self.conv), self.conv)
                    self.pending_on_copy(self.reset_pending)
                on_copy_done(COMPLETED)
            elif not reading and mine.length == 0 and other.length == 0:
                on_copy_done(COMPLETED)
            else:
                self.reset_and_notify_pending(COMPLETED)
                self.set_pending(mine, on_copy, on_copy_done)


class SharedFuture(SharedStream):
    """A future: one value; reads and writes complete as a pair."""

    def _copy(self, mine: Any, on_copy: Any, on_copy_done: Any, reading: bool) -> None:
        if self.dropped:
            if reading:
                raise Trap("future.read: the writable end was dropped without a value")
            on_copy_done(DROPPED)
        elif self.pending_buffer is None:
            self.set_pending(mine, on_copy, on_copy_done)
        else:
            src, dst = (self.pending_buffer, mine) if reading else (mine, self.pending_buffer)
            dst.write(src.read(1, self.conv), self.conv)
            self.reset_and_notify_pending(COMPLETED)
            on_copy_done(COMPLETED)


class CopyEnd(Waitable):
    """A guest's end of a stream or future, in its handle table."""

    def __init__(self, shared: SharedStream, readable: bool, future: bool) -> None:
        super().__init__()
        self.shared, self.readable, self.future = shared, readable, future
        self.state = IDLE

    @property
    def kind(self) -> str:
        return (("readable " if self.readable else "writable ") +
                ("future" if self.future else "stream"))


# -- the host's ends ----------------------------------------------------------------------------

class _HostEnd:
    """Host-side copy helper: run one copy on the shared object, await its completion."""

    def __init__(self, shared: SharedStream) -> None:
        self.shared = shared
        self.runtime = shared.runtime
        self.done = False

    async def _copy(self, buffer: Any, reading: bool) -> int:
        rt = self.runtime
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[int]" = loop.create_future()

        def on_copy(reclaim: Callable[[], None]) -> None:
            reclaim()
            if not fut.done():
                fut.set_result(COMPLETED)

        def on_copy_done(result: int) -> None:
            if not fut.done():
                fut.set_result(result)

        with rt.lock:
            rt.check_alive()
            (self.shared.read if reading else self.shared.write)(buffer, on_copy, on_copy_done)
        if not fut.done():
            rt.host_waiters.add(fut)
            try:
                return await fut
            except asyncio.CancelledError:
                with rt.lock:
                    if self.shared.pending_buffer is buffer:
                        self.shared.reset_pending()
                raise
            finally:
                rt.host_waiters.discard(fut)
        return fut.result()


class StreamReader(_HostEnd, Generic[T]):
    """The readable end of a `stream<T>` the host holds: `await read(n)` gives up to n
    values (`bytes` for stream<u8>, else a list), empty once the writer is gone;
    `async for` gives chunks of bytes for stream<u8> and single values otherwise.
    `close()` drops the end (the writer sees DROPPED)."""

    def __init__(self, shared: SharedStream) -> None:
        super().__init__(shared)
        self.as_bytes = shared.conv == "bytes"

    async def read(self, max_count: int = 1 << 20) -> Any:
        empty: Any = b"" if self.as_bytes else []
        if self.done:
            return empty
        if max_count <= 0:
            raise ValueError(f"read(): max_count must be positive, got {max_count}")
        while True:
            sink = HostSink(max_count, self.as_bytes)
            result = await self._copy(sink, reading=True)
            if result == DROPPED:
                self.done = True
            if sink.progress or self.done:
                return sink.take() if sink.progress else empty

    async def read_all(self) -> Any:
        chunks = [c async for c in self._chunks()]
        if self.as_bytes:
            return b"".join(chunks)
        return [v for c in chunks for v in c]

    async def _chunks(self) -> Any:
        while True:
            chunk = await self.read()
            if not chunk and self.done:
                return
            yield chunk

    def __aiter__(self) -> Any:
        if self.as_bytes:
            return self._chunks()
        return self._items()

    async def _items(self) -> Any:
        async for chunk in self._chunks():
            for v in chunk:
                yield v

    def close(self) -> None:
        if not self.done:
            self.done = True
            with self.runtime.lock:
                self.shared.drop()

    async def __aenter__(self) -> "StreamReader[T]":
        return self

    async def __aexit__(self, *_: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<StreamReader{' (done)' if self.done else ''}>"


class FutureReader(_HostEnd, Generic[T]):
    """The readable end of a `future<T>` the host holds: `await reader` gives the value."""

    def __await__(self) -> Any:
        return self.read().__await__()

    async def read(self) -> Any:
        if self.done:
            raise RuntimeError("this future was already read")
        sink = HostSink(1, False)
        result = await self._copy(sink, reading=True)
        self.done = True
        if result != COMPLETED or not sink.progress:
            raise RuntimeError("the future's writer went away without a value")
        value = sink.take()
        return value[0] if isinstance(value, list) else value[0]

    def close(self) -> None:
        if not self.done:
            self.done = True
            with self.runtime.lock:
                self.shared.drop()


class Stream(Generic[T]):
    """A stream the host writes and a guest reads: pass it where a `stream<T>` goes, then
    `await write(values)` (bytes for stream<u8>) and `close()`. `write` returns how many
    values the reader took (fewer only if it went away)."""

    def __init__(self) -> None:
        self._writer: Optional[_HostEnd] = None
        self._closed = False

    def _bind(self, shared: SharedStream) -> None:
        if self._writer is not None:
            raise TypeError("this Stream was already passed to a guest")
        self._writer = _HostEnd(shared)

    async def write(self, values: Any) -> int:
        writer = self._writer
        if writer is None:
            raise RuntimeError("pass the Stream to a guest function before writing to it")
        if self._closed:
            raise RuntimeError("write() on a closed Stream")
        if writer.shared.conv == "bytes":
            values = bytes(values)
        else:
            values = list(values)
        src = HostSource(values)
        while src.remain() and not writer.done:
            if await writer._copy(src, reading=False) == DROPPED:
                writer.done = True
        return src.progress

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._writer is not None:
                with self._writer.runtime.lock:
                    self._writer.shared.drop()

    async def __aenter__(self) -> "Stream[T]":
        return self

    async def __aexit__(self, *_: Any) -> None:
        self.close()


class Future(Stream[T]):
    """A future the host fills and a guest reads: pass it where a `future<T>` goes, then
    `await set(value)`."""

    async def set(self, value: Any) -> None:
        writer = self._writer
        if writer is None:
            raise RuntimeError("pass the Future to a guest function before setting it")
        await writer._copy(HostSource([value]), reading=False)
        writer.done = True


HostStream, HostFuture = StreamReader, FutureReader


# -- converters for stream<T> / future<T> (used by _abi's Codec) --------------------------------

def _elem_conv(elem: Optional[w.Type], converter: Callable[[w.Type], Any]) -> Any:
    if elem is None:
        return None
    if w.unalias(elem) is w.Primitive.U8:
        return "bytes"
    return converter(elem)


def _shape(elem: Optional[w.Type]) -> Tuple[str, Any]:
    """What must agree when a stream or future moves on: its element's WIT and layout."""
    if elem is None:
        return ("no payload", None)
    from ..types._pytypes import wit_type_name

    return (wit_type_name(elem), (L.flatten(elem), L.size(elem), w.unalias(elem) is w.Primitive.U8))


def _async_value(ty: w.TypeDef, converter: Callable[[w.Type], Any], future: bool) -> Any:
    from ._abi import Converter, _U32  # _abi builds these converters; imported late (a cycle)

    kind = ty.kind
    elem = kind.type  # type: ignore[union-attr]
    conv_holder: List[Any] = []

    def conv() -> Any:
        if not conv_holder:
            conv_holder.append(_elem_conv(elem, converter))
        return conv_holder[0]

    what = "future" if future else "stream"

    def to_host(cx: Any, handle: int) -> Any:
        table = cx.inst.handles
        end = table.get(handle)
        if not isinstance(end, CopyEnd) or end.future != future or not end.readable:
            raise Trap(f"handle index {handle} is not the readable end of a {what}")
        if end.state != IDLE:
            raise Trap(f"handle index {handle}: the {what} end is in the middle of a copy")
        if end.wset is not None:
            raise Trap(f"handle index {handle}: the {what} end is still in a waitable set")
        table.remove(handle)
        end.shared.conv = conv()
        return FutureReader(end.shared) if future else StreamReader(end.shared)

    def to_guest(cx: Any, value: Any) -> int:
        rt = _runtime_of(cx.inst)
        if isinstance(value, (StreamReader, FutureReader)):
            if isinstance(value, FutureReader) != future or value.done:
                raise TypeError(f"expected a {what}, got {value!r}")
            if _shape(value.shared.elem) != _shape(elem):
                raise TypeError(f"expected a {what} of {_shape(elem)[0]}, got one of {_shape(value.shared.elem)[0]}")
            shared = value.shared
            value.done = True
        else:
            shared = (SharedFuture if future else SharedStream)(elem, conv(), rt)
            if future:
                if not isinstance(value, Future):
                    value = rt.future_from(value, shared)
                else:
                    value._bind(shared)
            else:
                if not isinstance(value, Stream):
                    value = rt.stream_from(value, shared, what)
                else:
                    value._bind(shared)
        return cx.inst.handles.add(CopyEnd(shared, True, future))  # type: ignore[no-any-return]

    def store(cx: Any, v: Any, ptr: int) -> None:
        _U32.pack_into(cx.view, ptr, to_guest(cx, v))

    def load(cx: Any, ptr: int) -> Any:
        return to_host(cx, _U32.unpack_from(cx.view, ptr)[0])

    def lower(cx: Any, v: Any, out: List[Any]) -> None:
        out.append(to_guest(cx, v))

    def lift(cx: Any, flat: Any, i: int) -> Any:
        return to_host(cx, flat[i])

    return Converter(ty, store, load, lower, lift, allocates=False)


def stream_converter(ty: w.TypeDef, converter: Callable[[w.Type], Any]) -> Any:
    return _async_value(ty, converter, future=False)


def future_converter(ty: w.TypeDef, converter: Callable[[w.Type], Any]) -> Any:
    return _async_value(ty, converter, future=True)


# -- the caller's side of an async lower ----------------------------------------------------------

def _async_lower_side(func: w.Function, codec: Any, label: str) -> Tuple[Callable[..., List[Any]],
                                                                          Callable[[Any, Any, int], None]]:
    """For an `async` canon lower of `func`: `lift_args(cx, flat)`, the arguments out of the
    caller (flat, or in its memory past MAX_FLAT_ASYNC_PARAMS), and `store_result(cx, value,
    retptr)`, the result into the caller's memory at its return pointer."""
    from ._abi import _Signature

    sig = _Signature(func, codec, "lift")  # params: the lift side's converters
    flat_sig = L.flatten_async_functype(func, "lower")
    result_conv = codec.converter(func.result) if func.result is not None else None
    tuple_type = w.TypeDef(w.Tuple(tuple(p.type for p in func.params)))

    def lift_args(cx: Any, flat: Tuple[Any, ...]) -> List[Any]:
        if flat_sig.params_in_memory:
            ptr = flat[0]
            cx.refresh()
            cx.checked_range(ptr, L.size(tuple_type), L.alignment(tuple_type), "parameters in memory")
            return [conv.load(cx, ptr + off) for conv, off in zip(sig.params, sig.param_offsets)]
        if sig.uses_memory:
            cx.refresh()
        values, i = [], 0
        for conv, width in zip(sig.params, sig.param_widths):
            values.append(conv.lift(cx, flat, i))
            i += width
        return values

    def store_result(cx: Any, value: Any, retptr: int) -> None:
        if result_conv is None:
            return
        cx.refresh()
        cx.checked_range(retptr, result_conv.size, result_conv.align, "return pointer")
        try:
            result_conv.store(cx, value, retptr)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{label} returned a bad value for WIT type {result_conv.wit}: {e}") from None

    return lift_args, store_result


def task_return_lifter(func: w.Function, result_conv: Any) -> Callable[[Any, Tuple[Any, ...]], Any]:
    """`lift(options, flat)`: the value a task.return of `func` passes (flat, or in memory
    when it has more than MAX_FLAT_PARAMS flat values), with task.return's own options."""
    from ._abi import CallContext

    flat_count = len(L.flatten(func.result)) if func.result is not None else 0

    def lift(ropts: Any, flat: Tuple[Any, ...]) -> Any:
        if result_conv is None:
            return None
        cx = CallContext(ropts)
        if flat_count > L.MAX_FLAT_PARAMS:
            cx.refresh()
            cx.checked_range(flat[0], result_conv.size, result_conv.align, "task.return result")
            value = result_conv.load(cx, flat[0])
        else:
            if ropts.memory is not None:
                cx.refresh()
            value = result_conv.lift(cx, flat, 0)
        cx.finish()
        return value

    return lift


# -- tasks -----------------------------------------------------------------------------------------

class Task:
    """One call of an async-lifted export."""

    def __init__(self, runtime: "AsyncRuntime", label: str, on_return: Callable[[Any, Any], Any]) -> None:
        self.runtime = runtime
        self.label = label
        self.on_return = on_return  # (cx options, flat values) -> Python result
        self.result: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self.context = [0, 0]
        self.returned = False
        self.failure: Optional[BaseException] = None
        self.waiting: Optional["asyncio.Future[None]"] = None
        self.state: Any = None  # the InstanceState (handle table) of the component instance
        self.cancel = NOT_CANCELLED  # -> PENDING_CANCEL (the caller asked) -> CANCEL_DELIVERED
        self.cancelled = False  # the guest acknowledged with task.cancel: resolved without a value

    def request_cancel(self) -> None:
        """The caller gave up (its coroutine was cancelled): the guest gets TASK_CANCELLED
        the next time it waits or yields (at once if it waits now)."""
        if self.cancel == NOT_CANCELLED and not self.returned:
            self.cancel = PENDING_CANCEL
            if self.waiting is not None and not self.waiting.done():
                self.waiting.set_result(None)

    def take_cancel(self) -> bool:
        """Deliver a pending cancel request (the spec's deliver_pending_cancel)."""
        if self.cancel == PENDING_CANCEL:
            self.cancel = CANCEL_DELIVERED
            return True
        return False

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        if not self.result.done():
            self.result.set_exception(exc)
            self.result.exception()  # raised to the caller directly too: never "unretrieved"
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(None)

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


class AsyncRuntime:
    """The async state of one `Instance`: per component instance backpressure, the task
    whose guest code runs now, and the built-ins."""

    def __init__(self, instance: Any, deliver_cancel: bool = False) -> None:
        self.instance = instance
        self.lock = instance.lock
        self.deliver_cancel = deliver_cancel  # a cancelled call: TASK_CANCELLED to the guest, or detach
        self.current: Optional[Task] = None
        self.backpressure = [0] * len(instance.states)
        self.gates: List[List["asyncio.Future[None]"]] = [[] for _ in instance.states]
        self.host_waiters: "set[asyncio.Future[Any]]" = set()
        self.jobs: "set[asyncio.Task[Any]]" = set()
        for state in instance.states:
            _runtimes[state] = self

    def check_alive(self) -> None:
        poisoned = self.instance.store.poisoned
        if poisoned is not None:
            from .._errors import unusable

            raise unusable(poisoned)

    def failed(self, exc: BaseException) -> None:
        """The instance trapped: wake everything that waits on it with the error."""
        for fut in list(self.host_waiters):
            if not fut.done():
                fut.set_exception(exc)

    def abandon(self) -> None:
        """The instance was closed: its guest tasks will never run again. Cancel them (the
        awaiting callers get InstanceClosedError, see `export_caller`) and fail what the
        host awaits of them, each on its own event loop (close() may run on another thread)."""
        from .._errors import CLOSED, unusable

        for job in list(self.jobs):
            on_loop(job.get_loop(), job.cancel)
        for fut in list(self.host_waiters):
            def fail(fut: "asyncio.Future[Any]" = fut) -> None:
                if not fut.done():
                    fut.set_exception(unusable(CLOSED))
            on_loop(fut.get_loop(), fail)

    def spawn(self, coro: Any) -> "asyncio.Task[Any]":
        job = asyncio.get_running_loop().create_task(coro)
        self.jobs.add(job)
        job.add_done_callback(self.jobs.discard)
        job.add_done_callback(_retrieve)
        return job

    # -- calling an async export --------------------------------------------------------------

    def export_caller(self, label: str, arity: int, arity_msg: str, state_index: int,
                      lower_args: Callable[[Tuple[Any, ...]], List[Any]],
                      core_call: Callable[..., Any], callback_call: Callable[..., Any],
                      on_return: Callable[[Any, Any], Any]) -> Callable[..., Any]:
        """`call(*args)` returning a coroutine for an async-lifted (callback form) export."""
        runtime = self

        async def call(*args: Any) -> Any:
            if len(args) != arity:
                raise TypeError(arity_msg.format(len(args)))
            await runtime.enter(state_index)
            task = Task(runtime, label, on_return)
            task.state = runtime.instance.states[state_index]
            with runtime.lock:
                runtime.check_alive()
                flat = lower_args(args)
                packed = runtime.run(task, core_call, flat)
            if packed != EXIT or not task.result.done():
                job = runtime.spawn(runtime.drive(task, packed, callback_call))
                if not task.result.done():
                    try:
                        await asyncio.wait([task.result, job], return_when=asyncio.FIRST_COMPLETED)
                    except asyncio.CancelledError:
                        if not runtime.deliver_cancel:  # detached: the task runs on, unawaited
                            raise
                        # Our caller gave up: tell the guest (TASK_CANCELLED) and wait for its
                        # answer, task.cancel (then we are cancelled) or a value it raced to
                        # return (then the cancel is refused: the value is not lost). A
                        # second cancel stops waiting for the guest.
                        task.request_cancel()
                        await asyncio.wait([task.result, job], return_when=asyncio.FIRST_COMPLETED)
                        if task.result.cancelled() or not task.result.done():
                            raise
                    if not task.result.done():
                        if job.cancelled():
                            runtime.check_alive()  # the instance was closed: that, not a CancelledError
                        job.result()  # the driver failed: its exception
            return task.result.result()

        call.__wasm_async__ = True  # type: ignore[attr-defined]
        return call

    def run(self, task: Task, core: Callable[..., Any], flat: Any) -> int:
        """One core call of `task` (lock held): the packed callback code it returns."""
        previous, self.current = self.current, task
        try:
            out = core(*flat)
        except BaseException as e:
            task.fail(e)
            self.failed(e)
            raise
        finally:
            self.current = previous
        task.raise_failure()
        return out[0]  # type: ignore[no-any-return]

    async def drive(self, task: Task, packed: int, callback_call: Callable[..., Any]) -> None:
        """Run the callback loop of `task` until it exits. A guest that breaks the
        protocol traps: the task fails and the instance is poisoned, as by any trap."""
        try:
            await self._drive(task, packed, callback_call)
        except Trap as e:
            task.fail(e)
            self.poison(e)
            raise

    def poison(self, trap: Trap) -> None:
        """A trap outside any core call (found by the host between them): the instance
        is poisoned as by a trap inside one, and everything waiting on it is woken."""
        store = self.instance.store
        if store.poisoned is None:
            store.poisoned = trap.message
        self.failed(trap)

    async def _drive(self, task: Task, packed: int, callback_call: Callable[..., Any]) -> None:
        while True:
            code, si = packed & 0xF, packed >> 4
            if code == EXIT:
                if not task.returned and not task.cancelled:
                    e = Trap(f"{task.label}: the async task exited without calling task.return")
                    task.fail(e)
                    raise e
                return
            if code == YIELD:
                await asyncio.sleep(0)
                event = (TASK_CANCELLED, 0, 0) if task.take_cancel() else (NONE, 0, 0)
            elif code == WAIT:
                wset = self._wset(task, si)
                await wset.wait(task)
                event = (TASK_CANCELLED, 0, 0) if task.take_cancel() else wset.get_pending_event()
            else:
                e = Trap(f"{task.label}: the callback returned an unknown code {code} (packed {packed:#x})")
                task.fail(e)
                raise e
            with self.lock:
                self.check_alive()
                packed = self.run(task, callback_call, event)

    def _wset(self, task: Task, si: int) -> WaitableSet:
        found = task.state.handles.get(si)
        if not isinstance(found, WaitableSet):
            raise Trap(f"{task.label}: the callback asked to wait on handle {si}, which is not a waitable set")
        return found

    async def enter(self, index: int) -> None:
        """Backpressure: wait while the component instance refuses new tasks."""
        while self.backpressure[index] > 0:
            fut = asyncio.get_running_loop().create_future()
            self.gates[index].append(fut)
            await fut

    def _release(self, index: int) -> None:
        if self.backpressure[index] == 0:
            gates, self.gates[index] = self.gates[index], []
            for f in gates:
                if not f.done():
                    f.set_result(None)

    # -- values the host passes as streams or futures ------------------------------------------

    def stream_from(self, value: Any, shared: SharedStream, what: str) -> "Stream[Any]":
        """A Stream fed from bytes, an iterable or an async iterable, by a background job."""
        if not (hasattr(value, "__aiter__") or hasattr(value, "__iter__")) or isinstance(value, str):
            raise TypeError(f"expected a {what} (a wasm_import Stream, a StreamReader, bytes, an "
                            f"iterable or an async iterable), got {type(value).__name__}")
        stream: Stream[Any] = Stream()
        stream._bind(shared)
        as_bytes = shared.conv == "bytes"

        async def pump() -> None:
            try:
                if isinstance(value, (bytes, bytearray, memoryview)):
                    await stream.write(value)
                elif hasattr(value, "__aiter__"):
                    async for chunk in value:
                        await stream.write(chunk if as_bytes else [chunk])
                else:
                    if as_bytes:
                        for chunk in value:
                            await stream.write(chunk)
                    else:
                        await stream.write(list(value))
            finally:
                stream.close()

        self.spawn(pump())
        return stream

    def future_from(self, value: Any, shared: SharedStream) -> "Future[Any]":
        future: Future[Any] = Future()
        future._bind(shared)

        async def fill() -> None:
            result = await value if inspect.isawaitable(value) else value
            await future.set(result)

        self.spawn(fill())
        return future

    # -- async lowering of host imports ---------------------------------------------------------

    def async_host_callback(self, func: w.Function, target: Callable[..., Any], options: Any,
                            codec: Any, returns_result: bool, label: str) -> Callable[..., Any]:
        """The core callback of an `async` canon lower of a host function."""
        from ._abi import CallContext

        lift_args, store_result = _async_lower_side(func, codec, label)
        runtime = self

        def callback(*flat: Any) -> int:
            inst = options.inst
            if not inst.may_leave:
                raise Trap(f"{label} was called while the instance may not leave")
            cx = CallContext(options)
            args = lift_args(cx, flat)
            retptr = flat[-1] if func.result is not None else 0
            try:
                out = target(*args)
            except Err as e:
                if not returns_result:
                    raise
                out = e
            if not inspect.isawaitable(out):
                if returns_result and not isinstance(out, Err):
                    out = Ok(out)
                store_result(cx, out, retptr)
                cx.scope.end()
                return RETURNED
            task = runtime.current
            subtask = Subtask()
            index = inst.handles.add(subtask)

            async def finish() -> None:
                try:
                    value = await out
                    if returns_result:
                        value = Ok(value)
                except asyncio.CancelledError:
                    if subtask.cancel_requested:  # the guest cancelled it (subtask.cancel): resolved
                        return
                    if task is not None:
                        task.fail(Trap(f"{label}: the host's coroutine was cancelled"))
                    return
                except Err as e:
                    if not returns_result:
                        if task is not None:
                            task.fail(e)
                        return
                    value = e
                except BaseException as e:
                    if task is not None:
                        task.fail(e)
                    if not isinstance(e, Exception):
                        raise
                    return
                try:
                    with runtime.lock:
                        runtime.check_alive()
                        store_result(cx, value, retptr)
                        cx.scope.end()
                        subtask.state = RETURNED
                        subtask.set_pending_event(lambda: (SUBTASK, index, RETURNED))
                except BaseException as e:
                    if task is not None:
                        task.fail(e)

            subtask.job = runtime.spawn(finish())
            subtask.end_scope, subtask.awaitable = cx.scope.end, out
            return STARTED | (int(index) << 4)

        return callback

    # -- async lowering of another subcomponent's function (composed components) --------------

    def composed_callback(self, func: w.Function, label: str, caller_options: Any, caller_codec: Any,
                          callee_options: Any, callee_codec: Any, callee_index: int,
                          core_call: Callable[..., Any], callback_call: Optional[Callable[..., Any]],
                          post_return: Callable[[Any, Any], None]) -> Callable[..., Any]:
        """The core callback of an `async` canon lower of a function another subcomponent
        lifts. Arguments go from the caller's memory to Python values to the callee's memory
        (resources move by the codecs' policy). A sync callee runs to its end at once: the
        caller gets RETURNED. An async (callback-form) callee becomes a task of its own
        instance and a subtask of the caller: RETURNED if it returns during its first core
        call, else STARTED (or STARTING, held by the callee's backpressure) and a SUBTASK
        event later. Its task.return value is written at the caller's return pointer then,
        from the loop. `subtask.cancel` delivers TASK_CANCELLED to the callee task."""
        from ._abi import CallContext, _lift_result, _Signature, lower_values

        lift_args, store_result = _async_lower_side(func, caller_codec, label)
        callee_sig = _Signature(func, callee_codec, "lift")
        result_conv = callee_sig.result
        runtime = self

        def describe(k: int, e: Exception) -> Exception:
            return Trap(f"{label}: parameter {callee_sig.names[k]!r} could not be passed on: {e}")

        def lower_into_callee(cx: Any, args: List[Any]) -> List[Any]:
            if callee_sig.uses_memory:
                cx.refresh()
            return lower_values(cx, callee_sig, args, describe)

        on_return = task_return_lifter(func, result_conv)  # the callee's task.return

        def call_sync(args: List[Any]) -> Any:
            cx = CallContext(callee_options)
            try:
                flat = lower_into_callee(cx, args)
                results = core_call(*flat)
                value = _lift_result(cx, callee_sig, results)
                cx.scope.check_returned(f"the call to {label}")
                post_return(cx, results)
                return value
            finally:
                cx.finish()

        def callback(*flat: Any) -> int:
            caller_inst = caller_options.inst
            if not caller_inst.may_leave:
                raise Trap(f"{label} was called while the instance may not leave")
            cx = CallContext(caller_options)
            args = lift_args(cx, flat)
            retptr = flat[-1] if func.result is not None else 0
            if callback_call is None:  # a sync-lifted callee: done before we return
                try:
                    store_result(cx, call_sync(args), retptr)
                finally:
                    cx.scope.end()
                return RETURNED
            caller_task = runtime.current
            subtask = Subtask()

            def resolve(done: "asyncio.Future[Any]") -> None:
                """The callee returned, acknowledged a cancel, or failed (on the loop)."""
                if done.cancelled():
                    subtask.state = CANCELLED_BEFORE_RETURNED
                    cx.scope.end()
                elif done.exception() is not None:
                    if caller_task is not None:
                        caller_task.fail(done.exception())  # type: ignore[arg-type]
                    return
                else:
                    try:
                        with runtime.lock:
                            runtime.check_alive()
                            store_result(cx, done.result(), retptr)
                            cx.scope.end()
                    except BaseException as e:  # noqa: BLE001  the caller's task fails with it
                        if isinstance(e, Trap):  # a bad return pointer, say: as any trap, it poisons
                            runtime.poison(e)
                        if caller_task is not None:
                            caller_task.fail(e)
                        return
                    subtask.state = RETURNED
                subtask.set_pending_event(lambda: (SUBTASK, index, subtask.state))

            def start() -> Task:
                """Start the callee's task (lock held): its first core call, then its driver."""
                task = Task(runtime, label, on_return)
                task.state = runtime.instance.states[callee_index]
                packed = runtime.run(task, core_call, lower_into_callee(CallContext(callee_options), args))
                if packed != EXIT:
                    runtime.spawn(runtime.drive(task, packed, callback_call))
                elif not task.result.done():
                    raise Trap(f"{label}: the async task exited without calling task.return")
                subtask.callee_task = task
                return task

            if runtime.backpressure[callee_index] == 0:
                task = start()
                if task.result.done() and not task.result.cancelled() and task.result.exception() is None:
                    try:
                        store_result(cx, task.result.result(), retptr)
                    finally:
                        cx.scope.end()
                    return RETURNED
                index = caller_inst.handles.add(subtask)
                subtask.state = STARTED
                task.result.add_done_callback(resolve)
                return STARTED | (int(index) << 4)

            index = caller_inst.handles.add(subtask)
            subtask.state = STARTING

            async def start_later() -> None:
                await runtime.enter(callee_index)
                if subtask.cancel_requested:  # cancelled before it started
                    return
                with runtime.lock:
                    runtime.check_alive()
                    task = start()
                    subtask.state = STARTED
                    subtask.set_pending_event(lambda: (SUBTASK, index, STARTED))
                task.result.add_done_callback(resolve)

            subtask.job = runtime.spawn(start_later())
            return STARTING | (int(index) << 4)

        return callback

    # -- built-ins --------------------------------------------------------------------------------

    def builtin(self, b: Any, options: Callable[[Any], Any], codec: Callable[[Any], Any]) -> Callable[..., Any]:
        """The core callback of the canon built-in `b` (a plan BuiltinIntrinsic).
        `options(plan_options)` resolves canon options; `codec(call_options)` gives the
        converters for plan-level types."""
        state = self.instance.states[b.instance]
        table = state.handles
        op = b.op
        index = b.instance
        rt = self

        def cur(what: str) -> Task:
            task = rt.current
            if task is None:
                raise Trap(f"{what} was called outside an async task")
            return task

        def get(i: int, cls: Any, what: str) -> Any:
            found = table.get(i)
            if not isinstance(found, cls):
                raise Trap(f"{op}: handle index {i} is not {what}")
            return found

        def end(i: int, readable: bool, future: bool) -> CopyEnd:
            e = table.get(i)
            if not isinstance(e, CopyEnd) or e.readable != readable or e.future != future:
                raise Trap(f"{op}: handle index {i} is not the "
                           f"{'readable' if readable else 'writable'} end of a {'future' if future else 'stream'}")
            return e

        if op == "context.get":
            slot = b.index
            if slot > 1:
                raise Trap(f"context.get: slot {slot} does not exist")
            return lambda: cur("context.get").context[slot]
        if op == "context.set":
            slot = b.index

            def context_set(v: int) -> None:
                cur("context.set").context[slot] = v
            return context_set
        if op == "task.return":
            ropts = b.options

            def task_return(*flat: Any) -> None:
                task = cur("task.return")
                if task.returned or task.cancelled:
                    raise Trap(f"{task.label}: task.return was called after the task "
                               f"{'returned' if task.returned else 'was cancelled'}")
                task.returned = True
                value = task.on_return(options(ropts), flat)
                if not task.result.done():
                    task.result.set_result(value)
            return task_return
        if op == "task.cancel":
            def task_cancel() -> None:
                task = cur("task.cancel")
                if task.cancel != CANCEL_DELIVERED or task.returned or task.cancelled:
                    raise Trap(f"{task.label}: task.cancel was called but no cancellation was delivered "
                               f"to this task" + (" (it already resolved)" if task.returned or task.cancelled
                                                  else ""))
                task.cancelled = True
                if not task.result.done():
                    task.result.cancel()
            return task_cancel
        if op in ("backpressure.set", "backpressure.inc", "backpressure.dec"):
            def backpressure(*v: int) -> None:
                if op == "backpressure.set":
                    rt.backpressure[index] = 1 if v[0] else 0
                elif op == "backpressure.inc":
                    rt.backpressure[index] += 1
                    if rt.backpressure[index] >= 1 << 16:
                        raise Trap("backpressure.inc: counter overflow")
                else:
                    if rt.backpressure[index] == 0:
                        raise Trap("backpressure.dec: counter underflow")
                    rt.backpressure[index] -= 1
                rt._release(index)
            return backpressure
        if op == "waitable-set.new":
            return lambda: table.add(WaitableSet())
        if op in ("waitable-set.wait", "waitable-set.poll"):
            memory_ref = b.memory
            cell: List[Any] = []

            def wait_or_poll(si: int, ptr: int) -> int:
                wset = get(si, WaitableSet, "a waitable set")
                if not wset.has_pending_event():
                    if op == "waitable-set.wait":
                        raise Trap("waitable-set.wait would block the thread: this runtime runs "
                                   "async guests in the callback form only (return WAIT from the callback)")
                    event = (NONE, 0, 0)
                else:
                    event = wset.get_pending_event()
                if not cell:
                    cell.append(rt.instance.store.memory(rt.instance._extern(memory_ref)))
                view = cell[0].view()
                if ptr % 4 or ptr + 8 > len(view):
                    raise Trap(f"{op}: event pointer {ptr:#x} is out of bounds or misaligned")
                view[ptr:ptr + 8] = (event[1] & 0xFFFFFFFF).to_bytes(4, "little") + \
                    (event[2] & 0xFFFFFFFF).to_bytes(4, "little")
                return event[0]
            return wait_or_poll
        if op == "waitable-set.drop":
            def wset_drop(si: int) -> None:
                wset = get(si, WaitableSet, "a waitable set")
                if wset.elems:
                    raise Trap("waitable-set.drop: the set still has waitables in it")
                if wset.waiters:
                    raise Trap("waitable-set.drop: a task waits on the set")
                table.remove(si)
            return wset_drop
        if op == "waitable.join":
            def join(wi: int, si: int) -> None:
                wt = get(wi, Waitable, "a waitable")
                wt.join(None if si == 0 else get(si, WaitableSet, "a waitable set"))
            return join
        if op == "subtask.drop":
            def subtask_drop(i: int) -> None:
                s = get(i, Subtask, "a subtask")
                if not s.resolved():
                    raise Trap(f"subtask.drop: subtask {i} has not finished")
                if s.pending is not None:
                    raise Trap(f"subtask.drop: subtask {i} has an undelivered event")
                s.join(None)
                table.remove(i)
            return subtask_drop
        if op == "subtask.cancel":
            def subtask_cancel(i: int) -> int:
                """The guest gives up a call it made. A host call: its coroutine is cancelled
                and the subtask resolves at once (a value the host finishes later is dropped).
                A call not yet started (held by backpressure): it never starts. A call into
                another subcomponent: its task gets TASK_CANCELLED and decides; the caller
                learns how it ended from a SUBTASK event (BLOCKED now; a sync cancel that
                would wait traps). A subtask that returned but whose event the guest has not
                seen reports RETURNED."""
                s = get(i, Subtask, "a subtask")
                if s.cancel_requested:
                    raise Trap(f"subtask.cancel: subtask {i} was cancelled already")
                if s.resolved() and s.pending is None:
                    raise Trap(f"subtask.cancel: subtask {i} has resolved and its event was delivered")
                s.cancel_requested = True
                if not s.resolved():
                    if s.state == STARTING:
                        s.abandon()
                        s.state = CANCELLED_BEFORE_STARTED
                    elif s.callee_task is not None:
                        s.callee_task.request_cancel()
                        if b.flag:
                            return BLOCKED
                        raise Trap(f"subtask.cancel: cancelling subtask {i}, a call into another component, "
                                   "would block the thread until that component answers; use the async "
                                   "form of subtask.cancel")
                    else:
                        s.abandon()
                        s.state = CANCELLED_BEFORE_RETURNED
                        s.end_scope()
                s.pending = None  # the resolution is told here, not by an event
                return s.state
            return subtask_cancel
        if op == "thread.yield":
            return lambda: 0
        if op in ("stream.new", "future.new"):
            future = op == "future.new"
            elem = w.unalias(b.type).kind.type  # type: ignore[union-attr]
            conv_cell: List[Any] = []

            def new() -> int:
                if not state.may_leave:
                    raise Trap(f"{op} called while the instance may not leave")
                if not conv_cell:
                    conv_cell.append(_elem_conv(elem, codec(None).converter))
                shared = (SharedFuture if future else SharedStream)(elem, conv_cell[0], rt)
                ri = table.add(CopyEnd(shared, True, future))
                wi = table.add(CopyEnd(shared, False, future))
                return int(ri) | (int(wi) << 32)
            return new
        if op in ("stream.read", "stream.write", "future.read", "future.write"):
            future = op.startswith("future")
            reading = op.endswith("read")
            elem = w.unalias(b.type).kind.type  # type: ignore[union-attr]
            code = (FUTURE_READ if reading else FUTURE_WRITE) if future else (STREAM_READ if reading else STREAM_WRITE)
            popts = b.options
            cxs: List[Any] = []

            def copy(i: int, ptr: int, *n: int) -> int:
                from ._abi import CallContext

                e = end(i, reading, future)
                if e.state != IDLE:
                    raise Trap(f"{op}: handle index {i} already has a copy in progress"
                               if e.state != DONE else f"{op}: the {e.kind} is done")
                if not cxs:
                    cxs.append(options(popts))
                cx = CallContext(cxs[0])
                length = 1 if future else n[0]
                buffer = GuestBuffer(cx, ptr, length, elem, op)

                def event(result: int) -> Tuple[int, int, int]:
                    if future:
                        e.state = DONE if result in (DROPPED, COMPLETED) else IDLE
                        return (code, i, result)
                    e.state = DONE if result == DROPPED else IDLE
                    return (code, i, result | (buffer.progress << 4))

                def on_copy(reclaim: Callable[[], None]) -> None:
                    reclaim()
                    e.set_pending_event(lambda: event(COMPLETED))

                def on_copy_done(result: int) -> None:
                    e.set_pending_event(lambda: event(result))

                e.state = COPYING
                if reading:
                    e.shared.read(buffer, on_copy, on_copy_done)
                else:
                    e.shared.write(buffer, on_copy, on_copy_done)
                if e.pending is None:
                    return BLOCKED
                return e.get_pending_event()[2]
            return copy
        if op.endswith(("cancel-read", "cancel-write")):
            future = op.startswith("future")
            reading = op.endswith("read")

            def cancel(i: int) -> int:
                e = end(i, reading, future)
                if e.state != COPYING:
                    raise Trap(f"{op}: handle index {i} has no copy in progress")
                e.state = CANCELLING
                if e.pending is None:
                    e.shared.cancel()
                if e.pending is None:
                    return BLOCKED
                return e.get_pending_event()[2]
            return cancel
        if op.endswith(("drop-readable", "drop-writable")):
            future = op.startswith("future")
            readable = op.endswith("readable")

            def drop(i: int) -> None:
                e = end(i, readable, future)
                if e.state in (COPYING, CANCELLING):
                    raise Trap(f"{op}: handle index {i} has a copy in progress")
                if future and not readable and e.state != DONE:
                    raise Trap(f"{op}: the future was dropped before a value was written")
                table.remove(i)
                e.join(None)
                e.shared.drop()
            return drop

        def unsupported(*_: Any) -> Any:
            raise Trap(f"the canon built-in {op} is not supported by this runtime "
                       "(threads and error-context are not implemented)")
        return unsupported


def core_type_of(b: Any) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """The core signature of built-in `b` (used when no importer says it)."""
    op = b.op
    if op == "task.return":
        flat = L.flatten(b.type) if b.type is not None else ()
        return (("i32",) if len(flat) > L.MAX_FLAT_PARAMS else tuple(flat)), ()
    table: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
        "context.get": ((), ("i32",)), "context.set": (("i32",), ()),
        "waitable-set.new": ((), ("i32",)), "waitable-set.wait": (("i32", "i32"), ("i32",)),
        "waitable-set.poll": (("i32", "i32"), ("i32",)), "waitable-set.drop": (("i32",), ()),
        "waitable.join": (("i32", "i32"), ()), "subtask.drop": (("i32",), ()),
        "subtask.cancel": (("i32",), ("i32",)), "thread.yield": ((), ("i32",)),
        "stream.new": ((), ("i64",)), "future.new": ((), ("i64",)),
        "stream.read": (("i32", "i32", "i32"), ("i32",)), "stream.write": (("i32", "i32", "i32"), ("i32",)),
        "future.read": (("i32", "i32"), ("i32",)), "future.write": (("i32", "i32"), ("i32",)),
        "backpressure.set": (("i32",), ()), "backpressure.inc": ((), ()), "backpressure.dec": ((), ()),
        "task.cancel": ((), ()),
    }
    if op in table:
        return table[op]
    if op.endswith(("cancel-read", "cancel-write")):
        return ("i32",), ("i32",)
    if op.endswith(("drop-readable", "drop-writable")):
        return ("i32",), ()
    return (), ()


def _retrieve(job: "asyncio.Task[Any]") -> None:
    """Mark a background job's exception as seen: its failure already reached whoever
    awaits the task (and a trap poisoned the instance), and an exception asyncio logs as
    never retrieved from a garbage-collected task can break the interpreter's next compile
    (CPython raises SystemError from the AST constructor when logging runs inside it)."""
    if not job.cancelled():
        job.exception()


def on_loop(loop: "asyncio.AbstractEventLoop", fn: Callable[[], Any]) -> bool:
    """Run `fn` on `loop`: now if it is this thread's running loop, else soon, there.
    False when the loop is closed: it runs nothing any more, and `fn` was not run."""
    try:
        running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn()
        return True
    if loop.is_closed():
        return False
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:  # closed meanwhile
        return False
    return True
