"""The backend-neutral half of value conversion: Python classes, checks and error texts.

A WIT value crosses into a component in two steps: first it is checked and taken apart
into plain parts (an int in range, a case index and payload, a tuple of field values), then
a backend lays those parts out (the canonical ABI on linear memory, or a C API's values).
This module is the first step, and its inverse for values coming back (parts -> the
Python class). Every check is built once per WIT type and raises `TypeError` or
`ValueError` with the same text whichever backend runs the call, for example
`expected u8 (an int in 0..255), got 300: out of range`.

`bool` is refused wherever a number is expected (it is an `int` subclass, but passing
`True` for a `u32` is almost always a bug). Other `int` subclasses (IntEnum...) are
accepted and passed on as plain `int`s, taken with `int.__index__` so that an overridden
comparison or `__int__` cannot slip a different value past the range check.
"""

from __future__ import annotations

import array
import dataclasses
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ..wit import _model as w
from ._names import snake
from ._pytypes import class_for, is_option, variant_classes, wit_type_name
from .._values import Err, Ok, Some

__all__ = ["describe", "wrong", "prefixed", "int_check", "int_bounds", "bool_check", "float_check",
           "char_check", "str_check", "encode_error", "bytes_check", "list_check", "numbers_check",
           "tuple_check",
           "RecordParts", "VariantParts", "EnumParts", "FlagsParts", "OptionParts", "ResultParts"]

_index = int.__index__


def describe(value: Any) -> str:
    """`type repr`, the repr cut at 60 characters."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def wrong(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {describe(value)}")


def prefixed(where: str, e: Exception) -> Exception:
    """The same kind of error, saying where in a nested value it happened."""
    return type(e)(f"{where}: {e}")


# -- scalars ------------------------------------------------------------------------------------

_INT_BITS = {w.Primitive.U8: (8, False), w.Primitive.U16: (16, False), w.Primitive.U32: (32, False),
             w.Primitive.U64: (64, False), w.Primitive.S8: (8, True), w.Primitive.S16: (16, True),
             w.Primitive.S32: (32, True), w.Primitive.S64: (64, True)}


def int_bounds(prim: w.Primitive) -> Tuple[int, int, str]:
    """(lowest, highest, what is expected) for an integer primitive."""
    bits, signed = _INT_BITS[prim]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return lo, hi, f"{prim.value} (an int in {lo}..{hi})"


def int_check(prim: w.Primitive) -> Callable[[Any], int]:
    """check(v) -> v as a plain int in range, or TypeError/ValueError."""
    lo, hi, expected = int_bounds(prim)

    def check(v: Any) -> int:
        if v.__class__ is not int:
            if not isinstance(v, int) or isinstance(v, bool):
                raise wrong(expected, v)
            v = _index(v)
        if not lo <= v <= hi:
            raise ValueError(f"expected {expected}, got {v}: out of range")
        return v

    return check


def bool_check(v: Any) -> bool:
    if v is not True and v is not False:
        raise wrong("bool", v)
    return v  # type: ignore[no-any-return]


def float_check(prim: w.Primitive) -> Callable[[Any], float]:
    """check(v) -> a float (ints are converted; one too large for a float is a ValueError)."""
    name = prim.value

    def check(v: Any) -> float:
        if v.__class__ is float:
            return v  # type: ignore[no-any-return]
        if not isinstance(v, (float, int)) or isinstance(v, bool):
            raise wrong(f"{name} (a float)", v)
        try:
            return float.__float__(v) if isinstance(v, float) else float(_index(v))
        except OverflowError:
            raise ValueError(f"expected {name}, got {v}: too large for a float") from None

    return check


def char_check(v: Any) -> int:
    """check(v) -> the code point of a one-character str."""
    if not isinstance(v, str) or str.__len__(v) != 1:
        raise wrong("char (a one-character str)", v)
    code = ord(v)
    if 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"expected char, got a lone surrogate {v!r}: not a Unicode scalar value")
    return code


def str_check(v: Any) -> str:
    """check(v) -> an exact str (a subclass is copied, so none of its methods run later)."""
    if v.__class__ is str:
        return v  # type: ignore[no-any-return]
    if not isinstance(v, str):
        raise wrong("string (a str)", v)
    return str.__str__(v)


def encode_error(e: UnicodeEncodeError) -> ValueError:
    """The error for a str that cannot be encoded (it holds a lone surrogate)."""
    return ValueError(f"expected string, got a str that is not valid Unicode "
                      f"(lone surrogate at index {e.start})")


def bytes_check(wit: str) -> Callable[[Any], bytes]:
    """list<u8>: bytes, bytearray or memoryview, copied once into bytes."""
    expected = f"{wit} (bytes, bytearray or memoryview)"

    def check(v: Any) -> bytes:
        if v.__class__ is bytes:
            return v  # type: ignore[no-any-return]
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise wrong(expected, v)
        return bytes(memoryview(v).cast("B")) if isinstance(v, memoryview) else bytes(v)

    return check


def list_check(wit: str) -> Callable[[Any], List[Any]]:
    """list<T>: a list or tuple, snapshotted once (its length is read once, from the copy)."""
    expected = f"{wit} (a list)"

    def check(v: Any) -> List[Any]:
        if v.__class__ is list:
            return v[:]  # type: ignore[no-any-return]
        if not isinstance(v, (list, tuple)):
            raise wrong(expected, v)
        return list(v)

    return check


# buffer format characters by kind: (signed ints, unsigned ints, floats); with a size, a kind
# names one number type whatever the platform spells it ('l' and 'q' are both s64 on Linux)
_FORMAT_KINDS = {**dict.fromkeys("bhilqn", "s"), **dict.fromkeys("BHILQN", "u"), **dict.fromkeys("fd", "f")}
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


def _buffer_kind(view: memoryview) -> Optional[Tuple[str, int]]:
    """(kind, itemsize) of a buffer's items in native byte order, or None for anything else."""
    fmt = view.format
    if len(fmt) == 2 and fmt[0] in "@=" + _NATIVE_ORDER:
        fmt = fmt[1:]
    kind = _FORMAT_KINDS.get(fmt) if len(fmt) == 1 else None
    return (kind, view.itemsize) if kind is not None else None


