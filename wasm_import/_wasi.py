"""The WASI sandbox of one instance: deny by default.

A component that imports `wasi:*` interfaces gets wasmtime's WASI 0.2 with exactly what
its `Wasi` grants: by default no files, no environment, no arguments, an empty stdin,
and stdout/stderr passed through to this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Optional, Sequence, Union

__all__ = ["Wasi", "Dir"]


@dataclass(frozen=True)
class Dir:
    """A host directory granted to the guest at `guest` (read-only unless told)."""

    host: str
    guest: str
    readonly: bool = True


@dataclass(frozen=True)
class Wasi:
    """What a component's WASI imports may see.

    - `args`: the guest's argv (the first item is the program name by convention).
    - `env`: environment variables; nothing of the host's environment leaks in.
    - `dirs`: preopened directories (`Dir`), read-only unless `readonly=False`.
    - `stdin`: bytes to read, `"inherit"` for this process's stdin, or None (empty).
    - `stdout`/`stderr`: `"inherit"` (the default: this process's streams), `"capture"`
      (collected; read them from `instance.stdout` / `instance.stderr`), or `"discard"`.
    """

    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    dirs: Sequence[Dir] = ()
    stdin: Union[bytes, None, Literal["inherit"]] = None
    stdout: Literal["inherit", "capture", "discard"] = "inherit"
    stderr: Literal["inherit", "capture", "discard"] = "inherit"

    def __post_init__(self) -> None:
        if isinstance(self.args, str):
            raise TypeError("Wasi.args must be a sequence of strings, not one string")
        for name in ("stdout", "stderr"):
            if getattr(self, name) not in ("inherit", "capture", "discard"):
                raise ValueError(f"Wasi.{name} must be 'inherit', 'capture' or 'discard'")
        if not (self.stdin is None or self.stdin == "inherit" or isinstance(self.stdin, bytes)):
            raise TypeError("Wasi.stdin must be bytes, 'inherit' or None")


DEFAULT_WASI = Wasi()
