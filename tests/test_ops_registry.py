"""One home per operation: every node type finds its implementations by type in the
registry (no ordered isinstance chains), different operations are not subclasses of each
other, and the numba fusion pass is plain Python over the plan."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.graph import Delay, Input
from tianrt.node import NODE_TYPES
from tianrt.ops import find, implements, registered

OPS = {op: cls for op, cls in NODE_TYPES.items() if cls not in (Input, Delay)}


def test_every_node_type_has_a_reference_rule_and_a_numba_op():
    import tianrt.backends.numba  # noqa: F401  (registers the numba ops)
    missing = [op for op, cls in OPS.items() if find("reference", cls, None) is None]
    assert not missing, f"no reference rule: {missing}"
    missing = [op for op, cls in OPS.items() if find("numba", cls, None) is None]
    assert not missing, f"no numba op: {missing}"


def test_every_float_node_with_an_integer_form_has_a_quantisation_rule():
    no_rule = {"ann.Add", "ann.BatchNorm"}  # a join of tensors, folded before quantisation
    missing = [op for op, cls in OPS.items() if not op.startswith("q.") and op not in no_rule
               and find("quantize", cls, None) is None]
    assert not missing, f"no quantisation rule: {missing}"


def test_every_integer_soma_op_has_a_chip_record():
    heads = set(registered("chip_head"))
    stages = set(registered("chip_stage"))
    on_chip = [cls for op, cls in OPS.items() if op.startswith("q.") and op not in ("q.Quantize", "q.Dequantize",
                                                                                   "q.Add")]
    assert [c.op for c in on_chip if c not in heads | stages] == []


def test_different_operations_are_not_subclasses_of_each_other():
    variants = {("snn.IF", "snn.LIF")}  # IF is the LIF with beta fixed at 1: one operation
    bad = [(a.op, b.op) for a in OPS.values() for b in OPS.values()
           if a is not b and issubclass(a, b) and (a.op, b.op) not in variants]
    assert not bad, bad


def test_one_home_per_kind_and_type():
    class Thing(tr.snn.LIF):
        op = "test.Thing"

    assert find("reference", Thing) is find("reference", tr.snn.LIF)  # found through its base
    implements("test_kind", Thing)(lambda: 1)
    with pytest.raises(TypeError, match="registered twice"):
        implements("test_kind", Thing)(lambda: 2)
    with pytest.raises(LookupError, match="no 'nope' implementation for test.Thing"):
        find("nope", Thing())


def test_fusion_pass_runs_without_numba():
    from tianrt.backends.numba.fusion import fuse
    g = tr.Graph()
    h = g.input("x", (8,), domain="spike")
    for i in range(3):
        h = g.add(tr.snn.Dense(8, 8, seed=i), h, name=f"syn{i}")
        h = g.add(tr.snn.LIF(beta=0.9 if i != 1 else np.full(8, 0.9)), h, name=f"lif{i}")
    g.output("y", h)
    c = g.add(tr.ann.Conv2d(1, 2, 3), g.input("img", (1, 5, 5)), name="conv")
    g.output("p", g.add(tr.ann.MaxPool2d(2), g.add(tr.ann.ReLU(), c, name="relu"), name="pool"))
    f = fuse(g.build())
    # the per-neuron beta of lif1 keeps it out of a chain: syn0-lif0, then syn2-lif2
    assert {k: [(a.name, b.name) for a, b in v] for k, v in f.chains.items()} == {
        "syn0": [("syn0", "lif0")], "syn2": [("syn2", "lif2")]}
    assert f.epilogue == {"conv": "relu"} and f.pools == {"conv": "pool"}
    assert fuse(g.build(), enabled=False).chains == {}
