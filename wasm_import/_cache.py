"""The compiled-code cache: what `.pyc` files are to `.py`, `.cwasm` files are to `.wasm`.

Compiling a large component takes seconds; loading its compiled code back takes
milliseconds. So the first import of `foo.wasm` writes the compiled code next to it,

    pkg/foo.wasm  ->  pkg/__pycache__/foo.wasm.<tag>.cwasm

and later imports load that file instead of compiling. The rules follow `.pyc` files:

- `sys.pycache_prefix` (`PYTHONPYCACHEPREFIX`) moves the cache into a parallel tree.
- `sys.dont_write_bytecode` (`PYTHONDONTWRITEBYTECODE`, `-B`) stops writing; existing
  cache files are still read.
- A directory that cannot be written to is not an error: there is just no cache.
- Files are written to a temporary name and renamed into place (`os.replace`), so a
  reader never sees half a file, and two processes compiling at once are harmless.
- A component that is not a plain file (inside a zip archive) is cached under
  `sys.pycache_prefix`, or else under a per-user directory (`$XDG_CACHE_HOME/wasm-import`,
  `~/.cache/wasm-import`, `%LOCALAPPDATA%\\wasm-import` on Windows).

The name can never collide with a `.pyc`: it ends in `.cwasm` and keeps the `.wasm`.
`<tag>` is a short hash of the engine key (below), so two wasmtime versions sharing a
source tree keep separate files instead of overwriting each other's.

## Validation

wasmtime loads compiled code without checking it (it is machine code), so a damaged
file could crash the process. Every cache file therefore ends with a fixed-size trailer
(`_Trailer`):

    [ payload: wasmtime's serialized code ][ trailer, 88 bytes, little-endian:          ]
                                           [ magic 8s | version u32 | crc32 u32 |        ]
                                           [ length u64 | engine key 32s | source key 32s ]

and nothing reaches wasmtime until all of this holds:

- the file is at least as long as the trailer, and the trailer starts with `MAGIC` and
  carries `FORMAT_VERSION`;
- the engine key matches: a SHA-256 of `_engine.fingerprint()` (wasmtime's version and
  engine settings) and the platform;
- the source key matches: a SHA-256 of the `.wasm` bytes being imported, so an edited,
  replaced or copied component never picks up stale code, whatever the mtimes say;
- the payload length in the trailer equals the file size minus the trailer;
- the CRC-32 of the payload matches.

Anything else (truncated, corrupted, foreign, empty, garbage) is a miss: the component
is compiled again and the file rewritten, silently. The CRC guards against accidents
(torn writes, disk errors, stray files), not attackers: whoever can write to
`__pycache__` can already plant a `.pyc`. CRC-32 finds every error burst of up to 32
bits and costs ~4 ms on 40 MB, where SHA-256 costs ~16 ms; on a warm import that is
most of the budget.

The metadata is a trailer rather than a header so that the payload starts at byte 0:
then wasmtime can map the verified file directly (`_engine.deserialize_file`, about
2 ms for 40 MB) instead of copying it through Python (`_engine.deserialize`, 40-200 ms).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import platform
import struct
import sys
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Optional

from . import _engine

__all__ = ["load_compiled", "cache_path_for", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"WASMIMPC"
FORMAT_VERSION = 1
SUFFIX = ".cwasm"

# magic, format version, payload CRC-32, payload length, engine key, source key.
_TRAILER = struct.Struct("<8sIIQ32s32s")


@dataclass(frozen=True)
class _Keys:
    """What a cache file must have been made from to be usable."""

    engine: bytes  # SHA-256 of the engine fingerprint and platform
    source: bytes  # SHA-256 of the component bytes


@dataclass(frozen=True)
class _Trailer:
    """The fixed-size record at the end of every cache file."""

    magic: bytes
    version: int
    crc32: int
    length: int
    engine_key: bytes
    source_key: bytes

    def pack(self) -> bytes:
        return _TRAILER.pack(self.magic, self.version, self.crc32, self.length,
                             self.engine_key, self.source_key)

    @classmethod
    def unpack(cls, raw: bytes) -> "_Trailer":
        return cls(*_TRAILER.unpack(raw))


# -- public ---------------------------------------------------------------------------------------

def load_compiled(wasm: bytes, *, source_path: Optional[str] = None,
                  cache_path: Optional[str] = None) -> _engine.CompiledComponent:
    """Compiled code for `wasm`, from the cache when a valid entry exists.

    `cache_path` defaults to `cache_path_for(source_path)`; with neither, nothing is
    cached. Raises DecodeError (from the compiler) when `wasm` is not a component.
    """
    if cache_path is None and source_path is not None:
        cache_path = cache_path_for(source_path)
    where = source_path or "<bytes>"
    if cache_path is None:
        return _engine.compile_component(wasm, where=where)
    keys = _Keys(engine=engine_key(), source=hashlib.sha256(wasm).digest())
    compiled = _read(cache_path, keys)
    if compiled is None:
        compiled = _engine.compile_component(wasm, where=where)
        if not sys.dont_write_bytecode:
            _write(cache_path, compiled.serialize(), keys)
    return compiled


def cache_path_for(source_path: str) -> str:
    """Where the compiled code of the component at `source_path` is cached.

    Like `importlib.util.cache_from_source`: `dir/foo.wasm` -> `dir/__pycache__/foo.wasm.<tag>.cwasm`,
    or a mirror of `dir` under `sys.pycache_prefix`. A path that is not in a real
    directory (a zip member) goes under the prefix or the per-user cache directory.
    """
    source_path = os.path.abspath(os.fspath(source_path))
    head, tail = os.path.split(source_path)
    name = f"{tail}.{cache_tag()}{SUFFIX}"
    if sys.pycache_prefix is not None:
        return os.path.join(sys.pycache_prefix, _relative(head), name)
    if os.path.isdir(head):
        return os.path.join(head, "__pycache__", name)
    return os.path.join(user_cache_dir(), _relative(head), name)


def cache_tag() -> str:
    """The engine-specific part of cache file names, e.g. `wt-1a2b3c4d`."""
    return "wt-" + engine_key().hex()[:8]


def engine_key() -> bytes:
    """SHA-256 of everything about the engine that changes compiled code."""
    text = f"{_engine.fingerprint()};{sys.platform};{platform.machine()}"
    return hashlib.sha256(text.encode()).digest()


def user_cache_dir() -> str:
    """The per-user cache root, for components that are not plain files."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wasm-import")


