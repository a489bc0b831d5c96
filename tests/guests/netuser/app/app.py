"""The `netuser` test guest (componentize-py, with WASI): Python's own `socket` module,
which componentize-py's CPython runs on `wasi:sockets`."""

import encodings.idna  # noqa: F401  (socket.getaddrinfo encodes host names with it; bundle it)
import socket
import time

import wit_world
from componentize_py_types import Err
from wit_world.imports import instance_network, network, udp, udp_create_socket


def _fail(e: BaseException) -> Err:
    return Err(f"{type(e).__name__}: {e}")


def _address(host: str, port: int) -> network.IpSocketAddress:
    parts = tuple(int(p) for p in host.split("."))
    return network.IpSocketAddress_Ipv4(network.Ipv4SocketAddress(port, parts))  # type: ignore[arg-type]


def _code(e: Err) -> str:
    return e.value.name if isinstance(e.value, network.ErrorCode) else str(e.value)


def _send(outgoing: udp.OutgoingDatagramStream, datagrams: list) -> None:
    for _ in range(500):
        if outgoing.check_send() >= len(datagrams):
            break
        time.sleep(0.01)
    outgoing.send(datagrams)


def _receive(incoming: udp.IncomingDatagramStream, n: int) -> list:
    """`n` datagrams as "PORT:TEXT", waiting 5 s at most."""
    got: list = []
    for _ in range(500):
        got += [f"{d.remote_address.value.port}:{bytes(d.data).decode()}" for d in incoming.receive(n - len(got))]
        if len(got) >= n:
            return got
        time.sleep(0.01)
    raise Err(f"received {got} of {n} datagrams")


class WitWorld(wit_world.WitWorld):
    def tcp_connect(self, host: str, port: int) -> str:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect((host, port))
                return "connected"
        except Exception as e:  # noqa: BLE001  (any failure is the test's answer)
            raise _fail(e)

    def tcp_exchange(self, host: str, port: int, message: str) -> str:
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(message.encode())
                s.shutdown(socket.SHUT_WR)
                chunks = []
                while True:
                    data = s.recv(4096)
                    if not data:
                        break
                    chunks.append(data)
                return b"".join(chunks).decode()
        except Exception as e:  # noqa: BLE001  (any failure is the test's answer)
            raise _fail(e)

    def udp_exchange(self, host: str, port: int, message: str) -> str:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.sendto(message.encode(), (host, port))
                data, _ = s.recvfrom(4096)
                return data.decode()
        except Exception as e:  # noqa: BLE001  (any failure is the test's answer)
            raise _fail(e)

    def resolve(self, name: str) -> list:
        try:
            return sorted({info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)})
        except Exception as e:  # noqa: BLE001  (any failure is the test's answer)
            raise _fail(e)

    def udp_disconnect(self, host: str, port_a: int, port_b: int) -> list:
        try:
            return _udp_disconnect(host, port_a, port_b)
        except Err as e:
            raise Err(_code(e))


def _udp_disconnect(host: str, port_a: int, port_b: int) -> list:
    a, b = _address(host, port_a), _address(host, port_b)
    net = instance_network.instance_network()
    sock = udp_create_socket.create_udp_socket(network.IpAddressFamily.IPV4)
    sock.start_bind(net, _address("0.0.0.0", 0))
    sock.subscribe().block()
    sock.finish_bind()
    port = sock.local_address().value.port
    steps = []
    incoming, outgoing = sock.stream(a)  # connect
    _send(outgoing, [udp.OutgoingDatagram(b"first", None)])
    try:
        _send(outgoing, [udp.OutgoingDatagram(b"x", b)])
        steps.append("send-elsewhere:sent")
    except Err as e:
        steps.append(f"send-elsewhere:{_code(e)}")
    steps += _receive(incoming, 1)
    steps.append(f"remote:{sock.remote_address().value.port}")
    steps.append("local:" + ".".join(map(str, sock.local_address().value.address)))  # the route's, once connected
    incoming.__exit__(None, None, None)
    outgoing.__exit__(None, None, None)
    incoming, outgoing = sock.stream(None)  # disconnect
    try:
        steps.append(f"remote-after:{sock.remote_address().value.port}")
    except Err as e:
        steps.append(f"remote-after:{_code(e)}")
    _send(outgoing, [udp.OutgoingDatagram(b"second", b), udp.OutgoingDatagram(b"third", a)])
    steps += sorted(_receive(incoming, 2))
    steps.append(f"local-port-kept:{sock.local_address().value.port == port}")
    return steps
