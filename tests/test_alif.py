"""The adaptive LIF (tr.snn.ALIF / tr.q.ALIF): hand-computed traces (adaptation building up
and decaying, both resets), float numba == reference on random stacks, quantisation, and
the integer neuron bit for bit on the reference, numba and the chip over a serial link.
(Random integer graphs with ALIFs are also in int_graphs.py / chip_graphs.py, held to the
pure-Python oracle and to the emulator.)"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr
from tianrt.chip import ChipSpec

BACKENDS = ["reference", "numba"]


def one_neuron(neuron, current, ticks):
    """A constant current into one neuron; outputs: spikes, membrane v, adaptation a."""
    g = tr.Graph(name="alif1")
    x = g.input("x", (1,))
    s = g.add(neuron, g.add(tr.bridge.DirectCurrent(gain=1.0), x), name="n")
    g.output("s", s)
    g.output("v", g.probe(s, "v"))
    g.output("a", g.probe(s, "a"))
    return g, {"x": np.full((ticks, 1), current, np.float32)}


# Worked by hand from the update order of docs/semantics.md (dyadic values: exact in float32):
# beta 1, theta_0 1, adapt 0.5, rho 0.5, I = 0.625 per tick.
SUBTRACT = dict(s=[0, 1, 0, 1, 0, 1, 0, 1],
                v=[0.625, 0.25, 0.875, 0.25, 0.875, 0.1875, 0.8125, 0.109375],
                a=[0, 1, 0.5, 1.25, 0.625, 1.3125, 0.65625, 1.328125])
ZERO = dict(s=[0, 1, 0, 1, 0, 0, 1, 0],
            v=[0.625, 0, 0.625, 0, 0.625, 1.25, 0, 0.625],
            a=[0, 1, 0.5, 1.25, 0.625, 0.3125, 1.15625, 0.578125])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset,want", [("subtract", SUBTRACT), ("zero", ZERO)])
def test_float_alif_hand_computed(backend, reset, want):
    g, xs = one_neuron(tr.snn.ALIF(beta=1.0, threshold=1.0, adapt=0.5, rho=0.5, reset=reset), 0.625, 8)
    out = tr.Runtime(g, backend).run(xs)
    for k in ("s", "v", "a"):
        assert out[k][:, 0].tolist() == want[k], k


def test_adaptation_lowers_the_rate_and_decays_without_input():
    g, xs = one_neuron(tr.snn.ALIF(beta=1.0, threshold=1.0, adapt=0.5, rho=0.5), 0.625, 8)
    lif, _ = one_neuron(tr.snn.ALIF(beta=1.0, threshold=1.0, adapt=0.0, rho=0.5), 0.625, 8)
    rt = tr.Runtime(g)
    assert rt.run(xs)["s"].sum() == 4 < tr.Runtime(lif).run(xs)["s"].sum() == 5  # LIF: 0,1,0,1,1,0,1,1
    quiet = rt.run({"x": np.zeros((5, 1), np.float32)})
    assert quiet["s"].sum() == 0
    assert quiet["a"][:, 0].tolist() == [1.328125 * 0.5 ** k for k in range(1, 6)]


# Integer, by hand: threshold 8, no leak, theta = 8 + round_shift(2 a, 12) (a spike adds 4096,
# i.e. 2 to the threshold), rho = 1/2 (round half away), reset by subtraction, I = 5 per tick.
INT_WANT = dict(s=[0, 1, 0, 1, 0, 1, 0, 1], v=[5, 2, 7, 3, 8, 4, 9, 5],
                a=[0, 4096, 2048, 5120, 2560, 5376, 2688, 5440])


def int_neuron_graph(probes=True):
    g = tr.Graph(name="qalif1")
    x = g.input("x", (1,))
    c = g.add(tr.q.DirectCurrent(gain=1), g.add(tr.q.Quantize(1.0), x))
    s = g.add(tr.q.ALIF(threshold=8, adapt_mult=2, adapt_shift=12, rho_mult=1, rho_shift=1, adapt_inc=4096), c)
    g.output("s", s)
    if probes:  # the chip runs no probes
        g.output("v", g.probe(s, "v"))
        g.output("a", g.probe(s, "a"))
    return g, {"x": np.full((8, 1), 5.0, np.float32)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_alif_hand_computed(backend):
    g, xs = int_neuron_graph()
    out = tr.Runtime(g, backend).run(xs)
    for k in ("s", "v", "a"):
        assert out[k][:, 0].tolist() == INT_WANT[k], k
    assert out["v"].dtype == np.int32


def stack(rng, sizes, reset, per_neuron):
    g = tr.Graph(name="alif_stack")
    h = g.input("x", (sizes[0],), domain="spike")
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = np.round(rng.uniform(-1, 1, (b, a)) * 64) / 32  # dyadic: sums exact in any order
        h = g.add(tr.snn.Dense(a, b, weight=w, bias=np.round(rng.uniform(-0.1, 0.2, b) * 64) / 64), h)

        def p(lo, hi):
            v = np.round(rng.uniform(lo, hi, b) * 16) / 16
            return v.astype(np.float32) if per_neuron else float(v[0])
        h = g.add(tr.snn.ALIF(beta=p(0.5, 1.0), threshold=p(0.5, 1.5), adapt=p(0.0, 0.5), rho=p(0.5, 1.0),
                              reset=reset), h, name=f"alif{i}")
        g.output(f"s{i}", h)
        g.output(f"a{i}", g.probe(h, "a"))
    return g


@settings(derandomize=True, deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), layers=st.integers(1, 3), reset=st.sampled_from(["subtract", "zero"]),
       per_neuron=st.booleans(), batch=st.sampled_from([None, 3]))
def test_numba_float_alif_equals_reference(seed, layers, reset, per_neuron, batch):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(2, 30, layers + 1)]
    g = stack(rng, sizes, reset, per_neuron)
    x = (rng.random((15,) + ((batch,) if batch else ()) + (sizes[0],)) < 0.4).astype(np.float32)
    ref, nb = tr.Runtime(g, "reference").run({"x": x}), tr.Runtime(g, "numba").run({"x": x})
    for k in ref:
        assert np.array_equal(ref[k], nb[k]), k
    rt = tr.Runtime(g, "numba")  # checkpoints carry the adaptation
    rt.run({"x": x[:7]})
    st_ = rt.state()
    first = rt.run({"x": x[7:]})
    rt.load_state(st_)
    again = rt.run({"x": x[7:]})
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_quantized_alif_tracks_the_float_neuron():
    rng = np.random.default_rng(3)
    n_in, n, T = 20, 12, 64
    g = tr.Graph(name="alif_q")
    x = g.input("x", (n_in,))
    s = g.add(tr.bridge.RateEncoder(), x)
    s = g.add(tr.snn.Dense(n_in, n, weight=rng.uniform(-0.3, 0.6, (n, n_in))), s)
    s = g.add(tr.snn.ALIF(beta=np.linspace(0.8, 1.0, n), threshold=1.0, adapt=0.3, rho=0.9), s, name="alif")
    g.output("c", g.add(tr.bridge.SpikeCount(window=T), s))
    cal = rng.random((40, n_in)).astype(np.float32)
    qg = tr.quantize(g, calibration={"x": cal})
    node = qg["alif"]
    assert node.op == "q.ALIF" and node.leak_mult.shape == (n,)  # per-neuron leak survives quantisation
    xs = rng.random((8, n_in)).astype(np.float32)
    f = tr.Runtime(g).run({"x": xs}, ticks=T)["c"][-1]
    q = tr.Runtime(qg).run({"x": xs}, ticks=T)["c"][-1]
    assert f.sum() > 50  # the neurons do fire and adapt
    assert np.abs(f - q).max() <= 2 and abs(f.sum() - q.sum()) <= 0.05 * f.sum()
    assert np.array_equal(q, tr.Runtime(qg, "numba").run({"x": xs}, ticks=T)["c"][-1])


def test_integer_alif_on_the_chip_over_a_serial_link():
    """Compiled, uploaded over a pty to a firmware_sim process, bit for bit equal to the
    numba backend's integer mode and to the hand-computed trace (per-neuron parameters
    split across cores)."""
    g, xs = int_neuron_graph(probes=False)
    rng = np.random.default_rng(5)
    n = 40  # a second layer of ALIFs with one value per neuron, more neurons than one small core
    h = g.input("y", (n,))
    c = g.add(tr.q.DirectCurrent(gain=1), g.add(tr.q.Quantize(0.05), h))
    a = g.add(tr.q.ALIF(threshold=rng.integers(5, 60, n), leak_mult=rng.integers(20000, 32768, n), leak_shift=15,
                        adapt_mult=rng.integers(1, 4000, n), adapt_shift=12, rho_mult=rng.integers(20000, 32768, n),
                        rho_shift=15, reset="zero", v_reset=-3), c)
    g.output("spikes", a)
    g.output("count", g.add(tr.bridge.SpikeCount(window=4), a))
    xs["y"] = rng.uniform(0, 3, (8, n)).astype(np.float32)
    spec = ChipSpec(axons_per_core=24, neurons_per_core=16, weight_bytes_per_core=384)
    nb = tr.Runtime(g, "numba").run(xs)
    with tr.Runtime(g, backend="chip", port="auto", spec=spec) as chip:
        out = chip.run(xs)
    for k in nb:
        assert np.array_equal(nb.ticks[k], out.ticks[k]) and np.array_equal(nb[k], out[k]), k
    assert out["s"][:, 0].tolist() == INT_WANT["s"]
    assert out["spikes"].sum() > 0


def test_chip_compile_refuses_probes_and_bad_alif_records():
    g, _ = int_neuron_graph()
    with pytest.raises(tr.chip.CompileError, match="probe"):
        tr.chip.compile(g)
    from tianrt.firmware_sim.soma import BadRecord, make_stage
    rec = {"op": "alif", "threshold": 0, "leak_mult": 1, "leak_shift": 0, "adapt_mult": 0, "adapt_shift": 0,
           "rho_mult": 1, "rho_shift": 0, "adapt_inc": 4096, "reset_zero": False, "v_reset": 0, "v_init": 0}
    with pytest.raises(BadRecord, match="threshold"):
        make_stage(rec, [], 4)
    with pytest.raises(BadRecord, match="adapt_inc"):
        make_stage({**rec, "threshold": 5, "adapt_inc": {"array": 0}}, [np.zeros(4, np.int32)], 4)
    assert make_stage({**rec, "threshold": {"array": 0}}, [np.full(4, 7, np.int32)], 4).node.threshold.tolist() == [7] * 4


def test_alif_parameters_are_checked():
    with pytest.raises(tr.GraphError, match="rho"):
        tr.snn.ALIF(rho=1.5)
    with pytest.raises(tr.GraphError, match="adapt"):
        tr.snn.ALIF(adapt=-0.1)
    with pytest.raises(tr.GraphError, match="reset"):
        tr.snn.ALIF(reset="soft")
    with pytest.raises(tr.GraphError, match="adapt_inc is one number"):
        tr.q.ALIF(adapt_inc=np.array([1, 2]))
    a = tr.snn.ALIF.from_tau(0.02, 0.2, dt=1e-3)
    assert a.beta == pytest.approx(np.exp(-0.05)) and a.rho == pytest.approx(np.exp(-0.005))
