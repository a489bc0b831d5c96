"""Decoding a component body section by section into small records that name things by index.

`wit._binary` replays a component's *types*; running one needs everything else too: core
modules (kept as byte ranges, never copied), core instances, aliases, `canon` definitions,
nested components and their instantiations. This module turns those bytes into plain
records (`CoreInstantiation`, `AliasExport`, `CanonLift`, ...), each with the byte offset it
came from, so `_plan` can give the indices meaning once per instantiation and point at the
exact byte when something does not fit. Type definitions, imports and export ascriptions
need the index space they are read in, so `_plan` reads those with `wit._binary`'s readers.

A core module is read only as far as its import and export sections: `Instantiate.args`
lists one item per module import, and wiring checks names and kinds against the exports.
Every read is bounds-checked by `Reader`: malformed input is a `DecodeError` with an offset.
"""

from __future__ import annotations

import typing as t

from ..wit import _binary as b
from .._errors import DecodeError

__all__ = [
    "Section", "sections", "CoreInstantiation", "CoreBag", "read_core_instance",
    "Instantiation", "InstanceBag", "read_instance", "AliasExport", "AliasCoreExport",
    "AliasOuter", "read_alias", "CanonOptions", "CanonLift", "CanonLower", "CanonResource",
    "CanonBuiltin", "read_canon", "ExportHead", "read_export_head", "ResourceHead",
    "read_resource_head", "ModuleInterface", "module_interface", "CORE_KINDS", "check_index",
]

# section ids (Binary.md)
CUSTOM, CORE_MODULE, CORE_INSTANCE, CORE_TYPE, COMPONENT, INSTANCE = 0, 1, 2, 3, 4, 5
ALIAS, TYPE, CANON, START, IMPORT, EXPORT, VALUE = 6, 7, 8, 9, 10, 11, 12

# core sorts, named as a core module's import/export kinds are
CORE_KINDS = {0x00: "func", 0x01: "table", 0x02: "memory", 0x03: "global", 0x04: "tag",
              0x10: "core type", 0x11: "core module", 0x12: "core instance"}
SORTS = {0x01: "func", 0x02: "value", 0x03: "type", 0x04: "component", 0x05: "instance"}


class Section(t.NamedTuple):
    id: int
    body: b.Reader
    offset: int  # where the section's id byte is


def sections(data: b.Buffer, start: int, end: int) -> t.Iterator[Section]:
    """The sections of the component in `data[start:end]`, after checking its preamble."""
    reader = b.Reader(data, start, end)
    b.check_preamble(reader)
    while not reader.at_end():
        offset = reader.pos
        section_id = reader.byte("a section id")
        size = reader.u32("a section size")
        yield Section(section_id, reader.sub_reader(size, f"section {section_id}"), offset)


def read_sort(reader: b.Reader) -> str:
    """A sort: 'func', 'type', ... for component items, a core kind for core ones."""
    start = reader.pos
    sort = reader.byte("a sort")
    if sort == 0x00:
        core = reader.byte("a core sort")
        kind = CORE_KINDS.get(core)
        if kind is None:
            raise reader.error(f"unknown core sort 0x{core:02x}", start + 1)
        return kind
    name = SORTS.get(sort)
    if name is None:
        raise reader.error(f"unknown sort 0x{sort:02x}", start)
    return name


def read_core_sort(reader: b.Reader) -> str:
    start = reader.pos
    core = reader.byte("a core sort")
    kind = CORE_KINDS.get(core)
    if kind is None:
        raise reader.error(f"unknown core sort 0x{core:02x}", start)
    return kind


# -- core instances ----------------------------------------------------------------------------

class CoreInstantiation(t.NamedTuple):
    offset: int
    module: int
    args: t.Tuple[t.Tuple[str, int], ...]  # (import module name, core instance index)


class CoreBag(t.NamedTuple):
    offset: int
    exports: t.Tuple[t.Tuple[str, str, int], ...]  # (name, core kind, index)


