"""wasmtime's C library: where it is, how to declare its functions, how to read its errors.

The runtime calls wasmtime's C API (`wasm.h`, `wasmtime.h`) directly through ctypes
(`_wasmtime`); wasmtime-py's Python layer is never imported (its import alone costs about
18 ms, most of a warm import's budget). The library is the one the `wasmtime` wheel ships,
found beside its package with `importlib.util.find_spec`, which does not execute the
package.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys
from typing import Any, Tuple

__all__ = ["WasmtimeError", "wasmtime_version", "split_trap_text", "c_function"]

_ptr = ctypes.c_void_p


class WasmtimeError(Exception):
    """wasmtime refused a request (its message is the text)."""


def _library_path() -> str:
    """`wasmtime/<platform>-<machine>/<lib>` inside the installed `wasmtime` package."""
    spec = importlib.util.find_spec("wasmtime")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the wasmtime package is not installed")
    platform_name = "android" if hasattr(sys, "getandroidapilevel") else sys.platform
    names = {"linux": "_libwasmtime.so", "android": "_libwasmtime.so", "darwin": "_libwasmtime.dylib",
             "win32": "_wasmtime.dll"}
    if platform_name not in names:
        raise ImportError(f"wasmtime does not support the platform {platform_name!r}")
    machine = os.uname().machine if hasattr(os, "uname") else _windows_machine()
    machine = {"AMD64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(machine, machine)
    package_dir = list(spec.submodule_search_locations)[0]
    return os.path.join(package_dir, f"{platform_name}-{machine}", names[platform_name])


def _windows_machine() -> str:
    import platform

    return platform.machine()


@functools.lru_cache(maxsize=None)
def wasmtime_version() -> str:
    """wasmtime's version, read from its dist-info beside the package (importlib.metadata
    scans all of sys.path, ~10 ms; this is one listdir), else from the metadata."""
    spec = importlib.util.find_spec("wasmtime")
    if spec is not None and spec.origin:
        site = os.path.dirname(os.path.dirname(spec.origin))
        for entry in os.listdir(site):
            if entry.startswith("wasmtime-") and entry.endswith(".dist-info"):
                return entry[len("wasmtime-"):-len(".dist-info")]
    from importlib.metadata import version

    return version("wasmtime")


@functools.lru_cache(maxsize=None)
def _lib() -> Any:
    return ctypes.CDLL(_library_path())


def c_function(name: str, restype: Any, *argtypes: Any) -> Any:
    """wasmtime's C function `name` as a new function object of the given prototype; with
    `c_void_p` arguments it takes plain addresses (ints), which ctypes passes unchecked."""
    address = ctypes.cast(getattr(_lib(), name), _ptr).value
    if address is None:
        raise OSError(f"the wasmtime library has no function {name}")
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


def split_trap_text(text: str) -> Tuple[str, str]:
    """wasmtime's text for a failed call, "error while executing at wasm backtrace:\n
    0: ...\n\nCaused by:\n    <reason>" (either part may be missing), as (reason, trace):
    the reason on one line (a numbered cause chain reads root cause first, its context in
    parentheses) and the backtrace as text ("" when there is none)."""
    text = text.strip()
    head, _, cause = text.partition("\n\nCaused by:")
    trace = ""
    if "wasm backtrace:" in head:
        before, _, frames = head.partition("wasm backtrace:")
        trace = "wasm backtrace:" + frames.rstrip()
        head = before.replace("error while executing at", "").strip()
    reason = _cause_text(cause) if cause else head
    return reason or text, trace


def _cause_text(cause: str) -> str:
    lines = [line.strip() for line in cause.strip().splitlines() if line.strip()]
    numbered = [line.partition(": ")[2] for line in lines if line.partition(": ")[0].isdigit()]
    if len(numbered) > 1 and len(numbered) == len(lines):
        return f"{numbered[-1]} ({'; '.join(numbered[:-1])})"
    return " ".join(" ".join(lines).split())
