"""`wasi:sockets` 0.2 (network, instance-network, tcp, tcp-create-socket, udp,
udp-create-socket, ip-name-lookup) on Python's `socket` module.

Every socket is non-blocking; the guest waits through pollables that wait on the
socket's file descriptor with `selectors` (`_io.wait_any`), so a blocked guest really
sleeps and wakes when data, a connection or buffer space arrives, and stays
interruptible.

Deny by default: a host socket is made only once the instance's `NetPolicy` allows what
the guest asks for (a bind, a connect, a datagram's destination), so a refused guest
leaves no trace on the host's network stack, not even an unbound socket. Until then a
`tcp-socket` / `udp-socket` is a Python object that remembers the options set on it.

The WIT state machine is the one `wasi:sockets/tcp` documents: unbound -> bind-started
-> bound -> (listen-started -> listening | connecting -> connected), with `invalid-state`,
`not-in-progress` and `would-block` where it says so. Connecting and accepting give
`(input-stream, output-stream)` pairs; the socket is closed when the guest has dropped
the socket and both its streams.
"""

from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._values import Err
from ._io import (IoError, InputStream, OutputStream, Pollable, ReadyPollable, EventPollable, StreamClosed,
                  StreamFailed, WitTypes, bind_types)
from ._net import (NETWORK, NetPolicy, error_code, errno_code, family_of, from_host, ip_from_host,
                   is_ipv6_family, os_error, register_shared, socket_family, to_host)
from ._held import Held, held_of
from ._udp import associate, dissociate, from_peer

__all__ = ["Network", "TcpSocket", "UdpSocket", "ResolveAddressStream", "TcpInputStream", "TcpOutputStream",
           "IncomingDatagramStream", "OutgoingDatagramStream", "Sockets", "sockets_providers"]

_OUT_BUFFER = 64 * 1024  # bytes a TCP output stream takes before it pushes back
_SEND_PERMITS = 64  # datagrams one check-send allows
_MAX_DATAGRAM = 65535


def _fail(types: WitTypes, name: str) -> Err:
    return Err(error_code(types, name))


class Network:
    """`wasi:sockets/network.network`: the capability handed to bind, connect and lookups.
    It carries the instance's `NetPolicy`."""

    def __init__(self, policy: NetPolicy) -> None:
        self.policy = policy

    def __repr__(self) -> str:
        return f"<Network granting {self.policy.describe()}>"


# -- shared socket plumbing ---------------------------------------------------------------------

class _Owned:
    """The host socket behind a WIT socket and its streams: closed when the last of them
    is dropped (streams are children of their socket and may outlive its handle), or when
    its instance is closed (`held`, the instance's `_held.Held`, keeps it until then)."""

    def __init__(self, sock: socket.socket, held: Optional[Held] = None,
                 close: Optional[Callable[[], None]] = None) -> None:
        self.sock = sock
        self.users = 1
        self._lock = threading.Lock()
        self._held = held
        self._close = close if close is not None else sock.close
        if held is not None:
            held.hold(sock, self._close)

    def share(self) -> "_Owned":
        with self._lock:
            self.users += 1
        return self

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            last = self.users == 0
        if last:
            self._close()
            if self._held is not None:
                self._held.let_go(self.sock)


class _FdPollable(Pollable):
    """Ready when `ready()` of the owner says so; waits on whatever fd and events the
    owner names at that moment (`owner._wait_on() -> (fd, events) | None`)."""

    def __init__(self, ready: Any, wait_on: Any) -> None:
        self._ready = ready
        self._wait_on = wait_on

    def ready(self) -> bool:
        return bool(self._ready())

    def fileno(self) -> Optional[int]:
        target = self._wait_on()
        if target is None:
            return None
        fd, self.events = target
        return fd


def _selectable(sock: socket.socket, events: int) -> bool:
    """Is `sock` ready for `events` now? A closed one is (the next call says what is wrong)."""
    if sock.fileno() < 0:
        return True
    with selectors.DefaultSelector() as sel:
        sel.register(sock, events)
        return bool(sel.select(0))


