"""Converters between natural Python values and wasmtime's C component values.

For each WIT type a `Converter` is built once (when its function is first called) and
reused on every call. Its two working halves address C memory directly:

- `write(value, address, cx)` checks a Python value and writes it into the
  `wasmtime_component_val_t` at `address`;
- `read(address, cx)` reads the value at `address` back as a Python value.

Both pack and unpack fields with precompiled `struct`s on `MEM`, a memoryview of the
whole address space, instead of making a ctypes Structure or Union object per field
(that alone cost most of a call); strings and lists are allocated by wasmtime's own C
allocators, called on plain addresses. `lower(value, cval, cx)` and `lift(cval, cx)` are
the same on a ctypes `Val`. Two kinds still lower through ctypes objects, their `write`
wrapping that: f32 (ctypes rounds out-of-range doubles as C does) and resource handles
(a handle is moved in and out of a value by wasmtime-py's helpers). Nothing re-reads
function types per call, and values are tagged by our WIT model, never guessed from
Python types (wasmtime-py's own conversion returns variants untagged).

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
import struct
from typing import Any, Callable, Dict, Optional, Protocol, Tuple

from wasmtime import _ffi as ffi

from . import _engine_lib as _lib
from . import _wit_model as w
from ._names import snake
from ._pytypes import class_for, is_option, variant_classes, wit_type_name
from ._values import Err, Ok, Some

__all__ = ["Converter", "Codec", "ResourceCodec", "CallContext", "free_val", "free_at", "MEM",
           "scalars_writer", "first_refused"]

Val = ffi.wasmtime_component_val_t
VAL_SIZE = ctypes.sizeof(Val)
PAYLOAD_OFFSET = Val.of.offset

K_BOOL, K_S8, K_U8, K_S16, K_U16, K_S32, K_U32, K_S64, K_U64 = range(9)
K_F32, K_F64, K_CHAR, K_STRING, K_LIST, K_RECORD, K_TUPLE = range(9, 16)
K_VARIANT, K_ENUM, K_OPTION, K_RESULT, K_FLAGS, K_RESOURCE = range(16, 22)

_memset = ctypes.memset


_addressof = ctypes.addressof
# wasm_byte_vec_new(out, size, data) and the *_new_uninit allocators, on addresses.
_vec_new_at = _lib.c_function("wasm_byte_vec_new", None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
_val_new_at = _lib.c_function("wasmtime_component_val_new", ctypes.c_void_p, ctypes.c_void_p)
_val_delete_at = _lib.c_function("wasmtime_component_val_delete", None, ctypes.c_void_p)
_list_new_at = _lib.c_function("wasmtime_component_vallist_new_uninit", None, ctypes.c_void_p, ctypes.c_size_t)
_record_new_at = _lib.c_function("wasmtime_component_valrecord_new_uninit", None, ctypes.c_void_p, ctypes.c_size_t)
_tuple_new_at = _lib.c_function("wasmtime_component_valtuple_new_uninit", None, ctypes.c_void_p, ctypes.c_size_t)
_flags_new_at = _lib.c_function("wasmtime_component_valflags_new_uninit", None, ctypes.c_void_p, ctypes.c_size_t)
_KIND = struct.Struct("<B").pack_into
_KIND_PTR = struct.Struct(f"<B{PAYLOAD_OFFSET - 1}xQ").pack_into  # a kind and a pointer payload


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
# read(address, cx): the value of the Val at `address`; write(value, address, cx): lower
# `value` into the Val at `address`, writing every field. Both go through MEM with
# `struct`, instead of making a ctypes Structure or Union object per field.
Read = Callable[[int, Any], Any]
Write = Callable[[Any, int, Any], None]

# The process's memory as one writable buffer, indexed by address: `struct` reads and
# writes C values in place at the addresses wasmtime hands out, and a string is decoded
# straight from a slice. Only addresses of live values wasmtime gave us are ever touched.
MEM = memoryview((ctypes.c_char * (1 << 62)).from_address(0)).cast("B")

_P = PAYLOAD_OFFSET
_SIZE_PTR = struct.Struct("<QQ")  # {size, data}: names, strings, lists, records, tuples, flags
_PTR = struct.Struct("<Q")
_VARIANT = struct.Struct("<QQQ")  # discriminant name {size, data}, payload pointer
_RESULT = struct.Struct(f"<?{ffi.wasmtime_component_valresult_t.val.offset - 1}xQ")  # is_ok, payload pointer
_RESULT_VAL = _P + ffi.wasmtime_component_valresult_t.val.offset  # where a result's payload pointer is
_RESULT_HEAD = struct.Struct(f"<B{_P - 1}x?{_RESULT_VAL - _P - 1}xQ").pack_into  # kind, is_ok, payload
_VARIANT_VAL = _P + ffi.wasmtime_component_valvariant_t.val.offset  # where a variant's payload pointer is
_ENTRY_SIZE = ctypes.sizeof(ffi.wasmtime_component_valrecord_entry_t)
_ENTRY_VAL = ffi.wasmtime_component_valrecord_entry_t.val.offset
_NAME_SIZE = ctypes.sizeof(ffi.wasm_name_t)
assert _SIZE_PTR.size == ctypes.sizeof(ffi.wasm_name_t) == ctypes.sizeof(ffi.wasmtime_component_vallist_t)
assert ffi.wasmtime_component_valvariant_t.val.offset == 16


def _name_at(addr: int) -> bytes:
    """The bytes of the `wasm_name_t` at `addr`."""
    size, ptr = _SIZE_PTR.unpack_from(MEM, addr)
    return MEM[ptr:ptr + size].tobytes() if size else b""


class Converter:
    """`lower` and `lift` for one WIT type. `owns_memory` is False for scalars, whose C
    values hold nothing to free (the call path skips freeing them). A scalar also has
    `packed`: its `struct` code, its value kind, and a `check` that validates a Python
    value (raising as `lower` would) and returns what to pack, so that a caller whose
    parameters are all scalars can write them with one `struct.pack_into`."""

    __slots__ = ("lower", "lift", "read", "write", "wit", "owns_memory", "packed")

    def __init__(self, lower: Optional[Lower], lift: Optional[Lift], wit: str, owns_memory: bool = True,
                 packed: Optional[Tuple[str, int, Callable[[Any], Any]]] = None,
                 read: Optional[Read] = None, write: Optional[Write] = None) -> None:
        if write is not None and lower is None:
            def lower(v: Any, c: Any, cx: Any) -> None:
                write(v, _addressof(c), cx)
        elif write is None and lower is not None:
            def write(v: Any, addr: int, cx: Any) -> None:
                lower(v, Val.from_address(addr), cx)  # type: ignore[misc]
        assert lower is not None and write is not None
        self.write = write
        if read is not None and lift is None:
            def lift(c: Any, cx: Any) -> Any:
                return read(_addressof(c), cx)
        elif read is None and lift is not None:
            def read(addr: int, cx: Any) -> Any:
                return lift(Val.from_address(addr), cx)  # type: ignore[misc]
        assert lift is not None and read is not None
        self.lower = lower
        self.lift = lift
        self.read = read
        self.wit = wit
        self.owns_memory = owns_memory
        self.packed = packed


def free_val(cval: Any) -> None:
    """Free whatever a lowered or returned value owns, and leave it reading as
    `bool false` (owning nothing), so freeing it again, or reusing it, is safe."""
    free_at(_addressof(cval))


def free_at(addr: int) -> None:
    """`free_val` for the Val at `addr`."""
    _val_delete_at(addr)
    _KIND(MEM, addr, K_BOOL)


def scalars_writer(converters: Tuple[Converter, ...], label: str) -> Optional[Callable[[int, Any], None]]:
    """For parameters that are all scalars: one generated function, `write_all(address,
    args)`, that checks every argument and writes all the values (kind and payload) into
    the Val array at `address` with a single `struct.pack_into`. None otherwise."""
    packed = [c.packed for c in converters]
    if not packed or any(p is None for p in packed):
        return None
    fmt, names, values = "<", {"MEM": MEM}, []
    for i, (code, kind, check) in enumerate(packed):  # type: ignore[misc]
        fmt += f"B{_P - 1}x{code}{VAL_SIZE - _P - struct.calcsize('<' + code)}x"
        names[f"check{i}"] = check
        values.append(f"{kind}, check{i}(args[{i}])")
    names["pack"] = struct.Struct(fmt).pack_into
    source = f"def write_all(address, args):\n    pack(MEM, address, {', '.join(values)})\n"
    exec(compile(source, f"<wasm-import lowering of {label}>", "exec"), names)
    return names["write_all"]  # type: ignore[return-value]


def first_refused(converters: Tuple[Converter, ...], args: Tuple[Any, ...]) -> int:
    """Which argument a `scalars_writer` refused (its checks have no side effects)."""
    for i, converter in enumerate(converters):
        try:
            converter.packed[2](args[i])  # type: ignore[index]
        except (TypeError, ValueError):
            return i
    return 0


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


def _boxed_at(write: Write, value: Any, cx: Any) -> int:
    """Write a payload into a fresh heap value (option/result/variant payloads); its address."""
    tmp = Val()
    try:
        write(value, _addressof(tmp), cx)
    except BaseException:
        _val_delete_at(_addressof(tmp))
        raise
    return _val_new_at(_addressof(tmp)) or 0


def _alloc_at(addr: int, kind: int, count: int, new_at: Any, stride: int) -> int:
    """Make the Val at `addr` a `kind` holding `count` zeroed elements of `stride` bytes
    (allocated by wasmtime); the address of the first."""
    _KIND(MEM, addr, kind)
    new_at(addr + _P, count)
    if not count:
        return 0
    ptr: int = _PTR.unpack_from(MEM, addr + _P + 8)[0]
    _memset(ptr, 0, count * stride)
    return ptr


# -- scalars ----------------------------------------------------------------------------------

def _int_converter(kind: int, bits: int, signed: bool) -> Converter:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    name = f"{'s' if signed else 'u'}{bits}"
    expected = f"{name} (an int in {lo}..{hi})"

    def check(v: Any) -> int:
        if v.__class__ is not int and (not isinstance(v, int) or isinstance(v, bool)):
            raise _wrong(expected, v)  # bool is refused, as for floats (see _checks)
        if not lo <= v <= hi:
            raise ValueError(f"expected {expected}, got {v}: out of range")
        return v

    code = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
    code = code if signed else code.upper()
    unpack = struct.Struct("<" + code).unpack_from
    pack = struct.Struct(f"<B{_P - 1}x{code}").pack_into

    def write(v: Any, addr: int, cx: Any) -> None:
        pack(MEM, addr, kind, check(v))

    def read(addr: int, cx: Any) -> int:
        return unpack(MEM, addr + _P)[0]  # type: ignore[no-any-return]

    return Converter(None, None, name, owns_memory=False, packed=(code, kind, check), read=read, write=write)


def _bool_converter() -> Converter:
    def check(v: Any) -> bool:
        if v is not True and v is not False:
            raise _wrong("bool", v)
        return v  # type: ignore[no-any-return]

    pack = struct.Struct(f"<B{_P - 1}x?").pack_into

    def write(v: Any, addr: int, cx: Any) -> None:
        pack(MEM, addr, K_BOOL, check(v))

    unpack = struct.Struct("<?").unpack_from

    def read(addr: int, cx: Any) -> bool:
        return unpack(MEM, addr + _P)[0]  # type: ignore[no-any-return]

    return Converter(None, None, "bool", owns_memory=False, packed=("?", K_BOOL, check), read=read,
                     write=write)


def _float_converter(bits: int) -> Converter:
    kind, field = (K_F32, "f32") if bits == 32 else (K_F64, "f64")

    pack = struct.Struct(f"<B{_P - 1}xd").pack_into

    def check(v: Any) -> Any:
        if not isinstance(v, (float, int)) or isinstance(v, bool):
            raise _wrong(f"{field} (a float)", v)
        return v

    def write(v: Any, addr: int, cx: Any) -> None:  # f64
        try:
            pack(MEM, addr, kind, check(v))
        except OverflowError:
            raise ValueError(f"expected {field}, got {v}: too large for a float") from None

    def lower(v: Any, c: Any, cx: Any) -> None:  # f32: ctypes rounds as C does (1e39 -> inf)
        check(v)
        c.kind = kind
        try:
            c.of.f32 = v
        except OverflowError:
            raise ValueError(f"expected {field}, got {v}: too large for a float") from None

    unpack = struct.Struct("<f" if bits == 32 else "<d").unpack_from

    def read(addr: int, cx: Any) -> float:
        return unpack(MEM, addr + _P)[0]  # type: ignore[no-any-return]

    if bits == 32:
        return Converter(lower, None, field, owns_memory=False, read=read)
    return Converter(None, None, field, owns_memory=False, read=read, write=write)


def _char_converter() -> Converter:
    def write(v: Any, addr: int, cx: Any) -> None:
        if not isinstance(v, str) or len(v) != 1:
            raise _wrong("char (a one-character str)", v)
        code = ord(v)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"expected char, got a lone surrogate {v!r}: not a Unicode scalar value")
        pack(MEM, addr, K_CHAR, code)

    pack = struct.Struct(f"<B{_P - 1}xI").pack_into
    unpack = struct.Struct("<I").unpack_from

    def read(addr: int, cx: Any) -> str:
        return chr(unpack(MEM, addr + _P)[0])

    return Converter(None, None, "char", owns_memory=False, read=read, write=write)


def _encode_str(v: Any) -> bytes:
    if not isinstance(v, str):
        raise _wrong("string (a str)", v)
    try:
        return v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"expected string, got a str that is not valid Unicode "
                         f"(lone surrogate at index {e.start})") from None


def _string_converter() -> Converter:
    def write(v: Any, addr: int, cx: Any) -> None:
        encoded = _encode_str(v)
        _KIND(MEM, addr, K_STRING)
        _vec_new_at(addr + _P, len(encoded), encoded)

    def read(addr: int, cx: Any) -> str:
        size, ptr = _SIZE_PTR.unpack_from(MEM, addr + _P)
        return str(MEM[ptr:ptr + size], "utf-8") if size else ""

    return Converter(None, None, "string", read=read, write=write)


# -- lists --------------------------------------------------------------------------------------

def _bytes_converter(wit: str) -> Converter:
    """`list<u8>` as bytes, filled in bulk: every element is a 32-byte value whose kind byte
    is U8 and whose payload byte sits at PAYLOAD_OFFSET."""

    def write(v: Any, addr: int, cx: Any) -> None:
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise _wrong("list<u8> (bytes, bytearray or memoryview)", v)
        data = bytes(v)
        n = len(data)
        items = _alloc_at(addr, K_LIST, n, _list_new_at, VAL_SIZE)  # zeroed
        if n:
            # Set every kind byte and every payload byte of the 32-byte values with two
            # strided slice assignments (C speed).
            end = items + n * VAL_SIZE
            MEM[items:end:VAL_SIZE] = _kind_bytes(n)
            MEM[items + _P:end:VAL_SIZE] = data

    def read(addr: int, cx: Any) -> bytes:
        n, ptr = _SIZE_PTR.unpack_from(MEM, addr + _P)
        if not n:
            return b""
        return MEM[ptr + _P:ptr + n * VAL_SIZE:VAL_SIZE].tobytes()

    return Converter(None, None, wit, read=read, write=write)


_U8_KINDS = bytes([K_U8]) * 4096


def _kind_bytes(n: int) -> bytes:
    return _U8_KINDS[:n] if n <= len(_U8_KINDS) else bytes([K_U8]) * n


def _list_converter(element: Converter, wit: str) -> Converter:
    write_el, read_el = element.write, element.read

    def write(v: Any, addr: int, cx: Any) -> None:
        if not isinstance(v, (list, tuple)):
            raise _wrong(f"{wit} (a list)", v)
        items = _alloc_at(addr, K_LIST, len(v), _list_new_at, VAL_SIZE)
        for i, item in enumerate(v):
            try:
                write_el(item, items + i * VAL_SIZE, cx)
            except (TypeError, ValueError) as e:
                raise _in(f"item {i}", e) from None

    def read(addr: int, cx: Any) -> list:  # type: ignore[type-arg]
        n, items = _SIZE_PTR.unpack_from(MEM, addr + _P)
        return [read_el(items + i * VAL_SIZE, cx) for i in range(n)]

    return Converter(None, None, wit, read=read, write=write)


def _tuple_converter(elements: Tuple[Converter, ...], wit: str) -> Converter:
    writes = tuple(e.write for e in elements)
    reads = tuple(e.read for e in elements)
    n = len(elements)

    def write(v: Any, addr: int, cx: Any) -> None:
        if not isinstance(v, (tuple, list)) or len(v) != n:
            raise _wrong(f"{wit} (a tuple of {n})", v)
        items = _alloc_at(addr, K_TUPLE, n, _tuple_new_at, VAL_SIZE)
        for i in range(n):
            try:
                writes[i](v[i], items + i * VAL_SIZE, cx)
            except (TypeError, ValueError) as e:
                raise _in(f"tuple item {i}", e) from None

    def read(addr: int, cx: Any) -> tuple:  # type: ignore[type-arg]
        items = _SIZE_PTR.unpack_from(MEM, addr + _P)[1]
        return tuple(reads[i](items + i * VAL_SIZE, cx) for i in range(n))

    return Converter(None, None, wit, read=read, write=write)


# -- records, variants, enums, flags --------------------------------------------------------------



def _record_converter(td: w.TypeDef, fields: Tuple[Tuple[str, Converter], ...]) -> Converter:
    cls = class_for(td)
    wit = td.name or "record"
    plan = tuple((snake(name), name.encode(), conv.write) for name, conv in fields)
    n = len(plan)

    def write(v: Any, addr: int, cx: Any) -> None:
        if v.__class__ is not cls and not hasattr(v, "__dataclass_fields__"):
            raise _wrong(f"record {wit} ({cls.__name__})", v)
        entries = _alloc_at(addr, K_RECORD, n, _record_new_at, _ENTRY_SIZE)
        for i, (attr, wit_name, write_field) in enumerate(plan):
            entry = entries + i * _ENTRY_SIZE
            _vec_new_at(entry, len(wit_name), wit_name)
            try:
                field_value = getattr(v, attr)
            except AttributeError:
                raise TypeError(f"expected record {wit} ({cls.__name__}), "
                                f"got {_describe(v)} without field {attr!r}") from None
            try:
                write_field(field_value, entry + _ENTRY_VAL, cx)
            except (TypeError, ValueError) as e:
                raise _in(f"field {attr!r} of {cls.__name__}", e) from None

    reads = tuple(conv.read for _, conv in fields)

    def read(addr: int, cx: Any) -> Any:
        values = _SIZE_PTR.unpack_from(MEM, addr + _P)[1] + _ENTRY_VAL
        return cls(*[reads[i](values + i * _ENTRY_SIZE, cx) for i in range(n)])

    return Converter(None, None, wit, read=read, write=write)


def _variant_converter(td: w.TypeDef, payloads: Tuple[Optional[Converter], ...]) -> Converter:
    info = variant_classes(td)
    wit = td.name or "variant"
    by_class: Dict[type, Tuple[bytes, Optional[Write]]] = {}
    by_name: Dict[bytes, Tuple[type, Optional[Read]]] = {}
    for (case_name, cls, _), payload in zip(info.cases, payloads):
        by_class[cls] = (case_name.encode(), payload.write if payload else None)
        by_name[case_name.encode()] = (cls, payload.read if payload else None)
    expected = " | ".join(cls.__name__ for _, cls, _ in info.cases)

    def write(v: Any, addr: int, cx: Any) -> None:
        found = by_class.get(v.__class__)
        if found is None:
            raise _wrong(f"variant {wit} ({expected})", v)
        name, write_payload = found
        _KIND(MEM, addr, K_VARIANT)
        _vec_new_at(addr + _P, len(name), name)
        _PTR.pack_into(MEM, addr + _VARIANT_VAL, 0)  # no payload (and no stale pointer)
        if write_payload is not None:
            try:
                _PTR.pack_into(MEM, addr + _VARIANT_VAL, _boxed_at(write_payload, v.value, cx))
            except (TypeError, ValueError) as e:
                raise _in(f"{v.__class__.__name__}.value", e) from None

    def read(addr: int, cx: Any) -> Any:
        size, name, payload = _VARIANT.unpack_from(MEM, addr + _P)
        cls, read_payload = by_name[MEM[name:name + size].tobytes()]
        if read_payload is None:
            return cls()
        return cls(read_payload(payload, cx))

    return Converter(None, None, wit, read=read, write=write)


def _enum_converter(td: w.TypeDef) -> Converter:
    cls = class_for(td)
    wit = td.name or "enum"
    assert isinstance(td.kind, w.Enum)
    names = [case.name.encode() for case in td.kind.cases]
    to_name = {member: names[i] for i, member in enumerate(cls)}
    from_name = {names[i]: member for i, member in enumerate(cls)}

    def write(v: Any, addr: int, cx: Any) -> None:
        name = to_name.get(v) if isinstance(v, cls) else None
        if name is None:
            raise _wrong(f"enum {wit} ({cls.__name__})", v)
        _KIND(MEM, addr, K_ENUM)
        _vec_new_at(addr + _P, len(name), name)

    def read(addr: int, cx: Any) -> Any:
        return from_name[_name_at(addr + _P)]

    return Converter(None, None, wit, read=read, write=write)


def _flags_converter(td: w.TypeDef) -> Converter:
    cls = class_for(td)
    wit = td.name or "flags"
    assert isinstance(td.kind, w.Flags)
    names = [(1 << i, flag.name.encode()) for i, flag in enumerate(td.kind.flags)]
    from_name = {name: bit for bit, name in names}
    def write(v: Any, addr: int, cx: Any) -> None:
        if not isinstance(v, cls):
            raise _wrong(f"flags {wit} ({cls.__name__})", v)
        bits = v.value
        present = [name for bit, name in names if bits & bit]
        at = _alloc_at(addr, K_FLAGS, len(present), _flags_new_at, _NAME_SIZE)
        for i, name in enumerate(present):
            _vec_new_at(at + i * _NAME_SIZE, len(name), name)

    def read(addr: int, cx: Any) -> Any:
        n, names = _SIZE_PTR.unpack_from(MEM, addr + _P)
        bits = 0
        for i in range(n):
            bits |= from_name[_name_at(names + i * _NAME_SIZE)]
        return cls(bits)

    return Converter(None, None, wit, read=read, write=write)


# -- option and result ------------------------------------------------------------------------------

def _option_converter(payload: Converter, nested: bool, wit: str) -> Converter:
    write_payload, read_payload = payload.write, payload.read

    def write(v: Any, addr: int, cx: Any) -> None:
        if v is None:
            _KIND_PTR(MEM, addr, K_OPTION, 0)
            return
        if nested:
            if not isinstance(v, Some):
                raise _wrong(f"{wit} (None or Some(...))", v)
            v = v.value
        _KIND_PTR(MEM, addr, K_OPTION, _boxed_at(write_payload, v, cx))

    def read(addr: int, cx: Any) -> Any:
        ptr = _PTR.unpack_from(MEM, addr + _P)[0]
        if not ptr:
            return None
        value = read_payload(ptr, cx)
        return Some(value) if nested else value

    return Converter(None, None, wit, read=read, write=write)


def _result_write(ok: Optional[Converter], err: Optional[Converter], wit: str) -> Write:
    write_ok = ok.write if ok else None
    write_err = err.write if err else None

    def write(v: Any, addr: int, cx: Any) -> None:
        if isinstance(v, Ok):
            is_ok, write_payload = True, write_ok
        elif isinstance(v, Err):
            is_ok, write_payload = False, write_err
        else:
            raise _wrong(f"{wit} (Ok(...) or Err(...))", v)
        if write_payload is None and v.value is not None:
            raise TypeError(f"expected {wit}: {type(v).__name__} carries no value here, "
                            f"got {_describe(v.value)}")
        _RESULT_HEAD(MEM, addr, K_RESULT, is_ok, 0)  # no payload (and no stale pointer)
        if write_payload is not None:
            _PTR.pack_into(MEM, addr + _RESULT_VAL, _boxed_at(write_payload, v.value, cx))

    return write


def _result_converter(ok: Optional[Converter], err: Optional[Converter], wit: str) -> Converter:
    read_ok = ok.read if ok else None
    read_err = err.read if err else None

    def read(addr: int, cx: Any) -> Any:
        is_ok, ptr = _RESULT.unpack_from(MEM, addr + _P)
        if is_ok:
            return Ok(read_ok(ptr, cx) if read_ok else None)
        return Err(read_err(ptr, cx) if read_err else None)

    return Converter(None, None, wit, read=read, write=_result_write(ok, err, wit))


def returned_result(conv: Converter) -> Converter:
    """A function's returned `result<T, E>`: lifting returns T or raises Err(e); lowering
    (a host function's return value) takes T, and a raised Err is caught by the caller."""
    inner_read, inner_write = conv.read, conv.write

    def read(addr: int, cx: Any) -> Any:
        value = inner_read(addr, cx)
        if isinstance(value, Err):
            raise value
        return value.value

    def write(v: Any, addr: int, cx: Any) -> None:
        inner_write(v if isinstance(v, Err) else Ok(v), addr, cx)

    return Converter(None, None, conv.wit, read=read, write=write)


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
    w.Primitive.U8: lambda: _int_converter(K_U8, 8, False),
    w.Primitive.U16: lambda: _int_converter(K_U16, 16, False),
    w.Primitive.U32: lambda: _int_converter(K_U32, 32, False),
    w.Primitive.U64: lambda: _int_converter(K_U64, 64, False),
    w.Primitive.S8: lambda: _int_converter(K_S8, 8, True),
    w.Primitive.S16: lambda: _int_converter(K_S16, 16, True),
    w.Primitive.S32: lambda: _int_converter(K_S32, 32, True),
    w.Primitive.S64: lambda: _int_converter(K_S64, 64, True),
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

