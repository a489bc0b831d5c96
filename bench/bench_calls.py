"""Call overhead: wasm-import vs raw `wasmtime.component`, measured in the same run.

    python bench/bench_calls.py

Uses the repo's `kitchen` guest (built once, cached) for a scalar call (`add`), a record
call (`echo-record`) and a `list<u8>` echo of 1 MB. `kitchen` is a componentize-py guest,
so each of its calls also runs a Python interpreter inside wasm (about 2.4 us even for
`add`), which caps every ratio; the hand-written `adder` guest (WAT) measures the call
overhead alone. Prints per-call times and the ratio
raw / ours (higher is better; the goal is >= 5x for scalars and records, >= 10x for
list<u8>). Machines here are noisy, so only the ratios mean anything.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wasmtime  # noqa: E402
import wasmtime.component as wc  # noqa: E402

import wasm_import  # noqa: E402
from tests._build import build_python_guest, build_wat_guest  # noqa: E402


def per_call(fn, seconds: float = 1.0, reset=None) -> float:
    """Best-of-3 mean time per call, in seconds (`reset()` before each batch)."""
    best = float("inf")
    for _ in range(3):
        if reset is not None:
            reset()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            fn()
            n += 1
        best = min(best, (time.perf_counter() - start) / n)
    return best


def raw_setup(path: Path):
    engine = wasmtime.Engine()
    component = wc.Component(engine, path.read_bytes())
    store = wasmtime.Store(engine)
    linker = wc.Linker(engine)
    linker.define_unknown_imports_as_traps(component)
    instance = linker.instantiate(store, component)
    echo = instance.get_export_index(store, "test:kitchen/echo@0.1.0")

    def func(name, within=None):
        index = instance.get_export_index(store, name, within)
        return instance.get_func(store, index)

    return store, func("add"), func("echo-record", echo), func("echo-bytes", echo)


def raw_adder(path: Path):
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wc.Linker(engine).instantiate(store, wc.Component(engine, path.read_bytes()))
    iface = instance.get_export_index(store, "docs:adder/add@0.1.0")
    return store, instance.get_func(store, instance.get_export_index(store, "add", iface))


def main() -> None:
    path = build_python_guest("kitchen")
    store, raw_add, raw_record, raw_bytes = raw_setup(path)
    inst = wasm_import.load(path).instantiate()
    echo = inst.echo
    adder_path = build_wat_guest("adder")
    adder_store, raw_add_wat = raw_adder(adder_path)
    adder = wasm_import.load(adder_path).instantiate().add

    record = wc.Record()
    for k, v in {"full-name": "Ada", "age-years": 36, "email-address": None, "tag-list": ["x"]}.items():
        setattr(record, k, v)
    person = echo.PersonInfo("Ada", 36, None, ["x"])
    blob = bytes(range(256)) * 4096  # 1 MiB
    # componentize-py's guest keeps about 1 MiB of its memory per 1 MiB echo-bytes call
    # (measured: post-return runs, the memory grows anyway), so its 4 GiB fill up after
    # ~4000 calls; each timing batch of that case gets a fresh instance.
    bytes_echo = [echo.echo_bytes]

    def fresh_bytes_echo() -> None:
        bytes_echo[0] = wasm_import.load(path).instantiate().echo.echo_bytes

    cases = [
        ("scalar add, WAT guest", lambda: raw_add_wat(adder_store, 1, 2), lambda: adder.add(1, 2), 1.0, None),
        ("scalar add(s32, s32)", lambda: raw_add(store, 1, 2), lambda: inst.add(1, 2), 1.0, None),
        ("record echo-record", lambda: raw_record(store, record), lambda: echo.echo_record(person), 1.0, None),
        ("list<u8> 1 MiB echo", lambda: raw_bytes(store, blob), lambda: bytes_echo[0](blob), 6.0, fresh_bytes_echo),
    ]
    print(f"{'case':24} {'raw wasmtime':>14} {'wasm-import':>14} {'ratio':>8}")
    for name, raw, ours, secs, reset in cases:
        assert ours() is not None
        t_raw, t_ours = per_call(raw, secs), per_call(ours, min(secs, 1.5), reset)
        print(f"{name:24} {t_raw * 1e6:12.1f}us {t_ours * 1e6:12.1f}us {t_raw / t_ours:7.1f}x")


if __name__ == "__main__":
    main()
