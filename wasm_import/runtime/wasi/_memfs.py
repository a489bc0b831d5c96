"""`MemoryDir`: a directory tree that lives in this process, granted like a host directory.

    data = MemoryDir({"in.txt": b"hello", "sub": {"a.txt": "text"}})
    inst = module.instantiate(wasi=Wasi(dirs=[Dir(data, "/data", readonly=False)]))
    inst.run()
    data.read("out.txt")          # what the guest wrote

Nothing touches the host's disk, so there is nothing to escape to: paths are resolved in
the tree, `..` never climbs above the descriptor it starts from, absolute paths are
refused, and symlinks and hard links are not made (`unsupported`, once the request has
passed the checks a host grant makes: a link leading out is `not-permitted`, one into a
read-only grant `read-only`, as on the host). The descriptor class answers the same WIT
methods as a host `Descriptor`, so `wasi:filesystem/types` serves both; WASI 0.3's
descriptor (`_p3_fs.MemoryDescriptor3`) is this class with async methods over the same
tree, so a 0.2 and a 0.3 guest granted one MemoryDir see the same files.
"""

from __future__ import annotations

import stat
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from . import _confine as confine
from ._fs import TYPES, FsError, _datetime, _flag, _flags, _new_time, _type_name, fs_call
from ._io import BytesInputStream, OutputStream, bind_types, types_of

__all__ = ["MemoryDir", "MemoryDescriptor"]

Tree = Mapping[str, Union[bytes, str, "Tree"]]


class _Node:
    mode = 0  # the `st_mode` file type bits a host file of this kind would have

    def __init__(self) -> None:
        now = time.time_ns()
        self.atime = self.mtime = self.ctime = now

    def touch(self) -> None:
        self.mtime = self.ctime = time.time_ns()

    @property
    def size(self) -> int:
        """Bytes of content (a directory has none)."""
        return 0


class _File(_Node):
    mode = stat.S_IFREG

    def __init__(self, data: bytes = b"") -> None:
        super().__init__()
        self.data = bytearray(data)

    @property
    def size(self) -> int:
        return len(self.data)


class _Dir(_Node):
    mode = stat.S_IFDIR

    def __init__(self) -> None:
        super().__init__()
        self.entries: Dict[str, _Node] = {}

    def holds(self, node: _Node) -> bool:
        """Is `node` this directory or anywhere beneath it?"""
        return node is self or any(isinstance(child, _Dir) and child.holds(node) for child in self.entries.values())


def _build(tree: Tree) -> _Dir:
    root = _Dir()
    for name, value in tree.items():
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"MemoryDir: {name!r} is not a file name")
        if isinstance(value, Mapping):
            root.entries[name] = _build(value)
        elif isinstance(value, (bytes, bytearray, str)):
            root.entries[name] = _File(value.encode() if isinstance(value, str) else bytes(value))
        else:
            raise TypeError(f"MemoryDir: {name!r} must be bytes, str or a dict, got {type(value).__name__}")
    return root


class MemoryDir:
    """A directory tree in memory: `{name: bytes | str | {...}}`. Grant it with
    `Dir(memory_dir, "/guest/path", readonly=...)`; read the results with `read`,
    `listdir` and `files()`. One MemoryDir may be granted to several instances: they
    then share its files (access is serialized by a lock)."""

    def __init__(self, files: Optional[Tree] = None) -> None:
        self._root = _build(files or {})
        self.lock = threading.RLock()

    def read(self, path: str) -> bytes:
        node = self._find(path)
        if not isinstance(node, _File):
            raise IsADirectoryError(path)
        return bytes(node.data)

    def listdir(self, path: str = "") -> List[str]:
        node = self._find(path)
        if not isinstance(node, _Dir):
            raise NotADirectoryError(path)
        return sorted(node.entries)

    def files(self) -> Dict[str, bytes]:
        """Every file, by its path inside the tree."""
        out: Dict[str, bytes] = {}

        def walk(node: _Dir, prefix: str) -> None:
            for name, child in sorted(node.entries.items()):
                if isinstance(child, _Dir):
                    walk(child, f"{prefix}{name}/")
                else:
                    out[prefix + name] = bytes(child.data)  # type: ignore[attr-defined]

        with self.lock:
            walk(self._root, "")
        return out

    def _find(self, path: str) -> _Node:
        node: _Node = self._root
        with self.lock:
            for part in [p for p in path.split("/") if p not in ("", ".")]:
                if not isinstance(node, _Dir) or part not in node.entries:
                    raise FileNotFoundError(path)
                node = node.entries[part]
        return node

    def root_descriptor(self, readonly: bool, types: Any, cls: Optional[type] = None) -> "MemoryDescriptor":
        """The preopen of this tree: a `cls` (0.2's `MemoryDescriptor` unless told) bound to `types`."""
        return bind_types((cls or MemoryDescriptor)(self, self._root, readonly, True, not readonly), types)

    def __repr__(self) -> str:
        return f"<MemoryDir with {len(self.files())} files>"


