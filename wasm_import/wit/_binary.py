"""Reading the component binary format, up to the types of a component's imports and exports.

Two layers, bytes first:

1. `Reader`, a bounds-checked cursor. Every read checks the bytes that remain and raises
   `DecodeError` naming the byte offset, so nothing above it sees an IndexError, a
   UnicodeDecodeError or a count that promises more items than there are bytes left. It
   reads the caller's buffer in place (bytes, bytearray or memoryview): stepping over a
   core module or a nested component moves an offset and copies nothing.

2. The component type layer (`parse_component`). A component names its types,
   functions, instances and nested components by index, and what an index means depends
   on everything declared before it (imports, aliases, exports, instantiations). This
   layer replays those declarations at the type level only, the way a validator does, so
   each import and export of the component ends up with a complete type: an
   `InstanceType`, a `FuncType` or a `TypeEntity`. Core modules, core instances and core
   types are never read. Nested components are read when they are instantiated.

Type identity matters to WIT (a `use`d type is the *same* type as the one it names), so
types are Python objects compared by identity, modelled on wasmparser's type ids:

* a `ResourceType` refers to an abstract `ResourceVar`; instantiating a component
  substitutes the resources it imports with the ones supplied (`Substitution`), and
  every un-aliased reference to one resource is the same object (`ResourceVar.plain`);
* `with_unique(ty)` is the new identity an `(eq ty)` import or export gives `ty`; it
  remembers what it aliases (`alias_of`), which is how `use` is recognised later.

Nesting is bounded explicitly (`MAX_NESTING`, `MAX_TYPE_DEPTH`), so deep input is a
`DecodeError`, not a RecursionError.
"""

from __future__ import annotations

import typing as t

from . import _model as _m
from .._errors import DecodeError

__all__ = ["Reader", "parse_component", "ParsedComponent", "Extern", "ExternName", "Budget"]

Buffer = t.Union[bytes, bytearray, memoryview]

MAGIC = b"\x00asm"
COMPONENT_VERSION = 0x0D
COMPONENT_LAYER = 1
PRE_STANDARD_VERSION = 0x0C


