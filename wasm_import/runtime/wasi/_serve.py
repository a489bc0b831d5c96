"""Serving HTTP: the host side of a component's *exported* handler.

- WASI 0.2, `wasi:http/incoming-handler.handle(request, response-out)`: the host makes an
  `incoming-request` (its body an input stream of bytes at hand) and a `response-outparam`,
  and calls `handle`; the guest sets the outparam to `ok(outgoing-response)` (usually
  before writing the body, so the body can stream) or `err(error-code)`, writes the body
  and finishes it, all within the call.
- WASI 0.3, `wasi:http/handler.handle: async func(request) -> result<response, error-code>`:
  the host makes a `request` (its body a `stream<u8>`, its trailers a `future`), awaits
  `handle`, and reads the returned `response`'s body stream and trailers future, which the
  guest may go on filling after `handle` returned; the future of `response.new` then learns
  that the body was delivered.

Both give a `Reply`: the status and headers as soon as the guest has decided them, the body
as an async iterator of chunks, the trailers once the body has ended. `call_p2` is the
synchronous 0.2 call (whole body, no thread). A handler that gives no response (the outparam
never set, an error-code, a body never finished) raises `HttpHandlerError`; a trap raises
`Trap`, as any call does.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Callable, List, Optional, Tuple

from ..._errors import HttpHandlerError
from ..._http import Headers, HttpRequest, HttpResponse
from ..._values import Err, Ok
from ._http import TYPES, IncomingRequest, OutgoingResponse, ResponseOutparam, _code, method_value
from ._io import SLICE, WitTypes, bind_types, check_interrupt
from ._p3_streams import in_thread, settle

__all__ = ["Reply", "handler_series", "call_p2", "exchange_p2", "exchange_p3", "collect", "P2_HANDLER", "P3_HANDLER"]

P2_HANDLER = "wasi:http/incoming-handler"
P3_HANDLER = "wasi:http/handler"
_AHEAD = 1 << 20  # response bytes a 0.2 guest may write ahead of the reader


def handler_series(key: str) -> Optional[str]:
    """`"0.2"` for an export `wasi:http/incoming-handler@0.2.x`, `"0.3"` for
    `wasi:http/handler@0.3.x`, None for anything else."""
    base, _, version = key.partition("@")
    if base == P2_HANDLER and (version == "0.2" or version.startswith("0.2.")):
        return "0.2"
    if base == P3_HANDLER and (version == "0.3" or version.startswith("0.3.")):
        return "0.3"
    return None


class Reply:
    """A response as it arrives: `status` and `headers` now, `body()` an async iterator of
    chunks (raising `HttpHandlerError` or `Trap` if the guest fails half-way), `trailers`
    set when it has ended. `close()` says nobody will read the rest."""

    def __init__(self, status: int, headers: Headers, body: AsyncIterator[bytes],
                 close: Callable[[], None]) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        self._close = close
        self.trailers: Optional[Headers] = None

    def body(self) -> AsyncIterator[bytes]:
        return self._body

    def wrap_body(self, wrap: Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]) -> None:
        """Pass the body through `wrap` (to annotate the errors it raises, say)."""
        self._body = wrap(self._body)

    def close(self) -> None:
        self._close()


async def collect(reply: Reply) -> HttpResponse:
    """The whole response."""
    try:
        body = b"".join([chunk async for chunk in reply.body()])
    finally:
        reply.close()
    return HttpResponse(reply.status, reply.headers, body, reply.trailers)


def _entries(fields: Any) -> Headers:
    return tuple((str(n), bytes(v)) for n, v in fields.entries())


def _error_text(code: Any) -> str:
    return f"{type(code).__name__}({getattr(code, 'value', '')!r})" if hasattr(code, "value") else \
        f"{type(code).__name__}()"


# -- WASI 0.2 --------------------------------------------------------------------------------------

def _p2_request(types: WitTypes, request: HttpRequest, headers: List[Tuple[str, bytes]],
                on_set: Any = None) -> Tuple[IncomingRequest, ResponseOutparam]:
    made = IncomingRequest.make(types, request.method, request.path, headers, bytes(request.body), request.scheme,
                                request.authority)
    return made, bind_types(ResponseOutparam(on_set), types)


def _p2_response(outcome: Any) -> OutgoingResponse:
    """The response a guest set, or HttpHandlerError for none or an error-code."""
    if outcome is None:
        raise HttpHandlerError("the HTTP handler returned without setting its response-outparam")
    if isinstance(outcome, Err):
        raise HttpHandlerError(f"the HTTP handler answered with error-code {_error_text(outcome.value)}",
                               outcome.value)
    return outcome.value  # type: ignore[no-any-return]


def _unfinished(response: OutgoingResponse, dropped: bool) -> HttpHandlerError:
    what = "dropped its response body before finishing it" if dropped else \
        "returned with its response body unfinished"
    return HttpHandlerError(f"the HTTP handler {what} (status {response.status_code()}; outgoing-body.finish "
                            "was not called)")


def call_p2(handle: Callable[..., Any], types: WitTypes, request: HttpRequest,
            headers: List[Tuple[str, bytes]]) -> HttpResponse:
    """Call a 0.2 `handle` on this thread; the whole response once the call has returned."""
    incoming, out = _p2_request(types, request, headers)
    handle(incoming, out)
    response = _p2_response(out.response)
    body = response.body_state
    if body is None:  # the guest never asked for a body: an empty one
        return HttpResponse(response.status_code(), _entries(response.headers()), b"")
    if not body.done.is_set() or body.aborted:
        raise _unfinished(response, body.aborted)
    trailers = tuple((n, bytes(v)) for n, v in body.trailers) if body.trailers is not None else None
    return HttpResponse(response.status_code(), _entries(response.headers()), bytes(body.data), trailers)


class _Pipe:
    """A response body from the guest's thread to an asyncio reader, at most `_AHEAD`
    bytes ahead (a guest writing faster waits in its write, interruptibly). It is the
    `OutgoingBody` listener: `data` and `end` run on the guest's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cond = threading.Condition()
        self._buffer = bytearray()
        self._over = False
        self._error: Optional[BaseException] = None
        self._abandoned = False
        self._wake = asyncio.Event()
        self.trailers: Optional[Headers] = None

    def _kick(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed: nobody reads
            pass

    def data(self, data: bytes) -> None:
        from ._io import StreamClosed

        with self._cond:
            while len(self._buffer) >= _AHEAD and not self._abandoned:
                self._cond.wait(SLICE)
                check_interrupt()  # a guest blocked here still meets its time limit
            if self._abandoned:
                raise StreamClosed  # the client went away: the guest's stream is closed
            self._buffer += data
        self._kick()

    def end(self, body: Any) -> None:
        if body.aborted:
            self.stop(HttpHandlerError("the HTTP handler dropped its response body before finishing it "
                                       "(outgoing-body.finish was not called)"))
        else:
            self.stop(None, tuple((n, bytes(v)) for n, v in body.trailers) if body.trailers is not None else None)

    def stop(self, error: Optional[BaseException], trailers: Optional[Headers] = None) -> None:
        with self._cond:
            if self._over:
                return
            self._over, self._error, self.trailers = True, error, trailers
            self._cond.notify_all()
        self._kick()

    def abandon(self) -> None:
        with self._cond:
            self._abandoned = True
            self._buffer.clear()
            self._cond.notify_all()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            self._wake.clear()
            with self._cond:
                chunk = bytes(self._buffer)
                self._buffer.clear()
                over, error = self._over, self._error
                self._cond.notify_all()
            if chunk:
                yield chunk
            elif over:
                if error is not None:
                    raise error
                return
            else:
                await self._wake.wait()


async def exchange_p2(handle: Callable[..., Any], types: WitTypes, request: HttpRequest,
                      headers: List[Tuple[str, bytes]]) -> Reply:
    """Call a 0.2 `handle` on a worker thread (the event loop stays free); the reply as
    soon as the guest sets its outparam, the body streaming as the guest writes it."""
    loop = asyncio.get_running_loop()
    pipe = _Pipe(loop)
    head: "asyncio.Future[Any]" = loop.create_future()

    def on_set(outcome: Any) -> None:  # on the guest's thread, inside `response-outparam.set`
        if isinstance(outcome, Ok):
            outcome.value.listen(pipe)
        try:
            loop.call_soon_threadsafe(settle, head, outcome)
        except RuntimeError:
            pass

    incoming, out = _p2_request(types, request, headers, on_set)
    call = in_thread(lambda: handle(incoming, out), "wasm-import http handler")

    def call_over(fut: "asyncio.Future[Any]") -> None:
        error = fut.exception() if not fut.cancelled() else None
        settle(head, None)  # never set: `_p2_response` says so
        response = out.response.value if isinstance(out.response, Ok) else None
        if error is not None:
            pipe.stop(error)
        elif response is not None and response.body_state is not None:
            pipe.stop(_unfinished(response, response.body_state.aborted))  # a no-op when the body ended
        else:
            pipe.stop(None)  # no body asked for: an empty one

    call.add_done_callback(call_over)
    await asyncio.wait({head, call}, return_when=asyncio.FIRST_COMPLETED)
    failed = call.exception() if call.done() else None
    if failed is not None and (not head.done() or head.result() is None):
        raise failed  # a trap before the response was set
    response = _p2_response(await head)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in pipe.chunks():
            yield chunk
        reply.trailers = pipe.trailers

    reply = Reply(response.status_code(), _entries(response.headers()), body(), pipe.abandon)
    return reply


# -- WASI 0.3 --------------------------------------------------------------------------------------

def _p3_request(types: WitTypes, request: HttpRequest, headers: List[Tuple[str, bytes]]) -> Any:
    from ._p3_http import Fields3, Request

    fields = bind_types(Fields3(list(headers), True), types)
    fields._types = types
    made = bind_types(Request(fields, bytes(request.body), Ok(None)), types)
    made._method = method_value(types, request.method)
    made._path = request.path
    scheme = request.scheme
    made._scheme = (types.case(f"{TYPES}#scheme", scheme.upper())() if scheme.lower() in ("http", "https")
                    else types.case(f"{TYPES}#scheme", "other")(scheme))
    made._authority = request.authority
    return made


async def exchange_p3(handle: Callable[..., Any], types: WitTypes, request: HttpRequest,
                      headers: List[Tuple[str, bytes]]) -> Reply:
    """Await a 0.3 `handle` on the running loop; the reply once it returned its response,
    the body streaming as the guest writes it."""
    try:
        response = await handle(_p3_request(types, request, headers))
    except Err as e:
        raise HttpHandlerError(f"the HTTP handler returned error-code {_error_text(e.value)}", e.value) from None
    contents, trailers = response.take_body()
    sent = getattr(response, "sent", None)
    reply: Reply

    async def body() -> AsyncIterator[bytes]:
        delivered = False
        try:
            if isinstance(contents, (bytes, bytearray, memoryview)):
                if contents:
                    yield bytes(contents)
            elif contents is not None:
                async for chunk in contents:
                    if chunk:
                        yield bytes(chunk)
            outcome = await trailers if trailers is not None else Ok(None)
            if isinstance(outcome, Err):
                raise HttpHandlerError(f"the HTTP handler's response body failed with error-code "
                                       f"{_error_text(outcome.value)}", outcome.value)
            found = outcome.value if isinstance(outcome, Ok) else None
            reply.trailers = _entries(found) if found is not None else None
            delivered = True
        finally:
            if sent is not None:
                settle(sent, Ok(None) if delivered else Err(_code(types, "HTTP-response-incomplete")))

    def close() -> None:
        for end in (contents, trailers):
            closer = getattr(end, "close", None)
            if closer is not None and not isinstance(end, (bytes, bytearray, memoryview)):
                closer()
        if sent is not None:
            settle(sent, Err(_code(types, "HTTP-response-incomplete")))

    reply = Reply(response.get_status_code(), _entries(response.get_headers()), body(), close)
    return reply

