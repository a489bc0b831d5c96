"""The WASI sandbox of one instance: deny by default.

A component that imports `wasi:*` interfaces gets WASI 0.2 with exactly what its `Wasi`
grants: by default no files, no environment, no arguments, no network, an empty stdin,
and stdout/stderr passed through to this process.

Network grants are explicit and narrow: `Net` entries for `wasi:sockets` (an address or
network, a port, a protocol, and whether the guest may connect to it or bind to it), and
`host[:port]` strings for `wasi:http`'s outgoing requests. What no grant names is refused
with WASI's own `access-denied` / `HTTP-request-denied` before anything reaches the host's
network stack.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["Wasi", "Dir", "Net", "HttpHost"]


@dataclass(frozen=True)
class Dir:
    """A directory granted to the guest at `guest` (read-only unless told): a host
    directory (a path), or a `MemoryDir` whose files live in this process."""

    host: Union[str, "os.PathLike[str]", Any]
    guest: str
    readonly: bool = True


IpNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class Net:
    """One `wasi:sockets` grant: which remote (or local) addresses a guest may use.

    - `host`: an IP address (`"127.0.0.1"`, `"::1"`), a network in CIDR notation
      (`"10.1.0.0/16"`), or a host name (`"localhost"`). A name also lets the guest look
      it up with `ip-name-lookup`, and then use the addresses that lookup returned.
    - `port`: one port, or None for every port.
    - `protocol`: `"tcp"` or `"udp"`.
    - `bind`: False (the default) grants *outgoing* traffic to `host:port`: a TCP connect,
      a UDP datagram sent (the ephemeral local address such a socket needs comes with it).
      True grants binding a local address instead: a TCP listener, a UDP receiver.

    `Wasi(network=[Net("127.0.0.1", 8080)])` lets a guest connect to 127.0.0.1:8080 over
    TCP and nothing else: no other address or port, no UDP, no listening, no name lookup.
    """

    host: str
    port: Optional[int] = None
    protocol: Literal["tcp", "udp"] = "tcp"
    bind: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise TypeError(f"Net.host must be an IP address, a CIDR network or a host name, got {self.host!r}")
        if self.port is not None and (not isinstance(self.port, int) or isinstance(self.port, bool)
                                      or not 0 <= self.port <= 65535):
            raise ValueError(f"Net.port must be None (any port) or an int in 0..65535, got {self.port!r}")
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"Net.protocol must be 'tcp' or 'udp', got {self.protocol!r}")
        if not isinstance(self.bind, bool):
            raise TypeError(f"Net.bind must be a bool, got {self.bind!r}")
        self.network  # noqa: B018  (a bad address is an error now, not at the guest's first connect)

    @property
    def network(self) -> Optional[IpNetwork]:
        """The addresses `host` names when it is an address or a CIDR network; None for a name."""
        host = self.host[1:-1] if self.host.startswith("[") and self.host.endswith("]") else self.host
        try:
            return ipaddress.ip_network(host, strict=False)
        except ValueError:
            pass
        if "/" in host or ":" in host or not _is_host_name(host):
            raise ValueError(f"Net.host {self.host!r} is neither an IP address, a CIDR network nor a host name")
        return None

    @property
    def name(self) -> Optional[str]:
        """The host name this grant names (lowercase), or None for an address or network."""
        return None if self.network is not None else self.host.lower().rstrip(".")

    def describe(self) -> str:
        """`tcp connect 127.0.0.1:8080`, as `inspect` and error messages say it."""
        port = "*" if self.port is None else str(self.port)
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{self.protocol} {'bind' if self.bind else 'connect'} {host}:{port}"


def _is_host_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return all(0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() and label.isascii()
               for label in labels)


@dataclass(frozen=True)
class HttpHost:
    """One `wasi:http` grant, parsed from `"host"` or `"host:port"` (`"[::1]:8080"`):
    outgoing requests may go to that host, on that port (None: any port)."""

    host: str
    port: Optional[int]

    @classmethod
    def parse(cls, text: str) -> "HttpHost":
        if not isinstance(text, str) or not text or "/" in text or "@" in text:
            raise ValueError(f"Wasi.http entries are 'host' or 'host:port', got {text!r}")
        host, port = _split_authority(text)
        if port is not None and not 0 < port <= 65535:
            raise ValueError(f"Wasi.http entry {text!r}: port out of range")
        return cls(host.lower().rstrip("."), port)

    def allows(self, host: str, port: int) -> bool:
        return host.lower().rstrip(".") == self.host and (self.port is None or self.port == port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def _split_authority(text: str) -> Tuple[str, Optional[int]]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` -> (host, port or None)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: unclosed '['")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r}: junk after ']'")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, None
        elif ":" in host:  # a bare IPv6 address: no port
            host, port_text = text, None
    if port_text is None:
        return host, None
    if not port_text.isdigit():
        raise ValueError(f"{text!r}: the port {port_text!r} is not a number")
    return host, int(port_text)


@dataclass(frozen=True)
class Wasi:
    """What a component's WASI imports may see.

    - `args`: the guest's argv (the first item is the program name by convention).
    - `env`: environment variables; nothing of the host's environment leaks in.
    - `dirs`: preopened directories (`Dir`), read-only unless `readonly=False`.
    - `stdin`: bytes to read, `"inherit"` for this process's stdin, a binary file
      object or a path (`pathlib.Path`) to read, or None (empty).
    - `stdout`/`stderr`: `"inherit"` (the default: this process's streams), `"capture"`
      (collected; read them from `instance.stdout` / `instance.stderr`), `"discard"`,
      a binary file object to write to, or a path (`pathlib.Path`) to a file to create.
    - `network`: `Net` grants for `wasi:sockets` (none: every connect, bind and name
      lookup is refused with `access-denied`).
    - `http`: hosts that `wasi:http` outgoing requests may reach, as `"host"` (any port)
      or `"host:port"` (none: every request is refused with `HTTP-request-denied`).
    """

    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    dirs: Sequence[Dir] = ()
    stdin: Union[bytes, None, Literal["inherit"], "os.PathLike[str]", Any] = None
    stdout: Union[Literal["inherit", "capture", "discard"], "os.PathLike[str]", Any] = "inherit"
    stderr: Union[Literal["inherit", "capture", "discard"], "os.PathLike[str]", Any] = "inherit"
    network: Sequence[Net] = ()
    http: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.args, str):
            raise TypeError("Wasi.args must be a sequence of strings, not one string")
        for name in ("stdout", "stderr"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) and value not in ("inherit", "capture", "discard"):
                raise ValueError(f"Wasi.{name} must be 'inherit', 'capture', 'discard', "
                                 f"a binary file object or a pathlib.Path, got {value!r}")
            if not isinstance(value, (str, os.PathLike)) and not callable(getattr(value, "write", None)):
                raise TypeError(f"Wasi.{name} must be 'inherit', 'capture', 'discard', "
                                f"a binary file object or a pathlib.Path, got {value!r}")
        if not (self.stdin is None or self.stdin == "inherit" or isinstance(self.stdin, (bytes, os.PathLike))
                or callable(getattr(self.stdin, "read", None))):
            raise TypeError("Wasi.stdin must be bytes, 'inherit', a binary file object, a pathlib.Path or None")
        for d in self.dirs:
            if not isinstance(d, Dir):
                raise TypeError(f"Wasi.dirs must be a sequence of Dir grants, got {d!r}")
        if isinstance(self.network, Net) or any(not isinstance(n, Net) for n in self.network):
            raise TypeError("Wasi.network must be a sequence of Net grants")
        if isinstance(self.http, str):
            raise TypeError("Wasi.http must be a sequence of 'host[:port]' strings, not one string")
        for entry in self.http:
            HttpHost.parse(entry)  # raises ValueError naming a bad entry

    @property
    def http_hosts(self) -> Tuple[HttpHost, ...]:
        """The `http` grants, parsed."""
        return tuple(HttpHost.parse(entry) for entry in self.http)


DEFAULT_WASI = Wasi()