def _waitable(sock: socket.socket, events: int) -> Optional[Tuple[int, int]]:
    """What to wait on for `events` of `sock`: nothing once it is closed (it is ready)."""
    fd = sock.fileno()
    return (fd, events) if fd >= 0 else None


_OPTION_DEFAULTS = {  # what a fresh Linux socket reports, for sockets not made yet
    "keep_alive": False, "keep_idle": 7200 * 10**9, "keep_interval": 75 * 10**9, "keep_count": 9,
    "hop_limit": 64, "recv_buf": 131072, "send_buf": 16384,
}


class _SocketBase:
    """What TCP and UDP sockets share: the family, the lazily made host socket, options."""

    protocol = "tcp"
    sock_type = socket.SOCK_STREAM

    def __init__(self, types: WitTypes, ipv6: bool) -> None:
        self._types = types
        bind_types(self, types)
        self.ipv6 = ipv6
        self._owned: Optional[_Owned] = None
        self._options: Dict[str, Any] = {}
        self._held = held_of(types)

    @property
    def _sock(self) -> Optional[socket.socket]:
        return self._owned.sock if self._owned is not None else None

    def _make(self) -> socket.socket:
        """The host socket, made now that a grant allows using it."""
        if self._owned is None:
            sock = socket.socket(socket_family(self.ipv6), self.sock_type)
            try:
                sock.setblocking(False)
                if self.ipv6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                for name, value in self._options.items():
                    self._apply(sock, name, value)
            except OSError:
                sock.close()
                raise
            self._owned = self._own(sock)
        return self._owned.sock

    def _own(self, sock: socket.socket) -> _Owned:
        """`sock` as this socket's `_Owned`, held by its instance until released."""
        return _Owned(sock, self._held)

    def _apply(self, sock: socket.socket, name: str, value: Any) -> None:
        if name == "hop_limit":
            if self.ipv6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, value)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, value)
        elif name == "recv_buf":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, min(value, 1 << 30))
        elif name == "send_buf":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, min(value, 1 << 30))
        elif name == "keep_alive":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(value))
        elif name == "keep_idle" and hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, min(value // 10**9, 32767)))
        elif name == "keep_interval" and hasattr(socket, "TCP_KEEPINTVL"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, min(value // 10**9, 32767)))
        elif name == "keep_count" and hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, max(1, min(value, 127)))

    def _read_option(self, name: str) -> Any:
        sock = self._sock
        if sock is None:
            return self._options.get(name, _OPTION_DEFAULTS[name])
        if name == "hop_limit":
            if self.ipv6:
                return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
            return sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
        if name == "recv_buf":
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if name == "send_buf":
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if name == "keep_alive":
            return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        option = {"keep_idle": "TCP_KEEPIDLE", "keep_interval": "TCP_KEEPINTVL", "keep_count": "TCP_KEEPCNT"}[name]
        if not hasattr(socket, option):
            return self._options.get(name, _OPTION_DEFAULTS[name])
        value = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, option))
        return value if name == "keep_count" else value * 10**9

    def _get(self, name: str) -> Any:
        try:
            return self._read_option(name)
        except OSError as e:
            raise os_error(self._types, e) from None

    def _set(self, name: str, value: int, positive: bool = True) -> None:
        if positive and value <= 0:
            raise _fail(self._types, "invalid-argument")
        self._options[name] = value
        if self._sock is not None:
            try:
                self._apply(self._sock, name, value)
            except OSError as e:
                raise os_error(self._types, e) from None

    def _check_address(self, address: Any, remote: bool) -> Tuple[Any, int, Tuple[Any, ...]]:
        """Validate an `ip-socket-address` for this socket, as WASI says: the family must
        match, an IPv4-mapped IPv6 address is refused (it would slip past the IPv6
        socket's family), and a remote address must be a real one with a port."""
        ip, port, sockaddr = to_host(address)
        if (ip.version == 6) != self.ipv6:
            raise _fail(self._types, "invalid-argument")
        if ip.version == 6 and ip.ipv4_mapped is not None:
            raise _fail(self._types, "invalid-argument")
        if remote and (ip.is_unspecified or port == 0):
            raise _fail(self._types, "invalid-argument")
        return ip, port, sockaddr

    def _bind(self, network: Network, local_address: Any) -> None:
        ip, port, sockaddr = self._check_address(local_address, remote=False)
        if not network.policy.may_bind(self.protocol, ip, port):
            raise _fail(self._types, "access-denied")
        self._policy = network.policy  # asked again before listening (`may_listen`)
        try:
            sock = self._make()
            if self.protocol == "tcp" and port != 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as wasmtime: rebind after TIME_WAIT
            sock.bind(sockaddr)
        except OSError as e:
            raise os_error(self._types, e) from None

    def local_address(self) -> Any:
        if self._sock is None or not self._bound():
            raise _fail(self._types, "invalid-state")
        try:
            return from_host(self._types, self._sock.getsockname())
        except OSError as e:
            raise os_error(self._types, e) from None

    def _bound(self) -> bool:
        raise NotImplementedError

    def address_family(self) -> Any:
        return family_of(self._types, self.ipv6)

    def receive_buffer_size(self) -> int:
        return self._get("recv_buf")

    def set_receive_buffer_size(self, value: int) -> None:
        self._set("recv_buf", value)

    def send_buffer_size(self) -> int:
        return self._get("send_buf")

    def set_send_buffer_size(self, value: int) -> None:
        self._set("send_buf", value)

    def _drop(self) -> None:
        if self._owned is not None:
            owned, self._owned = self._owned, None
            owned.release()


