"""`wasi:http` 0.2 (types, outgoing-handler): outgoing requests through the stdlib's
`http.client`, with timeouts, to the hosts a `Wasi(http=[...])` grant names.

The guest builds an `outgoing-request` (its `fields`, method, scheme, authority, path),
writes its body through an `output-stream`, and hands it to `outgoing-handler.handle`,
which checks the authority against the grants *before* anything is sent: a host not
granted gets `HTTP-request-denied` and no connection is made. A granted request runs
on a worker thread: it waits for the body to be finished, sends the request, and resolves
the `future-incoming-response` when the status line and headers have arrived; the
response body is then read by that thread into a bounded buffer, so the guest's
`input-stream` and every pollable block for real and wake when bytes arrive.

Timeouts: `request-options` may set the connect, first-byte and between-bytes timeouts;
each defaults to `DEFAULT_TIMEOUT` seconds. Redirects are not followed (a `3xx` is the
guest's to handle), as WASI says. `https` uses the default SSL context (certificates
verified). Request trailers are accepted and not sent (HTTP/1.1 through `http.client`
has no way to send them); response trailers are reported as none.

The `incoming-request` / `response-outparam` / `outgoing-response` resources are here too,
so a host can call a guest's exported `incoming-handler` (see `IncomingRequest.make`).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._http import FORBIDDEN
from ..._http import is_token as _is_token
from ..._http import valid_value as _valid_value
from ..._values import Err, Ok
from ..._wasi import HttpHost, _split_authority
from ._io import (EventPollable, InputStream, IoError, OutputStream, Pollable, StreamClosed, StreamFailed, WitTypes,
                  bind_types)
from ._held import held_of
from ._net import register_shared

__all__ = ["DEFAULT_TIMEOUT", "Fields", "OutgoingRequest", "RequestOptions", "OutgoingBody", "IncomingResponse",
           "IncomingBody", "FutureIncomingResponse", "FutureTrailers", "IncomingRequest", "OutgoingResponse",
           "ResponseOutparam", "Http", "http_providers", "hold", "let_go"]

DEFAULT_TIMEOUT = 30.0  # seconds, for each of connect, first byte and between bytes
TYPES = "wasi:http/types"
_BODY_BUFFER = 1 << 20  # response bytes read ahead of the guest at most

def _code(types: WitTypes, case: str, *payload: Any) -> Any:
    """An `error-code` case of the guest's `wasi:http/types`."""
    return types.case(f"{TYPES}#error-code", case)(*payload)


def _header_error(types: WitTypes, case: str) -> Err:
    return Err(types.case(f"{TYPES}#header-error", case)())


# -- fields ---------------------------------------------------------------------------------------

class Fields:
    """`wasi:http/types.fields`: an ordered multi-map of header names (case-insensitive,
    kept as given) to byte values. Fields owned by a request or response are immutable."""

    def __init__(self, entries: Optional[List[Tuple[str, bytes]]] = None, immutable: bool = False) -> None:
        self._entries: List[Tuple[str, bytes]] = list(entries or [])
        self.immutable = immutable
        self._types: Optional[WitTypes] = None

    def _t(self) -> WitTypes:
        from ._io import types_of

        return self._types or types_of(self)

    def _check(self, name: str, values: List[bytes]) -> None:
        if self.immutable:
            raise _header_error(self._t(), "immutable")
        if not _is_token(name) or not all(_valid_value(bytes(v)) for v in values):
            raise _header_error(self._t(), "invalid-syntax")
        if name.lower() in FORBIDDEN:
            raise _header_error(self._t(), "forbidden")

    @classmethod
    def from_list(cls, entries: List[Tuple[str, bytes]]) -> "Fields":
        made = cls()
        for name, value in entries:
            made._check(name, [value])
            made._entries.append((name, bytes(value)))
        return made

    def get(self, name: str) -> List[bytes]:
        key = name.lower()
        return [v for n, v in self._entries if n.lower() == key]

    def has(self, name: str) -> bool:
        key = name.lower()
        return any(n.lower() == key for n, _ in self._entries)

    def set(self, name: str, value: List[bytes]) -> None:
        self._check(name, value)
        key = name.lower()
        self._entries = [(n, v) for n, v in self._entries if n.lower() != key] + [(name, bytes(v)) for v in value]

    def delete(self, name: str) -> None:
        self._check(name, [])
        key = name.lower()
        self._entries = [(n, v) for n, v in self._entries if n.lower() != key]

    def append(self, name: str, value: bytes) -> None:
        self._check(name, [value])
        self._entries.append((name, bytes(value)))

    def entries(self) -> List[Tuple[str, bytes]]:
        return list(self._entries)

    def clone(self) -> "Fields":
        return bind_types(Fields(self._entries), self._t())

    def __repr__(self) -> str:
        return f"Fields({self._entries!r})"


