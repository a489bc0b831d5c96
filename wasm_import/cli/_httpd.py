"""A small HTTP/1.1 server for one ASGI app, on asyncio streams (for `wasm-import serve`).

    server = await start(app, "127.0.0.1", 8080)   # an asyncio.Server; serve_forever() it

Standard library only, so that trying a component's HTTP handler needs no ASGI server.
What it does, and refuses:

- Requests: `METHOD SP target SP HTTP/1.x`, origin-form targets (`/path?query`),
  absolute-form (`http://host/path`: its authority replaces `Host`) and `OPTIONS *`.
  Header lines are `name: value` with a token name; no folded lines, no blank before the
  colon, no control characters in values. HTTP/1.1 needs exactly one `Host`. Anything
  else is `400` and the connection is closed; a request line over `MAX_LINE` bytes is
  `414`, a header section over `MAX_HEAD` bytes or `MAX_HEADERS` lines `431`, HTTP/2 or
  later in a request line `505`, a transfer coding other than `chunked` `501`, an
  `Expect` other than `100-continue` `417`.
- Bodies: `Content-Length` (every value the same number) or `Transfer-Encoding: chunked`
  (strict hex sizes, CRLF after each chunk, trailers read and dropped); both at once is
  `400` (the classic request-smuggling ambiguity). The body reaches the app as it arrives,
  `READ_CHUNK` bytes at a time, so the app's own size limit bounds the memory; `100
  Continue` is sent when the app first asks for the body.
- Responses: framed by the app's `content-length` when it gives one (a body that does
  not match it is cut or left short, and the connection closed), else by a known whole
  body's length, else chunked (HTTP/1.1, with the app's trailers) or by closing the
  connection (HTTP/1.0). No body for HEAD, 1xx, 204 and 304. Hop-by-hop headers of the
  app (`connection`, `transfer-encoding`...) are dropped; `date` is added unless the app
  gave one.
- Connections persist (HTTP/1.1 unless `Connection: close`; HTTP/1.0 with `keep-alive`)
  and are closed after a response whose request body was not read to its end, an app
  that failed, or `IDLE_TIMEOUT` seconds without a request. Requests on one connection
  are answered in order; connections are served concurrently.
- An app that raises or returns without a response gets the client a `500`; one that
  fails half-way through its body leaves that body unfinished and the connection closed,
  so the client cannot take a truncated body for a whole one. Each is one line on the
  logger `wasm_import.http`. A client's bad input or disconnection never stops the server.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from email.utils import formatdate
from urllib.parse import unquote_to_bytes
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

__all__ = ["start", "urls", "log_to_stderr", "MAX_LINE", "MAX_HEAD", "MAX_HEADERS", "READ_CHUNK", "IDLE_TIMEOUT", "BODY_TIMEOUT", "LINGER"]

MAX_LINE = 8 << 10
MAX_HEAD = 64 << 10
MAX_HEADERS = 100
READ_CHUNK = 64 << 10
IDLE_TIMEOUT = 30.0  # for a request's head, and between requests on a kept-alive connection
BODY_TIMEOUT = 60.0  # for each read of a request body
LINGER = 2.0  # after our side is closed, how long to drain what the client still sends
LINGER_BYTES = 16 << 20

logger = logging.getLogger("wasm_import.http")

App = Callable[[Dict[str, Any], Callable[[], Awaitable[Dict[str, Any]]],
                Callable[[Dict[str, Any]], Awaitable[None]]], Awaitable[None]]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
                         b"te"})
_NO_BODY = frozenset({204, 304})


class _Refused(Exception):
    """A request the server answers itself, with `status`, and then closes the connection."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class _Gone(Exception):
    """The client closed the connection (or stalled past a timeout)."""


def urls(server: "asyncio.Server") -> str:
    """`http://127.0.0.1:8080` for each socket `server` listens on (a name such as
    `localhost` may give several), joined by ", "."""
    found = []
    for sock in server.sockets:
        host, port = sock.getsockname()[:2]
        found.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
    return ", ".join(found)


