"""The component plan (`wasm_import.runtime._plan.build_plan`), checked by wasmtime itself.

For every component we have (the shared corpus, the repo's WAT and componentize-py
guests), the plan's core modules are compiled with wasmtime-py's *core* API (test-only)
and instantiated in plan order, each import wired as the plan says: to an earlier
instance's export, or to a stand-in host function for a lowering or an intrinsic whose
import type must equal the canonical ABI flattening of the lowered function. wasmtime
then checks every wire's type, start functions run, and every lift's core function must
have the flattened signature of its WIT function. Hostile input must give DecodeError.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import wasmtime

from tests import _build
from wasm_import import wit
from wasm_import.wit import _model as w
from wasm_import._errors import DecodeError
from wasm_import.runtime import _plan as p
from wasm_import.runtime._plan import build_plan

REPO = Path(__file__).resolve().parents[2]


# -- an independent canonical-ABI flattening (the spec's flatten_type / flatten_functype) ---

MAX_FLAT_PARAMS, MAX_FLAT_RESULTS = 16, 1
_PRIM_FLAT: Dict[w.Primitive, Any] = {w.Primitive.S64: "i64", w.Primitive.U64: "i64", w.Primitive.F32: "f32",
              w.Primitive.F64: "f64", w.Primitive.STRING: ("i32", "i32")}


def _join(a: str, b: str) -> str:
    if a == b:
        return a
    if {a, b} == {"i32", "f32"}:
        return "i32"
    return "i64"


def flatten(ty: w.Type) -> List[str]:
    ty = w.unalias(ty)
    if isinstance(ty, w.Primitive):
        flat = _PRIM_FLAT.get(ty, "i32")
        return list(flat) if isinstance(flat, tuple) else [flat]
    kind = ty.kind
    if isinstance(kind, (w.List, w.Map)):
        return ["i32", "i32"]
    if isinstance(kind, w.FixedList):
        return flatten(kind.element) * kind.size
    if isinstance(kind, w.Record):
        return [v for f in kind.fields for v in flatten(f.type)]
    if isinstance(kind, w.Tuple):
        return [v for t in kind.types for v in flatten(t)]
    if isinstance(kind, w.Flags):
        return ["i32"] * ((len(kind.flags) + 31) // 32)
    cases: Optional[List[Optional[w.Type]]] = None
    if isinstance(kind, w.Variant):
        cases = [c.type for c in kind.cases]
    elif isinstance(kind, w.Option):
        cases = [None, kind.type]
    elif isinstance(kind, w.Result):
        cases = [kind.ok, kind.err]
    if cases is not None:
        payload: List[str] = []
        for case in cases:
            if case is None:
                continue
            for i, v in enumerate(flatten(case)):
                if i < len(payload):
                    payload[i] = _join(payload[i], v)
                else:
                    payload.append(v)
        return ["i32", *payload]
    return ["i32"]  # enum, own, borrow, future, stream


def flatten_functype(func: w.Function, context: str) -> Tuple[List[str], List[str]]:
    params = [v for prm in func.params for v in flatten(prm.type)]
    results = flatten(func.result) if func.result is not None else []
    if len(params) > MAX_FLAT_PARAMS:
        params = ["i32"]
    if len(results) > MAX_FLAT_RESULTS:
        if context == "lift":
            results = ["i32"]
        else:
            params, results = [*params, "i32"], []
    return params, results


def flatten_async_functype(func: w.Function, context: str) -> Tuple[List[str], List[str]]:
    """An async lower: params flat up to 4 (else a pointer), a return pointer, i32 back."""
    assert context == "lower"
    params = [v for prm in func.params for v in flatten(prm.type)]
    if len(params) > 4:
        params = ["i32"]
    if func.result is not None:
        params = [*params, "i32"]
    return params, ["i32"]


# -- running a plan's wiring in wasmtime ---------------------------------------------------

_CONFIG = wasmtime.Config()
_CONFIG.cranelift_opt_level = "none"  # only types and wiring are tested here
_ENGINE = wasmtime.Engine(_CONFIG)
_COMPILED: Dict[bytes, wasmtime.Module] = {}  # componentize-py guests share big modules


def _compile(code: bytes) -> wasmtime.Module:
    key = hashlib.sha256(code).digest()
    module = _COMPILED.get(key)
    if module is None:
        module = _COMPILED[key] = wasmtime.Module(_ENGINE, code)
    return module


def _sig(ft: wasmtime.FuncType) -> Tuple[List[str], List[str]]:
    return [str(v) for v in ft.params], [str(v) for v in ft.results]


def _zeros(results: List[str]) -> Any:
    values = [0.0 if r in ("f32", "f64") else 0 for r in results]
    return None if not values else values[0] if len(values) == 1 else values


class Wired:
    """A plan instantiated for real, with every wire checked as it is made."""

    def __init__(self, data: bytes, plan: p.ComponentPlan) -> None:
        self.plan = plan
        self.store = wasmtime.Store(_ENGINE)
        self.instances: List[wasmtime.Instance] = []
        self.standins: Dict[Tuple[str, int], wasmtime.Func] = {}
        modules = [_compile(data[start:end]) for start, end in plan.modules]
        for step in plan.instances:
            assert isinstance(step, p.Instantiate)  # build_plan resolves bags
            module = modules[step.module]
            assert len(step.args) == len(module.imports)
            args = [self.resolve(ref, imp.type) for ref, imp in zip(step.args, module.imports)]
            self.instances.append(wasmtime.Instance(self.store, module, args))

    def resolve(self, ref: p.CoreRef, wanted: Any = None) -> Any:
        if isinstance(ref, p.CoreExport):
            return self.instances[ref.instance].exports(self.store)[ref.name]
        assert isinstance(wanted, wasmtime.FuncType), f"{ref} bound to a non-function import"
        sig = _sig(wanted)
        if isinstance(ref, p.Lowered):
            lowering = self.plan.lowerings[ref.index]
            flat = (flatten_async_functype(lowering.type, "lower") if lowering.options.is_async
                    else flatten_functype(lowering.type, "lower"))
            assert sig == flat, (lowering, sig)
            if isinstance(lowering, p.LowerLifted):
                assert lowering.type == lowering.lift.type or _same_shape(lowering)
        else:
            intrinsic = self.plan.intrinsics[ref.index]
            if isinstance(intrinsic, p.ResourceIntrinsic):
                expected = {"new": (["i32"], ["i32"]), "rep": (["i32"], ["i32"]),
                            "drop": (["i32"], [])}[intrinsic.op]
                assert sig == expected, (intrinsic, sig)
        key = (type(ref).__name__, ref.index)
        if key not in self.standins:
            results = sig[1]
            self.standins[key] = wasmtime.Func(self.store, wanted,
                                               lambda *args: _zeros(results))
        return self.standins[key]

    def check_lift(self, lift: p.Lift) -> None:
        func = self.resolve(lift.func)
        assert isinstance(func, wasmtime.Func), lift
        params, results = flatten_functype(lift.type, "lift")
        if lift.options.is_async:  # callback form: results go through task.return
            results = ["i32"] if lift.options.callback is not None else []
        assert _sig(func.type(self.store)) == (params, results), (lift.type, func.type(self.store))
        self.check_options(lift.options, results)

    def check_options(self, options: p.Options, lift_results: Optional[List[str]] = None) -> None:
        assert 0 <= options.instance < self.plan.component_instances
        assert options.string_encoding in ("utf8", "utf16", "latin1+utf16")
        if options.memory is not None:
            assert isinstance(self.resolve(options.memory), wasmtime.Memory)
        if options.realloc is not None:
            realloc = self.resolve(options.realloc)
            assert _sig(realloc.type(self.store)) == (["i32"] * 4, ["i32"])
        if options.post_return is not None and lift_results is not None:
            post = self.resolve(options.post_return)
            assert _sig(post.type(self.store)) == (lift_results, [])

    def check_all(self) -> None:
        for lift in self.plan.exports.values():
            self.check_lift(lift)
        for lowering in self.plan.lowerings:
            self.check_options(lowering.options)
            if isinstance(lowering, p.LowerLifted):
                self.check_lift(lowering.lift)
        for resource in self.plan.resources:
            if resource.dtor is not None:
                dtor = self.resolve(resource.dtor)
                assert _sig(dtor.type(self.store)) == (["i32"], [])


def _same_shape(lowering: p.LowerLifted) -> bool:
    return (flatten_functype(lowering.type, "lower")
            == flatten_functype(lowering.lift.type, "lower"))


def check_against_world(data: bytes, plan: p.ComponentPlan) -> None:
    """Keys are the world's: exports cover every exported function, host lowerings name
    imported functions, and host resources name imported resources."""
    world = wit.decode(data)
    expected: set = set()
    for key, item in world.exports.items():
        if isinstance(item, w.Interface):
            expected |= {(key, name) for name in item.functions}
            for name, td in item.types.items():
                if isinstance(td.kind, w.Resource):
                    assert (key, name) in plan.export_resources
        elif isinstance(item, w.Function):
            expected.add((None, key))
    assert set(plan.exports) == expected
    for (export_key, name), lift in plan.exports.items():
        exported = world.exports[export_key if export_key is not None else name]
        assert lift.type == (exported.functions[name] if isinstance(exported, w.Interface)
                             else exported)
    for lowering in plan.lowerings:
        if isinstance(lowering, p.LowerHost):
            item = world.imports[lowering.key]
            func = item.functions[lowering.name] if isinstance(item, w.Interface) else item
            assert lowering.name == lowering.key or isinstance(item, w.Interface)
            assert lowering.type == func
    for (key, name), index in plan.import_resources.items():
        resource = plan.resources[index]
        assert (resource.instance, resource.import_key, resource.import_name) == (None, key, name)
        item = world.imports[key]
        assert isinstance(item.types[name].kind, w.Resource) if isinstance(item, w.Interface) \
            else isinstance(item.kind, w.Resource)
    for td, index in plan.resource_types.items():
        assert isinstance(td.kind, w.Resource) and 0 <= index < len(plan.resources)
    for intrinsic in plan.intrinsics:
        assert 0 <= intrinsic.instance < plan.component_instances
        if isinstance(intrinsic, p.ResourceIntrinsic):
            assert 0 <= intrinsic.resource < len(plan.resources)


def plan_and_wire(data: bytes) -> Tuple[p.ComponentPlan, Wired]:
    plan = build_plan(data)
    check_against_world(data, plan)
    wired = Wired(data, plan)
    wired.check_all()
    return plan, wired


# -- the components ------------------------------------------------------------------------

def _corpus_files(corpus: Path) -> List[Path]:
    return sorted(path for sub in ("jco", "jco-legacy", "component-docs")
                  for path in (corpus / sub).glob("*.wasm"))


PRE_STANDARD = {"numbers-7800c38c.component.wasm", "smoke-7800c38c.component.wasm"}


def test_every_corpus_component_plans_and_wires(corpus: Path) -> None:
    files = _corpus_files(corpus)
    assert len(files) >= 39
    for path in files:
        data = path.read_bytes()
        if path.name in PRE_STANDARD:
            with pytest.raises(DecodeError, match="pre-standard 2023 component encoding"):
                build_plan(data)
            continue
        try:
            plan_and_wire(data)
        except Exception as e:
            raise AssertionError(f"{path.name}: {e!r}") from e


WAT_GUESTS = sorted(_build.WAT_GUESTS)


@pytest.mark.parametrize("name", WAT_GUESTS)
def test_wat_guests_plan_and_wire(name: str) -> None:
    plan_and_wire(_build.build_wat_guest(name).read_bytes())


def test_greeter_example_plans_and_wires(tmp_path: Path) -> None:
    out = tmp_path / "greeter.wasm"
    _build.wasm_tools("parse", REPO / "examples" / "greeter.wat", "-o", out)
    plan, _ = plan_and_wire(out.read_bytes())
    assert [type(x).__name__ for x in plan.lowerings] == ["LowerHost"]


@pytest.mark.parametrize("name", sorted(_build.PYTHON_GUESTS))
def test_componentize_py_guests_plan_and_wire(name: str) -> None:
    plan_and_wire(_build.build_python_guest(name).read_bytes())


def test_relay_plan_is_exactly_this() -> None:
    """A flat component: one module, its import bound through an inline bag to a host lowering."""
    plan = build_plan(_build.build_wat_guest("relay").read_bytes())
    options = p.Options(0, "utf8", None, None, None)
    assert len(plan.modules) == 1
    assert plan.instances == [p.Instantiate(0, (p.Lowered(0),))]
    (lowering,) = plan.lowerings
    assert isinstance(lowering, p.LowerHost)
    assert (lowering.key, lowering.name, lowering.options) == ("test:state/counter", "next",
                                                               options)
    assert lowering.type == w.Function("next", w.FunctionKind.FREESTANDING, (), w.Primitive.U32)
    assert plan.exports == {("test:state/counter", "next"): p.Lift(p.CoreExport(0, "next"),
                                                                    lowering.type, options)}
    assert (plan.intrinsics, plan.resources, plan.component_instances) == ([], [], 1)


def test_twoborrows_host_resource_and_intrinsic() -> None:
    plan = build_plan(_build.build_wat_guest("twoborrows").read_bytes())
    assert plan.resources == [p.ResourceDef("r", None, None, "test:twoborrows/host", "r")]
    assert plan.import_resources == {("test:twoborrows/host", "r"): 0}
    assert plan.intrinsics == [p.ResourceIntrinsic("drop", 0, 0)]


def test_kitchen_exported_resource_is_defined_by_the_guest(kitchen_wasm: Path) -> None:
    plan = build_plan(kitchen_wasm.read_bytes())
    index = plan.export_resources[("test:kitchen/echo@0.1.0", "counter")]
    resource = plan.resources[index]
    assert (resource.name, resource.instance, resource.import_key) == ("counter", 0, None)
    assert resource.dtor is not None
    ops = {(i.op, i.resource) for i in plan.intrinsics if isinstance(i, p.ResourceIntrinsic)}
    assert ops == {("new", index), ("rep", index), ("drop", index)}


def test_composed_component_calls_between_subcomponents(corpus: Path) -> None:
    """env-allow.composed: a guest composed with wasi-virt. The guest's get-environment is a
    composed call into the virt instance; only the virt instance lowers the host's."""
    data = (corpus / "jco" / "jco__components__env-allow.composed.wasm").read_bytes()
    plan, _ = plan_and_wire(data)
    (composed,) = [x for x in plan.lowerings if isinstance(x, p.LowerLifted)
                   and x.lift.func == p.CoreExport(1, "wasi:cli/environment@0.2.1#get-environment")]
    virt, guest = composed.lift.options.instance, composed.options.instance
    assert virt != guest and composed.type.name == "get-environment"
    host = [x for x in plan.lowerings if isinstance(x, p.LowerHost)
            and x.key == "wasi:cli/environment@0.2.1"]
    assert sorted(x.name for x in host) == ["get-arguments", "get-environment", "initial-cwd"]
    assert {x.options.instance for x in host} == {virt}


