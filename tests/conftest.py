"""Shared pytest fixtures. Several sections, each owned by one area; keep them delimited."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

# ==== guest components built from source (tests/_build.py) ===================================
# Session-scoped paths of the repo's own test components. Each is built at most once per
# source change (cached in .wasm-import-build/ or $WASM_IMPORT_BUILD_DIR), so the first
# session after a change pays ~5 s per componentize-py guest and later sessions nothing.
# WIT of each guest: tests/guests/<name>/wit/ (adder: examples/adder.wat).

from tests import _build


@pytest.fixture(scope="session")
def build_guest() -> Callable[[str], Path]:
    """The builder itself: `build_guest(name) -> Path`, for parametrized tests."""
    return _build.build_guest


@pytest.fixture(scope="session")
def kitchen_wasm() -> Path:
    """componentize-py guest: `test:kitchen/echo` (every WIT type kind, resource `counter`,
    results, `fail` traps) plus root exports `add`, `bump`. No imports."""
    return _build.build_python_guest("kitchen")


@pytest.fixture(scope="session")
def hostuser_wasm() -> Path:
    """componentize-py guest importing `test:host/logger`, `test:host/kv` and root `now`;
    exports `run`, `roundtrip-kv`, `fail-through`."""
    return _build.build_python_guest("hostuser")


@pytest.fixture(scope="session")
def adder_wasm() -> Path:
    """Hand-written component: `docs:adder/add@0.1.0` { add: func(x: u32, y: u32) -> u32 }."""
    return _build.build_wat_guest("adder")


@pytest.fixture(scope="session")
def twoborrows_wasm() -> Path:
    """Hand-written component: imports resource `test:twoborrows/host.r` and `sum(borrow<r>, borrow<r>)`;
    exports `run: func() -> u32`. Traps on wasmtime 50.0.x (two borrows in one host call)."""
    return _build.build_wat_guest("twoborrows")


@pytest.fixture(scope="session")
def hostile_wasm() -> Path:
    """Hand-written component: `test:hostile/api` { spin (loops forever), count(n) (loops n
    times), grow(pages) (memory.grow), pages() (memory.size), recurse, out-of-bounds,
    bad-string (not UTF-8), huge-list (longer than memory) }, one page of memory."""
    return _build.build_wat_guest("hostile")


# ==== end of guest components =================================================================


# ==== the external component corpus (../shared/corpus) =======================================
# Real components built by others. Absent in a user's clone: tests using it skip cleanly.

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present (it is in CI)")
    return CORPUS


# ==== end of corpus ===========================================================================


# ==== the compiled-code cache (wasm_import.bindings._cache) ============================================
# One writable cache directory for the whole session and every subprocess it starts, kept
# across sessions in the build dir: the suite's time then does not depend on
# PYTHONDONTWRITEBYTECODE (set in many containers, and on the CI machine) or on whether
# __pycache__ can be written, and an 18 MB guest compiles once per change, not per session.
# Tests of where cache files go use test_hook's `clean_imports` (or test_cache's `writable`),
# which put the default rules back. The one-line "compiling ..." notice is off here (tests
# compare stderr exactly); tests of the notice turn it on.

CACHE_DIR_ENV, CACHE_ENV, QUIET_ENV = "WASM_IMPORT_CACHE_DIR", "WASM_IMPORT_CACHE", "WASM_IMPORT_QUIET"


@pytest.fixture(scope="session", autouse=True)
def compiled_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`$WASM_IMPORT_CACHE_DIR` for the session: `<build dir>/compiled`. At the end, the
    entries of components that lived in this session's temporary directories go."""
    root = _build.build_dir() / "compiled"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_ENV, str(root))
        patch.delenv(CACHE_ENV, raising=False)
        patch.setenv(QUIET_ENV, "1")
        yield root
    temp = tmp_path_factory.getbasetemp().resolve()
    shutil.rmtree(root.joinpath(*temp.parts[1:]), ignore_errors=True)


# ==== end of the compiled-code cache ==========================================================
