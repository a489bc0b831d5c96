"""Component modules and their instances: what `import foo` and `wasm_import.load` return.

    module = wasm_import.load("calc.wasm")   # or: import calc
    module.add(1, 2)                         # runs on the module's default instance
    inst = module.instantiate(imports={...}) # an independent instance with its own store
    inst.calc_api.Counter(5)                 # exported interfaces are attributes

A module holds the compiled code (shared by all its instances) and the plan of its
bindings, both made once at load. Each instance has its own store, so state, resources
and traps never cross instances.

The default instance is made on the first call through the module. Its imports come from
`module.link(...)`, never from a lookup by name. If it traps it is thrown away (closed)
and the next call through the module makes a fresh one (an instance you made yourself stays
poisoned: make a new one).

`inst.close()`, or the end of `with module.instantiate(...) as inst:`, releases what an
instance holds on the host (see `ComponentInstance.close`); an instance never closed is
released by its finalizer when collected.
"""

from __future__ import annotations

import os
import sys
import threading
import types
import weakref
from typing import Any, Callable, Dict, Mapping, Optional, Union

from . import _plan as b
from .._errors import CLOSED, InstancePoisonedError
from .._limits import NO_LIMITS, Limits
from .._wasi import DEFAULT_WASI, Wasi
from ..wit._decode import decode

__all__ = ["ComponentModule", "ComponentInstance", "Namespace", "load", "init_component_module"]


class Namespace(types.SimpleNamespace):
    """An exported interface: its functions, types and resource classes as attributes."""

    def __repr__(self) -> str:
        return f"<interface {self.__wit_name__!r}>"

    def __reduce__(self) -> Any:
        module = self.__dict__.get("__wasm_module__")
        if module is None:
            raise TypeError(f"{self!r} of a component instance cannot be pickled (its state lives in "
                            "this process); pickle the component module's interface instead")
        return getattr, (module, self.__wasm_attr__)


# -- instances ------------------------------------------------------------------------------------

