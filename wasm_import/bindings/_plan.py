"""Bindings: from a component's WIT world to Python callables, classes and namespaces.

Everything per function is worked out once (`build_plan`), when the module loads: the
Python signature, the docstring, where the export lives and how its resources are seen.
The converters between Python values and the guest's memory are the runtime's
(`runtime/_abi`), built from the same WIT types when an instance first calls the function.

    World ──build_plan──► ModulePlan ──► ExportPlan (one per export function)
                                     ──► ImportPlan (one per import function)
                                     ──► ResourcePlan (one per resource class)

Resources:
- a resource the guest defines (it comes from an export) is a Python class whose objects
  wrap a handle owned by one instance (`GuestResource`);
- a resource the host defines (it comes from an import) is implemented by a Python class
  the caller supplies; its objects live in a per-instance table while the guest holds them
  (`HostResourceTable`).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..wit import _model as w
from ..types._names import pascal, snake
from ..types._pytypes import annotation, class_for, has_class, variant_classes, wit_signature
from .._errors import InstancePoisonedError

__all__ = ["build_plan", "ModulePlan", "ExportPlan", "ImportPlan", "GuestResource"]

RESERVED_MODULE_NAMES = frozenset({"instantiate", "exports", "imports", "link", "wit", "close"})


# -- where a resource comes from -------------------------------------------------------------

@dataclass(frozen=True)
class ResourceKey:
    """A resource as one side of the component sees it."""

    typedef: w.TypeDef
    imported: bool


def _imported_interfaces(world: w.World) -> Dict[w.InterfaceRef, w.Interface]:
    return {item.ref: item for item in world.imports.values() if isinstance(item, w.Interface)}


def _exported_interfaces(world: w.World) -> Dict[w.InterfaceRef, w.Interface]:
    return {item.ref: item for item in world.exports.values() if isinstance(item, w.Interface)}


def _resource_is_imported(world: w.World, resource: w.TypeDef, scope: Optional[w.InterfaceRef],
                          scope_imported: bool) -> bool:
    """Is `resource`, seen from a function in `scope`, defined by the host?

    Inside an imported interface everything is the host's. Inside an exported interface,
    its own resources are the guest's; a resource from another interface is the host's
    when that interface is imported. World-level resources are always imports.
    """
    if scope_imported:
        return True
    owner = resource.owner
    if isinstance(owner, w.WorldRef):
        return True
    if owner == scope:
        return False
    return owner in _imported_interfaces(world) or owner not in _exported_interfaces(world)


# -- guest-defined resources -----------------------------------------------------------------

class GuestResource:
    """Base class of resource classes the guest defines.

    An object owns one handle in one instance. `drop()` (or leaving a `with` block) drops
    it, running the guest's destructor; otherwise it is dropped when garbage-collected.
    Passing it where the WIT says `own<T>` moves it: the object is then empty.
    """

    __slots__ = ("_handle", "_owner", "_finalizer", "__weakref__")
    _plan: "ResourcePlan"
    _bound: Any = None  # the ComponentInstance this class constructs in (None: default instance)

    def _adopt(self, handle: Any, owner: Any) -> None:
        self._handle = handle
        self._owner = owner
        self._finalizer = weakref.finalize(self, owner.drop_resource, handle)
        self._finalizer.atexit = False

    def _take(self, owner: Any) -> Any:
        """Give up the handle (an `own` parameter moves it)."""
        handle = self._checked_handle(owner)
        self._finalizer.detach()
        self._handle = None
        return handle

    def _checked_handle(self, owner: Any) -> Any:
        handle = getattr(self, "_handle", None)
        if handle is None:
            raise ValueError(f"this {type(self).__name__} was dropped or moved and cannot be used")
        if self._owner is not owner:
            raise ValueError(f"this {type(self).__name__} belongs to another instance of the "
                             "component; resources cannot pass between instances")
        return handle

    def drop(self) -> None:
        """Drop the handle now (runs the guest destructor). Idempotent."""
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._handle = None
            self._finalizer.detach()
            self._owner.drop_resource(handle)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.drop()

    def __reduce__(self) -> Any:
        raise TypeError(f"a {type(self).__name__} resource cannot be pickled: it is a handle into "
                        "one instance's store, in this process")

    def __repr__(self) -> str:
        state = "dropped" if getattr(self, "_handle", None) is None else "live"
        return f"<{type(self).__qualname__} resource ({state})>"


# -- host-defined resources -------------------------------------------------------------------

class HostResourceTable:
    """The Python objects behind host resource handles held by one instance's guest."""

    def __init__(self) -> None:
        self._objects: Dict[int, Any] = {}
        self._lent: set = set()  # reps of objects lent to one export call (no drop hook)
        self._reps = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, obj: Any, lent: bool = False) -> int:
        with self._lock:
            rep = next(self._reps)
            self._objects[rep] = obj
            if lent:
                self._lent.add(rep)
            return rep

    def pop_dropped(self, rep: int) -> Tuple[Any, bool]:
        """The object the guest dropped, and whether it was only lent to it."""
        with self._lock:
            lent = rep in self._lent
            self._lent.discard(rep)
            return self._objects.pop(rep, None), lent

    def get(self, rep: int) -> Any:
        return self._objects[rep]

    def drain(self) -> List[Any]:
        """Empty the table (its instance is closed): the objects the guest held, not those
        only lent to a call (their caller keeps them), oldest first."""
        with self._lock:
            objects = [obj for rep, obj in self._objects.items() if rep not in self._lent]
            self._objects.clear()
            self._lent.clear()
            return objects

    def pop(self, rep: int) -> Any:
        with self._lock:
            return self._objects.pop(rep, None)

    def __len__(self) -> int:
        return len(self._objects)


