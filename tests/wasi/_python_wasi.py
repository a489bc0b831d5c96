"""What the WASI tests share: the sandbox guest loaded with WASI served in Python."""

from __future__ import annotations

from typing import Iterator

import pytest

import wasm_import
from tests import _build


def sandbox_module() -> Iterator[object]:
    """The `sandbox` guest (componentize-py, real WASI imports), loaded with
    `WASM_IMPORT_WASI=python` so every `wasi:*` import is served by `runtime.wasi`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WASM_IMPORT_WASI", "python")
        yield wasm_import.load(_build.build_python_guest("sandbox"))
