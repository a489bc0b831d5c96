"""WIT, the interface types of a component: the data model, a decoder and a printer.

    >>> from wasm_import import wit
    >>> world = wit.decode(open("adder.wasm", "rb").read())
    >>> print(wit.to_wit(world))

`decode` reads only the component-level sections of the binary (never the core code),
so it is fast even for large components. Bad input raises `wasm_import.DecodeError`.
"""

from ._decode import decode
from ._model import *  # noqa: F403  (the model is the public surface of this module)
from ._model import __all__ as _model_all
from ._print import to_wit

__all__ = ["decode", "to_wit", *_model_all]
