"""wasm-import side by side with its peers, in one run: raw `wasmtime.component`, a bare
copy into linear memory, and jco in Node.

    python bench/bench_runtime.py            # everything (about a minute or two)
    python bench/bench_runtime.py --quick    # shorter timing budgets
    python bench/bench_runtime.py --no-jco   # skip Node even where it is present

Why in one run: the machines here are shared and noisy, so an absolute time means little;
a ratio between peers timed minutes apart on the same machine means something. Every
column is measured in this process (jco in a Node child process started from here).

Peers:
- new:   wasm-import on its own runtime (wasm_import/runtime/: wasmtime's core API and
         the canonical ABI in Python). Its first engine, on wasmtime-py's component API,
         was deleted once this one passed everything; its numbers are in the git history
         of this file's results (the README's Speed section).
- raw:   wasmtime-py's `wasmtime.component` API called directly (`func(store, *args)`)
- bare:  the floor for bulk data: a memoryview slice assignment of the same bytes into a
         wasmtime core memory and a copy back out into a new bytes/array (plus the
         list->array conversion for a list<u32> given as a Python list, and encode/decode
         for the string), no call at all
- jco:   jco's JavaScript bindings around V8's wasm, in Node (jco from npm, installed
         into the build cache once, as bench/bench_jco.py does)

Cases run on `tests/guests/bulk/bulk.wat` (hand-written: each call costs the data path and
nothing else) and, for instantiation, on the `kitchen` componentize-py guest (18 MB). The
targets are issue 12's. A case a peer cannot run prints why ("traps", "-" = not
applicable). Times are the best of three batches, per call.

A list<u32> comes back as an `array.array('I')` (jco gives a Uint32Array), so "list<u32>
100k echo" passes that array back in, as jco passes its Uint32Array; the row "from a
Python list" passes a `list` (jco: a JS Array), and pays for checking and packing 100k
ints. raw wasmtime.component takes and gives lists in both rows.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import wasmtime  # noqa: E402
import wasmtime.component as wc  # noqa: E402

import wasm_import  # noqa: E402
from tests._build import build_dir, build_python_guest, build_wat_guest  # noqa: E402

JCO_VERSION = "1.35.0"  # as bench/bench_jco.py
MiB = 1 << 20
PEERS = ("new", "raw", "bare", "jco")

BYTES_1M = bytes(range(256)) * 4096
BYTES_256M_LEN = 256 * MiB
STRING_1M = "abcdefghijklmnop" * (MiB // 16)  # ASCII, as issue 12 measured it
_UNIT = "wasm-import, héllo wörld ✓ "  # mostly ASCII, some 2- and 3-byte UTF-8
STRING_1M_MIXED = _UNIT * (MiB // len(_UNIT.encode()))  # just under 1 MiB of UTF-8
U32S = list(range(0, 100_000 * 7919, 7919))
U32S_ARRAY = array.array("I", U32S)
SAMPLE = (7, 2.5, -3.25, True)


def tick(x: int) -> int:
    """The host import `test:bulk/host.tick` every peer gets."""
    return (x * 2) & 0xFFFFFFFF


# -- timing ------------------------------------------------------------------------------------

def per_call(fn: Callable[[], Any], budget: float) -> float:
    """Best of three batches, seconds per call; a batch takes about budget/3."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    n = max(1, int(budget / 3 / once))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def load(path: Path) -> Any:
    return wasm_import.load(path, name=path.stem.split('-')[0])


# -- the peers ---------------------------------------------------------------------------------

class Ours:
    """wasm-import: the bulk guest's `api` interface."""

    def __init__(self, bulk: Path) -> None:
        self.module = load(bulk)
        self.api = self.module.instantiate(imports={"test:bulk/host": {"tick": tick}}).api

    def calls(self) -> Dict[str, Callable[..., Any]]:
        api = self.api
        sample = api.Sample(*SAMPLE)
        return {
            "bytes": api.echo_bytes,
            "string": api.echo_string,
            "u32s": api.echo_u32s,
            "add": lambda: api.add(1, 2),
            "sample": lambda: api.echo_sample(sample),
            "host": lambda: api.call_host(20),
        }


