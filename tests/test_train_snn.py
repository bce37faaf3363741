"""Surrogate-gradient BPTT (tr.train.SNN): the trainer's forward pass is the runtime's,
gradients equal finite differences on the smooth network, a hand-derived gradient, the
surrogates, truncation, and a seeded train-and-evaluate smoke test."""
import numpy as np
import pytest

import tianrt as tr
from tianrt import train as T


def _net(neuron="alif", recurrent=True, reset="subtract", inp="tensor", loss="mean",
         surrogate="fast_sigmoid", seed=1):
    return T.SNN(T.SpikingLayer(4, 6, neuron=neuron, recurrent=recurrent, reset=reset,
                                surrogate=surrogate, init_gain=2.0),
                 T.SpikingLayer(6, 5, neuron="lif", surrogate=surrogate, init_gain=2.0),
                 T.Readout(5, 3, beta=0.8), n_in=4, input=inp, gain=0.7, loss=loss, seed=seed)


def _x(inp, n=3, ticks=16, seed=0):
    rng = np.random.default_rng(seed)
    if inp == "spike":
        return (rng.random((n, ticks, 4)) < 0.4).astype(np.float32)
    return rng.random((n, ticks, 4)).astype(np.float32)


@pytest.mark.parametrize("neuron", ["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("inp", ["spike", "tensor"])
def test_forward_equals_reference_runtime(neuron, recurrent, reset, inp):
    net = _net(neuron, recurrent, reset, inp)
    x = _x(inp, n=4, ticks=24)
    y = net.forward(x)
    spikes = net.spikes(x)
    assert 0.02 < spikes[0].mean() < 0.9  # the comparison is not vacuous
    g = net.to_graph()
    g.output("s1", g.handle(f"{neuron}1"))
    out = tr.Runtime(g, backend="reference").run({"x": x.transpose(1, 0, 2)})
    assert np.array_equal(out["y"], y)
    assert np.array_equal(out["s1"], spikes[0])


def test_graph_saves_and_runs(tmp_path):
    net = _net()
    x = _x("tensor")
    tr.save(net.to_graph(), tmp_path / "snn.tnr")
    out = tr.Runtime(tr.load(tmp_path / "snn.tnr"), backend="reference").run({"x": x.transpose(1, 0, 2)})
    assert np.array_equal(out["y"], net.forward(x))


def _as64(net):
    for layer in net.layers:
        for k in layer.params:
            layer.params[k] = layer.params[k].astype(np.float64)


def _fd_check(net, x, y, n_probe=4, eps=1e-6, seed=0):
    """Worst relative error between BPTT's gradient and central differences (smooth mode)."""
    rng = np.random.default_rng(seed)
    _as64(net)
    x = np.asarray(x, np.float64)
    val, g = net.loss_and_grad(net.forward(x, train=True, smooth=True), y)
    gx = net.backward(g)
    loss = lambda: net.loss_and_grad(net.forward(x, smooth=True), y)[0]  # noqa: E731
    worst = 0.0
    for layer in net.layers:
        for k, p in layer.params.items():
            for _ in range(n_probe):
                i = tuple(int(rng.integers(0, s)) for s in p.shape)
                old = p[i]
                p[i] = old + eps
                lp = loss()
                p[i] = old - eps
                lm = loss()
                p[i] = old
                fd, an = (lp - lm) / (2 * eps), float(layer.grads[k][i])
                worst = max(worst, abs(fd - an) / (abs(fd) + abs(an) + 1e-7))
    # the gradient with respect to the input (through DirectCurrent's gain)
    for _ in range(n_probe):
        i = tuple(int(rng.integers(0, s)) for s in x.shape)
        old = x[i]
        x[i] = old + eps
        lp = net.loss_and_grad(net.forward(x, smooth=True), y)[0]
        x[i] = old - eps
        lm = net.loss_and_grad(net.forward(x, smooth=True), y)[0]
        x[i] = old
        fd, an = (lp - lm) / (2 * eps), float(gx[i])
        worst = max(worst, abs(fd - an) / (abs(fd) + abs(an) + 1e-7))
    return worst


@pytest.mark.parametrize("loss", ["mean", "max", "last", "per_tick"])
@pytest.mark.parametrize("neuron,reset", [("lif", "subtract"), ("alif", "subtract"), ("alif", "zero")])
@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "arctan"])
def test_gradients_match_finite_differences(loss, neuron, reset, surrogate):
    net = _net(neuron, True, reset, "tensor", loss, surrogate)
    x = _x("tensor", ticks=12)
    y = np.array([0, 1, 2]) if loss != "per_tick" else np.array([[0] * 6 + [1] * 6, [2] * 12, [-1] * 6 + [1] * 6])
    assert _fd_check(net, x, y) < 1e-4


