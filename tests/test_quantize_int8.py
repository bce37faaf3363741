"""tr.quantize: float ANN / converted SNN / hybrid graphs -> integer tr.q graphs that run in
integer mode (docs/integer.md) close to the float graph."""
import numpy as np
import pytest

import tianrt as tr
from tianrt import qmath

from convert_fixtures import trained_cnn, trained_mlp


def _run(g, x, T=1):
    return tr.Runtime(g).run({"x": x}, ticks=T)["y"][-1]


def _ops(g):
    return [e.node.op for e in g.entries.values()]


def test_quantized_mlp_fuses_relu_and_tracks_the_float_ann():
    m, x, y = trained_mlp()
    ann = m.to_graph()
    qg = tr.quantize(ann, {"x": x})
    assert _ops(qg) == ["graph.Input", "q.Quantize", "q.Dense", "q.Dense", "q.Dense", "q.Dequantize"]
    assert qg["dense1"].lo == 0 and qg["dense3"].lo == -128
    assert qg["dense1"].weight.dtype == np.int8 and np.abs(qg["dense1"].weight).max() == 127
    ref, out = _run(ann, x), _run(qg, x)
    assert np.abs(out - ref).max() < 0.03 * np.abs(ref).max()
    assert (out.argmax(1) == ref.argmax(1)).mean() > 0.97
    per_layer = tr.quantize(ann, {"x": x}, per_channel=False)
    assert len(set(per_layer["dense1"].multiplier.tolist())) == 1
    assert len(set(qg["dense1"].multiplier.tolist())) > 1


def test_quantized_ann_with_pools_and_lookup_activations():
    rng = np.random.default_rng(0)
    g = tr.Sequential(tr.ann.Conv2d(1, 4, 3, padding=1, seed=1), tr.ann.ClippedReLU(0.5), tr.ann.MaxPool2d(2),
                      tr.ann.Conv2d(4, 4, 3, padding=1, seed=2), tr.ann.Tanh(), tr.ann.AvgPool2d(3),
                      tr.ann.ReLU(), tr.ann.GlobalAvgPool2d(), tr.ann.Dense(4, 3, seed=3), tr.ann.Sigmoid(),
                      input_shape=(1, 6, 6))
    x = rng.random((40, 1, 6, 6)).astype(np.float32)
    qg = tr.quantize(g, {"x": x})
    assert _ops(qg)[1:] == ["q.Quantize", "q.Conv2d", "q.MaxPool2d", "q.Conv2d", "q.Lookup", "q.AvgPool2d",
                            "q.Clamp", "q.GlobalAvgPool2d", "q.Dense", "q.Lookup", "q.Dequantize"]
    assert qg["conv1"].lo == 0 and qg["conv1"].hi <= 127
    ref, out = _run(g, x), _run(qg, x)
    assert np.abs(out - ref).max() < 0.02


def test_quantized_snn_has_exact_integer_thresholds():
    m, x, y = trained_mlp()
    snn = tr.convert(m.to_graph(), {"x": x}, T=16)
    qg = tr.quantize(snn, {"x": x}, per_channel=False)
    assert _ops(qg) == ["graph.Input", "q.Quantize", "q.DirectCurrent", "q.SynDense", "q.LIF", "q.SynDense",
                        "q.LIF", "q.SynDense", "q.MembraneReadout", "q.Dequantize"]
    lif = qg["relu2"]
    k = lif.threshold
    assert lif.leak_mult == 1 and lif.leak_shift == 0 and lif.reset == "subtract"
    assert lif.v_init == int(qmath.round_half_away(k / 2))
    # spike-fed synapse: weight scale theta / K, so W_q = round(W' * K) and the threshold is exact
    w = snn["dense2"].weight.astype(np.float64)
    assert np.abs(qg["dense2"].weight - w * k).max() <= 0.5 + 1e-6
    assert np.abs(w * k).max() <= 127.5
    assert qg["x_quant"].scale == pytest.approx(float(np.abs(x).max()) / 127)
    assert qg["dense3_readout"].window == 16


