"""The compiled-code cache: what `.pyc` files are to `.py`, `.cwasm` files are to `.wasm`.

Compiling a large component takes seconds; loading its compiled code back takes
milliseconds. So the first import of `foo.wasm` writes what the import worked out (the
compiled code and the decoded WIT world) next to it,

    pkg/foo.wasm  ->  pkg/__pycache__/foo.wasm.<tag>.cwasm

and later imports load that file instead: a warm import never reads `foo.wasm` at all,
just as a `.pyc` hit never reads the `.py`. The rules follow `.pyc` files where they can:

- `sys.pycache_prefix` (`PYTHONPYCACHEPREFIX`) moves the cache into a parallel tree.
- `sys.dont_write_bytecode` (`PYTHONDONTWRITEBYTECODE`, `-B`) stops writing to
  `__pycache__` (and the prefix); existing files there are still read.
- Where `__pycache__` may not or cannot be written (under `PYTHONDONTWRITEBYTECODE`, in a
  read-only directory) and for a component that is not a plain file (a zip member), the
  cache file goes to a per-user directory instead (`$XDG_CACHE_HOME/wasm-import`,
  `~/.cache/wasm-import`, `%LOCALAPPDATA%\\wasm-import` on Windows), mirroring the
  source's directory. This is where the rules part from `.pyc` files: container images
  set `PYTHONDONTWRITEBYTECODE=1` because a `.pyc` is cheap to redo, and a compiled
  component is not (seconds to tens of seconds for an 18 MB one).
- `WASM_IMPORT_CACHE_DIR=<dir>` puts every cache file under `<dir>` (mirroring the
  source's directory) and nowhere else; `WASM_IMPORT_CACHE=off` neither reads nor writes
  cache files.
- Nothing that cannot be written is an error: there is just no cache.
- Files are written to a temporary name and renamed into place (`os.replace`), so a
  reader never sees half a file, and two processes compiling at once are harmless.
- A compile still running after a second prints one line on stderr (what, how big,
  where it is cached), so a long pause is explained once; `WASM_IMPORT_QUIET=1` hides it.

The name can never collide with a `.pyc`: it ends in `.cwasm` and keeps the `.wasm`.
`<tag>` is a CRC-32 of the engine id (below), so two wasmtime versions sharing a source
tree keep separate files instead of overwriting each other's.

## Keys

A cache file is used only for the engine and the source it was made from:

- the engine id (`engine_id()`) names wasmtime's version, the engine settings, the
  platform, and the shape of the WIT model classes: their module, names and fields (so
  a wasm-import upgrade that moves or changes them never unpickles an old world);
- the source key of a plain file is its size, mtime and ctime (`Source.file`), as a
  `.pyc` uses size and mtime; the ctime also catches a file replaced by one of the same
  size with its mtime copied over (`cp -p`, archives), since no program can set a ctime.
  The source key of anything else (a zip member, bytes) is a SHA-256 of its bytes.

## Validation

wasmtime loads compiled code without checking it (it is machine code), so a damaged
file could crash the process. Every cache file therefore ends with a fixed-size trailer
(`_Trailer`):

    [ payload: wasmtime's code ][ world: the WIT model, pickled ][ trailer, 156 bytes ]
    trailer, little-endian: magic 8s | version u32 | segment CRCs 4 x u32 |
                            payload length u64 | world length u64 | engine id 80s |
                            source key 32s

and nothing reaches wasmtime or the unpickler until all of this holds:

- the file is longer than the trailer, which starts with `MAGIC` and carries
  `FORMAT_VERSION`;
- the engine id and the source key match;
- payload length + world length + trailer size equals the file size;
- the CRC-32 of each quarter of payload + world matches (the quarters are checked in
  parallel threads: zlib releases the GIL, and one 40 MB CRC takes ~9 ms).

Anything else (truncated, corrupted, foreign, empty, garbage) is a miss: the component
is decoded and compiled again and the file rewritten, silently. The CRC guards against
accidents (torn writes, disk errors, stray files), not attackers: whoever can write to
`__pycache__` can already plant a `.pyc`. Even so, the world is unpickled by an
unpickler that admits only the WIT model's own classes. CRC-32 finds every error burst
of up to 32 bits and costs ~4 ms on 40 MB, where SHA-256 costs ~16 ms; on a warm import
that is most of the budget.

The metadata is a trailer rather than a header so that the payload starts at byte 0:
then the runtime can map the verified file (`runtime._compiled.deserialize_file`) instead
of copying it through Python (`deserialize`).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import io
import mmap
import os
import pickle
import struct
import sys
import threading
import zlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, List, Optional, Tuple

from ..runtime import backend as _backend
from ..wit import _model as _wit_model
from .._errors import DecodeError

if TYPE_CHECKING:  # pragma: no cover
    from ..wit._model import World

__all__ = ["Source", "load_component", "cache_paths", "cache_path_for", "cache_tag", "engine_id",
           "user_cache_dir", "MAGIC", "FORMAT_VERSION", "CACHE_ENV", "CACHE_DIR_ENV", "QUIET_ENV"]

MAGIC = b"WASMIMPC"
FORMAT_VERSION = 3
SUFFIX = ".cwasm"
ENGINE_ID_SIZE = 80
SOURCE_KEY_SIZE = 32

CACHE_ENV = "WASM_IMPORT_CACHE"  # "off" (or 0, no, false): neither read nor write cache files
CACHE_DIR_ENV = "WASM_IMPORT_CACHE_DIR"  # put every cache file under this directory instead
QUIET_ENV = "WASM_IMPORT_QUIET"  # set (not 0): no line on stderr about a slow compile
_OFF = ("off", "0", "no", "false")
SLOW_COMPILE = 1.0  # seconds: a compile still running after this says so on stderr, once

SEGMENTS = 4  # payload + world is checked as this many equal parts, each with its CRC-32

# magic, format version, segment CRCs, payload length, world length, engine id, source key.
_TRAILER = struct.Struct(f"<8sI{SEGMENTS}IQQ{ENGINE_ID_SIZE}s{SOURCE_KEY_SIZE}s")
_STAT_KEY = struct.Struct("<4sQqq")  # b"stat", size, mtime_ns, ctime_ns


@dataclass(frozen=True)
class _Trailer:
    """The fixed-size record at the end of every cache file."""

    magic: bytes
    version: int
    segment_crcs: Tuple[int, ...]
    payload_length: int
    world_length: int
    engine_id: bytes
    source_key: bytes

    def pack(self) -> bytes:
        return _TRAILER.pack(self.magic, self.version, *self.segment_crcs, self.payload_length,
                             self.world_length, self.engine_id, self.source_key)

    @classmethod
    def unpack(cls, raw: bytes) -> "_Trailer":
        magic, version, *rest = _TRAILER.unpack(raw)
        return cls(magic, version, tuple(rest[:SEGMENTS]), *rest[SEGMENTS:])


@dataclass(frozen=True)
class Source:
    """A component to load: where it is (for messages and the cache file's name), the key
    that identifies its bytes, and how to read them (only needed on a miss)."""

    where: str
    key: bytes
    read: Callable[[], bytes]
    path: Optional[str] = None  # set for a component that is a file (or a zip member)

    @classmethod
    def file(cls, path: str) -> "Source":
        """A plain file, keyed by size, mtime and ctime (a stat, no read)."""
        st = os.stat(path)

        def read() -> bytes:
            with open(path, "rb") as f:
                return f.read()

        return cls(path, _stat_key(st), read, path)

    @classmethod
    def data(cls, data: bytes, where: str = "<bytes>", path: Optional[str] = None) -> "Source":
        """Bytes already in memory (a zip member, say), keyed by their SHA-256."""
        import hashlib

        return cls(where, hashlib.sha256(data).digest(), lambda: data, path)


def _stat_key(st: os.stat_result) -> bytes:
    return _STAT_KEY.pack(b"stat", st.st_size, st.st_mtime_ns, st.st_ctime_ns).ljust(SOURCE_KEY_SIZE, b"\0")


# -- public ---------------------------------------------------------------------------------------

def load_component(source: Source, *, cache_path: Optional[str] = None
                   ) -> Tuple["World", Any]:
    """The WIT world and compiled code of `source`, from the cache when a valid entry exists.

    `cache_path` names the one cache file to use; without it the places `cache_paths`
    gives for `source.path` are tried, and with neither nothing is cached. Raises
    DecodeError when the bytes are not a component.
    """
    if cache_path is not None:
        places = [(cache_path, True)]
    elif source.path is not None:
        places = cache_paths(source.path)
    else:
        places = []
    for path, _ in places:
        hit = _read(path, source.key)
        if hit is not None:
            return hit
    from ..wit._decode import decode

    wasm = source.read()
    try:
        world = decode(wasm)  # first: it says precisely what is wrong with bad bytes, and fast
    except DecodeError as e:
        if source.path is None:
            raise
        raise DecodeError(f"{source.where}: {e.message}", e.offset) from None
    targets = [path for path, writable in places if writable]
    with _slow_compile_notice(source.where, len(wasm), targets[0] if targets else None):
        compiled = _backend().compile_component(wasm, where=source.where, world=world)
    if targets:
        payload, pickled = compiled.serialize(), _pickle_world(world)
        for path in targets:  # the first place that can be written to
            if _write(path, payload, pickled, source.key):
                break
    return world, compiled


def cache_paths(source_path: str) -> List[Tuple[str, bool]]:
    """Where the cache file of the component file `source_path` may be, in the order they
    are read, each with whether a miss may write it there.

    - `WASM_IMPORT_CACHE=off`: nowhere.
    - `WASM_IMPORT_CACHE_DIR=<dir>`: only `<dir>` (mirroring the source's directory).
    - Else, like `importlib.util.cache_from_source`: `dir/__pycache__/foo.wasm.<tag>.cwasm`,
      or a mirror of `dir` under `sys.pycache_prefix`; written unless
      `sys.dont_write_bytecode`. Then the per-user cache directory (`user_cache_dir()`),
      always writable: it takes what `__pycache__` may not or cannot take (under
      `PYTHONDONTWRITEBYTECODE`, in a read-only directory, for a zip member).
    """
    if os.environ.get(CACHE_ENV, "").strip().lower() in _OFF:
        return []
    source_path = os.path.abspath(os.fspath(source_path))
    head, tail = os.path.split(source_path)
    name = f"{tail}.{cache_tag()}{SUFFIX}"
    root = os.environ.get(CACHE_DIR_ENV)
    if root:
        return [(os.path.join(os.path.abspath(root), _relative(head), name), True)]
    places = []
    if sys.pycache_prefix is not None:
        places.append((os.path.join(sys.pycache_prefix, _relative(head), name), not sys.dont_write_bytecode))
    elif os.path.isdir(head):
        places.append((os.path.join(head, "__pycache__", name), not sys.dont_write_bytecode))
    places.append((os.path.join(user_cache_dir(), _relative(head), name), True))
    return places


def cache_path_for(source_path: str) -> Optional[str]:
    """The cache file of the component file `source_path` (its module's `__cached__`):
    the first of `cache_paths` that exists, else the first one a miss writes; None when
    caching is off."""
    places = cache_paths(source_path)
    for path, _ in places:
        if os.path.isfile(path):
            return path
    return next((path for path, writable in places if writable), None)


@contextlib.contextmanager
def _slow_compile_notice(where: str, size: int, target: Optional[str]) -> Iterator[None]:
    """Around a compile: if it is still running after `SLOW_COMPILE` seconds, print one
    line on stderr saying what is compiled and that the next import will not wait, so a
    long silent pause is explained. `WASM_IMPORT_QUIET=1` turns it off."""
    if os.environ.get(QUIET_ENV, "").strip().lower() not in ("", *_OFF):
        yield
        return
    if target is not None:
        outcome = f"cached for next time in {os.path.dirname(target)}"
    elif os.environ.get(CACHE_ENV, "").strip().lower() in _OFF:
        outcome = f"not cached ({CACHE_ENV}=off)"
    else:
        outcome = "not cached (bytes without a file)"
    line = (f"wasm-import: compiling {where} ({size / 1e6:.1f} MB), once: {outcome} "
            f"({QUIET_ENV}=1 hides this)")

    def tell() -> None:
        stream = sys.stderr
        if stream is not None:
            print(line, file=stream, flush=True)

    timer = threading.Timer(SLOW_COMPILE, tell)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def cache_tag() -> str:
    """The engine-specific part of cache file names, e.g. `wt-1a2b3c4d`."""
    return f"wt-{zlib.crc32(engine_id()):08x}"


def engine_id() -> bytes:
    """Everything about the engine and the model that changes a cache file's contents,
    as text (`ENGINE_ID_SIZE` bytes at most, so it fits the trailer whole)."""
    text = f"{_backend().fingerprint()};{sys.platform};{_machine()};model-{_model_shape():08x}"
    raw = text.encode()
    if len(raw) > ENGINE_ID_SIZE:  # never with today's names; still exact if it happens
        import hashlib

        raw = b"sha256:" + hashlib.sha256(raw).digest()
    return raw


def user_cache_dir() -> str:
    """The per-user cache root: `$XDG_CACHE_HOME/wasm-import`, `~/.cache/wasm-import`,
    `%LOCALAPPDATA%\\wasm-import` on Windows."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wasm-import")


def _relative(directory: str) -> str:
    """`/a/b` -> `a/b`, `C:\\a\\b` -> `a\\b`: a path to mirror under a cache root."""
    return os.path.splitdrive(directory)[1].lstrip("\\/")


def _machine() -> str:
    if hasattr(os, "uname"):
        return os.uname().machine  # what platform.machine() says, without importing it
    import platform

    return platform.machine()


@functools.lru_cache(maxsize=None)
def _model_shape() -> int:
    """A CRC-32 of the WIT model's module name, classes and their fields: pickled worlds
    (and the plans beside them, which name model classes too) stay valid exactly as long
    as this does. A pickle names each class by module, so moving the model to another
    module makes every old cache file a miss instead of a file the unpickler refuses."""
    parts = [_wit_model.__name__]
    for name in _wit_model.__all__:
        obj = getattr(_wit_model, name)
        if isinstance(obj, type) and hasattr(obj, "__dataclass_fields__"):
            parts.append(name + "(" + ",".join(f.name for f in fields(obj)) + ")")
        elif isinstance(obj, type) and issubclass(obj, enum.Enum):
            parts.append(name + "{" + ",".join(obj.__members__) + "}")
    return zlib.crc32(";".join(parts).encode())


# -- the world, pickled -----------------------------------------------------------------------------

def _pickle_world(world: "World") -> bytes:
    return pickle.dumps(world, protocol=4)


class _ModelUnpickler(pickle.Unpickler):
    """Admits only the WIT model's own classes: a cache file never names anything else."""

    def find_class(self, module: str, name: str) -> type:
        obj = getattr(_wit_model, name, None) if module == _wit_model.__name__ else None
        if not isinstance(obj, type) or obj.__module__ != _wit_model.__name__:
            raise pickle.UnpicklingError(f"a cache file may not name {module}.{name}")
        return obj


def _unpickle_world(raw: bytes) -> "World":
    world = _ModelUnpickler(io.BytesIO(raw)).load()
    if not isinstance(world, _wit_model.World):
        raise pickle.UnpicklingError("the cache file does not hold a world")
    return world


# -- checksums ------------------------------------------------------------------------------------

def segment_crcs(body: memoryview) -> Tuple[int, ...]:
    """The CRC-32 of each of `SEGMENTS` equal parts of `body` (the last may be shorter),
    computed by up to one thread per core: zlib releases the GIL while it sums."""
    step = max(1, -(-len(body) // SEGMENTS))
    parts = [body[i * step:(i + 1) * step] for i in range(SEGMENTS)]
    crcs = [0] * SEGMENTS

    def check(indices: range) -> None:
        for i in indices:
            crcs[i] = zlib.crc32(parts[i])

    workers = max(1, min(SEGMENTS, os.cpu_count() or 1))
    groups = [range(w, SEGMENTS, workers) for w in range(workers)]
    started = []
    try:
        for group in groups[1:]:
            thread = threading.Thread(target=check, args=(group,), daemon=True)
            thread.start()
            started.append(thread)
        check(groups[0])
    finally:
        for thread in started:
            thread.join()
        for part in parts:
            part.release()
    if len(started) < len(groups) - 1:  # a thread could not start: check what it would have
        for group in groups[1 + len(started):]:
            check(group)
    return tuple(crcs)


# -- reading --------------------------------------------------------------------------------------

def _read(cache_path: str, source_key: bytes) -> Optional[Tuple["World", Any]]:
    """The world and compiled code in `cache_path` if the file is valid for the keys, else None."""
    try:
        with open(cache_path, "rb") as f:
            trailer = _valid_trailer(f, source_key)
            if trailer is None:
                return None
            return _load_checked(f, trailer)
    except OSError:
        return None


def _tail(f: BinaryIO) -> bytes:
    f.seek(-_TRAILER.size, os.SEEK_END)
    raw = f.read(_TRAILER.size)
    if len(raw) != _TRAILER.size:  # the file shrank under us
        raise OSError("short read")
    return raw


def _valid_trailer(f: BinaryIO, source_key: bytes) -> Optional[_Trailer]:
    """The trailer, if it is ours and matches the keys and the file size."""
    size = os.fstat(f.fileno()).st_size
    if size <= _TRAILER.size:
        return None
    t = _Trailer.unpack(_tail(f))
    ok = (t.magic == MAGIC and t.version == FORMAT_VERSION
          and t.engine_id == engine_id().ljust(ENGINE_ID_SIZE, b"\0") and t.source_key == source_key
          and t.payload_length + t.world_length == size - _TRAILER.size)
    return t if ok else None


def _load_checked(f: BinaryIO, t: _Trailer) -> Optional[Tuple["World", Any]]:
    """Check the CRC, unpickle the world, then hand the payload to wasmtime. None when
    anything fails."""
    load_file = _file_loader()
    fd_path = f"/proc/self/fd/{f.fileno()}"
    checked = t.payload_length + t.world_length
    try:
        if load_file is not None and os.path.exists(fd_path):
            # Linux: verify through a read-only map of the open file, then let wasmtime
            # map the very same inode (the path names our descriptor, not the file name,
            # so a concurrent rename cannot swap in an unverified file).
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                with memoryview(mapped) as view:
                    with view[:checked] as body:
                        if segment_crcs(body) != t.segment_crcs:
                            return None
                    world = _unpickle_world(mapped[t.payload_length:checked])
            return world, load_file(fd_path)
        f.seek(0)
        contents = f.read(checked)
        if len(contents) != checked or segment_crcs(memoryview(contents)) != t.segment_crcs:
            return None
        world = _unpickle_world(contents[t.payload_length:])
        return world, _backend().deserialize(contents[: t.payload_length])
    except Exception:  # an unreadable world, or wasmtime refused even a verified file: a miss
        return None


def _file_loader() -> Optional[Callable[[str], Any]]:
    """The runtime's `deserialize_file` (the zero-copy path), when it offers one."""
    loader: Optional[Callable[[str], Any]]
    loader = getattr(_backend(), "deserialize_file", None)
    return loader


# -- writing --------------------------------------------------------------------------------------

def _write(cache_path: str, payload: bytes, world: bytes, source_key: bytes) -> bool:
    """Write a cache file atomically; False (silently) if the directory is not writable."""
    trailer = _Trailer(MAGIC, FORMAT_VERSION, segment_crcs(memoryview(payload + world)), len(payload),
                       len(world), engine_id(), source_key)
    temp = f"{cache_path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache_path), exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with open(fd, "wb") as f:
                f.write(payload)
                f.write(world)
                f.write(trailer.pack())
            os.replace(temp, cache_path)
        except BaseException:
            _unlink_quietly(temp)
            raise
    except OSError as e:
        if sys.flags.verbose:
            print(f"# wasm_import: could not write {cache_path!r}: {e}", file=sys.stderr)
        return False
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
