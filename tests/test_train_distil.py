"""Distillation in tr.train (docs/voice.md, round 17): ``soft_target_loss`` toward a
teacher's tempered probabilities, ``soft_targets`` of one or several teachers, and
``SNN.fit(teacher=)`` — seeded, small, through the public API."""
import numpy as np
import pytest

from tianrt import train as T


def _fd(f, z, eps=1e-6):
    num = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        d = np.zeros_like(z)
        d[i] = eps
        num[i] = (f(z + d) - f(z - d)) / (2 * eps)
    return num


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.5])
def test_soft_target_loss_gradient_matches_finite_differences(temperature):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (3, 4, 5))
    q = T.soft_targets([rng.normal(0, 2, z.shape), rng.normal(0, 2, z.shape)], temperature)
    w = rng.random(z.shape[:-1])
    w[0, 1] = 0.0                                     # a row without weight (a padded tick)
    for weight in (None, w):
        value, g = T.soft_target_loss(z, q, temperature, weight)
        assert value > 0
        num = _fd(lambda v: T.soft_target_loss(v, q, temperature, weight)[0], z)
        assert np.allclose(g, num, atol=1e-7), np.abs(g - num).max()


def test_soft_target_loss_by_hand_and_zero_at_the_teacher():
    """T**2 times the KL divergence of the student's tempered softmax from q, averaged over the
    rows (weighted); zero with zero gradient when the student is the teacher."""
    rng = np.random.default_rng(1)
    z, t = rng.normal(0, 1, (6, 4)), rng.normal(0, 1, (6, 4))
    q = T.soft_targets(t, 3.0)
    p = np.exp(z / 3) / np.exp(z / 3).sum(1, keepdims=True)
    kl = (q * np.log(q / p)).sum(1)
    w = np.arange(6.0)
    assert T.soft_target_loss(z, q, 3.0)[0] == pytest.approx(9 * kl.mean())
    assert T.soft_target_loss(z, q, 3.0, w)[0] == pytest.approx(9 * (w * kl).sum() / w.sum())
    value, g = T.soft_target_loss(t, q, 3.0)
    assert value == pytest.approx(0, abs=1e-12) and np.abs(g).max() < 1e-12


def test_one_hot_soft_targets_at_temperature_one_are_the_cross_entropy():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, (7, 10))
    y = rng.integers(0, 10, 7)
    v_ce, g_ce = T.CrossEntropyLoss()(z, y)
    v, g = T.soft_target_loss(z, np.eye(10)[y], 1.0)
    assert v == pytest.approx(v_ce) and np.allclose(g, g_ce, atol=1e-7)


