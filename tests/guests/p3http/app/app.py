"""A WASI 0.3 HTTP client and server.

`Api.fetch`: one request through `wasi:http/client@0.3.0.send`, its body written through
a `stream<u8>`, the response's body read from one.

`Handler.handle` (the exported `wasi:http/handler@0.3.0`), by the path before any `?`:
- `/trap`: raises, so the guest traps (after writing the reason to stderr).
- `/error`: returns `err(internal-error("refused on purpose"))`.
- `/count`: "count=N", N the requests this instance has handled (isolation tests).
- `/stream`: the body in five chunks "chunk 0\n" .. "chunk 4\n", written after `handle`
  returned the response.
- `/bad-header`: tries a header name with a space; answers what `fields` said.
- anything else echoes: status from `x-status` (default 200); headers `x-method`,
  `x-path`, `x-echo` (the request's `x-echo` values joined by ","), `content-type`,
  `x-authority`, `x-scheme`; the request body as the body; if the request has
  `x-trailer`, the response ends with trailers `x-trailer: <value>`.
"""

import componentize_py_async_support
import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import client
from wit_world.imports.wasi_http_types import (ErrorCode_InternalError, Fields, Method_Get, Method_Other, Method_Post,
                                               Request, Response, Scheme_Http)


class Api(exports.Api):
    async def fetch(self, method: str, authority: str, path: str, body: str) -> str:
        headers = Fields.from_list([("x-guest", b"p3http"), ("content-type", b"text/plain")])
        writer, contents = wit_world.byte_stream()
        trailers_writer, trailers = wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Ok(None))
        request, sent = Request.new(headers, contents, trailers, None)
        request.set_method(Method_Post() if method == "POST" else Method_Get() if method == "GET"
                           else Method_Other(method))
        request.set_scheme(Scheme_Http())
        request.set_authority(authority)
        request.set_path_with_query(path)

        async def write_body() -> None:
            with writer:
                await writer.write_all(body.encode())
            with trailers_writer:
                await trailers_writer.write(Ok(None))

        componentize_py_async_support.spawn(write_body())
        try:
            response = await client.send(request)
        except Err as e:
            raise Err(type(e.value).__name__.split("_", 1)[1])
        status = response.get_status_code()
        echo = b",".join(response.get_headers().get("x-echo")).decode()
        done_writer, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
        stream, response_trailers = Response.consume_body(response, done)
        received = bytearray()
        with stream:
            while not stream.writer_dropped:
                received += await stream.read(65536)
        outcome = await response_trailers.read()
        with done_writer:
            await done_writer.write(Ok(None))
        sent_outcome = await sent.read()
        if isinstance(outcome, Err) or isinstance(sent_outcome, Err):
            raise Err(f"body failed: {outcome!r} {sent_outcome!r}")
        return f"{status} x-echo={echo} {received.decode()}"


_handled = 0


def _name(case: object) -> str:
    """`Method_Post()` -> "POST", `Method_Other("PURGE")` -> "PURGE" (schemes alike)."""
    value = getattr(case, "value", None)
    return value if isinstance(value, str) else type(case).__name__.split("_", 1)[1].upper()


def _respond(status: int, headers: list, chunks: list, trailer: object = None) -> Response:
    """A response whose body and trailers a spawned task writes after `handle` returned it."""
    writer, contents = wit_world.byte_stream()
    trailers_writer, trailers = wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
        lambda: Ok(None))
    response, sent = Response.new(Fields.from_list(headers), contents, trailers)
    response.set_status_code(status)

    async def write_body() -> None:
        with writer:
            for chunk in chunks:
                await writer.write_all(chunk)
        with trailers_writer:
            await trailers_writer.write(Ok(Fields.from_list([("x-trailer", trailer)]) if trailer else None))
        with sent:
            await sent.read()

    componentize_py_async_support.spawn(write_body())
    return response


async def _read_body(request: Request) -> bytes:
    done_writer, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
    stream, trailers = Request.consume_body(request, done)
    received = bytearray()
    with stream:
        while not stream.writer_dropped:
            received += await stream.read(65536)
    with trailers:
        await trailers.read()
    with done_writer:
        await done_writer.write(Ok(None))
    return bytes(received)


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        global _handled
        _handled += 1
        path = request.get_path_with_query() or ""
        route = path.split("?", 1)[0]
        if route == "/trap":
            raise ValueError("the handler failed on purpose")
        if route == "/error":
            raise Err(ErrorCode_InternalError("refused on purpose"))
        if route == "/count":
            return _respond(200, [], [f"count={_handled}".encode()])
        if route == "/stream":
            return _respond(200, [("content-type", b"text/plain")], [f"chunk {i}\n".encode() for i in range(5)])
        if route == "/bad-header":
            try:
                Fields.from_list([("bad name", b"x")])
                said = "accepted"
            except Err as e:
                said = type(e.value).__name__
            return _respond(200, [], [said.encode()])
        headers = request.get_headers()
        status = int(b"".join(headers.get("x-status")) or b"200")
        echo = b",".join(headers.get("x-echo"))
        trailer = headers.get("x-trailer")
        scheme = request.get_scheme()
        out_headers = [("content-type", b"application/octet-stream"),
                       ("x-method", _name(request.get_method()).encode()),
                       ("x-path", path.encode()),
                       ("x-echo", echo),
                       ("x-authority", (request.get_authority() or "").encode()),
                       ("x-scheme", (_name(scheme) if scheme is not None else "").encode())]
        body = await _read_body(request)
        return _respond(status, out_headers, [body], trailer[0] if trailer else None)