def test_nested_component_resources_follow_instantiation(corpus: Path) -> None:
    """stdio.composed: wasi-virt defines its own output-stream etc. (fresh resources of its
    instance); the guest's handles are to those, and the host's resources reach only virt."""
    data = (corpus / "jco" / "jco__components__stdio.composed.wasm").read_bytes()
    plan, _ = plan_and_wire(data)
    host = [r for r in plan.resources if r.instance is None]
    assert {(r.import_key, r.import_name) for r in host} == set(plan.import_resources)
    assert ("wasi:io/streams@0.2.1", "output-stream") in plan.import_resources
    (get_stdout,) = [x for x in plan.lowerings if isinstance(x, p.LowerLifted)
                     and x.type.name == "get-stdout"]
    virt = get_stdout.lift.options.instance
    result = get_stdout.type.result
    assert isinstance(result, w.TypeDef) and isinstance(result.kind, w.Own)
    stream = plan.resources[plan.resource_types[result.kind.resource]]
    assert (stream.name, stream.instance) == ("output-stream", virt)
    assert stream.dtor is not None
    for intrinsic in plan.intrinsics:
        if isinstance(intrinsic, p.ResourceIntrinsic) and intrinsic.op != "drop":
            assert plan.resources[intrinsic.resource].instance == intrinsic.instance == virt
    streams = [x for x in plan.lowerings
               if isinstance(x, p.LowerHost) and x.key == "wasi:io/streams@0.2.1"]
    assert streams and {x.options.instance for x in streams} == {virt}


