"""The bindings' side of the runtime: one component instance on `runtime.Instance`.

`ComponentInstance` (in `_component`) holds a `RuntimeInstance` and asks it for callers.
It answers the runtime's questions about
the host (`HostImports`: which Python callable implements an import, what to do when the
guest drops a host resource) from what `_linking.resolve_imports` found, and turns
resource handles into Python objects (`PythonResources`):

- a guest-defined resource is an object of its resource class (`_plan.GuestResource`)
  that holds a `Rep` (run-time type and rep); passing it as `own` moves the rep back into
  the guest's handle table, as `borrow` lends it for one call;
- a host-defined resource is the Python object itself, kept in a per-instance table
  (`HostResourceTable`) while the guest holds a handle to it.

Nothing here knows wasmtime: it speaks to `wasm_import.runtime` only.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from . import _plan as b
from ..wit import _model as w
from .._errors import CLOSED, InstancePoisonedError, LinkError, Trap, report_unraisable, unusable
from .._limits import NO_LIMITS, Limits
from ..runtime._traps import OutputTail, guest_trap
from ._calllock import wait_for_instance
from ..runtime import _handles
from ..runtime._instance import HostImports, Instance

__all__ = ["RuntimeInstance", "PythonResources"]


class _Host(HostImports):
    """Host functions by (world import key, WIT function name), from the linking."""

    def __init__(self, owner: "RuntimeInstance", functions: Sequence[Any], resources: Sequence[Any]) -> None:
        self._owner = weakref.ref(owner)
        self._functions: Dict[Tuple[str, str], Any] = {}
        for f in functions:
            key = f.path[0] if f.path else f.name
            self._functions[(key, f.name)] = f
            if not f.path:  # root-level resource functions are known by their own name too
                self._functions.setdefault((f.name, f.name), f)
        self._drops: Dict[Tuple[str, str], Any] = {}
        for r in resources:
            self._drops[(r.path[0] if r.path else r.name, r.name)] = r

    def function(self, key: str, name: str) -> Tuple[w.Function, Callable[..., Any], bool, Any, str]:
        f = self._functions.get((key, name)) or self._functions.get((name, name))
        owner = self._owner()
        assert owner is not None
        if f is None:
            raise LinkError(f"the component imports {name!r} of {key!r}, which the bindings do not know")
        fplan: b.FunctionPlan = f.plan
        return fplan.func, f.target, fplan.returns_result, owner.policy(fplan), f.describe

    def resource_dropped(self, key: str, name: str, rep: int) -> None:
        owner = self._owner()
        if owner is None:
            return
        r = self._drops.get((key, name))
        if r is not None:
            r.on_drop(owner, rep)
        else:
            owner.host_table.pop(rep)


class PythonResources:
    """Own/borrow handles as Python objects, for calls between Python and the guest.

    `pick(typedef)` says whose a resource is: `("host", (key, name))` for one the host
    implements (world import `key`, resource `name`), `("guest", ResourcePlan)` for one the
    guest implements.
    """

    def __init__(self, owner: "RuntimeInstance", pick: Callable[[w.TypeDef], Tuple[str, Any]]) -> None:
        self._owner = weakref.ref(owner)
        self._pick = pick
        self._kinds: Dict[w.TypeDef, Tuple[str, Any]] = {}

    def _kind(self, typedef: w.TypeDef) -> Tuple[str, Any]:
        found = self._kinds.get(typedef)
        if found is None:
            found = self._kinds[typedef] = self._pick(typedef)
        return found

    def _engine(self) -> "RuntimeInstance":
        owner = self._owner()
        if owner is None:
            raise ReferenceError("the instance is gone")
        return owner

    # -- out of the guest --------------------------------------------------------------------

    def lift_own(self, cx: Any, typedef: w.TypeDef, handle: int) -> Any:
        eng = self._engine()
        h = cx.inst.handles.get(handle)
        rep = _handles.lift_own(cx.inst, h.rt, handle)
        if h.rt.impl is None:
            return eng.host_table.pop(rep)
        obj = object.__new__(eng.user.resource_class(self._kind(typedef)[1]))
        obj._adopt(_handles.Rep(h.rt, rep), eng)
        return obj

    def lift_borrow(self, cx: Any, typedef: w.TypeDef, handle: int) -> Any:
        eng = self._engine()
        h = cx.inst.handles.get(handle)
        rep = _handles.lift_borrow(cx.inst, cx.scope, h.rt, handle)
        if h.rt.impl is None:
            return eng.host_table.get(rep)
        # a view lent for this call only: it stops working when the host function returns
        obj = object.__new__(eng.user.resource_class(self._kind(typedef)[1]))
        obj._handle, obj._owner = _handles.Rep(h.rt, rep), eng
        obj._finalizer = weakref.finalize(obj, lambda: None)

        def end() -> None:
            obj._handle = None
        cx.exits.append(end)
        return obj

    # -- into the guest ----------------------------------------------------------------------

    def lower_own(self, cx: Any, typedef: w.TypeDef, value: Any) -> int:
        eng = self._engine()
        kind, what = self._kind(typedef)
        if kind == "host":
            self._not_ours(eng, what, value)
            rt = eng.runtime.host_resource_type(*what)
            return _handles.lower_own(cx.inst, rt, eng.host_table.add(value))
        rep = self._checked(what, value)._take(eng)
        return _handles.lower_own(cx.inst, rep.rt, rep.rep)

    def lower_borrow(self, cx: Any, typedef: w.TypeDef, value: Any) -> int:
        eng = self._engine()
        kind, what = self._kind(typedef)
        if kind == "host":
            self._not_ours(eng, what, value)
            rt = eng.runtime.host_resource_type(*what)
            table = eng.host_table
            rep = table.add(value)
            cx.exits.append(lambda: table.pop(rep))
            return _handles.lower_borrow(cx.inst, cx.scope, rt, rep)
        rep = self._checked(what, value)._checked_handle(eng)
        return _handles.lower_borrow(cx.inst, cx.scope, rep.rt, rep.rep)

    @staticmethod
    def _not_ours(eng: "RuntimeInstance", what: Tuple[str, str], value: Any) -> None:
        """A host resource is any Python object, but not one of this instance's exports."""
        if isinstance(value, b.GuestResource) and getattr(value, "_owner", None) is eng:
            raise TypeError(f"expected the imported resource {what[1]} (implemented by the host), "
                            f"got this instance's own exported {type(value).__name__}")

    @staticmethod
    def _checked(rplan: Any, value: Any) -> Any:
        cls = rplan.cls
        if not isinstance(value, cls):
            raise TypeError(f"expected a {cls.__name__} resource, got {type(value).__name__} {value!r}")
        return value


