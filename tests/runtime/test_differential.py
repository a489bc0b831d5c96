"""Differential test: the runtime against raw
`wasmtime.component` (wasmtime-py), the oracle, on the same components and inputs.

For every export of ../shared/corpus/EXPECTED.md that needs no WASI at run time, and for
the repo's own guests, a scenario (a list of steps: calls, and drops of resources) runs
on both; each step's outcome must be the same: the same value, or a trap on both, or
"poisoned" on both (every call after a trap). Host imports are written once, in this
library's Python form, and given to the oracle through a wrapper that converts its values.

Values are compared in a neutral form driven by the WIT type: raw wasmtime gives records
as attribute bags, enums as str, flags as set[str], and variants/options/results untagged
whenever their cases differ by Python type (see /work/shared/NOTES.md); this library gives
dataclasses, Enum, Flag, Optional/Some, Ok/Err (README "WIT values as Python values").
Floats compare by repr (NaN equals NaN, -0.0 differs from 0.0); resources by kind only.

Not here: exports that need WASI at run time (EXPECTED 11 `smoke`: its `thunk` printf()s
through WASI; 27), and scenarios that need host-implemented resources (EXPECTED 12's test-imports, 13, 15, 16,
18, 14) are not here: the oracle's host resources are a different API, covered by
test_linking_corpus.py on both engines.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import wasmtime
import wasmtime.component as wc

from tests._build import ALL_GUESTS, build_guest, build_wat_guest
from tests.runtime._engines import load_core
from wasm_import import Err, InstancePoisonedError, Ok, Some, Trap
from wasm_import import wit as w
from wasm_import.types._names import pascal, snake
from wasm_import.types._pytypes import array_code, class_for, variant_classes

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


# -- the neutral form ------------------------------------------------------------------------------

def _td(t: Any) -> Any:
    return w.unalias(t)


def _is_option(t: Any) -> bool:
    t = _td(t)
    return isinstance(t, w.TypeDef) and isinstance(t.kind, w.Option)


def _float(v: float) -> Tuple[str, str]:
    return ("float", repr(v) if not math.isnan(v) else "nan")


def norm_ours(v: Any, t: Any) -> Any:
    """This library's value of WIT type `t` -> the neutral form."""
    t = _td(t)
    if isinstance(t, w.Primitive):
        return _float(v) if t in (w.Primitive.F32, w.Primitive.F64) else v
    k = t.kind
    if isinstance(k, w.List):
        if _td(k.element) is w.Primitive.U8:
            return bytes(v)
        code = array_code(k.element)  # a list of numbers comes back as an array of its typecode
        assert code is None or (type(v) is array.array and v.typecode == code), (code, v)
        return [norm_ours(x, k.element) for x in v]
    if isinstance(k, w.Tuple):
        return tuple(norm_ours(x, e) for x, e in zip(v, k.types))
    if isinstance(k, w.Record):
        return tuple((f.name, norm_ours(getattr(v, snake(f.name)), f.type)) for f in k.fields)
    if isinstance(k, w.Variant):
        for name, cls, has in variant_classes(t).cases:
            if type(v) is cls:
                case = next(c for c in k.cases if c.name == name)
                return (name, norm_ours(v.value, case.type) if has else None)
        raise AssertionError(f"{v!r} is no case of {t}")
    if isinstance(k, w.Enum):
        return k.cases[list(class_for(t)).index(v)].name
    if isinstance(k, w.Flags):
        return frozenset(f.name for i, f in enumerate(k.flags) if v.value & (1 << i))
    if isinstance(k, w.Option):
        if v is None:
            return ("none", None)
        return ("some", norm_ours(v.value if _is_option(k.type) else v, k.type))
    if isinstance(k, w.Result):
        if isinstance(v, Ok):
            return ("ok", norm_ours(v.value, k.ok) if k.ok is not None else None)
        assert isinstance(v, Err), v
        return ("err", norm_ours(v.value, k.err) if k.err is not None else None)
    if isinstance(k, (w.Own, w.Borrow, w.Resource)):
        return "<resource>"
    raise AssertionError(f"no neutral form for {t}")


def _raw_classes(t: Any) -> set:
    """The Python classes wasmtime-py uses for WIT type `t` (its `add_classes`)."""
    t = _td(t)
    if t is None:
        return {object}
    if isinstance(t, w.Primitive):
        return {w.Primitive.BOOL: {bool}, w.Primitive.F32: {float}, w.Primitive.F64: {float},
                w.Primitive.CHAR: {str}, w.Primitive.STRING: {str}}.get(t, {int})
    k = t.kind
    if isinstance(k, w.List):
        return {bytes} if _td(k.element) is w.Primitive.U8 else {list}
    if isinstance(k, w.Record):
        return {wc.Record}
    if isinstance(k, w.Tuple):
        return {tuple}
    if isinstance(k, (w.Variant, w.Option, w.Result)):
        cases = _raw_cases(t)
        if _raw_tagged(cases):
            return {wc.Variant}
        return set().union(*(_raw_classes(ct) for _, ct in cases))
    if isinstance(k, w.Enum):
        return {str}
    if isinstance(k, w.Flags):
        return {set}
    return {wc.ResourceAny, wc.ResourceHost}


