"""A WASI 0.3 filesystem user: one operation per call on a path beneath a preopen, through
`wasi:filesystem@0.3.0` (file contents through `stream<u8>`, directory listings through a
`stream<directory-entry>`)."""

import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import preopens
from wit_world.imports.wasi_filesystem_types import Descriptor, DescriptorFlags, OpenFlags, PathFlags


def _root(name: str) -> Descriptor:
    for descriptor, guest_path in preopens.get_directories():
        if guest_path == name:
            return descriptor
    raise Err(f"no preopen {name!r}")


def _case(value: object) -> str:
    return type(value).__name__.split("_", 1)[1]


async def _read(root: Descriptor, path: str) -> str:
    f = await root.open_at(PathFlags.SYMLINK_FOLLOW, path, OpenFlags(0), DescriptorFlags.READ)
    stream, done = f.read_via_stream(0)
    data = bytearray()
    with stream:
        while not stream.writer_dropped:
            data += await stream.read(65536)
    outcome = await done.read()
    if isinstance(outcome, Err):
        raise outcome
    return data.decode()


async def _write(root: Descriptor, path: str, text: str, append: bool) -> str:
    flags = OpenFlags.CREATE if append else OpenFlags.CREATE | OpenFlags.TRUNCATE
    f = await root.open_at(PathFlags.SYMLINK_FOLLOW, path, flags, DescriptorFlags.WRITE)
    writer, reader = wit_world.byte_stream()
    done = f.append_via_stream(reader) if append else f.write_via_stream(reader, 0)
    with writer:
        await writer.write_all(text.encode())
    outcome = await done.read()
    if isinstance(outcome, Err):
        raise outcome
    return f"wrote {len(text.encode())}"


async def _list(root: Descriptor, path: str) -> str:
    d = root if path == "." else await root.open_at(PathFlags.SYMLINK_FOLLOW, path, OpenFlags.DIRECTORY,
                                                          DescriptorFlags.READ)
    stream, done = d.read_directory()
    names = []
    with stream:
        while not stream.writer_dropped:
            for entry in await stream.read(16):
                names.append(f"{entry.name}:{_case(entry.type)}")
    outcome = await done.read()
    if isinstance(outcome, Err):
        raise outcome
    return " ".join(names)


async def _op(root: Descriptor, op: str, path: str) -> str:
    verb, _, arg = op.partition(":")
    if verb == "read":
        return await _read(root, path)
    if verb in ("write", "append"):
        return await _write(root, path, arg, verb == "append")
    if verb == "list":
        return await _list(root, path)
    if verb == "stat":
        st = await root.stat_at(PathFlags(0), path)
        return f"{_case(st.type)} size={st.size} mtime={st.data_modification_timestamp is not None}"
    if verb == "mkdir":
        await root.create_directory_at(path)
    elif verb == "unlink":
        await root.unlink_file_at(path)
    elif verb == "rmdir":
        await root.remove_directory_at(path)
    elif verb == "rename":
        await root.rename_at(path, root, arg)
    elif verb == "symlink":
        await root.symlink_at(arg, path)
    elif verb == "link":
        await root.link_at(PathFlags(0), path, root, arg)
    elif verb == "readlink":
        return await root.readlink_at(path)
    elif verb == "flags":
        f = await root.open_at(PathFlags(0), path, OpenFlags(0), DescriptorFlags.READ)
        return str(await f.get_flags())
    else:
        raise Err(f"unknown op {op!r}")
    return "ok"


class Api(exports.Api):
    async def run(self, root: str, op: str, path: str) -> str:
        try:
            return await _op(_root(root), op, path)
        except Err as e:
            if isinstance(e.value, str):
                raise
            raise Err(_case(e.value))
