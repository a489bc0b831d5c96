"""Decode the WIT world of a component binary, in pure Python.

    bytes ──_binary.parse_component──► imports/exports with component-level types
          ──_WorldBuilder──────────────► wasm_import.wit.World

The first step replays the component-level sections (types, imports, exports, aliases,
instances, canonical functions), stepping over core modules by their length; see
`_binary`. The second step turns those types into the WIT model the way wit-parser's
`decoding.rs` does, so the result prints the same WIT as `wasm-tools component wit`:

* An import or export named `ns:pkg/name@1.2.3` (or a plain name whose `implements`
  attribute names one) is that interface of a foreign package. Every mention of it
  decodes to the same interface, holding the union of what they declare. Any other
  (kebab-case) name is an inline interface (`import foo: interface { ... }`). World keys
  are the names as written in the binary.
* A type export whose type (following `(eq ...)` aliases back) was already decoded
  becomes an `Alias` of it: that is how `use other.{t}` is recognised.
* `[constructor]r`, `[method]r.m` and `[static]r.s` functions attach to the resource `r`
  declared earlier by the same interface (or world).
* Docs come from the `package-docs` custom section, when a component carries one.
* The work of a decode is capped (`_binary.Budget`), so small input cannot make it
  expand into millions of types.

The world of a component is always `root` in package `root:component`, as wit-parser names it.
"""

from __future__ import annotations

import json
import re
import typing as t

from . import _binary as b
from . import _model as m
from .._errors import DecodeError

__all__ = ["decode"]

ROOT_PACKAGE = m.PackageName("root", "component")
ROOT_WORLD = "root"


def decode(data: t.Union[bytes, bytearray, memoryview]) -> m.World:
    """The WIT world of the component `data`. Raises `DecodeError` for anything else."""
    try:
        parsed = b.parse_component(data)
        docs = _PackageDocs.parse(parsed.package_docs, parsed.package_docs_offset,
                                  frozenset(parsed.type.imports))
        return _WorldBuilder(docs, parsed.budget).build(parsed)
    except RecursionError:  # defence in depth: nesting is bounded explicitly
        raise DecodeError("component nesting is too deep to decode") from None


# -- docs from the `package-docs` custom section ---------------------------------------------

_Json = t.Dict[str, t.Any]


