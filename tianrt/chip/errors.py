"""Errors of the chip compiler (the emulator and the link have their own)."""
from ..errors import GraphError


class CompileError(GraphError):
    """A graph the compiler cannot map: a float node, an unsupported op; names the node."""


class CapacityError(CompileError):
    """A graph (or one layer) that does not fit the ChipSpec: names the layer and the cores
    it needs against the cores that are free."""

