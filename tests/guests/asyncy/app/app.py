"""Async test guest: async exports returning values, streams and futures, and an async import."""

import componentize_py_async_support
import wit_world
from wit_world import exports
from wit_world.imports import host


class Api(exports.Api):
    async def slow_add(self, a: int, b: int) -> int:
        return (a + b) & 0xFFFFFFFF

    def add(self, a: int, b: int) -> int:
        return (a + b) & 0xFFFFFFFF

    async def count_up(self, n: int) -> wit_world.StreamReader[int]:
        writer, reader = wit_world.u32_stream()

        async def produce() -> None:
            with writer:
                i = 0
                while i < n:
                    step = min(64, n - i)
                    await writer.write_all(list(range(i, i + step)))
                    i += step

        componentize_py_async_support.spawn(produce())
        return reader

    async def blob(self, total: int, chunk: int) -> wit_world.ByteStreamReader:
        writer, reader = wit_world.byte_stream()
        block = bytes(i & 0xFF for i in range(chunk))

        async def produce() -> None:
            with writer:
                sent = 0
                while sent < total:
                    piece = block if total - sent >= chunk else block[: total - sent]
                    await writer.write_all(piece)
                    sent += len(piece)

        componentize_py_async_support.spawn(produce())
        return reader

    async def later(self, x: str) -> wit_world.FutureReader[str]:
        writer, reader = wit_world.string_future(lambda: "default")

        async def fill() -> None:
            with writer:
                await writer.write(x.upper())

        componentize_py_async_support.spawn(fill())
        return reader

    async def via_host(self, ms: int, x: int) -> int:
        y = await host.sleep_then(ms, x)
        return (y * 2) & 0xFFFFFFFF

    async def sum_bytes(self, s: wit_world.ByteStreamReader) -> int:
        total = 0
        with s:
            while not s.writer_dropped:
                data = await s.read(65536)
                total += sum(data)
        return total

    def echo_list(self, data: bytes) -> bytes:
        return data