class Reader:
    """A cursor over `data[pos:end]`."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: Buffer, pos: int = 0, end: t.Optional[int] = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    # -- errors ---------------------------------------------------------------------------

    def error(self, message: str, offset: t.Optional[int] = None) -> DecodeError:
        return DecodeError(message, self.pos if offset is None else offset)

    def need(self, count: int, what: str) -> None:
        if count > self.end - self.pos:
            raise self.error(
                f"unexpected end of data while reading {what}: "
                f"{count} byte(s) needed, {max(self.end - self.pos, 0)} left"
            )

    # -- scalars --------------------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= self.end

    def byte(self, what: str = "a byte") -> int:
        pos = self.pos
        if pos >= self.end:
            raise self.error(f"unexpected end of data while reading {what}")
        self.pos = pos + 1
        return self.data[pos]

    def peek(self, what: str = "a byte") -> int:
        if self.pos >= self.end:
            raise self.error(f"unexpected end of data while reading {what}")
        return self.data[self.pos]

    def u32(self, what: str = "an integer") -> int:
        """An unsigned LEB128 number of at most 32 bits."""
        data, pos, end = self.data, self.pos, self.end
        if pos < end:
            first = data[pos]
            if first < 0x80:  # the common one-byte case
                self.pos = pos + 1
                return first
        start = pos
        result = shift = 0
        while True:
            if pos >= end:
                raise self.error(f"unexpected end of data while reading {what}", start)
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift >= 35:
                raise self.error(f"{what} is not a valid 32-bit LEB128 number", start)
        if result > 0xFFFF_FFFF:
            raise self.error(f"{what} does not fit in 32 bits", start)
        self.pos = pos
        return result

    def u64(self, what: str) -> int:
        """An unsigned LEB128 number of at most 64 bits (memory limits)."""
        start = self.pos
        result = shift = 0
        while True:
            b = self.byte(what)
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7
            if shift >= 70:
                raise self.error(f"{what} is not a valid 64-bit LEB128 number", start)

    def count(self, what: str, min_item_size: int = 1) -> int:
        """A vector length, checked against the bytes that remain (each item takes at
        least `min_item_size` bytes), so a lying count fails before anything loops."""
        start = self.pos
        n = self.u32(f"the number of {what}")
        if n * min_item_size > self.end - self.pos:
            raise self.error(f"{n} {what} announced but only {self.end - self.pos} byte(s) left",
                             start)
        return n

    def flag(self, what: str) -> bool:
        """A 0x00 / 0x01 byte (absent / present)."""
        start = self.pos
        b = self.byte(what)
        if b > 1:
            raise self.error(f"invalid {what} flag 0x{b:02x}", start)
        return b == 1

    # -- strings and spans ----------------------------------------------------------------

    def name(self, what: str = "a name") -> str:
        start = self.pos
        size = self.u32(f"the length of {what}")
        self.need(size, what)
        raw = self.data[self.pos:self.pos + size]
        try:
            text = str(raw, "utf-8")
        except UnicodeDecodeError:
            raise self.error(f"{what} is not valid UTF-8", start) from None
        self.pos += size
        return text

    def span(self, size: int, what: str) -> t.Tuple[int, int]:
        """Step over `size` bytes; return their (start, end) offsets."""
        self.need(size, what)
        start = self.pos
        self.pos += size
        return start, start + size

    def sub_reader(self, size: int, what: str) -> "Reader":
        start, end = self.span(size, what)
        return Reader(self.data, start, end)

    def expect_end(self, what: str) -> None:
        if self.pos != self.end:
            raise self.error(f"{self.end - self.pos} unexpected byte(s) at the end of {what}")


def check_preamble(reader: Reader) -> None:
    """Read the 8-byte preamble, explaining clearly what the bytes are if not a component."""
    if reader.end - reader.pos < 8:
        raise reader.error("too short to be a WebAssembly component: "
                           f"{reader.end - reader.pos} byte(s), need at least 8 for the header")
    data, pos = reader.data, reader.pos
    if bytes(data[pos:pos + 4]) != MAGIC:
        raise reader.error("not a WebAssembly binary: the file does not start with \\0asm")
    version = data[pos + 4] | data[pos + 5] << 8
    layer = data[pos + 6] | data[pos + 7] << 8
    if layer == 0:
        raise reader.error("this is a core wasm module, not a component "
                           "(wrap it with `wasm-tools component new` first)", pos + 6)
    if layer != COMPONENT_LAYER:
        raise reader.error(f"unknown binary layer 0x{layer:x} (a component has layer 1)", pos + 6)
    if version == PRE_STANDARD_VERSION:
        raise reader.error(
            "this component uses the pre-standard 2023 component encoding (version 0x0c), "
            "which is unsupported; rebuild it with a current toolchain (version 0x0d)", pos + 4)
    if version != COMPONENT_VERSION:
        raise reader.error(f"unsupported component binary version 0x{version:x} "
                           f"(supported: 0x{COMPONENT_VERSION:x})", pos + 4)
    reader.pos = pos + 8


# =========================================================================================
# The component type layer
# =========================================================================================

PRIMITIVES: t.Dict[int, _m.Primitive] = {
    0x7F: _m.Primitive.BOOL, 0x7E: _m.Primitive.S8, 0x7D: _m.Primitive.U8,
    0x7C: _m.Primitive.S16, 0x7B: _m.Primitive.U16, 0x7A: _m.Primitive.S32,
    0x79: _m.Primitive.U32, 0x78: _m.Primitive.S64, 0x77: _m.Primitive.U64,
    0x76: _m.Primitive.F32, 0x75: _m.Primitive.F64, 0x74: _m.Primitive.CHAR,
    0x73: _m.Primitive.STRING, 0x64: _m.Primitive.ERROR_CONTEXT,
}

MAX_NESTING = 32            # nested components and type declarators
MAX_TYPE_DEPTH = 64         # list<list<...>> levels
MAX_TYPE_SIZE = 1_000_000   # the structural size wasmparser allows for one type
MAX_WORK = 250_000          # types rebuilt and items decoded, over one whole decode (the
                            # largest real components here need under 3000)


class Budget:
    """Caps the work one decode does. Small input can ask for a lot of repeated work
    (a large instance type imported ten thousand times, say); past the cap that is a
    `DecodeError` rather than minutes of CPU."""

    __slots__ = ("left",)

    def __init__(self, units: int = MAX_WORK) -> None:
        self.left = units

    def spend(self, units: int, offset: t.Optional[int]) -> None:
        self.left -= units
        if self.left < 0:
            raise DecodeError(f"component too complex to decode: it expands to more than "
                              f"{MAX_WORK} types and items", offset)


class ResourceVar:
    """An abstract resource type. Two resources are the same iff their vars are."""

    __slots__ = ("_plain",)

    def __init__(self) -> None:
        self._plain: t.Optional[ResourceType] = None

    def plain(self) -> "ResourceType":
        """The one un-aliased reference to this resource: however a component reaches
        it (an import, an alias, a substitution), it is this same object."""
        if self._plain is None:
            self._plain = ResourceType(self)
        return self._plain


class ResourceType:
    """A type-index-space entry naming a resource. `alias_of` links an `(eq r)`
    re-export to the entry it re-exports; un-aliased ones come from `ResourceVar.plain`."""

    __slots__ = ("var", "alias_of")

    def __init__(self, var: ResourceVar, alias_of: t.Optional["ResourceType"] = None) -> None:
        self.var = var
        self.alias_of = alias_of


class DefinedType:
    """A value type definition: `kind` is its binary name ("record", "list", ...).

    `items` holds the structure:
      prim: (Primitive,)                record: ((name, ValType), ...)
      variant: ((name, ValType|None), ...)   list / option: (ValType,)
      fixed-list: (ValType, length)     tuple: (ValType, ...)
      flags / enum: (name, ...)         result: (ValType|None, ValType|None)
      own / borrow: (ResourceType,)     future / stream: (ValType|None,)
      map: (ValType, ValType)
    """

    __slots__ = ("kind", "items", "alias_of", "size", "depth")

    def __init__(self, kind: str, items: t.Tuple[t.Any, ...], size: int, depth: int,
                 alias_of: t.Optional["DefinedType"] = None) -> None:
        self.kind = kind
        self.items = items
        self.size = size
        self.depth = depth
        self.alias_of = alias_of


ValType = t.Union[_m.Primitive, DefinedType]


class FuncType:
    __slots__ = ("params", "result", "is_async")

    def __init__(self, params: t.Tuple[t.Tuple[str, ValType], ...],
                 result: t.Optional[ValType], is_async: bool) -> None:
        self.params = params
        self.result = result
        self.is_async = is_async


class TypeEntity:
    """An imported or exported type. `referenced` is the type named, `created` the new
    index-space entry the import/export introduces; `fresh` marks `(sub resource)`."""

    __slots__ = ("referenced", "created", "fresh")

    def __init__(self, referenced: "AnyType", created: "AnyType", fresh: bool = False) -> None:
        self.referenced = referenced
        self.created = created
        self.fresh = fresh


class Opaque:
    """An import/export the WIT view ignores: a core module or a value."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


CORE_MODULE = Opaque("core module")
VALUE = Opaque("value")


class InstanceType:
    __slots__ = ("exports", "_declared")

    def __init__(self, exports: t.Dict[str, "Entity"]) -> None:
        self.exports = exports
        self._declared: t.Optional[t.Tuple[ResourceVar, ...]] = None

    def declared_resources(self) -> t.Tuple[ResourceVar, ...]:
        """The `(sub resource)` vars this instance type declares, nested ones included."""
        if self._declared is None:
            declared: t.List[ResourceVar] = []
            for entity in self.exports.values():
                if isinstance(entity, TypeEntity) and entity.fresh:
                    assert isinstance(entity.referenced, ResourceType)
                    declared.append(entity.referenced.var)
                elif isinstance(entity, InstanceType):
                    declared.extend(entity.declared_resources())
            self._declared = tuple(declared)
        return self._declared


