"""The command line: `python -m wasm_import ...` and the `wasm-import` script.

    _main      argument parsing and the subcommands (`wit`, `inspect`, `call`, `run`,
               `stubs`, `startup-hook`)
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
