"""Waiting for a busy instance without deadlocking.

An instance runs one call at a time (a store is single-threaded), so a call waits while
another thread's call runs there. Two instances whose host functions call into each other,
driven from two threads, can then wait for each other forever: thread 1 is inside A and
wants B, thread 2 is inside B and wants A. The fast path takes the instance's lock without
waiting; only when it is busy does `wait_for_instance` wait, in short slices, checking
whether the thread holding it is itself waiting (directly or down a chain) for an instance
this thread holds. If so, waiting can never end, and it raises `DeadlockError` instead: the
call fails (and with it the host function that made it) rather than hanging.

Engine-neutral: an instance's lock is a `threading.RLock`; who holds it is read from the
lock itself (CPython's RLock says its owner), and nothing is recorded on the fast path.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, Optional

from .._errors import DeadlockError

__all__ = ["wait_for_instance"]

_SLICE = 0.02  # seconds between checks while waiting

_waiting: Dict[int, Any] = {}  # thread ident -> the lock it is waiting for
_OWNER = re.compile(r"owner=(\d+)")


def _owner(lock: Any) -> Optional[int]:
    found = _OWNER.search(repr(lock))
    owner = int(found.group(1)) if found else 0
    return owner or None


def _in_cycle(me: int, lock: Any) -> bool:
    """Does the chain "lock's owner waits for a lock whose owner waits..." come back to me?"""
    seen = set()
    while lock is not None:
        owner = _owner(lock)
        if owner is None:
            return False
        if owner == me:
            return True
        if owner in seen:
            return False
        seen.add(owner)
        lock = _waiting.get(owner)
    return False


def wait_for_instance(lock: Any, what: str) -> None:
    """Acquire `lock` (an instance's RLock, found busy), or raise DeadlockError if the wait
    could never end. `what` names the instance for the message."""
    me = threading.get_ident()
    _waiting[me] = lock
    try:
        while not lock.acquire(timeout=_SLICE):
            if _in_cycle(me, lock):
                raise DeadlockError(
                    f"deadlock: {what} is busy in another thread that is waiting for an instance "
                    "this thread is inside (host functions calling into each other's instances "
                    "from several threads); this call fails instead of waiting forever")
    finally:
        del _waiting[me]
