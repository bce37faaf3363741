"""Distillation's teacher for the voice SNN (docs/voice.md, round 17): an ensemble graph
(``ensemble.ensemble_graph``) or one network, run in float on each training minibatch as the
student sees it, its members' readout traces the soft targets' logits
(``tr.train.SNN.fit(teacher=)``); and ``recipes --distil``'s flags made into it.

    f = teacher(tr.load("ens3.tnr"), front)      # front: the student's recipes.prepare metadata
    f(xb)                                        # [members' readouts (ticks, batch, classes)]
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import tianrt as tr

from .frontend import front_end_differences, graph_front_end
from .stream import member_outputs


def teacher(graph, front=None, backend="numba"):
    """``f(xb)``: the members' readout traces (ticks, batch, classes) of ``graph`` on a training
    minibatch ``xb`` (batch, ticks, inputs), run by the runtime ``backend`` in float (a fresh
    state per minibatch, as the student's). ``front`` (the student's front-end metadata):
    refused unless the teacher reads its inputs through the same front end — its inputs would
    be others."""
    if front is not None:
        diff = front_end_differences(graph_front_end(graph), front)
        if diff:
            raise ValueError(f"voice.distil: the teacher {graph.name!r} reads its inputs through another front end "
                             f"than the student (differs in {', '.join(diff)}); distil from networks trained on the "
                             "same data file with the same --frontend")
    names = member_outputs(graph)
    rt = tr.Runtime(graph, backend=backend)   # built once; reset clears the state and the batch size

    def f(xb):
        rt.reset()
        out = rt.run({"x": np.asarray(xb, np.float32).transpose(1, 0, 2)})
        return [out[n] for n in names]
    return f


def from_flags(a, front):
    """(teacher for ``model.train_snn``, the record for the saved graph's metadata) of
    ``recipes``' ``--distil`` flags ``a``, or (None, None) without ``--distil``."""
    if not a.distil:
        return None, None
    if not a.distil_t > 0 or not 0.0 <= a.distil_alpha <= 1.0:
        raise ValueError(f"recipes: --distil-t must be > 0 and --distil-alpha in [0, 1], got {a.distil_t} and "
                         f"{a.distil_alpha}")
    g = tr.load(a.distil)
    record = {"teacher": str(a.distil), "teacher_sha256": hashlib.sha256(Path(a.distil).read_bytes()).hexdigest(),
              "members": len(member_outputs(g)), "temperature": float(a.distil_t), "alpha": float(a.distil_alpha),
              "ticks": a.distil_ticks}
    return teacher(g, front, a.distil_backend), record