def test_plan_survives_pickling(corpus: Path) -> None:
    data = (corpus / "jco" / "jco__components__stdio.composed.wasm").read_bytes()
    plan = build_plan(data)
    again = pickle.loads(pickle.dumps(plan))
    assert again == plan
    assert set(again.resource_types.values()) == set(plan.resource_types.values())


# -- speed --------------------------------------------------------------------------------

def test_large_componentize_py_guest_plans_fast(kitchen_wasm: Path) -> None:
    data = kitchen_wasm.read_bytes()
    assert len(data) > 10_000_000
    best = min(_timed(build_plan, data) for _ in range(3))
    assert best < 0.1, f"build_plan took {best * 1000:.1f} ms"


def _timed(f: Any, *args: Any) -> float:
    start = time.perf_counter()
    f(*args)
    return time.perf_counter() - start


# -- hostile input -------------------------------------------------------------------------

def _plan_or_decode_error(data: bytes) -> None:
    try:
        build_plan(data)
    except DecodeError as e:
        assert e.offset is None or 0 <= e.offset <= len(data), e
    # anything else (IndexError, RecursionError, KeyError...) fails the test


def test_every_truncation_is_a_decode_error_unless_at_a_section_end() -> None:
    from wasm_import.runtime._parse import sections
    for name in ("relay", "twoborrows", "hostile"):
        data = _build.build_wat_guest(name).read_bytes()
        ends = {8} | {s.body.end for s in sections(data, 0, len(data))}
        for cut in range(len(data)):
            if cut in ends:  # a shorter component, which may well be valid
                _plan_or_decode_error(data[:cut])
                continue
            with pytest.raises(DecodeError):
                build_plan(data[:cut])


