"""Python classes and annotations for WIT types (componentize-py's mapping).

    list<u8> -> bytes; a list of numbers (list<u32>, list<f64>...) -> an `array.array` of
                its typecode (as jco gives a Uint32Array: one copy, no int object per item);
                any other list -> a list
    record   -> a @dataclass with snake_case fields
    variant  -> one @dataclass per case (`Shape_Circle(value)`, `Shape_None_()`),
                and `Shape = Union[...]` for the variant itself
    enum     -> an `Enum`; flags -> a `Flag` (any number of members)

Classes are made once per distinct `TypeDef` value and shared process-wide. A TypeDef
compares by its name, owner interface and structure, so the same interface type seen by
two components (say, a caller and the component that satisfies its import) is one Python
class, and values pass between them unchanged. Resources are not made here: their classes
are bound to instances (see `_bindings`).
"""

from __future__ import annotations

import array
import dataclasses
import enum
import threading
import typing
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

from ..wit import _model as w
from ._names import pascal, shouty, snake, variant_case_class
from .._values import Ok, Err, Some
from ..wit._print import type_name

__all__ = ["VariantClasses", "class_for", "variant_classes", "annotation", "wit_type_name", "array_code"]


@dataclass(frozen=True)
class VariantClasses:
    """The Python side of a WIT variant."""

    union: Any  # typing.Union of the case classes (the class itself for one case)
    cases: Tuple[Tuple[str, type, bool], ...]  # (WIT case name, class, has payload)


_lock = threading.RLock()  # making a record makes its fields' classes first
_classes: Dict[w.TypeDef, Any] = {}


# -- pickling: a value is rebuilt from its WIT type, so its class need not be importable ---
#
# The classes are made at run time, per component module, and no module attribute path
# leads to them; so a value pickles as (its TypeDef, which case, its fields), and unpickling
# finds (or makes) the class of that TypeDef: the very same class in this process, the
# equal one in another. The TypeDef is plain data from the WIT model.

def _rebuild(td: w.TypeDef, module: str, case: Optional[str], state: Any) -> Any:
    match td.kind:
        case w.Record():
            return class_for(td, module)(*state)
        case w.Variant():
            for name, cls, has_payload in variant_classes(td, module).cases:
                if name == case:
                    return cls(*state) if has_payload else cls()
            raise ValueError(f"variant {td.name!r} has no case {case!r}")
        case w.Enum():
            members: Any = class_for(td, module)  # an Enum class: indexed by member name
            return members[state]
        case w.Flags():
            return class_for(td, module)(state)
        case _:
            raise TypeError(f"not a WIT value type: {td!r}")


def _reduce_dataclass(self: Any) -> Any:
    cls = type(self)
    values = tuple(getattr(self, f.name) for f in dataclasses.fields(self))
    return _rebuild, (cls.__wit__, cls.__module__, getattr(cls, "__wit_case__", None), values)


def _reduce_enum(self: Any, protocol: int = 2) -> Any:
    cls = type(self)
    return _rebuild, (cls.__wit__, cls.__module__, None, self.name)


def _reduce_flags(self: Any, protocol: int = 2) -> Any:
    cls = type(self)
    return _rebuild, (cls.__wit__, cls.__module__, None, self.value)


def _docstring(docs: w.Docs, fallback: str) -> str:
    return docs.contents.strip() if docs.contents else fallback


def _make_record(td: w.TypeDef, module: str) -> type:
    assert isinstance(td.kind, w.Record)
    fields = [(snake(f.name), annotation(f.type)) for f in td.kind.fields]
    # The docstring goes in up front: dataclasses would otherwise compute a signature
    # for one, a fifth of the time it takes to make the class.
    doc = _docstring(td.docs, f"WIT record `{td.name}`.")
    cls = dataclasses.make_dataclass(pascal(td.name or "record"), fields,
                                     namespace={"__doc__": doc, "__reduce__": _reduce_dataclass})
    cls.__module__ = module
    cls.__wit__ = td  # type: ignore[attr-defined]
    return cls


