"""tr.convert: full conversion of trained ANNs; threshold balancing, folding, readout, errors."""
import numpy as np
import pytest

import tianrt as tr

from convert_fixtures import trained_cnn, trained_mlp


def _run(g, x, T):
    return tr.Runtime(g).run({"x": x}, ticks=T)["y"][-1]


def test_mlp_conversion_structure_and_metadata():
    m, x, _ = trained_mlp()
    ann = m.to_graph()
    snn = tr.convert(ann, calibration={"x": x}, T=8)
    ops = [e.node.op for e in snn.entries.values()]
    assert ops == ["graph.Input", "bridge.DirectCurrent", "snn.Dense", "snn.IF", "snn.Dense", "snn.IF",
                   "snn.Dense", "bridge.MembraneReadout"]
    ro = snn["dense3_readout"]
    assert ro.window == 8 and ro.mean
    for n in ("relu1", "relu2"):
        assert snn[n].threshold == 1.0 and snn[n].v_init == 0.5 and snn[n].reset == "subtract"
    meta = snn.metadata["conversion"]
    assert meta["T"] == 8 and meta["spiking_layers"] == ["dense1", "dense2", "dense3"]
    assert ann.entries.keys() != snn.entries.keys()  # a new graph; the ANN is untouched
    assert ann["dense1"].weight is not snn["dense1"].weight


def test_threshold_balancing_scales_weights_by_lambda():
    m, x, _ = trained_mlp()
    ann = m.to_graph()
    snn = tr.convert(ann, {"x": x}, T=4, method="max", per_channel=False)
    lam = snn.metadata["conversion"]["lambda"]
    h1 = np.maximum(x @ ann["dense1"].weight.T + ann["dense1"].bias, 0)
    assert lam["dense1"] == pytest.approx(float(h1.max()), rel=1e-5)
    assert np.allclose(snn["dense1"].weight, ann["dense1"].weight / lam["dense1"], rtol=1e-5)
    assert np.allclose(snn["dense2"].weight, ann["dense2"].weight * lam["dense1"] / lam["dense2"], rtol=1e-5)
    assert np.allclose(snn["dense2"].bias, ann["dense2"].bias / lam["dense2"], rtol=1e-5)
    assert np.allclose(snn["dense3"].weight, ann["dense3"].weight * lam["dense2"], rtol=1e-5)
    p = tr.convert(ann, {"x": x}, T=4, method="percentile", percentile=50,
                   per_channel=False).metadata["conversion"]["lambda"]
    r = tr.convert(ann, {"x": x}, T=4, method="robust", percentile=50,
                   per_channel=False).metadata["conversion"]["lambda"]
    assert p["dense1"] == pytest.approx(float(np.percentile(h1, 50)), rel=1e-5)
    assert r["dense1"] == pytest.approx(float(np.percentile(h1[h1 > 0], 50)), rel=1e-5)
    pc = tr.convert(ann, {"x": x}, T=4, method="max").metadata["conversion"]["lambda"]  # per channel: the default
    want = h1.max(0)
    want = np.where(want <= 1e-6, h1.max(), np.maximum(want, 0.01 * h1.max()))  # silent: the layer's
    assert np.allclose(pc["dense1"], want, rtol=1e-5)


def test_per_channel_scales_of_silent_neurons_do_not_break_int8():
    m, x, y = trained_mlp()
    ann = m.to_graph()
    d1 = ann["dense1"]
    dead = d1.copy(bias=np.where(np.arange(24) < 3, -100.0, d1.bias).astype(np.float32))  # 3 dead neurons
    g = tr.Sequential(dead, *[ann[n].copy() for n in ("relu1", "dense2", "relu2", "dense3")], input_shape=(16,))
    snn = tr.convert(g, {"x": x}, T=8, per_channel=True)
    lam = np.asarray(snn.metadata["conversion"]["lambda"]["dense1"])
    assert np.allclose(lam[:3], tr.convert(g, {"x": x}, T=8, per_channel=False).metadata["conversion"]["lambda"]["dense1"])
    f = tr.Runtime(snn).run({"x": x}, ticks=8)["y"][-1]
    i = tr.Runtime(tr.quantize(snn, {"x": x})).run({"x": x}, ticks=8)["y"][-1]
    assert abs((f.argmax(1) == y).mean() - (i.argmax(1) == y).mean()) <= 0.03


def test_converted_mlp_approaches_the_ann_as_T_grows():
    m, x, y = trained_mlp()
    ann = m.to_graph()
    ref = m.predict(x)
    errs = []
    for T in (4, 16, 64):
        out = _run(tr.convert(ann, {"x": x}, T=T), x, T)
        errs.append(np.abs(out - ref).mean())
        assert (out.argmax(1) == y).mean() >= m.accuracy(x, y) - (0.1 if T == 4 else 0.03)
    assert errs[2] < errs[1] < errs[0]
    assert errs[2] < 0.05 * np.abs(ref).mean()


