"""The `python -m wasm_import` command line.

Each sub-command is one function registered in `COMMANDS` with the arguments it takes;
adding one (`inspect`, `call`, `run`, `stubs`...) means writing an `add_*` function that
declares its parser and sets `handler`, and listing it in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
import typing as t
from pathlib import Path

from .._errors import WasmImportError
from ._grants import add_grant_flags as _add_grant_flags, limits as _limits, sandbox as _grants

__all__ = ["main"]

Handler = t.Callable[[argparse.Namespace], int]


def run_wit(args: argparse.Namespace) -> int:
    """Print the WIT world of a component, like `wasm-tools component wit`."""
    from .. import wit

    data = Path(args.file).read_bytes()
    sys.stdout.write(wit.to_wit(wit.decode(data)))
    return 0


def add_wit(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("wit", help="print the WIT world of a component",
                                 description=run_wit.__doc__)
    parser.add_argument("file", help="a component binary (.wasm)")
    parser.set_defaults(handler=run_wit)


# ==== call, run, inspect, stubs (issue 6: editor support and the command line) =============

def run_call(args: argparse.Namespace) -> int:
    """Call one export with WAVE arguments and print its result as WAVE.

    Name the export by its Python attribute path (`add.add(1, 2)`, `echo.Counter.merge`)
    or by its full WIT name (`docs:adder/add@0.1.0#add(1, 2)`). Exits with status 1 when
    the function returns `err(...)`, 2 when the expression is wrong.
    """
    from .. import load
    from ._invoke import invoke
    from ._wave import WaveError

    try:
        wasi = _grants(args, [Path(args.file).name])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    module = load(args.file)
    module.link(limits=_limits(args))
    sys.stdout.flush()  # the guest writes to the same file descriptors
    try:
        outcome = invoke(module, args.expression, wasi=wasi)
    except WaveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if outcome.text:
        print(outcome.text)
    return 1 if outcome.failed else 0


def add_call(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("call", help="call an export: call FILE 'name(args)'",
                                 description=run_call.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_grant_flags(parser)
    parser.add_argument("file", help="a component binary (.wasm)")
    parser.add_argument("expression", help="the call, arguments in WAVE: 'add(1, 2)'")
    parser.set_defaults(handler=run_call)


def run_run(args: argparse.Namespace) -> int:
    """Run a `wasi:cli` command component: its exit status is 0 when `run` succeeds, 1
    when it fails, or the code it passed to `exit`."""
    from .. import load
    from ..hook._command import _run_export, _status_of

    try:
        wasi = _grants(args, [Path(args.file).name, *args.args])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    module = load(args.file)
    module.link(limits=_limits(args))
    run_interface = _run_export(module)
    if run_interface is None:
        print(f"error: {args.file} is not a command component (it does not export wasi:cli/run)",
              file=sys.stderr)
        return 2
    return _status_of(run_interface, module, wasi)


def add_run(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("run", help="run a wasi:cli command component",
                                 description=run_run.__doc__)
    _add_grant_flags(parser)
    parser.add_argument("file", help="a command component (.wasm) exporting wasi:cli/run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    parser.set_defaults(handler=run_run)


def run_stubs(args: argparse.Namespace) -> int:
    """Write `foo.pyi` beside each component `foo.wasm` (or into --out), so that editors and
    type checkers know `import foo`. With --check, write nothing and exit 1 when a stub is
    missing or stale."""
    from ._stubs import stub_for_file

    files: t.List[Path] = []
    for given in map(Path, args.paths):
        if not given.is_dir():
            files.append(given)
            continue
        for found in sorted(given.glob("*.wasm")):
            if _is_core_module(found):  # a folder may hold plain modules beside components
                print(f"skipped {found}: a core WebAssembly module, not a component", file=sys.stderr)
            else:
                files.append(found)
    problems = 0
    for wasm in files:
        try:
            name, text = stub_for_file(wasm)
        except WasmImportError as e:
            print(f"error: {wasm}: {e}", file=sys.stderr)
            problems += 1
            continue
        stub = Path(args.out or wasm.parent) / f"{name}.pyi"
        current = stub.read_text(encoding="utf-8") if stub.is_file() else None
        if current == text:
            continue
        if args.check:
            print(f"{'stale' if current is not None else 'missing'}: {stub} (from {wasm})", file=sys.stderr)
            problems += 1
        else:
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(text, encoding="utf-8")
            print(f"wrote {stub}")
    return 1 if problems else 0


def _is_core_module(path: Path) -> bool:
    """A core module starts `\\0asm` and version 1; a component has layer 1 after it."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head == b"\0asm\x01\x00\x00\x00"


def add_stubs(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("stubs", help="write .pyi stubs of components for editors and type checkers",
                                 description=run_stubs.__doc__)
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="components, or folders of them")
    parser.add_argument("--out", metavar="DIR", help="write the stubs here instead of beside each component")
    parser.add_argument("--check", action="store_true", help="only check that the stubs are up to date")
    parser.set_defaults(handler=run_stubs)


def run_inspect(args: argparse.Namespace) -> int:
    """Summarize a component: its imports, grouped by the capability they would grant, and
    its exports with their Python signatures."""
    from ..bindings._plan import build_plan
    from ._inspect import summary
    from ..wit._decode import decode

    path = Path(args.file)
    plan = build_plan(decode(path.read_bytes()), path.stem)
    sys.stdout.write(summary(plan, path.name))
    return 0


