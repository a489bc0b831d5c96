# mypy: disable-error-code="import-not-found"
# (the modules these tests import are components the tests write at run time)
"""The import hook: finding, precedence, module attributes, reload, zips and wheels, exit.

Every test runs under `clean_imports`, which puts back `sys.meta_path`, `sys.path_hooks`,
`sys.path_importer_cache`, `sys.modules` and `sys.path` afterwards. Components are built
here from the component text format; no test needs ../shared.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import wasm_import
from tests import _build
from wasm_import.hook import _finder as _hook

# -- shared helpers (test_cache.py and test_command.py import these) ---------------------------

SUB_WAT = """
(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32)
      local.get 0
      local.get 1
      i32.sub))
  (core instance $i (instantiate $m))
  (func $add (param "x" u32) (param "y" u32) (result u32) (canon lift (core func $i "add")))
  (instance $iface (export "add" (func $add)))
  (export "docs:adder/add@0.1.0" (instance $iface))
)
"""


def assemble(wat: str) -> bytes:
    """Component text -> component binary (wasm-tools parse)."""
    return _build.wasm_tools("parse", input=wat.encode())


@pytest.fixture(scope="session")
def adder_bytes(adder_wasm: Path) -> bytes:
    """`docs:adder/add@0.1.0` with add(x, y) = x + y."""
    return adder_wasm.read_bytes()


@pytest.fixture(scope="session")
def sub_bytes() -> bytes:
    """The same interface as the adder, but add(x, y) = x - y."""
    return assemble(SUB_WAT)


@pytest.fixture
def clean_imports(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Install the hook, with the compiled-code cache under its default rules; afterwards
    restore the import system as it was.

    Default rules: `__pycache__` writable (no `-B`, no prefix), no `WASM_IMPORT_CACHE_DIR`
    (the session's, see conftest), and a per-user cache directory of the test's own.
    `sys.meta_path`, `sys.path_hooks`, `sys.path_importer_cache` and `sys.path` are put back
    exactly; from `sys.modules` every module the test imported from a temporary directory
    is removed. (Libraries imported lazily on the way, wasmtime above all, stay: dropping
    them would orphan their C state, which objects cached elsewhere still use.)
    """
    saved_meta_path, saved_hooks = list(sys.meta_path), list(sys.path_hooks)
    saved_cache, saved_modules = dict(sys.path_importer_cache), dict(sys.modules)
    saved_path = list(sys.path)
    default_cache_rules(monkeypatch, tmp_path_factory.mktemp("user-cache"))
    wasm_import.install()
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.meta_path[:] = saved_meta_path
        sys.path_hooks[:] = saved_hooks
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(saved_cache)
        temp_root = str(tmp_path_factory.getbasetemp())
        for name in set(sys.modules) - set(saved_modules):
            if _comes_from(sys.modules[name], temp_root):
                del sys.modules[name]
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path
        importlib.invalidate_caches()


def default_cache_rules(monkeypatch: pytest.MonkeyPatch, user_cache: Path) -> None:
    """The compiled-code cache as a user without settings has it, with `user_cache` as
    the per-user cache directory (so no test writes to the real one)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    for name in ("WASM_IMPORT_CACHE_DIR", "WASM_IMPORT_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_cache))
    monkeypatch.setenv("LOCALAPPDATA", str(user_cache))


def _comes_from(module: object, root: str) -> bool:
    places = [getattr(module, "__file__", None) or "", *getattr(module, "__path__", [])]
    return any(str(p).startswith(root) for p in places)


def put(path: Path, data: bytes | str) -> Path:
    """Write a file (making its directory), and tell importlib that directories changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(textwrap.dedent(data))
    else:
        path.write_bytes(data)
    importlib.invalidate_caches()
    return path


def on_path(directory: Path) -> Path:
    sys.path.insert(0, str(directory))
    return directory


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a subprocess: this repo importable, caches writable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([repo, *[p for p in [env.get("PYTHONPATH")] if p]])
    env.update(extra)
    return env


# -- installing ---------------------------------------------------------------------------------

def test_install_is_idempotent_and_sits_before_path_finder(clean_imports: None) -> None:
    assert wasm_import.install().installed is False  # the fixture installed it already
    finders = [f for f in sys.meta_path if isinstance(f, _hook.WasmFinder)]
    assert len(finders) == 1
    position = sys.meta_path.index(finders[0])
    assert sys.meta_path[position + 1] is importlib.machinery.PathFinder