def test_count_loss_gradient_matches_finite_differences():
    net = T.SNN(T.SpikingLayer(4, 6, neuron="alif", recurrent=True, init_gain=2.0),
                T.SpikingLayer(6, 3, surrogate="triangle", init_gain=2.0),
                n_in=4, input="tensor", loss="count", count_scale=0.5, seed=2)
    assert _fd_check(net, _x("tensor", ticks=10), np.array([0, 1, 2])) < 1e-4


def test_hand_derived_gradient_of_a_tiny_lif():
    """One LIF neuron, w = 0.8, two input spikes, beta = 0.5, threshold 1, L = z_1:
    u0 = 0.8 (no spike), v0 = 0.8, u1 = 0.5 * 0.8 + 0.8 = 1.2 (spike);
    dL/dw = s'(u1 - 1) (beta x0 (1 - s'(u0 - 1)) + x1), s'(x) = 5 / (1 + 10|x|)^2 (k = 10),
    s'(0.2) = s'(-0.2) = 5/9, so dL/dw = 5/9 (1/2 * 4/9 + 1) = 55/81."""
    layer = T.SpikingLayer(1, 1, beta=0.5, threshold=1.0, surrogate=T.FastSigmoid(10.0), weight=[[0.8]])
    layer.init(1, np.random.default_rng(0))
    z = layer.forward(np.ones((2, 1, 1), np.float32), train=True)
    assert z[:, 0, 0].tolist() == [0.0, 1.0]
    gx = layer.backward(np.array([[[0.0]], [[1.0]]]))
    assert layer.grads["weight"][0, 0] == pytest.approx(55 / 81, rel=1e-6)
    # dL/dx0 = s'(u1-1) beta w (1 - s'(u0-1)) = 5/9 * 0.4 * 4/9, dL/dx1 = 5/9 * 0.8
    assert gx[:, 0, 0] == pytest.approx([5 / 9 * 0.4 * 4 / 9, 5 / 9 * 0.8], rel=1e-6)
    layer.detach_reset = True  # the reset's own gradient (-s'(u0-1) x0) is dropped: 5/9 (1/2 + 1)
    layer.backward(np.array([[[0.0]], [[1.0]]]))
    assert layer.grads["weight"][0, 0] == pytest.approx(5 / 6, rel=1e-6)


@pytest.mark.parametrize("sur", [T.FastSigmoid(4.0), T.Arctan(2.0), T.Triangle(0.5)])
def test_surrogates_are_derivatives_of_their_primitives(sur):
    x = np.linspace(-3, 3, 60001)
    p, d = sur.primitive(x), sur.grad(x)
    assert p[0] < 0.1 and p[-1] > 0.9 and np.all(np.diff(p) >= 0)
    num = np.gradient(p, x)
    assert np.max(np.abs(num - d)) < 2e-3 * max(1.0, d.max())
    assert T.FastSigmoid().grad(0.0) == pytest.approx(5.0)  # k/2 at threshold


def test_truncated_bptt_cuts_the_state_gradient():
    net = _net("alif", True, loss="last")
    x = _x("tensor", ticks=12)
    y = np.array([0, 1, 2])
    out = net.forward(x, train=True)
    _, g = net.loss_and_grad(out, y)
    full = net.backward(g)
    same = net.backward(g, truncate=12)          # one chunk: nothing cut
    assert np.array_equal(full, same)
    cut = net.backward(g, truncate=4)             # loss at the last tick: only ticks 8..11 see it
    assert np.all(cut[:, :8] == 0) and np.any(cut[:, 8:] != 0)
    assert np.any(full[:, :8] != 0)


