"""NIR export (``tr.interop.to_nir`` / ``write_nir``): a tr.Graph as a ``nir.NIRGraph``, with
extension nodes for what NIR has no type for and notes on what other readers lose.
Conventions and discretisation: nir_format.py, docs/interop.md."""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np

from .. import ann, snn
from ..graph import Delay, Graph, Input
from ._common import InteropError, InteropWarning, need
from .nir_format import EXT, F32, META, PEERS, below, full, jsonable


def _ext_class(nir):
    if not hasattr(_ext_class, "cls"):
        @dataclasses.dataclass(eq=False)
        class Extension(nir.NIRNode):
            """A tianrt node that NIR has no type for: its op, JSON config and arrays."""
            op: str
            config: str
            arrays: dict

            def __post_init__(self):
                self.input_type = {"input": None}
                self.output_type = {"output": None}

            def to_dict(self):
                return {"type": EXT, "op": self.op, "config": self.config,
                        "arrays": {k: np.asarray(v) for k, v in self.arrays.items()},
                        "metadata": dict(self.metadata)}
        _ext_class.cls = Extension
    return _ext_class.cls


def to_nir(graph: Graph, *, strict: bool = False):
    """Export ``graph`` as a ``nir.NIRGraph``; returns ``(nir_graph, notes)``.

    ``notes`` lists, per node, what other NIR readers will refuse (extension nodes) or read
    differently (subtractive reset, refractory period, initial membrane); the same text is
    issued as an ``InteropWarning``. ``strict=True`` raises ``InteropError`` instead.
    """
    nir = need("nir", "NIR export")
    graph.validate()
    Ext = _ext_class(nir)
    dt = graph.dt
    nodes: dict = {}
    edges: list = []
    outs: dict[str, list[str]] = {}  # tianrt entry -> NIR nodes whose sum is its output
    refused: list[str] = []
    differ: list[str] = []

    def meta(e, **extra):
        d = {"op": e.node.op, "config": jsonable(e.node.config())}
        d.update(extra)
        return {META: json.dumps(d)}

    def fresh(base):
        name, k = base, 1
        while name in nodes or name in graph.entries:
            k += 1
            name = f"{base}.{k}"
        return name

    def link(src, dst, multi_ok=True):
        srcs = outs[src]
        if len(srcs) > 1 and not multi_ok:
            raise InteropError(f"NIR export: `{src}` (snn.Recurrent) feeds `{dst}`, which takes ordered inputs; "
                               "NIR sums the two halves of a recurrent synapse at its consumer: feed the "
                               "Recurrent into a neuron")
        edges.extend((s, dst) for s in srcs)

    for name, e in graph.entries.items():
        n, shape = e.node, e.shape
        if isinstance(n, Input):
            nodes[name] = nir.Input(input_type={"input": np.array(shape)},
                                    metadata=meta(e, domain=e.domain))
        elif isinstance(n, Delay):
            nodes[name] = nir.Delay(delay=full(shape, dt), metadata=meta(e, domain=e.domain))
        elif isinstance(n, snn.Recurrent):
            rec = fresh(f"{name}.rec")
            nodes[name] = nir.Affine(weight=n.weight, bias=n.bias, metadata=meta(e, rec=rec))
            nodes[rec] = nir.Linear(weight=n.weight_rec, metadata={META: json.dumps({"op": "snn.Recurrent.rec",
                                                                                      "of": name})})
            link(e.inputs[0], name, multi_ok=False)
            link(e.inputs[1], rec, multi_ok=False)
            outs[name] = [name, rec]
            continue
        elif isinstance(n, (ann.Dense, snn.Dense)):
            nodes[name] = nir.Affine(weight=n.weight, bias=n.bias, metadata=meta(e))
        elif isinstance(n, (ann.Conv2d, snn.Conv2d)):
            nodes[name] = nir.Conv2d(input_shape=tuple(graph.entries[e.inputs[0]].shape[1:]),
                                     weight=n.weight, stride=tuple(n.stride), padding=tuple(n.padding),
                                     dilation=(1, 1), groups=1, bias=n.bias, metadata=meta(e))
        elif type(n) in (snn.LIF, snn.IF) and _nir_leak(n.beta, n.alpha):
            nodes[name] = _neuron_to_nir(nir, n, shape, dt, meta(e))
            lost = [why for cond, why in (
                (n.reset == "subtract", "reset by subtraction (NIR 1.0 neurons reset to v_reset)"),
                (n.refractory > 0, f"refractory period of {n.refractory} ticks"),
                (n.v_init != 0, f"initial membrane {n.v_init:g}"))
                if cond]
            if lost:
                differ.append(f"`{name}` ({n.op}): {', '.join(lost)}")
        elif type(n) is snn.LI and _nir_leak(n.beta, None):
            if np.all(np.asarray(n.beta) < 1):
                tau = full(shape, dt / (1 - n.beta))
                nodes[name] = nir.LI(tau=tau, r=tau / F32(dt), v_leak=full(shape, 0), metadata=meta(e))
            else:
                nodes[name] = nir.I(r=full(shape, 1 / dt), metadata=meta(e))
            if n.v_init != 0:
                differ.append(f"`{name}` ({n.op}): initial membrane {n.v_init:g}")
        elif type(n) is ann.Flatten:
            nodes[name] = nir.Flatten(input_type={"input": np.array(graph.entries[e.inputs[0]].shape)},
                                      start_dim=0, end_dim=-1, metadata=meta(e))
        elif type(n) is ann.AvgPool2d:
            nodes[name] = nir.AvgPool2d(kernel_size=np.array(n.kernel_size), stride=np.array(n.stride),
                                        padding=np.array(n.padding), metadata=meta(e))
        else:
            cfg = {k: v for k, v in jsonable(n.config()).items()}
            nodes[name] = Ext(op=n.op, config=json.dumps(cfg), arrays=dict(n.arrays()),
                              metadata=meta(e, inputs=list(e.inputs)))
            refused.append(f"`{name}` ({n.op})")
        if isinstance(n, Delay):
            pass  # its source edge is added below, once every node exists
        else:
            for src in e.inputs:
                link(src, name, multi_ok=len(e.inputs) == 1)
        outs[name] = [name]
    for name, e in graph.entries.items():
        if isinstance(e.node, Delay):
            link(e.source, name, multi_ok=False)
    for out, src in graph.outputs.items():
        oname = out if out not in nodes else fresh(f"{out}.out")
        nodes[oname] = nir.Output(output_type={"output": np.array(graph.entries[src].shape)},
                                  metadata={META: json.dumps({"op": "graph.Output", "output": out})})
        link(src, oname)
    gmeta = {META: json.dumps({"name": graph.name, "dt": graph.dt, "metadata": jsonable(graph.metadata)})}
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata=gmeta, type_check=False)
    notes = []
    if refused:
        notes.append(f"graph {graph.name!r} uses tianrt extension nodes that NIR has no type for: "
                     f"{', '.join(refused)}; {PEERS} will refuse the file (only tianrt reads it)")
    if differ:
        notes.append(f"graph {graph.name!r}: other NIR readers will read these neurons differently "
                     f"(tianrt reads them back exactly): {'; '.join(differ)}")
    if notes:
        if strict:
            raise InteropError("NIR export (strict): " + " | ".join(notes))
        for msg in notes:
            warnings.warn(msg, InteropWarning, stacklevel=2)
    return g, notes


