"""Probes: a neuron's state field (its membrane ``v``, an adaptation ``a``, a filtered
current ``i_syn``...) as a tensor output every tick, as snnTorch users get ``(spk, mem)``.

    mem = g.probe(lif, "v")          # after the neuron's update of the tick (after reset)
    g.output("mem", mem)

A probe reads one field of its input node's state after that node has stepped; only that
field is copied, once per tick. Probes run on the reference and numba backends (and in
integer mode, where the value is the integer state); the chip compiler refuses them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..domains import CURRENT, SPIKE, TENSOR
from ..errors import GraphError
from ..node import Node, register
from .registry import find, implements


@register
@dataclass(eq=False)
class Probe(Node):
    """The state field ``field`` of the input node, every tick (tensor domain)."""
    op = "snn.Probe"
    prefix = "probe"
    in_domains = (SPIKE, CURRENT, TENSOR)
    out_domain = TENSOR
    in_numeric = "any"
    per_tick = True
    reads_input_state = True  # backends hand the rule the input node's state, not its own
    field: str = "v"
    numeric: str = "float"

    def __post_init__(self):
        if not isinstance(self.field, str) or not self.field:
            raise GraphError(f"{self.op}: field must be the name of a state field, got {self.field!r}")
        if self.numeric not in ("float", "int"):
            raise GraphError(f"{self.op}: numeric must be 'float' or 'int', got {self.numeric!r}")

    def output_numeric(self, in_numerics):
        return self.numeric

    def check_source(self, src_entry, name: str) -> None:
        """The probed node must keep the field, and integer nodes give integer probes."""
        fields = state_fields(src_entry.node, src_entry.shape)
        if self.field not in fields:
            has = f"its state fields are {', '.join(fields)}" if fields else "it keeps no state"
            raise GraphError(f"probe `{name}`: `{src_entry.name}` ({src_entry.node.op}) has no state field "
                             f"{self.field!r}; {has}")
        want = "int" if src_entry.node.op.startswith("q.") else "float"
        if self.numeric != want:
            raise GraphError(f"probe `{name}` of `{src_entry.name}` ({src_entry.node.op}) must have "
                             f"numeric={want!r} (Graph.probe sets it)")


def state_fields(node, shape) -> list[str]:
    """The names of the state fields a node keeps (empty for a stateless node)."""
    init = find("state", node, None)
    return [] if init is None else sorted(init(node, 1, tuple(shape)))


@implements("reference", Probe)
def step(n, src_state, xs, t):
    return src_state[n.field].copy()


@implements("quantize", Probe)
def quantize(qz, e, src, kind, s_in):
    """The same probe on the integer neuron, dequantized at the output: the membrane and
    the filtered current in the neuron's current units, the adaptation in 1/ADAPT_ONE."""
    from .alif import ADAPT_ONE
    n, neuron = e.node, e.inputs[0]
    s_cur = qz.map[qz.entry[neuron].inputs[0]][2]
    scale = {"v": s_cur, "i_syn": s_cur, "a": 1.0 / ADAPT_ONE}.get(n.field, 1.0)
    qz.map[e.name] = (qz._add(n.copy(numeric="int"), src, e.name), "int", scale)
