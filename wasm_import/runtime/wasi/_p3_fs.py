"""`wasi:filesystem` 0.3 (types, preopens) over host directories and `MemoryDir`s,
confined as 0.2's are.

0.3's `descriptor` is 0.2's with `async func` methods, streams instead of `wasi:io`
(`read-via-stream` gives a `stream<u8>` and a future of how reading ended; the write
side takes the guest's `stream<u8>` and answers with a future), `read-directory` as a
`stream<directory-entry>`, and variants where 0.2 had enums (`descriptor-type`,
`error-code`, both with an `other` case). So `Descriptor3` *is* 0.2's `Descriptor`
(`_fs`): the same grant checks and the same kernel-enforced confinement (`_confine`:
`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, else the `O_NOFOLLOW` walk),
the same refusals (a read-only grant refuses every write and name change, links and
renames never cross grants, a symlink whose target would lead outside is not made).
Only the shapes change: each 0.2 method body is reused as is and its failure becomes a
0.3 `error-code` here.

The operations run on the event loop's thread: they are short system calls on local
files. Reading or writing a stream of a file that is not a regular one (a FIFO, a
device: reads that may block for ever) is done on a daemon thread instead.

Preopens are the `Wasi(dirs=[Dir(...)])` grants, exactly as for 0.2, a `MemoryDir` among
them: `MemoryDescriptor3` is 0.2's `MemoryDescriptor` (`_memfs`) made async the same way,
over the same node tree, so its paths, refusals and error codes are 0.2's, and a 0.2 and
a 0.3 guest granted one MemoryDir share its files. What differs between the two kinds of
descriptor (how a chunk is read or written, what a directory lists, what a stat says) is
four small hooks; the streams, listings and stat records built on them are `_Async3`'s.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat as _stat
import types as _types
from typing import Any, Awaitable, Callable, List, NamedTuple, Optional, Tuple

from ..._values import Err, Ok
from ._context import WasiContext, register_interface
from . import _confine as confine
from ._fs import _O_PATH, TYPES, Descriptor, FsError, HostGrant, _flag, _type_name, error_code_name
from ._io import WitTypes, types_of
from ._memfs import MemoryDescriptor, _write_at
from ._p3_streams import Pumped, in_thread, outcome_future, settle

__all__ = ["Descriptor3", "MemoryDescriptor3", "error_code3"]

P3 = "0.3"
_CHUNK = 1 << 16


def _ns(**members: Any) -> Any:
    return _types.SimpleNamespace(**members)


def error_code3(types: WitTypes, name: str) -> Any:
    """The 0.3 `error-code` value for 0.2's error name (`"no-entry"`, ...)."""
    try:
        return types.case(f"{TYPES}#error-code", name)()
    except KeyError:
        return types.case(f"{TYPES}#error-code", "other")(name)


def _failure(obj: Any, e: BaseException) -> Err:
    return Err(error_code3(types_of(obj), error_code_name(e)))


def _descriptor_type(types: WitTypes, mode: int) -> Any:
    name = _type_name(mode)
    if name == "UNKNOWN":
        return types.case(f"{TYPES}#descriptor-type", "other")(None)
    return types.case(f"{TYPES}#descriptor-type", name.lower().replace("_", "-"))()


class _Meta(NamedTuple):
    """What a 0.3 `descriptor-stat` says, from a host `stat` or a MemoryDir node."""

    mode: int
    nlink: int
    size: int
    atime: int
    mtime: int
    ctime: int


def _host_meta(st: os.stat_result) -> _Meta:
    return _Meta(st.st_mode, st.st_nlink, st.st_size, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)


