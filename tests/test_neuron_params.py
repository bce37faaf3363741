"""Per-neuron parameters (a number or one value per neuron, on every backend and in integer
mode), probes of a neuron's state as outputs (snnTorch's (spk, mem)), and from_tau's dt."""
import numpy as np
import pytest

import tianrt as tr

BACKENDS = ["reference", "numba"]


def lif_layer(beta, threshold, n=6, reset="subtract", name="lif"):
    g = tr.Graph(name="pn")
    x = g.input("x", (n,))
    s = g.add(tr.snn.LIF(beta=beta, threshold=threshold, reset=reset), g.add(tr.bridge.DirectCurrent(), x),
              name=name)
    g.output("s", s)
    g.output("mem", g.probe(s, "v"))
    return g


def manual_lif(beta, thr, current, ticks):
    """The float rule of docs/semantics.md in float32, per neuron, written out."""
    beta, thr = np.float32(beta), np.float32(thr)
    v = np.zeros_like(current, np.float32)
    spikes, mems = [], []
    for _ in range(ticks):
        v = (beta * v + current).astype(np.float32)
        s = v >= thr
        v = np.where(s, v - thr, v).astype(np.float32)
        spikes.append(s.astype(np.float32))
        mems.append(v.copy())
    return np.array(spikes), np.array(mems)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_beta_and_threshold_per_neuron(backend):
    beta = np.array([0.5, 0.75, 0.875, 0.9375, 1.0, 1.0], np.float32)
    thr = np.array([0.5, 1.0, 1.5, 2.0, 0.25, 3.0], np.float32)
    cur = np.array([0.375, 0.5, 0.625, 0.75, 0.125, 1.25], np.float32)
    out = tr.Runtime(lif_layer(beta, thr), backend).run({"x": cur}, ticks=20)
    s, v = manual_lif(beta, thr, cur, 20)
    assert np.array_equal(out["s"], s) and np.array_equal(out["mem"], v)
    # one value for all neurons gives the scalar neuron
    one = tr.Runtime(lif_layer(np.full(6, 0.75, np.float32), np.full(6, 1.0, np.float32)), backend)
    assert np.array_equal(one.run({"x": cur}, ticks=20)["s"], tr.Runtime(lif_layer(0.75, 1.0)).run(
        {"x": cur}, ticks=20)["s"])


def test_per_channel_parameters_broadcast_over_an_image():
    g = tr.Graph(name="conv_pn")
    x = g.input("x", (2, 4, 4), domain="spike")
    c = g.add(tr.snn.Conv2d(2, 3, 3, padding=1, seed=4), x)
    s = g.add(tr.snn.LIF(beta=np.array([0.5, 0.9, 1.0]).reshape(3, 1, 1), threshold=0.2), c)
    g.output("s", s)
    g.output("v", g.probe(s, "v"))
    xs = (np.random.default_rng(0).random((10, 2, 2, 4, 4)) < 0.5).astype(np.float32)
    ref, nb = tr.Runtime(g).run({"x": xs}), tr.Runtime(g, "numba").run({"x": xs})
    np.testing.assert_allclose(nb["v"], ref["v"], rtol=1e-5, atol=1e-5)
    assert (ref["s"] != nb["s"]).mean() < 0.01  # summation order may flip a spike at the threshold


def test_wrong_shapes_and_values_are_refused_clearly():
    with pytest.raises(tr.ShapeError, match=r"beta has shape \(5,\).*neuron shape \(6,\)"):
        lif_layer(np.full(5, 0.9), 1.0)
    with pytest.raises(tr.GraphError, match=r"beta must be in \[0.0, 1.0\], got values in"):
        tr.snn.LIF(beta=np.array([0.5, 1.5]))
    with pytest.raises(tr.GraphError, match="threshold must be > 0"):
        tr.snn.LIF(threshold=np.array([1.0, 0.0]))
    with pytest.raises(tr.GraphError, match="NaN"):
        tr.snn.LIF(beta=np.array([0.5, np.nan]))
    with pytest.raises(tr.GraphError, match="alpha"):
        tr.snn.LIF(alpha=np.array([0.5, 0.5]))
    with pytest.raises(tr.GraphError, match="leak_mult"):
        tr.q.LIF(leak_mult=np.array([1, 2 ** 15]))


