"""SNN nodes and bridges on the reference backend against hand-computed values."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr


def neuron_trace(neuron, currents, shape=(1,)):
    """Feed a per-tick current sequence into a neuron; return spikes per tick."""
    g = tr.Graph()
    s = g.add(neuron, g.input("i", shape, domain="current"))
    g.output("s", s)
    outs = tr.Runtime(g).run({"i": np.asarray(currents, np.float32).reshape(-1, *shape)})
    return outs["s"].reshape(len(currents), -1)[:, 0]


def membrane_after(neuron, currents):
    g = tr.Graph()
    g.output("s", g.add(neuron, g.input("i", (1,), domain="current"), name="n"))
    rt = tr.Runtime(g)
    vs = []
    for c in currents:
        rt.step({"i": [c]})
        vs.append(float(rt.state()["n/v"][0, 0]))
    return vs


def test_lif_subtract_reset_hand_values():
    lif = tr.snn.LIF(beta=0.5, threshold=1.0, reset="subtract")
    # v: 0.75, 0.375+0.75=1.125 -> fire -> 0.125, 0.0625+0.75=0.8125, 1.15625 -> fire -> 0.15625
    assert neuron_trace(lif, [0.75] * 4).tolist() == [0, 1, 0, 1]
    assert membrane_after(lif.copy(), [0.75] * 4) == [0.75, 0.125, 0.8125, 0.15625]


def test_lif_zero_reset_hand_values():
    lif = tr.snn.LIF(beta=0.5, threshold=1.0, reset="zero", v_reset=0.0)
    assert neuron_trace(lif, [0.75] * 4).tolist() == [0, 1, 0, 1]
    assert membrane_after(lif.copy(), [0.75] * 4) == [0.75, 0.0, 0.75, 0.0]
    lif = tr.snn.LIF(beta=1.0, threshold=1.0, reset="zero", v_reset=-0.5)
    assert membrane_after(lif, [1.0, 1.0, 0.25]) == [-0.5, 0.5, 0.75]


def test_if_is_lif_without_leak():
    assert neuron_trace(tr.snn.IF(threshold=1.0), [0.25] * 8).tolist() == [0, 0, 0, 1, 0, 0, 0, 1]
    with pytest.raises(tr.GraphError, match="beta is fixed"):
        tr.snn.IF(beta=0.5)


@pytest.mark.parametrize("refractory,pattern", [(0, [1, 1, 1, 1, 1, 1]), (1, [1, 0, 1, 0, 1, 0]),
                                                (2, [1, 0, 0, 1, 0, 0])])
def test_refractory_period(refractory, pattern):
    n = tr.snn.IF(threshold=1.0, refractory=refractory)
    assert neuron_trace(n, [1.0] * 6).tolist() == pattern


def test_refractory_discards_input_and_holds_membrane():
    n = tr.snn.LIF(beta=0.5, threshold=1.0, refractory=1)
    # t0: v=1.5 fire -> 0.5; t1: refractory, v held at 0.5 (no leak, input discarded);
    # t2: v = 0.25 + 0.5 = 0.75
    assert membrane_after(n, [1.5, 4.0, 0.5]) == [0.5, 0.5, 0.75]


def test_synaptic_current_filter():
    n = tr.snn.LIF(beta=1.0, threshold=10.0, alpha=0.5)
    # i_syn: 1, 0.5, 0.25; v: 1, 1.5, 1.75
    assert membrane_after(n, [1.0, 0.0, 0.0]) == [1.0, 1.5, 1.75]


def test_leaky_integrator_readout():
    g = tr.Graph()
    g.output("v", g.add(tr.snn.LI(beta=0.5), g.input("i", (1,), domain="current")))
    outs = tr.Runtime(g).run({"i": np.array([[1.0], [1.0], [0.0]])})
    np.testing.assert_allclose(outs["v"][:, 0], [1.0, 1.5, 0.75])


def test_dense_synapse_on_spikes():
    g = tr.Graph()
    i = g.add(tr.snn.Dense(3, 2, weight=[[1, 2, 4], [-1, 0, 1]], bias=[0.5, 0]), g.input("s", (3,), domain="spike"))
    g.output("i", i)
    out = tr.Runtime(g).step({"s": [1, 0, 1]})
    np.testing.assert_allclose(out["i"], [5.5, 0])


def test_recurrent_synapse_through_delay():
    g = tr.Graph()
    x = g.input("x", (1,), domain="spike")
    fb = g.delay((2,), "spike")
    i = g.add(tr.snn.Recurrent(1, 2, weight=[[1], [0]], weight_rec=[[0, 0], [1, 0]]), x, fb)
    s = g.add(tr.snn.IF(threshold=1.0), i)
    g.connect(fb, s)
    g.output("s", s)
    outs = tr.Runtime(g).run({"x": np.array([[1], [0], [0]], np.float32)})
    # neuron 0 fires at t0 from the input; neuron 1 fires at t1 from neuron 0's spike
    assert outs["s"].tolist() == [[1, 0], [0, 1], [0, 0]]


@settings(derandomize=True, deadline=None, max_examples=60)
@given(k=st.integers(0, 1024), T=st.integers(1, 200))
def test_rate_encoder_exact_count(k, T):
    x = k / 1024
    g = tr.Graph()
    g.output("s", g.add(tr.bridge.RateEncoder(), g.input("x", (1,))))
    outs = tr.Runtime(g).run({"x": [x]}, ticks=T)
    assert outs["s"].sum() == np.floor(x * T + 0.5)  # round(x*T), half up


def test_rate_encoder_scale_and_clipping():
    g = tr.Graph()
    g.output("s", g.add(tr.bridge.RateEncoder(scale=4.0), g.input("x", (3,))))
    outs = tr.Runtime(g).run({"x": [2.0, -1.0, 9.0]}, ticks=10)
    assert outs["s"].sum(axis=0).tolist() == [5, 0, 10]


def test_poisson_encoder_seeded_and_rate():
    def draw(seed):
        g = tr.Graph()
        g.output("s", g.add(tr.bridge.PoissonEncoder(seed=seed), g.input("x", (200,))))
        return tr.Runtime(g).run({"x": np.full(200, 0.3)}, ticks=100)["s"]
    a, b, c = draw(1), draw(1), draw(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean() - 0.3) < 0.01  # 20 000 Bernoulli(0.3) draws


def test_latency_encoder_hand_values():
    g = tr.Graph()
    g.output("s", g.add(tr.bridge.LatencyEncoder(window=5), g.input("x", (4,))))
    s = tr.Runtime(g).run({"x": [1.0, 0.5, 0.1, 0.0]}, ticks=10)["s"]
    # phase floor((1-x)*4 + 0.5): 0, 2, 4; none for 0; repeats every window
    assert [list(np.flatnonzero(s[:, j])) for j in range(4)] == [[0, 5], [2, 7], [4, 9], []]


def test_direct_current():
    g = tr.Graph()
    g.output("i", g.add(tr.bridge.DirectCurrent(gain=2.0), g.input("x", (2,))))
    outs = tr.Runtime(g).run({"x": [0.5, -1]}, ticks=3)
    np.testing.assert_allclose(outs["i"], [[1, -2]] * 3)


def decode(decoder, spikes):
    g = tr.Graph()
    g.output("y", g.add(decoder, g.input("s", (spikes.shape[1],), domain="spike")))
    return tr.Runtime(g).run({"s": spikes.astype(np.float32)})


SPIKES = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]])


def test_spike_count_tumbling():
    outs = decode(tr.bridge.SpikeCount(window=3), SPIKES)
    assert outs.ticks["y"].tolist() == [2, 5]
    assert outs["y"].tolist() == [[2, 1], [2, 1]]
    outs = decode(tr.bridge.SpikeCount(window=3, rate=True), SPIKES)
    np.testing.assert_allclose(outs["y"], [[2 / 3, 1 / 3], [2 / 3, 1 / 3]])


def test_spike_count_sliding():
    outs = decode(tr.bridge.SpikeCount(window=3, mode="sliding"), SPIKES)
    assert outs.ticks["y"].tolist() == [2, 3, 4, 5, 6]
    assert outs["y"].tolist() == [[2, 1], [2, 2], [1, 2], [2, 1], [1, 1]]


def test_membrane_readout():
    g = tr.Graph()
    g.output("y", g.add(tr.bridge.MembraneReadout(window=2, mean=True), g.input("i", (1,), domain="current")))
    outs = tr.Runtime(g).run({"i": np.array([[1.0], [3.0], [5.0], [7.0]])})
    assert outs.ticks["y"].tolist() == [1, 3]
    np.testing.assert_allclose(outs["y"][:, 0], [2.0, 6.0])  # restarts from 0 each window


def test_first_spike_decoder():
    outs = decode(tr.bridge.FirstSpike(window=3), SPIKES)
    assert outs.ticks["y"].tolist() == [2, 5]
    assert outs["y"].tolist() == [[0, 2], [0, 0]]
    outs = decode(tr.bridge.FirstSpike(window=2), np.zeros((2, 1)))
    assert outs["y"].tolist() == [[2]]  # W when the neuron did not fire


@pytest.mark.parametrize("bad", [dict(reset="hard"), dict(beta=1.5), dict(threshold=0), dict(refractory=-1),
                                 dict(alpha=2.0)])
def test_lif_rejects_bad_parameters(bad):
    with pytest.raises(tr.GraphError):
        tr.snn.LIF(**bad)


def test_decoders_reject_bad_window():
    with pytest.raises(tr.GraphError, match="window"):
        tr.bridge.SpikeCount(window=0)
    with pytest.raises(tr.GraphError, match="mode"):
        tr.bridge.SpikeCount(window=2, mode="hopping")