class RuntimeInstance:
    """One component instance on the core runtime, as `ComponentInstance` uses it."""

    def __init__(self, module: Any, *, functions: Sequence[Any], resources: Sequence[Any],
                 limits: Limits = NO_LIMITS, cancel: str = "detach") -> None:
        plan: b.ModulePlan = module.__wasm_plan__
        self.host_table = b.HostResourceTable()
        self.user: Any = None  # the ComponentInstance this serves (set by it)
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stderr_tail: Optional[OutputTail] = None  # fed by the WASI context, if any
        self._policies: Dict[Any, PythonResources] = {}
        self._policy_lock = threading.Lock()
        self.runtime = Instance(module.__wasm_compiled__, _Host(self, functions, resources), limits,
                                module_name=module.__name__, cancel=cancel)
        self.lock = self.runtime.lock
        self._plan = plan
        self._closed = False

    @property
    def poisoned(self) -> Optional[str]:
        return self.runtime.poisoned

    @property
    def closed(self) -> bool:
        return self._closed

    @staticmethod
    def closed_error() -> InstancePoisonedError:
        return unusable(CLOSED)

    def close(self, wait: bool = True) -> bool:
        """Make the instance unusable (its store's `poisoned` says CLOSED, unless it trapped
        already: the check every call makes already) and drop the guest's handles to host objects, running their
        drop hooks. True if this call closed it; False if it was closed already, or (with
        `wait=False`) busy in another thread.

        The instance's lock is taken first, so a call in progress in another thread ends
        before anything it uses is closed under it (never an fd number reused meanwhile)."""
        lock = self.runtime.lock
        if not lock.acquire(wait):
            return False
        try:
            if self._closed:
                return False
            self._closed = True
            store = self.runtime.store
            if store.poisoned is None:  # a trapped one keeps saying why it trapped
                store.poisoned = CLOSED
        finally:
            lock.release()
        self.runtime.async_rt.abandon()
        for obj in self.host_table.drain():
            hook = getattr(obj, b.DROP_HOOK, None)
            if hook is not None:
                try:
                    hook()
                except Exception as e:  # noqa: BLE001  (as a drop by the guest: nobody to hand it to)
                    report_unraisable(e, f"Exception ignored in {b.DROP_HOOK} (closing the instance) of", obj)
        return True

    def policy(self, fplan: b.FunctionPlan) -> PythonResources:
        """The resource policy of `fplan`'s scope (shared by the functions of one scope)."""
        with self._policy_lock:
            found = self._policies.get(fplan.scope)
            if found is None:
                assert fplan.resource_picker is not None, "a planned function always has a resource picker"
                found = self._policies[fplan.scope] = PythonResources(self, fplan.resource_picker())
            return found

    def caller(self, fplan: b.FunctionPlan) -> Callable[..., Any]:
        key = fplan.path[0] if fplan.path else None
        user = self.user
        what = f"the instance of component {user.module.__name__!r} (called for {fplan.qualname}())"

        def wait(lock: Any) -> None:  # busy: wait, unless that could never end (DeadlockError)
            wait_for_instance(lock, what)

        def at_entry() -> None:  # found poisoned before entering: says which instance
            b.poisoned_at_entry(self, user)

        def on_trap(trap: Trap) -> Trap:  # with the guest's last words on stderr, or "out of memory"
            return guest_trap(trap, self)

        return self.runtime.export_caller(key, fplan.func.name, fplan.func, fplan.returns_result,
                                          self.policy(fplan), fplan.qualname, wait=wait, at_entry=at_entry,
                                          on_trap=on_trap)

    @property
    def limits(self) -> Limits:
        return self.runtime.store.limits

    def memory_at_cap(self) -> bool:
        """Whether a memory of this instance is at its cap (so a trap may follow a refused
        `memory.grow`): the runtime can see the guest's memories."""
        return self.runtime.memory_at_cap()

    def check_usable(self) -> None:
        self.runtime.store._check_usable()

    def drop_resource(self, handle: Any) -> None:
        """The host lets go of a guest resource it owned (a `Rep`): run its destructor."""
        if self.poisoned is not None:
            return
        self.runtime.drop_guest_resource(handle.rt, handle.rep)
