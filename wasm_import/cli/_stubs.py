"""`.pyi` stubs of component modules, so editors and type checkers know `import foo`.

    text = stub_text(build_plan(decode(wasm), "foo"), source="foo.wasm")

The stub is written from the same `ModulePlan` the runtime module is built from
(`bindings._plan.build_plan`), so the two cannot drift: every name the plan gives the module
appears in the stub with the same parameters, and the WIT docs and `WIT:`/`Raises:` lines
of the plan are the docstrings. Data flows one way: WIT model -> plan -> stub text.

The shape of a stub, for a world with root functions and an exported interface `echo`:

    def add(a: int, b: int) -> int: ...         # root functions
    class echo:                                 # an exported interface: a class used as a
        @_dc.dataclass                          #   namespace; its types are nested classes
        class PersonInfo: ...                   #   (records, variant cases, enums, flags,
        Shape: _TypeAlias = _t.Union[...]       #   resources) and its functions static
        @staticmethod
        def echo_record(x: _ns_echo.PersonInfo) -> _ns_echo.PersonInfo: ...
    _ns_echo = echo
    class imports:                              # `module.imports`: a Protocol per imported
        class Logger(_t.Protocol): ...          #   interface
    def instantiate(imports: _Imports | None = None, *, wasi: Wasi | None = None,
                    limits: Limits | None = None, cancel: ... = None) -> _Instance

Names inside the stub are always qualified from the module, through a private alias of
each namespace (`_ns_echo.PersonInfo`), which stubs allow anywhere because they are never
executed; type checkers show them by their real names (`echo.PersonInfo`). Standard modules are imported
under `_`-prefixed names, so no WIT name can shadow them. Types that the runtime module
does not expose (those only imported interfaces use) live in a private class `_hidden`.
Output is deterministic (the plan keeps WIT declaration order) and valid for 3.10+.
"""

from __future__ import annotations

import inspect
import os
from typing import Dict, Iterator, List, Optional, Tuple

from ..bindings import _plan as b
from ..wit import _model as w
from ..bindings._component import ComponentInstance, ComponentModule
from ..types._names import pascal, shouty, snake, variant_case_class
from ..types._pytypes import array_code, has_class, is_option

__all__ = ["stub_text", "stub_for_file", "TypeNamer", "python_signature", "namespaces", "class_types"]

HEADER = """\
# Stub of the WebAssembly component {source}, written by `python -m wasm_import stubs`.
# Do not edit: regenerate it (`--check` tells when it is stale).
"""

IMPORTS = """\
import array as _array
import dataclasses as _dc
import enum as _enum
import types as _types
import typing as _t

import typing_extensions as _te

import wasm_import as _w
from wasm_import.bindings._component import ComponentInstance as _ComponentInstance
"""

_PRIMITIVES = {
    w.Primitive.BOOL: "bool", w.Primitive.CHAR: "str", w.Primitive.STRING: "str",
    w.Primitive.F32: "float", w.Primitive.F64: "float", w.Primitive.ERROR_CONTEXT: "{t}Any",
    **{p: "int" for p in (w.Primitive.U8, w.Primitive.U16, w.Primitive.U32, w.Primitive.U64,
                          w.Primitive.S8, w.Primitive.S16, w.Primitive.S32, w.Primitive.S64)},
}


# -- naming types ---------------------------------------------------------------------------------

