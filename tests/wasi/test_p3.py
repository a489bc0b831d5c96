"""WASI 0.3 on the core runtime, with componentize-py guests built from source:

- `p3cmd`, a `wasi:cli/run@0.3.0` command (async `run`) printing through
  `wasi:cli/stdout@0.3.0` (a `stream<u8>`), waiting on `monotonic-clock.wait-for`, drawing
  `wasi:random` bytes, failing or exiting with a code: run in-process, with `python -m`
  and with `wasm-import run`;
- `p3http`, which sends a request through `wasi:http/client@0.3.0` to a loopback server
  started here: answered when `Wasi(http=[...])` grants the host and port, refused with
  `HTTP-request-denied` before anything reaches the server otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

import wasm_import
from wasm_import import Err, Wasi
from wasm_import.hook._command import call_to_end
from wasm_import.runtime.wasi import _http
from wasm_import.runtime.wasi._context import served
from tests._build import build_python_guest
from tests.test_hook import child_env

RUN = "wasi:cli/run@0.3.0"


@pytest.fixture(scope="module")
def p3cmd() -> Any:
    return wasm_import.load(build_python_guest("p3cmd"))


@pytest.fixture(scope="module")
def p3http() -> Any:
    return wasm_import.load(build_python_guest("p3http"))


def test_0_3_interfaces_are_served_apart_from_0_2() -> None:
    assert served("wasi:cli/stdout@0.3.0") and served("wasi:cli/stdout@0.2.3")
    assert served("wasi:clocks/monotonic-clock@0.3.0") and served("wasi:clocks/system-clock@0.3.0")
    assert served("wasi:http/client@0.3.0") and served("wasi:http/types@0.3.0")
    assert not served("wasi:clocks/system-clock@0.2.3")  # 0.3's name only
    assert not served("wasi:io/streams@0.3.0")  # gone in 0.3
    assert not served("wasi:cli/stdout@0.4.0")
    assert served("wasi:filesystem/types@0.3.0")


# -- wasi:cli/run@0.3.0 -------------------------------------------------------------------------

def test_command_runs_in_process(p3cmd: Any) -> None:
    inst = p3cmd.instantiate(wasi=Wasi(args=["p3cmd", "a", "sleep", "random"], env={"GREETING": "hi"},
                                       stdout="capture"))
    started = time.monotonic()
    assert call_to_end(inst.exports[RUN].run) is None
    assert time.monotonic() - started >= 0.05
    assert inst.stdout == (b"hello from wasi 0.3: ['a', 'sleep', 'random']\nGREETING=hi\n"
                           b"waited at least 50 ms: True\nrandom: 16 bytes, differ: True\n")


def test_command_sees_nothing_not_granted(p3cmd: Any) -> None:
    inst = p3cmd.instantiate(wasi=Wasi(stdout="capture"))
    call_to_end(inst.exports[RUN].run)
    assert inst.stdout == b"hello from wasi 0.3: []\nGREETING=None\n"


def test_command_err_and_exit_code(p3cmd: Any) -> None:
    inst = p3cmd.instantiate(wasi=Wasi(args=["p3cmd", "fail"], stdout="capture"))
    with pytest.raises(Err):
        call_to_end(inst.exports[RUN].run)
    assert inst.stdout == b"hello from wasi 0.3: ['fail']\nGREETING=None\n"
    inst = p3cmd.instantiate(wasi=Wasi(args=["p3cmd", "exit7"], stdout="capture"))
    with pytest.raises(wasm_import.GuestExit) as caught:
        call_to_end(inst.exports[RUN].run)
    assert caught.value.code == 7


def test_a_0_3_interface_is_replaced_through_imports(p3cmd: Any) -> None:
    environment = {"get_arguments": lambda: ["p3cmd", "from", "imports"],
                   "get_environment": lambda: [("GREETING", "replaced")], "get_initial_cwd": lambda: None}
    inst = p3cmd.instantiate(imports={"wasi:cli/environment@0.3.0": environment},
                             wasi=Wasi(args=["p3cmd", "from", "wasi"], stdout="capture"))
    call_to_end(inst.exports[RUN].run)
    assert inst.stdout == b"hello from wasi 0.3: ['from', 'imports']\nGREETING=replaced\n"


@pytest.fixture(scope="module")
def command_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with `hello3.wasm` and the startup import `python -m` needs; one per
    module, so the compiled-code cache beside it serves every run after the first."""
    directory = tmp_path_factory.mktemp("p3")
    (directory / "hello3.wasm").write_bytes(build_python_guest("p3cmd").read_bytes())
    (directory / "sitecustomize.py").write_text("import wasm_import\n")
    return directory


