"""A component binary flattened into a plan: which core modules to instantiate, in what
order, and what every core import is wired to.

    bytes ──_parse (records by index)──► _Frame per component instantiation ──► ComponentPlan

A component names everything by index, and what an index means depends on everything
declared before it and on what its instantiation was given. So, as wasmtime's inliner
(`crates/environ/src/component/translate/inline.rs`) does, the plan is made by *running*
the component's definitions at build time: the outermost component's imports are the
host's, and instantiating a nested component walks its body again in a new `_Frame` whose
imports are the items the instantiation supplies. Every index space of a frame holds
definitions that mean the same thing everywhere (`CoreExport` of core instantiation #n,
a `Lowered` host or composed function, a lifted function, a resource), so what is left at
the end is a flat list of core instantiations and the canon definitions between them.

Types are replayed with `wit._binary`'s readers in each frame's own type scope, so each
`(type (resource ...))` read in an instantiation is a new `ResourceVar`: a fresh
`ResourceDef` per instantiation. An imported item is the very item supplied (types
included), so a nested component's imported resources are its parent's, with no
substitution needed. Functions facing the host (imports of the outermost component and its
exports) get the `w.Function` of the world `wasm_import.wit.decode` gives, keyed exactly as
it keys them; functions between subcomponents get anonymous WIT types, with one distinct
resource TypeDef per ResourceDef (`ComponentPlan.resource_types`).

The plan is plain frozen dataclasses (it is pickled with the compiled-code cache). Input
that does not fit is a `DecodeError` with the byte offset; what the runtime cannot run
(component start functions, values, imported core modules or components) is refused by
name. Async lifts and lowers are kept (`Options.is_async`) and the async/threads built-ins
become `BuiltinIntrinsic`s, so such components still load and the runtime refuses the
call that needs them.
"""

from __future__ import annotations

import typing as t
import dataclasses
from dataclasses import dataclass, field

from ..wit import _binary as b
from ..wit import _model as w
from .._errors import DecodeError
from ..wit._decode import _function_kind, decode
from . import _parse as P
from ._parse import check_index

__all__ = [
    "CoreExport", "Lowered", "Intrinsic", "CoreRef", "Options", "Lift", "LowerHost",
    "LowerLifted", "ResourceIntrinsic", "BuiltinIntrinsic", "ResourceDef", "Instantiate",
    "Bag", "ComponentPlan", "build_plan", "MAX_INSTANTIATION_DEPTH",
]

MAX_INSTANTIATION_DEPTH = 32  # nested instantiations in progress at once


# =========================================================================================
# The plan
# =========================================================================================

@dataclass(frozen=True)
class CoreExport:
    """Export `name` of core instantiation `plan.instances[instance]`."""

    instance: int
    name: str


@dataclass(frozen=True)
class Lowered:
    """A core function made by `canon lower`: `plan.lowerings[index]`."""

    index: int


@dataclass(frozen=True)
class Intrinsic:
    """A core function the runtime provides: `plan.intrinsics[index]`."""

    index: int


CoreRef = t.Union[CoreExport, Lowered, Intrinsic]


@dataclass(frozen=True)
class Options:
    """Canon options, resolved to core items. `instance` is the component instance the
    canon definition is in (0 = the outermost), whose handle table it uses."""

    instance: int
    string_encoding: str  # 'utf8' | 'utf16' | 'latin1+utf16'
    memory: t.Optional[CoreRef]
    realloc: t.Optional[CoreRef]
    post_return: t.Optional[CoreRef]
    is_async: bool = False
    callback: t.Optional[CoreRef] = None


@dataclass(frozen=True)
class Lift:
    """`canon lift`: core function `func`, seen from outside as `type`."""

    func: CoreRef
    type: w.Function
    options: Options


@dataclass(frozen=True)
class LowerHost:
    """`canon lower` of an import of the outermost component. `key` is the world import
    key as `wit.decode` names it; `name` the function's full name inside it
    (`[method]r.m`...); for a root-level function `name == key`."""

    key: str
    name: str
    type: w.Function
    options: Options


@dataclass(frozen=True)
class LowerLifted:
    """`canon lower` of a function another subcomponent lifted: a composed call."""

    lift: Lift
    type: w.Function
    options: Options


@dataclass(frozen=True)
class ResourceIntrinsic:
    """`canon resource.new/drop/rep` of `plan.resources[resource]`, in component
    instance `instance`'s handle table. op: 'new' | 'drop' | 'rep'."""

    op: str
    resource: int
    instance: int


