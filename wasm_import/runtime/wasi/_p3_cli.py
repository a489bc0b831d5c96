"""`wasi:cli` 0.3: environment, exit, stdio as `stream<u8>`, terminals.

WASI 0.3 has no `wasi:io`: stdout is `write-via-stream(data: stream<u8>) ->
future<result<_, error-code>>`, so the guest hands the host the readable end of a byte
stream and the host copies what arrives to the instance's stdout (the same sink WASI 0.2
writes to: inherited, captured, discarded or a file, per `Wasi(stdout=...)`), resolving
the future when the guest drops its end. stdin is the mirror image: `read-via-stream()`
gives the guest a stream fed from `Wasi(stdin=...)` and a future of how it ended.

The copies are asyncio jobs of the instance's async runtime (`_async`), so they make
progress only while the event loop runs: a command is run inside `asyncio.run`
(`_command`), which lets them finish after `run` returns. Everything the guest may see comes from its `Wasi` grants, exactly as for
0.2 (the environment and arguments it was given, stdin empty unless granted).
"""

from __future__ import annotations

import asyncio
import types as _types
from typing import Any, AsyncIterator, Callable, Tuple

from ..._values import Err, Ok
from . import _io as io
from ._context import TerminalInput, TerminalOutput, WasiContext, _environment, _exit, _is_tty, register_interface

__all__ = ["P3"]

P3 = "0.3"
_CHUNK = 1 << 16
_STDIN_POLL = 0.01  # seconds between looks at a stdin that has nothing yet (never blocks a thread)


def _ns(**members: Any) -> Any:
    return _types.SimpleNamespace(**members)


def _error_code(ctx: WasiContext, name: str) -> Any:
    """A `wasi:cli/types.error-code` member (`io`, `illegal-byte-sequence`, `pipe`)."""
    return ctx.types_p3.get("wasi:cli/types#error-code")[name.replace("-", "_").upper()]


def _writer(ctx: WasiContext, stream: Callable[[], io.OutputStream]) -> Any:
    """`write-via-stream` for one of stdout/stderr."""
    def write_via_stream(data: Any) -> Any:
        sink = stream()

        async def copy() -> Any:
            try:
                async for chunk in data:
                    sink.write_bytes(chunk)
                sink.flush_bytes()
            except (OSError, ValueError, io.StreamClosed, io.StreamFailed):
                data.close()
                return Err(_error_code(ctx, "pipe"))
            return Ok(None)

        return copy()  # the future the guest gets is resolved with what this returns

    return _ns(write_via_stream=write_via_stream)


def _stdin(ctx: WasiContext, iface: Any) -> Any:
    def read_via_stream() -> Tuple[Any, Any]:
        source = ctx._stdin
        done: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    try:
                        data = source.read_available(_CHUNK)
                    except io.StreamClosed:
                        break
                    if data:
                        yield data
                    elif not source.subscribe().ready():
                        await asyncio.sleep(_STDIN_POLL)
            except (OSError, io.StreamFailed):
                if not done.done():
                    done.set_result(Err(_error_code(ctx, "io")))
            if not done.done():
                done.set_result(Ok(None))

        return chunks(), done

    return _ns(read_via_stream=read_via_stream)


def _terminal(spec_of: Callable[[WasiContext], Any], fd: int, cls: type, name: str) -> Any:
    def factory(ctx: WasiContext, iface: Any) -> Any:
        return _ns(**{name: lambda: cls() if _is_tty(spec_of(ctx), fd) else None})
    return factory


def _environment_p3(ctx: WasiContext, iface: Any) -> Any:
    base = _environment(ctx, iface)
    return _ns(get_environment=base.get_environment, get_arguments=base.get_arguments,
               get_initial_cwd=lambda: None)


register_interface("wasi:cli/environment", _environment_p3, P3)
register_interface("wasi:cli/exit", _exit, P3)
register_interface("wasi:cli/types", lambda ctx, iface: _ns(), P3)
register_interface("wasi:cli/stdin", _stdin, P3)
register_interface("wasi:cli/stdout", lambda ctx, iface: _writer(ctx, lambda: ctx._stdout_stream), P3)
register_interface("wasi:cli/stderr", lambda ctx, iface: _writer(ctx, lambda: ctx._stderr_stream), P3)
register_interface("wasi:cli/terminal-input", lambda ctx, iface: _ns(TerminalInput=TerminalInput), P3)
register_interface("wasi:cli/terminal-output", lambda ctx, iface: _ns(TerminalOutput=TerminalOutput), P3)
register_interface("wasi:cli/terminal-stdin",
                   _terminal(lambda ctx: ctx.wasi.stdin, 0, TerminalInput, "get_terminal_stdin"), P3)
register_interface("wasi:cli/terminal-stdout",
                   _terminal(lambda ctx: ctx.wasi.stdout, 1, TerminalOutput, "get_terminal_stdout"), P3)
register_interface("wasi:cli/terminal-stderr",
                   _terminal(lambda ctx: ctx.wasi.stderr, 2, TerminalOutput, "get_terminal_stderr"), P3)