class Raw:
    """wasmtime-py's component API, called as its documentation shows."""

    def __init__(self, bulk: Path) -> None:
        self.engine = wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        linker = wc.Linker(self.engine)
        with linker.root() as root:
            with root.add_instance("test:bulk/host") as host:
                host.add_func("tick", lambda store, x: tick(x))
        instance = linker.instantiate(self.store, wc.Component(self.engine, bulk.read_bytes()))
        api = instance.get_export_index(self.store, "test:bulk/api")
        self.funcs = {n: instance.get_func(self.store, instance.get_export_index(self.store, n, api))
                      for n in ("echo-bytes", "echo-string", "echo-u32s", "echo-sample", "add", "call-host")}

    def call(self, name: str, *args: Any) -> Any:
        f = self.funcs[name]
        out = f(self.store, *args)
        f.post_return(self.store)
        return out

    def calls(self) -> Dict[str, Callable[..., Any]]:
        record = wc.Record()
        for k, v in zip(("id", "x", "y", "ok"), SAMPLE):
            setattr(record, k, v)
        return {
            "bytes": lambda b: self.call("echo-bytes", b),
            "string": lambda s: self.call("echo-string", s),
            "u32s": lambda xs: self.call("echo-u32s", xs),
            "add": lambda: self.call("add", 1, 2),
            "sample": lambda: self.call("echo-sample", record),
            "host": lambda: self.call("call-host", 20),
        }


class Bare:
    """A wasmtime core memory and a memoryview of it: the cost of moving the bytes."""

    def __init__(self, size: int) -> None:
        self.store = wasmtime.Store()
        pages = (size + 2 * 65536) // 65536
        self.memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(pages, None)))
        base = ctypes.addressof(self.memory.data_ptr(self.store).contents)
        self.view = memoryview((ctypes.c_ubyte * self.memory.data_len(self.store)).from_address(base)).cast("B")

    def echo_bytes(self, data: bytes) -> bytes:
        view, n = self.view, len(data)
        view[1024:1024 + n] = data
        return bytes(view[1024:1024 + n])

    def echo_string(self, s: str) -> str:
        data = s.encode()
        view, n = self.view, len(data)
        view[1024:1024 + n] = data
        return bytes(view[1024:1024 + n]).decode()

    def echo_u32s(self, xs: Any) -> "array.array[int]":
        data = memoryview(xs if isinstance(xs, array.array) else array.array("I", xs)).cast("B")
        view, n = self.view, len(data)
        view[1024:1024 + n] = data
        out = array.array("I")
        out.frombytes(view[1024:1024 + n])
        return out


# -- jco in Node ---------------------------------------------------------------------------------

