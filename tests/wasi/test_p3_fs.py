"""`wasi:filesystem@0.3.0` on the core runtime, with the componentize-py guest `p3fs` built
from source: files read and written through `stream<u8>`, directories listed through a
`stream<directory-entry>`, inside a read-write and a read-only `Dir` grant; and every way
out refused (`..`, absolute paths, symlinks leading out, links to them, writes into a
read-only grant) with nothing outside touched.

Each test that makes sense for both runs twice: over host directories and over
`MemoryDir`s, with the same expectations (a MemoryDir makes no symlinks or hard links: it
answers `unsupported` where the host makes one, after the same checks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import pytest

import wasm_import
from wasm_import import Dir, Err, Wasi
from wasm_import.hook._command import call_to_end
from wasm_import.runtime.wasi import MemoryDir, _confine
from wasm_import.runtime.wasi._context import served
from tests._build import build_python_guest


@pytest.fixture(scope="module")
def p3fs() -> Any:
    return wasm_import.load(build_python_guest("p3fs"))


_RO_FILES = {"r.txt": "read-only data", "sub": {"deep.txt": "deep"}}


class Tree:
    """rw (granted read-write), ro (granted read-only) and outside (not granted): host
    directories or MemoryDirs, read back the same way."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.memory = kind == "memory"
        if self.memory:
            self.rw: Union[Path, MemoryDir] = MemoryDir()
            self.ro: Union[Path, MemoryDir] = MemoryDir(_RO_FILES)
            self.outside: Union[Path, MemoryDir] = MemoryDir({"secret.txt": "secret"})
            return
        rw, ro, outside = tmp_path / "rw", tmp_path / "ro", tmp_path / "outside"
        for d in (rw, ro / "sub", outside):
            d.mkdir(parents=True)
        (ro / "r.txt").write_text("read-only data")
        (ro / "sub" / "deep.txt").write_text("deep")
        (outside / "secret.txt").write_text("secret")
        self.rw, self.ro, self.outside = rw, ro, outside

    def grants(self) -> List[Dir]:
        return [Dir(self.rw, "/rw", readonly=False), Dir(self.ro, "/ro")]

    @staticmethod
    def read(root: Union[Path, MemoryDir], path: str) -> bytes:
        return root.read(path) if isinstance(root, MemoryDir) else (root / path).read_bytes()

    @staticmethod
    def listdir(root: Union[Path, MemoryDir], path: str = "") -> List[str]:
        return root.listdir(path) if isinstance(root, MemoryDir) else sorted(os.listdir(root / path))

    @staticmethod
    def files(root: Union[Path, MemoryDir]) -> Dict[str, bytes]:
        if isinstance(root, MemoryDir):
            return root.files()
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(params=["host", "memory"])
def tree(request: Any, tmp_path: Path) -> Tree:
    return Tree(request.param, tmp_path)


@pytest.fixture
def host_tree(tmp_path: Path) -> Tree:
    return Tree("host", tmp_path)


@pytest.fixture
def memory_tree(tmp_path: Path) -> Tree:
    return Tree("memory", tmp_path)


def _runner(p3fs: Any, tree: Tree) -> Any:
    inst = p3fs.instantiate(wasi=Wasi(dirs=tree.grants()))

    def call(root: str, op: str, path: str) -> Any:
        try:
            return call_to_end(inst.api.run, root, op, path)
        except Err as e:
            return ("err", e.value)

    return call


@pytest.fixture
def run(p3fs: Any, tree: Tree) -> Any:
    return _runner(p3fs, tree)


@pytest.fixture
def run_host(p3fs: Any, host_tree: Tree) -> Any:
    return _runner(p3fs, host_tree)


@pytest.fixture
def run_memory(p3fs: Any, memory_tree: Tree) -> Any:
    return _runner(p3fs, memory_tree)


def test_filesystem_0_3_is_served() -> None:
    assert served("wasi:filesystem/types@0.3.0") and served("wasi:filesystem/preopens@0.3.0")
    assert served("wasi:filesystem/types@0.2.3")