# -- TCP ------------------------------------------------------------------------------------------

class TcpSocket(_SocketBase):
    """`wasi:sockets/tcp.tcp-socket`."""

    def __init__(self, types: WitTypes, ipv6: bool) -> None:
        super().__init__(types, ipv6)
        self.state = "unbound"
        self._backlog = 128
        self._peer: Optional[Tuple[Any, ...]] = None  # kept: the kernel forgets it once the peer hangs up

    @classmethod
    def _accepted(cls, types: WitTypes, ipv6: bool, sock: socket.socket, peer: Tuple[Any, ...]) -> "TcpSocket":
        made = cls(types, ipv6)
        sock.setblocking(False)
        made._owned = made._own(sock)
        made.state = "connected"
        made._peer = peer
        return made

    def _bound(self) -> bool:
        return self.state not in ("unbound", "closed")

    def _streams(self) -> Tuple["TcpInputStream", "TcpOutputStream"]:
        assert self._owned is not None
        return (TcpInputStream(self._types, self._owned.share()), TcpOutputStream(self._types, self._owned.share()))

    # WIT methods
    def start_bind(self, network: Network, local_address: Any) -> None:
        if self.state != "unbound":
            raise _fail(self._types, "invalid-state")
        self._bind(network, local_address)
        self.state = "bind-started"

    def finish_bind(self) -> None:
        if self.state != "bind-started":
            raise _fail(self._types, "not-in-progress")
        self.state = "bound"

    def start_connect(self, network: Network, remote_address: Any) -> None:
        if self.state not in ("unbound", "bound"):
            raise _fail(self._types, "invalid-state")
        ip, port, sockaddr = self._check_address(remote_address, remote=True)
        if not network.policy.may_connect("tcp", ip, port):
            raise _fail(self._types, "access-denied")
        try:
            code = self._make().connect_ex(sockaddr)
        except OSError as e:
            self.state = "closed"
            raise os_error(self._types, e) from None
        if code not in (0, errno.EINPROGRESS):
            self.state = "closed"
            raise _fail(self._types, errno_code(code))
        self.state = "connecting"

    def finish_connect(self) -> Tuple["TcpInputStream", "TcpOutputStream"]:
        if self.state != "connecting":
            raise _fail(self._types, "not-in-progress")
        sock = self._sock
        assert sock is not None
        if not _selectable(sock, selectors.EVENT_WRITE):
            raise _fail(self._types, "would-block")
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.state = "closed"
            raise _fail(self._types, errno_code(code))
        self.state = "connected"
        try:
            self._peer = sock.getpeername()
        except OSError as e:
            self.state = "closed"
            raise os_error(self._types, e) from None
        return self._streams()

    def start_listen(self) -> None:
        if self.state != "bound":
            raise _fail(self._types, "invalid-state")
        try:
            host, port = self._sock.getsockname()[:2]  # type: ignore[union-attr]
            if not self._policy.may_listen("tcp", ipaddress.ip_address(host.split("%", 1)[0]), port):
                raise _fail(self._types, "access-denied")
            self._sock.listen(self._backlog)  # type: ignore[union-attr]
        except OSError as e:
            raise os_error(self._types, e) from None
        self.state = "listen-started"

    def finish_listen(self) -> None:
        if self.state != "listen-started":
            raise _fail(self._types, "not-in-progress")
        self.state = "listening"

    def accept(self) -> Tuple["TcpSocket", "TcpInputStream", "TcpOutputStream"]:
        if self.state != "listening":
            raise _fail(self._types, "invalid-state")
        try:
            conn, peer = self._sock.accept()  # type: ignore[union-attr]
        except BlockingIOError:
            raise _fail(self._types, "would-block") from None
        except OSError as e:
            raise os_error(self._types, e) from None
        client = TcpSocket._accepted(self._types, self.ipv6, conn, peer)
        return (client, *client._streams())

    def remote_address(self) -> Any:
        if self.state != "connected" or self._peer is None:
            raise _fail(self._types, "invalid-state")
        return from_host(self._types, self._peer)

    def is_listening(self) -> bool:
        return self.state == "listening"

    def set_listen_backlog_size(self, value: int) -> None:
        if value <= 0:
            raise _fail(self._types, "invalid-argument")
        if self.state in ("connecting", "connected"):
            raise _fail(self._types, "invalid-state")
        self._backlog = min(value, socket.SOMAXCONN)
        if self.state == "listening":
            try:
                self._sock.listen(self._backlog)  # type: ignore[union-attr]
            except OSError as e:
                raise os_error(self._types, e) from None

    def keep_alive_enabled(self) -> bool:
        return self._get("keep_alive")

    def set_keep_alive_enabled(self, value: bool) -> None:
        self._set("keep_alive", bool(value), positive=False)

    def keep_alive_idle_time(self) -> int:
        return self._get("keep_idle")

    def set_keep_alive_idle_time(self, value: int) -> None:
        self._set("keep_idle", value)

    def keep_alive_interval(self) -> int:
        return self._get("keep_interval")

    def set_keep_alive_interval(self, value: int) -> None:
        self._set("keep_interval", value)

    def keep_alive_count(self) -> int:
        return self._get("keep_count")

    def set_keep_alive_count(self, value: int) -> None:
        self._set("keep_count", value)

    def hop_limit(self) -> int:
        return self._get("hop_limit")

    def set_hop_limit(self, value: int) -> None:
        self._set("hop_limit", value)

    def subscribe(self) -> Pollable:
        return _FdPollable(self._poll_ready, self._wait_on)

    def _poll_ready(self) -> bool:
        sock = self._sock
        if self.state == "connecting" and sock is not None:
            return _selectable(sock, selectors.EVENT_WRITE)
        if self.state == "listening" and sock is not None:
            return _selectable(sock, selectors.EVENT_READ)
        return True

    def _wait_on(self) -> Optional[Tuple[int, int]]:
        sock = self._sock
        if sock is None:
            return None
        if self.state == "connecting":
            return sock.fileno(), selectors.EVENT_WRITE
        if self.state == "listening":
            return sock.fileno(), selectors.EVENT_READ
        return None

    def shutdown(self, shutdown_type: Any) -> None:
        if self.state != "connected":
            raise _fail(self._types, "invalid-state")
        how = {"RECEIVE": socket.SHUT_RD, "SEND": socket.SHUT_WR, "BOTH": socket.SHUT_RDWR}[shutdown_type.name]
        try:
            self._sock.shutdown(how)  # type: ignore[union-attr]
        except OSError as e:
            raise os_error(self._types, e) from None

    def __wasm_drop__(self) -> None:
        self._drop()

    def __repr__(self) -> str:
        return f"<TcpSocket {'ipv6' if self.ipv6 else 'ipv4'} {self.state}>"


