"""Linking: satisfy a component's imports from what the caller passes, explicitly.

`instantiate(imports={...})` maps each import's WIT name to what implements it:

- a key is an interface's full name (`test:demo/logger`, `docs:adder/add@0.1.0`; the
  `@version` may be left out when that is unambiguous), an inline interface's name, or a
  root-level imported function or resource name;
- a value is any object with the interface's functions as snake_case attributes (a
  module, a class instance, a SimpleNamespace, a `Mock`), or a dict of them; an imported
  resource is a Python class under its PascalCase name (a root-level one: the class
  itself); a root-level function is the callable itself;
- a component *module* as a value means a fresh instance of it, private to this client;
  a component *instance* means that very instance, shared.

There is no lookup by name anywhere else: what is not passed is missing, and missing
imports raise `LinkError` listing each with its WIT signature.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _plan as b
from ..wit import _model as w
from .._errors import LinkError, report_unraisable
from ..types._names import pascal, snake
from ..types._pytypes import wit_signature
from .._values import Err

__all__ = ["resolve_imports", "imports_namespace", "HostFunction", "HostResource"]


@dataclass(frozen=True)
class HostFunction:
    """What implements one imported function: `name` (its WIT name) of the import at
    `path` (`(world key,)`, or `()` for a root-level one), its plan, and the Python
    callable (wrapped so that what escapes it names the import)."""

    path: Tuple[str, ...]
    name: str
    plan: "b.FunctionPlan"
    target: Callable[..., Any]
    describe: str


@dataclass(frozen=True)
class HostResource:
    """A resource the host implements: `on_drop(engine_instance, rep)` runs when the
    guest drops its last handle to one."""

    path: Tuple[str, ...]
    name: str
    on_drop: Callable[[Any, int], None]


def _find_value(key: str, imports: Mapping[str, Any]) -> Tuple[bool, Any]:
    """Look `key` up in `imports`: exactly, or without its `@version` if unambiguous."""
    if key in imports:
        return True, imports[key]
    base = key.split("@", 1)[0]
    if base != key and base in imports:
        return True, imports[base]
    return False, None


def _member(provider: Any, name: str) -> Any:
    """`name` (snake_case or PascalCase) of a provider: an attribute, or a dict key."""
    if isinstance(provider, Mapping):
        return provider.get(name)
    return getattr(provider, name, None)


def _as_provider(value: Any, cache: Dict[int, Any]) -> Any:
    """A component module becomes a fresh private instance (one per module per link);
    everything else is used as it is."""
    from ._component import ComponentInstance, ComponentModule

    if isinstance(value, ComponentModule):
        if id(value) not in cache:
            cache[id(value)] = value.instantiate()
        return cache[id(value)]
    if isinstance(value, ComponentInstance):
        return value
    return value


def _interface_provider(provider: Any, key: str) -> Any:
    from ._component import ComponentInstance

    if isinstance(provider, ComponentInstance):
        found = provider.exports.get(key)
        if found is None:
            base = key.split("@", 1)[0]
            matches = [v for k, v in provider.exports.items() if k.split("@", 1)[0] == base]
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            raise LinkError(f"import {key!r}: the component instance given does not export it "
                            f"(it exports {', '.join(sorted(provider.exports)) or 'nothing'})")
        return found
    return provider


def resolve_imports(plan: b.ModulePlan, imports: Mapping[str, Any],
                    wasi_context: Any = None) -> Tuple[List[HostFunction], List[HostResource]]:
    """Host functions and resources implementing `plan`'s imports from `imports`.

    An import given but lacking what the component needs is an error now. An import not
    given at all is defined to raise `LinkError` when the guest calls it, so a component
    can be loaded, inspected and used for everything that does not need it. A `wasi:*`
    import not given is served by `wasi_context` (a `runtime.wasi.WasiContext`), interface by
    interface, so a key given in `imports` replaces just that interface.
    """
    check_import_keys(plan, imports)
    functions: List[HostFunction] = []
    resources: List[HostResource] = []
    mismatched: List[str] = []
    absent: List[b.ImportedInterfacePlan] = []
    instances: Dict[int, Any] = {}
    for key, iplan in plan.imports.items():
        found, value = _find_value(key, imports)
        if not found and iplan.is_wasi and wasi_context is not None:
            value = wasi_context.provider(key, iplan.interface)
            found = value is not None
        if not found:
            absent.append(iplan)
            continue
        provider = _as_provider(value, instances)
        if iplan.interface is not None:
            provider = _interface_provider(provider, key)
        problems = _link_interface(iplan, provider, functions, resources)
        if problems:
            mismatched.append(_describe_missing(iplan, f"{_describe_value(value)} lacks "
                                                + ", ".join(problems), only=problems))
    not_given = [_describe_missing(p, "nothing was given") for p in absent]
    if mismatched:
        raise LinkError("imports do not match what the component needs:\n"
                        + "\n".join(mismatched + not_given))
    if absent:
        message = ("the component called an import that was not supplied; missing imports:\n"
                   + "\n".join(not_given))
        for iplan in absent:
            _define_missing(iplan, message, functions, resources)
    return functions, resources


def _define_missing(iplan: b.ImportedInterfacePlan, message: str, functions: List[HostFunction],
                    resources: List[HostResource]) -> None:
    path = (iplan.key,) if iplan.interface is not None else ()

    def fail(*_: Any) -> None:
        raise LinkError(message)

    for wit_name in iplan.resources:
        resources.append(HostResource(path, wit_name, lambda owner, rep: None))
    for wit_name, fplan in iplan.functions.items():
        functions.append(HostFunction(path, wit_name, fplan, fail, f"import {iplan.key!r} function {wit_name!r}"))


def check_import_keys(plan: b.ModulePlan, imports: Mapping[str, Any]) -> None:
    """Refuse keys that name nothing the component imports (a misspelt key would
    otherwise show only when the guest calls the import), listing those it does import."""
    known = [*plan.imports, *(k for k in plan.world.imports if k not in plan.imports)]
    unknown = [k for k in imports if not _find_key(k, known)]
    if not unknown:
        return
    lines = []
    for key in unknown:
        import difflib  # only for this message: not with every import of a component

        close = difflib.get_close_matches(str(key), known, n=1) if isinstance(key, str) else []
        lines.append(f"  {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    imported = "\n".join(f"  {k}" for k in known) or "  (nothing)"
    raise LinkError(f"imports=: the component imports no {'key' if len(unknown) == 1 else 'keys'}\n"
                    + "\n".join(lines) + f"\nit imports:\n{imported}")


def _find_key(given: str, keys: Any) -> bool:
    return any(given == k or given == k.split("@", 1)[0] for k in keys)


def _describe_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _describe_missing(iplan: b.ImportedInterfacePlan, why: str, only: Optional[List[str]] = None) -> str:
    lines = [f"  {iplan.key}: {why}"]
    for fplan in iplan.functions.values():
        if only is None or _python_name(fplan.func) in only or _owner_class(fplan.func) in only:
            lines.append(f"    {wit_signature(fplan.func)}")
    return "\n".join(lines)


def _python_name(func: w.Function) -> str:
    return snake(func.item_name)


def _owner_class(func: w.Function) -> Optional[str]:
    if func.resource is None:
        return None
    target = w.unalias(func.resource)
    return pascal(target.name or "") if isinstance(target, w.TypeDef) else None


def _link_interface(iplan: b.ImportedInterfacePlan, provider: Any, functions: List[HostFunction],
                    resources: List[HostResource]) -> List[str]:
    """Add host definitions for one import; return the names the provider lacks."""
    path = (iplan.key,) if iplan.interface is not None else ()
    lacking: List[str] = []
    classes: Dict[str, Any] = {}
    for wit_name in iplan.resources:
        cls = provider if iplan.interface is None else _member(provider, pascal(wit_name))
        if cls is None:
            lacking.append(pascal(wit_name))
            continue
        classes[wit_name] = cls
        resources.append(HostResource(path, wit_name, _on_drop_hook()))
    for wit_name, fplan in iplan.functions.items():
        func = fplan.func
        target = _target(func, provider, classes, iplan.interface is None)
        if target is None:
            name = _owner_class(func) or _python_name(func)
            if name not in lacking:
                lacking.append(name)
            continue
        offered = getattr(target, "__wit__", None)  # a component's export: check its type
        if isinstance(offered, w.Function) and not same_function_shape(offered, func):
            lacking.append(f"{_python_name(func)} of the right type (it is `{wit_signature(offered)}`)")
            continue
        describe = f"import {iplan.key!r} function {func.item_name!r}"
        functions.append(HostFunction(path, wit_name, fplan, _noted(target, describe), describe))
    return lacking


def _target(func: w.Function, provider: Any, classes: Dict[str, Any], root: bool) -> Any:
    """The Python callable implementing `func`."""
    if func.kind is w.FunctionKind.FREESTANDING:
        return provider if root and callable(provider) else _member(provider, _python_name(func))
    resource = w.unalias(func.resource) if func.resource is not None else None
    cls = classes.get(resource.name or "") if isinstance(resource, w.TypeDef) else None
    if cls is None:
        return None
    if func.kind is w.FunctionKind.CONSTRUCTOR:
        return cls
    name = _python_name(func)
    if func.kind is w.FunctionKind.STATIC:
        return getattr(cls, name, None)
    if getattr(cls, name, None) is None:
        return None

    def method(obj: Any, *args: Any) -> Any:
        return getattr(obj, name)(*args)

    return method


def same_function_shape(a: w.Function, b: w.Function) -> bool:
    """Do two functions have the same type, structurally (as the component model matches
    imports to exports: names of types do not matter, names of fields and cases do)?"""
    return (len(a.params) == len(b.params)
            and all(same_shape(p.type, q.type) for p, q in zip(a.params, b.params))
            and _same_optional(a.result, b.result))


def _same_optional(a: Optional[w.Type], b: Optional[w.Type]) -> bool:
    return (a is None) == (b is None) and (a is None or same_shape(a, b))  # type: ignore[arg-type]


def same_shape(a: w.Type, b: w.Type) -> bool:
    a, b = w.unalias(a), w.unalias(b)
    if isinstance(a, w.Primitive) or isinstance(b, w.Primitive):
        return a is b
    match a.kind, b.kind:
        case w.Record(fields=fa), w.Record(fields=fb):
            return len(fa) == len(fb) and all(f.name == g.name and same_shape(f.type, g.type)
                                              for f, g in zip(fa, fb))
        case w.Variant(cases=ca), w.Variant(cases=cb):
            return len(ca) == len(cb) and all(c.name == d.name and _same_optional(c.type, d.type)
                                              for c, d in zip(ca, cb))
        case w.Enum(cases=ca), w.Enum(cases=cb):
            return [c.name for c in ca] == [c.name for c in cb]
        case w.Flags(flags=fa), w.Flags(flags=fb):
            return [f.name for f in fa] == [f.name for f in fb]
        case w.Tuple(types=ta), w.Tuple(types=tb):
            return len(ta) == len(tb) and all(map(same_shape, ta, tb))
        case (w.List(element=ea), w.List(element=eb)) | (w.Option(type=ea), w.Option(type=eb)):
            return same_shape(ea, eb)
        case w.Result(ok=oa, err=ea), w.Result(ok=ob, err=eb):
            return _same_optional(oa, ob) and _same_optional(ea, eb)
        case (w.Own(resource=ra), w.Own(resource=rb)) | (w.Borrow(resource=ra), w.Borrow(resource=rb)):
            return getattr(w.unalias(ra), "name", None) == getattr(w.unalias(rb), "name", None)
        case ka, kb:  # two different kinds (never equal), or kinds compared whole: fixed-size
            return bool(ka == kb)  # lists, maps, resources, futures, streams


def _noted(target: Callable[..., Any], describe: str) -> Callable[..., Any]:
    """`target`, adding a note naming the import to exceptions escaping it (an `Err` is a
    value the ABI lowers, not an escape)."""
    def run(*args: Any) -> Any:
        try:
            return target(*args)
        except Err:
            raise
        except BaseException as e:
            if not getattr(e, "__wasm_noted__", False):
                _add_note(e, f"raised in the host function for {describe}")
                try:
                    e.__wasm_noted__ = True  # type: ignore[attr-defined]
                except AttributeError:  # an exception type without a __dict__
                    pass
            raise

    run.__wasm_target__ = target  # type: ignore[attr-defined]
    return run


def _on_drop_hook() -> Any:
    """When the guest drops its last handle: release the object, then call its
    `__wasm_drop__()` if it has one (errors there are reported like those in `__del__`)."""
    def on_drop(owner: Any, rep: int) -> None:
        obj, lent = owner.host_table.pop_dropped(rep)
        if lent:
            return  # lent to one export call: the caller keeps it
        hook = getattr(obj, b.DROP_HOOK, None)
        if hook is not None:
            try:
                hook()
            except Exception as e:  # noqa: BLE001  (there is no caller to hand it to)
                report_unraisable(e, f"Exception ignored in {b.DROP_HOOK} of", obj)

    return on_drop


# -- typing.Protocol classes for imported interfaces (for Mock(spec=...) and type hints) ----

def imports_namespace(plan: b.ModulePlan, module_name: str) -> Any:
    """`module.imports`: a Protocol class per imported interface (PascalCase of its name),
    with the functions the component needs, for `Mock(spec=...)` and type hints."""
    import types

    ns = types.SimpleNamespace()
    for key, iplan in plan.imports.items():
        if iplan.is_wasi or iplan.interface is None:
            continue
        name = pascal(iplan.interface.name or key)
        members: Dict[str, Any] = {"__module__": f"{module_name}.imports", "__doc__": f"WIT import `{key}`."}
        for fplan in iplan.functions.values():
            if fplan.func.kind is not w.FunctionKind.FREESTANDING:
                continue
            members[_python_name(fplan.func)] = _protocol_method(fplan)
        proto = type(name, (typing.Protocol,), members)
        setattr(ns, name, proto)
    return ns


def _protocol_method(fplan: b.FunctionPlan) -> Any:
    import inspect

    def method(self: Any, *args: Any) -> Any:
        raise NotImplementedError

    method.__name__ = _python_name(fplan.func)
    method.__doc__ = fplan.doc
    method.__signature__ = fplan.signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                    *fplan.signature.parameters.values()])
    return method


def _add_note(e: BaseException, note: str) -> None:
    """`e.add_note(note)`; on Python 3.10, which has no add_note, the `__notes__` list
    that PEP 678 defines (3.11's tracebacks print it; 3.10 keeps it for inspection)."""
    if hasattr(e, "add_note"):
        e.add_note(note)
        return
    try:
        notes = e.__dict__.setdefault("__notes__", [])
        notes.append(note)
    except AttributeError:  # an exception type without a __dict__: nowhere to put it
        pass
