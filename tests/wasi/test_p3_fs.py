"""`wasi:filesystem@0.3.0` on the core runtime, with the componentize-py guest `p3fs` built
from source: files read and written through `stream<u8>`, directories listed through a
`stream<directory-entry>`, inside a read-write and a read-only `Dir` grant; and every way
out refused (`..`, absolute paths, symlinks leading out, links to them, writes into a
read-only grant) with nothing outside touched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Tuple

import pytest

import wasm_import
from wasm_import import Dir, Err, Wasi
from wasm_import.hook._command import call_to_end
from wasm_import.runtime.wasi import _confine
from wasm_import.runtime.wasi._context import served
from tests._build import build_python_guest


@pytest.fixture(scope="module")
def p3fs() -> Any:
    return wasm_import.load(build_python_guest("p3fs"))


@pytest.fixture
def tree(tmp_path: Path) -> Tuple[Path, Path, Path]:
    """rw/ (granted read-write), ro/ (granted read-only) and outside/ (not granted)."""
    rw, ro, outside = tmp_path / "rw", tmp_path / "ro", tmp_path / "outside"
    for d in (rw, ro / "sub", outside):
        d.mkdir(parents=True)
    (ro / "r.txt").write_text("read-only data")
    (ro / "sub" / "deep.txt").write_text("deep")
    (outside / "secret.txt").write_text("secret")
    return rw, ro, outside


@pytest.fixture
def run(p3fs: Any, tree: Tuple[Path, Path, Path]) -> Any:
    rw, ro, _ = tree
    inst = p3fs.instantiate(wasi=Wasi(dirs=[Dir(rw, "/rw", readonly=False), Dir(ro, "/ro")]))

    def call(root: str, op: str, path: str) -> Any:
        try:
            return call_to_end(inst.api.run, root, op, path)
        except Err as e:
            return ("err", e.value)

    return call


def test_filesystem_0_3_is_served() -> None:
    assert served("wasi:filesystem/types@0.3.0") and served("wasi:filesystem/preopens@0.3.0")
    assert served("wasi:filesystem/types@0.2.3")


def test_write_append_read_list_stat_in_a_read_write_grant(run: Any, tree: Tuple[Path, Path, Path]) -> None:
    rw = tree[0]
    assert run("/rw", "write:hello world", "a.txt") == "wrote 11"
    assert run("/rw", "append:!!", "a.txt") == "wrote 2"
    assert (rw / "a.txt").read_bytes() == b"hello world!!"
    assert run("/rw", "read", "a.txt") == "hello world!!"
    assert run("/rw", "write:new", "a.txt") == "wrote 3"  # truncates
    assert (rw / "a.txt").read_bytes() == b"new"
    assert run("/rw", "mkdir", "d") == "ok" and (rw / "d").is_dir()
    assert run("/rw", "write:inner", "d/b.txt") == "wrote 5"
    assert run("/rw", "list", ".") == "a.txt:RegularFile d:Directory"
    assert run("/rw", "list", "d") == "b.txt:RegularFile"
    assert run("/rw", "stat", "a.txt") == "RegularFile size=3 mtime=True"
    assert run("/rw", "stat", "d") == "Directory size=%d mtime=True" % os.stat(rw / "d").st_size
    assert run("/rw", "rename:c.txt", "a.txt") == "ok"
    assert sorted(os.listdir(rw)) == ["c.txt", "d"]
    assert run("/rw", "symlink:c.txt", "to-c") == "ok"
    assert run("/rw", "readlink", "to-c") == "c.txt"
    assert run("/rw", "read", "to-c") == "new"
    assert run("/rw", "link:hard.txt", "c.txt") == "ok"
    assert os.stat(rw / "hard.txt").st_ino == os.stat(rw / "c.txt").st_ino
    assert run("/rw", "unlink", "c.txt") == "ok" and not (rw / "c.txt").exists()
    assert run("/rw", "read", "c.txt") == ("err", "NoEntry")
    assert run("/rw", "rmdir", "d") == ("err", "NotEmpty")


def test_a_large_file_moves_through_the_streams(run: Any, tree: Tuple[Path, Path, Path]) -> None:
    text = "0123456789abcdef" * 20000  # 320 000 bytes: several 64 KiB chunks each way
    assert run("/rw", f"write:{text}", "big.txt") == "wrote 320000"
    assert (tree[0] / "big.txt").read_text() == text
    assert run("/rw", "read", "big.txt") == text


def test_a_read_only_grant_reads_and_refuses_every_write(run: Any, tree: Tuple[Path, Path, Path]) -> None:
    ro = tree[1]
    assert run("/ro", "read", "r.txt") == "read-only data"
    assert run("/ro", "read", "sub/deep.txt") == "deep"
    assert run("/ro", "list", ".") == "r.txt:RegularFile sub:Directory"
    assert run("/ro", "flags", "r.txt") == "DescriptorFlags.READ"
    for op, path in [("write:x", "r.txt"), ("write:x", "new.txt"), ("append:x", "r.txt"), ("mkdir", "d"),
                     ("unlink", "r.txt"), ("rmdir", "sub"), ("rename:s.txt", "r.txt"),
                     ("symlink:r.txt", "l"), ("link:h.txt", "r.txt")]:
        assert run("/ro", op, path) == ("err", "ReadOnly"), (op, path)
    assert sorted(os.listdir(ro)) == ["r.txt", "sub"]
    assert (ro / "r.txt").read_text() == "read-only data"


@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "nofollow-walk"])
def test_escapes_are_refused(run: Any, tree: Tuple[Path, Path, Path], walk: bool,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    if walk:
        monkeypatch.setattr(_confine, "use_openat2", False)
    rw, _, outside = tree
    os.symlink("../outside", rw / "out-dir")  # placed by the host: leads outside
    os.symlink(str(outside / "secret.txt"), rw / "abs-link")
    denied = ("err", "NotPermitted")
    assert run("/rw", "read", "../outside/secret.txt") == denied
    assert run("/rw", "read", str(outside / "secret.txt")) == denied
    assert run("/rw", "read", "out-dir/secret.txt") == denied
    assert run("/rw", "read", "abs-link") == denied
    assert run("/rw", "list", "out-dir") == denied
    assert run("/rw", "stat", "../outside") == denied
    assert run("/rw", "write:pwned", "../outside/new.txt") == denied
    assert run("/rw", "write:pwned", "out-dir/secret.txt") == denied
    assert run("/rw", "mkdir", "../outside/d") == denied
    assert run("/rw", "rename:../outside/moved", "x") == denied
    assert run("/rw", "symlink:../outside/secret.txt", "evil") == denied  # a link leading out is not made
    assert run("/rw", "symlink:/etc/passwd", "evil") == denied
    assert run("/rw", "link:hard", "abs-link") == denied  # a second name for a link leading out
    assert run("/ro", "read", "../rw/anything") == denied
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"
    assert sorted(os.listdir(rw)) == ["abs-link", "out-dir"]


def test_nothing_is_granted_by_default(p3fs: Any) -> None:
    inst = p3fs.instantiate(wasi=Wasi())
    with pytest.raises(Err) as caught:
        call_to_end(inst.api.run, "/", "read", "etc/passwd")
    assert caught.value.value == "no preopen '/'"


def test_a_0_3_filesystem_interface_is_replaced_through_imports(p3fs: Any, tree: Tuple[Path, Path, Path]) -> None:
    inst = p3fs.instantiate(imports={"wasi:filesystem/preopens@0.3.0": {"get_directories": lambda: []}},
                            wasi=Wasi(dirs=[Dir(tree[1], "/ro")]))
    with pytest.raises(Err) as caught:
        call_to_end(inst.api.run, "/ro", "read", "r.txt")
    assert caught.value.value == "no preopen '/ro'"


def test_a_fifo_is_read_off_the_event_loop(p3fs: Any, tree: Tuple[Path, Path, Path]) -> None:
    import threading
    import time

    ro = tree[1]
    os.mkfifo(ro / "pipe")

    def feed() -> None:
        with open(ro / "pipe", "wb") as f:  # opened once the guest opens the reading end
            time.sleep(0.3)  # the guest's read waits: on a thread, not on the event loop
            f.write(b"through a fifo")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    inst = p3fs.instantiate(wasi=Wasi(dirs=[Dir(ro, "/ro")]))
    assert call_to_end(inst.api.run, "/ro", "read", "pipe") == "through a fifo"
    writer.join(10)
