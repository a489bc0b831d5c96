"""The `kitchen` test guest (componentize-py).

Implements world `test:kitchen/kitchen`: the root-level exports (`add`, `bump`) are methods
of `WitWorld`, the `echo` interface's functions are methods of `Echo`. The exported
resource `counter` lives in `echo.py`, because componentize-py looks an exported resource
class up in a module named after its interface.

Every `echo-*` function returns its argument unchanged; what is being tested is the host's
lowering and lifting, so the guest deliberately does nothing clever.
"""

from componentize_py_types import Err, Ok

import wit_world
from wit_world import exports
from wit_world.exports import echo as types

# Per-instance state: each component instance has its own Python interpreter, so two
# instances count independently.
_BUMPS = 0

_S32_MIN, _S32_MAX = -(2**31), 2**31 - 1
_U64_MAX = 2**64 - 1


def _wrap_s32(v: int) -> int:
    """Two's-complement wrap into s32 (the component would trap on an out-of-range int)."""
    return (v + 2**31) % 2**32 - 2**31


def _unwrap(x):
    """A `result` argument arrives as `Ok(v)` / `Err(e)`; a returned `result` is expressed
    by returning `v` or raising `Err(e)`."""
    if isinstance(x, Err):
        raise x
    return x.value


class WitWorld(wit_world.WitWorld):
    """Root-level exports of the world."""

    def add(self, a: int, b: int) -> int:
        return _wrap_s32(a + b)

    def bump(self) -> int:
        global _BUMPS
        _BUMPS += 1
        return _BUMPS


class Echo(exports.Echo):
    """The `test:kitchen/echo` interface."""

    # -- scalars -------------------------------------------------------------------------
    def echo_bool(self, x): return x
    def echo_u8(self, x): return x
    def echo_s8(self, x): return x
    def echo_u16(self, x): return x
    def echo_s16(self, x): return x
    def echo_u32(self, x): return x
    def echo_s32(self, x): return x
    def echo_u64(self, x): return x
    def echo_s64(self, x): return x
    def echo_f32(self, x): return x
    def echo_f64(self, x): return x
    def echo_char(self, x): return x
    def echo_string(self, x): return x

    # -- lists and tuples ----------------------------------------------------------------
    def echo_bytes(self, x): return x
    def echo_string_list(self, x): return x
    def echo_nested_list(self, x): return x
    def echo_tuple(self, x): return x

    # -- records, variants, enums, flags -------------------------------------------------
    def echo_record(self, x): return x
    def echo_drawing(self, x): return x
    def echo_variant(self, x): return x
    def echo_enum(self, x): return x
    def echo_flags(self, x): return x
    def echo_flags32(self, x): return x

    # -- options and results -------------------------------------------------------------
    def echo_option(self, x): return x
    def echo_nested_option(self, x): return x
    def echo_result(self, x): return _unwrap(x)
    def echo_result_err_only(self, x): return _unwrap(x)
    def echo_result_ok_only(self, x): return _unwrap(x)
    def echo_result_empty(self, x): return _unwrap(x)
    def echo_result_list(self, x): return x  # nested results stay Ok/Err values
    def echo_option_list(self, x): return x

    # -- resources -----------------------------------------------------------------------
    def echo_resource_pair(self, x):
        # Receives two owned handles and hands the same two objects back, in order.
        first, second = x
        return (first, second)

    # -- functions that return results ---------------------------------------------------
    def checked_div(self, a: int, b: int) -> int:
        """Truncating division like C; division by zero and overflow are errors."""
        if b == 0:
            raise Err("division by zero")
        q = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            q = -q
        if not _S32_MIN <= q <= _S32_MAX:  # only -2**31 / -1
            raise Err("overflow")
        return q

    def parse_number(self, text: str) -> int:
        """Decimal digits only; a value above u64::MAX is reported at the digit that overflows."""
        if not text:
            raise Err(types.ParseError_EmptyInput())
        value = 0
        for i, ch in enumerate(text):
            if not "0" <= ch <= "9":
                raise Err(types.ParseError_BadChar(i))
            value = value * 10 + (ord(ch) - 48)
            if value > _U64_MAX:
                raise Err(types.ParseError_BadChar(i))
        return value

    def require_even(self, x: int) -> None:
        if x % 2:
            raise Err(f"{x} is odd")

    def try_unit(self, ok: bool) -> None:
        if not ok:
            raise Err(None)

    def fail(self) -> None:
        # An uncaught exception in an export makes componentize-py's runtime trap.
        raise RuntimeError("kitchen: fail() was called")
