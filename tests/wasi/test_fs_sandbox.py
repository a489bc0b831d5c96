"""Filesystem grants served in Python: inside works, every way out fails.

The guest (`tests/guests/sandbox`) is granted `/data` (read-only) and `/out` (read-write);
next to them on the host sits `outside/secret.txt`, which it must never read, and nothing
it does may create a name outside its grants or a link that leads there. Every test runs
twice: with the kernel's `openat2` confinement and with the portable component-by-component
walk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wasm_import import Dir, Err, Wasi
from wasm_import.runtime.wasi import _confine

from ._python_wasi import sandbox_module

DENIED = "PermissionError: Operation not permitted"
MISSING = "FileNotFoundError: No such file or directory"
READ_ONLY = "OSError: Read-only file system"
CROSS = "OSError: Cross-device link"

sandbox = pytest.fixture(scope="module")(sandbox_module)


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    if request.param == "openat2" and not _confine.use_openat2:
        pytest.skip("this kernel has no openat2")
    if request.param == "walk":
        monkeypatch.setattr(_confine, "use_openat2", False)
    return request.param


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "sub").mkdir(parents=True)
    out.mkdir()
    (data / "in.txt").write_text("granted")
    (data / "sub" / "deep.txt").write_text("deep")
    # links the host put there: the guest must not get out through any of them
    os.symlink(tmp_path / "outside" / "secret.txt", data / "abs_link")
    os.symlink("../outside/secret.txt", data / "rel_link")
    os.symlink("sub/../../outside/secret.txt", data / "sneaky_link")
    os.symlink("/", data / "root_link")
    os.symlink("/proc/self/root", data / "proc_link")
    os.symlink("../outside", data / "dir_link")
    os.symlink("sub/deep.txt", data / "inner_link")
    return tmp_path


@pytest.fixture
def inst(sandbox, tree: Path, resolver):
    return sandbox.instantiate(wasi=Wasi(dirs=[Dir(str(tree / "data"), "/data"),
                                               Dir(str(tree / "out"), "/out", readonly=False)]))


def fs(inst, op: str, a: str, b: str = "") -> str:
    """The guest's answer: its text, or `err: <exception type>: <why>`."""
    try:
        return inst.fs(op, a, b)
    except Err as e:
        return f"err: {e.value}"


def test_reads_and_writes_inside_the_grants(inst, tree: Path) -> None:
    assert fs(inst, "read", "/data/in.txt") == "granted"
    assert fs(inst, "read", "/data/sub/deep.txt") == "deep"
    assert fs(inst, "read", "/data/sub/../in.txt") == "granted"
    assert fs(inst, "read", "/data/inner_link") == "deep"  # a symlink that stays inside
    assert fs(inst, "listdir", "/data") == ("abs_link,dir_link,in.txt,inner_link,proc_link,rel_link,"
                                            "root_link,sneaky_link,sub")
    assert fs(inst, "stat", "/data/in.txt") == "7"
    assert fs(inst, "write", "/out/new.txt", "written") == ""
    assert (tree / "out" / "new.txt").read_text() == "written"
    assert fs(inst, "mkdir", "/out/d") == ""
    assert fs(inst, "rename", "/out/new.txt", "/out/d/moved.txt") == ""
    assert (tree / "out" / "d" / "moved.txt").read_text() == "written"
    assert fs(inst, "symlink", "d/moved.txt", "/out/ok_link") == ""
    assert os.readlink(tree / "out" / "ok_link") == "d/moved.txt"
    assert fs(inst, "read", "/out/ok_link") == "written"
    assert fs(inst, "link", "/out/d/moved.txt", "/out/hard.txt") == ""
    assert os.stat(tree / "out" / "hard.txt").st_ino == os.stat(tree / "out" / "d" / "moved.txt").st_ino
    assert fs(inst, "remove", "/out/hard.txt") == ""
    assert fs(inst, "listdir", "/out") == "d,ok_link"


@pytest.mark.parametrize("path, why", [
    ("/data/../outside/secret.txt", DENIED),    # `..` out of the grant
    ("/data/sub/../../outside/secret.txt", DENIED),
    ("/data/abs_link", DENIED),                 # absolute symlink to a file outside
    ("/data/rel_link", DENIED),                 # relative symlink climbing out
    ("/data/sneaky_link", DENIED),              # relative, climbing out through a subdirectory
    ("/data/root_link/etc/passwd", DENIED),     # symlink to /
    ("/data/proc_link/etc/passwd", DENIED),     # symlink to /proc/self/root
    ("/data/dir_link/secret.txt", DENIED),      # symlink to a directory outside
    ("/etc/passwd", MISSING),                   # absolute paths outside every grant
])
def test_reading_outside_fails(inst, path: str, why: str) -> None:
    assert fs(inst, "read", path) == f"err: {why}"