def read_core_instance(reader: b.Reader) -> t.Union[CoreInstantiation, CoreBag]:
    offset = reader.pos
    form = reader.byte("a core instance")
    if form == 0x00:
        module = reader.u32("a core module index")
        args = []
        for _ in range(reader.count("core instantiation arguments", 3)):
            name = reader.name("a core instantiation argument name")
            arg_start = reader.pos
            if reader.byte("an argument sort") != 0x12:
                raise reader.error("a core instantiation argument must be a core instance",
                                   arg_start)
            args.append((name, reader.u32("a core instance index")))
        return CoreInstantiation(offset, module, tuple(args))
    if form == 0x01:
        exports = tuple((reader.name("a core export name"), read_core_sort(reader),
                         reader.u32("a core item index"))
                        for _ in range(reader.count("core instance exports", 3)))
        return CoreBag(offset, exports)
    raise reader.error(f"unknown core instance form 0x{form:02x}", offset)


# -- component instances ----------------------------------------------------------------------

class Instantiation(t.NamedTuple):
    offset: int
    component: int
    args: t.Tuple[t.Tuple[str, str, int], ...]  # (name, sort, index)


class InstanceBag(t.NamedTuple):
    offset: int
    exports: t.Tuple[t.Tuple[str, str, int], ...]  # (name, sort, index)


def read_instance(reader: b.Reader) -> t.Union[Instantiation, InstanceBag]:
    offset = reader.pos
    form = reader.byte("an instance")
    if form == 0x00:
        component = reader.u32("a component index")
        args = tuple((reader.name("an instantiation argument name"), read_sort(reader),
                      reader.u32("an item index"))
                     for _ in range(reader.count("instantiation arguments", 3)))
        return Instantiation(offset, component, args)
    if form == 0x01:
        exports = tuple((b.read_extern_name(reader).name, read_sort(reader),
                         reader.u32("an item index"))
                        for _ in range(reader.count("instance exports", 3)))
        return InstanceBag(offset, exports)
    raise reader.error(f"unknown instance form 0x{form:02x}", offset)


# -- aliases ------------------------------------------------------------------------------------

class AliasExport(t.NamedTuple):
    offset: int
    sort: str
    instance: int
    name: str


class AliasCoreExport(t.NamedTuple):
    offset: int
    sort: str  # a core kind
    instance: int
    name: str


class AliasOuter(t.NamedTuple):
    offset: int
    sort: str
    levels: int      # how many enclosing components out (0: this one)
    item_index: int


Alias = t.Union[AliasExport, AliasCoreExport, AliasOuter]


def read_alias(reader: b.Reader) -> Alias:
    offset = reader.pos
    sort = read_sort(reader)
    target_at = reader.pos
    target = reader.byte("an alias target")
    if target == 0x00:
        return AliasExport(offset, sort, reader.u32("an instance index"),
                           reader.name("an export name"))
    if target == 0x01:
        return AliasCoreExport(offset, sort, reader.u32("a core instance index"),
                               reader.name("a core export name"))
    if target == 0x02:
        return AliasOuter(offset, sort, reader.u32("an outer alias count"),
                          reader.u32("an outer alias index"))
    raise reader.error(f"unknown alias target 0x{target:02x}", target_at)


# -- canonical definitions -----------------------------------------------------------------------

class CanonOptions(t.NamedTuple):
    string_encoding: str = "utf8"
    memory: t.Optional[int] = None       # core memory index
    realloc: t.Optional[int] = None      # core func indices
    post_return: t.Optional[int] = None
    is_async: bool = False
    callback: t.Optional[int] = None


class CanonLift(t.NamedTuple):
    offset: int
    core_func: int
    options: CanonOptions
    type_index: int


class CanonLower(t.NamedTuple):
    offset: int
    func: int
    options: CanonOptions


