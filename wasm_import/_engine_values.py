"""Converters between natural Python values and wasmtime's C component values.

For each WIT type a `Converter` is built once (when a module loads) and reused on every
call: `lower(value, cval, cx)` checks a Python value and writes it into a
`wasmtime_component_val_t`; `lift(cval, cx)` reads one back as a Python value. Nothing
re-reads function types per call, and values are tagged by our WIT model, never guessed
from Python types (wasmtime-py's own conversion returns variants untagged).

Memory rules:
- a container attaches its (zeroed) storage to `cval` before filling it, so a failure
  half-way leaves a well-formed value that the caller frees with one
  `wasmtime_component_val_delete`. Zeroed storage reads as `bool false`, owning nothing;
- a lowerer writes every field it relies on (a variant case without payload sets a NULL
  payload), because the call path reuses its value buffers from call to call.

Resources are delegated to a `ResourceCodec` chosen per resource type by the bindings:
guest-defined resources travel as handles wrapped in Python objects, host-defined ones
as Python objects kept in a per-instance table.

This module is part of the engine boundary: it is the only other place that touches
wasmtime's C structures.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict, Optional, Protocol, Tuple

from wasmtime import _bindings as _raw_bindings
from wasmtime import _ffi as ffi

from . import _wit_model as w
from ._names import snake
from ._pytypes import class_for, is_option, variant_classes, wit_type_name
from ._values import Err, Ok, Some

__all__ = ["Converter", "Codec", "ResourceCodec", "CallContext", "free_val"]

Val = ffi.wasmtime_component_val_t
VAL_SIZE = ctypes.sizeof(Val)
PAYLOAD_OFFSET = Val.of.offset

K_BOOL, K_S8, K_U8, K_S16, K_U16, K_S32, K_U32, K_S64, K_U64 = range(9)
K_F32, K_F64, K_CHAR, K_STRING, K_LIST, K_RECORD, K_TUPLE = range(9, 16)
K_VARIANT, K_ENUM, K_OPTION, K_RESULT, K_FLAGS, K_RESOURCE = range(16, 22)

_byref = ctypes.byref
_memset = ctypes.memset
_string_at = ctypes.string_at


def _c(name: str) -> Any:
    """wasmtime's C function `name` with its argument types, without wasmtime-py's
    Python wrapper around it (one Python call less on every value)."""
    return getattr(_raw_bindings, "_" + name)


_val_new = _c("wasmtime_component_val_new")
_val_delete = _c("wasmtime_component_val_delete")
_vallist_new_uninit = _c("wasmtime_component_vallist_new_uninit")
# wasm_byte_vec_new(out, size, data) with `data` taken straight from a bytes object.
_vec_new = ctypes.CFUNCTYPE(None, ctypes.POINTER(ffi.wasm_byte_vec_t), ctypes.c_size_t, ctypes.c_char_p)(
    ctypes.cast(ffi.dll.wasm_byte_vec_new, ctypes.c_void_p).value)


class CallContext(Protocol):
    """What a converter may need from the call it serves: the store, and the instance
    whose resource handles it may touch."""

    store: Any
    owner: Any


class ResourceCodec(Protocol):
    def lower_own(self, value: Any, cx: CallContext) -> Any: ...
    def lower_borrow(self, value: Any, cx: CallContext) -> Any: ...
    def lift_own(self, ptr: Any, cx: CallContext) -> Any: ...
    def lift_borrow(self, ptr: Any, cx: CallContext) -> Any: ...


Lower = Callable[[Any, Any, Any], None]
Lift = Callable[[Any, Any], Any]


class Converter:
    """`lower` and `lift` for one WIT type. `owns_memory` is False for scalars, whose C
    values hold nothing to free (the call path skips freeing them). A scalar also has
    `packed`: its `struct` code, its value kind, and a `check` that validates a Python
    value (raising as `lower` would) and returns what to pack, so that a caller whose
    parameters are all scalars can write them with one `struct.pack_into`."""

    __slots__ = ("lower", "lift", "wit", "owns_memory", "packed")

    def __init__(self, lower: Lower, lift: Lift, wit: str, owns_memory: bool = True,
                 packed: Optional[Tuple[str, int, Callable[[Any], Any]]] = None) -> None:
        self.lower = lower
        self.lift = lift
        self.wit = wit
        self.owns_memory = owns_memory
        self.packed = packed


def free_val(cval: Any) -> None:
    """Free whatever a lowered or returned value owns, and leave it reading as
    `bool false` (owning nothing), so freeing it again, or reusing it, is safe."""
    _val_delete(_byref(cval))
    cval.kind = K_BOOL


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _wrong(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {_describe(value)}")


def _in(where: str, e: Exception) -> Exception:
    """Prefix an error from a nested value with where it happened."""
    return type(e)(f"{where}: {e}")


def _write_name(vec: Any, encoded: bytes) -> None:
    """Fill a `wasm_name_t` with a copy of `encoded` (wasmtime owns and frees it)."""
    _vec_new(_byref(vec), len(encoded), encoded)


def _read_bytes(vec: Any) -> bytes:
    size = vec.size
    return _string_at(vec.data, size) if size else b""


def _alloc_vals(holder: Any, count: int, new_uninit: Callable[..., None], stride: int) -> Any:
    """Allocate `count` zeroed elements in a vallist/valtuple/valrecord `holder`."""
    new_uninit(_byref(holder), count)
    if count:
        _memset(holder.data, 0, count * stride)
    return holder.data


def _boxed(lower: Lower, value: Any, cx: Any) -> Any:
    """Lower a payload into a fresh heap value (for variant/option/result payloads)."""
    tmp = Val()
    try:
        lower(value, tmp, cx)
    except BaseException:
        _val_delete(_byref(tmp))
        raise
    return _val_new(_byref(tmp))


# -- scalars ----------------------------------------------------------------------------------

def _int_converter(kind: int, field: str, bits: int, signed: bool) -> Converter:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    name = f"{'s' if signed else 'u'}{bits}"
    expected = f"{name} (an int in {lo}..{hi})"

    def check(v: Any) -> int:
        if not isinstance(v, int):
            raise _wrong(expected, v)
        if not lo <= v <= hi:
            raise ValueError(f"expected {expected}, got {v}: out of range")
        return v

    def lower(v: Any, c: Any, cx: Any) -> None:
        c.kind = kind
        setattr(c.of, field, check(v))

    def lift(c: Any, cx: Any) -> int:
        return getattr(c.of, field)  # type: ignore[no-any-return]

    code = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
    return Converter(lower, lift, name, owns_memory=False,
                     packed=(code if signed else code.upper(), kind, check))


def _bool_converter() -> Converter:
    def check(v: Any) -> bool:
        if v is not True and v is not False:
            raise _wrong("bool", v)
        return v  # type: ignore[no-any-return]

    def lower(v: Any, c: Any, cx: Any) -> None:
        c.kind = K_BOOL
        c.of.boolean = check(v)

    def lift(c: Any, cx: Any) -> bool:
        return bool(c.of.boolean)

    return Converter(lower, lift, "bool", owns_memory=False, packed=("?", K_BOOL, check))


def _float_converter(bits: int) -> Converter:
    kind, field = (K_F32, "f32") if bits == 32 else (K_F64, "f64")

    def lower(v: Any, c: Any, cx: Any) -> None:
        if not isinstance(v, (float, int)) or isinstance(v, bool):
            raise _wrong(f"{field} (a float)", v)
        c.kind = kind
        try:
            setattr(c.of, field, v)
        except OverflowError:
            raise ValueError(f"expected {field}, got {v}: too large for a float") from None

    def lift(c: Any, cx: Any) -> float:
        return float(getattr(c.of, field))

    return Converter(lower, lift, field, owns_memory=False)


def _char_converter() -> Converter:
    def lower(v: Any, c: Any, cx: Any) -> None:
        if not isinstance(v, str) or len(v) != 1:
            raise _wrong("char (a one-character str)", v)
        code = ord(v)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"expected char, got a lone surrogate {v!r}: not a Unicode scalar value")
        c.kind = K_CHAR
        c.of.character = code

    def lift(c: Any, cx: Any) -> str:
        return chr(c.of.character)

    return Converter(lower, lift, "char", owns_memory=False)


def _encode_str(v: Any) -> bytes:
    if not isinstance(v, str):
        raise _wrong("string (a str)", v)
    try:
        return v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"expected string, got a str that is not valid Unicode "
                         f"(lone surrogate at index {e.start})") from None


def _string_converter() -> Converter:
    def lower(v: Any, c: Any, cx: Any) -> None:
        encoded = _encode_str(v)
        c.kind = K_STRING
        _write_name(c.of.string, encoded)

    def lift(c: Any, cx: Any) -> str:
        return _read_bytes(c.of.string).decode("utf-8")

    return Converter(lower, lift, "string")


# -- lists --------------------------------------------------------------------------------------

def _bytes_converter(wit: str) -> Converter:
    """`list<u8>` as bytes, filled in bulk: every element is a 32-byte value whose kind byte
    is U8 and whose payload byte sits at PAYLOAD_OFFSET."""

    def lower(v: Any, c: Any, cx: Any) -> None:
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise _wrong("list<u8> (bytes, bytearray or memoryview)", v)
        data = bytes(v)
        n = len(data)
        c.kind = K_LIST
        _vallist_new_uninit(_byref(c.of.list), n)
        if n:
            # Write the 32-byte values in place: zero them, then set every kind byte and
            # every payload byte with two strided slice assignments (C speed).
            size = n * VAL_SIZE
            view = memoryview((ctypes.c_char * size).from_address(_address(c.of.list.data))).cast("B")
            _memset(c.of.list.data, 0, size)
            view[0::VAL_SIZE] = _kind_bytes(n)
            view[PAYLOAD_OFFSET::VAL_SIZE] = data

    def lift(c: Any, cx: Any) -> bytes:
        n = c.of.list.size
        if not n:
            return b""
        view = memoryview((ctypes.c_char * (n * VAL_SIZE)).from_address(_address(c.of.list.data)))
        return view.cast("B")[PAYLOAD_OFFSET::VAL_SIZE].tobytes()

    return Converter(lower, lift, wit)


def _address(ptr: Any) -> int:
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


_U8_KINDS = bytes([K_U8]) * 4096


def _kind_bytes(n: int) -> bytes:
    return _U8_KINDS[:n] if n <= len(_U8_KINDS) else bytes([K_U8]) * n


def _list_converter(element: Converter, wit: str) -> Converter:
    lower_el, lift_el = element.lower, element.lift
    new_uninit = _c("wasmtime_component_vallist_new_uninit")

    def lower(v: Any, c: Any, cx: Any) -> None:
        if not isinstance(v, (list, tuple)):
            raise _wrong(f"{wit} (a list)", v)
        c.kind = K_LIST
        data = _alloc_vals(c.of.list, len(v), new_uninit, VAL_SIZE)
        for i, item in enumerate(v):
            try:
                lower_el(item, data[i], cx)
            except (TypeError, ValueError) as e:
                raise _in(f"item {i}", e) from None

    def lift(c: Any, cx: Any) -> list:  # type: ignore[type-arg]
        data = c.of.list.data
        return [lift_el(data[i], cx) for i in range(c.of.list.size)]

    return Converter(lower, lift, wit)


def _tuple_converter(elements: Tuple[Converter, ...], wit: str) -> Converter:
    lowers = tuple(e.lower for e in elements)
    lifts = tuple(e.lift for e in elements)
    n = len(elements)
    new_uninit = _c("wasmtime_component_valtuple_new_uninit")

    def lower(v: Any, c: Any, cx: Any) -> None:
        if not isinstance(v, (tuple, list)) or len(v) != n:
            raise _wrong(f"{wit} (a tuple of {n})", v)
        c.kind = K_TUPLE
        data = _alloc_vals(c.of.tuple, n, new_uninit, VAL_SIZE)
        for i in range(n):
            try:
                lowers[i](v[i], data[i], cx)
            except (TypeError, ValueError) as e:
                raise _in(f"tuple item {i}", e) from None

    def lift(c: Any, cx: Any) -> tuple:  # type: ignore[type-arg]
        data = c.of.tuple.data
        return tuple(lifts[i](data[i], cx) for i in range(n))

    return Converter(lower, lift, wit)


# -- records, variants, enums, flags --------------------------------------------------------------

_RECORD_ENTRY_SIZE = ctypes.sizeof(ffi.wasmtime_component_valrecord_entry_t)


def _record_converter(td: w.TypeDef, fields: Tuple[Tuple[str, Converter], ...]) -> Converter:
    cls = class_for(td)
    wit = td.name or "record"
    plan = tuple((snake(name), name.encode(), conv.lower, conv.lift) for name, conv in fields)
    n = len(plan)
    new_uninit = _c("wasmtime_component_valrecord_new_uninit")

    def lower(v: Any, c: Any, cx: Any) -> None:
        if v.__class__ is not cls and not hasattr(v, "__dataclass_fields__"):
            raise _wrong(f"record {wit} ({cls.__name__})", v)
        c.kind = K_RECORD
        data = _alloc_vals(c.of.record, n, new_uninit, _RECORD_ENTRY_SIZE)
        for i, (attr, wit_name, lower_field, _) in enumerate(plan):
            entry = data[i]
            _write_name(entry.name, wit_name)
            try:
                field_value = getattr(v, attr)
            except AttributeError:
                raise TypeError(f"expected record {wit} ({cls.__name__}), "
                                f"got {_describe(v)} without field {attr!r}") from None
            try:
                lower_field(field_value, entry.val, cx)
            except (TypeError, ValueError) as e:
                raise _in(f"field {attr!r} of {cls.__name__}", e) from None

    def lift(c: Any, cx: Any) -> Any:
        data = c.of.record.data
        return cls(*[plan[i][3](data[i].val, cx) for i in range(n)])

    return Converter(lower, lift, wit)


def _variant_converter(td: w.TypeDef, payloads: Tuple[Optional[Converter], ...]) -> Converter:
    info = variant_classes(td)
    wit = td.name or "variant"
    by_class: Dict[type, Tuple[bytes, Optional[Lower]]] = {}
    by_name: Dict[bytes, Tuple[type, Optional[Lift]]] = {}
    for (case_name, cls, _), payload in zip(info.cases, payloads):
        by_class[cls] = (case_name.encode(), payload.lower if payload else None)
        by_name[case_name.encode()] = (cls, payload.lift if payload else None)
    expected = " | ".join(cls.__name__ for _, cls, _ in info.cases)

    def lower(v: Any, c: Any, cx: Any) -> None:
        found = by_class.get(v.__class__)
        if found is None:
            raise _wrong(f"variant {wit} ({expected})", v)
        name, lower_payload = found
        c.kind = K_VARIANT
        _write_name(c.of.variant.discriminant, name)
        c.of.variant.val = None  # no payload (and no stale pointer in a reused buffer)
        if lower_payload is not None:
            try:
                c.of.variant.val = _boxed(lower_payload, v.value, cx)
            except (TypeError, ValueError) as e:
                raise _in(f"{v.__class__.__name__}.value", e) from None

    def lift(c: Any, cx: Any) -> Any:
        cls, lift_payload = by_name[_read_bytes(c.of.variant.discriminant)]
        if lift_payload is None:
            return cls()
        return cls(lift_payload(c.of.variant.val.contents, cx))

    return Converter(lower, lift, wit)


def _enum_converter(td: w.TypeDef) -> Converter:
    cls = class_for(td)
    wit = td.name or "enum"
    assert isinstance(td.kind, w.Enum)
    names = [case.name.encode() for case in td.kind.cases]
    to_name = {member: names[i] for i, member in enumerate(cls)}
    from_name = {names[i]: member for i, member in enumerate(cls)}

    def lower(v: Any, c: Any, cx: Any) -> None:
        name = to_name.get(v) if isinstance(v, cls) else None
        if name is None:
            raise _wrong(f"enum {wit} ({cls.__name__})", v)
        c.kind = K_ENUM
        _write_name(c.of.enumeration, name)

    def lift(c: Any, cx: Any) -> Any:
        return from_name[_read_bytes(c.of.enumeration)]

    return Converter(lower, lift, wit)


def _flags_converter(td: w.TypeDef) -> Converter:
    cls = class_for(td)
    wit = td.name or "flags"
    assert isinstance(td.kind, w.Flags)
    names = [(1 << i, flag.name.encode()) for i, flag in enumerate(td.kind.flags)]
    from_name = {name: bit for bit, name in names}
    new_uninit = _c("wasmtime_component_valflags_new_uninit")
    name_size = ctypes.sizeof(ffi.wasm_name_t)

    def lower(v: Any, c: Any, cx: Any) -> None:
        if not isinstance(v, cls):
            raise _wrong(f"flags {wit} ({cls.__name__})", v)
        bits = v.value
        present = [name for bit, name in names if bits & bit]
        c.kind = K_FLAGS
        data = _alloc_vals(c.of.flags, len(present), new_uninit, name_size)
        for i, name in enumerate(present):
            _write_name(data[i], name)

    def lift(c: Any, cx: Any) -> Any:
        data = c.of.flags.data
        bits = 0
        for i in range(c.of.flags.size):
            bits |= from_name[_read_bytes(data[i])]
        return cls(bits)

    return Converter(lower, lift, wit)


# -- option and result ------------------------------------------------------------------------------

def _option_converter(payload: Converter, nested: bool, wit: str) -> Converter:
    lower_payload, lift_payload = payload.lower, payload.lift

    def lower(v: Any, c: Any, cx: Any) -> None:
        c.kind = K_OPTION
        if v is None:
            c.of.option = None
            return
        if nested:
            if not isinstance(v, Some):
                raise _wrong(f"{wit} (None or Some(...))", v)
            v = v.value
        c.of.option = _boxed(lower_payload, v, cx)

    def lift(c: Any, cx: Any) -> Any:
        ptr = c.of.option
        if not ptr:
            return None
        value = lift_payload(ptr.contents, cx)
        return Some(value) if nested else value

    return Converter(lower, lift, wit)


def _result_lower(ok: Optional[Converter], err: Optional[Converter], wit: str) -> Lower:
    lower_ok = ok.lower if ok else None
    lower_err = err.lower if err else None

    def lower(v: Any, c: Any, cx: Any) -> None:
        if isinstance(v, Ok):
            is_ok, lower_payload = True, lower_ok
        elif isinstance(v, Err):
            is_ok, lower_payload = False, lower_err
        else:
            raise _wrong(f"{wit} (Ok(...) or Err(...))", v)
        c.kind = K_RESULT
        c.of.result.is_ok = is_ok
        if lower_payload is None:
            if v.value is not None:
                raise TypeError(f"expected {wit}: {type(v).__name__} carries no value here, "
                                f"got {_describe(v.value)}")
            c.of.result.val = None
        else:
            c.of.result.val = _boxed(lower_payload, v.value, cx)

    return lower


def _result_converter(ok: Optional[Converter], err: Optional[Converter], wit: str) -> Converter:
    lift_ok = ok.lift if ok else None
    lift_err = err.lift if err else None

    def lift(c: Any, cx: Any) -> Any:
        ptr = c.of.result.val
        if c.of.result.is_ok:
            return Ok(lift_ok(ptr.contents, cx) if lift_ok else None)
        return Err(lift_err(ptr.contents, cx) if lift_err else None)

    return Converter(_result_lower(ok, err, wit), lift, wit)


def returned_result(conv: Converter) -> Converter:
    """A function's returned `result<T, E>`: lifting returns T or raises Err(e); lowering
    (a host function's return value) takes T, and a raised Err is caught by the caller."""
    inner_lift, inner_lower = conv.lift, conv.lower

    def lift(c: Any, cx: Any) -> Any:
        value = inner_lift(c, cx)
        if isinstance(value, Err):
            raise value
        return value.value

    def lower(v: Any, c: Any, cx: Any) -> None:
        inner_lower(v if isinstance(v, Err) else Ok(v), c, cx)

    return Converter(lower, lift, conv.wit)


# -- resources ------------------------------------------------------------------------------------

def _handle_converter(codec: ResourceCodec, borrow: bool, wit: str) -> Converter:
    if borrow:
        lower_handle, lift_handle = codec.lower_borrow, codec.lift_borrow
    else:
        lower_handle, lift_handle = codec.lower_own, codec.lift_own

    def lower(v: Any, c: Any, cx: Any) -> None:
        ptr = lower_handle(v, cx)
        c.kind = K_RESOURCE
        c.of.resource = ptr

    def lift(c: Any, cx: Any) -> Any:
        ptr = ffi.take_pointer(c.of, "resource")
        return lift_handle(ptr, cx)

    return Converter(lower, lift, wit)


# -- the codec: converters for every type, made once ----------------------------------------------

class Codec:
    """Builds (and caches) converters for the types seen from one side of a component.

    `resource_codec(resource_typedef)` picks how handles of a resource travel; the
    bindings decide it (guest-defined or host-defined), since that depends on whether the
    resource comes from an import or an export.
    """

    def __init__(self, resource_codec: Callable[[w.TypeDef], ResourceCodec]) -> None:
        self._resource_codec = resource_codec
        self._cache: Dict[Any, Converter] = {}

    def converter(self, ty: w.Type) -> Converter:
        found = self._cache.get(ty)
        if found is None:
            found = self._cache[ty] = self._build(ty)
        return found

    def _build(self, ty: w.Type) -> Converter:
        if isinstance(ty, w.Primitive):
            return _primitive_converter(ty)
        kind = ty.kind
        wit = wit_type_name(ty)
        if isinstance(kind, w.Alias):
            return self.converter(kind.target)
        if isinstance(kind, w.Record):
            return _record_converter(ty, tuple((f.name, self.converter(f.type)) for f in kind.fields))
        if isinstance(kind, w.Variant):
            payloads = tuple(self.converter(c.type) if c.type is not None else None for c in kind.cases)
            return _variant_converter(ty, payloads)
        if isinstance(kind, w.Enum):
            return _enum_converter(ty)
        if isinstance(kind, w.Flags):
            return _flags_converter(ty)
        if isinstance(kind, w.List):
            if w.unalias(kind.element) is w.Primitive.U8:
                return _bytes_converter(wit)
            return _list_converter(self.converter(kind.element), wit)
        if isinstance(kind, w.Tuple):
            return _tuple_converter(tuple(self.converter(t) for t in kind.types), wit)
        if isinstance(kind, w.Option):
            return _option_converter(self.converter(kind.type), is_option(kind.type), wit)
        if isinstance(kind, w.Result):
            ok = self.converter(kind.ok) if kind.ok is not None else None
            err = self.converter(kind.err) if kind.err is not None else None
            return _result_converter(ok, err, wit)
        if isinstance(kind, (w.Own, w.Borrow)):
            resource = w.unalias(kind.resource)
            assert isinstance(resource, w.TypeDef)
            return _handle_converter(self._resource_codec(resource), isinstance(kind, w.Borrow), wit)
        return _unsupported(wit)


def _unsupported(wit: str) -> Converter:
    def fail(*_: Any) -> Any:
        raise TypeError(f"values of WIT type {wit} are not supported by this engine yet")

    return Converter(fail, fail, wit)


_PRIMITIVES: Dict[w.Primitive, Callable[[], Converter]] = {
    w.Primitive.BOOL: _bool_converter,
    w.Primitive.U8: lambda: _int_converter(K_U8, "u8", 8, False),
    w.Primitive.U16: lambda: _int_converter(K_U16, "u16", 16, False),
    w.Primitive.U32: lambda: _int_converter(K_U32, "u32", 32, False),
    w.Primitive.U64: lambda: _int_converter(K_U64, "u64", 64, False),
    w.Primitive.S8: lambda: _int_converter(K_S8, "s8", 8, True),
    w.Primitive.S16: lambda: _int_converter(K_S16, "s16", 16, True),
    w.Primitive.S32: lambda: _int_converter(K_S32, "s32", 32, True),
    w.Primitive.S64: lambda: _int_converter(K_S64, "s64", 64, True),
    w.Primitive.F32: lambda: _float_converter(32),
    w.Primitive.F64: lambda: _float_converter(64),
    w.Primitive.CHAR: _char_converter,
    w.Primitive.STRING: _string_converter,
    w.Primitive.ERROR_CONTEXT: lambda: _unsupported("error-context"),
}

_primitive_cache: Dict[w.Primitive, Converter] = {}


def _primitive_converter(p: w.Primitive) -> Converter:
    conv = _primitive_cache.get(p)
    if conv is None:
        conv = _primitive_cache[p] = _PRIMITIVES[p]()
    return conv

