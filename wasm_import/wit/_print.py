"""Print a decoded `World` as WIT text, the way `wasm-tools component wit` does.

The layout follows wit-component's printer (`printing.rs`) so the two outputs can be
compared line by line:

* first the component's own package, `package root:component;`, and its world: imported
  interfaces, then world-level types (resources with their functions, `use`s), then
  imported functions, then, after a blank line, every export;
* then each foreign package the world refers to, `package ns:name@version { ... }`,
  dependencies before dependents, its interfaces in the order they were first seen;
* inside an interface: `use` statements, type definitions, then freestanding functions,
  one blank line between items; resource functions print inside their resource.

Names that are WIT keywords are escaped with `%`; docs print as `///` lines.
"""

from __future__ import annotations

import typing as t

from . import _model as m

__all__ = ["to_wit"]

KEYWORDS = frozenset("""
    use type func u8 u16 u32 u64 s8 s16 s32 s64 f32 f64 float32 float64 char resource
    record flags variant enum bool string option result future stream list own borrow _
    as from static interface tuple world import export package with include constructor
    error-context async map
""".split())


def to_wit(world: m.World) -> str:
    """The WIT text of `world` and of every foreign package it uses."""
    printer = _Printer()
    printer.world_package(world)
    for i, (package, interfaces) in enumerate(_foreign_packages(world)):
        if i > 0:
            printer.out.blank()
            printer.out.blank()
        printer.foreign_package(package, interfaces)
    return printer.out.text()


def escape(name: str) -> str:
    return f"%{name}" if name in KEYWORDS else name


# -- output with indentation -----------------------------------------------------------------