class CanonResource(t.NamedTuple):
    offset: int
    op: str  # 'new' | 'drop' | 'rep'
    type_index: int


class CanonBuiltin(t.NamedTuple):
    """A canon built-in of the async, threads or error-context proposals (a core func).
    `args` are its immediates, read for the async built-ins the runtime runs (see
    `_builtin_args`): type indices, canon options, flags, a memory index, and for
    task.return its result (None, a Primitive, or ("type", index))."""

    offset: int
    op: str
    args: t.Tuple[t.Any, ...] = ()


Canon = t.Union[CanonLift, CanonLower, CanonResource, CanonBuiltin]

_ENCODINGS = {0x00: "utf8", 0x01: "utf16", 0x02: "latin1+utf16"}


def read_canon_options(reader: b.Reader) -> CanonOptions:
    values: t.Dict[str, t.Any] = {}
    value: t.Any
    for _ in range(reader.count("canonical options")):
        start = reader.pos
        option = reader.byte("a canonical option")
        if option in _ENCODINGS:
            field, value = "string_encoding", _ENCODINGS[option]
        elif option == 0x03:
            field, value = "memory", reader.u32("a core memory index")
        elif option == 0x04:
            field, value = "realloc", reader.u32("a core function index")
        elif option == 0x05:
            field, value = "post_return", reader.u32("a core function index")
        elif option == 0x06:
            field, value = "is_async", True
        elif option == 0x07:
            field, value = "callback", reader.u32("a core function index")
        else:
            raise reader.error(f"unknown canonical option 0x{option:02x}", start)
        if field in values:
            raise reader.error(f"canonical option `{field.replace('_', '-')}` given twice",
                               start)
        values[field] = value
    return CanonOptions(**values)


# The names of the built-ins that make core functions of the async, threads and
# error-context proposals; their immediates are stepped over with `wit._binary`'s table.
_BUILTINS = {
    0x05: "task.cancel", 0x06: "subtask.cancel", 0x07: "resource.drop async",
    0x08: "backpressure.set", 0x09: "task.return", 0x0A: "context.get",
    0x0B: "context.set", 0x0C: "thread.yield", 0x0D: "subtask.drop", 0x0E: "stream.new",
    0x0F: "stream.read", 0x10: "stream.write", 0x11: "stream.cancel-read",
    0x12: "stream.cancel-write", 0x13: "stream.drop-readable", 0x14: "stream.drop-writable",
    0x15: "future.new", 0x16: "future.read", 0x17: "future.write",
    0x18: "future.cancel-read", 0x19: "future.cancel-write", 0x1A: "future.drop-readable",
    0x1B: "future.drop-writable", 0x1C: "error-context.new",
    0x1D: "error-context.debug-message", 0x1E: "error-context.drop",
    0x1F: "waitable-set.new", 0x20: "waitable-set.wait", 0x21: "waitable-set.poll",
    0x22: "waitable-set.drop", 0x23: "waitable.join", 0x24: "backpressure.inc",
    0x25: "backpressure.dec", 0x26: "thread.index", 0x27: "thread.new-indirect",
    0x28: "thread.resume-later", 0x29: "thread.suspend", 0x2A: "thread.suspend-then-resume",
    0x2B: "thread.yield-then-resume", 0x2C: "thread.suspend-then-promote",
    0x2D: "thread.yield-then-promote", 0x40: "thread.spawn-ref",
    0x41: "thread.spawn-indirect", 0x42: "thread.available-parallelism",
}
_RESOURCE_OPS = {0x02: "new", 0x03: "drop", 0x04: "rep"}


