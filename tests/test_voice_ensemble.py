"""voice.ensemble (docs/voice.md, round 16): one graph of k voice networks sharing a front end,
decided on the mean of their per-tick probabilities — seeded, small, through the public API."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.demos.voice import distil
from tianrt.demos.voice import ensemble as E
from tianrt.demos.voice import frontend as F
from tianrt.demos.voice import model as M
from tianrt.demos.voice import recipes as R
from tianrt.demos.voice import stream as S


def _front(seed=0):
    rng = np.random.default_rng(seed)
    d = {f"{s}_x": rng.normal(-6, 2, (n, 30, F.N_MELS)).astype(np.float32) for s, n in
         (("train", 12), ("val", 4), ("test", 5))}
    d.update({"train_y": np.arange(12) % 10, "val_y": np.arange(4), "test_y": np.arange(5)})
    return R.prepare(d, "delta")


def _net(seed, front):
    net = M.build_snn(2 * F.N_MELS, 12, seed, hetero=True, train_tau=True)
    return R.graph_of(net, front, 0.5)


def test_two_copies_decide_as_the_network_itself():
    """An ensemble of two copies of a network: each output is the network's readout, and the
    mean of the two probabilities (or of the two readouts) gives the network's own decisions."""
    d, _, front = _front()
    g = _net(0, front)
    x = np.random.default_rng(1).normal(0, 3, (9, 40, 2 * F.N_MELS)).astype(np.float32)
    ens = E.ensemble_graph([g, g])
    assert list(ens.outputs) == ["y0", "y1"] and ens.metadata["members"] == 2
    (y,) = E.readouts(g, x)
    y0, y1 = E.readouts(ens, x)
    assert np.array_equal(y0, y) and np.array_equal(y1, y)
    single = M.decide(y)
    assert np.array_equal(E.decide(ens, x), single)
    assert np.array_equal(E.decide(ens, x, how="logits"), single)
    assert np.array_equal(E.decide(g, x), single)


def test_members_run_in_one_graph_as_alone_and_in_integer_mode():
    """Two networks of other seeds in one graph: each output is the member run alone (float,
    and after tr.quantize of the whole graph, each member quantised alone on the same
    frames); the decision is model.decide_probs of the mean softmax."""
    d, _, front = _front()
    ga, gb = _net(0, front), _net(1, front)
    x = np.random.default_rng(2).normal(0, 3, (6, 40, 2 * F.N_MELS)).astype(np.float32)
    ens = E.ensemble_graph([ga, gb])
    ya, yb = E.readouts(ens, x)
    assert np.array_equal(ya, E.readouts(ga, x)[0]) and np.array_equal(yb, E.readouts(gb, x)[0])
    mean = (M.softmax(ya.astype(np.float64)) + M.softmax(yb.astype(np.float64))) / 2
    assert np.array_equal(E.decide(ens, x), M.decide_probs(mean))
    np.testing.assert_allclose(E.combine([ya, yb], "logits"), M.softmax((ya.astype(np.float64) + yb) / 2), atol=1e-12)
    cal = {"x": x.reshape(-1, x.shape[-1])}
    q = tr.quantize(ens, cal, ticks=1, max_samples=len(cal["x"]))
    qa = tr.quantize(ga, cal, ticks=1, max_samples=len(cal["x"]))
    qb = tr.quantize(gb, cal, ticks=1, max_samples=len(cal["x"]))
    za, zb = E.readouts(q, x)
    assert np.array_equal(za, E.readouts(qa, x)[0]) and np.array_equal(zb, E.readouts(qb, x)[0])