class ComponentInstance:
    """One instance of a component, with its own store. Made by `module.instantiate()`."""

    def __init__(self, module: "ComponentModule", imports: Optional[Mapping[str, Any]],
                 wasi: Optional[Wasi], limits: Optional[Limits] = None, *, default: bool = False,
                 cancel: Optional[str] = None) -> None:
        from ._instance import RuntimeInstance
        from ._linking import resolve_imports

        plan: b.ModulePlan = module.__wasm_plan__
        self.module = module
        self._default = default  # the module's default instance: its objects are the module's classes
        wasi_context = self._wasi_context = _wasi_context(plan, wasi)  # serving HTTP binds to its classes
        try:
            functions, resources = resolve_imports(plan, imports or {}, wasi_context)
            self._engine = RuntimeInstance(module, functions=functions, resources=resources,
                                           limits=limits or NO_LIMITS, cancel=cancel or "detach")
        except BaseException:
            if wasi_context is not None:  # the preopened directories, at least
                wasi_context.close()
            raise
        # Collected without close(): what its WASI opened is released all the same. The
        # callback holds the context's `Held` only (it references no instance), so it
        # keeps nothing alive; it also runs at interpreter exit for instances still alive.
        self._finalizer = None if wasi_context is None else weakref.finalize(self, wasi_context.held.close)
        if wasi_context is not None:  # WASI is served in Python: its captured output is ours
            self._engine.stdout, self._engine.stderr = wasi_context.stdout, wasi_context.stderr
            self._engine.stderr_tail = wasi_context.stderr_tail
        self._engine.user = self
        self._callers: Dict[int, Callable[..., Any]] = {}
        self._resource_classes: Dict[int, type] = {}
        self.exports: Dict[str, Any] = {}
        root = plan.root
        for name, fplan in root.functions.items():
            setattr(self, name, self._function(fplan))
            self.exports[fplan.func.name] = getattr(self, name)
        for attr, ns in plan.namespaces.items():
            namespace = self._namespace(ns)
            setattr(self, attr, namespace)
            self.exports[ns.wit_name or attr] = namespace

    @property
    def stdout(self) -> bytes:
        """What the guest wrote to stdout, when `Wasi(stdout="capture")`."""
        return bytes(self._engine.stdout)

    @property
    def stderr(self) -> bytes:
        return bytes(self._engine.stderr)

    def __reduce__(self) -> Any:
        raise TypeError(f"{self!r} cannot be pickled: its state (memory, resources) lives in this "
                        "process's wasm store. Pickle the component module (or its functions) and "
                        "make instances where the calls run")

    @property
    def poisoned(self) -> bool:
        """True once this instance trapped: it cannot be called again."""
        reason = self._engine.poisoned
        return reason is not None and reason is not CLOSED

    @property
    def closed(self) -> bool:
        """True once `close()` ran: calls raise InstanceClosedError."""
        return self._engine.closed

    def close(self) -> None:
        """Release what this instance holds on the host, now, and make it unusable.

        The guest's handles to host resources are dropped as if it had dropped them (each
        object's `__wasm_drop__` runs), and everything its WASI opened is closed: preopened
        and opened directories and files, sockets, HTTP connections, files it opened for
        stdio given as paths (file objects you passed as stdio stay open: they are yours).
        Later calls, on the instance and on its resource objects, raise
        `InstanceClosedError`; async calls in progress end with it. Idempotent. A call in
        progress in another thread is waited for; called from inside a host function of
        this instance, the guest's current call runs on to its end. An instance collected
        without close() has its WASI resources released by its finalizer all the same;
        `with module.instantiate(...) as inst:` closes it at the end of the block."""
        if not self._engine.close():
            return
        if self._finalizer is not None:
            self._finalizer()  # what the WASI context opened: at most once, here or at collection

    def _close_soon(self) -> None:
        """Close now if no call is inside the instance, else on a daemon thread as soon as
        the call in progress returns (a 0.2 HTTP handler may run on after its response
        ended): whoever lets go of an instance (the ASGI app, a replaced default instance)
        is never blocked by its guest."""
        if self._engine.close(wait=False):
            if self._finalizer is not None:
                self._finalizer()
        elif not self._engine.closed:
            threading.Thread(target=self.close, name="wasm-import close", daemon=True).start()

    def __enter__(self) -> "ComponentInstance":
        if self._engine.closed:
            raise self._engine.closed_error()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def caller(self, plan: b.FunctionPlan) -> Callable[..., Any]:
        found = self._callers.get(id(plan))
        if found is None:
            found = self._callers[id(plan)] = self._engine.caller(plan)
        return found

    def resource_class(self, rplan: b.ResourcePlan) -> type:
        """The class of `rplan` whose constructor and statics run in this instance, and of
        every object of that resource this instance hands out (returned, in a list or a
        record, under a renamed `use`): one class per resource type and instance, a
        subclass of the module's class. The default instance's is the module's class."""
        found = self._resource_classes.get(id(rplan))
        if found is None:
            assert rplan.cls is not None
            if self._default:
                self._resource_classes[id(rplan)] = rplan.cls
                return rplan.cls
            found = type(rplan.class_name, (rplan.cls,), {"__slots__": (), "_bound": self})
            found.__qualname__ = rplan.cls.__qualname__
            found.__module__ = rplan.cls.__module__
            self._resource_classes[id(rplan)] = found
        return found

    def _function(self, plan: b.FunctionPlan) -> Callable[..., Any]:
        return _decorate(self.caller(plan), plan, self.module.__name__)

    def _namespace(self, ns: b.NamespacePlan) -> Namespace:
        namespace = Namespace(__wit_name__=ns.wit_name, __doc__=ns.docs or None)
        for name, cls in ns.types.items():
            setattr(namespace, name, cls)
        for name, rplan in (*ns.resources.items(), *ns.resource_aliases.items()):
            setattr(namespace, name, self.resource_class(rplan))
        for name, fplan in ns.functions.items():
            setattr(namespace, name, self._function(fplan))
        return namespace

    def drop_resource(self, handle: Any) -> None:
        self._engine.drop_resource(handle)

    def __repr__(self) -> str:
        state = " (closed)" if self.closed else " (poisoned)" if self.poisoned else ""
        return f"<instance of component {self.module.__name__!r}{state}>"


def _wasi_context(plan: b.ModulePlan, wasi: Optional[Wasi]) -> Any:
    """The instance's WASI (`runtime.wasi`, Python), when the component imports any."""
    if not plan.needs_wasi:
        return None
    from ..runtime.wasi import WasiContext

    return WasiContext(wasi or DEFAULT_WASI)


def _decorate(func: Callable[..., Any], plan: b.FunctionPlan, module_name: str) -> Callable[..., Any]:
    func.__name__ = plan.qualname.rsplit(".", 1)[-1]
    func.__qualname__ = plan.qualname
    func.__module__ = module_name
    func.__doc__ = plan.doc
    func.__signature__ = plan.signature  # type: ignore[attr-defined]
    func.__wit__ = plan.func  # type: ignore[attr-defined]  # linking checks types with it
    return func


