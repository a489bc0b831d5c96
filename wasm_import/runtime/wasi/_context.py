"""One component instance's WASI: its grants turned into host objects, one per interface.

    ctx = WasiContext(wasi)                    # per instance: stdio, preopens, WIT classes
    obj = ctx.provider("wasi:clocks/wall-clock@0.2.3", iface)   # None: not served here

`provider` returns an ordinary import provider (snake_case functions, PascalCase
resource classes), exactly what a user would pass in `imports=`, so WASI is linked like
every other import and any one interface can be replaced by the user's own object. Every
`wasi:*` interface of a 0.2.x version (0.2.0 .. 0.2.12, and unversioned) is served by the
same implementation, as the component model's semver rules allow; later 0.2.x additions
are simply extra attributes.

Implementations of other packages register a factory with `register_interface(name,
factory)` (`factory(ctx, iface) -> provider`): `wasi:sockets` and `wasi:http` do. WASI 0.3
(native async: streams, futures, `async func`) is a different series: its providers
register with `series="0.3"` (the `_p3_*` modules) and serve the 0.3.x versions; their
WIT classes live apart from 0.2's (`ctx.types_p3`), so one component may import both.
"""

from __future__ import annotations

import os
import random as _random
import sys
import time
import types as _types
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._errors import GuestExit
from ..._values import Err
from ..._wasi import DEFAULT_WASI, Dir, Wasi
from . import _io as io
from ._fs import Descriptor, DirectoryEntryStream, HostGrant, filesystem_error_code
from ._held import Held

__all__ = ["WasiContext", "wasi_provider", "register_interface", "served", "SUPPORTED_MAJOR_MINOR",
           "SERIES", "Datetime"]

SUPPORTED_MAJOR_MINOR = "0.2"
SERIES = ("0.2", "0.3")  # the WASI series served; an unversioned import means 0.2

Factory = Callable[["WasiContext", Any], Any]
_FACTORIES: Dict[Tuple[str, str], Factory] = {}


def register_interface(name: str, factory: Factory, series: str = SUPPORTED_MAJOR_MINOR) -> None:
    """Serve the version-less interface `name` (`"wasi:sockets/tcp"`) of WASI `series`
    (`"0.2"` or `"0.3"`: every x of 0.2.x / 0.3.x) with `factory(ctx, iface)`."""
    if series not in SERIES:
        raise ValueError(f"register_interface: unknown WASI series {series!r} (one of {', '.join(SERIES)})")
    _FACTORIES[(name, series)] = factory


def _split(key: str) -> Tuple[str, Optional[str]]:
    base, _, version = key.partition("@")
    return base, version or None


def series_of(key: str) -> Optional[str]:
    """`"0.2"` for `wasi:io/streams@0.2.3` or an unversioned key, `"0.3"` for `...@0.3.0`,
    None for any other version."""
    version = _split(key)[1]
    if version is None:
        return SUPPORTED_MAJOR_MINOR
    for series in SERIES:
        if version == series or version.startswith(series + "."):
            return series
    return None


def served(key: str) -> bool:
    """Is the import `key` (`wasi:io/streams@0.2.3`) one this package implements?"""
    _load_others()
    series = series_of(key)
    return series is not None and (_split(key)[0], series) in _FACTORIES


def _load_others() -> None:
    """Import the sibling implementations that register themselves (sockets, http, WASI 0.3)."""
    for name in ("_sockets", "_http", "_p3"):
        try:
            __import__(f"{__package__}.{name}")
        except ImportError:
            pass


