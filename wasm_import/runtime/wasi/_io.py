"""`wasi:io` (error, poll, streams) as Python classes other WASI interfaces build on.

WASI 0.2 does all its waiting through `pollable`s and all its byte traffic through
`input-stream` / `output-stream`; clocks, stdio, files, sockets and HTTP bodies are
subclasses of the classes here. The guest calls the WIT methods (`read`, `blocking-read`,
`check-write`, `subscribe`, ...) on the objects directly, so the WIT behaviour lives in
these base classes once, and a subclass only supplies a few primitives.

Extension API (for sockets, HTTP bodies, user-made fakes):

- `Pollable`: implement `ready() -> bool`. To be waited on without busy polling, also
  give one of: `deadline()` (a `time.monotonic()` instant when it is surely ready: timers),
  `fileno()` (+ `events`: wait with `selectors` until the fd is readable/writable) or
  `event()` (a `threading.Event` set when it becomes ready, e.g. by a worker thread).
  Without any of them, waiting polls `ready()` with a short back-off (1..10 ms).
  Ready-made: `ReadyPollable`, `DeadlinePollable`, `EventPollable`, `FdPollable`,
  `CallbackPollable`.
- `InputStream`: implement `read_available(n) -> bytes` (at most n bytes that can be had
  without blocking; `b""` when none yet), raising `StreamClosed` at the end and
  `StreamFailed` on an error; and `subscribe()` (a Pollable ready when `read_available`
  would return data or raise) unless data is always available at once (the default).
- `OutputStream`: implement `write_bytes(data)` (accept bytes; at most what
  `write_capacity()` allowed), optionally `write_capacity() -> int` (default 1 MiB),
  `flush_bytes()` (start a flush), `flushed() -> bool` and `subscribe()`; raise
  `StreamClosed` / `StreamFailed` as above.
- `IoError(message, code=None)`: the `wasi:io/error.error` resource; `code` is an
  `errno` number or a WASI error-code name (kebab-case) that `filesystem-error-code` or
  the sockets/HTTP equivalents report.

Waiting is real and interruptible: every blocking wait goes through `wait_any`, which
blocks in slices of at most `SLICE` seconds and between slices calls the interrupt check
of the calling thread (`set_interrupt_check`), so a runtime can stop a guest blocked in
`poll`, `blocking-read` or a sleep (a timeout raises its exception from the check; Ctrl-C
arrives as `KeyboardInterrupt` between slices on the main thread).

WIT values: a result's error must be an instance of the exact class the bindings made for
the interface's `stream-error` type, which depends on the interface version the guest
imported. Objects made by a `WasiContext` are bound to its classes (`bind_types`); an
unbound object uses the classes of the most recent context (right whenever the process
uses one `wasi:io` version, as every toolchain emits one).
"""

from __future__ import annotations

import builtins
import selectors
import threading
import time
from typing import Any, Callable, List, Optional, Sequence

from ..._values import Err

__all__ = [
    "SLICE", "set_interrupt_check", "check_interrupt", "wait_any",
    "Pollable", "ReadyPollable", "DeadlinePollable", "EventPollable", "FdPollable", "CallbackPollable",
    "StreamClosed", "StreamFailed", "IoError", "InputStream", "OutputStream",
    "BytesInputStream", "EmptyInputStream", "CallbackOutputStream", "FileInputStream", "FileOutputStream",
    "WitTypes", "bind_types", "types_of", "poll",
]

SLICE = 0.05  # longest uninterrupted wait, seconds

# -- interruption ---------------------------------------------------------------------------

_local = threading.local()


def set_interrupt_check(check: Optional[Callable[[], None]]) -> Optional[Callable[[], None]]:
    """Set the calling thread's interrupt check (None: none); return the previous one.

    Every blocking WASI wait calls it at least every `SLICE` seconds; to stop the guest it
    raises (e.g. `LimitExceeded`), and the exception leaves the host function and the
    export call. A runtime sets it around each call into the guest and restores the
    previous one afterwards (calls nest)."""
    previous = getattr(_local, "check", None)
    _local.check = check
    return previous


def check_interrupt() -> None:
    check = getattr(_local, "check", None)
    if check is not None:
        check()