def _order_task(n, seed):
    """Class 0: group A then group B; class 1: B then A; class 2: C then C (order matters)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.random((n, 30, 12)) < 0.04).astype(np.float32)
    first, second = np.array([0, 1, 2]), np.array([1, 0, 2])
    for i in range(n):
        a, b = first[y[i]], second[y[i]]
        x[i, 2:12, a * 4:(a + 1) * 4] = np.maximum(x[i, 2:12, a * 4:(a + 1) * 4], rng.random((10, 4)) < 0.5)
        x[i, 16:26, b * 4:(b + 1) * 4] = np.maximum(x[i, 16:26, b * 4:(b + 1) * 4], rng.random((10, 4)) < 0.5)
    return x, y


def test_train_and_evaluate_smoke():
    """A recurrent ALIF network learns a temporal-order task in about a second: >= 90 %."""
    x, y = _order_task(300, 0)
    xt, yt = _order_task(200, 1)
    net = T.SNN(T.SpikingLayer(12, 32, neuron="alif", recurrent=True), T.Readout(32, 3, beta=0.9),
                n_in=12, input="spike", loss="mean", seed=0)
    before = net.accuracy(xt, yt)
    hist = net.fit(x, y, epochs=8, batch_size=32, optimizer=T.Adam(1e-2))
    acc = net.accuracy(xt, yt)
    assert acc >= 0.9 and acc > before + 0.3, (before, acc, hist["acc"])
    # deterministic: the same seed gives the same weights
    net2 = T.SNN(T.SpikingLayer(12, 32, neuron="alif", recurrent=True), T.Readout(32, 3, beta=0.9),
                 n_in=12, input="spike", loss="mean", seed=0)
    net2.fit(x, y, epochs=8, batch_size=32, optimizer=T.Adam(1e-2))
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(net.get_weights(), net2.get_weights()) for k in a)
    # the runtime classifies the test set exactly as the trainer does
    out = tr.Runtime(net.to_graph(), backend="reference").run({"x": xt[:50].transpose(1, 0, 2)})
    assert np.array_equal(out["y"].mean(0).argmax(1), net.predict(xt[:50]).argmax(1))


def test_readout_dropout_masks_each_example_for_all_ticks():
    """Readout(dropout=p) in training: the readout of the inputs times one mask per example
    (0 or 1 / (1 - p), about p of them 0), the gradients those of the masked inputs (the
    input gradient masked too); seeded; outside training the layer is untouched."""
    rng = np.random.default_rng(3)
    x = (rng.random((7, 5, 40)) < 0.3).astype(np.float32)
    drop = T.Readout(40, 3, beta=0.8, dropout=0.25)
    plain = T.Readout(40, 3, beta=0.8)
    drop.init(40, np.random.default_rng(0))
    plain.init(40, np.random.default_rng(0))
    assert np.array_equal(drop.forward(x), plain.forward(x))        # not training: no dropout
    y = drop.forward(x, train=True)
    mask = drop._mask
    assert set(np.unique(mask)) <= {0.0, np.float32(1 / 0.75)} and 0.15 < (mask == 0).mean() < 0.35
    np.testing.assert_allclose(y, plain.forward(x * mask[None], train=True), rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(y.shape)
    gx = drop.backward(g)
    gp = plain.backward(g)
    np.testing.assert_allclose(drop.grads["weight"], plain.grads["weight"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx, gp * mask[None], rtol=1e-6, atol=1e-9)
    again = T.Readout(40, 3, beta=0.8, dropout=0.25)
    again.init(40, np.random.default_rng(0))
    again.forward(x, train=True)
    assert np.array_equal(again._mask, mask)                         # seeded
    with pytest.raises(ValueError, match="dropout"):
        T.Readout(4, 2, dropout=1.0)


@pytest.mark.parametrize("loss", ["mean", "per_tick"])
@pytest.mark.parametrize("neuron,reset", [("lif", "subtract"), ("alif", "subtract"), ("alif", "zero")])
def test_time_constant_gradients_match_finite_differences(loss, neuron, reset):
    """train_tau: the gradients of the decays' logits (beta, rho per neuron, the readout's
    beta) equal central differences on the smooth network, beside the weights'."""
    rng = np.random.default_rng(3)
    net = T.SNN(T.SpikingLayer(4, 6, neuron=neuron, recurrent=True, reset=reset, init_gain=2.0, train_tau=True,
                               beta=rng.uniform(0.5, 0.95, 6), rho=rng.uniform(0.8, 0.99, 6)),
                T.SpikingLayer(6, 5, neuron="alif", init_gain=2.0, train_tau=True),
                T.Readout(5, 3, beta=rng.uniform(0.6, 0.9, 3), train_tau=True),
                n_in=4, input="tensor", gain=0.7, loss=loss, seed=1)
    names = {k for layer in net.layers for k in layer.params}
    assert {"beta_p", "rho_p"} <= names
    y = np.array([0, 1, 2]) if loss != "per_tick" else np.array([[0] * 6 + [1] * 6, [2] * 12, [-1] * 6 + [1] * 6])
    assert _fd_check(net, _x("tensor", ticks=12), y, n_probe=6) < 1e-4


