"""A UDP socket's association with one peer, made and dissolved in the kernel.

0.2's `udp-socket.stream(remote-address)` and 0.3's `connect` / `disconnect` both mean
POSIX `connect` on a datagram socket: sends without an address go to the peer, and the
kernel drops datagrams from anyone else (and reports the peer's ICMP refusals). Python's
`socket.connect` cannot dissolve that association: POSIX does it with `connect` to an
`AF_UNSPEC` address, which has no Python spelling, so it is made here through the C
library (`ctypes`), the one call this module adds to what `socket` offers.

On Linux, dissolving also gives up the socket's local port when it was an ephemeral one
(bound with port 0, or implicitly): a later send would leave from a new port, and a peer
answering the old one would reach nobody. WASI keeps the socket bound at its address, so
the port is bound again at once (it was released by this very call; nothing else had a
chance to take it in between but a racing bind, which then fails as `address-in-use`).
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import socket
import sys
from typing import Any, Callable, Optional, Tuple

__all__ = ["associate", "dissociate", "from_peer"]


class _SockaddrUnspec(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("data", ctypes.c_char * 14)]


def _load_connect() -> Optional[Callable[..., int]]:
    if sys.platform == "win32":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).connect
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    return fn


_connect = _load_connect()
# BSDs (macOS among them) dissolve the association and still answer one of these
_HARMLESS = (errno.EAFNOSUPPORT, errno.EINVAL) if sys.platform == "darwin" or "bsd" in sys.platform else ()


def _connect_unspec(sock: socket.socket) -> None:
    if _connect is None:  # Windows: an all-zero address dissolves it (Winsock's documented way; untried here)
        sock.connect(("::", 0) if sock.family == socket.AF_INET6 else ("0.0.0.0", 0))
        return
    unspec = _SockaddrUnspec(socket.AF_UNSPEC)
    if _connect(sock.fileno(), ctypes.addressof(unspec), ctypes.sizeof(unspec)) != 0:
        code = ctypes.get_errno()
        if code not in _HARMLESS:
            raise OSError(code, "connect(AF_UNSPEC): " + (errno.errorcode.get(code, str(code))))


def dissociate(sock: socket.socket) -> None:
    """Dissolve `sock`'s peer association, keeping its local address and port."""
    port = sock.getsockname()[1]
    _connect_unspec(sock)
    now = sock.getsockname()
    if now[1] == 0 and port != 0:
        sock.bind((now[0], port) + tuple(now[2:]))


def associate(sock: socket.socket, sockaddr: Tuple[Any, ...], connected: bool) -> None:
    """Make `sockaddr` the peer of `sock` (already bound). Linux refuses (EINVAL) some
    changes of peer that need another route; then the old association is dissolved first,
    as the WASI text says implementations may have to."""
    try:
        sock.connect(sockaddr)
    except OSError as e:
        if not connected or e.errno != errno.EINVAL:
            raise
        dissociate(sock)
        sock.connect(sockaddr)


def from_peer(sender: Tuple[Any, ...], ip: Any, port: int) -> bool:
    """Did a datagram from `sender` (a `recvfrom` address) come from `ip`:`port`? (What
    the kernel queued before the association was made may come from anyone.)"""
    return sender[1] == port and ipaddress.ip_address(sender[0].split("%", 1)[0]) == ip
