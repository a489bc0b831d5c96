"""`wasi:sockets` 0.3 (types, ip-name-lookup) on asyncio, within `Wasi(network=[Net(...)])`.

0.3 drops 0.2's `network` capability and its start/finish pairs: a `tcp-socket` binds at
once, `connect` is an `async func`, `listen` gives a `stream<tcp-socket>` of accepted
connections, and data moves through `stream<u8>`s (`send` takes the guest's, `receive`
hands one out, each with a future of how it ended); UDP sends and receives are `async
func`s. The grants are the same and are asked the same way: the instance's one
`NetPolicy` (`_net`) decides every bind, connect, datagram destination and name lookup
*before* a host socket exists, so what is refused never reaches the host's network
stack, not even as an unbound socket.

The sockets are 0.2's (`_sockets._SocketBase`: lazily made non-blocking host sockets,
address checks, options, the grant check on bind), reused through `_Types3`, which shows
0.3's `wasi:sockets/types` classes under 0.2's `wasi:sockets/network` names and turns 0.2's
error names into 0.3's `error-code` variant (a name 0.3 lacks becomes `other(name)`).
Waiting is the event loop's: `sock_connect`, `sock_accept`, `sock_recv`, `sock_sendall`,
and reader/writer callbacks for datagrams, so a waiting guest task lets the rest run.

A UDP socket's `connect` and `disconnect` make and dissolve its peer association in the
kernel, as 0.2's `stream(remote-address)` does (`_udp`): a disconnected socket keeps its
local port and sends to and receives from any granted address again.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import types as _types
from typing import Any, List, Optional, Tuple

from ..._values import Err, Ok
from ._context import WasiContext, register_interface
from ._io import WitTypes
from ._net import NETWORK, NetPolicy, from_host, ip_from_host, is_ipv6_family, os_error
from .._async import on_loop
from ._p3_streams import Pumped, in_thread, outcome_future, settle
from ._sockets import Network, TcpSocket, _Owned, _SocketBase, _valid_name, lookup
from ._udp import associate, dissociate, from_peer

__all__ = ["TcpSocket3", "UdpSocket3", "resolve_addresses"]

P3 = "0.3"
TYPES = "wasi:sockets/types"
LOOKUP = "wasi:sockets/ip-name-lookup"
_CHUNK = 1 << 16
_MAX_DATAGRAM = 65535


def _ns(**members: Any) -> Any:
    return _types.SimpleNamespace(**members)


class _ErrorCodes:
    """0.2's `error-code` enum lookup (`codes["ACCESS_DENIED"]`) giving 0.3 variant values."""

    def __init__(self, types: WitTypes, key: str) -> None:
        self._types, self._key = types, key

    def __getitem__(self, shouty: str) -> Any:
        name = shouty.lower().replace("_", "-")
        try:
            return self._types.case(self._key, name)()
        except KeyError:
            return self._types.case(self._key, "other")(name)


class _Types3:
    """0.3's `wasi:sockets/types` classes under 0.2's `wasi:sockets/network` names."""

    def __init__(self, types: WitTypes) -> None:
        self._types = types

    @property
    def held(self) -> Any:  # the sockets made with this view are the instance's (`_held`)
        return self._types.held

    def _key(self, name: str) -> str:
        return TYPES + name[len(NETWORK):] if name.startswith(NETWORK + "#") else name

    def get(self, name: str) -> Any:
        if name == f"{NETWORK}#error-code":
            return _ErrorCodes(self._types, f"{TYPES}#error-code")
        return self._types.get(self._key(name))

    def case(self, name: str, case: str) -> type:
        return self._types.case(self._key(name), case)

    def __contains__(self, name: str) -> bool:
        return self._key(name) in self._types


def _fail(view: Any, name: str) -> Err:
    return Err(view.get(f"{NETWORK}#error-code")[name.replace("-", "_").upper()])


async def _ready(sock: socket.socket, write: bool) -> None:
    """Wait until `sock` is readable (or writable) on the event loop."""
    loop = asyncio.get_running_loop()
    fut: "asyncio.Future[None]" = loop.create_future()
    fd = sock.fileno()
    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await fut
    finally:
        if sock.fileno() == fd:  # closed meanwhile (`_close_watched`): the number may be another's now
            (loop.remove_writer if write else loop.remove_reader)(fd)