def test_host_paths_mean_nothing_inside(inst, tree: Path) -> None:
    assert fs(inst, "read", str(tree / "outside" / "secret.txt")) == f"err: {MISSING}"


def test_writing_into_the_read_only_grant_fails(inst, tree: Path) -> None:
    assert fs(inst, "write", "/data/new.txt", "x") == f"err: {READ_ONLY}"
    assert fs(inst, "write", "/data/in.txt", "x") == f"err: {READ_ONLY}"
    assert fs(inst, "mkdir", "/data/newdir") == f"err: {READ_ONLY}"
    assert fs(inst, "remove", "/data/in.txt") == f"err: {READ_ONLY}"
    assert fs(inst, "rename", "/data/in.txt", "/data/moved.txt") == f"err: {READ_ONLY}"
    assert fs(inst, "symlink", "in.txt", "/data/l") == f"err: {READ_ONLY}"
    assert sorted(p.name for p in (tree / "data").iterdir()) == [
        "abs_link", "dir_link", "in.txt", "inner_link", "proc_link", "rel_link", "root_link", "sneaky_link", "sub"]
    assert (tree / "data" / "in.txt").read_text() == "granted"


def test_writing_outside_fails(inst, tree: Path) -> None:
    assert fs(inst, "write", "/out/../outside/new.txt", "x") == f"err: {DENIED}"
    assert fs(inst, "mkdir", "/out/../escaped") == f"err: {DENIED}"
    assert sorted(p.name for p in tree.iterdir()) == ["data", "out", "outside"]
    assert sorted(p.name for p in (tree / "outside").iterdir()) == ["secret.txt"]


@pytest.mark.parametrize("target", [
    "../outside/secret.txt", "../../../../etc/passwd", "d/../../outside", "/etc/passwd", "/", "/proc/self/root",
])
def test_creating_a_symlink_that_leads_outside_fails(inst, tree: Path, target: str) -> None:
    assert fs(inst, "mkdir", "/out/d") == ""
    assert fs(inst, "symlink", target, "/out/evil") == f"err: {DENIED}"
    deeper = target if target.startswith("/") else f"../{target}"  # as far out from /out/d
    assert fs(inst, "symlink", deeper, "/out/d/evil") == f"err: {DENIED}"
    assert not os.path.lexists(tree / "out" / "evil")
    assert not os.path.lexists(tree / "out" / "d" / "evil")


def test_creating_a_hard_link_to_outside_fails(inst, tree: Path) -> None:
    assert fs(inst, "link", "/out/../outside/secret.txt", "/out/hard") == f"err: {DENIED}"
    # across grants: a link in /out to a read-only file would make it writable
    assert fs(inst, "link", "/data/in.txt", "/out/hard") == f"err: {CROSS}"
    assert fs(inst, "link", "/data/abs_link", "/out/hard") == f"err: {CROSS}"
    # a hard link to a symlink is a copy of that symlink: one the host left leading out is refused
    os.symlink("../outside/secret.txt", tree / "out" / "host_link")
    assert fs(inst, "link", "/out/host_link", "/out/hard") == f"err: {DENIED}"
    assert not os.path.lexists(tree / "out" / "hard")
    assert os.stat(tree / "outside" / "secret.txt").st_nlink == 1


def test_renaming_out_of_a_grant_fails(inst, tree: Path) -> None:
    assert fs(inst, "write", "/out/f.txt", "x") == ""
    assert fs(inst, "rename", "/out/f.txt", "/out/../outside/f.txt") == f"err: {DENIED}"
    assert fs(inst, "rename", "/out/f.txt", "/data/f.txt") == f"err: {CROSS}"
    assert sorted(p.name for p in (tree / "outside").iterdir()) == ["secret.txt"]


def test_nothing_is_granted_by_default(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "host-only")
    inst = sandbox.instantiate()
    assert inst.environment() == []
    assert inst.arguments() == []
    assert inst.read_stdin() == ""
    assert fs(inst, "read", "/etc/passwd") == f"err: {MISSING}"
    assert fs(inst, "listdir", "/") == f"err: {MISSING}"


def test_a_missing_grant_is_a_clear_error(sandbox, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        sandbox.instantiate(wasi=Wasi(dirs=[Dir(str(tmp_path / "nope"), "/x")]))
