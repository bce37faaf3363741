"""The voice demo's send-on-delta ON/OFF front end (docs/voice.md, round 19): the spikes by
hand, whole clip equals frame by frame, built from a graph's metadata, and the recipes'
``--frontend onoff`` / ``level-onoff`` — augmented before the encoder — seeded and small."""
import json

import numpy as np
import pytest

import tianrt as tr
from tianrt.demos.voice import data as D
from tianrt.demos.voice import frontend as F
from tianrt.demos.voice import model as M
from tianrt.demos.voice import recipes as R


def _meta(rng, **stage):
    return {"logmel_mean": rng.normal(-5, 1, F.N_MELS).tolist(), "logmel_std": rng.uniform(1, 3, F.N_MELS).tolist(),
            **stage}


def _tiny_set(N=20, T=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % 10
    ends = np.where(y == M.BG, -1, rng.integers(5, 18, N) * D.HOP)
    return {"train_x": rng.normal(-6, 2, (N, T, F.N_MELS)).astype(np.float32), "train_y": y, "train_end": ends,
            "val_x": rng.normal(-6, 2, (10, T, F.N_MELS)).astype(np.float32), "val_y": np.arange(10),
            "test_x": rng.normal(-6, 2, (10, T, F.N_MELS)).astype(np.float32), "test_y": np.arange(10)}


def test_onoff_spikes_by_hand_one_per_frame_and_the_level_beside():
    """delta 0.5, the reference from 0: ON at +0.5 (>=, the reference jumps to the frame), one ON
    for a rise of 2.75 in one frame, OFF at -0.5 from the new reference, nothing inside the band;
    with level the frame itself comes first; apply gives the same rows as push."""
    f = np.array([[0.5, 0.25], [0.75, -0.25], [3.25, -0.5], [2.75, -0.125], [2.5, 0.5]], np.float32)
    # channel 0: refs 0 -> 0.5 (ON) -> 0.5 (+0.25) -> 3.25 (ON) -> 2.75 (-0.5: OFF) -> 2.75 (-0.25)
    # channel 1: refs 0 -> 0 (+0.25) -> 0 (-0.25) -> -0.5 (OFF) -> -0.5 (+0.375) -> 0.5 (+1.0: ON)
    on = [[1, 0], [0, 0], [1, 0], [0, 0], [0, 1]]
    off = [[0, 0], [0, 0], [0, 1], [1, 0], [0, 0]]
    oo = F.OnOff(2, delta=0.5)
    pushed = np.stack([oo.push(v) for v in f])
    np.testing.assert_array_equal(pushed, np.concatenate([on, off], 1))
    np.testing.assert_array_equal(oo.ref, [2.75, 0.5])
    np.testing.assert_array_equal(F.OnOff(2, 0.5).apply(f), pushed)
    lv = F.OnOff(2, 0.5, level=True)
    assert lv.n_out == 6 and F.OnOff(2, 0.5).n_out == 4
    np.testing.assert_array_equal(lv.apply(f), np.concatenate([f, on, off], 1))
    assert F.OnOff(2, 0.5).rate(pushed) == pytest.approx(5 / 20)
    tall = F.OnOff(2, 0.5, level=True, amplitude=3.0)
    np.testing.assert_array_equal(tall.apply(f), np.concatenate([f, 3 * np.array(on), 3 * np.array(off)], 1))
    assert tall.rate(tall.apply(f)) == pytest.approx(5 / 20)
    with pytest.raises(ValueError, match="delta"):
        F.OnOff(2, 0.0)
    with pytest.raises(ValueError, match="amplitude"):
        F.OnOff(2, 0.5, amplitude=-1.0)


def test_onoff_whole_clips_equal_frame_by_frame_and_the_front_end_from_metadata():
    """apply on a batch of clips (each from a fresh state) equals push frame by frame, bit for
    bit; VoiceFrontEnd with onoff_delta (and onoff_level) gives the same inputs chunk by chunk
    as for the whole clip, n_out 64 / 96, and refuses a second stage."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.4, (3, 50, F.N_MELS)).astype(np.float32).cumsum(1)
    for level in (False, True):
        whole = F.OnOff(F.N_MELS, 0.3, level).apply(x)
        for i in range(len(x)):
            oo = F.OnOff(F.N_MELS, 0.3, level)
            assert np.array_equal(np.stack([oo.push(v) for v in x[i]]), whole[i])
    wav = (0.1 * rng.standard_normal(F.SR // 4) * np.linspace(0, 2, F.SR // 4)).astype(np.float32)
    for level, width in ((False, 2 * F.N_MELS), (True, 3 * F.N_MELS)):
        meta = _meta(np.random.default_rng(4), onoff_delta=0.3, onoff_level=level)
        fe = F.VoiceFrontEnd(meta)
        assert fe.n_out == width and fe.level == level and isinstance(fe.stage, F.OnOff)
        whole = fe.features(wav)
        ref = F.LogMel(mean=meta["logmel_mean"], std=meta["logmel_std"]).features(wav)
        assert whole.shape == (len(ref), width) and 0 < whole[:, -2 * F.N_MELS:].mean() < 1
        np.testing.assert_array_equal(whole, F.OnOff(F.N_MELS, 0.3, level).apply(ref))
        fe.reset()
        assert np.array_equal(np.stack([fe.push(wav[i * F.HOP:(i + 1) * F.HOP]) for i in range(len(whole))]), whole)
    tall = F.VoiceFrontEnd(_meta(np.random.default_rng(4), onoff_delta=0.3, onoff_amplitude=3.0))
    assert np.array_equal(tall.features(wav), 3 * F.VoiceFrontEnd(_meta(np.random.default_rng(4), onoff_delta=0.3))
                          .features(wav))
    with pytest.raises(ValueError, match="delta_scale and onoff_delta"):
        F.VoiceFrontEnd(_meta(rng, delta_scale=[1.0] * F.N_MELS, onoff_delta=0.3))


@pytest.mark.parametrize("frontend, width", [("onoff", 2), ("level-onoff", 3)])
def test_recipes_onoff_augments_before_the_encoder_and_the_graph_carries_it(tmp_path, frontend, width):
    """prepare('onoff' | 'level-onoff'): the inputs are OnOff of the normalised log-mel frames;
    the trainer's rows (training_rows) carry those frames, and the augmentation is
    model.augmentation on them, then the encoder (the same draws); the saved graph's
    metadata rebuild the front end (VoiceFrontEnd, prepare(metadata=)), and the graph runs in
    the runtime as the trainer computes it."""
    d = _tiny_set()
    out, aug, front = R.prepare(d, frontend, onoff_delta=0.4, onoff_amplitude=1.0)
    tall, _, tfront = R.prepare(d, frontend, onoff_delta=0.4, onoff_amplitude=2.0)
    assert front["onoff_amplitude"] == 1.0 and tfront["onoff_amplitude"] == 2.0
    assert R.prepare(d, frontend)[2]["onoff_amplitude"] == F.ONOFF_AMPLITUDE == 3.0   # the height that trains
    np.testing.assert_array_equal(tall["test_x"][..., -2 * F.N_MELS:], 2 * out["test_x"][..., -2 * F.N_MELS:])
    assert R.spike_rates(tall, tfront) == R.spike_rates(out, front)
    n = F.N_MELS
    norm = ((d["test_x"] - front["logmel_mean"]) / front["logmel_std"]).astype(np.float32)
    np.testing.assert_array_equal(out["test_x"], F.OnOff(n, 0.4, frontend == "level-onoff").apply(norm))
    assert out["train_x"].shape[-1] == width * n and front["onoff_delta"] == 0.4
    rows = R.training_rows(out)
    if frontend == "onoff":
        assert np.array_equal(rows["train_x"][..., :n], out["train_logmel"]) and not rows["train_x"][..., n:].any()
    else:
        assert rows is out and "train_logmel" not in out
    a = aug(rows["train_x"], np.random.default_rng(5))
    base = M.augmentation(n)(rows["train_x"][..., :n], np.random.default_rng(5))
    np.testing.assert_array_equal(a, F.OnOff(n, 0.4, frontend == "level-onoff").apply(base))
    net = M.build_snn(width * n, 8, 0)
    tr.save(R.graph_of(net, front, 0.5), tmp_path / "g.tnr")
    g = tr.load(tmp_path / "g.tnr")
    assert F.graph_front_end(g)["onoff_level"] == (frontend == "level-onoff")
    assert F.VoiceFrontEnd(g.metadata).n_out == width * n
    again, _, _ = R.prepare(d, metadata=g.metadata)
    k = -2 * n                                  # the file's statistics are float64: the level to rounding,
    np.testing.assert_allclose(again["test_x"][..., :k], out["test_x"][..., :k], atol=1e-5)
    assert np.mean(again["test_x"][..., k:] != out["test_x"][..., k:]) < 1e-3   # a spike at the threshold, rarely
    y = tr.Runtime(g).run({"x": out["test_x"].transpose(1, 0, 2)})["y"]
    np.testing.assert_allclose(y, net.forward(out["test_x"]), rtol=1e-4, atol=1e-4)


def test_noise_steps_keep_the_log_mel_frames_for_the_onoff_augmentation():
    """with_noise_steps on the ON/OFF front end: the longer sequences are encoded from their
    log-mel frames (train_logmel, kept for the augmentation), as the delta front end's are
    differenced from theirs."""
    d = _tiny_set()
    out, _, front = R.prepare(d, "onoff")
    dd, _, dfront = R.prepare(d, "delta")
    st, tt = R.with_noise_steps(out, front, 0.5, extra=10, seed=1, before=0.5, before_ticks=(10, 14))
    sd, td = R.with_noise_steps(dd, dfront, 0.5, extra=10, seed=1, before=0.5, before_ticks=(10, 14))
    assert np.array_equal(tt, td) and np.array_equal(st["train_logmel"], sd["train_x"][..., :F.N_MELS])
    assert np.array_equal(st["train_x"], F.OnOff(F.N_MELS, amplitude=F.ONOFF_AMPLITUDE).apply(st["train_logmel"]))


def test_recipes_cli_trains_on_onoff_and_records_the_spike_rate(tmp_path):
    """`recipes --frontend onoff --onoff-delta 0.5 --input-gain 3` trains (one epoch, small) and
    its JSON line records the spike rate of each split; the saved graph reads 64 ON/OFF inputs
    through a DirectCurrent of gain 3; an unknown front end is refused by the parser."""
    np.savez(tmp_path / "d.npz", **_tiny_set())
    R.main(["--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden", "8", "--frontend", "onoff",
            "--onoff-delta", "0.5", "--input-gain", "3", "--steps-before", "0.5", "--steps-before-ticks", "10", "14",
            "--save", str(tmp_path / "m.tnr"), "--results", str(tmp_path / "r.jsonl")])
    rec = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[-1])
    assert rec["frontend"] == "onoff" and rec["onoff_delta"] == 0.5
    assert set(rec["onoff_rate"]) == {"train", "val", "test"} and all(0 < v < 1 for v in rec["onoff_rate"].values())
    g = tr.load(tmp_path / "m.tnr")
    assert g.metadata["onoff_delta"] == 0.5 and F.VoiceFrontEnd(g.metadata).n_out == 2 * F.N_MELS
    assert g["direct"].op == "bridge.DirectCurrent" and g["direct"].gain == 3.0
    with pytest.raises(SystemExit):
        R.main(["--data", str(tmp_path / "d.npz"), "--frontend", "spikes"])


def test_compare_scores_an_onoff_model_on_clips_in_float_and_integer_mode(tmp_path):
    """`compare --no-streams` (round 19's table): the model's own front end from its metadata,
    float and integer-mode accuracy on the clips, no streams synthesised."""
    from tianrt.demos.voice import compare as C
    np.savez(tmp_path / "d.npz", **_tiny_set())
    R.main(["--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden", "8", "--frontend", "level-onoff",
            "--onoff-amplitude", "3", "--save", str(tmp_path / "m.tnr"), "--results", str(tmp_path / "r.jsonl")])
    C.main(["--data", str(tmp_path / "d.npz"), "--model", str(tmp_path / "m.tnr"), "--no-streams",
            "--out", str(tmp_path / "c.json")])
    res = json.loads((tmp_path / "c.json").read_text())[str(tmp_path / "m.tnr")]
    assert {"val", "test", "accuracy_int8", "int8_changed_decisions"} <= set(res) and "rules" not in res
    assert res["test"] == json.loads((tmp_path / "r.jsonl").read_text())["test_acc"]