def test_initial_membrane_half_threshold_helps_at_small_T():
    m, x, _ = trained_mlp()
    ann, ref = m.to_graph(), m.predict(x)
    half = np.abs(_run(tr.convert(ann, {"x": x}, T=4), x, 4) - ref).mean()
    zero = np.abs(_run(tr.convert(ann, {"x": x}, T=4, v_init=0.0), x, 4) - ref).mean()
    assert half < zero


def test_lif_neurons_and_rate_encoding_are_options():
    m, x, y = trained_mlp()
    ann = m.to_graph()
    lif = tr.convert(ann, {"x": x}, T=32, neuron="lif", beta=0.99)
    assert type(lif["relu1"]) is tr.snn.LIF and lif["relu1"].beta == 0.99
    rate = tr.convert(ann, {"x": x}, T=32, encoding="rate")
    assert type(rate["encoder"]) is tr.bridge.RateEncoder
    assert rate["encoder"].scale == pytest.approx(float(np.percentile(x[x > 0], 99.9)), rel=1e-5)
    assert (_run(rate, x, 32).argmax(1) == y).mean() >= m.accuracy(x, y) - 0.05


def test_cnn_avgpool_is_folded_into_the_next_synapse():
    m, x, y = trained_cnn()
    ann = m.to_graph()
    snn = tr.convert(ann, {"x": x}, T=32, method="max", per_channel=False)
    assert not any(isinstance(n.node, tr.ann.AvgPool2d) for n in snn.entries.values())
    conv2, conv2_ann = snn["conv2"], ann["conv2"]
    assert conv2.kernel_size == (6, 6) and conv2.stride == (2, 2) and conv2.padding == (2, 2)
    lam = snn.metadata["conversion"]["lambda"]
    # the folded synapse on spikes s equals conv2(avgpool(s)) up to the lambda scaling
    s = (np.random.default_rng(0).random((5, 4, 6, 6)) < 0.4).astype(np.float32)
    pool = tr.Sequential(tr.ann.AvgPool2d(2), conv2_ann.copy(), input_shape=(4, 6, 6))
    want = tr.Runtime(pool).run({"x": s}, ticks=1)["y"][-1]
    w = conv2.weight * lam["conv2"] / lam["conv1"]
    folded = tr.Sequential(tr.ann.Conv2d(4, 6, (6, 6), stride=2, padding=2, weight=w,
                                         bias=conv2.bias * lam["conv2"]), input_shape=(4, 6, 6))
    got = tr.Runtime(folded).run({"x": s}, ticks=1)["y"][-1]
    assert np.allclose(got, want, atol=1e-5)
    out = _run(snn, x, 32)
    assert (out.argmax(1) == y).mean() >= m.accuracy(x, y) - 0.03


def test_avgpool_before_dense_folds_by_the_adjoint():
    g = tr.Graph(name="pool-dense")
    h = g.input("x", (2, 4, 4))
    h = g.chain(h, tr.ann.Conv2d(2, 3, 3, padding=1, seed=1), tr.ann.ReLU(), tr.ann.AvgPool2d(3, stride=1, padding=1),
                tr.ann.Flatten(), tr.ann.Dense(48, 5, seed=2))
    g.output("y", h)
    x = np.random.default_rng(1).random((30, 2, 4, 4)).astype(np.float32)
    snn = tr.convert(g, {"x": x}, T=4, method="max", per_channel=False)
    lam = snn.metadata["conversion"]["lambda"]["conv1"]
    w = snn["dense1"].weight * 1.0 / lam  # readout: lambda_out = 1
    assert w.shape == (5, 48)
    s = (np.random.default_rng(2).random((4, 3, 4, 4)) < 0.5).astype(np.float32)
    ref = tr.Sequential(tr.ann.AvgPool2d(3, stride=1, padding=1), tr.ann.Flatten(), g["dense1"].copy(),
                        input_shape=(3, 4, 4))
    want = tr.Runtime(ref).run({"x": s}, ticks=1)["y"][-1]
    assert np.allclose(s.reshape(4, -1) @ w.T + g["dense1"].bias, want, atol=1e-5)


