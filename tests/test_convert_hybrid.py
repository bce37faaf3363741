"""tr.convert with layers=: hybrid graphs (an ANN prefix and/or suffix), bad input, and graphs
built from PyTorch-layout numpy arrays."""
import numpy as np
import pytest

import tianrt as tr

from convert_fixtures import trained_cnn, trained_mlp


def _run(g, x, T):
    return tr.Runtime(g).run({"x": x}, ticks=T)["y"][-1]


def test_first_layer_kept_ann_inserts_the_encoder():
    m, x, y = trained_mlp()
    ann = m.to_graph()
    for layers in (slice(1, None), ["dense2", "dense3"]):
        hyb = tr.convert(ann, {"x": x}, T=16, layers=layers)
        ops = [e.node.op for e in hyb.entries.values()]
        assert ops == ["graph.Input", "ann.Dense", "ann.ReLU", "bridge.DirectCurrent", "snn.Dense", "snn.IF",
                       "snn.Dense", "bridge.MembraneReadout"]
        assert np.array_equal(hyb["dense1"].weight, ann["dense1"].weight)
        assert hyb.metadata["conversion"]["ann_layers"] == ["dense1"]
        assert (_run(hyb, x, 16).argmax(1) == y).mean() >= m.accuracy(x, y) - 0.03
    rate = tr.convert(ann, {"x": x}, T=16, layers=slice(1, None), encoding="rate")
    assert type(rate["encoder"]) is tr.bridge.RateEncoder and rate.entries["encoder"].inputs == ["relu1"]
    h1 = np.maximum(x @ ann["dense1"].weight.T + ann["dense1"].bias, 0)
    assert rate["encoder"].scale == pytest.approx(float(np.percentile(h1[h1 > 0], 99.9)), rel=1e-5)


def test_hybrid_cnn_first_conv_ann():
    m, x, y = trained_cnn()
    hyb = tr.convert(m.to_graph(), {"x": x}, T=32, layers=slice(1, None))
    assert type(hyb["conv1"]) is tr.ann.Conv2d and type(hyb["conv2"]) is tr.snn.Conv2d
    assert type(hyb["avgpool1"]) is tr.ann.AvgPool2d  # pooling before the encoder stays ANN
    assert (_run(hyb, x, 32).argmax(1) == y).mean() >= m.accuracy(x, y) - 0.03


def test_middle_range_decodes_rates_back_into_the_ann():
    m, x, _ = trained_mlp()
    ann = m.to_graph()
    mid = tr.convert(ann, {"x": x}, T=64, layers=["dense2"])
    ops = [e.node.op for e in mid.entries.values()]
    assert ops == ["graph.Input", "ann.Dense", "ann.ReLU", "bridge.DirectCurrent", "snn.Dense", "snn.IF",
                   "bridge.SpikeCount", "ann.Dense"]
    assert mid["dense2_rate"].rate and mid["dense2_rate"].window == 64
    lam = mid.metadata["conversion"]["lambda"]["dense2"]
    assert np.allclose(mid["dense3"].weight, ann["dense3"].weight * lam, rtol=1e-5)
    out = _run(mid, x, 64)
    ref = m.predict(x)
    assert np.abs(out - ref).mean() < 0.05 * np.abs(ref).mean()


def test_layer_selection_errors():
    m, x, _ = trained_mlp()
    ann = m.to_graph()
    with pytest.raises(tr.GraphError, match=r"consecutive weight layers.*dense1, dense3"):
        tr.convert(ann, {"x": x}, layers=["dense1", "dense3"])
    with pytest.raises(tr.GraphError, match=r"`relu1`, which is not a Dense/Conv2d node; weight layers: dense1, dense2, dense3"):
        tr.convert(ann, {"x": x}, layers=["relu1"])
    with pytest.raises(tr.GraphError, match="selects no weight layer"):
        tr.convert(ann, {"x": x}, layers=slice(3, None))


def _sigmoid_mlp():
    return tr.Sequential(tr.ann.Dense(4, 6, seed=1), tr.ann.Sigmoid(), tr.ann.Dense(6, 6, seed=2), tr.ann.ReLU(),
                         tr.ann.Dense(6, 2, seed=3), input_shape=(4,))


