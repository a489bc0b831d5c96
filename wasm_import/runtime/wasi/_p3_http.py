"""`wasi:http` 0.3 (types, client): outgoing requests as an `async func`, through the
stdlib's `http.client` on worker threads, to the hosts a `Wasi(http=[...])` grant names.

0.3 has two message resources, `request` and `response`, whose bodies are `stream<u8>`
and whose trailers are a `future`. The guest builds a `request` (`request.new(headers,
contents, trailers, options)`) and awaits `client.send(request)`. The authority is checked
against the grants *before* the body is read or any socket exists: a host not granted gets
`HTTP-request-denied` and nothing reaches the network. A granted request waits for the
guest's body stream to end, is sent on a daemon thread (so a stuck server never blocks
the event loop nor the interpreter's exit), and `send` returns when the status line and
headers have arrived. The response body is read by that thread into a small bounded
queue (backpressure: it reads ahead at most `_AHEAD` chunks) and streamed to the guest as
it comes; the future of `consume-body` tells how the body ended.

Timeouts as in 0.2: `request-options` may set connect, first-byte and between-bytes
timeouts, each `DEFAULT_TIMEOUT` seconds otherwise. Redirects are not followed. Request
trailers are accepted and not sent (HTTP/1.1 through `http.client` cannot), response
trailers are reported as none. The `handler` interface (a component calling another
component's handler) is not served here: link one with `imports=`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import socket
import threading
import types as _types
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

from ..._values import Err, Ok
from ..._wasi import _split_authority
from ._context import WasiContext, register_interface
from ._http import (FORBIDDEN, TYPES, Fields, OutgoingRequest, RequestOptions, _abort, _bound_class, _bound_fields,
                    _code, hold, let_go, method_name, scheme_name, send_head)
from ._io import WitTypes, bind_types
from ._p3_streams import in_thread

__all__ = ["Fields3", "Request", "Response", "RequestOptions3", "Client"]

P3 = "0.3"
_AHEAD = 16  # response chunks read ahead of the guest at most
_CHUNK = 1 << 16


def _ns(**members: Any) -> Any:
    return _types.SimpleNamespace(**members)


# -- fields and options ----------------------------------------------------------------------------

class Fields3(Fields):
    """`wasi:http/types.fields` of 0.3: 0.2's, plus `get-and-delete` and `copy-all`."""

    def get_and_delete(self, name: str) -> List[bytes]:
        values = self.get(name)
        self.delete(name)
        return values

    def copy_all(self) -> List[Tuple[str, bytes]]:
        return self.entries()

    def clone(self) -> "Fields3":
        made = type(self)(self._entries)  # a clone is mutable, whoever owned the original
        made._types = self._t()
        return made


class RequestOptions3(RequestOptions):
    """`wasi:http/types.request-options` of 0.3: timeouts in nanoseconds, immutable once
    they belong to a request."""

    immutable = False

    def _set(self, name: str, duration: Optional[int]) -> None:
        if self.immutable:
            raise Err(_types_of(self).case(f"{TYPES}#request-options-error", "immutable")())
        self._timeouts[name] = duration

    def get_connect_timeout(self) -> Optional[int]:
        return self.connect_timeout()

    def set_connect_timeout(self, duration: Optional[int]) -> None:
        self._set("connect", duration)

    def get_first_byte_timeout(self) -> Optional[int]:
        return self.first_byte_timeout()

    def set_first_byte_timeout(self, duration: Optional[int]) -> None:
        self._set("first_byte", duration)

    def get_between_bytes_timeout(self) -> Optional[int]:
        return self.between_bytes_timeout()

    def set_between_bytes_timeout(self, duration: Optional[int]) -> None:
        self._set("between_bytes", duration)

    def clone(self) -> "RequestOptions3":
        made = type(self)()
        made._timeouts = dict(self._timeouts)
        return made


def _types_of(obj: Any) -> WitTypes:
    return obj._wasi_types  # type: ignore[no-any-return]  # set on the bound classes


# -- messages --------------------------------------------------------------------------------------

def _body_future() -> "asyncio.Future[Any]":
    return asyncio.get_running_loop().create_future()


