"""The package layout is the architecture: layers that import only downwards, no import
cycles, and wasmtime known to the runtime alone.

    foundation  _errors, _limits, _wasi, _values, _http: the public API's own types
    wit/        the WIT model, decoder and printer
    types/      the Python face of WIT types (names, classes, annotations, checks)
    runtime/    runs components; the only layer that knows wasmtime
    bindings/   a world made into a module (plans, instances, linking, load, cache)
    hook/       the import hook
    wasm_import the public facade (`wasm_import/__init__.py`)
    cli/        the command line (and `__main__`)

A module may import from its own layer and the layers before it, never after. Every
import counts, including those inside functions and under `TYPE_CHECKING`: a lazy import
is still a dependency. The modules are read with `ast`, never imported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wasm_import"

LAYERS: Tuple[Tuple[str, ...], ...] = (
    ("wasm_import._errors", "wasm_import._limits", "wasm_import._wasi", "wasm_import._values", "wasm_import._http"),
    ("wasm_import.wit",),
    ("wasm_import.types",),
    ("wasm_import.runtime",),
    ("wasm_import.bindings",),
    ("wasm_import.hook",),
    ("wasm_import",),
    ("wasm_import.cli", "wasm_import.__main__"),
)
SUBPACKAGES = ("wit", "types", "runtime", "bindings", "hook", "cli")
WASMTIME_OWNERS = ("wasm_import.runtime",)  # the only layer that may import these:
WASMTIME_MODULES = ("wasmtime", "wasm_import.runtime._wasmtime", "wasm_import.runtime._clib")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a submodule when `from pkg import submodule`)
    line: int
    module_level: bool  # runs when the module is imported (not in a function, not TYPE_CHECKING)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: Dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, module_level: bool) -> Iterator[Tuple[ast.AST, bool]]:
    """Every node under `node`, with whether it runs at import time."""
    for child in ast.iter_child_nodes(node):
        yield child, module_level
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _walk(child, False)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, False
                yield from _walk(stmt, False)
            for stmt in child.orelse:
                yield stmt, module_level
                yield from _walk(stmt, module_level)
        else:
            yield from _walk(child, module_level)


def _imports(name: str, path: Path) -> Iterator[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node, module_level in _walk(ast.parse(path.read_text(), str(path)), True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno, module_level)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield Import(name, submodule if submodule in MODULES else target, node.lineno, module_level)


IMPORTS: List[Import] = [imp for name, path in MODULES.items() for imp in _imports(name, path)]
INTERNAL: List[Import] = [imp for imp in IMPORTS if imp.target in MODULES and imp.target != imp.source]


def _layer(module: str) -> int:
    """The index in LAYERS of the longest prefix that names `module`'s layer (the facade,
    `wasm_import`, names only itself: a new top-level module must be placed)."""
    best, found = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "wasm_import" and module.startswith(prefix + "."))
            if covers and len(prefix) > best:
                best, found = len(prefix), index
    if found is None:
        raise AssertionError(f"{module} is in no layer: put it in a subpackage or add it to LAYERS")
    return found


def _unit(module: str) -> str:
    """The subpackage a module belongs to (`wasm_import.runtime.wasi._io` -> `runtime`);
    a top-level module is its own unit."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "wasm_import"


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_layout_has_its_subpackages() -> None:
    for sub in SUBPACKAGES:
        init = PACKAGE / sub / "__init__.py"
        assert init.is_file(), f"wasm_import/{sub}/ is not a package"
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"wasm_import/{sub}/__init__.py says nothing about what lives there"
        assert any(isinstance(node, (ast.Assign, ast.AnnAssign)) and "__all__" in ast.dump(node)
                   for node in tree.body), f"wasm_import/{sub}/__init__.py has no __all__"
    assert (PACKAGE / "py.typed").is_file()


def test_every_module_has_a_layer() -> None:
    assert {name: _layer(name) for name in MODULES}  # raises, naming the module, if not


def test_imports_go_only_downwards() -> None:
    upward = [f"{imp.source} (line {imp.line}) imports {imp.target}: "
              f"{LAYERS[_layer(imp.source)][0]} may not depend on {LAYERS[_layer(imp.target)][0]}"
              for imp in INTERNAL if _layer(imp.target) > _layer(imp.source)]
    assert upward == []


def test_no_cycles_between_subpackages() -> None:
    edges: Dict[str, Set[str]] = {}
    for imp in INTERNAL:
        if _unit(imp.source) != _unit(imp.target):
            edges.setdefault(_unit(imp.source), set()).add(_unit(imp.target))
    assert _cycles(edges) == []


def test_no_module_level_import_cycles() -> None:
    """What runs at import time has no cycles at all, so any module can be imported first.
    (A lazy import inside a function may close a cycle within one subpackage; the layers
    above still forbid it across subpackages.)"""
    edges: Dict[str, Set[str]] = {}
    for imp in INTERNAL:
        if imp.module_level:
            edges.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(edges) == []


def test_only_the_runtime_knows_wasmtime() -> None:
    leaks = [f"{imp.source} (line {imp.line}) imports {imp.target}" for imp in IMPORTS
             if any(imp.target == m or imp.target.startswith(m + ".") for m in WASMTIME_MODULES)
             and not any(imp.source == o or imp.source.startswith(o + ".") for o in WASMTIME_OWNERS)]
    assert leaks == []


@pytest.mark.parametrize("module", ["wasm_import.runtime._wasmtime"])
def test_the_wasmtime_check_sees_the_runtime(module: str) -> None:
    """The check above is not vacuous: the runtime does import wasmtime's C library."""
    assert any(imp.source == module and imp.target.startswith("wasm_import.runtime._clib") for imp in IMPORTS)


def test_pyproject_ships_every_subpackage() -> None:
    tomllib = pytest.importorskip("tomllib")  # 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = config["packages"]["find"]["include"]
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            assert any(name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1]))
                       for pattern in include), f"{name} is not in pyproject's packages"
    assert "py.typed" in config["package-data"]["wasm_import"]


def test_the_package_type_checks() -> None:
    """mypy over the whole package finds nothing: the annotations say what the code does
    (each complaint it made when this test came was a real gap: unchecked NULLs from
    ctypes, Optional names used as keys, a union indexed as one of its members)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes",
                           "--cache-dir", str(ROOT / ".mypy_cache"), str(PACKAGE)],
                          capture_output=True, text=True, cwd=ROOT)
    # mypy missing (a test dependency) exits 1 with "No module named mypy": that fails too
    assert done.returncode == 0 and not done.stdout.strip(), f"{done.stdout}{done.stderr}"
