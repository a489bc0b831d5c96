"""The `netuser` test guest (componentize-py, with WASI): Python's own `socket` module,
which componentize-py's CPython runs on `wasi:sockets`."""

import encodings.idna  # noqa: F401  (socket.getaddrinfo encodes host names with it; bundle it)
import socket

import wit_world
from componentize_py_types import Err


def _fail(e: BaseException) -> Err:
    return Err(f"{type(e).__name__}: {e}")


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
