"""The `values` test guest (componentize-py): see wit/values.wit."""

import sys

from componentize_py_types import Err, Ok

import wit_world
from wit_world import exports
from wit_world.exports.shapes import Holder
from wit_world.imports import host, vault

from shapes import Thing

_HOARD = []


class Shapes(exports.Shapes):
    def make_many(self, n):
        return [Thing(i) for i in range(n)]

    def holders(self, n):
        return [Holder(f"h{i}", Thing(i)) for i in range(n)]

    def total(self, items):
        return sum(t.value() for t in items)


class Api(exports.Api):
    def make(self, v):
        return Thing(v)

    def read(self, w):
        return w.value()

    def consume(self, w):
        return w.value()

    def unwrap(self, h):
        return h.item

    def issue(self, v):
        return vault.Token(v)

    def redeem(self, t):
        return t.peek()

    def check(self, t):
        return t.peek()


def _describe(call):
    try:
        inner = call()
    except Err as e:
        return f"err({e.value})"
    if isinstance(inner, Ok):
        return "ok(ok)" if inner.value is None else f"ok(ok({inner.value}))"
    if isinstance(inner, Err):
        return f"ok(err({inner.value}))"
    return f"ok(?{inner!r})"


class WitWorld(wit_world.WitWorld):
    def check_nested(self, x):
        return _describe(lambda: host.nested(x))

    def check_nested_unit(self, x):
        return _describe(lambda: host.nested_unit(x))

    def fail(self, msg, noise):
        for i in range(noise):
            print(f"noise line {i}", file=sys.stderr)
        raise ValueError(msg)

    def hog(self, mib):
        block = bytearray(mib << 20)
        _HOARD.append(block)
        return sum(len(b) for b in _HOARD)

    def mix(self, a, b, c):
        return f"{a!r} {b!r} {c!r}"
