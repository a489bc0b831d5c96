"""What one instance's WASI holds open on the host, so that closing the instance (or
its garbage collection) releases it at once, not whenever Python's GC gets to each object.

    held = Held()                        # one per WasiContext, reachable as `types.held`
    held.hold(sock)                      # strongly: released by `let_go` or by `close`
    held.let_go(sock)                    # the guest dropped it (its owner closed it)
    held.watch(fd_box)                   # weakly: closes itself when collected, or by `close`
    held.close()                         # the instance is done: close everything

Two kinds, because two lifetimes:

- *held* things (host sockets, HTTP connections, files the context opened) must be closed
  explicitly: a `socket.socket` collected open warns (ResourceWarning). Held strongly, they
  stay reachable from the instance's finalizer even when the instance is garbage, so the
  finalizer, which runs before the garbage is cleared, closes them.
- *watched* things (`_fs._Fd`) close themselves when their last user is collected, and must
  be, so that a long-lived instance opening and dropping files does not pile up fds: held
  weakly.

A `Held` references no instance, so a finalizer holding it keeps nothing else alive. Once
closed, whatever is handed to it (a connection a worker thread made while the instance was
being closed) is closed at once.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["Held", "held_of"]


class Held:
    """The OS resources one instance's WASI opened and has not released yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._strong: Dict[int, Tuple[Any, Callable[[], Any]]] = {}
        self._weak: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self.closed = False

    def hold(self, obj: Any, close: Optional[Callable[[], Any]] = None) -> Any:
        """Keep `obj` until `let_go(obj)` or `close()`, which calls `close` (default:
        `obj.close`). Returns `obj`."""
        closer = close if close is not None else obj.close
        with self._lock:
            if not self.closed:
                self._strong[id(obj)] = (obj, closer)
                return obj
        _quietly(closer)
        return obj

    def let_go(self, obj: Any) -> None:
        """`obj` was released by its owner: forget it."""
        with self._lock:
            self._strong.pop(id(obj), None)

    def watch(self, obj: Any) -> Any:
        """Close `obj` (its `close()`) with the others, if it is still alive then."""
        with self._lock:
            if not self.closed:
                self._weak.add(obj)
                return obj
        _quietly(obj.close)
        return obj

    def close(self) -> None:
        """Close everything held or watched; from now on, whatever comes is closed at once.
        Safe to call more than once, from any thread, and at interpreter exit."""
        with self._lock:
            self.closed = True
            strong: List[Tuple[Any, Callable[[], Any]]] = list(self._strong.values())
            self._strong.clear()
            weak = list(self._weak)
            self._weak.clear()
        for _, closer in strong:
            _quietly(closer)
        for obj in weak:
            _quietly(obj.close)

    def __len__(self) -> int:
        return len(self._strong) + len(self._weak)

    def __repr__(self) -> str:
        return f"<Held {len(self._strong)} held, {len(self._weak)} watched{', closed' if self.closed else ''}>"


def _quietly(close: Callable[[], Any]) -> None:
    """Close something: a failure to close (already closed, a peer gone) changes nothing."""
    try:
        close()
    except Exception:  # noqa: BLE001  (closing is best effort: what fails here is gone anyway)
        pass


def held_of(types: Any) -> Optional[Held]:
    """The `Held` of the instance whose WIT classes are `types` (None: objects made
    outside any instance, as tests make them, are left to their own lifetimes)."""
    return getattr(types, "held", None)