def _bound_fields(types: WitTypes, entries: List[Tuple[str, bytes]], immutable: bool) -> Fields:
    made = Fields(entries, immutable)
    made._types = types
    return bind_types(made, types)


# -- methods and schemes ----------------------------------------------------------------------------

_METHODS = ("get", "head", "post", "put", "delete", "connect", "options", "trace", "patch")


def method_name(method: Any) -> str:
    """A `method` variant -> `GET`, ..., or the `other(...)` string."""
    other = getattr(method, "value", None)
    if isinstance(other, str):
        return other
    return type(method).__name__.rsplit("_", 1)[1].upper()


def method_value(types: WitTypes, name: str) -> Any:
    if name.lower() in _METHODS and name == name.upper():
        return types.case(f"{TYPES}#method", name.lower())()
    return types.case(f"{TYPES}#method", "other")(name)


def scheme_name(scheme: Any) -> str:
    other = getattr(scheme, "value", None)
    if isinstance(other, str):
        return other
    return type(scheme).__name__.rsplit("_", 1)[1].lower()


# -- requests and options ----------------------------------------------------------------------------

class _Message:
    """What requests and responses share: headers (immutable once owned) and one body."""

    def __init__(self, headers: Fields) -> None:
        headers.immutable = True
        self._headers = headers
        self._body_taken = False
        self.body_state: Optional[OutgoingBody] = None
        self.body_listener: Any = None  # given to the body when it is made (see OutgoingBody)

    def headers(self) -> Fields:
        return self._headers

    def body(self) -> "OutgoingBody":
        if self._body_taken:
            raise Err(None)
        self._body_taken = True
        self.body_state = bind_types(OutgoingBody(), self._headers._t())
        if self.body_listener is not None:
            self.body_state.listener = self.body_listener
        return self.body_state

    def listen(self, listener: Any) -> None:
        """Stream this message's body to `listener` (see OutgoingBody), made or not yet."""
        self.body_listener = listener
        if self.body_state is not None:
            self.body_state.listener = listener


class OutgoingRequest(_Message):
    """`wasi:http/types.outgoing-request`."""

    def __init__(self, headers: Fields) -> None:
        super().__init__(headers)
        self._method: Any = None
        self._path: Optional[str] = None
        self._scheme: Any = None
        self._authority: Optional[str] = None

    def method(self) -> Any:
        return self._method if self._method is not None else method_value(self._headers._t(), "GET")

    def set_method(self, method: Any) -> None:
        if not _is_token(method_name(method)):
            raise Err(None)
        self._method = method

    def path_with_query(self) -> Optional[str]:
        return self._path

    def set_path_with_query(self, path_with_query: Optional[str]) -> None:
        if path_with_query is not None and (any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F
                                                for c in path_with_query) or "#" in path_with_query):
            raise Err(None)
        self._path = path_with_query

    def scheme(self) -> Any:
        return self._scheme

    def set_scheme(self, scheme: Any) -> None:
        if scheme is not None and not _valid_scheme(scheme_name(scheme)):
            raise Err(None)
        self._scheme = scheme

    def authority(self) -> Optional[str]:
        return self._authority

    def set_authority(self, authority: Optional[str]) -> None:
        if authority is not None:
            try:
                host, _ = _split_authority(authority)
            except ValueError:
                raise Err(None) from None
            if not host or any(c.isspace() or c in "/?#@" for c in authority):
                raise Err(None)
        self._authority = authority


