"""A native Python platform running components as sandboxed plug-ins.

    python examples/plugin_host.py

The platform exposes its own API (here, a logger that tags lines with the plug-in's
name) to every plug-in it finds, by parameterization: each plug-in instance gets its own
objects, chosen here, never looked up by name. Each instance has its own store, so
plug-ins share no state, and a WASI plug-in gets no files, environment or network unless
the platform grants them with `wasm_import.Wasi`. Every call is bounded in time, fuel and
memory (`wasm_import.Limits`), so a plug-in that loops or hoards cannot stall the platform.
"""

from __future__ import annotations

from pathlib import Path

import wasm_import

PLUGIN_DIR = Path(__file__).parent
PLUGIN_LIMITS = wasm_import.Limits(timeout=1.0, fuel=10_000_000, memory=16 << 20)


class PlatformLogger:
    """The platform's API, as one plug-in sees it."""

    def __init__(self, plugin: str, sink: list[str]) -> None:
        self.plugin = plugin
        self.sink = sink

    def log(self, msg: str) -> None:
        self.sink.append(f"[{self.plugin}] {msg}")


def load_plugins(directory: Path, sink: list[str]) -> dict[str, object]:
    plugins = {}
    for path in sorted(directory.glob("*.wasm")):
        module = wasm_import.load(path)
        if "example:greeter/greet@1.0.0" not in module.exports:
            continue  # not a plug-in for this platform
        imports = {"example:greeter/logger": PlatformLogger(path.stem, sink)}
        plugins[path.stem] = module.instantiate(imports=imports, wasi=wasm_import.Wasi(),
                                                limits=PLUGIN_LIMITS)
    return plugins


def main() -> None:
    log: list[str] = []
    plugins = load_plugins(PLUGIN_DIR, log)
    for name, plugin in plugins.items():
        try:
            print(f"{name}: {plugin.greet.greet('platform user')}")
        except wasm_import.LimitExceeded as stopped:  # looping or hoarding: stopped, not hung
            print(f"{name} stopped: {stopped.limit} limit")
        except wasm_import.Trap as trap:  # a broken plug-in cannot take the platform down
            print(f"{name} crashed: {trap.message}")
    print("platform log:", *log, sep="\n  ")


if __name__ == "__main__":
    main()