async def start(app: App, host: str, port: int) -> "asyncio.Server":
    """Listen on `host:port` (port 0: a free one) and serve `app` on every connection."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve_connection(app, reader, writer)
        except asyncio.CancelledError:  # the server stops: no lingering. (Not re-raised: asyncio's
            writer.close()              # stream callback would log a cancelled task as an error.)
            return
        except Exception as e:  # noqa: BLE001  (one connection's trouble is never the server's)
            logger.error("an HTTP connection failed: %s", _one_line(e))
        await _close(reader, writer)

    return await asyncio.start_server(connection, host, port, limit=MAX_LINE + 2)


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close gently: end our side, then read (and drop) what the client still sends for up to
    `LINGER` seconds, so that the kernel does not answer unread bytes with a reset that
    could destroy the response before the client reads it (a 413 sent before the body)."""
    try:
        if not writer.is_closing() and writer.can_write_eof():
            await writer.drain()
            writer.write_eof()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER
        dropped = 0
        while dropped < LINGER_BYTES and not reader.at_eof():
            left = deadline - loop.time()
            if left <= 0:
                break
            data = await asyncio.wait_for(reader.read(READ_CHUNK), left)
            if not data:
                break
            dropped += len(data)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


# -- reading a request -----------------------------------------------------------------------------

async def _line(reader: asyncio.StreamReader, too_long: int, what: str) -> bytes:
    """One line without its CRLF (a bare LF is accepted, as RFC 9112 allows)."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise _Refused(too_long, f"{what} longer than {MAX_LINE} bytes") from None
    except asyncio.IncompleteReadError as e:
        raise _Gone() from e
    except ConnectionError as e:
        raise _Gone() from e
    return line[:-2] if line.endswith(b"\r\n") else line[:-1]


class _Head:
    """A parsed request head."""

    def __init__(self, method: str, target: bytes, minor: int, headers: List[Tuple[bytes, bytes]]) -> None:
        self.method = method
        self.target = target
        self.minor = minor  # 0 or 1: HTTP/1.0 or HTTP/1.1
        self.headers = headers

    def values(self, name: bytes) -> List[bytes]:
        return [v for n, v in self.headers if n == name]

    def tokens(self, name: bytes) -> List[bytes]:
        """The comma-separated list of a header's values, lowercased."""
        return [t.strip().lower() for v in self.values(name) for t in v.split(b",") if t.strip()]


async def _read_head(reader: asyncio.StreamReader) -> Optional[_Head]:
    """The next request's head; None when the client closed the connection between requests."""
    for _ in range(4):  # RFC 9112 2.2: ignore a few empty lines before a request line
        try:
            line = await _line(reader, 414, "the request line")
        except _Gone:
            return None
        if line:
            break
    else:
        raise _Refused(400, "empty lines instead of a request")
    parts = line.split(b" ")
    if len(parts) != 3:
        raise _Refused(400, "a request line is METHOD SP target SP HTTP-version")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise _Refused(400, "the method is not an HTTP token")
    if not _TARGET.fullmatch(target):
        raise _Refused(400, "the request target is empty or has spaces or control characters")
    match = _VERSION.fullmatch(version)
    if match is None:
        raise _Refused(400, "the HTTP version is not HTTP/x.y")
    if match.group(1) != b"1":
        raise _Refused(505, "only HTTP/1.0 and HTTP/1.1 are served")
    headers: List[Tuple[bytes, bytes]] = []
    size = len(line)
    while True:
        line = await _line(reader, 431, "a header line")
        if not line:
            break
        size += len(line) + 2
        if size > MAX_HEAD or len(headers) >= MAX_HEADERS:
            raise _Refused(431, f"the header section is over {MAX_HEAD} bytes or {MAX_HEADERS} lines")
        if line[:1] in (b" ", b"\t"):
            raise _Refused(400, "folded header lines are not accepted")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise _Refused(400, "a header line is not `name: value` with a token name")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise _Refused(400, "a header value has control characters")
        headers.append((name.lower(), value))
    return _Head(method.decode("ascii"), target, 0 if match.group(2) == b"0" else 1, headers)


