"""A WASI 0.3 command: prints its arguments and an environment variable to stdout
through `wasi:cli/stdout@0.3.0.write-via-stream`, then exits with a status."""

import wit_world
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import environment, exit, stdout


class Run(exports.Run):
    async def run(self) -> None:
        args = environment.get_arguments()
        env = dict(environment.get_environment())
        writer, reader = wit_world.byte_stream()
        done = stdout.write_via_stream(reader)
        with writer:
            await writer.write_all(f"hello from wasi 0.3: {args[1:]}\n".encode())
            await writer.write_all(f"GREETING={env.get('GREETING')}\n".encode())
        await done.read()
        if "fail" in args:
            raise Err(None)
        if "exit7" in args:
            exit.exit_with_code(7)