def test_ensemble_streams_as_the_detector_and_refuses_other_front_ends():
    """stream.Detector on an ensemble of two copies gives the network's own probabilities tick
    by tick; members trained on other data (another front end) are refused in one graph."""
    d, _, front = _front()
    g = _net(0, front)
    audio = (np.random.default_rng(3).normal(0, 0.05, 160 * 30)).astype(np.float32)
    one = S.Detector(g, S.Rule(), backend="reference")
    two = S.Detector(E.ensemble_graph([g, g]), S.Rule(), backend="reference")
    for k in range(30):
        chunk = audio[k * 160:(k + 1) * 160]
        np.testing.assert_allclose(two.probs(chunk), one.probs(chunk), atol=1e-12)
    _, _, other = _front(seed=5)
    with pytest.raises(ValueError, match="another front end"):
        E.ensemble_graph([g, _net(1, other)])
    with pytest.raises(ValueError, match="one of"):
        E.combine([np.zeros((2, 10))], "vote")
    odd = tr.Graph(name="odd")
    odd.output("readout", odd.input("x", (4,)))
    with pytest.raises(ValueError, match="an ensemble"):
        S.Detector(odd, S.Rule(), backend="reference")


def test_greedy_chooses_on_validation():
    """greedy: the member that decides the validation clips best first, then the one whose
    mean with it decides best."""
    y = np.array([0, 1, 2, 3])
    good = np.zeros((5, 4, 10))
    good[:, np.arange(4), y] = 1.0
    bad = np.zeros((5, 4, 10))
    bad[:, :, 0] = 1.0                          # `left` everywhere: 1 of 4, and with `good` too
    half = good.copy()
    half[:, 2:] = bad[:, 2:]                    # 2 of 4, and with `good` too (ties go to `left`)
    assert E.greedy([bad, half, good], y, 2) == [2, 1]


def _tiny_file(path, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(20) % 10
    d = {"train_x": rng.normal(-6, 2, (20, 20, F.N_MELS)).astype(np.float32), "train_y": y,
         "train_end": np.where(y == M.BG, -1, rng.integers(5, 15, 20) * 160),
         "val_x": rng.normal(-6, 2, (10, 20, F.N_MELS)).astype(np.float32), "val_y": np.arange(10),
         "test_x": rng.normal(-6, 2, (10, 20, F.N_MELS)).astype(np.float32), "test_y": np.arange(10),
         "val_end": np.full(10, -1), "test_end": np.full(10, -1)}
    np.savez(path, **d)
    return d


def test_recipes_distil_an_ensemble_records_it_and_alpha_zero_is_the_plain_recipe(tmp_path):
    """recipes --distil (round 17): the ensemble's members run on the student's minibatches
    (distil.teacher: the members' readouts, as readouts gives them); --distil-alpha 0 trains
    the recipe's own network bit for bit, another alpha another one; the saved graph's
    metadata and the results row record the teacher; a teacher of another front end is refused."""
    import json
    d = _tiny_file(tmp_path / "d.npz")
    _, _, front = R.prepare(dict(np.load(tmp_path / "d.npz")), "delta")
    ens = E.ensemble_graph([_net(3, front), _net(4, front)])
    tr.save(ens, tmp_path / "ens.tnr")
    x = np.random.default_rng(6).normal(0, 1, (3, 20, 2 * F.N_MELS)).astype(np.float32)
    f = distil.teacher(ens, front, backend="reference")
    for xb in (x, x[:2] * 0.5, x):    # one runtime for every minibatch: a fresh state, any batch size
        assert all(np.array_equal(a, b) for a, b in zip(f(xb), E.readouts(ens, xb)))
    base = ["--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden", "8", "--frontend", "delta", "--hetero",
            "--train-tau", "--results", str(tmp_path / "r.jsonl")]
    kd = ["--distil", str(tmp_path / "ens.tnr"), "--distil-backend", "reference"]
    R.main(base + ["--save", str(tmp_path / "plain.tnr")])
    R.main(base + kd + ["--distil-alpha", "0", "--save", str(tmp_path / "a0.tnr")])
    R.main(base + kd + ["--distil-t", "3", "--distil-alpha", "0.7", "--save", str(tmp_path / "a7.tnr")])
    R.main(base + kd + ["--distil-ticks", "taught", "--save", str(tmp_path / "taught.tnr")])
    plain, a0, a7, taught = (tr.load(tmp_path / f"{n}.tnr") for n in ("plain", "a0", "a7", "taught"))
    assert taught.metadata["distil"]["ticks"] == "taught"
    assert not np.array_equal(taught["readout_syn"].weight, a0["readout_syn"].weight)
    for k in ("alif1_syn", "readout_syn"):
        assert np.array_equal(plain[k].weight, a0[k].weight)
    assert not np.array_equal(plain["readout_syn"].weight, a7["readout_syn"].weight)
    assert "distil" not in plain.metadata
    rec = a7.metadata["distil"]
    assert (rec["members"], rec["temperature"], rec["alpha"], rec["ticks"]) == (2, 3.0, 0.7, "all")
    assert rec["teacher"] == str(tmp_path / "ens.tnr") and len(rec["teacher_sha256"]) == 64
    rows = [json.loads(s) for s in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["distil_t"], r["distil_alpha"]) for r in rows[1:]] == [(2.0, 0.0), (3.0, 0.7), (2.0, 0.5)]
    _, _, other = R.prepare(dict(d, train_x=d["train_x"] + 1), "delta")
    with pytest.raises(ValueError, match="another front end than the student"):
        distil.teacher(ens, other)
    with pytest.raises(ValueError, match="--distil-alpha in"):
        R.main(base + kd + ["--distil-alpha", "1.5"])