# -- modules --------------------------------------------------------------------------------------

class ComponentModule(types.ModuleType):
    """The module object of a component. Exports are attributes; calls go to the default
    instance. `instantiate()` makes independent instances; `link()` supplies the default
    instance's imports."""

    __wasm_plan__: b.ModulePlan
    __wasm_compiled__: Any  # runtime._compiled.CompiledComponent

    def instantiate(self, imports: Optional[Mapping[str, Any]] = None, *,
                    wasi: Optional[Wasi] = None, limits: Optional[Limits] = None,
                    cancel: Optional[str] = None) -> ComponentInstance:
        """A new, independent instance. `imports` maps WIT import names to what satisfies
        them; `wasi` grants the sandbox; `limits` bounds each call (see `Limits`); `cancel`
        says what cancelling the coroutine of an async call does: "detach" (the default:
        the guest's task runs on, its result is dropped) or "deliver" (the guest gets
        TASK_CANCELLED and may stop; for guests whose toolchain handles it). What is
        omitted comes from `link()`."""
        linked = self.__dict__.get("__wasm_link__", {})
        if imports is None:
            imports = linked.get("imports")
        if wasi is None:
            wasi = linked.get("wasi")
        if limits is None:
            limits = linked.get("limits")
        if cancel is None:
            cancel = linked.get("cancel")
        return ComponentInstance(self, imports, wasi, limits, cancel=cancel)

    def link(self, imports: Optional[Mapping[str, Any]] = None, *, wasi: Optional[Wasi] = None,
             limits: Optional[Limits] = None, cancel: Optional[str] = None) -> None:
        """Choose the default instance's imports, WASI grants, limits and cancel mode
        (see `instantiate`). Takes effect for
        the next default instance: the current one, if any, is discarded and closed (its
        host resources released; once it returns, if a call in another thread is in it).
        A key that names nothing the component imports raises LinkError now."""
        from ._linking import check_import_keys

        check_import_keys(self.__wasm_plan__, imports or {})
        if cancel not in (None, "detach", "deliver"):
            raise ValueError(f"cancel must be 'detach' or 'deliver', got {cancel!r}")
        with self.__wasm_lock__:
            self.__dict__["__wasm_link__"] = {"imports": dict(imports or {}), "wasi": wasi, "limits": limits,
                                              "cancel": cancel}
            old, self.__dict__["__wasm_default__"] = self.__dict__.get("__wasm_default__"), None
        _discard(old)

    def _default_instance(self) -> ComponentInstance:
        inst = self.__dict__.get("__wasm_default__")
        if inst is None or inst._engine.poisoned is not None:
            with self.__wasm_lock__:
                inst = self.__dict__.get("__wasm_default__")
                if inst is None or inst._engine.poisoned is not None:
                    old = inst
                    linked = self.__dict__.get("__wasm_link__", {})
                    inst = ComponentInstance(self, linked.get("imports"), linked.get("wasi"),
                                             linked.get("limits"), default=True, cancel=linked.get("cancel"))
                    self.__dict__["__wasm_default__"] = inst
                    _discard(old)
        return inst  # type: ignore[no-any-return]

    @property
    def wit(self) -> Any:
        """The component's WIT world (`wasm_import.wit.World`)."""
        return self.__wasm_plan__.world

    def __repr__(self) -> str:
        where = getattr(self, "__file__", None)
        return f"<component module {self.__name__!r}" + (f" from {where!r}>" if where else ">")

    def __reduce__(self) -> Any:
        """By reference: where the module came from (its import name, or its file), so
        another process (a ProcessPoolExecutor's, Ray's, Dask's workers) imports or loads
        it there. What `link()` set is not carried: link in the worker (an initializer)."""
        name, path = self.__name__, self.__dict__.get("__file__")
        imported = self.__spec__ is not None and sys.modules.get(name) is self
        if not imported and path is None:
            raise TypeError(f"{self!r} was loaded from bytes, so it cannot be pickled by reference: "
                            "save it to a file and wasm_import.load() the file")
        return _module_by_reference, (name, None if imported or path is None else os.path.abspath(path))


def _discard(inst: Optional[ComponentInstance]) -> None:
    """A default instance was replaced (link(), a trap, a reload): release it now, or as
    soon as a call another thread is making in it returns (never waited for here)."""
    if inst is not None:
        inst._close_soon()