@dataclass(frozen=True)
class BuiltinIntrinsic:
    """A canon built-in of the async, threads or error-context proposals (`op` is its
    name in the spec, e.g. 'task.return'). This runtime does not provide them yet: a
    stand-in that refuses the call lets the component load."""

    op: str
    instance: int
    # what the async built-ins need (see Async.md): `type` is the stream/future type of a
    # stream.*/future.* built-in, or task.return's result type; `options` the canon options
    # of task.return, stream/future read/write and error-context built-ins; `flag` is
    # async?/cancellable?; `index` the context slot; `memory` waitable-set.wait/poll's memory.
    type: t.Optional[w.Type] = None
    options: t.Optional[Options] = None
    flag: bool = False
    index: int = 0
    memory: t.Optional[CoreRef] = None


@dataclass(frozen=True)
class ResourceDef:
    """A resource type at run time. `instance` is the component instance that defines it
    (None: the host's, imported as `import_name` of world import `import_key`)."""

    name: str
    instance: t.Optional[int]
    dtor: t.Optional[CoreRef]
    import_key: t.Optional[str] = None
    import_name: t.Optional[str] = None


@dataclass(frozen=True)
class Instantiate:
    """Instantiate core module `plan.modules[module]`; `args` in its import order."""

    module: int
    args: t.Tuple[CoreRef, ...]


@dataclass(frozen=True)
class Bag:
    """A core instance made of existing items, `(core instance (export ...))`. `build_plan`
    resolves references through bags, so it emits none; the type is part of the
    contract for plans made otherwise."""

    exports: t.Dict[str, CoreRef]


@dataclass
class ComponentPlan:
    modules: t.Tuple[t.Tuple[int, int], ...]  # byte ranges [start, end) of core modules
    instances: t.List[t.Union[Instantiate, Bag]]  # in instantiation order
    lowerings: t.List[t.Union[LowerHost, LowerLifted]]
    intrinsics: t.List[t.Union[ResourceIntrinsic, BuiltinIntrinsic]]
    resources: t.List[ResourceDef]
    exports: t.Dict[t.Tuple[t.Optional[str], str], Lift]  # (world key | None, func name)
    export_resources: t.Dict[t.Tuple[t.Optional[str], str], int]  # -> resources index
    component_instances: int
    # (world import key, resource name) -> resources index, for the host's resources
    import_resources: t.Dict[t.Tuple[str, str], int] = field(default_factory=dict)
    # the resource TypeDefs of the anonymous types of functions between subcomponents
    # (LowerLifted and its Lift) -> resources index; each is distinct by its owner
    resource_types: t.Dict[w.TypeDef, int] = field(default_factory=dict)


def build_plan(data: b.Buffer, world: t.Optional[w.World] = None) -> ComponentPlan:
    """The plan of the component `data`. Raises `DecodeError` (with a byte offset where
    one applies) for malformed input and for what this runtime cannot run. `world` is
    `wit.decode(data)` when the caller has it already (it is decoded otherwise)."""
    try:
        return _Builder(data, world).build()
    except RecursionError:  # defence in depth: nesting is bounded explicitly
        raise DecodeError("component nesting is too deep to plan") from None


# =========================================================================================
# Items of a frame's index spaces
# =========================================================================================

class _HostFunc:
    """A function the outermost component imports: `name` of world import `key`
    (`is_root`: a root-level function import, whose key is its name)."""

    __slots__ = ("key", "name", "type", "is_root")

    def __init__(self, key: str, name: str, type: b.FuncType, is_root: bool) -> None:
        self.key = key
        self.name = name
        self.type = type
        self.is_root = is_root


class _LiftedFunc:
    __slots__ = ("func", "type", "options", "name", "_lift")

    def __init__(self, func: CoreRef, type: b.FuncType, options: Options) -> None:
        self.func = func
        self.type = type
        self.options = options
        self.name = ""  # the first name it is exported or aliased under, for messages
        self._lift: t.Optional[Lift] = None


class _Inst:
    """A component instance: its exports by name."""

    __slots__ = ("items",)

    def __init__(self, items: t.Dict[str, "_Item"]) -> None:
        self.items = items


class _Closure:
    """A component definition with the frame it was defined in (for outer aliases)."""

    __slots__ = ("start", "end", "parent")

    def __init__(self, start: int, end: int, parent: "_Frame") -> None:
        self.start = start
        self.end = end
        self.parent = parent


class _Module:
    __slots__ = ("start", "end")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end


_Item = t.Union[_HostFunc, _LiftedFunc, _Inst, b.TypeEntity, _Closure, _Module]
_CoreInst = t.Union[int, t.Dict[str, t.Tuple[str, CoreRef]]]  # plan index, or a bag


def _sort_of(item: _Item) -> str:
    if isinstance(item, (_HostFunc, _LiftedFunc)):
        return "func"
    if isinstance(item, _Inst):
        return "instance"
    if isinstance(item, b.TypeEntity):
        return "type"
    if isinstance(item, _Closure):
        return "component"
    return "core module"


def _declared_sort(entity: b.Entity) -> str:
    """The sort an import's declared extern type asks for."""
    if isinstance(entity, b.TypeEntity):
        return "type"
    if isinstance(entity, b.FuncType):
        return "func"
    if isinstance(entity, b.InstanceType):
        return "instance"
    if isinstance(entity, b.ComponentType):
        return "component"
    return "core module" if entity is b.CORE_MODULE else "value"