def read_canon(reader: b.Reader) -> Canon:
    offset = reader.pos
    opcode = reader.byte("a canonical function")
    if opcode == 0x00:
        if reader.byte("a core sort") != 0x00:
            raise reader.error("canon lift must lift a core function", offset + 1)
        core_func = reader.u32("a core function index")
        options = read_canon_options(reader)
        return CanonLift(offset, core_func, options, reader.u32("a function type index"))
    if opcode == 0x01:
        if reader.byte("a sort") != 0x00:  # the `func` sort, written 0x00 here
            raise reader.error("canon lower must lower a component function", offset + 1)
        func = reader.u32("a function index")
        return CanonLower(offset, func, read_canon_options(reader))
    if opcode in _RESOURCE_OPS:
        return CanonResource(offset, _RESOURCE_OPS[opcode], reader.u32("a resource type index"))
    name = _BUILTINS.get(opcode)
    skips = b.CANON_IMMEDIATES.get(opcode)
    if name is None or skips is None:
        raise reader.error(f"unknown canonical function 0x{opcode:02x}", offset)
    reader_for = _ARG_READERS.get(opcode)
    if reader_for is not None:
        return CanonBuiltin(offset, name, tuple(read(reader) for read in reader_for))
    for skip in skips:
        skip(reader)
    return CanonBuiltin(offset, name)


def _result_type(reader: b.Reader) -> t.Any:
    """task.return's result list: None, a Primitive, or ("type", index) to resolve in scope."""
    start = reader.pos
    form = reader.byte("a result list")
    if form == 0x00:
        first = reader.peek("a value type")
        if 0x40 <= first < 0x80:
            reader.pos += 1
            prim = b.PRIMITIVES.get(first)
            if prim is None:
                raise reader.error(f"unknown primitive value type 0x{first:02x}", reader.pos - 1)
            return prim
        return ("type", reader.u32("a value type index"))
    if form == 0x01 and reader.byte("a result list") == 0x00:
        return None
    raise reader.error("invalid result list", start)


def _u32(reader: b.Reader) -> int:
    return reader.u32("an index")


def _flag(reader: b.Reader) -> bool:
    return reader.byte("a flag") != 0


# The immediates the async built-ins keep (the others are stepped over).
_ARG_READERS: t.Dict[int, t.Tuple[t.Callable[[b.Reader], t.Any], ...]] = {
    0x06: (_flag,),                                   # subtask.cancel async?
    0x09: (_result_type, read_canon_options),         # task.return
    0x0A: (lambda r: r.byte("a core type"), _u32),    # context.get i32 slot
    0x0B: (lambda r: r.byte("a core type"), _u32),    # context.set i32 slot
    0x0C: (_flag,),                                   # thread.yield cancellable?
    0x0E: (_u32,), 0x13: (_u32,), 0x14: (_u32,),      # stream.new / drop-readable / drop-writable
    0x15: (_u32,), 0x1A: (_u32,), 0x1B: (_u32,),      # future.new / drop-readable / drop-writable
    0x0F: (_u32, read_canon_options), 0x10: (_u32, read_canon_options),   # stream.read / write
    0x16: (_u32, read_canon_options), 0x17: (_u32, read_canon_options),   # future.read / write
    0x11: (_u32, _flag), 0x12: (_u32, _flag),         # stream.cancel-read / cancel-write
    0x18: (_u32, _flag), 0x19: (_u32, _flag),         # future.cancel-read / cancel-write
    0x1C: (read_canon_options,), 0x1D: (read_canon_options,),   # error-context.new / debug-message
    0x20: (_flag, _u32), 0x21: (_flag, _u32),         # waitable-set.wait / poll: cancellable?, memory
}


# -- exports and resource definitions ------------------------------------------------------

class ExportHead(t.NamedTuple):
    """An export up to its optional ascribed type, which needs a type scope to read."""

    offset: int
    name: b.ExternName
    sort: str
    item_index: int


def read_export_head(reader: b.Reader) -> ExportHead:
    offset = reader.pos
    name = b.read_extern_name(reader)
    sort = read_sort(reader)
    return ExportHead(offset, name, sort, reader.u32("an item index"))