NODE_BENCH = r"""
import { readFileSync } from 'node:fs';
const cfg = JSON.parse(process.argv[2]);
const compiled = {};
function coreModules(dir) {
  return (path) => compiled[dir + path] ??= new WebAssembly.Module(readFileSync(dir + '/' + path));
}
function perCall(fn, budget) {
  let t = process.hrtime.bigint(); fn();
  const once = Math.max(Number(process.hrtime.bigint() - t) / 1e9, 1e-7);
  const n = Math.max(1, Math.floor(budget / 3 / once));
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9 / n);
  }
  return best;
}
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 4099) if (a[i] !== b[i]) return false;
  return a[a.length - 1] === b[b.length - 1];
}
const out = {};
const bulk = await import(cfg.bulk + '/bulk.js');
const { api } = bulk.instantiate(coreModules(cfg.bulk), { 'test:bulk/host': { tick: (x) => (x * 2) >>> 0 } });
const bytes1m = new Uint8Array(1 << 20).map((_, i) => i & 255);
if (!sameBytes(api.echoBytes(bytes1m), bytes1m)) throw new Error('echo-bytes is wrong');
out.bytes = perCall(() => api.echoBytes(bytes1m), cfg.budget);
const s = readFileSync(cfg.string, 'utf8');
if (api.echoString(s) !== s) throw new Error('echo-string is wrong');
out.string = perCall(() => api.echoString(s), cfg.budget);
const s2 = readFileSync(cfg.mixed, 'utf8');
if (api.echoString(s2) !== s2) throw new Error('echo-string (non-ASCII) is wrong');
out.mixed = perCall(() => api.echoString(s2), cfg.budget);
const u32s = Array.from({ length: 100000 }, (_, i) => i * 7919);
const u32a = Uint32Array.from(u32s);
if (api.echoU32s(u32a)[99999] !== 99999 * 7919) throw new Error('echo-u32s is wrong');
out.u32s = perCall(() => api.echoU32s(u32a), cfg.budget);
if (api.echoU32s(u32s)[99999] !== 99999 * 7919) throw new Error('echo-u32s (Array) is wrong');
out.u32s_list = perCall(() => api.echoU32s(u32s), cfg.budget);
if (api.add(1, 2) !== 3) throw new Error('add is wrong');
out.add = perCall(() => api.add(1, 2), cfg.budget);
const sample = { id: 7, x: 2.5, y: -3.25, ok: true };
if (api.echoSample(sample).y !== -3.25) throw new Error('echo-sample is wrong');
out.sample = perCall(() => api.echoSample(sample), cfg.budget);
if (api.callHost(20) !== 41) throw new Error('call-host is wrong');
out.host = perCall(() => api.callHost(20), cfg.budget);
{
  const { api: big } = bulk.instantiate(coreModules(cfg.bulk), { 'test:bulk/host': { tick: (x) => x } });
  const b = new Uint8Array(cfg.big).map((_, i) => i & 255);
  if (!sameBytes(big.echoBytes(b), b)) throw new Error('256 MiB echo-bytes is wrong');
  out.big = perCall(() => big.echoBytes(b), cfg.budget * 3);
}
if (cfg.kitchen) {
  const kitchen = await import(cfg.kitchen + '/kitchen.js');
  const get = coreModules(cfg.kitchen);
  const first = kitchen.instantiate(get, {});  // compiles the core modules once: later ones are warm
  if (first.add(1, 2) !== 3) throw new Error('kitchen add is wrong');
  out.instantiate = perCall(() => kitchen.instantiate(get, {}), cfg.budget * 2);
}
console.log(JSON.stringify(out));
"""


def find_jco(install: bool) -> Optional[Path]:
    """A jco binary of JCO_VERSION from the build cache (bench_jco's install, or the one the
    JS test tools brought along); installs bench_jco's when `install` and none is there."""
    if not shutil.which("node"):
        return None
    for where in [build_dir() / "jco", *sorted(build_dir().glob("js-tools-*"))]:
        binary = where / "node_modules" / ".bin" / "jco"
        manifest = where / "node_modules" / "@bytecodealliance" / "jco" / "package.json"
        if binary.exists() and manifest.exists() and json.loads(manifest.read_text())["version"] == JCO_VERSION:
            return binary
    if not (install and shutil.which("npm")):
        return None
    sys.path.insert(0, str(REPO / "bench"))
    import bench_jco  # noqa: E402

    return bench_jco.jco_dir() / "node_modules" / ".bin" / "jco"


def transpiled(jco: Path, wasm: Path, name: str) -> Path:
    """`jco transpile --instantiation sync` of `wasm`, cached by the built file's name."""
    out = build_dir() / "jco-bench" / wasm.stem
    if not (out / f"{name}.js").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(jco), "transpile", str(wasm), "-o", str(out), "--name", name,
                        "--instantiation", "sync", "--quiet"], check=True, capture_output=True)
    return out


def _node_major() -> int:
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return int(version.lstrip("v").split(".")[0])


