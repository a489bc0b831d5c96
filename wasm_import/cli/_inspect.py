"""A human summary of a component, for `wasm-import inspect FILE`.

    adder.wasm: a component (world `root`)

    Imports: none: it cannot reach anything outside itself.

    Exports (as Python calls them):
      add.add(x: int, y: int) -> int
          docs:adder/add@0.1.0#add: func(x: u32, y: u32) -> u32

Imports are grouped by the capability they would grant (filesystem, network, clocks,
random, env, stdio, or custom interfaces that the host must implement); exports are
shown with their Python signatures, from the same plan the runtime module is built from.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from ..bindings import _plan as b
from ..wit import _model as w
from ..types._pytypes import wit_signature
from ..types._names import pascal
from ._stubs import TypeNamer, class_types, namespaces, python_signature

__all__ = ["summary", "capability"]

# (capability, interface-name prefixes, what the command line grants of it)
CAPABILITIES: List[Tuple[str, Tuple[str, ...], str]] = [
    ("filesystem", ("wasi:filesystem/",), "nothing unless you pass --dir HOST[::GUEST]"),
    ("network", ("wasi:sockets/", "wasi:http/"), "nothing unless granted in Python (this tool grants none)"),
    ("clocks", ("wasi:clocks/",), "always available"),
    ("random", ("wasi:random/",), "always available"),
    ("env", ("wasi:cli/environment", "wasi:cli/exit"), "no variables unless you pass --env NAME=VALUE"),
    ("stdio", ("wasi:cli/std", "wasi:cli/terminal", "wasi:io/"), "this process's stdin, stdout and stderr"),
]


# The grant that opens a network import, shown beside it (interface, what opens it).
NETWORK_GRANTS: List[Tuple[str, str]] = [
    ("wasi:sockets/tcp", "Wasi(network=[Net(host, port, 'tcp')]): connects there (bind=True: listens)"),
    ("wasi:sockets/udp", "Wasi(network=[Net(host, port, 'udp')]): datagrams there (bind=True: receives)"),
    ("wasi:sockets/ip-name-lookup", "Wasi(network=[Net('name', ...)]): looks up that name"),
    ("wasi:http/outgoing-handler", "Wasi(http=['host:port']): requests to that host"),
]


def _opened_by(import_name: str) -> str:
    base = import_name.split("@", 1)[0]
    for name, grant in NETWORK_GRANTS:
        if base == name:
            return f"  <- {grant}"
    return ""


def capability(import_name: str) -> str:
    """The capability an import would grant: one of CAPABILITIES, `other WASI`, or `custom`."""
    for name, prefixes, _ in CAPABILITIES:
        if import_name.startswith(prefixes):
            return name
    return "other WASI" if import_name.startswith("wasi:") else "custom"


def _imports(plan: b.ModulePlan) -> List[str]:
    groups: Dict[str, List[str]] = {}
    for key in plan.world.imports:
        if isinstance(plan.world.imports[key], w.TypeDef) and key not in plan.imports:
            continue  # a world-level type that is not a resource: nothing to provide
        groups.setdefault(capability(key), []).append(key)
    if not groups:
        return ["Imports: none: it cannot reach anything outside itself."]
    lines = ["Imports, by the capability they would grant:"]
    order = [name for name, _, _ in CAPABILITIES] + ["other WASI", "custom"]
    notes = {name: note for name, _, note in CAPABILITIES}
    notes["custom"] = "the host must implement these (wasm-import call links them to stand-ins that fail)"
    for group in order:
        if group not in groups:
            continue
        lines.append(f"  {group}: {notes.get(group, 'not provided by wasm-import (linked to stand-ins that fail)')}")
        for key in groups[group]:
            lines.append(f"    {key}{_opened_by(key)}")
            if group == "custom":
                lines.extend(f"      {line}" for line in _custom_import(plan, key))
    return lines


def _custom_import(plan: b.ModulePlan, key: str) -> List[str]:
    iplan = plan.imports.get(key)
    if iplan is None:
        return []
    lines = [f"resource {name}" for name in iplan.resources if iplan.interface is not None]
    for fplan in iplan.functions.values():
        if iplan.interface is None:
            lines.append(wit_signature(fplan.func))
        else:
            owner = f"{fplan.func.resource.name}." if fplan.func.resource is not None else ""
            lines.append(owner + wit_signature(fplan.func))
    return lines


def _exports(plan: b.ModulePlan) -> List[str]:
    namer = TypeNamer(plan, readable=True)
    lines = ["Exports (as Python calls them):"]
    for ns, iface in namespaces(plan):
        scope = iface.ref if iface is not None else None
        prefix = f"{ns.attr}." if ns.wit_name is not None else ""
        wit_prefix = f"{ns.wit_name}#" if ns.wit_name is not None else ""
        for name, fplan in ns.functions.items():
            lines.extend(_function(namer, fplan, scope, prefix + name, wit_prefix))
        for class_name, rplan in ns.resources.items():
            qualified = prefix + class_name
            lines.append(f"  class {qualified}  (resource {rplan.typedef.name})")
            if rplan.constructor is not None:
                lines.extend(_function(namer, rplan.constructor, scope, qualified, wit_prefix, "    "))
            for name, fplan in rplan.statics.items():
                lines.extend(_function(namer, fplan, scope, f"{qualified}.{name}", wit_prefix, "    "))
            for name, fplan in rplan.methods.items():
                lines.extend(_function(namer, fplan, scope, f"<{class_name}>.{name}", wit_prefix, "    "))
        kinds = [f"{prefix}{pascal(td.name or '')} ({type(w.unalias(td).kind).__name__.lower()})"  # type: ignore[union-attr]
                 for td in class_types(iface, plan, ns)]
        if kinds:
            lines.append(f"  types: {', '.join(kinds)}")
    if len(lines) == 1:
        lines = ["Exports: none."]
    return lines


def _function(namer: TypeNamer, fplan: b.FunctionPlan, scope: object, shown: str, wit_prefix: str,
              indent: str = "  ") -> List[str]:
    signature = python_signature(namer, fplan, scope)  # type: ignore[arg-type]
    if fplan.func.kind is w.FunctionKind.CONSTRUCTOR:
        signature = signature.rsplit(" -> ", 1)[0]
    if fplan.returns_result:
        result = w.unalias(fplan.func.result) if fplan.func.result is not None else None
        if isinstance(result, w.TypeDef) and isinstance(result.kind, w.Result):
            signature += f", raises Err[{namer.annotation(result.kind.err, scope)}]"  # type: ignore[arg-type]
    wit = wit_signature(fplan.func)
    if fplan.func.kind is not w.FunctionKind.FREESTANDING:  # `[static]counter.merge: static func(...)`
        item = f"{fplan.func.item_name}: "
        wit = f"{fplan.func.name}: {wit[len(item):] if wit.startswith(item) else wit}"
    return [f"{indent}{shown}{signature}", f"{indent}    {wit_prefix}{wit}"]


def summary(plan: b.ModulePlan, file_name: str) -> str:
    """The text `wasm-import inspect` prints for the component `plan` describes."""
    world = plan.world
    lines = [f"{file_name}: a component (world `{world.name}`)"]
    if world.docs.contents:
        lines.append(world.docs.contents.strip())
    lines.append("")
    lines.extend(_imports(plan))
    lines.append("")
    lines.extend(_exports(plan))
    return "\n".join(lines) + "\n"