def test_trained_time_constants_move_and_reach_the_graph(tmp_path):
    """A few steps of fit change the decays, they stay in (0, 1), and the saved graph's
    per-neuron beta/rho are the float32 values the trainer ran: its output is the trainer's."""
    net = T.SNN(T.SpikingLayer(4, 6, neuron="alif", recurrent=True, init_gain=2.0, train_tau=True),
                T.Readout(6, 3, beta=0.8, train_tau=True), n_in=4, input="tensor", loss="mean", seed=0)
    x = _x("tensor", n=12, ticks=16)
    y = np.arange(12) % 3
    net.fit(x, y, epochs=3, batch_size=4, optimizer=T.Adam(0.05))
    beta, rho = net.layers[0].beta, net.layers[0].rho
    assert len(np.unique(beta)) > 1 and len(np.unique(rho)) > 1
    assert np.all((beta > 0) & (beta < 1) & (rho > 0) & (rho < 1))
    tr.save(net.to_graph(), tmp_path / "tau.tnr")
    g = tr.load(tmp_path / "tau.tnr")
    assert np.array_equal(g["alif1"].beta, beta)
    out = tr.Runtime(g, backend="reference").run({"x": x.transpose(1, 0, 2)})
    assert np.array_equal(out["y"], net.forward(x))


def test_train_tau_needs_decays_inside_the_unit_interval():
    with pytest.raises(ValueError, match="beta must lie in"):
        T.SNN(T.SpikingLayer(4, 6, beta=1.0, train_tau=True), n_in=4, loss="count")


def test_rho_max_bounds_the_trained_adaptation_decay():
    """SpikingLayer(train_tau=True, rho_max=r): the initial rho above r is clipped, and after every
    optimiser step (``constrain``) every rho stays <= r while the others still move."""
    rho0 = np.linspace(0.9, 0.995, 6)
    layer = T.SpikingLayer(4, 6, neuron="alif", recurrent=True, init_gain=2.0, rho=rho0, train_tau=True,
                           rho_max=0.98)
    net = T.SNN(layer, T.Readout(6, 3, beta=0.8), n_in=4, input="tensor", loss="mean", seed=0)
    assert layer.rho.max() <= np.float32(0.98) * (1 + 1e-6) and np.allclose(layer.rho[:4], rho0[:4], atol=1e-6)
    x = _x("tensor", n=12, ticks=16)
    net.fit(x, np.arange(12) % 3, epochs=3, batch_size=4, optimizer=T.Adam(0.3))
    assert layer.rho.max() <= np.float32(0.98) * (1 + 1e-6) and not np.allclose(layer.rho[:4], rho0[:4], atol=1e-3)
    with pytest.raises(ValueError, match="rho_max"):
        T.SpikingLayer(4, 6, neuron="alif", rho_max=0.98)
    with pytest.raises(ValueError, match="rho_max"):
        T.SpikingLayer(4, 6, neuron="alif", train_tau=True, rho_max=1.0)


def test_class_weight_is_for_the_per_tick_loss_and_one_per_class():
    """``class_weight`` weighs the per-tick loss's ticks; with another loss, or a weight per
    class missing or not positive, the SNN refuses it and says what would fit."""
    layers = lambda: (T.SpikingLayer(4, 6, init_gain=2.0), T.Readout(6, 3, beta=0.8))
    with pytest.raises(ValueError, match="per_tick"):
        T.SNN(*layers(), n_in=4, input="tensor", loss="mean", class_weight=[1.0, 1.0, 1.0])
    for bad in ([1.0, 1.0], [1.0, 0.0, 1.0]):
        with pytest.raises(ValueError, match="3 positive weights"):
            T.SNN(*layers(), n_in=4, input="tensor", loss="per_tick", class_weight=bad)
    net = T.SNN(*layers(), n_in=4, input="tensor", loss="per_tick", class_weight=[1.0, 2.0, 1.0])
    y = np.random.default_rng(0).normal(0, 1, (5, 2, 3))
    only_c1 = np.array([[1] * 5, [-1] * 5])
    plain = T.SNN(*layers(), n_in=4, input="tensor", loss="per_tick")
    # one class taught: its weight cancels in the normalisation
    assert net.loss_and_grad(y, only_c1)[0] == pytest.approx(plain.loss_and_grad(y, only_c1)[0])