# -- pollables ------------------------------------------------------------------------------

class Pollable:
    """`wasi:io/poll.pollable`. Subclasses implement `ready()` and, to be waited on
    efficiently, one of `deadline()`, `fileno()` (with `events`) or `event()`."""

    events = selectors.EVENT_READ  # what `fileno()` is waited for

    def ready(self) -> bool:
        raise NotImplementedError

    def deadline(self) -> Optional[float]:
        """A `time.monotonic()` instant by which it is surely ready, if known."""
        return None

    def fileno(self) -> Optional[int]:
        """A file descriptor whose readiness (`events`) makes this ready, if any."""
        return None

    def event(self) -> Optional[threading.Event]:
        """An Event that is set when this becomes ready, if any."""
        return None

    # WIT methods
    def block(self) -> None:
        wait_any([self])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pollable>"


class ReadyPollable(Pollable):
    """Always ready (files, bytes in memory, sinks that never push back)."""

    def ready(self) -> bool:
        return True


class DeadlinePollable(Pollable):
    """Ready from a `time.monotonic()` instant on (monotonic-clock subscriptions)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def ready(self) -> bool:
        return time.monotonic() >= self.at

    def deadline(self) -> Optional[float]:
        return self.at


class EventPollable(Pollable):
    """Ready once a `threading.Event` is set (by a worker thread, a callback, ...)."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def ready(self) -> bool:
        return self._event.is_set()

    def event(self) -> Optional[threading.Event]:
        return self._event


class FdPollable(Pollable):
    """Ready when a file descriptor is readable (or writable, with `write=True`)."""

    def __init__(self, fd: int, write: bool = False) -> None:
        self._fd = fd
        self.events = selectors.EVENT_WRITE if write else selectors.EVENT_READ

    def ready(self) -> bool:
        with selectors.DefaultSelector() as sel:
            sel.register(self._fd, self.events)
            return bool(sel.select(0))

    def fileno(self) -> Optional[int]:
        return self._fd


class CallbackPollable(Pollable):
    """Ready when `is_ready()` says so (waited on by polling it with a short back-off)."""

    def __init__(self, is_ready: Callable[[], bool]) -> None:
        self._is_ready = is_ready

    def ready(self) -> bool:
        return bool(self._is_ready())


def wait_any(pollables: Sequence[Any]) -> List[int]:
    """Block until at least one pollable is ready; return the indices of the ready ones.

    Waits in slices of at most `SLICE` seconds, calling the thread's interrupt check
    between them. Timers sleep until their deadline, fds are waited for with `selectors`,
    Events with `Event.wait`; anything else is polled with a back-off of 1..10 ms."""
    if not pollables:
        raise ValueError("poll: the list of pollables is empty")  # WASI says: trap
    backoff = 0.001
    while True:
        check_interrupt()
        ready = [i for i, p in enumerate(pollables) if p.ready()]
        if ready:
            return ready
        timeout = SLICE
        now = time.monotonic()
        fds: List[Any] = []
        events: List[threading.Event] = []
        others = False
        for p in pollables:
            at = p.deadline()
            if at is not None:
                timeout = min(timeout, max(at - now, 0.0))
                continue
            fd = p.fileno()
            if fd is not None:
                fds.append((fd, p.events))
                continue
            ev = p.event()
            if ev is not None:
                events.append(ev)
                continue
            others = True
        if others or (fds and events) or len(events) > 1:
            timeout = min(timeout, backoff)
            backoff = min(backoff * 2, 0.01)
        if fds:
            with selectors.DefaultSelector() as sel:
                for fd, mask in fds:
                    try:
                        sel.register(fd, mask)
                    except KeyError:  # the same fd twice: widen its mask
                        sel.modify(fd, sel.get_key(fd).events | mask)
                sel.select(timeout)
        elif len(events) == 1 and not others:
            events[0].wait(timeout)
        else:
            time.sleep(timeout)


def poll(pollables: Sequence[Any]) -> List[int]:
    """`wasi:io/poll.poll`: the indices (u32) of the ready pollables, blocking until one is."""
    return wait_any(pollables)


# -- WIT classes per interface version ------------------------------------------------------