class _Body:
    """A message's body (a `stream<u8>` end or an async iterable of bytes) and trailers (a
    `future` end or an awaitable), handed out once."""

    contents: Any = None
    trailers: Any = None

    def take_body(self) -> Tuple[Any, Any]:
        contents, trailers = self.contents, self.trailers
        self.contents = self.trailers = None
        return contents, trailers

    @staticmethod
    def consume_body(this: "_Body", res: Any) -> Tuple[Any, Any]:
        """`consume-body`: the body stream and the trailers future (`res`, the guest's
        word on how consuming went, is not needed here)."""
        contents, trailers = this.take_body()
        if res is not None:
            res.close()
        return (contents if contents is not None else b""), (trailers if trailers is not None else Ok(None))


class Request(OutgoingRequest, _Body):
    """`wasi:http/types.request`: 0.2's outgoing-request (the same checks on method, path,
    scheme and authority) with 0.3's accessors, a `stream<u8>` body and trailers."""

    def __init__(self, headers: Fields, contents: Any = None, trailers: Any = None,
                 options: Optional[RequestOptions3] = None) -> None:
        super().__init__(headers)
        self.contents = contents        # a StreamReader of the guest's body, or None
        self.trailers = trailers        # a FutureReader of the guest's trailers
        self.options = options
        if options is not None:
            options.immutable = True
        self.sent: "asyncio.Future[Any]" = _body_future()  # result<_, error-code> of sending the body

    @classmethod
    def new(cls, headers: Fields, contents: Any, trailers: Any, options: Optional[RequestOptions3]) -> Tuple[Any, Any]:
        request = cls(headers, contents, trailers, options)
        return request, request.sent

    get_method = OutgoingRequest.method
    get_path_with_query = OutgoingRequest.path_with_query
    get_scheme = OutgoingRequest.scheme
    get_authority = OutgoingRequest.authority
    get_headers = OutgoingRequest.headers

    def get_options(self) -> Optional[RequestOptions3]:
        if self.options is None:
            return None
        made = self.options.clone()
        made.immutable = True
        return made



class Response(_Body):
    """`wasi:http/types.response`: a status, immutable headers, a `stream<u8>` body and
    trailers. Made by `client.send` from what a server answered, or by the guest."""

    def __init__(self, headers: Fields, contents: Any = None, trailers: Any = None, status: int = 200) -> None:
        headers.immutable = True
        self._headers = headers
        self.status = status
        self.contents, self.trailers = contents, trailers
        self.sent: "Optional[asyncio.Future[Any]]" = None

    @classmethod
    def new(cls, headers: Fields, contents: Any, trailers: Any) -> Tuple[Any, Any]:
        response = cls(headers, contents, trailers)
        response.sent = _body_future()
        return response, response.sent

    def get_status_code(self) -> int:
        return self.status

    def set_status_code(self, status_code: int) -> None:
        if not 100 <= status_code <= 999:
            raise Err(None)
        self.status = status_code

    def get_headers(self) -> Fields:
        return self._headers



# -- sending ---------------------------------------------------------------------------------------

class Client:
    """`wasi:http/client` of one instance: `send` within its grants."""

    def __init__(self, ctx: WasiContext) -> None:
        self.ctx = ctx
        self.grants = ctx.wasi.http_hosts

    @property
    def types(self) -> WitTypes:
        return self.ctx.types_p3

    def _err(self, case: str, *payload: Any) -> Err:
        return Err(_code(self.types, case, *payload))

    async def send(self, request: Request) -> Response:
        types = self.types
        scheme = scheme_name(request.get_scheme()) if request.get_scheme() is not None else "https"
        if scheme not in ("http", "https"):
            raise self._err("HTTP-protocol-error")
        authority = request.get_authority()
        if not authority:
            raise self._err("HTTP-request-URI-invalid")
        try:
            host, port = _split_authority(authority)
        except ValueError:
            raise self._err("HTTP-request-URI-invalid") from None
        port = port if port is not None else (443 if scheme == "https" else 80)
        contents, trailers = request.take_body()
        if not any(g.allows(host, port) for g in self.grants):
            denied = self._err("HTTP-request-denied")
            _settle(request.sent, denied)
            for end in (contents, trailers):
                if end is not None:
                    end.close()
            raise denied
        data = await contents.read_all() if contents is not None else None
        if trailers is not None:
            trailers.close()  # HTTP/1.1 through http.client cannot send trailers
        options = request.options or RequestOptions3()
        loop = asyncio.get_running_loop()
        head = (types, options, scheme, host, port, authority, method_name(request.get_method()),
                request.get_path_with_query(), request.get_headers().entries(), data)
        try:
            outcome = await in_thread(lambda: send_head(*head), f"wasi http {authority}")
        except BaseException as e:
            _settle(request.sent, Err(_code(types, "internal-error", f"{type(e).__name__}: {e}")))
            raise
        if isinstance(outcome, Err):
            _settle(request.sent, outcome)
            raise outcome
        _settle(request.sent, Ok(None))
        response, conn = outcome
        hold(types, conn)  # until its body is read: closing the instance aborts it
        status = response.status
        headers = _bound_fields(types, [(k, v.encode("latin-1")) for k, v in response.getheaders()
                                        if k.lower() not in FORBIDDEN], True)
        done: "asyncio.Future[Any]" = loop.create_future()
        body = _body(loop, types, response, conn, done)
        return bind_types(Response(headers, body, done, status), types)


