"""Opening paths beneath a directory, so a guest can never reach outside its grant.

On Linux the kernel enforces it: `openat2(dirfd, path, how)` with `RESOLVE_BENEATH |
RESOLVE_NO_MAGICLINKS` fails with EXDEV for any path (`..`, an absolute path, a symlink
met on the way, however relative) that would leave `dirfd`, and refuses `/proc` magic
links. Elsewhere (or on kernels before 5.6) the path is walked one component at a time
with `O_NOFOLLOW`, symlinks expanded by hand, and `..` never allowed above the start.

Operations that create or remove a name (mkdir, unlink, rename, symlink, link) open the
*parent* beneath the directory and then act on the last component alone with the `*at`
system calls, which never follow a symlink in that component. A new symlink's target is
checked lexically: it must be relative and stay beneath the directory from where the link
sits, so nothing on the host that later follows it leaves the grant either.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from typing import List, Optional, Tuple

__all__ = ["open_beneath", "open_parent", "check_link_target", "escape_error", "use_openat2"]

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_MAX_LINKS = 40


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _load_syscall():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    return fn


_syscall = _load_syscall()
use_openat2 = _syscall is not None  # set False when the kernel lacks it (or to test the walk)


def escape_error(path: str) -> PermissionError:
    """The error for a path that would leave its directory (WASI `not-permitted`)."""
    return PermissionError(errno.EPERM, "path escapes the granted directory", path)


def _check_path(path: str) -> None:
    if path.startswith("/"):
        raise escape_error(path)
    if "\0" in path:
        raise OSError(errno.EINVAL, "path contains a NUL byte", path)


def open_beneath(dirfd: int, path: str, flags: int, mode: int = 0o666, follow: bool = True) -> int:
    """`openat(dirfd, path, flags)` that cannot leave `dirfd`; a symlink in the last
    component is followed only when `follow`. Returns a new fd (O_CLOEXEC)."""
    _check_path(path)
    flags |= os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    if not path:
        raise FileNotFoundError(errno.ENOENT, "empty path", path)
    global use_openat2
    if use_openat2:
        tmpfile = getattr(os, "O_TMPFILE", -1)  # (its bits include O_DIRECTORY's)
        creates = flags & os.O_CREAT or flags & tmpfile == tmpfile
        how = _OpenHow(flags, mode if creates else 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
        encoded = os.fsencode(path)
        while True:
            fd = _syscall(_SYS_OPENAT2, dirfd, encoded, ctypes.byref(how), ctypes.sizeof(how))  # type: ignore[misc]
            if fd >= 0:
                return int(fd)
            err = ctypes.get_errno()
            if err == errno.EAGAIN:  # a concurrent rename raced the lookup: try again
                continue
            if err == errno.ENOSYS:
                use_openat2 = False
                break
            if err == errno.EXDEV:
                raise escape_error(path)
            raise OSError(err, os.strerror(err), path)
    return _walk(dirfd, path, flags, mode)


def _walk(dirfd: int, path: str, flags: int, mode: int) -> int:
    """The portable path: one component at a time with O_NOFOLLOW."""
    follow_last = not flags & os.O_NOFOLLOW
    parts: List[str] = [p for p in path.split("/") if p not in ("", ".")]
    trailing_slash = path.endswith("/")
    stack: List[int] = []  # fds opened below dirfd (dirfd itself is not ours to close)
    links = 0
    try:
        if not parts:
            return os.open(".", flags & ~os.O_NOFOLLOW, mode, dir_fd=dirfd)
        while parts:
            name = parts.pop(0)
            top = stack[-1] if stack else dirfd
            last = not parts
            if name == "..":
                if not stack:
                    raise escape_error(path)
                os.close(stack.pop())
                if last:
                    return os.open(".", flags & ~os.O_NOFOLLOW, mode, dir_fd=stack[-1] if stack else dirfd)
                continue
            if last:
                want = flags | os.O_NOFOLLOW | (os.O_DIRECTORY if trailing_slash else 0)
                try:
                    return os.open(name, want, mode, dir_fd=top)
                except OSError as e:
                    if not (follow_last and e.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)):
                        raise
                    target = _readlink(name, top)
                    if target is None:
                        raise
            else:
                try:
                    stack.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                         dir_fd=top))
                    continue
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise
                    target = _readlink(name, top)
                    if target is None:
                        raise
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            if target.startswith("/"):
                raise escape_error(path)
            parts[:0] = [p for p in target.split("/") if p not in ("", ".")] or ["."]
            if parts == ["."]:
                parts = []
                return os.open(".", flags & ~os.O_NOFOLLOW, mode, dir_fd=top)
        raise AssertionError("unreachable")
    finally:
        for fd in stack:
            os.close(fd)


def _readlink(name: str, dirfd: int) -> Optional[str]:
    try:
        return os.readlink(name, dir_fd=dirfd)
    except OSError:
        return None


def open_parent(dirfd: int, path: str) -> Tuple[int, str]:
    """Open the directory holding the last component of `path` beneath `dirfd`; return
    (its fd, which the caller closes, and the last component). The last component is never
    `.` or `..` (those name no entry that could be created or removed)."""
    _check_path(path)
    head, _, last = path.rstrip("/").rpartition("/")
    if last in ("", ".", ".."):
        if last == ".." and not head:
            raise escape_error(path)
        raise OSError(errno.EINVAL, "path names no directory entry", path)
    fd = open_beneath(dirfd, head or ".", os.O_RDONLY | os.O_DIRECTORY)
    return fd, last


def check_link_target(link_path: str, target: str) -> None:
    """Refuse a symlink at `link_path` (relative to the directory) whose `target` is
    absolute or climbs above that directory: following it must stay inside."""
    if not target or target.startswith("/") or "\0" in target:
        raise escape_error(target)
    depth = len([p for p in link_path.rstrip("/").split("/")[:-1] if p not in ("", ".")])
    for p in link_path.rstrip("/").split("/")[:-1]:
        if p == "..":
            depth -= 2  # counted above as a step down; it is a step up
    for part in target.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise escape_error(target)
