"""tr.train: reproducible minibatch training, optimisers, early stopping, export to graphs."""
import numpy as np
import pytest

import tianrt as tr
from tianrt import train as T

from convert_fixtures import blobs


def _mlp(seed=0):
    return T.Sequential(T.Dense(16, 12), T.ReLU(), T.Dense(12, 4), input_shape=(16,), seed=seed)


def test_training_is_seeded_and_reproducible():
    x, y = blobs()
    a, b = _mlp(), _mlp()
    ha = a.fit(x, y, epochs=3, batch_size=20, progress=False)
    hb = b.fit(x, y, epochs=3, batch_size=20, progress=False)
    assert ha.loss == hb.loss
    for la, lb in zip(a.layers, b.layers):
        for k in la.params:
            assert np.array_equal(la.params[k], lb.params[k])
    c = _mlp(seed=1)
    c.fit(x, y, epochs=3, batch_size=20, progress=False)
    assert not np.array_equal(c.layers[0].params["weight"], a.layers[0].params["weight"])


@pytest.mark.parametrize("opt", [T.SGD(0.05, momentum=0.9), T.SGD(0.05, momentum=0.9, nesterov=True),
                                 T.Adam(3e-3), T.Adam(3e-3, weight_decay=1e-2, decoupled=False)])
def test_optimisers_learn_the_blobs(opt):
    x, y = blobs()
    m = _mlp()
    h = m.fit(x, y, epochs=15, batch_size=16, optimizer=opt, progress=False)
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert m.accuracy(x, y) > 0.9


def test_weight_decay_shrinks_weights_but_not_biases():
    x, y = blobs()
    plain, decayed = _mlp(), _mlp()
    plain.fit(x, y, epochs=5, batch_size=16, optimizer=T.SGD(0.02), progress=False)
    decayed.fit(x, y, epochs=5, batch_size=16, optimizer=T.SGD(0.02, weight_decay=0.5), progress=False)
    assert np.abs(decayed.layers[0].params["weight"]).sum() < 0.8 * np.abs(plain.layers[0].params["weight"]).sum()
    assert "bias" not in decayed.layers[0].decay


def test_early_stopping_restores_the_best_epoch():
    x, y = blobs(n=120, noise=0.6)
    m = T.Sequential(T.Dense(16, 64), T.ReLU(), T.Dense(64, 4), input_shape=(16,), seed=0)
    h = m.fit(x, y, epochs=60, batch_size=8, optimizer=T.Adam(2e-2), val_split=0.25, patience=3, progress=False)
    assert h.stopped_early and len(h.loss) < 60
    assert h.best_epoch == int(np.argmin(h.val_loss))
    assert len(h.val_loss) == h.best_epoch + 1 + 3  # patience 3: stops after 3 epochs without improvement
    # the kept weights are those of the best epoch: re-evaluate the same validation split
    rng = np.random.default_rng(m.seed)
    idx = rng.permutation(len(x))[:30]
    assert T.CrossEntropyLoss()(m.predict(x[idx]), y[idx])[0] == pytest.approx(min(h.val_loss), rel=1e-5)


def test_progress_bar_shows_loss_and_accuracy(capsys):
    x, y = blobs(n=40)
    _mlp().fit(x, y, epochs=2, batch_size=20, val_split=0.25, progress=True)
    err = capsys.readouterr().err
    assert "loss=" in err and "acc=" in err and "val_acc=" in err


def test_to_graph_runs_like_predict_and_round_trips(tmp_path):
    x, y = blobs(n=40)
    m = T.Sequential(T.Conv2d(1, 3, 3, padding=1), T.BatchNorm(3), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
                     T.Dense(12, 4), input_shape=(1, 4, 4), seed=0)
    xi = x.reshape(-1, 1, 4, 4)
    m.fit(xi, y, epochs=2, batch_size=10, progress=False)
    g = m.to_graph(name="small")
    assert [e.node.op for e in g.entries.values()][1:] == ["ann.Conv2d", "ann.BatchNorm", "ann.ReLU",
                                                           "ann.MaxPool2d", "ann.Flatten", "ann.Dense"]
    out = tr.Runtime(g).run({"x": xi}, ticks=1)["y"][-1]
    assert np.allclose(out, m.predict(xi), atol=1e-5)
    g2 = tr.load(tr.save(g, tmp_path / "m.tnr"))
    back = T.Sequential.from_graph(g2)
    assert np.allclose(back.predict(xi), m.predict(xi), atol=1e-5)


def test_bad_inputs_have_clear_errors():
    x, y = blobs(n=20)
    m = _mlp()
    with pytest.raises(tr.InputError, match=r"expected \(batch, 16\)"):
        m.fit(x[:, :8], y, epochs=1, progress=False)
    with pytest.raises(tr.InputError, match="20 inputs but 19 targets"):
        m.fit(x, y[:19], epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"class labels must be integers in \[0, 4\)"):
        m.fit(x, y + 4, epochs=1, progress=False)
    with pytest.raises(ValueError, match="needs val_split or validation"):
        m.fit(x, y, epochs=1, patience=2, progress=False)
    with pytest.raises(tr.ShapeError, match="add Flatten"):
        T.Sequential(T.Dense(16, 4), input_shape=(1, 4, 4))
    with pytest.raises(tr.GraphError, match="`sig1`.*no trainable layer|no trainable"):
        g = tr.Graph()
        h = g.input("x", (4,))
        h = g.add(tr.snn.Dense(4, 2), g.add(tr.bridge.RateEncoder(), h), name="sig1")
        g.output("y", g.add(tr.bridge.MembraneReadout(window=2), h))
        T.Sequential.from_graph(g)


def test_regression_reports_no_accuracy_and_validation_stays_small():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    m = T.Sequential(T.Dense(3, 1), input_shape=(3,), seed=0)
    hist = m.fit(x, y, epochs=30, batch_size=32, optimizer=T.Adam(0.05), loss=T.MSELoss(),
                 val_split=0.2, progress=False)
    assert np.isnan(hist.acc).all() and np.isnan(hist.val_acc).all()
    assert hist.val_loss[-1] < 0.05 * hist.val_loss[0]
