"""The `sandbox` test guest (componentize-py, with WASI): thin wrappers over the
Python standard library, so every WASI capability is one export away."""

import os
import sys
import time

import wit_world
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def read_file(self, path: str) -> str:
        try:
            with open(path) as f:
                return f.read()
        except OSError as e:
            raise Err(f"{type(e).__name__}: {e.strerror}")

    def write_file(self, path: str, text: str) -> None:
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as e:
            raise Err(f"{type(e).__name__}: {e.strerror}")

    def environment(self) -> list:
        return sorted(os.environ.items())

    def arguments(self) -> list:
        return list(sys.argv)

    def read_stdin(self) -> str:
        return sys.stdin.read()

    def say(self, out: str, err: str) -> None:
        sys.stdout.write(out)
        sys.stdout.flush()
        sys.stderr.write(err)
        sys.stderr.flush()

    def fs(self, op: str, a: str, b: str) -> str:
        try:
            return _FS[op](a, b)
        except OSError as e:
            raise Err(f"{type(e).__name__}: {e.strerror}")

    def sleep_ms(self, ms: int) -> tuple:
        before = time.monotonic_ns()
        time.sleep(ms / 1000)
        return before, time.monotonic_ns()

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def wall_ns(self) -> int:
        return time.time_ns()


def _read(a: str, b: str) -> str:
    with open(a) as f:
        return f.read()


def _write(a: str, b: str) -> str:
    with open(a, "w") as f:
        f.write(b)
    return ""


def _stat(a: str, b: str) -> str:
    return str(os.stat(a).st_size)


_FS = {
    "read": _read,
    "write": _write,
    "listdir": lambda a, b: ",".join(sorted(os.listdir(a))),
    "mkdir": lambda a, b: os.mkdir(a) or "",
    "remove": lambda a, b: os.remove(a) or "",
    "rmdir": lambda a, b: os.rmdir(a) or "",
    "rename": lambda a, b: os.rename(a, b) or "",
    "symlink": lambda a, b: os.symlink(a, b) or "",
    "link": lambda a, b: os.link(a, b) or "",
    "readlink": lambda a, b: os.readlink(a),
    "stat": _stat,
    "lstat": lambda a, b: "link" if os.path.islink(a) else str(os.lstat(a).st_size),
}