class TypeNamer:
    """Python annotations, as text, for the WIT types of one module.

    A record, variant, enum or flags type is named where the runtime module exposes its
    class (`echo.PersonInfo`, or `PersonInfo` for a world-level type); one it does not
    expose gets a name in the private `_hidden` namespace. A resource the guest defines is
    its class; one the host defines is whatever Python object the host uses (`Any`).

    For a stub, names are spelled as the stub spells them (`_t.List[int]`,
    `_ns_echo.PersonInfo`); with `readable=True` as people write them (`List[int]`,
    `echo.PersonInfo`), for `wasm-import inspect`.
    """

    _param = False  # annotating a parameter (stream/future take more kinds of values in)
    _giving = False  # annotating what a call gives Python (an export's result, an import's arguments)

    def __init__(self, plan: b.ModulePlan, readable: bool = False) -> None:
        self.plan = plan
        self.readable = readable
        self.t, self.v = ("", "") if readable else ("_t.", "_w.")
        self.homes: Dict[w.TypeDef, str] = {}
        self.resources: Dict[w.TypeDef, str] = {}
        self.private: Dict[w.TypeDef, str] = {}  # types given a home in `_hidden`, in order
        for ns, iface in namespaces(plan):
            prefix = f"{ns.attr}." if readable and ns.wit_name is not None else ns_ref(ns)
            for td in class_types(iface, plan, ns):
                target = w.unalias(td)
                assert isinstance(target, w.TypeDef) and td.name is not None
                if isinstance(td.kind, w.Alias):  # `use`d or aliased: a home only if none is defined
                    self.homes.setdefault(target, prefix + pascal(td.name))
                else:  # where the type is defined is its home
                    self.homes[target] = prefix + pascal(td.name)
            for class_name, rplan in ns.resources.items():
                self.resources.setdefault(rplan.typedef, prefix + class_name)

    def home(self, td: w.TypeDef) -> str:
        """The qualified name of the class (or variant union) of `td`, an unaliased type."""
        found = self.homes.get(td) or self.private.get(td)
        if found is None:
            taken = set(self.private.values())
            hidden = "" if self.readable else "_hidden."
            name = base = f"{hidden}{pascal(td.name or type(td.kind).__name__)}"
            counter = 2
            while name in taken:
                name, counter = f"{base}{counter}", counter + 1
            found = self.private[td] = name
        return found

    def annotation(self, ty: Optional[w.Type], scope: Optional[w.InterfaceRef] = None,
                   imported: bool = False) -> str:
        """The annotation of a value of `ty`, seen from a function in `scope`."""
        t, v = self.t, self.v
        if ty is None:
            return "None"
        ty = w.unalias(ty)
        if isinstance(ty, w.Primitive):
            return _PRIMITIVES[ty].format(t=t)
        match ty.kind:
            case w.Record() | w.Variant() | w.Enum() | w.Flags():
                return self.home(ty)
            case w.List(element=element):
                if w.unalias(element) is w.Primitive.U8:
                    return "bytes"
                if array_code(element) is not None:  # an array comes out; any sequence goes in
                    number = self.annotation(element, scope, imported)
                    array_type = "array.array" if self.readable else "_array.array"
                    return f"{array_type}[{number}]" if self._giving else f"{t}Sequence[{number}]"
                item = self.annotation(element, scope, imported)
                if self._param and not self._giving and w.unalias(element) not in (w.Primitive.STRING,
                                                                                    w.Primitive.CHAR):
                    # lists and tuples go in: covariant, so a list of arrays fits list<list<u32>>
                    # (but List[str], which a bare str does not fit, though it is a Sequence[str])
                    return f"{t}Sequence[{item}]"
                return f"{t}List[{item}]"
            case w.FixedList(element=element):
                return f"{t}List[{self.annotation(element, scope, imported)}]"
            case w.Map(key=key_type, value=value_type):
                key, value = (self.annotation(x, scope, imported) for x in (key_type, value_type))
                return f"{t}Dict[{key}, {value}]"
            case w.Tuple(types=types):
                items = ", ".join(self.annotation(x, scope, imported) for x in types) or "()"
                return f"{t}Tuple[{items}]"
            case w.Option(type=payload):
                inner = self.annotation(payload, scope, imported)
                return f"{t}Optional[{v}Some[{inner}]]" if is_option(payload) else f"{t}Optional[{inner}]"
            case w.Result(ok=ok_type, err=err_type):
                ok, err = (self.annotation(x, scope, imported) for x in (ok_type, err_type))
                return f"{t}Union[{v}Ok[{ok}], {v}Err[{err}]]"
            case w.Own(resource=resource) | w.Borrow(resource=resource):
                target = w.unalias(resource)
                assert isinstance(target, w.TypeDef)
                guest = not imported and not b._resource_is_imported(self.plan.world, target, scope, imported)
                if guest and target in self.resources:
                    return self.resources[target]
                return f"{t}Any"
            case w.Stream() | w.Future() as kind:
                return self.async_value(kind)
            case w.Resource() | w.Alias():
                return f"{t}Any"
        raise AssertionError(f"unknown WIT type kind {ty.kind!r}")

    def async_value(self, kind: "w.Stream | w.Future") -> str:
        """stream<T>: a StreamReader[T] back (chunks of bytes for stream<u8>); anything a
        stream can be made from going in. future<T>: a FutureReader[T] back; a Future[T]
        or an awaitable going in."""
        t = self.t
        elem = kind.type
        if isinstance(kind, w.Stream):
            item = "bytes" if elem is not None and w.unalias(elem) is w.Primitive.U8 else self.annotation(elem)
            if self._param:
                return (f"{t}Union[_w.Stream[{item}], _w.StreamReader[{item}], {t}Iterable[{item}], "
                        f"{t}AsyncIterable[{item}]]")
            return f"_w.StreamReader[{item}]"
        item = self.annotation(elem)
        if self._param:
            return f"{t}Union[_w.Future[{item}], _w.FutureReader[{item}], {t}Awaitable[{item}]]"
        return f"_w.FutureReader[{item}]"

    def returns(self, fplan: b.FunctionPlan, scope: Optional[w.InterfaceRef], imported: bool) -> str:
        """What calling the function returns: the `ok` type of a returned `result`."""
        result = fplan.func.result
        self._giving = not imported
        try:
            if fplan.returns_result:
                target = w.unalias(result) if result is not None else None
                assert isinstance(target, w.TypeDef) and isinstance(target.kind, w.Result)
                return self.annotation(target.kind.ok, scope, imported)
            return self.annotation(result, scope, imported)
        finally:
            self._giving = False

    def parameters(self, fplan: b.FunctionPlan, scope: Optional[w.InterfaceRef], imported: bool) -> List[str]:
        params = list(zip(fplan.param_names, fplan.func.params))
        if fplan.func.kind is w.FunctionKind.METHOD:
            params = params[1:]
        self._param, self._giving = True, imported
        try:
            return [f"{name}: {self.annotation(p.type, scope, imported)}" for name, p in params]
        finally:
            self._param = self._giving = False


