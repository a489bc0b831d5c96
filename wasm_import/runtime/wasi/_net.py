"""What `wasi:sockets` and `wasi:http` share: grant checks, WIT address values, errno mapping.

A guest's network reach is decided here and nowhere else. `NetPolicy` holds an
instance's `Net` grants and the names the guest has looked up through `ip-name-lookup`;
every connect, bind, datagram sent and name looked up asks it first, before any socket
exists on the host, so what is refused never reaches the host's network stack.

Addresses cross the WIT boundary as `ip-socket-address` variants (`IpSocketAddress_Ipv4(
Ipv4SocketAddress(port, (127, 0, 0, 1)))`); `to_host` / `from_host` convert between them
and the `(host, port[, flowinfo, scope_id])` tuples of Python's `socket` module, using the
classes of the interface version the guest imported (`WitTypes`).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from typing import Any, Dict, Iterable, Optional, Set, Tuple

from ..._values import Err
from ..._wasi import Net
from ._io import WitTypes

__all__ = ["register_shared", "NetPolicy", "IpAddress", "error_code", "errno_code", "to_host", "from_host", "ip_from_host",
           "family_of", "is_ipv6_family", "NETWORK"]

NETWORK = "wasi:sockets/network"
IpAddress = Any  # ipaddress.IPv4Address | ipaddress.IPv6Address

# errno -> wasi:sockets/network error-code (kebab-case)
_ERRNO: Dict[int, str] = {
    errno.EACCES: "access-denied", errno.EPERM: "access-denied",
    errno.EADDRINUSE: "address-in-use", errno.EADDRNOTAVAIL: "address-not-bindable",
    errno.ECONNREFUSED: "connection-refused", errno.ECONNRESET: "connection-reset",
    errno.EPIPE: "connection-reset", errno.ECONNABORTED: "connection-aborted",
    errno.ENETUNREACH: "remote-unreachable", errno.EHOSTUNREACH: "remote-unreachable",
    errno.ENETDOWN: "remote-unreachable", errno.ETIMEDOUT: "timeout",
    errno.EINVAL: "invalid-argument", errno.EAFNOSUPPORT: "not-supported",
    errno.EOPNOTSUPP: "not-supported", errno.EPROTONOSUPPORT: "not-supported",
    errno.EMSGSIZE: "datagram-too-large", errno.ENOMEM: "out-of-memory", errno.ENOBUFS: "out-of-memory",
    errno.EMFILE: "new-socket-limit", errno.ENFILE: "new-socket-limit",
    errno.EAGAIN: "would-block", errno.EALREADY: "concurrency-conflict",
    errno.EISCONN: "invalid-state", errno.ENOTCONN: "invalid-state",
    errno.EBADF: "invalid-state",  # the host socket is closed: its instance was closed under the guest
}


def errno_code(number: Optional[int]) -> str:
    """The WASI error-code name of an errno (`unknown` when there is none)."""
    return _ERRNO.get(number or 0, "unknown")


def error_code(types: WitTypes, name: str) -> Any:
    """The `error-code` enum member `name` (kebab-case) of the guest's `wasi:sockets/network`."""
    cls = types.get(f"{NETWORK}#error-code")
    return cls[name.replace("-", "_").upper()]


def os_error(types: WitTypes, e: OSError) -> Err:
    return Err(error_code(types, errno_code(e.errno)))


# -- addresses --------------------------------------------------------------------------------

def is_ipv6_family(family: Any) -> bool:
    """Is an `ip-address-family` enum member `ipv6`?"""
    return family.name == "IPV6"


def family_of(types: WitTypes, ipv6: bool) -> Any:
    return types.get(f"{NETWORK}#ip-address-family")["IPV6" if ipv6 else "IPV4"]


def to_host(address: Any) -> Tuple[IpAddress, int, Tuple[Any, ...]]:
    """An `ip-socket-address` -> (ip, port, the tuple `socket.connect` takes)."""
    inner = address.value
    ip: IpAddress
    if hasattr(inner, "flow_info"):  # ipv6-socket-address
        ip = ipaddress.IPv6Address(b"".join(int(x).to_bytes(2, "big") for x in inner.address))
        return ip, inner.port, (str(ip), inner.port, inner.flow_info, inner.scope_id)
    ip = ipaddress.IPv4Address(bytes(inner.address))
    return ip, inner.port, (str(ip), inner.port)


