"""wasi:http in Python: fields, requests, the outgoing handler against a loopback HTTP
server started here, its grants and timeouts, and a componentize-js guest whose `fetch`
goes through it.

The server listens on 127.0.0.1 only; every wait is bounded."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any, Iterator, List, Tuple

import pytest

import wasm_import
from wasm_import import Err, Ok, Wasi
from wasm_import._wasi import HttpHost
from wasm_import.runtime.wasi._http import Http, http_providers
from wasm_import.runtime.wasi._io import types_of, wait_any
from tests.wasi._netguests import build_js_guest, wasi_types

TYPES = "wasi:http/types"


@pytest.fixture(scope="module")
def types() -> Any:
    return wasi_types("wasi:http/imports@0.2.3")


class Server:
    """A loopback HTTP server recording each request: (method, path, headers, body)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: List[Tuple[str, str, dict, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                if self.path.startswith("/slow"):
                    time.sleep(0.3)
                if self.path.startswith("/silent"):
                    time.sleep(1.0)
                    return
                out = f"{self.command} {self.path} {self.headers.get('x-test', '-')} ".encode() + body
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("Content-Length", str(len(out)))
                self.send_header("X-Server", "loopback")
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(2)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def providers(types: Any, *grants: str) -> Tuple[Any, Any]:
    made = http_providers(types, Wasi(http=list(grants)).http_hosts)
    return made[TYPES], made["wasi:http/outgoing-handler"]


def request(types: Any, t: Any, method: str, url_port: int, path: str, headers: Any = (), body: bytes = b"",
            scheme: str = "HTTP") -> Tuple[Any, Any]:
    """(outgoing-request, its body written and not yet finished)."""
    req = t.OutgoingRequest(t.Fields.from_list(list(headers)))
    req.set_method(types.case(f"{TYPES}#method", method)())
    req.set_scheme(types.case(f"{TYPES}#scheme", scheme)())
    req.set_authority(f"127.0.0.1:{url_port}")
    req.set_path_with_query(path)
    out = req.body()
    if body:
        stream = out.write()
        stream.blocking_write_and_flush(body)
    return req, out


def code(types: Any, case: str) -> type:
    return types.case(f"{TYPES}#error-code", case)


def response_of(future: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while (got := future.get()) is None:
        assert time.monotonic() < deadline, "no response in time"
        wait_any([future.subscribe()])
    return got


def read_all(resp: Any) -> bytes:
    stream = resp.consume().stream()
    data = b""
    while True:
        try:
            data += stream.blocking_read(65536)
        except Err as e:
            assert type(e.value).__name__ == "StreamError_Closed"
            return data


# -- grants --------------------------------------------------------------------------------------

def test_http_grants_parse() -> None:
    assert Wasi(http=["127.0.0.1:8080", "[::1]:80", "Example.COM"]).http_hosts == (
        HttpHost("127.0.0.1", 8080), HttpHost("::1", 80), HttpHost("example.com", None))
    assert HttpHost("example.com", None).allows("EXAMPLE.com", 443)
    assert not HttpHost("127.0.0.1", 8080).allows("127.0.0.1", 8081)
    for bad in ("http://x", "host:port", "user@host", "[::1", ""):
        with pytest.raises(ValueError):
            Wasi(http=[bad])
    with pytest.raises(TypeError, match="not one string"):
        Wasi(http="127.0.0.1:8080")  # type: ignore[arg-type]


def test_request_to_a_host_not_granted_is_denied_and_sends_nothing(types: Any, server: Server) -> None:
    for grants in ((), (f"127.0.0.1:{server.port + 1}",), ("localhost",), ("127.0.0.2",)):
        t, handler = providers(types, *grants)
        req, body = request(types, t, "get", server.port, "/x")
        with pytest.raises(Err) as caught:
            handler.handle(req, None)
        assert type(caught.value.value) is code(types, "HTTP-request-denied")
    time.sleep(0.2)
    assert server.requests == []


# -- fields and requests -----------------------------------------------------------------------------

def test_fields(types: Any) -> None:
    t, _ = providers(types)
    fields = t.Fields.from_list([("Content-Type", b"text/plain"), ("x-a", b"1"), ("X-A", b"2")])
    assert fields.get("x-a") == [b"1", b"2"] and fields.has("CONTENT-type") and not fields.has("nope")
    fields.set("x-a", [b"3"])
    fields.append("x-b", b"4")
    fields.delete("content-type")
    assert fields.entries() == [("x-a", b"3"), ("x-b", b"4")]
    copy = fields.clone()
    copy.append("x-c", b"5")
    assert len(fields.entries()) == 2 and len(copy.entries()) == 3

    def header_error(action: Any) -> str:
        with pytest.raises(Err) as caught:
            action()
        return type(caught.value.value).__name__

    assert header_error(lambda: fields.append("bad name", b"x")) == "HeaderError_InvalidSyntax"
    assert header_error(lambda: fields.append("x", b"line\r\nbreak")) == "HeaderError_InvalidSyntax"
    assert header_error(lambda: fields.append("Host", b"elsewhere")) == "HeaderError_Forbidden"
    assert header_error(lambda: fields.append("Transfer-Encoding", b"chunked")) == "HeaderError_Forbidden"
    assert header_error(lambda: t.Fields.from_list([("Connection", b"close")])) == "HeaderError_Forbidden"
    req = t.OutgoingRequest(fields)
    assert header_error(lambda: req.headers().append("x-d", b"6")) == "HeaderError_Immutable"
    assert header_error(lambda: fields.set("x-a", [])) == "HeaderError_Immutable"


def test_outgoing_request_setters_validate(types: Any) -> None:
    t, _ = providers(types)
    req = t.OutgoingRequest(t.Fields())
    assert type(req.method()).__name__ == "Method_Get" and req.scheme() is None and req.authority() is None
    for setter, bad in ((req.set_method, types.case(f"{TYPES}#method", "other")("BAD METHOD")),
                        (req.set_path_with_query, "/has space"),
                        (req.set_authority, "user@host"),
                        (req.set_scheme, types.case(f"{TYPES}#scheme", "other")("1nope"))):
        with pytest.raises(Err) as caught:
            setter(bad)
        assert caught.value.value is None
    req.set_method(types.case(f"{TYPES}#method", "other")("PROPFIND"))
    assert req.method().value == "PROPFIND"
    req.body()
    with pytest.raises(Err):
        req.body()  # one body per request


# -- sending ------------------------------------------------------------------------------------------

def test_post_with_headers_and_body(types: Any, server: Server) -> None:
    t, handler = providers(types, f"127.0.0.1:{server.port}")
    req, body = request(types, t, "post", server.port, "/echo?q=1", [("x-test", b"yes")], b"payload")
    future = handler.handle(req, None)
    time.sleep(0.1)
    assert future.get() is None and server.requests == []  # the request waits for the body to finish
    t.OutgoingBody.finish(body, None)
    got = response_of(future)
    assert isinstance(got, Ok) and isinstance(got.value, Ok)
    resp = got.value.value
    assert resp.status() == 201
    assert resp.headers().get("x-server") == [b"loopback"]
    assert read_all(resp) == b"POST /echo?q=1 yes payload"
    [(method, path, headers, sent)] = server.requests
    assert (method, path, sent) == ("POST", "/echo?q=1", b"payload")
    assert headers["Host"] == f"127.0.0.1:{server.port}" and headers["Content-Length"] == "7"
    with pytest.raises(Err):
        resp.consume()  # one body per response
    assert future.get() == Err(None)  # a future gives its value once


def test_waiting_for_a_response_blocks_for_real(types: Any, server: Server) -> None:
    t, handler = providers(types, f"127.0.0.1:{server.port}")
    req, body = request(types, t, "get", server.port, "/slow")
    t.OutgoingBody.finish(body, None)
    start = time.monotonic()
    future = handler.handle(req, None)
    wait_any([future.subscribe()])
    assert 0.25 <= time.monotonic() - start < 5
    assert read_all(future.get().value.value) == b"GET /slow - "


def test_first_byte_timeout(types: Any, server: Server) -> None:
    t, handler = providers(types, f"127.0.0.1:{server.port}")
    req, body = request(types, t, "get", server.port, "/silent")
    t.OutgoingBody.finish(body, None)
    options = t.RequestOptions()
    options.set_first_byte_timeout(200_000_000)
    assert options.first_byte_timeout() == 200_000_000 and options.connect_timeout() is None
    start = time.monotonic()
    got = response_of(handler.handle(req, options))
    assert time.monotonic() - start < 0.9
    assert type(got.value.value) is code(types, "HTTP-response-timeout")


def test_connection_refused(types: Any) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    t, handler = providers(types, f"127.0.0.1:{port}")
    req, body = request(types, t, "get", port, "/")
    t.OutgoingBody.finish(body, None)
    got = response_of(handler.handle(req, None))
    assert type(got.value.value) is code(types, "connection-refused")


def test_a_body_dropped_unfinished_aborts_the_request(types: Any, server: Server) -> None:
    t, handler = providers(types, f"127.0.0.1:{server.port}")
    req, body = request(types, t, "put", server.port, "/never", body=b"half")
    future = handler.handle(req, None)
    body.__wasm_drop__()
    got = response_of(future)
    assert type(got.value.value) is code(types, "internal-error")
    assert server.requests == []


def test_a_body_its_content_length_misstates_is_not_sent(types: Any, server: Server) -> None:
    t, handler = providers(types, f"127.0.0.1:{server.port}")
    req, body = request(types, t, "post", server.port, "/", [("Content-Length", b"10")], b"short")
    t.OutgoingBody.finish(body, None)
    got = response_of(handler.handle(req, None))
    assert got.value.value == code(types, "HTTP-request-body-size")(5)
    assert server.requests == []


def test_http_error_code_of_a_body_stream_error(types: Any) -> None:
    from wasm_import.runtime.wasi._io import IoError

    made = Http(types, ())
    timeout = code(types, "HTTP-response-timeout")()
    assert made.http_error_code(IoError("slow", timeout)) == timeout
    assert made.http_error_code(IoError("plain", 5)) is None


# -- a componentize-js guest: fetch --------------------------------------------------------------------

@pytest.fixture(scope="module")
def jsfetch() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WASM_IMPORT_QUIET", "1")
        yield wasm_import.load(build_js_guest("jsfetch", "jsfetch"))


@pytest.mark.slow
def test_js_fetch_reaches_a_granted_host(jsfetch: Any, server: Server) -> None:
    inst = jsfetch.instantiate(wasi=Wasi(http=[f"127.0.0.1:{server.port}"]))
    assert inst.fetch_text(f"http://127.0.0.1:{server.port}/abc?x=1") == "200 GET /abc?x=1 - "
    assert inst.post_text(f"http://127.0.0.1:{server.port}/submit", "data") == "201 POST /submit yes data"
    assert [r[:2] for r in server.requests] == [("GET", "/abc?x=1"), ("POST", "/submit")]


@pytest.mark.slow
def test_js_fetch_without_a_grant_is_denied(jsfetch: Any, server: Server) -> None:
    refusals: List[Any] = []

    def handle(request: Any, options: Any) -> Any:
        # The default handler, watched: replacing one wasi:* interface through imports=
        # leaves the rest (wasi:http/types here) on the default implementation.
        try:
            return Http(types_of(request), ()).handle(request, options)
        except Err as e:
            refusals.append(e.value)
            raise

    for inst in (jsfetch.instantiate(wasi=Wasi()),
                 jsfetch.instantiate(wasi=Wasi(http=[f"127.0.0.1:{server.port + 1}"])),
                 jsfetch.instantiate(wasi=Wasi(), imports={"wasi:http/outgoing-handler": SimpleNamespace(
                     handle=handle)})):
        answer = inst.fetch_text(f"http://127.0.0.1:{server.port}/secret")
        assert answer.startswith("error: ") and "200" not in answer
    assert [type(e).__name__ for e in refusals] == ["ErrorCode_HttpRequestDenied"]
    time.sleep(0.2)
    assert server.requests == []