def python_signature(namer: TypeNamer, fplan: b.FunctionPlan, scope: Optional[w.InterfaceRef] = None,
                     imported: bool = False, first: Optional[str] = None) -> str:
    """`(a: int, b: int) -> int`: the Python signature of a planned function."""
    params = ([first] if first else []) + namer.parameters(fplan, scope, imported)
    result = "None" if fplan.func.kind is w.FunctionKind.CONSTRUCTOR else namer.returns(fplan, scope, imported)
    if imported and fplan.func.is_async:  # the host implements it with an async def, or plainly
        result = f"_t.Union[{result}, _t.Awaitable[{result}]]"
    return f"({', '.join(params)}) -> {result}"


def ns_ref(ns: b.NamespacePlan) -> str:
    """The prefix that names members of a namespace inside the stub: `_ns_echo.` for the
    exported interface `echo` (a private alias of the class `echo`: inside `class echo`,
    a member named `echo` would shadow the class itself), empty for the root."""
    return f"_ns_{ns.attr}." if ns.wit_name is not None else ""


def namespaces(plan: b.ModulePlan) -> Iterator[Tuple[b.NamespacePlan, Optional[w.Interface]]]:
    """The root and every exported interface, with the WIT interface behind each."""
    yield plan.root, None
    for ns in plan.namespaces.values():
        iface = plan.world.exports.get(ns.wit_name or "")
        yield ns, iface if isinstance(iface, w.Interface) else None


