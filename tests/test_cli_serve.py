"""`wasm-import serve`: a component's exported HTTP handler behind the stdlib HTTP/1.1 server.

Each test talks to a real `python -m wasm_import serve GUEST --port 0` child process with
`http.client` or a raw socket. Guests (see tests/wasi/test_http_serve.py): `httpserve`
(componentize-py, `wasi:http/incoming-handler@0.2.3`), `p3http` (componentize-py async,
`wasi:http/handler@0.3.0`), `jsserve` (componentize-js, 0.2). Their routes: `/trap` traps,
`/count` says how many requests the instance has seen, `/stream` answers in five chunks,
anything else echoes (status from `x-status`, the body, trailers when asked by `x-trailer`).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import pytest

from tests._build import build_python_guest

pytestmark = pytest.mark.slow  # builds componentize-py guests on a fresh checkout

REPO = Path(__file__).resolve().parents[1]
GUESTS = {"0.2": ("httpserve", "wasi:http/incoming-handler@0.2.3"), "0.3": ("p3http", "wasi:http/handler@0.3.0")}
MiB = 1 << 20
MAX_BODY = "1536K"  # the servers' --max-body: a 1 MiB body passes, 2 MiB is refused
DATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")


class Server:
    """A `wasm-import serve` child process; its stderr is collected line by line."""

    def __init__(self, wasm: Path, *flags: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen([sys.executable, "-m", "wasm_import", "serve", str(wasm), "--port", "0",
                                         *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=env, cwd=str(REPO))
        self.stderr: List[str] = []
        threading.Thread(target=self._collect, daemon=True).start()
        assert self.process.stdout is not None
        self.banner = self.process.stdout.readline()
        match = re.fullmatch(r"serving (\S+) \((\S+)\) on http://127\.0\.0\.1:(\d+)\n", self.banner)
        assert match is not None, (self.banner, self.stderr)
        self.file, self.handler, self.port = match.group(1), match.group(2), int(match.group(3))

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None, headers: Optional[dict] = None,
                **kw: Any) -> Tuple[int, List[Tuple[str, str]], bytes]:
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {}, **kw)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        """Send `data` on a fresh connection; everything the server sends until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            sock.sendall(data)
            received = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received
                received += chunk

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture(scope="module", params=sorted(GUESTS))
def server(request: Any) -> Iterator[Server]:
    """A server per guest (0.2 and 0.3), a fresh instance per request."""
    name, _ = GUESTS[request.param]
    served = Server(build_python_guest(name), "--max-body", MAX_BODY)
    yield served
    served.stop()


