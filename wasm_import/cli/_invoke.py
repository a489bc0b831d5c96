"""Calling a component's export from text: `add.add(1, 2)` -> `3` (for `wasm-import call`).

    module = wasm_import.load("adder.wasm")
    invoke(module, "add.add(1, 2)", wasi=Wasi())   # -> Outcome(text="3", failed=False)

An export is named either by its Python attribute path, as a program would reach it
(`add`, `add.add`, `echo.Counter.merge` for a static function), or by its full WIT name:
`docs:adder/add@0.1.0#add` (the interface, `#`, the function; the `@version` may be left
out, and a static function is `iface#[static]counter.merge`). Root functions may also be
written in kebab-case (`test-imports`).

The arguments are WAVE (see `_wave`), read with the export's parameter types; the result
is printed as WAVE of the function's WIT result type, so a returned `result<T, E>` prints
as `ok(...)` or `err(...)`.

Imports the command line cannot provide (anything but WASI) are linked to stand-ins that
fail when called: exports that do not use them still work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from ..bindings import _plan as b
from ..wit import _model as w
from ..hook._command import call_to_end
from .._errors import LinkError
from ..types._names import snake
from .._values import Err, Ok
from .._wasi import Wasi
from ._wave import parse_call, to_wave

__all__ = ["Outcome", "invoke", "export_names", "unlinked_imports"]


@dataclass(frozen=True)
class Outcome:
    """What a call printed, and whether it returned `err(...)`."""

    text: str
    failed: bool


def export_names(plan: b.ModulePlan) -> Dict[str, b.FunctionPlan]:
    """Every name `invoke` accepts, mapped to the function it names (methods and
    constructors are left out: they need a resource object)."""
    names: Dict[str, b.FunctionPlan] = {}
    for attr, fplan in plan.root.functions.items():
        names[attr] = fplan
        names[fplan.func.name] = fplan
    for ns in plan.namespaces.values():
        wit_names = [ns.wit_name or ns.attr, (ns.wit_name or ns.attr).split("@", 1)[0]]
        for attr, fplan in ns.functions.items():
            names[f"{ns.attr}.{attr}"] = fplan
            for wit_name in wit_names:
                names[f"{wit_name}#{fplan.func.name}"] = fplan
        for cls_name, rplan in ns.resources.items():
            for attr, fplan in rplan.statics.items():
                names[f"{ns.attr}.{cls_name}.{attr}"] = fplan
                for wit_name in wit_names:
                    names[f"{wit_name}#{fplan.func.name}"] = fplan
    return names


def _params(fplan: b.FunctionPlan) -> List[w.Type]:
    return [p.type for p in fplan.func.params]


def invoke(module: Any, expression: str, *, wasi: Optional[Wasi] = None) -> Outcome:
    """Parse `expression`, call the export it names on a fresh instance of `module`, and
    return the result as WAVE text. Raises `WaveError` for a bad expression."""
    plan: b.ModulePlan = module.__wasm_plan__
    names = export_names(plan)

    def param_types(name: str) -> List[w.Type]:
        fplan = names.get(name) or names.get(snake(name))
        if fplan is None:
            shown = sorted(n for n in names if "#" not in n)
            raise LookupError(f"the component has no export {name!r} (it has: {', '.join(shown) or 'none'})")
        return _params(fplan)

    call = parse_call(expression, param_types)
    fplan = names.get(call.name) or names[snake(call.name)]
    instance = module.instantiate(imports=unlinked_imports(plan), wasi=wasi)
    try:
        value = call_to_end(instance.caller(fplan), *call.args)  # an async export runs to its end
        if fplan.returns_result:
            value = Ok(value)
    except Err as e:
        if not fplan.returns_result:
            raise
        value = Err(e.value)
    if fplan.func.result is None:
        return Outcome("", False)
    return Outcome(to_wave(value, fplan.func.result), isinstance(value, Err))


class _Unlinked:
    """Stands in for an import nobody provided: every member, called, raises LinkError."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, member: str) -> "_Unlinked":
        if member.startswith("__"):
            raise AttributeError(member)
        return _Unlinked(f"{self._name}.{member}")

    def __call__(self, *args: Any) -> Any:
        raise LinkError(f"the component called import {self._name}, which the command line "
                        "does not provide (only WASI is available)")


def unlinked_imports(plan: b.ModulePlan) -> Mapping[str, Any]:
    """Stand-ins for all the non-WASI imports of `plan`."""
    return {key: _Unlinked(key) for key, iplan in plan.imports.items() if not iplan.is_wasi}
