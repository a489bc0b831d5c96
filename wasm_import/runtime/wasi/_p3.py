"""WASI 0.3 (native async): importing this registers its providers with `_context`.

cli, clocks and random are in `_p3_cli` / `_p3_clocks`, http in `_p3_http`. WASI 0.3's
filesystem and sockets are not implemented: a component importing them links (the import
is listed as missing) and a call into one raises `LinkError` naming it.
"""

from . import _p3_cli, _p3_clocks  # noqa: F401  (they register themselves)

try:
    from . import _p3_http  # noqa: F401
except ImportError:  # pragma: no cover  (http.client missing: a stripped-down Python)
    pass

__all__: list = []