class TcpInputStream(InputStream):
    """The receiving half of a connected TCP socket."""

    def __init__(self, types: WitTypes, owned: _Owned) -> None:
        bind_types(self, types)
        self._owned: Optional[_Owned] = owned

    def read_available(self, n: int) -> bytes:
        if self._owned is None:
            raise StreamClosed
        try:
            data = self._owned.sock.recv(n)
        except BlockingIOError:
            return b""
        except OSError as e:
            raise StreamFailed(IoError(f"{e.strerror or e}", errno_code(e.errno))) from None
        if not data:
            raise StreamClosed
        return data

    def subscribe(self) -> Pollable:
        if self._owned is None:
            return ReadyPollable()
        sock = self._owned.sock
        return _FdPollable(lambda: _selectable(sock, selectors.EVENT_READ), lambda: _waitable(sock, selectors.EVENT_READ))

    def __wasm_drop__(self) -> None:
        if self._owned is not None:
            owned, self._owned = self._owned, None
            owned.release()


class TcpOutputStream(OutputStream):
    """The sending half of a connected TCP socket: writes are buffered (up to 64 KiB) and
    pushed into the socket whenever it takes them; flushed means all of it was sent."""

    def __init__(self, types: WitTypes, owned: _Owned) -> None:
        bind_types(self, types)
        self._owned: Optional[_Owned] = owned
        self._pending = bytearray()
        self._error: Optional[StreamFailed] = None

    def _push(self) -> None:
        if self._error is not None:
            raise self._error
        if self._owned is None:
            raise StreamClosed
        while self._pending:
            try:
                sent = self._owned.sock.send(self._pending)
            except BlockingIOError:
                return
            except OSError as e:
                self._error = StreamFailed(IoError(f"{e.strerror or e}", errno_code(e.errno)))
                raise self._error from None
            del self._pending[:sent]

    def write_capacity(self) -> int:
        self._push()
        return _OUT_BUFFER - len(self._pending)

    def write_bytes(self, data: bytes) -> None:
        self._pending += data
        self._push()

    def flush_bytes(self) -> None:
        self._push()

    def flushed(self) -> bool:
        self._push()
        return not self._pending

    def subscribe(self) -> Pollable:
        if self._owned is None:
            return ReadyPollable()
        sock = self._owned.sock
        return _FdPollable(self._writable, lambda: _waitable(sock, selectors.EVENT_WRITE))

    def __wasm_drop__(self) -> None:
        if self._owned is not None:
            try:
                self._push()  # what the guest wrote and did not wait for still goes out if it can
            except (StreamClosed, StreamFailed):
                pass
            owned, self._owned = self._owned, None
            owned.release()