def test_uninstall_and_context_manager(clean_imports: None) -> None:
    wasm_import.uninstall()
    wasm_import.uninstall()  # idempotent
    assert not any(isinstance(f, _hook.WasmFinder) for f in sys.meta_path)
    with wasm_import.install() as handle:
        assert handle.installed
        with wasm_import.install() as inner:  # already installed: its exit must not uninstall
            assert not inner.installed
        assert any(isinstance(f, _hook.WasmFinder) for f in sys.meta_path)
    assert not any(isinstance(f, _hook.WasmFinder) for f in sys.meta_path)


def test_uninstalled_hook_finds_nothing(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    wasm_import.uninstall()
    with pytest.raises(ModuleNotFoundError):
        import foo  # noqa: F401


def test_import_wasm_import_installs_the_hook_without_loading_wasmtime() -> None:
    code = ("import sys, wasm_import, wasm_import.hook._finder as h\n"
            "assert any(isinstance(f, h.WasmFinder) for f in sys.meta_path)\n"
            "assert 'wasmtime' not in sys.modules, 'wasmtime was imported'\n")
    subprocess.run([sys.executable, "-c", code], env=child_env(), check=True)


# -- finding and loading ------------------------------------------------------------------------

def test_import_finds_component_on_sys_path(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    wasm = put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    path_before = list(sys.path)
    import foo

    assert foo.add.add(1, 2) == 3
    assert foo.__file__ == str(wasm)
    assert foo.__spec__.origin == str(wasm) and foo.__spec__.has_location
    assert isinstance(foo.__loader__, _hook.WasmLoader) and foo.__spec__.loader is foo.__loader__
    assert foo.__cached__ == foo.__spec__.cached
    assert Path(foo.__cached__).parent == tmp_path / "__pycache__"
    assert sys.path == path_before, "the finder must never change sys.path"


def test_import_from_package(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "pkg" / "__init__.py", "")
    put(tmp_path / "pkg" / "calc.wasm", adder_bytes)
    put(tmp_path / "pkg" / "sub" / "__init__.py", "")
    put(tmp_path / "pkg" / "sub" / "deep.wasm", adder_bytes)
    from pkg import calc
    import pkg.sub.deep

    assert calc.add.add(2, 2) == 4 and calc.__name__ == "pkg.calc"
    assert pkg.sub.deep.add.add(3, 3) == 6


def test_import_from_namespace_package(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "nspkg" / "calc.wasm", adder_bytes)
    from nspkg import calc

    assert calc.add.add(1, 1) == 2


@pytest.mark.parametrize("file_name, name", [
    ("foo.wasm", "foo"),
    ("my-comp.wasm", "my_comp"),
    ("adder.component.wasm", "adder_component"),
    ("2d.wasm", "_2d"),
    ("class.wasm", "class_"),
    ("naïve.wasm", "naïve"),
    (".wasm", None),
    ("foo.wat", None),
])
def test_import_name(file_name: str, name: str | None) -> None:
    assert _hook.import_name(file_name) == name


def test_non_identifier_file_name(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "my-comp.wasm", adder_bytes)
    import my_comp

    assert my_comp.add.add(1, 2) == 3 and my_comp.__file__.endswith("my-comp.wasm")


def test_exact_file_name_wins_over_a_mapped_one(clean_imports: None, tmp_path: Path,
                                                adder_bytes: bytes, sub_bytes: bytes) -> None:
    put(on_path(tmp_path) / "my-comp.wasm", sub_bytes)
    put(tmp_path / "my_comp.wasm", adder_bytes)
    import my_comp

    assert my_comp.__file__.endswith("my_comp.wasm")


def test_a_broken_component_raises_decode_error(clean_imports: None, tmp_path: Path) -> None:
    put(on_path(tmp_path) / "broken.wasm", b"\0asm\x0d\0\1\0 and then nonsense")
    with pytest.raises(wasm_import.DecodeError):
        import broken  # noqa: F401
    assert "broken" not in sys.modules
    assert not (tmp_path / "__pycache__").exists()


CORE_MODULE = b"\0asm\x01\0\0\0"  # an empty core module: valid wasm, not a component


@pytest.mark.parametrize("contents, detail", [
    (lambda adder: b"\0asm\x0d\0\1\0 and then nonsense", "unexpected end of data while reading section 32"),
    (lambda adder: adder[: len(adder) // 2], "unexpected end of data while reading section 5"),
    (lambda adder: CORE_MODULE, "this is a core wasm module, not a component"),
    (lambda adder: b"", "too short to be a WebAssembly component: 0 byte(s)"),
    (lambda adder: b"PK\3\4 not wasm at all", "not a WebAssembly binary"),
], ids=["malformed", "truncated", "core module", "empty", "not wasm"])
def test_except_import_error_catches_a_bad_component(clean_imports: None, tmp_path: Path, adder_bytes: bytes,
                                                    contents: Any, detail: str) -> None:
    wasm = put(on_path(tmp_path) / "broken.wasm", contents(adder_bytes))
    try:
        import broken  # noqa: F401
    except ImportError as e:
        error: ImportError = e
    else:
        pytest.fail("importing a bad component did not raise")
    assert isinstance(error, wasm_import.DecodeError)  # the detail, as DecodeError carries it
    assert (error.name, error.path) == ("broken", str(wasm))
    assert str(error).startswith(f"{wasm}: ") and detail in str(error), str(error)
    assert "broken" not in sys.modules


def test_find_spec(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    spec = importlib.util.find_spec("foo")
    assert spec is not None and spec.origin == str(tmp_path / "foo.wasm")
    assert "foo" not in sys.modules, "find_spec must not import"
    assert importlib.util.find_spec("no_such_module_anywhere") is None


def test_a_directory_named_like_a_component_is_ignored(clean_imports: None, tmp_path: Path) -> None:
    (on_path(tmp_path) / "odd.wasm").mkdir()
    importlib.invalidate_caches()
    assert importlib.util.find_spec("odd") is None


def test_invalidate_caches_sees_new_files(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    on_path(tmp_path)
    assert importlib.util.find_spec("late") is None
    put(tmp_path / "late.wasm", adder_bytes)  # put() calls importlib.invalidate_caches()
    assert importlib.util.find_spec("late") is not None


def test_reload_rereads_a_changed_file(clean_imports: None, tmp_path: Path,
                                       adder_bytes: bytes, sub_bytes: bytes) -> None:
    wasm = put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    import foo

    assert foo.add.add(5, 3) == 8
    stat = wasm.stat()
    put(wasm, sub_bytes)
    os.utime(wasm, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: content must still count
    assert importlib.reload(foo) is foo
    assert foo.add.add(5, 3) == 2


# -- precedence ---------------------------------------------------------------------------------

def test_py_module_wins_over_component(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    put(tmp_path / "foo.py", "KIND = 'python'\n")
    import foo

    assert foo.KIND == "python"


def test_package_wins_over_component(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    put(tmp_path / "foo" / "__init__.py", "KIND = 'package'\n")
    import foo

    assert foo.KIND == "package"


def test_sourceless_bytecode_wins_over_component(clean_imports: None, tmp_path: Path,
                                                 adder_bytes: bytes) -> None:
    import py_compile

    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    source = put(tmp_path / "src" / "foo.py", "KIND = 'bytecode'\n")
    py_compile.compile(str(source), cfile=str(tmp_path / "foo.pyc"))
    importlib.invalidate_caches()
    import foo

    assert foo.KIND == "bytecode"


def test_extension_module_wins_over_component(clean_imports: None, tmp_path: Path,
                                              adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    put(tmp_path / f"foo{suffix}", b"not really an extension; find_spec does not open it")
    spec = importlib.util.find_spec("foo")
    assert spec is not None and spec.origin == str(tmp_path / f"foo{suffix}")
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def test_namespace_directory_does_not_hide_component(clean_imports: None, tmp_path: Path,
                                                     adder_bytes: bytes) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "foo").mkdir(parents=True)      # a namespace portion, earlier on the path
    (second / "foo").mkdir(parents=True)     # and one in the same directory as foo.wasm
    put(second / "foo.wasm", adder_bytes)
    sys.path[:0] = [str(first), str(second)]
    import foo

    assert foo.__file__ == str(second / "foo.wasm")


def test_namespace_package_still_works_without_component(clean_imports: None, tmp_path: Path) -> None:
    (on_path(tmp_path) / "onlyns").mkdir()
    importlib.invalidate_caches()
    import onlyns

    assert onlyns.__file__ is None and list(onlyns.__path__) == [str(tmp_path / "onlyns")]


def test_path_order_decides_first(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    early, late = tmp_path / "early", tmp_path / "late"
    put(early / "first_wasm.wasm", adder_bytes)
    put(late / "first_wasm.py", "KIND = 'python'\n")
    put(early / "first_py.py", "KIND = 'python'\n")
    put(late / "first_py.wasm", adder_bytes)
    sys.path[:0] = [str(early), str(late)]
    import first_py
    import first_wasm

    assert first_wasm.__file__ == str(early / "first_wasm.wasm")
    assert first_py.KIND == "python"


# -- what finding costs: no imports, no recursion, one stat per directory -----------------------

def test_missing_zip_on_sys_path_imports_zipfile_once(tmp_path: Path) -> None:
    """The standard `.../pythonXY.zip` entry is usually missing; `import zipfile` after
    `import wasm_import` must be one import, not the finder re-entered for each attempt."""
    missing_zip = str(tmp_path / "python3xx.zip")
    code = (f"import sys; sys.path.insert(1, {missing_zip!r})\n"
            "assert 'zipfile' not in sys.modules\n"
            "import wasm_import, zipfile\n")
    # -S: no site-packages, whose .pth files may import zipfile before the test gets to
    done = subprocess.run([sys.executable, "-S", "-X", "importtime", "-c", code], env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")]
    assert imported.count("zipfile") == 1, done.stderr
    assert "wasm_import.hook._finder" in imported


def test_find_spec_imports_nothing(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_one.wasm", adder_bytes)
    put(on_path(tmp_path / "dir") / "plain_one.wasm", adder_bytes)
    sys.path[:0] = [str(archive), str(tmp_path / "missing.zip")]
    before = set(sys.modules)
    for name in ("zipped_one", "plain_one", "no_such_module_anywhere"):
        importlib.util.find_spec(name)
    assert set(sys.modules) == before


def test_find_spec_is_never_reentered(clean_imports: None, tmp_path: Path, adder_bytes: bytes,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Should anything the finder calls import (here a path hook, which the precedence
    check consults), that import does not come back into the finder."""
    put(on_path(tmp_path / "helpers") / "helper_mod.py", "VALUE = 1\n")
    later = put(tmp_path / "later" / "reentered.wasm", adder_bytes).parent
    depth, deepest = [0], [0]
    real_find = _hook.WasmFinder._find

    def counting_find(self: _hook.WasmFinder, fullname: str, path: Any) -> Any:
        depth[0] += 1
        deepest[0] = max(deepest[0], depth[0])
        try:
            return real_find(self, fullname, path)
        finally:
            depth[0] -= 1

    def importing_hook(entry: str) -> Any:
        if entry == str(later):
            importlib.import_module("helper_mod")
        raise ImportError  # not a path this hook serves

    monkeypatch.setattr(_hook.WasmFinder, "_find", counting_find)
    sys.path_hooks.insert(0, importing_hook)
    sys.path.append(str(later))
    import reentered

    assert reentered.add.add(1, 2) == 3 and sys.modules["helper_mod"].VALUE == 1
    assert deepest[0] == 1


def test_a_miss_stats_each_directory_once_and_lists_none(clean_imports: None, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """What a failed lookup of an unrelated module costs: one stat per directory entry (as
    FileFinder pays), a dictionary lookup for a missing entry, no listing, no import."""
    dirs = [tmp_path / f"d{i}" for i in range(3)]
    for d in dirs:
        put(d / "something.py", "")
    sys.path[:] = [*map(str, dirs), str(tmp_path / "python3xx.zip")]
    finder = _hook.WasmFinder()
    assert finder.find_spec("warm_up_the_listings") is None
    calls: List[str] = []

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(os, "stat", counted("stat", os.stat))
    monkeypatch.setattr(os, "listdir", counted("listdir", os.listdir))
    for _ in range(10):
        assert finder.find_spec("no_such_module_anywhere") is None
    monkeypatch.undo()
    assert calls == ["stat"] * 3 * 10


def _as_zip64(data: bytes) -> bytes:
    """A small zip rewritten with zip64 end records, as a writer must for an archive of
    more than 65535 entries or 4 GiB (the plain record then holds only 0xFFFF.. markers)."""
    import struct

    end = data.rindex(b"PK\5\6")
    count, size, offset = struct.unpack_from("<10xHII", data, end)
    record = struct.pack("<4sQHHIIQQQQ", b"PK\6\6", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sIQI", b"PK\6\7", 0, end, 1)
    plain = struct.pack("<4sHHHHIIH", b"PK\5\6", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end] + record + locator + plain


@pytest.mark.parametrize("layout", ["plain", "prefix data", "zip64", "comment", "in a folder",
                                    "non-ASCII name"])
def test_zip_listing_reads_the_central_directory(tmp_path: Path, layout: str) -> None:
    archive = tmp_path / "a.zip"
    names = ["top.wasm", "other.txt", "pkg/inner.wasm", "pkg/sub/deep.wasm", "pkg/"]
    if layout == "non-ASCII name":
        names.append("naïve.wasm")
    with zipfile.ZipFile(archive, "w") as z:
        for name in names:
            z.writestr(name, b"" if name.endswith("/") else b"x" * 10)
        if layout == "comment":
            z.comment = b"a comment, " * 1000
    if layout == "zip64":
        archive.write_bytes(_as_zip64(archive.read_bytes()))
    if layout == "prefix data":  # a self-extracting archive: data before the zip
        archive.write_bytes(b"#!/bin/sh\nexit 0\n" * 50 + archive.read_bytes())
    prefix = "pkg/" if layout == "in a folder" else ""
    with zipfile.ZipFile(archive) as z:
        expected = sorted(n[len(prefix):] for n in z.namelist()
                          if n.startswith(prefix) and n[len(prefix):] and "/" not in n[len(prefix):])
    assert sorted(_hook._zip_names(str(archive), prefix)) == expected
    assert ("inner.wasm" in expected) == (layout == "in a folder")


# -- zip archives and wheels --------------------------------------------------------------------

def test_zip_imported_package(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zpkg/__init__.py", "")
        z.writestr("zpkg/calc.wasm", adder_bytes)
        z.writestr("ztop.wasm", adder_bytes)
    on_path(archive)
    from zpkg import calc
    import ztop

    assert calc.add.add(4, 5) == 9
    assert calc.__file__ == os.path.join(str(archive), "zpkg", "calc.wasm")
    assert ztop.add.add(1, 1) == 2 and ztop.__file__ == os.path.join(str(archive), "ztop.wasm")


def test_wheel_installed_package(clean_imports: None, tmp_path: Path, adder_bytes: bytes) -> None:
    wheel = tmp_path / "wpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("wpkg/__init__.py", "")
        z.writestr("wpkg/calc.wasm", adder_bytes)
        z.writestr("wpkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: wpkg\nVersion: 1.0\n")
        z.writestr("wpkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("wpkg-1.0.dist-info/RECORD", "")
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as z:  # "installing" a pure wheel is unpacking it
        z.extractall(site)
    on_path(site)
    import wpkg.calc

    assert wpkg.calc.add.add(20, 22) == 42
    assert Path(wpkg.calc.__cached__).parent == site / "wpkg" / "__pycache__"


def test_package_of_a_custom_loader(clean_imports: None, adder_bytes: bytes) -> None:
    """A package that is neither in a folder nor in a zip (an in-memory loader here) is
    listed and read through its loader's resource reader."""
    files = {"calc.wasm": adder_bytes, "notes.txt": b"not a component"}

    class Reader:
        def contents(self) -> Iterator[str]:
            return iter([*files, "subfolder"])

        def is_resource(self, name: str) -> bool:
            return name in files

        def open_resource(self, name: str) -> Any:
            import io

            return io.BytesIO(files[name])

    class MemoryLoader(importlib.abc.Loader):
        def exec_module(self, module: Any) -> None:
            pass

        def get_resource_reader(self, fullname: str) -> Reader:
            return Reader()

    class MemoryFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            if fullname != "mempkg":
                return None
            spec = importlib.machinery.ModuleSpec("mempkg", MemoryLoader(), origin="<memory>/mempkg/__init__.py",
                                                  is_package=True)
            spec.submodule_search_locations = ["<memory>/mempkg"]
            return spec

    sys.meta_path.insert(0, MemoryFinder())
    from mempkg import calc

    assert calc.add.add(2, 5) == 7 and calc.__file__ == os.path.join("<memory>/mempkg", "calc.wasm")


# -- interpreter exit ---------------------------------------------------------------------------

def test_interpreter_exit_is_quiet(tmp_path: Path, adder_bytes: bytes) -> None:
    put(tmp_path / "foo.wasm", adder_bytes)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import wasm_import, foo
        keep = [foo.instantiate() for _ in range(3)]
        assert foo.add.add(1, 2) == 3 and keep[0].add.add(2, 2) == 4
    """)
    done = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_extension_suffix_is_a_real_one() -> None:
    # guards test_extension_module_wins_over_component against an odd platform
    assert sysconfig.get_config_var("EXT_SUFFIX") in importlib.machinery.EXTENSION_SUFFIXES