class ComponentType:
    """`defined_vars` are the resources the component defines itself; every
    instantiation replaces them with fresh ones."""

    __slots__ = ("imports", "exports", "defined_vars")

    def __init__(self, imports: t.Dict[str, "Entity"], exports: t.Dict[str, "Entity"],
                 defined_vars: t.Tuple[ResourceVar, ...] = ()) -> None:
        self.imports = imports
        self.exports = exports
        self.defined_vars = defined_vars


AnyType = t.Union[DefinedType, ResourceType, FuncType, InstanceType, ComponentType]
Entity = t.Union[TypeEntity, FuncType, InstanceType, ComponentType, Opaque]


def with_unique(ty: AnyType) -> AnyType:
    """A new identity for `ty` that remembers it aliases `ty`."""
    if isinstance(ty, DefinedType):
        return DefinedType(ty.kind, ty.items, ty.size, ty.depth, alias_of=ty)
    if isinstance(ty, ResourceType):
        return ResourceType(ty.var, alias_of=ty)
    return ty


class Substitution:
    """Replaces resource vars throughout a type, rebuilding only what changes.

    `renamed` maps the types a component imports to the very types supplied for them
    (wasmparser's type renamings): a reference to an imported type then *is* the
    supplied type, aliases and all. The cache makes each old type map to exactly one
    new type, so identities stay consistent across all the exports of one instantiation.
    """

    def __init__(self, resources: t.Dict[ResourceVar, ResourceVar],
                 renamed: t.Optional[t.Dict[object, t.Any]] = None) -> None:
        self.resources = resources
        self.cache: t.Dict[object, t.Any] = dict(renamed or {})  # also counts types visited

    def entity(self, entity: Entity) -> Entity:
        if isinstance(entity, TypeEntity):
            referenced = self.any(entity.referenced)
            created = (referenced if entity.created is entity.referenced
                       else self.any(entity.created))
            if referenced is entity.referenced and created is entity.created:
                return entity
            return TypeEntity(referenced, created, entity.fresh)
        if isinstance(entity, Opaque):
            return entity
        rebuilt: Entity = self.any(entity)
        return rebuilt

    def any(self, ty: t.Any) -> t.Any:
        """`ty` substituted; anything that is not a type (a primitive, a name, a list
        length, None) is returned as it is."""
        if not isinstance(ty, TYPE_CLASSES) or not (self.resources or self.cache):
            return ty
        cached = self.cache.get(ty)
        if cached is None:
            cached = self._rebuild(ty)
            self.cache[ty] = cached
        return cached

    def _rebuild(self, ty: t.Any) -> t.Any:
        if isinstance(ty, ResourceType):
            new_var = self.resources.get(ty.var)
            if new_var is None:
                return ty
            if ty.alias_of is None:
                return new_var.plain()
            return ResourceType(new_var, self.any(ty.alias_of))
        if isinstance(ty, DefinedType):
            items = tuple(self._item(item) for item in ty.items)
            if all(a is b for a, b in zip(items, ty.items)):
                return ty
            return DefinedType(ty.kind, items, ty.size, ty.depth)
        if isinstance(ty, FuncType):
            params = tuple((name, self.any(p)) for name, p in ty.params)
            result = self.any(ty.result)
            if result is ty.result and all(a[1] is b[1] for a, b in zip(params, ty.params)):
                return ty
            return FuncType(params, result, ty.is_async)
        if isinstance(ty, InstanceType):
            exports = {name: self.entity(e) for name, e in ty.exports.items()}
            if all(exports[n] is e for n, e in ty.exports.items()):
                return ty
            return InstanceType(exports)
        assert isinstance(ty, ComponentType)
        imports = {name: self.entity(e) for name, e in ty.imports.items()}
        exports = {name: self.entity(e) for name, e in ty.exports.items()}
        return ComponentType(imports, exports, ty.defined_vars)

    def _item(self, item: t.Any) -> t.Any:
        if isinstance(item, tuple):  # (name, type) pairs of records and variants
            new = tuple(self._item(x) for x in item)
            return item if all(a is b for a, b in zip(new, item)) else new
        return self.any(item)


TYPE_CLASSES = (ResourceType, DefinedType, FuncType, InstanceType, ComponentType)


def freshen_instance(instance: InstanceType, budget: Budget, offset: int) -> InstanceType:
    """Importing an instance type makes its declared resources new, distinct types."""
    declared = instance.declared_resources()
    if not declared:
        return instance
    substitution = Substitution({var: ResourceVar() for var in declared})
    result = substitution.any(instance)
    budget.spend(len(substitution.cache), offset)
    assert isinstance(result, InstanceType)
    return result


# -- index spaces ---------------------------------------------------------------------------

class NestedComponent:
    """A component defined inside another one. Its body is parsed (core modules skipped)
    only when its type is first needed, that is when it is instantiated."""

    __slots__ = ("data", "start", "end", "parent", "_type")

    def __init__(self, data: Buffer, start: int, end: int, parent: "Scope") -> None:
        self.data = data
        self.start = start
        self.end = end
        self.parent = parent
        self._type: t.Optional[ComponentType] = None

    def component_type(self) -> ComponentType:
        if self._type is None:
            self._type = parse_component(self.data, self.start, self.end, self.parent).type
        return self._type