def test_corrupted_bytes_give_a_plan_or_a_decode_error(corpus: Path) -> None:
    rng = random.Random(12)
    sources = [_build.build_wat_guest(n).read_bytes() for n in ("relay", "twoborrows", "hostile")]
    sources.append((corpus / "jco" / "simple-nested.component.wasm").read_bytes())
    for data in sources:
        for _ in range(400):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(8, len(data))] = rng.randrange(256)
            _plan_or_decode_error(bytes(mutated))


def _parse(text: str, tmp_path: Path) -> bytes:
    src, out = tmp_path / "c.wat", tmp_path / "c.wasm"
    src.write_text(text)
    _build.wasm_tools("parse", src, "-o", out)
    return out.read_bytes()


def test_deeply_nested_components_are_refused(tmp_path: Path) -> None:
    body = ""
    for _ in range(40):  # each level defines the next and instantiates it
        body = f"(component $c {body}) (instance (instantiate $c))"
    with pytest.raises(DecodeError, match="more than 32 deep"):
        build_plan(_parse(f"(component {body})", tmp_path))


def _chain(length: int, fanout: int) -> str:
    """Components $c1..$c<length>, each instantiating the one before `fanout` times."""
    parts = ["(component", "(component $c0)"]
    for i in range(1, length + 1):
        parts.append(f"(component $c{i} (alias outer 1 $c{i - 1} (component $p))"
                     + " (instance (instantiate $p))" * fanout + ")")
    parts.append(f"(instance (instantiate $c{length})))")
    return " ".join(parts)