# -- UDP ------------------------------------------------------------------------------------------

class UdpSocket(_SocketBase):
    """`wasi:sockets/udp.udp-socket`. A remote address given to `stream` is the socket's
    peer in the kernel (`_udp.associate`): datagrams go there and only datagrams from there
    are received; `stream(none)` dissolves that association (`_udp.dissociate`), and the
    socket sends to and receives from any granted address again, from the same port."""

    protocol = "udp"
    sock_type = socket.SOCK_DGRAM

    def __init__(self, types: WitTypes, ipv6: bool) -> None:
        super().__init__(types, ipv6)
        self.state = "unbound"
        self.remote: Optional[Tuple[Any, int, Tuple[Any, ...]]] = None
        self.policy: Optional[NetPolicy] = None

    def _bound(self) -> bool:
        return self.state == "bound"

    def start_bind(self, network: Network, local_address: Any) -> None:
        if self.state != "unbound":
            raise _fail(self._types, "invalid-state")
        self._bind(network, local_address)
        self.policy = network.policy
        self.state = "bind-started"

    def finish_bind(self) -> None:
        if self.state != "bind-started":
            raise _fail(self._types, "not-in-progress")
        self.state = "bound"

    def stream(self, remote_address: Any) -> Tuple["IncomingDatagramStream", "OutgoingDatagramStream"]:
        if self.state != "bound" or self._owned is None or self.policy is None:
            raise _fail(self._types, "invalid-state")
        sock = self._owned.sock
        try:
            if remote_address is not None:
                ip, port, sockaddr = self._check_address(remote_address, remote=True)
                if not self.policy.may_connect("udp", ip, port):
                    raise _fail(self._types, "access-denied")
                associate(sock, sockaddr, connected=self.remote is not None)
                self.remote = (ip, port, sockaddr)
            elif self.remote is not None:
                dissociate(sock)
                self.remote = None
        except OSError as e:
            raise os_error(self._types, e) from None
        return (IncomingDatagramStream(self, self._owned.share()), OutgoingDatagramStream(self, self._owned.share()))

    def remote_address(self) -> Any:
        if self.remote is None:
            raise _fail(self._types, "invalid-state")
        return from_host(self._types, self.remote[2])

    def unicast_hop_limit(self) -> int:
        return self._get("hop_limit")

    def set_unicast_hop_limit(self, value: int) -> None:
        self._set("hop_limit", value)

    def subscribe(self) -> Pollable:
        return ReadyPollable()

    def __wasm_drop__(self) -> None:
        self._drop()

    def __repr__(self) -> str:
        return f"<UdpSocket {'ipv6' if self.ipv6 else 'ipv4'} {self.state}>"