def numbers_check(wit: str, code: str) -> Callable[[Any], Union[memoryview, List[Any]]]:
    """list<number>, whose Python value is an `array.array` of typecode `code`.

    An array (or any 1-D contiguous buffer, a numpy array say) of that very number type is
    taken as it is: the result is a byte view of its items, to copy in one slice. The view
    holds the buffer, so nobody can resize it while it is copied. A list or tuple, or an
    array or memoryview of another number type (or a strided one), comes back as a list of
    its items, snapshotted once, for the caller to check item by item. Other buffers (bytes,
    a numpy array of another dtype) are refused rather than reinterpreted.
    """
    want = _buffer_kind(memoryview(array.array(code)))
    expected = f"{wit} (a list, tuple or array.array({code!r}))"

    def check(v: Any) -> Union[memoryview, List[Any]]:
        cls = v.__class__
        if cls is list:
            return v[:]  # type: ignore[no-any-return]
        if cls is tuple:
            return list(v)
        try:
            view = memoryview(v)
        except TypeError:
            if isinstance(v, (list, tuple)):
                return list(v)
            raise wrong(expected, v) from None
        kind = _buffer_kind(view)
        if view.ndim == 1 and kind == want and view.c_contiguous:
            return view.cast("B")
        if view.ndim == 1 and kind is not None and isinstance(v, (array.array, memoryview)):
            return view.tolist()  # another number type, or strided: item by item, checked
        view.release()
        raise wrong(expected, v)

    return check


def tuple_check(wit: str, n: int) -> Callable[[Any], Tuple[Any, ...]]:
    expected = f"{wit} (a tuple of {n})"

    def check(v: Any) -> Tuple[Any, ...]:
        if not isinstance(v, (tuple, list)):
            raise wrong(expected, v)
        items = tuple(v)
        if len(items) != n:
            raise wrong(expected, v)
        return items

    return check


# -- records, variants, enums, flags, options, results --------------------------------------------