def _close_watched(loop: Optional[asyncio.AbstractEventLoop], sock: socket.socket) -> None:
    """Close `sock`, which `loop` may be waiting on (a pending accept, recv, send): take it
    off the loop's selector first. Closed with the wait still registered, the fd number
    could be reused by a new socket before the loop forgets it, and that socket's waits
    would never wake. Done on the loop's own thread when it runs elsewhere."""
    def unwatch_and_close() -> None:
        fd = sock.fileno()
        if fd >= 0 and loop is not None and not loop.is_closed():
            loop.remove_reader(fd)
            loop.remove_writer(fd)
        sock.close()

    if loop is None or not loop.is_running() or not on_loop(loop, unwatch_and_close):
        unwatch_and_close()  # nobody is waiting on it now


class _Socket3(_SocketBase):
    """What 0.3's TCP and UDP sockets share: the instance's grants, the state, options."""

    policy: NetPolicy  # set on the per-instance subclass (`_bound`)
    view: _Types3

    def __init__(self, ipv6: bool) -> None:
        super().__init__(self.view, ipv6)  # type: ignore[arg-type]
        self.state = "unbound"
        self._peer: Optional[Tuple[Any, ...]] = None

    @classmethod
    def create(cls, address_family: Any) -> "_Socket3":
        return cls(is_ipv6_family(address_family))

    def _bound(self) -> bool:
        return self.state not in ("unbound", "closed")

    def bind(self, local_address: Any) -> None:
        if self.state != "unbound":
            raise _fail(self._types, "invalid-state")
        self._bind(Network(self.policy), local_address)
        self.state = "bound"

    def _bind_ephemeral(self) -> None:
        """The implicit bind before a listen or a datagram sent from an unbound socket."""
        any_ip = ipaddress.ip_address("::" if self.ipv6 else "0.0.0.0")
        if not self.policy.may_bind(self.protocol, any_ip, 0):
            raise _fail(self._types, "access-denied")
        try:
            self._make().bind((str(any_ip), 0))
        except OSError as e:
            raise os_error(self._types, e) from None  # type: ignore[arg-type]
        self.state = "bound"

    def get_local_address(self) -> Any:
        return self.local_address()

    def get_remote_address(self) -> Any:
        if self._peer is None:
            raise _fail(self._types, "invalid-state")
        return from_host(self._types, self._peer)  # type: ignore[arg-type]

    def get_address_family(self) -> Any:
        return self.address_family()

    def _own(self, sock: socket.socket) -> Any:
        """0.3's sockets are waited on by the event loop: closing one unregisters it there."""
        try:
            loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        return _Owned(sock, self._held, functools.partial(_close_watched, loop, sock))

    def get_receive_buffer_size(self) -> int:
        return self._get("recv_buf")

    def get_send_buffer_size(self) -> int:
        return self._get("send_buf")

    def __wasm_drop__(self) -> None:
        self.state = "closed"
        self._drop()


