"""What the compiler derives and checks about values and names before it writes an image:
the value range of each entry (from the op that produces it: it decides which partial sums
need 64 bits), and the board's limits (decoder windows, name lengths) that a board would
otherwise refuse at load or over the link. docs/chip.md."""
from __future__ import annotations

import numpy as np

from .. import ann, bridge, q
from ..domains import CURRENT, SPIKE
from ..graph import Delay
from ..ops.decoders import MAX_CHIP_WINDOW
from .errors import CompileError
from .wire import MAX_NAME_BYTES


def value_bound(plan, name: str, _seen=None) -> int:
    """The largest |value| entry ``name`` can hold, from the op that produces it (int8
    after a requantisation, a clamp's bounds, a decoder's window, 1 for spikes, else
    the int32 range): it decides whether partial sums need 64 bits."""
    seen = set() if _seen is None else _seen
    if name in seen:
        return 2 ** 31           # a cycle through a delay: no smaller bound is known
    seen.add(name)
    e = plan.entry(name)
    n = e.node
    if e.domain == SPIKE:
        return 1
    if e.domain == CURRENT:
        return 2 ** 31
    if isinstance(n, q.Quantize) or isinstance(n, q.Lookup):
        return 128
    lo, hi = getattr(n, "lo", None), getattr(n, "hi", None)
    if isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer)):
        return max(abs(int(lo)), abs(int(hi)))
    if isinstance(n, (bridge.SpikeCount, bridge.FirstSpike)):
        return int(n.window)
    if isinstance(n, (q.MaxPool2d, ann.Flatten, ann.Concat)):
        return max(value_bound(plan, i, seen) for i in e.inputs)
    if isinstance(n, Delay):
        return value_bound(plan, e.source, seen)
    return 2 ** 31


def check_board_limits(plan, chip_inputs, outputs) -> None:
    """What a board would refuse at load or over the link, refused here with the node or
    name: decoder windows above the chip's, names the protocol cannot carry."""
    for e in plan.entries:
        if isinstance(e.node, (bridge.SpikeCount, bridge.FirstSpike)) and e.node.window > MAX_CHIP_WINDOW:
            raise CompileError(f"`{e.name}` ({e.node.op}) has a window of {e.node.window} ticks; the chip's "
                               f"spike-count and first-spike windows hold at most {MAX_CHIP_WINDOW} ticks "
                               "(use a shorter window, or the numba backend)")
    for what, names in (("input", [i["name"] for i in chip_inputs]), ("output", [o["name"] for o in outputs])):
        for name in names:
            if not 0 < len(name.encode("utf-8")) <= MAX_NAME_BYTES:
                raise CompileError(f"chip {what} name {name[:40]!r}... is {len(name.encode('utf-8'))} UTF-8 "
                                   f"bytes; the link carries names of 1..{MAX_NAME_BYTES} bytes: rename it")