def from_host(types: WitTypes, sockaddr: Tuple[Any, ...]) -> Any:
    """A `socket` module address tuple -> an `ip-socket-address`."""
    ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
    if ip.version == 6:
        record = types.get(f"{NETWORK}#ipv6-socket-address")(
            port=sockaddr[1], flow_info=sockaddr[2] if len(sockaddr) > 2 else 0,
            address=_v6_tuple(ip), scope_id=sockaddr[3] if len(sockaddr) > 3 else 0)
        return types.case(f"{NETWORK}#ip-socket-address", "ipv6")(record)
    record = types.get(f"{NETWORK}#ipv4-socket-address")(port=sockaddr[1], address=tuple(ip.packed))
    return types.case(f"{NETWORK}#ip-socket-address", "ipv4")(record)


def ip_from_host(types: WitTypes, ip: IpAddress) -> Any:
    """An address -> an `ip-address` variant."""
    if ip.version == 6:
        return types.case(f"{NETWORK}#ip-address", "ipv6")(_v6_tuple(ip))
    return types.case(f"{NETWORK}#ip-address", "ipv4")(tuple(ip.packed))


def _v6_tuple(ip: Any) -> Tuple[int, ...]:
    packed = ip.packed
    return tuple(int.from_bytes(packed[i:i + 2], "big") for i in range(0, 16, 2))


# -- the policy ---------------------------------------------------------------------------------

class NetPolicy:
    """An instance's `wasi:sockets` grants, asked before anything touches the network.

    - `may_connect("tcp", ip, port)`: a TCP connect or a UDP datagram sent to ip:port;
    - `may_bind("tcp", ip, port)`: binding a local address; an ephemeral one (port 0)
      comes with any outgoing grant of that protocol (a socket needs one to send from);
    - `may_listen("tcp", ip, port)`: listening on the bound local address (a bind grant only);
    - `may_resolve(name)`: an `ip-name-lookup` of a name a grant spells, or of an address
      literal a grant covers. The addresses such a lookup returns are remembered, and a
      grant naming the host then covers them.
    """

    def __init__(self, grants: Iterable[Net]) -> None:
        self.grants = tuple(grants)
        self._resolved: Dict[str, Set[Any]] = {}
        self._lock = threading.Lock()

    def _covers(self, grant: Net, ip: Any) -> bool:
        network = grant.network
        if network is not None:
            return ip in network if network.version == ip.version else False
        with self._lock:
            return ip in self._resolved.get(grant.name or "", ())

    def _allowed(self, protocol: str, bind: bool, ip: Any, port: int) -> bool:
        return any(g.protocol == protocol and g.bind == bind and (g.port is None or g.port == port)
                   and self._covers(g, ip) for g in self.grants)

    def may_connect(self, protocol: str, ip: Any, port: int) -> bool:
        return self._allowed(protocol, False, ip, port)

    def may_bind(self, protocol: str, ip: Any, port: int) -> bool:
        if self._allowed(protocol, True, ip, port):
            return True
        ephemeral_ok = ip.is_unspecified or ip.is_loopback
        return port == 0 and ephemeral_ok and any(g.protocol == protocol and not g.bind for g in self.grants)

    def may_listen(self, protocol: str, ip: Any, port: int) -> bool:
        """Accepting connections on the bound local ip:port needs a bind grant covering
        it: the ephemeral bind an outgoing grant allows is for sending from, not serving."""
        return self._allowed(protocol, True, ip, port)

    def may_resolve(self, name: str) -> bool:
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            wanted = name.lower().rstrip(".")
            return any(g.name == wanted for g in self.grants)
        return any(g.network is not None and self._covers(g, ip) for g in self.grants)

    def resolved(self, name: str, addresses: Iterable[Any]) -> None:
        """Remember what a lookup of `name` returned: grants naming it now cover these."""
        with self._lock:
            self._resolved.setdefault(name.lower().rstrip("."), set()).update(addresses)

    def describe(self) -> str:
        return ", ".join(g.describe() for g in self.grants) or "nothing"


def register_shared(names: Iterable[str], make: Any) -> None:
    """Serve each interface in `names` from one dict of providers per `WasiContext`, made
    by `make(ctx)` on first use: the interfaces of one package share their state (the
    network and its lookups, the HTTP grants)."""
    from ._context import register_interface

    attr = f"_providers_{id(make)}"

    def factory_for(name: str) -> Any:
        def factory(ctx: Any, iface: Any) -> Any:
            providers = ctx.__dict__.get(attr)
            if providers is None:
                providers = make(ctx)
                setattr(ctx, attr, providers)
            return providers[name]

        return factory

    for name in names:
        register_interface(name, factory_for(name))


def socket_family(ipv6: bool) -> int:
    return socket.AF_INET6 if ipv6 else socket.AF_INET
