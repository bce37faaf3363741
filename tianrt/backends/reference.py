"""The reference backend: plain numpy, written to be read; the semantic oracle.

Every node's rule is the ``reference`` implementation registered for its type in its op
family's module (``tianrt.ops``): a pure function ``rule(node, state, inputs, t) -> value
or None`` on batched arrays, with the state made by the family's ``state`` function. The
tick loop here runs them in plan order (docs/architecture.md, docs/semantics.md). Float
graphs compute in float32; integer (``tr.q``) graphs in int64 with int32 results
(docs/integer.md); spikes are float32 0/1 in both.
"""
from __future__ import annotations

import numpy as np

from ..errors import BackendError
from ..graph import Delay, Input, Plan
from ..ops import find
from ..ops.linear import conv2d  # noqa: F401  (re-exported: the oracle of the float kernels)
from ..ops.pool import avgpool2d, maxpool2d  # noqa: F401  (likewise)
from .base import Backend

F32 = np.float32


class Op:
    """One plan entry bound to its rule: ``init(batch) -> state``, ``(state, xs, t) -> value``."""

    def __init__(self, entry):
        self.entry, self.node, self.shape = entry, entry.node, entry.shape
        self.rule = find("reference", entry.node, None)
        if self.rule is None:
            raise BackendError(f"reference backend cannot run `{entry.name}` ({entry.node.op})")
        self.make_state = find("state", entry.node, None)
        # a float node on integer edges (Concat, Flatten, SpikeCount...) keeps them int32
        self.to_int = entry.numeric == "int" and not entry.node.op.startswith("q.")

    def init(self, batch: int) -> dict:
        return {} if self.make_state is None else self.make_state(self.node, batch, self.shape)

    def __call__(self, st, xs, t):
        out = self.rule(self.node, st, xs, t)
        return out.astype(np.int32) if self.to_int and out is not None else out


def stateless_fn(node):
    """The function of a node without state on batched arrays (for tools such as
    tr.convert that evaluate single layers), or None."""
    rule = find("reference", node, None)
    if rule is None or find("state", node, None) is not None or node.reads_input_state:
        return None
    return lambda *xs: rule(node, {}, list(xs), 0)


def _dtype(e):
    """int32 buffers for integer-mode edges, float32 for the rest (spikes included)."""
    return np.int32 if e.numeric == "int" else F32


class ReferenceBackend(Backend):
    """Readable numpy implementation of the tick semantics."""

    name = "reference"

    def __init__(self, plan: Plan, **options):
        super().__init__(plan, **options)
        self.ops = {e.name: Op(e) for e in plan.entries if not isinstance(e.node, (Input, Delay))}

    def _init_state(self, batch):
        self.st = {name: op.init(batch) for name, op in self.ops.items()}
        self.values = {e.name: np.zeros((batch,) + e.shape, _dtype(e)) for e in self.plan.entries}
        self.fresh = {e.name: False for e in self.plan.entries}
        # at tick 0 a delay emits zeros: an event-less tensor, or a spike/current value
        self.delayed = {e.name: (np.zeros((batch,) + e.shape, _dtype(e)), e.per_tick)
                        for e in self.plan.entries if isinstance(e.node, Delay)}

    def _tick(self, inputs):
        values, fresh, t = self.values, self.fresh, self.t
        for e in self.plan.entries:
            name = e.name
            if isinstance(e.node, Input):
                if name in inputs:
                    values[name] = inputs[name]
                elif not e.node.hold:  # presented once: zeros at the ticks without a value
                    values[name] = np.zeros_like(values[name])
                # per-tick inputs present their value (held, or zeros) every tick
                fresh[name] = name in inputs or e.per_tick
                continue
            if isinstance(e.node, Delay):
                values[name], fresh[name] = self.delayed[name]
                continue
            if not e.per_tick and not any(fresh[i] for i in e.inputs):
                fresh[name] = False
                continue
            st = self.st[e.inputs[0]] if e.node.reads_input_state else self.st[name]
            out = self.ops[name](st, [values[i] for i in e.inputs], t)
            fresh[name] = out is not None
            if out is not None:
                values[name] = out
        for e in self.plan.entries:
            if isinstance(e.node, Delay):
                self.delayed[e.name] = (values[e.source].copy(), fresh[e.source])
        return {k: values[src] for k, src in self.plan.outputs.items() if fresh[src]}

    def _get_state(self):
        out = {}
        for name, st in self.st.items():
            for k, v in st.items():
                out[f"{name}/{k}"] = v
        for name, v in self.values.items():
            out[f"{name}/__value__"] = v
        for name, (v, f) in self.delayed.items():
            out[f"{name}/__delayed__"] = v
            out[f"{name}/__delayed_fresh__"] = np.asarray(f)
        return out

    def _set_state(self, state):
        for name, st in self.st.items():
            for k in st:
                st[k] = state[f"{name}/{k}"]
        for name in self.values:
            self.values[name] = state[f"{name}/__value__"]
        for name in self.delayed:
            self.delayed[name] = (state[f"{name}/__delayed__"], bool(state[f"{name}/__delayed_fresh__"]))

    def reset(self):
        super().reset()
        self.st = {}
