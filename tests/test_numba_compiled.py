"""The compiled tick (``compiled=True``, tickgen.py) against the per-op path, its oracle:
the generated functions make the same kernel calls in the same order, so outputs and
checkpoints must be equal bit for bit -- float and integer graphs alike -- on random graphs
of every node kind, across resets, checkpoints and batch changes."""
import numpy as np
from hypothesis import given, settings, strategies as st

from tianrt.errors import InputError

import tianrt as tr
from int_graphs import int_graph_cases
from test_numba_backend import dyadic, hybrid_graph, hybrid_inputs, snn_stack
from test_numba_reset import same, same_state, steps


def both(g, **opts):
    return tr.Runtime(g, "numba", **opts), tr.Runtime(g, "numba", compiled=True, **opts)


def check_same(g, make_inputs, expect_lowered=True, **opts):
    per_op, comp = both(g, **opts)
    xs1, xsB = make_inputs(1), make_inputs(3)
    same(steps(comp, xs1, False), steps(per_op, xs1, False))
    if expect_lowered:
        assert comp._impl.tick_sources, "nothing was lowered"
        assert not per_op._impl.tick_sources
    same_state(comp.state(), per_op.state())
    for rt in (per_op, comp):  # reset, a few ticks, a checkpoint, reset, load it, go on
        rt.reset()
        steps(rt, {k: v[:3] for k, v in xs1.items()}, False)
    ck = per_op.state()
    same_state(comp.state(), ck)
    for rt in (per_op, comp):
        rt.reset()
        rt.load_state(ck)
    same(steps(comp, {k: v[3:] for k, v in xs1.items()}, False), steps(per_op, {k: v[3:] for k, v in xs1.items()},
                                                                      False))
    for rt in (per_op, comp):  # a batch change binds (and lowers) a new program
        rt.reset()
    a, b = per_op.run(xsB), comp.run(xsB)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) and np.array_equal(a.ticks[k], b.ticks[k]), k
    same_state(comp.state(), per_op.state())


@settings(derandomize=True, deadline=None, max_examples=8)
@given(seed=st.integers(0, 10_000), n_layers=st.integers(1, 3), alpha=st.sampled_from([None, 0.75]),
       refractory=st.sampled_from([0, 2]), reset=st.sampled_from(["subtract", "zero"]),
       mode=st.sampled_from(["event", "auto"]))
def test_compiled_snn_stack_unfused(seed, n_layers, alpha, refractory, reset, mode):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(3, 40, size=n_layers + 1)]
    g = snn_stack(rng, sizes, 0.9, 1.0, reset, alpha, refractory, gain=2.0)

    def make(b):
        shape = (8,) + ((b,) if b > 1 else ()) + (sizes[0],)
        return {"x": (rng.random(shape) < 0.4).astype(np.float32)}
    check_same(g, make, fuse=False, synapse_mode=mode)


def test_compiled_hybrid_every_node_type():
    rng = np.random.default_rng(4)
    g = hybrid_graph(rng)

    def make(b):
        return hybrid_inputs(rng, ticks=8, batch=b if b > 1 else None)
    check_same(g, make, conv_mode="direct")


def test_compiled_alif_recurrent_delay_probe():
    rng = np.random.default_rng(6)
    g = tr.Graph(name="alif")
    x = g.input("x", shape=(6,), domain="spike")
    d = g.delay((5,), "spike", name="rec")
    i = g.add(tr.snn.Dense(6, 5, weight=dyadic(rng, (5, 6)) * 2), x)
    r = g.add(tr.snn.Dense(5, 5, weight=dyadic(rng, (5, 5))), d)
    s = g.add(tr.snn.ALIF(beta=0.9, threshold=0.5, adapt=0.2, rho=0.9), g.add(tr.ann.Add(), i, r), name="alif")
    g.connect(d, s)
    li = g.add(tr.snn.LI(beta=0.5), g.add(tr.snn.Dense(5, 3, weight=dyadic(rng, (3, 5))), s))
    g.output("s", s)
    g.output("li", li)
    g.output("v", g.probe(s, "v"))

    def make(b):
        shape = (9,) + ((b,) if b > 1 else ()) + (6,)
        return {"x": (rng.random(shape) < 0.5).astype(np.float32)}
    check_same(g, make, synapse_mode="event")


@settings(derandomize=True, deadline=None, max_examples=12)
@given(int_graph_cases())
def test_compiled_integer_graphs_bit_for_bit(case):
    g, inputs = case
    x = inputs["x"]
    if x.shape[0] < 4:
        return

    def make(b):
        return {"x": x[:, 0]} if b == 1 else {"x": np.repeat(x[:, :1], b, axis=1)}
    check_same(g, make, expect_lowered=False)


def test_generated_source_is_readable_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TIANRT_TICK_CACHE", str(tmp_path))
    rng = np.random.default_rng(2)
    g = snn_stack(rng, [10, 8, 4], 0.8125, 1.0, "subtract", None, 0, gain=2.0)
    rt = tr.Runtime(g, "numba", compiled=True, fuse=False, synapse_mode="event")
    rt.step({"x": np.ones(10, np.float32)})
    (src,) = rt._impl.tick_sources
    assert "@njit(cache=True)" in src and "# 'lif0'" in src and "accumulate(" in src
    files = list(tmp_path.glob("tianrt_tick_*.py"))
    assert len(files) == 1 and files[0].read_text() == src


def test_whole_graph_lowered_takes_the_one_call_step_with_the_same_checks():
    rng = np.random.default_rng(8)
    g = snn_stack(rng, [12, 9, 5], 0.9, 1.0, "subtract", 0.75, 1, gain=2.0)
    rt = tr.Runtime(g, "numba", compiled=True, fuse=False, synapse_mode="event")
    x = (rng.random(12) < 0.5).astype(np.float32)
    rt.step({"x": x})
    be = rt._impl
    assert len(be.prog) == 1 and be.direct is not None
    st = rt.state()
    bad = x.copy()
    bad[3] = 0.5
    try:
        rt.step({"x": bad})
    except InputError as exc:
        assert "spike input" in str(exc)
    else:
        raise AssertionError("non-spike value accepted")
    same_state(rt.state(), st)  # nothing ran
    ref = tr.Runtime(g, "reference")
    ref.step({"x": x})
    a, b = ref.step({"x": x}), rt.step({"x": x})
    for k in a:
        assert np.array_equal(a[k], b[k]), k
