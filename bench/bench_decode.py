"""Benchmark: decoding the WIT of an ~18 MB component, as a fraction of compiling it.

    python bench/bench_decode.py [--runs N] [--compile-runs N]

The component is the `kitchen` test guest (componentize-py, every WIT type kind; about
5 s to build the first time, then cached in .wasm-import-build/ by tests/_build.py).
Both sides get the same bytes, in the same process:

- ours: `wasm_import.wit.decode(bytes)`, which reads the component-level sections and
  steps over the core modules (almost all of the 18 MB) by length;
- the peer: `wasmtime.component.Component(engine, bytes)`, the compile every import of
  the component needs unless it is cached.

Prints the median of each and their ratio; the target is decode < 1% of compile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests._build import build_python_guest  # noqa: E402  (needs the repo on sys.path)
from wasm_import import wit  # noqa: E402

TARGET_RATIO = 0.01


def timings(action: Callable[[], object], runs: int) -> List[float]:
    """Seconds taken by each of `runs` calls of `action`."""
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        result.append(time.perf_counter() - start)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="decode runs (default 50)")
    parser.add_argument("--compile-runs", type=int, default=3,
                        help="wasmtime compile runs, about 4 s each (default 3)")
    args = parser.parse_args()

    import wasmtime
    import wasmtime.component

    path = build_python_guest("kitchen")
    data = path.read_bytes()
    world = wit.decode(data)  # warm-up, and a sanity check of what is being decoded
    print(f"component: {path.name}, {len(data) / 1e6:.1f} MB, "
          f"{len(world.imports)} imports, {len(world.exports)} exports")

    decode = statistics.median(timings(lambda: wit.decode(data), args.runs))
    engine = wasmtime.Engine()
    compile_ = statistics.median(timings(
        lambda: wasmtime.component.Component(engine, data), args.compile_runs))

    ratio = decode / compile_
    print(f"wit.decode:                   {decode * 1e3:9.2f} ms  (median of {args.runs})")
    print(f"wasmtime Component(engine, b): {compile_ * 1e3:9.0f} ms  "
          f"(median of {args.compile_runs})")
    verdict = "meets" if ratio < TARGET_RATIO else "MISSES"
    print(f"ratio decode/compile: {ratio:.4%}  ({verdict} the target of < {TARGET_RATIO:.0%})")
    return 0 if ratio < TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
