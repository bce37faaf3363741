"""The emulator's refusals and the size checks it makes before allocating anything: every
size in an image or a frame is checked against the chip's capacity first (docs/protocol.md,
section 7: limits)."""
from __future__ import annotations

import tianrt.chip.protocol as protocol

from .soma import BadRecord


class EngineError(Exception):
    """A refused command: ``code`` is one of tianrt.chip.protocol's error codes."""

    def __init__(self, code: int, message: str):
        self.code = int(code)
        self.message = message
        super().__init__(f"{protocol.ERROR_NAMES.get(self.code, self.code)}: {message}")


def buffer_capacity(spec: dict) -> int:
    """Largest buffer (values) a chip of this spec holds: four times every core's axons or
    neurons (the buffers of all images together hold at most four times that)."""
    return 4 * spec["mesh_rows"] * spec["mesh_cols"] * max(spec["axons_per_core"], spec["neurons_per_core"])


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _pair(v, what):
    if not (isinstance(v, list) and len(v) == 2):
        raise BadRecord(f"{what} must be [row, col], got {str(v)[:60]}")
    return v


def _name(v, what):
    if not isinstance(v, str) or not 0 < len(v.encode("utf-8", "replace")) <= protocol.MAX_NAME_BYTES:
        raise BadRecord(f"{what} name {str(v)[:60]!r}: must be 1..{protocol.MAX_NAME_BYTES} UTF-8 bytes")


def _shape(v, cap, what):
    if not (isinstance(v, list) and len(v) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= cap for d in v)):
        raise BadRecord(f"{what}: shape {str(v)[:60]} must be at most 8 dimensions of 0..{cap}")
    if _prod(v) > cap:
        raise EngineError(protocol.E_CAPACITY, f"{what}: shape {v} holds {_prod(v)} values, more than "
                                               f"this chip's {cap}")
    return tuple(v)