def test_write_append_read_list_stat_in_a_read_write_grant(run: Any, tree: Tree) -> None:
    rw = tree.rw
    assert run("/rw", "write:hello world", "a.txt") == "wrote 11"
    assert run("/rw", "append:!!", "a.txt") == "wrote 2"
    assert tree.read(rw, "a.txt") == b"hello world!!"
    assert run("/rw", "read", "a.txt") == "hello world!!"
    assert run("/rw", "write:new", "a.txt") == "wrote 3"  # truncates
    assert tree.read(rw, "a.txt") == b"new"
    assert run("/rw", "mkdir", "d") == "ok" and tree.listdir(rw, "d") == []
    assert run("/rw", "mkdir", "d") == ("err", "Exist")
    assert run("/rw", "write:inner", "d/b.txt") == "wrote 5"
    assert run("/rw", "list", ".") == "a.txt:RegularFile d:Directory"
    assert run("/rw", "list", "d") == "b.txt:RegularFile"
    assert run("/rw", "list", "a.txt") == ("err", "NotDirectory")
    assert run("/rw", "stat", "a.txt") == "RegularFile size=3 mtime=True"
    dir_size = 0 if tree.memory else os.stat(rw / "d").st_size  # type: ignore[operator]
    assert run("/rw", "stat", "d") == "Directory size=%d mtime=True" % dir_size
    assert run("/rw", "stat", "nope") == ("err", "NoEntry")
    assert run("/rw", "rename:c.txt", "a.txt") == "ok"
    assert tree.listdir(rw) == ["c.txt", "d"]
    assert run("/rw", "rename:d/sub", "d") == ("err", "Invalid")  # not beneath itself
    assert run("/rw", "unlink", "d") == ("err", "IsDirectory")
    assert run("/rw", "unlink", "c.txt/") == ("err", "NotDirectory")
    if tree.memory:  # a MemoryDir makes no links
        assert run("/rw", "symlink:c.txt", "to-c") == ("err", "Unsupported")
        assert run("/rw", "readlink", "c.txt") == ("err", "Invalid")
        assert run("/rw", "link:hard.txt", "c.txt") == ("err", "Unsupported")
    else:
        assert run("/rw", "symlink:c.txt", "to-c") == "ok"
        assert run("/rw", "readlink", "to-c") == "c.txt"
        assert run("/rw", "read", "to-c") == "new"
        assert run("/rw", "readlink", "c.txt") == ("err", "Invalid")
        assert run("/rw", "link:hard.txt", "c.txt") == "ok"
        assert os.stat(rw / "hard.txt").st_ino == os.stat(rw / "c.txt").st_ino  # type: ignore[operator]
    assert run("/rw", "unlink", "c.txt") == "ok" and "c.txt" not in tree.listdir(rw)
    assert run("/rw", "read", "c.txt") == ("err", "NoEntry")
    assert run("/rw", "rmdir", "d") == ("err", "NotEmpty")
    assert run("/rw", "unlink", "d/b.txt") == "ok" and run("/rw", "rmdir", "d") == "ok"
    assert run("/rw", "read", "") == ("err", "NoEntry")


def test_a_large_file_moves_through_the_streams(run: Any, tree: Tree) -> None:
    text = "0123456789abcdef" * 20000  # 320 000 bytes: several 64 KiB chunks each way
    assert run("/rw", f"write:{text}", "big.txt") == "wrote 320000"
    assert tree.read(tree.rw, "big.txt") == text.encode()
    assert run("/rw", "read", "big.txt") == text


def test_a_read_only_grant_reads_and_refuses_every_write(run: Any, tree: Tree) -> None:
    ro = tree.ro
    assert run("/ro", "read", "r.txt") == "read-only data"
    assert run("/ro", "read", "sub/deep.txt") == "deep"
    assert run("/ro", "read", "sub/../r.txt") == "read-only data"
    assert run("/ro", "read", "sub") == ("err", "IsDirectory")
    assert run("/ro", "list", ".") == "r.txt:RegularFile sub:Directory"
    assert run("/ro", "flags", "r.txt") == "DescriptorFlags.READ"
    for op, path in [("write:x", "r.txt"), ("write:x", "new.txt"), ("append:x", "r.txt"), ("mkdir", "d"),
                     ("unlink", "r.txt"), ("rmdir", "sub"), ("rename:s.txt", "r.txt"),
                     ("symlink:r.txt", "l"), ("link:h.txt", "r.txt")]:
        assert run("/ro", op, path) == ("err", "ReadOnly"), (op, path)
    assert tree.files(ro) == {"r.txt": b"read-only data", "sub/deep.txt": b"deep"}


def _escapes(run: Any, outside: str) -> None:
    """The ways out that need nothing placed by the host: each is `not-permitted`."""
    denied = ("err", "NotPermitted")
    assert run("/rw", "read", "../outside/secret.txt") == denied
    assert run("/rw", "read", outside + "/secret.txt") == denied
    assert run("/rw", "read", "/rw/x") == denied
    assert run("/rw", "list", "..") == denied
    assert run("/rw", "stat", "../outside") == denied
    assert run("/rw", "write:pwned", "../outside/new.txt") == denied
    assert run("/rw", "write:pwned", "d/../../new.txt") == denied
    assert run("/rw", "mkdir", "../outside/d") == denied
    assert run("/rw", "rename:../outside/moved", "x") == denied
    assert run("/rw", "symlink:../outside/secret.txt", "evil") == denied  # a link leading out is not made
    assert run("/rw", "symlink:d/../../outside", "evil") == denied
    assert run("/rw", "symlink:/etc/passwd", "evil") == denied
    assert run("/rw", "link:../outside/hard", "x") == denied
    assert run("/ro", "read", "../rw/anything") == denied
    assert run("/ro", "read", "sub/../../rw/anything") == denied