class WitTypes:
    """The Python classes of one instance's imported WASI types, by version-less name
    (`"wasi:io/streams#stream-error"`): a value returned to the guest must be an instance
    of the class made for the very interface (version) it imported."""

    held: Any = None  # the instance's `_held.Held`: what its objects keep open (set by WasiContext)

    def __init__(self) -> None:
        self._classes: dict = {}

    def register(self, key: str, iface: Any) -> None:
        """Record the classes of interface `iface` (a `wit._model.Interface`) imported as `key`."""
        from ...wit import _model as w
        from ...types._pytypes import class_for, has_class, variant_classes

        base = key.split("@", 1)[0]
        for name, td in iface.types.items():
            target = w.unalias(td)
            if not isinstance(target, w.TypeDef) or not has_class(target):
                continue
            made = variant_classes(target) if isinstance(target.kind, w.Variant) else class_for(target)
            self._classes[f"{base}#{name}"] = made
        global _latest
        _latest = self

    def get(self, name: str) -> Any:
        """The class (or `VariantClasses`) of `name`; KeyError if the guest did not import it."""
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(f"the component imports no WASI type {name!r}") from None

    def case(self, name: str, case: str) -> type:
        """The class of case `case` of the variant `name`."""
        for wit_case, cls, _ in self.get(name).cases:
            if wit_case == case:
                return cls
        raise KeyError(f"variant {name!r} has no case {case!r}")

    def __contains__(self, name: str) -> bool:
        return name in self._classes


_latest: Optional[WitTypes] = None


def bind_types(obj: Any, types: Optional[WitTypes]) -> Any:
    """Bind `obj` (a stream, descriptor, ...) to an instance's WIT classes (None: the
    latest ones, as if unbound); returns it."""
    obj._wasi_types = types
    return obj


def types_of(obj: Any) -> WitTypes:
    types = getattr(obj, "_wasi_types", None) or _latest
    if types is None:
        raise RuntimeError("no WASI context has been made yet: WIT classes unknown")
    return types


# -- errors ---------------------------------------------------------------------------------

class IoError:
    """`wasi:io/error.error`: an error with a debug string and, optionally, a `code`
    (an errno number or a kebab-case WASI error-code name) for `filesystem-error-code`
    and its sockets/HTTP counterparts."""

    def __init__(self, message: str, code: Any = None) -> None:
        self.message = message
        self.code = code

    def to_debug_string(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"IoError({self.message!r})"


class StreamClosed(Exception):
    """Raised by a stream primitive: the stream has ended (input) or is closed (output)."""


class StreamFailed(Exception):
    """Raised by a stream primitive: the last operation failed. Carries an `IoError`."""

    def __init__(self, error: Any) -> None:
        self.error = error if isinstance(error, IoError) else IoError(str(error))
        super().__init__(self.error.message)

    @classmethod
    def from_os_error(cls, e: OSError) -> "StreamFailed":
        return cls(IoError(f"{e.strerror or e}", e.errno))


def _stream_err(obj: Any, e: Exception) -> Err:
    types = types_of(obj)
    if isinstance(e, StreamClosed):
        return Err(types.case("wasi:io/streams#stream-error", "closed")())
    error = e.error if isinstance(e, StreamFailed) else IoError(str(e))
    return Err(types.case("wasi:io/streams#stream-error", "last-operation-failed")(error))


_LIMIT = 1 << 20  # bytes one read or write handles at most


class InputStream:
    """`wasi:io/streams.input-stream`. Subclasses implement `read_available(n)` and,
    unless data is always at hand, `subscribe()`."""

    _ended = False

    def read_available(self, n: int) -> bytes:
        raise NotImplementedError

    def subscribe(self) -> Pollable:
        return ReadyPollable()

    # WIT methods
    def read(self, len: int) -> bytes:  # noqa: A002 (the WIT parameter's name)
        try:
            return self.read_available(min(len, _LIMIT)) if len else b""
        except (StreamClosed, StreamFailed) as e:
            raise _stream_err(self, e) from None

    def blocking_read(self, len: int) -> bytes:  # noqa: A002
        if not len:
            return b""
        n = min(len, _LIMIT)
        while True:
            try:
                data = self.read_available(n)
            except (StreamClosed, StreamFailed) as e:
                raise _stream_err(self, e) from None
            if data:
                return data
            wait_any([self.subscribe()])

    def skip(self, len: int) -> int:  # noqa: A002
        return builtins.len(self.read(len))

    def blocking_skip(self, len: int) -> int:  # noqa: A002
        return builtins.len(self.blocking_read(len))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} input-stream>"


