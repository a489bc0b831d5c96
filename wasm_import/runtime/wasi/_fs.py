"""`wasi:filesystem` (types, preopens) over host directories, confined to each grant.

A `Descriptor` is an open host file or directory plus the grant it came from. Every path
a guest passes is resolved beneath the descriptor by `_confine` (the kernel's `openat2`
where it exists); a read-only grant refuses everything that writes or changes names, and
a descriptor opened read-only can only read (the kernel checks that too: the fd is
opened `O_RDONLY`). Links never cross grants: a hard link from a read-only grant into a
writable one would let the guest write the read-only file.

The WIT methods raise `Err(error-code)` through `fs_call`, which maps `OSError` by errno
and `FsError` by name, so `MemoryDir` (`_memfs`) shares the error handling.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import stat
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from ..._values import Err
from . import _confine as confine
from ._held import Held, held_of
from ._io import FileInputStream, FileOutputStream, IoError, bind_types, types_of

__all__ = ["FsError", "fs_call", "Descriptor", "DirectoryEntryStream", "HostGrant", "error_code_name",
           "error_code", "TYPES"]

TYPES = "wasi:filesystem/types"

_ERRNO_NAMES = {
    "EACCES": "access", "EAGAIN": "would-block", "EALREADY": "already", "EBADF": "bad-descriptor",
    "EBUSY": "busy", "EDEADLK": "deadlock", "EDQUOT": "quota", "EEXIST": "exist", "EFBIG": "file-too-large",
    "EILSEQ": "illegal-byte-sequence", "EINPROGRESS": "in-progress", "EINTR": "interrupted",
    "EINVAL": "invalid", "EIO": "io", "EISDIR": "is-directory", "ELOOP": "loop", "EMLINK": "too-many-links",
    "EMSGSIZE": "message-size", "ENAMETOOLONG": "name-too-long", "ENODEV": "no-device", "ENOENT": "no-entry",
    "ENOLCK": "no-lock", "ENOMEM": "insufficient-memory", "ENOSPC": "insufficient-space",
    "ENOTDIR": "not-directory", "ENOTEMPTY": "not-empty", "ENOTRECOVERABLE": "not-recoverable",
    "ENOTSUP": "unsupported", "EOPNOTSUPP": "unsupported", "ENOTTY": "no-tty", "ENXIO": "no-such-device",
    "EOVERFLOW": "overflow", "EPERM": "not-permitted", "EPIPE": "pipe", "EROFS": "read-only",
    "ESPIPE": "invalid-seek", "ETXTBSY": "text-file-busy", "EXDEV": "cross-device",
}
_BY_ERRNO = {getattr(errno, k): v for k, v in _ERRNO_NAMES.items() if hasattr(errno, k)}


class FsError(Exception):
    """A filesystem failure by WASI error-code name (`"no-entry"`, `"read-only"`, ...)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(message or code)


def error_code_name(e: BaseException) -> str:
    if isinstance(e, FsError):
        return e.code
    if isinstance(e, OSError) and e.errno is not None:
        return _BY_ERRNO.get(e.errno, "io")
    return "io"


def error_code(obj: Any, name: str) -> Any:
    """The `error-code` enum member `name` in the classes `obj` is bound to."""
    cls = types_of(obj).get(f"{TYPES}#error-code")
    return cls[name.replace("-", "_").upper()]


