"""Python values for the WIT types that have no natural Python builtin.

Follows componentize-py's mapping:
- `option<T>` is `T | None`; only a nested option (`option<option<T>>`) wraps the
  present outer case in `Some`, so `Some(None)` and `None` stay distinct.
- a `result<T, E>` that a function returns becomes "return T or raise `Err(e)`";
  a `result` anywhere else is the value `Ok(v)` or `Err(e)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar, Union

__all__ = ["Some", "Ok", "Err", "Result", "host_result"]

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


@dataclass(unsafe_hash=True)
class Err(Exception, Generic[E]):
    """The failure case of a WIT `result`: a value, and an exception.

    A function whose WIT result is `result<T, E>` returns `T` or raises `Err(e)`;
    `.value` carries `e` (None for `result<T>` with no error payload).
    """

    value: E = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return repr(self.value)

    def __reduce__(self) -> Any:  # rebuilt from its value (an exception pickles its args)
        return type(self), (self.value,)

    def __setattr__(self, name: str, value: object) -> None:
        # Immutable in its value (like a frozen dataclass), but Python itself must be able
        # to set `__traceback__`, `__notes__`... on a raised exception (contextlib does).
        if name == "value" and "value" in self.__dict__:
            raise AttributeError("cannot assign to field 'value' of an immutable Err")
        object.__setattr__(self, name, value)


Result = Union[Ok[T], Err[E]]


def host_result(target: Callable[..., Any], args: Sequence[Any]) -> Union[Ok[Any], Err[Any]]:
    """Call `target`, a host function implementing an import whose WIT result is a
    `result<T, E>`, and tag its outcome: what it *returns* is the ok payload, whatever it
    is (an `Ok(...)` or `Err(...)` value too: the payload of `result<result<..>, ..>` is a
    result), and only an `Err` it *raises* is the error. The same rule as for calling
    exports, where `Err` is raised and never returned."""
    try:
        return Ok(target(*args))
    except Err as e:
        # A value for the guest now. Its traceback, and its context's (the frames it was
        # raised through, each holding its f_back), lead back to this frame, which holds
        # `e`: a cycle keeping the arguments (a file's stream, its fd) until a GC ran.
        e.__traceback__ = e.__context__ = e.__cause__ = None
        return e