def class_types(iface: Optional[w.Interface], plan: b.ModulePlan, ns: b.NamespacePlan) -> List[w.TypeDef]:
    """The named types with a class that the runtime puts in this namespace (as
    `bindings._plan` does: an interface's types; for the root, the world-level ones)."""
    if iface is not None:
        candidates = list(iface.types.values())
    elif ns is plan.root:
        candidates = [item for item in plan.world.imports.values() if isinstance(item, w.TypeDef)]
    else:
        candidates = []
    found = []
    for td in candidates:
        target = w.unalias(td)
        if td.name is not None and isinstance(target, w.TypeDef) and has_class(target):
            found.append(td)
    return found


# -- writing the stub -----------------------------------------------------------------------------

class _Writer:
    """Lines of Python, indented."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("    " * self.depth + text) if text else "")

    def docstring(self, text: Optional[str]) -> bool:
        """Write `text` as a docstring; False when there is none."""
        if not text or not text.strip():
            return False
        body = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        if body.endswith('"'):
            body += " "
        pad = "    " * self.depth
        lines = body.split("\n")
        self.lines.append(f'{pad}"""{lines[0]}')
        self.lines.extend(f"{pad}{line}" if line.strip() else "" for line in lines[1:])
        self.lines[-1] += '"""'
        return True

    def body(self, doc: Optional[str]) -> None:
        """A docstring, or `...` when there is none, as the whole body of a def/class."""
        self.depth += 1
        if not self.docstring(doc):
            self.line("...")
        self.depth -= 1


