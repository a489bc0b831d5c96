# mypy: disable-error-code="import-not-found"
# (the modules these tests import are components the tests write at run time)
"""The compiled-code cache: where files go, when they are written, and that nothing
unvalidated ever reaches wasmtime."""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from tests.test_hook import adder_bytes, clean_imports, on_path, put, sub_bytes  # noqa: F401 (fixtures)
from wasm_import import _cache, _engine


class Spy:
    """Counts compiles, and records every payload handed to wasmtime and every one written."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, route: str = "bytes") -> None:
        self.compiles = 0
        self.written: List[bytes] = []
        self.deserialized: List[bytes] = []
        real_compile, real_write, real_deserialize = _engine.compile_component, _cache._write, _engine.deserialize

        def compile_component(data: bytes, *, where: str = "<bytes>") -> _engine.CompiledComponent:
            self.compiles += 1
            return real_compile(data, where=where)

        def write(path: str, payload: bytes, keys: Any) -> None:
            self.written.append(payload)
            real_write(path, payload, keys)

        def deserialize(data: bytes) -> _engine.CompiledComponent:
            self.deserialized.append(bytes(data))
            return real_deserialize(data)

        def deserialize_file(path: str) -> _engine.CompiledComponent:
            """Stands in for a zero-copy engine loader: wasmtime would map this file."""
            with open(path, "rb") as f:
                data = f.read()
            return deserialize(data[: len(data) - _cache._TRAILER.size])

        monkeypatch.setattr(_engine, "compile_component", compile_component)
        monkeypatch.setattr(_engine, "deserialize", deserialize)
        monkeypatch.setattr(_cache, "_write", write)
        loader = deserialize_file if route == "file" else None
        monkeypatch.setattr(_cache, "_file_loader", lambda: loader)

    def only_validated_bytes_reached_wasmtime(self) -> bool:
        return all(payload in self.written for payload in self.deserialized)


def cache_files(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def writable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)


# -- names and places ---------------------------------------------------------------------------

def test_import_writes_cache_and_next_import_uses_it(clean_imports: None, tmp_path: Path,
                                                      adder_bytes: bytes,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    import foo

    cached = Path(foo.__cached__)
    assert cached == tmp_path / "__pycache__" / f"foo.wasm.{_cache.cache_tag()}.cwasm"
    assert cached.is_file() and spy.compiles == 1
    assert cached != Path(importlib.util.cache_from_source(str(tmp_path / "foo.py")))
    del sys.modules["foo"]
    import foo  # noqa: F811

    assert foo.add.add(2, 3) == 5
    assert spy.compiles == 1 and spy.deserialized == spy.written


def test_no_temporary_files_are_left(writable: None, tmp_path: Path, adder_bytes: bytes) -> None:
    _cache.load_compiled(adder_bytes, source_path=str(tmp_path / "foo.wasm"))
    assert cache_files(tmp_path / "__pycache__") == [f"foo.wasm.{_cache.cache_tag()}.cwasm"]


def test_engine_fingerprint_is_in_the_name(writable: None, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = str(tmp_path / "foo.wasm")
    before = _cache.cache_path_for(source)
    monkeypatch.setattr(_engine, "fingerprint", lambda: "wasmtime-0.0.0;other")
    assert _cache.cache_path_for(source) != before


def test_changed_source_is_recompiled(writable: None, tmp_path: Path, adder_bytes: bytes,
                                      sub_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    source = str(tmp_path / "foo.wasm")
    _cache.load_compiled(adder_bytes, source_path=source)
    _cache.load_compiled(sub_bytes, source_path=source)
    _cache.load_compiled(sub_bytes, source_path=source)
    assert spy.compiles == 2 and len(spy.deserialized) == 1


def test_bytes_without_a_path_are_not_cached(writable: None, tmp_path: Path, adder_bytes: bytes,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    monkeypatch.chdir(tmp_path)
    _cache.load_compiled(adder_bytes)
    assert spy.written == [] and cache_files(tmp_path) == []


def test_pycache_prefix(clean_imports: None, tmp_path: Path, adder_bytes: bytes,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    put(on_path(tmp_path / "src") / "foo.wasm", adder_bytes)
    import foo

    relative = os.path.splitdrive(str(tmp_path / "src"))[1].lstrip(os.sep)
    assert Path(foo.__cached__) == prefix / relative / f"foo.wasm.{_cache.cache_tag()}.cwasm"
    assert Path(foo.__cached__).is_file()
    assert not (tmp_path / "src" / "__pycache__").exists()


def test_dont_write_bytecode_still_reads(writable: None, tmp_path: Path, adder_bytes: bytes,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    source = str(tmp_path / "foo.wasm")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _cache.load_compiled(adder_bytes, source_path=source)
    assert not (tmp_path / "__pycache__").exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    _cache.load_compiled(adder_bytes, source_path=source)  # writes
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    spy = Spy(monkeypatch)
    _cache.load_compiled(adder_bytes, source_path=source)
    assert spy.compiles == 0 and len(spy.deserialized) == 1


def test_unwritable_cache_directory_is_not_an_error(clean_imports: None, tmp_path: Path,
                                                    adder_bytes: bytes) -> None:
    put(on_path(tmp_path) / "foo.wasm", adder_bytes)
    put(tmp_path / "__pycache__", b"a file where the directory should be")
    import foo

    assert foo.add.add(1, 2) == 3
    assert cache_files(tmp_path) == ["__pycache__", "foo.wasm"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_directory_is_not_an_error(writable: None, tmp_path: Path, adder_bytes: bytes) -> None:
    tmp_path.chmod(0o555)
    try:
        _cache.load_compiled(adder_bytes, source_path=str(tmp_path / "foo.wasm"))
    finally:
        tmp_path.chmod(0o755)
    assert not (tmp_path / "__pycache__").exists()


def test_component_in_a_zip_is_cached_per_user(clean_imports: None, tmp_path: Path,
                                               adder_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "user-cache"))
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped.wasm", adder_bytes)
    on_path(archive)
    spy = Spy(monkeypatch)
    import zipped

    assert Path(zipped.__cached__).is_file()
    assert Path(zipped.__cached__).is_relative_to(Path(_cache.user_cache_dir()))
    del sys.modules["zipped"]
    import zipped  # noqa: F811

    assert spy.compiles == 1 and zipped.add.add(1, 1) == 2


# -- damaged files ------------------------------------------------------------------------------

def _flip(offset_from_end: int | None = None, offset: int | None = None) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        i = offset if offset is not None else len(data) - (offset_from_end or 1)
        return data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:]
    return damage


def _foreign_engine(data: bytes) -> bytes:
    """A well-formed file, with a valid CRC, made by some other engine."""
    payload, raw = data[: -_cache._TRAILER.size], data[-_cache._TRAILER.size:]
    t = _cache._Trailer.unpack(raw)
    other = _cache._Trailer(t.magic, t.version, t.crc32, t.length, b"\x01" * 32, t.source_key)
    return payload + other.pack()


_T = _cache._TRAILER.size
DAMAGE: Dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda d: b"",
    "garbage": lambda d: os.urandom(len(d)),
    "just a trailer": lambda d: d[-_T:],
    "truncated to half": lambda d: d[: len(d) // 2],
    "truncated by one byte": lambda d: d[:-1],
    "trailer cut off": lambda d: d[:-_T],
    "extra byte appended": lambda d: d + b"\0",
    "payload byte flipped (start)": _flip(offset=0),
    "payload byte flipped (middle)": lambda d: _flip(offset=(len(d) - _T) // 2)(d),
    "payload byte flipped (end)": _flip(offset_from_end=_T + 1),
    "trailer: magic flipped": _flip(offset_from_end=_T),
    "trailer: version flipped": _flip(offset_from_end=_T - 8),
    "trailer: crc flipped": _flip(offset_from_end=_T - 12),
    "trailer: length flipped": _flip(offset_from_end=_T - 16),
    "trailer: engine key flipped": _flip(offset_from_end=_T - 24),
    "trailer: source key flipped": _flip(offset_from_end=1),
    "foreign engine fingerprint": _foreign_engine,
}


@pytest.mark.parametrize("route", ["bytes", "file"])
@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_cache_is_rebuilt_and_never_reaches_wasmtime(writable: None, tmp_path: Path,
                                                             adder_bytes: bytes, damage: str, route: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source = str(tmp_path / "foo.wasm")
    spy = Spy(monkeypatch, route=route)
    _cache.load_compiled(adder_bytes, source_path=source)
    cache_file = Path(_cache.cache_path_for(source))
    cache_file.write_bytes(DAMAGE[damage](cache_file.read_bytes()))

    compiled = _cache.load_compiled(adder_bytes, source_path=source)  # detects, rebuilds
    assert spy.compiles == 2 and spy.deserialized == []
    assert isinstance(compiled, _engine.CompiledComponent)

    _cache.load_compiled(adder_bytes, source_path=source)  # the rebuilt file is good
    assert spy.compiles == 2 and len(spy.deserialized) == 1
    assert spy.only_validated_bytes_reached_wasmtime()


def test_damage_table_covers_every_trailer_field() -> None:
    # one "trailer: <field> flipped" case per field of the struct (magic..source key)
    fields = [name for name in DAMAGE if name.startswith("trailer: ")]
    assert len(fields) == len(_cache._Trailer.__dataclass_fields__)
