"""Errors of the chip compiler and of the host end of the chip link (the emulator has its own)."""
from ..errors import GraphError, TianrtError


class CompileError(GraphError):
    """A graph the compiler cannot map: a float node, an unsupported op; names the node."""


class CapacityError(CompileError):
    """A graph (or one layer) that does not fit the ChipSpec: names the layer and the cores
    it needs against the cores that are free."""


class LinkError(TianrtError, RuntimeError):
    """The link or the board failed: no reply, a refusal (``code`` is the protocol error
    code), a version mismatch, or a board that cannot be reached."""

    def __init__(self, message: str, code: int | None = None, command: int | None = None):
        self.code = code
        self.command = command
        super().__init__(message)


class LinkWarning(RuntimeWarning):
    """Something the link recovered from that the user should know about (a board reset)."""
