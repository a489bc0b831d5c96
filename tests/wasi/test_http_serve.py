"""Serving HTTP: Python calling a component's *exported* handler, and mounting it as ASGI.

Real guests built from source:
- `httpserve` (tests/guests/httpserve): componentize-py, world `wasi:http/proxy@0.2.3`,
  exporting `wasi:http/incoming-handler` (the host makes the `incoming-request` and the
  `response-outparam`);
- `p3http` (tests/guests/p3http): componentize-py async, exporting `wasi:http/handler@0.3.0`
  (the host makes a `request` with a body stream and reads the returned `response`'s);
  the same routes as httpserve (see their app.py);
- `jsserve` (tests/guests/jsserve): componentize-js, a `fetch` event handler, as JavaScript
  plug-ins are written (one request per instance: StarlingMonkey's fetch event is single).

`handle_http` / `handle_http_async` are called directly; the ASGI app is driven by direct
ASGI calls (`await app(scope, receive, send)` with real receive/send callables).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

import wasm_import
from wasm_import import (HttpHandlerError, HttpRequest, HttpResponse, InstancePoisonedError, Trap, asgi, handle_http,
                         handle_http_async)
from tests._build import build_python_guest
from tests.wasi._netguests import build_jsserve

pytestmark = pytest.mark.slow  # builds two componentize-py guests on a fresh checkout

GUESTS = {"0.2": "httpserve", "0.3": "p3http"}
MiB = 1 << 20


@pytest.fixture(scope="module", params=sorted(GUESTS))
def guest(request: Any) -> Any:
    """The module of each guest (0.2 and 0.3), loaded once per test module."""
    return wasm_import.load(build_python_guest(GUESTS[request.param]))


def _series(module: Any) -> str:
    return "0.2" if any(k.startswith("wasi:http/incoming-handler@") for k in module.exports) else "0.3"


def _echo_headers(method: str, path: str, echo: bytes, authority: str = "", scheme: str = "HTTP") -> tuple:
    return (("content-type", b"application/octet-stream"), ("x-method", method.encode()), ("x-path", path.encode()),
            ("x-echo", echo), ("x-authority", authority.encode()), ("x-scheme", scheme.encode()))


# -- handle_http --------------------------------------------------------------------------------------

def test_echo_exact_status_headers_and_body(guest: Any) -> None:
    inst = guest.instantiate()
    response = handle_http(inst, HttpRequest(
        "POST", "/echo?x=1&y=%20", headers=[("x-echo", "hello"), ("X-Echo", b"two"), ("x-status", "201"),
                                            ("host", "example.com:8080"), ("connection", "keep-alive")],
        body=b"the body"))
    assert response == HttpResponse(201, _echo_headers("POST", "/echo?x=1&y=%20", b"hello,two", "example.com:8080"),
                                    b"the body", None)
    assert response.header("X-ECHO") == b"hello,two" and response.header("absent") is None


def test_method_scheme_and_authority_reach_the_guest(guest: Any) -> None:
    inst = guest.instantiate()
    response = handle_http(inst, HttpRequest("PURGE", "/", scheme="https", authority="plugins.local"))
    assert (response.status, response.body) == (200, b"")
    assert response.headers == _echo_headers("PURGE", "/", b"", "plugins.local", "HTTPS")
    other = handle_http(inst, HttpRequest("DELETE", "/x", scheme="gopher"))
    assert other.header("x-method") == b"DELETE" and other.header("x-scheme") == b"gopher"  # scheme other("gopher")


def test_one_mib_body_echoed_exactly_with_trailers(guest: Any) -> None:
    body = bytes(range(256)) * (MiB // 256)
    response = handle_http(guest, HttpRequest("PUT", "/big", [("x-trailer", "done")], body))
    assert response.status == 200
    assert len(response.body) == MiB and response.body == body
    assert response.trailers == (("x-trailer", b"done"),)


def test_bad_request_headers_are_refused_before_any_wasm_runs(guest: Any) -> None:
    inst = guest.instantiate()
    with pytest.raises(ValueError, match=r"header 0: name 'bad name' is not an HTTP token"):
        handle_http(inst, HttpRequest(headers=[("bad name", "x")]))
    with pytest.raises(ValueError, match=r"header 'x-a': value b'line\\nbreak' has control characters"):
        handle_http(inst, HttpRequest(headers=[("x-a", "line\nbreak")]))
    with pytest.raises(ValueError, match=r"header 'x-a': value b' padded' has control characters or leading/"):
        handle_http(inst, HttpRequest(headers=[("x-a", b" padded")]))
    with pytest.raises(ValueError, match="value 'caf\u20ac' is not latin-1"):
        handle_http(inst, HttpRequest(headers=[("x-a", "caf\u20ac")]))
    with pytest.raises(TypeError, match=r"header 0 must be a \(name, value\) pair"):
        handle_http(inst, HttpRequest(headers=["x-a: 1"]))  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"method 'GET /' is not an HTTP token"):
        handle_http(inst, HttpRequest("GET /"))
    with pytest.raises(ValueError, match=r"path '/a b' is not a path with query"):
        handle_http(inst, HttpRequest("GET", "/a b"))
    with pytest.raises(TypeError, match=r"expected a wasm_import.HttpRequest, got dict"):
        handle_http(inst, {"method": "GET"})  # type: ignore[arg-type]
    assert handle_http(inst, HttpRequest("GET", "/count")).body == b"count=1"  # none of those reached it


def test_the_guest_sees_wasi_refuse_a_bad_header_name(guest: Any) -> None:
    assert handle_http(guest, HttpRequest("GET", "/bad-header")).body == b"HeaderError_InvalidSyntax"


def test_a_trap_raises_trap_and_the_module_serves_on_with_a_fresh_instance(guest: Any) -> None:
    handle_http(guest, HttpRequest("GET", "/count"))
    with pytest.raises(Trap) as caught:
        handle_http(guest, HttpRequest("GET", "/trap"))
    # the guest's traceback rides on the Trap (0.3's async exports too)
    assert "ValueError: the handler failed on purpose" in caught.value.stderr
    assert handle_http(guest, HttpRequest("GET", "/count")).body == b"count=1"


def test_a_trap_poisons_an_instance_target(guest: Any) -> None:
    inst = guest.instantiate()
    assert handle_http(inst, HttpRequest("GET", "/count")).body == b"count=1"
    with pytest.raises(Trap):
        handle_http(inst, HttpRequest("GET", "/trap"))
    with pytest.raises(InstancePoisonedError):
        handle_http(inst, HttpRequest("GET", "/count"))


def test_an_error_code_raises_http_handler_error_and_the_instance_stays_usable(guest: Any) -> None:
    inst = guest.instantiate()
    with pytest.raises(HttpHandlerError, match=r"error-code ErrorCode_InternalError\('refused on purpose'\)") as e:
        handle_http(inst, HttpRequest("GET", "/error"))
    assert type(e.value.error_code).__name__ == "ErrorCode_InternalError"
    assert e.value.error_code.value == "refused on purpose"
    assert isinstance(e.value, wasm_import.WasmImportError) and not isinstance(e.value, Trap)
    assert handle_http(inst, HttpRequest("GET", "/count")).body == b"count=2"


def test_a_0_2_handler_that_never_sets_its_outparam() -> None:
    inst = wasm_import.load(build_python_guest("httpserve")).instantiate()
    with pytest.raises(HttpHandlerError, match="returned without setting its response-outparam") as e:
        handle_http(inst, HttpRequest("GET", "/noset"))
    assert e.value.error_code is None
    assert handle_http(inst, HttpRequest("GET", "/count")).body == b"count=2"


def test_a_component_without_a_handler_is_a_type_error(kitchen_wasm: Any) -> None:
    kitchen = wasm_import.load(kitchen_wasm)
    with pytest.raises(TypeError, match=r"exports no HTTP handler \(wasi:http/incoming-handler@0.2.x or "
                                        r"wasi:http/handler@0.3.x\); it exports: .*test:kitchen/echo"):
        handle_http(kitchen, HttpRequest())
    with pytest.raises(TypeError, match="exports no HTTP handler"):
        asgi(kitchen)
    with pytest.raises(TypeError, match="expected a component module or instance"):
        handle_http("plugin.wasm", HttpRequest())


def test_handle_http_async_runs_many_requests_at_once(guest: Any) -> None:
    async def main() -> List[HttpResponse]:
        inst = guest.instantiate()
        return await asyncio.gather(*(handle_http_async(inst, HttpRequest("POST", f"/r{i}", body=b"%d" % i * 5000))
                                      for i in range(8)))

    for i, response in enumerate(asyncio.run(main())):
        assert response.header("x-path") == f"/r{i}".encode() and response.body == b"%d" % i * 5000


def test_a_0_2_handler_does_not_block_the_event_loop() -> None:
    """While a 0.2 handler echoes 8 MiB on its worker thread, the loop keeps ticking."""
    module = wasm_import.load(build_python_guest("httpserve"))
    inst = module.instantiate()
    handle_http(inst, HttpRequest("GET", "/"))  # warm

    async def main() -> Tuple[HttpResponse, int]:
        ticks = 0
        done = False

        async def tick() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.ensure_future(tick())
        response = await handle_http_async(inst, HttpRequest("POST", "/", body=b"x" * (8 * MiB)))
        done = True
        await ticker
        return response, ticks

    response, ticks = asyncio.run(main())
    assert len(response.body) == 8 * MiB and ticks > 10


def test_a_0_3_handler_needs_handle_http_async_inside_a_running_loop() -> None:
    module = wasm_import.load(build_python_guest("p3http"))

    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"await wasm_import.handle_http_async\(\) instead"):
            handle_http(module, HttpRequest())

    asyncio.run(main())


# -- the ASGI app -------------------------------------------------------------------------------------

class Exchange:
    """One ASGI request driven by hand: what the app sent back."""

    def __init__(self, messages: List[Dict[str, Any]]) -> None:
        self.messages = messages
        start = messages[0]
        assert start["type"] == "http.response.start", messages
        self.status: int = start["status"]
        self.headers: List[Tuple[bytes, bytes]] = start["headers"]
        bodies = [m for m in messages if m["type"] == "http.response.body"]
        self.body = b"".join(m.get("body", b"") for m in bodies)
        self.complete = bool(bodies) and not bodies[-1].get("more_body", False)
        trailers = [m for m in messages if m["type"] == "http.response.trailers"]
        self.trailers = trailers[0]["headers"] if trailers else None

    def header(self, name: bytes) -> Optional[bytes]:
        return next((v for n, v in self.headers if n == name), None)


async def call(app: Any, method: str = "GET", path: str = "/", query: bytes = b"",
               headers: Sequence[Tuple[bytes, bytes]] = (), chunks: Sequence[bytes] = (b"",),
               extensions: Optional[Dict[str, Any]] = None) -> Exchange:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
             "root_path": "", "headers": list(headers), "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 50000), "extensions": extensions or {}}
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)  # a real server blocks until the client goes away
        return {"type": "http.disconnect"}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return Exchange(sent)


def test_asgi_get_and_post_round_trips(guest: Any) -> None:
    app = asgi(guest)

    async def main() -> Tuple[Exchange, Exchange]:
        get = await call(app, "GET", "/hello", query=b"a=1", headers=[(b"host", b"shop.test"), (b"x-echo", b"hi")])
        post = await call(app, "POST", "/items", headers=[(b"content-type", b"text/plain")],
                          chunks=[b"first,", b"second,", b"third"])
        return get, post

    get, post = asyncio.run(main())
    assert (get.status, get.body, get.complete) == (200, b"", True)
    assert get.headers == [(b"content-type", b"application/octet-stream"), (b"x-method", b"GET"),
                           (b"x-path", b"/hello?a=1"), (b"x-echo", b"hi"), (b"x-authority", b"shop.test"),
                           (b"x-scheme", b"HTTP")]
    assert (post.status, post.body, post.complete) == (200, b"first,second,third", True)
    assert post.header(b"x-method") == b"POST" and post.header(b"x-authority") == b"127.0.0.1:8000"
    assert get.trailers is None  # no trailers extension: none sent


def test_asgi_module_target_gives_each_request_a_fresh_instance(guest: Any) -> None:
    app = asgi(guest)
    inst = guest.instantiate()
    shared = asgi(inst)

    async def main() -> Tuple[List[bytes], List[bytes]]:
        fresh = [(await call(app, "GET", "/count")).body for _ in range(3)]
        kept = [(await call(shared, "GET", "/count")).body for _ in range(3)]
        return fresh, kept

    assert asyncio.run(main()) == ([b"count=1"] * 3, [b"count=1", b"count=2", b"count=3"])
    with pytest.raises(TypeError, match="an instance target already has its own"):
        asgi(inst, wasi=wasm_import.Wasi())


def test_asgi_answers_500_for_a_trap_and_for_an_error_code_and_logs(guest: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    app = asgi(guest)
    inst = guest.instantiate()
    shared = asgi(inst)

    async def main() -> List[Exchange]:
        return [await call(app, "GET", "/trap"), await call(app, "GET", "/error"), await call(app, "GET", "/count"),
                await call(shared, "GET", "/trap"), await call(shared, "GET", "/count")]

    with caplog.at_level(logging.ERROR, logger="wasm_import.http"):
        trap, error, after, shared_trap, poisoned = asyncio.run(main())
    for answer in (trap, error, shared_trap, poisoned):
        assert (answer.status, answer.body, answer.complete) == (500, b"Internal Server Error", True)
    assert (after.status, after.body) == (200, b"count=1")  # the server serves on
    logged = [r for r in caplog.records if r.name == "wasm_import.http"]
    assert [r.exc_info[0] for r in logged if r.exc_info] == [Trap, HttpHandlerError, Trap, InstancePoisonedError]
    assert all(re.search(r"the HTTP handler of .* failed on GET /(trap|error|count)", r.getMessage())
               for r in logged)


def test_asgi_refuses_a_too_big_body_with_413(guest: Any) -> None:
    inst = guest.instantiate()
    app = asgi(inst, max_body=1000)

    async def main() -> List[Exchange]:
        return [await call(app, "POST", "/", headers=[(b"content-length", b"1001")], chunks=[b"x" * 1001]),
                await call(app, "POST", "/", chunks=[b"x" * 600, b"x" * 600]),  # no content-length: counted
                await call(app, "POST", "/", chunks=[b"x" * 500, b"x" * 500]),
                await call(app, "GET", "/count")]

    declared, streamed, fits, count = asyncio.run(main())
    assert (declared.status, declared.body) == (413, b"Payload Too Large")
    assert (streamed.status, streamed.body) == (413, b"Payload Too Large")
    assert (fits.status, fits.body) == (200, b"x" * 1000)
    assert count.body == b"count=2"  # the refused requests never reached the guest


def test_asgi_answers_400_for_a_header_wasi_cannot_carry(guest: Any) -> None:
    app = asgi(guest)
    answer = asyncio.run(call(app, "GET", "/", headers=[(b"bad name", b"x")]))
    assert (answer.status, answer.body) == (400, b"Bad Request")


def test_asgi_concurrent_requests_are_all_answered(guest: Any) -> None:
    app = asgi(guest)
    inst = guest.instantiate()
    shared = asgi(inst)

    async def main() -> Tuple[List[Exchange], List[Exchange]]:
        fresh = await asyncio.gather(*(call(app, "POST", f"/p{i}", chunks=[b"%d-" % i * 3000, b"end"])
                                       for i in range(6)))
        kept = await asyncio.gather(*(call(shared, "POST", f"/s{i}", chunks=[b"%d." % i * 100]) for i in range(6)))
        return fresh, kept

    fresh, kept = asyncio.run(main())
    for i, answer in enumerate(fresh):
        assert (answer.status, answer.header(b"x-path"), answer.body) == (200, f"/p{i}".encode(), b"%d-" % i * 3000 + b"end")
    for i, answer in enumerate(kept):
        assert (answer.status, answer.header(b"x-path"), answer.body) == (200, f"/s{i}".encode(), b"%d." % i * 100)


def test_asgi_streams_the_body_and_sends_trailers_when_the_server_can(guest: Any) -> None:
    app = asgi(guest)

    async def main() -> Tuple[Exchange, Exchange]:
        streamed = await call(app, "GET", "/stream")
        with_trailers = await call(app, "POST", "/t", headers=[(b"x-trailer", b"yes")], chunks=[b"body"],
                                   extensions={"http.response.trailers": {}})
        return streamed, with_trailers

    streamed, with_trailers = asyncio.run(main())
    assert streamed.body == b"".join(b"chunk %d\n" % i for i in range(5)) and streamed.complete
    if _series(guest) == "0.3":  # each write reaches the server as it is made (0.2's may coalesce)
        assert [m["body"] for m in streamed.messages[1:]] == [b"chunk %d\n" % i for i in range(5)] + [b""]
    assert streamed.messages[0].get("trailers") is None
    assert with_trailers.messages[0]["trailers"] is True
    assert (with_trailers.body, with_trailers.trailers) == (b"body", [(b"x-trailer", b"yes")])


def test_asgi_lifespan_is_acknowledged(guest: Any) -> None:
    app = asgi(guest)
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return events.pop(0)

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    with pytest.raises(ValueError, match="serves HTTP only, not ASGI scope type 'websocket'"):
        asyncio.run(app({"type": "websocket"}, receive, send))


# -- a componentize-js fetch-event handler ------------------------------------------------------------

@pytest.fixture(scope="module")
def jsserve() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WASM_IMPORT_QUIET", "1")
        return wasm_import.load(build_jsserve())


def test_js_fetch_event_handler_echoes(jsserve: Any) -> None:
    body = bytes(range(256)) * (MiB // 256)
    response = handle_http(jsserve.instantiate(), HttpRequest(
        "POST", "/big?q=1", [("x-echo", "from python"), ("x-status", "202")], body, authority="plugin.local"))
    assert (response.status, response.trailers) == (202, None)
    assert response.headers == (("content-type", b"application/octet-stream"), ("x-method", b"POST"),
                                ("x-path", b"/big?q=1"), ("x-echo", b"from python"),
                                ("Content-Length", b"1048576"))
    assert response.body == body


def test_a_js_exception_is_a_500_the_host_sees_as_http_handler_error(jsserve: Any) -> None:
    with pytest.raises(HttpHandlerError, match=r"response body unfinished \(status 500;") as e:
        handle_http(jsserve.instantiate(), HttpRequest("GET", "/trap", authority="plugin.local"))
    assert e.value.stderr.splitlines()[:3] == ["Error while running request handler: the handler failed on purpose",
                                               "Stack:", "  handle@app.js:13:11"]
    assert "guest stderr (last 4 lines):" in str(e.value)


def test_a_js_instance_serves_one_request(jsserve: Any) -> None:
    inst = jsserve.instantiate()
    assert handle_http(inst, HttpRequest("GET", "/", authority="a")).status == 200
    with pytest.raises(HttpHandlerError, match="respondWith can't be called twice on the same event"):
        handle_http(inst, HttpRequest("GET", "/", authority="a"))


def test_asgi_serves_the_js_handler_with_a_fresh_instance_per_request(jsserve: Any,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    app = asgi(jsserve)

    async def main() -> Tuple[List[Exchange], Exchange]:
        answers = await asyncio.gather(*(call(app, "POST", f"/js{i}", headers=[(b"host", b"shop.test")],
                                              chunks=[b"%d" % i * 100, b"!"]) for i in range(4)))
        return answers, await call(app, "GET", "/trap")

    with caplog.at_level(logging.ERROR, logger="wasm_import.http"):
        answers, failed = asyncio.run(main())
    for i, answer in enumerate(answers):
        assert (answer.status, answer.header(b"x-path"), answer.body) == (200, f"/js{i}".encode(), b"%d" % i * 100 + b"!")
    assert (failed.status, failed.body) == (500, b"Internal Server Error")
    assert any("the handler failed on purpose" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_asgi_a_client_gone_mid_body_stops_the_guest_and_the_server_serves_on(guest: Any) -> None:
    """The server's `send` fails (the client went away) while an 8 MiB echo streams: the
    failure is the server's to see, the guest's body stream is closed under it (a 0.2
    guest waiting for room in its write is released), and the next request is served."""
    app = asgi(guest)
    body = b"y" * (8 * MiB)

    async def main() -> Exchange:
        scope = {"type": "http", "method": "POST", "scheme": "http", "path": "/", "raw_path": b"/",
                 "query_string": b"", "headers": [(b"host", b"a")], "server": ("127.0.0.1", 8000)}
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        sent: List[Dict[str, Any]] = []

        async def receive() -> Dict[str, Any]:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and sent:
                raise OSError("the client went away")
            sent.append(message)

        with pytest.raises(OSError, match="the client went away"):
            await asyncio.wait_for(app(scope, receive, send), 30)
        return await call(app, "GET", "/count")

    after = asyncio.run(main())
    assert (after.status, after.body) == (200, b"count=1")
