"""Operation counts per inference: ANN multiply-accumulates, and for spiking graphs the
spikes and synaptic operations (one per spike per outgoing non-zero synapse), measured by
probing a graph with spike counters.

    probed = tr.opcount.probe_spikes(snn, window=T)      # adds "spikes:<neuron>" outputs
    outs = tr.Runtime(probed).run({"x": X}, ticks=T)
    stats = tr.opcount.snn_ops(probed, outs, ticks=T)    # spikes, synops, dense MACs per sample
"""
from __future__ import annotations

import numpy as np

from . import ann, bridge, q, snn
from .domains import CURRENT, SPIKE
from .errors import GraphError
from .graph import Delay, Graph, Input
from .ops import find

PREFIX = "spikes:"
_DENSE = (ann.Dense, snn.Dense, q.Dense, q.SynDense)
_SYNAPSES = (snn.Dense, snn.Conv2d, q.SynDense, q.SynConv2d)


def layer_macs(node, out_shape) -> int:
    """Multiply-accumulates of one evaluation of a node: its op family's ``macs`` rule
    (Dense/Conv2d-like layers), 0 for the others."""
    rule = find("macs", node, None)
    return 0 if rule is None else rule(node, out_shape)


def ann_macs(graph: Graph) -> int:
    """MACs of one inference of an ANN graph (each weight layer evaluated once)."""
    return sum(layer_macs(e.node, e.shape) for e in graph.entries.values())


def probe_spikes(graph: Graph, window: int) -> Graph:
    """A copy of ``graph`` with a ``SpikeCount(window)`` output ``spikes:<name>`` on every
    node that emits spikes (neurons and spike encoders)."""
    g = Graph(dt=graph.dt, name=graph.name)
    g.metadata = dict(graph.metadata)
    for name, e in graph.entries.items():
        if isinstance(e.node, Delay):
            raise GraphError(f"probe_spikes: delay `{name}` (recurrence) is not supported")
        if isinstance(e.node, Input):
            g.input(name, e.shape, e.domain, rate_hz=e.node.rate_hz, hold=e.node.hold)
        else:
            g.add(e.node.copy(), *e.inputs, name=name)
    for k, v in graph.outputs.items():
        g.output(k, v)
    for name, e in graph.entries.items():
        if e.domain == SPIKE and not isinstance(e.node, (Input, ann.Flatten, ann.Concat)):
            g.output(PREFIX + name, g.add(bridge.SpikeCount(window=int(window)), name, name=f"{name}_probe"))
    return g


def _fanout(node, in_shape) -> np.ndarray:
    """Non-zero outgoing synapses of every input neuron of a synapse, shaped like its input."""
    w = np.asarray(node.weight) != 0
    if isinstance(node, _DENSE):
        return w.sum(axis=0).reshape(in_shape).astype(np.float64)
    from .train import layers as L
    conv = L.Conv2d(node.in_channels, node.out_channels, node.kernel_size, node.stride, node.padding,
                    weight=w.astype(np.float32))
    conv.init(in_shape, np.random.default_rng(0))
    out = conv.forward(np.zeros((1,) + tuple(in_shape), np.float32), train=True)
    return conv.backward(np.ones_like(out))[0].astype(np.float64)


def snn_ops(graph: Graph, outs, ticks: int) -> dict:
    """Per-sample averages from a run of a ``probe_spikes`` graph: ``spikes`` (all neurons
    and encoders), ``synops`` (spike x non-zero fan-out, summed over spike-fed synapses),
    ``dense_macs`` (synapses fed by a current, e.g. direct input, cost full MACs every tick)
    and ``per_layer`` spike counts."""
    per_layer, synops, dense = {}, 0.0, 0.0
    counts = {}
    for k, v in outs.items():
        if k.startswith(PREFIX):
            c = np.asarray(v).sum(axis=0)  # over windows
            c = c if c.ndim > len(graph.entries[k[len(PREFIX):]].shape) else c[None]
            counts[k[len(PREFIX):]] = c.reshape(c.shape[0], -1).mean(axis=0)
            per_layer[k[len(PREFIX):]] = float(counts[k[len(PREFIX):]].sum())
    for name, e in graph.entries.items():
        if not isinstance(e.node, _SYNAPSES):
            continue
        src = e.inputs[0]
        while isinstance(graph.entries[src].node, ann.Flatten):
            src = graph.entries[src].inputs[0]
        se = graph.entries[src]
        in_shape = graph.entries[e.inputs[0]].shape
        if se.domain == CURRENT or graph.entries[e.inputs[0]].domain == CURRENT:
            dense += layer_macs(e.node, e.shape) * int(ticks)
        elif src in counts:
            synops += float(counts[src] @ _fanout(e.node, in_shape).reshape(-1))
    return {"spikes": float(sum(per_layer.values())), "synops": synops, "dense_macs": dense,
            "per_layer": per_layer}


__all__ = ["layer_macs", "ann_macs", "probe_spikes", "snn_ops"]
