"""The WIT data model: what a component's interface types say, with their WIT names.

It mirrors wit-parser's model (`crates/wit-parser/src/lib.rs`) in Python terms:

    World ──imports/exports──► WorldItem = Interface | Function | TypeDef
    Interface ──types──► TypeDef ──kind──► Record | Variant | Enum | Flags | Tuple | List
                                           | FixedList | Map | Option | Result | Resource
                                           | Own | Borrow | Future | Stream | Alias
              ──functions──► Function ──params/result──► Type = Primitive | TypeDef

Everything is a frozen dataclass and every mapping keeps declaration order, so a model
compares by value and prints deterministically. A TypeDef names its owner by reference
(`InterfaceRef` or `WorldRef`) rather than by pointer, so the model has no cycles.

Identity: a resource is told apart by `(name, owner)`. An interface that a world both
imports and exports decodes as two equal `Interface` values; which *side* a resource
belongs to at run time is decided by the bindings, not by the model.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
import typing as t

__all__ = [
    "Docs", "PackageName", "InterfaceRef", "WorldRef", "Owner",
    "Primitive", "Type",
    "Field", "Record", "Case", "Variant", "EnumCase", "Enum", "Flag", "Flags",
    "Tuple", "List", "FixedList", "Map", "Option", "Result", "Resource",
    "Own", "Borrow", "Future", "Stream", "Alias", "TypeDefKind", "TypeDef",
    "Param", "FunctionKind", "Function", "Interface", "World", "WorldItem",
    "unalias",
]


@dataclass(frozen=True)
class Docs:
    """Documentation attached to an item (`///` comments in WIT)."""

    contents: t.Optional[str] = None

    def __bool__(self) -> bool:
        return bool(self.contents)


NO_DOCS = Docs()


@dataclass(frozen=True)
class PackageName:
    """`namespace:name@version`, for example `wasi:io@0.2.0`."""

    namespace: str
    name: str
    version: t.Optional[str] = None

    def __str__(self) -> str:
        base = f"{self.namespace}:{self.name}"
        return f"{base}@{self.version}" if self.version else base

    def qualify(self, item: str) -> str:
        """The full name of an interface in this package: `ns:pkg/item@version`."""
        base = f"{self.namespace}:{self.name}/{item}"
        return f"{base}@{self.version}" if self.version else base


@dataclass(frozen=True)
class InterfaceRef:
    """Names the interface that owns a type.

    `package` is None for an inline interface (`import foo: interface { ... }`), whose
    `name` is then the world key it is imported or exported under.
    """

    name: str
    package: t.Optional[PackageName] = None

    def __str__(self) -> str:
        return self.package.qualify(self.name) if self.package else self.name


@dataclass(frozen=True)
class WorldRef:
    """Names the world that owns a world-level type."""

    name: str
    package: t.Optional[PackageName] = None

    def __str__(self) -> str:
        return f"{self.package}/{self.name}" if self.package else self.name


Owner = t.Union[InterfaceRef, WorldRef]


class Primitive(enum.Enum):
    """The WIT types that need no definition."""

    BOOL = "bool"
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    U64 = "u64"
    S8 = "s8"
    S16 = "s16"
    S32 = "s32"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"
    CHAR = "char"
    STRING = "string"
    ERROR_CONTEXT = "error-context"

    def __repr__(self) -> str:
        return f"Primitive.{self.name}"


# -- type definition kinds: one class per WIT type kind -----------------------------------

@dataclass(frozen=True)
class Field:
    name: str
    type: "Type"
    docs: Docs = NO_DOCS


@dataclass(frozen=True)
class Record:
    fields: t.Tuple[Field, ...]


@dataclass(frozen=True)
class Case:
    name: str
    type: t.Optional["Type"]
    docs: Docs = NO_DOCS


@dataclass(frozen=True)
class Variant:
    cases: t.Tuple[Case, ...]


@dataclass(frozen=True)
class EnumCase:
    name: str
    docs: Docs = NO_DOCS


@dataclass(frozen=True)
class Enum:
    cases: t.Tuple[EnumCase, ...]


@dataclass(frozen=True)
class Flag:
    name: str
    docs: Docs = NO_DOCS


@dataclass(frozen=True)
class Flags:
    flags: t.Tuple[Flag, ...]


@dataclass(frozen=True)
class Tuple:
    types: t.Tuple["Type", ...]


@dataclass(frozen=True)
class List:
    element: "Type"


@dataclass(frozen=True)
class FixedList:
    """`list<T, N>`."""

    element: "Type"
    size: int


@dataclass(frozen=True)
class Map:
    """`map<K, V>`."""

    key: "Type"
    value: "Type"


@dataclass(frozen=True)
class Option:
    type: "Type"


@dataclass(frozen=True)
class Result:
    ok: t.Optional["Type"]
    err: t.Optional["Type"]


@dataclass(frozen=True)
class Resource:
    """A resource type. Its constructor and methods are `Function`s of its owner."""


@dataclass(frozen=True)
class Own:
    """`own<R>`, written plainly as `R` in WIT. `resource` is the resource's TypeDef
    (possibly an `Alias` of it, as named where the handle is written)."""

    resource: "TypeDef"


@dataclass(frozen=True)
class Borrow:
    """`borrow<R>`."""

    resource: "TypeDef"


@dataclass(frozen=True)
class Future:
    type: t.Optional["Type"]


@dataclass(frozen=True)
class Stream:
    type: t.Optional["Type"]


@dataclass(frozen=True)
class Alias:
    """`type name = target`, and also a type brought in by `use` (then the target is
    owned by another interface)."""

    target: "Type"


TypeDefKind = t.Union[
    Record, Variant, Enum, Flags, Tuple, List, FixedList, Map, Option, Result,
    Resource, Own, Borrow, Future, Stream, Alias,
]


@dataclass(frozen=True)
class TypeDef:
    """A type definition: named (`record point {...}` in an interface) or anonymous
    (the `list<u8>` in a parameter). Anonymous ones have `name` and `owner` None."""

    kind: TypeDefKind
    name: t.Optional[str] = None
    owner: t.Optional[Owner] = None
    docs: Docs = field(default=NO_DOCS, compare=False)

    def __repr__(self) -> str:
        if self.name is not None:
            return f"TypeDef({self.name!r} in {self.owner}, {type(self.kind).__name__})"
        return f"TypeDef({self.kind!r})"


Type = t.Union[Primitive, TypeDef]


def unalias(ty: Type) -> Type:
    """Follow `Alias` (and `use`) links to the type they name."""
    while isinstance(ty, TypeDef) and isinstance(ty.kind, Alias):
        ty = ty.kind.target
    return ty


# -- functions, interfaces, worlds ---------------------------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    type: Type


class FunctionKind(enum.Enum):
    FREESTANDING = "freestanding"
    METHOD = "method"
    STATIC = "static"
    CONSTRUCTOR = "constructor"


@dataclass(frozen=True)
class Function:
    """A function. `name` is the full component-level name, for example `add`,
    `[constructor]blob`, `[method]blob.read` or `[static]blob.merge`.

    `resource` is the resource TypeDef for constructors, methods and statics.
    A method's first parameter is `self: borrow<R>`, as in the binary.
    """

    name: str
    kind: FunctionKind
    params: t.Tuple[Param, ...]
    result: t.Optional[Type]
    resource: t.Optional[TypeDef] = None
    is_async: bool = False
    docs: Docs = field(default=NO_DOCS, compare=False)

    @property
    def item_name(self) -> str:
        """The name as written in WIT: `read` for `[method]blob.read`,
        the resource name for a constructor."""
        if self.kind is FunctionKind.FREESTANDING:
            return self.name
        rest = self.name.split("]", 1)[1]
        return rest.split(".", 1)[1] if "." in rest else rest


@dataclass(frozen=True)
class Interface:
    """An interface: named (`wasi:io/streams@0.2.0`) or inline (`package` and `name`
    describe where an inline one sits: `name` is its world key, `package` None)."""

    name: t.Optional[str]
    package: t.Optional[PackageName]
    types: t.Dict[str, TypeDef] = field(default_factory=dict, hash=False)
    functions: t.Dict[str, Function] = field(default_factory=dict, hash=False)
    docs: Docs = field(default=NO_DOCS, compare=False)

    @property
    def ref(self) -> InterfaceRef:
        return InterfaceRef(self.name or "", self.package)

    @property
    def qualified_name(self) -> t.Optional[str]:
        """`ns:pkg/name@version`, or None for an inline interface."""
        if self.package is None or self.name is None:
            return None
        return self.package.qualify(self.name)


WorldItem = t.Union[Interface, Function, TypeDef]


@dataclass(frozen=True)
class World:
    """A component's world. Keys of `imports`/`exports` are the names in the binary:
    the qualified interface name for a named interface, the plain name otherwise.
    World-level types (a resource the world imports, say) are `TypeDef` items of
    `imports`. `package_docs` documents the world's package (`///` above `package`)."""

    name: str
    package: t.Optional[PackageName]
    imports: t.Dict[str, WorldItem] = field(default_factory=dict, hash=False)
    exports: t.Dict[str, WorldItem] = field(default_factory=dict, hash=False)
    docs: Docs = field(default=NO_DOCS, compare=False)
    package_docs: Docs = field(default=NO_DOCS, compare=False)

    @property
    def ref(self) -> WorldRef:
        return WorldRef(self.name, self.package)
