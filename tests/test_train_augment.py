"""tr.train.SpecAugment (masks, channel shift, frequency warp, tilt, level, noise) and label smoothing in the
SNN trainer's losses, through the public API."""
import numpy as np
import pytest

from tianrt import train as T


def _x(b=6, t=20, f=8, seed=0):
    return np.random.default_rng(seed).standard_normal((b, t, f)).astype(np.float32) + 3.0


def test_masks_set_whole_bands_and_spans_to_fill_and_leave_the_rest():
    x = _x()
    aug = T.SpecAugment(freq_masks=1, freq_width=3, time_masks=1, time_width=5, fill=0.0)
    y = aug(x, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.float32
    assert not np.shares_memory(x, y) and np.array_equal(x, _x())   # the input is untouched
    for i in range(len(x)):
        z = y[i] == 0.0                       # x is far from 0, so zeros are the masks
        cols = np.flatnonzero(z.all(0))       # masked bands: every tick
        rows = np.flatnonzero(z.all(1))       # masked spans: every band
        assert len(cols) <= 3 and len(rows) <= 5
        assert np.all(np.diff(cols) == 1) and np.all(np.diff(rows) == 1)   # contiguous
        keep = ~z
        keep[:, cols] = False
        keep[rows, :] = False
        assert np.array_equal(y[i][~z], x[i][~z])           # everything else unchanged
        assert z.sum() == len(cols) * x.shape[1] + len(rows) * x.shape[2] - len(cols) * len(rows)


def test_frequency_shift_moves_channels_and_repeats_the_edge():
    x = np.tile(np.arange(8, dtype=np.float32), (4, 3, 1))       # channel i holds value i
    y = T.SpecAugment(0, 0, 0, 0, freq_shift=2)(x, np.random.default_rng(3))
    for i in range(4):
        s = int(4 - y[i, 0, 4])                                    # the shift of this example
        assert -2 <= s <= 2
        assert np.array_equal(y[i, 0], np.clip(np.arange(8) - s, 0, 7).astype(np.float32))
        assert np.array_equal(y[i, 0], y[i, 2])                    # the same at every tick


def test_frequency_warp_resamples_each_example_at_scaled_centres():
    """On a feature axis whose value is the centre frequency itself (kHz), a warp by ``a``
    gives centre / a (the interpolation is linear in frequency, so exact here), the edge
    held outside the axis."""
    c = 100.0 * 1.25 ** np.arange(12)                               # geometric centres (Hz)
    x = np.tile((c / 1000).astype(np.float32), (50, 4, 1))
    y = T.SpecAugment(0, 0, 0, 0, warp=0.2, centres=c)(x, np.random.default_rng(5))
    assert y.shape == x.shape and y.dtype == np.float32
    a = x[:, 0, 6] / y[:, 0, 6]                                    # the scale of each example
    assert np.all((a >= 0.8 - 1e-4) & (a <= 1.2 + 1e-4)) and a.std() > 0.05
    for i in range(len(x)):
        want = np.clip(c / a[i], c[0], c[-1]) / 1000
        assert np.allclose(y[i], want[None], rtol=1e-4)           # every tick the same
    same = T.SpecAugment(0, 0, 0, 0, warp=0.2, centres=c)(x, np.random.default_rng(5))
    assert np.array_equal(y, same)                                  # seeded
    with pytest.raises(ValueError):
        T.SpecAugment(warp=1.0)
    with pytest.raises(ValueError):
        T.SpecAugment(warp=0.1, centres=[3.0, 2.0, 1.0])
    with pytest.raises(ValueError):
        T.SpecAugment(0, 0, 0, 0, warp=0.1, centres=c[:5])(x, np.random.default_rng(0))


def test_tilt_adds_one_random_slope_per_example():
    x = np.zeros((300, 5, 9), np.float32)
    y = T.SpecAugment(0, 0, 0, 0, tilt=0.4)(x, np.random.default_rng(2))
    t = y[:, 0, -1]                                                 # the slope's value at the top band
    assert np.allclose(y, t[:, None, None] * np.linspace(-1, 1, 9)[None, None, :], atol=1e-6)
    assert np.std(t) == pytest.approx(0.4, rel=0.15)


def test_level_and_noise_are_seeded_and_sized():
    x = np.zeros((200, 10, 4), np.float32)
    a = T.SpecAugment(0, 0, 0, 0, level=0.5)(x, np.random.default_rng(0))
    assert np.all(a == a[:, :1, :1])                               # one offset per example
    assert np.std(a[:, 0, 0]) == pytest.approx(0.5, rel=0.15)
    n = T.SpecAugment(0, 0, 0, 0, noise=0.1)(x, np.random.default_rng(0))
    assert np.std(n) == pytest.approx(0.1, rel=0.05)
    assert np.array_equal(n, T.SpecAugment(0, 0, 0, 0, noise=0.1)(x, np.random.default_rng(0)))
    with pytest.raises(ValueError):
        T.SpecAugment(freq_masks=-1)
    with pytest.raises(ValueError):
        T.SpecAugment()(np.zeros((3, 4)), np.random.default_rng(0))


@pytest.mark.parametrize("loss", ["mean", "per_tick"])
def test_label_smoothing_loss_and_gradient(loss):
    """With smoothing e the target is (1 - e) one-hot + e / classes: the loss is checked
    against that formula and the gradient against finite differences of the loss."""
    net = T.SNN(T.Readout(3, 4, beta=0.5), n_in=3, input="current", loss=loss, label_smoothing=0.2, seed=0)
    y = np.random.default_rng(0).standard_normal((5, 2, 4))        # (ticks, batch, classes)
    tgt = np.array([1, 3]) if loss == "mean" else np.array([[1, 1, -1, 2, 2], [0, -1, -1, 3, 3]])
    val, g = net.loss_and_grad(y, tgt)
    logits = y.mean(0)[None] if loss == "mean" else y
    t = np.broadcast_to(tgt, (5, 2)) if loss == "mean" else tgt.T
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    mask = (t >= 0)[..., None] if loss == "per_tick" else np.ones(logits.shape[:-1] + (1,), bool)
    soft = (np.eye(4)[np.where(t >= 0, t, 0)] * 0.8 + 0.05)[:logits.shape[0]] if loss == "per_tick" \
        else np.eye(4)[tgt][None] * 0.8 + 0.05
    want = -(soft * logp * mask).sum() / mask.sum()
    assert val == pytest.approx(want, rel=1e-6)           # the clip loss computes in float32
    eps = 1e-6
    for idx in [(0, 0, 1), (3, 1, 3), (4, 0, 0), (2, 1, 2)]:
        yp, ym = y.copy(), y.copy()
        yp[idx] += eps
        ym[idx] -= eps
        fd = (net.loss_and_grad(yp, tgt)[0] - net.loss_and_grad(ym, tgt)[0]) / (2 * eps)
        assert g[idx] == pytest.approx(fd, abs=1e-6)
    with pytest.raises(ValueError):
        T.SNN(T.Readout(3, 4), n_in=3, label_smoothing=1.0)


def test_fit_keeps_the_weights_of_the_best_validation_score():
    """fit(validation=score) calls score(net) after every epoch and restores the weights
    of the best one; the augment callable sees every minibatch."""
    rng = np.random.default_rng(0)
    x = rng.random((16, 6, 3)).astype(np.float32)
    y = np.arange(16) % 2
    net = T.SNN(T.SpikingLayer(3, 5, neuron="alif", recurrent=True), T.Readout(5, 2), n_in=3,
                input="tensor", loss="mean", seed=0)
    scores, seen, snapshots = iter([0.2, 0.9, 0.5, 0.1]), [], []

    def score(n):
        snapshots.append(n.get_weights())
        return next(scores)

    hist = net.fit(x, y, epochs=4, batch_size=8, optimizer=T.Adam(1e-2), validation=score,
                   lr_schedule="cosine", augment=lambda xb, r: seen.append(len(xb)) or xb)
    assert hist["best_epoch"] == 1 and hist["val_acc"] == [0.2, 0.9, 0.5, 0.1]
    assert seen == [8] * 8
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(net.get_weights(), snapshots[1]) for k in a)
    assert not all(np.array_equal(a[k], b[k]) for a, b in zip(snapshots[3], snapshots[1]) for k in a)