class _MemoryWriter(OutputStream):
    def __init__(self, fs: MemoryDir, node: _File, offset: Optional[int]) -> None:
        self._fs, self._node, self._offset = fs, node, offset

    def write_bytes(self, data: bytes) -> None:
        with self._fs.lock:
            _write_at(self._node, data, self._offset)
            if self._offset is not None:
                self._offset += len(data)


def _write_at(node: _File, data: bytes, at: Optional[int]) -> None:
    """Write `data` at offset `at` (None: at the end), zero-filling a gap."""
    if at is None:
        at = len(node.data)
    if at > len(node.data):
        node.data.extend(bytes(at - len(node.data)))
    node.data[at:at + len(data)] = data
    node.touch()


class MemoryDescriptor:
    """`wasi:filesystem/types.descriptor` of a `MemoryDir` file or directory."""

    def __init__(self, fs: MemoryDir, node: _Node, readonly: bool, readable: bool, writable: bool) -> None:
        self._fs, self._node, self._readonly = fs, node, readonly
        self._readable, self._writable = readable, writable and not readonly

    def _child(self, node: _Node, readable: bool, writable: bool) -> "MemoryDescriptor":
        child = type(self)(self._fs, node, self._readonly, readable, writable)
        return bind_types(child, getattr(self, "_wasi_types", None))

    def _dir(self) -> _Dir:
        if not isinstance(self._node, _Dir):
            raise FsError("not-directory")
        return self._node

    def _file(self) -> _File:
        if not isinstance(self._node, _File):
            raise FsError("is-directory")
        return self._node

    def _mutable(self) -> _Dir:
        d = self._dir()
        if self._readonly:
            raise FsError("read-only")
        return d

    def _walk(self, path: str, parent: bool = False) -> Tuple[_Dir, str]:
        """(the directory holding the last component, the last component)."""
        if path.startswith("/"):
            raise FsError("not-permitted", "absolute path")
        if not path:
            raise FsError("no-entry")  # as openat(dirfd, "")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        stack: List[_Dir] = [self._dir()]
        last = parts.pop() if parts else "."
        for part in parts:
            if part == "..":
                if len(stack) == 1:
                    raise FsError("not-permitted", "path escapes the granted directory")
                stack.pop()
                continue
            node = stack[-1].entries.get(part)
            if node is None:
                raise FsError("no-entry")
            if not isinstance(node, _Dir):
                raise FsError("not-directory")
            stack.append(node)
        if last == "..":
            if len(stack) == 1:
                raise FsError("not-permitted", "path escapes the granted directory")
            stack.pop()
            last = "."
        return stack[-1], last

    def _lookup(self, path: str) -> _Node:
        where, name = self._walk(path)
        if name == ".":
            return where
        node = where.entries.get(name)
        if node is None:
            raise FsError("no-entry")
        return node

    # -- data -------------------------------------------------------------------------------

    @fs_call
    def read_via_stream(self, offset: int) -> Any:
        f = self._readable_file()
        with self._fs.lock:
            data = bytes(f.data[offset:])
        return bind_types(BytesInputStream(data), types_of(self))

    @fs_call
    def write_via_stream(self, offset: int) -> Any:
        self._need_write()
        return bind_types(_MemoryWriter(self._fs, self._file(), offset), types_of(self))

    @fs_call
    def append_via_stream(self) -> Any:
        self._need_write()
        return bind_types(_MemoryWriter(self._fs, self._file(), None), types_of(self))

    def _need_write(self) -> _File:
        f = self._file()
        if not self._writable:
            raise FsError("read-only" if self._readonly else "bad-descriptor")
        return f

    def _readable_file(self) -> _File:
        f = self._file()
        if not self._readable:
            raise FsError("bad-descriptor")
        return f

    @fs_call
    def advise(self, offset: int, length: int, advice: Any) -> None:
        self._file()

    def sync_data(self) -> None:
        pass

    def sync(self) -> None:
        pass

    @fs_call
    def get_flags(self) -> Any:
        is_dir = isinstance(self._node, _Dir)
        names = (["READ"] if self._readable else []) + (["WRITE"] if self._writable and not is_dir else [])
        if is_dir and not self._readonly:
            names.append("MUTATE_DIRECTORY")
        return _flags(self, "descriptor-flags", names)

    @fs_call
    def get_type(self) -> Any:
        return _kind(self, self._node)

    @fs_call
    def set_size(self, size: int) -> None:
        self._need_write()
        with self._fs.lock:
            f = self._file()
            del f.data[size:]
            f.data.extend(bytes(size - len(f.data)))
            f.touch()

    @fs_call
    def set_times(self, atime: Any, mtime: Any) -> None:
        if self._readonly:
            raise FsError("read-only")
        self._node.atime = _new_time(atime, self._node.atime)
        self._node.mtime = _new_time(mtime, self._node.mtime)

    @fs_call
    def read(self, length: int, offset: int) -> Tuple[bytes, bool]:
        f = self._readable_file()
        with self._fs.lock:
            data = bytes(f.data[offset:offset + length])
        return data, offset + len(data) >= len(f.data)

    @fs_call
    def write(self, buffer: bytes, offset: int) -> int:
        self._need_write()
        with self._fs.lock:
            _write_at(self._file(), bytes(buffer), offset)
        return len(buffer)

    @fs_call
    def read_directory(self) -> "_MemoryEntries":
        d = self._dir()
        with self._fs.lock:
            entries = [(name, _kind(self, node)) for name, node in sorted(d.entries.items())]
        return bind_types(_MemoryEntries(entries), getattr(self, "_wasi_types", None))

    # -- paths ------------------------------------------------------------------------------

    @fs_call
    def create_directory_at(self, path: str) -> None:
        self._mutable()
        with self._fs.lock:
            where, name = self._walk(path)
            if name == "." or name in where.entries:
                raise FsError("exist")
            where.entries[name] = _Dir()
            where.touch()

    @fs_call
    def stat(self) -> Any:
        return _stat(self, self._node)

    @fs_call
    def stat_at(self, path_flags: Any, path: str) -> Any:
        with self._fs.lock:
            return _stat(self, self._lookup(path))

    @fs_call
    def set_times_at(self, path_flags: Any, path: str, atime: Any, mtime: Any) -> None:
        self._mutable()
        with self._fs.lock:
            node = self._lookup(path)
            node.atime = _new_time(atime, node.atime)
            node.mtime = _new_time(mtime, node.mtime)

    @fs_call
    def link_at(self, old_path_flags: Any, old_path: str, new_descriptor: Any, new_path: str) -> None:
        if _flag(old_path_flags, "SYMLINK_FOLLOW"):
            raise FsError("invalid", "link-at does not follow symlinks")
        target = self._same_tree(new_descriptor)
        with self._fs.lock:
            self._lookup(old_path)
            target._mutable()
            target._walk(new_path)
        raise FsError("unsupported", "a MemoryDir has no hard links")

    @fs_call
    def open_at(self, path_flags: Any, path: str, open_flags: Any, flags: Any) -> "MemoryDescriptor":
        self._dir()
        read, write = _flag(flags, "READ"), _flag(flags, "WRITE")
        create, directory = _flag(open_flags, "CREATE"), _flag(open_flags, "DIRECTORY")
        exclusive, truncate = _flag(open_flags, "EXCLUSIVE"), _flag(open_flags, "TRUNCATE")
        if self._readonly and (write or create or truncate):
            raise FsError("read-only")
        with self._fs.lock:
            where, name = self._walk(path)
            node = where if name == "." else where.entries.get(name)
            if node is None:
                if not create:
                    raise FsError("no-entry")
                if directory:
                    raise FsError("invalid")
                node = where.entries[name] = _File()
                where.touch()
            elif create and exclusive:
                raise FsError("exist")
            if directory and not isinstance(node, _Dir):
                raise FsError("not-directory")
            if isinstance(node, _Dir) and (write or truncate):
                raise FsError("is-directory")
            if truncate and isinstance(node, _File):
                del node.data[:]
                node.touch()
        return self._child(node, read or not write, write)

    @fs_call
    def readlink_at(self, path: str) -> str:
        self._lookup(path)
        raise FsError("invalid", "not a symlink")

    @fs_call
    def remove_directory_at(self, path: str) -> None:
        self._remove(path, directory=True)

    @fs_call
    def rename_at(self, old_path: str, new_descriptor: Any, new_path: str) -> None:
        self._mutable()
        target = self._same_tree(new_descriptor)
        target._mutable()
        with self._fs.lock:
            src, old = self._walk(old_path)
            dst, new = target._walk(new_path)
            node = src.entries.get(old)
            if node is None:
                raise FsError("no-entry")
            if isinstance(node, _Dir) and node.holds(dst):
                raise FsError("invalid", "a directory cannot move beneath itself")  # as rename(2)
            existing = dst.entries.get(new)
            if isinstance(existing, _Dir) and (existing.entries or not isinstance(node, _Dir)):
                raise FsError("not-empty" if existing.entries else "is-directory")
            if existing is not None and not isinstance(existing, _Dir) and isinstance(node, _Dir):
                raise FsError("not-directory")
            del src.entries[old]
            dst.entries[new] = node

    def _same_tree(self, other: Any) -> "MemoryDescriptor":
        if not isinstance(other, MemoryDescriptor) or other._fs is not self._fs:
            raise FsError("cross-device", "links and renames stay inside one MemoryDir")
        return other

    @fs_call
    def symlink_at(self, old_path: str, new_path: str) -> None:
        self._mutable()
        confine.check_link_target(new_path, old_path)  # a link leading out: not-permitted, as on the host
        with self._fs.lock:
            self._walk(new_path)
        raise FsError("unsupported", "a MemoryDir has no symlinks")

    @fs_call
    def unlink_file_at(self, path: str) -> None:
        self._remove(path, directory=False)

    def _remove(self, path: str, directory: bool) -> None:
        """Remove the entry at `path`: an empty directory, or anything but a directory."""
        self._mutable()
        if not directory and path.endswith("/"):
            raise FsError("not-directory")  # as the host's unlink-file-at
        with self._fs.lock:
            where, name = self._walk(path)
            node = where.entries.get(name)
            if node is None:
                raise FsError("no-entry")
            if directory and not isinstance(node, _Dir):
                raise FsError("not-directory")
            if directory and isinstance(node, _Dir) and node.entries:
                raise FsError("not-empty")
            if not directory and isinstance(node, _Dir):
                raise FsError("is-directory")
            del where.entries[name]

    def is_same_object(self, other: Any) -> bool:
        return isinstance(other, MemoryDescriptor) and other._node is self._node

    @fs_call
    def metadata_hash(self) -> Any:
        return _hash(self, self._node)

    @fs_call
    def metadata_hash_at(self, path_flags: Any, path: str) -> Any:
        with self._fs.lock:
            return _hash(self, self._lookup(path))

    def __repr__(self) -> str:
        return f"<MemoryDescriptor {type(self._node).__name__.strip('_').lower()}>"


class _MemoryEntries:
    """`directory-entry-stream` over a snapshot of a MemoryDir directory."""

    def __init__(self, entries: List[Tuple[str, Any]]) -> None:
        self._entries = list(reversed(entries))

    @fs_call
    def read_directory_entry(self) -> Any:
        if not self._entries:
            return None
        name, kind = self._entries.pop()
        return types_of(self).get(f"{TYPES}#directory-entry")(kind, name)


def _kind(obj: Any, node: _Node) -> Any:
    return types_of(obj).get(f"{TYPES}#descriptor-type")[_type_name(node.mode)]


def _stat(obj: Any, node: _Node) -> Any:
    return types_of(obj).get(f"{TYPES}#descriptor-stat")(
        _kind(obj, node), 1, node.size, _datetime(obj, node.atime), _datetime(obj, node.mtime),
        _datetime(obj, node.ctime))


def _hash(obj: Any, node: _Node) -> Any:
    return types_of(obj).get(f"{TYPES}#metadata-hash-value")(id(node) & ((1 << 64) - 1), 0)
