"""`wasi:sockets@0.3.0` on the core runtime, with the componentize-py guest `p3net` built
from source: a TCP connection to a loopback listener started here, its data through
`stream<u8>`s, when `Wasi(network=[Net(...)])` grants it; refused with `access-denied`
otherwise, before any host socket exists (the listener never sees a connection). Also UDP,
a listening guest, and name lookups within the grants. Every wait is bounded."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
from typing import Any, Iterator, List

import pytest

import wasm_import
from wasm_import import Err, Net, Wasi
from wasm_import.hook._command import call_to_end
from wasm_import.runtime.wasi._context import served
from tests._build import build_python_guest
from tests.wasi._udp_peers import UdpPeers


@pytest.fixture(scope="module")
def p3net() -> Any:
    return wasm_import.load(build_python_guest("p3net"))


class _Listener:
    """A loopback TCP listener that answers `echo:` + what it got, once the peer ends."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: List[bytes] = []
        self.serving = False

    def serve_one(self) -> None:
        self.serving = True

        def run() -> None:
            self.sock.settimeout(20)
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(20)
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                self.seen.append(data)
                conn.sendall(b"echo:" + data)

        threading.Thread(target=run, daemon=True).start()

    def pending(self) -> bool:
        """Is a connection waiting to be accepted (did anything reach us)?"""
        return bool(select.select([self.sock], [], [], 0.2)[0])


@pytest.fixture
def listener() -> Iterator[_Listener]:
    made = _Listener()
    yield made
    made.sock.close()


def _call(inst: Any, name: str, *args: Any) -> Any:
    try:
        return call_to_end(getattr(inst.api, name), *args)
    except Err as e:
        return ("err", e.value)


def test_sockets_0_3_are_served() -> None:
    assert served("wasi:sockets/types@0.3.0") and served("wasi:sockets/ip-name-lookup@0.3.0")
    assert not served("wasi:sockets/tcp@0.3.0")  # 0.2's interface, gone in 0.3


def test_tcp_connect_send_receive_with_a_grant(p3net: Any, listener: _Listener) -> None:
    listener.serve_one()
    inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", listener.port)]))
    assert _call(inst, "tcp_echo", "127.0.0.1", listener.port, "hello over 0.3") == "echo:hello over 0.3"
    assert listener.seen == [b"hello over 0.3"]


def test_tcp_moves_a_large_message(p3net: Any, listener: _Listener) -> None:
    listener.serve_one()
    inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.0/8")]))
    text = "0123456789" * 50000
    assert _call(inst, "tcp_echo", "127.0.0.1", listener.port, text) == "echo:" + text


@pytest.mark.parametrize("grants", [[], [Net("127.0.0.1", 1)], [Net("10.0.0.0/8")], [Net("localhost")],
                                    [Net("127.0.0.1", protocol="udp")], [Net("127.0.0.1", bind=True)]],
                         ids=["none", "other-port", "other-network", "a-name-not-looked-up", "udp-only",
                              "bind-only"])
def test_tcp_connect_is_denied_without_a_grant_and_nothing_reaches_the_listener(
        p3net: Any, listener: _Listener, grants: List[Net]) -> None:
    inst = p3net.instantiate(wasi=Wasi(network=grants))
    assert _call(inst, "tcp_echo", "127.0.0.1", listener.port, "secret") == ("err", "AccessDenied")
    assert not listener.pending()


def test_connection_refused_is_reported(p3net: Any) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1")]))
    assert _call(inst, "tcp_echo", "127.0.0.1", port, "x") == ("err", "ConnectionRefused")


def test_a_guest_listens_accepts_and_answers_with_a_bind_grant(p3net: Any) -> None:
    inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", bind=True)]))

    async def main() -> bytes:
        port = await asyncio.wait_for(inst.api.serve_once(0), 20)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 20)
        writer.write(b"shout this")
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        return answer

    assert asyncio.run(main()) == b"SHOUT THIS"


