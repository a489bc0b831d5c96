"""An instance's host resources are released deterministically: `close()`, `with`, its
finalizer, the module's replaced default instance, the ASGI app's per-request instances.

Every count here is this process's open fds (`/proc/self/fd`), taken before and after
hundreds of instances of real guests that open a preopened directory and sockets; every
block runs with ResourceWarning as an error (a socket collected unclosed warns), caught
where it would be raised in a finalizer too (`sys.unraisablehook`).

The guests: `p3net` (WASI 0.3 sockets: a UDP exchange whose socket the guest never drops,
and a TCP listener it keeps forever, with a task waiting to accept on it), `netuser` (0.2
sockets through Python's `socket`), `sandbox` and `p3fs` (0.2 and 0.3 filesystems); each
imports `wasi:filesystem/preopens`, so a `Dir` grant opens a directory fd per instance.
Peers listen on 127.0.0.1 only and stop by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, List, Set

import pytest

import wasm_import
from wasm_import import Dir, InstanceClosedError, InstancePoisonedError, LimitExceeded, Limits, Net, Wasi, asgi
from wasm_import.hook._command import call_to_end
from tests._build import build_python_guest
from tests.wasi._netguests import build_netuser

pytestmark = pytest.mark.slow  # builds componentize-py guests on a fresh checkout; hundreds of instances

N = 200  # instances per run


def _fds() -> Set[str]:
    """This process's open fds (not the one the listing itself used, closed by now)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        found.add(fd)
    return found


def _what(fds: Set[str]) -> List[str]:
    """Each fd with what it is open on (a file's path, `socket:[inode]`...)."""
    found = []
    for fd in fds:
        try:
            found.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            found.append(fd)
    return found