def _make_variant(td: w.TypeDef, module: str) -> VariantClasses:
    assert isinstance(td.kind, w.Variant)
    cases = []
    for case in td.kind.cases:
        name = variant_case_class(td.name or "variant", case.name)
        fields = [("value", annotation(case.type))] if case.type is not None else []
        doc = _docstring(case.docs, f"Case `{case.name}` of WIT variant `{td.name}`.")
        cls = dataclasses.make_dataclass(name, fields, namespace={
            "__doc__": doc, "__reduce__": _reduce_dataclass, "__wit_case__": case.name})
        cls.__module__ = module
        cls.__wit__ = td  # type: ignore[attr-defined]
        cases.append((case.name, cls, case.type is not None))
    classes = tuple(c for _, c, _ in cases)
    union = Union[classes] if len(classes) > 1 else classes[0]  # type: ignore[valid-type]
    return VariantClasses(union, tuple(cases))


def _make_enum(td: w.TypeDef, module: str) -> type:
    assert isinstance(td.kind, w.Enum)
    members = [(shouty(c.name), i) for i, c in enumerate(td.kind.cases)]
    cls = enum.Enum(pascal(td.name or "enum"), members, module=module)  # type: ignore[misc]
    cls.__doc__ = _docstring(td.docs, f"WIT enum `{td.name}`.")
    cls.__wit__ = td  # type: ignore[attr-defined]
    cls.__reduce_ex__ = _reduce_enum  # type: ignore[assignment]
    return cls


def _make_flags(td: w.TypeDef, module: str) -> type:
    assert isinstance(td.kind, w.Flags)
    members = [(shouty(f.name), 1 << i) for i, f in enumerate(td.kind.flags)]
    cls = enum.Flag(pascal(td.name or "flags"), members, module=module)  # type: ignore[misc]
    cls.__doc__ = _docstring(td.docs, f"WIT flags `{td.name}`.")
    cls.__wit__ = td  # type: ignore[attr-defined]
    cls.__reduce_ex__ = _reduce_flags  # type: ignore[assignment]
    return cls


_MAKERS = {w.Record: _make_record, w.Variant: _make_variant, w.Enum: _make_enum, w.Flags: _make_flags}


def _python_object(td: w.TypeDef, module: str) -> Any:
    with _lock:
        made = _classes.get(td)
        if made is None:
            made = _classes[td] = _MAKERS[type(td.kind)](td, module)
        return made


def class_for(td: w.TypeDef, module: str = "wasm_import.types") -> type:
    """The class of a record, enum or flags TypeDef."""
    made = _python_object(td, module)
    assert isinstance(made, type), td
    return made


def variant_classes(td: w.TypeDef, module: str = "wasm_import.types") -> VariantClasses:
    made = _python_object(td, module)
    assert isinstance(made, VariantClasses), td
    return made


def has_class(td: w.TypeDef) -> bool:
    return type(td.kind) in _MAKERS


# -- lists of numbers ---------------------------------------------------------------------------

# the `array` typecode holding each number type exactly (itemsize = the WIT size, checked below)
_ARRAY_CODES: Dict[w.Primitive, str] = {
    w.Primitive.S8: "b", w.Primitive.U16: "H", w.Primitive.S16: "h", w.Primitive.U32: "I",
    w.Primitive.S32: "i", w.Primitive.U64: "Q", w.Primitive.S64: "q", w.Primitive.F32: "f",
    w.Primitive.F64: "d",
}
assert all(array.array(code).itemsize == size for code, size in zip("bHhIiQqfd", (1, 2, 2, 4, 4, 8, 8, 4, 8)))


def array_code(element: Optional[w.Type]) -> Optional[str]:
    """The `array` typecode a list<element> comes back as, or None if it is not a list of
    numbers (list<u8> is bytes; bool and char lists are lists)."""
    if element is None:
        return None
    target = w.unalias(element)
    return _ARRAY_CODES.get(target) if isinstance(target, w.Primitive) else None


# -- annotations -----------------------------------------------------------------------------