def _dated(headers: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """The headers with `date`'s value checked and replaced by "<date>"."""
    out = []
    for name, value in headers:
        if name == "date":
            assert DATE.fullmatch(value), value
            value = "<date>"
        out.append((name, value))
    return out


def _echoed(method: str, path: str, port: int, echo: str = "", *, framing: Tuple[str, str]) -> List[Tuple[str, str]]:
    return [("content-type", "application/octet-stream"), ("x-method", method), ("x-path", path), ("x-echo", echo),
            ("x-authority", f"127.0.0.1:{port}"), ("x-scheme", "HTTP"), framing, ("date", "<date>")]


CHUNKED = ("transfer-encoding", "chunked")


# -- round trips ---------------------------------------------------------------------------------------

def test_banner_names_the_file_and_its_handler(server: Server) -> None:
    name, handler = GUESTS["0.2" if "httpserve" in server.file else "0.3"]
    assert server.file.startswith(name) and server.file.endswith(".wasm") and server.handler == handler


def test_get_round_trip(server: Server) -> None:
    status, headers, body = server.request("GET", "/hello?x=1&y=%20", headers={"x-echo": "hi"})
    assert status == 200 and body == b""
    assert _dated(headers) == _echoed("GET", "/hello?x=1&y=%20", server.port, "hi", framing=CHUNKED)


def test_post_round_trip_with_status_and_repeated_headers(server: Server) -> None:
    conn = server.connection()
    conn.putrequest("POST", "/echo")
    for name, value in (("x-echo", "one"), ("X-Echo", "two"), ("x-status", "201"), ("content-length", "8")):
        conn.putheader(name, value)
    conn.endheaders(b"the body")
    response = conn.getresponse()
    assert (response.status, response.reason, response.read()) == (201, "Created", b"the body")
    assert _dated(response.getheaders()) == _echoed("POST", "/echo", server.port, "one,two", framing=CHUNKED)
    conn.close()


def test_fresh_instance_per_request(server: Server) -> None:
    assert [server.request("GET", "/count")[2] for _ in range(3)] == [b"count=1"] * 3


def test_keep_alive_serves_requests_on_one_connection(server: Server) -> None:
    conn = server.connection()
    bodies = []
    for i in range(3):
        conn.request("PUT", f"/k{i}", body=f"body {i}".encode())
        if i == 0:
            first = conn.sock
        response = conn.getresponse()
        bodies.append((response.status, response.read()))
        assert conn.sock is first  # the same socket: the connection was kept
    assert bodies == [(200, b"body 0"), (200, b"body 1"), (200, b"body 2")]
    conn.close()


def test_one_mib_body(server: Server) -> None:
    body = bytes(range(256)) * (MiB // 256)
    status, headers, echoed = server.request("POST", "/big", body=body)
    assert status == 200 and echoed == body and ("x-path", "/big") in headers


def test_chunked_request_body(server: Server) -> None:
    pieces = [b"a" * 10, b"", b"b" * 70000, b"c"]
    conn = server.connection()
    conn.request("POST", "/chunked", body=iter(pieces), encode_chunked=True)
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"".join(pieces))
    conn.close()


def test_raw_chunked_exchange_with_trailers_and_extensions(server: Server) -> None:
    """Chunk extensions and request trailers are read and dropped; the response's trailers
    go out after its last chunk; `Connection: close` closes after the response."""
    raw = server.raw(b"POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nx-trailer: done\r\n"
                     b"Connection: close\r\n\r\n"
                     b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-request-trailer: dropped\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert lines[1:-2] == [b"content-type: application/octet-stream", b"x-method: POST", b"x-path: /t",
                           b"x-echo: ", b"x-authority: h", b"x-scheme: HTTP", b"transfer-encoding: chunked"]
    assert lines[-2] == b"connection: close" and DATE.fullmatch(lines[-1].split(b": ", 1)[1].decode())
    assert rest == b"5\r\nabcde\r\n0\r\nx-trailer: done\r\n\r\n"


def test_pipelined_requests_answered_in_order(server: Server) -> None:
    raw = server.raw(b"PUT /p1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none"
                     b"GET /count HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    first, _, second = raw.partition(b"0\r\n\r\nHTTP/1.1 ")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nx-path: /p1\r\n" in first
    assert first.endswith(b"\r\n\r\n3\r\none\r\n")
    assert second.startswith(b"200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n")
    assert second.endswith(b"\r\n\r\n7\r\ncount=1\r\n0\r\n\r\n")


def test_absolute_form_target_gives_the_authority(server: Server) -> None:
    raw = server.raw(b"GET http://example.com:81?a=b HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nx-path: /?a=b\r\n" in raw and b"\r\nx-authority: example.com:81\r\n" in raw


def test_streamed_response_arrives_whole(server: Server) -> None:
    status, headers, body = server.request("GET", "/stream")
    assert status == 200 and body == b"".join(f"chunk {i}\n".encode() for i in range(5))
    assert _dated(headers) == [("content-type", "text/plain"), CHUNKED, ("date", "<date>")]


def test_http_1_0_response_is_delimited_by_close(server: Server) -> None:
    raw = server.raw(b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[:3] == [b"HTTP/1.0 200 OK", b"content-type: text/plain", b"connection: close"]
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_head_request_has_no_body(server: Server) -> None:
    status, headers, body = server.request("HEAD", "/x")
    assert (status, body) == (200, b"") and ("x-method", "HEAD") in headers


def test_concurrent_requests_all_answered(server: Server) -> None:
    def one(i: int) -> Tuple[int, bytes]:
        status, _, body = server.request("POST", f"/c{i}", body=f"request {i} ".encode() * 1000)
        return status, body

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert results == [(200, f"request {i} ".encode() * 1000) for i in range(16)]


# -- refusals and failures -------------------------------------------------------------------------------

def test_too_big_body_is_413(server: Server) -> None:
    body = b"x" * (2 * MiB)
    status, headers, text = server.request("POST", "/big", body=body)  # Content-Length says so: refused at once
    assert (status, text) == (413, b"Payload Too Large") and ("connection", "close") in headers
    conn = server.connection()
    conn.request("POST", "/big", body=iter([body[:MiB], body[MiB:]]), encode_chunked=True)  # found out by counting
    response = conn.getresponse()
    assert (response.status, response.read()) == (413, b"Payload Too Large")
    conn.close()
    assert server.request("POST", "/after", body=b"ok")[2] == b"ok"  # and it serves on


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", 400),                                             # not METHOD SP target SP version
    (b"GET /x HTTP/1.1 extra\r\nHost: h\r\n\r\n", 400),
    (b"G(T /x HTTP/1.1\r\nHost: h\r\n\r\n", 400),                          # the method is not a token
    (b"GET /x HTTQ/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET x HTTP/1.1\r\nHost: h\r\n\r\n", 400),                           # not a path
    (b"GET /x HTTP/1.1\r\n\r\n", 400),                                     # HTTP/1.1 without Host
    (b"GET /x HTTP/1.1\r\nHost: h\r\nbad header\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: h\r\nx-a : 1\r\n\r\n", 400),               # a blank before the colon
    (b"GET /x HTTP/1.1\r\nHost: h\r\nx-a: 1\r\n folded\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),  # a bad chunk size
    (b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"GET /x HTTP/2.0\r\nHost: h\r\n\r\n", 505),
    (b"GET /x HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417),
    (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    (b"GET /x HTTP/1.1\r\nHost: h\r\n" + b"x-a: 1\r\n" * 200 + b"\r\n", 431),
])
def test_malformed_requests_get_4xx_and_close(server: Server, request_bytes: bytes, status: int) -> None:
    raw = server.raw(request_bytes)  # returns when the server has closed the connection
    assert raw.startswith(f"HTTP/1.1 {status} ".encode()), raw[:100]
    assert b"\r\nconnection: close\r\n" in raw.partition(b"\r\n\r\n")[0] + b"\r\n"


def test_bad_input_never_stops_the_server(server: Server) -> None:
    for junk in (b"\x00\xff" * 100, b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", b"\r\n\r\n\r\n\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(junk)  # then hang up, mid-request for some
    with socket.create_connection(("127.0.0.1", server.port), timeout=10):
        pass  # connect and say nothing
    assert server.request("GET", "/count")[:1] == (200,)
    assert server.process.poll() is None


def test_expect_100_continue(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, response.read()) == (200, b"hello")


def test_trap_is_500_and_one_line_on_stderr(server: Server) -> None:
    status, headers, body = server.request("GET", "/trap?why=test")
    assert (status, body) == (500, b"Internal Server Error")
    assert _dated(headers) == [("content-type", "text/plain; charset=utf-8"), ("content-length", "21"),
                               ("date", "<date>")]
    deadline = time.monotonic() + 10
    while not [line for line in server.stderr if "/trap?why=test" in line] and time.monotonic() < deadline:
        time.sleep(0.05)
    ours = [line for line in server.stderr if "/trap?why=test" in line]
    assert len(ours) == 1, server.stderr
    assert re.fullmatch(r"error: the HTTP handler of <component module .*> failed on GET /trap\?why=test: "
                        r"Trap: .*\n", ours[0]), ours[0]
    assert server.request("GET", "/after-trap")[0] == 200


def test_sigint_stops_the_server_with_status_0(server: Server) -> None:
    name, _ = GUESTS["0.2" if "httpserve" in server.file else "0.3"]
    other = Server(build_python_guest(name))
    assert other.request("GET", "/count")[2] == b"count=1"
    conn = other.connection()  # an idle kept-alive connection does not hold the server up,
    conn.request("GET", "/count")
    conn.getresponse().read()
    half = socket.create_connection(("127.0.0.1", other.port), timeout=10)  # nor a request half sent
    half.sendall(b"POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly ten b")
    time.sleep(0.2)
    started = time.monotonic()
    assert other.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 10
    assert not any("Traceback" in line for line in other.stderr), other.stderr
    assert half.recv(100) == b""  # closed without an answer
    conn.close()
    half.close()


# -- options and other components -------------------------------------------------------------------------

def test_reuse_instance_shares_one_instance() -> None:
    server = Server(build_python_guest("httpserve"), "--reuse-instance")
    try:
        assert [server.request("GET", "/count")[2] for _ in range(3)] == [b"count=1", b"count=2", b"count=3"]
    finally:
        assert server.stop() == 0


def test_a_component_without_http_handler_exits_2(adder_wasm: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    commands = [[sys.executable, "-m", "wasm_import"]]
    script = shutil.which("wasm-import")
    if script is not None:  # the console script too, where it is installed
        commands.append([script])
    for command in commands:
        done = subprocess.run([*command, "serve", str(adder_wasm), "--port", "0"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr == (f"error: {adder_wasm} exports no HTTP handler (wasi:http/incoming-handler@0.2.x or "
                               "wasi:http/handler@0.3.x); it exports: docs:adder/add@0.1.0\n")


def test_javascript_handler() -> None:
    pytest.importorskip("tests.wasi._netguests")
    from tests.wasi._netguests import build_jsserve

    server = Server(build_jsserve())
    try:
        assert server.handler == "wasi:http/incoming-handler@0.2.10"
        for _ in range(2):  # a componentize-js instance answers one request: each gets a fresh one
            status, headers, body = server.request("POST", "/js?q=1", body=b"from js", headers={"x-echo": "e"})
            assert (status, body) == (200, b"from js")
            assert _dated(headers) == [("content-type", "application/octet-stream"), ("x-method", "POST"),
                                       ("x-path", "/js?q=1"), ("x-echo", "e"), ("content-length", "7"),
                                       ("date", "<date>")]  # the guest's own content-length frames the body
        assert server.request("GET", "/trap")[0] == 500
    finally:
        assert server.stop() == 0


def test_a_port_in_use_is_an_error_and_a_bad_port_a_usage_error() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    wasm = str(build_python_guest("httpserve"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "wasm_import", "serve", wasm, "--port", str(port)],
                              capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("error: ") and "address already in use" in done.stderr
    done = subprocess.run([sys.executable, "-m", "wasm_import", "serve", wasm, "--port", "70000"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "argument --port: '70000' is not a port (0..65535)" in done.stderr