def _default_function(module: ComponentModule, plan: b.FunctionPlan, owner: Any, attr: str) -> Any:
    """A module-level function: a method bound to `owner` (the module, or the interface's
    namespace) under `attr`, so that it pickles by reference, as `getattr(owner, attr)`."""
    def call(_owner: Any, *args: Any) -> Any:
        return _on_default(module, plan, args)

    _decorate(call, plan, module.__name__)
    call.__name__ = attr
    call.__signature__ = plan.signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect_param("_owner"), *plan.signature.parameters.values()])
    return types.MethodType(call, owner)


def _on_default(module: ComponentModule, plan: b.FunctionPlan, args: Any) -> Any:
    """Call `plan` on the module's default instance. If another thread's call poisoned it
    after this one fetched it, the call, which never entered it, goes to the fresh one,
    as often as that happens (a call that entered and trapped is never repeated)."""
    while True:
        inst = module._default_instance()
        try:
            return inst.caller(plan)(*args)
        except InstancePoisonedError as e:
            if getattr(e, "instance", None) is not inst:
                raise


def _resource_class(module: ComponentModule, rplan: b.ResourcePlan) -> type:
    """The module-level class of a guest resource (constructor and statics run on the
    default instance; methods on the instance that owns the object)."""

    def instance_of(cls: Any) -> ComponentInstance:
        return cls._bound if cls._bound is not None else module._default_instance()

    ns: Dict[str, Any] = {"__slots__": (), "__module__": module.__name__, "__doc__": _resource_doc(rplan),
                          "_module": module}
    ctor = rplan.constructor
    if ctor is not None:
        def __init__(self: Any, *args: Any) -> None:
            cls = type(self)
            made = (instance_of(cls).caller(ctor)(*args) if cls._bound is not None
                    else _on_default(module, ctor, args))
            owner = made._owner
            self._adopt(made._take(owner), owner)

        __init__.__signature__ = ctor.signature.replace(  # type: ignore[attr-defined]
            parameters=[_self_param(), *ctor.signature.parameters.values()], return_annotation=None)
        __init__.__doc__ = ctor.doc
        ns["__init__"] = __init__
    else:
        def __init__(self: Any, *args: Any) -> None:  # noqa: F811
            raise TypeError(f"{rplan.class_name} has no constructor; objects come from the component")
        ns["__init__"] = __init__
    for name, mplan in rplan.methods.items():
        ns[name] = _method(mplan, name)
    for name, splan in rplan.statics.items():
        ns[name] = _static(splan, name, instance_of)
    cls = type(rplan.class_name, (b.GuestResource,), ns)
    cls.__qualname__ = rplan.class_name
    return cls


def _self_param() -> Any:
    import inspect

    return inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _resource_doc(rplan: b.ResourcePlan) -> str:
    docs = rplan.typedef.docs.contents
    text = f"WIT resource `{rplan.typedef.name}`."
    return f"{docs.strip()}\n\n{text}" if docs else text


def _method(plan: b.FunctionPlan, name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any) -> Any:
        owner = getattr(self, "_owner", None)
        if owner is None:
            raise ValueError(f"this {type(self).__name__} was never constructed")
        return owner.user.caller(plan)(self, *args)

    method.__name__ = name
    method.__qualname__ = plan.qualname
    method.__doc__ = plan.doc
    method.__signature__ = plan.signature.replace(  # type: ignore[attr-defined]
        parameters=[_self_param(), *plan.signature.parameters.values()])
    return method


def _static(plan: b.FunctionPlan, name: str, instance_of: Callable[[Any], ComponentInstance]) -> Any:
    def static(cls: Any, *args: Any) -> Any:
        if cls._bound is None:
            return _on_default(cls._module, plan, args)
        return instance_of(cls).caller(plan)(*args)

    static.__name__ = name
    static.__qualname__ = plan.qualname
    static.__doc__ = plan.doc
    static.__signature__ = plan.signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect_param("cls"), *plan.signature.parameters.values()])
    return classmethod(static)


def inspect_param(name: str) -> Any:
    import inspect

    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def init_component_module(module: ComponentModule, world: Any, compiled: Any) -> None:
    """(Re)populate `module` from a component's WIT world and compiled code.

    Builds the bindings plan and sets the export attributes. Calling it again
    (importlib.reload) replaces everything, including the default instance.
    """
    _populate(module, world, compiled)


