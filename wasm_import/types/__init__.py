"""The Python face of WIT types, shared by the runtime (which converts values) and the
bindings (which build modules): one meaning of "what Python value is a WIT value".

    _names     WIT names -> Python names (snake_case, PascalCase, SHOUTY_CASE)
    _pytypes   the classes made for records, variants, enums and flags, and the
               annotation of every WIT type (what stubs and signatures show)
    _checks    argument checks and their error text, built once per type

It sits above `wit/` (the model it reads) and the public value types in
`wasm_import._values` (`Some`, `Ok`, `Err`), and below `runtime/` and `bindings/`. Nothing
here is public: the public names are re-exported by `wasm_import`. Importing this package
imports none of its modules. Classes made for types that belong to no component module
(a bare `class_for(typedef)`) name this package as their `__module__`.
"""

__all__: list = []
