"""Loading a component on a chosen engine, for tests that compare or stress the new runtime.

`wasm_import.load` reads `$WASM_IMPORT_ENGINE` when it loads a component; `load_on` sets it
for the duration of one load, so one test process can hold the same component on both
engines side by side. `run_child` runs a Python snippet in a fresh interpreter on the core
engine, for what could hang or kill the process under test (signals, timeouts).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import wasm_import
from tests._build import REPO_ROOT

__all__ = ["ENGINE_ENV", "engine", "load_on", "load_core", "run_child"]

ENGINE_ENV = "WASM_IMPORT_ENGINE"


@contextlib.contextmanager
def engine(name: str) -> Iterator[None]:
    old = os.environ.get(ENGINE_ENV)
    os.environ[ENGINE_ENV] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENGINE_ENV, None)
        else:
            os.environ[ENGINE_ENV] = old


def load_on(name: str, source: Union[Path, bytes], module_name: Optional[str] = None) -> Any:
    """`wasm_import.load(source)` on engine `name` ('core' or 'component')."""
    with engine(name):
        module = wasm_import.load(source, name=module_name)
    assert module.__wasm_engine__ == name
    return module


def load_core(source: Union[Path, bytes], module_name: Optional[str] = None) -> Any:
    return load_on("core", source, module_name)


def run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` (dedented) in a new interpreter with the repo on sys.path and the core
    engine selected; returns the completed process (stdout/stderr as text). A child killed
    by a signal (abort, segfault) has a negative returncode: callers assert it is 0."""
    env = dict(os.environ, **{ENGINE_ENV: "core", "PYTHONPATH": str(REPO_ROOT)})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=timeout)
