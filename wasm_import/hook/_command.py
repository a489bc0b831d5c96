"""`python -m foo args...`: run a command component (one exporting `wasi:cli/run`).

runpy asks the loader for the module's code (`WasmLoader.get_code`), which is two lines
that call `run_module(__spec__)` here. That loads the component (through the compiled-code
cache), instantiates it with the process's argv and stdio, calls `run`, and exits with
the component's status: 0 when `run` succeeds, 1 when it returns an error, and the code
the guest passed to `wasi:cli/exit` when it exits that way (WASI 0.2's `exit` takes
ok or err, which become 0 and 1; `GuestExit` carries the number the guest passed).

A WASI 0.3 command (`run: async func() -> result`) runs the same way, inside `asyncio.run`;
after `run` returns, work the guest left running (its stdout still being copied) gets
until it stops making progress for `DRAIN_SECONDS` to finish.

The import hook must be installed before Python looks for `foo`: that is, `wasm_import`
must already be imported at startup. `python -m wasm_import startup-hook` writes the
one-line `.pth` file that does it (see `cli._main.run_startup_hook`); `sitecustomize` works too.

## The sandbox

A command gets this process's arguments (`sys.argv[1:]`, after the `.wasm` file's name
as argv[0], as `python -m wasm_import run` does) and its stdin, stdout and stderr, and
nothing else unless granted through two environment variables, read when it starts:

- `WASM_IMPORT_DIRS=host::guest[:ro|:rw],...`: preopen each host directory at the guest
  path, read-only unless `:rw` is given. Example: `WASM_IMPORT_DIRS=.::/work:rw,/etc::/etc`.
  (`::` separates the two paths so that Windows drive letters stay intact.)
- `WASM_IMPORT_ENV=NAME,...`: pass these environment variables (those that are set).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, List, Mapping, NoReturn, Optional

if TYPE_CHECKING:  # pragma: no cover
    import importlib.machinery

    from .._wasi import Dir, Wasi

__all__ = ["run_module", "wasi_from_environment", "call_to_end", "DIRS_VARIABLE", "ENV_VARIABLE",
           "DRAIN_SECONDS"]

DIRS_VARIABLE = "WASM_IMPORT_DIRS"
ENV_VARIABLE = "WASM_IMPORT_ENV"
_RUN_INTERFACE = "wasi:cli/run"
DRAIN_SECONDS = 0.5


def run_module(spec: "importlib.machinery.ModuleSpec") -> NoReturn:
    """Run the command component `spec` names, then exit the process with its status."""
    import importlib.util

    try:
        argv = [os.path.basename(spec.origin or spec.name), *sys.argv[1:]]
        wasi = wasi_from_environment(os.environ, argv)
    except ValueError as e:
        _fail(f"{spec.name}: {e}", status=2)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    run = _run_export(module)
    if run is None:
        _fail(f"{spec.origin}: not a command component (it does not export {_RUN_INTERFACE})", status=2)
    sys.exit(_status_of(run, module, wasi))


def _status_of(run_interface: str, module: Any, wasi: "Wasi") -> int:
    """Instantiate, call `run`, and turn the outcome into an exit status."""
    from .._errors import GuestExit
    from .._values import Err

    sys.stdout.flush()  # the guest writes to the same file descriptors
    sys.stderr.flush()
    instance = module.instantiate(wasi=wasi)
    try:
        call_to_end(instance.exports[run_interface].run)
    except Err:
        return 1
    except GuestExit as e:
        return int(e.code)
    return 0


def call_to_end(func: Any, *args: Any) -> Any:
    """Call `func`; when it is async (a coroutine comes back), run it to its end in a new
    event loop, then give what the guest left running time to finish (see DRAIN_SECONDS)."""
    import inspect

    outcome = func(*args)
    if not inspect.isawaitable(outcome):
        return outcome
    import asyncio

    async def main() -> Any:
        value = await outcome
        me = asyncio.current_task()
        while True:
            others = {t for t in asyncio.all_tasks() if t is not me and not t.done()}
            if not others:
                break
            done, _ = await asyncio.wait(others, timeout=DRAIN_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            if not done:  # nothing moved: what remains waits for something that will not come
                break
        return value

    return asyncio.run(main())


def _run_export(module: Any) -> Optional[str]:
    """The full name of the module's `wasi:cli/run` export (any version), or None."""
    for name in module.wit.exports:
        if name == _RUN_INTERFACE or name.startswith(_RUN_INTERFACE + "@"):
            return str(name)
    return None


def wasi_from_environment(environ: Mapping[str, str], argv: List[str]) -> "Wasi":
    """The command's sandbox: argv and inherited stdio, plus the grants in `environ`."""
    from .._wasi import Wasi

    names = _split(environ.get(ENV_VARIABLE, ""))
    env = {name: environ[name] for name in names if name in environ}
    dirs = [_parse_dir(grant) for grant in _split(environ.get(DIRS_VARIABLE, ""))]
    return Wasi(args=list(argv), env=env, dirs=dirs, stdin="inherit",
                stdout="inherit", stderr="inherit")


def _parse_dir(grant: str) -> "Dir":
    """`host::guest[:ro|:rw]` -> Dir. Raises ValueError for anything else."""
    from .._wasi import Dir

    host, sep, rest = grant.partition("::")
    if not sep or not host or not rest:
        raise ValueError(f"{DIRS_VARIABLE}: {grant!r} is not host::guest[:ro|:rw]")
    guest, readonly = rest, True
    for suffix, mode in ((":ro", True), (":rw", False)):
        if rest.endswith(suffix):
            guest, readonly = rest[: -len(suffix)], mode
    if not guest:
        raise ValueError(f"{DIRS_VARIABLE}: {grant!r} has no guest path")
    if not os.path.isdir(host):
        raise ValueError(f"{DIRS_VARIABLE}: {host!r} is not a directory")
    return Dir(host=os.path.abspath(host), guest=guest, readonly=readonly)


def _split(value: str) -> List[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _fail(message: str, *, status: int) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(status)