def test_per_channel_spiking_synapses_give_each_neuron_its_own_exact_threshold():
    """With per_channel (the default) a synapse feeding one IF/LIF population takes one weight
    scale per output row: row j keeps ~127 levels, its neuron's integer threshold K_j is exact
    (W_q[j] = round(W'[j] * K_j)), and its initial membrane is round(K_j / 2)."""
    m, x, y = trained_mlp()
    snn = tr.convert(m.to_graph(), {"x": x}, T=16, per_channel=True)
    qg = tr.quantize(snn, {"x": x})
    lif = qg["relu2"]
    k = np.asarray(lif.threshold, np.float64)
    assert k.shape == (snn["dense2"].out_features,) and np.unique(k).size > 1
    np.testing.assert_array_equal(lif.v_init, qmath.round_half_away(k / 2))
    w = snn["dense2"].weight.astype(np.float64)
    assert np.abs(qg["dense2"].weight - w * k[:, None]).max() <= 0.5 + 1e-6
    levels = np.abs(qg["dense2"].weight.astype(np.int16)).max(axis=1)
    assert levels.max() <= 127 and np.median(levels) >= 64  # each row uses its own range
    # the readout synapse feeds a MembraneReadout (one scale for its Dequantize): per layer
    assert np.ndim(qg["dense3"].weight) == 2 and np.abs(qg["dense3"].weight.astype(np.int16)).max() == 127
    f, i = _run(snn, x, 16), _run(qg, x, 16)
    assert (f.argmax(1) != i.argmax(1)).mean() <= 0.01


def test_int8_snn_accuracy_close_to_float_snn():
    m, x, y = trained_mlp()
    for T in (8, 32):
        snn = tr.convert(m.to_graph(), {"x": x}, T=T)
        f, i = _run(snn, x, T), _run(tr.quantize(snn, {"x": x}), x, T)
        assert abs((f.argmax(1) == y).mean() - (i.argmax(1) == y).mean()) <= 0.02
        assert np.abs(f - i).mean() < 0.05 * np.abs(f).mean()


def test_int8_cnn_and_hybrid_with_rate_encoder():
    m, x, y = trained_cnn()
    ann = m.to_graph()
    snn = tr.convert(ann, {"x": x}, T=16)
    qs = tr.quantize(snn, {"x": x})
    assert "q.SynConv2d" in _ops(qs)
    assert np.abs(_run(qs, x, 16) - _run(snn, x, 16)).mean() < 0.1 * np.abs(_run(snn, x, 16)).mean()
    hyb = tr.convert(ann, {"x": x}, T=16, layers=slice(1, None), encoding="rate")
    qh = tr.quantize(hyb, {"x": x})
    assert qh["encoder"].full_scale == 127
    assert _ops(qh)[:6] == ["graph.Input", "q.Quantize", "q.Conv2d", "q.AvgPool2d", "q.RateEncoder", "q.SynConv2d"]
    # the encoder's input scale is lambda / 127: the integer rate code matches the float one
    f, i = _run(hyb, x, 16), _run(qh, x, 16)
    assert (f.argmax(1) == i.argmax(1)).mean() > 0.95


def test_middle_spiking_range_quantizes_through_spike_counts():
    m, x, _ = trained_mlp()
    mid = tr.convert(m.to_graph(), {"x": x}, T=32, layers=["dense2"])
    qg = tr.quantize(mid, {"x": x})
    assert _ops(qg)[-3:] == ["bridge.SpikeCount", "q.Dense", "q.Dequantize"]
    assert qg["dense2_rate"].rate is False
    f, i = _run(mid, x, 32), _run(qg, x, 32)
    assert np.abs(f - i).mean() < 0.05 * np.abs(f).mean()


def test_inputs_on_a_coarse_grid_are_quantized_exactly():
    m, x, _ = trained_mlp()
    grid = (np.round(x * 16) / 16).astype(np.float32)  # 4-bit pixels, as the sklearn digits
    qg = tr.quantize(m.to_graph(), {"x": grid})
    assert qg["x_quant"].scale == pytest.approx(1 / 112)
    q = qmath.quantize(grid, qg["x_quant"].scale)
    assert np.array_equal(q, np.round(grid * 112).astype(np.int32))