def _raw_cases(t: Any) -> List[Tuple[str, Any]]:
    k = _td(t).kind
    if isinstance(k, w.Option):
        return [("none", None), ("some", k.type)]
    if isinstance(k, w.Result):
        return [("ok", k.ok), ("err", k.err)]
    return [(c.name, c.type) for c in k.cases]


def _raw_tagged(cases: List[Tuple[str, Any]]) -> bool:
    seen: set = set()
    for _, ct in cases:
        classes = _raw_classes(ct)
        if classes & seen:
            return True
        seen |= classes
    return False


def _raw_case(v: Any, t: Any) -> Tuple[str, Any, Any]:
    """(case name, payload, payload type) of a raw variant/option/result value."""
    cases = _raw_cases(t)
    if _raw_tagged(cases):
        assert isinstance(v, wc.Variant), v
        ct = dict(cases)[v.tag]
        return v.tag, v.payload, ct
    for name, ct in cases:
        if ct is None and v is None:
            return name, None, None
        if ct is not None and type(v) in _raw_classes(ct):
            return name, v, ct
    raise AssertionError(f"raw value {v!r} is no case of {t}")


def norm_raw(v: Any, t: Any) -> Any:
    """wasmtime-py's value of WIT type `t` -> the neutral form."""
    t = _td(t)
    if isinstance(t, w.Primitive):
        return _float(v) if t in (w.Primitive.F32, w.Primitive.F64) else v
    k = t.kind
    if isinstance(k, w.List):
        return bytes(v) if _td(k.element) is w.Primitive.U8 else [norm_raw(x, k.element) for x in v]
    if isinstance(k, w.Tuple):
        return tuple(norm_raw(x, e) for x, e in zip(v, k.types))
    if isinstance(k, w.Record):
        return tuple((f.name, norm_raw(getattr(v, f.name), f.type)) for f in k.fields)
    if isinstance(k, (w.Variant, w.Option, w.Result)):
        name, payload, ct = _raw_case(v, t)
        return (name, norm_raw(payload, ct) if ct is not None else None)
    if isinstance(k, w.Enum):
        return v
    if isinstance(k, w.Flags):
        return frozenset(v)
    if isinstance(k, (w.Own, w.Borrow, w.Resource)):
        return "<resource>"
    raise AssertionError(f"no neutral form for {t}")


def to_raw(v: Any, t: Any) -> Any:
    """This library's value -> wasmtime-py's (arguments of exports, results of imports)."""
    t = _td(t)
    if isinstance(t, w.Primitive):
        return v
    k = t.kind
    if isinstance(k, w.List):
        return bytes(v) if _td(k.element) is w.Primitive.U8 else [to_raw(x, k.element) for x in v]
    if isinstance(k, w.Tuple):
        return tuple(to_raw(x, e) for x, e in zip(v, k.types))
    if isinstance(k, w.Record):
        record = wc.Record()
        for f in k.fields:
            setattr(record, f.name, to_raw(getattr(v, snake(f.name)), f.type))
        return record
    if isinstance(k, (w.Variant, w.Option, w.Result)):
        if isinstance(k, w.Variant):
            name = type(v).__wit_case__
            ct = next(c.type for c in k.cases if c.name == name)
            payload = v.value if ct is not None else None
        elif isinstance(k, w.Option):
            name, ct = ("none", None) if v is None else ("some", k.type)
            payload = None if v is None else (v.value if _is_option(k.type) else v)
        else:
            name, ct = ("ok", k.ok) if isinstance(v, Ok) else ("err", k.err)
            payload = v.value
        raw = to_raw(payload, ct) if ct is not None else None
        return wc.Variant(name, raw) if _raw_tagged(_raw_cases(t)) else raw
    if isinstance(k, w.Enum):
        return k.cases[list(class_for(t)).index(v)].name
    if isinstance(k, w.Flags):
        return {f.name for i, f in enumerate(k.flags) if v.value & (1 << i)}
    return v  # a resource handle: each side passes its own