@contextlib.contextmanager
def no_leaks(collect: bool = False) -> Iterator[None]:
    """The block leaves no fd open that it found closed (after a gc.collect() when
    `collect`) and raises no ResourceWarning, not even from a finalizer."""
    gc.collect()
    caught: List[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = caught.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            before = _fds()
            yield
            if collect:
                gc.collect()
            after = _fds()
    finally:
        sys.unraisablehook = hook
    assert [f"{u.exc_type.__name__}: {u.exc_value}" for u in caught] == []
    assert sorted(_what(after - before)) == []  # (fewer is fine: a compiled module freed meanwhile, say)


class Peers:
    """A UDP peer answering "pong:" + each datagram, on 127.0.0.1, until `close()` (or 300 s)."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.port = self.udp.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data, sender = self.udp.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            self.udp.sendto(b"pong:" + data, sender)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.udp.close()


@pytest.fixture
def peers() -> Iterator[Peers]:
    made = Peers()
    yield made
    made.close()


@pytest.fixture(scope="module")
def p3net() -> Any:
    return wasm_import.load(build_python_guest("p3net"))


@pytest.fixture(scope="module")
def sandbox() -> Any:
    return wasm_import.load(build_python_guest("sandbox"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_text("hello")
    return tmp_path


def _p3net_wasi(data: Path) -> Wasi:
    return Wasi(dirs=[Dir(data, "/data")], network=[Net("127.0.0.1", protocol="udp"), Net("127.0.0.1", bind=True)])


async def _use_p3net(inst: Any, peers: Peers) -> None:
    """A UDP exchange (the guest never drops its socket) and a listener it keeps, with a
    task of the guest waiting to accept on it when the call returns."""
    assert await inst.api.udp_echo("127.0.0.1", peers.port, "ping") == "pong:ping"
    assert await inst.api.serve_once(0) > 0


# -- fds and sockets come back ----------------------------------------------------------------------

@pytest.mark.parametrize("how", ["close", "with"])
def test_p3_instances_closed_leave_no_fds_and_no_sockets(p3net: Any, peers: Peers, data: Path, how: str) -> None:
    async def main(n: int) -> None:  # one event loop for all, as a server has
        for _ in range(n):
            if how == "with":
                with p3net.instantiate(wasi=_p3net_wasi(data)) as inst:
                    await _use_p3net(inst, peers)
            else:
                inst = p3net.instantiate(wasi=_p3net_wasi(data))
                await _use_p3net(inst, peers)
                held = inst._wasi_context.held
                assert len(held) >= 2  # the preopen (watched), the listener the guest keeps (held)
                inst.close()
                assert len(held) == 0 and held.closed
            assert inst.closed

    asyncio.run(main(1))  # warm up: the first instance starts the runtime's own threads and fds
    with no_leaks():
        asyncio.run(main(N))


def test_p3_instances_collected_without_close_leave_no_fds(p3net: Any, peers: Peers, data: Path) -> None:
    """Instances are in reference cycles (an instance and its runtime point at each other),
    so it is the collector that finds them: then their finalizers release what they held,
    with no ResourceWarning for the sockets the guest never dropped."""
    def one() -> None:
        inst = p3net.instantiate(wasi=_p3net_wasi(data))
        asyncio.run(_use_p3net(inst, peers))  # the loop ends: the guest's pending accept is cancelled
        del inst

    one()
    with no_leaks(collect=True):
        for _ in range(N):
            one()


@pytest.mark.parametrize("how", ["close", "collect"])
def test_p2_socket_instances_leave_no_fds(peers: Peers, data: Path, how: str) -> None:
    netuser = wasm_import.load(build_netuser())
    wasi = Wasi(dirs=[Dir(data, "/data")], network=[Net("127.0.0.1", peers.port, "udp")])

    def one() -> None:
        inst = netuser.instantiate(wasi=wasi)
        assert inst.udp_exchange("127.0.0.1", peers.port, "hi") == "pong:hi"
        if how == "close":
            inst.close()
        del inst

    one()
    with no_leaks(collect=how == "collect"):
        for _ in range(N):
            one()


@pytest.mark.parametrize("how", ["close", "collect"])
def test_filesystem_instances_leave_no_fds(sandbox: Any, data: Path, how: str) -> None:
    p3fs = wasm_import.load(build_python_guest("p3fs"))
    wasi = Wasi(dirs=[Dir(data, "/data")])

    def one() -> None:
        p2, p3 = sandbox.instantiate(wasi=wasi), p3fs.instantiate(wasi=wasi)
        assert p2.read_file("/data/hello.txt") == "hello"
        assert call_to_end(p3.api.run, "/data", "read", "hello.txt") == "hello"  # its file is never dropped
        if how == "close":
            p2.close()
            p3.close()
        del p2, p3

    one()
    with no_leaks(collect=how == "collect"):
        for _ in range(N // 2):  # two instances each
            one()


def test_a_long_lived_instance_holds_no_fd_for_files_its_guest_closed(sandbox: Any, data: Path) -> None:
    """A file the guest opened and closed is released then, not at the next GC: no cycle
    keeps its descriptor (a host function's `Err` once tied its arguments into one)."""
    inst = sandbox.instantiate(wasi=Wasi(dirs=[Dir(data, "/data", readonly=False)]))
    inst.read_file("/data/hello.txt")
    gc.collect()
    gc.disable()
    try:
        before = _fds()
        for i in range(100):
            assert inst.read_file("/data/hello.txt") == "hello"
            inst.write_file(f"/data/{i % 3}.txt", "x")
            assert inst.fs("listdir", "/data", "") == "0.txt,1.txt,2.txt,hello.txt" if i >= 2 else True
        assert _fds() == before
        assert len(inst._wasi_context.held) == 1  # the preopened directory
    finally:
        gc.enable()
    inst.close()


# -- what close() means -------------------------------------------------------------------------------

def test_a_call_after_close_raises_instance_closed_error(sandbox: Any, data: Path) -> None:
    inst = sandbox.instantiate(wasi=Wasi(dirs=[Dir(data, "/data")]))
    read = inst.read_file
    assert read("/data/hello.txt") == "hello"
    assert (inst.closed, inst.poisoned) == (False, False)
    inst.close()
    assert (inst.closed, inst.poisoned) == (True, False)
    assert repr(inst).endswith("(closed)>")
    with pytest.raises(InstanceClosedError, match=r"this instance was closed \(close\(\), or the end of its "
                                                  r"with block\) and cannot be called again; make a new instance"):
        read("/data/hello.txt")
    with pytest.raises(InstancePoisonedError):  # a closed instance is an unusable one: handled as such
        inst.wall_ns()
    inst.close()  # twice: nothing more happens
    assert inst.closed
    with pytest.raises(InstanceClosedError):
        with inst:
            pass


def test_with_closes_at_the_end_of_the_block_even_on_an_error(sandbox: Any, data: Path) -> None:
    with sandbox.instantiate(wasi=Wasi(dirs=[Dir(data, "/data")])) as inst:
        assert inst.read_file("/data/hello.txt") == "hello"
        held = inst._wasi_context.held
        assert len(held) == 1  # the preopened directory
    assert inst.closed and len(held) == 0
    with pytest.raises(KeyError):
        with sandbox.instantiate() as other:
            raise KeyError("boom")
    assert other.closed


def test_resource_objects_of_a_closed_instance_raise_instance_closed_error(kitchen_wasm: Any) -> None:
    inst = wasm_import.load(kitchen_wasm).instantiate()
    counter = inst.echo.Counter(5)
    assert counter.get() == 5
    inst.close()
    with pytest.raises(InstanceClosedError):
        counter.get()  # a method: on the instance that made it
    with pytest.raises(InstanceClosedError):
        inst.echo.Counter(1)  # the constructor of the instance's class
    del counter  # its finalizer would drop it in the guest: not on a closed instance, and silently
    gc.collect()


def test_an_async_call_in_progress_ends_with_instance_closed_error(p3net: Any) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    port = server.getsockname()[1]

    async def main() -> None:
        inst = p3net.instantiate(wasi=Wasi(network=[Net("127.0.0.1", port)]))
        echo = asyncio.ensure_future(inst.api.tcp_echo("127.0.0.1", port, "hello"))
        conn, _ = await asyncio.wait_for(asyncio.get_running_loop().sock_accept(server), 20)
        with conn:  # connected: the guest now waits for an answer that never comes
            await asyncio.sleep(0.05)
            assert not echo.done()
            inst.close()
            with pytest.raises(InstanceClosedError):
                await asyncio.wait_for(echo, 10)
            with pytest.raises(InstanceClosedError):
                await inst.api.tcp_echo("127.0.0.1", port, "again")

    try:
        with no_leaks():
            asyncio.run(main())
    finally:
        server.close()


def test_close_releases_the_files_it_opened_and_never_the_users(sandbox: Any, tmp_path: Path) -> None:
    mine = io.BytesIO()
    out = tmp_path / "out.txt"
    inst = sandbox.instantiate(wasi=Wasi(stdout=out, stderr=mine))  # a path: the context opens the file
    inst.say("to the file", "to my buffer")
    opened = [obj for obj, _ in inst._wasi_context.held._strong.values()]
    assert [type(f).__name__ for f in opened] == ["BufferedWriter"] and not opened[0].closed
    inst.close()
    assert opened[0].closed and out.read_text() == "to the file"
    assert not mine.closed and mine.getvalue() == b"to my buffer"


def test_guest_objects_answer_wit_errors_once_closed(data: Path) -> None:
    """What a guest still holds when its instance is closed answers as WASI says of a
    closed resource, never with a Python error (the host can still reach such objects: a
    user's import provider keeps them, serving HTTP hands them over). Made here with the
    instance's own WASI objects, as its guest would make them."""
    from wasm_import import Err
    from wasm_import.runtime.wasi._sockets import sockets_providers

    inst = wasm_import.load(build_netuser()).instantiate(
        wasi=Wasi(dirs=[Dir(data, "/data")], network=[Net("127.0.0.1", protocol="udp", bind=True)]))
    ctx = inst._wasi_context
    types = ctx.types
    net = sockets_providers(types, ctx.wasi.network)
    udp = net["wasi:sockets/udp-create-socket"].create_udp_socket(
        types.get("wasi:sockets/network#ip-address-family")["IPV4"])
    udp.start_bind(net["wasi:sockets/instance-network"].instance_network(),
                   types.case("wasi:sockets/network#ip-socket-address", "ipv4")(
                       types.get("wasi:sockets/network#ipv4-socket-address")(0, (127, 0, 0, 1))))
    udp.finish_bind()
    incoming, outgoing = udp.stream(None)
    root = ctx.preopens[0][0]
    file = root.open_at(types.get("wasi:filesystem/types#path-flags")(0), "hello.txt",
                        types.get("wasi:filesystem/types#open-flags")(0),
                        types.get("wasi:filesystem/types#descriptor-flags").READ)
    stream = file.read_via_stream(0)
    assert file.read(10, 0) == (b"hello", True)
    sock = udp._sock
    inst.close()
    assert sock.fileno() == -1 and root._fd.fd == file._fd.fd == -1  # really closed, numbers forgotten

    def answer(call: Any) -> str:
        try:
            return repr(call())
        except Err as e:
            return f"Err({e.value!r})"

    socket_error = types.get("wasi:sockets/network#error-code")
    fs_error = types.get("wasi:filesystem/types#error-code")
    assert [answer(c) for c in (udp.local_address, lambda: incoming.receive(1), outgoing.check_send)] == [
        f"Err({socket_error.INVALID_STATE!r})"] * 3
    assert [answer(c) for c in (root.stat, lambda: file.read(10, 0))] == [f"Err({fs_error.BAD_DESCRIPTOR!r})"] * 2
    with pytest.raises(Err) as failed:
        stream.read(10)
    assert type(failed.value.value).__name__ == "StreamError_LastOperationFailed"
    assert incoming.subscribe().ready() and outgoing.subscribe().ready()  # nothing to wait for, ever


# -- the module's default instance, the ASGI app --------------------------------------------------

def test_replacing_the_default_instance_releases_the_old_one(sandbox: Any, data: Path) -> None:
    module = wasm_import.load(build_python_guest("sandbox"), name="sandbox_default_lifecycle")
    grants = Wasi(dirs=[Dir(data, "/data")])
    sandbox.instantiate(limits=Limits(timeout=0.5)).wall_ns()  # the process's timeout watcher starts (once)
    module.link(wasi=grants)
    assert module.read_file("/data/hello.txt") == "hello"
    first = module.__dict__["__wasm_default__"]
    with no_leaks():
        module.link(wasi=grants, limits=Limits(timeout=0.5))  # the next default instance is a new one
        assert first.closed
        assert module.read_file("/data/hello.txt") == "hello"  # opens a new one: closed below
        second = module.__dict__["__wasm_default__"]
        with pytest.raises(LimitExceeded):
            module.sleep_ms(5000)  # out of time: the default instance is poisoned
        assert module.read_file("/data/hello.txt") == "hello"  # on a fresh one; the trapped one is released
        assert second.closed and second.poisoned
        with pytest.raises(InstancePoisonedError, match="trapped earlier"):  # it still says why
            second.read_file("/data/hello.txt")
        third = module.__dict__["__wasm_default__"]
        module.link()
        assert third.closed


def test_the_asgi_app_closes_each_requests_instance(data: Path) -> None:
    from tests.wasi.test_http_serve import call

    for guest in ("httpserve", "p3http"):
        app = asgi(wasm_import.load(build_python_guest(guest)), wasi=Wasi(dirs=[Dir(data, "/data")]))

        async def main(n: int) -> List[int]:
            return [(await call(app, "GET", f"/n{i}")).status for i in range(n)]

        asyncio.run(main(1))
        with no_leaks():
            assert asyncio.run(main(100)) == [200] * 100
            _closers_done()


def _closers_done() -> None:
    """Wait for the closes handed to a thread because a call was still inside the instance."""
    for thread in threading.enumerate():
        if thread.name == "wasm-import close":
            thread.join(20)


def test_close_waits_for_a_call_in_another_thread_and_close_soon_does_not(sandbox: Any, data: Path) -> None:
    for how in ("close", "close soon"):
        inst = sandbox.instantiate(wasi=Wasi(dirs=[Dir(data, "/data")]))
        slept: List[Any] = []
        worker = threading.Thread(target=lambda: slept.append(inst.sleep_ms(300)))
        worker.start()
        time.sleep(0.1)  # the call is inside the instance now
        start = time.monotonic()
        if how == "close":
            inst.close()  # waits for the call: nothing it uses is closed under it
            assert time.monotonic() - start > 0.1 and slept and inst.closed
        else:
            inst._close_soon()  # what the ASGI app and a replaced default instance do
            assert time.monotonic() - start < 0.1 and not inst.closed
            worker.join(10)
            _closers_done()
            assert slept and inst.closed
        worker.join(10)
        assert len(inst._wasi_context.held) == 0