def _run(directory: Path, *argv: str, **env: str) -> "subprocess.CompletedProcess[str]":
    environment = child_env(WASM_IMPORT_QUIET="1", **env)
    environment["PYTHONPATH"] = os.pathsep.join([str(directory), environment["PYTHONPATH"]])
    return subprocess.run([sys.executable, *argv], cwd=directory, env=environment, capture_output=True,
                          text=True, timeout=300)


def test_python_m_runs_a_0_3_command(command_dir: Path) -> None:
    done = _run(command_dir, "-m", "hello3", "x", "y", WASM_IMPORT_ENV="GREETING", GREETING="hey")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "hello from wasi 0.3: ['x', 'y']\nGREETING=hey\n", "")
    done = _run(command_dir, "-m", "hello3", "fail")
    assert (done.returncode, done.stdout) == (1, "hello from wasi 0.3: ['fail']\nGREETING=None\n")
    done = _run(command_dir, "-m", "hello3", "exit7")
    assert (done.returncode, done.stdout) == (7, "hello from wasi 0.3: ['exit7']\nGREETING=None\n")


def test_wasm_import_run_and_call_a_0_3_command(command_dir: Path) -> None:
    done = _run(command_dir, "-m", "wasm_import", "run", "--env", "GREETING=yo", "hello3.wasm", "a")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello from wasi 0.3: ['a']\nGREETING=yo\n", "")
    done = _run(command_dir, "-m", "wasm_import", "call", "hello3.wasm", "run.run()")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello from wasi 0.3: []\nGREETING=None\nok\n", "")


# -- wasi:http/client@0.3.0 ---------------------------------------------------------------------

class _Server:
    """A loopback HTTP server that records what reaches it; `silent` paths never answer."""

    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, dict, bytes]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.seen.append((self.command, self.path, dict(self.headers), data))
                if self.path == "/silent":
                    server.release.wait(10)
                    return
                body = b"got:" + data
                self.send_response(201)
                self.send_header("x-echo", self.headers.get("x-guest", ""))
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.authority = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def test_http_request_reaches_a_granted_loopback_server(p3http: Any, server: _Server) -> None:
    inst = p3http.instantiate(wasi=Wasi(http=[server.authority]))
    started = time.monotonic()
    answer = call_to_end(inst.api.fetch, "POST", server.authority, "/echo?x=1", "hello from 0.3")
    assert time.monotonic() - started < 10
    assert answer == "201 x-echo=p3http got:hello from 0.3"
    [(method, path, headers, body)] = server.seen
    assert (method, path, body) == ("POST", "/echo?x=1", b"hello from 0.3")
    assert headers["Host"] == server.authority
    assert headers["x-guest"] == "p3http" and headers["content-type"] == "text/plain"
    assert headers["Content-Length"] == "14"


def test_http_get_with_an_empty_body(p3http: Any, server: _Server) -> None:
    inst = p3http.instantiate(wasi=Wasi(http=["127.0.0.1"]))  # any port of that host
    assert call_to_end(inst.api.fetch, "GET", server.authority, "/", "") == "201 x-echo=p3http got:"
    assert [(m, p, b) for m, p, _, b in server.seen] == [("GET", "/", b"")]


@pytest.mark.parametrize("grants", [[], ["127.0.0.1:1"], ["localhost"], ["example.com"]])
def test_http_is_denied_unless_granted_and_nothing_reaches_the_server(p3http: Any, server: _Server,
                                                                      grants: List[str]) -> None:
    inst = p3http.instantiate(wasi=Wasi(http=grants))
    with pytest.raises(Err) as caught:
        call_to_end(inst.api.fetch, "POST", server.authority, "/echo", "secret")
    assert caught.value.value == "HttpRequestDenied"
    time.sleep(0.05)
    assert server.seen == []


def test_http_connection_refused(p3http: Any) -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inst = p3http.instantiate(wasi=Wasi(http=[f"127.0.0.1:{port}"]))
    with pytest.raises(Err) as caught:
        call_to_end(inst.api.fetch, "GET", f"127.0.0.1:{port}", "/", "")
    assert caught.value.value == "ConnectionRefused"


def test_http_silent_server_times_out(p3http: Any, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "DEFAULT_TIMEOUT", 0.3)  # the timeouts a guest sets no request-options for
    inst = p3http.instantiate(wasi=Wasi(http=[server.authority]))
    started = time.monotonic()
    with pytest.raises(Err) as caught:
        call_to_end(inst.api.fetch, "GET", server.authority, "/silent", "")
    assert caught.value.value == "HttpResponseTimeout"
    assert time.monotonic() - started < 5
