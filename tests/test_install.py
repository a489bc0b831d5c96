"""Installed as the README says, `wasm_import` is found by static type checkers too.

setuptools' default editable install of a flat layout is an import hook (a meta-path
finder in a `.pth`), which mypy and pyright cannot follow: every generated stub then
failed to type-check in a development checkout. pyproject.toml's
`package-dir = {"" = "."}` makes `pip install -e .` a plain path `.pth` instead, which
both checkers read. These tests install the checkout into fresh virtual environments
(editable and regular, without dependencies: only the resolution is under test) and run
the checkers on a generated stub from there, in a folder that is not the checkout.

They need pip to be able to fetch setuptools (build isolation), as CI can; and mypy and
pyright, which are test dependencies: missing, the tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Dict, List

import pytest

from wasm_import.cli._main import main as cli_main

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """\
import wasm_import
import adder

total: int = adder.add.add(1, 2)
module: wasm_import.wit.World = adder.wit
wrong: str = adder.add.add(1, 2)  # line 6: the one error
"""
ERROR_LINE = 6


def _venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _environment(root: Path, *pip_args: str) -> Path:
    """A fresh virtual environment at `root`, with `pip install --no-deps <pip_args>` run
    into it (by this interpreter's pip: the environment itself has none)."""
    venv.EnvBuilder(with_pip=False).create(root)
    python = _venv_python(root)
    if pip_args:
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                        "--no-deps", *pip_args], check=True, capture_output=True, text=True, timeout=600)
    return python


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("environments")
    # A regular install builds in the source tree (build/, *.egg-info): build a copy.
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "wasm_import", source / "wasm_import", ignore=shutil.ignore_patterns("__pycache__"))
    return {
        "editable": _environment(root / "editable", "--editable", str(REPO)),
        "regular": _environment(root / "regular", str(source)),
        "without wasm-import": _environment(root / "none"),
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder elsewhere: adder.wasm, its generated stub, a script using both."""
    where = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "examples" / "adder.wasm", where / "adder.wasm")
    assert cli_main(["stubs", str(where)]) == 0
    assert (where / "adder.pyi").is_file()
    (where / "use_adder.py").write_text(SCRIPT)
    return where


def _clean_env() -> Dict[str, str]:
    """No path that would let a checker find wasm_import other than through the install."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}


def mypy(folder: Path, python: Path) -> List[str]:
    """mypy --strict's error lines for the script, checked against `python`'s packages."""
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--python-executable", str(python), "use_adder.py"],
                          cwd=folder, capture_output=True, text=True, env=_clean_env(), timeout=600)
    ran = re.search(r"^(Success: no issues found|Found \d+ errors?) in \d+ files?", done.stdout, re.M)
    assert ran, f"mypy did not run (it is a test dependency):\n{done.stdout}{done.stderr}"
    return [line for line in done.stdout.splitlines() if ": error:" in line]


def pyright(folder: Path, python: Path) -> List[str]:
    """pyright's errors for the script (as `file:line: message`), against `python`'s packages."""
    done = subprocess.run([sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", str(python),
                           "use_adder.py"], cwd=folder, capture_output=True, text=True, env=_clean_env(),
                          timeout=600)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run (it is a test dependency):\n{done.stdout}{done.stderr}")
    return [f"{Path(d['file']).name}:{d['range']['start']['line'] + 1}: {d['message']}"
            for d in report["generalDiagnostics"] if d["severity"] == "error"]


# Each checker's one error, on the marked line: a type mismatch, so both modules resolved.
CHECKERS = {"mypy": (mypy, f"use_adder.py:{ERROR_LINE}: error: Incompatible types in assignment"),
            "pyright": (pyright, f'use_adder.py:{ERROR_LINE}: Type "int" is not assignable')}


@pytest.mark.slow
@pytest.mark.parametrize("checker", list(CHECKERS))
@pytest.mark.parametrize("install", ["editable", "regular"])
def test_checkers_resolve_wasm_import_from_the_install(environments: Dict[str, Path], folder: Path,
                                                       install: str, checker: str) -> None:
    run, expected = CHECKERS[checker]
    errors = run(folder, environments[install])
    assert len(errors) == 1 and errors[0].startswith(expected), errors


@pytest.mark.slow
def test_the_checks_fail_without_the_install(environments: Dict[str, Path], folder: Path) -> None:
    """The control: the same folder, checked against an environment without wasm-import,
    reports the missing module (so the tests above do look at the install)."""
    python = environments["without wasm-import"]
    assert any("wasm_import" in e and "import-not-found" in e for e in mypy(folder, python))
    assert any('Import "wasm_import" could not be resolved' in e for e in pyright(folder, python))

