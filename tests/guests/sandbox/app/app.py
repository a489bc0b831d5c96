"""The `sandbox` test guest (componentize-py, with WASI): thin wrappers over the
Python standard library, so every WASI capability is one export away."""

import os
import sys

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