def test_escapes_from_a_memory_dir_are_refused(run_memory: Any, memory_tree: Tree) -> None:
    run, tree = run_memory, memory_tree
    assert run("/rw", "write:in", "x") == "wrote 2" and run("/rw", "mkdir", "d") == "ok"
    _escapes(run, "/outside")
    assert tree.files(tree.outside) == {"secret.txt": b"secret"}
    assert tree.files(tree.rw) == {"x": b"in"} and tree.listdir(tree.rw) == ["d", "x"]
    assert tree.files(tree.ro) == {"r.txt": b"read-only data", "sub/deep.txt": b"deep"}


@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "nofollow-walk"])
def test_escapes_from_a_host_directory_are_refused(run_host: Any, host_tree: Tree, walk: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if walk:
        monkeypatch.setattr(_confine, "use_openat2", False)
    run = run_host
    rw, outside = host_tree.rw, host_tree.outside
    assert isinstance(rw, Path) and isinstance(outside, Path)
    assert run("/rw", "write:in", "x") == "wrote 2" and run("/rw", "mkdir", "d") == "ok"
    _escapes(run, str(outside))
    os.symlink("../outside", rw / "out-dir")  # placed by the host: leads outside
    os.symlink(str(outside / "secret.txt"), rw / "abs-link")
    denied = ("err", "NotPermitted")
    assert run("/rw", "read", "out-dir/secret.txt") == denied
    assert run("/rw", "read", "abs-link") == denied
    assert run("/rw", "list", "out-dir") == denied
    assert run("/rw", "write:pwned", "out-dir/secret.txt") == denied
    assert run("/rw", "link:hard", "abs-link") == denied  # a second name for a link leading out
    assert host_tree.files(outside) == {"secret.txt": b"secret"}
    assert sorted(os.listdir(rw)) == ["abs-link", "d", "out-dir", "x"]


def test_nothing_is_granted_by_default(p3fs: Any) -> None:
    inst = p3fs.instantiate(wasi=Wasi())
    with pytest.raises(Err) as caught:
        call_to_end(inst.api.run, "/", "read", "etc/passwd")
    assert caught.value.value == "no preopen '/'"


def test_a_0_3_filesystem_interface_is_replaced_through_imports(p3fs: Any, tree: Tree) -> None:
    inst = p3fs.instantiate(imports={"wasi:filesystem/preopens@0.3.0": {"get_directories": lambda: []}},
                            wasi=Wasi(dirs=[Dir(tree.ro, "/ro")]))
    with pytest.raises(Err) as caught:
        call_to_end(inst.api.run, "/ro", "read", "r.txt")
    assert caught.value.value == "no preopen '/ro'"


def test_one_memory_dir_is_shared_by_a_0_2_and_a_0_3_guest(p3fs: Any) -> None:
    shared = MemoryDir({"from-host.txt": "host"})
    p2 = wasm_import.load(build_python_guest("sandbox")).instantiate(
        wasi=Wasi(dirs=[Dir(shared, "/data", readonly=False)]))
    p3 = p3fs.instantiate(wasi=Wasi(dirs=[Dir(shared, "/data", readonly=False)]))
    p2.fs("write", "/data/from-0.2.txt", "written by 0.2")
    assert call_to_end(p3.api.run, "/data", "read", "from-0.2.txt") == "written by 0.2"
    assert call_to_end(p3.api.run, "/data", "write:written by 0.3", "from-0.3.txt") == "wrote 14"
    assert p2.fs("read", "/data/from-0.3.txt", "") == "written by 0.3"
    assert p2.fs("listdir", "/data", "") == "from-0.2.txt,from-0.3.txt,from-host.txt"
    assert call_to_end(p3.api.run, "/data", "list", ".") == (
        "from-0.2.txt:RegularFile from-0.3.txt:RegularFile from-host.txt:RegularFile")
    with pytest.raises(Err, match="Operation not permitted"):  # 0.2's not-permitted, as errno text
        p2.fs("read", "/data/../x", "")
    with pytest.raises(Err) as caught:
        call_to_end(p3.api.run, "/data", "read", "../x")
    assert caught.value.value == "NotPermitted"
    assert shared.files() == {"from-0.2.txt": b"written by 0.2", "from-0.3.txt": b"written by 0.3",
                              "from-host.txt": b"host"}


def test_a_fifo_is_read_off_the_event_loop(p3fs: Any, host_tree: Tree) -> None:
    import threading
    import time

    ro = host_tree.ro
    assert isinstance(ro, Path)
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