def _settle(fut: "asyncio.Future[Any]", value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _response_error(types: WitTypes, e: BaseException) -> Any:
    """The error-code for a failure while reading a response body."""
    if isinstance(e, socket.timeout):
        return _code(types, "HTTP-response-timeout")
    if isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return _code(types, "HTTP-response-incomplete")
    if isinstance(e, http.client.HTTPException):
        return _code(types, "HTTP-protocol-error")
    if isinstance(e, ConnectionResetError):
        return _code(types, "connection-terminated")
    return _code(types, "internal-error", f"{type(e).__name__}: {e}")


def _body(loop: asyncio.AbstractEventLoop, types: WitTypes, response: http.client.HTTPResponse,
          conn: http.client.HTTPConnection, done: "asyncio.Future[Any]") -> AsyncIterator[bytes]:
    """The response body as an async iterator of chunks, read by a daemon thread that
    stays at most `_AHEAD` chunks ahead; `done` gets the result<option<trailers>,
    error-code> when the body ends (or fails, or the guest stops reading)."""
    queue: "asyncio.Queue[Any]" = asyncio.Queue(_AHEAD)
    stop = threading.Event()

    def put(item: Any) -> bool:
        try:
            fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        except RuntimeError:  # the loop is closed
            return False
        while True:
            try:
                fut.result(timeout=0.5)
                return True
            except concurrent.futures.TimeoutError:
                if stop.is_set() or loop.is_closed():  # nobody will read it
                    fut.cancel()
                    return False
            except (RuntimeError, concurrent.futures.CancelledError):
                return False

    def pump() -> None:
        try:
            while not stop.is_set():
                chunk = response.read1(_CHUNK)
                if not chunk or not put(chunk):
                    break
            outcome: Any = Ok(None)
        except BaseException as e:  # noqa: BLE001  (reported to the guest through the trailers future)
            outcome = Err(_response_error(types, e))
        finally:
            conn.close()
            let_go(types, conn)
        put(outcome)

    async def chunks() -> AsyncIterator[bytes]:
        threading.Thread(target=pump, name="wasi http body", daemon=True).start()
        outcome: Any = Err(_code(types, "HTTP-response-incomplete"))
        try:
            while True:
                item = await queue.get()
                if not isinstance(item, bytes):
                    outcome = item
                    return
                yield item
        finally:
            stop.set()
            if not isinstance(outcome, Ok):
                _abort(conn)
            while not queue.empty():  # let a pump blocked on a full queue finish
                queue.get_nowait()
            _settle(done, outcome)

    return chunks()


# -- registration ----------------------------------------------------------------------------------

def _types_provider(ctx: WasiContext, iface: Any) -> Any:
    types = ctx.types_p3
    return _ns(**{cls.__name__.rstrip("3"): _bound_class(cls, types)
                  for cls in (Fields3, Request, Response, RequestOptions3)})


def _client(ctx: WasiContext, iface: Any) -> Any:
    found: Optional[Client] = ctx.__dict__.get("_p3_http_client")
    if found is None:
        found = ctx.__dict__["_p3_http_client"] = Client(ctx)
    return _ns(send=found.send)


register_interface(TYPES, _types_provider, P3)
register_interface("wasi:http/client", _client, P3)
