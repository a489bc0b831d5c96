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

from ._errors import WasmImportError

__all__ = ["main"]

Handler = t.Callable[[argparse.Namespace], int]


def run_wit(args: argparse.Namespace) -> int:
    """Print the WIT world of a component, like `wasm-tools component wit`."""
    from . import wit

    data = Path(args.file).read_bytes()
    sys.stdout.write(wit.to_wit(wit.decode(data)))
    return 0


def add_wit(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("wit", help="print the WIT world of a component",
                                 description=run_wit.__doc__)
    parser.add_argument("file", help="a component binary (.wasm)")
    parser.set_defaults(handler=run_wit)


COMMANDS: t.List[t.Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]] = [
    add_wit,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wasm_import",
                                     description="WebAssembly components as Python modules.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (WasmImportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