def _stat_record(types: WitTypes, meta: _Meta) -> Any:
    instant = types.get(f"{TYPES}#instant")

    def when(ns: int) -> Any:
        return instant(ns // 1_000_000_000, ns % 1_000_000_000)

    return types.get(f"{TYPES}#descriptor-stat")(
        _descriptor_type(types, meta.mode), meta.nlink, meta.size, when(meta.atime), when(meta.mtime),
        when(meta.ctime))


def _reuse(base: type, name: str) -> Callable[..., Any]:
    """0.2's `base.<name>` body as a 0.3 `async func` method."""
    found = getattr(base, name)
    body = getattr(found, "__wrapped__", found)  # without 0.2's error mapping (fs_call)

    async def method(self: Any, *args: Any) -> Any:
        try:
            return body(self, *args)
        except (OSError, FsError) as e:
            raise _failure(self, e) from None

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`{name.replace('_', '-')}`: 0.2's, as an `async func`."
    return method


_REUSED = ("advise", "sync_data", "sync", "get_flags", "set_size", "set_times", "create_directory_at",
           "set_times_at", "link_at", "open_at", "readlink_at", "remove_directory_at", "rename_at", "symlink_at",
           "unlink_file_at", "metadata_hash", "metadata_hash_at")


def _async_from(base: type) -> Callable[[type], type]:
    """Class decorator: every 0.2 method of `base` 0.3 keeps as it is, as an `async func`."""
    def decorate(cls: type) -> type:
        for name in _REUSED:
            setattr(cls, name, _reuse(base, name))
        return cls

    return decorate


def _read_at(fd: int, offset: int) -> bytes:
    """Up to a chunk at `offset`; a FIFO or device has no offsets: it is read as it comes."""
    try:
        return os.pread(fd, _CHUNK, offset)
    except OSError as e:
        if e.errno != errno.ESPIPE:
            raise
        return os.read(fd, _CHUNK)


class _Async3:
    """What a 0.3 descriptor does alike over a host fd or a MemoryDir node: file contents
    as streams, listings as a stream of entries, stat records. Subclasses say how through
    the hooks; each checks the descriptor (a file? readable? writable?) when called, so a
    refusal reaches the guest through the future beside the stream."""

    def _reader3(self) -> Callable[[int], Awaitable[bytes]]:
        """`read(offset)`: up to a chunk of the file there (b"" at its end)."""
        raise NotImplementedError

    def _writer3(self) -> Callable[[memoryview, Optional[int]], Awaitable[int]]:
        """`write(view, offset)`: how many bytes of `view` went in at `offset` (None: at the end)."""
        raise NotImplementedError

    def _listing3(self) -> List[Tuple[str, int]]:
        """The directory's entries: (name, st_mode), sorted by name."""
        raise NotImplementedError

    def _meta3(self, at: Optional[Tuple[Any, str]] = None) -> _Meta:
        """This descriptor's metadata, or (with `(path_flags, path)`) that of a path beneath it."""
        raise NotImplementedError

    def read_via_stream(self, offset: int) -> Tuple[Any, Any]:
        done = outcome_future()

        async def fill(out: Pumped) -> None:
            try:
                read = self._reader3()
                at = offset
                while not out.gone:
                    data = await read(at)
                    if not data:
                        break
                    at += len(data)
                    await out.write(data)
            except (OSError, FsError) as e:
                settle(done, _failure(self, e))
            finally:
                settle(done, Ok(None))

        return Pumped(fill), done

    async def _write_from(self, data: Any, offset: Optional[int]) -> Any:
        """Copy the guest's stream `data` into the file at `offset` (None: append)."""
        try:
            write = self._writer3()
            at = offset
            async for chunk in data:
                view = memoryview(chunk)
                while view:
                    n = await write(view, at)
                    view = view[n:]
                    if at is not None:
                        at += n
            return Ok(None)
        except (OSError, FsError) as e:
            data.close()
            return _failure(self, e)

    def write_via_stream(self, data: Any, offset: int) -> Any:
        return self._write_from(data, offset)

    def append_via_stream(self, data: Any) -> Any:
        return self._write_from(data, None)

    def read_directory(self) -> Tuple[Any, Any]:
        done = outcome_future()
        types = types_of(self)

        async def fill(out: Pumped) -> None:
            try:
                make = types.get(f"{TYPES}#directory-entry")
                for name, mode in self._listing3():
                    if out.gone:
                        break
                    await out.write([make(_descriptor_type(types, mode), name)])
            except (OSError, FsError) as e:
                settle(done, _failure(self, e))
            finally:
                settle(done, Ok(None))

        return Pumped(fill), done

    async def get_type(self) -> Any:
        try:
            return _descriptor_type(types_of(self), self._meta3().mode)
        except (OSError, FsError) as e:
            raise _failure(self, e) from None

    async def stat(self) -> Any:
        try:
            return _stat_record(types_of(self), self._meta3())
        except (OSError, FsError) as e:
            raise _failure(self, e) from None

    async def stat_at(self, path_flags: Any, path: str) -> Any:
        try:
            return _stat_record(types_of(self), self._meta3((path_flags, path)))
        except (OSError, FsError) as e:
            raise _failure(self, e) from None


@_async_from(Descriptor)
class Descriptor3(_Async3, Descriptor):
    """`wasi:filesystem/types.descriptor` of 0.3: 0.2's descriptor, async."""

    def _io(self, fd: int, call: Callable[[], Any]) -> Any:
        """Run a read or write: inline for a regular file, on a thread otherwise."""
        if _stat.S_ISREG(os.fstat(fd).st_mode):
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(call())
            return fut
        return in_thread(call, "wasi 0.3 file io")

    def _reader3(self) -> Callable[[int], Awaitable[bytes]]:
        self._file()
        if not self._readable:
            raise FsError("bad-descriptor")

        def read(at: int) -> Awaitable[bytes]:
            fd = self._fd.fileno()  # afresh each time: the instance may have been closed meanwhile
            return self._io(fd, lambda: _read_at(fd, at))

        return read

    def _writer3(self) -> Callable[[memoryview, Optional[int]], Awaitable[int]]:
        self._need_write()

        def write(view: memoryview, at: Optional[int]) -> Awaitable[int]:
            fd = self._fd.fileno()
            where = os.fstat(fd).st_size if at is None else at
            return self._io(fd, lambda: os.pwrite(fd, view, where))

        return write

    def _listing3(self) -> List[Tuple[str, int]]:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self._dir())
        try:
            with os.scandir(fd) as it:
                entries = []
                for entry in it:
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        mode = 0
                    entries.append((entry.name, mode))
        finally:
            os.close(fd)
        return sorted(entries)

    def _meta3(self, at: Optional[Tuple[Any, str]] = None) -> _Meta:
        if at is None:
            return _host_meta(os.fstat(self._fd.fileno()))
        path_flags, path = at
        fd = confine.open_beneath(self._dir(), path, _O_PATH, follow=_flag(path_flags, "SYMLINK_FOLLOW"))
        try:
            return _host_meta(os.fstat(fd))
        finally:
            os.close(fd)

    async def is_same_object(self, other: Any) -> bool:  # type: ignore[override]  # async in 0.3
        return Descriptor.is_same_object(self, other)

    def __repr__(self) -> str:
        return f"<Descriptor (wasi 0.3) in grant {self._grant.guest!r}>"