def _valid_scheme(name: str) -> bool:
    return bool(name) and name[0].isalpha() and all(c.isalnum() or c in "+-." for c in name) and name.isascii()


class RequestOptions:
    """`wasi:http/types.request-options`: timeouts in nanoseconds (None: the default)."""

    def __init__(self) -> None:
        self._timeouts: Dict[str, Optional[int]] = {"connect": None, "first_byte": None, "between_bytes": None}

    def connect_timeout(self) -> Optional[int]:
        return self._timeouts["connect"]

    def set_connect_timeout(self, duration: Optional[int]) -> None:
        self._timeouts["connect"] = duration

    def first_byte_timeout(self) -> Optional[int]:
        return self._timeouts["first_byte"]

    def set_first_byte_timeout(self, duration: Optional[int]) -> None:
        self._timeouts["first_byte"] = duration

    def between_bytes_timeout(self) -> Optional[int]:
        return self._timeouts["between_bytes"]

    def set_between_bytes_timeout(self, duration: Optional[int]) -> None:
        self._timeouts["between_bytes"] = duration

    def seconds(self, name: str) -> float:
        value = self._timeouts[name]
        return DEFAULT_TIMEOUT if value is None else value / 1e9


# -- outgoing bodies ------------------------------------------------------------------------------

class OutgoingBody:
    """`wasi:http/types.outgoing-body`: what the guest writes is collected until
    `finish` (with its trailers); dropping it unfinished aborts the message.

    A host streaming a served response sets `listener` (an object with `data(bytes)` and
    `end(body)`) from the guest's own thread: what was collected so far goes to it at
    once, later writes as they come, and `end` when the body is finished or aborted."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done = threading.Event()
        self.aborted = False
        self.trailers: Optional[List[Tuple[str, bytes]]] = None
        self._listener: Any = None
        self._stream_taken = False

    @property
    def listener(self) -> Any:
        return self._listener

    @listener.setter
    def listener(self, listener: Any) -> None:
        self._listener = listener
        if self.data:
            data = bytes(self.data)
            self.data.clear()
            listener.data(data)
        if self.done.is_set():
            listener.end(self)

    def feed(self, data: bytes) -> None:
        if self._listener is not None:
            self._listener.data(data)
        else:
            self.data += data

    def _end(self) -> None:
        self.done.set()
        if self._listener is not None:
            self._listener.end(self)

    def write(self) -> "BodyOutputStream":
        if self._stream_taken or self.done.is_set():
            raise Err(None)
        self._stream_taken = True
        return bind_types(BodyOutputStream(self), getattr(self, "_wasi_types"))

    @staticmethod
    def finish(this: "OutgoingBody", trailers: Optional[Fields]) -> None:
        if trailers is not None:
            this.trailers = trailers.entries()
        this._end()

    def __wasm_drop__(self) -> None:
        if not self.done.is_set():
            self.aborted = True
            self._end()


class BodyOutputStream(OutputStream):
    """The `output-stream` of an outgoing body."""

    def __init__(self, body: OutgoingBody) -> None:
        self._body = body

    def write_bytes(self, data: bytes) -> None:
        if self._body.done.is_set():
            raise StreamClosed
        self._body.feed(data)


# -- responses -----------------------------------------------------------------------------------

class IncomingResponse:
    """`wasi:http/types.incoming-response`."""

    def __init__(self, types: WitTypes, status: int, headers: Fields, body: "IncomingBody") -> None:
        bind_types(self, types)
        self._status = status
        self._headers = headers
        self._body: Optional[IncomingBody] = body

    def status(self) -> int:
        return self._status

    def headers(self) -> Fields:
        return self._headers

    def consume(self) -> "IncomingBody":
        if self._body is None:
            raise Err(None)
        body, self._body = self._body, None
        return body

    def __wasm_drop__(self) -> None:
        if self._body is not None:  # never consumed: nobody will read the rest
            self._body._source.close()


class _Source:
    """Bytes arriving from somewhere (a socket read by a thread, or bytes at hand), into
    a bounded buffer; `more` is set whenever there is something for the reader."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: Optional[IoError] = None
        self.more = threading.Event()
        self.room = threading.Condition()
        self.closed = False
        self.on_close: Any = None

    def put(self, data: bytes) -> bool:
        with self.room:
            while len(self.buffer) >= _BODY_BUFFER and not self.closed:
                self.room.wait(0.5)
            if self.closed:
                return False
            self.buffer += data
            self.more.set()
            return True

    def end(self, error: Optional[IoError] = None) -> None:
        with self.room:
            self.eof = True
            self.error = error
            self.more.set()

    def take(self, n: int) -> bytes:
        with self.room:
            if self.buffer:
                chunk = bytes(self.buffer[:n])
                del self.buffer[:n]
                if not self.buffer and not self.eof:
                    self.more.clear()
                self.room.notify_all()
                return chunk
            if self.error is not None:
                raise StreamFailed(self.error)
            if self.eof:
                raise StreamClosed
            return b""

    def close(self) -> None:
        with self.room:
            self.closed = True
            self.room.notify_all()
        if self.on_close is not None:
            self.on_close()


