"""What every op of the numba backend shares: the op base class, the flat-view helper and
the compiled-entry-point helper. Ops are registered by node type (kind ``"numba"``) in
the ``ops_*`` modules of this package."""
from __future__ import annotations

import numpy as np

from ...errors import BackendError
from ...ops.decoders import DECODERS
from .quickload import compile_cached

F32, I32 = np.float32, np.int32
ALWAYS, DECODER, ON_EVENT = 0, 1, 2  # run every tick / emit at window ends / run on a new input


class TickExpr(str):
    """An argument of a bound op's call (``fn.call``) that follows the tick: its source text
    in terms of ``t`` (e.g. ``"(t + 1) % 16 == 0"``), for generated loops over ticks
    (quiet.py); the per-op path computes the same value in Python."""


def entry_point(kernel, *example):
    """numba's compiled entry point of ``kernel`` for the types of ``example`` (loaded from
    the cache or compiled now). Calling it skips the dispatcher's per-call type resolution,
    about 0.1 us per argument, which adds up at ~10 kernel calls per tick. Every later call
    must pass arguments of exactly these types (the bound arrays, and per-tick scalars of
    fixed Python types). A cached signature is loaded without numba's context refresh
    (quickload.py)."""
    try:
        return compile_cached(kernel, tuple(kernel.typeof_pyval(a) for a in example))
    except Exception:  # an unusual argument type: keep the dispatcher
        return kernel


def kernel_call(be, kernel, *args, events: bool = False):
    """fn(t) making the one call ``kernel(*args)`` through its compiled entry point (adding
    the returned count to ``be.events`` when ``events``), with ``fn.call = (kernel, args,
    events)``: a bound op that is one fixed kernel call per tick says so, and the compiled
    tick (tickgen.py) makes that call from generated code instead of from Python."""
    k = entry_point(kernel, *args)
    if events:
        def fn(t):
            be.events += k(*args)
    else:
        def fn(t):
            k(*args)
    fn.call = (kernel, args, events)
    return fn


def flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view (never a copy: kernels write through it into the value array)."""
    if not a.flags.c_contiguous:
        raise BackendError(f"numba backend: internal array of shape {a.shape} is not contiguous")
    return a.reshape(-1)


def kind_of(entry) -> int:
    if isinstance(entry.node, DECODERS):
        return DECODER
    return ALWAYS if entry.per_tick else ON_EVENT


class Op:
    """One step of the program. ``outs`` are the entries it writes; ``alloc`` makes their
    value arrays and the op's state; ``bind`` returns fn(t) (-> bool, emitted, for a
    decoder) or None when there is nothing to do per tick."""
    kind = ALWAYS

    def __init__(self, be, entry):
        self.be, self.entry, self.node = be, entry, entry.node
        self.name, self.outs = entry.name, [entry.name]
        self.state: dict[str, np.ndarray] = {}

    def out_dtype(self):
        return I32 if self.entry.numeric == "int" else F32

    def alloc(self, batch: int, bufs: dict) -> None:
        bufs[self.name] = np.zeros((batch,) + self.entry.shape, self.out_dtype())

    def bind(self, bufs: dict):
        raise NotImplementedError

    def ins(self, bufs):
        return [bufs[i] for i in self.entry.inputs]

    def extra_state(self) -> dict:
        """Checkpoint fields kept outside ``state`` (e.g. a generator's packed state)."""
        return {}

    def load_extra_state(self, st: dict) -> None:
        pass

    def state_of(self, name: str) -> dict:
        """The state arrays this op keeps for plan entry ``name`` (a probe reads them)."""
        return self.state if name == self.name else {}


class StatefulOp(Op):
    """An op whose state arrays are made by its node family's ``state`` function."""

    def alloc(self, batch, bufs):
        from ...ops import find
        super().alloc(batch, bufs)
        self.state = find("state", self.node)(self.node, batch, self.entry.shape)