def add_inspect(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("inspect", help="summarize a component's imports and exports",
                                 description=run_inspect.__doc__)
    parser.add_argument("file", help="a component binary (.wasm)")
    parser.set_defaults(handler=run_inspect)


def run_serve(args: argparse.Namespace) -> int:
    """Serve a component's exported HTTP handler (wasi:http/proxy 0.2 or wasi:http/service
    0.3) over HTTP/1.1, like `wasmtime serve`: each request gets a fresh instance unless
    --reuse-instance is given. A guest that fails answers 500 (one line on stderr); the
    server stops on Ctrl-C with status 0. A component without an HTTP handler: status 2."""
    import asyncio

    from .. import load
    from ..bindings._asgi import DEFAULT_MAX_BODY, asgi
    from ..bindings._serve import handler_key
    from ._httpd import log_to_stderr, start, urls
    from ._invoke import unlinked_imports

    try:
        wasi = _grants(args, [Path(args.file).name], stdin=None)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    module = load(args.file)
    try:
        key, _ = handler_key(module.exports, module)
    except TypeError:
        exported = ", ".join(module.exports) or "nothing"
        print(f"error: {args.file} exports no HTTP handler (wasi:http/incoming-handler@0.2.x or "
              f"wasi:http/handler@0.3.x); it exports: {exported}", file=sys.stderr)
        return 2
    imports, limits = unlinked_imports(module.__wasm_plan__), _limits(args)
    max_body = DEFAULT_MAX_BODY if args.max_body is None else args.max_body
    if args.reuse_instance:
        app = asgi(module.instantiate(imports, wasi=wasi, limits=limits), max_body=max_body)
    else:
        app = asgi(module, imports=imports, wasi=wasi, limits=limits, max_body=max_body)
    log_to_stderr()

    async def serve() -> None:
        server = await start(app, args.host, args.port)
        print(f"serving {Path(args.file).name} ({key}) on {urls(server)}", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: a clean exit, as wasmtime serve's
        return 0
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0..65535)")
    return int(text)


def add_serve(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from ._grants import parse_size

    parser = commands.add_parser("serve", help="serve a component's exported HTTP handler (like wasmtime serve)",
                                 description=run_serve.__doc__)
    _add_grant_flags(parser)
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="the port to listen on (default: 8080; 0: any free)")
    parser.add_argument("--max-body", type=parse_size, default=None, metavar="SIZE",
                        help="refuse request bodies over SIZE bytes with 413 (default: 64M; suffixes K, M, G)")
    parser.add_argument("--reuse-instance", action="store_true",
                        help="serve every request on one instance (state shared) instead of a fresh one each")
    parser.add_argument("file", help="a component (.wasm) exporting wasi:http/incoming-handler or wasi:http/handler")
    parser.set_defaults(handler=run_serve)


# ==== end of issue 6 commands ===============================================================


STARTUP_PTH = "wasm_import-startup.pth"


def run_startup_hook(args: argparse.Namespace) -> int:
    """Install the import hook at interpreter startup, so that `python -m foo` runs
    foo.wasm (and `import foo` works without `import wasm_import`).

    Writes (or with --remove deletes) a one-line `.pth` file, `import wasm_import`, in a
    site-packages directory: this environment's by default, the per-user one with --user,
    or --site-dir. Every interpreter that uses that directory then loads wasm_import at
    startup (about 18 ms); it is opt-in for that reason, and nothing is installed
    otherwise.
    """
    import site

    if args.site_dir:
        directory = Path(args.site_dir)
    elif args.user:
        directory = Path(site.getusersitepackages())
    else:
        directory = Path(site.getsitepackages()[0])
    pth = directory / STARTUP_PTH
    if args.remove:
        if pth.exists():
            pth.unlink()
            print(f"removed {pth}")
        else:
            print(f"nothing to remove: {pth} does not exist")
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    pth.write_text("# written by `python -m wasm_import startup-hook`; remove with --remove\n"
                   "import wasm_import\n")
    print(f"wrote {pth}: the import hook is installed at startup "
          "(`python -m wasm_import startup-hook --remove` undoes it)")
    return 0


def add_startup_hook(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("startup-hook", help="install the import hook at interpreter startup "
                                 "(for `python -m foo`)", description=run_startup_hook.__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="use the per-user site-packages directory")
    where.add_argument("--site-dir", metavar="DIR", help="use this site-packages directory")
    parser.add_argument("--remove", action="store_true", help="delete the .pth file instead")
    parser.set_defaults(handler=run_startup_hook)


COMMANDS: t.List[t.Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]] = [
    add_wit,
    add_inspect,
    add_call,
    add_run,
    add_serve,
    add_stubs,
    add_startup_hook,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wasm_import",
                                     description="WebAssembly components as Python modules.")
    parser.add_argument("--version", action="version", version=_version_text())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def _version_text() -> str:
    """`wasm-import X.Y.Z (wasmtime A.B.C, Python D.E.F)`: what a bug report needs."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def of(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    return f"wasm-import {of('wasm-import')} (wasmtime {of('wasmtime')}, Python {platform.python_version()})"


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (WasmImportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