def test_long_instantiation_chains_are_refused(tmp_path: Path) -> None:
    """Component n instantiates component n-1 (an outer alias): 40 frames deep."""
    with pytest.raises(DecodeError, match="instantiated more than 32 deep"):
        build_plan(_parse(_chain(40, 1), tmp_path))


def test_exponential_instantiation_is_refused(tmp_path: Path) -> None:
    """Each component instantiates the previous one twice: 2**30 instantiations from 2 KB."""
    data = _parse(_chain(30, 2), tmp_path)
    start = time.perf_counter()
    with pytest.raises(DecodeError, match="too complex"):
        build_plan(data)
    assert time.perf_counter() - start < 5


def test_component_start_functions_are_refused_by_name(tmp_path: Path) -> None:
    data = _parse("""(component
      (core module $m (func (export "f") (result i32) i32.const 1))
      (core instance $i (instantiate $m))
      (func $f (result u32) (canon lift (core func $i "f")))
      (start $f (result (value $v)))
      (export "v" (value $v)))""", tmp_path)
    with pytest.raises(DecodeError, match="component start functions are not supported"):
        build_plan(data)


def test_async_lift_is_kept_and_marked(tmp_path: Path) -> None:
    """An async export plans (so the component loads); the runtime refuses the call."""
    data = _parse("""(component
      (core module $m
        (import "" "task.return" (func $ret (param i32)))
        (func (export "f") (result i32) i32.const 0)
        (func (export "cb") (param i32 i32 i32) (result i32) i32.const 0))
      (core func $ret (canon task.return (result u32)))
      (core instance $i (instantiate $m (with "" (instance (export "task.return" (func $ret))))))
      (func $f (result u32) (canon lift (core func $i "f") async (callback (core func $i "cb"))))
      (export "f" (func $f)))""", tmp_path)
    plan = build_plan(data)
    lift = plan.exports[(None, "f")]
    assert lift.options.is_async and lift.options.callback == p.CoreExport(0, "cb")
    assert plan.intrinsics == [p.BuiltinIntrinsic("task.return", 0, type=w.Primitive.U32,
                                                  options=p.Options(0, "utf8", None, None, None))]
    assert lift.type.is_async is False  # a sync-typed function lifted with the async ABI


