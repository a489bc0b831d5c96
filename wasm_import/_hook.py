"""The import hook: with it installed, `import foo` finds `foo.wasm`.

    import wasm_import        # installs the hook
    import calculator         # calculator.wasm, somewhere on sys.path
    from pkg import codec     # pkg/codec.wasm, inside a package (also zipped or from a wheel)

`wasm_import.install()` and `wasm_import.uninstall()` add and remove the hook; both are
idempotent. `install()` returns a handle that is also a context manager, whose exit
uninstalls the hook if that `install()` call installed it. The hook never changes
`sys.path`, and installing it is cheap: wasmtime is loaded only when the first component
is imported.

## Where components are found

- `import foo` looks in each entry of `sys.path`, in order; `import pkg.foo` looks in
  each entry of `pkg.__path__`.
- An entry that is a directory is listed (and the listing cached until the directory's
  mtime changes or `importlib.invalidate_caches()` is called, as `FileFinder` does).
- A `sys.path` entry that is a zip archive (or a folder inside one) is read with
  `zipimport`; a package whose `__path__` entry is not a directory (a zip-imported
  package, or any loader with a resource reader) is read with `importlib.resources`.

## Import names

A file `<stem>.wasm` is imported as `<stem>` with every character that cannot appear in
a Python identifier replaced by `_`, then `_` put before a leading digit and after a
keyword: `my-comp.wasm` -> `my_comp`, `adder.component.wasm` -> `adder_component`,
`2d.wasm` -> `_2d`, `class.wasm` -> `class_`. If several files in one directory give
the same name, the one spelled exactly `<name>.wasm` wins, else the first in sorted order.

## Precedence

Exactly as if `.wasm` were one more module suffix that importlib tries last:

1. Path order first: the first `sys.path` (or `__path__`) entry that has a module `foo`
   of any kind provides it.
2. Within one entry, `foo.py`, `foo.pyc`, an extension module `foo.*.so`/`.pyd` and a
   package `foo/__init__.py` all win over `foo.wasm`.
3. A plain directory `foo/` (a namespace-package portion) never hides `foo.wasm`, in any
   entry: namespace packages are the fallback when no module exists anywhere.

How: `WasmFinder` sits on `sys.meta_path` just before importlib's `PathFinder`. Most
imports find no `.wasm` and it returns None at once. When entry `i` holds a matching
`.wasm`, it asks `PathFinder` about entries `0..i`; if that finds a regular module it
defers (returns None, and `PathFinder` imports that module), otherwise (nothing, or only
namespace portions) it returns the component's spec.

Modules get `__spec__`, `__file__` (the `.wasm`), `__loader__` and `__cached__` (the
compiled-code cache file, see `_cache`) as a `.py` module does. `importlib.reload`
re-reads the file. `python -m foo` runs a command component (see `_command`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import keyword
import os
import stat
import sys
import types
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from . import _cache

__all__ = ["install", "uninstall", "import_name", "WasmFinder", "WasmLoader", "Installation"]

SUFFIX = ".wasm"


def import_name(file_name: str) -> Optional[str]:
    """The module name a `.wasm` file is imported as (None if it has no usable name)."""
    if not file_name.endswith(SUFFIX) or file_name == SUFFIX:
        return None
    stem = file_name[: -len(SUFFIX)]
    name = "".join(c if ("_" + c).isidentifier() else "_" for c in stem)
    if name[0].isdigit():
        name = "_" + name
    if keyword.iskeyword(name):
        name += "_"
    return name


def _index(file_names: Iterable[str]) -> Dict[str, str]:
    """Import name -> file name, for the `.wasm` files among `file_names`."""
    index: Dict[str, str] = {}
    for file_name in sorted(file_names):
        name = import_name(file_name)
        if name is not None and (name not in index or file_name == name + SUFFIX):
            index[name] = file_name
    return index


# -- where a component's bytes come from ------------------------------------------------------

Reader = Callable[[], bytes]


def _file_reader(path: str) -> Reader:
    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()
    return read


def _zip_reader(entry: str, origin: str) -> Reader:
    def read() -> bytes:
        import zipimport

        data: bytes = zipimport.zipimporter(entry).get_data(origin)
        return data
    return read


def _resource_reader(package: str, file_name: str) -> Reader:
    def read() -> bytes:
        data: bytes = _files(package).joinpath(file_name).read_bytes()
        return data
    return read


def _files(package: str) -> Any:
    """`importlib.resources.files`, from the backport on Python 3.10."""
    if sys.version_info >= (3, 11):
        from importlib.resources import files
    else:  # pragma: no cover - exercised on 3.10 only
        from importlib_resources import files
    return files(package)


# -- the finder ---------------------------------------------------------------------------------

class WasmFinder(importlib.abc.MetaPathFinder):
    """Finds `<name>.wasm` on `sys.path` or a package's `__path__` (see the module docstring)."""

    def __init__(self) -> None:
        # directory -> (its mtime_ns, import name -> file name)
        self._dirs: Dict[str, Tuple[int, Dict[str, str]]] = {}
        # (path entry, package) -> import name -> file name, for entries that are not directories
        self._others: Dict[Tuple[str, Optional[str]], Dict[str, str]] = {}

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[types.ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        package, _, tail = fullname.rpartition(".")
        entries = [e for e in (sys.path if path is None else path) if isinstance(e, str)]
        for i, entry in enumerate(entries):
            found = self._find_in_entry(entry, tail, package if path is not None else None)
            if found is None:
                continue
            if _regular_module_in(fullname, entries[: i + 1]):
                return None
            origin, read = found
            return _spec(fullname, origin, read)
        return None

    def invalidate_caches(self) -> None:
        """Forget directory listings (called by `importlib.invalidate_caches()`)."""
        self._dirs.clear()
        self._others.clear()

    def _find_in_entry(self, entry: str, name: str,
                       package: Optional[str]) -> Optional[Tuple[str, Optional[Reader]]]:
        directory = entry if os.path.isabs(entry) else os.path.abspath(entry or os.curdir)
        try:
            st = os.stat(directory)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            return self._find_in_dir(directory, st.st_mtime_ns, name)
        return self._find_elsewhere(entry, name, package)

    def _find_in_dir(self, directory: str, mtime: int, name: str) -> Optional[Tuple[str, Optional[Reader]]]:
        cached = self._dirs.get(directory)
        if cached is None or cached[0] != mtime:
            try:
                names = os.listdir(directory)
            except OSError:
                names = []
            cached = self._dirs[directory] = (mtime, _index(names))
        file_name = cached[1].get(name)
        if file_name is None:
            return None
        origin = os.path.join(directory, file_name)
        return (origin, None) if os.path.isfile(origin) else None  # a plain file

    def _find_elsewhere(self, entry: str, name: str,
                        package: Optional[str]) -> Optional[Tuple[str, Reader]]:
        """A zip archive on sys.path, or a package that is not in a directory."""
        key = (entry, package)
        index = self._others.get(key)
        if index is None:
            index = self._others[key] = _index(_list_elsewhere(entry, package))
        file_name = index.get(name)
        if file_name is None:
            return None
        if package is not None:
            return os.path.join(entry, file_name), _resource_reader(package, file_name)
        origin = os.path.join(_zip_location(entry) or entry, file_name)
        return origin, _zip_reader(entry, origin)


def _list_elsewhere(entry: str, package: Optional[str]) -> List[str]:
    """File names in a non-directory path entry; [] when it cannot be read."""
    try:
        if package is not None:
            return [c.name for c in _files(package).iterdir() if c.is_file()]
        return _zip_children(entry)
    except Exception:  # an unreadable entry has no components, as for PathFinder
        return []


def _zip_location(entry: str) -> Optional[str]:
    """`archive/prefix` of a zip path entry (absolute), or None if it is not one."""
    import zipimport

    try:
        importer = zipimport.zipimporter(entry)
    except (zipimport.ZipImportError, OSError):
        return None
    return os.path.join(importer.archive, importer.prefix).rstrip("/\\")


def _zip_children(entry: str) -> List[str]:
    """File names in a zip path entry; raises ZipImportError if it is not one."""
    import zipfile
    import zipimport

    importer = zipimport.zipimporter(entry)
    with zipfile.ZipFile(importer.archive) as archive:
        folder = zipfile.Path(archive, importer.prefix.replace(os.sep, "/"))
        return [c.name for c in folder.iterdir() if c.is_file()]


def _regular_module_in(fullname: str, entries: List[str]) -> bool:
    """Whether importlib finds a module (not just a namespace portion) in `entries`."""
    spec = importlib.machinery.PathFinder.find_spec(fullname, entries)
    return spec is not None and spec.origin is not None


def _spec(fullname: str, origin: str, read: Optional[Reader]) -> importlib.machinery.ModuleSpec:
    from ._cache import cache_path_for

    spec = importlib.machinery.ModuleSpec(fullname, WasmLoader(fullname, origin, read), origin=origin)
    spec.has_location = True
    spec.cached = cache_path_for(origin)
    return spec


# -- the loader ---------------------------------------------------------------------------------

class WasmLoader(importlib.abc.Loader):
    """Loads one component as a module: compiled code from the cache, bindings from its WIT."""

    def __init__(self, fullname: str, path: str, read: Optional[Reader] = None) -> None:
        self.name = fullname
        self.path = path
        self._read_file = read is None
        self._read = read or _file_reader(path)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        from ._component import ComponentModule

        return ComponentModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        from . import _cache
        from ._component import ComponentModule, init_component_module

        if not isinstance(module, ComponentModule):
            raise ImportError(f"{self.path} is a component; it cannot be loaded into a plain module",
                              name=self.name, path=self.path)
        cache_path = getattr(module, "__cached__", None) or _cache.cache_path_for(self.path)
        world, compiled = _cache.load_component(self._source(), cache_path=cache_path)
        init_component_module(module, world, compiled)

    def _source(self) -> "_cache.Source":
        """A plain file is keyed by a stat (a warm import never reads it); anything else
        (a zip member, a resource) by a hash of its bytes."""
        from . import _cache

        if self._read_file:
            try:
                return _cache.Source.file(self.path)
            except OSError as e:
                raise ImportError(f"cannot read {self.path}: {e}", name=self.name, path=self.path) from None
        return _cache.Source.data(self._read(), where=self.path, path=self.path)

    def get_filename(self, fullname: str) -> str:
        return self.path

    def get_data(self, path: str) -> bytes:
        """The bytes of the component (or, for any other path, of that file)."""
        if path == self.path:
            return self._read()
        with open(path, "rb") as f:
            return f.read()

    def is_package(self, fullname: str) -> bool:
        return False

    def get_source(self, fullname: str) -> None:
        return None

    def get_code(self, fullname: str) -> types.CodeType:
        """The code `python -m` runs for this module: it runs the component as a command."""
        source = "from wasm_import._command import run_module\nrun_module(__spec__)\n"
        return compile(source, f"<wasm-import command {self.path}>", "exec")

    def __repr__(self) -> str:
        return f"<WasmLoader {self.name!r} from {self.path!r}>"


# -- installing ---------------------------------------------------------------------------------

_FINDER = WasmFinder()


class Installation:
    """What `install()` returns; as a context manager, its exit undoes that `install()`."""

    def __init__(self, installed: bool) -> None:
        self.installed = installed  # True if this call added the hook

    def uninstall(self) -> None:
        uninstall()

    def __enter__(self) -> "Installation":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            uninstall()


def install() -> Installation:
    """Add the import hook (idempotent). It goes just before importlib's PathFinder."""
    if any(isinstance(f, WasmFinder) for f in sys.meta_path):
        return Installation(installed=False)
    position = len(sys.meta_path)
    for i, finder in enumerate(sys.meta_path):
        if finder is importlib.machinery.PathFinder:
            position = i
            break
    sys.meta_path.insert(position, _FINDER)
    return Installation(installed=True)


def uninstall() -> None:
    """Remove the import hook (idempotent). Modules already imported stay usable."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, WasmFinder)]
    _FINDER.invalidate_caches()