class Scope:
    """The index spaces of one component, component type or instance type."""

    __slots__ = ("types", "funcs", "instances", "components", "values", "parent", "depth",
                 "defined_vars", "is_declarator", "budget")

    def __init__(self, parent: t.Optional["Scope"], offset: int,
                 is_declarator: bool = False) -> None:
        self.types: t.List[AnyType] = []
        self.funcs: t.List[FuncType] = []
        self.instances: t.List[InstanceType] = []
        self.components: t.List[t.Union[ComponentType, NestedComponent]] = []
        self.values = 0
        self.parent = parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.defined_vars: t.List[ResourceVar] = []
        self.is_declarator = is_declarator
        self.budget: Budget = Budget() if parent is None else parent.budget
        if self.depth > MAX_NESTING:
            raise DecodeError(f"components or types nested more than {MAX_NESTING} deep",
                              offset)

    def type_at(self, reader: Reader, what: str = "type") -> AnyType:
        start = reader.pos
        index = reader.u32(f"a {what} index")
        if index >= len(self.types):
            raise reader.error(f"{what} index {index} is out of range "
                               f"({len(self.types)} types defined so far)", start)
        return self.types[index]

    def func_type_at(self, reader: Reader) -> FuncType:
        ty = self.type_at(reader, "function type")
        if not isinstance(ty, FuncType):
            raise reader.error("a function's type index does not name a function type")
        return ty

    def instance_type_at(self, reader: Reader) -> InstanceType:
        ty = self.type_at(reader, "instance type")
        if not isinstance(ty, InstanceType):
            raise reader.error("an instance's type index does not name an instance type")
        return ty

    def component_type_at(self, reader: Reader) -> ComponentType:
        ty = self.type_at(reader, "component type")
        if not isinstance(ty, ComponentType):
            raise reader.error("a component's type index does not name a component type")
        return ty

    def item_at(self, reader: Reader, sort: int) -> Entity:
        """The item `sort`/index refers to, as an entity (for exports and arguments)."""
        start = reader.pos
        index = reader.u32("an item index")
        if sort == SORT_CORE_MODULE:
            return CORE_MODULE
        spaces: t.Dict[int, t.Sequence[t.Any]] = {
            SORT_FUNC: self.funcs, SORT_TYPE: self.types, SORT_INSTANCE: self.instances,
            SORT_COMPONENT: self.components,
        }
        space = spaces.get(sort, ())
        if sort == SORT_VALUE:
            if index >= self.values:
                raise reader.error(f"value index {index} is out of range", start)
            return VALUE
        if index >= len(space):
            raise reader.error(f"{SORT_NAMES.get(sort, 'item')} index {index} is out of range "
                               f"({len(space)} defined so far)", start)
        item = space[index]
        if sort == SORT_TYPE:
            return TypeEntity(item, item)
        if isinstance(item, NestedComponent):
            return item.component_type()
        return t.cast(Entity, item)

    def add(self, entity: Entity) -> None:
        """Append what an import, export or alias introduces to its index space."""
        if isinstance(entity, TypeEntity):
            self.types.append(entity.created)
        elif isinstance(entity, FuncType):
            self.funcs.append(entity)
        elif isinstance(entity, InstanceType):
            self.instances.append(entity)
        elif isinstance(entity, ComponentType):
            self.components.append(entity)
        elif entity is VALUE:
            self.values += 1

    def outer(self, reader: Reader) -> "Scope":
        """The scope an outer alias names by its count of levels out (0 is this one)."""
        start = reader.pos
        count = reader.u32("an outer alias count")
        if count > self.depth:
            raise reader.error(f"outer alias reaches {count} scope(s) out, past the outermost",
                               start)
        scope = self
        for _ in range(count):
            assert scope.parent is not None  # depth counts the parents
            scope = scope.parent
        return scope


# sort codes (`sort` in Binary.md); core sorts are 0x00 followed by a core sort byte
SORT_CORE_MODULE = 0x0011
SORT_CORE_OTHER = 0x0000
SORT_FUNC, SORT_VALUE, SORT_TYPE, SORT_COMPONENT, SORT_INSTANCE = 1, 2, 3, 4, 5
SORT_NAMES = {SORT_FUNC: "function", SORT_VALUE: "value", SORT_TYPE: "type",
              SORT_COMPONENT: "component", SORT_INSTANCE: "instance"}


def read_sort(reader: Reader) -> int:
    start = reader.pos
    sort = reader.byte("a sort")
    if sort == 0:
        return SORT_CORE_MODULE if reader.byte("a core sort") == 0x11 else SORT_CORE_OTHER
    if sort not in SORT_NAMES:
        raise reader.error(f"unknown sort 0x{sort:02x}", start)
    return sort


# -- names -----------------------------------------------------------------------------------

class ExternName(t.NamedTuple):
    """An import/export name with its attributes (`implements`, `versionsuffix`)."""

    name: str
    implements: t.Optional[str] = None
    version_suffix: t.Optional[str] = None


def read_extern_name(reader: Reader) -> ExternName:
    start = reader.pos
    form = reader.byte("a name")
    if form > 2:
        raise reader.error(f"unknown import/export name form 0x{form:02x}", start)
    name = reader.name("an import/export name")
    if form < 2:
        return ExternName(name)
    implements = version_suffix = None
    for _ in range(reader.count("name attributes")):
        attr_start = reader.pos
        kind = reader.byte("a name attribute")
        value = reader.name("a name attribute")
        if kind == 0:
            implements = value
        elif kind == 1:
            version_suffix = value
        elif kind != 2:  # 2 is `external-id`, which the WIT view does not use
            raise reader.error(f"unknown name attribute 0x{kind:02x}", attr_start)
    return ExternName(name, implements, version_suffix)


# -- types -----------------------------------------------------------------------------------

def read_valtype(reader: Reader, scope: Scope) -> ValType:
    """A primitive (one negative-SLEB byte) or the index of a defined value type."""
    first = reader.peek("a value type")
    if 0x40 <= first < 0x80:
        reader.pos += 1
        prim = PRIMITIVES.get(first)
        if prim is None:
            raise reader.error(f"unknown primitive value type 0x{first:02x}", reader.pos - 1)
        return prim
    start = reader.pos
    ty = scope.type_at(reader, "value type")
    if not isinstance(ty, DefinedType):
        raise reader.error("a value type index names a non-value type", start)
    return ty


def read_optional_valtype(reader: Reader, scope: Scope) -> t.Optional[ValType]:
    return read_valtype(reader, scope) if reader.flag("an optional type") else None


def make_defined(reader: Reader, kind: str, items: t.Tuple[t.Any, ...],
                 children: t.Iterable[t.Optional[ValType]]) -> DefinedType:
    """Build a defined type, enforcing the size and nesting limits."""
    size = depth = 1
    for child in children:
        if isinstance(child, DefinedType):
            size += child.size
            depth = max(depth, child.depth + 1)
    if depth > MAX_TYPE_DEPTH:
        raise reader.error(f"type nesting deeper than {MAX_TYPE_DEPTH} levels")
    if size > MAX_TYPE_SIZE:
        raise reader.error(f"type is too large ({size} nodes, the limit is {MAX_TYPE_SIZE})")
    return DefinedType(kind, items, size, depth)


