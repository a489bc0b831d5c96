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
- An entry that is a zip archive (or a folder inside one: a zip-imported package) is
  listed from the archive's central directory, read here as `zipimport` reads it, and
  its members are read with `zipimport`.
- A package whose `__path__` entry is neither (a custom loader) is listed and read
  through its loader's resource reader.
- Any other entry (a missing directory, the `pythonXY.zip` that is usually absent) is
  remembered as empty until `importlib.invalidate_caches()`, as `PathFinder` does.

## What finding costs

`find_spec` runs for every import that gets past the module cache, so it must be cheap
and must never start an import itself: an import started while finding `zipfile` would
ask this finder to find `zipfile` again. So it imports nothing (the zip listing is done
without `zipfile`, the cache path is worked out only when a module is created) and,
should something it calls import anyway (a third-party path hook or resource reader), a
nested `find_spec` on the same thread returns None at once. A failed lookup costs one
`stat` per directory entry and a dictionary lookup per entry, as `FileFinder`'s does.

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
compiled-code cache file, see `bindings._cache`) as a `.py` module does. `importlib.reload`
re-reads the file. `python -m foo` runs a command component (see `_command`).
"""

from __future__ import annotations

import _thread
import importlib.abc
import importlib.machinery
import keyword
import os
import sys
import types
import zipimport
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .._errors import DecodeError

if TYPE_CHECKING:  # pragma: no cover
    from ..bindings import _cache

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


# -- places: what one path entry holds ---------------------------------------------------------

Reader = Callable[[], bytes]
Found = Tuple[str, Optional[Reader]]  # origin, and how to read it (None: a plain file)


class _Nothing:
    """An entry with no components: missing, unreadable, or neither a folder nor a zip."""

    def find(self, name: str) -> Optional[Found]:
        return None


_NOTHING = _Nothing()


class _Dir:
    """A directory, listed again whenever its mtime changes.

    The mtime is importlib's when it has one: we are asked only after importlib's own
    finders failed, so the `FileFinder` of this very directory has just looked at its
    mtime (its `_path_mtime`), and a miss costs us no system call at all."""

    __slots__ = ("path", "mtime", "names")

    def __init__(self, path: str) -> None:
        self.path = path
        self.mtime: Any = -1
        self.names: Dict[str, str] = {}

    def find(self, name: str, known_mtime: Any = None) -> Optional[Found]:
        mtime: Any
        if known_mtime is not None and known_mtime != -1:
            mtime = ("importlib", known_mtime)
        else:
            try:
                mtime = os.stat(self.path).st_mtime_ns
            except OSError:
                return None
        if mtime != self.mtime:
            try:
                listing = os.listdir(self.path)
            except OSError:
                listing = []
            self.names, self.mtime = _index(listing), mtime
        file_name = self.names.get(name)
        if file_name is None:
            return None
        origin = os.path.join(self.path, file_name)
        return (origin, None) if os.path.isfile(origin) else None  # not a directory named .wasm


class _Zip:
    """A zip archive on sys.path, or a folder inside one; listed once."""

    __slots__ = ("entry", "folder", "names")

    def __init__(self, entry: str, importer: zipimport.zipimporter) -> None:
        self.entry = entry
        prefix = importer.prefix.replace(os.sep, "/")
        self.folder = os.path.join(importer.archive, importer.prefix).rstrip("/\\")
        try:
            self.names = _index(_zip_names(importer.archive, prefix))
        except (OSError, ValueError):  # damaged: zipimport will say so when Python code is imported
            self.names = {}

    def find(self, name: str) -> Optional[Found]:
        file_name = self.names.get(name)
        if file_name is None:
            return None
        origin = os.path.join(self.folder, file_name)
        return origin, _zip_reader(self.entry, origin)


class _Resources:
    """A package served by a loader that is neither a folder nor a zip: its resource reader."""

    __slots__ = ("reader", "folder", "names")

    def __init__(self, reader: Any, folder: str) -> None:
        self.reader, self.folder = reader, folder
        try:
            self.names = _index(n for n in reader.contents() if reader.is_resource(n))
        except Exception:  # a reader that cannot list: no components, as for PathFinder
            self.names = {}

    def find(self, name: str) -> Optional[Found]:
        file_name = self.names.get(name)
        if file_name is None:
            return None
        reader = self.reader

        def read() -> bytes:
            with reader.open_resource(file_name) as f:
                data: bytes = f.read()
            return data
        return os.path.join(self.folder, file_name), read


def _file_reader(path: str) -> Reader:
    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()
    return read


def _zip_reader(entry: str, origin: str) -> Reader:
    def read() -> bytes:
        data: bytes = zipimport.zipimporter(entry).get_data(origin)
        return data
    return read


def _u(raw: bytes, at: int, size: int) -> int:
    return int.from_bytes(raw[at:at + size], "little")


def _zip_names(archive: str, prefix: str) -> List[str]:
    """Names of the files directly in folder `prefix` ("" or "a/b/") of zip `archive`.

    Read from the central directory, located as zipimport and zipfile locate it: from the
    end-of-central-directory record (or its zip64 form), counting back by the directory's
    size, so an archive with data before it (a self-extracting one) reads right too. Names
    not flagged UTF-8 are taken only if they are ASCII (others would need the cp437 codec,
    and thus an import); Python's zipfile flags every non-ASCII name.
    """
    with open(archive, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        tail_size = min(size, 22 + 0xFFFF)  # the record, and a comment of up to 64 KiB
        f.seek(size - tail_size)
        tail = f.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            raise ValueError("no end-of-central-directory record")
        end = size - tail_size + at  # where the central directory stops
        directory_size = _u(tail, at + 12, 4)
        if end >= 76:  # zip64: its record (56 bytes) and locator (20) come between the two
            f.seek(end - 76)
            record = f.read(76)
            if record[56:60] == b"PK\x06\x07" and record[:4] == b"PK\x06\x06":
                directory_size, end = _u(record, 40, 8), end - 76
        if directory_size > end:
            raise ValueError("central directory larger than the archive")
        f.seek(end - directory_size)
        directory = f.read(directory_size)
    names: List[str] = []
    i = 0
    while i + 46 <= len(directory) and directory[i:i + 4] == b"PK\x01\x02":
        flags, length = _u(directory, i + 8, 2), _u(directory, i + 28, 2)
        raw = directory[i + 46:i + 46 + length]
        i += 46 + length + _u(directory, i + 30, 2) + _u(directory, i + 32, 2)
        try:
            path = raw.decode("utf-8" if flags & 0x800 else "ascii")
        except UnicodeDecodeError:
            continue
        rest = path[len(prefix):] if path.startswith(prefix) else ""
        if rest and "/" not in rest:
            names.append(rest)
    return names


# -- the finder ---------------------------------------------------------------------------------

class WasmFinder(importlib.abc.MetaPathFinder):
    """Finds `<name>.wasm` on `sys.path` or a package's `__path__` (see the module docstring)."""

    def __init__(self) -> None:
        self._places: Dict[str, Any] = {}  # path entry (absolute for "") -> _Dir/_Zip/_NOTHING
        self._resources: Dict[str, Any] = {}  # package -> _Resources/_NOTHING
        self._busy: Set[int] = set()  # threads inside find_spec

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[types.ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        thread = _thread.get_ident()
        if thread in self._busy:  # something we called is importing: not our business
            return None
        self._busy.add(thread)
        try:
            return self._find(fullname, path)
        finally:
            self._busy.discard(thread)

    def invalidate_caches(self) -> None:
        """Forget every listing (called by `importlib.invalidate_caches()`)."""
        self._places.clear()
        self._resources.clear()

    def _find(self, fullname: str, path: Optional[Sequence[str]]) -> Optional[importlib.machinery.ModuleSpec]:
        package, _, name = fullname.rpartition(".")
        entries = sys.path if path is None else path
        places = self._places
        importer_cache = sys.path_importer_cache
        for i, entry in enumerate(entries):
            if not isinstance(entry, str):
                continue
            if not entry:
                try:
                    entry = os.getcwd()
                except OSError:
                    continue
            place = places.get(entry)
            if place is None:
                place = places[entry] = _place(entry)
            if place is _NOTHING and path is not None:
                place = self._package_resources(package, entry)
            if type(place) is _Dir:
                found = place.find(name, getattr(importer_cache.get(entry), "_path_mtime", None))
            else:
                found = place.find(name)
            if found is None:
                continue
            if _regular_module_in(fullname, list(entries)[: i + 1]):
                return None
            origin, read = found
            return _Spec(fullname, WasmLoader(fullname, origin, read), origin=origin)
        return None

    def _package_resources(self, package: str, entry: str) -> Any:
        """The package's own loader's listing, for an entry that is neither a folder nor a
        zip. Not for a namespace package (no origin): its entries are folders or nothing,
        and its loader's reader would import importlib.readers."""
        place = self._resources.get(package)
        if place is None:
            spec = getattr(sys.modules.get(package), "__spec__", None)
            get_reader = getattr(getattr(spec, "loader", None), "get_resource_reader", None)
            reader = None
            if get_reader is not None and getattr(spec, "origin", None) is not None:
                reader = get_reader(package)
            place = self._resources[package] = _Resources(reader, entry) if reader is not None else _NOTHING
        return place


def _place(entry: str) -> Any:
    """What kind of place a path entry is (worked out once per entry, like PathFinder's
    importer cache)."""
    directory = entry if os.path.isabs(entry) else os.path.abspath(entry)
    if os.path.isdir(directory):
        return _Dir(directory)
    try:
        return _Zip(entry, zipimport.zipimporter(entry))
    except (zipimport.ZipImportError, OSError):
        return _NOTHING


def _regular_module_in(fullname: str, entries: List[str]) -> bool:
    """Whether importlib finds a module (not just a namespace portion) in `entries`."""
    spec = importlib.machinery.PathFinder.find_spec(fullname, entries)
    return spec is not None and spec.origin is not None


class _Spec(importlib.machinery.ModuleSpec):
    """A component's spec. Its `cached` (the compiled-code cache file, which becomes the
    module's `__cached__`) is worked out when first asked for, not while finding: that
    needs the engine's identity, and finding must stay cheap and import nothing."""

    def __init__(self, name: str, loader: "WasmLoader", *, origin: str) -> None:
        super().__init__(name, loader, origin=origin)
        self.has_location = True
        self._cache_known = False

    @property
    def cached(self) -> Optional[str]:
        if not self._cache_known:
            from ..bindings._cache import cache_path_for

            self._cached, self._cache_known = cache_path_for(self.origin or ""), True
        return self._cached

    @cached.setter
    def cached(self, value: Optional[str]) -> None:
        self._cached, self._cache_known = value, True


# -- the loader ---------------------------------------------------------------------------------

class WasmLoader(importlib.abc.Loader):
    """Loads one component as a module: compiled code from the cache, bindings from its WIT."""

    def __init__(self, fullname: str, path: str, read: Optional[Reader] = None) -> None:
        self.name = fullname
        self.path = path
        self._read_file = read is None
        self._read = read or _file_reader(path)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        from ..bindings._component import ComponentModule

        return ComponentModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        from ..bindings import _cache
        from ..bindings._component import ComponentModule, init_component_module

        if not isinstance(module, ComponentModule):
            raise ImportError(f"{self.path} is a component; it cannot be loaded into a plain module",
                              name=self.name, path=self.path)
        try:
            world, compiled = _cache.load_component(self._source())
        except DecodeError as e:  # also an ImportError: say which import it is
            e.name, e.path = self.name, self.path
            raise
        # where the cache file is now (the per-user directory if __pycache__ refused it)
        cached = _cache.cache_path_for(self.path)
        setattr(module, "__cached__", cached)
        if module.__spec__ is not None:
            module.__spec__.cached = cached
        init_component_module(module, world, compiled)

    def _source(self) -> "_cache.Source":
        """A plain file is keyed by a stat (a warm import never reads it); anything else
        (a zip member, a resource) by a hash of its bytes."""
        from ..bindings import _cache

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
        source = "from wasm_import.hook._command import run_module\nrun_module(__spec__)\n"
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
