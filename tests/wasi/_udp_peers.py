"""Two loopback UDP peers for the disconnect tests of WASI 0.2 and 0.3 (`udp-disconnect` of
the `netuser` and `p3net` guests): each answers "<name> got <data>" to whoever sent it a
datagram and records what it got, from where. When A gets "first" (the guest is then
connected to A), B sends "early from B" to the guest before A answers: a connected
socket must never receive it. A guest bound to 0.0.0.0 reads its local address as
127.0.0.1 while connected: the kernel picked the route."""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Dict, List, Optional, Tuple

__all__ = ["UdpPeers"]


class UdpPeers:
    def __init__(self) -> None:
        self.socks: Dict[str, socket.socket] = {}
        for name in ("A", "B"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            self.socks[name] = sock
        self.port = {name: sock.getsockname()[1] for name, sock in self.socks.items()}
        self.seen: Dict[str, List[Tuple[bytes, int]]] = {"A": [], "B": []}
        self.early_to: Optional[int] = None
        self._thread: Optional[threading.Thread] = None

    def start(self, expected: int = 3, seconds: float = 20) -> None:
        """Answer until `expected` datagrams came in, or `seconds` passed."""
        def serve() -> None:
            deadline = time.monotonic() + seconds
            by_fd = {sock.fileno(): name for name, sock in self.socks.items()}
            while sum(map(len, self.seen.values())) < expected and time.monotonic() < deadline:
                ready, _, _ = select.select(list(self.socks.values()), [], [], 0.1)
                for sock in ready:
                    name = by_fd[sock.fileno()]
                    data, sender = sock.recvfrom(65535)
                    self.seen[name].append((data, sender[1]))
                    if name == "A" and data == b"first":
                        self.early_to = sender[1]
                        self.socks["B"].sendto(b"early from B", sender)
                    sock.sendto(f"{name} got ".encode() + data, sender)

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(25)

    def close(self) -> None:
        self.join()
        for sock in self.socks.values():
            sock.close()

    def steps(self, code: Dict[str, str]) -> List[str]:
        """What the guest reports when all goes as WASI says; `code` spells the error
        codes the guest's WASI version names ("invalid-argument" -> its spelling)."""
        a, b = self.port["A"], self.port["B"]
        return [f"send-elsewhere:{code['invalid-argument']}", f"{a}:A got first", f"remote:{a}",
                "local:127.0.0.1", f"remote-after:{code['invalid-state']}",
                *sorted([f"{a}:A got third", f"{b}:B got second"]),
                "local-port-kept:True"]