def from_raw(v: Any, t: Any) -> Any:
    """wasmtime-py's value -> this library's (arguments the oracle's host functions get)."""
    t = _td(t)
    if isinstance(t, w.Primitive):
        return v
    k = t.kind
    if isinstance(k, w.List):
        return bytes(v) if _td(k.element) is w.Primitive.U8 else [from_raw(x, k.element) for x in v]
    if isinstance(k, w.Tuple):
        return tuple(from_raw(x, e) for x, e in zip(v, k.types))
    if isinstance(k, w.Record):
        return class_for(t)(*(from_raw(getattr(v, f.name), f.type) for f in k.fields))
    if isinstance(k, w.Variant):
        name, payload, ct = _raw_case(v, t)
        cls = next(c for n, c, _ in variant_classes(t).cases if n == name)
        return cls(from_raw(payload, ct)) if ct is not None else cls()
    if isinstance(k, w.Option):
        name, payload, ct = _raw_case(v, t)
        if name == "none":
            return None
        inner = from_raw(payload, ct)
        return Some(inner) if _is_option(k.type) else inner
    if isinstance(k, w.Result):
        name, payload, ct = _raw_case(v, t)
        value = from_raw(payload, ct) if ct is not None else None
        return Ok(value) if name == "ok" else Err(value)
    if isinstance(k, w.Enum):
        return list(class_for(t))[[c.name for c in k.cases].index(v)]
    if isinstance(k, w.Flags):
        cls = class_for(t)
        out = cls(0)
        for i, f in enumerate(k.flags):
            if f.name in v:
                out |= cls(1 << i)
        return out
    return v


# -- scenarios --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """The result of an earlier step (each side keeps its own resource handles)."""

    step: int


@dataclass
class Scenario:
    id: str
    source: str  # "corpus:<path under ../shared/corpus>" or "guest:<name>"
    steps: List[Tuple[Any, ...]]  # ("call", key | None, wit name, args) | ("drop", Ref)
    host: Dict[str, Any] = field(default_factory=dict)  # key -> {WIT name: callable} | callable (root)

    def path(self) -> Path:
        kind, name = self.source.split(":", 1)
        if kind == "corpus":
            if not CORPUS.is_dir():
                pytest.skip("../shared/corpus is not present")
            return CORPUS / name
        return _guest(name)


def _guest(name: str) -> Path:
    """A repo guest: the registered ones by their builder, others (bulk) as component text."""
    return build_guest(name) if name in ALL_GUESTS else build_wat_guest(name)


def _func(world: Any, side: str, key: Optional[str], name: str) -> Any:
    items = world.exports if side == "export" else world.imports
    if key is None:
        return items[name]
    return items[key].functions[name]


def _outcome(run: Callable[[], Any], func: Any, norm: Callable[[Any, Any], Any], ours: bool) -> Tuple[Any, ...]:
    try:
        value = run()
    except Err as e:  # ours: a returned result's error case
        assert ours
        k = _td(func.result).kind
        return ("value", ("err", norm_ours(e.value, k.err) if k.err is not None else None)), None
    except InstancePoisonedError:
        return ("poisoned",), None
    except Trap:
        return ("trap",), None
    except wasmtime.WasmtimeError as e:
        return (("poisoned",) if "cannot enter component instance" in str(e) else ("trap",)), None
    if func.result is None:
        return ("value", None), value
    result = _td(func.result)
    if ours and isinstance(result, w.TypeDef) and isinstance(result.kind, w.Result):
        k = result.kind
        return ("value", ("ok", norm_ours(value, k.ok) if k.ok is not None else None)), value
    return ("value", norm(value, func.result)), value


def _resolve(args: Sequence[Any], kept: Dict[int, Any]) -> List[Any]:
    def one(a: Any) -> Any:
        if isinstance(a, Ref):
            return kept[a.step]
        if isinstance(a, tuple):
            return tuple(one(x) for x in a)
        return a

    return [one(a) for a in args]


def run_ours(sc: Scenario, world: Any) -> List[Tuple[Any, ...]]:
    module = load_core(sc.path(), f"diff_{sc.id.replace('-', '_')}")
    imports: Dict[str, Any] = {}
    for key, impl in sc.host.items():
        imports[key] = impl if callable(impl) else {snake(n): f for n, f in impl.items()}
    inst = module.instantiate(imports=imports)
    kept: Dict[int, Any] = {}
    out = []
    for i, step in enumerate(sc.steps):
        if step[0] == "drop":
            kept[step[1].step].__exit__(None, None, None)
            out.append(("dropped",))
            continue
        _, key, name, args = step
        func = _func(world, "export", key, name)
        ns = inst.exports[key] if key is not None else inst
        values = _resolve(args, kept)
        item = func.item_name
        if func.kind is w.FunctionKind.CONSTRUCTOR:
            target = getattr(ns, pascal(item))
        elif func.kind is w.FunctionKind.METHOD:
            target, values = getattr(values[0], snake(item)), values[1:]
        elif func.kind is w.FunctionKind.STATIC:
            target = getattr(getattr(ns, pascal(func.resource.name)), snake(item))
        else:
            target = getattr(ns, snake(name))
        outcome, kept[i] = _outcome(lambda: target(*values), func, norm_ours, True)
        out.append(outcome)
    return out


def _raw_host(func: Any, impl: Callable[..., Any]) -> Callable[..., Any]:
    result = _td(func.result) if func.result is not None else None
    returns_result = isinstance(result, w.TypeDef) and isinstance(result.kind, w.Result)

    def host(store: Any, *args: Any) -> Any:
        values = [from_raw(a, p.type) for a, p in zip(args, func.params)]
        if returns_result:
            try:
                value: Any = Ok(impl(*values))
            except Err as e:
                value = Err(e.value)
        else:
            value = impl(*values)
        return None if func.result is None else to_raw(value, func.result)

    return host