def read_labelled_valtypes(reader: Reader, scope: Scope,
                           what: str) -> t.Tuple[t.Tuple[str, ValType], ...]:
    """`(name, type)` pairs: record fields or function parameters (`what`, singular)."""
    return tuple((reader.name(f"a {what} name"), read_valtype(reader, scope))
                 for _ in range(reader.count(f"{what}s", 2)))


def read_defined(reader: Reader, scope: Scope, opcode: int) -> DefinedType:
    """The body of a `defvaltype` whose opcode byte has been read."""
    if opcode in PRIMITIVES:
        return make_defined(reader, "prim", (PRIMITIVES[opcode],), ())
    if opcode == 0x72:
        fields = read_labelled_valtypes(reader, scope, "record field")
        return make_defined(reader, "record", fields, (ty for _, ty in fields))
    if opcode == 0x71:
        cases = tuple(read_case(reader, scope) for _ in range(reader.count("variant cases", 3)))
        return make_defined(reader, "variant", cases, (ty for _, ty in cases))
    if opcode in (0x70, 0x6B):
        element = read_valtype(reader, scope)
        return make_defined(reader, "list" if opcode == 0x70 else "option", (element,), (element,))
    if opcode == 0x67:
        element = read_valtype(reader, scope)
        length = reader.u32("a list length")
        return make_defined(reader, "fixed-list", (element, length), (element,))
    if opcode == 0x6F:
        types = tuple(read_valtype(reader, scope) for _ in range(reader.count("tuple types")))
        return make_defined(reader, "tuple", types, types)
    if opcode in (0x6E, 0x6D):
        what = "flags" if opcode == 0x6E else "enum cases"
        names = tuple(reader.name(f"a {what} name") for _ in range(reader.count(what)))
        return make_defined(reader, "flags" if opcode == 0x6E else "enum", names, ())
    if opcode == 0x6A:
        ok, err = read_optional_valtype(reader, scope), read_optional_valtype(reader, scope)
        return make_defined(reader, "result", (ok, err), (ok, err))
    if opcode in (0x69, 0x68):
        start = reader.pos
        resource = scope.type_at(reader, "resource type")
        if not isinstance(resource, ResourceType):
            raise reader.error("a handle type (own/borrow) names a non-resource type", start)
        return make_defined(reader, "own" if opcode == 0x69 else "borrow", (resource,), ())
    if opcode in (0x66, 0x65):
        payload = read_optional_valtype(reader, scope)
        kind = "stream" if opcode == 0x66 else "future"
        return make_defined(reader, kind, (payload,), (payload,))
    if opcode == 0x63:
        key, value = read_valtype(reader, scope), read_valtype(reader, scope)
        return make_defined(reader, "map", (key, value), (key, value))
    raise reader.error(f"unknown type opcode 0x{opcode:02x}", reader.pos - 1)


def read_case(reader: Reader, scope: Scope) -> t.Tuple[str, t.Optional[ValType]]:
    name = reader.name("a variant case name")
    payload = read_optional_valtype(reader, scope)
    start = reader.pos
    if reader.byte("a variant case terminator") != 0:
        raise reader.error("variant case `refines` is not supported", start)
    return name, payload


def read_func_type(reader: Reader, scope: Scope, is_async: bool) -> FuncType:
    params = read_labelled_valtypes(reader, scope, "parameter")
    start = reader.pos
    form = reader.byte("a result list")
    if form == 0x00:
        result: t.Optional[ValType] = read_valtype(reader, scope)
    elif form == 0x01 and reader.byte("a result list") == 0x00:
        result = None
    else:
        raise reader.error("invalid function result list (named results are not supported)",
                           start)
    return FuncType(params, result, is_async)


def read_type(reader: Reader, scope: Scope) -> AnyType:
    """One `type` definition: a value, function, component, instance or resource type."""
    start = reader.pos
    opcode = reader.byte("a type")
    if opcode in (0x40, 0x43):
        return read_func_type(reader, scope, is_async=opcode == 0x43)
    if opcode == 0x41:
        return read_declarator(reader, scope, is_component=True)
    if opcode == 0x42:
        return read_declarator(reader, scope, is_component=False)
    if opcode == 0x3F:
        if scope.is_declarator:
            raise reader.error("resource definitions are not allowed in a type declarator", start)
        rep = reader.byte("a resource representation")
        if rep not in (0x7F, 0x7E):
            raise reader.error(f"invalid resource representation 0x{rep:02x}", reader.pos - 1)
        if reader.flag("an optional destructor"):
            reader.u32("a destructor index")
        var = ResourceVar()
        scope.defined_vars.append(var)
        return var.plain()
    return read_defined(reader, scope, opcode)


def read_declarator(reader: Reader, parent: Scope, is_component: bool) -> AnyType:
    """A `(component ...)` or `(instance ...)` type: declarations in a fresh scope."""
    scope = Scope(parent, reader.pos, is_declarator=True)
    imports: t.Dict[str, Entity] = {}
    exports: t.Dict[str, Entity] = {}
    for _ in range(reader.count("declarations")):
        start = reader.pos
        tag = reader.byte("a declaration")
        if tag == 0x00:
            skip_core_type(reader)
        elif tag == 0x01:
            scope.types.append(read_type(reader, scope))
        elif tag == 0x02:
            read_alias(reader, scope)
        elif tag == 0x04 or (tag == 0x03 and is_component):
            name = read_extern_name(reader).name
            entity = read_extern_type(reader, scope)
            target = exports if tag == 0x04 else imports
            if name in target:
                raise reader.error(f"duplicate {'export' if tag == 4 else 'import'} `{name}`",
                                   start)
            target[name] = entity
            scope.add(entity)
        else:
            raise reader.error(f"unknown declaration 0x{tag:02x}", start)
    if not is_component:
        return InstanceType(exports)
    return ComponentType(imports, exports, InstanceType(exports).declared_resources())


