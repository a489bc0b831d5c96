"""Resource handles: per-instance handle tables, own and borrow, borrow scopes (the spec's rules).

Each component instance has one `HandleTable`; a guest names a resource by its index in
the table of the instance it runs in. An element (`Handle`) records the resource type, the
representation (`rep`, the implementation's i32), whether it owns the resource, and for a
borrow the call scope it was lent for. Following `definitions.py` (sync parts):

- lowering `own` into an instance adds an owning handle; lifting it out removes it (it must
  own, be of the right type and not be lent out right now);
- lowering `borrow` into an instance adds a borrowing handle counted in the callee's
  `CallScope` (the spec's Task.num_borrows); the callee must drop it before it returns.
  Lowering a borrow into the instance that implements the resource passes the rep itself;
- lifting `borrow` out of an instance lends the handle for the call (`lends` counted, the
  spec's Subtask.lenders): it cannot be dropped or moved until the call ends;
- `resource_new`, `resource_drop` (calls the destructor when an owning handle goes) and
  `resource_rep` are the canon built-ins.

Every misuse by a guest is a `Trap` with a message naming the handle and the resource.
"""

from __future__ import annotations

from typing import Any, Callable, List, NamedTuple, Optional

from .._errors import Trap

__all__ = ["ResourceType", "Handle", "HandleTable", "InstanceState", "ComponentState", "CallScope",
           "lower_own", "lower_borrow", "lift_own", "lift_borrow",
           "resource_new", "resource_drop", "resource_rep", "Rep", "SpecPolicy",
           "PASS_THROUGH"]


class ResourceType:
    """A resource type at run time: one per resource definition per instantiation, told
    apart by identity. `impl` is the InstanceState that implements it (None: the host);
    `dtor(rep)` runs when an owning handle is dropped (None: nothing to run)."""

    __slots__ = ("name", "impl", "dtor", "__weakref__")

    def __init__(self, name: str, impl: Optional["InstanceState"] = None,
                 dtor: Optional[Callable[[int], Any]] = None) -> None:
        self.name = name
        self.impl = impl
        self.dtor = dtor

    def __repr__(self) -> str:
        where = "host" if self.impl is None else self.impl.name
        return f"<resource {self.name} ({where})>"


class Handle:
    """One element of a handle table (the spec's ResourceHandle)."""

    __slots__ = ("rt", "rep", "own", "scope", "lends")

    def __init__(self, rt: ResourceType, rep: int, own: bool, scope: Optional["CallScope"] = None) -> None:
        self.rt = rt
        self.rep = rep
        self.own = own
        self.scope = scope
        self.lends = 0

    def __repr__(self) -> str:
        return f"<{'own' if self.own else 'borrow'} {self.rt.name} rep={self.rep} lends={self.lends}>"


class HandleTable:
    """The spec's Table: index 0 is never used, freed indices are reused (last freed first)."""

    MAX_LENGTH = (1 << 28) - 1

    __slots__ = ("array", "free")

    def __init__(self) -> None:
        self.array: List[Optional[Handle]] = [None]
        self.free: List[int] = []

    def get(self, i: int) -> Handle:
        if not 0 < i < len(self.array) or self.array[i] is None:
            raise Trap(f"unknown handle index {i}")
        return self.array[i]  # type: ignore[return-value]

    def add(self, h: Handle) -> int:
        if self.free:
            i = self.free.pop()
            self.array[i] = h
            return i
        i = len(self.array)
        if i > self.MAX_LENGTH:
            raise Trap("the handle table is full")
        self.array.append(h)
        return i

    def remove(self, i: int) -> Handle:
        h = self.get(i)
        self.array[i] = None
        self.free.append(i)
        return h

    def __len__(self) -> int:
        """How many handles are live."""
        return len(self.array) - 1 - len(self.free)

    def __iter__(self) -> Any:
        return (h for h in self.array if h is not None)


class InstanceState:
    """What the canonical ABI keeps per component instance: its handle table and the
    spec's `may_leave` flag (false while realloc or post-return runs, when the guest may
    not call out)."""

    __slots__ = ("name", "handles", "may_leave", "__weakref__")

    def __init__(self, name: Any = "instance") -> None:
        self.name = str(name)
        self.handles = HandleTable()
        self.may_leave = True

    def __repr__(self) -> str:
        return f"<InstanceState {self.name} ({len(self.handles)} handles)>"


ComponentState = InstanceState  # the spec's name (ComponentInstance), as the instance code says


class CallScope:
    """The borrow scope of one call. On the callee's side (a lift: the host or another
    component calls in), `borrows` counts borrowed handles lent into the callee, which must
    all be dropped before it returns. On the caller's side (a lower: the guest calls out),
    `lenders` are the caller's handles lent for the call, released by `end`."""

    __slots__ = ("borrows", "lenders")

    def __init__(self) -> None:
        self.borrows = 0
        self.lenders: List[Handle] = []

    def check_returned(self, what: str = "the call") -> None:
        """A callee returns: every borrow lent to it must be gone (the spec's Task.return_)."""
        if self.borrows:
            raise Trap(f"borrow handles still remain at the end of {what} ({self.borrows} not dropped)")

    def end(self) -> None:
        """The call made by a guest ended: release the handles it lent (Subtask.deliver_resolve)."""
        for h in self.lenders:
            h.lends -= 1
        self.lenders.clear()


def _checked(h: Handle, rt: ResourceType, i: int) -> Handle:
    if not isinstance(h, Handle):  # a waitable, waitable set or stream/future end (async)
        raise Trap(f"handle index {i} is a {type(h).__name__}, not a {rt.name} handle")
    if h.rt is not rt:
        raise Trap(f"handle index {i} is a {h.rt.name} handle, not {rt.name}")
    return h