def run_raw(sc: Scenario, world: Any) -> List[Tuple[Any, ...]]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    component = wc.Component(engine, sc.path().read_bytes())
    linker = wc.Linker(engine)
    with linker.root() as root:
        for key, impl in sc.host.items():
            if callable(impl):
                root.add_func(key, _raw_host(_func(world, "import", None, key), impl))
                continue
            with root.add_instance(key) as instance:
                for name, f in impl.items():
                    instance.add_func(name, _raw_host(_func(world, "import", key, name), f))
    linker.define_unknown_imports_as_traps(component)
    instance = linker.instantiate(store, component)
    kept: Dict[int, Any] = {}
    out = []
    for i, step in enumerate(sc.steps):
        if step[0] == "drop":
            kept[step[1].step].drop(store)
            out.append(("dropped",))
            continue
        _, key, name, args = step
        func = _func(world, "export", key, name)
        within = instance.get_export_index(store, key) if key is not None else None
        raw = instance.get_func(store, instance.get_export_index(store, name, within))
        values = [to_raw(v, p.type) for v, p in zip(_resolve(args, kept), func.params)]

        def call() -> Any:
            value = raw(store, *values)
            raw.post_return(store)
            return value

        outcome, kept[i] = _outcome(call, func, norm_raw, False)
        out.append(outcome)
    return out


# -- the scenarios ------------------------------------------------------------------------------------

def call(key: Optional[str], name: str, *args: Any) -> Tuple[Any, ...]:
    return ("call", key, name, args)


def ident(*args: Any) -> Any:
    return args[0] if len(args) == 1 else args


NUMBERS = "test:numbers/test"
INTS = {"u8": (0, 255), "s8": (-128, 127), "u16": (0, 65535), "s16": (-32768, 32767),
        "u32": (0, 2**32 - 1), "s32": (-(2**31), 2**31 - 1), "u64": (0, 2**64 - 1), "s64": (-(2**63), 2**63 - 1)}
FLOATS = (1.0, 0.0, -0.0, math.inf, -math.inf, math.nan, 3.4028234663852886e38, 1e-45, 0.1)


def _numbers_host() -> Dict[str, Any]:
    scalar = [0]

    def set_scalar(v: int) -> None:
        scalar[0] = v

    host: Dict[str, Any] = {f"roundtrip-{n}": ident for n in [*INTS, "f32", "f64", "char"]}
    host.update({"set-scalar": set_scalar, "get-scalar": lambda: scalar[0]})
    return {NUMBERS: host}


def _numbers_steps(key: str) -> List[Tuple[Any, ...]]:
    steps = [call(key, f"roundtrip-{n}", v) for n, (lo, hi) in INTS.items() for v in (1, lo, hi)]
    steps += [call(key, f"roundtrip-{f}", v) for f in ("f32", "f64") for v in FLOATS]
    steps += [call(key, "roundtrip-char", c) for c in ("a", " ", "🚩", "\U0010ffff", "\x00")]
    steps += [call(key, "set-scalar", 2), call(key, "get-scalar"), call(key, "set-scalar", 4),
              call(key, "get-scalar")]
    return steps


LISTS = "test:lists/test"


def _lists_host() -> Dict[str, Any]:
    def expect(want: Any) -> Callable[..., None]:
        def check(*got: Any) -> None:
            assert (got[0] if len(got) == 1 else got) == want, got
        return check

    bounds = {8: ((0, 255), (-128, 127)), 16: ((0, 65535), (-32768, 32767)),
              32: ((0, 2**32 - 1), (-(2**31), 2**31 - 1)), 64: ((0, 2**64 - 1), (-(2**63), 2**63 - 1))}
    host: Dict[str, Any] = {
        "empty-list-param": expect(b""), "empty-string-param": expect(""),
        "empty-list-result": lambda: b"", "empty-string-result": lambda: "",
        "list-param": expect(b"\x01\x02\x03\x04"), "list-param2": expect("foo"),
        "list-param3": expect(["foo", "bar", "baz"]), "list-param4": expect([["foo", "bar"], ["baz"]]),
        "list-param5": expect([(1, 2, 3), (4, 5, 6)]), "list-param-large": lambda xs: None,
        "list-result": lambda: b"\x01\x02\x03\x04\x05", "list-result2": lambda: "hello!",
        "list-result3": lambda: ["hello,", "world!"], "list-roundtrip": ident, "string-roundtrip": ident,
        "list-minmax-float": lambda u, s: (u, s),
    }
    for bits in bounds:
        host[f"list-minmax{bits}"] = lambda u, s: (u, s)
    return {LISTS: host}


