"""How WIT names become Python names (componentize-py's convention).

kebab-case functions, parameters, fields and modules become `snake_case`; types and
classes become `PascalCase`; enum and flag members become `SHOUTY_CASE`; a result that is
a Python keyword (or a builtin constant) gets a trailing `_`.
"""

from __future__ import annotations

import keyword

__all__ = ["snake", "pascal", "shouty", "variant_case_class"]

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {"None", "True", "False"}


def _escape(name: str) -> str:
    return name + "_" if name in _RESERVED else name


def _words(name: str) -> list[str]:
    # A leading `%` escapes a WIT keyword (`%type`); it is not part of the name.
    return [w for w in name.lstrip("%").split("-") if w]


def snake(name: str) -> str:
    """`get-a` -> `get_a`, `type` -> `type_`."""
    return _escape("_".join(w.lower() for w in _words(name)))


def pascal(name: str) -> str:
    """`list-in-record1` -> `ListInRecord1`, `none` -> `None_`."""
    return _escape("".join(w[:1].upper() + w[1:].lower() for w in _words(name)))


def shouty(name: str) -> str:
    """`would-block` -> `WOULD_BLOCK`."""
    return _escape("_".join(w.upper() for w in _words(name)))


def variant_case_class(variant: str, case: str) -> str:
    """The class of a variant case: `shape`, `none` -> `Shape_None_`."""
    return f"{pascal(variant)}_{pascal(case)}"
