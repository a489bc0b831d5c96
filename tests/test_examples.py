"""The examples run as documented, and their binaries match their sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._build import wasm_tools

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stderr == ""
    return done.stdout


def test_plain_import_example():
    assert run("hello.py").startswith("1 + 2 = 3\n")


def test_plugin_platform_example():
    out = run("plugin_host.py")
    assert "greeter: Hello, platform user!" in out
    assert "[greeter] Hello, platform user!" in out


@pytest.mark.parametrize("name", ["greeter"])
def test_example_binary_matches_its_source(tmp_path, name):
    built = tmp_path / f"{name}.wasm"
    wasm_tools("parse", EXAMPLES / f"{name}.wat", "-o", built)
    assert built.read_bytes() == (EXAMPLES / f"{name}.wasm").read_bytes()
