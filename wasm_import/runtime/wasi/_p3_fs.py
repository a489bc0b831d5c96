"""`wasi:filesystem` 0.3 (types, preopens) over host directories, confined as 0.2's is.

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

Preopens are the `Wasi(dirs=[Dir(...)])` grants, exactly as for 0.2. A `MemoryDir` grant
is not served to 0.3 yet: an instance importing `wasi:filesystem/preopens@0.3.x` with
one is refused when made, with a message saying so.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat as _stat
import types as _types
from typing import Any, AsyncIterator, Callable, List, Optional, Tuple

from ..._values import Err, Ok
from ._context import WasiContext, register_interface
from ._fs import TYPES, Descriptor, FsError, HostGrant, _type_name, error_code_name
from ._io import WitTypes, types_of
from ._p3_streams import Pumped, in_thread, outcome_future, settle

__all__ = ["Descriptor3", "error_code3"]

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


def _reuse(name: str) -> Callable[..., Any]:
    """0.2's `Descriptor.<name>` body as a 0.3 `async func` method."""
    body = getattr(Descriptor, name).__wrapped__  # without 0.2's error mapping (fs_call)

    async def method(self: "Descriptor3", *args: Any) -> Any:
        try:
            return body(self, *args)
        except (OSError, FsError) as e:
            raise _failure(self, e) from None

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`{name.replace('_', '-')}`: 0.2's, as an `async func`."
    return method


def _read_at(fd: int, offset: int) -> bytes:
    """Up to a chunk at `offset`; a FIFO or device has no offsets: it is read as it comes."""
    try:
        return os.pread(fd, _CHUNK, offset)
    except OSError as e:
        if e.errno != errno.ESPIPE:
            raise
        return os.read(fd, _CHUNK)


class Descriptor3(Descriptor):
    """`wasi:filesystem/types.descriptor` of 0.3: 0.2's descriptor, async."""

    def _child(self, fd: int, readable: bool, writable: bool) -> "Descriptor3":
        child = Descriptor3(fd, self._grant, readable, writable, _stat.S_ISDIR(os.fstat(fd).st_mode))
        child._wasi_types = getattr(self, "_wasi_types", None)
        return child

    def _io(self, fd: int, call: Callable[[], Any]) -> Any:
        """Run a read or write: inline for a regular file, on a thread otherwise."""
        if _stat.S_ISREG(os.fstat(fd).st_mode):
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(call())
            return fut
        return in_thread(call, "wasi 0.3 file io")

    # -- streams ------------------------------------------------------------------------------

    def read_via_stream(self, offset: int) -> Tuple[Any, Any]:
        done = outcome_future()

        async def fill(out: Pumped) -> None:
            try:
                fd = self._file()
                if not self._readable:
                    raise FsError("bad-descriptor")
                at = offset
                while not out.gone:
                    data = await self._io(fd, lambda: _read_at(fd, at))
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
            fd = self._need_write()
            at = offset
            async for chunk in data:
                view = memoryview(chunk)
                while view:
                    where = os.fstat(fd).st_size if at is None else at
                    n = await self._io(fd, lambda: os.pwrite(fd, view, where))
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
                make = types.get(f"{TYPES}#directory-entry")
                for name, mode in sorted(entries):
                    if out.gone:
                        break
                    await out.write([make(_descriptor_type(types, mode), name)])
            except (OSError, FsError) as e:
                settle(done, _failure(self, e))
            finally:
                settle(done, Ok(None))

        return Pumped(fill), done

    # -- the async funcs ------------------------------------------------------------------------

    advise = _reuse("advise")
    sync_data = _reuse("sync_data")
    sync = _reuse("sync")
    get_flags = _reuse("get_flags")
    set_size = _reuse("set_size")
    set_times = _reuse("set_times")
    create_directory_at = _reuse("create_directory_at")
    set_times_at = _reuse("set_times_at")
    link_at = _reuse("link_at")
    open_at = _reuse("open_at")
    readlink_at = _reuse("readlink_at")
    remove_directory_at = _reuse("remove_directory_at")
    rename_at = _reuse("rename_at")
    symlink_at = _reuse("symlink_at")
    unlink_file_at = _reuse("unlink_file_at")
    metadata_hash = _reuse("metadata_hash")
    metadata_hash_at = _reuse("metadata_hash_at")

    async def get_type(self) -> Any:
        try:
            return _descriptor_type(types_of(self), os.fstat(self._fd.fileno()).st_mode)
        except OSError as e:
            raise _failure(self, e) from None

    async def stat(self) -> Any:
        try:
            return _stat_record(types_of(self), os.fstat(self._fd.fileno()))
        except OSError as e:
            raise _failure(self, e) from None

    async def stat_at(self, path_flags: Any, path: str) -> Any:
        try:
            return _stat_record(types_of(self), _stat_beneath(self, path_flags, path))
        except (OSError, FsError) as e:
            raise _failure(self, e) from None

    async def is_same_object(self, other: Any) -> bool:
        return Descriptor.is_same_object(self, other)

    def __repr__(self) -> str:
        return f"<Descriptor (wasi 0.3) in grant {self._grant.guest!r}>"


def _stat_beneath(d: Descriptor3, path_flags: Any, path: str) -> os.stat_result:
    from . import _confine as confine
    from ._fs import _O_PATH, _flag

    fd = confine.open_beneath(d._dir(), path, _O_PATH, follow=_flag(path_flags, "SYMLINK_FOLLOW"))
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _stat_record(types: WitTypes, st: os.stat_result) -> Any:
    instant = types.get(f"{TYPES}#instant")

    def when(ns: int) -> Any:
        return instant(ns // 1_000_000_000, ns % 1_000_000_000)

    return types.get(f"{TYPES}#descriptor-stat")(
        _descriptor_type(types, st.st_mode), st.st_nlink, st.st_size, when(st.st_atime_ns),
        when(st.st_mtime_ns), when(st.st_ctime_ns))


# -- registration ----------------------------------------------------------------------------------

def _preopens(ctx: WasiContext) -> List[Tuple[Descriptor3, str]]:
    """The instance's `Dir` grants as 0.3 descriptors (made once per instance)."""
    found = ctx.__dict__.get("_p3_preopens")
    if found is None:
        found = []
        for d in ctx.wasi.dirs:
            if getattr(d.host, "root_descriptor", None) is not None:
                raise NotImplementedError(
                    f"Wasi.dirs: the MemoryDir granted at {d.guest!r} is not served to WASI 0.3's "
                    "wasi:filesystem yet; grant a host directory instead")
            host = os.fspath(d.host)
            if not os.path.isdir(host):
                raise FileNotFoundError(f"Wasi.dirs: {host!r} is not a directory")
            fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            found.append((Descriptor3(fd, HostGrant(host, d.guest, d.readonly), True, True, True,
                                      ctx.types_p3), d.guest))
        ctx.__dict__["_p3_preopens"] = found
    return found


def _preopens_provider(ctx: WasiContext, iface: Any) -> Any:
    directories = _preopens(ctx)
    return _ns(get_directories=lambda: list(directories))


register_interface(TYPES, lambda ctx, iface: _ns(Descriptor=Descriptor3), P3)
register_interface("wasi:filesystem/preopens", _preopens_provider, P3)