def read_extern_type(reader: Reader, scope: Scope) -> Entity:
    """An `externtype`: what an import or export declaration says it is."""
    start = reader.pos
    kind = reader.byte("an extern type")
    if kind == 0x00:
        if reader.byte("a core sort") != 0x11:
            raise reader.error("only core modules can be imported from the core sorts", start)
        reader.u32("a core type index")
        return CORE_MODULE
    if kind == 0x01:
        return scope.func_type_at(reader)
    if kind == 0x02:
        if reader.flag("a value bound"):
            read_valtype(reader, scope)
        else:
            reader.u32("a value index")
        return VALUE
    if kind == 0x03:
        if reader.flag("a type bound"):  # (sub resource)
            resource = ResourceVar().plain()
            return TypeEntity(resource, resource, fresh=True)
        referenced = scope.type_at(reader)
        return TypeEntity(referenced, with_unique(referenced))
    if kind == 0x04:
        return scope.component_type_at(reader)
    if kind == 0x05:
        return scope.instance_type_at(reader)
    raise reader.error(f"unknown extern type 0x{kind:02x}", start)


def read_alias(reader: Reader, scope: Scope) -> None:
    sort = read_sort(reader)
    start = reader.pos
    target = reader.byte("an alias target")
    if target == 0x00:  # export of an instance
        index = reader.u32("an instance index")
        if index >= len(scope.instances):
            raise reader.error(f"instance index {index} is out of range", start + 1)
        name = reader.name("an export name")
        entity = scope.instances[index].exports.get(name)
        if entity is None:
            raise reader.error(f"instance {index} has no export named `{name}`", start)
        if sort != sort_of(entity):
            raise reader.error(f"export `{name}` of instance {index} is not a "
                               f"{SORT_NAMES.get(sort, 'core item')}", start)
        scope.add(entity)
    elif target == 0x01:  # export of a core instance: core index spaces are not tracked
        reader.u32("a core instance index")
        reader.name("a core export name")
    elif target == 0x02:
        read_outer_alias(reader, scope, sort)
    else:
        raise reader.error(f"unknown alias target 0x{target:02x}", start)


def read_outer_alias(reader: Reader, scope: Scope, sort: int) -> None:
    outer = scope.outer(reader)
    start = reader.pos
    index = reader.u32("an outer alias index")
    if sort in (SORT_CORE_MODULE, SORT_CORE_OTHER):
        return
    space: t.Sequence[t.Any] = (outer.types if sort == SORT_TYPE else
                                outer.components if sort == SORT_COMPONENT else ())
    if sort not in (SORT_TYPE, SORT_COMPONENT):
        raise reader.error(f"outer aliases of {SORT_NAMES[sort]}s are not allowed", start)
    if index >= len(space):
        raise reader.error(f"outer alias index {index} is out of range", start)
    (scope.types if sort == SORT_TYPE else scope.components).append(space[index])


def sort_of(entity: Entity) -> int:
    if isinstance(entity, TypeEntity):
        return SORT_TYPE
    if isinstance(entity, FuncType):
        return SORT_FUNC
    if isinstance(entity, InstanceType):
        return SORT_INSTANCE
    if isinstance(entity, ComponentType):
        return SORT_COMPONENT
    return SORT_CORE_MODULE if entity is CORE_MODULE else SORT_VALUE


# -- core types inside component/instance type declarators ----------------------------------

CORE_NUM_TYPES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x7B})
CORE_SHORT_REF_TYPES = frozenset(range(0x69, 0x75))


def skip_core_type(reader: Reader) -> None:
    """Step over a core function or module type (the WIT view never needs them)."""
    start = reader.pos
    form = reader.byte("a core type")
    if form == 0x60:
        for _ in range(2):  # parameters, then results
            for _ in range(reader.count("core value types")):
                skip_core_valtype(reader)
    elif form == 0x50:
        for _ in range(reader.count("module declarations")):
            skip_module_declaration(reader)
    else:
        raise reader.error(f"unsupported core type form 0x{form:02x} in a type declarator",
                           start)


def skip_core_valtype(reader: Reader) -> None:
    start = reader.pos
    code = reader.byte("a core value type")
    if code in CORE_NUM_TYPES or code in CORE_SHORT_REF_TYPES:
        return
    if code in (0x63, 0x64):  # (ref null? heaptype)
        heap = reader.peek("a heap type")
        if heap in CORE_SHORT_REF_TYPES:
            reader.pos += 1
        else:
            reader.u32("a heap type index")
        return
    raise reader.error(f"unsupported core value type 0x{code:02x}", start)


def skip_module_declaration(reader: Reader) -> None:
    start = reader.pos
    tag = reader.byte("a module declaration")
    if tag == 0x00:
        reader.name("an import module name")
        reader.name("an import name")
        skip_core_extern_type(reader)
    elif tag == 0x01:
        skip_core_type(reader)
    elif tag == 0x02:
        if reader.byte("a core sort") != 0x10 or reader.byte("an alias target") != 0x01:
            raise reader.error("only outer type aliases are allowed in a module type", start)
        reader.u32("an outer alias count")
        reader.u32("an outer alias index")
    elif tag == 0x03:
        reader.name("an export name")
        skip_core_extern_type(reader)
    else:
        raise reader.error(f"unknown module declaration 0x{tag:02x}", start)


def skip_core_extern_type(reader: Reader) -> None:
    start = reader.pos
    kind = reader.byte("a core extern type")
    if kind == 0x00:
        reader.u32("a core type index")
    elif kind == 0x01:
        skip_core_valtype(reader)
        skip_limits(reader)
    elif kind == 0x02:
        skip_limits(reader)
    elif kind == 0x03:
        skip_core_valtype(reader)
        reader.flag("a global mutability")
    elif kind == 0x04:
        reader.byte("a tag attribute")
        reader.u32("a core type index")
    else:
        raise reader.error(f"unknown core extern type 0x{kind:02x}", start)


def skip_limits(reader: Reader) -> None:
    flags = reader.byte("limits")
    reader.u64("a minimum")
    if flags & 0x01:
        reader.u64("a maximum")
    if flags & 0x08:
        reader.u32("a page size")


