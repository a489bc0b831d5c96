"""A WASI 0.3 command: prints its arguments and an environment variable to stdout
through `wasi:cli/stdout@0.3.0.write-via-stream`, waits on the monotonic clock and draws
random bytes when asked, then succeeds, fails or exits with a code."""

import wit_world
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import environment, exit, monotonic_clock, random, stdout


class Run(exports.Run):
    async def run(self) -> None:
        args = environment.get_arguments()
        env = dict(environment.get_environment())
        writer, reader = wit_world.byte_stream()
        done = stdout.write_via_stream(reader)
        with writer:
            await writer.write_all(f"hello from wasi 0.3: {args[1:]}\n".encode())
            await writer.write_all(f"GREETING={env.get('GREETING')}\n".encode())
            if "sleep" in args:
                start = monotonic_clock.now()
                await monotonic_clock.wait_for(50_000_000)
                waited = monotonic_clock.now() - start
                await writer.write_all(f"waited at least 50 ms: {waited >= 50_000_000}\n".encode())
            if "random" in args:
                a, b = random.get_random_bytes(16), random.get_random_bytes(16)
                await writer.write_all(f"random: {len(a)} bytes, differ: {a != b}\n".encode())
        await done.read()
        if "fail" in args:
            raise Err(None)
        if "exit7" in args:
            exit.exit_with_code(7)
