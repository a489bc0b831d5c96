"""What a trap can say about the guest: its last words on stderr, and whether it ran out
of memory.

Guests whose language raises an exception of its own (a Python exception in a
componentize-py guest, a JavaScript error in a componentize-js one, a Rust panic) write
the message to stderr and then trap with a bare `unreachable`; the message is what the
user needs. Each instance keeps the tail of what its guest wrote to stderr (`OutputTail`,
fed by the engine's WASI whatever the stderr mode: inherited, captured or discarded), and
`guest_trap` puts its last lines on the `Trap`.

Under a memory cap (`Limits(memory=...)`), growth past the cap makes `memory.grow` return
-1, and the guest's allocator then fails and traps: `guest_trap` reports that as
`LimitExceeded(limit="memory")` rather than as a crash. wasmtime does not say that it
refused a growth, so the evidence is indirect: an engine that can see the guest's
memories says whether one is at the cap (`memory_at_cap()`, optional), and the guest's
own words say it ran out (a Python `MemoryError`, Rust's "memory allocation of N bytes
failed" or its alloc-error frames in the backtrace, "out of memory" from C or JavaScript).
The engine's only parts are to feed the tail and, if it can, answer `memory_at_cap`;
everything here is engine-neutral.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from .._errors import LimitExceeded, Trap
from .._limits import limit_message

__all__ = ["OutputTail", "guest_trap", "TAIL_BYTES", "TAIL_LINES"]

TAIL_BYTES = 4096  # at most this much of the guest's last output is kept ...
TAIL_LINES = 20  # ... and at most this many lines of it go on a Trap


class OutputTail:
    """The last `TAIL_BYTES` bytes written to one guest stream (bounded, cheap to feed)."""

    __slots__ = ("_buf", "written")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.written = 0  # bytes written in all: a mark for `last_lines(since=...)`

    def write(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        self.written += len(data)
        if len(buf) > 2 * TAIL_BYTES:
            del buf[:-TAIL_BYTES]

    def last_lines(self, limit: int = TAIL_LINES, since: Optional[int] = None) -> str:
        """The last `limit` lines as text (undecodable bytes replaced); only what came after
        the mark `since` (a former `written`) if given."""
        size = TAIL_BYTES if since is None else min(TAIL_BYTES, self.written - since)
        data = bytes(self._buf[-size:]) if size > 0 else b""
        if not data.strip():
            return ""
        lines = data.decode("utf-8", "replace").rstrip("\n").split("\n")
        return "\n".join(lines[-limit:])


# What guests say (on stderr, or as the names of the frames they trap in) when their
# allocator could not get memory.
_OUT_OF_MEMORY = re.compile(
    r"MemoryError|memory allocation of \d+ bytes failed|handle_alloc_error|__rust_alloc_error_handler"
    r"|rust_oom|out of memory|cannot allocate memory|failed to allocate", re.IGNORECASE)


def guest_trap(trap: Trap, engine_instance: Any) -> Trap:
    """`trap` with the last lines its guest wrote to stderr (`engine_instance.stderr_tail`,
    an OutputTail, when the engine keeps one); a `LimitExceeded(limit="memory")` instead
    when the instance has a memory cap and the guest ran out of memory (see above)."""
    tail: Optional[OutputTail] = getattr(engine_instance, "stderr_tail", None)
    if tail is not None and not trap.stderr:
        text = tail.last_lines()
        if text:
            trap._set_stderr(text)
    limits = getattr(engine_instance, "limits", None)
    if type(trap) is Trap and limits is not None and limits.memory is not None \
            and _ran_out_of_memory(trap, engine_instance):
        return LimitExceeded("memory", limit_message("memory", limits, trap.message), trap.trace,
                             stderr=trap.stderr)
    return trap


def _ran_out_of_memory(trap: Trap, engine_instance: Any) -> bool:
    at_cap = getattr(engine_instance, "memory_at_cap", None)
    if at_cap is not None and at_cap():
        return True
    return bool(_OUT_OF_MEMORY.search(trap.stderr) or _OUT_OF_MEMORY.search(trap.trace))
