"""The command line: `call`, `run` and `inspect` (and the console script).

`call` results are checked against /work/shared/corpus/EXPECTED.md (corpus tests skip
cleanly without ../shared) and against the repo's own guests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from wasm_import.cli._main import main

REPO = Path(__file__).resolve().parents[1]


def cli(capfd: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    status = main(list(argv))
    out, err = capfd.readouterr()
    return status, out, err


# -- call on the corpus: the values of EXPECTED.md ---------------------------------------------

U64_MAX, S64_MIN, S64_MAX = 2**64 - 1, -2**63, 2**63 - 1

CORPUS_CALLS: List[Tuple[str, str, str]] = [
    # 21. adder, by attribute path and by full WIT name (with and without @version)
    ("jco/adder.component.wasm", "add.add(1, 2)", "3"),
    ("jco/adder.component.wasm", "docs:adder/add@0.1.0#add(1, 2)", "3"),
    ("jco/adder.component.wasm", "docs:adder/add#add(1, 2)", "3"),
    ("component-docs/example-host__add.wasm", "add.add(1, 2)", "3"),
    # 23. asmjs-bigint
    ("jco/asmjs_bigint.component.wasm", "add(1, 2)", "3"),
    ("jco/asmjs_bigint.component.wasm", f"add({2**33}, {-(2**42)})", "-4389456576512"),
    # 1. numbers: every roundtrip returns its input
    *[("jco/numbers.component.wasm", f"test.roundtrip-{ty}({v})", str(v)) for ty, v in [
        ("u8", 1), ("u8", 0), ("u8", 255), ("s8", -128), ("s8", 127), ("u16", 65535), ("s16", -32768),
        ("u32", 4294967295), ("s32", -2147483648), ("u64", U64_MAX), ("s64", S64_MIN), ("s64", S64_MAX)]],
    *[("jco/numbers.component.wasm", f"test.roundtrip-{ty}({v})", v) for ty in ("f32", "f64")
      for v in ("1.0", "inf", "-inf", "nan")],
    *[("jco/numbers.component.wasm", f"test.roundtrip-char({v})", v) for v in ("'a'", "' '", "'🚩'")],
    # 3. strings
    ("jco/strings.component.wasm", "return-empty()", '""'),
    ("jco/strings.component.wasm", 'roundtrip("str")', '"str"'),
    ("jco/strings.component.wasm", 'roundtrip("🚀🚀🚀 𠈄𓀀")', '"🚀🚀🚀 𠈄𓀀"'),
    # 4. lists
    ("jco/lists.component.wasm", "test.list-result()", "[1, 2, 3, 4, 5]"),
    ("jco/lists.component.wasm", "test.list-result2()", '"hello!"'),
    ("jco/lists.component.wasm", "test.list-result3()", '["hello,", "world!"]'),
    ("jco/lists.component.wasm", 'test.string-roundtrip("hello ⚑ world")', '"hello ⚑ world"'),
    ("jco/lists.component.wasm", "test.list-roundtrip([1, 2, 3])", "[1, 2, 3]"),
    # 5. records: tuples, flags, records
    ("jco/records.component.wasm", "test.multiple-results()", "(100, 200)"),
    ("jco/records.component.wasm", "test.swap-tuple((1, 2))", "(2, 1)"),
    *[("jco/records.component.wasm", f"test.roundtrip-flags1({v})", v) for v in ("{a}", "{}", "{b}", "{a, b}")],
    *[("jco/records.component.wasm", f"test.roundtrip-flags2({v})", v) for v in ("{c}", "{}", "{d}", "{c, e}")],
    ("jco/records.component.wasm", "test.roundtrip-record1({a: 8, b: {}})", "{a: 8, b: {}}"),
    ("jco/records.component.wasm", "test.roundtrip-record1({a: 0, b: {a, b}})", "{a: 0, b: {a, b}}"),
    ("jco/records.component.wasm", "test.tuple1((1,))", "(1)"),
    # 6. variants
    ("jco/variants.component.wasm", "test.roundtrip-option(some(1.0))", "some(1)"),
    ("jco/variants.component.wasm", "test.roundtrip-option(none)", "none"),
    ("jco/variants.component.wasm", "test.roundtrip-option(2.0)", "some(2)"),
    ("jco/variants.component.wasm", "test.roundtrip-result(ok(2))", "ok(2.0)"),
    ("jco/variants.component.wasm", "test.roundtrip-enum(b)", "b"),
    ("jco/variants.component.wasm", "test.invert-bool(true)", "false"),
    ("jco/variants.component.wasm", "test.variant-casts((a(1), a(2), a(3), a(4), a(5), a(6.0)))",
     "(a(1), a(2), a(3), a(4), a(5), a(6.0))"),
    ("jco/variants.component.wasm", "test.variant-casts((b(1), b(2.0), b(3.0), b(4.0), b(5.0), b(6.0)))",
     "(b(1), b(2.0), b(3.0), b(4.0), b(5.0), b(6.0))"),
    ("jco/variants.component.wasm", "test.variant-zeros((a(1), a(2), a(3.0), a(4.0)))",
     "(a(1), a(2), a(3.0), a(4.0))"),
    ("jco/variants.component.wasm", "test.variant-typedefs(none, false, err)", ""),
    # 7. flavorful
    ("jco/flavorful.component.wasm", "test.f-list-in-variant2()", 'some("list_in_variant2")'),
    ("jco/flavorful.component.wasm", 'test.f-list-in-variant3(some("input3"))', 'some("output3")'),
    ("jco/flavorful.component.wasm", 'test.f-list-in-record3({a: "list_in_record3 input"})',
     '{a: "list_in_record3 output"}'),
    ("jco/flavorful.component.wasm", 'test.list-typedefs("typedef1", ["typedef2"])',
     '([116, 121, 112, 101, 100, 101, 102, 51], ["typedef4"])'),
    # 8. options
    ("jco/options.component.wasm", "test.option-none-result()", "none"),
    ("jco/options.component.wasm", "test.option-some-result()", 'some("foo")'),
    ("jco/options.component.wasm", 'test.option-roundtrip("foo")', 'some("foo")'),
    *[("jco/options.component.wasm", f"test.double-option-roundtrip({v})", v)
      for v in ("some(some(42))", "some(none)", "none")],
    # 24. a static function of a resource
    ("jco/example_guest_export.wasm", "backend.Scalars.get_a()", "5"),
    ("jco/example_guest_export.wasm", "example:component/backend@0.1.0#[static]scalars.get-a()", "5"),
    # 27. a wasi-virt component: its environment is virtual, whatever the host's
    ("jco/jco__components__env-allow.composed.wasm", "test-get-env()", '[("CUSTOM", "VAL")]'),
]


@pytest.mark.parametrize("component, expression, expected", CORPUS_CALLS)
def test_call_corpus(corpus: Path, capfd: pytest.CaptureFixture[str],
                     component: str, expression: str, expected: str) -> None:
    status, out, err = cli(capfd, "call", str(corpus / component), expression)
    assert (status, out) == (0, expected + "\n" if expected else ""), err


def test_call_err_result_prints_it_and_exits_1(corpus: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capfd, "call", str(corpus / "jco/variants.component.wasm"),
                         "test.roundtrip-result(err(5.3))")
    assert (status, out) == (1, "err(5)\n")


def test_call_of_an_unprovided_import_fails_clearly(corpus: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capfd, "call", str(corpus / "jco/smoke.component.wasm"), "thunk()")
    assert status == 1
    assert "test:smoke/imports" in err and "does not provide" in err


def test_run_command_component(corpus: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capfd, "run", str(corpus / "jco/jco__components__hello_stdout.component.wasm"))
    assert status == 0
    assert out == "writing to stdout: hello, world\n"
    assert err == "writing to stderr: hello, world\n"


def test_run_passes_arguments_and_reports_failure(corpus: Path, capfd: pytest.CaptureFixture[str]) -> None:
    command = str(corpus / "jco/jco__commands__dir.virt.wasm")
    assert cli(capfd, "run", command, "/foo") == (0, "Listing directory: /foo\n - .\n - ..\n - foo\n", "")
    status, out, _ = cli(capfd, "run", command)
    assert status == 1 and "Usage" in out


def test_run_refuses_a_component_that_is_not_a_command(corpus: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capfd, "run", str(corpus / "jco/adder.component.wasm"))
    assert status == 2 and "wasi:cli/run" in err


# -- call on the repo's own guests -----------------------------------------------------------

KITCHEN_CALLS = [
    ("add(2, 3)", "5"),
    ("echo.echo-u64(18446744073709551615)", "18446744073709551615"),
    ("echo.echo_f32(-1.5)", "-1.5"),
    ("echo.echo-char('\\u{1f680}')", "'🚀'"),
    ('echo.echo-string("tab\\tquote\\"")', '"tab\\tquote\\""'),
    ("echo.echo-bytes([0, 255])", "[0, 255]"),
    ("echo.echo-nested-list([[1], [], [2, 3]])", "[[1], [], [2, 3]]"),
    ('echo.echo-tuple((1, "a", 2.5))', '(1, "a", 2.5)'),
    ('echo.echo-record({full-name: "Ann", age-years: 7, tag-list: ["x"]})',
     '{full-name: "Ann", age-years: 7, tag-list: ["x"]}'),
    ('echo.echo-drawing({title-text: "t", main-shape: rectangle({width: 1.0, height: 2.0}), layer-index: 3})',
     '{title-text: "t", main-shape: rectangle({width: 1.0, height: 2.0}), layer-index: 3}'),
    ("echo.echo-variant(%none)", "%none"),
    ("echo.echo-variant(circle(2.0))", "circle(2.0)"),
    ("echo.echo-enum(green-arrow)", "green-arrow"),
    ("echo.echo-flags({read, exec-bit})", "{read, exec-bit}"),
    ("echo.echo-flags32({b0, b31})", "{b0, b31}"),
    ('echo.echo-option("x")', 'some("x")'),
    ("echo.echo-nested-option(some(none))", "some(none)"),
    ("echo.echo-result-list([ok(1), err(\"no\")])", '[ok(1), err("no")]'),
    ("echo.checked-div(7, 2)", "ok(3)"),
    ("echo.try-unit(true)", "ok"),
    ("test:kitchen/echo@0.1.0#parse-number(\"42\")", "ok(42)"),
]


@pytest.mark.slow
@pytest.mark.parametrize("expression, expected", KITCHEN_CALLS)
def test_call_kitchen(kitchen_wasm: Path, capfd: pytest.CaptureFixture[str], expression: str,
                      expected: str) -> None:
    status, out, err = cli(capfd, "call", str(kitchen_wasm), expression)
    assert (status, out) == (0, expected + "\n"), err


@pytest.mark.slow
@pytest.mark.parametrize("expression, expected", [
    ("echo.checked-div(1, 0)", 'err("division by zero")'),
    ("echo.parse-number(\"\")", "err(empty-input)"),
    ("echo.require-even(3)", "err"),
])
def test_call_kitchen_errors_exit_1(kitchen_wasm: Path, capfd: pytest.CaptureFixture[str], expression: str,
                                    expected: str) -> None:
    status, out, _ = cli(capfd, "call", str(kitchen_wasm), expression)
    assert status == 1
    assert out.startswith(expected.split("(")[0])


@pytest.mark.slow
def test_call_kitchen_trap_is_an_error(kitchen_wasm: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capfd, "call", str(kitchen_wasm), "echo.fail()")
    assert status == 1 and out == "" and err.startswith("error:")


@pytest.mark.parametrize("expression, column, words", [
    ('add.add(1, "x")', 12, "expected u32"),
    ("add.add(1)", 10, "missing argument"),
    ("add.nope(1)", 1, "no export 'add.nope'"),
    ("add.add(1, 2", 13, "the end of the text"),
])
def test_call_mistake_shows_a_caret(adder_wasm: Path, capfd: pytest.CaptureFixture[str], expression: str,
                                    column: int, words: str) -> None:
    status, out, err = cli(capfd, "call", str(adder_wasm), expression)
    first, line, caret = err.rstrip("\n").split("\n")
    assert status == 2 and out == ""
    assert words in first and first.startswith("error:")
    assert line == "  " + expression
    assert caret == "  " + " " * (column - 1) + "^"


def test_call_adder(adder_wasm: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert cli(capfd, "call", str(adder_wasm), "add.add(40, 2)") == (0, "42\n", "")


@pytest.mark.slow
def test_call_that_uses_an_unprovided_import_fails(hostuser_wasm: Path,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capfd, "call", str(hostuser_wasm), "fail-through()")
    assert status == 1 and "called import now, which the command line does not provide" in err


def test_grant_flags_are_checked(adder_wasm: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capfd, "call", "--dir", str(tmp_path / "missing"), str(adder_wasm), "add.add(1, 2)")
    assert status == 2 and "is not a directory" in err
    assert cli(capfd, "call", "--dir", f"{tmp_path}::/data", "--env", "A=1", "--env", "HOME",
               str(adder_wasm), "add.add(1, 2)") == (0, "3\n", "")


def test_grants_build_the_sandbox(tmp_path: Path) -> None:
    from wasm_import import Dir, Wasi
    from wasm_import.cli._main import _grants, build_parser

    args = build_parser().parse_args(["call", "--dir", f"{tmp_path}::/data", "--dir", f"{tmp_path}:ro",
                                      "--env", "A=1=2", "--env", "WASM_IMPORT_TEST_UNSET", "f.wasm", "f()"])
    wasi = _grants(args, ["f.wasm"])
    assert wasi == Wasi(args=["f.wasm"], env={"A": "1=2"}, stdin="inherit",
                        dirs=[Dir(str(tmp_path), "/data", readonly=False),
                              Dir(str(tmp_path), str(tmp_path), readonly=True)])
    nothing = _grants(build_parser().parse_args(["call", "f.wasm", "f()"]), [])
    assert (nothing.env, nothing.dirs) == ({}, [])


def test_network_and_limit_flags_build_the_sandbox() -> None:
    from wasm_import import Limits, Net
    from wasm_import.cli._main import _grants, _limits, build_parser

    args = build_parser().parse_args([
        "serve", "--net", "127.0.0.1:5432", "--net", "udp:10.0.0.0/8:53", "--net", "tcp-bind:[::1]:8000",
        "--net", "UDP-BIND:0.0.0.0", "--net", "db.internal", "--http", "api.example.com", "--http", "127.0.0.1:8080",
        "--timeout", "0.5", "--fuel", "100000", "--max-memory", "64M", "f.wasm"])
    wasi = _grants(args, ["f.wasm"], stdin=None)
    assert wasi.network == (Net("127.0.0.1", 5432), Net("10.0.0.0/8", 53, "udp"), Net("::1", 8000, bind=True),
                            Net("0.0.0.0", None, "udp", bind=True), Net("db.internal"))
    assert (wasi.http, wasi.stdin) == (("api.example.com", "127.0.0.1:8080"), None)
    assert _limits(args) == Limits(timeout=0.5, fuel=100000, memory=64 << 20)
    assert _limits(build_parser().parse_args(["call", "f.wasm", "f()"])) is None
    sizes = ["--max-memory", "1k", "--fuel", "2KiB"]
    assert _limits(build_parser().parse_args(["call", *sizes, "f.wasm", "f()"])) == Limits(fuel=2048, memory=1024)


@pytest.mark.parametrize("flags, message", [
    (["--net", "bad host!"], "error: --net bad host!: Net.host 'bad host!' is neither"),
    (["--net", "udp:1.2.3.4:99999"], "error: --net udp:1.2.3.4:99999: Net.port must be"),
    (["--http", "a/b"], "error: --http: Wasi.http entries are 'host' or 'host:port', got 'a/b'"),
])
def test_bad_network_flags_exit_2(adder_wasm: Path, capfd: pytest.CaptureFixture[str], flags: List[str],
                                  message: str) -> None:
    status, out, err = cli(capfd, "call", *flags, str(adder_wasm), "add.add(1, 2)")
    assert (status, out) == (2, "") and err.startswith(message)


@pytest.mark.parametrize("flags", [["--timeout", "0"], ["--timeout", "nan"], ["--fuel", "-1"], ["--max-memory", "1X"]])
def test_bad_limit_flags_are_usage_errors(adder_wasm: Path, flags: List[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["call", *flags, str(adder_wasm), "add.add(1, 2)"])
    assert stopped.value.code == 2


@pytest.mark.slow
def test_limit_flags_reach_the_instance(kitchen_wasm: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capfd, "call", "--fuel", "10", str(kitchen_wasm), "add(1, 2)")
    assert status == 1 and err.startswith("error: the call used up its fuel of 10 units")
    status, _, err = cli(capfd, "call", "--max-memory", "1M", str(kitchen_wasm), "add(1, 2)")
    assert status == 1 and err.startswith("error: the instance needs more memory than its limit of 1048576 bytes")
    assert cli(capfd, "call", "--fuel", "100000000", "--timeout", "30", "--max-memory", "1G", str(kitchen_wasm),
               "add(1, 2)") == (0, "3\n", "")


# -- the console script and python -m ----------------------------------------------------------

def test_python_dash_m_and_console_script(adder_wasm: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    commands = [[sys.executable, "-m", "wasm_import"]]
    script = shutil.which("wasm-import")
    if script is not None:
        commands.append([script])
    for command in commands:
        done = subprocess.run([*command, "call", str(adder_wasm), "add.add(1, 2)"], capture_output=True,
                              text=True, env=env, timeout=120)
        assert (done.returncode, done.stdout) == (0, "3\n"), done.stderr


# -- inspect ---------------------------------------------------------------------------------------

def test_inspect_adder(adder_wasm: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capfd, "inspect", str(adder_wasm))
    assert status == 0
    assert "Imports: none" in out
    assert "  add.add(x: int, y: int) -> int\n      docs:adder/add@0.1.0#add: func(x: u32, y: u32) -> u32\n" in out


@pytest.mark.slow
def test_inspect_kitchen_shows_python_signatures(kitchen_wasm: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capfd, "inspect", str(kitchen_wasm))
    assert status == 0
    for line in [
        "  add(a: int, b: int) -> int",
        "  echo.echo_record(x: echo.PersonInfo) -> echo.PersonInfo",
        "  echo.echo_nested_option(x: Optional[Some[Optional[int]]]) -> Optional[Some[Optional[int]]]",
        "  echo.parse_number(text: str) -> int, raises Err[echo.ParseError]",
        "  class echo.Counter  (resource counter)",
        "    echo.Counter(start: int)",
        "    echo.Counter.merge(a: echo.Counter, b: echo.Counter) -> echo.Counter",
        "    <Counter>.increment() -> int",
    ]:
        assert line + "\n" in out, line
    assert "echo.TrafficLight (enum)" in out and "echo.Permissions (flags)" in out


@pytest.mark.slow
def test_inspect_groups_custom_imports(hostuser_wasm: Path, capfd: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capfd, "inspect", str(hostuser_wasm))
    custom = out.split("  custom:")[1].split("Exports")[0]
    assert "test:host/logger\n      log: func(level: level, msg: string)" in custom
    assert "resource store" in custom and "now: func() -> u64" in custom


def test_inspect_groups_wasi_imports_by_capability(corpus: Path, capfd: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capfd, "inspect", str(corpus / "jco/records.component.wasm"))
    groups: dict[str, List[str]] = {}
    current: List[str] = []
    for line in out.split("Exports")[0].splitlines():
        if line.startswith("  ") and not line.startswith("    "):
            current = groups.setdefault(line.strip().split(":")[0], [])
        elif line.startswith("    ") and not line.startswith("      "):
            current.append(line.strip())
    assert groups["filesystem"] == ["wasi:filesystem/types@0.2.0", "wasi:filesystem/preopens@0.2.0"]
    assert groups["clocks"] == ["wasi:clocks/wall-clock@0.2.0"]
    assert "wasi:cli/stdout@0.2.0" in groups["stdio"]
    assert groups["custom"] == ["test:records/test"]
    assert "test.swap_tuple(a: Tuple[int, int]) -> Tuple[int, int]" in out


@pytest.mark.parametrize("name, group", [
    ("wasi:filesystem/types@0.2.0", "filesystem"), ("wasi:sockets/tcp@0.2.0", "network"),
    ("wasi:http/outgoing-handler@0.2.0", "network"), ("wasi:clocks/monotonic-clock@0.2.0", "clocks"),
    ("wasi:random/random@0.2.0", "random"), ("wasi:cli/environment@0.2.0", "env"),
    ("wasi:cli/stdin@0.2.0", "stdio"), ("wasi:io/streams@0.2.0", "stdio"), ("wasi:keyvalue/store", "other WASI"),
    ("test:host/logger", "custom"), ("now", "custom"),
])
def test_capability_of_an_import(name: str, group: str) -> None:
    from wasm_import.cli._inspect import capability

    assert capability(name) == group