_PRIMITIVE_ANNOTATIONS: Dict[w.Primitive, Any] = {
    w.Primitive.BOOL: bool, w.Primitive.CHAR: str, w.Primitive.STRING: str,
    w.Primitive.F32: float, w.Primitive.F64: float, w.Primitive.ERROR_CONTEXT: Any,
    **{p: int for p in (w.Primitive.U8, w.Primitive.U16, w.Primitive.U32, w.Primitive.U64,
                        w.Primitive.S8, w.Primitive.S16, w.Primitive.S32, w.Primitive.S64)},
}


def is_option(ty: Optional[w.Type]) -> bool:
    ty = w.unalias(ty) if ty is not None else None
    return isinstance(ty, w.TypeDef) and isinstance(ty.kind, w.Option)


def annotation(ty: Optional[w.Type]) -> Any:
    """The Python annotation of a WIT type, as a real typing object."""
    if ty is None:
        return None
    if isinstance(ty, w.Primitive):
        return _PRIMITIVE_ANNOTATIONS[ty]
    match ty.kind:
        case w.Variant():
            return variant_classes(ty).union
        case w.Record() | w.Enum() | w.Flags():
            return class_for(ty)
        case w.Alias(target=target):
            return annotation(target)
        case w.List(element=element):
            if w.unalias(element) is w.Primitive.U8:
                return bytes
            if array_code(element) is not None:  # a field takes any sequence; calls give back an array
                return typing.Sequence[annotation(element)]  # type: ignore[misc]
            return typing.List[annotation(element)]  # type: ignore[misc]
        case w.FixedList(element=element):
            return typing.List[annotation(element)]  # type: ignore[misc]
        case w.Map(key=key, value=value):
            return typing.Dict[annotation(key), annotation(value)]  # type: ignore[misc]
        case w.Tuple(types=types):
            if not types:
                return typing.Tuple[()]
            return typing.Tuple[tuple(annotation(t) for t in types)]  # type: ignore[misc]
        case w.Option(type=payload):
            inner = annotation(payload)
            return Optional[Some[inner]] if is_option(payload) else Optional[inner]  # type: ignore[valid-type]
        case w.Result(ok=ok, err=err):
            return Union[Ok[annotation(ok)], Err[annotation(err)]]  # type: ignore[misc]
        case w.Own(resource=resource) | w.Borrow(resource=resource):
            target = w.unalias(resource)
            assert isinstance(target, w.TypeDef)
            return pascal(target.name or "resource")  # a forward reference: resource classes are per module
        case w.Resource():
            return pascal(ty.name or "resource")
        case w.Future() | w.Stream():
            return Any
    raise AssertionError(f"unknown WIT type kind {ty.kind!r}")


# -- WIT spelling of a type, for signatures in docstrings and error messages ----------------

def wit_type_name(ty: Optional[w.Type]) -> str:
    """A type as WIT writes it where it is used (`_` for "no type")."""
    if ty is None:
        return "_"
    try:
        return type_name(ty)
    except ValueError:  # an anonymous record/variant/enum/flags/resource (between subcomponents)
        kind = w.unalias(ty).kind  # type: ignore[union-attr]
        word = type(kind).__name__.lower()
        members = getattr(kind, "fields", None) or getattr(kind, "cases", None) or getattr(kind, "flags", None)
        names = ", ".join(m.name for m in members or ())
        return f"{word} {{ {names} }}" if names else word


def wit_signature(func: w.Function) -> str:
    """`name: func(a: u32, b: string) -> result<u32, string>` as WIT writes it."""
    params = func.params[1:] if func.kind is w.FunctionKind.METHOD else func.params
    args = ", ".join(f"{p.name}: {wit_type_name(p.type)}" for p in params)
    prefix = "async func" if func.is_async else "func"
    if func.kind is w.FunctionKind.CONSTRUCTOR:
        return f"constructor({args})"
    if func.kind is w.FunctionKind.STATIC:
        prefix = "static " + prefix
    result = f" -> {wit_type_name(func.result)}" if func.result is not None else ""
    return f"{func.item_name}: {prefix}({args}){result}"
