"""The command line: `python -m wasm_import ...` and the `wasm-import` script.

    _main      argument parsing and the subcommands (`wit`, `inspect`, `call`, `run`,
               `serve`, `stubs`, `startup-hook`)
    _grants    the sandbox flags of `call`, `run` and `serve` (--dir, --env, --net,
               --http, --timeout, --fuel, --max-memory) made into `Wasi` and `Limits`
    _httpd     `serve`'s HTTP/1.1 server (asyncio streams) driving the `asgi()` app
    _inspect   a component's exports and imports as text
    _invoke    `call`: one export called with arguments written in WAVE
    _wave      WAVE, the WebAssembly value encoding: parsing and printing values of any
               WIT type
    _stubs     `.pyi` stubs for components (what `stubs` writes)

`run` and `call` run commands through `hook._command` (what `python -m foo` runs).

The top of the layering: it may use everything below, including the public `wasm_import`.
"""

from ._main import main

__all__ = ["main"]
