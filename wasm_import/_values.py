"""Python values for the WIT types that have no natural Python builtin.

Follows componentize-py's mapping:
- `option<T>` is `T | None`; only a nested option (`option<option<T>>`) wraps the
  present outer case in `Some`, so `Some(None)` and `None` stay distinct.
- a `result<T, E>` that a function returns becomes "return T or raise `Err(e)`";
  a `result` anywhere else is the value `Ok(v)` or `Err(e)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar, Union

__all__ = ["Some", "Ok", "Err", "Result"]

S = TypeVar("S")
T = TypeVar("T")
E = TypeVar("E")


@dataclass(frozen=True)
class Some(Generic[S]):
    """The present case of a nested option: `Some(None)` is "present, and empty"."""

    value: S


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The success case of a WIT `result` value."""

    value: T = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Err(Exception, Generic[E]):
    """The failure case of a WIT `result`: a value, and an exception.

    A function whose WIT result is `result<T, E>` returns `T` or raises `Err(e)`;
    `.value` carries `e` (None for `result<T>` with no error payload).
    """

    value: E = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return repr(self.value)


Result = Union[Ok[T], Err[E]]
