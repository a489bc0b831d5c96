"""The WASI sandbox: deny by default, grant per instance with `Wasi`."""

from __future__ import annotations

import pytest

import wasm_import
from wasm_import import Dir, Err, Wasi


@pytest.fixture(scope="module")
def sandbox(build_guest):
    return wasm_import.load(build_guest("sandbox"))


def test_nothing_is_granted_by_default(sandbox, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "host-only")
    inst = sandbox.instantiate()
    assert inst.environment() == []
    assert inst.arguments() in ([], [""])
    assert inst.read_stdin() == ""
    with pytest.raises(Err):
        inst.read_file("/etc/passwd")


def test_args_env_and_stdin(sandbox):
    inst = sandbox.instantiate(wasi=Wasi(args=["prog", "-v"], env={"LANG": "C"}, stdin=b"hello\n"))
    assert inst.arguments() == ["prog", "-v"]
    assert inst.environment() == [("LANG", "C")]
    assert inst.read_stdin() == "hello\n"


def test_stdout_and_stderr_capture(sandbox):
    inst = sandbox.instantiate(wasi=Wasi(stdout="capture", stderr="capture"))
    inst.say("to out\n", "to err\n")
    assert inst.stdout == b"to out\n"
    assert inst.stderr == b"to err\n"


def test_stdout_passes_through_by_default(sandbox, capfd):
    sandbox.instantiate().say("through\n", "")
    assert capfd.readouterr().out == "through\n"


def test_read_only_and_read_write_directories(sandbox, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    (data / "in.txt").write_text("granted")
    inst = sandbox.instantiate(wasi=Wasi(dirs=[Dir(str(data), "/data"), Dir(str(out), "/out", readonly=False)]))
    assert inst.read_file("/data/in.txt") == "granted"
    with pytest.raises(Err):
        inst.write_file("/data/new.txt", "nope")  # read-only
    assert not (data / "new.txt").exists()
    inst.write_file("/out/new.txt", "written")
    assert (out / "new.txt").read_text() == "written"
    with pytest.raises(Err):
        inst.read_file(str(tmp_path / "data" / "in.txt"))  # host paths mean nothing inside


def test_a_missing_directory_is_a_clear_error(sandbox, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        sandbox.instantiate(wasi=Wasi(dirs=[Dir(str(tmp_path / "nope"), "/x")]))


def test_wasi_config_is_validated():
    with pytest.raises(TypeError, match="sequence of strings"):
        Wasi(args="prog")
    with pytest.raises(ValueError, match="stdout"):
        Wasi(stdout="file")  # type: ignore[arg-type]
