"""The numba backend against the reference (the oracle), through the public API.

Tolerance (docs/numba-backend.md): with weights on a dyadic grid (multiples of 2^-6) every
synaptic and convolution sum is exact in float32 whatever the summation order, so spikes,
counts and membranes must be *identical*; the remaining differences come from summation
order on arbitrary float weights and from float64 vs float32 means, bounded here by
rtol = atol = 1e-5.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr
from tianrt.errors import BackendError, InputError

SETTINGS = settings(derandomize=True, deadline=None, max_examples=12)


def dyadic(rng, shape, lo=-1.0, hi=1.0):
    return (np.round(rng.uniform(lo, hi, size=shape) * 64) / 64).astype(np.float32)


def snn_stack(rng, sizes, beta, thr, reset, alpha, refractory, gain):
    g = tr.Graph(name="stack")
    h = g.input("x", shape=(sizes[0],), domain="spike")
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        h = g.add(tr.snn.Dense(a, b, weight=dyadic(rng, (b, a)) * gain, bias=dyadic(rng, (b,), -0.1, 0.2)), h,
                  name=f"syn{i}")
        h = g.add(tr.snn.LIF(beta=beta, threshold=thr, reset=reset, alpha=alpha, refractory=refractory), h,
                  name=f"lif{i}")
        g.output(f"s{i}", h)
        g.output(f"i{i}", f"syn{i}")
    return g


def assert_same(ref, out, exact=True):
    assert set(ref) == set(out)
    for k in ref:
        assert np.array_equal(ref.ticks[k], out.ticks[k]), k
        if exact:
            assert np.array_equal(ref[k], out[k]), k
        else:
            np.testing.assert_allclose(out[k], ref[k], rtol=1e-5, atol=1e-5, err_msg=k)


@SETTINGS
@given(seed=st.integers(0, 10_000), n_layers=st.integers(1, 3), beta=st.sampled_from([0.5, 0.9, 1.0]),
       reset=st.sampled_from(["subtract", "zero"]), alpha=st.sampled_from([None, 0.75]),
       refractory=st.integers(0, 2), batch=st.sampled_from([None, 3]), density=st.floats(0.02, 0.9),
       mode=st.sampled_from(["auto", "event", "dense"]))
def test_snn_stack_matches_reference_exactly(seed, n_layers, beta, reset, alpha, refractory, batch, density, mode):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(3, 40, size=n_layers + 1)]
    g = snn_stack(rng, sizes, beta, 1.0, reset, alpha, refractory, gain=2.0)
    shape = (12,) + ((batch,) if batch else ()) + (sizes[0],)
    x = (rng.random(shape) < density).astype(np.float32)
    ref = tr.Runtime(g, "reference").run({"x": x})
    out = tr.Runtime(g, "numba", synapse_mode=mode, crossover=float(rng.random())).run({"x": x})
    assert_same(ref, out)
    if n_layers == 3:  # the fused chain must really have fired somewhere
        assert ref["s0"].any()


def hybrid_graph(rng):
    """Every float node type: ANN front end, bridges, SNN with recurrence, decoders."""
    g = tr.Graph(name="hybrid")
    img = g.input("img", shape=(2, 8, 8))
    h = g.add(tr.ann.Conv2d(2, 4, 3, padding=1, weight=dyadic(rng, (4, 2, 3, 3)), bias=dyadic(rng, (4,))), img)
    h = g.add(tr.ann.BatchNorm(4, weight=dyadic(rng, (4,), 0.5, 1.5), bias=dyadic(rng, (4,))), h)
    h = g.add(tr.ann.ReLU(), h)
    m = g.add(tr.ann.MaxPool2d(2), h)
    a = g.add(tr.ann.AvgPool2d(2, stride=2, padding=1), h)
    c = g.add(tr.ann.Conv2d(4, 4, 2, stride=2, weight=dyadic(rng, (4, 4, 2, 2))), h)
    a = g.add(tr.ann.Conv2d(4, 4, 2, stride=1, weight=dyadic(rng, (4, 4, 2, 2))), a)
    s = g.add(tr.ann.Add(), m, c, a)
    gap = g.add(tr.ann.GlobalAvgPool2d(), s)
    f = g.add(tr.ann.Flatten(), s)
    f = g.add(tr.ann.Concat(), f, gap)
    f = g.add(tr.ann.ClippedReLU(max_value=1.0), f)
    n = 4 * 16 + 4
    sig = g.add(tr.ann.Sigmoid(), gap)
    g.output("tanh", g.add(tr.ann.Tanh(), g.add(tr.ann.Dense(4, 3, weight=dyadic(rng, (3, 4))), sig)))
    r = g.add(tr.bridge.RateEncoder(), f)
    p = g.add(tr.bridge.PoissonEncoder(seed=3), f)
    lt = g.add(tr.bridge.LatencyEncoder(window=5), f)
    dc = g.add(tr.bridge.DirectCurrent(gain=0.5), f)
    spikes = g.add(tr.ann.Concat(), r, p, lt)
    d = g.delay((16,), "spike", name="rec")
    i1 = g.add(tr.snn.Recurrent(3 * n, 16, weight=dyadic(rng, (16, 3 * n)), weight_rec=dyadic(rng, (16, 16))),
               spikes, d)
    s1 = g.add(tr.snn.LIF(beta=0.875, refractory=1), i1)
    g.connect(d, s1)
    i2 = g.add(tr.snn.Dense(n, 16, weight=dyadic(rng, (16, n))), dc)
    cur = g.add(tr.ann.Add(), i2, g.add(tr.snn.Dense(16, 16, weight=dyadic(rng, (16, 16))), s1))
    s2 = g.add(tr.snn.LIF(beta=0.9, alpha=0.5, reset="zero"), cur)
    li = g.add(tr.snn.LI(beta=0.75), cur)
    sc = g.input("sc", shape=(1, 4, 4), domain="spike")
    conv_i = g.add(tr.snn.Conv2d(1, 2, 3, padding=1, weight=dyadic(rng, (2, 1, 3, 3)) * 2), sc)
    s3 = g.add(tr.snn.IF(threshold=0.5), conv_i)
    g.output("count", g.add(tr.bridge.SpikeCount(window=4), s2))
    g.output("rate", g.add(tr.bridge.SpikeCount(window=3, mode="sliding", rate=True), s1))
    g.output("mem", g.add(tr.bridge.MembraneReadout(window=3, beta=0.5, mean=True), li))
    g.output("first", g.add(tr.bridge.FirstSpike(window=5), g.add(tr.ann.Flatten(), s3)))
    g.output("li", li)
    g.output("spikes", s2)
    return g


def hybrid_inputs(rng, ticks=14, batch=None):
    b = (batch,) if batch else ()
    img = rng.random((ticks,) + b + (2, 8, 8)).astype(np.float32)
    sc = (rng.random((ticks,) + b + (1, 4, 4)) < 0.3).astype(np.float32)
    return {"img": img, "sc": sc}


@pytest.mark.parametrize("batch", [None, 2])
def test_hybrid_graph_every_node_type(batch):
    rng = np.random.default_rng(1)
    g = hybrid_graph(rng)
    xs = hybrid_inputs(rng, batch=batch)
    ref = tr.Runtime(g, "reference").run(xs)
    for conv_mode in ("direct", "im2col"):
        out = tr.Runtime(g, "numba", conv_mode=conv_mode).run(xs)
        assert_same(ref, out, exact=False)
        for k in ("count", "rate", "first", "spikes"):  # spike-derived: exact
            assert np.array_equal(ref[k], out[k]), k
        assert ref["spikes"].any() and ref["first"].min() < 5


def test_tensor_input_only_on_some_ticks():
    """ANN nodes run only on a new value; held values keep feeding encoders."""
    rng = np.random.default_rng(2)
    g = hybrid_graph(rng)
    xs = hybrid_inputs(rng, ticks=6)
    a, b = tr.Runtime(g, "reference"), tr.Runtime(g, "numba")
    for t in range(6):
        feed = {"sc": xs["sc"][t]}
        if t % 3 == 0:
            feed["img"] = xs["img"][t]
        ra, rb = a.step(feed), b.step(feed)
        assert set(ra) == set(rb)
        for k in ra:
            np.testing.assert_allclose(rb[k], ra[k], rtol=1e-5, atol=1e-5)


def test_float_weights_within_tolerance():
    """Arbitrary float weights: sums differ only by order; currents agree to 1e-5."""
    rng = np.random.default_rng(3)
    g = tr.Graph()
    x = g.input("x", shape=(200,), domain="spike")
    i = g.add(tr.snn.Dense(200, 50, seed=4), x)
    g.output("i", i)
    g.output("v", g.add(tr.snn.LI(beta=0.9), i))
    xs = (rng.random((20, 200)) < 0.2).astype(np.float32)
    assert_same(tr.Runtime(g, "reference").run({"x": xs}), tr.Runtime(g, "numba").run({"x": xs}),
                exact=False)


def w1_like():
    rng = np.random.default_rng(5)
    return snn_stack(rng, [30, 20, 10], 0.9, 1.0, "subtract", None, 0, gain=2.0)


def test_step_returns_copies_not_internal_buffers():
    rt = tr.Runtime(w1_like(), "numba")
    x = np.ones(30, np.float32)
    out = rt.step({"x": x})
    bufs = rt._impl.bufs
    for k, v in out.items():
        assert not any(np.shares_memory(v, b) for b in bufs.values()), k
    keep = {k: v.copy() for k, v in out.items()}
    for v in out.values():
        v[...] = 123.0
    rt2 = tr.Runtime(w1_like(), "numba")
    again = rt2.step({"x": x})
    for k in keep:
        assert np.array_equal(again[k], keep[k])
    nxt_a, nxt_b = rt.step({"x": x}), rt2.step({"x": x})
    for k in nxt_a:
        assert np.array_equal(nxt_a[k], nxt_b[k])


@pytest.mark.parametrize("graph", ["stack", "hybrid"])
def test_state_round_trip_and_reference_checkpoint(graph):
    rng = np.random.default_rng(6)
    g = w1_like() if graph == "stack" else hybrid_graph(rng)
    if graph == "stack":
        xs = {"x": (rng.random((16, 30)) < 0.4).astype(np.float32)}
    else:
        xs = hybrid_inputs(rng, ticks=16)
    first = {k: v[:8] for k, v in xs.items()}
    rest = {k: v[8:] for k, v in xs.items()}
    a = tr.Runtime(g, "numba")
    a.run(first)
    ck = a.state()
    tail = a.run(rest)
    b = tr.Runtime(g, "numba")
    b.load_state(ck)
    assert b.tick == 8
    assert_same(tail, b.run(rest))
    # checkpoints share keys with the reference backend: continue a reference stream here
    ref = tr.Runtime(g, "reference")
    ref.run(first)
    c = tr.Runtime(g, "numba")
    c.load_state(ref.state())
    assert_same(ref.run(rest), c.run(rest), exact=False)
    # and the other way: a numba checkpoint continues on the reference backend
    d = tr.Runtime(g, "reference")
    d.load_state(ck)
    assert_same(tail, d.run(rest), exact=False)


def test_input_errors_on_the_fast_path():
    rt = tr.Runtime(w1_like(), "numba")
    rt.step({"x": np.zeros(30, np.float32)})  # state exists: later steps take the fast path
    bad = np.zeros(30, np.float32)
    bad[4] = np.nan
    with pytest.raises(InputError, match="NaN or inf at index \\(4,\\)"):
        rt.step({"x": bad})
    with pytest.raises(InputError, match="0 or 1"):
        rt.step({"x": np.full(30, 0.5, np.float32)})
    with pytest.raises(InputError, match="has no input 'y'"):
        rt.step({"y": np.zeros(30, np.float32)})
    with pytest.raises(InputError, match="shape"):
        rt.step({"x": np.zeros(31, np.float32)})
    with pytest.raises(InputError, match="batch size 2"):
        rt.step({"x": np.zeros((2, 30), np.float32)})
    # a rejected input leaves the stream untouched: same as a runtime that never saw it
    twin = tr.Runtime(w1_like(), "numba")
    twin.step({"x": np.zeros(30, np.float32)})
    x = np.ones(30, np.float32)
    a, b = rt.step({"x": x}), twin.step({"x": x})
    for k in a:
        assert np.array_equal(a[k], b[k])
    # lists and float64 arrays take the checked slow path and give the same result
    c = rt.step({"x": [1.0] * 30})
    d = twin.step({"x": np.ones(30)})
    for k in c:
        assert np.array_equal(c[k], d[k])


def test_options_are_checked():
    g = w1_like()
    with pytest.raises(BackendError, match="synapse_mode"):
        tr.Runtime(g, "numba", synapse_mode="fast")
    with pytest.raises(BackendError, match="unknown node"):
        tr.Runtime(g, "numba", synapse_mode={"nope": "event"})
    with pytest.raises(BackendError, match="crossover"):
        tr.Runtime(g, "numba", crossover=2.0)
    with pytest.raises(BackendError, match="conv_mode"):
        tr.Runtime(g, "numba", conv_mode="fft")


def test_per_layer_mode_override_and_unfused_path_agree():
    rng = np.random.default_rng(7)
    g = w1_like()
    x = {"x": (rng.random((10, 30)) < 0.6).astype(np.float32)}
    base = tr.Runtime(g, "numba").run(x)
    per_layer = tr.Runtime(g, "numba", synapse_mode={"syn0": "dense", "syn1": "event"}).run(x)
    unfused = tr.Runtime(g, "numba", fuse=False).run(x)
    assert_same(base, per_layer)
    assert_same(base, unfused)


def test_sparse_weights_take_the_csr_path_with_the_same_result():
    rng = np.random.default_rng(8)
    w = dyadic(rng, (40, 60)) * (rng.random((40, 60)) < 0.05)
    g = tr.Graph()
    x = g.input("x", shape=(60,), domain="spike")
    i = g.add(tr.snn.Dense(60, 40, weight=w), x)
    g.output("v", g.add(tr.snn.LI(beta=0.5), i))  # not a LIF: not fused, so CSR applies
    xs = {"x": (rng.random((10, 60)) < 0.3).astype(np.float32)}
    rt = tr.Runtime(g, "numba")
    assert_same(tr.Runtime(g, "reference").run(xs), rt.run(xs))
    assert rt._impl.events == int(sum((w[:, xs["x"][t] > 0] != 0).sum() for t in range(10)))


def test_run_fast_path_falls_back_for_errors_and_odd_inputs():
    g = w1_like()
    rng = np.random.default_rng(9)
    x = (rng.random((6, 30)) < 0.5).astype(np.float32)
    bad = x.copy()
    bad[3, 7] = 0.5
    for backend in ("reference", "numba"):
        rt = tr.Runtime(g, backend)
        with pytest.raises(InputError, match="0 or 1, got 0.5 at tick 3, index \\(7,\\)"):
            rt.run({"x": bad})
        assert rt.tick == 0  # refused before any tick ran
    with pytest.raises(InputError, match="different numbers of ticks"):
        tr.Runtime(hybrid_graph(rng), "numba").run({"img": np.zeros((3, 2, 8, 8), np.float32),
                                                    "sc": np.zeros((4, 1, 4, 4), np.float32)})
    ref = tr.Runtime(g, "reference").run({"x": x.astype(np.float64)})  # float64: the checked path
    assert_same(ref, tr.Runtime(g, "numba").run({"x": x.astype(np.float64)}))
    assert_same(ref, tr.Runtime(g, "numba").run({"x": x}))
    held = tr.Runtime(g, "numba").run({"x": x[0]}, ticks=4)
    assert_same(tr.Runtime(g, "reference").run({"x": x[0]}, ticks=4), held)


def test_run_with_held_values_matches_reference():
    rng = np.random.default_rng(10)
    g = hybrid_graph(rng)
    xs = {k: v[0] for k, v in hybrid_inputs(rng, ticks=1).items()}
    ref = tr.Runtime(g, "reference").run(xs, ticks=9)
    got = tr.Runtime(g, "numba").run(xs, ticks=9)
    assert_same(ref, got, exact=False)
    assert got.ticks["count"].tolist() == [3, 7]
    with pytest.raises(InputError, match="ticks must be >= 1"):
        tr.Runtime(g, "numba").run(xs, ticks=0)


def converted_mlp_like(rng, sizes=(24, 48, 32, 6)):
    """The shape of a converted MLP (the digits demo's): analog input current, IF layers, a
    membrane readout of the last synapse."""
    g = tr.Graph(name="converted")
    h = g.add(tr.bridge.DirectCurrent(gain=0.5), g.input("x", shape=(sizes[0],)))
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        h = g.add(tr.snn.Dense(a, b, weight=dyadic(rng, (b, a)) * 0.5, bias=dyadic(rng, (b,), 0.15, 0.4)), h,
                  name=f"dense{i}")
        if i < len(sizes) - 2:
            h = g.add(tr.snn.IF(threshold=1.0), h, name=f"if{i}")
            g.output(f"s{i}", h)
    g.output("y", g.add(tr.bridge.MembraneReadout(window=8), h))
    return g


def test_large_batch_takes_blas_and_matches_reference_exactly():
    rng = np.random.default_rng(11)
    g = converted_mlp_like(rng)
    x = {"x": rng.random((300, 24)).astype(np.float32)}
    ref = tr.Runtime(g, "reference").run(x, ticks=8)
    assert 0.15 < ref["s0"].mean() < 0.6 and 0.15 < ref["s1"].mean() < 0.6  # activity between the crossovers
    rt = tr.Runtime(g, "numba")
    got = rt.run(x, ticks=8)
    assert_same(ref, got)
    be = rt._impl
    assert be.crossover_for(300, 48) < be.crossover_for(32, 48) <= be.crossover_batch
    assert be.crossover_for(32, 8) < be.crossover_for(32, 1024)  # short fan-out: less room for events
    forced = tr.Runtime(g, "numba", crossover=0.99)  # explicit: used as given, so the event loops run
    assert_same(ref, forced.run(x, ticks=8))
    # BLAS everywhere except the first ticks, while the hidden layers are still nearly silent
    assert 0 < be.events < 0.1 * forced._impl.events
    small = tr.Runtime(g, "numba")
    assert_same(tr.Runtime(g, "reference").run({"x": x["x"][:4]}, ticks=8), small.run({"x": x["x"][:4]}, ticks=8))
    assert small._impl.events > 0  # small batch, same activity: the event loops


def test_conv_layers_pick_a_measured_algorithm_and_agree():
    rng = np.random.default_rng(12)
    g = tr.Graph(name="cnn")
    x = g.input("img", shape=(3, 10, 12))
    h = g.chain(x, tr.ann.Conv2d(3, 5, 3, padding=1, weight=dyadic(rng, (5, 3, 3, 3)), bias=dyadic(rng, (5,))),
                tr.ann.ReLU(), tr.ann.MaxPool2d(2),
                tr.ann.Conv2d(5, 4, 3, weight=dyadic(rng, (4, 5, 3, 3)), bias=dyadic(rng, (4,))),  # no padding
                tr.ann.Conv2d(4, 2, 2, weight=dyadic(rng, (2, 4, 2, 2))), tr.ann.ReLU(), tr.ann.Flatten())
    g.output("y", h)
    img = dyadic(rng, (3, 2, 3, 10, 12))
    ref = tr.Runtime(g, "reference").run({"img": img})
    chosen = {}
    for mode in ("auto", "direct", "im2col"):
        rt = tr.Runtime(g, "numba", conv_mode=mode)
        assert_same(ref, rt.run({"img": img}), exact=False)  # three layers deep: sums no longer exact
        chosen[mode] = rt._impl.conv_chosen
    names = set(chosen["auto"])
    assert len(names) == 3 and set(chosen["auto"].values()) <= {"direct", "im2col"}
    assert set(chosen["direct"].values()) == {"direct"} and set(chosen["im2col"].values()) == {"im2col"}
    # after the timing runs at bind, checkpoints hold the reference's values, not leftovers
    rt, rf = tr.Runtime(g, "numba"), tr.Runtime(g, "reference")
    rt.run({"img": img[:1]}), rf.run({"img": img[:1]})
    a, b = rt.state(), rf.state()
    for n in names:
        np.testing.assert_allclose(a[f"{n}/__value__"], b[f"{n}/__value__"], rtol=1e-5, atol=1e-5, err_msg=n)