DROP_HOOK = "__wasm_drop__"


# -- plans ------------------------------------------------------------------------------------

@dataclass
class FunctionPlan:
    """What a call needs, worked out once: signature, documentation, where it lives and how
    it sees resources."""

    func: w.Function
    path: Tuple[str, ...]  # the instance path of the export/import ("ns:pkg/i@v",) or ()
    param_names: Tuple[str, ...]
    returns_result: bool
    signature: inspect.Signature
    doc: str
    qualname: str
    # (interface, imported?): the scope whose resources the function sees, and per resource
    # TypeDef whose it is: ("host", (world import key, name)) or ("guest", ResourcePlan)
    scope: Tuple[Optional[w.InterfaceRef], bool] = (None, False)
    resource_picker: Optional[Callable[[], Callable[[w.TypeDef], Tuple[str, Any]]]] = None


ExportPlan = FunctionPlan
ImportPlan = FunctionPlan


@dataclass
class ResourcePlan:
    typedef: w.TypeDef
    class_name: str
    constructor: Optional[FunctionPlan] = None
    methods: Dict[str, FunctionPlan] = field(default_factory=dict)  # python name -> plan
    statics: Dict[str, FunctionPlan] = field(default_factory=dict)
    cls: Optional[type] = None


@dataclass
class NamespacePlan:
    """An exported interface (or the root): its functions, type classes and resources."""

    wit_name: Optional[str]  # full WIT name; None for the root
    attr: str
    path: Tuple[str, ...]
    docs: str
    functions: Dict[str, FunctionPlan] = field(default_factory=dict)
    types: Dict[str, Any] = field(default_factory=dict)
    resources: Dict[str, ResourcePlan] = field(default_factory=dict)
    # guest resources this interface `use`s from another (under their name here, maybe a
    # new one): the same class as where they are defined
    resource_aliases: Dict[str, ResourcePlan] = field(default_factory=dict)


@dataclass
class ImportedInterfacePlan:
    """An imported interface (or root-level imported functions/resources)."""

    key: str  # the world key: full name, inline name, or a root function/resource name
    interface: Optional[w.Interface]
    functions: Dict[str, FunctionPlan] = field(default_factory=dict)  # WIT name -> plan
    resources: Dict[str, w.TypeDef] = field(default_factory=dict)  # WIT name -> resource
    is_wasi: bool = False


@dataclass
class ModulePlan:
    world: w.World
    module_name: str
    root: NamespacePlan
    namespaces: Dict[str, NamespacePlan]  # attr -> plan
    imports: Dict[str, ImportedInterfacePlan]  # world key -> plan
    needs_wasi: bool


def _signature(plan_params: List[Tuple[str, Any]], result: Any) -> inspect.Signature:
    params = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ann)
              for name, ann in plan_params]
    return inspect.Signature(params, return_annotation=result)


def _docstring(func: w.Function, returns_result: bool, result: Optional[w.Type]) -> str:
    lines = [f"WIT: `{wit_signature(func)}`"]
    if func.docs.contents:
        lines = [func.docs.contents.strip(), "", *lines]
    if returns_result:
        kind = w.unalias(result) if result is not None else None
        err = kind.kind.err if isinstance(kind, w.TypeDef) and isinstance(kind.kind, w.Result) else None
        err_name = _type_label(err)
        lines += ["", f"Raises: `wasm_import.Err({err_name})` when the component returns an error."]
    return "\n".join(lines)


def _type_label(ty: Optional[w.Type]) -> str:
    """How a docstring names a WIT type: a named type by its class name (a variant's
    name, not the Union of its cases), anything else by its annotation."""
    if isinstance(ty, w.TypeDef) and ty.name is not None:
        return pascal(ty.name)
    ann = annotation(ty) if ty is not None else None
    return getattr(ann, "__name__", None) or (repr(ann) if ann is not None else "None")