class IncomingBody:
    """`wasi:http/types.incoming-body`."""

    def __init__(self, types: WitTypes, source: _Source) -> None:
        bind_types(self, types)
        self._source = source
        self._stream_taken = False

    def stream(self) -> "BodyInputStream":
        if self._stream_taken:
            raise Err(None)
        self._stream_taken = True
        return bind_types(BodyInputStream(self._source), getattr(self, "_wasi_types"))

    @staticmethod
    def finish(this: "IncomingBody") -> "FutureTrailers":
        return bind_types(FutureTrailers(), getattr(this, "_wasi_types"))

    def __wasm_drop__(self) -> None:
        if not self._stream_taken:
            self._source.close()


class BodyInputStream(InputStream):
    """The `input-stream` of an incoming body."""

    def __init__(self, source: _Source) -> None:
        self._source = source

    def read_available(self, n: int) -> bytes:
        return self._source.take(n)

    def subscribe(self) -> Pollable:
        return EventPollable(self._source.more)

    def __wasm_drop__(self) -> None:
        self._source.close()


class FutureTrailers:
    """`wasi:http/types.future-trailers`: trailers are not read from HTTP/1.1 responses
    (`http.client` drops them), so this is at once ready with none."""

    def __init__(self) -> None:
        self._taken = False

    def subscribe(self) -> Pollable:
        from ._io import ReadyPollable

        return ReadyPollable()

    def get(self) -> Any:
        if self._taken:
            return Err(None)
        self._taken = True
        return Ok(Ok(None))


class FutureIncomingResponse:
    """`wasi:http/types.future-incoming-response`, resolved by the request's worker."""

    def __init__(self, types: WitTypes) -> None:
        bind_types(self, types)
        self._done = threading.Event()
        self._outcome: Any = None
        self._taken = False

    def resolve(self, outcome: Any) -> None:
        self._outcome = outcome
        self._done.set()

    def subscribe(self) -> Pollable:
        return EventPollable(self._done)

    def get(self) -> Any:
        if not self._done.is_set():
            return None
        if self._taken:
            return Err(None)
        self._taken = True
        return Ok(self._outcome)