class _PackageDocs:
    """The docs wit-component stores in a `package-docs` section (a version byte, then
    JSON), as they apply to the `root` world of a component."""

    def __init__(self, world: _Json, package: t.Any, import_names: t.AbstractSet[str]) -> None:
        self.world = world
        self.package = _docs(package)
        self.import_names = import_names

    @classmethod
    def parse(cls, raw: t.Optional[bytes], offset: int,
              import_names: t.AbstractSet[str]) -> "_PackageDocs":
        if raw is None:
            return cls({}, None, import_names)
        if not raw or raw[0] not in (0, 1):
            raise DecodeError("unsupported package-docs custom section version", offset)
        try:
            meta = json.loads(raw[1:].decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise DecodeError(f"invalid package-docs custom section: {e}", offset) from None
        if not isinstance(meta, dict):
            raise DecodeError("invalid package-docs custom section: not a JSON object", offset)
        world = _get_dict(_get_dict(meta, "worlds"), ROOT_WORLD)
        return cls(world, meta.get("docs"), import_names)

    def world_docs(self) -> m.Docs:
        return _docs(self.world.get("docs"))

    def function(self, name: str, is_export: bool) -> m.Docs:
        return _function_docs(self._lookup("funcs", "func_exports", name, is_export))

    def inline_interface(self, name: str, is_export: bool) -> _Json:
        found = self._lookup("interfaces", "interface_exports", name, is_export)
        return found if isinstance(found, dict) else {}

    def interface_statement(self, name: str, is_export: bool) -> m.Docs:
        key = "interface_export_docs" if is_export else "interface_import_docs"
        return _docs(_get_dict(self.world, key).get(name))

    def world_type(self, name: str) -> _Json:
        return _get_dict(_get_dict(self.world, "types"), name)

    def _lookup(self, shared_key: str, export_key: str, name: str, is_export: bool) -> t.Any:
        """How wit-parser applies the metadata: an entry of `shared_key` documents the
        import of that name or, failing one, the export; `export_key` only exports."""
        exports_only = _get_dict(self.world, export_key)
        if is_export and (name in exports_only or name in self.import_names):
            return exports_only.get(name)
        return _get_dict(self.world, shared_key).get(name)


def _get_dict(obj: _Json, key: str) -> _Json:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _docs(value: t.Any) -> m.Docs:
    return m.Docs(value) if isinstance(value, str) else m.NO_DOCS


def _function_docs(meta: t.Any) -> m.Docs:
    """Function metadata is a bare string (format 0) or `{"docs": ...}` (format 1)."""
    return _docs(meta.get("docs") if isinstance(meta, dict) else meta)


# -- building the world ----------------------------------------------------------------------

class _Owner:
    """The interface or world that types and functions are being decoded into, with the
    docs that apply to its members and its resources by name."""

    def __init__(self, ref: m.Owner, docs: _Json) -> None:
        self.ref = ref
        self.docs = docs
        self.resources: t.Dict[str, m.TypeDef] = {}

    def type_docs(self, name: str) -> _Json:
        return _get_dict(_get_dict(self.docs, "types"), name)

    def function_docs(self, name: str) -> m.Docs:
        return _function_docs(_get_dict(self.docs, "funcs").get(name))


class _WorldBuilder:
    """Turns component-level types into WIT, mirroring wit-parser's decoder."""

    def __init__(self, docs: _PackageDocs, budget: b.Budget) -> None:
        self.docs = docs
        self.budget = budget  # each type and function decoded spends from it
        self.world_ref = m.WorldRef(ROOT_WORLD, ROOT_PACKAGE)
        self.world_owner = _Owner(self.world_ref, {})
        # what each binary type (by identity) was decoded to
        self.type_map: t.Dict[object, m.TypeDef] = {}
        # foreign interfaces, with their owners
        self.named: t.Dict[m.InterfaceRef, t.Tuple[m.Interface, _Owner]] = {}

    def build(self, parsed: b.ParsedComponent) -> m.World:
        _refuse_wit_package(parsed)
        imports: t.Dict[str, m.WorldItem] = {}
        exports: t.Dict[str, m.WorldItem] = {}
        for extern in parsed.externs:
            try:
                item = self.world_item(extern)
            except DecodeError as e:
                if e.offset is not None:
                    raise
                side = "export" if extern.is_export else "import"
                raise DecodeError(f"{e.message} (in {side} `{extern.name.name}`)",
                                  extern.offset) from None
            if item is not None:
                (exports if extern.is_export else imports)[extern.name.name] = item
        return m.World(ROOT_WORLD, ROOT_PACKAGE, imports, exports, self.docs.world_docs(),
                       self.docs.package)

    def world_item(self, extern: b.Extern) -> t.Optional[m.WorldItem]:
        name, entity = extern.name.name, extern.entity
        if isinstance(entity, b.InstanceType):
            return self.world_instance(extern.name, entity, extern.is_export)
        if isinstance(entity, b.FuncType):
            docs = self.docs.function(name, extern.is_export)
            return self.function(name, entity, self.world_owner, docs)
        if isinstance(entity, b.TypeEntity) and not extern.is_export:
            return self.type_export(name, entity, self.world_owner, self.docs.world_type(name))
        if extern.is_export:
            raise DecodeError(f"component export `{name}` is not a function or an instance, "
                              "which WIT cannot describe")
        return None  # imported core modules, components and values are not part of WIT

    # -- interfaces --------------------------------------------------------------------------

    def world_instance(self, name: b.ExternName, instance: b.InstanceType,
                       is_export: bool) -> m.Interface:
        qualified = name.implements or name.name
        package_name = _parse_interface_name(qualified, name.version_suffix)
        if package_name is None:
            return self.inline_interface(name.name, instance, is_export)
        package, iface_name = package_name
        interface = self.named_interface(m.InterfaceRef(iface_name, package), instance)
        statement_docs = self.docs.interface_statement(name.name, is_export)
        if statement_docs:
            return m.Interface(interface.name, interface.package, interface.types,
                               interface.functions, statement_docs)
        return interface

    def named_interface(self, ref: m.InterfaceRef, instance: b.InstanceType) -> m.Interface:
        """A foreign interface, created on first sight and completed by later ones with
        whatever types and functions they add."""
        if ref not in self.named:
            interface = m.Interface(ref.name, ref.package)
            self.named[ref] = interface, _Owner(ref, {})
        interface, owner = self.named[ref]
        for export_name, entity in instance.exports.items():
            if isinstance(entity, b.TypeEntity):
                known = interface.types.get(export_name)
                if known is None:
                    interface.types[export_name] = self.type_export(export_name, entity, owner, {})
                else:
                    self.remember(entity.created, known, export_name)
            elif isinstance(entity, b.FuncType):
                if export_name not in interface.functions:
                    interface.functions[export_name] = self.function(
                        export_name, entity, owner, m.NO_DOCS)
            else:
                raise DecodeError(f"export `{export_name}` of interface `{ref}` is not a "
                                  "type or a function")
        return interface

    def inline_interface(self, name: str, instance: b.InstanceType,
                         is_export: bool) -> m.Interface:
        docs = self.docs.inline_interface(name, is_export)
        interface = m.Interface(name, None, docs=_docs(docs.get("docs")))
        owner = _Owner(interface.ref, docs)
        for export_name, entity in instance.exports.items():
            if isinstance(entity, b.TypeEntity):
                interface.types[export_name] = self.type_export(
                    export_name, entity, owner, owner.type_docs(export_name))
            elif isinstance(entity, b.FuncType):
                interface.functions[export_name] = self.function(
                    export_name, entity, owner, owner.function_docs(export_name))
            else:
                raise DecodeError(f"export `{export_name}` of interface `{name}` is not a type "
                                  "or a function")
        return interface

    # -- types -------------------------------------------------------------------------------

    def type_export(self, name: str, entity: b.TypeEntity, owner: _Owner,
                    docs: _Json) -> m.TypeDef:
        """A named type: an alias if its type was decoded before, else a new definition."""
        previous = self.find_alias(entity.referenced)
        kind: m.TypeDefKind
        if previous is not None:
            kind = m.Alias(previous)
        elif isinstance(entity.referenced, b.DefinedType):
            kind = self.defined(entity.referenced, _get_dict(docs, "items"))
        elif isinstance(entity.referenced, b.ResourceType):
            kind = m.Resource()
        else:
            raise DecodeError(f"type `{name}` is not a value or resource type")
        self.budget.spend(1, None)
        typedef = m.TypeDef(kind, name, owner.ref, _docs(docs.get("docs")))
        if isinstance(kind, m.Resource):
            owner.resources[name] = typedef
        self.remember(entity.created, typedef, name)
        return typedef

    def remember(self, created: object, typedef: m.TypeDef, name: str) -> None:
        if created in self.type_map:
            raise DecodeError(f"cannot represent this component in WIT: the type `{name}` "
                              "appears more than once")
        self.type_map[created] = typedef

    def find_alias(self, ty: t.Any) -> t.Optional[m.TypeDef]:
        """The decoded type that `ty`, or anything it is an `(eq ...)` alias of, maps to."""
        while ty is not None:
            found = self.type_map.get(ty)
            if found is not None:
                return found
            ty = ty.alias_of
        return None

    def valtype(self, ty: b.ValType) -> m.Type:
        if isinstance(ty, m.Primitive):
            return ty
        known = self.type_map.get(ty)
        if known is not None:
            return known
        kind = self.defined(ty, {})
        if isinstance(kind, (m.Record, m.Variant, m.Enum, m.Flags)):
            raise DecodeError(f"a {ty.kind} type is used without a name, which WIT cannot express")
        typedef = m.TypeDef(kind)
        self.type_map[ty] = typedef
        return typedef

    def optional(self, ty: t.Optional[b.ValType]) -> t.Optional[m.Type]:
        return None if ty is None else self.valtype(ty)

    def defined(self, ty: b.DefinedType, item_docs: _Json) -> m.TypeDefKind:
        """The WIT kind of a defined type; `item_docs` document fields and cases."""
        kind, items = ty.kind, ty.items

        def docs(name: str) -> m.Docs:
            return _docs(item_docs.get(name))

        if kind == "prim":
            return m.Alias(items[0])
        if kind == "record":
            return m.Record(tuple(m.Field(n, self.valtype(v), docs(n)) for n, v in items))
        if kind == "variant":
            return m.Variant(tuple(m.Case(n, self.optional(v), docs(n)) for n, v in items))
        if kind == "enum":
            return m.Enum(tuple(m.EnumCase(n, docs(n)) for n in items))
        if kind == "flags":
            return m.Flags(tuple(m.Flag(n, docs(n)) for n in items))
        if kind == "list":
            return m.List(self.valtype(items[0]))
        if kind == "fixed-list":
            return m.FixedList(self.valtype(items[0]), items[1])
        if kind == "map":
            return m.Map(self.valtype(items[0]), self.valtype(items[1]))
        if kind == "tuple":
            return m.Tuple(tuple(self.valtype(v) for v in items))
        if kind == "option":
            return m.Option(self.valtype(items[0]))
        if kind == "result":
            return m.Result(self.optional(items[0]), self.optional(items[1]))
        if kind == "own":
            return m.Own(self.resource(items[0]))
        if kind == "borrow":
            return m.Borrow(self.resource(items[0]))
        if kind == "future":
            return m.Future(self.optional(items[0]))
        assert kind == "stream", kind
        return m.Stream(self.optional(items[0]))

    def resource(self, ty: b.ResourceType) -> m.TypeDef:
        found = self.type_map.get(ty) or self.find_alias(ty)
        if found is None:
            raise DecodeError("a handle names a resource that no import or export declares")
        return found

    # -- functions ---------------------------------------------------------------------------

    def function(self, name: str, ty: b.FuncType, owner: _Owner, docs: m.Docs) -> m.Function:
        self.budget.spend(1 + len(ty.params), None)
        params = tuple(m.Param(p, self.valtype(v)) for p, v in ty.params)
        result = self.optional(ty.result)
        kind, resource_name = _function_kind(name)
        resource = None
        if resource_name is not None:
            resource = owner.resources.get(resource_name)
            if resource is None:
                raise DecodeError(f"function `{name}` belongs to resource `{resource_name}`, "
                                  f"which {owner.ref} does not declare")
        return m.Function(name, kind, params, result, resource, ty.is_async, docs)


_RESOURCE_FUNCTION_PREFIXES = (
    ("[constructor]", m.FunctionKind.CONSTRUCTOR),
    ("[method]", m.FunctionKind.METHOD),
    ("[static]", m.FunctionKind.STATIC),
)


def _function_kind(name: str) -> t.Tuple[m.FunctionKind, t.Optional[str]]:
    """The kind of a function and, for resource functions, the resource's name."""
    for prefix, kind in _RESOURCE_FUNCTION_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if kind is m.FunctionKind.CONSTRUCTOR:
                return kind, rest
            resource, dot, item = rest.partition(".")
            if not dot or not item:
                raise DecodeError(f"function name `{name}` lacks the `.name` after the resource")
            return kind, resource
    return m.FunctionKind.FREESTANDING, None


def _refuse_wit_package(parsed: b.ParsedComponent) -> None:
    """A WIT package encoded as wasm exports only component types; it has no world of
    its own to decode."""
    externs = parsed.externs
    if externs and all(e.is_export and isinstance(e.entity, b.TypeEntity)
                       and isinstance(e.entity.referenced, b.ComponentType) for e in externs):
        raise DecodeError("this is a WIT package encoded as wasm, not a component: "
                          "it only exports component types", externs[0].offset)


_KEBAB_WORD = re.compile(r"[a-z][a-z0-9]*|[A-Z][A-Z0-9]*")


def _is_plain_name(name: str) -> bool:
    """A kebab-case label such as `my-api` or `HTTP-client`."""
    return all(_KEBAB_WORD.fullmatch(word) for word in name.split("-"))


def _parse_interface_name(name: str, version_suffix: t.Optional[str]
                          ) -> t.Optional[t.Tuple[m.PackageName, str]]:
    """`ns:pkg/iface@1.2.3` as (package, interface); None for a plain (inline) name."""
    if _is_plain_name(name):
        return None
    if ":" not in name or "/" not in name:
        raise DecodeError(f"`{name}` is neither an interface name (ns:pkg/name) nor a "
                          "plain kebab-case name")
    path, at, version = name.partition("@")
    namespace, _, rest = path.partition(":")
    package, _, interface = rest.partition("/")
    if not (namespace and package and interface) or (at and not version):
        raise DecodeError(f"malformed interface name `{name}`")
    if version and version_suffix:
        version += version_suffix
    return m.PackageName(namespace, package, version or None), interface
