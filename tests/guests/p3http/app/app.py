"""A WASI 0.3 HTTP client: one request through `wasi:http/client@0.3.0.send`, its body
written through a `stream<u8>`, the response's body read from one."""

import componentize_py_async_support
import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import client
from wit_world.imports.wasi_http_types import Fields, Method_Get, Method_Other, Method_Post, Request, Response, Scheme_Http


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