class _PlanBuilder:
    def __init__(self, world: w.World, module_name: str) -> None:
        self.world = world
        self.module_name = module_name
        self.resource_plans: Dict[ResourceKey, ResourcePlan] = {}

    def resource_picker(self, scope: Optional[w.InterfaceRef],
                        imported: bool) -> Callable[[w.TypeDef], Tuple[str, Any]]:
        """Whose a resource seen from `scope` is, as
        ("host", (world import key, resource name)) or ("guest", ResourcePlan)."""
        def pick(resource: w.TypeDef) -> Tuple[str, Any]:
            if _resource_is_imported(self.world, resource, scope, imported):
                return "host", self.host_resource_key(resource)
            return "guest", self.resource_plan(resource, imported=False)
        return pick

    def host_resource_key(self, resource: w.TypeDef) -> Tuple[str, str]:
        """(world import key, resource name) of a resource the host implements."""
        aliased = None
        for key, item in self.world.imports.items():
            tds = item.types.items() if isinstance(item, w.Interface) else (
                [(key, item)] if isinstance(item, w.TypeDef) else [])
            for name, td in tds:
                if td == resource:
                    return key, name  # where it is defined
                if aliased is None and w.unalias(td) == resource:
                    aliased = key, name  # a `use` of it
        return aliased or ("", resource.name or "resource")

    def resource_plan(self, resource: w.TypeDef, imported: bool) -> ResourcePlan:
        key = ResourceKey(resource, imported)
        plan = self.resource_plans.get(key)
        if plan is None:
            plan = self.resource_plans[key] = ResourcePlan(resource, pascal(resource.name or "resource"))
        return plan

    def function(self, func: w.Function, path: Tuple[str, ...], scope: Optional[w.InterfaceRef],
                 imported: bool, qual_prefix: str) -> FunctionPlan:
        names = tuple(snake(p.name) for p in func.params)
        result_type = func.result
        unaliased = w.unalias(result_type) if result_type is not None else None
        returns_result = isinstance(unaliased, w.TypeDef) and isinstance(unaliased.kind, w.Result)
        if returns_result:
            ret_ann = annotation(unaliased.kind.ok)  # type: ignore[union-attr]
        else:
            ret_ann = annotation(result_type)
        shown = list(zip(names, (annotation(p.type) for p in func.params)))
        if func.kind is w.FunctionKind.METHOD:
            shown = shown[1:]
        python_name = snake(func.item_name) if func.kind is not w.FunctionKind.CONSTRUCTOR else "__init__"
        return FunctionPlan(
            func=func, path=path, param_names=names, returns_result=returns_result,
            signature=_signature(shown, ret_ann), doc=_docstring(func, returns_result, result_type),
            qualname=f"{qual_prefix}{python_name}", scope=(scope, imported),
            resource_picker=functools.partial(self.resource_picker, scope, imported),
        )

    def namespace(self, wit_name: Optional[str], attr: str, iface: Optional[w.Interface],
                  items: Dict[str, w.Function]) -> NamespacePlan:
        path = (wit_name,) if wit_name is not None else ()
        scope = iface.ref if iface is not None else None
        ns = NamespacePlan(wit_name, attr, path, iface.docs.contents or "" if iface else "")
        prefix = f"{attr}." if wit_name is not None else ""
        if iface is not None:
            for td in iface.types.values():
                self._add_type(ns, td, scope)
        for func in items.values():
            if func.resource is None:
                plan = self.function(func, path, scope, False, prefix)
                ns.functions[snake(func.name)] = plan
                continue
            resource = w.unalias(func.resource)
            assert isinstance(resource, w.TypeDef)
            rplan = self.resource_plan(resource, imported=False)
            ns.resources.setdefault(rplan.class_name, rplan)
            plan = self.function(func, path, scope, False, f"{prefix}{rplan.class_name}.")
            if func.kind is w.FunctionKind.CONSTRUCTOR:
                rplan.constructor = plan
            elif func.kind is w.FunctionKind.METHOD:
                rplan.methods[snake(func.item_name)] = plan
            else:
                rplan.statics[snake(func.item_name)] = plan
        return ns

    def _add_type(self, ns: NamespacePlan, td: w.TypeDef, scope: Optional[w.InterfaceRef]) -> None:
        target = w.unalias(td)
        if not isinstance(target, w.TypeDef) or td.name is None:
            return
        if isinstance(target.kind, w.Resource):
            if scope is not None and not _resource_is_imported(self.world, target, scope, False):
                rplan = self.resource_plan(target, imported=False)
                if target is td or target.owner == scope:
                    ns.resources.setdefault(rplan.class_name, rplan)  # defined here (maybe no functions)
                else:
                    ns.resource_aliases.setdefault(pascal(td.name), rplan)
            return
        if has_class(target):
            if isinstance(target.kind, w.Variant):
                vc = variant_classes(target, self.module_name)
                ns.types[pascal(td.name)] = vc.union
                for _, cls, _ in vc.cases:
                    ns.types[cls.__name__] = cls
            else:
                ns.types[pascal(td.name)] = class_for(target, self.module_name)

    def imported(self, key: str, item: w.WorldItem) -> ImportedInterfacePlan:
        if isinstance(item, w.Interface):
            plan = ImportedInterfacePlan(key, item, is_wasi=key.startswith("wasi:"))
            scope = item.ref
            path = (key,)
            for td in item.types.values():
                if isinstance(td.kind, w.Resource):
                    plan.resources[td.name or ""] = td
            for func in item.functions.values():
                plan.functions[func.name] = self.function(func, path, scope, True, f"{key}.")
            return plan
        plan = ImportedInterfacePlan(key, None)
        if isinstance(item, w.Function):
            plan.functions[item.name] = self.function(item, (), None, True, "")
        elif isinstance(item, w.TypeDef) and isinstance(item.kind, w.Resource):
            plan.resources[item.name or key] = item
        return plan