class WasiContext:
    """The WASI state of one component instance: stdio, preopened directories, the WIT
    classes of the interfaces it imports, captured output.

    - `stdout`, `stderr`: bytearrays holding what the guest wrote when captured.
    - `types`: the instance's `WitTypes` (objects made here are bound to it).

    Blocking waits call the calling thread's interrupt check (`_io.set_interrupt_check`),
    which the runtime sets around each call into the guest.
    """

    def __init__(self, wasi: Optional[Wasi] = None) -> None:
        self.wasi = wasi if wasi is not None else DEFAULT_WASI
        self.stdout = bytearray()
        self.stderr = bytearray()
        # what this instance's WASI opens on the host (fds, sockets, connections, files it
        # opened itself): objects find it through their WIT classes (`types.held`)
        self.held = Held()
        self.types = io.WitTypes()
        self.types_p3 = io.WitTypes()  # WASI 0.3's classes: the same names, other types
        self.types.held = self.types_p3.held = self.held
        self._wasi_types = self.types  # `types_of(ctx)` finds the classes
        self.preopens: List[Tuple[Any, str]] = [(self._preopen(d), d.guest) for d in self.wasi.dirs]
        self._stdin = self._input(self.wasi.stdin)
        self._stdout_stream = self._output(self.wasi.stdout, self.stdout, 1, "stdout")
        # the guest's last words on stderr, whatever its mode: a Trap carries them (_traps)
        from .._traps import OutputTail

        self.stderr_tail = OutputTail()
        self._stderr_stream = self._output(self.wasi.stderr, self.stderr, 2, "stderr", self.stderr_tail.write)
        self._insecure = _random.Random(os.urandom(16))
        seed = os.urandom(16)
        self._insecure_seed = (int.from_bytes(seed[:8], "little"), int.from_bytes(seed[8:], "little"))

    def provider(self, key: str, iface: Any) -> Optional[Any]:
        """The provider for import `key` (its `wit._model.Interface` is `iface`), or None
        when this package does not implement it (the import is then missing)."""
        if not served(key):
            return None
        series = series_of(key)
        if series == "0.3":
            latest = io._latest  # 0.2's fallback for unbound objects stays 0.2's
            self.types_p3.register(key, iface)
            io._latest = latest
        else:
            self.types.register(key, iface)
        return _FACTORIES[(_split(key)[0], str(series))](self, iface)

    def bind(self, obj: Any) -> Any:
        """Bind an object the guest will receive to this instance's WIT classes."""
        return io.bind_types(obj, self.types)

    def close(self) -> None:
        """Release every host resource this context opened and still holds: preopened and
        opened directories and files, sockets, HTTP connections, the files it opened for
        stdio given as paths. File objects the user gave as stdio are the user's: never
        closed here. The guest's objects then answer with their WIT errors
        (`bad-descriptor`, a closed stream...). Idempotent."""
        self.held.close()

    # -- grants ---------------------------------------------------------------------------

    def _preopen(self, d: Dir) -> Any:
        root_descriptor = getattr(d.host, "root_descriptor", None)  # a MemoryDir
        if root_descriptor is not None:
            return root_descriptor(d.readonly, self.types)
        host = os.fspath(d.host)
        if not os.path.isdir(host):
            raise FileNotFoundError(f"Wasi.dirs: {host!r} is not a directory")
        return Descriptor.open_grant(HostGrant(host, d.guest, d.readonly), self.types)

    def _input(self, spec: Any) -> io.InputStream:
        if spec is None:
            stream: io.InputStream = io.EmptyInputStream()
        elif isinstance(spec, bytes):
            stream = io.BytesInputStream(spec)
        elif spec == "inherit":
            try:
                fd = sys.stdin.fileno()
            except (AttributeError, OSError, ValueError):
                fd = 0
            stream = io.FileInputStream(fd)
        elif isinstance(spec, os.PathLike):
            stream = io.FileInputStream(self._open(spec, "rb"))
        else:
            stream = io.FileInputStream(spec)
        return self.bind(stream)

    def _open(self, path: Any, mode: str) -> Any:
        return self.held.hold(open(path, mode))  # a path given as stdio: the file is ours to close

    def _output(self, spec: Any, sink: bytearray, fd: int, name: str,
                tee: Optional[Callable[[bytes], None]] = None) -> io.OutputStream:
        if tee is not None:  # every write also goes to `tee`
            inner = self._output(spec, sink, fd, name)
            write_inner = getattr(inner, "write_bytes")

            def write(data: bytes) -> None:
                tee(data)
                write_inner(data)
            return self.bind(io.CallbackOutputStream(write, getattr(inner, "flush_bytes")))
        if spec == "capture":
            stream: io.OutputStream = io.CallbackOutputStream(sink.extend)
        elif spec == "discard":
            stream = io.CallbackOutputStream(lambda data: None)
        elif spec == "inherit":
            stream = io.CallbackOutputStream(lambda data: _to_process(name, fd, data))
        elif isinstance(spec, os.PathLike):
            stream = io.FileOutputStream(self._open(spec, "wb"))
        else:
            stream = io.FileOutputStream(spec)
        return self.bind(stream)