def fs_call(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turn OSError / FsError raised by a descriptor method into `Err(error-code)`."""
    @functools.wraps(method)
    def call(self: Any, *args: Any) -> Any:
        try:
            return method(self, *args)
        except (OSError, FsError) as e:
            raise Err(error_code(self, error_code_name(e))) from None

    return call


def _flag(value: Any, name: str) -> bool:
    """Is member `name` (SHOUTY) set in a WIT flags value?"""
    member = getattr(type(value), name, None)
    return member is not None and bool(value & member)


def _flags(obj: Any, wit: str, names: List[str]) -> Any:
    cls = types_of(obj).get(f"{TYPES}#{wit}")
    value = cls(0)
    for name in names:
        value |= cls[name]
    return value


_FD_LOCK = threading.Lock()


class HostGrant:
    """One granted host directory, as the descriptors opened beneath it share it."""

    def __init__(self, host: str, guest: str, readonly: bool) -> None:
        self.host = host
        self.guest = guest
        self.readonly = readonly


class _Fd:
    """An OS file descriptor shared by a descriptor and the streams made from it;
    closed when the last of them is gone, or when its instance is closed (`_held`):
    then every use fails with EBADF (the guest's `bad-descriptor`), never on a number
    the OS may have handed to another file since."""

    __slots__ = ("fd", "__weakref__")

    def __init__(self, fd: int, held: Optional[Held] = None) -> None:
        self.fd = fd
        if held is not None:
            held.watch(self)

    def fileno(self) -> int:
        if self.fd < 0:
            raise OSError(errno.EBADF, "descriptor closed")
        return self.fd

    def close(self, _close: Callable[[int], None] = os.close, _lock: Any = _FD_LOCK) -> None:
        # os may be gone at exit (defaults bind what is needed); the lock: exactly one of
        # the collector and a closing instance closes the number
        with _lock:
            fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                _close(fd)
            except OSError:
                pass

    __del__ = close


_TYPE_BY_MODE = ((stat.S_ISDIR, "DIRECTORY"), (stat.S_ISREG, "REGULAR_FILE"), (stat.S_ISLNK, "SYMBOLIC_LINK"),
                 (stat.S_ISCHR, "CHARACTER_DEVICE"), (stat.S_ISBLK, "BLOCK_DEVICE"), (stat.S_ISFIFO, "FIFO"),
                 (stat.S_ISSOCK, "SOCKET"))


def _type_name(mode: int) -> str:
    for test, name in _TYPE_BY_MODE:
        if test(mode):
            return name
    return "UNKNOWN"


class Descriptor:
    """`wasi:filesystem/types.descriptor` for a host file or directory."""

    def __init__(self, fd: int, grant: HostGrant, readable: bool, writable: bool, is_dir: bool,
                 types: Any = None) -> None:
        self._fd = _Fd(fd, held_of(types))
        self._grant = grant
        self._readable = readable
        self._writable = writable and not grant.readonly
        self._is_dir = is_dir
        if types is not None:
            bind_types(self, types)

    @classmethod
    def open_grant(cls, grant: HostGrant, types: Any) -> "Descriptor":
        fd = os.open(grant.host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return cls(fd, grant, True, True, True, types)

    def _child(self, fd: int, readable: bool, writable: bool) -> "Descriptor":
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        return type(self)(fd, self._grant, readable, writable, is_dir, getattr(self, "_wasi_types", None))

    # -- checks ---------------------------------------------------------------------------

    def _dir(self) -> int:
        if not self._is_dir:
            raise FsError("not-directory")
        return self._fd.fileno()

    def _file(self) -> int:
        if self._is_dir:
            raise FsError("is-directory")
        return self._fd.fileno()

    def _mutable_dir(self) -> int:
        fd = self._dir()
        if self._grant.readonly:
            raise FsError("read-only", "the directory is granted read-only")
        return fd

    def _need_write(self) -> int:
        fd = self._file()
        if not self._writable:
            raise FsError("bad-descriptor" if not self._grant.readonly else "read-only")
        return fd

    def _same_grant(self, other: Any) -> "Descriptor":
        if not isinstance(other, Descriptor) or other._grant is not self._grant:
            raise FsError("cross-device", "links and renames stay inside one granted directory")
        return other

    # -- streams and data -------------------------------------------------------------------

    @fs_call
    def read_via_stream(self, offset: int) -> Any:
        self._file()
        if not self._readable:
            raise FsError("bad-descriptor")
        return bind_types(FileInputStream(self._fd, offset), types_of(self))

    @fs_call
    def write_via_stream(self, offset: int) -> Any:
        self._need_write()
        return bind_types(FileOutputStream(self._fd, offset), types_of(self))

    @fs_call
    def append_via_stream(self) -> Any:
        self._need_write()
        return bind_types(FileOutputStream(self._fd, append=True), types_of(self))

    @fs_call
    def advise(self, offset: int, length: int, advice: Any) -> None:
        self._file()

    @fs_call
    def sync_data(self) -> None:
        fd = self._fd.fileno()
        if self._writable:
            (getattr(os, "fdatasync", None) or os.fsync)(fd)

    @fs_call
    def sync(self) -> None:
        if self._writable:
            os.fsync(self._fd.fileno())

    @fs_call
    def get_flags(self) -> Any:
        names = (["READ"] if self._readable else []) + (["WRITE"] if self._writable and not self._is_dir else [])
        if self._is_dir and not self._grant.readonly:
            names.append("MUTATE_DIRECTORY")
        return _flags(self, "descriptor-flags", names)

    @fs_call
    def get_type(self) -> Any:
        return types_of(self).get(f"{TYPES}#descriptor-type")[_type_name(os.fstat(self._fd.fileno()).st_mode)]

    @fs_call
    def set_size(self, size: int) -> None:
        os.ftruncate(self._need_write(), size)

    @fs_call
    def set_times(self, atime: Any, mtime: Any) -> None:
        if self._grant.readonly:
            raise FsError("read-only")
        fd = self._fd.fileno()
        os.utime(fd, ns=_new_times(os.fstat(fd), atime, mtime))

    @fs_call
    def read(self, length: int, offset: int) -> Tuple[bytes, bool]:
        fd = self._file()
        if not self._readable:
            raise FsError("bad-descriptor")
        data = os.pread(fd, min(length, 1 << 24), offset)
        return data, len(data) < length

    @fs_call
    def write(self, buffer: bytes, offset: int) -> int:
        return os.pwrite(self._need_write(), buffer, offset)

    @fs_call
    def read_directory(self) -> "DirectoryEntryStream":
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self._dir())
        return DirectoryEntryStream(fd, self)

    # -- paths ----------------------------------------------------------------------------

    @fs_call
    def create_directory_at(self, path: str) -> None:
        parent, name = confine.open_parent(self._mutable_dir(), path)
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
        finally:
            os.close(parent)

    @fs_call
    def stat(self) -> Any:
        return _stat_record(self, os.fstat(self._fd.fileno()))

    @fs_call
    def stat_at(self, path_flags: Any, path: str) -> Any:
        fd = confine.open_beneath(self._dir(), path, _O_PATH, follow=_flag(path_flags, "SYMLINK_FOLLOW"))
        try:
            return _stat_record(self, os.fstat(fd))
        finally:
            os.close(fd)

    @fs_call
    def set_times_at(self, path_flags: Any, path: str, atime: Any, mtime: Any) -> None:
        fd = confine.open_beneath(self._mutable_dir(), path, os.O_RDONLY,
                                  follow=_flag(path_flags, "SYMLINK_FOLLOW"))
        try:
            os.utime(fd, ns=_new_times(os.fstat(fd), atime, mtime))
        finally:
            os.close(fd)

    @fs_call
    def link_at(self, old_path_flags: Any, old_path: str, new_descriptor: Any, new_path: str) -> None:
        if _flag(old_path_flags, "SYMLINK_FOLLOW"):
            raise FsError("invalid", "link-at does not follow symlinks")
        target = self._same_grant(new_descriptor)
        old_parent, old_name = confine.open_parent(self._dir(), old_path)
        try:
            if stat.S_ISLNK(os.stat(old_name, dir_fd=old_parent, follow_symlinks=False).st_mode):
                # a hard link to a symlink is a second symlink: its target must stay inside too
                confine.check_link_target(new_path, os.readlink(old_name, dir_fd=old_parent))
            new_parent, new_name = confine.open_parent(target._mutable_dir(), new_path)
            try:
                os.link(old_name, new_name, src_dir_fd=old_parent, dst_dir_fd=new_parent, follow_symlinks=False)
            finally:
                os.close(new_parent)
        finally:
            os.close(old_parent)

    @fs_call
    def open_at(self, path_flags: Any, path: str, open_flags: Any, flags: Any) -> "Descriptor":
        dirfd = self._dir()
        read, write = _flag(flags, "READ"), _flag(flags, "WRITE")
        create, directory = _flag(open_flags, "CREATE"), _flag(open_flags, "DIRECTORY")
        exclusive, truncate = _flag(open_flags, "EXCLUSIVE"), _flag(open_flags, "TRUNCATE")
        if self._grant.readonly and (write or create or truncate):
            raise FsError("read-only", "the directory is granted read-only")
        os_flags = (os.O_RDWR if read and write else os.O_WRONLY if write else os.O_RDONLY)
        os_flags |= ((os.O_CREAT if create else 0) | (os.O_EXCL if exclusive else 0)
                     | (os.O_TRUNC if truncate else 0) | (os.O_DIRECTORY if directory else 0))
        fd = confine.open_beneath(dirfd, path, os_flags | os.O_NONBLOCK, 0o666,
                                  follow=_flag(path_flags, "SYMLINK_FOLLOW"))
        try:
            os.set_blocking(fd, True)
            return self._child(fd, read or not write, write)
        except BaseException:
            os.close(fd)
            raise

    @fs_call
    def readlink_at(self, path: str) -> str:
        parent, name = confine.open_parent(self._dir(), path)
        try:
            return os.readlink(name, dir_fd=parent)
        finally:
            os.close(parent)

    @fs_call
    def remove_directory_at(self, path: str) -> None:
        parent, name = confine.open_parent(self._mutable_dir(), path)
        try:
            os.rmdir(name, dir_fd=parent)
        finally:
            os.close(parent)

    @fs_call
    def rename_at(self, old_path: str, new_descriptor: Any, new_path: str) -> None:
        target = self._same_grant(new_descriptor)
        old_parent, old_name = confine.open_parent(self._mutable_dir(), old_path)
        try:
            new_parent, new_name = confine.open_parent(target._mutable_dir(), new_path)
            try:
                os.rename(old_name, new_name, src_dir_fd=old_parent, dst_dir_fd=new_parent)
            finally:
                os.close(new_parent)
        finally:
            os.close(old_parent)

    @fs_call
    def symlink_at(self, old_path: str, new_path: str) -> None:
        dirfd = self._mutable_dir()
        confine.check_link_target(new_path, old_path)
        parent, name = confine.open_parent(dirfd, new_path)
        try:
            os.symlink(old_path, name, dir_fd=parent)
        finally:
            os.close(parent)

    @fs_call
    def unlink_file_at(self, path: str) -> None:
        parent, name = confine.open_parent(self._mutable_dir(), path)
        try:
            if path.endswith("/"):
                raise FsError("not-directory")
            os.unlink(name, dir_fd=parent)
        finally:
            os.close(parent)

    def is_same_object(self, other: Any) -> bool:
        if not isinstance(other, Descriptor):
            return False
        a, b = os.fstat(self._fd.fileno()), os.fstat(other._fd.fileno())
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    @fs_call
    def metadata_hash(self) -> Any:
        return _hash_record(self, os.fstat(self._fd.fileno()))

    @fs_call
    def metadata_hash_at(self, path_flags: Any, path: str) -> Any:
        fd = confine.open_beneath(self._dir(), path, _O_PATH, follow=_flag(path_flags, "SYMLINK_FOLLOW"))
        try:
            return _hash_record(self, os.fstat(fd))
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<Descriptor in grant {self._grant.guest!r}>"


_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)


class DirectoryEntryStream:
    """`wasi:filesystem/types.directory-entry-stream` over a host directory."""

    def __init__(self, fd: int, owner: Descriptor) -> None:
        self._wasi_types = getattr(owner, "_wasi_types", None)
        self._fd = _Fd(fd, held_of(self._wasi_types))
        self._entries: Optional[List[Tuple[str, str]]] = None

    def _load(self) -> List[Tuple[str, str]]:
        if self._entries is None:
            entries = []
            with os.scandir(self._fd.fileno()) as it:
                for entry in it:
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        mode = 0
                    entries.append((entry.name, _type_name(mode)))
            entries.sort(reverse=True)
            self._entries = entries
        return self._entries

    @fs_call
    def read_directory_entry(self) -> Any:
        entries = self._load()
        if not entries:
            return None
        name, kind = entries.pop()
        types = types_of(self)
        entry_cls = types.get(f"{TYPES}#directory-entry")
        return entry_cls(types.get(f"{TYPES}#descriptor-type")[kind], name)


def _datetime(obj: Any, ns: int) -> Any:
    cls = types_of(obj).get(f"{TYPES}#datetime")
    return cls(ns // 1_000_000_000, ns % 1_000_000_000)


def _stat_record(obj: Any, st: os.stat_result) -> Any:
    types = types_of(obj)
    kind = types.get(f"{TYPES}#descriptor-type")[_type_name(st.st_mode)]
    return types.get(f"{TYPES}#descriptor-stat")(
        kind, st.st_nlink, st.st_size, _datetime(obj, st.st_atime_ns), _datetime(obj, st.st_mtime_ns),
        _datetime(obj, st.st_ctime_ns))


def _hash_record(obj: Any, st: os.stat_result) -> Any:
    digest = hashlib.blake2b(f"{st.st_dev}:{st.st_ino}".encode(), digest_size=16).digest()
    return types_of(obj).get(f"{TYPES}#metadata-hash-value")(int.from_bytes(digest[:8], "little"),
                                                               int.from_bytes(digest[8:], "little"))


def _new_times(st: os.stat_result, atime: Any, mtime: Any) -> Tuple[int, int]:
    return _new_time(atime, st.st_atime_ns), _new_time(mtime, st.st_mtime_ns)


def _new_time(value: Any, current: int) -> int:
    """A `new-timestamp` variant value as nanoseconds (case classes end in their name)."""
    name = type(value).__name__
    if name.endswith("NoChange"):
        return current
    if name.endswith("Now"):
        return time.time_ns()
    when = value.value
    return when.seconds * 1_000_000_000 + when.nanoseconds


def filesystem_error_code(obj: Any, err: Any) -> Any:
    """`filesystem-error-code(err)`: the error-code an `IoError` from a file stream carries."""
    code = getattr(err, "code", None) if isinstance(err, IoError) else None
    if code is None:
        return None
    name = _BY_ERRNO.get(code, "io") if isinstance(code, int) else str(code)
    try:
        return error_code(obj, name)
    except KeyError:
        return None
