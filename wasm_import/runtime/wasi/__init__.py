"""WASI 0.2 as ordinary Python host implementations of the WIT interfaces.

`wasi:io`, `wasi:clocks`, `wasi:random`, `wasi:cli` and `wasi:filesystem` live here
(`wasi:sockets` and `wasi:http` beside them), served to a component like any other
import: one object per imported interface, built per instance from its `Wasi` grants.
"""

from __future__ import annotations

__all__ = ["WasiContext", "wasi_provider", "register_interface", "MemoryDir", "FakeClock",
           "SeededRandom"]

_LAZY = {"WasiContext": "_context", "wasi_provider": "_context", "register_interface": "_context",
         "MemoryDir": "_memfs", "FakeClock": "_fakes", "SeededRandom": "_fakes"}


def __getattr__(name: str):  # the implementations load on first use, not with the package
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