@_async_from(MemoryDescriptor)
class MemoryDescriptor3(_Async3, MemoryDescriptor):
    """`wasi:filesystem/types.descriptor` of 0.3 over a `MemoryDir`: 0.2's, async."""

    def _reader3(self) -> Callable[[int], Awaitable[bytes]]:
        f, lock = self._readable_file(), self._fs.lock

        async def read(at: int) -> bytes:
            with lock:
                return bytes(f.data[at:at + _CHUNK])

        return read

    def _writer3(self) -> Callable[[memoryview, Optional[int]], Awaitable[int]]:
        f, lock = self._need_write(), self._fs.lock

        async def write(view: memoryview, at: Optional[int]) -> int:
            with lock:
                _write_at(f, bytes(view), at)
            return len(view)

        return write

    def _listing3(self) -> List[Tuple[str, int]]:
        d = self._dir()
        with self._fs.lock:
            return [(name, node.mode) for name, node in sorted(d.entries.items())]

    def _meta3(self, at: Optional[Tuple[Any, str]] = None) -> _Meta:
        with self._fs.lock:
            node = self._node if at is None else self._lookup(at[1])
            return _Meta(node.mode, 1, node.size, node.atime, node.mtime, node.ctime)  # type: ignore[attr-defined]

    async def is_same_object(self, other: Any) -> bool:  # type: ignore[override]  # async in 0.3
        return MemoryDescriptor.is_same_object(self, other)

    def __repr__(self) -> str:
        return f"<MemoryDescriptor (wasi 0.3) {type(self._node).__name__.strip('_').lower()}>"


# -- registration ----------------------------------------------------------------------------------

def _preopens(ctx: WasiContext) -> List[Tuple[Any, str]]:
    """The instance's `Dir` grants as 0.3 descriptors (made once per instance)."""
    found = ctx.__dict__.get("_p3_preopens")
    if found is None:
        found = []
        for d in ctx.wasi.dirs:
            root_descriptor = getattr(d.host, "root_descriptor", None)  # a MemoryDir
            if root_descriptor is not None:
                found.append((root_descriptor(d.readonly, ctx.types_p3, MemoryDescriptor3), d.guest))
                continue
            host = os.fspath(d.host)
            if not os.path.isdir(host):
                raise FileNotFoundError(f"Wasi.dirs: {host!r} is not a directory")
            found.append((Descriptor3.open_grant(HostGrant(host, d.guest, d.readonly), ctx.types_p3), d.guest))
        ctx.__dict__["_p3_preopens"] = found
    return found


def _preopens_provider(ctx: WasiContext, iface: Any) -> Any:
    directories = _preopens(ctx)
    return _ns(get_directories=lambda: list(directories))


register_interface(TYPES, lambda ctx, iface: _ns(Descriptor=Descriptor3), P3)
register_interface("wasi:filesystem/preopens", _preopens_provider, P3)