def _kitchen_steps() -> List[Tuple[Any, ...]]:
    from wasm_import.types._pytypes import class_for as cls_for

    world = w.decode(_guest("kitchen").read_bytes())
    iface = world.exports["test:kitchen/echo@0.1.0"]
    ty = iface.types
    Person = cls_for(ty["person-info"])
    Rect = cls_for(ty["rect-size"])
    shapes = {n: c for n, c, _ in variant_classes(ty["shape"]).cases}
    Drawing = cls_for(ty["drawing"])
    Light, Perm, F32s = cls_for(ty["traffic-light"]), cls_for(ty["permissions"]), cls_for(ty["flags32"])
    errors = {n: c for n, c, _ in variant_classes(ty["parse-error"]).cases}
    E = "test:kitchen/echo@0.1.0"
    steps = [call(None, "add", 1, 2), call(None, "add", 2**31 - 1, 1), call(None, "bump"), call(None, "bump")]
    steps += [call(E, "echo-bool", b) for b in (True, False)]
    steps += [call(E, f"echo-{n}", v) for n, (lo, hi) in INTS.items() for v in (lo, hi, 7)]
    steps += [call(E, f"echo-{f}", v) for f in ("f32", "f64") for v in FLOATS]
    steps += [call(E, "echo-char", c) for c in ("x", "é", "🚩")]
    steps += [call(E, "echo-string", s) for s in ("", "héllo", "🚀" * 1000)]
    steps += [call(E, "echo-bytes", b) for b in (b"", bytes(range(256)) * 10)]
    steps += [call(E, "echo-string-list", ["a", "", "ü"]), call(E, "echo-nested-list", [[1, 2], [], [2**32 - 1]]),
              call(E, "echo-tuple", (7, "x", 2.5)),
              call(E, "echo-record", Person("Ada", 36, None, ["x", "y"])),
              call(E, "echo-record", Person("", 255, "a@b", []))]
    for shape in (shapes["none"](), shapes["circle"](1.5), shapes["rectangle"](Rect(2.0, 3.0)),
                  shapes["named-shape"]("star"), shapes["unit-square"]()):
        steps += [call(E, "echo-variant", shape), call(E, "echo-drawing", Drawing("t", shape, 3))]
    steps += [call(E, "echo-enum", v) for v in Light]
    steps += [call(E, "echo-flags", v) for v in (Perm(0), Perm.READ, Perm.READ | Perm.EXEC_BIT)]
    steps += [call(E, "echo-flags32", v) for v in (F32s(0), F32s(1 << 31), F32s(0xFFFFFFFF))]
    steps += [call(E, "echo-option", v) for v in (None, "", "x")]
    steps += [call(E, "echo-nested-option", v) for v in (None, Some(None), Some(42))]
    steps += [call(E, "echo-result", v) for v in (Ok(5), Err("no"))]
    steps += [call(E, "echo-result-err-only", v) for v in (Ok(None), Err("e"))]
    steps += [call(E, "echo-result-ok-only", v) for v in (Ok("o"), Err(None))]
    steps += [call(E, "echo-result-empty", v) for v in (Ok(None), Err(None))]
    steps += [call(E, "echo-result-list", [Ok(1), Err("x")]), call(E, "echo-option-list", [None, "a"])]
    steps += [call(E, "checked-div", 7, 2), call(E, "checked-div", 1, 0), call(E, "parse-number", "123"),
              call(E, "parse-number", ""), call(E, "parse-number", "1x"), call(E, "require-even", 2),
              call(E, "require-even", 3), call(E, "try-unit", True), call(E, "try-unit", False)]
    n = len(steps)
    steps += [call(E, "[constructor]counter", 10), call(E, "[method]counter.increment", Ref(n)),
              call(E, "[method]counter.get", Ref(n)), call(E, "[constructor]counter", 5),
              call(E, "[static]counter.merge", Ref(n), Ref(n + 3)), call(E, "[method]counter.get", Ref(n + 4)),
              call(E, "echo-resource-pair", (Ref(n), Ref(n + 3))), ("drop", Ref(n + 4)),
              call(E, "fail"), call(E, "echo-u8", 1)]
    assert errors  # parse-error's classes exist (the guest returns them)
    return steps


def _case(td: Any, name: str, *payload: Any) -> Any:
    return {n: c for n, c, _ in variant_classes(td).cases}[name](*payload)


VARIANTS = "test:variants/test"


