"""The exported resource `counter` of interface `test:kitchen/echo`.

componentize-py requires an exported resource class to live in a module named after the
interface that declares it, hence this file's name.
"""

from wit_world.exports import echo


class Counter(echo.Counter):
    def __init__(self, start: int) -> None:
        self.value = start

    def increment(self) -> int:
        self.value += 1
        return self.value

    def get(self) -> int:
        return self.value

    @classmethod
    def merge(cls, a: "Counter", b: "Counter") -> "Counter":
        # `a` and `b` are borrows: read them, do not keep them.
        return cls(a.value + b.value)
