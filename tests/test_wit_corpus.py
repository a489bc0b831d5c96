"""The external corpus (../shared/corpus): our WIT must equal wasm-tools' for every
component, ignoring blank lines and indentation; pre-standard binaries must be refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wasm_import import DecodeError, wit

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
REPO = Path(__file__).resolve().parents[1]


def corpus_files(pattern: str) -> list[Path]:
    return sorted(CORPUS.glob(pattern)) if CORPUS.is_dir() else []


def significant_lines(text: str) -> list[str]:
    """The comparison rule: blank lines and indentation do not count."""
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS


WITH_EXPECTED_WIT = [p for p in corpus_files("*/*.wasm") if p.with_name(p.name + ".wit").exists()]
PRE_STANDARD = corpus_files("jco-legacy/*-7800c38c*.wasm")


@pytest.mark.parametrize("path", WITH_EXPECTED_WIT, ids=lambda p: p.name)
def test_wit_matches_wasm_tools(corpus: Path, path: Path) -> None:
    expected = path.with_name(path.name + ".wit").read_text()
    printed = wit.to_wit(wit.decode(path.read_bytes()))
    assert significant_lines(printed) == significant_lines(expected)


@pytest.mark.parametrize("path", PRE_STANDARD, ids=lambda p: p.name)
def test_pre_standard_encoding_is_refused(corpus: Path, path: Path) -> None:
    with pytest.raises(DecodeError, match="pre-standard") as info:
        wit.decode(path.read_bytes())
    assert info.value.offset == 4


def test_corpus_is_complete(corpus: Path) -> None:
    """Guards the parametrization above against a silently empty glob."""
    assert len(WITH_EXPECTED_WIT) >= 37 and len(PRE_STANDARD) == 2


def test_cli_prints_the_same_wit(corpus: Path) -> None:
    path = CORPUS / "jco" / "resources.component.wasm"
    result = subprocess.run([sys.executable, "-m", "wasm_import", "wit", str(path)],
                            capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout == path.with_name(path.name + ".wit").read_text()
