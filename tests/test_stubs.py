""".pyi stubs (wasm_import.cli._stubs and `python -m wasm_import stubs`).

- A stub says exactly what the runtime module has: `stub_differences` walks the stub's
  syntax tree and the live module side by side (names, parameters, fields, members, docs).
- mypy --strict and pyright accept tests/typecheck/*_ok.py (which also run), and report
  an error on every line of tests/typecheck/kitchen_misuse.py marked `# error`.
- `stubs --check` keeps stubs/ (the stubs of examples/*.wasm) fresh.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

import wasm_import
from wasm_import.wit import _model as w
from wasm_import.bindings._plan import build_plan
from wasm_import.cli._main import main
from wasm_import.cli._stubs import stub_for_file, stub_text

REPO = Path(__file__).resolve().parents[1]
TYPECHECK = Path(__file__).resolve().parent / "typecheck"
CORPUS_MODULES = ["adder", "asmjs_bigint", "numbers", "records", "variants", "options", "flavorful"]


# -- comparing a stub with its runtime module -------------------------------------------------------

def _public(names: Any) -> Set[str]:
    return {n for n in names if not n.startswith("_")}


def _members(body: List[ast.stmt]) -> Dict[str, ast.stmt]:
    """The names a class or module body defines (imports and private names left out)."""
    found: Dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node
    return {k: v for k, v in found.items() if not k.startswith("_") or k == "__init__"}


def _decorators(node: ast.FunctionDef) -> Set[str]:
    return {ast.unparse(d) for d in node.decorator_list}


def _params(node: ast.FunctionDef) -> List[str]:
    names = [a.arg for a in node.args.args + node.args.kwonlyargs]
    return names[1:] if _decorators(node) & {"classmethod"} or (names[:1] == ["self"]) else names


def _runtime_params(obj: Any) -> List[str]:
    return [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]


def _check_function(where: str, node: ast.FunctionDef, obj: Any, problems: List[str]) -> None:
    if not callable(obj):
        problems.append(f"{where}: a function in the stub, {type(obj).__name__} at run time")
        return
    if _params(node) != _runtime_params(obj):
        problems.append(f"{where}: parameters {_params(node)} in the stub, {_runtime_params(obj)} at run time")
    doc = ast.get_docstring(node)
    if doc is not None and obj.__doc__ and doc != inspect.cleandoc(obj.__doc__):
        problems.append(f"{where}: docstring differs:\n{doc!r}\n{inspect.cleandoc(obj.__doc__)!r}")


def _check_class(where: str, node: ast.ClassDef, cls: Any, problems: List[str]) -> None:
    """Compare a class of the stub with the runtime class: a record's fields, an enum's or
    flags' members, a resource's or protocol's methods."""
    if not isinstance(cls, type):
        problems.append(f"{where}: a class in the stub, {type(cls).__name__} at run time")
        return
    members = _members(node.body)
    enum_members: Any = cls
    bases = {ast.unparse(b) for b in node.bases}
    if any(ast.unparse(d) == "_dc.dataclass" for d in node.decorator_list):
        stub_fields = [n for n, m in members.items() if isinstance(m, ast.AnnAssign)]
        runtime_fields = [f.name for f in dataclasses.fields(cls)]
        if stub_fields != runtime_fields:
            problems.append(f"{where}: fields {stub_fields} in the stub, {runtime_fields} at run time")
    elif bases & {"_enum.Enum", "_enum.Flag"}:
        stub_members = [(n, ast.literal_eval(m.value)) for n, m in members.items() if isinstance(m, ast.Assign)]
        runtime_members = [(m.name, m.value) for m in enum_members]
        if stub_members != runtime_members:
            problems.append(f"{where}: members {stub_members} in the stub, {runtime_members} at run time")
        if issubclass(cls, enum.Flag) != ("_enum.Flag" in bases):
            problems.append(f"{where}: Enum/Flag differs")
    else:
        for name, member in members.items():
            if not hasattr(cls, name):
                problems.append(f"{where}.{name}: in the stub, not at run time")
            elif isinstance(member, ast.FunctionDef) and "property" not in _decorators(member):
                _check_function(f"{where}.{name}", member, getattr(cls, name), problems)
        runtime = {n for n, v in vars(cls).items() if callable(v) or isinstance(v, classmethod)}
        missing = _public(runtime) - set(members)
        if missing and "_t.Protocol" not in bases:
            problems.append(f"{where}: {sorted(missing)} at run time, not in the stub")
        elif "_t.Protocol" in bases and _public(runtime) != _public(members):
            problems.append(f"{where}: protocol members {sorted(_public(members))} in the stub, "
                            f"{sorted(_public(runtime))} at run time")


