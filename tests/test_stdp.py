"""STDP (tr.train.STDP): weight updates against hand-computed traces, bounds, normalisation,
and the rule running in the reference runtime's tick loop."""
import numpy as np
import pytest

import tianrt as tr
from tianrt import train as T


def test_pair_updates_match_hand_computed_traces():
    """One pre, one post neuron, hard bounds, lr 1: pre spikes at tick 0, post at tick 2,
    pre again at tick 3. lambda = exp(-1/2).
    tick 0: x_pre = 1;                      no post spike: dW = -a_minus * x_post * 1 = 0
    tick 1: x_pre = l
    tick 2: x_pre = l^2, x_post = 1:        dW = +a_plus * l^2
    tick 3: x_pre = l^3 + 1, x_post = l:    dW = -a_minus * l"""
    rule = T.STDP(lr=1.0, a_plus=0.5, a_minus=0.25, tau_pre=2.0, tau_post=2.0, w_min=-10, w_max=10, soft=False)
    w = np.zeros((1, 1), np.float64)
    pre, post = [1, 0, 0, 1], [0, 0, 1, 0]
    seen = []
    for a, b in zip(pre, post):
        rule.step(w, [[a]], [[b]])
        seen.append((rule.x_pre[0, 0], rule.x_post[0, 0], w[0, 0]))
    lam = np.exp(-0.5)
    assert seen[0] == pytest.approx((1.0, 0.0, 0.0))
    assert seen[1] == pytest.approx((lam, 0.0, 0.0))
    assert seen[2] == pytest.approx((lam ** 2, 1.0, 0.5 * lam ** 2))
    assert seen[3] == pytest.approx((lam ** 3 + 1, lam, 0.5 * lam ** 2 - 0.25 * lam))


def test_same_tick_pair_and_soft_bounds_and_batch():
    rule = T.STDP(lr=0.1, a_plus=1.0, a_minus=1.0, w_min=0.0, w_max=1.0, soft=True)
    w = np.array([[0.25, 0.75]])
    # batch of two: sample 0 pre 0 and post fire together; sample 1 only pre 1 fires
    rule.step(w, [[1, 0], [0, 1]], [[1], [0]])
    # w00: +0.1 * (1 * (1 - 0.25)) - 0.1 * (1 * (0.25 - 0)) = +0.05;  w01: no pair with a post trace
    assert w[0, 0] == pytest.approx(0.30)
    assert w[0, 1] == pytest.approx(0.75)


def test_hard_bounds_and_row_normalisation():
    rule = T.STDP(lr=1.0, a_plus=5.0, a_minus=0.0, w_min=0.0, w_max=1.0, soft=False)
    w = np.array([[0.5, 0.9], [0.1, 0.2]])
    rule.step(w, [[1, 1]], [[1, 0]])
    assert w[0].tolist() == [1.0, 1.0] and w[1].tolist() == pytest.approx([0.1, 0.2])
    rule = T.STDP(norm=2.0, soft=False, lr=1e-9)
    w = np.array([[0.5, 0.5, 1.0], [0.2, 0.2, 0.1]])
    rule.step(w, [[0, 0, 0]], [[0, 0]])
    assert w.sum(1) == pytest.approx([2.0, 2.0]) and w[0, 2] == pytest.approx(1.0)


def test_rule_runs_in_the_reference_tick_loop():
    """STDP.run updates the snn.Dense the reference runtime reads, tick by tick: the same
    weights as stepping the rule by hand on the recorded spikes."""
    g = tr.Graph()
    x = g.input("x", (3,), domain="spike")
    s = g.add(tr.snn.LIF(beta=0.9, threshold=0.5),
              g.add(tr.snn.Dense(3, 2, weight=np.full((2, 3), 0.3, np.float32)), x, name="syn"))
    g.output("pre", x)
    g.output("post", s)
    spikes = (np.random.default_rng(0).random((40, 1, 3)) < 0.4).astype(np.float32)
    rule = T.STDP(lr=0.05, tau_pre=5, tau_post=5, w_max=1.0)
    rt = tr.Runtime(g, backend="reference")
    post = rule.run(rt, "syn", {"x": spikes}, pre="pre", post="post")
    learned = g["syn"].weight.copy()
    assert not np.allclose(learned, 0.3) and post.sum() > 0
    # replay: the same rule on the recorded spikes, with the weights changing as it goes
    g2 = tr.Graph()
    x2 = g2.input("x", (3,), domain="spike")
    s2 = g2.add(tr.snn.LIF(beta=0.9, threshold=0.5),
                g2.add(tr.snn.Dense(3, 2, weight=np.full((2, 3), 0.3, np.float32)), x2, name="syn"))
    g2.output("post", s2)
    rt2, w2, ref = tr.Runtime(g2), g2["syn"].weight, T.STDP(lr=0.05, tau_pre=5, tau_post=5, w_max=1.0)
    for t in range(40):
        out = rt2.step({"x": spikes[t]})
        ref.step(w2, spikes[t], out["post"])
    assert np.array_equal(w2, learned)
    with pytest.raises(tr.GraphError):
        rule.run(rt, "x", {"x": spikes}, pre="pre", post="post")
