"""`python -m foo`: running a command component (one exporting `wasi:cli/run`).

Each run is a real `python -m NAME` in a subprocess; a `sitecustomize.py` on its
PYTHONPATH imports wasm_import first, as a `.pth` file would in an installation.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import _build
from tests.test_hook import adder_bytes, assemble, child_env, put  # noqa: F401 (fixtures)
from wasm_import.hook import _command

# A command with no imports whose `run` returns ok or err: fast to build and to compile.
RUN_WAT = """
(component
  (core module $m (func (export "run") (result i32) i32.const {status}))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $iface (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $iface))
)
"""

# A componentize-py command that reports what its sandbox lets it see.
COMMAND_WIT = {
    "command.wit": "package test:command;\n\nworld command {\n  export wasi:cli/run@0.2.0;\n}\n",
    "deps/cli/run.wit": "package wasi:cli@0.2.0;\n\ninterface run {\n  run: func() -> result;\n}\n",
}
COMMAND_APP = '''
import os
import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print("argv:", sys.argv[1:])
        print("env:", sorted(k for k in os.environ if k.startswith("CMD_TEST")))
        print("stdin:", sys.stdin.read().strip())
        try:
            print("data:", sorted(os.listdir("/data")))
        except OSError as e:
            print("data: denied", type(e).__name__)
        if "write" in sys.argv:
            try:
                with open("/data/new.txt", "w") as f:
                    f.write("written")
                print("write: ok")
            except OSError as e:
                print("write: denied", type(e).__name__)
        print("to stderr", file=sys.stderr)
        sys.stdout.flush()
        if "fail" in sys.argv:  # componentize-py turns this into `run` returning err
            sys.exit(7)
        if "exit0" in sys.argv:  # wasi:cli/exit with ok
            os._exit(0)
        if "exit3" in sys.argv:  # wasi:cli/exit with err (WASI 0.2 carries no number)
            os._exit(3)
        print("returned normally")
'''


def run_m(directory: Path, name: str, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m name args` in `directory`, with the hook installed at startup."""
    (directory / "sitecustomize.py").write_text("import wasm_import\n")
    environment = child_env(**env)
    environment["PYTHONPATH"] = os.pathsep.join([str(directory), environment["PYTHONPATH"]])
    return subprocess.run([sys.executable, "-m", name, *args], cwd=directory, env=environment,
                          input=stdin, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def command_wasm() -> Path:
    """The componentize-py command, built once per source change (about 5 s)."""
    sources = "".join(COMMAND_WIT.values()) + COMMAND_APP
    key = hashlib.sha256(sources.encode()).hexdigest()[:20]

    def build(work: Path, out: Path) -> None:
        for relative, text in COMMAND_WIT.items():
            put(work / "wit" / relative, text)
        put(work / "app.py", COMMAND_APP)
        _build._run([*_build._componentize_py_cmd(), "-d", "wit", "-w", "command", "componentize",
                     "app", "-o", str(out)], cwd=work)

    return _build._cached("command", key, build)


@pytest.fixture(scope="session")
def tool_dir(command_wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the command as tool.wasm, shared so that it is compiled only once."""
    directory = tmp_path_factory.mktemp("tool")
    put(directory / "tool.wasm", command_wasm.read_bytes())
    return directory


# -- exit status --------------------------------------------------------------------------------

@pytest.mark.parametrize("result, status", [(0, 0), (1, 1)])
def test_exit_status_follows_run_result(tmp_path: Path, result: int, status: int) -> None:
    put(tmp_path / "cmd.wasm", assemble(RUN_WAT.format(status=result)))
    done = run_m(tmp_path, "cmd")
    assert (done.returncode, done.stdout, done.stderr) == (status, "", "")


def test_command_inside_a_package(tmp_path: Path) -> None:
    put(tmp_path / "pkg" / "__init__.py", "")
    put(tmp_path / "pkg" / "cmd.wasm", assemble(RUN_WAT.format(status=1)))
    done = run_m(tmp_path, "pkg.cmd")
    assert (done.returncode, done.stderr) == (1, "")


def test_not_a_command(tmp_path: Path, adder_bytes: bytes) -> None:
    put(tmp_path / "adder.wasm", adder_bytes)
    done = run_m(tmp_path, "adder")
    assert done.returncode == 2 and "does not export wasi:cli/run" in done.stderr


def test_bad_grant_is_reported(tmp_path: Path) -> None:
    put(tmp_path / "cmd.wasm", assemble(RUN_WAT.format(status=0)))
    done = run_m(tmp_path, "cmd", WASM_IMPORT_DIRS="no-guest-path")
    assert done.returncode == 2 and "WASM_IMPORT_DIRS" in done.stderr


# -- a real command: argv, stdio, grants --------------------------------------------------------

@pytest.mark.slow
def test_command_gets_argv_and_stdio_and_nothing_else(tool_dir: Path) -> None:
    done = run_m(tool_dir, "tool", "one", "two words", stdin="piped in\n", CMD_TEST_SECRET="x")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "argv: ['one', 'two words']",
        "env: []",
        "stdin: piped in",
        "data: denied FileNotFoundError",
        "returned normally",
    ]
    assert done.stderr == "to stderr\n"


@pytest.mark.slow
def test_command_grants(tmp_path: Path, tool_dir: Path) -> None:
    data = tmp_path / "data"
    put(data / "a.txt", "a")
    grants = {"CMD_TEST_A": "1", "CMD_TEST_B": "2", "WASM_IMPORT_ENV": "CMD_TEST_A",
              "WASM_IMPORT_DIRS": f"{data}::/data"}
    done = run_m(tool_dir, "tool", "write", **grants)
    assert done.returncode == 0, done.stderr
    assert "env: ['CMD_TEST_A']" in done.stdout
    assert "data: ['a.txt']" in done.stdout
    assert "write: denied" in done.stdout and not (data / "new.txt").exists()

    grants["WASM_IMPORT_DIRS"] = f"{data}::/data:rw"
    done = run_m(tool_dir, "tool", "write", **grants)
    assert "write: ok" in done.stdout and (data / "new.txt").read_text() == "written"


@pytest.mark.slow
@pytest.mark.parametrize("how, status", [("fail", 1), ("exit0", 0), ("exit3", 1), ("normally", 0)])
def test_command_exit_status(tool_dir: Path, how: str, status: int) -> None:
    done = run_m(tool_dir, "tool", how)
    assert done.returncode == status and done.stderr == "to stderr\n"
    assert ("returned normally" in done.stdout) == (how == "normally")


def test_corpus_hello_stdout(tmp_path: Path) -> None:
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "jco"
    source = corpus / "jco__components__hello_stdout.component.wasm"
    if not source.is_file():
        pytest.skip("../shared/corpus is not here")
    put(tmp_path / "hello.wasm", source.read_bytes())
    done = run_m(tmp_path, "hello")
    assert (done.returncode, done.stdout) == (0, "writing to stdout: hello, world\n")


# -- the grant syntax ---------------------------------------------------------------------------

def test_grants_from_environment(tmp_path: Path) -> None:
    environ = {"WASM_IMPORT_ENV": "A, C", "A": "1", "B": "2",
               "WASM_IMPORT_DIRS": f"{tmp_path}::/ro,{tmp_path}::/rw:rw,{tmp_path}::/x:ro"}
    wasi = _command.wasi_from_environment(environ, ["prog", "arg"])
    assert list(wasi.args) == ["prog", "arg"] and dict(wasi.env) == {"A": "1"}
    assert [(d.guest, d.readonly) for d in wasi.dirs] == [("/ro", True), ("/rw", False), ("/x", True)]
    assert (wasi.stdin, wasi.stdout, wasi.stderr) == ("inherit", "inherit", "inherit")


def test_no_grants_by_default() -> None:
    wasi = _command.wasi_from_environment({"HOME": "/root"}, ["prog"])
    assert (dict(wasi.env), list(wasi.dirs)) == ({}, [])


@pytest.mark.parametrize("grant", ["/tmp", "::/guest", "/tmp::", "/tmp:::rw", "/no/such/dir::/x"])
def test_malformed_dir_grants(grant: str) -> None:
    with pytest.raises(ValueError, match="WASM_IMPORT_DIRS"):
        _command.wasi_from_environment({"WASM_IMPORT_DIRS": grant}, ["prog"])


# -- installing the hook at startup -------------------------------------------------------------

def test_startup_hook_makes_python_m_find_components(tmp_path: Path) -> None:
    """`python -m wasm_import startup-hook --user` is what makes a bare `python -m hooked`
    work; `--remove` undoes it. PYTHONUSERBASE keeps the per-user directory temporary."""
    env = child_env(PYTHONUSERBASE=str(tmp_path / "userbase"))
    user_site = subprocess.run([sys.executable, "-c", "import site; print(site.ENABLE_USER_SITE)"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip()
    if user_site != "True":
        pytest.skip("this interpreter does not read per-user site-packages (a virtual environment)")
    work = tmp_path / "work"
    put(work / "hooked.wasm", assemble(RUN_WAT.format(status=0)))

    def python_m_hooked() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hooked"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)

    def hook(*flags: str) -> str:
        return subprocess.run([sys.executable, "-m", "wasm_import", "startup-hook", "--user", *flags],
                              env=env, capture_output=True, text=True, check=True).stdout

    before = python_m_hooked()
    assert before.returncode == 1 and "No module named hooked" in before.stderr
    assert "wrote" in hook()
    assert python_m_hooked().returncode == 0
    assert "removed" in hook("--remove")
    assert python_m_hooked().returncode == 1


def test_startup_hook_writes_one_import_line(tmp_path: Path) -> None:
    from wasm_import.cli._main import STARTUP_PTH, main

    assert main(["startup-hook", "--site-dir", str(tmp_path)]) == 0
    lines = [line for line in (tmp_path / STARTUP_PTH).read_text().splitlines() if not line.startswith("#")]
    assert lines == ["import wasm_import"]
    assert main(["startup-hook", "--site-dir", str(tmp_path), "--remove"]) == 0
    assert not (tmp_path / STARTUP_PTH).exists()
    assert main(["startup-hook", "--site-dir", str(tmp_path), "--remove"]) == 0  # idempotent
