"""wasi:sockets in Python: the grants (`Net`), the socket classes against loopback peers
started here, and a componentize-py guest whose `socket` module runs on them.

Every peer listens on 127.0.0.1 only; every wait is bounded."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from typing import Any, Iterator, List, Tuple

import pytest

import wasm_import
from wasm_import import Err, Net, Wasi
from wasm_import.runtime.wasi._io import IoError, StreamFailed, wait_any
from wasm_import.runtime.wasi._net import NetPolicy, from_host
from wasm_import.runtime.wasi._held import Held
from wasm_import.runtime.wasi._sockets import sockets_providers
from tests.wasi._netguests import build_netuser, wasi_types
from tests.wasi._udp_peers import UdpPeers

NETWORK = "wasi:sockets/network"


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def module_types() -> Any:
    return wasi_types("wasi:sockets/imports@0.2.3")


@pytest.fixture
def types(module_types: Any) -> Iterator[Any]:
    """The WIT classes, as one instance's: the host sockets made with them during a test
    are closed when it ends, as closing an instance closes its own (`_held`)."""
    held = module_types.held = Held()
    yield module_types
    module_types.held = None
    held.close()


class Listener:
    """A loopback TCP listener that records every connection it sees (and echoes)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.seen: List[Tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 300  # bounded, and long enough for a cold compile of a guest
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, peer = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.seen.append(peer)
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while True:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(b"echo:" + data)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    peer = Listener()
    yield peer
    peer.close()


def sockets(types: Any, *grants: Net) -> Tuple[Any, Any]:
    """(providers by interface name, the instance network)."""
    providers = sockets_providers(types, grants)
    return providers, providers["wasi:sockets/instance-network"].instance_network()


def family(types: Any, name: str = "IPV4") -> Any:
    return types.get(f"{NETWORK}#ip-address-family")[name]


def error(types: Any, name: str) -> Any:
    return types.get(f"{NETWORK}#error-code")[name]


def tcp(types: Any, providers: Any, fam: str = "IPV4") -> Any:
    return providers["wasi:sockets/tcp-create-socket"].create_tcp_socket(family(types, fam))


def addr(types: Any, host: str, port: int) -> Any:
    return from_host(types, (host, port, 0, 0) if ":" in host else (host, port))


def connect(types: Any, sock: Any, network: Any, port: int) -> Tuple[Any, Any]:
    sock.start_connect(network, addr(types, "127.0.0.1", port))
    wait_any([sock.subscribe()])
    return sock.finish_connect()


# -- the grant type ---------------------------------------------------------------------------------

def test_net_grants_are_checked_when_made() -> None:
    assert Net("127.0.0.1", 8080).describe() == "tcp connect 127.0.0.1:8080"
    assert Net("::1", protocol="udp", bind=True).describe() == "udp bind [::1]:*"
    assert Net("LocalHost.").name == "localhost"
    assert str(Net("10.1.0.0/16").network) == "10.1.0.0/16"
    with pytest.raises(ValueError, match="neither an IP address"):
        Net("not a host")
    with pytest.raises(ValueError, match="0..65535"):
        Net("127.0.0.1", 65536)
    with pytest.raises(ValueError, match="'tcp' or 'udp'"):
        Net("127.0.0.1", 1, "sctp")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence of Net grants"):
        Wasi(network=Net("127.0.0.1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence of Net grants"):
        Wasi(network=["127.0.0.1:80"])  # type: ignore[list-item]
    assert wasm_import.Net is Net


def test_policy_allows_exactly_what_is_granted() -> None:
    import ipaddress

    ip = ipaddress.ip_address
    policy = NetPolicy([Net("127.0.0.1", 8080), Net("10.0.0.0/8", protocol="udp"), Net("127.0.0.1", 9000, bind=True),
                        Net("localhost", 7000)])
    assert policy.may_connect("tcp", ip("127.0.0.1"), 8080)
    assert not policy.may_connect("tcp", ip("127.0.0.1"), 8081)
    assert not policy.may_connect("udp", ip("127.0.0.1"), 8080)
    assert not policy.may_connect("tcp", ip("127.0.0.2"), 8080)
    assert not policy.may_connect("tcp", ip("::1"), 8080)
    assert policy.may_connect("udp", ip("10.200.3.4"), 53)
    assert policy.may_bind("tcp", ip("127.0.0.1"), 9000)
    assert not policy.may_bind("tcp", ip("127.0.0.1"), 9001)
    assert policy.may_bind("udp", ip("0.0.0.0"), 0)  # the ephemeral port an outgoing UDP grant needs
    assert not policy.may_bind("udp", ip("0.0.0.0"), 5353)
    assert not NetPolicy([]).may_bind("tcp", ip("127.0.0.1"), 0)
    # a name: resolvable, and what it resolved to is then covered (port and protocol still apply)
    assert policy.may_resolve("LOCALHOST") and not policy.may_resolve("example.com")
    assert policy.may_resolve("127.0.0.1") and not policy.may_resolve("192.168.1.1")
    assert not policy.may_connect("tcp", ip("127.0.0.5"), 7000)
    policy.resolved("localhost", [ip("127.0.0.5")])
    assert policy.may_connect("tcp", ip("127.0.0.5"), 7000)
    assert not policy.may_connect("tcp", ip("127.0.0.5"), 7001)


# -- TCP ---------------------------------------------------------------------------------------------

def test_connect_without_a_grant_is_denied_and_reaches_nothing(types: Any, listener: Listener) -> None:
    for grants in ((), (Net("127.0.0.1", listener.port + 1 if listener.port < 65535 else 1),),
                   (Net("127.0.0.1", listener.port, "udp"),), (Net("127.0.0.1", listener.port, bind=True),)):
        providers, network = sockets(types, *grants)
        sock = tcp(types, providers)
        with pytest.raises(Err) as caught:
            sock.start_connect(network, addr(types, "127.0.0.1", listener.port))
        assert caught.value.value is error(types, "ACCESS_DENIED")
        assert sock._owned is None  # no host socket was even made
    time.sleep(0.3)
    assert listener.seen == []


def test_connect_exchange_and_shutdown(types: Any, listener: Listener) -> None:
    providers, network = sockets(types, Net("127.0.0.1", listener.port))
    sock = tcp(types, providers)
    assert sock.is_listening() is False and sock.address_family() is family(types)
    with pytest.raises(Err) as caught:
        sock.finish_connect()
    assert caught.value.value is error(types, "NOT_IN_PROGRESS")
    rx, tx = connect(types, sock, network, listener.port)
    tx.blocking_write_and_flush(b"hello")
    sock.shutdown(types.get("wasi:sockets/tcp#shutdown-type").SEND)
    assert rx.blocking_read(100) == b"echo:hello"
    with pytest.raises(Err) as end:
        rx.blocking_read(100)
    assert type(end.value.value).__name__ == "StreamError_Closed"
    assert sock.remote_address() == addr(types, "127.0.0.1", listener.port)
    local = sock.local_address().value
    assert local.address == (127, 0, 0, 1) and local.port > 0
    assert listener.seen == [("127.0.0.1", local.port)]
    with pytest.raises(Err) as again:
        sock.start_connect(network, addr(types, "127.0.0.1", listener.port))
    assert again.value.value is error(types, "INVALID_STATE")
    for obj in (rx, tx, sock):
        obj.__wasm_drop__()
    assert sock._owned is None


def test_read_waits_for_data_for_real(types: Any) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    providers, network = sockets(types, Net("127.0.0.1", port))
    sock = tcp(types, providers)
    sock.start_connect(network, addr(types, "127.0.0.1", port))
    server.settimeout(5)
    conn, _ = server.accept()
    wait_any([sock.subscribe()])
    rx, tx = sock.finish_connect()
    assert rx.read(10) == b""  # nothing yet, and read does not block
    timer = threading.Timer(0.25, lambda: conn.sendall(b"late"))
    timer.start()
    start = time.monotonic()
    try:
        assert rx.blocking_read(10) == b"late"
        assert 0.2 <= time.monotonic() - start < 3
    finally:
        timer.join()
        conn.close()
        server.close()


def test_refused_connect_reports_connection_refused(types: Any) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # a port nobody listens on
    providers, network = sockets(types, Net("127.0.0.1", port))
    sock = tcp(types, providers)
    sock.start_connect(network, addr(types, "127.0.0.1", port))
    wait_any([sock.subscribe()])
    with pytest.raises(Err) as caught:
        sock.finish_connect()
    assert caught.value.value is error(types, "CONNECTION_REFUSED")


def test_addresses_that_slip_past_a_family_are_refused(types: Any) -> None:
    providers, network = sockets(types, Net("0.0.0.0/0"), Net("::/0"))
    v6 = tcp(types, providers, "IPV6")
    for bad in (addr(types, "::ffff:127.0.0.1", 80), addr(types, "127.0.0.1", 80), addr(types, "::", 80),
                addr(types, "::1", 0)):
        with pytest.raises(Err) as caught:
            v6.start_connect(network, bad)
        assert caught.value.value is error(types, "INVALID_ARGUMENT")


def test_a_connect_grant_does_not_let_a_guest_listen(types: Any) -> None:
    """The ephemeral bind an outgoing grant allows is for sending from; serving on it
    needs a bind grant."""
    providers, network = sockets(types, Net("127.0.0.1"))
    sock = tcp(types, providers)
    sock.start_bind(network, addr(types, "127.0.0.1", 0))
    sock.finish_bind()
    with pytest.raises(Err) as caught:
        sock.start_listen()
    assert caught.value.value is error(types, "ACCESS_DENIED")
    assert not sock.is_listening()


def test_listen_and_accept_with_a_bind_grant(types: Any) -> None:
    providers, network = sockets(types)
    denied = tcp(types, providers)
    with pytest.raises(Err) as caught:
        denied.start_bind(network, addr(types, "127.0.0.1", 0))
    assert caught.value.value is error(types, "ACCESS_DENIED")

    providers, network = sockets(types, Net("127.0.0.1", bind=True))
    server = tcp(types, providers)
    with pytest.raises(Err) as unbound:
        server.start_listen()
    assert unbound.value.value is error(types, "INVALID_STATE")
    server.start_bind(network, addr(types, "127.0.0.1", 0))
    server.finish_bind()
    server.set_listen_backlog_size(4)
    server.start_listen()
    server.finish_listen()
    assert server.is_listening()
    port = server.local_address().value.port
    with pytest.raises(Err) as nobody:
        server.accept()
    assert nobody.value.value is error(types, "WOULD_BLOCK")
    client = socket.socket()
    client.settimeout(5)
    timer = threading.Timer(0.2, lambda: client.connect(("127.0.0.1", port)))
    timer.start()
    start = time.monotonic()
    wait_any([server.subscribe()])
    assert time.monotonic() - start >= 0.15
    timer.join()
    conn, rx, tx = server.accept()
    client.sendall(b"ping")
    assert rx.blocking_read(10) == b"ping"
    tx.blocking_write_and_flush(b"pong")
    assert client.recv(10) == b"pong"
    assert conn.remote_address().value.port == client.getsockname()[1]
    client.close()
    for obj in (rx, tx, conn, server):
        obj.__wasm_drop__()


def test_socket_options_before_and_after_the_socket_exists(types: Any, listener: Listener) -> None:
    providers, network = sockets(types, Net("127.0.0.1", listener.port))
    sock = tcp(types, providers)
    sock.set_keep_alive_enabled(True)
    sock.set_hop_limit(9)
    sock.set_keep_alive_count(3)
    assert sock.keep_alive_enabled() is True and sock.hop_limit() == 9
    for setter in (sock.set_hop_limit, sock.set_receive_buffer_size, sock.set_keep_alive_interval):
        with pytest.raises(Err) as caught:
            setter(0)
        assert caught.value.value is error(types, "INVALID_ARGUMENT")
    rx, tx = connect(types, sock, network, listener.port)
    raw = sock._owned.sock
    assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert raw.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 9
    assert sock.keep_alive_count() == 3 and sock.hop_limit() == 9
    for obj in (rx, tx, sock):
        obj.__wasm_drop__()


def test_network_error_code_reads_io_errors(types: Any) -> None:
    providers, _ = sockets(types)
    read = providers[NETWORK].network_error_code
    assert read(IoError("refused", errno.ECONNREFUSED)) is error(types, "CONNECTION_REFUSED")
    assert read(IoError("reset", "connection-reset")) is error(types, "CONNECTION_RESET")
    assert read(IoError("no code")) is None
    assert StreamFailed(IoError("x", errno.EPIPE)).error.code == errno.EPIPE


# -- UDP ----------------------------------------------------------------------------------------------

def test_udp_sends_only_where_granted(types: Any) -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(0.3)
    port = peer.getsockname()[1]
    try:
        providers, network = sockets(types)
        udp = providers["wasi:sockets/udp-create-socket"].create_udp_socket(family(types))
        with pytest.raises(Err) as caught:
            udp.start_bind(network, addr(types, "0.0.0.0", 0))
        assert caught.value.value is error(types, "ACCESS_DENIED")

        providers, network = sockets(types, Net("127.0.0.1", port, "udp"))
        udp = providers["wasi:sockets/udp-create-socket"].create_udp_socket(family(types))
        udp.start_bind(network, addr(types, "0.0.0.0", 0))
        udp.finish_bind()
        incoming, outgoing = udp.stream(None)
        datagram = types.get("wasi:sockets/udp#outgoing-datagram")
        assert outgoing.check_send() > 0
        assert outgoing.send([datagram(data=b"one", remote_address=addr(types, "127.0.0.1", port))]) == 1
        data, sender = peer.recvfrom(100)
        assert data == b"one"
        outgoing.check_send()
        with pytest.raises(Err) as denied:
            outgoing.send([datagram(data=b"two", remote_address=addr(types, "127.0.0.1", other.getsockname()[1]))])
        assert denied.value.value is error(types, "ACCESS_DENIED")
        with pytest.raises(socket.timeout):
            other.recvfrom(100)
        assert incoming.receive(5) == []
        peer.sendto(b"back", sender)
        wait_any([incoming.subscribe()])
        [received] = incoming.receive(5)
        assert received.data == b"back" and received.remote_address == addr(types, "127.0.0.1", port)
        with pytest.raises(Err) as to_other:
            udp.stream(addr(types, "127.0.0.1", other.getsockname()[1]))
        assert to_other.value.value is error(types, "ACCESS_DENIED")
        for obj in (incoming, outgoing, udp):
            obj.__wasm_drop__()
    finally:
        peer.close()
        other.close()


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "0.0.0.0"), (socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")], ids=["ipv4-any", "ipv4-loopback", "ipv6"])
def test_a_udp_association_is_dissolved_and_the_port_kept(family: int, host: str) -> None:
    from wasm_import.runtime.wasi._udp import associate, dissociate

    peer_host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    try:
        sock, peer = socket.socket(family, socket.SOCK_DGRAM), socket.socket(family, socket.SOCK_DGRAM)
    except OSError:
        pytest.fail(f"no {family!r} sockets on this machine")
    with sock, peer:
        sock.bind((host, 0))
        peer.bind((peer_host, 0))
        port = sock.getsockname()[1]
        associate(sock, peer.getsockname(), connected=False)
        assert sock.getpeername()[:2] == peer.getsockname()[:2]
        associate(sock, (peer_host, 9), connected=True)  # another peer, at once
        assert sock.getpeername()[1] == 9
        dissociate(sock)
        with pytest.raises(OSError) as caught:
            sock.getpeername()
        assert caught.value.errno == errno.ENOTCONN
        assert sock.getsockname()[:2] == (host, port)  # Linux gave the ephemeral port up: bound again
        sock.sendto(b"from the same port", peer.getsockname())
        peer.settimeout(5)
        data, sender = peer.recvfrom(100)
        assert (data, sender[1]) == (b"from the same port", port)


# -- name lookup -----------------------------------------------------------------------------------------

def test_name_lookup_is_a_grant_too(types: Any) -> None:
    providers, network = sockets(types)
    lookup = providers["wasi:sockets/ip-name-lookup"]
    for name in ("localhost", "127.0.0.1"):
        with pytest.raises(Err) as caught:
            lookup.resolve_addresses(network, name)
        assert caught.value.value is error(types, "ACCESS_DENIED")
    with pytest.raises(Err) as bad:
        lookup.resolve_addresses(network, "no spaces allowed")
    assert bad.value.value is error(types, "INVALID_ARGUMENT")

    providers, network = sockets(types, Net("localhost", 5))
    stream = providers["wasi:sockets/ip-name-lookup"].resolve_addresses(network, "localhost")
    wait_any([stream.subscribe()])
    found = []
    while (address := stream.resolve_next_address()) is not None:
        found.append(address)
    v4 = types.case(f"{NETWORK}#ip-address", "ipv4")((127, 0, 0, 1))
    assert v4 in found
    import ipaddress

    assert network.policy.may_connect("tcp", ipaddress.ip_address("127.0.0.1"), 5)


# -- a componentize-py guest -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def netuser() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WASM_IMPORT_QUIET", "1")
        yield wasm_import.load(build_netuser())


@pytest.mark.slow
def test_guest_without_a_grant_never_reaches_the_listener(netuser: Any, listener: Listener) -> None:
    inst = netuser.instantiate(wasi=Wasi())
    with pytest.raises(Err) as caught:
        inst.tcp_connect("127.0.0.1", listener.port)
    assert caught.value.value.startswith("PermissionError")
    with pytest.raises(Err) as exchange:
        inst.tcp_exchange("127.0.0.1", listener.port, "hi")
    assert exchange.value.value.startswith("PermissionError")
    with pytest.raises(Err) as lookup:
        inst.resolve("localhost")
    assert lookup.value.value.startswith("PermissionError")
    # a grant for another port, or for UDP, is no grant for this one
    other = netuser.instantiate(wasi=Wasi(network=[Net("127.0.0.1", (listener.port % 60000) + 1),
                                                   Net("127.0.0.1", listener.port, "udp")]))
    with pytest.raises(Err) as elsewhere:
        other.tcp_connect("127.0.0.1", listener.port)
    assert elsewhere.value.value.startswith("PermissionError")
    time.sleep(0.3)
    assert listener.seen == []


@pytest.mark.slow
def test_guest_with_grants_talks_tcp_and_udp_and_resolves(netuser: Any, listener: Listener) -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    uport = peer.getsockname()[1]

    def answer() -> None:
        try:
            data, sender = peer.recvfrom(100)
            peer.sendto(b"udp:" + data, sender)
        except OSError:
            pass

    inst = netuser.instantiate(wasi=Wasi(network=[Net("127.0.0.1", listener.port), Net("127.0.0.1", uport, "udp"),
                                                  Net("localhost")]))
    responder = threading.Thread(target=answer, daemon=True)
    responder.start()  # after the (possibly compiling) instantiation: it waits 5 s at most
    try:
        assert inst.tcp_connect("127.0.0.1", listener.port) == "connected"
        assert inst.tcp_exchange("127.0.0.1", listener.port, "hi there") == "echo:hi there"
        assert inst.udp_exchange("127.0.0.1", uport, "yo") == "udp:yo"
        assert inst.resolve("localhost") == ["127.0.0.1"]
        assert len(listener.seen) == 2
    finally:
        responder.join(5)
        peer.close()


def test_inspect_says_which_grant_opens_each_network_import() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "wasm_import", "inspect", str(build_netuser())],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "WASM_IMPORT_QUIET": "1"})
    lines = out.stdout.splitlines()
    assert "  network: nothing unless granted in Python (this tool grants none)" in lines
    assert ("    wasi:sockets/tcp@0.2.9  <- Wasi(network=[Net(host, port, 'tcp')]): connects there (bind=True: listens)"
            in lines)
    assert "    wasi:sockets/tcp-create-socket@0.2.9" in lines
    assert "    wasi:sockets/ip-name-lookup@0.2.9  <- Wasi(network=[Net('name', ...)]): looks up that name" in lines