class IncomingDatagramStream:
    """`wasi:sockets/udp.incoming-datagram-stream`."""

    def __init__(self, owner: UdpSocket, owned: _Owned) -> None:
        self._types = owner._types
        self._remote = owner.remote
        self._owned: Optional[_Owned] = owned

    def receive(self, max_results: int) -> List[Any]:
        if self._owned is None:
            raise _fail(self._types, "invalid-state")
        record = self._types.get("wasi:sockets/udp#incoming-datagram")
        out: List[Any] = []
        while len(out) < max_results:
            try:
                data, sender = self._owned.sock.recvfrom(_MAX_DATAGRAM)
            except BlockingIOError:
                break
            except OSError as e:
                if out:
                    break
                raise os_error(self._types, e) from None
            if self._remote is not None and not from_peer(sender, *self._remote[:2]):
                continue  # queued before the association was made, from another peer: drop it
            out.append(record(data=data, remote_address=from_host(self._types, sender)))
        return out

    def subscribe(self) -> Pollable:
        if self._owned is None:
            return ReadyPollable()
        sock = self._owned.sock
        return _FdPollable(lambda: _selectable(sock, selectors.EVENT_READ), lambda: _waitable(sock, selectors.EVENT_READ))

    def __wasm_drop__(self) -> None:
        if self._owned is not None:
            owned, self._owned = self._owned, None
            owned.release()


