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
  process pays before the component's first answer;
- the whole import statement under PYTHONDONTWRITEBYTECODE=1, as container images run
  it: no `__pycache__`, the cache file goes to the per-user cache directory.

Then it times a failed lookup of a module that exists nowhere, with and without the
hook's finder.

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
    import wasm_import.bindings._component, wasm_import.bindings._linking
    from wasm_import.bindings import _cache
    from wasm_import.runtime import _wasmtime
    _wasmtime._engine()
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




def time_import(directory: Path, *, preload_engine: bool, first_call: bool = False,
                dont_write_bytecode: bool = False) -> float:
    """Seconds `import bench_comp` (and a first call) takes in a fresh interpreter. The
    cache follows its default rules (no WASM_IMPORT_* settings), with the
    per-user cache directory inside `directory`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX") and not k.startswith("WASM_IMPORT_")}
    env["XDG_CACHE_HOME"] = str(directory / "user-cache")
    if dont_write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    code = _CHILD.format(directory=str(directory), preload_engine=preload_engine, module=MODULE,
                         first_call=first_call)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def clear_cache(directory: Path) -> None:
    shutil.rmtree(directory / "__pycache__", ignore_errors=True)
    shutil.rmtree(directory / "user-cache", ignore_errors=True)


def measure(directory: Path, runs: int, **options: bool) -> tuple[float, float]:
    """Median cold and warm import times, in seconds."""
    cold, warm = [], []
    for _ in range(runs):
        clear_cache(directory)
        cold.append(time_import(directory, **options))
        for _ in range(3):
            warm.append(time_import(directory, **options))
    return statistics.median(cold), statistics.median(warm)


_MISS = """
import importlib.machinery, sys, timeit
import wasm_import
from wasm_import.hook import _finder as _hook
finder, n = _hook.WasmFinder(), 20000
finder.find_spec("no_such_module")  # lists the directories once
best = lambda f: min(timeit.repeat(f, number=n, repeat=7)) / n
print(best(lambda: importlib.machinery.PathFinder.find_spec("no_such_module")),
      best(lambda: finder.find_spec("no_such_module")))
"""


def report_failed_lookup() -> None:
    """What the hook adds to an import of a module that exists nowhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASM_IMPORT_")}
    out = subprocess.run([sys.executable, "-c", _MISS], env=env, check=True, capture_output=True, text=True)
    path_finder, hook = (float(x) for x in out.stdout.split())
    print(f"failed lookup of an unrelated module: importlib's PathFinder {path_finder * 1e6:.1f} us, "
          f"the hook adds {hook * 1e6:.1f} us")


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
        report("import, DONTWRITEBYTECODE ", *measure(directory, args.runs, preload_engine=False,
                                                     dont_write_bytecode=True))
        assert not (directory / "__pycache__").exists(), "PYTHONDONTWRITEBYTECODE=1 wrote __pycache__"
        print("  (no __pycache__ written; the cache file went to the per-user cache directory)")
    report_failed_lookup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