@pytest.mark.slow
def test_guest_connects_udp_disconnects_and_sends_to_two_peers(netuser: Any) -> None:
    """`stream(some(A))` associates the socket with A in the kernel (B's datagram never
    arrives, a send elsewhere is refused); `stream(none)` dissolves it: the same port then
    sends to B and A by address and receives from both."""
    peers = UdpPeers()
    try:
        inst = netuser.instantiate(wasi=Wasi(network=[Net("127.0.0.1", peers.port["A"], "udp"),
                                                      Net("127.0.0.1", peers.port["B"], "udp")]))
        peers.start()
        steps = inst.udp_disconnect("127.0.0.1", peers.port["A"], peers.port["B"])
        peers.join()
        assert steps == peers.steps({"invalid-argument": "INVALID_ARGUMENT", "invalid-state": "INVALID_STATE"})
        guest = peers.early_to
        assert guest is not None
        assert peers.seen == {"A": [(b"first", guest), (b"third", guest)], "B": [(b"second", guest)]}
    finally:
        peers.close()


@pytest.mark.slow
def test_a_disconnected_udp_socket_still_sends_only_where_granted(netuser: Any) -> None:
    peers = UdpPeers()
    try:
        inst = netuser.instantiate(wasi=Wasi(network=[Net("127.0.0.1", peers.port["A"], "udp")]))  # not B
        peers.start(expected=2, seconds=3)
        with pytest.raises(Err) as caught:
            inst.udp_disconnect("127.0.0.1", peers.port["A"], peers.port["B"])
        assert caught.value.value == "ACCESS_DENIED"  # "second", to B, after the disconnect
        peers.join()
        assert [data for data, _ in peers.seen["A"]] == [b"first"] and peers.seen["B"] == []
    finally:
        peers.close()