class RecordParts:
    """A record's class; `fields(v)` -> its field values in WIT order; `make(*values)`."""

    def __init__(self, td: w.TypeDef, module: str) -> None:
        assert isinstance(td.kind, w.Record)
        self.cls = cls = class_for(td, module)
        self.wit = td.name or "record"
        self.attrs = tuple(snake(f.name) for f in td.kind.fields)
        self.make = cls
        self.expected = f"record {self.wit} ({cls.__name__})"

    @staticmethod
    def attrs_of(cls: type) -> Tuple[str, ...]:
        """The Python field names of a record class made by `class_for`, in WIT order."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def fields(self, v: Any) -> Tuple[Any, ...]:
        if v.__class__ is not self.cls and not hasattr(v, "__dataclass_fields__"):
            raise wrong(self.expected, v)
        values = []
        for attr in self.attrs:
            try:
                values.append(getattr(v, attr))
            except AttributeError:
                raise TypeError(f"expected {self.expected}, got {describe(v)} "
                                f"without field {attr!r}") from None
        return tuple(values)

    def in_field(self, i: int, e: Exception) -> Exception:
        return prefixed(f"field {self.attrs[i]!r} of {self.cls.__name__}", e)


class VariantParts:
    """A variant's case classes: `case(v)` -> (index, payload); `make(index, payload)`."""

    def __init__(self, td: w.TypeDef, module: str) -> None:
        info = variant_classes(td, module)
        self.wit = td.name or "variant"
        self.classes = tuple(cls for _, cls, _ in info.cases)
        self.has_payload = tuple(has for _, _, has in info.cases)
        self.index = {cls: i for i, cls in enumerate(self.classes)}
        self.expected = f"variant {self.wit} ({' | '.join(c.__name__ for c in self.classes)})"

    def case(self, v: Any) -> Tuple[int, Any]:
        i = self.index.get(v.__class__)
        if i is None:
            raise wrong(self.expected, v)
        return i, (v.value if self.has_payload[i] else None)

    def make(self, i: int, payload: Any) -> Any:
        cls = self.classes[i]
        return cls(payload) if self.has_payload[i] else cls()

    def in_payload(self, i: int, e: Exception) -> Exception:
        return prefixed(f"{self.classes[i].__name__}.value", e)


class EnumParts:
    """An enum's class: `index(v)` and `members[i]`."""

    def __init__(self, td: w.TypeDef, module: str) -> None:
        self.cls = cls = class_for(td, module)
        self.members: Tuple[Any, ...] = tuple(cls)  # type: ignore[arg-type]
        self._index: Dict[Any, int] = {m: i for i, m in enumerate(self.members)}
        self.expected = f"enum {td.name or 'enum'} ({cls.__name__})"

    def index(self, v: Any) -> int:
        i = self._index.get(v) if isinstance(v, self.cls) else None
        if i is None:
            raise wrong(self.expected, v)
        return i


class FlagsParts:
    """A flags class: `bits(v)` (bit i = flag i) and `make(bits)`."""

    def __init__(self, td: w.TypeDef, module: str) -> None:
        assert isinstance(td.kind, w.Flags)
        self.cls = cls = class_for(td, module)
        self.mask = (1 << len(td.kind.flags)) - 1
        self.expected = f"flags {td.name or 'flags'} ({cls.__name__})"

    def bits(self, v: Any) -> int:
        if not isinstance(v, self.cls):
            raise wrong(self.expected, v)
        return int(v.value) & self.mask  # type: ignore[attr-defined]

    def make(self, bits: int) -> Any:
        return self.cls(bits & self.mask)


class OptionParts:
    """option<T> as T | None; a nested option's present case is `Some(...)`."""

    def __init__(self, payload: w.Type, wit: str) -> None:
        self.nested = is_option(payload)
        self.expected = f"{wit} (None or Some(...))"

    def case(self, v: Any) -> Tuple[int, Any]:
        if v is None:
            return 0, None
        if self.nested:
            if not isinstance(v, Some):
                raise wrong(self.expected, v)
            return 1, v.value
        return 1, v

    def make(self, i: int, payload: Any) -> Any:
        if i == 0:
            return None
        return Some(payload) if self.nested else payload


class ResultParts:
    """result<T, E> as Ok(v) / Err(e); case 0 is ok, 1 is error."""

    def __init__(self, ok: Optional[w.Type], err: Optional[w.Type], wit: str) -> None:
        self.has_payload = (ok is not None, err is not None)
        self.wit = wit

    def case(self, v: Any) -> Tuple[int, Any]:
        if isinstance(v, Ok):
            i = 0
        elif isinstance(v, Err):
            i = 1
        else:
            raise wrong(f"{self.wit} (Ok(...) or Err(...))", v)
        if not self.has_payload[i] and v.value is not None:  # type: ignore[union-attr]
            raise TypeError(f"expected {self.wit}: {type(v).__name__} carries no value here, "
                            f"got {describe(v.value)}")
        return i, v.value  # type: ignore[union-attr]

    def make(self, i: int, payload: Any) -> Any:
        return Ok(payload) if i == 0 else Err(payload)


def wit_name(ty: w.Type) -> str:
    return wit_type_name(ty)