class OutputStream:
    """`wasi:io/streams.output-stream`. Subclasses implement `write_bytes(data)` and
    optionally `write_capacity()`, `flush_bytes()`, `flushed()` and `subscribe()`."""

    def write_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def write_capacity(self) -> int:
        return _LIMIT

    def flush_bytes(self) -> None:
        pass

    def flushed(self) -> bool:
        return True

    def subscribe(self) -> Pollable:
        return CallbackPollable(self._writable)

    def _writable(self) -> bool:
        try:
            return self.flushed() and self.write_capacity() > 0
        except (StreamClosed, StreamFailed):
            return True  # the next operation reports it

    # WIT methods
    def check_write(self) -> int:
        try:
            return self.write_capacity() if self.flushed() else 0
        except (StreamClosed, StreamFailed) as e:
            raise _stream_err(self, e) from None

    def write(self, contents: bytes) -> None:
        try:
            if len(contents) > self.write_capacity():
                raise StreamFailed(IoError(f"write of {len(contents)} bytes exceeds what check-write permitted"))
            self.write_bytes(bytes(contents))
        except (StreamClosed, StreamFailed) as e:
            raise _stream_err(self, e) from None

    def blocking_write_and_flush(self, contents: bytes) -> None:
        if len(contents) > 4096:  # WASI limits this convenience to 4096 bytes
            raise _stream_err(self, StreamFailed(IoError("blocking-write-and-flush of more than 4096 bytes")))
        data = bytes(contents)
        while True:
            allowed = self.check_write()
            if allowed == 0:
                wait_any([self.subscribe()])
                continue
            self.write(data[:allowed])
            data = data[allowed:]
            if not data:
                break
        self.blocking_flush()

    def flush(self) -> None:
        try:
            self.flush_bytes()
        except (StreamClosed, StreamFailed) as e:
            raise _stream_err(self, e) from None

    def blocking_flush(self) -> None:
        self.flush()
        while True:
            try:
                if self.flushed():
                    return
            except (StreamClosed, StreamFailed) as e:
                raise _stream_err(self, e) from None
            wait_any([self.subscribe()])

    def write_zeroes(self, len: int) -> None:  # noqa: A002
        self.write(bytes(len))

    def blocking_write_zeroes_and_flush(self, len: int) -> None:  # noqa: A002
        self.blocking_write_and_flush(bytes(len))

    def splice(self, src: InputStream, len: int) -> int:  # noqa: A002
        n = min(len, self.check_write())
        data = src.read(n) if n else b""
        if data:
            self.write(data)
        return builtins.len(data)

    def blocking_splice(self, src: InputStream, len: int) -> int:  # noqa: A002
        while True:
            allowed = self.check_write()
            if allowed:
                break
            wait_any([self.subscribe()])
        data = src.blocking_read(min(len, allowed))
        self.write(data)
        self.blocking_flush()
        return builtins.len(data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} output-stream>"


# -- ready-made streams ---------------------------------------------------------------------

class EmptyInputStream(InputStream):
    """A stream that has ended (the default stdin: nothing to read)."""

    def read_available(self, n: int) -> bytes:
        raise StreamClosed