def test_per_neuron_parameters_survive_a_model_file(tmp_path):
    g = lif_layer(np.linspace(0.5, 1.0, 6).astype(np.float32), np.linspace(0.5, 2.0, 6).astype(np.float32))
    tr.save(g, tmp_path / "pn.tnr")
    g2 = tr.load(tmp_path / "pn.tnr")
    assert np.array_equal(g2["lif"].beta, g["lif"].beta) and g2["lif"].beta.dtype == np.float32
    cur = np.linspace(0.1, 1.0, 6).astype(np.float32)
    a, b = tr.Runtime(g).run({"x": cur}, ticks=10), tr.Runtime(g2).run({"x": cur}, ticks=10)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_quantize_keeps_per_neuron_thresholds_and_leaks():
    rng = np.random.default_rng(1)
    g = tr.Graph(name="qpn")
    x = g.input("x", (8,))
    s = g.add(tr.snn.Dense(8, 5, weight=rng.uniform(0, 0.5, (5, 8))), g.add(tr.bridge.RateEncoder(), x))
    s = g.add(tr.snn.LIF(beta=np.linspace(0.7, 1.0, 5), threshold=np.array([0.5, 1, 1.5, 2, 2.5])), s, name="lif")
    g.output("c", g.add(tr.bridge.SpikeCount(window=32), s))
    q = tr.quantize(g, calibration={"x": rng.random((20, 8)).astype(np.float32)})
    node = q["lif"]
    assert node.threshold.shape == (5,) and np.all(np.diff(node.threshold) > 0)
    assert node.leak_mult.shape == (5,)
    xs = rng.random((4, 8)).astype(np.float32)
    f, i = tr.Runtime(g).run({"x": xs}, ticks=32)["c"][-1], tr.Runtime(q, "numba").run({"x": xs}, ticks=32)["c"][-1]
    assert np.abs(f - i).max() <= 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_probes_are_snntorch_style_spk_and_mem(backend):
    """(spk, mem) per tick, mem after the reset, equal to the neuron's checkpointed state."""
    g = lif_layer(0.9, 1.0, reset="zero")
    rt = tr.Runtime(g, backend)
    cur = np.linspace(0.2, 1.2, 6).astype(np.float32)
    for _ in range(5):
        out = rt.step({"x": cur})
        assert np.array_equal(out["mem"], rt.state()["lif/v"][0])
        assert np.all(out["mem"][out["s"] > 0] == 0)  # zero reset: the membrane of a neuron that fired
    assert rt.run({"x": cur}, ticks=3)["mem"].shape == (3, 6)


def test_probe_fields_are_checked_and_named():
    g = tr.Graph()
    x = g.input("x", (3,))
    s = g.add(tr.snn.LIF(alpha=0.5, refractory=2), g.add(tr.bridge.DirectCurrent(), x), name="n")
    for field in ("v", "i_syn", "refrac"):
        g.probe(s, field)
    with pytest.raises(tr.GraphError, match="has no state field 'a'; its state fields are i_syn, refrac, v"):
        g.probe(s, "a")
    with pytest.raises(tr.GraphError, match="keeps no state"):
        g.probe(x, "v")


def test_probe_of_a_quantized_neuron_is_its_dequantized_membrane():
    rng = np.random.default_rng(2)
    g = tr.Graph(name="qprobe")
    x = g.input("x", (6,))
    s = g.add(tr.snn.Dense(6, 4, weight=rng.uniform(0, 0.4, (4, 6))), g.add(tr.bridge.RateEncoder(), x))
    s = g.add(tr.snn.LIF(beta=0.95), s, name="lif")
    g.output("mem", g.probe(s, "v"))
    q = tr.quantize(g, calibration={"x": rng.random((10, 6)).astype(np.float32)})
    xs = rng.random(6).astype(np.float32)
    f, i = tr.Runtime(g).run({"x": xs}, ticks=16)["mem"], tr.Runtime(q, "numba").run({"x": xs}, ticks=16)["mem"]
    assert i.dtype == np.float32 and i.shape == f.shape == (16, 4)
    err = np.abs(f - i)
    # within a few current steps of the float membrane, except after a spike one side fires
    # a tick apart from the other (the membrane then differs by about the threshold)
    assert np.median(err) < 0.03 and np.mean(err < 0.1) > 0.9


def test_from_tau_takes_the_graphs_tick():
    g = tr.Graph(dt=1e-4)
    assert tr.snn.LIF.from_tau(0.01, dt=g.dt).beta == pytest.approx(np.exp(-0.01))  # 0.990, not 0.905
    per = tr.snn.LIF.from_tau(np.array([0.01, 0.02]), dt=1e-3)
    assert per.beta.dtype == np.float32 and per.beta.tolist() == pytest.approx(np.exp(-1e-3 / np.array([0.01, 0.02])))
    with pytest.raises(TypeError, match="dt"):
        tr.snn.LIF.from_tau(0.01)  # dt must be given: there is no silent 1 ms
    with pytest.raises(tr.GraphError, match="must be > 0"):
        tr.snn.LIF.from_tau(0.0, dt=1e-3)
