"""Helpers for tests that compare or stress the runtime.

`load_core` loads a component (the name says which runtime: our own, on wasmtime's core
API, the one `wasm_import` has). `run_child` runs a Python snippet in a fresh interpreter,
for what could hang or kill the process under test (signals, timeouts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional, Union

import wasm_import
from tests._build import REPO_ROOT

__all__ = ["load_core", "run_child"]


def load_core(source: Union[Path, bytes], module_name: Optional[str] = None) -> Any:
    return wasm_import.load(source, name=module_name)


def run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` (dedented) in a new interpreter with the repo on sys.path; returns the
    completed process (stdout/stderr as text). A child killed by a signal (abort,
    segfault) has a negative returncode: callers assert it is 0."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=timeout)
