"""Running a component: a `ComponentPlan` executed in one core store.

    CompiledComponent (plan + core modules)
        │  Instance(compiled, host, limits)
        ▼
    Store ── core instances, in plan order, each import wired to:
               another core instance's export        (CoreExport)
               a host function made for a canon lower (Lowered: LowerHost / LowerLifted)
               a resource intrinsic                   (Intrinsic: resource.new / drop / rep)

An instance of a component is one core `Store`; every component instance inside it (the
outermost, and one per nested component instantiation) has its own handle table
(`ComponentState`). Host functions are made lazily, the first time a core module imports
them, from the import's declared core type; canon options (memory, realloc,
post-return) are resolved to live objects on first use, since in a flattened component
a lowering may be wired before the core instance that holds its memory exists.

Calls are serialized by `lock` (a store is single-threaded; wasm itself runs without the
GIL). A trap poisons the store: every later call raises `InstancePoisonedError`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .. import _wit_model as w
from .._errors import LinkError
from .._limits import NO_LIMITS, Limits
from . import _abi, _handles
from . import _plan as p
from ._compiled import CompiledComponent
from ._wasmtime import Extern, FuncType, Store

__all__ = ["Instance", "HostImports"]


class HostImports:
    """What an instance asks of its host for each `canon lower` of an outer import.

    `function(key, name)` returns `(func, target, returns_result, policy)` for the WIT
    function `name` of world import `key`: its WIT type (with the world's named types,
    so values get the right Python classes), the Python callable implementing it,
    whether a returned `result` is "return or raise Err", and the resource policy
    for its values. `resource_dropped(key, name, rep)` runs when the guest drops its
    last handle to a host resource. The bindings layer implements this.
    """

    def function(self, key: str, name: str) -> Tuple[w.Function, Callable[..., Any], bool, Any]:
        raise NotImplementedError

    def resource_dropped(self, key: str, name: str, rep: int) -> None:
        raise NotImplementedError


class Instance:
    """One instance of a compiled component, with its own store."""

    def __init__(self, compiled: CompiledComponent, host: HostImports, limits: Limits = NO_LIMITS) -> None:
        plan = compiled.plan
        self.plan = plan
        self.host = host
        self.lock = threading.RLock()
        self.store = Store(limits)
        self.states = [_handles.ComponentState(i) for i in range(plan.component_instances)]
        self.resource_types = [self._resource_type(i, d) for i, d in enumerate(plan.resources)]
        self._core: List[Any] = []  # a CoreInstance, or a plan Bag, per plan.instances entry
        self._made: Dict[Tuple[str, int], Extern] = {}  # host functions made for Lowered/Intrinsic
        self._options: Dict[int, Any] = {}
        with self.lock:
            for step in plan.instances:
                if isinstance(step, p.Bag):
                    self._core.append(step)
                    continue
                module = compiled.modules[step.module]
                args = [self._extern(ref, desc.type) for ref, desc in zip(step.args, module.imports)]
                self._core.append(self.store.instantiate(module, args))

    # -- wiring ---------------------------------------------------------------------------

    def _extern(self, ref: "p.CoreRef", functype: Any = None) -> Extern:
        """The live core item `ref` names (`functype`: the importer's view of a function)."""
        if isinstance(ref, p.CoreExport):
            target = self._core[ref.instance]
            if isinstance(target, p.Bag):
                return self._extern(target.exports[ref.name], functype)
            return target.exports[ref.name]
        key = ("lowered" if isinstance(ref, p.Lowered) else "intrinsic", ref.index)
        made = self._made.get(key)
        if made is None:
            if isinstance(ref, p.Lowered):
                callback, ftype = self._lowering(self.plan.lowerings[ref.index])
            else:
                callback, ftype = self._intrinsic(self.plan.intrinsics[ref.index])
            made = self._made[key] = self.store.host_func(functype or ftype, callback)
        return made

    def _func(self, ref: "p.CoreRef") -> Callable[..., tuple]:
        return self.store.caller(self._extern(ref))

    def options(self, options: "p.Options") -> Any:
        """Canon options resolved to live objects, made on first use and kept."""
        found = self._options.get(id(options))
        if found is None:
            memory = self.store.memory(self._extern(options.memory)) if options.memory is not None else None
            realloc = self._func(options.realloc) if options.realloc is not None else None
            post_return = self._func(options.post_return) if options.post_return is not None else None
            found = _abi.Options(memory=memory, realloc=realloc, post_return=post_return,
                                 string_encoding=options.string_encoding, state=self.states[options.instance])
            self._options[id(options)] = found
        return found

    def _lazy_options(self, options: "p.Options") -> Callable[[], Any]:
        return lambda: self.options(options)

    # -- lowerings: host functions and composed calls ---------------------------------------

    def _lowering(self, lowering: Any) -> Tuple[Callable[..., Any], FuncType]:
        if isinstance(lowering, p.LowerHost):
            func, target, returns_result, policy = self.host.function(lowering.key, lowering.name)
            callback = _abi.host_callback(func, target, self._lazy_options(lowering.options), policy,
                                          returns_result)
            return callback, _abi.core_functype(func, "lower")
        assert isinstance(lowering, p.LowerLifted)
        lift = lowering.lift
        callee = _abi.export_caller(lift.type, self._func(lift.func), self._lazy_options(lift.options),
                                    _abi.PASS_THROUGH, False, "<composed>")
        callback = _abi.host_callback(lowering.type, callee, self._lazy_options(lowering.options),
                                      _abi.PASS_THROUGH, False)
        return callback, _abi.core_functype(lowering.type, "lower")

    # -- resources -----------------------------------------------------------------------

    def _resource_type(self, index: int, d: "p.ResourceDef") -> "_handles.ResourceType":
        if d.instance is None:
            key, name = d.import_key or "", d.import_name or d.name
            return _handles.ResourceType(d.name, None, lambda rep: self.host.resource_dropped(key, name, rep))
        dtor = None
        if d.dtor is not None:
            ref = d.dtor

            def dtor(rep: int) -> None:
                self._func(ref)(rep)
        return _handles.ResourceType(d.name, self.states[d.instance], dtor)

    def _intrinsic(self, intrinsic: "p.ResourceIntrinsic") -> Tuple[Callable[..., Any], FuncType]:
        rt = self.resource_types[intrinsic.resource]
        state = self.states[intrinsic.instance]
        if intrinsic.op == "new":
            return (lambda rep: _abi.resource_new(state, rt, rep)), FuncType(("i32",), ("i32",))
        if intrinsic.op == "drop":
            return (lambda handle: _abi.resource_drop(state, rt, handle)), FuncType(("i32",), ())
        if intrinsic.op == "rep":
            return (lambda handle: _abi.resource_rep(state, rt, handle)), FuncType(("i32",), ("i32",))
        raise LinkError(f"canon {intrinsic.op} is not supported by this runtime yet")

    def export_resource_type(self, key: Optional[str], name: str) -> "_handles.ResourceType":
        return self.resource_types[self.plan.export_resources[(key, name)]]

    # -- exports ---------------------------------------------------------------------------

    def export_caller(self, key: Optional[str], name: str, func: w.Function, returns_result: bool,
                      policy: Any, qualname: str) -> Callable[..., Any]:
        """A Python callable for export `name` of `key` (None: the root), typed by the
        bindings' `func` (the world's types, so values get their Python classes)."""
        lift = self.plan.exports.get((key, name))
        if lift is None:
            raise LookupError(f"the component exports no function {name!r}"
                              + (f" in {key!r}" if key else ""))
        if lift.options.is_async:
            raise NotImplementedError(f"{qualname}() is an async function; this runtime cannot call "
                                      "async exports yet")
        call = _abi.export_caller(func, self._func(lift.func), self._lazy_options(lift.options), policy,
                                  returns_result, qualname)
        lock = self.lock

        def locked(*args: Any) -> Any:
            with lock:
                return call(*args)

        return locked

    @property
    def poisoned(self) -> Optional[str]:
        return self.store.poisoned
