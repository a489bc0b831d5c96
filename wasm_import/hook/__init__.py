"""The import hook: `import foo` finds `foo.wasm` on `sys.path` (also in zips and wheels)
and returns a component module.

    _finder    the `sys.meta_path` finder, its spec and loader, `install`/`uninstall`
    _command   `python -m foo`: a `wasi:cli/run` command component run with the process's
               argv, stdio and exit status (the loader's code calls `run_module`; the
               CLI's `run` and `call` use it too)

`import wasm_import` installs it, so this package is imported at once and must stay cheap:
it imports the bindings (and through them the runtime) only when a `.wasm` is loaded.
"""

from ._finder import install, uninstall

__all__ = ["install", "uninstall"]