class OutgoingDatagramStream:
    """`wasi:sockets/udp.outgoing-datagram-stream`: every destination is checked against
    the grants before the datagram is sent."""

    def __init__(self, owner: UdpSocket, owned: _Owned) -> None:
        self._types = owner._types
        self._remote = owner.remote
        self._ipv6 = owner.ipv6
        self._policy = owner.policy
        self._owned: Optional[_Owned] = owned
        self._permits = 0

    def check_send(self) -> int:
        if self._owned is None or self._owned.sock.fileno() < 0:  # dropped, or closed with its instance
            raise _fail(self._types, "invalid-state")
        self._permits = _SEND_PERMITS if _selectable(self._owned.sock, selectors.EVENT_WRITE) else 0
        return self._permits

    def send(self, datagrams: List[Any]) -> int:
        if self._owned is None:
            raise _fail(self._types, "invalid-state")
        if len(datagrams) > self._permits:
            raise _fail(self._types, "invalid-argument")  # more than check-send allowed
        sent = 0
        for datagram in datagrams:
            try:
                self._send_one(datagram)
            except Err:
                if sent:
                    break
                raise
            except BlockingIOError:
                break
            except OSError as e:
                if sent:
                    break
                raise os_error(self._types, e) from None
            sent += 1
        self._permits -= sent
        return sent

    def _send_one(self, datagram: Any) -> None:
        if datagram.remote_address is not None:
            ip, port, sockaddr = to_host(datagram.remote_address)
            if (self._remote is not None and (ip, port) != self._remote[:2]) or (ip.version == 6) != self._ipv6 \
                    or (ip.version == 6 and ip.ipv4_mapped is not None) or ip.is_unspecified or port == 0:
                raise _fail(self._types, "invalid-argument")
        elif self._remote is not None:
            ip, port, sockaddr = self._remote
        else:
            raise _fail(self._types, "invalid-argument")
        if self._policy is None or not self._policy.may_connect("udp", ip, port):
            raise _fail(self._types, "access-denied")
        if len(datagram.data) > _MAX_DATAGRAM:
            raise _fail(self._types, "datagram-too-large")
        sock = self._owned.sock  # type: ignore[union-attr]
        if self._remote is not None:
            sock.send(bytes(datagram.data))  # to the peer (BSDs refuse a sendto on a connected socket)
        else:
            sock.sendto(bytes(datagram.data), sockaddr)

    def subscribe(self) -> Pollable:
        if self._owned is None:
            return ReadyPollable()
        sock = self._owned.sock
        return _FdPollable(lambda: _selectable(sock, selectors.EVENT_WRITE), lambda: _waitable(sock, selectors.EVENT_WRITE))

    def __wasm_drop__(self) -> None:
        if self._owned is not None:
            owned, self._owned = self._owned, None
            owned.release()


# -- name lookup ------------------------------------------------------------------------------------

class ResolveAddressStream:
    """`wasi:sockets/ip-name-lookup.resolve-address-stream`: the lookup runs on a worker
    thread (getaddrinfo blocks); `subscribe` is ready when it has finished."""

    def __init__(self, types: WitTypes, policy: NetPolicy, name: str) -> None:
        self._types = types
        self._done = threading.Event()
        self._addresses: List[Any] = []
        self._error: Optional[str] = None
        threading.Thread(target=self._lookup, args=(policy, name), name="wasi name lookup", daemon=True).start()

    def _lookup(self, policy: NetPolicy, name: str) -> None:
        try:
            self._addresses, self._error = lookup(policy, name)
        finally:
            self._done.set()

    def resolve_next_address(self) -> Optional[Any]:
        if not self._done.is_set():
            raise _fail(self._types, "would-block")
        if self._error is not None:
            raise _fail(self._types, self._error)
        if not self._addresses:
            return None
        return ip_from_host(self._types, self._addresses.pop(0))

    def subscribe(self) -> Pollable:
        return EventPollable(self._done)