# -- moving handles across the boundary (the spec's lift_own/lift_borrow/lower_own/lower_borrow) --

def lower_own(inst: InstanceState, rt: ResourceType, rep: int) -> int:
    """Give `inst` an owning handle to `rep`; its index."""
    return inst.handles.add(Handle(rt, rep, True))


def lower_borrow(inst: InstanceState, scope: CallScope, rt: ResourceType, rep: int) -> int:
    """Lend `rep` to `inst` for the call `scope`; into the implementing instance, the rep itself."""
    if inst is rt.impl:
        return rep
    scope.borrows += 1
    return inst.handles.add(Handle(rt, rep, False, scope))


def lift_own(inst: InstanceState, rt: ResourceType, i: int) -> int:
    """Take the owning handle `i` out of `inst`; its rep."""
    h = _checked(inst.handles.get(i), rt, i)
    if not h.own:
        raise Trap(f"handle index {i} borrows a {rt.name}: it cannot be passed as an owned {rt.name}")
    if h.lends:
        raise Trap(f"handle index {i} ({rt.name}) is lent out to a call and cannot be moved")
    inst.handles.remove(i)
    return h.rep


def lift_borrow(inst: InstanceState, scope: CallScope, rt: ResourceType, i: int) -> int:
    """Lend handle `i` of `inst` (own or borrow) for the call `scope`; its rep."""
    h = _checked(inst.handles.get(i), rt, i)
    h.lends += 1
    scope.lenders.append(h)
    return h.rep


# -- the canon built-ins ------------------------------------------------------------------------

def resource_new(inst: InstanceState, rt: ResourceType, rep: int) -> int:
    """`canon resource.new`: an owning handle in `inst` for a rep the guest made."""
    if not inst.may_leave:
        raise Trap("resource.new called while the instance may not leave (in realloc or post-return)")
    return inst.handles.add(Handle(rt, rep, True))


def resource_drop(inst: InstanceState, rt: ResourceType, i: int) -> None:
    """`canon resource.drop`: remove handle `i`; an owning one runs the destructor, a
    borrowing one ends its borrow."""
    if not inst.may_leave:
        raise Trap("resource.drop called while the instance may not leave (in realloc or post-return)")
    h = _checked(inst.handles.get(i), rt, i)
    if h.lends:
        raise Trap(f"handle index {i} ({rt.name}) is lent out to a call and cannot be dropped")
    inst.handles.remove(i)
    if h.own:
        if rt.dtor is not None:
            rt.dtor(h.rep)
    else:
        assert h.scope is not None
        h.scope.borrows -= 1


def resource_rep(inst: InstanceState, rt: ResourceType, i: int) -> int:
    """`canon resource.rep`: the rep behind handle `i`."""
    return _checked(inst.handles.get(i), rt, i).rep


# -- a resource policy that keeps the spec's view: a resource in transit is (type, rep) -------------

class Rep(NamedTuple):
    """A resource between two instances (or held by the host): its type and representation."""
    rt: ResourceType
    rep: int


class SpecPolicy:
    """The resource policy of composed calls (and a model for others): lifting a handle
    gives a `Rep`, lowering a `Rep` makes a handle, by the spec's own/borrow rules.
    `resolve(cx, typedef) -> ResourceType` names the run-time type of a WIT resource as
    seen from the instance `cx.inst`; without it (`PASS_THROUGH`), a lifted handle's own
    type travels on, and the instance that later uses it checks it (resource.rep/drop and
    lifting it again compare types)."""

    def __init__(self, resolve: Optional[Callable[[Any, Any], ResourceType]] = None) -> None:
        self.resolve = resolve

    def _lifted_type(self, cx: Any, typedef: Any, handle: int) -> ResourceType:
        if self.resolve is None:  # pass-through: the handle says its type (checked again where used)
            return cx.inst.handles.get(handle).rt  # type: ignore[no-any-return]
        return self.resolve(cx, typedef)

    def _rt(self, cx: Any, typedef: Any, value: Any) -> ResourceType:
        if self.resolve is None:
            if not isinstance(value, Rep):
                raise TypeError(f"expected a resource, got {type(value).__name__} {value!r}")
            return value.rt
        rt = self.resolve(cx, typedef)
        if not isinstance(value, Rep):
            raise TypeError(f"expected a {rt.name} resource, got {type(value).__name__} {value!r}")
        if value.rt is not rt:
            raise TypeError(f"expected a {rt.name} resource, got a {value.rt.name} resource")
        return rt

    def lift_own(self, cx: Any, typedef: Any, handle: int) -> Rep:
        rt = self._lifted_type(cx, typedef, handle)
        return Rep(rt, lift_own(cx.inst, rt, handle))

    def lift_borrow(self, cx: Any, typedef: Any, handle: int) -> Rep:
        rt = self._lifted_type(cx, typedef, handle)
        return Rep(rt, lift_borrow(cx.inst, cx.scope, rt, handle))

    def lower_own(self, cx: Any, typedef: Any, value: Any) -> int:
        return lower_own(cx.inst, self._rt(cx, typedef, value), value.rep)

    def lower_borrow(self, cx: Any, typedef: Any, value: Any) -> int:
        return lower_borrow(cx.inst, cx.scope, self._rt(cx, typedef, value), value.rep)


PASS_THROUGH = SpecPolicy()  # composed calls: resources move from instance to instance as Reps
