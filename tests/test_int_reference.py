"""Integer mode through the Runtime: the reference backend (and the numba backend, which runs
on tianrt.kernels.intmath) equal the pure-Python oracle bit for bit on random integer
graphs; int32 edges, exact rate-encoder spike counts, saturation, checkpoints."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings

import int_oracle as O
import tianrt as tr
from int_graphs import FAMILIES, int_graph_cases

Q = tr.q


def assert_matches_oracle(g, inputs, backend="reference"):
    """Run g on ``backend`` (batched, time axis first) and per sample on the oracle;
    every output must agree in the ticks it fired at and in every value."""
    x = inputs["x"]
    T, B = x.shape[:2]
    got = tr.Runtime(g, backend=backend).run(inputs)
    plan = g.build()
    for b in range(B):
        want = O.OracleRuntime(g).run([{"x": x[t, b]} for t in range(T)])
        for name, events in want.items():
            assert got.ticks[name].tolist() == [t for t, _ in events], name
            for i, (t, v) in enumerate(events):
                gv = got[name][i, b]
                if plan.entry(plan.outputs[name]).numeric == "int":
                    assert gv.dtype == np.int32, f"{name}: integer edge held as {gv.dtype}"
                assert np.array_equal(gv, np.array(v, dtype=gv.dtype)), (name, t, b, gv, v)
                assert np.array_equal(gv.astype(np.float64), np.array(v, dtype=np.float64)), (name, t)


@pytest.mark.parametrize("backend", ["reference", "numba"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_integer_mode_equals_oracle_on_random_graphs(family, backend):
    # the numba backend's integer mode runs on tianrt.kernels.intmath: held to the same oracle
    @settings(derandomize=True, deadline=None, max_examples=30)
    @given(int_graph_cases(families=(family,)))
    def check(case):
        g, inputs = case
        assert_matches_oracle(g, inputs, backend)

    check()


def test_saturation_in_a_graph_never_wraps():
    g = tr.Graph()
    s = g.input("s", (3,), domain="spike")
    w = np.full((2, 3), 127)
    i = g.add(Q.SynDense(3, 2, weight=w * np.array([[1], [-1]]), bias=[2 ** 31 - 200, -(2 ** 31) + 200]), s)
    g.output("i", i)
    g.output("v", g.add(Q.LI(leak_mult=1, leak_shift=0), i))
    out = tr.Runtime(g).run({"s": np.ones((3, 3), np.float32)})
    assert out["i"].tolist() == [[2 ** 31 - 1, -(2 ** 31)]] * 3
    # the integrator saturates from the second tick on instead of wrapping to the other sign
    assert out["v"].tolist() == [[2 ** 31 - 1, -(2 ** 31)]] * 3


def test_rate_encoder_emits_exactly_round_half_up_of_T_x_over_D():
    qs = np.arange(-3, 131)
    for D in (1, 2, 3, 64, 100, 127):
        for T in (1, 2, 7, 16, 127, 300):
            g = tr.Graph()
            x = g.input("x", (qs.size,))
            s = g.add(Q.RateEncoder(full_scale=D), g.add(Q.Quantize(1.0), x))
            g.output("n", g.add(tr.bridge.SpikeCount(window=T), s))
            out = tr.Runtime(g).run({"x": qs.astype(np.float32)}, ticks=T)
            got = out["n"][0].astype(np.int64).tolist()
            xs = np.clip(qs, -128, 127).clip(0, D)
            want = [int(Fraction(int(T * v), D) + Fraction(1, 2)) // 1 for v in xs]  # floor(Tx/D + 1/2)
            assert got == want, (D, T)
            assert got == [O.clamp(v, 0, D) * T // D + (1 if (2 * (T * O.clamp(v, 0, D) % D) >= D) else 0)
                           for v in xs]


def test_rate_encoder_round_half_up_at_exact_halves():
    # D = 2, x = 1: T x / D = T / 2, exact halves for odd T round up: 1 tick -> 1 spike
    g = tr.Graph()
    s = g.add(Q.RateEncoder(full_scale=2), g.add(Q.Quantize(1.0), g.input("x", (1,))))
    g.output("s", s)
    out = tr.Runtime(g).run({"x": np.ones(1, np.float32)}, ticks=5)
    assert out["s"][:, 0].tolist() == [1, 0, 1, 0, 1]


def test_integer_edges_are_int32_and_survive_a_checkpoint():
    g = tr.Graph()
    h = g.add(Q.Quantize(0.1), g.input("x", (4,)))
    s = g.add(Q.RateEncoder(full_scale=50), h)
    c = g.add(Q.SynDense(4, 3, weight=np.arange(12).reshape(3, 4) - 5, bias=[1, 2, 3]), s)
    v = g.add(Q.LIF(threshold=17, leak_mult=30000, leak_shift=15, refractory=1, alpha_mult=20000, alpha_shift=15), c)
    g.output("s", v)
    g.output("m", g.add(Q.MembraneReadout(window=3, leak_mult=3, leak_shift=2), c))
    x = np.array([0.3, 2.0, 4.7, -1.0], np.float32)
    rt = tr.Runtime(g)
    rt.run({"x": x}, ticks=4)
    st = rt.state()
    assert all(st[k].dtype == np.int32 for k in st if k.endswith(("/v", "/i_syn", "/refrac", "/acc")))
    a = rt.run({}, ticks=9)
    rt2 = tr.Runtime(g)
    rt2.load_state(st)
    b = rt2.run({}, ticks=9)
    assert a["m"].dtype == np.int32 and np.array_equal(a["m"], b["m"]) and np.array_equal(a["s"], b["s"])
    rt.reset()
    r = rt.run({"x": x}, ticks=13)  # the same stream in one go: windows end at 2, 5, 8, 11
    assert r.ticks["m"].tolist() == [2, 5, 8, 11] and a.ticks["m"].tolist() == [5, 8, 11]
    assert np.array_equal(r["m"][1:], a["m"]) and np.array_equal(r["s"][4:], a["s"])
    # determinism: the same input gives the same integers on a fresh runtime
    r2 = tr.Runtime(g).run({"x": x}, ticks=13)
    assert np.array_equal(r["m"], r2["m"]) and np.array_equal(r["s"], r2["s"])


def test_float_and_integer_edges_do_not_mix_without_a_boundary():
    g = tr.Graph()
    x = g.input("x", (4,))
    with pytest.raises(tr.DomainError, match="q.Quantize"):
        g.add(Q.Dense(4, 2), x)


def test_graphs_made_by_tr_quantize_equal_the_oracle():
    # a hybrid float graph (CNN -> rate code -> LIF -> count -> dense) through tr.quantize
    rng = np.random.default_rng(7)
    g = tr.Graph(name="hybrid")
    x = g.input("x", (1, 6, 6))
    h = g.add(tr.ann.ReLU(), g.add(tr.ann.Conv2d(1, 3, 3, padding=1, seed=1), x))
    h = g.add(tr.ann.Flatten(), g.add(tr.ann.MaxPool2d(2), h))
    h = g.add(tr.ann.ReLU(), g.add(tr.ann.Dense(27, 8, seed=4), h))
    s = g.add(tr.snn.LIF(beta=0.9, threshold=0.1), g.add(tr.snn.Dense(8, 5, seed=2),
                                                          g.add(tr.bridge.RateEncoder(), h)))
    g.output("y", g.add(tr.ann.Dense(5, 2, seed=3), g.add(tr.bridge.SpikeCount(window=4), s)))
    g.output("s", s)
    cal = rng.random((16, 1, 6, 6)).astype(np.float32)
    qg = tr.quantize(g, calibration={"x": cal})
    assert any(e.node.op.startswith("q.") for e in qg.build().entries)
    frames = rng.random((9, 2, 1, 6, 6)).astype(np.float32)
    assert_matches_oracle(qg, {"x": frames})


def test_an_integer_output_without_events_is_an_empty_int32_array():
    g = tr.Graph()
    c = g.add(Q.SynDense(2, 3), g.input("s", (2,), domain="spike"))
    g.output("m", g.add(Q.MembraneReadout(window=10), c))
    out = tr.Runtime(g).run({"s": np.ones((4, 2), np.float32)})
    assert out["m"].shape == (0, 3) and out["m"].dtype == np.int32


def test_a_spike_rate_cannot_feed_an_integer_node():
    g = tr.Graph()
    s = g.input("s", (3,), domain="spike")
    counts = g.add(tr.bridge.SpikeCount(window=4), s)
    g.add(Q.Dense(3, 2), counts)  # exact counts are fine
    rates = g.add(tr.bridge.SpikeCount(window=4, rate=True), s)
    with pytest.raises(tr.DomainError, match="q.Quantize"):
        g.add(Q.Dense(3, 2), rates)