# -- instantiation ---------------------------------------------------------------------------

def instantiate(reader: Reader, component: ComponentType, args: t.Dict[str, Entity],
                scope: Scope) -> InstanceType:
    """The type of an instance of `component`: its exports, with the resources it
    imports replaced by the ones supplied and the ones it defines made fresh."""
    binding = Binding()
    for name, expected in component.imports.items():
        supplied = args.get(name)
        if supplied is None:
            raise reader.error(f"instantiation argument `{name}` is missing")
        binding.bind(reader, expected, supplied, name)
    for var in component.defined_vars:
        fresh = ResourceVar()
        binding.resources[var] = fresh
        scope.defined_vars.append(fresh)
    substitution = Substitution(binding.resources, binding.renamed)
    instance = InstanceType({name: substitution.entity(e) for name, e in component.exports.items()})
    scope.budget.spend(len(args) + len(instance.exports) + len(substitution.cache), reader.pos)
    return instance


class Binding:
    """What was supplied for the imports of a component being instantiated: the
    resource for each `(sub resource)`, and the type for each imported type."""

    def __init__(self) -> None:
        self.resources: t.Dict[ResourceVar, ResourceVar] = {}
        self.renamed: t.Dict[object, t.Any] = {}

    def bind(self, reader: Reader, expected: Entity, supplied: Entity, path: str) -> None:
        if isinstance(expected, TypeEntity):
            if not isinstance(supplied, TypeEntity):
                raise reader.error(f"`{path}` must be supplied a type")
            if expected.fresh:
                if not isinstance(supplied.created, ResourceType):
                    raise reader.error(f"`{path}` must be supplied a resource type")
                assert isinstance(expected.referenced, ResourceType)
                self.resources[expected.referenced.var] = supplied.created.var
            self.renamed[expected.created] = supplied.created
        elif isinstance(expected, InstanceType):
            if not isinstance(supplied, InstanceType):
                raise reader.error(f"`{path}` must be supplied an instance")
            for name, inner in expected.exports.items():
                found = supplied.exports.get(name)
                if found is None:
                    raise reader.error(f"the instance supplied for `{path}` lacks export `{name}`")
                self.bind(reader, inner, found, f"{path}/{name}")


def ascribe(reader: Reader, actual: Entity, ascribed: Entity, budget: Budget) -> Entity:
    """An export's declared type, with its `(sub resource)`s bound to the actual ones."""
    if isinstance(ascribed, TypeEntity) and ascribed.fresh:
        return actual
    binding = Binding()
    binding.bind(reader, ascribed, actual, "export")
    substitution = Substitution(binding.resources, binding.renamed)
    result = substitution.entity(ascribed)
    budget.spend(len(substitution.cache), reader.pos)
    return result


# -- sections --------------------------------------------------------------------------------

class Extern(t.NamedTuple):
    is_export: bool
    name: ExternName
    entity: Entity
    offset: int  # where its import or export declaration starts


class ParsedComponent:
    """What the WIT view needs from a component: its imports and exports in order, with
    their types, and the contents of its `package-docs` custom section, if any."""

    def __init__(self, budget: Budget) -> None:
        self.externs: t.List[Extern] = []
        self.package_docs: t.Optional[bytes] = None
        self.package_docs_offset = 0
        self.type = ComponentType({}, {})
        self.budget = budget  # shared by the whole decode, nested components included


SECTION_CUSTOM, SECTION_COMPONENT, SECTION_INSTANCE, SECTION_ALIAS = 0, 4, 5, 6
SECTION_TYPE, SECTION_CANON, SECTION_IMPORT, SECTION_EXPORT = 7, 8, 10, 11
SKIPPED_SECTIONS = frozenset({1, 2, 3, 9, 12})  # core module/instance/type, start, value


def parse_component(data: Buffer, start: int = 0, end: t.Optional[int] = None,
                    parent: t.Optional[Scope] = None) -> ParsedComponent:
    """Read a component's sections (nested components lazily, core code never)."""
    reader = Reader(data, start, end)
    check_preamble(reader)
    scope = Scope(parent, reader.pos)
    parsed = ParsedComponent(scope.budget)
    while not reader.at_end():
        section_start = reader.pos
        section_id = reader.byte("a section id")
        size = reader.u32("a section size")
        body = reader.sub_reader(size, f"section {section_id}")
        if section_id in SKIPPED_SECTIONS:
            continue
        if section_id == SECTION_COMPONENT:
            scope.components.append(NestedComponent(data, body.pos, body.end, scope))
            continue
        reader_for = SECTION_READERS.get(section_id)
        if reader_for is None:
            raise reader.error(f"unknown section id {section_id}", section_start)
        reader_for(body, scope, parsed)
        body.expect_end(f"section {section_id}")
    parsed.type.defined_vars = tuple(scope.defined_vars)
    return parsed


def read_custom_section(body: Reader, scope: Scope, parsed: ParsedComponent) -> None:
    name = body.name("a custom section name")
    if name == "package-docs" and scope.parent is None:
        parsed.package_docs = bytes(body.data[body.pos:body.end])
        parsed.package_docs_offset = body.pos
    body.pos = body.end


def read_instance_section(body: Reader, scope: Scope, parsed: ParsedComponent) -> None:
    for _ in range(body.count("instances", 2)):
        start = body.pos
        form = body.byte("an instance")
        if form == 0x00:
            scope.instances.append(read_instantiation(body, scope))
        elif form == 0x01:
            scope.instances.append(read_bag_of_exports(body, scope))
        else:
            raise body.error(f"unknown instance form 0x{form:02x}", start)


def read_instantiation(body: Reader, scope: Scope) -> InstanceType:
    """`(instantiate c (with name item)*)`: the type of the new instance."""
    start = body.pos
    index = body.u32("a component index")
    if index >= len(scope.components):
        raise body.error(f"component index {index} is out of range", start)
    component = scope.components[index]
    if isinstance(component, NestedComponent):
        component = component.component_type()
    args: t.Dict[str, Entity] = {}
    for _ in range(body.count("instantiation arguments", 3)):
        name = body.name("an instantiation argument name")
        args[name] = scope.item_at(body, read_sort(body))
    return instantiate(body, component, args, scope)