def test_quantized_graph_saves_and_loads(tmp_path):
    m, x, _ = trained_mlp()
    snn = tr.convert(m.to_graph(), {"x": x}, T=8)
    snn.metadata["ticks_per_step"] = 8
    qg = tr.quantize(snn, {"x": x})
    back = tr.load(tr.save(qg, tmp_path / "q.tnr"))
    assert np.array_equal(_run(back, x, 8), _run(qg, x, 8))
    # the float graph's notes carry over (a runner reading ticks_per_step or the conversion's T
    # must not find them gone), with how it was quantised added; the float graph is untouched
    assert back.metadata["ticks_per_step"] == 8 and back.metadata["conversion"]["T"] == 8
    assert back.metadata["quantized"] == {"method": "max", "per_channel": True}
    assert "quantized" not in snn.metadata


def test_quantize_errors():
    m, x, _ = trained_mlp()
    ann = m.to_graph()
    with pytest.raises(tr.InputError, match=r"calibration data for `x` has shape \(4, 3\), expected \(N, 16\)"):
        tr.quantize(ann, {"x": np.ones((4, 3))})
    with pytest.raises(tr.InputError, match=r"one array per tensor or current input \(x\)"):
        tr.quantize(ann, {"y": x})
    qg = tr.quantize(ann, {"x": x})
    with pytest.raises(tr.GraphError, match="`x_quant` is already an integer node"):
        tr.quantize(qg, {"x": x})
    g = tr.Graph()
    h = g.add(tr.bridge.PoissonEncoder(), g.input("x", (16,)), name="poisson")
    g.output("y", g.add(tr.bridge.MembraneReadout(window=4), g.add(tr.snn.Dense(16, 2), h)))
    with pytest.raises(tr.GraphError, match="`poisson` \\(PoissonEncoder\\) has no integer form; use bridge.RateEncoder"):
        tr.quantize(g, {"x": x})
    with pytest.raises(tr.GraphError, match="method must be"):
        tr.quantize(ann, {"x": x}, method="mse")


def test_bias_correction_keeps_the_mean_current_of_every_neuron():
    m, x, _ = trained_mlp()
    snn = tr.convert(m.to_graph(), {"x": x}, T=8)
    qg = tr.quantize(snn, {"x": x})
    s_x = qg["x_quant"].scale
    s_cur = snn["relu1"].threshold / qg["relu1"].threshold  # the threshold is exact
    xq = qmath.quantize(x, s_x).astype(np.float64)
    cur_int = (xq @ qg["dense1"].weight.astype(np.float64).T + qg["dense1"].bias) * s_cur
    cur_float = x.astype(np.float64) @ snn["dense1"].weight.T + snn["dense1"].bias
    drift = np.abs(cur_int.mean(0) - cur_float.mean(0)) / s_cur  # in each neuron's current units
    assert drift.max() <= 1  # only the bias's own rounding (half a unit) and input rounding remain
    # without correction the rounding of 16 weights per neuron drifts further for some neuron
    raw = (xq @ qg["dense1"].weight.astype(np.float64).T
           + qmath.quantize_bias(snn["dense1"].bias, s_cur)) * s_cur
    assert (np.abs(raw.mean(0) - cur_float.mean(0)) / s_cur).max() > drift.max()


def test_submodule_import_does_not_shadow_the_functions():
    import tianrt.conversion  # noqa: F401  (the modules are not named like the functions)
    import tianrt.quantization  # noqa: F401
    m, x, _ = trained_mlp()
    snn = tr.convert(m.to_graph(), {"x": x}, T=4)
    assert tr.quantize(snn, {"x": x}).name.endswith("-int8")


def test_latency_encoder_gets_full_scale_127_and_matches_float_phases():
    rng = np.random.default_rng(5)
    g = tr.Graph(name="lat")
    h = g.add(tr.ann.Dense(6, 5, seed=1), g.input("x", (6,)))
    h = g.add(tr.ann.ReLU(), h)
    s = g.add(tr.bridge.LatencyEncoder(window=8, scale=2.0), h, name="lat")
    g.output("y", g.add(tr.bridge.FirstSpike(window=8), s))
    x = rng.random((50, 6)).astype(np.float32)
    qg = tr.quantize(g, {"x": x})
    assert qg["lat"].full_scale == 127 and qg["lat"].window == 8
    f = tr.Runtime(g).run({"x": x}, ticks=8)["y"][-1]
    i = tr.Runtime(qg).run({"x": x}, ticks=8)["y"][-1]
    assert np.abs(f - i).max() <= 1 and (f == i).mean() > 0.9
