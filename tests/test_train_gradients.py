"""Backward passes of tr.train layers and losses against central finite differences."""
import numpy as np
import pytest

from tianrt import train as T


def _check_layer(layer, in_shape, batch=3, seed=0, eps=1e-3, tol=2e-3, x=None):
    rng = np.random.default_rng(seed)
    layer.init(in_shape, rng)
    x = rng.standard_normal((batch,) + in_shape) if x is None else x
    out = layer.forward(x, train=True)
    r = rng.standard_normal(out.shape)
    gx = layer.backward(r)

    def f(xx):
        return float((layer.forward(xx, train=True) * r).sum())

    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        num[i] = (f(x + d) - f(x - d)) / (2 * eps)
    assert np.allclose(gx, num, atol=tol, rtol=tol), np.abs(gx - num).max()
    # parameters: perturb in place (float64 copies so that the difference is exact enough)
    layer.forward(x, train=True)
    layer.backward(r)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    for name, p in layer.params.items():
        orig = p.copy()
        layer.params[name] = p.astype(np.float64)
        num = np.zeros(p.shape)
        for i in np.ndindex(p.shape):
            layer.params[name][i] = orig[i] + eps
            fp = f(x)
            layer.params[name][i] = orig[i] - eps
            fm = f(x)
            layer.params[name][i] = orig[i]
            num[i] = (fp - fm) / (2 * eps)
        layer.params[name] = orig
        assert np.allclose(grads[name], num, atol=tol, rtol=tol), (name, np.abs(grads[name] - num).max())


def test_dense_gradients():
    _check_layer(T.Dense(5, 4), (5,))


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1)])
def test_conv2d_gradients(stride, padding):
    _check_layer(T.Conv2d(2, 3, 3, stride=stride, padding=padding), (2, 5, 5), batch=2)


def test_conv2d_rectangular_kernel_gradients():
    _check_layer(T.Conv2d(1, 2, (2, 3), stride=(1, 2)), (1, 4, 6), batch=2)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 1, 1), (2, 1, 0)])
def test_avgpool_gradients(k, s, p):
    _check_layer(T.AvgPool2d(k, s, p), (2, 5, 5), batch=2)


def test_maxpool_gradients():
    # distinct values so that the max of each window is unique and the function smooth nearby
    x = np.random.default_rng(1).permutation(2 * 2 * 36).reshape(2, 2, 6, 6) / 10.0
    _check_layer(T.MaxPool2d(2), (2, 6, 6), batch=2, x=x)


def test_global_avgpool_flatten_gradients():
    _check_layer(T.GlobalAvgPool2d(), (3, 4, 4))
    _check_layer(T.Flatten(), (2, 3, 3))


@pytest.mark.parametrize("layer", [T.ReLU(), T.Sigmoid(), T.Tanh(), T.ClippedReLU(0.8),
                                   T.ClippedReLU(0.8, trainable=True)])
def test_activation_gradients(layer):
    # keep inputs away from the kinks at 0 and max_value
    x = np.random.default_rng(2).choice([-1, 1], size=(3, 7)) * np.random.default_rng(3).uniform(0.05, 0.35, (3, 7))
    x = x + np.where(np.random.default_rng(4).random((3, 7)) > 0.5, 1.0, 0.0)
    _check_layer(layer, (7,), x=x)


@pytest.mark.parametrize("shape", [(4,), (3, 3, 3)])
def test_batchnorm_training_gradients(shape):
    bn = T.BatchNorm(shape[0])
    rng = np.random.default_rng(5)
    bn.init(shape, rng)
    bn.params["weight"][...] = rng.uniform(0.5, 1.5, shape[0])
    bn.params["bias"][...] = rng.standard_normal(shape[0])
    _check_layer(bn, shape, batch=5)


def test_cross_entropy_and_mse_gradients():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((4, 5))
    y = np.array([0, 3, 1, 4])
    for loss in (T.CrossEntropyLoss(), T.CrossEntropyLoss(label_smoothing=0.1), T.MSELoss()):
        _, g = loss(z, y)
        num = np.zeros_like(z)
        for i in np.ndindex(z.shape):
            d = np.zeros_like(z)
            d[i] = 1e-5
            num[i] = (loss(z + d, y)[0] - loss(z - d, y)[0]) / 2e-5
        assert np.allclose(g, num, atol=1e-5), type(loss).__name__


def test_whole_model_gradient_matches_finite_differences():
    m = T.Sequential(T.Conv2d(1, 2, 3, padding=1), T.ReLU(), T.AvgPool2d(2), T.Flatten(), T.Dense(8, 3),
                     input_shape=(1, 4, 4), seed=3)
    rng = np.random.default_rng(7)
    x = rng.random((2, 1, 4, 4))
    y = np.array([0, 2])
    loss = T.CrossEntropyLoss()
    m.backward(loss(m.forward(x, train=True), y)[1])
    w = m.layers[0].params["weight"]
    g = m.layers[0].grads["weight"].copy()
    i = (1, 0, 2, 1)
    orig = float(w[i])
    m.layers[0].params["weight"] = w.astype(np.float64)
    m.layers[0].params["weight"][i] = orig + 1e-4
    lp = loss(m.forward(x), y)[0]
    m.layers[0].params["weight"][i] = orig - 1e-4
    lm = loss(m.forward(x), y)[0]
    assert abs(g[i] - (lp - lm) / 2e-4) < 1e-4