def test_audio_ticks_are_every_tick_but_the_padding_and_recipes_take_them(tmp_path):
    """with_noise_steps (round 18): the ticks tr.train.tick_mask(..., "audio") leaves out are
    exactly the padding — the normalised zero frames after each clip (and after a clip's
    unstepped extra ticks) — the stretch before the word and the unlabelled audio kept;
    recipes --distil-ticks audio trains (recorded in the metadata), the same network as "all"
    where there is no padding and another where there is; an unknown tick name is refused."""
    from tianrt import train as T
    d = _tiny_file(tmp_path / "d.npz")
    out, _, front = R.prepare(dict(d), "delta")
    n = F.N_MELS
    st, tt = R.with_noise_steps(out, front, 0.5, extra=6, delay=(2, 4), seed=2, after=4, quiet=4, before=0.6,
                                before_ticks=(10, 14), settle=3)
    x = st["train_x"][..., :n]
    N, L = tt.shape
    audio = T.tick_mask(tt, "audio", N, L).T
    zero = ~x.any(2)                                               # the normalised zero frame: padding
    assert np.array_equal(~audio, zero) and np.array_equal(audio, tt != T.PADDING)
    assert 0 < (~audio).mean() < 0.5 and (audio & (tt == T.NO_TARGET)).any()
    for i in range(N):                                             # padding only after the clip's audio
        k = int(audio[i].sum())
        assert audio[i, :k].all() and not audio[i, k:].any() and k >= 20
    taught = T.tick_mask(tt, "taught", N, L).T
    assert np.array_equal(taught, tt >= 0) and not (taught & ~audio).any()
    base = ["--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden", "8", "--frontend", "delta", "--hetero",
            "--train-tau", "--results", str(tmp_path / "r.jsonl")]
    ens = E.ensemble_graph([_net(3, front), _net(4, front)])
    tr.save(ens, tmp_path / "ens.tnr")
    kd = base + ["--distil", str(tmp_path / "ens.tnr"), "--distil-backend", "reference"]
    steps = ["--steps-before", "0.6", "--steps-before-ticks", "10", "14"]
    nets = {}
    for name, extra in (("all", []), ("audio", []), ("all-p", steps), ("audio-p", steps)):
        R.main(kd + extra + ["--distil-ticks", name.split("-")[0], "--save", str(tmp_path / f"{name}.tnr")])
        nets[name] = tr.load(tmp_path / f"{name}.tnr")
    assert nets["audio"].metadata["distil"]["ticks"] == "audio"
    assert np.array_equal(nets["all"]["readout_syn"].weight, nets["audio"]["readout_syn"].weight)
    assert not np.array_equal(nets["all-p"]["readout_syn"].weight, nets["audio-p"]["readout_syn"].weight)
    with pytest.raises(SystemExit):
        R.main(kd + ["--distil-ticks", "labelled"])