class _ResourceRecord:
    """A ResourceDef while the plan is built (its name comes with its first export)."""

    __slots__ = ("name", "instance", "dtor", "import_key", "import_name")

    def __init__(self, instance: t.Optional[int], dtor: t.Optional[CoreRef],
                 import_key: t.Optional[str] = None, name: str = "") -> None:
        self.name = name
        self.instance = instance
        self.dtor = dtor
        self.import_key = import_key
        self.import_name = name or None


# =========================================================================================
# Building
# =========================================================================================

class _Builder:
    def __init__(self, data: b.Buffer, world: t.Optional[w.World] = None) -> None:
        self.data = data
        self.decoded = world
        self.world = w.World("root", None)  # the real one once the body has run
        self.modules: t.List[t.Tuple[int, int]] = []
        self.module_index: t.Dict[int, int] = {}  # module start offset -> plan index
        self.interfaces: t.List[P.ModuleInterface] = []  # per plan module
        self.instances: t.List[t.Union[Instantiate, Bag]] = []
        self.instance_exports: t.List[t.Dict[str, str]] = []  # per plan instance
        self.lowerings: t.List[t.Any] = []  # pending: (kind, func, options, offset)
        self.intrinsics: t.List[t.Union[ResourceIntrinsic, BuiltinIntrinsic]] = []
        self.intrinsic_index: t.Dict[ResourceIntrinsic, int] = {}
        self.builtin_types: t.Dict[int, t.Any] = {}  # intrinsic index -> binary type (or None)
        self.resources: t.List[_ResourceRecord] = []
        self.resource_of: t.Dict[b.ResourceVar, int] = {}
        self.import_resources: t.Dict[t.Tuple[str, str], int] = {}
        self.component_instances = 0
        self.budget: b.Budget = b.Budget()

    def build(self) -> ComponentPlan:
        root = _Frame(self, None, self.new_component_instance(), None, 0, 0)
        root.run(0, len(self.data))
        self.world = self.decoded if self.decoded is not None else decode(self.data)
        types = _Types(self)
        exports, export_resources = self.root_exports(root, types)
        lowerings = [self.finish_lowering(entry, types) for entry in self.lowerings]
        for index, raw in self.builtin_types.items():
            builtin = self.intrinsics[index]
            assert isinstance(builtin, BuiltinIntrinsic)
            self.intrinsics[index] = dataclasses.replace(builtin, type=None if raw is None else types.valtype(raw))
        resources = [ResourceDef(r.name or f"resource{i}", r.instance, r.dtor, r.import_key,
                                 r.import_name) for i, r in enumerate(self.resources)]
        return ComponentPlan(
            modules=tuple(self.modules), instances=self.instances, lowerings=lowerings,
            intrinsics=self.intrinsics, resources=resources, exports=exports,
            export_resources=export_resources, component_instances=self.component_instances,
            import_resources=dict(self.import_resources), resource_types=types.resource_types)

    def new_component_instance(self) -> int:
        self.component_instances += 1
        return self.component_instances - 1

    # -- core modules and instances ------------------------------------------------------

    def instantiate_module(self, module: _Module, args: t.Dict[str, _CoreInst],
                           offset: int) -> int:
        index = self.module_index.get(module.start)
        if index is None:
            index = self.module_index[module.start] = len(self.modules)
            self.modules.append((module.start, module.end))
            self.interfaces.append(P.module_interface(self.data, module.start, module.end))
        interface = self.interfaces[index]
        self.budget.spend(1 + len(interface.imports), offset)
        refs = []
        for module_name, name, kind in interface.imports:
            supplied = args.get(module_name)
            if supplied is None:
                raise DecodeError(f"core module imports `{module_name}` `{name}` but the "
                                  f"instantiation supplies no instance `{module_name}`", offset)
            refs.append(self.core_export(supplied, name, kind, offset,
                                         f"import `{module_name}` `{name}`"))
        self.instances.append(Instantiate(index, tuple(refs)))
        self.instance_exports.append(interface.exports)
        return len(self.instances) - 1

    def core_export(self, instance: _CoreInst, name: str, kind: str, offset: int,
                    what: str) -> CoreRef:
        """Export `name` of a core instance, checked to be a `kind`."""
        entry = ((self.instance_exports[instance].get(name), CoreExport(instance, name))
                 if isinstance(instance, int) else instance.get(name, (None, None)))
        found, ref = entry
        if found is None or ref is None:
            raise DecodeError(f"{what}: the core instance supplied has no export `{name}`",
                              offset)
        if found != kind:
            raise DecodeError(f"{what}: export `{name}` is a {found}, not a {kind}", offset)
        return ref

    # -- resources ----------------------------------------------------------------------

    def define_resource(self, var: b.ResourceVar, record: _ResourceRecord) -> int:
        self.resources.append(record)
        index = self.resource_of[var] = len(self.resources) - 1
        return index

    def resource(self, ty: t.Any, offset: t.Optional[int]) -> int:
        if not isinstance(ty, b.ResourceType):
            raise DecodeError("a resource type index names a type that is not a resource",
                              offset)
        index = self.resource_of.get(ty.var)
        if index is None:  # an abstract resource of a type declaration, never supplied
            raise DecodeError("a resource type is used that no import, instantiation or "
                              "definition supplies", offset)
        return index

    def intrinsic(self, intrinsic: ResourceIntrinsic) -> Intrinsic:
        index = self.intrinsic_index.get(intrinsic)
        if index is None:
            self.intrinsics.append(intrinsic)
            index = self.intrinsic_index[intrinsic] = len(self.intrinsics) - 1
        return Intrinsic(index)

    def name_item(self, name: str, item: _Item) -> None:
        """Give a resource or a lifted function the first name it is known by."""
        if isinstance(item, _LiftedFunc):
            if not item.name:
                item.name = name
        elif isinstance(item, b.TypeEntity) and isinstance(item.referenced, b.ResourceType):
            index = self.resource_of.get(item.referenced.var)
            if index is not None and not self.resources[index].name:
                self.resources[index].name = name

    # -- the outermost component's imports and exports ------------------------------------

    def host_import(self, name: str, entity: b.Entity, offset: int) -> _Item:
        if isinstance(entity, b.InstanceType):
            entity = b.freshen_instance(entity, self.budget, offset)
            items: t.Dict[str, _Item] = {}
            for export_name, export in entity.exports.items():
                if isinstance(export, b.FuncType):
                    items[export_name] = _HostFunc(name, export_name, export, False)
                elif isinstance(export, b.TypeEntity):
                    self.host_type(name, export_name, export)
                    items[export_name] = export
                else:
                    raise DecodeError(f"imported instance `{name}` exports `{export_name}`, "
                                      "which is not a function or a type", offset)
            return _Inst(items)
        if isinstance(entity, b.FuncType):
            return _HostFunc(name, name, entity, True)
        if isinstance(entity, b.TypeEntity):
            self.host_type(name, name, entity)
            return entity
        what = {"component": "a component", "core module": "a core module",
                "value": "a value"}[_declared_sort(entity)]
        raise DecodeError(f"the component imports {what} (`{name}`), which this runtime "
                          "cannot supply", offset)

    def host_type(self, key: str, name: str, entity: b.TypeEntity) -> None:
        if entity.fresh:
            assert isinstance(entity.referenced, b.ResourceType)
            index = self.define_resource(entity.referenced.var,
                                         _ResourceRecord(None, None, key, name))
            self.import_resources[(key, name)] = index

    def root_exports(self, root: "_Frame", types: "_Types"
                     ) -> t.Tuple[t.Dict[t.Tuple[t.Optional[str], str], Lift],
                                  t.Dict[t.Tuple[t.Optional[str], str], int]]:
        exports: t.Dict[t.Tuple[t.Optional[str], str], Lift] = {}
        resources: t.Dict[t.Tuple[t.Optional[str], str], int] = {}

        def add(key: t.Optional[str], name: str, item: _Item) -> None:
            if isinstance(item, _LiftedFunc):
                world_type = self.world_function(self.world.exports, key, name)
                exports[(key, name)] = Lift(item.func, world_type or types.lift(item).type,
                                            item.options)
            elif isinstance(item, _HostFunc):
                where = f"`{name}`" + (f" of `{key}`" if key else "")
                raise DecodeError(f"export {where} re-exports the imported function "
                                  f"`{item.name}` of `{item.key}`, which this runtime does "
                                  "not support")
            elif isinstance(item, b.TypeEntity) and isinstance(item.referenced, b.ResourceType):
                index = resources[(key, name)] = self.resource(item.referenced, None)
                record = self.resources[index]
                if record.instance is not None:  # the world's name beats inner shims' names
                    record.name = name

        for key, item in root.exports.items():
            if isinstance(item, _Inst):
                for name, inner in item.items.items():
                    add(key, name, inner)
            else:
                add(None, key, item)
        return exports, resources

    def world_function(self, items: t.Dict[str, w.WorldItem], key: t.Optional[str],
                       name: str) -> t.Optional[w.Function]:
        found = items.get(name if key is None else key)
        if isinstance(found, w.Interface) and key is not None:
            return found.functions.get(name)
        if isinstance(found, w.Function) and key is None:
            return found
        return None

    # -- lowerings ----------------------------------------------------------------------

    def lower(self, func: t.Union[_HostFunc, _LiftedFunc], options: Options,
              offset: int) -> Lowered:
        self.lowerings.append((func, options, offset))
        return Lowered(len(self.lowerings) - 1)

    def finish_lowering(self, entry: t.Tuple[t.Any, Options, int], types: "_Types"
                        ) -> t.Union[LowerHost, LowerLifted]:
        func, options, offset = entry
        if isinstance(func, _HostFunc):
            key = func.key
            world_type = self.world_function(self.world.imports, None if func.is_root else key,
                                             func.name)
            if world_type is None:
                raise DecodeError(f"lowered import `{func.name}` of `{key}` is not a function "
                                  "of the component's world", offset)
            return LowerHost(key, func.name, world_type, options)
        lift = types.lift(func)
        return LowerLifted(lift, lift.type, options)


# =========================================================================================
# One component instantiation
# =========================================================================================

class _Frame:
    """The index spaces of one instantiation of a component, filled as its body runs."""

    def __init__(self, builder: _Builder, parent: t.Optional["_Frame"], instance: int,
                 args: t.Optional[t.Dict[str, _Item]], offset: int, depth: int) -> None:
        if depth > MAX_INSTANTIATION_DEPTH:
            raise DecodeError(f"components instantiated more than {MAX_INSTANTIATION_DEPTH} "
                              "deep", offset)
        self.builder = builder
        self.parent = parent
        self.instance = instance
        self.args = args
        self.depth = depth
        self.scope: b.Scope = b.Scope(parent.scope if parent is not None else None, offset)
        self.scope.budget = builder.budget
        self.core: t.Dict[str, t.List[CoreRef]] = {
            "func": [], "table": [], "memory": [], "global": [], "tag": []}
        self.modules: t.List[_Module] = []
        self.core_instances: t.List[_CoreInst] = []
        self.funcs: t.List[t.Union[_HostFunc, _LiftedFunc]] = []
        self.instances: t.List[_Inst] = []
        self.components: t.List[_Closure] = []
        self.exports: t.Dict[str, _Item] = {}

    def run(self, start: int, end: int) -> None:
        for section in P.sections(self.builder.data, start, end):
            body = section.body
            handler = _SECTIONS.get(section.id)
            if handler is None:
                what = _REFUSED.get(section.id)
                if what is not None:
                    raise DecodeError(f"{what} are not supported by this runtime",
                                      section.offset)
                raise DecodeError(f"unknown section id {section.id}", section.offset)
            handler(self, body)
            body.expect_end(f"section {section.id}")

    # -- sections ---------------------------------------------------------------------------

    def skip(self, body: b.Reader) -> None:
        body.pos = body.end

    def core_module(self, body: b.Reader) -> None:
        self.modules.append(_Module(body.pos, body.end))
        body.pos = body.end

    def component(self, body: b.Reader) -> None:
        self.components.append(_Closure(body.pos, body.end, self))
        body.pos = body.end

    def core_instance_section(self, body: b.Reader) -> None:
        builder = self.builder
        for _ in range(body.count("core instances", 2)):
            record = P.read_core_instance(body)
            builder.budget.spend(1, record.offset)
            if isinstance(record, P.CoreInstantiation):
                module = check_index(self.modules, record.module, "core module", record.offset)
                args: t.Dict[str, _CoreInst] = {}
                for name, index in record.args:
                    if name in args:
                        raise DecodeError(f"core instantiation argument `{name}` given twice",
                                          record.offset)
                    args[name] = check_index(self.core_instances, index, "core instance",
                                             record.offset)
                self.core_instances.append(builder.instantiate_module(module, args,
                                                                      record.offset))
            else:
                bag: t.Dict[str, t.Tuple[str, CoreRef]] = {}
                for name, kind, index in record.exports:
                    space = self.core.get(kind)
                    if space is None:
                        raise DecodeError(f"a core instance cannot export a {kind}",
                                          record.offset)
                    if name in bag:
                        raise DecodeError(f"core instance export `{name}` given twice",
                                          record.offset)
                    bag[name] = (kind, check_index(space, index, f"core {kind}", record.offset))
                self.core_instances.append(bag)

    def instance_section(self, body: b.Reader) -> None:
        builder = self.builder
        for _ in range(body.count("instances", 2)):
            record = P.read_instance(body)
            builder.budget.spend(1, record.offset)
            items: t.Dict[str, _Item] = {}
            for name, sort, index in (record.args if isinstance(record, P.Instantiation)
                                      else record.exports):
                if name in items:
                    raise DecodeError(f"`{name}` given twice", record.offset)
                items[name] = self.item(sort, index, record.offset)
                if isinstance(record, P.InstanceBag):  # argument names are often shims'
                    builder.name_item(name, items[name])
            if isinstance(record, P.Instantiation):
                closure = check_index(self.components, record.component, "component",
                                      record.offset)
                self.instances.append(self.instantiate(closure, items, record.offset))
            else:
                self.instances.append(_Inst(items))

    def instantiate(self, closure: _Closure, args: t.Dict[str, _Item], offset: int) -> _Inst:
        builder = self.builder
        builder.budget.spend(10, offset)
        child = _Frame(builder, closure.parent, builder.new_component_instance(), args,
                       offset, self.depth + 1)
        child.run(closure.start, closure.end)
        return _Inst(child.exports)

    def alias_section(self, body: b.Reader) -> None:
        for _ in range(body.count("aliases", 3)):
            alias = P.read_alias(body)
            self.builder.budget.spend(1, alias.offset)
            if isinstance(alias, P.AliasExport):
                instance = check_index(self.instances, alias.instance, "instance", alias.offset)
                item = instance.items.get(alias.name)
                if item is None:
                    raise DecodeError(f"instance {alias.instance} has no export named "
                                      f"`{alias.name}`", alias.offset)
                if _sort_of(item) != alias.sort:
                    raise DecodeError(f"export `{alias.name}` of instance {alias.instance} is "
                                      f"a {_sort_of(item)}, not a {alias.sort}", alias.offset)
                self.builder.name_item(alias.name, item)
                self.add(item)
            elif isinstance(alias, P.AliasCoreExport):
                space = self.core.get(alias.sort)
                if space is None:
                    raise DecodeError(f"cannot alias a {alias.sort} from a core instance",
                                      alias.offset)
                instance = check_index(self.core_instances, alias.instance, "core instance",
                                       alias.offset)
                space.append(self.builder.core_export(instance, alias.name, alias.sort,
                                                      alias.offset, "alias"))
            else:
                self.outer_alias(alias)

    def outer_alias(self, alias: P.AliasOuter) -> None:
        if alias.levels > self.scope.depth:
            raise DecodeError(f"outer alias reaches {alias.levels} component(s) out, past the "
                              "outermost", alias.offset)
        target: _Frame = self
        for _ in range(alias.levels):
            assert target.parent is not None  # scope depth counts the parents
            target = target.parent
        if alias.sort == "type":
            self.scope.types.append(check_index(target.scope.types, alias.item_index, "type",
                                                alias.offset))
        elif alias.sort == "component":
            self.components.append(check_index(target.components, alias.item_index, "component",
                                               alias.offset))
        elif alias.sort == "core module":
            self.modules.append(check_index(target.modules, alias.item_index, "core module",
                                            alias.offset))
        elif alias.sort != "core type":  # core types only matter to what is refused
            raise DecodeError(f"outer aliases of a {alias.sort} are not allowed", alias.offset)

    def type_section(self, body: b.Reader) -> None:
        scope = self.scope
        for _ in range(body.count("types")):
            offset = body.pos
            self.builder.budget.spend(1, offset)
            if body.peek("a type") == 0x3F:
                body.pos += 1
                head = P.read_resource_head(body, offset)
                dtor = (None if head.dtor is None else
                        check_index(self.core["func"], head.dtor, "core func", offset))
                var = b.ResourceVar()
                self.builder.define_resource(var, _ResourceRecord(self.instance, dtor))
                scope.types.append(var.plain())
            else:
                scope.types.append(b.read_type(body, scope))

    def canon_section(self, body: b.Reader) -> None:
        builder = self.builder
        funcs = self.core["func"]
        for _ in range(body.count("canonical functions")):
            canon = P.read_canon(body)
            builder.budget.spend(1, canon.offset)
            if isinstance(canon, P.CanonLift):
                core_func = check_index(funcs, canon.core_func, "core func", canon.offset)
                ftype = check_index(self.scope.types, canon.type_index, "type", canon.offset)
                if not isinstance(ftype, b.FuncType):
                    raise DecodeError("canon lift's type index does not name a function type",
                                      canon.offset)
                self.funcs.append(_LiftedFunc(core_func, ftype,
                                              self.options(canon.options, canon.offset)))
            elif isinstance(canon, P.CanonLower):
                func = check_index(self.funcs, canon.func, "func", canon.offset)
                funcs.append(builder.lower(func, self.options(canon.options, canon.offset),
                                           canon.offset))
            elif isinstance(canon, P.CanonResource):
                ty = check_index(self.scope.types, canon.type_index, "type", canon.offset)
                resource = builder.resource(ty, canon.offset)
                if canon.op != "drop" and builder.resources[resource].instance != self.instance:
                    raise DecodeError(f"canon resource.{canon.op} needs a resource this "
                                      "component defines", canon.offset)
                funcs.append(builder.intrinsic(ResourceIntrinsic(canon.op, resource,
                                                                 self.instance)))
            else:
                builder.intrinsics.append(self.builtin(canon))
                funcs.append(Intrinsic(len(builder.intrinsics) - 1))

    def builtin(self, canon: P.CanonBuiltin) -> BuiltinIntrinsic:
        """An async/threads/error-context built-in with its immediates resolved; a type
        stays a binary type here and becomes WIT when the plan is finished."""
        op, args, offset = canon.op, canon.args, canon.offset
        if not args:
            return BuiltinIntrinsic(op, self.instance)
        if op == "task.return":
            result, raw = args
            if isinstance(result, tuple):
                result = check_index(self.scope.types, result[1], "type", offset)
            self.builder.builtin_types[len(self.builder.intrinsics)] = result
            return BuiltinIntrinsic(op, self.instance, options=self.options(raw, offset))
        if op in ("context.get", "context.set"):
            return BuiltinIntrinsic(op, self.instance, index=args[1])
        if op in ("subtask.cancel", "thread.yield"):
            return BuiltinIntrinsic(op, self.instance, flag=args[0])
        if op in ("waitable-set.wait", "waitable-set.poll"):
            memory = check_index(self.core["memory"], args[1], "core memory", offset)
            return BuiltinIntrinsic(op, self.instance, flag=args[0], memory=memory)
        if op.startswith("error-context."):
            return BuiltinIntrinsic(op, self.instance, options=self.options(args[0], offset))
        # stream.* / future.*: a type index first, then options or an async? flag
        self.builder.builtin_types[len(self.builder.intrinsics)] = check_index(
            self.scope.types, args[0], "type", offset)
        if len(args) > 1 and isinstance(args[1], P.CanonOptions):
            return BuiltinIntrinsic(op, self.instance, options=self.options(args[1], offset))
        return BuiltinIntrinsic(op, self.instance, flag=bool(args[1]) if len(args) > 1 else False)

    def options(self, raw: P.CanonOptions, offset: int) -> Options:
        funcs = self.core["func"]

        def func(index: t.Optional[int], what: str) -> t.Optional[CoreRef]:
            return None if index is None else check_index(funcs, index, what, offset)

        memory = (None if raw.memory is None else
                  check_index(self.core["memory"], raw.memory, "core memory", offset))
        return Options(self.instance, raw.string_encoding, memory,
                       func(raw.realloc, "realloc core func"),
                       func(raw.post_return, "post-return core func"), raw.is_async,
                       func(raw.callback, "callback core func"))

    def import_section(self, body: b.Reader) -> None:
        for _ in range(body.count("imports", 3)):
            offset = body.pos
            self.builder.budget.spend(1, offset)
            name = b.read_extern_name(body).name
            declared = b.read_extern_type(body, self.scope)
            item: _Item
            if self.args is None:
                item = self.builder.host_import(name, declared, offset)
            else:
                supplied = self.args.get(name)
                if supplied is None:
                    raise DecodeError(f"instantiation argument `{name}` is missing", offset)
                if _sort_of(supplied) != _declared_sort(declared):
                    raise DecodeError(f"import `{name}` expects a {_declared_sort(declared)} "
                                      f"but was given a {_sort_of(supplied)}", offset)
                item = supplied
            self.add(item)

    def export_section(self, body: b.Reader) -> None:
        for _ in range(body.count("exports", 3)):
            head = P.read_export_head(body)
            self.builder.budget.spend(1, head.offset)
            item = self.item(head.sort, head.item_index, head.offset)
            if body.flag("an optional export type"):
                # An ascribed type names the same definitions, seen more abstractly.
                b.read_extern_type(body, self.scope)
            if isinstance(item, b.TypeEntity):
                item = b.TypeEntity(item.referenced, b.with_unique(item.referenced))
            name = head.name.name
            if name in self.exports:
                raise DecodeError(f"duplicate export `{name}`", head.offset)
            self.builder.name_item(name, item)
            self.exports[name] = item
            self.add(item)

    # -- index spaces -------------------------------------------------------------------------

    def item(self, sort: str, index: int, offset: int) -> _Item:
        if sort == "func":
            return check_index(self.funcs, index, "func", offset)
        if sort == "instance":
            return check_index(self.instances, index, "instance", offset)
        if sort == "component":
            return check_index(self.components, index, "component", offset)
        if sort == "core module":
            return check_index(self.modules, index, "core module", offset)
        if sort == "type":
            ty = check_index(self.scope.types, index, "type", offset)
            return b.TypeEntity(ty, ty)
        if sort == "value":
            raise DecodeError("component values are not supported by this runtime", offset)
        raise DecodeError(f"a {sort} cannot be used here", offset)

    def add(self, item: _Item) -> None:
        if isinstance(item, (_HostFunc, _LiftedFunc)):
            self.funcs.append(item)
        elif isinstance(item, _Inst):
            self.instances.append(item)
        elif isinstance(item, b.TypeEntity):
            self.scope.types.append(item.created)
        elif isinstance(item, _Closure):
            self.components.append(item)
        else:
            self.modules.append(item)


_SECTIONS: t.Dict[int, t.Callable[[_Frame, b.Reader], None]] = {
    P.CUSTOM: _Frame.skip,
    P.CORE_MODULE: _Frame.core_module,
    P.CORE_INSTANCE: _Frame.core_instance_section,
    P.CORE_TYPE: _Frame.skip,  # nothing the runtime supports names a core type
    P.COMPONENT: _Frame.component,
    P.INSTANCE: _Frame.instance_section,
    P.ALIAS: _Frame.alias_section,
    P.TYPE: _Frame.type_section,
    P.CANON: _Frame.canon_section,
    P.IMPORT: _Frame.import_section,
    P.EXPORT: _Frame.export_section,
}
_REFUSED = {P.START: "component start functions", P.VALUE: "component values"}


# =========================================================================================
# Component-level types as WIT, for functions between subcomponents
# =========================================================================================

class _Types:
    """Turns the binary's function types into `w.Function`s with anonymous TypeDefs,
    one conversion per binary type. Each ResourceDef gets one resource TypeDef, owned by
    a made-up interface named after its plan index, so no two compare equal."""

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.converted: t.Dict[object, w.Type] = {}
        self.by_resource: t.Dict[int, w.TypeDef] = {}
        self.resource_types: t.Dict[w.TypeDef, int] = {}
        self.functions: t.Dict[t.Tuple[str, b.FuncType], w.Function] = {}

    def lift(self, item: _LiftedFunc) -> Lift:
        if item._lift is None:
            item._lift = Lift(item.func, self.function(item.name, item.type), item.options)
        return item._lift

    def function(self, name: str, ftype: b.FuncType) -> w.Function:
        key = (name, ftype)
        found = self.functions.get(key)
        if found is not None:
            return found
        params = tuple(w.Param(p, self.valtype(v)) for p, v in ftype.params)
        result = None if ftype.result is None else self.valtype(ftype.result)
        try:
            kind, _ = _function_kind(name)
        except DecodeError:
            kind = w.FunctionKind.FREESTANDING
        resource = None
        if kind is w.FunctionKind.METHOD and params:
            resource = _handle_resource(params[0].type)
        elif kind is w.FunctionKind.CONSTRUCTOR and result is not None:
            resource = _handle_resource(result)
        found = self.functions[key] = w.Function(name or "<anonymous>", kind, params, result,
                                                 resource, ftype.is_async)
        return found

    def valtype(self, ty: b.ValType) -> w.Type:
        if isinstance(ty, w.Primitive):
            return ty
        found = self.converted.get(ty)
        if found is None:
            found = self.converted[ty] = self.defined(ty)
        return found

    def optional(self, ty: t.Optional[b.ValType]) -> t.Optional[w.Type]:
        return None if ty is None else self.valtype(ty)

    def defined(self, ty: b.DefinedType) -> w.Type:
        kind, items = ty.kind, ty.items
        made: w.TypeDefKind
        if kind == "prim":
            return t.cast(w.Primitive, items[0])
        if kind == "record":
            made = w.Record(tuple(w.Field(n, self.valtype(v)) for n, v in items))
        elif kind == "variant":
            made = w.Variant(tuple(w.Case(n, self.optional(v)) for n, v in items))
        elif kind == "enum":
            made = w.Enum(tuple(w.EnumCase(n) for n in items))
        elif kind == "flags":
            made = w.Flags(tuple(w.Flag(n) for n in items))
        elif kind == "list":
            made = w.List(self.valtype(items[0]))
        elif kind == "fixed-list":
            made = w.FixedList(self.valtype(items[0]), items[1])
        elif kind == "map":
            made = w.Map(self.valtype(items[0]), self.valtype(items[1]))
        elif kind == "tuple":
            made = w.Tuple(tuple(self.valtype(v) for v in items))
        elif kind == "option":
            made = w.Option(self.valtype(items[0]))
        elif kind == "result":
            made = w.Result(self.optional(items[0]), self.optional(items[1]))
        elif kind == "own":
            made = w.Own(self.resource(items[0]))
        elif kind == "borrow":
            made = w.Borrow(self.resource(items[0]))
        elif kind == "future":
            made = w.Future(self.optional(items[0]))
        else:
            assert kind == "stream", kind
            made = w.Stream(self.optional(items[0]))
        return w.TypeDef(made)

    def resource(self, ty: b.ResourceType) -> w.TypeDef:
        index = self.builder.resource(ty, None)
        found = self.by_resource.get(index)
        if found is None:
            name = self.builder.resources[index].name or f"resource{index}"
            found = w.TypeDef(w.Resource(), name, w.InterfaceRef(f"<plan resource {index}>"))
            self.by_resource[index] = found
            self.resource_types[found] = index
        return found


def _handle_resource(ty: w.Type) -> t.Optional[w.TypeDef]:
    """The resource of `own<R>`/`borrow<R>` (or of `result<own<R>, E>`)."""
    if isinstance(ty, w.TypeDef):
        kind = ty.kind
        if isinstance(kind, (w.Own, w.Borrow)):
            return kind.resource
        if isinstance(kind, w.Result) and kind.ok is not None:
            return _handle_resource(kind.ok)
    return None