def _variants() -> Scenario:
    sc = Scenario("variants", "corpus:jco/variants.component.wasm", [])
    ty = w.decode(sc.path().read_bytes()).exports[VARIANTS].types
    E1, Errno = class_for(ty["e1"]), class_for(ty["my-errno"])

    def roundtrip_result(a: Any) -> float:
        if isinstance(a, Ok):
            return float(a.value)
        raise Err(int(a.value))

    def variant_enums(a: bool, b: Any, c: Any) -> Any:
        assert (a, b, c) == (True, Ok(None), Errno.SUCCESS), (a, b, c)
        return (False, Err(None), Errno.A)

    sc.host = {VARIANTS: {"roundtrip-option": lambda a: None if a is None else int(a),
                          "roundtrip-result": roundtrip_result, "roundtrip-enum": ident,
                          "invert-bool": lambda a: not a, "variant-casts": ident, "variant-zeros": ident,
                          "variant-typedefs": lambda a, b, c: None, "variant-enums": variant_enums}}
    casts_a = tuple(_case(ty[f"c{i}"], "a", v) for i, v in zip(range(1, 7), (1, 2, 3, 4, 5, 6.0)))
    casts_b = tuple(_case(ty[f"c{i}"], "b", v) for i, v in zip(range(1, 7), (1, 2.0, 3.0, 4.0, 5.0, 6.0)))
    zeros = (_case(ty["z1"], "a", 1), _case(ty["z2"], "a", 2), _case(ty["z3"], "a", 3.0), _case(ty["z4"], "a", 4.0))
    zeros_b = tuple(_case(ty[f"z{i}"], "b") for i in range(1, 5))
    sc.steps = [call(None, "test-imports"),
                *[call(VARIANTS, "roundtrip-option", v) for v in (1.0, None, 2.0, 255.9, math.nan)],
                *[call(VARIANTS, "roundtrip-result", v) for v in (Ok(2), Ok(4), Err(5.3), Err(math.inf))],
                call(VARIANTS, "roundtrip-enum", E1.A), call(VARIANTS, "roundtrip-enum", E1.B),
                call(VARIANTS, "invert-bool", True), call(VARIANTS, "invert-bool", False),
                call(VARIANTS, "variant-casts", casts_a), call(VARIANTS, "variant-casts", casts_b),
                call(VARIANTS, "variant-zeros", zeros), call(VARIANTS, "variant-zeros", zeros_b),
                call(VARIANTS, "variant-typedefs", None, False, Err(None)),
                call(VARIANTS, "variant-enums", True, Ok(None), Errno.SUCCESS), call(VARIANTS, "invert-bool", True)]
    return sc


FLAVORFUL = "test:flavorful/test"


def _flavorful() -> Scenario:
    sc = Scenario("flavorful", "corpus:jco/flavorful.component.wasm", [])
    ty = w.decode(sc.path().read_bytes()).exports[FLAVORFUL].types
    R1, R2, R3, R4 = (class_for(ty[f"list-in-record{i}"]) for i in range(1, 5))
    Errno = class_for(ty["my-errno"])
    errno_calls = [0]

    def errno_result() -> None:
        errno_calls[0] += 1
        if errno_calls[0] == 1:
            raise Err(Errno.B)

    sc.host = {FLAVORFUL: {
        "f-list-in-record1": lambda a: None, "f-list-in-record2": lambda: R2("list_in_record2"),
        "f-list-in-record3": lambda a: R3("list_in_record3 output"), "f-list-in-record4": lambda a: R4("result4"),
        "f-list-in-variant1": lambda a, b: None, "f-list-in-variant2": lambda: "list_in_variant2",
        "f-list-in-variant3": lambda a: "output3", "errno-result": errno_result,
        "list-typedefs": lambda a, c: (b"typedef3", ["typedef4"]),
        "list-of-variants": lambda a, b, c: ([False, True], [Err(None), Ok(None)], [Errno.A, Errno.B])}}
    sc.steps = [call(None, "test-imports"),
                call(FLAVORFUL, "f-list-in-record1", R1("list_in_record1")), call(FLAVORFUL, "f-list-in-record2"),
                call(FLAVORFUL, "f-list-in-record3", R3("list_in_record3 input")),
                call(FLAVORFUL, "f-list-in-record4", R4("input4")),
                call(FLAVORFUL, "f-list-in-variant1", "foo", Err("bar")), call(FLAVORFUL, "f-list-in-variant2"),
                call(FLAVORFUL, "f-list-in-variant3", "input3"), call(FLAVORFUL, "errno-result"),
                call(FLAVORFUL, "errno-result"), call(FLAVORFUL, "list-typedefs", "typedef1", ["typedef2"]),
                call(FLAVORFUL, "list-of-variants", [True, False], [Ok(None), Err(None)],
                     [Errno.SUCCESS, Errno.A])]
    return sc


