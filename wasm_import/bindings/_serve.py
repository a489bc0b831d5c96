"""Python calling a component's exported HTTP handler (WASI 0.2 or 0.3).

    response = wasm_import.handle_http(plugin, HttpRequest("POST", "/echo", body=b"hi"))
    response = await wasm_import.handle_http_async(inst, request)

The target is a component module (its default instance) or an instance; its handler is
the export `wasi:http/incoming-handler@0.2.x` or `wasi:http/handler@0.3.x`. The request's
resources are made with the instance's own WIT classes (from its WASI context), so what
the guest gets back from them (methods, schemes, errors) is what its bindings expect.
The work itself is in `runtime.wasi._serve`.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Mapping, Tuple

from .._errors import HttpHandlerError
from .._http import HttpRequest, HttpResponse, checked_request
from ..runtime.wasi import _serve
from ._component import ComponentInstance, ComponentModule

__all__ = ["handle_http", "handle_http_async", "handler_key", "exchange"]


def handler_key(exports: Mapping[str, Any], what: Any) -> Tuple[str, str]:
    """The key of the HTTP handler among `exports` and its WASI series ("0.2" or "0.3");
    TypeError naming what `what` exports instead."""
    for key in exports:
        series = _serve.handler_series(key)
        if series is not None:
            return key, series
    names = ", ".join(exports) or "nothing"
    raise TypeError(f"{what!r} exports no HTTP handler (wasi:http/incoming-handler@0.2.x or "
                    f"wasi:http/handler@0.3.x); it exports: {names}")


def _instance(target: Any) -> ComponentInstance:
    if isinstance(target, ComponentModule):
        handler_key(target.exports, target)  # before making a default instance
        return target._default_instance()
    if isinstance(target, ComponentInstance):
        return target
    raise TypeError(f"expected a component module or instance exporting an HTTP handler, got "
                    f"{type(target).__name__} {target!r}")


def _handler(inst: ComponentInstance) -> Tuple[str, Callable[..., Any], Any]:
    """(series, the export's `handle`, the WIT classes its request is made with)."""
    key, series = handler_key(inst.exports, inst)
    ctx = getattr(inst, "_wasi_context", None)
    types = None if ctx is None else (ctx.types if series == "0.2" else ctx.types_p3)
    if types is None or f"{_serve.TYPES}#method" not in types:
        raise TypeError(f"{inst!r}: serving its {key} needs wasm-import's own wasi:http/types, which was "
                        "replaced through imports=")
    return series, inst.exports[key].handle, types


def _stderr_note(inst: ComponentInstance) -> Callable[[BaseException], None]:
    """A function that gives an HttpHandlerError the lines the guest wrote to stderr from
    now on (its reason, often: a JavaScript handler's exception is printed, not trapped)."""
    tail = inst._engine.stderr_tail
    mark = tail.written if tail is not None else 0

    def note(error: BaseException) -> None:
        if tail is not None and isinstance(error, HttpHandlerError) and not error.stderr:
            text = tail.last_lines(since=mark)
            if text:
                error._set_stderr(text)
    return note


def handle_http(target: Any, request: HttpRequest) -> HttpResponse:
    """Call `target`'s exported HTTP handler with `request`; the whole response.

    A 0.2 handler runs on this thread; a 0.3 one (an async export) runs in `asyncio.run`,
    so call `handle_http_async` from async code. Raises `HttpHandlerError` when the
    handler gives no response (or an error-code), `Trap` when it traps; ValueError or
    TypeError for a request WASI would refuse (a header name that is not a token...)."""
    request, headers = checked_request(request)
    inst = _instance(target)
    series, handle, types = _handler(inst)
    if series == "0.2":
        note = _stderr_note(inst)
        try:
            return _serve.call_p2(handle, types, request, headers)
        except HttpHandlerError as e:
            note(e)
            raise
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_whole(exchange(inst, request, headers)))
    raise RuntimeError("handle_http() was called inside a running event loop, and this handler is async "
                       "(WASI 0.3): await wasm_import.handle_http_async() instead")


async def exchange(inst: ComponentInstance, request: HttpRequest, headers: Any) -> "_serve.Reply":
    """The streaming reply of `inst`'s handler to a checked request (what the ASGI app uses)."""
    series, handle, types = _handler(inst)
    note = _stderr_note(inst)
    try:
        if series == "0.2":
            reply = await _serve.exchange_p2(handle, types, request, headers)
        else:
            reply = await _serve.exchange_p3(handle, types, request, headers)
    except HttpHandlerError as e:
        note(e)
        raise

    async def noted(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in body:
                yield chunk
        except HttpHandlerError as e:
            note(e)
            raise

    reply.wrap_body(noted)
    return reply


async def _whole(reply: Any) -> HttpResponse:
    return await _serve.collect(await reply)


async def handle_http_async(target: Any, request: HttpRequest) -> HttpResponse:
    """`handle_http` for asyncio code: a 0.2 handler runs on a worker thread (the event
    loop is not blocked), a 0.3 handler on the running loop."""
    request, headers = checked_request(request)
    return await _whole(exchange(_instance(target), request, headers))
