"""What the WASI tests share: the sandbox guest (its WASI is served in Python, as always)."""

from __future__ import annotations

from typing import Iterator

import wasm_import
from tests import _build


def sandbox_module() -> Iterator[object]:
    """The `sandbox` guest (componentize-py, real WASI imports, served by `runtime.wasi`)."""
    yield wasm_import.load(_build.build_python_guest("sandbox"))
