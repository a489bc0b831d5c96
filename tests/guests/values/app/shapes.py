"""The exported resource `thing` of interface `test:values/shapes` (componentize-py looks
an exported resource class up in a module named after its interface)."""

from wit_world.exports import shapes


class Thing(shapes.Thing):
    def __init__(self, v: int) -> None:
        self.v = v

    def value(self) -> int:
        return self.v