def _to_process(name: str, fd: int, data: bytes) -> None:
    """Write to this process's stdout/stderr: through `sys.stdout` (so it interleaves
    with Python's own output and honours redirection), else straight to the fd."""
    stream = getattr(sys, name, None)
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        try:
            stream.flush()  # type: ignore[union-attr]
            buffer.write(data)
            buffer.flush()
            return
        except (OSError, ValueError):
            pass
    os.write(fd, data)


def wasi_provider(key: str, iface: Any, context: WasiContext) -> Optional[Any]:
    """The provider of `wasi:*` import `key` for the instance whose WASI is `context`
    (None: not implemented here). Same as `context.provider(key, iface)`."""
    return context.provider(key, iface)


def _ns(**members: Any) -> Any:
    return _types.SimpleNamespace(**members)


# -- wasi:io --------------------------------------------------------------------------------

register_interface("wasi:io/error", lambda ctx, iface: _ns(Error=io.IoError))
register_interface("wasi:io/poll", lambda ctx, iface: _ns(Pollable=io.Pollable, poll=io.poll))
register_interface("wasi:io/streams", lambda ctx, iface: _ns(InputStream=io.InputStream,
                                                             OutputStream=io.OutputStream))


# -- wasi:clocks ----------------------------------------------------------------------------

class Datetime:
    """A `wasi:clocks/wall-clock.datetime` value (records are matched by their fields)."""

    __dataclass_fields__: Dict[str, Any] = {"seconds": None, "nanoseconds": None}

    def __init__(self, seconds: int, nanoseconds: int) -> None:
        self.seconds = seconds
        self.nanoseconds = nanoseconds

    def __repr__(self) -> str:
        return f"Datetime(seconds={self.seconds}, nanoseconds={self.nanoseconds})"


def _monotonic_clock(ctx: WasiContext, iface: Any) -> Any:
    def subscribe_instant(when: int) -> io.Pollable:
        return io.DeadlinePollable(when / 1e9)

    def subscribe_duration(when: int) -> io.Pollable:
        return io.DeadlinePollable(time.monotonic() + when / 1e9)

    resolution = int(time.get_clock_info("monotonic").resolution * 1e9) or 1
    return _ns(now=time.monotonic_ns, resolution=lambda: resolution,
               subscribe_instant=subscribe_instant, subscribe_duration=subscribe_duration)