def test_soft_targets_of_an_ensemble_and_refusals():
    """One teacher at T = 1: its softmax; several: the mean of their tempered softmaxes; a
    higher temperature flattens them. Wrong shapes, temperatures and targets are refused."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 2, (2, 3, 5)), rng.normal(0, 2, (2, 3, 5))
    sm = lambda v: np.exp(v) / np.exp(v).sum(-1, keepdims=True)   # noqa: E731
    assert np.allclose(T.soft_targets(a), sm(a))
    assert np.allclose(T.soft_targets([a, b], 2.0), (sm(a / 2) + sm(b / 2)) / 2)
    assert T.soft_targets(a, 5.0).max() < T.soft_targets(a, 1.0).max()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        T.soft_targets(a, 0.0)
    with pytest.raises(ValueError, match="one shape"):
        T.soft_targets([a, b[:1]])
    with pytest.raises(ValueError, match="soft targets of shape"):
        T.soft_target_loss(a, sm(b[:1]))
    with pytest.raises(ValueError, match="summing to 1"):
        T.soft_target_loss(a, np.abs(b))
    with pytest.raises(ValueError, match="non-negative"):
        T.soft_target_loss(a, sm(b), 1.0, -np.ones(a.shape[:-1]))


def _snn(seed=0, loss="per_tick"):
    return T.SNN(T.SpikingLayer(4, 8, neuron="alif", recurrent=True), T.Readout(8, 3, beta=0.9),
                 n_in=4, input="tensor", loss=loss, seed=seed)


def _data():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (16, 12, 4)).astype(np.float32)
    y = np.full((16, 12), -1)
    y[:, 8:] = (np.arange(16) % 3)[:, None]
    return x, y


def test_snn_distil_loss_mixes_the_two_and_its_gradient_is_exact():
    rng = np.random.default_rng(5)
    net = _snn()
    out = rng.normal(0, 1, (12, 5, 3))
    tgt = np.full((5, 12), -1)
    tgt[:, 6:] = np.arange(5)[:, None] % 3
    teach = [rng.normal(0, 1, out.shape), rng.normal(0, 1, out.shape)]
    hard, _ = net.loss_and_grad(out, tgt)
    soft, _ = T.soft_target_loss(out, T.soft_targets(teach, 2.0), 2.0)
    value, g = net.distil_loss_and_grad(out, tgt, teach, 2.0, 0.3)
    assert value == pytest.approx(0.7 * hard + 0.3 * soft)
    num = _fd(lambda v: net.distil_loss_and_grad(v, tgt, teach, 2.0, 0.3)[0], out)
    assert np.allclose(g, num, atol=1e-7)
    mean = _snn(loss="mean")                          # the clip logits: the mean over ticks
    num = _fd(lambda v: mean.distil_loss_and_grad(v, np.arange(5) % 3, teach[0].mean(0), 2.0, 0.5)[0], out)
    assert np.allclose(mean.distil_loss_and_grad(out, np.arange(5) % 3, teach[0].mean(0), 2.0, 0.5)[1], num,
                       atol=1e-7)
    taught = tgt.T >= 0                               # ticks="taught": the labelled ticks only
    soft_t, _ = T.soft_target_loss(out, T.soft_targets(teach, 2.0), 2.0, taught)
    value, g = net.distil_loss_and_grad(out, tgt, teach, 2.0, 0.3, ticks="taught")
    assert value == pytest.approx(0.7 * hard + 0.3 * soft_t)
    num = _fd(lambda v: net.distil_loss_and_grad(v, tgt, teach, 2.0, 0.3, ticks="taught")[0], out)
    assert np.allclose(g, num, atol=1e-7)
    assert np.abs(g[~taught] - 0.7 * net.loss_and_grad(out, tgt)[1][~taught]).max() < 1e-15
    with pytest.raises(ValueError, match="'taught' or 'audio' with the per_tick loss"):
        mean.distil_loss_and_grad(out, np.arange(5) % 3, teach[0].mean(0), 2.0, 0.5, ticks="taught")
    with pytest.raises(ValueError, match="alpha must be in"):
        net.distil_loss_and_grad(out, tgt, teach, 2.0, 1.5)
    with pytest.raises(ValueError, match="teacher's logits have shape"):
        net.distil_loss_and_grad(out, tgt, teach[0][:5], 2.0, 0.5)


def test_fit_with_a_teacher_at_alpha_zero_is_the_plain_fit_and_alpha_one_learns_the_teacher():
    """alpha = 0: the same weights as without a teacher, bit for bit (the teacher draws nothing
    from the generator); alpha = 1 from a teacher network: the student's per-tick
    probabilities come nearer the teacher's than those of the plain fit, on augmented batches."""
    x, y = _data()
    aug = T.SpecAugment(0, 0, 0, 0, level=0.3, noise=0.1)
    plain = _snn(1)
    plain.fit(x, y, epochs=3, batch_size=8, augment=aug, optimizer=T.Adam(1e-2))
    teacher = _snn(7)
    seen = []

    def f(xb):
        seen.append(xb.copy())
        return teacher.forward(xb)
    zero = _snn(1)
    zero.fit(x, y, epochs=3, batch_size=8, augment=aug, optimizer=T.Adam(1e-2), teacher=f, alpha=0.0)
    for a, b in zip(plain.get_weights(), zero.get_weights()):
        for k in a:
            assert np.array_equal(a[k], b[k]), k
    assert len(seen) == 6 and not any(np.array_equal(s, x[:8]) for s in seen)   # augmented minibatches
    one = _snn(1)
    one.fit(x, y, epochs=3, batch_size=8, augment=aug, optimizer=T.Adam(1e-2), teacher=f, alpha=1.0, temperature=2.0)
    q = T.soft_targets(teacher.forward(x), 2.0)
    gap = {n: T.soft_target_loss(m.forward(x), q, 2.0)[0] for n, m in (("plain", plain), ("one", one))}
    assert gap["one"] < gap["plain"]
    with pytest.raises(ValueError, match="temperature > 0 and alpha"):
        _snn().fit(x, y, epochs=1, teacher=f, temperature=0.0)


