"""Bindings: from a component's WIT world to Python callables, classes and namespaces.

Everything per function is worked out once (`build_plan`): the Python signature, the
docstring and where the raw export lives when the module loads; the converters for each
parameter and the result when its first instance is made (they are wasmtime's C value
structs, and a module that is only imported need not load wasmtime-py). A call then only
lowers, calls and lifts.

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

import ctypes
import functools
import inspect
import itertools
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from . import _engine as engine
from . import _wit_model as w
from ._names import pascal, snake
from ._pytypes import annotation, class_for, has_class, variant_classes, wit_signature
from ._calllock import wait_for_instance
from ._errors import InstancePoisonedError, Trap
from ._traps import guest_trap
from ._values import host_result

if TYPE_CHECKING:  # pragma: no cover
    from . import _engine_values as ev

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


class _GuestResourceCodec:
    """Handles of a guest-defined resource, as Python objects of its class: the module's
    class is checked on the way in (any instance's subclass passes, the owner is checked
    next); on the way out, objects are made of the class of the instance they belong to."""

    def __init__(self, plan: "ResourcePlan") -> None:
        self._plan = plan

    def _cls_ref(self) -> type:
        assert self._plan.cls is not None
        return self._plan.cls

    def _new(self, cx: Any) -> Any:
        return object.__new__(cx.owner.user.resource_class(self._plan))

    def _check(self, value: Any) -> type:
        cls = self._cls_ref()
        if not isinstance(value, cls):
            raise TypeError(f"expected a {cls.__name__} resource, got {type(value).__name__} {value!r}")
        return cls

    def lower_own(self, value: Any, cx: Any) -> Any:
        self._check(value)
        return value._take(cx.owner)._consume()

    def lower_borrow(self, value: Any, cx: Any) -> Any:
        self._check(value)
        handle = value._checked_handle(cx.owner)
        return engine.ffi().wasmtime_component_resource_any_clone(handle.ptr())

    def lift_own(self, ptr: Any, cx: Any) -> Any:
        obj = self._new(cx)
        obj._adopt(engine.resource_any(ptr), cx.owner)
        return obj

    def lift_borrow(self, ptr: Any, cx: Any) -> Any:
        # A borrow lent to the host for one call: a view whose handle is released when the
        # host function returns (wasmtime requires every borrow be released exactly once).
        obj = self._new(cx)
        handle = engine.resource_any(ptr)
        obj._handle, obj._owner = handle, cx.owner
        obj._finalizer = weakref.finalize(obj, lambda: None)

        def release() -> None:
            obj._handle = None
            cx.owner.drop_resource(handle)

        cx.borrows.append(release)
        return obj


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

    def pop(self, rep: int) -> Any:
        with self._lock:
            return self._objects.pop(rep, None)

    def __len__(self) -> int:
        return len(self._objects)


DROP_HOOK = "__wasm_drop__"


class _HostResourceCodec:
    """Handles of a host-defined resource: the Python object itself travels."""

    def __init__(self, type_id: int, name: str) -> None:
        self.type_id = type_id
        self.name = name

    def _check(self, value: Any, cx: Any) -> None:
        if isinstance(value, GuestResource) and getattr(value, "_owner", None) is cx.owner:
            raise TypeError(f"expected the imported resource {self.name} (implemented by the host), "
                            f"got this instance's own exported {type(value).__name__}")

    def lower_own(self, value: Any, cx: Any) -> Any:
        self._check(value, cx)
        rep = cx.owner.host_table.add(value)
        return engine.host_handle(rep, self.type_id, owned=True, cx=cx)

    def lower_borrow(self, value: Any, cx: Any) -> Any:
        self._check(value, cx)
        # Only export parameters borrow a host resource (results never hold borrows): the
        # object is lent for the call, and released (without its drop hook) after it.
        table = cx.owner.host_table
        rep = table.add(value, lent=True)
        ptr, end_loan = engine.lend_host_handle(rep, self.type_id, cx)

        def release() -> None:
            end_loan()
            table.pop_dropped(rep)

        cx.borrows.append(release)
        return ptr

    def lift_own(self, ptr: Any, cx: Any) -> Any:
        rep = engine.host_rep(ptr, cx)
        return cx.owner.host_table.pop(rep)

    def lift_borrow(self, ptr: Any, cx: Any) -> Any:
        return cx.owner.host_table.get(engine.host_rep(ptr, cx))


# -- plans ------------------------------------------------------------------------------------

# Converters are made on first use, by whichever thread gets there first; codecs and
# their caches are shared by every function of a module, so one lock guards making them.
_converters_lock = threading.RLock()


@dataclass
class FunctionPlan:
    """What a call needs, worked out once: signature, documentation and converters."""

    func: w.Function
    path: Tuple[str, ...]  # the instance path of the export/import ("ns:pkg/i@v",) or ()
    param_names: Tuple[str, ...]
    returns_result: bool
    signature: inspect.Signature
    doc: str
    qualname: str
    codec: Callable[[], "ev.Codec"]  # makes (or finds) the converters' codec for this scope
    # the core runtime's view of the same scope: (interface, imported?) and, per resource
    # TypeDef, ("host", (world import key, name)) or ("guest", ResourcePlan)
    scope: Tuple[Optional[w.InterfaceRef], bool] = (None, False)
    resource_picker: Optional[Callable[[], Callable[[w.TypeDef], Tuple[str, Any]]]] = None

    @functools.cached_property
    def params(self) -> Tuple["ev.Converter", ...]:
        with _converters_lock:
            codec = self.codec()
            return tuple(codec.converter(p.type) for p in self.func.params)

    @functools.cached_property
    def result(self) -> Optional["ev.Converter"]:
        if self.func.result is None:
            return None
        with _converters_lock:
            converter = self.codec().converter(self.func.result)
        if self.returns_result:
            from . import _engine_values as ev

            return ev.returned_result(converter)
        return converter

    @functools.cached_property
    def result_value(self) -> Optional["ev.Converter"]:
        """The converter of the WIT result as a value (a `result` as `Ok`/`Err`)."""
        if self.func.result is None:
            return None
        with _converters_lock:
            return self.codec().converter(self.func.result)

    def describe_param(self, i: int) -> str:
        return f"{self.qualname}(): parameter {self.param_names[i]!r} ({self.params[i].wit})"


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
    resources: Dict[str, Tuple[w.TypeDef, int]] = field(default_factory=dict)  # WIT name -> (td, type id)
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
    def __init__(self, world: w.World, module_name: str, wasi_in_python: bool = False) -> None:
        self.wasi_in_python = wasi_in_python
        self.world = world
        self.module_name = module_name
        self.resource_plans: Dict[ResourceKey, ResourcePlan] = {}
        self.host_type_ids = itertools.count(1)
        self.host_codecs: Dict[w.TypeDef, _HostResourceCodec] = {}
        self.codecs: Dict[Tuple[Optional[w.InterfaceRef], bool], "ev.Codec"] = {}

    # converters are shared by scope: (interface, imported?)
    def codec(self, scope: Optional[w.InterfaceRef], imported: bool) -> "ev.Codec":
        key = (scope, imported)
        if key not in self.codecs:
            from . import _engine_values as ev

            def pick(resource: w.TypeDef) -> Any:
                if _resource_is_imported(self.world, resource, scope, imported):
                    return self.host_codec(resource)
                plan = self.resource_plan(resource, imported=False)
                return _GuestResourceCodec(plan)  # type: ignore[return-value]
            self.codecs[key] = ev.Codec(pick)
        return self.codecs[key]

    def host_codec(self, resource: w.TypeDef) -> _HostResourceCodec:
        codec = self.host_codecs.get(resource)
        if codec is None:
            codec = self.host_codecs[resource] = _HostResourceCodec(next(self.host_type_ids),
                                                                    resource.name or "resource")
        return codec

    def resource_picker(self, scope: Optional[w.InterfaceRef],
                        imported: bool) -> Callable[[w.TypeDef], Tuple[str, Any]]:
        """For the core runtime: whose a resource seen from `scope` is, as
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
            qualname=f"{qual_prefix}{python_name}", codec=functools.partial(self.codec, scope, imported),
            scope=(scope, imported), resource_picker=functools.partial(self.resource_picker, scope, imported),
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
                    plan.resources[td.name or ""] = (td, self.host_codec(td).type_id)
            if plan.is_wasi and not (self.wasi_in_python or _python_wasi()):
                return plan  # wasmtime's own WASI serves it
            for func in item.functions.values():
                plan.functions[func.name] = self.function(func, path, scope, True, f"{key}.")
            return plan
        plan = ImportedInterfacePlan(key, None)
        if isinstance(item, w.Function):
            plan.functions[item.name] = self.function(item, (), None, True, "")
        elif isinstance(item, w.TypeDef) and isinstance(item.kind, w.Resource):
            plan.resources[item.name or key] = (item, self.host_codec(item).type_id)
        return plan