# -- the server side: for a host calling a guest's incoming-handler ---------------------------------

class IncomingRequest:
    """`wasi:http/types.incoming-request`, made by a host: `IncomingRequest.make(types,
    "GET", "/path", headers=[...], body=b"", scheme="http", authority="host")`."""

    def __init__(self, types: WitTypes, method: str, path: Optional[str], headers: Fields, body: bytes,
                 scheme: Optional[str], authority: Optional[str]) -> None:
        bind_types(self, types)
        self._types = types
        self._method, self._path, self._headers = method, path, headers
        self._scheme, self._authority = scheme, authority
        source = _Source()
        if body:
            source.put(body)
        source.end()
        self._body: Optional[IncomingBody] = IncomingBody(types, source)

    @classmethod
    def make(cls, types: WitTypes, method: str, path: Optional[str], headers: List[Tuple[str, bytes]] = [],
             body: bytes = b"", scheme: Optional[str] = "http", authority: Optional[str] = None) -> "IncomingRequest":
        return cls(types, method, path, _bound_fields(types, list(headers), True), body, scheme, authority)

    def method(self) -> Any:
        return method_value(self._types, self._method)

    def path_with_query(self) -> Optional[str]:
        return self._path

    def scheme(self) -> Any:
        if self._scheme is None:
            return None
        if self._scheme.lower() in ("http", "https"):
            return self._types.case(f"{TYPES}#scheme", self._scheme.upper())()
        return self._types.case(f"{TYPES}#scheme", "other")(self._scheme)

    def authority(self) -> Optional[str]:
        return self._authority

    def headers(self) -> Fields:
        return self._headers

    def consume(self) -> IncomingBody:
        if self._body is None:
            raise Err(None)
        body, self._body = self._body, None
        return body


class OutgoingResponse(_Message):
    """`wasi:http/types.outgoing-response`."""

    def __init__(self, headers: Fields) -> None:
        super().__init__(headers)
        self._status = 200

    def status_code(self) -> int:
        return self._status

    def set_status_code(self, status_code: int) -> None:
        if not 100 <= status_code <= 999:
            raise Err(None)
        self._status = status_code


class ResponseOutparam:
    """`wasi:http/types.response-outparam`: where a guest's handler puts its response;
    the host reads `.response` (an `Ok(OutgoingResponse)` or `Err(error-code)`), or is
    told at once, on the guest's thread, through `on_set(response)`."""

    def __init__(self, on_set: Optional[Callable[[Any], None]] = None) -> None:
        self.response: Any = None
        self.done = threading.Event()
        self.on_set = on_set

    @staticmethod
    def set(param: "ResponseOutparam", response: Any) -> None:
        if param.done.is_set():  # WASI: set consumes the outparam, so this cannot happen twice
            raise RuntimeError("response-outparam.set called twice")
        param.response = response
        param.done.set()
        if param.on_set is not None:
            param.on_set(response)


# -- sending ---------------------------------------------------------------------------------------