def test_batchnorm_is_folded_before_conversion():
    m, x, _ = trained_mlp()
    ann = m.to_graph()
    g = tr.Graph(name="bn")
    h = g.input("x", (16,))
    rng = np.random.default_rng(0)
    bn = tr.ann.BatchNorm(24, weight=rng.uniform(0.5, 2, 24), bias=rng.standard_normal(24) * 0.1,
                          running_mean=rng.standard_normal(24) * 0.1, running_var=rng.uniform(0.5, 2, 24))
    h = g.chain(h, ann["dense1"].copy(), bn, tr.ann.ReLU(), ann["dense2"].copy(), tr.ann.ReLU(), ann["dense3"].copy())
    g.output("y", h)
    scale, shift = bn.scale_shift()
    folded = tr.Sequential(tr.ann.Dense(16, 24, weight=ann["dense1"].weight * scale[:, None],
                                        bias=ann["dense1"].bias * scale + shift), tr.ann.ReLU(),
                           ann["dense2"].copy(), tr.ann.ReLU(), ann["dense3"].copy(), input_shape=(16,))
    a = tr.convert(g, {"x": x}, T=8)
    b = tr.convert(folded, {"x": x}, T=8)
    assert not any(type(e.node) is tr.ann.BatchNorm for e in a.entries.values())
    assert np.allclose(_run(a, x, 8), _run(b, x, 8), atol=1e-5)


def _maxpool_net(pool):
    g = tr.Graph(name="mp")
    h = g.input("x", (1, 6, 6))
    h = g.chain(h, tr.ann.Conv2d(1, 3, 3, padding=1, seed=1), tr.ann.ReLU(), pool,
                tr.ann.Conv2d(3, 4, 3, padding=1, seed=2), tr.ann.ReLU(), tr.ann.Flatten(), tr.ann.Dense(36, 3, seed=3))
    g.output("y", h)
    return g


def test_maxpool_strategies():
    x = np.random.default_rng(3).random((20, 1, 6, 6)).astype(np.float32)
    with pytest.raises(tr.GraphError, match=r"`maxpool1` \(ann.MaxPool2d\) feeds spiking layer `conv2`.*maxpool='avg'"):
        tr.convert(_maxpool_net(tr.ann.MaxPool2d(2)), {"x": x}, T=8, maxpool="error")
    viaavg = tr.convert(_maxpool_net(tr.ann.MaxPool2d(2)), {"x": x}, T=8, maxpool="avg")
    direct = tr.convert(_maxpool_net(tr.ann.AvgPool2d(2)), {"x": x}, T=8)
    assert np.allclose(_run(viaavg, x, 8), _run(direct, x, 8))
    # on the ANN side (before the spiking range) max pooling stays as it is
    hyb = tr.convert(_maxpool_net(tr.ann.MaxPool2d(2)), {"x": x}, T=8, layers=["conv2", "dense1"], maxpool="error")
    assert type(hyb["maxpool1"]) is tr.ann.MaxPool2d


def test_trailing_non_spiking_activation_stays_ann_after_the_readout():
    m, x, _ = trained_mlp()
    g = tr.Sequential(*[e.node.copy() for n, e in m.to_graph().entries.items() if n != "x"], tr.ann.Sigmoid(),
                      input_shape=(16,))
    snn = tr.convert(g, {"x": x}, T=16)
    assert type(snn["sigmoid1"]) is tr.ann.Sigmoid and snn.entries["sigmoid1"].inputs == ["dense3_readout"]


def test_converted_graph_saves_and_loads(tmp_path):
    m, x, _ = trained_mlp()
    snn = tr.convert(m.to_graph(), {"x": x}, T=8)
    back = tr.load(tr.save(snn, tmp_path / "snn.tnr"))
    assert back.metadata["conversion"]["T"] == 8
    assert np.array_equal(_run(back, x, 8), _run(snn, x, 8))


def test_per_channel_balancing_on_a_cnn_and_activation_order_error():
    m, x, y = trained_cnn()
    ann = m.to_graph()
    snn = tr.convert(ann, {"x": x}, T=128, method="max", per_channel=True)
    lam = snn.metadata["conversion"]["lambda"]
    assert np.asarray(lam["conv1"]).shape == (4, 1, 1) and np.asarray(lam["conv2"]).shape == (6, 1, 1)
    ref = m.predict(x)
    assert np.abs(_run(snn, x, 128) - ref).mean() < 0.05 * np.abs(ref).mean()
    g = tr.Sequential(tr.ann.Conv2d(1, 2, 3), tr.ann.MaxPool2d(2), tr.ann.ReLU(), tr.ann.Flatten(),
                      tr.ann.Dense(8, 2), input_shape=(1, 6, 6))
    with pytest.raises(tr.GraphError, match=r"`relu1` \(ann.ReLU\) follows `maxpool1`.*right after the weight layer"):
        tr.convert(g, {"x": x})