def _wall_clock(ctx: WasiContext, iface: Any) -> Any:
    def now() -> Datetime:
        ns = time.time_ns()
        return Datetime(ns // 1_000_000_000, ns % 1_000_000_000)

    resolution = int(time.get_clock_info("time").resolution * 1e9) or 1
    return _ns(now=now, resolution=lambda: Datetime(resolution // 1_000_000_000, resolution % 1_000_000_000))


register_interface("wasi:clocks/monotonic-clock", _monotonic_clock)
register_interface("wasi:clocks/wall-clock", _wall_clock)


# -- wasi:random ----------------------------------------------------------------------------

_MAX_RANDOM = 1 << 26  # a guest asking for more bytes than this at once is refused


def _checked_len(n: int) -> int:
    if n > _MAX_RANDOM:
        raise ValueError(f"wasi:random: {n} bytes asked for at once; at most {_MAX_RANDOM}")
    return n


def _random_iface(ctx: WasiContext, iface: Any) -> Any:
    return _ns(get_random_bytes=lambda len: os.urandom(_checked_len(len)),
               get_random_u64=lambda: int.from_bytes(os.urandom(8), "little"))


def _insecure(ctx: WasiContext, iface: Any) -> Any:
    rng = ctx._insecure
    return _ns(get_insecure_random_bytes=lambda len: rng.randbytes(_checked_len(len)),
               get_insecure_random_u64=lambda: rng.getrandbits(64))


register_interface("wasi:random/random", _random_iface)
register_interface("wasi:random/insecure", _insecure)
register_interface("wasi:random/insecure-seed", lambda ctx, iface: _ns(insecure_seed=lambda: ctx._insecure_seed))


# -- wasi:cli -------------------------------------------------------------------------------

def _environment(ctx: WasiContext, iface: Any) -> Any:
    env = [(str(k), str(v)) for k, v in ctx.wasi.env.items()]
    args = [str(a) for a in ctx.wasi.args]
    return _ns(get_environment=lambda: list(env), get_arguments=lambda: list(args), initial_cwd=lambda: None)


def _exit(ctx: WasiContext, iface: Any) -> Any:
    def exit(status: Any) -> None:
        raise GuestExit(1 if isinstance(status, Err) else 0)

    def exit_with_code(status_code: int) -> None:
        raise GuestExit(status_code)

    return _ns(exit=exit, exit_with_code=exit_with_code)


class TerminalInput:
    """`wasi:cli/terminal-input.terminal-input`: stdin is a terminal."""


class TerminalOutput:
    """`wasi:cli/terminal-output.terminal-output`: stdout/stderr is a terminal."""


def _is_tty(spec: Any, fd: int) -> bool:
    try:
        return spec == "inherit" and os.isatty(fd)
    except OSError:
        return False


register_interface("wasi:cli/environment", _environment)
register_interface("wasi:cli/exit", _exit)
register_interface("wasi:cli/stdin", lambda ctx, iface: _ns(get_stdin=lambda: ctx._stdin))
register_interface("wasi:cli/stdout", lambda ctx, iface: _ns(get_stdout=lambda: ctx._stdout_stream))
register_interface("wasi:cli/stderr", lambda ctx, iface: _ns(get_stderr=lambda: ctx._stderr_stream))
register_interface("wasi:cli/terminal-input", lambda ctx, iface: _ns(TerminalInput=TerminalInput))
register_interface("wasi:cli/terminal-output", lambda ctx, iface: _ns(TerminalOutput=TerminalOutput))
register_interface("wasi:cli/terminal-stdin", lambda ctx, iface: _ns(
    get_terminal_stdin=lambda: TerminalInput() if _is_tty(ctx.wasi.stdin, 0) else None))
register_interface("wasi:cli/terminal-stdout", lambda ctx, iface: _ns(
    get_terminal_stdout=lambda: TerminalOutput() if _is_tty(ctx.wasi.stdout, 1) else None))
register_interface("wasi:cli/terminal-stderr", lambda ctx, iface: _ns(
    get_terminal_stderr=lambda: TerminalOutput() if _is_tty(ctx.wasi.stderr, 2) else None))


# -- wasi:filesystem ------------------------------------------------------------------------

def _fs_types(ctx: WasiContext, iface: Any) -> Any:
    return _ns(Descriptor=Descriptor, DirectoryEntryStream=DirectoryEntryStream,
               filesystem_error_code=lambda err: filesystem_error_code(ctx, err))


register_interface("wasi:filesystem/types", _fs_types)
register_interface("wasi:filesystem/preopens", lambda ctx, iface: _ns(get_directories=lambda: list(ctx.preopens)))
