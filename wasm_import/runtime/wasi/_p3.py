"""WASI 0.3 (native async): importing this registers its providers with `_context`.

cli, clocks and random are in `_p3_cli` / `_p3_clocks`, filesystem in `_p3_fs`, sockets
in `_p3_sockets`, http in `_p3_http`.
"""

from . import _p3_cli, _p3_clocks, _p3_fs, _p3_sockets  # noqa: F401  (they register themselves)

try:
    from . import _p3_http  # noqa: F401
except ImportError:  # pragma: no cover  (http.client missing: a stripped-down Python)
    pass

__all__: list = []
