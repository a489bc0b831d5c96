"""A component's exported HTTP handler as an ASGI 3 application.

    app = wasm_import.asgi(plugin, wasi=Wasi(...))   # uvicorn module:app, or mount it in Starlette

A module target gets a *fresh instance per request* (as `wasmtime serve` does: nothing a
request leaves behind reaches the next, and a trap costs one request), closed once its
response is sent (or has failed), so what its WASI opened (sockets, files, connections) is
released then, not at some later garbage collection; an instance target
serves every request on that one instance (state shared; a 0.2 instance runs one request at
a time, a 0.3 one interleaves them).

The request body is read whole first, at most `max_body` bytes (beyond: 413, the guest is not
called); the response streams chunk by chunk as the guest writes it. A guest that traps,
gives no response or an error-code is answered 500 and logged (logger `wasm_import.http`),
a request WASI would refuse (a bad header name) 400; if the guest fails after the response
has started, the app logs and returns without finishing it, so the server drops the
connection rather than pass a truncated body off as whole. Lifespan events are
acknowledged; other scope types (websocket) are refused.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote

from .._http import HttpRequest, checked_request
from .._limits import Limits
from .._wasi import Wasi
from ._component import ComponentInstance, ComponentModule
from ._serve import exchange, handler_key

__all__ = ["asgi", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_BODY = 64 << 20
logger = logging.getLogger("wasm_import.http")

Scope = Dict[str, Any]
Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]


def asgi(target: Any, *, wasi: Optional[Wasi] = None, imports: Optional[Mapping[str, Any]] = None,
         limits: Optional[Limits] = None, max_body: int = DEFAULT_MAX_BODY) -> Callable[[Scope, Receive, Send],
                                                                                        Awaitable[None]]:
    """An ASGI 3 app serving `target`'s exported HTTP handler (WASI 0.2 or 0.3).

    `target` a component module: a fresh instance per request, made with `imports`, `wasi`
    and `limits` (what is omitted comes from `module.link()`). `target` an instance: that
    instance for every request (`imports`, `wasi` and `limits` are then the instance's
    already, and passing them is a TypeError). Request bodies over `max_body` bytes get 413."""
    if isinstance(target, ComponentModule):
        handler_key(target.exports, target)  # TypeError now, not at the first request

        def instance() -> ComponentInstance:
            return target.instantiate(imports, wasi=wasi, limits=limits)
    elif isinstance(target, ComponentInstance):
        handler_key(target.exports, target)
        if wasi is not None or imports is not None or limits is not None:
            raise TypeError("asgi(): wasi=, imports= and limits= make fresh instances; an instance target "
                            "already has its own (pass the module to get an instance per request)")

        def instance() -> ComponentInstance:
            return target
    else:
        raise TypeError(f"asgi(): expected a component module or instance exporting an HTTP handler, got "
                        f"{type(target).__name__} {target!r}")
    if not isinstance(max_body, int) or max_body < 0:
        raise ValueError(f"asgi(): max_body must be a non-negative int, got {max_body!r}")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            raise ValueError(f"wasm_import.asgi serves HTTP only, not ASGI scope type {kind!r}")
        body = await _read_body(scope, receive, max_body)
        if body is None:  # the client went away
            return
        if isinstance(body, int):
            await _plain(send, body)
            return
        try:
            request, headers = checked_request(_request(scope, body))
        except (TypeError, ValueError) as e:
            logger.warning("refused a request WASI cannot carry: %s", e)
            await _plain(send, 400)
            return
        inst: Optional[ComponentInstance] = None
        try:
            try:
                inst = instance()
                reply = await exchange(inst, request, headers)
            except Exception:  # noqa: BLE001  (a guest's failure is one request's 500, never the server's)
                logger.exception("the HTTP handler of %r failed on %s %s", target, request.method, request.path)
                await _plain(send, 500)
                return
            await _respond(scope, send, reply, target, request)
        finally:
            if inst is not None and inst is not target:  # a request's own instance: its fds go with it
                inst._close_soon()  # (a 0.2 handler may still run on its thread: never wait for it here)

    app.__doc__ = f"ASGI app serving the HTTP handler of {target!r}"
    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(scope: Scope, receive: Receive, max_body: int) -> Any:
    """The whole request body; 413 if it is (or says it is) over `max_body`; None if the
    client disconnected."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                if int(value) > max_body:
                    return 413
            except ValueError:
                return 400
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > max_body:
            return 413
        if not message.get("more_body", False):
            return bytes(body)


def _request(scope: Scope, body: bytes) -> HttpRequest:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~%")
    query = scope.get("query_string", b"")
    if query:
        path += "?" + query.decode("latin-1")
    headers = [(bytes(n).decode("latin-1"), bytes(v)) for n, v in scope.get("headers", ())]
    authority = None
    if not any(n.lower() == "host" for n, _ in headers) and scope.get("server"):
        host, port = scope["server"][0], scope["server"][1]
        authority = host if port is None else f"{host}:{port}"
    return HttpRequest(scope.get("method", "GET"), path, headers, body, scope.get("scheme", "http"), authority)


_REASONS = {400: b"Bad Request", 413: b"Payload Too Large", 500: b"Internal Server Error"}


async def _plain(send: Send, status: int) -> None:
    text = _REASONS[status]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(text)).encode())]})
    await send({"type": "http.response.body", "body": text})


async def _respond(scope: Scope, send: Send, reply: Any, target: Any, request: HttpRequest) -> None:
    """Send `reply`, streaming its body; guest failures are logged (500 if nothing was sent
    yet), the server's own (a client gone) propagate to it."""
    trailers_ok = "http.response.trailers" in (scope.get("extensions") or {})
    start: Dict[str, Any] = {"type": "http.response.start", "status": reply.status, "headers": _headers(reply.headers)}
    if trailers_ok:
        start["trailers"] = True
    chunks = reply.body()
    started = False
    try:
        while True:
            try:  # the first chunk comes before the head, so a guest failing at once still gets its 500
                chunk: Optional[bytes] = await chunks.__anext__()
            except StopAsyncIteration:
                chunk = None
            except Exception:  # noqa: BLE001
                logger.exception("the HTTP handler of %r failed on %s %s%s", target, request.method, request.path,
                                 " after the response started (left unfinished)" if started else "")
                if not started:
                    await _plain(send, 500)
                return
            if not started:
                await send(start)
                started = True
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        reply.close()
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    if trailers_ok:
        await send({"type": "http.response.trailers", "more_trailers": False, "headers": _headers(reply.trailers or ())})


def _headers(headers: Any) -> List[Tuple[bytes, bytes]]:
    return [(n.lower().encode("latin-1"), bytes(v)) for n, v in headers]