class ResourceHead(t.NamedTuple):
    """`(type (resource (rep i32) (dtor f)?))`: the opcode 0x3f has been read."""

    offset: int
    rep: str
    dtor: t.Optional[int]  # core func index


def read_resource_head(reader: b.Reader, offset: int) -> ResourceHead:
    rep_at = reader.pos
    rep = reader.byte("a resource representation")
    if rep != 0x7F:
        raise reader.error(f"unsupported resource representation 0x{rep:02x} "
                           "(only i32 is defined)", rep_at)
    dtor = reader.u32("a destructor index") if reader.flag("an optional destructor") else None
    return ResourceHead(offset, "i32", dtor)


# -- core modules: imports and exports only ----------------------------------------------------

class ModuleInterface(t.NamedTuple):
    imports: t.Tuple[t.Tuple[str, str, str], ...]  # (module, name, kind) in order
    exports: t.Dict[str, str]                       # name -> kind


_MODULE_IMPORT_SECTION, _MODULE_EXPORT_SECTION = 2, 7
_IMPORT_KINDS = {0x00: "func", 0x01: "table", 0x02: "memory", 0x03: "global", 0x04: "tag"}


def module_interface(data: b.Buffer, start: int, end: int) -> ModuleInterface:
    """The import and export sections of the core module `data[start:end]`; the rest
    (code, data) is stepped over by section size, so this costs the same for 18 MB."""
    reader = b.Reader(data, start, end)
    if end - start < 8 or bytes(data[start:start + 4]) != b.MAGIC:
        raise reader.error("a core module does not start with the \\0asm header")
    if bytes(data[start + 4:start + 8]) != b"\x01\x00\x00\x00":
        raise reader.error("a core module is not a version 1 WebAssembly module", start + 4)
    reader.pos = start + 8
    imports: t.List[t.Tuple[str, str, str]] = []
    exports: t.Dict[str, str] = {}
    while not reader.at_end():
        section_id = reader.byte("a core section id")
        size = reader.u32("a core section size")
        body = reader.sub_reader(size, f"core section {section_id}")
        if section_id == _MODULE_IMPORT_SECTION:
            for _ in range(body.count("core imports", 4)):
                module = body.name("an import module name")
                name = body.name("an import name")
                imports.append((module, name, _read_import_kind(body)))
            body.expect_end("the core import section")
        elif section_id == _MODULE_EXPORT_SECTION:
            for _ in range(body.count("core exports", 3)):
                at = body.pos
                name = body.name("an export name")
                kind_at = body.pos
                kind = _IMPORT_KINDS.get(body.byte("an export kind"))
                if kind is None:
                    raise body.error("unknown core export kind", kind_at)
                body.u32("an export index")
                if name in exports:
                    raise body.error(f"duplicate core export `{name}`", at)
                exports[name] = kind
            body.expect_end("the core export section")
            break  # nothing after the export section matters here
    return ModuleInterface(tuple(imports), exports)


def _read_import_kind(reader: b.Reader) -> str:
    at = reader.pos
    kind = _IMPORT_KINDS.get(reader.byte("an import kind"))
    if kind == "func":
        reader.u32("a type index")
    elif kind == "table":
        b.skip_core_valtype(reader)
        b.skip_limits(reader)
    elif kind == "memory":
        b.skip_limits(reader)
    elif kind == "global":
        b.skip_core_valtype(reader)
        reader.flag("a global mutability")
    elif kind == "tag":
        reader.byte("a tag attribute")
        reader.u32("a type index")
    else:
        raise reader.error("unknown core import kind", at)
    return kind


def check_index(space: t.Sequence[t.Any], index: int, what: str, offset: int) -> t.Any:
    """`space[index]`, or a DecodeError naming the index space and how full it is."""
    if index >= len(space):
        raise DecodeError(f"{what} index {index} is out of range ({len(space)} defined so far)",
                          offset)
    return space[index]