def _relative(directory: str) -> str:
    """`/a/b` -> `a/b`, `C:\\a\\b` -> `a\\b`: a path to mirror under a cache root."""
    return os.path.splitdrive(directory)[1].lstrip("\\/")


# -- reading --------------------------------------------------------------------------------------

def _read(cache_path: str, keys: _Keys) -> Optional[_engine.CompiledComponent]:
    """The compiled code in `cache_path` if the file is valid for `keys`, else None."""
    try:
        with open(cache_path, "rb") as f:
            trailer = _valid_trailer(f, keys)
            if trailer is None:
                return None
            return _deserialize_checked(f, trailer.length, trailer.crc32)
    except OSError:
        return None


def _tail(f: BinaryIO) -> bytes:
    f.seek(-_TRAILER.size, os.SEEK_END)
    raw = f.read(_TRAILER.size)
    if len(raw) != _TRAILER.size:  # the file shrank under us
        raise OSError("short read")
    return raw


def _valid_trailer(f: BinaryIO, keys: _Keys) -> Optional[_Trailer]:
    """The trailer, if it is ours and matches `keys` and the file size."""
    size = os.fstat(f.fileno()).st_size
    if size <= _TRAILER.size:
        return None
    t = _Trailer.unpack(_tail(f))
    ok = (t.magic == MAGIC and t.version == FORMAT_VERSION and t.engine_key == keys.engine
          and t.source_key == keys.source and t.length == size - _TRAILER.size)
    return t if ok else None


def _deserialize_checked(f: BinaryIO, length: int,
                         crc: int) -> Optional[_engine.CompiledComponent]:
    """Check the payload's CRC, then hand it to wasmtime. None when anything fails."""
    load_file = _file_loader()
    fd_path = f"/proc/self/fd/{f.fileno()}"
    try:
        if load_file is not None and os.path.exists(fd_path):
            # Linux: verify through a read-only map of the open file, then let wasmtime
            # map the very same inode (the path names our descriptor, not the file name,
            # so a concurrent rename cannot swap in an unverified file).
            if _crc_of_mapped(f, length) != crc:
                return None
            return load_file(fd_path)
        f.seek(0)
        payload = f.read(length)
        if len(payload) != length or zlib.crc32(payload) != crc:
            return None
        return _engine.deserialize(payload)
    except Exception:  # wasmtime refused even a verified file (e.g. a newer engine): a miss
        return None


def _crc_of_mapped(f: BinaryIO, length: int) -> int:
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        with memoryview(mapped) as view:
            with view[:length] as payload:
                return zlib.crc32(payload)


def _file_loader() -> Optional[Callable[[str], _engine.CompiledComponent]]:
    """`_engine.deserialize_file` when the engine offers it (the zero-copy path)."""
    loader: Optional[Callable[[str], _engine.CompiledComponent]]
    loader = getattr(_engine, "deserialize_file", None)
    return loader


# -- writing --------------------------------------------------------------------------------------

def _write(cache_path: str, payload: bytes, keys: _Keys) -> None:
    """Write a cache file atomically; give up silently if the directory is not writable."""
    trailer = _Trailer(MAGIC, FORMAT_VERSION, zlib.crc32(payload), len(payload),
                       keys.engine, keys.source)
    temp = f"{cache_path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache_path), exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with open(fd, "wb") as f:
                f.write(payload)
                f.write(trailer.pack())
            os.replace(temp, cache_path)
        except BaseException:
            _unlink_quietly(temp)
            raise
    except OSError as e:
        if sys.flags.verbose:
            print(f"# wasm_import: could not write {cache_path!r}: {e}", file=sys.stderr)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