class BytesInputStream(InputStream):
    """Reads from bytes in memory, then ends."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(bytes(data))
        self._at = 0

    def read_available(self, n: int) -> bytes:
        if self._at >= len(self._data):
            raise StreamClosed
        chunk = self._data[self._at:self._at + n].tobytes()
        self._at += len(chunk)
        return chunk


class CallbackOutputStream(OutputStream):
    """Hands every write to `sink(bytes)` (capture into a bytearray, discard, a logger)."""

    def __init__(self, sink: Callable[[bytes], Any], flush: Optional[Callable[[], Any]] = None) -> None:
        self._sink = sink
        self._flush = flush

    def write_bytes(self, data: bytes) -> None:
        self._sink(data)

    def flush_bytes(self) -> None:
        if self._flush is not None:
            self._flush()


class FileInputStream(InputStream):
    """Reads a binary file object (or a raw fd through `os.read`) at its position.

    A pipe or terminal is read by a worker thread so that waiting for it is
    interruptible and `subscribe()` is honest; a regular file is read directly."""

    def __init__(self, file: Any, offset: Optional[int] = None) -> None:
        self._file = file
        self._offset = offset  # pread at this offset (files opened by descriptors), or None
        self._buffer = bytearray()
        self._eof = False
        self._error: Optional[OSError] = None
        self._lock = threading.Lock()
        self._more = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _fd(self) -> Optional[int]:
        try:
            return self._file if isinstance(self._file, int) else self._file.fileno()
        except (AttributeError, OSError, ValueError):
            return None

    def _regular(self) -> bool:
        import os
        import stat

        fd = self._fd()
        if fd is None:
            return not hasattr(self._file, "isatty") or not self._file.isatty()
        try:
            return stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            return False

    def read_available(self, n: int) -> bytes:
        import os

        if self._offset is not None or self._regular():
            try:
                if self._offset is not None:  # a descriptor's: EBADF once its instance is closed
                    fd = self._file if isinstance(self._file, int) else self._file.fileno()
                    data = os.pread(fd, n, self._offset)
                    self._offset += len(data)
                elif isinstance(self._file, int):
                    data = os.read(self._file, n)
                else:
                    data = self._file.read(n) or b""
            except OSError as e:
                raise StreamFailed.from_os_error(e) from None
            if not data:
                raise StreamClosed
            return bytes(data)
        self._start()
        with self._lock:
            if self._buffer:
                chunk = bytes(self._buffer[:n])
                del self._buffer[:n]
                if not self._buffer and not self._eof:
                    self._more.clear()
                return chunk
            if self._error is not None:
                raise StreamFailed.from_os_error(self._error)
            if self._eof:
                raise StreamClosed
            return b""

    def subscribe(self) -> Pollable:
        if self._offset is not None or self._regular():
            return ReadyPollable()
        self._start()
        return EventPollable(self._more)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._pump, name="wasi stdin reader", daemon=True)
                self._thread.start()

    def _pump(self) -> None:
        import os

        fd = self._fd()
        while True:
            try:
                data = os.read(fd, 65536) if fd is not None else (self._file.read1(65536)
                                                                  if hasattr(self._file, "read1")
                                                                  else self._file.read(65536))
            except OSError as e:
                with self._lock:
                    self._error = e
                    self._more.set()
                return
            with self._lock:
                if not data:
                    self._eof = True
                else:
                    self._buffer += data
                self._more.set()
            if not data:
                return


class FileOutputStream(OutputStream):
    """Writes to a binary file object or raw fd (at a position, when opened by a
    descriptor with an offset; appending when `append`)."""

    def __init__(self, file: Any, offset: Optional[int] = None, append: bool = False) -> None:
        self._file = file
        self._offset = offset
        self._append = append

    def write_bytes(self, data: bytes) -> None:
        import os

        try:
            if self._offset is None and not self._append and callable(getattr(self._file, "write", None)):
                self._file.write(data)
                return
            fd = self._file if isinstance(self._file, int) else self._file.fileno()
            if self._offset is not None:
                view = memoryview(data)
                while view:
                    n = os.pwrite(fd, view, self._offset)
                    self._offset += n
                    view = view[n:]
                return
            if self._append:
                os.lseek(fd, 0, os.SEEK_END)
            _write_all(fd, data)
        except OSError as e:
            raise StreamFailed.from_os_error(e) from None
        except ValueError as e:  # a closed file object
            raise StreamFailed(IoError(str(e))) from None

    def flush_bytes(self) -> None:
        flush = getattr(self._file, "flush", None)
        if flush is not None:
            try:
                flush()
            except OSError as e:
                raise StreamFailed.from_os_error(e) from None
            except ValueError:
                pass


def _write_all(fd: int, data: bytes) -> None:
    import os

    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
