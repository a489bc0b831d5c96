"""wasm-import: WebAssembly components as native Python modules.

    import wasm_import          # installs the import hook (cheap: wasmtime loads lazily)
    import calculator           # finds calculator.wasm on sys.path
    calculator.add(1, 2)

    mod = wasm_import.load("calculator.wasm")          # the same, without the hook
    inst = mod.instantiate(imports={"test:demo/logger": my_logger})

See README.md for the tour.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Optional, Union

from . import wit
from ._errors import (DeadlockError, DecodeError, GuestExit, HttpHandlerError, InstanceClosedError,
                      InstancePoisonedError, LimitExceeded, LinkError, Trap, WasmImportError)
from ._http import HttpRequest, HttpResponse
from ._limits import Limits
from .runtime._async import Future, FutureReader, Stream, StreamReader
from .hook import install, uninstall
from ._values import Err, Ok, Result, Some
from ._wasi import Dir, Net, Wasi

if TYPE_CHECKING:  # pragma: no cover
    from .bindings._component import ComponentInstance, ComponentModule

__all__ = [
    "Stream", "StreamReader", "Future", "FutureReader",
    "load",
    "install",
    "uninstall",
    "wit",
    "Wasi",
    "Dir",
    "Net",
    "Limits",
    "Some",
    "Ok",
    "Err",
    "Result",
    "WasmImportError",
    "DecodeError",
    "LinkError",
    "Trap",
    "GuestExit",
    "LimitExceeded",
    "InstancePoisonedError",
    "InstanceClosedError",
    "DeadlockError",
    "HttpHandlerError",
    "HttpRequest",
    "HttpResponse",
    "handle_http",
    "handle_http_async",
    "asgi",
]

install()  # the import hook (wasm_import.hook): `import foo` finds foo.wasm


def load(source: Union[str, "os.PathLike[str]", bytes], *, name: Optional[str] = None) -> "ComponentModule":
    """Load a component from a path or bytes as a component module (no import hook needed).

    The module's exports are attributes; calls on it run on a default instance made on
    first use. `module.instantiate(imports=..., wasi=...)` makes independent instances.
    """
    from .bindings._component import load as _load

    return _load(source, name=name)


def handle_http(target: Any, request: HttpRequest) -> HttpResponse:
    """Call the exported HTTP handler (`wasi:http/incoming-handler@0.2.x` or
    `wasi:http/handler@0.3.x`) of `target`, a component module (its default instance) or
    an instance, with `request`; the whole response. Raises `HttpHandlerError` when the
    handler gives no response or an error-code, `Trap` when it traps. From async code, or
    for a 0.3 handler inside a running loop, use `handle_http_async`."""
    from .bindings._serve import handle_http as _handle

    return _handle(target, request)


async def handle_http_async(target: Any, request: HttpRequest) -> HttpResponse:
    """`handle_http` for asyncio code: a 0.2 handler runs on a worker thread so the event
    loop is not blocked, a 0.3 handler runs on the running loop."""
    from .bindings._serve import handle_http_async as _handle

    return await _handle(target, request)


def asgi(target: Any, *, wasi: Optional[Wasi] = None, imports: Optional[Mapping[str, Any]] = None,
         limits: Optional[Limits] = None, max_body: int = 64 << 20) -> Callable[..., Awaitable[None]]:
    """An ASGI 3 app serving `target`'s exported HTTP handler: a module gets a fresh
    instance per request (made with `imports`, `wasi`, `limits`), an instance serves every
    request itself. Bodies over `max_body` bytes get 413; a failing guest gets 500 (logged
    to the `wasm_import.http` logger)."""
    from .bindings._asgi import asgi as _asgi

    return _asgi(target, wasi=wasi, imports=imports, limits=limits, max_body=max_body)
