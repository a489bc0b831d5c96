"""Builds the network test guests, with tests/_build.py's content-addressed cache.

- `netuser` (tests/guests/netuser): componentize-py, **with** WASI (no --stub-wasi):
  Python's `socket` module on `wasi:sockets`.
- `jsfetch` (tests/guests/jsfetch): componentize-js with its default features, so it
  imports `wasi:http` and its `fetch` goes through `outgoing-handler`.
- `jsserve` (tests/guests/jsserve): componentize-js, world `wasi:http/proxy`: a `fetch`
  event handler, exported as `wasi:http/incoming-handler` (see `build_jsserve`).

componentize-js comes from npm at the version `tests/js/package.json` pins, installed by
`npm install` into `<build dir>/js-tools-<key>/` the first time a JS guest is built (about
15 s, 40 MB; later builds reuse it). A JS build takes about 20 s; the output is cached like
every other guest. `python -m tests.wasi._netguests` builds both and prints their paths.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import _build

__all__ = ["JS_TOOLS", "build_netuser", "js_tools", "build_js_guest", "build_jsserve", "wasi_types"]

JS_TOOLS = _build.REPO_ROOT / "tests" / "js"


@functools.lru_cache(maxsize=None)
def build_netuser() -> Path:
    """tests/guests/netuser built with componentize-py and real WASI imports."""
    src = _build.GUESTS_DIR / "netuser"
    opts = {"world": "netuser", "stub_wasi": False}
    key = _build._cache_key("python", opts, [(src, f) for f in _build._source_files(src)])

    def build(work: Path, out: Path) -> None:
        shutil.copytree(src, work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        cmd = [*_build._componentize_py_cmd(), "-d", "wit", "-w", "netuser", "componentize",
               "-p", "app", "app", "-o", str(out)]
        _build._run(cmd, cwd=work / "src")

    return _build._cached("netuser", key, build)


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise _build.BuildError(f"{name} not found: JavaScript guests need Node.js and npm")
    return exe


@functools.lru_cache(maxsize=None)
def js_tools() -> Path:
    """The directory whose node_modules holds the pinned componentize-js (installed once)."""
    manifest = (JS_TOOLS / "package.json").read_bytes()
    node_version = subprocess.run([_tool("node"), "--version"], capture_output=True, text=True).stdout.strip()
    key = hashlib.sha256(manifest + node_version.encode()).hexdigest()[:16]
    target = _build.build_dir() / f"js-tools-{key}"
    marker = target / ".installed"
    if marker.exists():
        return target
    with _build._lock(_build.build_dir() / f".js-tools-{key}.lock"):
        if marker.exists():
            return target
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(JS_TOOLS / "package.json", target / "package.json")
        shutil.copy(JS_TOOLS / "componentize.mjs", target / "componentize.mjs")
        _build._run([_tool("npm"), "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target)
        marker.write_text(json.dumps({"node": node_version}))
    return target


@functools.lru_cache(maxsize=None)
def build_js_guest(name: str, world: str, wit: str = "", as_version: str = "") -> Path:
    """tests/guests/<name> (app.js + wit/) built with componentize-js, default features.

    `wit`, a WIT directory of the repo (`tests/wit/wasi-0.2.3`), replaces the guest's own;
    `as_version` re-versions its `@0.2.3` references: componentize-js's engine exports
    `wasi:http/incoming-handler` at one exact version (0.2.10 for 0.23.0), and a 0.2.x
    release only adds to 0.2.3's WIT, so 0.2.3's WIT under that version is a subset of it."""
    src = _build.GUESTS_DIR / name
    wit_dir = _build.REPO_ROOT / wit if wit else src / "wit"
    tools = js_tools()
    versions = (JS_TOOLS / "package.json").read_text() + (JS_TOOLS / "componentize.mjs").read_text()
    sources = [(src, f) for f in _build._source_files(src)]
    if wit:
        sources += [(wit_dir, f) for f in _build._source_files(wit_dir)]
    options = {"js": hashlib.sha256(versions.encode()).hexdigest(), "world": world, "as": as_version}
    key = _build._cache_key("wat", options, sources)

    def build(work: Path, out: Path) -> None:
        where = wit_dir
        if as_version:
            where = work / "wit"
            shutil.copytree(wit_dir, where)
            for f in where.rglob("*.wit"):
                f.write_text(f.read_text().replace("@0.2.3", f"@{as_version}"))
        _build._run([_tool("node"), str(tools / "componentize.mjs"), str(src / "app.js"), str(where), world,
                     str(out)], cwd=tools)

    return _build._cached(name, key, build)


def build_jsserve() -> Path:
    """The JavaScript HTTP handler guest, for the world `wasi:http/proxy@0.2.10`."""
    return build_js_guest("jsserve", "wasi:http/proxy@0.2.10", "tests/wit/wasi-0.2.3", "0.2.10")


@functools.lru_cache(maxsize=None)
def _dummy(world: str) -> Path:
    """A WIT-only component importing `world` of tests/wit/wasi-0.2.3 (its functions trap)."""
    wit = _build.REPO_ROOT / "tests" / "wit" / "wasi-0.2.3"
    key = _build._cache_key("wat", {"dummy": world}, [(wit, f) for f in _build._source_files(wit)])

    def build(work: Path, out: Path) -> None:
        _build.wasm_tools("component", "embed", "--dummy", wit, "-w", world, "-o", work / "core.wasm")
        _build.wasm_tools("component", "new", work / "core.wasm", "-o", out)

    return _build._cached("wasi-" + world.replace(":", "-").replace("/", "-").replace("@", "-"), key, build)


def wasi_types(world: str) -> Any:
    """A `WitTypes` holding the classes of every interface `world` (`wasi:sockets/imports@0.2.3`)
    imports, as an instance of a component importing them would have."""
    from wasm_import.wit import _model as w
    from wasm_import import wit
    from wasm_import.runtime.wasi._io import WitTypes

    decoded = wit.decode(_dummy(world).read_bytes())
    types = WitTypes()
    for key, item in decoded.imports.items():
        if isinstance(item, w.Interface):
            types.register(key, item)
    return types


if __name__ == "__main__":
    print("netuser", build_netuser())
    print("jsfetch", build_js_guest("jsfetch", "jsfetch"))
    print("jsserve", build_jsserve())
    sys.exit(0)