def _populate(module: ComponentModule, world: Any, compiled: Any) -> None:
    plan = b.build_plan(world, module.__name__)
    for name in module.__dict__.get("__wasm_attrs__", ()):
        module.__dict__.pop(name, None)
    _discard(module.__dict__.get("__wasm_default__"))
    module.__dict__.update(__wasm_plan__=plan, __wasm_compiled__=compiled, __wasm_default__=None)
    module.__dict__.setdefault("__wasm_lock__", threading.RLock())
    module.__dict__.setdefault("__wasm_link__", {})
    attrs: Dict[str, Any] = {}
    for rplan in _all_resource_plans(plan):
        rplan.cls = _resource_class(module, rplan)
    for name, fplan in plan.root.functions.items():
        attrs[_safe(name)] = _default_function(module, fplan, module, _safe(name))
    for name, cls in plan.root.types.items():
        attrs.setdefault(_safe(name), cls)
    exports: Dict[str, Any] = {}
    for attr, ns in plan.namespaces.items():
        namespace = Namespace(__wit_name__=ns.wit_name, __doc__=ns.docs or None,
                              __wasm_module__=module, __wasm_attr__=attr)
        for name, cls in ns.types.items():
            setattr(namespace, name, cls)
        for name, rplan in (*ns.resources.items(), *ns.resource_aliases.items()):
            setattr(namespace, name, rplan.cls)
        for name, fplan in ns.functions.items():
            setattr(namespace, name, _default_function(module, fplan, namespace, name))
        attrs[attr] = namespace
        exports[ns.wit_name or attr] = namespace
    for name, fplan in plan.root.functions.items():
        exports[fplan.func.name] = attrs[_safe(name)]
    attrs["exports"] = exports
    from ._linking import imports_namespace

    attrs["imports"] = imports_namespace(plan, module.__name__)
    module.__dict__.update(attrs)
    module.__dict__["__wasm_attrs__"] = tuple(attrs)
    if module.__doc__ is None and world.docs.contents:
        module.__doc__ = world.docs.contents


def _all_resource_plans(plan: b.ModulePlan) -> list:  # type: ignore[type-arg]
    seen: Dict[int, b.ResourcePlan] = {}
    for ns in (plan.root, *plan.namespaces.values()):
        for rplan in ns.resources.values():
            seen[id(rplan)] = rplan
    return list(seen.values())


def _safe(name: str) -> str:
    return name + "_" if name in b.RESERVED_MODULE_NAMES else name


def load(source: Union[str, "os.PathLike[str]", bytes], *, name: Optional[str] = None) -> ComponentModule:
    """Load a component from a path or from bytes, as a component module.

    A path is compiled through the same `__pycache__` cache as `import` uses.
    """
    from ._cache import Source, load_component

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)  # not cached (no path to key it by): compiled as given
        world, compiled = load_component(Source("<bytes>", b"", lambda: data, None))
        path = None
    else:
        path = os.fspath(source)
        world, compiled = load_component(Source.file(path))
    module = ComponentModule(name or (_module_name(path) if path else "component"))
    if path:
        module.__file__ = path
    _populate(module, world, compiled)
    if path:
        _loaded[(os.path.abspath(path), module.__name__)] = module
    return module


# Modules loaded from files, so that unpickling a reference finds the module already
# loaded in this process (the very same one) instead of loading the file again.
_loaded: "weakref.WeakValueDictionary[Any, ComponentModule]" = weakref.WeakValueDictionary()
_loaded_lock = threading.Lock()


def _module_by_reference(name: str, path: Optional[str]) -> ComponentModule:
    """Unpickle a component module: import it by name, or load its file (once per process)."""
    if path is None:
        found = sys.modules.get(name)
        if isinstance(found, ComponentModule):
            return found
        import importlib

        module = importlib.import_module(name)
        if not isinstance(module, ComponentModule):
            raise TypeError(f"import {name!r} gave {module!r}, not a component module")
        return module
    with _loaded_lock:
        loaded = _loaded.get((path, name))
        return loaded if loaded is not None else load(path, name=name)


def _module_name(path: str) -> str:
    """`my-comp.component.wasm` -> `my_comp_component`: the file name without `.wasm`,
    with every character that cannot be in an identifier replaced by `_`."""
    stem = os.path.basename(path)
    stem = stem[: -len(".wasm")] if stem.endswith(".wasm") else stem
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem)
    return name if name.isidentifier() else f"_{name}"
