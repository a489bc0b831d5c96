"""Random input for the WIT decoder.

* Mutated binaries: whatever bytes `decode` is fed (truncated, bit-flipped or spliced
  components), it returns a World or raises DecodeError, quickly, and nothing else.
  Seeds are components built from tests/wit/ (so this runs without ../shared) plus the
  small components of the shared corpus when it is present. Mutations aim at the
  component-level sections, which the decoder reads, rather than at core code, which it
  skips.
* Random WIT worlds (`RandomWit`): valid worlds with versioned packages, `use` chains,
  resources, inline and labelled interfaces; built into components with wasm-tools,
  our printed WIT must equal `wasm-tools component wit` exactly.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_wit_corpus import CORPUS
from tests.test_wit_decode import (
    CASES, WASM_TOOLS, Case, build_component, needs_wasm_tools, top_level_sections, wasm_tools)
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


# -- random WIT worlds -----------------------------------------------------------------------

PRIMITIVES = ["bool", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "f32", "f64",
              "char", "string", "error-context"]
KEYWORD_NAMES = ["%type", "%list", "%result", "%stream", "%own", "%interface", "%func"]


class Scope:
    """The type names usable at one point: value types and resources."""

    def __init__(self) -> None:
        self.types: List[str] = []
        self.resources: List[str] = []


class RandomWit:
    """Writes a random WIT package: versioned dependency packages with interfaces that
    `use` each other, and a world importing and exporting them in various ways."""

    def __init__(self, seed: int, gated: bool = False) -> None:
        self.rng = random.Random(seed)
        self.counter = 0
        self.gated = gated  # also `map<K, V>` and `list<T, N>` (need --all-features)

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def labels(self, prefix: str, count: int) -> List[str]:
        names = [self.name(prefix) for _ in range(count)]
        if names and self.rng.random() < 0.2:
            names[0] = self.rng.choice(KEYWORD_NAMES)
        return names

    # -- types ------------------------------------------------------------------------------

    def type_expr(self, scope: Scope, depth: int = 0, payload: bool = False) -> str:
        rng = self.rng
        kinds = ["primitive"] * 3
        kinds += ["named"] * 3 if scope.types and not payload else []  # an alias may be char
        kinds += ["own"] * 2 if scope.resources else []
        kinds += ["list", "option", "result", "tuple"] if depth < 3 else []
        kinds += ["future", "stream"] if depth < 2 else []
        kinds += ["map", "fixed-list"] if self.gated and depth < 3 else []
        kind = rng.choice(kinds)

        def inner() -> str:
            return self.type_expr(scope, depth + 1, payload=kind in ("future", "stream"))

        if kind == "primitive":
            return rng.choice([p for p in PRIMITIVES if not (payload and p == "char")])
        if kind == "named":
            return rng.choice(scope.types)
        if kind == "own":
            return rng.choice(scope.resources)
        if kind in ("list", "option"):
            return f"{kind}<{inner()}>"
        if kind == "map":
            return f"map<{rng.choice(['string', 'u32'])}, {inner()}>"
        if kind == "fixed-list":
            return f"list<{inner()}, {rng.randint(1, 4)}>"
        if kind == "tuple":
            return f"tuple<{', '.join(inner() for _ in range(rng.randint(1, 3)))}>"
        if kind in ("future", "stream"):
            return kind if rng.random() < 0.3 else f"{kind}<{inner()}>"
        ok, err = rng.choice([(False, False), (True, False), (False, True), (True, True)])
        if not (ok or err):
            return "result"
        return f"result<{inner() if ok else '_'}{', ' + inner() if err else ''}>"

    def param_type(self, scope: Scope) -> str:
        if scope.resources and self.rng.random() < 0.2:
            return f"borrow<{self.rng.choice(scope.resources)}>"
        return self.type_expr(scope)

    def signature(self, scope: Scope) -> str:
        params = ", ".join(f"{p}: {self.param_type(scope)}"
                           for p in self.labels("p", self.rng.randint(0, 3)))
        result = f" -> {self.type_expr(scope)}" if self.rng.random() < 0.7 else ""
        prefix = "async " if self.rng.random() < 0.15 else ""
        return f"{prefix}func({params}){result}"

    # -- definitions -------------------------------------------------------------------------

    def definitions(self, scope: Scope, types: int, functions: int,
                    resources: bool = True) -> List[str]:
        lines = []
        kinds = ["record", "variant", "enum", "flags", "alias"]
        kinds += ["resource"] if resources else []
        for _ in range(types):
            lines.append(self.definition(self.rng.choice(kinds), scope))
        for function in self.labels("fn", functions):
            lines.append(f"{function}: {self.signature(scope)};")
        return lines

    def definition(self, kind: str, scope: Scope) -> str:
        rng, name = self.rng, self.name(kind[:3])
        if kind == "resource":
            scope.resources.append(name)
            members = []
            if rng.random() < 0.5:
                params = ", ".join(f"{p}: {self.type_expr(scope)}"
                                   for p in self.labels("p", rng.randint(0, 2)))
                members.append(f"constructor({params});")
            for member in self.labels("m", rng.randint(0, 3)):
                static = "static " if rng.random() < 0.3 else ""
                members.append(f"{member}: {static}{self.signature(scope)};")
            return f"resource {name} {{ {' '.join(members)} }}" if members else f"resource {name};"
        if kind == "record":
            body = ", ".join(f"{f}: {self.type_expr(scope)}"
                             for f in self.labels("fld", rng.randint(1, 3)))
        elif kind == "variant":
            body = ", ".join(c + (f"({self.type_expr(scope)})" if rng.random() < 0.5 else "")
                             for c in self.labels("c", rng.randint(1, 3)))
        elif kind in ("enum", "flags"):
            body = ", ".join(self.labels("e", rng.randint(1, 3)))
        else:
            definition = f"type {name} = {self.type_expr(scope)};"
            scope.types.append(name)
            return definition
        scope.types.append(name)
        return f"{kind} {name} {{ {body} }}"

    def uses(self, scope: Scope, sources: List[Tuple[str, Scope]]) -> List[str]:
        """`use` statements taking a type or two from some of `sources` (path, scope)."""
        lines = []
        for path, source in sources:
            names = source.types + source.resources
            if not names or self.rng.random() < 0.4:
                continue
            items = []
            for used in self.rng.sample(names, self.rng.randint(1, min(2, len(names)))):
                taken = used in scope.types or used in scope.resources
                local = self.name("al") if taken or self.rng.random() < 0.3 else used
                items.append(used if local == used else f"{used} as {local}")
                (scope.resources if used in source.resources else scope.types).append(local)
            lines.append(f"use {path}.{{{', '.join(items)}}};")
        return lines

    # -- packages and the world ---------------------------------------------------------------

    def interface(self, name: str, sources: List[Tuple[str, Scope]]) -> Tuple[str, Scope]:
        scope = Scope()
        lines = self.uses(scope, sources)
        lines += self.definitions(scope, self.rng.randint(0, 4), self.rng.randint(1, 3))
        return f"interface {name} {{\n  " + "\n  ".join(lines) + "\n}", scope

    def package(self) -> str:
        rng = self.rng
        text = ["package gen:main;"]
        interfaces: List[Tuple[str, Scope]] = []   # (path from gen:main, scope)
        for version in rng.sample(["1.0.0", "2.0.0"], rng.randint(0, 2)):
            body, scope = self.interface("api", [])
            text.append(f"package gen:dep@{version} {{\n{body}\n}}")
            interfaces.append((f"gen:dep/api@{version}", scope))
        depends: Dict[str, Set[str]] = {}  # transitively
        for i in range(rng.randint(1, 4)):
            sources = [s for s in interfaces if rng.random() < 0.7]
            body, scope = self.interface(f"i{i}", sources)
            text.append(body)
            depends[f"i{i}"] = set().union(*({p} | depends.get(p, set()) for p, _ in sources))
            interfaces.append((f"i{i}", scope))
        text.append(self.world(interfaces, depends))
        return "\n".join(text) + "\n"

    @staticmethod
    def exportable(imported: Set[str], wanted: Set[str],
                   depends: Dict[str, Set[str]]) -> Set[str]:
        """The wanted exports that WIT accepts: no interface the world imports
        (explicitly, or implicitly as a dependency of an export) may depend on one."""
        exports = set(wanted)
        while True:
            implicit = set().union(*(depends.get(e, set()) for e in exports)) - exports
            bad = {e for e in exports
                   if any(e in depends.get(i, ()) for i in imported | implicit)}
            if not bad:
                return exports
            exports -= bad

    def world(self, interfaces: List[Tuple[str, Scope]],
              depends: Dict[str, Set[str]]) -> str:
        rng, lines = self.rng, []
        imported = [(p, s) for p, s in interfaces if rng.random() < 0.7]
        lines += [f"import {path};" for path, _ in imported]
        for path, _ in imported:
            if rng.random() < 0.15:
                lines.append(f"import {self.name('lbl')}: {path};")
        if rng.random() < 0.5:
            scope = Scope()
            body = self.uses(scope, imported) + self.definitions(scope, rng.randint(0, 2),
                                                                  rng.randint(1, 2))
            lines.append(f"import {self.name('inl')}: interface {{\n    "
                         + "\n    ".join(body) + "\n  }")
        world_scope = Scope()
        lines += self.uses(world_scope, imported[:1])
        if rng.random() < 0.4:
            lines += self.definitions(world_scope, 1, 0)
        lines += [f"import {f}: {self.signature(world_scope)};"
                  for f in self.labels("wf", rng.randint(0, 2))]
        exports = self.exportable({p for p, _ in imported},
                                  {p for p, _ in interfaces if rng.random() < 0.4}, depends)
        lines += [f"export {path};" for path, _ in interfaces if path in exports]
        if rng.random() < 0.4:
            scope = Scope()
            body = self.definitions(scope, rng.randint(0, 2), rng.randint(1, 2))
            lines.append(f"export {self.name('ex')}: interface {{\n    "
                         + "\n    ".join(body) + "\n  }")
        lines += [f"export {f}: {self.signature(Scope())};"
                  for f in self.labels("xf", rng.randint(0, 2))]
        return "world w {\n  " + "\n  ".join(lines) + "\n}"


@needs_wasm_tools
@pytest.mark.parametrize("seed", range(24))  # about 0.4 s each: three wasm-tools runs
def test_random_world_prints_like_wasm_tools(seed: int, tmp_path: Path) -> None:
    gated = seed % 4 == 3
    (tmp_path / "wit").mkdir()
    (tmp_path / "wit" / "world.wit").write_text(RandomWit(seed, gated).package())
    try:
        component = build_component(Case("", "w", all_features=gated), tmp_path,
                                    wit_dir=tmp_path / "wit")
    except subprocess.CalledProcessError as e:
        pytest.fail(f"the generator wrote invalid WIT:\n{e.stderr}")
    printed = wit.to_wit(wit.decode(component.read_bytes()))
    assert printed == wasm_tools("component", "wit", str(component))