class _StubBuilder:
    def __init__(self, plan: b.ModulePlan) -> None:
        self.plan = plan
        self.namer = TypeNamer(plan)
        self.out = _Writer()

    # ---- types
    def type_definitions(self, ns: b.NamespacePlan, iface: Optional[w.Interface], prefix: str) -> None:
        for td in class_types(iface, self.plan, ns):
            target = w.unalias(td)
            assert isinstance(target, w.TypeDef) and td.name is not None
            name = pascal(td.name)
            home = self.namer.home(target)
            if home != prefix + name:  # defined elsewhere: the runtime shares the class
                self.alias(td, name, target, home)
            else:
                self.definition(target, name, prefix)

    def alias(self, td: w.TypeDef, name: str, target: w.TypeDef, home: str) -> None:
        out = self.out
        out.line(f"{name}: _te.TypeAlias = {home}")
        if isinstance(target.kind, w.Variant):  # the case classes come along
            home_prefix = home.rsplit(".", 1)[0] + "." if "." in home else ""
            for case in target.kind.cases:
                case_name = variant_case_class(target.name or "variant", case.name)
                out.line(f"{case_name}: _te.TypeAlias = {home_prefix}{case_name}")

    def definition(self, td: w.TypeDef, name: str, prefix: str) -> None:
        out = self.out
        match td.kind:
            case w.Record(fields=fields):
                out.line("@_dc.dataclass")
                out.line(f"class {name}:")
                out.depth += 1
                out.docstring(_doc(td.docs, f"WIT record `{td.name}`."))
                for field in fields:
                    out.line(f"{snake(field.name)}: {self.namer.annotation(field.type)}")
                    out.docstring(field.docs.contents)
                out.depth -= 1
            case w.Variant(cases=variant_cases):
                cases = []
                for case in variant_cases:
                    case_name = variant_case_class(td.name or "variant", case.name)
                    cases.append(prefix + case_name)
                    out.line("@_dc.dataclass")
                    out.line(f"class {case_name}:")
                    out.depth += 1
                    out.docstring(_doc(case.docs, f"Case `{case.name}` of WIT variant `{td.name}`."))
                    if case.type is not None:
                        out.line(f"value: {self.namer.annotation(case.type)}")
                    out.depth -= 1
                union = f"_t.Union[{', '.join(cases)}]" if len(cases) > 1 else cases[0]
                out.line(f"{name}: _te.TypeAlias = {union}")
                out.docstring(td.docs.contents)
            case w.Enum(cases=enum_cases):
                self.members(td, name, "enum", [(c.name, c.docs) for c in enum_cases])
            case w.Flags(flags=flags):
                self.members(td, name, "flags", [(f.name, f.docs) for f in flags])
            case _:
                pass  # only the kinds with classes (has_class) are defined here

    def members(self, td: w.TypeDef, name: str, word: str, members: List[Tuple[str, w.Docs]]) -> None:
        """An enum (members 0, 1, 2...) or flags (1, 2, 4...) class."""
        out, is_enum = self.out, word == "enum"
        out.line(f"class {name}({'_enum.Enum' if is_enum else '_enum.Flag'}):")
        out.depth += 1
        out.docstring(_doc(td.docs, f"WIT {word} `{td.name}`."))
        for i, (member, docs) in enumerate(members):
            out.line(f"{shouty(member)} = {i if is_enum else 1 << i}")
            out.docstring(docs.contents)
        out.depth -= 1

    # ---- functions and resources
    def function(self, fplan: b.FunctionPlan, name: str, scope: Optional[w.InterfaceRef],
                 decorator: Optional[str] = None, first: Optional[str] = None, imported: bool = False) -> None:
        if decorator:
            self.out.line(decorator)
        signature = python_signature(self.namer, fplan, scope, imported, first)
        is_async = fplan.func.is_async and not imported  # an import may be a plain function too
        self.out.line(f"{'async ' if is_async else ''}def {name}{signature}:")
        self.out.body(fplan.doc)

    def resource(self, rplan: b.ResourcePlan, scope: Optional[w.InterfaceRef]) -> None:
        out = self.out
        out.line(f"class {rplan.class_name}:")
        out.depth += 1
        docs = rplan.typedef.docs.contents
        text = f"WIT resource `{rplan.typedef.name}`."
        if rplan.constructor is None:
            text += " It has no constructor: objects come from the component."
        out.docstring(f"{docs.strip()}\n\n{text}" if docs else text)
        if rplan.constructor is not None:
            self.function(rplan.constructor, "__init__", scope, first="self")
        for name, mplan in rplan.methods.items():
            self.function(mplan, name, scope, first="self")
        for name, splan in rplan.statics.items():
            self.function(splan, name, scope, decorator="@classmethod", first="cls")
        out.line("def drop(self) -> None:")
        out.body("Drop the handle now (runs the guest destructor). Idempotent.")
        out.line("def __enter__(self) -> _te.Self: ...")
        out.line("def __exit__(self, *exc: object) -> None: ...")
        out.depth -= 1

    # ---- the module
    def root(self) -> None:
        plan, out = self.plan, self.out
        self.type_definitions(plan.root, None, "")
        for rplan in plan.root.resources.values():
            self.resource(rplan, None)
        for name, fplan in plan.root.functions.items():
            self.function(fplan, _safe(name), None)

    def interface(self, ns: b.NamespacePlan, iface: Optional[w.Interface]) -> None:
        out = self.out
        scope = iface.ref if iface is not None else None
        out.line(f"class {ns.attr}:")
        out.depth += 1
        doc = f"{ns.docs.strip()}\n\n" if ns.docs.strip() else ""
        out.docstring(f"{doc}The exported interface `{ns.wit_name}`.")
        self.type_definitions(ns, iface, ns_ref(ns))
        for rplan in ns.resources.values():
            self.resource(rplan, scope)
        for name, rplan in ns.resource_aliases.items():  # a `use`d guest resource: the same class
            out.line(f"{name} = {self.namer.resources[rplan.typedef]}")
        for name, fplan in ns.functions.items():
            self.function(fplan, name, scope, decorator="@staticmethod")
        out.depth -= 1
        out.line(f"{ns_ref(ns)[:-1]} = {ns.attr}  # the name used inside this stub (never shadowed)")

    def callable(self, fplan: b.FunctionPlan, imported: bool) -> str:
        """`_t.Callable[[int, int], int]`: a root-level function as a value."""
        params = ", ".join(self.namer.annotation(p.type, None, imported) for p in fplan.func.params)
        return f"_t.Callable[[{params}], {self.namer.returns(fplan, None, imported)}]"

    def imports_namespace(self) -> Dict[str, str]:
        """`class imports`, one Protocol per imported interface (as `_linking` makes them);
        returns the annotation of each import key's value for the `_Imports` TypedDict."""
        out = self.out
        protocols: Dict[str, b.ImportedInterfacePlan] = {}
        for key, iplan in self.plan.imports.items():
            if not iplan.is_wasi and iplan.interface is not None:
                protocols[pascal(iplan.interface.name or key)] = iplan  # a later one wins, as at run time
        out.line("class imports:")
        out.depth += 1
        out.docstring("A Protocol per imported interface, with the functions the component needs.")
        for name, iplan in protocols.items():
            assert iplan.interface is not None
            out.line(f"class {name}(_t.Protocol):")
            out.depth += 1
            out.docstring(f"WIT import `{iplan.key}`.")
            for fplan in iplan.functions.values():
                if fplan.func.kind is w.FunctionKind.FREESTANDING:
                    self.function(fplan, snake(fplan.func.item_name), iplan.interface.ref,
                                  first="self", imported=True)
            out.depth -= 1
        out.depth -= 1
        provider = "_t.Union[{}, _t.Mapping[str, _t.Any], _types.SimpleNamespace, _types.ModuleType, " \
                   "_ComponentInstance]"
        values: Dict[str, str] = {}
        for key, iplan in self.plan.imports.items():
            if iplan.is_wasi:
                continue
            if iplan.interface is not None:
                name = pascal(iplan.interface.name or key)
                proto = f"imports.{name}" if protocols.get(name) is iplan else "_t.Any"
                values[key] = provider.format(proto)
            elif iplan.functions:
                values[key] = self.callable(next(iter(iplan.functions.values())), imported=True)
            else:
                values[key] = "type"
        bases = [k.split("@", 1)[0] for k in values]
        for key in list(values):  # `@version` may be left out when that is unambiguous
            base = key.split("@", 1)[0]
            if base != key and bases.count(base) == 1:
                values[base] = values[key]
        return values

    def module_api(self, import_values: Dict[str, str]) -> None:
        plan, out = self.plan, self.out
        out.line(_typed_dict("_Imports", import_values, total=False))
        exports: Dict[str, str] = {}
        for fplan in plan.root.functions.values():
            exports[fplan.func.name] = self.callable(fplan, imported=False)
        for ns in plan.namespaces.values():
            exports[ns.wit_name or ns.attr] = f"_t.Type[{ns_ref(ns)[:-1]}]"
        out.line(_typed_dict("_Exports", exports, total=True))
        out.line()
        out.line("class _Instance:")
        out.depth += 1
        out.docstring("An independent instance of the component, with its own store "
                      "(from `instantiate()`).")
        for name, fplan in plan.root.functions.items():
            self.function(fplan, name, None, first="self")
        for ns in plan.namespaces.values():
            out.line(f"{ns.attr}: _t.Type[{ns_ref(ns)[:-1]}]")
        out.line("exports: _Exports")
        out.line("module: _types.ModuleType")
        for name in ("stdout", "stderr"):
            out.line("@property")
            out.line(f"def {name}(self) -> bytes: ...")
        for name in ("poisoned", "closed"):
            out.line("@property")
            out.line(f"def {name}(self) -> bool: ...")
        out.line("def close(self) -> None:")
        out.body(inspect.getdoc(ComponentInstance.close))
        out.line("def __enter__(self) -> _Instance: ...")
        out.line("def __exit__(self, *exc: _t.Any) -> None: ...")
        out.depth -= 1
        out.line()
        out.line("def instantiate(imports: _t.Optional[_Imports] = None, *, "
                 "wasi: _t.Optional[_w.Wasi] = None, limits: _t.Optional[_w.Limits] = None, "
                 "cancel: _t.Optional[_t.Literal['detach', 'deliver']] = None) -> _Instance:")
        out.body(inspect.getdoc(ComponentModule.instantiate))
        out.line("def link(imports: _t.Optional[_Imports] = None, *, wasi: _t.Optional[_w.Wasi] = None, "
                 "limits: _t.Optional[_w.Limits] = None, "
                 "cancel: _t.Optional[_t.Literal['detach', 'deliver']] = None) -> None:")
        out.body(inspect.getdoc(ComponentModule.link))
        out.line("exports: _Exports")
        out.line("wit: _w.wit.World")

    def private_types(self) -> None:
        """`class _hidden`: the types no runtime namespace exposes (only imports use them).
        Defining one may name more, so this runs until no new one appears."""
        out = self.out
        done: set = set()  # type: ignore[type-arg]
        first = True
        while len(done) < len(self.namer.private):
            if first:
                out.line("class _hidden:")
                out.depth += 1
                out.docstring("Types only imported interfaces use: the runtime module does not expose them.")
                first = False
            for td, home in list(self.namer.private.items()):
                if td not in done:
                    done.add(td)
                    self.definition(td, home.split(".", 1)[-1], "_hidden.")
        if not first:
            out.depth -= 1

    def build(self, source: str) -> str:
        out = self.out
        world_doc = self.plan.world.docs.contents
        out.docstring(world_doc or f"The WebAssembly component {source} (world `{self.plan.world.name}`).")
        out.lines.extend(HEADER.format(source=source).rstrip("\n").split("\n"))
        out.line()
        out.lines.extend(IMPORTS.rstrip("\n").split("\n"))
        out.line()
        self.root()
        for ns, iface in list(namespaces(self.plan))[1:]:
            out.line()
            self.interface(ns, iface)
        out.line()
        import_values = self.imports_namespace()
        out.line()
        self.module_api(import_values)
        if self.namer.private:
            out.line()
            self.private_types()
        return "\n".join(out.lines) + "\n"


