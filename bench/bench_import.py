"""Benchmark: `import` of an ~18 MB componentize-py component, cold (compile) vs warm (cache hit).

    python bench/bench_import.py [--runs N]

Builds a small componentize-py guest (about 5 s the first time, kept in
.wasm-import-build/ afterwards: componentize-py bundles a whole Python interpreter, hence
the size), copies it into a temporary directory as `bench_comp.wasm`, and times
`import bench_comp` in fresh interpreters:

- cold: no cache file, so the import compiles the component and writes the cache;
- warm: the cache file from the cold run is loaded and validated instead.

Three kinds of run, each in fresh subprocesses:

- the whole `import` statement, which also pays the once-per-process setup (importing the
  bindings modules, loading wasmtime's C library and making its engine);
- the same import with that setup done beforehand: the cost of the component itself;
- the import plus a first call, which also loads wasmtime-py's Python layer (an import
  does not need it) and instantiates the component. For information: it shows what a
  process pays before the component's first answer.

Prints medians and ratios; the target is a warm import >= 200x faster than a cold one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_DIR = Path(os.environ.get("WASM_IMPORT_BUILD_DIR") or REPO / ".wasm-import-build")
MODULE = "bench_comp"

WIT = """
package bench:greet@0.1.0;
interface greet { hello: func(name: string) -> string; }
world bench { export greet; }
"""

APP = """
from wit_world import exports

class Greet(exports.Greet):
    def hello(self, name: str) -> str:
        return "hello, " + name
"""

# Runs in a fresh interpreter; prints seconds for the import statement (and a first call).
_CHILD = """
import sys, time
sys.path.insert(0, {directory!r})
import wasm_import
if {preload_engine!r}:  # the once-per-process setup
    import wasm_import._component, wasm_import._linking
    from wasm_import import _cache, _engine
    _engine._engine_ptr()
    _cache.engine_id()
start = time.perf_counter()
import {module}
if {first_call!r}:
    assert {module}.greet.hello("bench") == "hello, bench"
print(time.perf_counter() - start)
"""


def build_component() -> Path:
    """The benchmark guest, built once per source change with componentize-py."""
    key = hashlib.sha256((WIT + APP).encode()).hexdigest()[:16]
    out = BUILD_DIR / f"bench-greet-{key}.wasm"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "wit").mkdir()
        (Path(tmp) / "wit" / "bench.wit").write_text(WIT)
        (Path(tmp) / "app.py").write_text(APP)
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        temp_out = out.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(["componentize-py", "-d", "wit", "-w", "bench", "componentize", "app",
                        "-o", str(temp_out), "--stub-wasi"], cwd=tmp, check=True, capture_output=True)
        os.replace(temp_out, out)
    return out


def time_import(directory: Path, *, preload_engine: bool, first_call: bool = False) -> float:
    """Seconds `import bench_comp` (and a first call) takes in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    code = _CHILD.format(directory=str(directory), preload_engine=preload_engine, module=MODULE,
                         first_call=first_call)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def clear_cache(directory: Path) -> None:
    shutil.rmtree(directory / "__pycache__", ignore_errors=True)


def measure(directory: Path, runs: int, *, preload_engine: bool, first_call: bool = False) -> tuple[float, float]:
    """Median cold and warm import times, in seconds."""
    cold, warm = [], []
    for _ in range(runs):
        clear_cache(directory)
        cold.append(time_import(directory, preload_engine=preload_engine, first_call=first_call))
        for _ in range(3):
            warm.append(time_import(directory, preload_engine=preload_engine, first_call=first_call))
    return statistics.median(cold), statistics.median(warm)


def report(label: str, cold: float, warm: float) -> None:
    print(f"{label}: cold {cold * 1000:8.1f} ms   warm {warm * 1000:6.1f} ms   "
          f"warm is {cold / warm:5.0f}x faster")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold runs (each followed by 3 warm runs)")
    args = parser.parse_args()
    wasm = build_component()
    print(f"component: {wasm} ({wasm.stat().st_size / 1e6:.1f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        shutil.copyfile(wasm, directory / f"{MODULE}.wasm")
        report("import statement          ", *measure(directory, args.runs, preload_engine=False))
        report("after per-process setup   ", *measure(directory, args.runs, preload_engine=True))
        report("import and a first call   ", *measure(directory, args.runs, preload_engine=False,
                                                     first_call=True))
        cached = next((directory / "__pycache__").glob("*.cwasm"))
        print(f"cache file: {cached.name} ({cached.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
