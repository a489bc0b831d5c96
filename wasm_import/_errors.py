"""Exceptions raised by wasm-import.

    Exception
    ├── WasmImportError            base of every error this library raises on its own behalf
    │   ├── DecodeError            the bytes are not a (supported) component; names the byte offset
    │   │                          (also a ValueError, and an ImportError: see below)
    │   ├── LinkError              imports missing or mismatched; lists each with its WIT signature
    │   ├── Trap                   the guest trapped; carries the wasm backtrace
    │   │   ├── GuestExit          the guest called WASI exit; carries the status code
    │   │   └── LimitExceeded      a call ran out of time or fuel (or memory, at instantiation)
    │   ├── InstancePoisonedError  a call on an instance that trapped before
    │   │   └── InstanceClosedError  a call on an instance after its close()
    │   ├── DeadlockError          a call would wait forever for a busy instance (also a RuntimeError)
    │   └── HttpHandlerError       a served HTTP handler gave no response (or an error-code)
    └── Err                        the error case of a WIT `result` (a value, see `wasm_import.Err`)

Wrong argument types and out-of-range values raise the built-in `TypeError` and
`ValueError`, before any wasm runs, naming the function, parameter and WIT type.

`DecodeError` is also an `ImportError`, so that `import foo` of a malformed, truncated or
core-module `foo.wasm` is caught by `except ImportError:` like any other failed import;
an import sets its `name` and `path` (the module and the file) as importlib does.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Optional

__all__ = ["WasmImportError", "DecodeError", "LinkError", "Trap", "GuestExit", "LimitExceeded",
           "InstancePoisonedError", "InstanceClosedError", "DeadlockError", "HttpHandlerError",
           "CLOSED", "unusable"]


class WasmImportError(Exception):
    """Base class of the errors wasm-import raises."""


class DecodeError(WasmImportError, ValueError, ImportError):
    """The input is not a component this library can read.

    `offset` is the byte offset where decoding failed (None when not tied to one). Raised
    by an import, it also has `name` (the module) and `path` (the file), as an ImportError.
    """

    def __init__(self, message: str, offset: Optional[int] = None, *, name: Optional[str] = None,
                 path: Optional[str] = None) -> None:
        self.message = message
        self.offset = offset
        text = message if offset is None else f"{message} (at byte offset {offset:#x})"
        super().__init__(text)
        self.msg, self.name, self.path = text, name, path  # ImportError's fields


class LinkError(WasmImportError):
    """A component's imports are missing or do not match what was supplied."""


class Trap(WasmImportError):
    """The guest trapped (`unreachable`, out-of-bounds access, a failed assertion...).

    `message` is the trap reason, `trace` the wasm backtrace as text, and `stderr` the
    last lines the guest wrote to its stderr before it trapped (a Python traceback, a
    panic message...), whether or not its stderr was captured ("" if none).
    """

    def __init__(self, message: str, trace: str = "", stderr: str = "") -> None:
        self.message = message
        self.trace = trace
        self.stderr = stderr
        super().__init__(self._text())

    def _text(self) -> str:
        parts = [self.message]
        if self.stderr:
            lines = self.stderr.rstrip("\n").split("\n")
            parts.append(f"guest stderr (last {len(lines)} line{'s' * (len(lines) != 1)}):\n"
                         + "\n".join(f"  | {line}" for line in lines))
        if self.trace:
            parts.append(self.trace)
        return "\n".join(parts)

    def _set_stderr(self, stderr: str) -> None:
        self.stderr = stderr
        self.args = (self._text(),)

    def _set_trace(self, trace: str) -> None:
        """Where the guest was (a trap our side of the ABI raised learns it afterwards)."""
        self.trace = trace
        self.args = (self._text(),)


class InstancePoisonedError(WasmImportError):
    """An instance trapped earlier and cannot be entered again; make a new instance."""


class InstanceClosedError(InstancePoisonedError):
    """A call on an instance after its `close()` (or the end of its `with` block): its
    host resources are released and it cannot be entered again; make a new instance.
    An InstancePoisonedError, so code that handles "this instance is unusable" handles it."""


# The reason a closed instance's store gives (its `poisoned`): the one flag every call checks
# already, so closing costs a call nothing.
CLOSED = "closed"


def unusable(reason: str) -> InstancePoisonedError:
    """The error for a call on an instance that cannot be entered for `reason` (a trap's
    message, or `CLOSED`)."""
    if reason is CLOSED:
        return InstanceClosedError("this instance was closed (close(), or the end of its with block) and "
                                   "cannot be called again; make a new instance")
    return InstancePoisonedError(f"this instance trapped earlier ({reason}) and cannot be entered again; "
                                 "make a new instance")


class DeadlockError(WasmImportError, RuntimeError):
    """A call would wait forever: the instance it needs is busy in a thread that is itself
    waiting for an instance this thread is inside (host functions calling each other's
    instances from several threads). Raised by `bindings._calllock`."""


class GuestExit(Trap):
    """The guest asked to exit (WASI `exit`), with status `code`."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"the guest exited with status {code}")


class LimitExceeded(Trap):
    """A call hit one of its instance's `Limits`: `limit` is "timeout", "fuel" or "memory"
    (the guest trapped after its memory could not grow past the cap)."""

    def __init__(self, limit: str, message: str, trace: str = "", stderr: str = "") -> None:
        self.limit = limit
        super().__init__(message, trace, stderr)


class HttpHandlerError(WasmImportError):
    """A component's exported HTTP handler gave no response: it returned without setting
    its `response-outparam` (WASI 0.2), set it to an `error-code` or returned `err(error-code)`
    (`error_code` is that WIT value, None when there is none), or its response body was not
    finished. `stderr` holds the last lines the guest wrote to stderr meanwhile (a JavaScript
    handler's exception, say), also shown in the message. A handler that traps raises `Trap`."""

    def __init__(self, message: str, error_code: object = None) -> None:
        self.message = message
        self.error_code = error_code
        self.stderr = ""  # what the guest wrote to stderr while handling the request (last lines)
        super().__init__(message)

    def _set_stderr(self, stderr: str) -> None:
        self.stderr = stderr
        lines = stderr.rstrip("\n").split("\n")
        self.args = (f"{self.message}\nguest stderr (last {len(lines)} line{'s' * (len(lines) != 1)}):\n"
                     + "\n".join(f"  | {line}" for line in lines),)


class _Unraisable:
    """What `sys.unraisablehook` takes (the fields of `sys.UnraisableHookArgs`)."""

    def __init__(self, exc: BaseException, err_msg: str, obj: Any) -> None:
        self.exc_type: type[BaseException] = type(exc)
        self.exc_value: Optional[BaseException] = exc
        self.exc_traceback: Optional[TracebackType] = exc.__traceback__
        self.err_msg: Optional[str] = err_msg
        self.object: Any = obj


def report_unraisable(exc: BaseException, err_msg: str, obj: Any) -> None:
    """Report an exception nobody can be handed (raised by a destructor or a drop hook),
    as Python does for one raised in `__del__`: through `sys.unraisablehook`."""
    sys.unraisablehook(_Unraisable(exc, err_msg, obj))  # type: ignore[arg-type]
