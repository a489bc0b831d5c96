"""Clocks, random, stdio and in-memory directories served in Python, and each `wasi:*`
interface replaced on its own through `imports=`."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wasm_import import Dir, Err, LimitExceeded, Limits, Wasi
from wasm_import.runtime.wasi import FakeClock, MemoryDir, SeededRandom
from wasm_import.runtime.wasi._io import set_interrupt_check

from ._python_wasi import sandbox_module

sandbox = pytest.fixture(scope="module")(sandbox_module)


def test_a_real_sleep_takes_its_time(sandbox) -> None:
    inst = sandbox.instantiate()
    inst.sleep_ms(1)  # warm up the guest's first call
    start = time.monotonic()
    before, after = inst.sleep_ms(100)
    elapsed = time.monotonic() - start
    assert 0.1 <= elapsed <= 0.15
    assert 100_000_000 <= after - before <= 150_000_000


def test_a_fake_clock_makes_sleep_return_at_once(sandbox) -> None:
    clock = FakeClock(start=5.0, wall_start=1_700_000_000.0)
    inst = sandbox.instantiate(imports={"wasi:clocks/monotonic-clock": clock.monotonic,
                                        "wasi:clocks/wall-clock": clock.wall})
    start = time.monotonic()
    before, after = inst.sleep_ms(10_000)
    assert time.monotonic() - start < 1.0
    assert (before, after) == (5_000_000_000, 15_000_000_000)
    assert inst.wall_ns() == 1_700_000_010_000_000_000
    clock.advance(2.5)
    assert inst.wall_ns() == 1_700_000_012_500_000_000


def test_a_blocked_guest_is_interrupted(sandbox) -> None:
    inst = sandbox.instantiate()

    class Stop(Exception):
        pass

    deadline = time.monotonic() + 0.2

    def check() -> None:
        if time.monotonic() > deadline:
            raise Stop("interrupted")

    previous = set_interrupt_check(check)
    start = time.monotonic()
    try:
        with pytest.raises(Stop, match="interrupted"):
            inst.sleep_ms(10_000)
    finally:
        set_interrupt_check(previous)
    assert time.monotonic() - start < 0.5


def test_a_timeout_stops_a_guest_sleeping_in_wasi(sandbox) -> None:
    """The epoch stops running wasm; a guest waiting in a host call (a WASI sleep) is stopped
    by the runtime's interrupt check, within a wait slice of its deadline."""
    inst = sandbox.instantiate(limits=Limits(timeout=0.5))
    start = time.monotonic()
    with pytest.raises(LimitExceeded) as caught:
        inst.sleep_ms(10_000)
    elapsed = time.monotonic() - start
    assert caught.value.limit == "timeout"
    assert 0.5 <= elapsed < 1.0, elapsed
    assert inst.poisoned


_CTRL_C_SCRIPT = """
import sys, time, wasm_import
inst = wasm_import.load(sys.argv[1]).instantiate()
inst.sleep_ms(1)
print("ready", flush=True)
start = time.monotonic()
try:
    inst.sleep_ms(10_000)
except KeyboardInterrupt:
    print("interrupted", round(time.monotonic() - start, 1), flush=True)
"""


def test_ctrl_c_stops_a_sleeping_guest(sandbox, tmp_path: Path) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text(_CTRL_C_SCRIPT)
    env = {**os.environ, "WASM_IMPORT_QUIET": "1"}
    child = subprocess.Popen([sys.executable, str(script), sandbox.__file__], stdout=subprocess.PIPE,
                             text=True, env=env, cwd=str(Path(__file__).resolve().parents[2]))
    try:
        assert child.stdout.readline() == "ready\n"
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        word, seconds = child.stdout.read().split()
        assert word == "interrupted" and 0.2 <= float(seconds) < 1.0  # 0.3 s, on a loaded machine more
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()


def test_seeded_random_via_imports(sandbox) -> None:
    def instance(seed: int):
        rng = SeededRandom(seed)
        return sandbox.instantiate(imports={"wasi:random/random": rng})  # the guest imports only this one

    first = instance(42).random_bytes(16)
    assert len(first) == 16
    assert instance(42).random_bytes(16) == first  # the same seed, the same bytes
    assert instance(7).random_bytes(16) != first


def test_default_random_differs_between_instances(sandbox) -> None:
    a, b = sandbox.instantiate().random_bytes(32), sandbox.instantiate().random_bytes(32)
    assert len(a) == len(b) == 32 and a != b