SCENARIOS: List[Callable[[], Scenario]] = [
    _variants,
    _flavorful,
    lambda: Scenario("numbers", "corpus:jco/numbers.component.wasm",
                     [call(None, "test-imports"), *_numbers_steps(NUMBERS)], _numbers_host()),
    lambda: Scenario("strings", "corpus:jco/strings.component.wasm",
                     [call(None, "test-imports"), call(None, "return-empty"), call(None, "roundtrip", "str"),
                      call(None, "roundtrip", "🚀🚀🚀 𠈄𓀀"), call(None, "roundtrip", "ÿ" * 5000)],
                     {"test:strings/imports": {"take-basic": lambda s: None,
                                               "return-unicode": lambda: "🚀🚀🚀 𠈄𓀀"}}),
    lambda: Scenario("lists", "corpus:jco/lists.component.wasm",
                     [call(None, "allocated-bytes"), call(None, "test-imports"),
                      call(LISTS, "empty-list-param", b""), call(LISTS, "empty-string-param", ""),
                      call(LISTS, "empty-list-result"), call(LISTS, "empty-string-result"),
                      call(LISTS, "list-param", b"\x01\x02\x03\x04"), call(LISTS, "list-param2", "foo"),
                      call(LISTS, "list-param3", ["foo", "bar", "baz"]),
                      call(LISTS, "list-param4", [["foo", "bar"], ["baz"]]),
                      call(LISTS, "list-param5", [(1, 2, 3), (4, 5, 6)]),
                      call(LISTS, "list-param-large", ["string"] * 1000), call(LISTS, "list-result"),
                      call(LISTS, "list-result2"), call(LISTS, "list-result3"),
                      call(LISTS, "list-roundtrip", b"\x00\xff" * 1000),
                      *[call(LISTS, "string-roundtrip", s) for s in ("x", "", "hello ⚑ world")],
                      call(None, "allocated-bytes"),
                      call(LISTS, "list-minmax8", b"\x00\xff", [-128, 127]), call(LISTS, "list-result")],
                     _lists_host()),
    lambda: Scenario("records", "corpus:jco/records.component.wasm",
                     [call(None, "test-imports"), call("test:records/test", "multiple-results"),
                      call("test:records/test", "swap-tuple", (1, 2)), call("test:records/test", "tuple1", (1,))],
                     {"test:records/test": {"multiple-results": lambda: (4, 5), "swap-tuple": lambda t: (t[1], t[0]),
                                            "roundtrip-flags1": ident, "roundtrip-flags2": ident,
                                            "roundtrip-flags3": ident,
                                            "roundtrip-record1": ident, "tuple1": ident}}),
    lambda: Scenario("options", "corpus:jco/options.component.wasm",
                     [call(None, "test-imports"), *[call("test:options/test", n) for n in
                                                    ("option-none-result", "option-some-result")],
                      call("test:options/test", "option-none-param", None),
                      call("test:options/test", "option-some-param", "foo"),
                      call("test:options/test", "option-roundtrip", "foo"),
                      call("test:options/test", "option-roundtrip", None),
                      *[call("test:options/test", "double-option-roundtrip", v) for v in (Some(42), Some(None), None)]],
                     {"test:options/test": {"option-none-param": lambda x: None, "option-some-param": lambda x: None,
                                            "option-none-result": lambda: None, "option-some-result": lambda: "foo",
                                            "option-roundtrip": ident, "double-option-roundtrip": ident}}),
    lambda: Scenario("many-arguments-c", "corpus:jco/many-arguments.component.wasm",
                     [call(None, "many-arguments", *range(1, 17)), call(None, "many-arguments", *[2**64 - 1] * 16)],
                     {"imports": {"many-arguments": lambda *a: None}}),
    lambda: Scenario("many-arguments-rust", "corpus:jco/many_arguments.component.wasm",
                     [call(None, "many-arguments", *range(1, 17))], {"imports": {"many-arguments": lambda *a: None}}),
    lambda: Scenario("type-section-suffix", "corpus:jco/type_section_suffix.component.wasm", [call(None, "run")],
                     {"test:suffix/imports": {"foo": lambda: None}, "foo": lambda: None, "bar": lambda: None}),
    *[(lambda p=p: Scenario(f"adder-{p.split('/')[-1]}", f"corpus:{p}",
                            [call("docs:adder/add@0.1.0", "add", 1, 2),
                             call("docs:adder/add@0.1.0", "add", 2**32 - 1, 2)]))
      for p in ("jco/adder.component.wasm", "jco/examples__transpile__adder__adder.wasm",
                "component-docs/example-host__add.wasm")],
    lambda: Scenario("asmjs-bigint", "corpus:jco/asmjs_bigint.component.wasm",
                     [call(None, "add", 1, 2), call(None, "add", 2**33, -(2**42)),
                      call(None, "add", 2**63 - 1, 1)]),
    lambda: Scenario("example-guest-export", "corpus:jco/example_guest_export.wasm",
                     [call("example:component/backend@0.1.0", "[constructor]scalars"),
                      call("example:component/backend@0.1.0", "[static]scalars.get-a"),
                      call("example:component/backend@0.1.0", "[method]scalars.get-b", Ref(0)),
                      call("example:component/backend@0.1.0", "scalar-arg", Ref(0)), ("drop", Ref(0))]),
    lambda: Scenario("resource-borrow-export", "corpus:jco/resource_borrow_export.component.wasm",
                     [call("test:resource-borrow-export/test", "[constructor]thing", 42),
                      call("test:resource-borrow-export/test", "foo", Ref(0)), ("drop", Ref(0))]),
    lambda: Scenario("resource-into-inner", "corpus:jco/resource_into_inner.component.wasm",
                     [call("test:resource-into-inner/test", "test")]),
    lambda: Scenario("resources-exports", "corpus:jco/resources.component.wasm",
                     [call("exports", "[constructor]x", 5), call("exports", "[method]x.get-a", Ref(0)),
                      call("exports", "[method]x.set-a", Ref(0), 10), call("exports", "[method]x.get-a", Ref(0)),
                      call("exports", "[constructor]z", 10), call("exports", "[constructor]z", 20),
                      call("exports", "[static]x.add", Ref(0), 5), call("exports", "[method]x.get-a", Ref(6)),
                      call("exports", "add", Ref(4), Ref(5)), call("exports", "[method]z.get-a", Ref(8)),
                      call("exports", "[static]z.num-dropped"), ("drop", Ref(4)), ("drop", Ref(5)),
                      call("exports", "consume", Ref(6)), call("exports", "[static]z.num-dropped"),
                      call("exports", "[constructor]kebab-case", 7),
                      call("exports", "[method]kebab-case.get-a", Ref(15)),
                      call("exports", "[static]kebab-case.take-owned", Ref(15))]),
    lambda: Scenario("async-call-sync-abi", "corpus:jco/async_call.component.wasm",
                     [call(None, "run-sync"), call(None, "run-async")],
                     {"something:test/test-interface": {"call-async": lambda: "called async",
                                                         "call-sync": lambda: "called sync"}}),
    *[(lambda p=p: Scenario(p.split("/")[-1], f"corpus:{p}",
                            [call("calvinrp:test-async-funcs/hello@0.1.0", "hello-world")] * 2,
                            {"calvinrp:test-async-funcs/hello@0.1.0": {"hello-world": lambda: "hello from the host"}}))
      for p in ("jco/simple-nested.component.wasm", "jco/simple-nested-optimized.component.wasm")],
    # -- the repo's own guests --
    lambda: Scenario("guest-adder", "guest:adder", [call("docs:adder/add@0.1.0", "add", 40, 2)]),
    lambda: Scenario("guest-counter", "guest:counter", [call("test:state/counter", "next")] * 3),
    lambda: Scenario("guest-stringcounter", "guest:stringcounter", [call("test:state/counter", "next")] * 3),
    lambda: Scenario("guest-relay", "guest:relay", [call("test:state/counter", "next")] * 2,
                     {"test:state/counter": {"next": lambda: 7}}),
    lambda: Scenario("guest-hostile", "guest:hostile",
                     [call("test:hostile/api", "count", 1000), call("test:hostile/api", "pages"),
                      call("test:hostile/api", "grow", 2), call("test:hostile/api", "pages"),
                      call("test:hostile/api", "grow", 70000), call("test:hostile/api", "out-of-bounds"),
                      call("test:hostile/api", "pages")]),
    lambda: Scenario("guest-hostile-bad-string", "guest:hostile",
                     [call("test:hostile/api", "bad-string"), call("test:hostile/api", "count", 1)]),
    lambda: Scenario("guest-hostile-huge-list", "guest:hostile", [call("test:hostile/api", "huge-list")]),
    lambda: Scenario("guest-hostile-recurse", "guest:hostile", [call("test:hostile/api", "recurse")]),
    lambda: Scenario("guest-bulk", "guest:bulk", _bulk_steps(), {"test:bulk/host": {"tick": lambda x: (x * 3 + 1) & 0xFFFFFFFF}}),
    lambda: Scenario("guest-kitchen", "guest:kitchen", _kitchen_steps()),
]