def _check_namespace(where: str, body: List[ast.stmt], runtime: Dict[str, Any], problems: List[str]) -> None:
    members = _members(body)
    if set(members) != _public(runtime):
        problems.append(f"{where}: the stub has {sorted(set(members) - _public(runtime))} more, "
                        f"the runtime {sorted(_public(runtime) - set(members))} more")
    for name in sorted(set(members) & set(runtime)):
        member, obj = members[name], runtime[name]
        if isinstance(member, ast.FunctionDef):
            _check_function(f"{where}.{name}", member, obj, problems)
        elif isinstance(member, ast.ClassDef) and not isinstance(obj, type):
            _check_namespace(f"{where}.{name}", member.body, vars(obj), problems)
        elif isinstance(member, ast.ClassDef):
            _check_class(f"{where}.{name}", member, obj, problems)


def stub_differences(text: str, module: Any) -> List[str]:
    """Every way in which the stub `text` and the runtime `module` disagree."""
    tree = ast.parse(text, feature_version=(3, 10))
    runtime = {name: module.__dict__[name] for name in module.__wasm_attrs__}
    runtime.update(instantiate=module.instantiate, link=module.link, wit=module.wit)
    problems: List[str] = []
    _check_namespace(module.__name__, tree.body, runtime, problems)
    if ast.get_docstring(tree) is None:
        problems.append("the stub has no module docstring")
    return problems


def _stub_of_module(module: Any, source: str) -> str:
    return stub_text(module.__wasm_plan__, source)


# -- the stub describes exactly the runtime module -------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("guest", ["kitchen", "hostuser", "adder", "twoborrows"])
def test_stub_matches_runtime_module_of_guests(build_guest: Any, guest: str) -> None:
    module = wasm_import.load(build_guest(guest), name=guest)
    assert stub_differences(_stub_of_module(module, f"{guest}.wasm"), module) == []


def _corpus_components(corpus: Path) -> Iterator[Path]:
    for folder in ("jco", "component-docs"):
        yield from sorted((corpus / folder).glob("*.wasm"))


@pytest.mark.slow
def test_stub_matches_runtime_module_of_every_corpus_component(corpus: Path) -> None:
    checked, problems = 0, {}
    for path in _corpus_components(corpus):
        try:
            module = wasm_import.load(path)
        except wasm_import.WasmImportError:
            continue  # pre-standard binaries the runtime refuses too
        checked += 1
        found = stub_differences(_stub_of_module(module, path.name), module)
        if found:
            problems[path.name] = found
    assert checked >= 30 and problems == {}


def test_stub_comparison_notices_a_difference(adder_wasm: Path) -> None:
    module = wasm_import.load(adder_wasm, name="adder")
    text = _stub_of_module(module, "adder.wasm")
    assert stub_differences(text.replace("def add(x: int, y: int)", "def add(x: int, z: int)"), module)
    assert stub_differences(text.replace("class add:", "class plus:"), module)


def test_stub_is_deterministic_and_valid_for_python_3_10(kitchen_wasm: Path, tmp_path: Path) -> None:
    copy = tmp_path / "kitchen.wasm"
    shutil.copy(kitchen_wasm, copy)
    name, first = stub_for_file(copy)
    assert (name, first) == stub_for_file(copy)
    ast.parse(first, feature_version=(3, 10))
    assert str(tmp_path) not in first