def _attr_names(world: w.World) -> Dict[str, str]:
    """Attribute names for exported interfaces: the interface name in snake_case; on a
    clash (same name in two packages, or two versions), the clashing ones are qualified
    as `<namespace>_<package>_<name>` and then, if still ambiguous, suffixed `_v1_2_3`."""
    named = {key: item for key, item in world.exports.items() if isinstance(item, w.Interface)}
    first = {key: snake(item.name or key) for key, item in named.items()}
    counts: Dict[str, int] = {}
    for attr in first.values():
        counts[attr] = counts.get(attr, 0) + 1
    result = {}
    for key, item in named.items():
        attr = first[key]
        if counts[attr] > 1 and item.package is not None:
            pkg = item.package
            attr = snake(f"{pkg.namespace}-{pkg.name}-{item.name}")
            same = [k for k, i in named.items() if i.package and i.package.namespace == pkg.namespace
                    and i.package.name == pkg.name and i.name == item.name]
            if len(same) > 1 and pkg.version:
                attr += "_v" + pkg.version.replace(".", "_").replace("-", "_").replace("+", "_")
        if attr in RESERVED_MODULE_NAMES:
            attr += "_"
        result[key] = attr
    return result


def build_plan(world: w.World, module_name: str) -> ModulePlan:
    """Work out, once, everything the module and its instances need."""
    b = _PlanBuilder(world, module_name)
    root_funcs = {k: f for k, f in world.exports.items() if isinstance(f, w.Function)}
    root = b.namespace(None, "", None, root_funcs)
    for key, item in world.imports.items():  # world-level types a root function may mention
        if isinstance(item, w.TypeDef) and item.name and has_class(w.unalias(item)):  # type: ignore[arg-type]
            b._add_type(root, item, None)
    attrs = _attr_names(world)
    namespaces = {}
    for key, item in world.exports.items():
        if isinstance(item, w.Interface):
            ns = b.namespace(key, attrs[key], item, item.functions)
            namespaces[ns.attr] = ns
    imports: Dict[str, ImportedInterfacePlan] = {}
    resource_functions = []
    for key, item in world.imports.items():
        if isinstance(item, w.Function) and item.resource is not None:
            resource_functions.append(item)  # `[constructor]r` etc. belong to root resource `r`
        else:
            imports[key] = b.imported(key, item)
    for func in resource_functions:
        resource = w.unalias(func.resource)  # type: ignore[arg-type]
        name = resource.name if isinstance(resource, w.TypeDef) and resource.name else func.name
        owner = imports.setdefault(name, ImportedInterfacePlan(name, None))
        owner.functions[func.name] = b.function(func, (), None, True, f"{pascal(name)}.")
    imports = {k: p for k, p in imports.items() if p.functions or p.resources or p.is_wasi}
    needs_wasi = any(p.is_wasi for p in imports.values())
    return ModulePlan(world, module_name, root, namespaces, imports, needs_wasi)


# -- calling -------------------------------------------------------------------------------------

def poisoned_at_entry(eng: Any, instance: Any) -> None:
    """Raise InstancePoisonedError for a call that found `instance` poisoned before it
    entered: the error's `instance` says so (the module's default instance is then
    replaced and the call made there; an error from deeper down is never retried)."""
    try:
        eng.check_usable()
    except InstancePoisonedError as e:
        e.instance = instance  # type: ignore[attr-defined]
        raise