def test_tick_masks_and_distillation_at_the_audio_ticks_leave_out_exactly_the_padding():
    """tick_mask on a constructed batch: "taught" the labelled ticks, "audio" every tick but
    PADDING (the unlabelled audio included), "all" every tick; distil_ticks="audio" is the soft
    loss weighted by that mask, its gradient at a padded tick nothing but the labels' (zero
    there); other tick names, and "audio" with a clip loss, are refused."""
    P, N = T.PADDING, T.NO_TARGET
    tgt = np.array([[N, N, 0, 0, 1, P, P, P],          # a word, then padding
                    [2, 2, 2, 2, 2, 2, 2, 2],          # taught throughout: no padding
                    [N, N, N, N, N, N, P, P],          # audio without a label, then padding
                    [P, P, P, P, P, P, P, P]])         # padding only
    taught, audio = T.tick_targets(tgt, 4, 8) >= 0, T.tick_targets(tgt, 4, 8) != P
    assert np.array_equal(T.tick_mask(tgt, "taught", 4, 8), tgt.T >= 0)
    assert np.array_equal(T.tick_mask(tgt, "audio", 4, 8), audio)
    assert T.tick_mask(tgt, "audio", 4, 8).sum(0).tolist() == [5, 8, 6, 0]
    assert T.tick_mask(tgt, "all", 4, 8).all() and T.tick_mask(tgt, "all", 4, 8).shape == (8, 4)
    assert T.tick_mask(np.array([0, 1, 2, 1]), "audio", 4, 8).all()      # clip labels: every tick
    rng = np.random.default_rng(6)
    net = _snn()
    out = rng.normal(0, 1, (8, 4, 3))
    teach = [rng.normal(0, 1, out.shape), rng.normal(0, 1, out.shape)]
    hard, g_hard = net.loss_and_grad(out, tgt)
    soft_a, _ = T.soft_target_loss(out, T.soft_targets(teach, 2.0), 2.0, audio)
    value, g = net.distil_loss_and_grad(out, tgt, teach, 2.0, 0.4, ticks="audio")
    assert value == pytest.approx(0.6 * hard + 0.4 * soft_a)
    num = _fd(lambda v: net.distil_loss_and_grad(v, tgt, teach, 2.0, 0.4, ticks="audio")[0], out)
    assert np.allclose(g, num, atol=1e-7)
    pad = tgt.T == P
    assert np.abs(g_hard[pad]).max() == 0 and np.abs(g[pad]).max() == 0
    assert np.abs(g[audio & ~taught]).min() > 0                          # unlabelled audio: the teacher's
    with pytest.raises(ValueError, match="ticks must be one of"):
        T.tick_mask(tgt, "labelled", 4, 8)
    with pytest.raises(ValueError, match="'audio' with the per_tick loss"):
        _snn(loss="mean").distil_loss_and_grad(out, np.arange(4) % 3, teach[0].mean(0), 2.0, 0.5, ticks="audio")
    with pytest.raises(ValueError, match="distillation ticks must be"):
        net.distil_loss_and_grad(out, tgt, teach, 2.0, 0.5, ticks="padding")
