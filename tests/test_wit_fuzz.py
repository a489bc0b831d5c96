"""Property test: whatever bytes `decode` is fed (truncated, bit-flipped or spliced
components), it returns a World or raises DecodeError, quickly, and nothing else.

Seeds are components built from tests/wit/ (so this runs without ../shared) plus the
small components of the shared corpus when it is present. Mutations aim at the
component-level sections, which the decoder reads, rather than at core code, which it
skips.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_wit_corpus import CORPUS
from tests.test_wit_decode import CASES, WASM_TOOLS, build_component, top_level_sections
from wasm_import import DecodeError, wit

CORE_SECTIONS = {1, 2, 3}  # core module, core instance, core type: stepped over by length
MAX_CORPUS_SEED_SIZE = 64 * 1024


class Seed:
    """A component and the byte ranges of its component-level sections."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.spans: List[Tuple[int, int]] = [
            (start - 2, end)  # from about the section id: sizes are worth mutating too
            for section_id, start, end in top_level_sections(data)
            if section_id not in CORE_SECTIONS and end > start
        ]
        if not self.spans:
            self.spans.append((0, len(data)))


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> List[Seed]:
    paths: List[Path] = []
    if WASM_TOOLS is not None:
        out_dir = tmp_path_factory.mktemp("fuzz-seeds")
        paths += [build_component(CASES[name], out_dir)
                  for name in ("everything", "versions", "gated", "same-names")]
    if CORPUS.is_dir():
        paths += [p for p in sorted(CORPUS.glob("*/*.wasm"))
                  if p.stat().st_size <= MAX_CORPUS_SEED_SIZE and "7800c38c" not in p.name]
    if not paths:
        pytest.skip("no seeds: neither wasm-tools nor the shared corpus is available")
    return [Seed(p.read_bytes()) for p in paths]


@st.composite
def mutated(draw: st.DrawFn, seeds: List[Seed]) -> bytes:
    seed = draw(st.sampled_from(seeds))
    data = bytearray(seed.data)
    start, end = draw(st.sampled_from(seed.spans))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "byte", "truncate", "splice", "delete", "insert"]))
        if not data:
            break
        at = draw(st.integers(min(start, len(data) - 1), min(end, len(data)) - 1))
        if how == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "byte":
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x40, 0x3F]))
        elif how == "truncate":
            del data[at:]
        elif how == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:  # splice in a run of bytes from another seed
            other = draw(st.sampled_from(seeds))
            o_start, o_end = draw(st.sampled_from(other.spans))
            o_at = draw(st.integers(o_start, o_end - 1))
            piece = other.data[o_at:o_at + draw(st.integers(1, 64))]
            data[at:at + draw(st.integers(0, 32))] = piece
    return bytes(data)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_only_raises_decode_error(seeds: List[Seed], data: st.DataObject) -> None:
    blob = data.draw(mutated(seeds))
    try:
        world = wit.decode(blob)
    except DecodeError as e:
        assert e.offset is None or 0 <= e.offset <= len(blob)
        return
    wit.to_wit(world)  # whatever decodes also prints


@settings(max_examples=200, deadline=2000)
@given(blob=st.binary(max_size=256))
def test_random_bytes_after_a_header(blob: bytes) -> None:
    try:
        wit.decode(b"\x00asm\x0d\x00\x01\x00" + blob)
    except DecodeError:
        pass