class TcpSocket3(_Socket3):
    """`wasi:sockets/types.tcp-socket` of 0.3."""

    _backlog = 128

    async def connect(self, remote_address: Any) -> None:
        if self.state not in ("unbound", "bound"):
            raise _fail(self._types, "invalid-state")
        ip, port, sockaddr = self._check_address(remote_address, remote=True)
        if not self.policy.may_connect("tcp", ip, port):
            raise _fail(self._types, "access-denied")
        self.state = "connecting"
        try:
            sock = self._make()
            await asyncio.get_running_loop().sock_connect(sock, sockaddr)
            self._peer = sock.getpeername()
        except OSError as e:
            self.state = "closed"
            raise os_error(self._types, e) from None  # type: ignore[arg-type]
        self.state = "connected"

    def listen(self) -> Any:
        if self.state == "unbound":
            self._bind_ephemeral()
        if self.state != "bound":
            raise _fail(self._types, "invalid-state")
        sock = self._sock
        assert sock is not None
        try:
            host, port = sock.getsockname()[:2]
            if not self.policy.may_listen("tcp", ipaddress.ip_address(host.split("%", 1)[0]), port):
                raise _fail(self._types, "access-denied")
            sock.listen(self._backlog)
        except OSError as e:
            raise os_error(self._types, e) from None  # type: ignore[arg-type]
        self.state = "listening"
        owner = type(self)

        async def accept(out: Pumped) -> None:
            loop = asyncio.get_running_loop()
            while not out.gone and self.state == "listening":
                try:
                    conn, peer = await loop.sock_accept(sock)
                except OSError:
                    return
                made = owner(self.ipv6)
                conn.setblocking(False)
                made._owned = made._own(conn)
                made.state, made._peer = "connected", peer
                await out.write([made])

        return Pumped(accept)

    def send(self, data: Any) -> Any:
        async def copy() -> Any:
            sock = self._sock
            if self.state != "connected" or sock is None:
                data.close()
                return _fail(self._types, "invalid-state")
            loop = asyncio.get_running_loop()
            try:
                async for chunk in data:
                    await loop.sock_sendall(sock, chunk)
                sock.shutdown(socket.SHUT_WR)  # the guest's stream ended: so does our sending
            except OSError as e:
                data.close()
                return os_error(self._types, e)  # type: ignore[arg-type]
            return Ok(None)

        return copy()

    def receive(self) -> Tuple[Any, Any]:
        done = outcome_future()

        async def fill(out: Pumped) -> None:
            try:
                sock = self._sock
                if self.state != "connected" or sock is None:
                    raise _fail(self._types, "invalid-state")
                loop = asyncio.get_running_loop()
                while not out.gone:
                    chunk = await loop.sock_recv(sock, _CHUNK)
                    if not chunk:
                        break
                    await out.write(chunk)
            except Err as e:
                settle(done, e)
            except OSError as e:
                settle(done, os_error(self._types, e))  # type: ignore[arg-type]
            finally:
                settle(done, Ok(None))

        return Pumped(fill), done

    def get_is_listening(self) -> bool:
        return self.state == "listening"

    # 0.2's bodies under 0.3's names (the options live in `_SocketBase`)
    set_listen_backlog_size = TcpSocket.set_listen_backlog_size
    get_keep_alive_enabled = TcpSocket.keep_alive_enabled
    set_keep_alive_enabled = TcpSocket.set_keep_alive_enabled
    get_keep_alive_idle_time = TcpSocket.keep_alive_idle_time
    set_keep_alive_idle_time = TcpSocket.set_keep_alive_idle_time
    get_keep_alive_interval = TcpSocket.keep_alive_interval
    set_keep_alive_interval = TcpSocket.set_keep_alive_interval
    get_keep_alive_count = TcpSocket.keep_alive_count
    set_keep_alive_count = TcpSocket.set_keep_alive_count
    get_hop_limit = TcpSocket.hop_limit
    set_hop_limit = TcpSocket.set_hop_limit

    def __repr__(self) -> str:
        return f"<TcpSocket (wasi 0.3) {'ipv6' if self.ipv6 else 'ipv4'} {self.state}>"