def _python_wasi() -> bool:
    from .runtime.wasi import python_wasi

    return python_wasi()


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


def build_plan(world: w.World, module_name: str, wasi_in_python: bool = False) -> ModulePlan:
    """Work out, once, everything the module and its instances need."""
    b = _PlanBuilder(world, module_name, wasi_in_python)
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


# -- calling -----------------------------------------------------------------------------------


def make_caller(plan: FunctionPlan, instance: Any, raw_func: Any) -> Callable[..., Any]:
    """A function calling `raw_func` on `instance`'s engine instance with `plan`'s converters.

    Everything is bound here, once: the converters, the invoker, and the buffers and call
    context reused by every call that is not re-entrant (a nested call makes its own).
    """
    from . import _engine_values as ev

    Val = ev.Val
    writes = tuple(c.write for c in plan.params)
    nparams = len(writes)
    val_size = ev.VAL_SIZE
    owning = tuple(i for i, c in enumerate(plan.params) if c.owns_memory)
    read_result = plan.result.read if plan.result is not None else None
    free_result = plan.result is not None and plan.result.owns_memory
    nresults = 0 if read_result is None else 1
    ParamArray = Val * max(nparams, 1)
    eng = instance._engine
    invoke = engine.export_invoker(eng, raw_func)
    CallContext = engine.CallContext
    free_at = ev.free_at
    lock = eng.lock
    context = eng.context
    shared_params, shared_result = ParamArray(), Val()
    shared_base, shared_result_addr = ctypes.addressof(shared_params), ctypes.addressof(shared_result)
    write_all = ev.scalars_writer(plan.params, plan.qualname)
    shared_cx = CallContext(context, eng)
    busy = [False]
    what = f"the instance of component {instance.module.__name__!r} (called for {plan.qualname}())"
    too_many = (f"{plan.qualname}() takes {nparams} argument{'s' * (nparams != 1)} "
                f"({', '.join(plan.param_names)}), got {{}}")

    def call(*args: Any) -> Any:
        if len(args) != nparams:
            raise TypeError(too_many.format(len(args)))
        if not lock.acquire(False):  # busy: wait, unless that could never end
            wait_for_instance(lock, what)
        try:
            if eng.poisoned is not None:
                poisoned_at_entry(eng, instance)
            if busy[0]:  # re-entered (a host function called back in): fresh buffers
                params, result = ParamArray(), Val()
                cx = CallContext(context, eng)
                base, result_addr = ctypes.addressof(params), ctypes.addressof(result)
            else:
                busy[0] = True
                params, result, cx = shared_params, shared_result, shared_cx
                base, result_addr = shared_base, shared_result_addr
            # `params` and `result` hold the memory behind `base` and `result_addr`.
            i = -1  # the last parameter lowering started on
            try:
                try:
                    if write_all is not None:
                        write_all(base, args)
                    else:
                        for i in range(nparams):
                            writes[i](args[i], base + i * val_size, cx)
                except (TypeError, ValueError) as e:
                    if write_all is not None:
                        i = ev.first_refused(plan.params, args)
                    raise type(e)(f"{plan.describe_param(i)}: {e}") from None
                try:
                    invoke(base, nparams, result_addr if nresults else 0, nresults, cx)
                except Trap as trap:
                    raise guest_trap(trap, eng) from None
                if read_result is None:
                    return None
                try:
                    return read_result(result_addr, cx)
                finally:
                    if free_result:
                        free_at(result_addr)
            finally:
                # Free what the params own (wasmtime copied what it needed), including a
                # half-lowered one; zeroed storage reads as `bool false` and owns nothing.
                for j in owning:
                    if j <= i:
                        free_at(base + j * val_size)
                if cx.borrows:
                    for release in cx.borrows:
                        release()
                    cx.borrows.clear()
                cx.exception = None
                if cx is shared_cx:
                    busy[0] = False
        finally:
            lock.release()

    return call