def test_missing_core_export_names_the_import(tmp_path: Path) -> None:
    data = _parse("""(component
      (core module $a (func (export "g")))
      (core module $b (import "a" "f" (func)))
      (core instance $ia (instantiate $a))
      (core instance $ib (instantiate $b (with "a" (instance $ia)))))""", tmp_path)
    with pytest.raises(DecodeError, match="import `a` `f`: the core instance supplied has no "
                                          "export `f`") as info:
        build_plan(data)
    assert info.value.offset is not None


def test_imported_core_module_is_refused(tmp_path: Path) -> None:
    data = _parse("""(component (import "m" (core module)))""", tmp_path)
    with pytest.raises(DecodeError, match="imports a core module"):
        build_plan(data)


NESTED_TWICE = """(component
  (import "host" (instance $host
    (export "r" (type (sub resource)))
    (export "host" (func))))
  (import "tick" (func $tick))
  (alias export $host "r" (type $r))
  (alias export $host "host" (func $host_f))
  (component $inner
    (import "r" (type $r (sub resource)))
    (import "f" (func $f))
    (core func $lowered (canon lower (func $f)))
    (core func $drop (canon resource.drop $r))
    (core module $m
      (import "" "f" (func))
      (import "" "drop" (func (param i32)))
      (func (export "dtor") (param i32)))
    (core instance $i (instantiate $m
      (with "" (instance (export "f" (func $lowered)) (export "drop" (func $drop))))))
    (type $s (resource (rep i32) (dtor (core func $i "dtor"))))
    (core func $new (canon resource.new $s))
    (core module $m2
      (import "" "new" (func $new (param i32) (result i32)))
      (func (export "make") (param i32) (result i32) (call $new (local.get 0))))
    (core instance $j (instantiate $m2 (with "" (instance (export "new" (func $new))))))
    (export $s_out "s" (type $s))
    (type $make_t (func (param "x" u32) (result (own $s_out))))
    (func $make (type $make_t) (canon lift (core func $j "make")))
    (export "make" (func $make)))
  (instance $a (instantiate $inner (with "r" (type $r)) (with "f" (func $tick))))
  (instance $b (instantiate $inner (with "r" (type $r)) (with "f" (func $host_f))))
  (export "api" (instance $a)))"""


def test_a_component_instantiated_twice_gets_its_own_resources(tmp_path: Path) -> None:
    """Each instantiation of $inner defines a fresh `s`, drops the host's `r` in its own
    table, and lowers what it was given; a root function import and an interface function
    named like its interface keep their world keys."""
    data = _parse(NESTED_TWICE, tmp_path)
    plan, _ = plan_and_wire(data)
    assert len(plan.modules) == 2 and plan.component_instances == 3
    assert plan.instances == [
        p.Instantiate(0, (p.Lowered(0), p.Intrinsic(0))), p.Instantiate(1, (p.Intrinsic(1),)),
        p.Instantiate(0, (p.Lowered(1), p.Intrinsic(2))), p.Instantiate(1, (p.Intrinsic(3),))]
    assert [(x.key, x.name, x.options.instance) for x in plan.lowerings
            if isinstance(x, p.LowerHost)] == [("tick", "tick", 1), ("host", "host", 2)]
    assert len(plan.lowerings) == 2
    assert plan.intrinsics == [
        p.ResourceIntrinsic("drop", 0, 1), p.ResourceIntrinsic("new", 1, 1),
        p.ResourceIntrinsic("drop", 0, 2), p.ResourceIntrinsic("new", 2, 2)]
    assert plan.resources == [
        p.ResourceDef("r", None, None, "host", "r"),
        p.ResourceDef("s", 1, p.CoreExport(0, "dtor")),
        p.ResourceDef("s", 2, p.CoreExport(2, "dtor"))]
    assert plan.export_resources == {("api", "s"): 1}
    api = wit.decode(data).exports["api"]
    assert isinstance(api, w.Interface)
    assert plan.exports == {("api", "make"): p.Lift(
        p.CoreExport(1, "make"), api.functions["make"],
        p.Options(1, "utf8", None, None, None))}
