"""A WASI 0.2 HTTP handler (world `wasi:http/proxy@0.2.3`): exports
`wasi:http/incoming-handler`, so a host serves it by making an `incoming-request` and a
`response-outparam` and calling `handle`.

Routes (by the path before any `?`):
- `/trap`: raises, so the guest traps (after writing the reason to stderr).
- `/noset`: returns without setting the response-outparam.
- `/error`: sets the outparam to `err(internal-error("refused on purpose"))`.
- `/count`: "count=N", N the requests this instance has handled (isolation tests).
- `/stream`: the body in five chunks "chunk 0\n" .. "chunk 4\n".
- `/bad-header`: tries a header name with a space; answers what `fields` said.
- anything else echoes: status from `x-status` (default 200); headers `x-method`,
  `x-path`, `x-echo` (the request's `x-echo` values joined by ","), `content-type`,
  `x-authority`, `x-scheme`; the request body as the body; if the request has
  `x-trailer`, the response body ends with trailers `x-trailer: <value>`.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.types import (ErrorCode_InternalError, Fields, IncomingBody, IncomingRequest, OutgoingBody,
                                     OutgoingResponse, ResponseOutparam)

_handled = 0


def _name(case: object) -> str:
    """`Method_Post()` -> "POST", `Method_Other("PURGE")` -> "PURGE" (schemes alike)."""
    value = getattr(case, "value", None)
    return value if isinstance(value, str) else type(case).__name__.split("_", 1)[1].upper()


def _read_body(request: IncomingRequest) -> bytes:
    body = request.consume()
    data = bytearray()
    with body.stream() as stream:
        while True:
            try:
                data += stream.blocking_read(65536)
            except Err:  # closed: the end of the body
                break
    IncomingBody.finish(body)
    return bytes(data)


def _send(out: ResponseOutparam, status: int, headers: list, chunks: list, trailers: object = None) -> None:
    response = OutgoingResponse(Fields.from_list(headers))
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(out, Ok(response))
    with body.write() as stream:
        for chunk in chunks:
            for at in range(0, len(chunk), 4096):
                stream.blocking_write_and_flush(chunk[at:at + 4096])
    OutgoingBody.finish(body, trailers)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        global _handled
        _handled += 1
        path = request.path_with_query() or ""
        route = path.split("?", 1)[0]
        if route == "/trap":
            raise ValueError("the handler failed on purpose")
        if route == "/noset":
            return
        if route == "/error":
            ResponseOutparam.set(response_out, Err(ErrorCode_InternalError("refused on purpose")))
            return
        if route == "/count":
            _send(response_out, 200, [], [f"count={_handled}".encode()])
            return
        if route == "/stream":
            _send(response_out, 200, [("content-type", b"text/plain")], [f"chunk {i}\n".encode() for i in range(5)])
            return
        if route == "/bad-header":
            try:
                Fields.from_list([("bad name", b"x")])
                said = "accepted"
            except Err as e:
                said = type(e.value).__name__
            _send(response_out, 200, [], [said.encode()])
            return
        headers = request.headers()
        status = int(b"".join(headers.get("x-status")) or b"200")
        echo = b",".join(headers.get("x-echo"))
        trailer = headers.get("x-trailer")
        scheme = request.scheme()
        out_headers = [("content-type", b"application/octet-stream"),
                       ("x-method", _name(request.method()).encode()),
                       ("x-path", path.encode()),
                       ("x-echo", echo),
                       ("x-authority", (request.authority() or "").encode()),
                       ("x-scheme", (_name(scheme) if scheme is not None else "").encode())]
        body = _read_body(request)
        trailers = Fields.from_list([("x-trailer", trailer[0])]) if trailer else None
        _send(response_out, status, out_headers, [body], trailers)