def poisoned_at_entry(eng: Any, instance: Any) -> None:
    """Raise InstancePoisonedError for a call that found `instance` poisoned before it
    entered: the error's `instance` says so (the module's default instance is then
    replaced and the call made there; an error from deeper down is never retried)."""
    try:
        eng.check_usable()
    except InstancePoisonedError as e:
        e.instance = instance  # type: ignore[attr-defined]
        raise


def make_host_invoke(plan: FunctionPlan, target: Callable[..., Any], describe: str) -> Callable[..., None]:
    """The body of a host function: lift the guest's arguments, call `target`, check and
    lower its return value. A function with no WIT result drops what `target` returns
    (so a bare `Mock` works as an implementation)."""
    lifts = tuple(c.lift for c in plan.params)
    # A returned `result` is tagged by `host_result` (raised Err: the error; anything
    # returned: the ok payload) and lowered as the value it then is.
    lower = plan.result_value.lower if plan.result_value is not None else None
    returns_result = plan.returns_result
    expected = plan.result_value.wit if plan.result_value is not None else "nothing"

    def invoke(args: Any, nargs: int, results: Any, nresults: int, cx: Any) -> None:
        outer_borrows, cx.borrows = cx.borrows, []
        try:
            values = [lifts[i](args[i], cx) for i in range(nargs)]
            out = host_result(target, values) if returns_result else target(*values)
            if lower is None:
                return  # no WIT result: whatever came back is dropped, as Python callers do
            try:
                lower(out, results[0], cx)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{describe} returned a bad value for WIT type {expected}: {e}") from None
        finally:
            for release in cx.borrows:
                release()
            cx.borrows = outer_borrows

    return invoke
