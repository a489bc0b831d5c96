"""What a trap can say about the guest: its last words on stderr.

Guests whose language raises an exception of its own (a Python exception in a
componentize-py guest, a JavaScript error in a componentize-js one, a Rust panic) write
the message to stderr and then trap with a bare `unreachable`; the message is what the
user needs. Each instance keeps the tail of what its guest wrote to stderr (`OutputTail`,
fed by the engine's WASI whatever the stderr mode: inherited, captured or discarded), and
`guest_trap` puts its last lines on the `Trap`. The engine's only part is to feed the tail:
everything here is engine-neutral.
"""

from __future__ import annotations

from typing import Any, Optional

from ._errors import Trap

__all__ = ["OutputTail", "guest_trap", "TAIL_BYTES", "TAIL_LINES"]

TAIL_BYTES = 4096  # at most this much of the guest's last output is kept ...
TAIL_LINES = 20  # ... and at most this many lines of it go on a Trap


class OutputTail:
    """The last `TAIL_BYTES` bytes written to one guest stream (bounded, cheap to feed)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if len(buf) > 2 * TAIL_BYTES:
            del buf[:-TAIL_BYTES]

    def last_lines(self, limit: int = TAIL_LINES) -> str:
        """The last `limit` lines as text (undecodable bytes replaced)."""
        data = bytes(self._buf[-TAIL_BYTES:])
        if not data.strip():
            return ""
        lines = data.decode("utf-8", "replace").rstrip("\n").split("\n")
        return "\n".join(lines[-limit:])


def guest_trap(trap: Trap, engine_instance: Any) -> Trap:
    """`trap` with the last lines its guest wrote to stderr (`engine_instance.stderr_tail`,
    an OutputTail, when the engine keeps one)."""
    tail: Optional[OutputTail] = getattr(engine_instance, "stderr_tail", None)
    if tail is not None and not trap.stderr:
        text = tail.last_lines()
        if text:
            trap._set_stderr(text)
    return trap