class UdpSocket3(_Socket3):
    """`wasi:sockets/types.udp-socket` of 0.3."""

    protocol = "udp"
    sock_type = socket.SOCK_DGRAM

    def connect(self, remote_address: Any) -> None:
        if self.state == "closed":
            raise _fail(self._types, "invalid-state")
        ip, port, sockaddr = self._check_address(remote_address, remote=True)
        if not self.policy.may_connect("udp", ip, port):
            raise _fail(self._types, "access-denied")
        if self.state == "unbound":
            self._bind_ephemeral()
        try:
            associate(self._make(), sockaddr, connected=self._peer is not None)
        except OSError as e:
            raise os_error(self._types, e) from None  # type: ignore[arg-type]
        self._peer = sockaddr

    def disconnect(self) -> None:
        sock = self._sock
        if self._peer is None or sock is None or self.state == "closed":
            raise _fail(self._types, "invalid-state")
        try:
            dissociate(sock)
        except OSError as e:
            raise os_error(self._types, e) from None  # type: ignore[arg-type]
        self._peer = None

    async def send(self, data: bytes, remote_address: Optional[Any]) -> None:
        if len(data) > _MAX_DATAGRAM:
            raise _fail(self._types, "datagram-too-large")
        if remote_address is None:
            if self._peer is None:
                raise _fail(self._types, "invalid-argument")
            target = None
        else:
            ip, port, target = self._check_address(remote_address, remote=True)
            if self._peer is not None and target != self._peer:
                raise _fail(self._types, "invalid-argument")
            if not self.policy.may_connect("udp", ip, port):
                raise _fail(self._types, "access-denied")
            if self._peer is not None:
                target = None  # the peer's: BSDs refuse a sendto on a connected socket
        if self.state == "unbound":
            self._bind_ephemeral()
        sock = self._make()
        while True:
            try:
                sock.send(data) if target is None else sock.sendto(data, target)
                return
            except BlockingIOError:
                await _ready(sock, write=True)
            except OSError as e:
                raise os_error(self._types, e) from None  # type: ignore[arg-type]

    async def receive(self) -> Tuple[bytes, Any]:
        sock = self._sock
        if not self._bound() or sock is None:
            raise _fail(self._types, "invalid-state")
        while True:
            try:
                data, peer = sock.recvfrom(_MAX_DATAGRAM)
                if self._peer is not None and not from_peer(peer, ipaddress.ip_address(self._peer[0]),
                                                            self._peer[1]):
                    continue  # queued before the association was made, from another peer
                return data, from_host(self._types, peer)  # type: ignore[arg-type]
            except BlockingIOError:
                await _ready(sock, write=False)
            except OSError as e:
                raise os_error(self._types, e) from None  # type: ignore[arg-type]

    def get_unicast_hop_limit(self) -> int:
        return self._get("hop_limit")

    def set_unicast_hop_limit(self, value: int) -> None:
        self._set("hop_limit", value)

    def __repr__(self) -> str:
        return f"<UdpSocket (wasi 0.3) {'ipv6' if self.ipv6 else 'ipv4'} {self.state}>"


# -- name lookup ---------------------------------------------------------------------------------

async def resolve_addresses(types: WitTypes, policy: NetPolicy, name: str) -> List[Any]:
    """`ip-name-lookup.resolve-addresses`: only names (or address literals) a grant covers;
    the lookup runs on a daemon thread (getaddrinfo blocks)."""
    codes = _ErrorCodes(types, f"{LOOKUP}#error-code")
    if not _valid_name(name):
        raise Err(codes["INVALID_ARGUMENT"])
    if not policy.may_resolve(name):
        raise Err(codes["ACCESS_DENIED"])
    found, error = await in_thread(lambda: lookup(policy, name), "wasi name lookup")
    if error is not None:
        raise Err(codes[error.replace("-", "_").upper()])
    view = _Types3(types)
    return [ip_from_host(view, ip) for ip in found]  # type: ignore[arg-type]


# -- registration ----------------------------------------------------------------------------------

def _policy(ctx: WasiContext) -> NetPolicy:
    """The instance's one policy: its grants and the names its lookups resolved."""
    found = ctx.__dict__.get("_p3_net_policy")
    if found is None:
        found = ctx.__dict__["_p3_net_policy"] = NetPolicy(ctx.wasi.network)
    return found


def _types_provider(ctx: WasiContext, iface: Any) -> Any:
    attrs = {"policy": _policy(ctx), "view": _Types3(ctx.types_p3)}
    return _ns(TcpSocket=type("TcpSocket", (TcpSocket3,), dict(attrs)),
               UdpSocket=type("UdpSocket", (UdpSocket3,), dict(attrs)))


def _lookup_provider(ctx: WasiContext, iface: Any) -> Any:
    policy = _policy(ctx)
    return _ns(resolve_addresses=lambda name: resolve_addresses(ctx.types_p3, policy, name))


register_interface(TYPES, _types_provider, P3)
register_interface(LOOKUP, _lookup_provider, P3)