class Http:
    """The `wasi:http` interfaces of one instance, with its `http` grants."""

    def __init__(self, types: WitTypes, grants: Tuple[HttpHost, ...]) -> None:
        self.types = types
        self.grants = grants

    # wasi:http/types
    def http_error_code(self, err: Any) -> Optional[Any]:
        """The HTTP error-code behind a `wasi:io/error.error` from a body stream, if any."""
        code = getattr(err, "code", None)
        cases = {cls for _, cls, _ in self.types.get(f"{TYPES}#error-code").cases}
        return code if type(code) in cases else None

    # wasi:http/outgoing-handler
    def handle(self, request: OutgoingRequest, options: Optional[RequestOptions]) -> FutureIncomingResponse:
        types = self.types
        scheme = scheme_name(request.scheme()) if request.scheme() is not None else "https"
        if scheme not in ("http", "https"):
            raise Err(_code(types, "HTTP-protocol-error"))
        authority = request.authority()
        if not authority:
            raise Err(_code(types, "HTTP-request-URI-invalid"))
        try:
            host, port = _split_authority(authority)
        except ValueError:
            raise Err(_code(types, "HTTP-request-URI-invalid")) from None
        port = port if port is not None else (443 if scheme == "https" else 80)
        if not any(g.allows(host, port) for g in self.grants):
            raise Err(_code(types, "HTTP-request-denied"))
        future = FutureIncomingResponse(types)
        job = _Exchange(types, request, options or RequestOptions(), scheme, host, port, authority, future)
        threading.Thread(target=job.run, name=f"wasi http {authority}", daemon=True).start()
        return future

    def providers(self) -> Dict[str, Any]:
        from types import SimpleNamespace

        resources: Dict[str, type] = {cls.__name__: cls for cls in (
            IncomingRequest, RequestOptions, ResponseOutparam, IncomingResponse,
            IncomingBody, FutureTrailers, OutgoingBody, FutureIncomingResponse)}
        for cls in (Fields, OutgoingRequest, OutgoingResponse):  # the guest constructs these
            resources[cls.__name__] = _bound_class(cls, self.types)
        return {
            TYPES: SimpleNamespace(http_error_code=self.http_error_code, **resources),
            "wasi:http/outgoing-handler": SimpleNamespace(handle=self.handle),
        }


def _bound_class(cls: type, types: WitTypes) -> type:
    """A subclass whose objects use `types` (the guest's WIT classes) from birth: what
    the guest constructs never depends on which instance came last."""
    return type(cls.__name__, (cls,), {"_wasi_types": types, "__module__": cls.__module__, "__doc__": cls.__doc__})


class _Exchange:
    """One request on its worker thread: wait for the body, send, read the response."""

    def __init__(self, types: WitTypes, request: OutgoingRequest, options: RequestOptions, scheme: str, host: str,
                 port: int, authority: str, future: FutureIncomingResponse) -> None:
        self.types, self.request, self.options = types, request, options
        self.scheme, self.host, self.port, self.authority = scheme, host, port, authority
        self.future = future

    def run(self) -> None:
        try:
            self.future.resolve(self._send())
        except BaseException as e:  # noqa: BLE001  (a worker must always resolve its future)
            self.future.resolve(Err(_code(self.types, "internal-error", f"{type(e).__name__}: {e}")))

    def _send(self) -> Any:
        types, request = self.types, self.request
        body = request.body_state
        if body is not None:
            body.done.wait()
            if body.aborted:
                return Err(_code(types, "internal-error", "the request body was dropped before it was finished"))
        data = bytes(body.data) if body is not None else None
        outcome = send_head(types, self.options, self.scheme, self.host, self.port, self.authority,
                            method_name(request.method()), request.path_with_query(), request.headers().entries(), data)
        if isinstance(outcome, Err):
            return outcome
        response, conn = outcome
        received = _bound_fields(types, [(k, v.encode("latin-1")) for k, v in response.getheaders()
                                         if k.lower() not in FORBIDDEN], True)
        source = _Source()
        source.on_close = lambda: _abort(conn)
        hold(types, conn)
        threading.Thread(target=_pump, args=(types, response, conn, source), name="wasi http body",
                         daemon=True).start()
        return Ok(IncomingResponse(types, response.status, received, IncomingBody(types, source)))