def read_bag_of_exports(body: Reader, scope: Scope) -> InstanceType:
    """An instance made of items already defined: `(instance (export name item)*)`."""
    exports: t.Dict[str, Entity] = {}
    for _ in range(body.count("instance exports", 3)):
        name = read_extern_name(body).name
        exports[name] = scope.item_at(body, read_sort(body))
    return InstanceType(exports)


def read_alias_section(body: Reader, scope: Scope, parsed: ParsedComponent) -> None:
    for _ in range(body.count("aliases", 3)):
        read_alias(body, scope)


def read_type_section(body: Reader, scope: Scope, parsed: ParsedComponent) -> None:
    for _ in range(body.count("types")):
        scope.types.append(read_type(body, scope))


def read_import_section(body: Reader, scope: Scope, parsed: ParsedComponent) -> None:
    for _ in range(body.count("imports", 3)):
        start = body.pos
        name = read_extern_name(body)
        entity = read_extern_type(body, scope)
        if isinstance(entity, InstanceType):
            entity = freshen_instance(entity, scope.budget, start)
        if name.name in parsed.type.imports:
            raise body.error(f"duplicate import `{name.name}`", start)
        parsed.type.imports[name.name] = entity
        parsed.externs.append(Extern(False, name, entity, start))
        scope.add(entity)


def read_export_section(body: Reader, scope: Scope, parsed: ParsedComponent) -> None:
    for _ in range(body.count("exports", 3)):
        start = body.pos
        name = read_extern_name(body)
        sort = read_sort(body)
        entity = scope.item_at(body, sort)
        if isinstance(entity, TypeEntity):
            entity = TypeEntity(entity.referenced, with_unique(entity.referenced))
        if body.flag("an optional export type"):
            entity = ascribe(body, entity, read_extern_type(body, scope), scope.budget)
        if name.name in parsed.type.exports:
            raise body.error(f"duplicate export `{name.name}`", start)
        parsed.type.exports[name.name] = entity
        parsed.externs.append(Extern(True, name, entity, start))
        scope.add(entity)


def read_canon_section(body: Reader, scope: Scope, parsed: ParsedComponent) -> None:
    """Only `canon lift` makes a component function; the rest make core functions,
    whose immediates are stepped over."""
    for _ in range(body.count("canonical functions")):
        start = body.pos
        opcode = body.byte("a canonical function")
        if opcode == 0x00:
            if body.byte("a core sort") != 0x00:
                raise body.error("canon lift must lift a core function", start)
            body.u32("a core function index")
            skip_canon_options(body)
            scope.funcs.append(scope.func_type_at(body))
            continue
        immediates = CANON_IMMEDIATES.get(opcode)
        if immediates is None:
            raise body.error(f"unknown canonical function 0x{opcode:02x}", start)
        for immediate in immediates:
            immediate(body)


def skip_canon_options(reader: Reader) -> None:
    for _ in range(reader.count("canonical options")):
        start = reader.pos
        option = reader.byte("a canonical option")
        if option in (0x03, 0x04, 0x05, 0x07, 0x08):
            reader.u32("a canonical option index")
        elif option not in (0x00, 0x01, 0x02, 0x06):
            raise reader.error(f"unknown canonical option 0x{option:02x}", start)


def skip_result_list(reader: Reader) -> None:
    start = reader.pos
    form = reader.byte("a result list")
    if form == 0x00:
        # the value type's index is not resolved: task.return only makes a core function
        if 0x40 <= reader.peek("a value type") < 0x80:
            reader.pos += 1
        else:
            reader.u32("a value type index")
    elif not (form == 0x01 and reader.byte("a result list") == 0x00):
        raise reader.error("invalid result list", start)


def _index(reader: Reader) -> None:
    reader.u32("an index")


def _byte(reader: Reader) -> None:
    reader.byte("a flag")


_Skip = t.Callable[[Reader], None]
CANON_IMMEDIATES: t.Dict[int, t.Tuple[_Skip, ...]] = {
    0x01: (_byte, _index, skip_canon_options),     # lower: 0x00 funcidx opts
    0x02: (_index,), 0x03: (_index,), 0x04: (_index,), 0x07: (_index,),  # resource.*
    0x05: (), 0x08: (), 0x0D: (), 0x1E: (), 0x1F: (), 0x22: (), 0x23: (),
    0x24: (), 0x25: (), 0x26: (), 0x28: (),
    0x09: (skip_result_list, skip_canon_options),  # task.return
    0x0A: (_byte, _index), 0x0B: (_byte, _index),  # context.get/set
    0x06: (_byte,), 0x0C: (_byte,), 0x29: (_byte,), 0x2A: (_byte,), 0x2B: (_byte,),
    0x2C: (_byte,), 0x2D: (_byte,), 0x42: (_byte,),
    0x0E: (_index,), 0x13: (_index,), 0x14: (_index,), 0x15: (_index,), 0x1A: (_index,),
    0x1B: (_index,),
    0x0F: (_index, skip_canon_options), 0x10: (_index, skip_canon_options),
    0x16: (_index, skip_canon_options), 0x17: (_index, skip_canon_options),
    0x11: (_index, _byte), 0x12: (_index, _byte), 0x18: (_index, _byte), 0x19: (_index, _byte),
    0x1C: (skip_canon_options,), 0x1D: (skip_canon_options,),
    0x20: (_byte, _index), 0x21: (_byte, _index),
    0x27: (_index, _index), 0x40: (_byte, _index), 0x41: (_byte, _index, _index),
}

SECTION_READERS: t.Dict[int, t.Callable[[Reader, Scope, ParsedComponent], None]] = {
    SECTION_CUSTOM: read_custom_section,
    SECTION_INSTANCE: read_instance_section,
    SECTION_ALIAS: read_alias_section,
    SECTION_TYPE: read_type_section,
    SECTION_CANON: read_canon_section,
    SECTION_IMPORT: read_import_section,
    SECTION_EXPORT: read_export_section,
}