def test_replacing_one_interface_leaves_the_rest(sandbox) -> None:
    clock = FakeClock()
    inst = sandbox.instantiate(imports={"wasi:clocks/wall-clock": clock.wall},
                               wasi=Wasi(stdout="capture", env={"A": "1"}))
    assert inst.wall_ns() == 1_700_000_000_000_000_000
    assert inst.environment() == [("A", "1")]  # environment still from Wasi
    inst.say("still captured\n", "")
    assert inst.stdout == b"still captured\n"


def test_stdio_capture(sandbox) -> None:
    inst = sandbox.instantiate(wasi=Wasi(stdout="capture", stderr="capture", stdin=b"piped\n"))
    assert inst.read_stdin() == "piped\n"
    inst.say("to out\n", "to err\n")
    assert (inst.stdout, inst.stderr) == (b"to out\n", b"to err\n")


def test_stdio_to_files_and_from_a_file(sandbox, tmp_path: Path) -> None:
    out = io.BytesIO()
    (tmp_path / "in.txt").write_bytes(b"from a file\n")
    inst = sandbox.instantiate(wasi=Wasi(stdout=out, stderr=tmp_path / "err.txt", stdin=tmp_path / "in.txt"))
    assert inst.read_stdin() == "from a file\n"
    inst.say("out\n", "err\n")
    assert out.getvalue() == b"out\n"
    assert (tmp_path / "err.txt").read_bytes() == b"err\n"


def test_stdio_discard(sandbox, capfd) -> None:
    inst = sandbox.instantiate(wasi=Wasi(stdout="discard", stderr="discard"))
    inst.say("gone\n", "gone too\n")
    assert capfd.readouterr() == ("", "")


def test_stdout_passes_through_by_default(sandbox, capfd) -> None:
    sandbox.instantiate().say("through\n", "err through\n")
    assert capfd.readouterr() == ("through\n", "err through\n")


def test_an_in_memory_directory(sandbox) -> None:
    data = MemoryDir({"in.txt": "hello", "sub": {"deep.txt": b"deep"}})
    out = MemoryDir()
    inst = sandbox.instantiate(wasi=Wasi(dirs=[Dir(data, "/data"), Dir(out, "/out", readonly=False)]))
    assert inst.fs("read", "/data/in.txt", "") == "hello"
    assert inst.fs("read", "/data/sub/deep.txt", "") == "deep"
    assert inst.fs("listdir", "/data", "") == "in.txt,sub"
    assert inst.fs("stat", "/data/sub/deep.txt", "") == "4"
    inst.fs("write", "/out/new.txt", "written")
    inst.fs("mkdir", "/out/d", "")
    inst.fs("rename", "/out/new.txt", "/out/d/new.txt")
    assert out.files() == {"d/new.txt": b"written"}
    assert out.read("d/new.txt") == b"written"
    with pytest.raises(Err, match="Read-only file system"):
        inst.fs("write", "/data/x.txt", "no")
    with pytest.raises(Err, match="Operation not permitted"):
        inst.fs("read", "/data/../out/d/new.txt", "")
    with pytest.raises(Err, match="No such file"):
        inst.fs("read", "/data/missing.txt", "")
    # links: the host grant's checks first (leading out, read-only), then none is made
    with pytest.raises(Err, match="Operation not permitted"):
        inst.fs("symlink", "../../etc/passwd", "/out/evil")
    with pytest.raises(Err, match="Read-only file system"):
        inst.fs("link", "/data/in.txt", "/data/again.txt")
    with pytest.raises(Err, match="Read-only file system"):
        inst.fs("symlink", "in.txt", "/data/evil")
    with pytest.raises(Err, match="Not supported"):
        inst.fs("symlink", "d/new.txt", "/out/ok")
    with pytest.raises(Err, match="Invalid argument"):  # a directory moved beneath itself
        inst.fs("rename", "/out/d", "/out/d/inner")
    assert out.files() == {"d/new.txt": b"written"}
    assert data.files() == {"in.txt": b"hello", "sub/deep.txt": b"deep"}


def test_exit_is_guest_exit() -> None:
    from wasm_import import GuestExit, Ok
    from wasm_import.runtime.wasi._context import WasiContext

    wasi_exit = WasiContext().provider("wasi:cli/exit@0.2.0", _NO_TYPES).exit
    with pytest.raises(GuestExit) as info:
        wasi_exit(Ok(None))
    assert info.value.code == 0
    with pytest.raises(GuestExit) as info:
        wasi_exit(Err(None))
    assert info.value.code == 1


class _NO_TYPES:
    types: dict = {}
