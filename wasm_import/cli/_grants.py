"""The sandbox flags shared by `call`, `run` and `serve`: what a component is granted.

Spelled as wasmtime's CLI spells what it can (`--dir HOST::GUEST`, `--env NAME=VALUE`);
the network is granted address by address (`--net`, `--http`, as `Wasi(network=...,
http=...)` takes it), and `--timeout` / `--fuel` / `--max-memory` are `Limits`. Without
flags nothing is granted and nothing is limited.

    add_grant_flags(parser)          declare the flags on a sub-command's parser
    sandbox(args, argv, stdin=...)   the `Wasi` they describe (ValueError for a bad one)
    limits(args)                     the `Limits` they describe, or None
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any, Dict, Optional, Sequence

from .._limits import Limits
from .._wasi import Dir, Net, Wasi, _split_authority

__all__ = ["add_grant_flags", "sandbox", "limits", "parse_net", "parse_size"]

_NET_KINDS = {"tcp": ("tcp", False), "udp": ("udp", False), "tcp-bind": ("tcp", True), "udp-bind": ("udp", True)}
_SIZE = re.compile(r"(\d+)([kmg]i?b?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def add_grant_flags(parser: argparse.ArgumentParser) -> None:
    """Declare the grant and limit flags on `parser`."""
    parser.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST][:ro]",
                        help="grant the host directory HOST at GUEST (default: the same path), read-write "
                             "as wasmtime does, or read-only with a :ro suffix")
    parser.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                        help="set an environment variable (without =VALUE: pass on this process's)")
    parser.add_argument("--net", action="append", default=[], metavar="[KIND:]HOST[:PORT]",
                        help="grant wasi:sockets traffic with HOST (an address, a CIDR network or a name; "
                             "[v6] in brackets) on PORT (default: any); KIND is tcp (the default: connect), "
                             "udp (send), tcp-bind (listen) or udp-bind (receive)")
    parser.add_argument("--http", action="append", default=[], metavar="HOST[:PORT]",
                        help="grant outgoing wasi:http requests to HOST on PORT (default: any port)")
    parser.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS",
                        help="stop any one call into the guest after this long (wall-clock)")
    parser.add_argument("--fuel", type=parse_size, metavar="N",
                        help="stop any one call after about N wasm instructions")
    parser.add_argument("--max-memory", type=parse_size, metavar="SIZE",
                        help="let each linear memory grow to SIZE bytes at most (suffixes K, M, G)")


def sandbox(args: argparse.Namespace, argv: Sequence[str], *, stdin: Any = "inherit") -> Wasi:
    """The `Wasi` sandbox that the grant flags describe, with this process's stdout and
    stderr. ValueError names the flag that is wrong."""
    dirs = []
    for grant in args.dir:
        readonly = grant.endswith(":ro")
        host, _, guest = grant.removesuffix(":ro").partition("::")
        if not os.path.isdir(host):
            raise ValueError(f"--dir {grant}: {host!r} is not a directory")
        dirs.append(Dir(host=os.path.abspath(host), guest=guest or host, readonly=readonly))
    env: Dict[str, str] = {}
    for item in args.env:
        name, has_value, value = item.partition("=")
        if has_value:
            env[name] = value
        elif name in os.environ:
            env[name] = os.environ[name]
    network = tuple(parse_net(spec) for spec in getattr(args, "net", ()))
    http = tuple(getattr(args, "http", ()))
    try:
        return Wasi(args=list(argv), env=env, dirs=dirs, stdin=stdin, network=network, http=http)
    except ValueError as e:  # a bad --http entry: Wasi names it
        raise ValueError(f"--http: {e}") from None


def limits(args: argparse.Namespace) -> Optional[Limits]:
    """The `Limits` of --timeout, --fuel and --max-memory; None when none is given."""
    given = {"timeout": getattr(args, "timeout", None), "fuel": getattr(args, "fuel", None),
             "memory": getattr(args, "max_memory", None)}
    if all(value is None for value in given.values()):
        return None
    return Limits(**given)


def parse_net(spec: str) -> Net:
    """`--net [KIND:]HOST[:PORT]` -> Net: `127.0.0.1:5432`, `udp:10.0.0.0/8:53`,
    `tcp-bind:127.0.0.1:8000`, `[::1]:80`, `db.internal`."""
    kind, sep, rest = spec.partition(":")
    protocol, bind = "tcp", False
    if sep and kind.lower() in _NET_KINDS:
        protocol, bind = _NET_KINDS[kind.lower()]
        spec_host = rest
    else:
        spec_host = spec
    try:
        host, port = _split_authority(spec_host)
        return Net(host, port, protocol, bind)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        raise ValueError(f"--net {spec}: {e}") from None


def parse_size(text: str) -> int:
    """`1048576`, `64K`, `16M`, `1G` (binary multiples; `KiB`, `MB`... are read alike) -> bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (a number, optionally with K, M or G)")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _UNITS[unit]


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: the timeout must be a positive number of seconds")
    return seconds