def run_jco(jco: Path, bulk: Path, kitchen: Optional[Path], budget: float) -> Dict[str, float]:
    where = build_dir() / "jco-bench"
    bulk_js = transpiled(jco, bulk, "bulk")
    kitchen_js = transpiled(jco, kitchen, "kitchen") if kitchen else None
    (where / "package.json").write_text(json.dumps({"private": True, "type": "module"}))
    script = where / "bench_runtime.mjs"
    script.write_text(NODE_BENCH)
    string_file = where / "string-1mib.txt"
    string_file.write_text(STRING_1M, encoding="utf-8")
    mixed_file = where / "string-1mib-mixed.txt"
    mixed_file.write_text(STRING_1M_MIXED, encoding="utf-8")
    cfg = {"bulk": str(bulk_js), "kitchen": str(kitchen_js) if kitchen_js else None,
           "string": str(string_file), "mixed": str(mixed_file), "big": BYTES_256M_LEN, "budget": budget}
    # componentize-py's libraries use extended constant expressions, behind a flag in Node 20
    flags = ["--experimental-wasm-extended-const"] if _node_major() < 22 else []
    proc = subprocess.run(["node", *flags, "--max-old-space-size=4096", str(script), json.dumps(cfg)],
                          cwd=where, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"node failed: {proc.stderr[-2000:]}")
    return {k: float(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


# -- the cases -----------------------------------------------------------------------------------

Row = Tuple[str, str, float, Dict[str, Any]]  # (case, target text, target seconds, peer -> seconds | str)


def check(got: Any, want: Any, who: str, case: str) -> None:
    if got != want:
        raise AssertionError(f"{who} returned a wrong result for {case}")


def bench_calls(peers: Dict[str, Any], budget: float, slow_budget: float) -> List[Row]:
    new, raw, bare = peers["new"], peers["raw"], peers["bare"]
    rows: List[Row] = []

    def bulk_row(case: str, key: str, target: float, value: Any, want: Any, bare_fn: Callable[[Any], Any],
                 raw_value: Any = None, raw_want: Any = None) -> None:
        times: Dict[str, Any] = {}
        for who, calls in (("new", new), ("raw", raw)):
            f = calls[key]
            v = raw_value if (who == "raw" and raw_value is not None) else value
            w = raw_want if (who == "raw" and raw_want is not None) else want
            check(f(v), w, who, case)
            times[who] = per_call(lambda: f(v), budget if who == "new" else slow_budget)
        check(bare_fn(value), want, "bare", case)
        times["bare"] = per_call(lambda: bare_fn(value), budget)
        rows.append((case, f"<= {target * 1e3:g} ms" if target == target else "-", target, times))

    bulk_row("list<u8> 1 MiB echo", "bytes", 0.3e-3, BYTES_1M, BYTES_1M, bare.echo_bytes)
    bulk_row("string 1 MiB echo", "string", 0.3e-3, STRING_1M, STRING_1M, bare.echo_string)
    bulk_row("string 1 MiB echo, non-ASCII", "string", float("nan"), STRING_1M_MIXED, STRING_1M_MIXED,
             bare.echo_string)
    bulk_row("list<u32> 100k echo", "u32s", 1e-3, U32S_ARRAY, U32S_ARRAY, bare.echo_u32s,
             raw_value=U32S, raw_want=U32S)
    bulk_row("list<u32> 100k, from a list", "u32s", float("nan"), U32S, U32S_ARRAY, bare.echo_u32s,
             raw_value=U32S, raw_want=U32S)

    def scalar_row(case: str, key: str, target: float, want: Callable[[Any], bool]) -> None:
        times: Dict[str, Any] = {}
        for who, calls in (("new", new), ("raw", raw)):
            f = calls[key]
            if not want(f()):
                raise AssertionError(f"{who} returned a wrong result for {case}")
            times[who] = per_call(f, budget)
        times["bare"] = "-"
        rows.append((case, f"<= {target * 1e6:g} us", target, times))

    scalar_row("add(u32, u32)", "add", 1.5e-6, lambda r: r == 3)
    scalar_row("record in and out", "sample", 3e-6,
               lambda r: (r.id, r.x, r.y, r.ok) == SAMPLE)
    scalar_row("call making 1 host call", "host", 3e-6, lambda r: r == 41)
    return rows


def bench_big(bulk: Path, budget: float) -> Row:
    """256 MiB through the new runtime; raw wasmtime traps past ~2.5 MiB (hostcall fuel),
    after building 32 bytes of C values per byte, so it is not run."""
    api = Ours(bulk).api
    data = bytes(range(256)) * (BYTES_256M_LEN // 256)
    check(api.echo_bytes(data), data, "new", "256 MiB echo")
    times: Dict[str, Any] = {"new": per_call(lambda: api.echo_bytes(data), budget * 3)}
    times["raw"] = "traps"
    bare = Bare(len(data))
    times["bare"] = per_call(lambda: bare.echo_bytes(data), budget * 3)
    return ("list<u8> 256 MiB echo", "works", float("inf"), times)


def bench_instantiate(kitchen: Path, budget: float) -> Row:
    times: Dict[str, Any] = {}
    module = load(kitchen)
    inst = module.instantiate()
    assert inst.add(1, 2) == 3  # the first instantiation and call compile nothing more later
    times["new"] = per_call(module.instantiate, budget)
    eng = wasmtime.Engine()
    component = wc.Component(eng, kitchen.read_bytes())  # compiling: seconds, once
    linker = wc.Linker(eng)
    linker.define_unknown_imports_as_traps(component)

    def raw_instantiate() -> Any:
        return linker.instantiate(wasmtime.Store(eng), component)

    times["raw"] = per_call(raw_instantiate, budget)
    times["bare"] = "-"
    return ("warm instantiate, 18 MB guest", "<= 5 ms", 5e-3, times)


# -- printing --------------------------------------------------------------------------------------

def fmt(t: Any) -> str:
    if isinstance(t, str):
        return t
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.2f} ms"
    if t >= 1e-6 or t == 0:
        return f"{t * 1e6:.2f} us" if t < 100e-6 else f"{t * 1e3:.3f} ms"
    return f"{t * 1e9:.0f} ns"


def ratio(peer: Any, new: Any) -> str:
    if isinstance(peer, str) or isinstance(new, str):
        return "-"
    return f"{peer / new:.2f}x"


def table(rows: List[Row]) -> str:
    head = ["case", "target", *PEERS, "raw/new", "jco/new", "new/bare", "target"]
    lines = [head]
    for case, target_text, target, times in rows:
        new = times.get("new", "-")
        met = ("-" if isinstance(new, str) or target != target  # NaN: no target
               else "met" if new <= target or target == float("inf") else "MISSED")
        lines.append([case, target_text, *(fmt(times.get(p, "-")) for p in PEERS),
                      ratio(times.get("raw", "-"), new),
                      ratio(times.get("jco", "-"), new), ratio(new, times.get("bare", "-")), met])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(line)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing budgets")
    parser.add_argument("--no-jco", action="store_true", help="do not run jco in Node")
    parser.add_argument("--no-install", action="store_true", help="use jco only if already in the build cache")
    args = parser.parse_args(argv)
    budget, slow = (0.3, 0.5) if args.quick else (1.0, 1.5)

    bulk = build_wat_guest("bulk")
    kitchen = build_python_guest("kitchen")
    peers = {"new": Ours(bulk).calls(), "raw": Raw(bulk).calls(), "bare": Bare(2 * MiB)}
    rows = bench_calls(peers, budget, slow)
    rows.append(bench_instantiate(kitchen, budget))
    rows.append(bench_big(bulk, budget))
    rows = [rows[0], rows[-1], *rows[1:-1]]  # the order: the 256 MiB echo second

    jco_note = "jco: not run (--no-jco)"
    if not args.no_jco:
        jco = find_jco(install=not args.no_install)
        if jco is None:
            jco_note = "jco: not run (needs node, and npm for the first install)"
        else:
            try:
                js = run_jco(jco, bulk, kitchen, budget)
            except (RuntimeError, subprocess.CalledProcessError) as e:
                jco_note = f"jco: failed: {e}"
            else:
                jco_note = f"jco {JCO_VERSION} in Node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}"
                keys = {"list<u8> 1 MiB echo": "bytes", "list<u8> 256 MiB echo": "big", "string 1 MiB echo": "string",
                        "string 1 MiB echo, non-ASCII": "mixed",
                        "list<u32> 100k echo": "u32s", "list<u32> 100k, from a list": "u32s_list",
                        "add(u32, u32)": "add", "record in and out": "sample",
                        "call making 1 host call": "host", "warm instantiate, 18 MB guest": "instantiate"}
                for case, _, _, times in rows:
                    times["jco"] = js.get(keys[case], "-")
    print(table(rows))
    print(f"\nnew = wasm-import (its own runtime on wasmtime's core API); raw = wasmtime.component;"
          f"\nbare = memoryview copy into a core memory and back; {jco_note}."
          f"\nRatios > 1x mean the new runtime is faster than that peer (new/bare: how far above the floor).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
