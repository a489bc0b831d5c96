"""A WASI 0.3 sockets user: a TCP client and server, a UDP exchange and a name lookup
through `wasi:sockets@0.3.0` (TCP data through `stream<u8>`, accepted connections through
a `stream<tcp-socket>`)."""

import componentize_py_async_support
import wit_world
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import ip_name_lookup
from wit_world.imports.wasi_sockets_types import (IpAddress_Ipv4, IpAddressFamily, IpSocketAddress_Ipv4,
                                                  Ipv4SocketAddress, TcpSocket, UdpSocket)


_KEEP: list = []


def _case(value: object) -> str:
    return type(value).__name__.split("_", 1)[1]


def _address(host: str, port: int) -> IpSocketAddress_Ipv4:
    parts = tuple(int(p) for p in host.split("."))
    return IpSocketAddress_Ipv4(Ipv4SocketAddress(port, parts))  # type: ignore[arg-type]


async def _drain(stream: object, done: object) -> bytes:
    received = bytearray()
    with stream:  # type: ignore[attr-defined]
        while not stream.writer_dropped:  # type: ignore[attr-defined]
            received += await stream.read(65536)  # type: ignore[attr-defined]
    outcome = await done.read()  # type: ignore[attr-defined]
    if isinstance(outcome, Err):
        raise outcome
    return bytes(received)


async def _send_all(sock: TcpSocket, data: bytes) -> None:
    writer, reader = wit_world.byte_stream()
    sent = sock.send(reader)
    with writer:
        await writer.write_all(data)
    outcome = await sent.read()
    if isinstance(outcome, Err):
        raise outcome


def _errors_as_names(method):  # type: ignore[no-untyped-def]
    async def call(self, *args):  # type: ignore[no-untyped-def]
        try:
            return await method(self, *args)
        except Err as e:
            if isinstance(e.value, str):
                raise
            raise Err(_case(e.value))
    return call


class Api(exports.Api):
    @_errors_as_names
    async def tcp_echo(self, host: str, port: int, message: str) -> str:
        sock = TcpSocket.create(IpAddressFamily.IPV4)
        await sock.connect(_address(host, port))
        stream, done = sock.receive()
        await _send_all(sock, message.encode())
        return (await _drain(stream, done)).decode()

    @_errors_as_names
    async def lookup(self, name: str) -> list[str]:
        found = await ip_name_lookup.resolve_addresses(name)
        return [".".join(map(str, a.value)) if isinstance(a, IpAddress_Ipv4) else ":".join(f"{x:x}" for x in a.value)
                for a in found]

    @_errors_as_names
    async def udp_echo(self, host: str, port: int, message: str) -> str:
        sock = UdpSocket.create(IpAddressFamily.IPV4)
        await sock.send(message.encode(), _address(host, port))
        data, _ = await sock.receive()
        return data.decode()

    @_errors_as_names
    async def serve_once(self, port: int) -> int:
        listener = TcpSocket.create(IpAddressFamily.IPV4)
        listener.bind(_address("127.0.0.1", port))
        connections = listener.listen()
        bound = listener.get_local_address().value.port

        async def serve() -> None:
            with connections:
                [conn] = await connections.read(1)
            stream, done = conn.receive()
            data = await _drain(stream, done)
            await _send_all(conn, data.upper())

        _KEEP.append(listener)  # dropping the listener would close it before the connection comes
        componentize_py_async_support.spawn(serve())
        return bound

    @_errors_as_names
    async def udp_disconnect(self, host: str, port_a: int, port_b: int) -> list[str]:
        a, b = _address(host, port_a), _address(host, port_b)
        sock = UdpSocket.create(IpAddressFamily.IPV4)
        steps = []

        async def attempt(step: str, call: object) -> None:
            try:
                await call  # type: ignore[misc]
                steps.append(f"{step}:ok")
            except Err as e:
                steps.append(f"{step}:{_case(e.value)}")

        async def receive() -> str:
            data, sender = await sock.receive()
            return f"{sender.value.port}:{data.decode()}"

        sock.connect(a)
        port = sock.get_local_address().value.port
        await sock.send(b"first", None)
        await attempt("send-elsewhere", sock.send(b"x", b))
        steps.append(await receive())
        steps.append(f"remote:{sock.get_remote_address().value.port}")
        steps.append("local:" + ".".join(map(str, sock.get_local_address().value.address)))  # the route's
        sock.disconnect()
        try:
            sock.disconnect()
            steps.append("disconnect-again:ok")
        except Err as e:
            steps.append(f"disconnect-again:{_case(e.value)}")
        try:
            steps.append(f"remote-after:{sock.get_remote_address().value.port}")
        except Err as e:
            steps.append(f"remote-after:{_case(e.value)}")
        await sock.send(b"second", b)
        await sock.send(b"third", a)
        steps += sorted([await receive(), await receive()])
        steps.append(f"local-port-kept:{sock.get_local_address().value.port == port}")
        return steps