class _Output:
    def __init__(self) -> None:
        self.lines: t.List[str] = []
        self.indent = 0

    def line(self, text: str) -> None:
        self.lines.append("  " * self.indent + text)

    def blank(self) -> None:
        self.lines.append("")

    def open(self, text: str) -> None:
        self.line(text + " {")
        self.indent += 1

    def close(self) -> None:
        self.indent -= 1
        self.line("}")

    def docs(self, docs: m.Docs) -> None:
        if docs.contents is not None:
            for text in _lines(docs.contents):
                self.line(f"/// {text}" if text else "///")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _lines(text: str) -> t.List[str]:
    """Lines as Rust's `str::lines` splits them (only at \\n or \\r\\n; no final empty line)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# -- packages ----------------------------------------------------------------------------------

def _interface_of(item: m.WorldItem) -> t.Optional[m.Interface]:
    return item if isinstance(item, m.Interface) and item.package is not None else None


def _foreign_packages(world: m.World
                      ) -> t.List[t.Tuple[m.PackageName, t.List[m.Interface]]]:
    """The packages of the named interfaces the world uses, each after the packages it
    depends on (the order wit-parser's decoder settles on)."""
    packages: t.Dict[m.PackageName, t.Dict[str, m.Interface]] = {}
    for item in (*world.imports.values(), *world.exports.values()):
        interface = _interface_of(item)
        if interface is not None:
            assert interface.package is not None and interface.name is not None
            packages.setdefault(interface.package, {}).setdefault(interface.name, interface)
    deps = {package: [dep for interface in interfaces.values()
                      for dep in _interface_deps(interface) if dep in packages]
            for package, interfaces in packages.items()}
    return [(package, list(packages[package].values())) for package in _dependency_order(deps)]


def _dependency_order(deps: t.Dict[m.PackageName, t.List[m.PackageName]]
                      ) -> t.List[m.PackageName]:
    """Depth first from each package in turn, a package after its dependencies. A cycle
    (only a malformed component has one) is cut where it closes."""
    order: t.Dict[m.PackageName, None] = {}
    for root in deps:
        on_path = {root}
        stack = [(root, iter(deps[root]))]
        while stack:
            package, pending = stack[-1]
            dep = next((d for d in pending if d not in order and d not in on_path), None)
            if dep is None:
                stack.pop()
                on_path.discard(package)
                order.setdefault(package)
            else:
                on_path.add(dep)
                stack.append((dep, iter(deps[dep])))
    return list(order)


def _interface_deps(interface: m.Interface) -> t.Iterator[m.PackageName]:
    for typedef in interface.types.values():
        owner = _used_from(typedef, interface.ref)
        if isinstance(owner, m.InterfaceRef) and owner.package is not None:
            yield owner.package


def _used_from(typedef: m.TypeDef, owner: m.Owner) -> t.Optional[m.Owner]:
    """The owner `typedef` is `use`d from, or None if it is defined by `owner` itself."""
    if not isinstance(typedef.kind, m.Alias):
        return None
    target = typedef.kind.target
    if isinstance(target, m.TypeDef) and target.owner is not None and target.owner != owner:
        return target.owner
    return None


def _distinct_keys(items: t.Dict[str, m.WorldItem]) -> t.Dict[str, None]:
    """The keys of `items`, less those naming an interface already named by an earlier
    key (`a:b/c@0.2` with version suffix `.3` is `a:b/c@0.2.3`): WIT keys interfaces
    by identity, so each is imported or exported once."""
    seen: t.Set[m.InterfaceRef] = set()
    keys: t.Dict[str, None] = {}
    for key, item in items.items():
        if isinstance(item, m.Interface) and item.package is not None and ":" in key:
            if item.ref in seen:
                continue
            seen.add(item.ref)
        keys[key] = None
    return keys


# -- the printer -------------------------------------------------------------------------------

class _Printer:
    def __init__(self) -> None:
        self.out = _Output()
        self.any_items = False  # whether the current block printed an item yet

    def new_item(self) -> None:
        if self.any_items:
            self.out.blank()
        self.any_items = True

    # -- packages and worlds -------------------------------------------------------------------

    def world_package(self, world: m.World) -> None:
        package = world.package or m.PackageName("root", "component")
        self.out.docs(world.package_docs)
        self.out.line(f"package {_package_decl(package)};")
        self.out.blank()
        self.out.docs(world.docs)
        self.out.open(f"world {escape(world.name)}")
        self.world_body(world, package)
        self.out.close()

    def foreign_package(self, package: m.PackageName, interfaces: t.List[m.Interface]) -> None:
        self.out.open(f"package {_package_decl(package)}")
        for interface in interfaces:
            assert interface.name is not None
            self.out.open(f"interface {escape(interface.name)}")
            self.interface_body(interface, package)
            self.out.close()
        self.out.close()

    def world_body(self, world: m.World, package: m.PackageName) -> None:
        """Imported interfaces, then world types, then imported functions, then exports."""
        outer_items, self.any_items = self.any_items, False
        types: t.Dict[str, m.TypeDef] = {}
        functions: t.List[t.Tuple[str, m.Function]] = []
        resource_functions: t.List[m.Function] = []
        distinct_imports = _distinct_keys(world.imports)
        for key, item in world.imports.items():
            if isinstance(item, m.TypeDef):
                types[key] = item
            elif isinstance(item, m.Function):
                if item.resource is not None:
                    resource_functions.append(item)
                else:
                    functions.append((key, item))
            elif key in distinct_imports:
                self.world_item("import", key, item, package)
                self.any_items = True
        self.types(types, world.ref, package, resource_functions)
        for key, function in functions:
            self.world_item("import", key, function, package)
            self.any_items = True
        if world.exports:
            self.new_item()
        for key in _distinct_keys(world.exports):
            self.world_item("export", key, world.exports[key], package)
        self.any_items = outer_items

    def world_item(self, keyword: str, key: str, item: m.WorldItem,
                   package: m.PackageName) -> None:
        assert not isinstance(item, m.TypeDef), "world types print with `types`"
        self.out.docs(item.docs)
        if isinstance(item, m.Function):
            self.out.line(f"{keyword} {escape(key)}: {self.signature(item)};")
        elif item.package is None:
            self.out.open(f"{keyword} {escape(key)}: interface")
            self.interface_body(item, package)
            self.out.close()
        elif ":" in key:
            self.out.line(f"{keyword} {_interface_path(item.ref, package)};")
        else:  # a plain name that `implements` a named interface
            self.out.line(f"{keyword} {escape(key)}: {_interface_path(item.ref, package)};")

    # -- interfaces ----------------------------------------------------------------------------

    def interface_body(self, interface: m.Interface, package: m.PackageName) -> None:
        outer_items, self.any_items = self.any_items, False
        resource_functions = [f for f in interface.functions.values() if f.resource is not None]
        self.types(interface.types, interface.ref, package, resource_functions)
        for function in interface.functions.values():
            if function.resource is None:
                self.new_item()
                self.out.docs(function.docs)
                self.out.line(f"{escape(function.name)}: {self.signature(function)};")
        self.any_items = outer_items

    def types(self, types: t.Mapping[str, m.TypeDef], owner: m.Owner, package: m.PackageName,
              resource_functions: t.List[m.Function]) -> None:
        """`use` statements for types from elsewhere, then the types defined here."""
        uses: t.List[t.Tuple[m.Owner, t.List[str]]] = []
        declared: t.List[m.TypeDef] = []
        for name, typedef in types.items():
            source = _used_from(typedef, owner)
            if source is None:
                declared.append(typedef)
                continue
            target = t.cast(m.TypeDef, t.cast(m.Alias, typedef.kind).target)
            imported = escape(t.cast(str, target.name))
            entry = imported if target.name == name else f"{imported} as {escape(name)}"
            if uses and uses[-1][0] == source:
                uses[-1][1].append(entry)
            else:
                uses.append((source, [entry]))
        for source, entries in uses:
            self.any_items = True
            assert isinstance(source, m.InterfaceRef)
            self.out.line(f"use {_interface_path(source, package)}.{{{', '.join(entries)}}};")
        functions_of: t.Dict[t.Optional[str], t.List[m.Function]] = {}
        for function in resource_functions:
            resource_name = function.resource.name if function.resource else None
            functions_of.setdefault(resource_name, []).append(function)
        for typedef in declared:
            self.new_item()
            self.out.docs(typedef.docs)
            if isinstance(typedef.kind, m.Resource):
                self.resource(typedef, functions_of.get(typedef.name, []))
            else:
                self.declare(typedef)

    def resource(self, typedef: m.TypeDef, functions: t.List[m.Function]) -> None:
        name = escape(t.cast(str, typedef.name))
        if not functions:
            self.out.line(f"resource {name};")
            return
        self.out.open(f"resource {name}")
        for function in functions:
            self.out.docs(function.docs)
            signature = self.signature(function)
            if function.kind is m.FunctionKind.CONSTRUCTOR:
                self.out.line(f"{signature};")
            elif function.kind is m.FunctionKind.STATIC:
                self.out.line(f"{escape(function.item_name)}: static {signature};")
            else:
                self.out.line(f"{escape(function.item_name)}: {signature};")
        self.out.close()

    def declare(self, typedef: m.TypeDef) -> None:
        name = escape(t.cast(str, typedef.name))
        match typedef.kind:
            case m.Record(fields=fields):
                self.block(f"record {name}", [(f.docs, f"{escape(f.name)}: {type_name(f.type)},")
                                              for f in fields])
            case m.Variant(cases=cases):
                self.block(f"variant {name}", [(c.docs, f"{escape(c.name)}{_payload(c.type)},")
                                               for c in cases])
            case m.Enum(cases=enum_cases):
                self.block(f"enum {name}", [(c.docs, f"{escape(c.name)},") for c in enum_cases])
            case m.Flags(flags=flags):
                self.block(f"flags {name}", [(f.docs, f"{escape(f.name)},") for f in flags])
            case m.Own(resource=resource):
                self.out.line(f"type {name} = own<{escape(t.cast(str, resource.name))}>;")
            case m.Alias(target=target):
                self.out.line(f"type {name} = {type_name(target)};")
            case kind:
                self.out.line(f"type {name} = {_anonymous_type(kind)};")

    def block(self, header: str, lines: t.List[t.Tuple[m.Docs, str]]) -> None:
        self.out.open(header)
        for docs, text in lines:
            self.out.docs(docs)
            self.out.line(text)
        self.out.close()

    # -- functions -----------------------------------------------------------------------------

    def signature(self, function: m.Function) -> str:
        """`[async ]func(a: t) -> r`, or `constructor(a: t)` for a constructor."""
        params = function.params[1:] if function.kind is m.FunctionKind.METHOD else function.params
        text = ", ".join(f"{escape(p.name)}: {type_name(p.type)}" for p in params)
        prefix = "async " if function.is_async else ""
        if function.kind is m.FunctionKind.CONSTRUCTOR:
            head = f"{prefix}constructor({text})"
            if _is_own_of(function.result, function.resource):
                return head
        else:
            head = f"{prefix}func({text})"
        if function.result is not None:
            return f"{head} -> {type_name(function.result)}"
        return head


def _is_own_of(result: t.Optional[m.Type], resource: t.Optional[m.TypeDef]) -> bool:
    return (isinstance(result, m.TypeDef) and result.name is None
            and isinstance(result.kind, m.Own) and result.kind.resource is resource)


def _payload(ty: t.Optional[m.Type]) -> str:
    return "" if ty is None else f"({type_name(ty)})"


# -- type expressions --------------------------------------------------------------------------

def type_name(ty: m.Type) -> str:
    """How a type is written where it is used: its name, or its structure if anonymous."""
    if isinstance(ty, m.Primitive):
        return ty.value
    if ty.name is not None:
        return escape(ty.name)
    return _anonymous_type(ty.kind)


def _anonymous_type(kind: m.TypeDefKind) -> str:
    match kind:
        case m.Own(resource=resource):
            return escape(t.cast(str, resource.name))
        case m.Borrow(resource=resource):
            return f"borrow<{escape(t.cast(str, resource.name))}>"
        case m.List(element=element):
            return f"list<{type_name(element)}>"
        case m.FixedList(element=element, size=size):
            return f"list<{type_name(element)}, {size}>"
        case m.Map(key=key, value=value):
            return f"map<{type_name(key)}, {type_name(value)}>"
        case m.Tuple(types=types):
            return f"tuple<{', '.join(type_name(x) for x in types)}>"
        case m.Option(type=payload):
            return f"option<{type_name(payload)}>"
        case m.Result():
            return _result(kind)
        case m.Future(type=payload) | m.Stream(type=payload):
            word = "future" if isinstance(kind, m.Future) else "stream"
            return word if payload is None else f"{word}<{type_name(payload)}>"
        case m.Alias(target=target):
            return type_name(target)
        case m.Record() | m.Variant() | m.Enum() | m.Flags() | m.Resource():
            raise ValueError(f"a {type(kind).__name__.lower()} type must be named to be printed")
    raise AssertionError(f"unknown WIT type kind {kind!r}")


def _result(kind: m.Result) -> str:
    if kind.ok is None and kind.err is None:
        return "result"
    if kind.err is None:
        return f"result<{type_name(t.cast(m.Type, kind.ok))}>"
    ok = "_" if kind.ok is None else type_name(kind.ok)
    return f"result<{ok}, {type_name(kind.err)}>"


# -- names -------------------------------------------------------------------------------------

def _package_decl(package: m.PackageName) -> str:
    base = f"{escape(package.namespace)}:{escape(package.name)}"
    return f"{base}@{package.version}" if package.version else base


def _interface_path(ref: m.InterfaceRef, current: m.PackageName) -> str:
    """`name` within the current package, `ns:pkg/name@version` from elsewhere."""
    if ref.package is None or ref.package == current:
        return escape(ref.name)
    return (f"{escape(ref.package.namespace)}:{escape(ref.package.name)}/{escape(ref.name)}"
            + (f"@{ref.package.version}" if ref.package.version else ""))