def test_the_listener_a_guest_keeps_is_closed_with_its_instance(p3net: Any) -> None:
    """The guest keeps its listener forever (and a task waiting to accept): closing the
    instance closes it, so the port refuses connections at once, and the event loop the
    guest waited on runs on for the next instance."""
    async def main() -> List[str]:
        seen = []
        for _ in range(2):
            inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", bind=True)]))
            port = await asyncio.wait_for(inst.api.serve_once(0), 20)
            probe = socket.create_connection(("127.0.0.1", port), 5)  # it listens
            probe.close()
            inst.close()
            try:
                socket.create_connection(("127.0.0.1", port), 5).close()
                seen.append("connected")
            except ConnectionRefusedError:
                seen.append("refused")
        return seen

    assert asyncio.run(main()) == ["refused", "refused"]


def test_listening_is_denied_without_a_bind_grant(p3net: Any) -> None:
    inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1")]))  # connect only
    assert _call(inst, "serve_once", 0) == ("err", "AccessDenied")


def test_udp_exchange_with_a_grant_and_denied_without(p3net: Any) -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    port = peer.getsockname()[1]
    try:
        def answer() -> None:
            peer.settimeout(20)
            data, source = peer.recvfrom(65535)
            peer.sendto(b"pong:" + data, source)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", port, protocol="udp")]))
        assert _call(inst, "udp_echo", "127.0.0.1", port, "ping") == "pong:ping"
        thread.join(20)
        denied = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", port)]))  # tcp only
        assert _call(denied, "udp_echo", "127.0.0.1", port, "ping") == ("err", "AccessDenied")
        assert not select.select([peer], [], [], 0.2)[0]
    finally:
        peer.close()


def test_name_lookup_only_within_grants(p3net: Any) -> None:
    granted = p3net.instantiate(wasi=Wasi(network=[Net("localhost")]))
    found = _call(granted, "lookup", "localhost")
    assert "127.0.0.1" in found
    assert _call(granted, "lookup", "example.com") == ("err", "AccessDenied")
    assert _call(granted, "lookup", "not a name!") == ("err", "InvalidArgument")
    nothing = p3net.instantiate(wasi=Wasi())
    assert _call(nothing, "lookup", "localhost") == ("err", "AccessDenied")


def _udp_disconnect(inst: Any, peers: UdpPeers) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(inst.api.udp_disconnect("127.0.0.1", peers.port["A"], peers.port["B"]), 20)

    try:
        return asyncio.run(main())
    except Err as e:
        return ("err", e.value)


def test_udp_connect_disconnect_then_send_to_two_peers(p3net: Any) -> None:
    """`connect(A)` associates the socket with A in the kernel (B's datagram never arrives,
    a send elsewhere is refused); `disconnect` dissolves it: the same port then sends to B
    and A by address and receives from both."""
    peers = UdpPeers()
    try:
        inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", peers.port["A"], "udp"),
                                                    Net("127.0.0.1", peers.port["B"], "udp")]))
        peers.start()
        steps = _udp_disconnect(inst, peers)
        peers.join()
        expected = peers.steps({"invalid-argument": "InvalidArgument", "invalid-state": "InvalidState"})
        expected.insert(4, "disconnect-again:InvalidState")  # 0.3's disconnect of a socket not connected
        assert steps == expected
        guest = peers.early_to
        assert guest is not None
        assert peers.seen == {"A": [(b"first", guest), (b"third", guest)], "B": [(b"second", guest)]}
    finally:
        peers.close()


def test_a_disconnected_udp_socket_still_sends_only_where_granted(p3net: Any) -> None:
    peers = UdpPeers()
    try:
        inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", peers.port["A"], "udp")]))  # not B
        peers.start(expected=2, seconds=3)
        assert _udp_disconnect(inst, peers) == ("err", "AccessDenied")  # "second", to B, after the disconnect
        peers.join()
        assert [data for data, _ in peers.seen["A"]] == [b"first"] and peers.seen["B"] == []
    finally:
        peers.close()
