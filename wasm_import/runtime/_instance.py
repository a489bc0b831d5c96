"""Running a component: a `ComponentPlan` executed in one core store.

    CompiledComponent (plan + core modules)
        │  Instance(compiled, host, limits)
        ▼
    Store ── core instances, in plan order, each import wired to:
               another core instance's export         (CoreExport)
               a host function made for a canon lower (Lowered: LowerHost / LowerLifted)
               a canon built-in                       (Intrinsic: resource.new / drop / rep)

One instance of a component is one core `Store`. Every component instance inside it (the
outermost, and one per nested component instantiation) has its own handle table
(`_handles.InstanceState`). Host functions are made the first time a core module imports
them, typed as that import declares; canon options are resolved to live objects
(`_abi.CallOptions`) then too: a canon definition comes after the core items its options
name, and the plan instantiates in definition order, so they exist by then.

Calls are serialized by `lock` (a store is single-threaded; wasm itself runs without the
GIL). A trap poisons the store: every later call raises `InstancePoisonedError`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..wit import _model as w
from .._errors import LimitExceeded, Trap, report_unraisable
from .._limits import NO_LIMITS, Limits, limit_message
from .._values import Err
from . import _abi, _async, _handles
from . import _layout
from . import _plan as p
from ._compiled import CompiledComponent
from ._wasmtime import Extern, FuncType, Store

__all__ = ["Instance", "HostImports"]


class HostImports:
    """What an instance asks of its host for each `canon lower` of an outer import.

    `function(key, name)` returns `(func, target, returns_result, policy, label)` for the
    WIT function `name` of world import `key`: its WIT type (the world's named types, so
    values get their Python classes), the Python callable implementing it, whether a
    returned `result` is "return T or raise Err", the resource policy for its values, and
    how errors name it. `resource_dropped(key, name, rep)` runs when the guest drops its
    last handle to a host resource. The bindings layer implements this.
    """

    def function(self, key: str, name: str) -> Tuple[w.Function, Callable[..., Any], bool, Any, str]:
        raise NotImplementedError

    def resource_dropped(self, key: str, name: str, rep: int) -> None:
        raise NotImplementedError


class Instance:
    """One instance of a compiled component, with its own store."""

    def __init__(self, compiled: CompiledComponent, host: HostImports, limits: Limits = NO_LIMITS,
                 module_name: str = "wasm_import.types", cancel: str = "detach") -> None:
        if cancel not in ("detach", "deliver"):
            raise ValueError(f"cancel must be 'detach' or 'deliver', got {cancel!r}")
        plan = compiled.plan
        self.plan = plan
        self.host = host
        self.module_name = module_name
        self.lock = threading.RLock()
        self.store = Store(limits)
        self.states = [_handles.InstanceState(f"component instance {i}") for i in range(plan.component_instances)]
        self.resource_types = [self._resource_type(d) for d in plan.resources]
        self._core: List[Any] = []  # a CoreInstance or a plan Bag per plan.instances entry
        self._made: Dict[Tuple[str, int], Extern] = {}  # host functions made for Lowered/Intrinsic
        self._callers: Dict[int, Callable[..., tuple]] = {}
        self._options: Dict[p.Options, _abi.CallOptions] = {}
        self._spec_policy = _handles.SpecPolicy(self._anonymous_resource)
        self._extra_host_types: Dict[Tuple[str, str], _handles.ResourceType] = {}
        self._depth = 0  # calls from the host under way (lock held)
        self._pending_drops: List[Tuple[_handles.ResourceType, int]] = []
        self.async_rt = _async.AsyncRuntime(self, deliver_cancel=cancel == "deliver")  # component-model async
        with self.lock:
            # `compiled.wiring()` says where each import comes from; wasmtime checks types
            modules, core, extern, store = compiled.modules, self._core, self._extern, self.store
            for step, wires in zip(plan.instances, compiled.wiring()):
                if wires is None or isinstance(step, p.Bag):  # a bag of exports: instantiated by nobody
                    core.append(step)
                    continue
                imports = [(core[w[0]], w[1]) if w[0] >= 0 else extern(w[1], w[2]) for w in wires]
                core.append(store.instantiate_wired(modules[step.module], imports))

    # -- wiring ---------------------------------------------------------------------------

    def _extern(self, ref: "p.CoreRef", functype: Any = None) -> Extern:
        """The live core item `ref` names (`functype`: how the importer types a function)."""
        if isinstance(ref, p.CoreExport):
            target = self._core[ref.instance]
            if isinstance(target, p.Bag):
                return self._extern(target.exports[ref.name], functype)
            return target.exports[ref.name]  # type: ignore[no-any-return]
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
        extern = self._extern(ref)
        found = self._callers.get(id(extern))
        if found is None:
            found = self._callers[id(extern)] = self.store.caller(extern)
        return found

    def options(self, options: "p.Options") -> "_abi.CallOptions":
        """Canon options resolved to live objects, made on first use and kept."""
        found = self._options.get(options)
        if found is None:
            memory = self.store.memory(self._extern(options.memory)) if options.memory is not None else None
            realloc = None
            if options.realloc is not None:
                realloc_call = self._func(options.realloc)

                def realloc(old: int, old_size: int, align: int, new_size: int) -> int:
                    return realloc_call(old, old_size, align, new_size)[0]  # type: ignore[no-any-return]
            post_return = self._func(options.post_return) if options.post_return is not None else None
            found = _abi.CallOptions(memory=memory, realloc=realloc, post_return=post_return,
                                     string_encoding=options.string_encoding,
                                     inst=self.states[options.instance])
            self._options[options] = found
        return found

    # -- lowerings: host functions and composed calls ---------------------------------------

    def _lowering(self, lowering: Any) -> Tuple[Callable[..., Any], FuncType]:
        if lowering.options.is_async:
            return self._async_lowering(lowering)
        if isinstance(lowering, p.LowerHost):
            func, target, returns_result, policy, label = self.host.function(lowering.key, lowering.name)
            callback = _abi.host_callback(func, target, self.options(lowering.options), policy, returns_result,
                                          label=label, module_name=self.module_name)
            return callback, _flat(func)
        lift = lowering.lift
        if lift.options.is_async:  # the thread would have to block until the other task returns
            return self._refuse(f"a synchronous call to {lift.type.name!r}, which another component lifts "
                                "async, would block the thread: lower it async"), _flat(lowering.type)
        callback = _abi.lowered_lift_callback(lowering.type, self._func(lift.func), self.options(lift.options),
                                              self.options(lowering.options), self._spec_policy,
                                              lowering.type.name)
        return callback, _flat(lowering.type)

    @staticmethod
    def _refuse(what: str) -> Callable[..., Any]:
        def refuse(*_: Any) -> Any:
            raise Trap(f"{what} (this runtime does not run it)")
        return refuse

    # -- resources -----------------------------------------------------------------------

    def _resource_type(self, d: "p.ResourceDef") -> "_handles.ResourceType":
        if d.instance is None:
            key, name, host = d.import_key or "", d.import_name or d.name, self.host
            return _handles.ResourceType(d.name, None, lambda rep: host.resource_dropped(key, name, rep))
        dtor = None
        if d.dtor is not None:
            ref = d.dtor

            def dtor(rep: int) -> None:
                self._func(ref)(rep)
        return _handles.ResourceType(d.name, self.states[d.instance], dtor)

    def _anonymous_resource(self, cx: Any, typedef: w.TypeDef) -> "_handles.ResourceType":
        """The run-time type of a resource named in a composed call's anonymous types."""
        index = self.plan.resource_types.get(typedef)
        if index is None:
            raise Trap(f"resource {typedef.name!r} of a composed call has no run-time type")
        return self.resource_types[index]

    def _intrinsic(self, intrinsic: Any) -> Tuple[Callable[..., Any], FuncType]:
        if isinstance(intrinsic, p.BuiltinIntrinsic):
            return self._async_builtin(intrinsic)
        rt = self.resource_types[intrinsic.resource]
        state = self.states[intrinsic.instance]
        if intrinsic.op == "new":
            return (lambda rep: _handles.resource_new(state, rt, rep)), FuncType(("i32",), ("i32",))
        if intrinsic.op == "drop":
            return (lambda i: _handles.resource_drop(state, rt, i)), FuncType(("i32",), ())
        if intrinsic.op == "rep":
            return (lambda i: _handles.resource_rep(state, rt, i)), FuncType(("i32",), ("i32",))
        return self._refuse(f"canon resource.{intrinsic.op}"), FuncType((), ())

    def host_resource_type(self, key: str, name: str) -> "_handles.ResourceType":
        """The run-time type of host resource `name` of world import `key` (made on
        demand when the component's core code never names it)."""
        index = self.plan.import_resources.get((key, name))
        if index is not None:
            return self.resource_types[index]
        found = self._extra_host_types.get((key, name))
        if found is None:
            host = self.host
            found = _handles.ResourceType(name, None, lambda rep: host.resource_dropped(key, name, rep))
            self._extra_host_types[(key, name)] = found
        return found

    def drop_guest_resource(self, rt: "_handles.ResourceType", rep: int) -> None:
        """The host lets go of a guest resource it owns: run its destructor, if any.

        The garbage collector may get here in the middle of a call (any allocation can
        run a finalizer), when the guest must not be entered again: then the drop waits
        until the outermost call ends."""
        if rt.dtor is None:
            return
        if self._depth:
            self._pending_drops.append((rt, rep))
            return
        with self.lock:
            self._enter()
            try:
                rt.dtor(rep)
            finally:
                self._leave()

    def _enter(self) -> None:
        self._depth += 1

    def _leave(self) -> None:
        self._depth -= 1
        if not self._depth and self._pending_drops and self.store.poisoned is None:
            pending, self._pending_drops = self._pending_drops, []
            self._depth += 1
            try:
                for rt, rep in pending:
                    try:
                        rt.dtor(rep)  # type: ignore[misc]
                    except Exception as e:  # noqa: BLE001  as from a finalizer: nobody to hand it to
                        report_unraisable(e, "Exception ignored in the deferred destructor of", rt)
            finally:
                self._depth -= 1

    # -- exports ---------------------------------------------------------------------------

    def export_caller(self, key: Optional[str], name: str, func: w.Function, returns_result: bool,
                      policy: Any, qualname: str, *, wait: Optional[Callable[[Any], None]] = None,
                      at_entry: Optional[Callable[[], None]] = None,
                      on_trap: Optional[Callable[[Trap], BaseException]] = None) -> Callable[..., Any]:
        """A Python callable for export `name` of `key` (None: the root), typed by the
        bindings' `func` (the world's types, so values get their Python classes).

        The bindings' hooks run inside the one wrapper a call goes through: `wait(lock)`
        acquires the instance's lock when it is busy (or raises, say on a deadlock),
        `at_entry()` runs when the call finds the instance poisoned before entering it
        (it raises), `on_trap(trap)` gives the exception to raise for a trap."""
        lift = self.plan.exports.get((key, name))
        if lift is None:
            raise LookupError(f"the component exports no function {name!r}" + (f" in {key!r}" if key else ""))
        if lift.options.is_async:
            return self._async_export(lift, func, returns_result, policy, qualname, on_trap)
        lock, inst, store = self.lock, self, self.store
        call: Optional[Callable[..., Any]] = None
        interrupt = self._interrupt_check()

        def locked(*args: Any) -> Any:
            # The caller is built on the first call, not here: an instance of a big guest
            # has a hundred exports or more, and building them all made instantiation
            # several times slower than the instantiation of its core modules.
            # One wrapper, with _enter/_leave inlined: each layer was a fifth of a scalar call.
            nonlocal call
            if not lock.acquire(False):
                if wait is None:
                    lock.acquire()
                else:
                    wait(lock)
            try:
                if store.poisoned is not None and at_entry is not None:
                    at_entry()
                if call is None:
                    call = _abi.export_caller(func, self._func(lift.func), self.options(lift.options), policy,
                                              returns_result, qualname=qualname, module_name=self.module_name)
                inst._depth += 1
                previous = set_check(interrupt) if interrupt is not None else None
                try:
                    return call(*args)
                except Trap as trap:  # from wasmtime, or raised by the canonical ABI: poisons
                    if store.poisoned is None:
                        store.poisoned = trap.message
                    if on_trap is None:
                        raise
                    raise on_trap(trap) from None
                finally:
                    if interrupt is not None:
                        set_check(previous)
                    if inst._pending_drops:
                        inst._leave()
                    else:
                        inst._depth -= 1
            finally:
                lock.release()

        if interrupt is not None:
            from .wasi._io import set_interrupt_check as set_check
        return locked

    def _interrupt_check(self) -> Optional[Callable[[], None]]:
        """With a timeout: the check a host function blocked in a wait (a WASI sleep, `poll`,
        a blocking read) makes every few ms, so the timeout stops a guest waiting on the
        host too (wasmtime's epoch only stops running wasm)."""
        limits, store = self.store.limits, self.store
        if limits.timeout is None:
            return None

        def check() -> None:
            deadline = store._deadline
            if deadline is not None and time.monotonic() > deadline:
                raise LimitExceeded("timeout", limit_message(
                    "timeout", limits, "the guest was waiting in a host call when its time ran out"))

        return check

    def memory_at_cap(self) -> bool:
        return self.store.limits.memory is not None and self.store.near_memory_cap()

    @property
    def poisoned(self) -> Optional[str]:
        return self.store.poisoned

    # -- component-model async (runtime/_async.py does the work) ---------------------------

    def _async_export(self, lift: "p.Lift", func: w.Function, returns_result: bool, policy: Any,
                      qualname: str, on_trap: Optional[Callable[[Trap], BaseException]] = None
                      ) -> Callable[..., Any]:
        """An async-lifted export: a function returning a coroutine (callback form only)."""
        if lift.options.callback is None:
            def refuse(*_: Any) -> Any:
                raise NotImplementedError(
                    f"{qualname}() is lifted with the stackful async ABI (no callback), which this "
                    "runtime does not run; it runs the callback form componentize-py and wit-bindgen emit")
            return refuse
        inst = self
        built: List[Any] = []

        def build() -> Any:
            opts = self.options(lift.options)
            codec = _abi.codec_for(policy, opts.string_encoding, self.module_name)
            sig = _abi._Signature(func, codec, "lift")
            n = len(sig.params)
            arity = f"{qualname}() takes {n} argument{'s' * (n != 1)} ({', '.join(sig.names)}), got {{}}"

            def describe(k: int, e: Exception) -> Exception:
                return type(e)(f"{qualname}(): parameter {sig.names[k]!r} ({sig.params[k].wit}): {e}")

            def lower_args(args: Tuple[Any, ...]) -> List[Any]:
                cx = _abi.CallContext(opts)
                if sig.uses_memory:
                    cx.refresh()
                return _abi.lower_values(cx, sig, args, describe)

            lift_returned = _async.task_return_lifter(func, sig.result)

            def on_return(ropts: Any, flat: Tuple[Any, ...]) -> Any:
                value = lift_returned(ropts, flat)
                if returns_result:
                    if isinstance(value, Err):
                        return _Raise(value)
                    return value.value
                return value

            core, callback = self._func(lift.func), self._func(lift.options.callback)  # type: ignore[arg-type]
            return self.async_rt.export_caller(qualname, n, arity, lift.options.instance, lower_args,
                                               self._counted(core), self._counted(callback), on_return)

        async def call(*args: Any) -> Any:
            if not built:
                with inst.lock:
                    if not built:
                        built.append(build())
            try:
                value = await built[0](*args)
            except Trap as trap:  # with the guest's last words on stderr, as for a sync call
                if on_trap is None:
                    raise
                raise on_trap(trap) from None
            if isinstance(value, _Raise):
                raise value.err
            return value

        call.__wasm_async__ = True  # type: ignore[attr-defined]
        return call

    def _async_composed(self, lowering: "p.LowerLifted") -> Callable[..., Any]:
        """An async lower of a function another subcomponent lifts (sync or callback-form)."""
        lift = lowering.lift
        if lift.options.is_async and lift.options.callback is None:
            return self._refuse(f"an async call to {lowering.type.name!r}, lifted with the stackful async ABI")
        built: List[Any] = []

        def build() -> Any:
            caller, callee = self.options(lowering.options), self.options(lift.options)
            policy = self._spec_policy
            cb = lift.options.callback  # None: lifted sync, it runs to its end (stackful was refused above)
            callback = self._counted(self._func(cb)) if cb is not None else None
            return self.async_rt.composed_callback(
                lowering.type, lowering.type.name, caller, _abi.codec_for(policy, caller.string_encoding),
                callee, _abi.codec_for(policy, callee.string_encoding), lift.options.instance,
                self._func(lift.func), callback, _abi._post_return)

        def callback(*flat: Any) -> Any:
            if not built:
                built.append(build())
            return built[0](*flat)

        return callback

    def _counted(self, fn: Callable[..., tuple]) -> Callable[..., tuple]:
        """`fn`, a core function, entered from the host (not from inside another core call):
        counts the depth (deferred drops run when it returns to 0) and poisons on a trap."""
        inst = self

        def call(*flat: Any) -> tuple:
            inst._depth += 1
            try:
                return fn(*flat)
            except Trap as trap:
                if inst.store.poisoned is None:
                    inst.store.poisoned = trap.message
                raise
            finally:
                inst._leave()
        return call

    def _async_lowering(self, lowering: Any) -> Tuple[Callable[..., Any], FuncType]:
        sig = _layout.flatten_async_functype(lowering.type, "lower")
        ftype = FuncType(tuple(sig.params), tuple(sig.results))
        if isinstance(lowering, p.LowerLifted):
            return self._async_composed(lowering), ftype
        func, target, returns_result, policy, label = self.host.function(lowering.key, lowering.name)
        built: List[Any] = []

        def callback(*flat: Any) -> Any:
            if not built:
                opts = self.options(lowering.options)
                codec = _abi.codec_for(policy, opts.string_encoding, self.module_name)
                built.append(self.async_rt.async_host_callback(func, target, opts, codec, returns_result,
                                                               label))
            return built[0](*flat)

        return callback, ftype

    def _async_builtin(self, intrinsic: "p.BuiltinIntrinsic") -> Tuple[Callable[..., Any], FuncType]:
        params, results = _async.core_type_of(intrinsic)
        callback = self.async_rt.builtin(
            intrinsic, self.options,
            lambda _opts: _abi.codec_for(self._spec_policy, "utf8", self.module_name))
        return callback, FuncType(params, results)


class _Raise:
    """An `Err` a task returned, to raise in the caller's coroutine."""

    __slots__ = ("err",)

    def __init__(self, err: Any) -> None:
        self.err = err


def _flat(func: w.Function) -> FuncType:
    sig = _abi.core_functype(func, "lower")
    return FuncType(tuple(sig.params), tuple(sig.results))