def _bulk_steps() -> List[Tuple[Any, ...]]:
    world = w.decode(_guest("bulk").read_bytes())
    Sample = class_for(world.exports["test:bulk/api"].types["sample"])
    A = "test:bulk/api"
    return [call(A, "add", 1, 2), call(A, "add", 2**32 - 1, 2**32 - 1), call(A, "call-host", 5),
            call(A, "call-host", 2**32 - 1), call(A, "echo-bytes", bytes(range(256)) * 100),
            call(A, "echo-bytes", b""), call(A, "echo-string", "héllo ✓ 🚀" * 100), call(A, "echo-string", ""),
            call(A, "echo-u32s", list(range(0, 2**32 - 1, 2**20))), call(A, "echo-u32s", []),
            call(A, "echo-sample", Sample(7, 2.5, math.nan, True)), call(A, "echo-sample", Sample(0, -0.0, math.inf, False)),
            call(A, "echo-strings", ["", "a", "ü" * 300]), call(A, "echo-samples", [Sample(1, 1.0, 2.0, True)] * 3)]


@pytest.mark.parametrize("make", SCENARIOS, ids=lambda m: m().id)
def test_new_runtime_matches_raw_wasmtime(make: Callable[[], Scenario]) -> None:
    scenario = make()
    world = w.decode(scenario.path().read_bytes())
    ours = run_ours(scenario, world)
    oracle = run_raw(make(), world)  # a fresh scenario: host functions may keep state
    mismatches = [(i, scenario.steps[i], o, r) for i, (o, r) in enumerate(zip(ours, oracle)) if o != r]
    assert mismatches == [], "\n".join(f"step {i} {s[:3]}: ours {o!r} != raw {r!r}" for i, s, o, r in mismatches)
    assert len(ours) == len(oracle) == len(scenario.steps)