def send_head(types: WitTypes, options: RequestOptions, scheme: str, host: str, port: int, authority: str,
              method: str, path: Optional[str], headers: List[Tuple[str, bytes]], data: Optional[bytes]) -> Any:
    """Connect, send a request (head and whole body) and read the response's head, with
    `options`' timeouts (WASI 0.2 and 0.3 share this): `(response, connection)`, the
    connection's socket then timing out between bytes, or `Err(error-code)`."""
    declared = [v for n, v in headers if n.lower() == "content-length"]
    if declared and data is not None and declared[-1].strip() != str(len(data)).encode():
        return Err(_code(types, "HTTP-request-body-size", len(data)))  # never send a body its header misstates
    conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(host, port, timeout=options.seconds("connect"))
    try:
        conn.connect()
    except BaseException as e:
        conn.close()
        return Err(connect_error(types, e))
    try:
        assert conn.sock is not None
        conn.sock.settimeout(options.seconds("first_byte"))
        conn.putrequest(method, path or "/", skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", authority)
        names = {n.lower() for n, _ in headers}
        for name, value in headers:
            conn.putheader(name, value)
        if data is not None and "content-length" not in names and (data or method not in ("GET", "HEAD")):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
    except socket.timeout:
        conn.close()
        return Err(_code(types, "HTTP-response-timeout"))
    except (http.client.RemoteDisconnected, http.client.IncompleteRead):
        conn.close()
        return Err(_code(types, "HTTP-response-incomplete"))
    except http.client.HTTPException:
        conn.close()
        return Err(_code(types, "HTTP-protocol-error"))
    except ConnectionResetError:
        conn.close()
        return Err(_code(types, "connection-terminated"))
    except OSError as e:
        conn.close()
        return Err(_code(types, "internal-error", str(e)))
    if conn.sock is not None:
        conn.sock.settimeout(options.seconds("between_bytes"))
    return response, conn


def connect_error(types: WitTypes, e: BaseException) -> Any:
    """The error-code for a failed connect."""
    if isinstance(e, socket.gaierror):
        payload = types.get(f"{TYPES}#DNS-error-payload")(rcode=str(e.args[-1]) if e.args else None,
                                                           info_code=None)
        return _code(types, "DNS-error", payload)
    if isinstance(e, socket.timeout):
        return _code(types, "connection-timeout")
    if isinstance(e, ConnectionRefusedError):
        return _code(types, "connection-refused")
    if isinstance(e, ssl.SSLCertVerificationError):
        return _code(types, "TLS-certificate-error")
    if isinstance(e, ssl.SSLError):
        return _code(types, "TLS-protocol-error")
    if isinstance(e, OSError):
        return _code(types, "destination-unavailable")
    return _code(types, "internal-error", f"{type(e).__name__}: {e}")


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the pump if it is blocked in recv
        except OSError:
            pass
    conn.close()


def _pump(types: WitTypes, response: http.client.HTTPResponse, conn: http.client.HTTPConnection,
          source: _Source) -> None:
    try:
        while True:
            chunk = response.read1(65536)
            if not chunk:
                source.end()
                break
            if not source.put(chunk):
                break
    except socket.timeout:
        source.end(IoError("no response bytes within the between-bytes timeout",
                           _code(types, "HTTP-response-timeout")))
    except (http.client.IncompleteRead, http.client.HTTPException, OSError) as e:
        if not source.closed:
            source.end(IoError(f"reading the response body: {e}", _code(types, "HTTP-response-incomplete")))
    finally:
        conn.close()
        let_go(types, conn)


def hold(types: WitTypes, conn: http.client.HTTPConnection) -> None:
    """The instance whose classes are `types` holds `conn` open until its body is read
    (`let_go`): closing the instance aborts it (`_held`)."""
    held = held_of(types)
    if held is not None:
        held.hold(conn, lambda: _abort(conn))


def let_go(types: WitTypes, conn: http.client.HTTPConnection) -> None:
    held = held_of(types)
    if held is not None:
        held.let_go(conn)


def http_providers(types: WitTypes, grants: Tuple[HttpHost, ...]) -> Dict[str, Any]:
    """The `wasi:http/*` providers for one instance allowed to reach `grants`."""
    return Http(types, grants).providers()


register_shared((TYPES, "wasi:http/outgoing-handler"), lambda ctx: http_providers(ctx.types, ctx.wasi.http_hosts))