def test_sigmoid_in_the_middle_names_the_layer_and_the_options():
    x = np.random.default_rng(0).random((10, 4)).astype(np.float32)
    with pytest.raises(tr.GraphError, match=r"`sigmoid1` \(ann.Sigmoid, after `dense1`\) has no spiking "
                                            r"equivalent.*layers=.*ReLU/ClippedReLU"):
        tr.convert(_sigmoid_mlp(), {"x": x})
    # keeping it on the ANN side works
    hyb = tr.convert(_sigmoid_mlp(), {"x": x}, T=8, layers=slice(1, None))
    assert type(hyb["sigmoid1"]) is tr.ann.Sigmoid


def test_bad_calibration_and_T():
    m, x, _ = trained_mlp()
    ann = m.to_graph()
    with pytest.raises(tr.InputError, match=r"calibration data for `x` has shape \(5, 8\), expected \(N, 16\)"):
        tr.convert(ann, {"x": x[:5, :8]})
    with pytest.raises(tr.InputError, match=r"calibration must be a dict \{'x': X\}"):
        tr.convert(ann, {"pixels": x})
    with pytest.raises(tr.InputError, match="NaN"):
        tr.convert(ann, {"x": np.full((2, 16), np.nan)})
    for bad in (0, -3, 2.5, True):
        with pytest.raises(tr.GraphError, match="T must be an integer number of ticks >= 1"):
            tr.convert(ann, {"x": x}, T=bad)
    with pytest.raises(tr.GraphError, match="method must be one of"):
        tr.convert(ann, {"x": x}, method="mean")
    snn = tr.convert(ann, {"x": x}, T=4)
    with pytest.raises(tr.GraphError, match="`encoder` is a bridge.DirectCurrent node"):
        tr.convert(snn, {"x": x})


def test_branching_graphs_are_refused_with_the_node_named():
    g = tr.Graph()
    h = g.input("x", (4,))
    a = g.add(tr.ann.Dense(4, 4), h)
    b = g.add(tr.ann.ReLU(), a)
    g.output("y", g.add(tr.ann.Add(), a, b))
    with pytest.raises(tr.GraphError, match="`dense1` feeds 2 nodes"):
        tr.convert(g, {"x": np.ones((2, 4))})


def test_graph_from_pytorch_layout_numpy_arrays():
    """The docs' recipe: weights exported from PyTorch as numpy arrays, (out, in[, kh, kw])."""
    rng = np.random.default_rng(4)
    w1, b1 = rng.standard_normal((4, 1, 3, 3)).astype(np.float32) * 0.5, rng.standard_normal(4).astype(np.float32) * 0.1
    w2, b2 = rng.standard_normal((3, 4 * 3 * 3)).astype(np.float32) * 0.3, rng.standard_normal(3).astype(np.float32) * 0.1
    ann = tr.Sequential(tr.ann.Conv2d(1, 4, 3, padding=1, weight=w1, bias=b1), tr.ann.ReLU(), tr.ann.AvgPool2d(2),
                        tr.ann.Flatten(), tr.ann.Dense(36, 3, weight=w2, bias=b2), input_shape=(1, 6, 6))
    x = rng.random((8, 1, 6, 6)).astype(np.float32)
    # what torch.nn.Conv2d(padding=1) -> ReLU -> AvgPool2d(2) -> Flatten -> Linear computes
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((8, 4, 6, 6))
    for i in range(6):
        for j in range(6):
            conv[:, :, i, j] = np.einsum("bcuv,ocuv->bo", xp[:, :, i:i + 3, j:j + 3], w1) + b1
    pooled = np.maximum(conv, 0).reshape(8, 4, 3, 2, 3, 2).mean(axis=(3, 5))
    want = pooled.reshape(8, -1) @ w2.T + b2
    assert np.allclose(tr.Runtime(ann).run({"x": x}, ticks=1)["y"][-1], want, atol=1e-5)
    snn = tr.convert(ann, {"x": x}, T=256, method="max")
    assert np.abs(_run(snn, x, 256) - want).max() < 0.05 * np.abs(want).max()


def test_rate_encoding_refuses_negative_inputs():
    m, x, _ = trained_mlp()
    with pytest.raises(tr.GraphError, match=r"encoding='rate' cannot represent the negative values.*`dense1`.*"
                                            r"encoding='direct'"):
        tr.convert(m.to_graph(), {"x": x - 0.5}, encoding="rate")
    tr.convert(m.to_graph(), {"x": x - 0.5}, encoding="direct")  # a current can be negative