def test_stub_of_a_world_with_docs() -> None:
    """The kitchen guest's binary carries no docs (componentize-py drops them), so docs are
    checked on a world built directly in the WIT model."""
    pkg = w.PackageName("doc", "demo", "1.0.0")
    owner = w.InterfaceRef("shapes", pkg)
    point = w.TypeDef(w.Record((w.Field("x", w.Primitive.S32, w.Docs("Across.")),)), "point", owner,
                      w.Docs("A point."))
    color = w.TypeDef(w.Enum((w.EnumCase("red", w.Docs("Warm.")),)), "color", owner, w.Docs("A color."))
    area = w.Function("area", w.FunctionKind.FREESTANDING, (w.Param("p", point),),
                      w.TypeDef(w.Result(w.Primitive.F64, w.Primitive.STRING)),
                      docs=w.Docs('The area of "p", in \\units\\.'))
    iface = w.Interface("shapes", pkg, {"point": point, "color": color}, {"area": area}, w.Docs("Shapes."))
    world = w.World("demo", pkg, {}, {"doc:demo/shapes@1.0.0": iface}, w.Docs("A documented world."))
    text = stub_text(build_plan(world, "demo"), "demo.wasm")
    tree = ast.parse(text, feature_version=(3, 10))
    assert ast.get_docstring(tree) == "A documented world."
    shapes = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "shapes")
    docs = {n.name: ast.get_docstring(n) for n in ast.walk(shapes) if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    assert docs["shapes"] == "Shapes.\n\nThe exported interface `doc:demo/shapes@1.0.0`."
    assert docs["Point"] == "A point." and docs["Color"] == "A color."
    assert docs["area"] is not None and docs["area"].startswith('The area of "p", in \\units\\.')
    assert "Raises: `wasm_import.Err(str)`" in docs["area"]
    assert '"""Across."""' in text and '"""Warm."""' in text


# -- the stubs command ---------------------------------------------------------------------------

def test_stubs_command_writes_beside_and_checks(adder_wasm: Path, tmp_path: Path,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    shutil.copy(adder_wasm, tmp_path / "my-adder.wasm")
    assert main(["stubs", "--check", str(tmp_path)]) == 1
    assert "missing:" in capfd.readouterr().err
    assert main(["stubs", str(tmp_path)]) == 0
    stub = tmp_path / "my_adder.pyi"  # named as `import` names the module
    assert stub.is_file() and "def add(x: int, y: int) -> int:" in stub.read_text()
    assert main(["stubs", "--check", str(tmp_path / "my-adder.wasm")]) == 0
    stub.write_text(stub.read_text() + "# edited\n")
    assert main(["stubs", "--check", str(tmp_path)]) == 1
    assert "stale:" in capfd.readouterr().err
    out = tmp_path / "out"
    assert main(["stubs", "--out", str(out), str(tmp_path / "my-adder.wasm")]) == 0
    assert (out / "my_adder.pyi").read_text() == stub_for_file(tmp_path / "my-adder.wasm")[1]


def test_stubs_command_reports_files_that_are_not_components(tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.wasm").write_bytes(b"not wasm at all")
    (tmp_path / "core.wasm").write_bytes(b"\0asm\x01\0\0\0")  # a core module: skipped, with a notice
    assert main(["stubs", str(tmp_path)]) == 1
    err = capfd.readouterr().err
    assert "junk.wasm" in err and f"skipped {tmp_path / 'core.wasm'}: a core WebAssembly module" in err


def test_repo_stubs_of_examples_are_fresh() -> None:
    """CI's freshness check: stubs/ holds the stubs of examples/*.wasm."""
    assert main(["stubs", "--check", "--out", str(REPO / "stubs"), str(REPO / "examples")]) == 0
    assert sorted(p.stem for p in (REPO / "stubs").glob("*.pyi")) == \
        sorted(p.stem for p in (REPO / "examples").glob("*.wasm"))


# -- mypy --strict and pyright on scripts using the stubs -----------------------------------------

def _checker_dir(tmp: Path, components: List[Tuple[Path, str]], scripts: List[str]) -> Path:
    """A folder with the components (under their module names), their stubs, the scripts
    and a pyright configuration that finds wasm_import in this checkout."""
    for source, name in components:
        shutil.copy(source, tmp / name)
    assert main(["stubs", str(tmp)]) == 0
    for script in scripts:
        shutil.copy(TYPECHECK / script, tmp / script)
    (tmp / "pyrightconfig.json").write_text(json.dumps({
        "extraPaths": [str(REPO)], "pythonVersion": "3.10", "reportMissingModuleSource": "none"}))
    return tmp


def mypy_errors(folder: Path, script: str) -> Tuple[Set[int], str]:
    # --follow-imports=silent: errors inside wasm_import itself are not the script's (an
    # installed wasm_import lives in site-packages, where mypy does not report them).
    env = {**os.environ, "MYPYPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--no-incremental", "--python-version", "3.10", script],
                          cwd=folder, capture_output=True, text=True, env=env, timeout=600)
    # No summary line: mypy did not run (not installed?), which must fail the test, not pass it.
    assert re.search(r"^(Success: no issues found|Found \d+ errors?) in ", done.stdout, re.M), \
        f"mypy did not run (it is a test dependency):\n{done.stdout}{done.stderr}"
    lines = {int(m.group(1)) for m in re.finditer(rf"^{re.escape(script)}:(\d+): error", done.stdout, re.M)}
    return lines, done.stdout + done.stderr


def pyright_errors(folder: Path, script: str) -> Tuple[Set[int], str]:
    # Through this interpreter (found in an unactivated virtual environment too); missing,
    # it fails the test: pyright is a test dependency.
    done = subprocess.run([sys.executable, "-m", "pyright", "--outputjson", script], cwd=folder,
                          capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run (it is a test dependency):\n{done.stdout}{done.stderr}")
    lines = {d["range"]["start"]["line"] + 1 for d in report["generalDiagnostics"] if d["severity"] == "error"}
    return lines, done.stdout


def marked_lines(script: str) -> Set[int]:
    text = (TYPECHECK / script).read_text().splitlines()
    return {i for i, line in enumerate(text, 1) if "  # error:" in line}


@pytest.fixture(scope="module")
def kitchen_folder(tmp_path_factory: pytest.TempPathFactory, kitchen_wasm: Path) -> Path:
    return _checker_dir(tmp_path_factory.mktemp("kitchen"), [(kitchen_wasm, "kitchen.wasm")],
                        ["kitchen_ok.py", "kitchen_misuse.py"])


@pytest.fixture(scope="module")
def corpus_folder(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    components = [(corpus / "jco" / f"{name}.component.wasm", f"{name}.component.wasm") for name in CORPUS_MODULES]
    components.append((corpus / "jco" / "example_guest_export.wasm", "example_guest_export.wasm"))
    return _checker_dir(tmp_path_factory.mktemp("corpus"), components, ["corpus_ok.py"])


CORRECT_USE = [("kitchen_folder", "kitchen_ok.py"), ("corpus_folder", "corpus_ok.py")]


@pytest.mark.slow
@pytest.mark.parametrize("checker", [mypy_errors, pyright_errors], ids=["mypy", "pyright"])
@pytest.mark.parametrize("folder, script", CORRECT_USE)
def test_checkers_accept_correct_use(request: pytest.FixtureRequest, folder: str, script: str,
                                     checker: Any) -> None:
    """Every kind of export of the kitchen guest, and of corpus components, used correctly."""
    lines, output = checker(request.getfixturevalue(folder), script)
    assert lines == set(), output


@pytest.mark.slow
@pytest.mark.parametrize("checker", [mypy_errors, pyright_errors], ids=["mypy", "pyright"])
def test_checkers_flag_every_misuse_line(kitchen_folder: Path, checker: Any) -> None:
    lines, output = checker(kitchen_folder, "kitchen_misuse.py")
    expected = marked_lines("kitchen_misuse.py")
    assert len(expected) >= 10
    assert lines == expected, output


@pytest.mark.slow
@pytest.mark.parametrize("folder, script", CORRECT_USE)
def test_correct_use_scripts_run(request: pytest.FixtureRequest, folder: str, script: str) -> None:
    """What the checkers accept also works: the scripts run against the real components."""
    where: Path = request.getfixturevalue(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, script], cwd=where, capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr

