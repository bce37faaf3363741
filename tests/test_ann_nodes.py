"""ANN nodes on the reference backend against hand-computed values."""
import numpy as np
import pytest

import tianrt as tr


def run_once(node, x, shape=None):
    """Build input -> node -> output, present x at tick 0, return the output value."""
    x = np.asarray(x, np.float32)
    g = tr.Graph()
    h = g.add(node, g.input("x", shape or x.shape))
    g.output("y", h)
    out = tr.Runtime(g).step({"x": x})
    return out["y"]


def test_dense_hand_values():
    w = [[1, 2, 3], [0, -1, 0.5]]
    y = run_once(tr.ann.Dense(3, 2, weight=w, bias=[0.5, -1]), [1, 1, 2])
    np.testing.assert_allclose(y, [1 + 2 + 6 + 0.5, -1 + 1 - 1])


def test_dense_batch_axis():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    y = run_once(tr.ann.Dense(3, 2, weight=w), x, shape=(3,))
    np.testing.assert_allclose(y, [[0, 3], [2, 5]])


def naive_conv(x, w, b, stride, pad):
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((o, ho, wo))
    for oc in range(o):
        for i in range(ho):
            for j in range(wo):
                y[oc, i, j] = np.sum(xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw] * w[oc]) + b[oc]
    return y


def test_conv2d_hand_values():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3)
    w = np.zeros((1, 1, 2, 2), np.float32)
    w[0, 0] = [[1, 0], [0, 1]]  # x[i,j] + x[i+1,j+1]
    y = run_once(tr.ann.Conv2d(1, 1, 2, weight=w, bias=[1]), x)
    np.testing.assert_allclose(y, [[[0 + 4 + 1, 1 + 5 + 1], [3 + 7 + 1, 4 + 8 + 1]]])


@pytest.mark.parametrize("stride,pad", [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_conv2d_matches_naive_loops(stride, pad):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 7, 6)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    y = run_once(tr.ann.Conv2d(3, 4, 3, stride=stride, padding=pad, weight=w, bias=b), x)
    np.testing.assert_allclose(y, naive_conv(x, w, b, stride, pad), rtol=1e-5, atol=1e-5)


def test_pools_hand_values():
    x = np.array([[[1, 2, 5, 6], [3, 4, 7, 8], [-1, -2, 0, 0], [-3, -4, 0, 4]]], np.float32)
    np.testing.assert_allclose(run_once(tr.ann.MaxPool2d(2), x), [[[4, 8], [-1, 4]]])
    np.testing.assert_allclose(run_once(tr.ann.AvgPool2d(2), x), [[[2.5, 6.5], [-2.5, 1]]])
    np.testing.assert_allclose(run_once(tr.ann.GlobalAvgPool2d(), x), [x.mean()])
    # padding: max pads with -inf, avg counts zero padding (PyTorch count_include_pad)
    y = run_once(tr.ann.MaxPool2d(2, stride=2, padding=1), -np.ones((1, 2, 2), np.float32))
    np.testing.assert_allclose(y, -np.ones((1, 2, 2)))
    y = run_once(tr.ann.AvgPool2d(2, stride=2, padding=1), np.ones((1, 2, 2), np.float32))
    np.testing.assert_allclose(y, np.full((1, 2, 2), 0.25))


def test_activations_hand_values():
    x = [-2.0, -0.5, 0.0, 0.5, 2.0]
    np.testing.assert_allclose(run_once(tr.ann.ReLU(), x), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(run_once(tr.ann.ClippedReLU(max_value=1.0), x), [0, 0, 0, 0.5, 1])
    np.testing.assert_allclose(run_once(tr.ann.Sigmoid(), [0.0, np.log(3)]), [0.5, 0.75], rtol=1e-6)
    np.testing.assert_allclose(run_once(tr.ann.Tanh(), [0.0, np.log(2)]), [0, 0.6], rtol=1e-6)


def test_flatten_add_concat():
    g = tr.Graph()
    a = g.input("a", (2, 1, 2))
    b = g.input("b", (4,))
    f = g.add(tr.ann.Flatten(), a)
    g.output("sum", g.add(tr.ann.Add(), f, b))
    g.output("cat", g.add(tr.ann.Concat(), f, b))
    out = tr.Runtime(g).step({"a": [[[1, 2]], [[3, 4]]], "b": [10, 20, 30, 40]})
    np.testing.assert_allclose(out["sum"], [11, 22, 33, 44])
    np.testing.assert_allclose(out["cat"], [1, 2, 3, 4, 10, 20, 30, 40])


def test_batchnorm_hand_values_and_folding():
    bn = tr.ann.BatchNorm(2, weight=[2, 1], bias=[0, 1], running_mean=[1, 0], running_var=[4, 1], eps=0.0)
    np.testing.assert_allclose(run_once(bn, [[3.0], [5.0]]), [[2.0], [6.0]])
    # folded into the preceding Dense at build: same outputs, BN gone from the plan
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 3)).astype(np.float32)
    g = tr.Graph()
    h = g.add(tr.ann.Dense(3, 2, weight=w), g.input("x", (3,)))
    g.output("y", g.add(bn.copy(), h))
    plan = g.build()
    assert [e.node.op for e in plan.entries] == ["graph.Input", "ann.Dense"]
    x = rng.normal(size=3).astype(np.float32)
    pre = w @ x
    want = (pre - [1, 0]) / np.sqrt([4, 1]) * [2, 1] + [0, 1]
    np.testing.assert_allclose(tr.Runtime(g).step({"x": x})["y"], want, rtol=1e-5)


def test_batchnorm_not_folded_when_layer_feeds_two_nodes():
    g = tr.Graph()
    h = g.add(tr.ann.Dense(3, 2), g.input("x", (3,)))
    g.output("bn", g.add(tr.ann.BatchNorm(2, running_mean=[1, 1]), h))
    g.output("raw", h)
    assert "ann.BatchNorm" in [e.node.op for e in g.build().entries]
    out = tr.Runtime(g).step({"x": [1, 2, 3]})
    np.testing.assert_allclose(out["bn"], (out["raw"] - 1) / np.sqrt(1 + 1e-5), rtol=1e-5)


def test_ann_runs_only_on_new_values():
    g = tr.Graph()
    g.output("y", g.add(tr.ann.ReLU(), g.input("x", (2,))))
    rt = tr.Runtime(g)
    assert "y" in rt.step({"x": [1, -1]})
    assert rt.step() == {}  # no new value, no event
    outs = rt.run({"x": np.array([[1, 2], [3, 4], [5, 6]], np.float32)})
    assert outs.ticks["y"].tolist() == [2, 3, 4]


def test_weight_shape_errors_say_the_expected_layout():
    with pytest.raises(tr.ShapeError, match=r"expected \(2, 3\)"):
        tr.ann.Dense(3, 2, weight=np.zeros((3, 2)))
    with pytest.raises(tr.ShapeError, match=r"expected \(4, 1, 3, 3\)"):
        tr.ann.Conv2d(1, 4, 3, weight=np.zeros((4, 3, 3)))
    with pytest.raises(tr.ShapeError, match="NaN"):
        tr.ann.Dense(2, 1, weight=[[np.nan, 0]])