def _nir_leak(beta, alpha) -> bool:
    """A NIR neuron exists for these (possibly per-neuron) decays: every beta < 1 (LIF) or
    every beta = 1 (IF); with a current filter (CubaLIF) alpha < 1 and beta < 1."""
    b = np.asarray(beta)
    if alpha is not None:
        return alpha < 1 and bool(np.all(b < 1))
    return bool(np.all(b < 1) or np.all(b == 1))


def _neuron_to_nir(nir, n, shape, dt, md):
    thr = full(shape, below(n.threshold))
    vr = full(shape, n.v_reset if n.reset == "zero" else 0.0)
    if n.alpha is not None:  # beta < 1 and alpha < 1 here
        ts, tm = full(shape, dt / (1 - n.alpha)), full(shape, dt / (1 - n.beta))
        return nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / F32(dt), v_leak=full(shape, 0), v_threshold=thr,
                           v_reset=vr, w_in=ts / F32(dt), metadata=md)
    if np.all(np.asarray(n.beta) < 1):
        tau = full(shape, dt / (1 - n.beta))
        return nir.LIF(tau=tau, r=tau / F32(dt), v_leak=full(shape, 0), v_threshold=thr, v_reset=vr, metadata=md)
    return nir.IF(r=full(shape, 1 / dt), v_threshold=thr, v_reset=vr, metadata=md)


def write_nir(graph: Graph, path, *, strict: bool = False) -> list[str]:
    """Write ``graph`` to a NIR (HDF5) file; returns the notes of ``to_nir``."""
    nir = need("nir", "NIR export")
    need("h5py", "NIR export")
    g, notes = to_nir(graph, strict=strict)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    nir.write(tmp, g)
    tmp.replace(path)
    return notes


__all__ = ["to_nir", "write_nir"]