def _doc(docs: w.Docs, fallback: str) -> str:
    return docs.contents.strip() if docs.contents else fallback


def _safe(name: str) -> str:
    """A root function's module attribute (the module's own names win, as at run time)."""
    return name + "_" if name in b.RESERVED_MODULE_NAMES else name


def _typed_dict(name: str, fields: Dict[str, str], total: bool) -> str:
    if not fields:
        return f"class {name}(_t.TypedDict, total={total}): ..."
    entries = "".join(f"\n    {key!r}: {value}," for key, value in fields.items())
    return f"{name} = _t.TypedDict({name!r}, {{{entries}\n}}, total={total})"


def stub_text(plan: b.ModulePlan, source: str) -> str:
    """The `.pyi` text of the component module that `plan` describes.

    `source` names the component in the header (a file name: no directories, so the text
    does not depend on where the component lives)."""
    return _StubBuilder(plan).build(source)


def stub_for_file(path: "os.PathLike[str] | str") -> Tuple[str, str]:
    """`(module name, stub text)` for a component file, named as `import` names it
    (`my-comp.wasm` -> `my_comp`). Raises DecodeError for a file that is not a component."""
    from ..hook._finder import import_name
    from ..wit._decode import decode

    file_name = os.path.basename(os.fspath(path))
    name = import_name(file_name) or file_name.rsplit(".", 1)[0]
    with open(path, "rb") as f:
        world = decode(f.read())
    return name, stub_text(b.build_plan(world, name), source=file_name)