def lookup(policy: NetPolicy, name: str) -> Tuple[List[Any], Optional[str]]:
    """Resolve `name` (blocking: getaddrinfo) and tell `policy` what it found: the distinct
    addresses, or the WASI error name of the failure. 0.2's and 0.3's lookups share it."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        seen: List[Any] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if ip not in seen:
                seen.append(ip)
    except socket.gaierror as e:
        return [], {socket.EAI_NONAME: "name-unresolvable", socket.EAI_AGAIN: "temporary-resolver-failure"
                    }.get(e.errno or 0, "permanent-resolver-failure")
    except (OSError, UnicodeError, ValueError):
        return [], "permanent-resolver-failure"
    policy.resolved(name, seen)
    return seen, None


def _valid_name(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    labels = name.rstrip(".").split(".")
    return 0 < len(name) <= 253 and all(
        0 < len(label) <= 63 and label.isascii() and label.replace("-", "").replace("_", "").isalnum()
        for label in labels)


# -- the interfaces ------------------------------------------------------------------------------

class Sockets:
    """The `wasi:sockets` interfaces of one instance: one `Network` carrying its grants.

    `providers()` gives the object for each interface (by version-less name), each with
    the interface's functions in snake_case and its resources as PascalCase classes."""

    def __init__(self, types: WitTypes, policy: NetPolicy) -> None:
        self.types = types
        self.policy = policy
        self.network = Network(policy)

    # wasi:sockets/network
    def network_error_code(self, err: Any) -> Optional[Any]:
        """The sockets error-code behind a `wasi:io/error.error`, when it has one."""
        code = getattr(err, "code", None)
        if isinstance(code, int):
            code = errno_code(code)
        if not isinstance(code, str):
            return None
        try:
            return error_code(self.types, code)
        except KeyError:
            return None

    # wasi:sockets/instance-network
    def instance_network(self) -> Network:
        return self.network

    # wasi:sockets/tcp-create-socket, udp-create-socket
    def create_tcp_socket(self, address_family: Any) -> TcpSocket:
        return TcpSocket(self.types, is_ipv6_family(address_family))

    def create_udp_socket(self, address_family: Any) -> UdpSocket:
        return UdpSocket(self.types, is_ipv6_family(address_family))

    # wasi:sockets/ip-name-lookup
    def resolve_addresses(self, network: Network, name: str) -> ResolveAddressStream:
        if not _valid_name(name):
            raise _fail(self.types, "invalid-argument")
        if not network.policy.may_resolve(name):
            raise _fail(self.types, "access-denied")
        return ResolveAddressStream(self.types, network.policy, name)

    def providers(self) -> Dict[str, Any]:
        from types import SimpleNamespace

        return {
            NETWORK: SimpleNamespace(Network=Network, network_error_code=self.network_error_code),
            "wasi:sockets/instance-network": SimpleNamespace(instance_network=self.instance_network),
            "wasi:sockets/tcp": SimpleNamespace(TcpSocket=TcpSocket),
            "wasi:sockets/tcp-create-socket": SimpleNamespace(create_tcp_socket=self.create_tcp_socket),
            "wasi:sockets/udp": SimpleNamespace(UdpSocket=UdpSocket, IncomingDatagramStream=IncomingDatagramStream,
                                                OutgoingDatagramStream=OutgoingDatagramStream),
            "wasi:sockets/udp-create-socket": SimpleNamespace(create_udp_socket=self.create_udp_socket),
            "wasi:sockets/ip-name-lookup": SimpleNamespace(resolve_addresses=self.resolve_addresses,
                                                           ResolveAddressStream=ResolveAddressStream),
        }


def sockets_providers(types: WitTypes, grants: Any) -> Dict[str, Any]:
    """The `wasi:sockets/*` providers for one instance with `grants` (`Net` entries)."""
    return Sockets(types, NetPolicy(grants)).providers()


# Every wasi:sockets interface of an instance shares one `Sockets`: its network, grants and lookups.
register_shared([f"wasi:sockets/{name}" for name in ("network", "instance-network", "tcp", "tcp-create-socket",
                                                     "udp", "udp-create-socket", "ip-name-lookup")],
                lambda ctx: sockets_providers(ctx.types, ctx.wasi.network))
