"""reset() keeps the numba backend's bound program and restores its arrays in place
(issue 14): after any history, a reset runtime must behave exactly like a fresh one --
the same backend, so bit for bit -- on random graphs of every node kind (float SNN stacks
on the one-call streaming path, the hybrid graph with every float node type, integer
graphs), across repeated resets, checkpoints and batch changes; and the program must not
be bound again when the batch form stays the same."""
import numpy as np
from hypothesis import given, settings, strategies as st

from tianrt.errors import InputError

import tianrt as tr
from int_graphs import int_graph_cases
from test_numba_backend import dyadic, hybrid_graph, hybrid_inputs, snn_stack

SETTINGS = settings(derandomize=True, deadline=None, max_examples=10)


def steps(rt, xs: dict, batched: bool):
    """Runtime.step tick by tick (the fast paths); outputs as {name: [arrays]} with ticks."""
    n = next(iter(xs.values())).shape[0]
    out = []
    for i in range(n):
        o = rt.step({k: np.ascontiguousarray(v[i]) for k, v in xs.items()})
        out.append({k: np.array(v) for k, v in o.items()})
    return out


def same(a, b):
    assert len(a) == len(b)
    for oa, ob in zip(a, b):
        assert set(oa) == set(ob)
        for k in oa:
            assert oa[k].dtype == ob[k].dtype and np.array_equal(oa[k], ob[k]), k


def same_state(a, b):
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def check_resets(g, make_inputs, **opts):
    """Fresh vs reset runtimes over histories: same outputs and checkpoints, same program."""
    xs1, xs1b, xsB = make_inputs(1), make_inputs(1), make_inputs(3)
    fresh = steps(tr.Runtime(g, "numba", **opts), xs1, False)
    fresh_b = steps(tr.Runtime(g, "numba", **opts), xs1b, False)
    fresh_B = tr.Runtime(g, "numba", **opts).run(xsB)
    st0 = tr.Runtime(g, "numba", **opts).state()
    rt = tr.Runtime(g, "numba", **opts)
    be = rt._impl
    same(steps(rt, xs1, False), fresh)
    prog = be.prog
    rt.reset()
    same_state(rt.state(), st0)
    assert be.prog is prog  # restored in place, not bound again
    same(steps(rt, xs1b, False), fresh_b)
    mid = None
    for _ in range(2):  # reset mid-stream, twice
        rt.reset()
        part = steps(rt, {k: v[:3] for k, v in xs1.items()}, False)
        mid = rt.state()
        rt.reset()
        same(steps(rt, xs1, False), fresh)
        assert be.prog is prog
    # a checkpoint taken mid-stream, loaded after a reset, continues as the fresh runtime did
    rt.reset()
    rt.load_state(mid)
    same(steps(rt, {k: v[3:] for k, v in xs1.items()}, False), fresh[3:])
    assert part is not None
    # a batch change after reset binds a new program; back to batch 1 matches again
    rt.reset()
    got = rt.run(xsB)
    for k in fresh_B:
        assert np.array_equal(got[k], fresh_B[k]) and np.array_equal(got.ticks[k], fresh_B.ticks[k]), k
    rt.reset()
    same(steps(rt, xs1, False), fresh)


@SETTINGS
@given(seed=st.integers(0, 10_000), n_layers=st.integers(1, 3), alpha=st.sampled_from([None, 0.75]),
       refractory=st.integers(0, 2), reset=st.sampled_from(["subtract", "zero"]))
def test_reset_in_place_snn_stack(seed, n_layers, alpha, refractory, reset):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(3, 40, size=n_layers + 1)]
    g = snn_stack(rng, sizes, 0.9, 1.0, reset, alpha, refractory, gain=2.0)

    def make(b):
        shape = (8,) + ((b,) if b > 1 else ()) + (sizes[0],)
        return {"x": (rng.random(shape) < 0.4).astype(np.float32)}
    check_resets(g, make)


def test_reset_in_place_hybrid_every_node_type():
    rng = np.random.default_rng(3)
    g = hybrid_graph(rng)

    def make(b):
        return hybrid_inputs(rng, ticks=8, batch=b if b > 1 else None)
    for conv_mode in ("direct", "im2col"):
        check_resets(g, make, conv_mode=conv_mode)


def test_reset_in_place_with_delays_and_probes():
    rng = np.random.default_rng(5)
    g = tr.Graph(name="probe")
    x = g.input("x", shape=(6,), domain="spike")
    d = g.delay((5,), "spike", name="rec")
    i = g.add(tr.snn.Recurrent(6, 5, weight=dyadic(rng, (5, 6)) * 2, weight_rec=dyadic(rng, (5, 5))), x, d)
    s = g.add(tr.snn.ALIF(beta=0.9, threshold=0.5, adapt=0.2, rho=0.9), i, name="alif")
    g.connect(d, s)
    g.output("s", s)
    g.output("v", g.probe(s, "v"))

    def make(b):
        shape = (9,) + ((b,) if b > 1 else ()) + (6,)
        return {"x": (rng.random(shape) < 0.5).astype(np.float32)}
    check_resets(g, make)


@settings(derandomize=True, deadline=None, max_examples=15)
@given(int_graph_cases())
def test_reset_in_place_integer_graphs(case):
    g, inputs = case
    x = inputs["x"]

    def make(b):
        return {"x": x[:, 0]} if b == 1 else {"x": np.repeat(x[:, :1], b, axis=1)}
    if x.shape[0] >= 4:
        check_resets(g, make)


def test_first_step_after_reset_takes_the_fast_path():
    g = snn_stack(np.random.default_rng(0), [20, 16, 8], 0.9, 1.0, "subtract", None, 0, gain=2.0)
    rt = tr.Runtime(g, "numba")
    x = (np.random.default_rng(1).random(20) < 0.3).astype(np.float32)
    rt.step({"x": x})
    be = rt._impl
    called = []
    orig = be._check_input
    be._check_input = lambda *a: called.append(a) or orig(*a)
    rt.reset()
    rt.step({"x": x})
    assert not called and rt.tick == 1 and be.batch == 1
    rt.reset()  # a wrong input after reset raises the base class's error, and a batch change works
    try:
        rt.step({"x": np.full(20, 0.5, np.float32)})
    except InputError:
        pass
    else:
        raise AssertionError("non-spike input accepted")
    be._check_input = orig
    rt.reset()
    assert rt.step({"x": np.stack([x, x])})["s1"].shape == (2, 8)