class _Body:
    """The request body as ASGI `receive()` gives it, read from the connection on demand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: Optional[int],
                 continue_first: bool) -> None:
        self._reader = reader
        self._writer = writer
        self._left = length  # bytes still to read; None: chunked
        self._chunk_left = 0  # chunked: what remains of the current chunk
        self._continue = continue_first
        self.complete = length == 0  # every byte of the body is read
        self._delivered = False  # the app has been given the body's end
        self.gone = False
        self.refused: Optional[_Refused] = None  # a malformed chunked body
        self.responded = asyncio.Event()  # set when the response is over: receive() then says disconnect

    async def receive(self) -> Dict[str, Any]:
        if self._delivered or self.gone or self.refused is not None:
            if self._delivered:  # ASGI: after the body, receive() waits for the end of the exchange
                await self.responded.wait()
            return {"type": "http.disconnect"}
        if self.complete:  # no body at all
            self._delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if self._continue:
            self._continue = False
            self._writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            data = await asyncio.wait_for(self._read(), BODY_TIMEOUT)
        except (_Gone, asyncio.TimeoutError, ConnectionError):
            self.gone = True
            return {"type": "http.disconnect"}
        except _Refused as e:
            self.refused = e
            return {"type": "http.disconnect"}
        self._delivered = self.complete
        return {"type": "http.request", "body": data, "more_body": not self.complete}

    async def _read(self) -> bytes:
        if self._left is not None:
            data = await self._reader.read(min(self._left, READ_CHUNK))
            if not data:
                raise _Gone()
            self._left -= len(data)
            self.complete = self._left == 0
            return data
        if self._chunk_left == 0:
            line = await _line(self._reader, 400, "a chunk-size line")
            size = line.split(b";", 1)[0].strip(b" \t")
            if not _HEX.fullmatch(size):
                raise _Refused(400, "a chunk size is not hexadecimal")
            self._chunk_left = int(size, 16)
            if self._chunk_left == 0:
                await self._trailers()
                self.complete = True
                return b""
        data = await self._reader.read(min(self._chunk_left, READ_CHUNK))
        if not data:
            raise _Gone()
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and await _line(self._reader, 400, "the end of a chunk") != b"":
            raise _Refused(400, "a chunk is longer than its size says")
        return data

    async def _trailers(self) -> None:
        size = 0
        while True:
            line = await _line(self._reader, 431, "a trailer line")
            if not line:
                return
            size += len(line)
            if size > MAX_HEAD:
                raise _Refused(431, "the trailer section is too large")
            if line[:1] in (b" ", b"\t") or b":" not in line or not _TOKEN.fullmatch(line.partition(b":")[0]):
                raise _Refused(400, "a trailer line is not `name: value`")


def _body_length(head: _Head) -> Optional[int]:
    """The request body's length (0 without one), or None for chunked; _Refused for framing
    the server will not guess at."""
    codings = head.tokens(b"transfer-encoding")
    lengths = set(head.tokens(b"content-length"))
    if codings:
        if head.minor == 0:
            raise _Refused(400, "Transfer-Encoding in an HTTP/1.0 request")
        if lengths:
            raise _Refused(400, "both Transfer-Encoding and Content-Length")
        if codings[-1] != b"chunked":
            raise _Refused(400, "the last transfer coding is not chunked")
        if codings != [b"chunked"]:
            raise _Refused(501, "transfer codings other than chunked are not supported")
        return None
    if not lengths:
        return 0
    if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
        raise _Refused(400, "Content-Length is not one number")
    return int(lengths.pop())


# -- one exchange ----------------------------------------------------------------------------------

async def _serve_connection(app: App, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    local = writer.get_extra_info("sockname")
    client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
    server = (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
    while True:
        try:
            head = await asyncio.wait_for(_read_head(reader), IDLE_TIMEOUT)
        except asyncio.TimeoutError:
            return
        except _Refused as e:
            await _refuse(writer, e)
            return
        except _Gone:
            return
        if head is None:
            return
        try:
            keep = await _exchange(app, head, reader, writer, client, server)
        except (_Gone, ConnectionError):
            return
        if not keep:
            return


async def _refuse(writer: asyncio.StreamWriter, refused: _Refused, minor: int = 1) -> None:
    text = f"{http.HTTPStatus(refused.status).phrase}: {refused}\n".encode()
    head = (f"HTTP/1.{minor} {refused.status} {http.HTTPStatus(refused.status).phrase}\r\n"
            f"content-type: text/plain; charset=utf-8\r\ncontent-length: {len(text)}\r\n"
            f"date: {formatdate(usegmt=True)}\r\nconnection: close\r\n\r\n").encode()
    try:
        writer.write(head + text)
        await writer.drain()
    except ConnectionError:
        pass


def _scope(head: _Head, client: Any, server: Any) -> Dict[str, Any]:
    target, headers = head.target, head.headers
    if target.lower().startswith(b"http://") or target.lower().startswith(b"https://"):
        rest = target.split(b"://", 1)[1]
        slash = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
        authority, target = rest[:slash], rest[slash:] or b"/"
        if target.startswith(b"?"):
            target = b"/" + target
        if not authority or b"@" in authority:
            raise _Refused(400, "an absolute-form target needs an authority without user info")
        headers = [(n, v) for n, v in headers if n != b"host"] + [(b"host", authority)]
    elif target == b"*":
        if head.method != "OPTIONS":
            raise _Refused(400, "the target * is for OPTIONS only")
    elif not target.startswith(b"/"):
        raise _Refused(400, "the request target is not a path, an absolute URL or *")
    if head.minor == 1 and len([1 for n, _ in headers if n == b"host"]) != 1:
        raise _Refused(400, "an HTTP/1.1 request needs exactly one Host header")
    path, _, query = target.partition(b"?")
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": f"1.{head.minor}", "method": head.method, "scheme": "http",
            "path": unquote_to_bytes(path).decode("utf-8", "replace"), "raw_path": path, "query_string": query,
            "root_path": "", "headers": headers, "client": client, "server": server,
            "extensions": {"http.response.trailers": {}} if head.minor == 1 else {}}


async def _exchange(app: App, head: _Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    client: Any, server: Any) -> bool:
    """Serve one request; whether the connection may carry another."""
    try:
        length = _body_length(head)
        expect = head.tokens(b"expect")
        if expect and (expect != [b"100-continue"]):
            raise _Refused(417, "the only expectation served is 100-continue")
        scope = _scope(head, client, server)
    except _Refused as e:
        await _refuse(writer, e, head.minor)
        return False
    body = _Body(reader, writer, length, head.minor == 1 and bool(expect))
    connection = head.tokens(b"connection")
    wants_keep = b"close" not in connection and (head.minor == 1 or b"keep-alive" in connection)
    response = _Response(writer, head, body, wants_keep)
    try:
        await app(scope, body.receive, response.send)
    except (_Gone, ConnectionError):
        raise
    except Exception as e:  # noqa: BLE001
        logger.error("the app failed on %s %s: %s", head.method, head.target.decode("latin-1"), _one_line(e))
        response.failed = True
    finally:
        body.responded.set()
    if body.refused is not None and not response.started:
        await _refuse(writer, body.refused, head.minor)
        return False
    if body.gone:
        return False
    if not response.started:
        if not response.failed:
            logger.error("the app gave no response to %s %s", head.method, head.target.decode("latin-1"))
        await _refuse(writer, _Refused(500, "the server failed to answer"), head.minor)
        return False
    if not response.finished:  # failed half-way: the client must not take what it got for the whole
        return False
    return response.keep_alive


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class _OneLine(logging.Formatter):
    """`error: <message>: <Exception>: <its first line>`: a failed request is one line, its
    traceback left out (a guest's own stderr, inherited, says the rest)."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {_one_line(record.exc_info[1])}"
        return text


def log_to_stderr() -> None:
    """Print what the server and the ASGI app log (logger `wasm_import.http`) to stderr,
    one line per event."""
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class _Response:
    """ASGI `send()`: the app's response written as HTTP/1.x (see the module docstring)."""

    def __init__(self, writer: asyncio.StreamWriter, head: _Head, body: _Body, keep_alive: bool) -> None:
        self._writer = writer
        self._head = head
        self._body = body
        self.keep_alive = keep_alive
        self.started = False  # the status line is written
        self.finished = False  # the whole response is written
        self.failed = False
        self._start: Optional[Dict[str, Any]] = None
        self._framing = ""  # "length", "chunked", "close" or "none"
        self._left = 0  # "length": bytes still owed
        self._cut = False  # "length": the app wrote more than it declared
        self._awaiting_trailers = False
        self._trailers: List[Tuple[bytes, bytes]] = []

    async def send(self, message: Dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            if self._start is not None:
                raise RuntimeError("http.response.start sent twice")
            self._start = message
        elif kind == "http.response.body":
            if self._start is None or self.finished or self._awaiting_trailers:
                raise RuntimeError("http.response.body out of order")
            data = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            trailers = bool(self._start.get("trailers", False))
            if not self.started:
                self._write_head(data if not more and not trailers else None)
            self._write_body(data)
            if not more:
                if trailers:
                    self._awaiting_trailers = True
                else:
                    self._end(())
            await self._writer.drain()
        elif kind == "http.response.trailers":
            if not self._awaiting_trailers or self.finished:
                raise RuntimeError("http.response.trailers out of order")
            self._trailers += [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
            if not message.get("more_trailers", False):
                self._end(self._trailers)
                await self._writer.drain()
        else:
            raise RuntimeError(f"unknown ASGI message type {kind!r}")

    def _write_head(self, whole: Optional[bytes]) -> None:
        assert self._start is not None
        status = self._start.get("status")
        if not isinstance(status, int) or not 200 <= status <= 999:
            raise RuntimeError(f"the response status {status!r} is not a final status (200..999)")
        headers: List[Tuple[bytes, bytes]] = []
        declared: List[bytes] = []
        for name, value in self._start.get("headers", ()):
            name, value = bytes(name).lower(), bytes(value)
            if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value) or value != value.strip(b" \t"):
                raise RuntimeError(f"the response header {name!r} is not a valid HTTP field")
            if name in _HOP_BY_HOP:
                continue
            if name == b"content-length":
                declared.append(value)
                continue
            headers.append((name, value))
        no_body = status in _NO_BODY or self._head.method == "HEAD"
        length = _declared_length(declared)
        if length is not None and status != 204:
            headers.append((b"content-length", str(length).encode()))
        if no_body:
            self._framing = "none"
        elif length is not None:
            self._framing, self._left = "length", length
        elif whole is not None:
            self._framing, self._left = "length", len(whole)
            headers.append((b"content-length", str(len(whole)).encode()))
        elif self._head.minor == 1:
            self._framing = "chunked"
            headers.append((b"transfer-encoding", b"chunked"))
        else:
            self._framing = "close"
            self.keep_alive = False
        if not self._body.complete:  # the rest of the request body is not read: nothing can follow it
            self.keep_alive = False
        if not self.keep_alive:
            headers.append((b"connection", b"close"))
        elif self._head.minor == 0:
            headers.append((b"connection", b"keep-alive"))
        if not any(name == b"date" for name, _ in headers):  # the app's own date, if it gave one
            headers.append((b"date", formatdate(usegmt=True).encode()))
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.{self._head.minor} {status} {phrase}".encode()]
        lines += [name + b": " + value for name, value in headers]
        self._writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        self.started = True

    def _write_body(self, data: bytes) -> None:
        if not data or self._framing == "none":
            return
        if self._framing == "length":
            if len(data) > self._left and not self._cut:
                self._cut = True
                logger.error("the response to %s %s is longer than its content-length; cut there",
                             self._head.method, self._head.target.decode("latin-1"))
                data, self.keep_alive = data[:self._left], False
            self._left -= len(data)
            self._writer.write(data)
        elif self._framing == "chunked":
            self._writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._writer.write(data)

    def _end(self, trailers: Any) -> None:
        if self._framing == "chunked":
            fields = b"".join(bytes(n) + b": " + bytes(v) + b"\r\n" for n, v in trailers
                              if _TOKEN.fullmatch(bytes(n)) and not _BAD_VALUE.search(bytes(v)))
            self._writer.write(b"0\r\n" + fields + b"\r\n")
        elif self._framing == "length" and self._left:
            logger.error("the response to %s %s is shorter than its content-length; connection closed",
                         self._head.method, self._head.target.decode("latin-1"))
            self.keep_alive = False
            return  # left unfinished
        elif self._framing == "close":
            self.keep_alive = False
        self.finished = True


def _declared_length(values: List[bytes]) -> Optional[int]:
    """The app's content-length, if it gave one number (repeated the same, at most)."""
    numbers = {v.strip() for value in values for v in value.split(b",")}
    if len(numbers) == 1:
        only = numbers.pop()
        if only.isdigit():
            return int(only)
    if numbers:
        raise RuntimeError(f"the response's content-length {b', '.join(values)!r} is not one number")
    return None
