"""The voice demo's front end against a reference filterbank computation, the data recipe
(deterministic, split), and the detector's decision rule."""
import numpy as np
import pytest

from tianrt.demos.voice import data as D
from tianrt.demos.voice import frontend as F
from tianrt.demos.voice import model as M
from tianrt.demos.voice import synth
from tianrt.train import NO_TARGET, PADDING

# Tests that synthesise speech need the optional voice extra (the eSpeak NG library).
needs_voice = pytest.mark.skipif(not synth.available(), reason="needs the voice extra (espeakng-loader)")


def _reference_logmel(frame):
    """One frame computed the long way: an explicit DFT and HTK mel triangles in loops."""
    n = np.arange(F.WIN)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * (n + 1) / (F.WIN + 1))       # np.hanning(WIN+2)[1:-1]
    x = np.zeros(F.NFFT)
    x[:F.WIN] = frame * win
    k = np.arange(F.NFFT // 2 + 1)
    dft = np.exp(-2j * np.pi * np.outer(k, np.arange(F.NFFT)) / F.NFFT) @ x
    power = np.abs(dft) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)                        # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)                        # noqa: E731
    edges = [inv(mel(F.FMIN) + i * (mel(F.FMAX) - mel(F.FMIN)) / (F.N_MELS + 1)) for i in range(F.N_MELS + 2)]
    out = []
    for b in range(F.N_MELS):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        e = 0.0
        for j, p in enumerate(power):
            f = j * F.SR / F.NFFT
            w = (f - lo) / (mid - lo) if lo <= f <= mid else (hi - f) / (hi - mid) if mid < f <= hi else 0.0
            e += max(w, 0.0) * p
        out.append(np.log(e + F.LOG_FLOOR))
    return np.array(out)


def test_logmel_matches_reference_filterbank():
    rng = np.random.default_rng(0)
    t = np.arange(F.SR // 4) / F.SR
    wav = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    fe = F.LogMel()
    feats = fe.features(wav)
    assert feats.shape == (len(wav) // F.HOP, F.N_MELS)
    k = 10  # frame k covers samples (k+1)*HOP - WIN .. (k+1)*HOP
    frame = wav[(k + 1) * F.HOP - F.WIN:(k + 1) * F.HOP].astype(np.float64)
    np.testing.assert_allclose(feats[k], _reference_logmel(frame), rtol=0, atol=2e-3)
    # streaming: chunk by chunk equals the whole clip
    fe.reset()
    pushed = np.stack([fe.push(wav[i * F.HOP:(i + 1) * F.HOP]) for i in range(len(feats))])
    assert np.array_equal(pushed, feats)
    with pytest.raises(ValueError):
        fe.push(np.zeros(100))


def test_onoff_send_on_delta():
    oo = F.OnOff(2, delta=0.5)
    assert oo.push(np.array([0.6, -0.2])).tolist() == [1, 0, 0, 0]
    assert oo.push(np.array([0.7, -0.6])).tolist() == [0, 0, 0, 1]
    assert oo.push(np.array([0.0, -0.6])).tolist() == [0, 0, 1, 0]


def test_running_norm_by_hand_and_streaming_equals_whole_clip():
    """RunningNorm: the plain mean of the frames so far, then an exponential mean of time
    constant tau; out = [f, (f - m) / scale]; the graph's front end (VoiceFrontEnd) gives
    the same frames chunk by chunk as for the whole clip, and LogMel's alone without cmn_tau."""
    rn = F.RunningNorm(1, tau=2, scale=[0.5])
    f = [4.0, 2.0, 6.0, 0.0]
    m = [4.0, 3.0, 4.5, 2.25]                 # rates 1, 1/2, then 1/tau = 1/2 from the third frame
    out = np.stack([rn.push(np.array([v], np.float32)) for v in f])
    np.testing.assert_allclose(out[:, 0], f)
    np.testing.assert_allclose(out[:, 1], (np.array(f) - m) / 0.5)
    rng = np.random.default_rng(1)
    wav = (0.1 * rng.standard_normal(F.SR // 2)).astype(np.float32)
    meta = {"logmel_mean": rng.normal(-5, 1, F.N_MELS).tolist(), "logmel_std": rng.uniform(1, 3, F.N_MELS).tolist()}
    plain = F.VoiceFrontEnd(meta)
    ref = F.LogMel(mean=meta["logmel_mean"], std=meta["logmel_std"]).features(wav)
    assert plain.n_out == F.N_MELS and np.array_equal(plain.features(wav), ref)
    fe = F.VoiceFrontEnd({**meta, "cmn_tau": 30.0, "cmn_scale": rng.uniform(0.5, 1, F.N_MELS).tolist()})
    whole = fe.features(wav)
    assert whole.shape == (len(wav) // F.HOP, 2 * F.N_MELS) == (len(ref), fe.n_out)
    assert np.array_equal(whole[:, :F.N_MELS], ref)
    fe.reset()
    pushed = np.stack([fe.push(wav[i * F.HOP:(i + 1) * F.HOP]) for i in range(len(whole))])
    assert np.array_equal(pushed, whole)
    with pytest.raises(ValueError, match="tau"):
        F.RunningNorm(3, tau=0.5)


def test_running_norm_warm_is_the_state_a_stream_reaches():
    """RunningNorm.warm: per example, the running mean and frame count that push reaches from
    power-on through the last n frames of its prefix; a clip applied from that state equals
    the same clip pushed after the prefix."""
    rng = np.random.default_rng(4)
    rn = F.RunningNorm(3, tau=5.0, scale=[1.0, 2.0, 0.5])
    pre, clip = rng.normal(0, 3, (3, 12, 3)).astype(np.float32), rng.normal(0, 1, (3, 7, 3)).astype(np.float32)
    m, n = rn.warm(pre, [0, 4, 12])
    np.testing.assert_array_equal(m[0], 0)
    np.testing.assert_allclose(m[1], pre[1, 8:].mean(0), rtol=1e-6)      # fewer than tau frames: the plain mean
    out = rn.apply(clip, m, n)
    for i, k in enumerate((0, 4, 12)):
        rn.reset()
        for f in pre[i, 12 - k:]:
            rn.push(f)
        assert rn.t == n[i] and np.array_equal(rn.m, m[i])
        np.testing.assert_array_equal(np.stack([rn.push(f) for f in clip[i]]), out[i])
    with pytest.raises(ValueError, match="warm"):
        rn.warm(pre, [13, 0, 0])


def test_noises_are_deterministic_unit_rms():
    for kind in D.NOISES:
        bank = [np.ones(800, np.float32)]
        a = D.noise(kind, 16000, np.random.default_rng(3), bank)
        b = D.noise(kind, 16000, np.random.default_rng(3), bank)
        assert np.array_equal(a, b) and np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)


def test_split_keeps_test_voices_accents_and_words_out_of_training():
    assert not set(D.VARIANTS_TEST) & set(D.VARIANTS_TRAIN + D.VARIANTS_VAL)
    assert not set(D.ACCENTS_TEST) & set(D.ACCENTS_TRAIN) and len(D.ACCENTS_TEST) == 2
    assert not set(D.UNKNOWN_TEST) & set(D.UNKNOWN_TRAIN + D.COMMANDS)
    assert len(D.CLASSES) == 10


def test_per_tick_targets_and_decision_rule():
    t = D.targets_per_tick(np.array([2, 9]), np.array([50 * F.HOP, -1]), 100, after=10, before=5)
    assert (t[0, 45:60] == 2).all() and (t[0, :45] == -1).all() and (t[0, 60:] == -1).all()
    assert (t[1] == 9).all()
    u = D.targets_per_tick(np.array([8, 2]), np.array([50 * F.HOP] * 2), 100, after=10, before=5, unknown_before=30)
    assert (u[0, 20:60] == 8).all() and (u[0, :20] == -1).all() and (u[1, :45] == -1).all()
    trace = np.zeros((20, 2, 10))
    trace[10:, 0, 3] = 10.0   # sample 0: class 3 dominates from tick 10
    assert M.decide(trace, 0.5).tolist() == [3, 9]
    trace[10:, 1, 8] = 10.0   # sample 1: unknown dominates from tick 10
    assert M.decide(trace, 0.5).tolist() == [3, 8]
    trace[15:, 1, 5] = 12.0   # ... then a command: commands come first
    assert M.decide(trace, 0.5).tolist() == [3, 5]


_CLIP = """
import hashlib, numpy as np
from tianrt.demos.voice import data as D
x, end = D.make_clip(0, "left", "en-us", "m3", np.random.default_rng(5), [np.ones(800, np.float32)])
print(hashlib.sha256(x.tobytes()).hexdigest(), end, float(np.abs(x).max()))
"""


@needs_voice
def test_generated_clips_are_deterministic():
    """eSpeak carries state from one utterance to the next, so a clip is reproducible in
    the same sequence of calls: here, the first call of a fresh process, twice."""
    import subprocess
    import sys
    runs = [subprocess.run([sys.executable, "-c", _CLIP], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1]
    _, end, peak = runs[0].split()
    assert 0 < int(end) <= D.CLIP and float(peak) > 0.01


def _shipped():
    import json
    from pathlib import Path
    import tianrt.demos as demos
    data = Path(demos.__file__).resolve().parent / "data"
    return data, json.loads((data / "voice_clips.json").read_text())


def _read_wav(path):
    import wave
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == F.SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0


def test_shipped_model_on_shipped_clips_streams_as_it_classifies():
    """The shipped voice SNN on the shipped clips: chunk-by-chunk streaming (its front end's push +
    Runtime.step) gives the readout of the batch run, and the decisions recorded when the
    model was shipped (voice_clips.json)."""
    import tianrt as tr
    data, clips = _shipped()
    g = tr.load(data / "voice_snn.tnr")
    fe = F.VoiceFrontEnd(g.metadata)
    wavs = [_read_wav(data / c["file"]) for c in clips]
    feats = np.stack([fe.features(w) for w in wavs])
    batch = tr.Runtime(g).run({"x": feats.transpose(1, 0, 2)})["y"]
    decisions = M.decide(batch, g.metadata["threshold"])
    assert [D.CLASSES[int(c)] for c in decisions] == [c["shipped_model_decision"] for c in clips]
    fe.reset()
    rt = tr.Runtime(g)
    w = wavs[0]
    ys = np.stack([rt.step({"x": fe.push(w[i * F.HOP:(i + 1) * F.HOP])[None]})["y"][0]
                   for i in range(len(w) // F.HOP)])
    one = tr.Runtime(g).run({"x": feats[:1].transpose(1, 0, 2)})["y"][:, 0]
    assert np.array_equal(ys, one)                       # the same ticks, batch of one
    np.testing.assert_allclose(ys, batch[:, 0], rtol=0, atol=0.05)  # BLAS rounds a batch of 4 differently


def test_detection_rule_scan_equals_the_online_detector():
    """Rule.scan over a recording's probabilities gives the detections Detector.push
    reports chunk by chunk (threshold, smoothing, hold, refractory), on the shipped model
    and clips; and the hold and refractory periods do what they say on a made-up trace."""
    import tianrt as tr
    from tianrt.demos.voice import stream as S
    data, clips = _shipped()
    g = tr.load(data / "voice_snn.tnr")
    audio = np.concatenate([_read_wav(data / c["file"]) for c in clips] * 2)
    probs, _, _ = S.probs_of(g, audio, backend="reference")
    for rule in (S.Rule(0.3, 5, 1, 50), S.Rule(0.4, 3, 4, 120), S.Rule(0.2, 10, 2, 10)):
        det = S.Detector(g, rule, backend="reference")
        online, _ = S.run(det, audio)
        assert online == rule.scan(probs) and len(online) > 0
    p = np.zeros((40, 10))
    p[:, D.CLASSES.index("background")] = 1.0
    p[5:9, 2], p[5:9, 9] = 1.0, 0.0      # 4 ticks of class 2
    p[20:30, 3], p[20:30, 9] = 1.0, 0.0  # 10 ticks of class 3
    assert S.Rule(0.5, 1, 5, 0).scan(p) == [(3, 24), (3, 29)]   # class 2 too short; the hold counts anew
    assert S.Rule(0.5, 1, 1, 0).scan(p) == [(2, t) for t in range(5, 9)] + [(3, t) for t in range(20, 30)]
    assert S.Rule(0.5, 1, 1, 14).scan(p) == [(2, 5), (3, 20)]          # refractory after each
    assert S.Rule(0.5, 1, 2, 16).scan(p) == [(2, 6), (3, 24)]          # the hold counts after the refractory
    assert S.Rule(0.5, 1, 2, 21).scan(p) == [(2, 6), (3, 29)]          # ticks 28, 29 after the refractory
    assert S.Rule(0.5, 1, 2, 22).scan(p) == [(2, 6)]                   # only tick 29: class 3 is not heard


def _trace(segments, n=10):
    """Probabilities (ticks, n) from [(ticks, class)], one class certain at a time."""
    return np.concatenate([np.eye(n)[np.full(t, c)] for t, c in segments])


def test_detection_rule_refractory_suppresses_a_run_that_began_in_it():
    """The false second command the bicycle heard (docs/voice.md, round 7): a word, then ~0.7 s
    in which ``unknown`` wins (the network hearing the step where a clip's noise ends), then
    another command, a candidate from 0.91 s to 1.06 s after the detection. A 1 s refractory
    lets its tail through (the rule before round 7, whose hold also counted through the
    refractory, reported it as soon as it ended); the 1.2 s refractory after which the hold
    counts anew does not. A second command 1.3 s after the first is heard, and Online agrees
    with scan."""
    from tianrt.demos.voice import stream as S
    BGc, UNK, STOP, SLOWER, GO = (D.CLASSES.index(c) for c in ("background", "unknown", "stop", "slower", "go"))
    word_noise_word = _trace([(50, BGc), (25, STOP), (5, BGc), (65, UNK), (16, SLOWER), (100, BGc)])
    rule = S.Rule(0.9, 1, 5)
    assert rule.refractory == 120 and rule.scan(word_noise_word) == [(STOP, 54)]
    assert S.Rule(0.9, 1, 5, 100).scan(word_noise_word) == [(STOP, 54), (SLOWER, 159)]   # 1 s: the run's tail
    go_stop = _trace([(50, BGc), (25, GO), (100, UNK), (30, STOP), (50, BGc)])
    assert rule.scan(go_stop) == [(GO, 54), (STOP, 179)]
    for p in (word_noise_word, go_stop):
        online = S.Online(rule)
        assert [(c, t) for t, c in enumerate(online.update(x) for x in p) if c is not None] == rule.scan(p)


def test_detection_rule_online_equals_scan_on_random_traces():
    """Online (tick by tick) and Rule.scan (whole recording) agree on seeded random traces of
    words, unknown speech and background, for rules across the settings' ranges."""
    from tianrt.demos.voice import stream as S
    rng = np.random.default_rng(0)
    for trial in range(30):
        segs = [(int(rng.integers(1, 40)), int(rng.integers(10))) for _ in range(40)]
        p = _trace(segs) * 0.6 + rng.dirichlet(np.ones(10), sum(t for t, _ in segs)) * 0.4
        own = tuple((int(c), float(rng.choice([0.2, 0.4, 0.8]))) for c in rng.choice(8, int(rng.integers(0, 3)), False))
        rule = S.Rule(float(rng.choice([0.3, 0.5, 0.7])), int(rng.integers(1, 8)), int(rng.integers(1, 6)),
                      int(rng.integers(0, 60)), per_class=own)
        online = S.Online(rule)
        got = [(c, t) for t, c in enumerate(online.update(x) for x in p) if c is not None]
        assert got == rule.scan(p), (trial, rule)
    for bad in ({"threshold": 0.0}, {"k": 0}, {"hold": 0}, {"refractory": -1}, {"refractory": 1.5},
                {"per_class": ((5, 1.5),)}, {"per_class": ((D.CLASSES.index("unknown"), 0.5),)},
                {"per_class": (5,)}, {"per_class": ((True, 0.5),)}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            S.Rule(**bad)


def test_detection_rule_per_class_threshold():
    """A command with its own threshold: heard where the common threshold would miss it, and
    the best command is the one furthest above its own threshold."""
    from tianrt.demos.voice import stream as S
    BGc, STOP, GO = (D.CLASSES.index(c) for c in ("background", "stop", "go"))
    p = np.zeros((60, 10))
    p[:, BGc] = 1.0
    p[10:30, STOP], p[10:30, BGc] = 0.75, 0.25          # a stop heard at 0.75
    p[40:55, GO], p[40:55, STOP], p[40:55, BGc] = 0.5, 0.45, 0.05
    plain = S.Rule(0.9, 1, 5, 0)
    assert plain.scan(p) == []
    own = S.Rule(0.9, 1, 5, 0, per_class=((STOP, 0.7),))
    assert own.scan(p)[0] == (STOP, 14)
    assert (own.thresholds(10)[[STOP, GO]] == [0.7, 0.9]).all()
    both = S.Rule(0.45, 1, 5, 100, per_class=((STOP, 0.4),))     # go 0.5/0.45 < stop 0.45/0.4
    assert both.scan(p) == [(STOP, 14)] and S.Rule(0.45, 1, 5, 15, per_class=((STOP, 0.4),)).scan(p)[-1][0] == STOP


def test_recipes_prepare_front_ends_and_model_metadata_agree():
    """recipes.prepare: log-mel normalised by the training statistics; with the running
    normalisation 64 channels whose relative half has unit deviation on the training set; a
    model's metadata (graph_of) reproduces the same inputs; the augmentation keeps shapes."""
    from tianrt import train as T
    from tianrt.demos.voice import recipes as R
    rng = np.random.default_rng(0)
    d = {f"{s}_x": rng.normal(-6, 2, (n, 30, F.N_MELS)).astype(np.float32) for s, n in
         (("train", 12), ("val", 4), ("test", 5))}
    d.update({"train_y": np.arange(12) % 10, "val_y": np.arange(4), "test_y": np.arange(5)})
    plain, _, front = R.prepare(d, "logmel")
    np.testing.assert_allclose(plain["train_x"].mean((0, 1)), 0, atol=1e-5)
    out, aug, front = R.prepare(d, "cmn", tau=10.0, context=2.0)
    assert out["test_x"].shape == (5, 30, 2 * F.N_MELS) and np.array_equal(out["test_x"][..., :F.N_MELS], plain["test_x"])
    np.testing.assert_allclose(out["train_x"][..., F.N_MELS:].std((0, 1)), 1, rtol=1e-4)
    assert aug(out["train_x"], np.random.default_rng(1)).shape == out["train_x"].shape
    net = M.build_snn(2 * F.N_MELS, 8, 0)
    g = R.graph_of(net, front, 0.5)
    again, _, _ = R.prepare(d, metadata=g.metadata)
    assert all(np.allclose(again[k], out[k], atol=1e-5) for k in ("train_x", "val_x", "test_x"))
    assert isinstance(net, T.SNN) and g.metadata["cmn_tau"] == 10.0
    with pytest.raises(ValueError, match="front end"):
        R.prepare(d, "mfcc")


def test_recipes_prefix_starts_the_running_mean_after_preceding_audio_and_more_clips_join():
    """prepare(prefix=1): every training clip's relative channels start from a running mean
    warmed on preceding audio (digital silence or other clips), not from a fresh state; the
    log-mel half is only augmented; prefix=0 leaves the fresh start. with_more_training
    appends another data set's training clips and keeps the held-out splits."""
    from tianrt.demos.voice import recipes as R
    rng = np.random.default_rng(0)
    d = {f"{s}_x": rng.normal(-6, 2, (n, 30, F.N_MELS)).astype(np.float32) for s, n in
         (("train", 12), ("val", 4), ("test", 5))}
    d.update({"train_y": np.arange(12) % 10, "train_end": np.full(12, 8000), "val_y": np.arange(4),
              "test_y": np.arange(5)})
    out, aug, front = R.prepare(d, "cmn", tau=10.0, prefix=1.0)
    fresh = R.prepare(d, "cmn", tau=10.0)[1]
    x = out["train_x"]
    a, b = aug(x, np.random.default_rng(2)), fresh(x, np.random.default_rng(2))
    assert a.shape == b.shape == x.shape and np.array_equal(a[..., :F.N_MELS], b[..., :F.N_MELS])
    first = np.abs(a[:, 0, F.N_MELS:]).mean(1)          # fresh: the first frame is its own mean
    assert np.all(np.abs(b[:, 0, F.N_MELS:]) < 1e-5) and np.all(first > 1e-3)
    with pytest.raises(ValueError, match="cmn"):
        R.prepare(d, "logmel", prefix=0.5)
    more = R.with_more_training(d, d)
    assert len(more["train_x"]) == len(more["train_y"]) == len(more["train_end"]) == 24
    assert more["test_x"] is d["test_x"] and np.array_equal(more["train_x"][12:], d["train_x"])
    with pytest.raises(ValueError, match="shape"):
        R.with_more_training(d, {**d, "train_x": d["train_x"][:, :10]})


def test_delta_by_hand_and_streaming_equals_whole_clip():
    """Delta: [f_t, (f_t - f_{t-1}) / scale], 0 at a fresh state's first frame; the graph's
    front end with delta_scale gives the same frames chunk by chunk as for the whole clip,
    and refuses metadata with both front ends."""
    dl = F.Delta(1, scale=[0.5])
    f = [4.0, 2.0, 6.0, 6.0]
    out = np.stack([dl.push(np.array([v], np.float32)) for v in f])
    np.testing.assert_allclose(out[:, 1], np.array([0.0, -2.0, 4.0, 0.0]) / 0.5)
    np.testing.assert_array_equal(F.Delta(1, [0.5]).apply(np.array(f, np.float32)[:, None]), out)
    rng = np.random.default_rng(2)
    wav = (0.1 * rng.standard_normal(F.SR // 4)).astype(np.float32)
    meta = {"logmel_mean": rng.normal(-5, 1, F.N_MELS).tolist(), "logmel_std": rng.uniform(1, 3, F.N_MELS).tolist(),
            "delta_scale": rng.uniform(0.2, 0.5, F.N_MELS).tolist()}
    fe = F.VoiceFrontEnd(meta)
    whole = fe.features(wav)
    ref = F.LogMel(mean=meta["logmel_mean"], std=meta["logmel_std"]).features(wav)
    assert whole.shape == (len(ref), 2 * F.N_MELS) == (len(ref), fe.n_out)
    np.testing.assert_array_equal(whole[:, :F.N_MELS], ref)
    np.testing.assert_allclose(whole[1:, F.N_MELS:], np.diff(ref, axis=0) / meta["delta_scale"], rtol=1e-5, atol=1e-5)
    fe.reset()
    pushed = np.stack([fe.push(wav[i * F.HOP:(i + 1) * F.HOP]) for i in range(len(whole))])
    assert np.array_equal(pushed, whole)
    with pytest.raises(ValueError, match="both"):
        F.VoiceFrontEnd({**meta, "cmn_tau": 10.0, "cmn_scale": meta["delta_scale"]})
    with pytest.raises(ValueError, match="positive"):
        F.Delta(2, [1.0, 0.0])


def test_recipes_delta_front_end_and_two_layers_make_a_graph_that_runs():
    """prepare('delta'): 64 channels whose delta half has unit deviation on the training set,
    augmented on the log-mel frames before the difference; build_snn(layers=2) stacks two
    recurrent ALIF layers; the graph (with the delta front end's metadata) runs in the
    runtime as the trainer computes it, and the same metadata reproduce the inputs."""
    import tianrt as tr
    from tianrt.demos.voice import recipes as R
    rng = np.random.default_rng(0)
    d = {f"{s}_x": rng.normal(-6, 2, (n, 30, F.N_MELS)).astype(np.float32) for s, n in
         (("train", 12), ("val", 4), ("test", 5))}
    d.update({"train_y": np.arange(12) % 10, "val_y": np.arange(4), "test_y": np.arange(5)})
    out, aug, front = R.prepare(d, "delta")
    plain = R.prepare(d, "logmel")[0]
    assert out["test_x"].shape == (5, 30, 2 * F.N_MELS)
    assert np.array_equal(out["test_x"][..., :F.N_MELS], plain["test_x"])
    np.testing.assert_allclose(out["train_x"][..., F.N_MELS:].std((0, 1)), 1, rtol=1e-4)
    a = aug(out["train_x"], np.random.default_rng(1))
    np.testing.assert_allclose(a[..., F.N_MELS:], F.Delta(F.N_MELS, front["delta_scale"]).apply(a[..., :F.N_MELS])
                               [..., F.N_MELS:], rtol=1e-5, atol=1e-5)
    net = M.build_snn(2 * F.N_MELS, 8, 0, layers=2)
    assert sum(isinstance(layer, type(net.layers[0])) for layer in net.layers) == 2
    g = R.graph_of(net, front, 0.5)
    assert [n for n in g.entries if g[n].op == "snn.ALIF"] == ["alif1", "alif2"]
    y = tr.Runtime(g).run({"x": out["test_x"].transpose(1, 0, 2)})["y"]
    np.testing.assert_allclose(y, net.forward(out["test_x"]), rtol=1e-4, atol=1e-4)
    again, _, _ = R.prepare(d, metadata=g.metadata)
    assert all(np.allclose(again[k], out[k], atol=1e-5) for k in ("train_x", "val_x", "test_x"))
    with pytest.raises(ValueError, match="layers"):
        M.build_snn(32, 8, 0, layers=0)


def test_error_tables_count_by_hand():
    """errors: the confusion matrix, accuracy per group and what each unknown word was heard as."""
    from tianrt.demos.voice import errors as E
    y = np.array([0, 0, 8, 8, 9])
    pred = np.array([0, 1, 1, 8, 8])
    cm = E.confusion(y, pred)
    assert cm[0, 0] == 1 and cm[0, 1] == 1 and cm[8, 1] == 1 and cm[8, 8] == 1 and cm[9, 8] == 1 and cm.sum() == 5
    assert E.by_group(y, pred, ["a", "b", "a", "b", "b"]) == {"a": (0.5, 2), "b": (1 / 3, 3)}
    heard = E.heard_as(y, pred, ["left", "left", "loft", "loft", None])
    assert heard == {"loft": {"right": 1, "unknown": 1}}
    meta = [{"variant": v, "accent": "en", "noise": "pink", "snr_db": s, "word": w}
            for v, s, w in (("m1", 3.0, "left"), ("", 7.5, "left"), ("m1", 12.0, "loft"), ("", 19.9, "loft"),
                            ("m1", None, None))]
    text = E.report(y, pred, meta)
    assert "| left | 1 | 1 |" in text and "default 50.0% (2)" in text and "noise only 0.0% (1)" in text
    assert "loft (2): right 1, unknown 1" in text
    assert "left (recall, decided unknown, clips): held-out accents no clips, other accents 50% 0 of 2" in text
    meta[1]["accent"] = "en-029"
    assert E.commands_heard(y, [0, 8, 1, 8, 8], meta, "left", lambda m: m["accent"],
                            {"held": {"en-029"}, "other": {"en"}}) == {"held": (0.0, 1, 1), "other": (1.0, 0, 1)}


@needs_voice
def test_make_set_records_each_clip_word_voice_noise_and_snr():
    """make_set(meta=[]): one dict per clip, in the clips' order — the word spoken (the
    command itself, or the unknown word drawn), the accent and variant, the noise kind and
    the SNR drawn (None for background, which is noise alone)."""
    meta = []
    x, y, end = D.make_set(1, ["en", "en-us"], ["", "m3"], ["loft", "gold"], seed=5, meta=meta)
    assert len(meta) == len(y) == 10
    for m, c, e in zip(meta, y, end):
        assert m["accent"] in ("en", "en-us") and m["variant"] in ("", "m3") and m["noise"] in D.NOISES
        if c < len(D.COMMANDS):
            assert m["word"] == D.CLASSES[c] and 0 <= m["snr_db"] <= 20 and e > 0
        elif c == D.UNK:
            assert m["word"] in ("loft", "gold") and 0 <= m["snr_db"] <= 20
        else:
            assert m["snr_db"] is None and e == -1
    assert D.split_sizes(400) == (400, 66, 150)


def _assert_fd_gradient(loss, y, g, rng, n, eps=1e-6):
    """g equals central finite differences of loss(y) at n random entries of y."""
    for idx in [tuple(rng.integers(0, s) for s in y.shape) for _ in range(n)]:
        yp, ym = y.copy(), y.copy()
        yp[idx] += eps
        ym[idx] -= eps
        assert g[idx] == pytest.approx((loss(yp) - loss(ym)) / (2 * eps), abs=1e-6)


def test_peak_hinge_by_hand_and_against_finite_differences():
    """model.peak_hinge: relu(peak - lo) of the wrong classes (the other commands; unknown too
    in a background clip) + relu(hi - peak) of the clip's own class, over the batch; its
    gradient equals finite differences (peaks at distinct ticks); PeakSNN adds it to the
    per-tick loss."""
    rng = np.random.default_rng(3)
    T_, C = 6, len(D.CLASSES)
    y = rng.normal(0, 2, (T_, 3, C))
    tt = np.full((3, T_), -1)
    tt[0, 3:] = 2                       # the command "straight"
    tt[1, 2:] = D.UNK                   # an unknown word
    tt[2, :] = M.BG                     # background
    value, g = M.peak_hinge(y, tt, lo=0.4, hi=0.6)
    p = M.softmax(y, 2).max(0)
    want = (np.maximum(p[0, [0, 1, 3, 4, 5, 6, 7]] - 0.4, 0).sum() + max(0.6 - p[0, 2], 0)
            + np.maximum(p[1, :8] - 0.4, 0).sum() + max(0.6 - p[1, D.UNK], 0)
            + np.maximum(p[2, :9] - 0.4, 0).sum()) / 3
    assert value == pytest.approx(want) and value > 0
    _assert_fd_gradient(lambda v: M.peak_hinge(v, tt)[0], y, g, rng, 40)
    net = M.build_snn(4, 6, 0, peak=0.5)
    plain = M.build_snn(4, 6, 0)
    out = net.forward(rng.normal(0, 1, (3, T_, 4)))
    v0, g0 = plain.loss_and_grad(out, tt)
    v1, g1 = net.loss_and_grad(out, tt)
    vh, gh = M.peak_hinge(out, tt)
    assert v1 == pytest.approx(v0 + 0.5 * vh) and np.allclose(g1, g0 + 0.5 * gh)


@pytest.mark.parametrize("how", ["hetero", "train_tau"])
def test_per_neuron_time_constants_survive_save_numba_and_integer_mode(tmp_path, how):
    """build_snn(hetero=True): per-neuron beta and rho drawn log-uniform (20-200 ms, 0.1-2 s),
    seeded; with train_tau they are trained. Either way the graph keeps one value per neuron
    through save/load, numba runs it as the reference backend does, and tr.quantize gives the
    integer ALIF one leak and one adaptation decay per neuron, close to the float ones, which
    numba's integer mode runs bit for bit as the reference."""
    import tianrt as tr
    from tianrt.demos.voice import integer as I
    from tianrt.demos.voice import recipes as R
    taus = M.time_constants(16, 1, 0)
    assert np.array_equal(taus[0][0], M.time_constants(16, 1, 0)[0][0])             # seeded
    assert not np.array_equal(taus[0][0], M.time_constants(16, 1, 1)[0][0])
    tau = -0.01 / np.log(taus[0][0].astype(np.float64))
    assert 0.02 <= tau.min() and tau.max() <= 0.2 and len(np.unique(taus[0][1])) == 16
    net = M.build_snn(F.N_MELS, 16, 0, hetero=how == "hetero", train_tau=how == "train_tau")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.5, (6, 40, F.N_MELS)).astype(np.float32)
    if how == "train_tau":
        net.fit(x, np.arange(6) % 10, epochs=2, batch_size=3, optimizer=tr.train.Adam(0.05))
    a = net.layers[0]
    assert len(np.unique(a.beta)) > 1 and len(np.unique(a.rho)) > 1
    front = {"logmel_mean": np.zeros(F.N_MELS), "logmel_std": np.ones(F.N_MELS), "frontend": "logmel"}
    tr.save(R.graph_of(net, front, 0.5), tmp_path / "m.tnr")
    g = tr.load(tmp_path / "m.tnr")
    assert np.array_equal(g["alif1"].beta, a.beta) and np.array_equal(g["alif1"].rho, a.rho)
    xs = x.transpose(1, 0, 2)
    ref = tr.Runtime(g, "reference").run({"x": xs})["y"]
    assert np.array_equal(ref, net.forward(x))
    np.testing.assert_allclose(tr.Runtime(g, "numba").run({"x": xs})["y"], ref, atol=1e-4)
    q = I.quantized(g, calibration=x.reshape(-1, F.N_MELS))
    qa = next(e.node for e in q.entries.values() if e.node.op == "q.ALIF")
    leak = np.asarray(qa.leak_mult, np.float64) / 2.0 ** np.asarray(qa.leak_shift)
    rho = np.asarray(qa.rho_mult, np.float64) / 2.0 ** np.asarray(qa.rho_shift)
    assert leak.shape == (16,) and rho.shape == (16,)
    np.testing.assert_allclose(leak, a.beta, atol=2e-3)
    np.testing.assert_allclose(rho, a.rho, atol=2e-3)
    qr, qn = tr.Runtime(q, "reference").run({"x": xs})["y"], tr.Runtime(q, "numba").run({"x": xs})["y"]
    assert np.array_equal(qr, qn)
    agree = (qr.argmax(-1) == ref.argmax(-1)).mean()
    assert agree > 0.7, agree


def test_noise_steps_extend_the_clips_and_teach_background_after_the_step():
    """with_noise_steps: every training clip gains `extra` ticks; a stepped clip's log-mel
    frames from the step on are digital silence or another background clip's, and from
    max(step, end + 30) on it is taught background; the other clips keep their frames and
    targets, with no target in the extra ticks; deltas are those of the new frames."""
    from tianrt.demos.voice import recipes as R
    rng = np.random.default_rng(0)
    N, T, n = 40, 30, F.N_MELS
    y = np.arange(N) % 10
    ends = np.where(y == M.BG, -1, rng.integers(5, 20, N) * D.HOP)
    d = {"train_x": rng.normal(-6, 2, (N, T, n)).astype(np.float32), "train_y": y, "train_end": ends,
         "val_x": rng.normal(-6, 2, (4, T, n)).astype(np.float32), "val_y": np.arange(4),
         "test_x": rng.normal(-6, 2, (4, T, n)).astype(np.float32), "test_y": np.arange(4)}
    out, _, front = R.prepare(d, "delta")
    st, tt = R.with_noise_steps(out, front, 0.5, extra=20, delay=(2, 8), seed=1, after=4, quiet=4)
    x = st["train_x"]
    assert x.shape == (N, T + 20, 2 * n) and tt.shape == (N, T + 20)
    base = D.targets_per_tick(y, ends, T, after=4, unknown_before=40)
    silence = (np.log(F.LOG_FLOOR) - np.asarray(front["logmel_mean"])) / np.asarray(front["logmel_std"])
    bgs = out["train_x"][y == M.BG, :, :n]
    stepped = 0
    for i in range(N):
        changed = np.flatnonzero(np.any(x[i, :T, :n] != out["train_x"][i, :, :n], axis=1))
        if (tt[i, T:] == PADDING).all():                                # not stepped: padding after the clip
            assert len(changed) == 0 and np.array_equal(tt[i, :T], base[i]) and not x[i, T:, :n].any()
            continue
        stepped += 1
        k = changed[0] if len(changed) else T
        assert np.allclose(x[i, k:, :n], silence, atol=1e-5) or any(
            np.allclose(x[i, k:min(k + 5, T + 20), :n], b[:5]) for b in bgs)
        if y[i] != M.BG:
            e = ends[i] // D.HOP
            assert 2 <= k - e <= 8 or k == T
            assert (tt[i, max(k, e + 4):] == M.BG).all() and np.array_equal(tt[i, :k], base[i, :k])
    assert 10 <= stepped <= 30
    _, late = R.with_noise_steps(out, front, 0.5, extra=20, delay=(2, 8), seed=1, after=4, quiet=9)
    for i in np.flatnonzero((tt[:, T:] == M.BG).all(1) & (y != M.BG)):   # the same steps, background later
        e, k = ends[i] // D.HOP, np.flatnonzero(tt[i] == M.BG)[0]
        assert (late[i, e + 4:max(k, e + 9)] == -1).all() and (late[i, max(k, e + 9):] == M.BG).all()
    np.testing.assert_allclose(x[..., n:], F.Delta(n).apply(x[..., :n])[..., n:] / np.asarray(front["delta_scale"]),
                               rtol=1e-5, atol=1e-5)


def _tiny_set(N=40, T=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % 10
    ends = np.where(y == M.BG, -1, rng.integers(5, 18, N) * D.HOP)
    return {"train_x": rng.normal(-6, 2, (N, T, F.N_MELS)).astype(np.float32), "train_y": y, "train_end": ends,
            "val_x": rng.normal(50, 2, (10, T, F.N_MELS)).astype(np.float32), "val_y": np.arange(10),
            "test_x": rng.normal(50, 2, (10, T, F.N_MELS)).astype(np.float32), "test_y": np.arange(10)}


def test_steps_before_precede_clips_with_training_background_and_carry_round_8s_steps():
    """with_noise_steps(before=): a fraction of the clips is preceded by 8-15 ticks of a
    training background clip or of the clip's own noise (frames from 10 ticks after its word:
    no step), taught background from tick `settle`; the clip and its round-8 step follow
    unchanged in place (the same frames and targets as before=0, shifted); no target after
    them; the stretch never uses a validation or test frame; deltas are the new sequence's."""
    from tianrt.demos.voice import recipes as R
    d = _tiny_set()
    out, _, front = R.prepare(d, "delta")
    N, T, n = out["train_x"].shape[0], out["train_x"].shape[1], F.N_MELS
    x0 = out["train_x"][..., :n]
    kw = dict(extra=20, delay=(2, 8), seed=1, after=4, quiet=4)
    r8, t8 = R.with_noise_steps(out, front, 0.5, **kw)
    st, tt = R.with_noise_steps(out, front, 0.5, before=0.6, before_ticks=(8, 15), same=0.3, settle=3, **kw)
    x = st["train_x"]
    assert x.shape == (N, 15 + T + 20, 2 * n) and tt.shape == (N, 15 + T + 20)
    bg_rows = {r.tobytes() for r in x0[d["train_y"] == M.BG].reshape(-1, n)}
    held = {r.tobytes() for k in ("val_x", "test_x") for r in out[k][..., :n].reshape(-1, n)}
    kinds = {"none": 0, "other": 0, "own": 0}
    for i in range(N):
        p = next(q for q in range(16) if np.array_equal(x[i, q:q + T + 20, :n], r8["train_x"][i, :, :n]))
        assert np.array_equal(tt[i, p:p + T + 20], t8[i]) and (tt[i, p + T + 20:] == PADDING).all()
        if p == 0:
            kinds["none"] += 1
            continue
        assert 8 <= p <= 15 and (tt[i, :3] == NO_TARGET).all() and (tt[i, 3:p] == M.BG).all()
        rows = [r.tobytes() for r in x[i, :p, :n]]
        assert not held.intersection(rows)
        e = 0 if d["train_y"][i] == M.BG else d["train_end"][i] // D.HOP + 10
        own = {r.tobytes() for r in x0[i, e:]}
        if all(r in own for r in rows):
            kinds["own"] += 1
        else:
            assert all(r in bg_rows for r in rows)
            kinds["other"] += 1
    assert 12 <= kinds["none"] <= 28 and kinds["own"] >= 2 and kinds["other"] >= 8, kinds
    np.testing.assert_allclose(x[..., n:], F.Delta(n).apply(x[..., :n])[..., n:] / np.asarray(front["delta_scale"]),
                               rtol=1e-5, atol=1e-5)
    only, to = R.with_noise_steps(out, front, 0.0, extra=0, before=0.6, before_ticks=(8, 15), settle=3, seed=1)
    assert only["train_x"].shape[1] == 15 + T and to.shape == (N, 15 + T)
    with pytest.raises(ValueError, match="before_ticks"):
        R.with_noise_steps(out, front, 0.0, extra=0, before=0.5, before_ticks=(5, 15), settle=10)


def test_narrower_adaptation_spread_draws_and_bounds_the_adaptation():
    """build_snn(hetero, adapt_spread=(0.1, 0.5)): adaptation time constants drawn in 0.1-0.5 s
    (membrane as before); with train_tau the trained ones stay <= 0.5 s after every step."""
    import tianrt as tr
    net = M.build_snn(4, 32, 0, hetero=True, adapt_spread=(0.1, 0.5))
    tau_a = -0.01 / np.log(net.layers[0].rho.astype(np.float64))
    assert 0.1 - 1e-4 <= tau_a.min() and tau_a.max() <= 0.5 + 1e-4
    assert np.array_equal(net.layers[0].beta, M.build_snn(4, 32, 0, hetero=True).layers[0].beta)
    net = M.build_snn(4, 32, 0, hetero=True, train_tau=True, adapt_spread=(0.1, 0.5))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, (8, 30, 4)).astype(np.float32)
    tt = np.repeat((np.arange(8) % 10)[:, None], 30, 1)
    before = net.layers[0].rho.copy()
    net.fit(x, tt, epochs=3, batch_size=4, optimizer=tr.train.Adam(0.3))
    rho = net.layers[0].rho
    assert not np.array_equal(rho, before)
    assert rho.max() <= np.float32(np.exp(-0.01 / 0.5)) * (1 + 1e-6) and (rho > 0).all()
    with pytest.raises(ValueError, match="adapt_spread"):
        M.build_snn(4, 32, 0, adapt_spread=(0.1, 0.5))


def test_demo_trains_what_the_recipes_train(tmp_path):
    """`tianrt demo voice --train` takes the recipes' flags of rounds 8-9 (add_time_flags) and
    --input-gain: with the same flags and seed it trains the same network as recipes.py, bit
    for bit."""
    import tianrt as tr
    from tianrt.demos import voice as V
    from tianrt.demos.voice import recipes as R
    np.savez(tmp_path / "d.npz", **{k: (v[..., :20, :] if k.endswith("_x") else v) for k, v in _tiny_set(20).items()},
             val_end=np.full(10, -1), test_end=np.full(10, -1))
    flags = ["--epochs", "1", "--hidden", "8", "--frontend", "delta", "--hetero", "--train-tau",
             "--adapt-spread", "0.1", "0.5", "--steps", "0.5", "--steps-before", "0.5", "--steps-before-ticks", "10", "14",
             "--input-gain", "1.5"]
    R.main(["--data", str(tmp_path / "d.npz"), "--save", str(tmp_path / "r.tnr"),
            "--results", str(tmp_path / "r.jsonl")] + flags)
    V.main(["--data", str(tmp_path / "d.npz"), "--train", "--model", str(tmp_path / "v.tnr"),
            "--stream-seconds", "2", "--commands", "1", "--out", str(tmp_path / "e.json")] + flags)
    r, v = tr.load(tmp_path / "r.tnr"), tr.load(tmp_path / "v.tnr")
    for name in ("alif1_syn", "alif1", "readout_syn", "readout"):
        for k in ("weight", "weight_rec", "beta", "rho"):
            if hasattr(r[name], k):
                assert np.array_equal(getattr(r[name], k), getattr(v[name], k)), (name, k)
    assert (-0.01 / np.log(r["alif1"].rho.astype(np.float64))).max() <= 0.5 + 1e-4


def test_training_words_are_no_test_word_command_homophone_nor_contain_a_test_word():
    """Round 10's rule for the training split's unknown words (docs/voice.md): a word may
    contain a command (f+right, stop+per) or rhyme with a test word (tight, mellow), but is
    never a test word or a command, never a homophone of one, and never contains a test word
    (flight ⊃ light, slowly ⊃ slow, golden ⊃ gold stay out)."""
    train = D.UNKNOWN_TRAIN + D.UNKNOWN_EMBEDDED
    assert len(set(train)) == len(train) and len(D.UNKNOWN_EMBEDDED) >= 20
    assert not set(train) & set(D.UNKNOWN_TEST + D.COMMANDS + D.HOMOPHONES)
    assert not [(w, t) for w in train for t in D.UNKNOWN_TEST if t in w]
    for w in ("flight", "blight", "aloft", "slowly", "golden", "knight"):   # what the rule keeps out
        assert w in D.HOMOPHONES or any(t in w for t in D.UNKNOWN_TEST)
    assert {"fright", "upright", "ago", "goal", "stopper", "cleft"} <= set(D.UNKNOWN_EMBEDDED)


@needs_voice
def test_training_split_options_change_only_the_training_split(tmp_path):
    """--embedded, --unknowns and --babble act on the training split only: the validation and
    test splits draw the same words, voices, noises and SNRs (their own generators), and
    --splits-from takes them from another data set byte for byte."""
    m0, m1 = {}, {}
    base = D.generate(1, 1, 2, seed=3, meta=m0)
    new = D.generate(1, 1, 2, seed=3, meta=m1, embedded=True, unknowns=3, babble=1.0)
    for k in ("val", "test"):
        assert m0[k] == m1[k] and np.array_equal(base[k][1], new[k][1])
    y = new["train"][1]
    assert (y == D.UNK).sum() == 3 and (y == D.CLASSES.index("background")).sum() == 2 and (y == 0).sum() == 1
    assert all(m["noise"] == "babble" for m, c in zip(m1["train"], y) if c == 9)
    a, b = [], []
    D.make_set(1, ["en"], [""], D.UNKNOWN_TRAIN, seed=4, negatives=3, meta=a)
    D.make_set(1, ["en"], [""], D.UNKNOWN_TRAIN, seed=4, negatives=3, meta=b, babble=0.0)
    n = len(D.COMMANDS) + 3   # the commands and the unknown words come before the background clips
    assert a[:n] == b[:n] and len(b) == n + 3 and not any(m["noise"] == "babble" for m in b[n:])
    assert {m["word"] for m in m1["train"] if m["word"] not in D.COMMANDS} <= set(D.UNKNOWN_TRAIN + D.UNKNOWN_EMBEDDED)
    with pytest.raises(ValueError, match="babble"):
        D.make_set(1, ["en"], [""], ["up"], seed=4, babble=1.5)
    with pytest.raises(ValueError, match="splits"):
        D.generate(1, 1, 2, splits=("train", "dev"))
    src = {f"{k}_{f}": v for k in ("val", "test") for f, v in
           (("x", np.random.default_rng(1).random((3, 100, 32)).astype(np.float32)), ("y", np.arange(3)),
            ("end", np.array([5, -1, 7])))}
    np.savez(tmp_path / "src.npz", **src)
    D.main(["--out", str(tmp_path / "d.npz"), "--train", "1", "--seed", "3", "--embedded", "--unknowns", "3",
            "--splits-from", str(tmp_path / "src.npz")])
    with np.load(tmp_path / "d.npz") as d:
        for k, v in src.items():
            assert d[k].tobytes() == v.tobytes()
        assert d["train_x"].shape == (13, 100, 32) and (d["train_y"] == D.UNK).sum() == 3


def test_babble_bank_and_share_of_words_in_babble_act_on_the_training_split_only(monkeypatch):
    """make_set(bank_size=k) synthesises k utterances for the babble before the clips' own
    words (round 20, data.py --babble-bank), and babble_words is the share of the clips of
    words heard in babble; generate(babble_bank=, babble_words=) changes the training split
    only. The synthesiser is replaced by a counter: what is counted is the calls."""
    said = []

    def utter(word, accent, variant, rng):
        said.append(word)
        return (0.1 * rng.standard_normal(1600)).astype(np.float32)
    monkeypatch.setattr(D, "utter", utter)
    n_words = len(D.COMMANDS) + 1      # one clip per command and one unknown; background says nothing
    for k in (1, 7, 300):
        said.clear()
        D.make_set(1, ["en"], [""], ["up"], seed=4, bank_size=k, babble=1.0)
        assert len(said) == k + n_words and set(said[:k]) <= set(D.UNKNOWN_TRAIN)
    said.clear()
    with pytest.raises(ValueError, match="bank_size=0"):
        D.make_set(1, ["en"], [""], ["up"], seed=4, bank_size=0)
    assert said == [], "a refused set synthesises nothing"
    for share in (0.0, 1.0):     # babble_words: the clips of words' noise, the background's left alone
        meta = []
        D.make_set(2, ["en"], [""], ["up"], seed=4, babble_words=share, meta=meta)
        assert all((m["noise"] == "babble") == bool(share) for m in meta[:-2])
    with pytest.raises(ValueError, match="babble_words"):
        D.make_set(1, ["en"], [""], ["up"], seed=4, babble_words=1.5)
    m0, m1 = {}, {}
    D.generate(1, 1, 2, seed=3, meta=m0)
    D.generate(1, 1, 2, seed=3, meta=m1, babble_bank=200, babble_words=0.5)
    assert m0["val"] == m1["val"] and m0["test"] == m1["test"] and m0["train"] != m1["train"]


def test_compare_streams_are_the_demos_and_its_rows_count_by_hand():
    """stream.background_audio names each 2 s piece's noise when asked, with the same draws
    (the same audio); rule_row counts false alarms, those in babble and those
    0.25-0.75 s after a piece's start, and hits, as by hand on a made-up trace."""
    from tianrt.demos.voice import compare as C
    from tianrt.demos.voice import stream as S
    bank = [np.ones(800, np.float32)]
    a = S.background_audio(7, np.random.default_rng(2), bank)
    kinds = []
    b = S.background_audio(7, np.random.default_rng(2), bank, kinds)
    assert np.array_equal(a, b) and len(kinds) == 4 and set(kinds) <= set(D.NOISES)
    quiet = np.zeros((800, 10))
    quiet[:, 9] = 1.0
    bg = quiet.copy()
    bg[230:240] = np.eye(10)[3]      # a false alarm 0.3 s into the second piece (babble)
    bg[610:620] = np.eye(10)[5]      # one 0.1 s into the fourth (white)
    cmd = quiet.copy()
    cmd[300:305] = np.eye(10)[2]     # the command (class 2) ending at tick 290 heard 10 ticks later
    st = {"bg_kinds": ["white", "babble", "pink", "white"], "events": [(2, 290 * 160), (4, 600 * 160)],
          "cal_events": [(2, 290 * 160)]}
    row = C.rule_row(S.Rule(0.9, 1, 1), {"cal_bg": quiet, "cal_cmd": cmd, "bg": bg, "cmd": cmd}, st, 8.0)
    assert row["fa_count"] == 2 and row["fa_per_hour"] == 2 * 3600 / 8.0 and row["cal_fa_per_hour"] == 0
    assert row["fa_in_babble"] == 1 and row["fa_after_step"] == 1
    assert row["hit_rate"] == 0.5 and row["cal_hit_rate"] == 1.0 and row["latency_ms_p50"] == 110.0


def test_decision_rules_that_weigh_unknown_against_the_commands():
    """voice.decisions (round 11): ``peak`` is model.decide; ``trailing`` at m = -1 and
    ``command_threshold`` at tc = th are ``peak``; on a made-up clip where ``unknown`` holds
    for 30 ticks and a command then peaks briefly at 0.65, ``peak`` hears the command, a
    trailing margin over 20 ticks, a command threshold of 0.7 and the evidence summed over the
    clip hear ``unknown``; ``choose`` takes the grid's best on the clips given; ``auc`` counts
    ties half."""
    from tianrt.demos.voice import decisions as V
    rng = np.random.default_rng(0)
    trace = rng.normal(0, 2, (60, 40, len(D.CLASSES)))
    p = M.softmax(trace, -1)
    assert np.array_equal(V.peak(p), M.decide(trace))
    assert np.array_equal(V.trailing(p, W=10, m=-1.0), V.peak(p))
    assert np.array_equal(V.command_threshold(p, tc=0.5), V.peak(p))
    clip = np.full((60, 1, len(D.CLASSES)), 0.0)
    clip[:, 0, V.BG] = 1.0
    clip[10:40, 0] = 0.0
    clip[10:40, 0, V.UNK] = 0.8
    clip[10:40, 0, V.BG] = 0.2
    clip[40:50, 0] = 0.0
    clip[40:50, 0, 3] = 0.65
    clip[40:50, 0, V.UNK] = 0.35
    assert V.peak(clip)[0] == 3
    assert V.trailing(clip, W=20, m=0.0)[0] == V.UNK and V.trailing(clip, W=5, m=0.0)[0] == 3
    assert V.command_threshold(clip, tc=0.7)[0] == V.UNK
    assert V.evidence(clip, lam=1.0)[0] == V.UNK and V.evidence(clip, lam=0.2)[0] == 3
    y = np.array([V.UNK])
    kw, s = V.choose("command_threshold", clip, y)
    assert kw == {"tc": 0.7, "k": 5} and s["accuracy"] == 1.0 and s["unknown"] == 1.0
    with pytest.raises(ValueError, match="unknown family"):
        V.choose("median", clip, y)
    assert V.auc([2, 3], [1, 2]) == pytest.approx((1 + 0.5 + 1 + 1) / 4)


def test_unknown_weight_weighs_the_per_tick_loss_by_class(tmp_path):
    """tr.train.SNN's per-tick loss with ``class_weight`` (round 12, build_snn(class_weight=)):
    with every weight 1 it is the unweighted loss; with unknown's weight w a taught unknown
    tick counts w times, the sum divided by the taught ticks' weights (by hand); its gradient
    equals finite differences; the weights are checked; recipes --unknown-weight 1 is the
    unweighted loss (None) and another weight trains another network, recorded in the results."""
    import json
    import tianrt as tr
    from tianrt.demos.voice import recipes as R
    rng = np.random.default_rng(5)
    T_, C = 7, len(D.CLASSES)
    y = rng.normal(0, 2, (T_, 3, C))
    tt = np.full((3, T_), -1)
    tt[0, 4:] = 2                       # a command, taught at its end
    tt[1, 1:] = D.UNK                   # an unknown word, taught longer
    tt[2, :] = M.BG                     # background throughout
    v0, g0 = M.build_snn(4, 6, 0).loss_and_grad(y, tt)
    v1, g1 = M.build_snn(4, 6, 0, class_weight=np.ones(C)).loss_and_grad(y, tt)
    assert v1 == pytest.approx(v0) and np.allclose(g1, g0)
    w = np.ones(C)
    w[D.UNK] = 0.25
    net = M.build_snn(4, 6, 0, class_weight=w)
    value, g = net.loss_and_grad(y, tt)
    logp = np.log(M.softmax(y, 2))
    ce = [(-logp[t, b, tt[b, t]], w[tt[b, t]]) for b in range(3) for t in range(T_) if tt[b, t] >= 0]
    assert value == pytest.approx(sum(c * k for c, k in ce) / sum(k for _, k in ce))
    _assert_fd_gradient(lambda v: net.loss_and_grad(v, tt)[0], y, g, rng, 30)
    with pytest.raises(ValueError, match="positive weights"):
        M.build_snn(4, 6, 0, class_weight=np.ones(C - 1))
    assert R.class_weight(1.0) is None and R.class_weight(0.5)[D.UNK] == 0.5 and R.class_weight(0.5).sum() == C - 0.5
    with pytest.raises(ValueError, match="must be > 0"):
        R.class_weight(0.0)
    np.savez(tmp_path / "d.npz", **{k: (v[..., :20, :] if k.endswith("_x") else v) for k, v in _tiny_set(20).items()},
             val_end=np.full(10, -1), test_end=np.full(10, -1))
    nets = {}
    for uw in ("1", "0.3"):
        R.main(["--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden", "8", "--unknown-weight", uw,
                "--save", str(tmp_path / f"{uw}.tnr"), "--results", str(tmp_path / "r.jsonl")])
        nets[uw] = tr.load(tmp_path / f"{uw}.tnr")
    assert not np.array_equal(nets["1"]["readout_syn"].weight, nets["0.3"]["readout_syn"].weight)
    rows = [json.loads(s) for s in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["unknown_weight"] for r in rows] == [1.0, 0.3]


@needs_voice
def test_excluded_words_leave_the_training_split_only():
    """generate(exclude=) (round 12, data.py --exclude-words): the excluded words are never an
    unknown clip's word in the training split; the validation and test splits are unchanged;
    a word that is not a training word is refused."""
    keep = ["up", "down"]
    m0, m1 = {}, {}
    base = D.generate(1, 1, 2, seed=3, meta=m0, splits=("val", "test"))
    new = D.generate(1, 1, 2, seed=3, meta=m1, unknowns=6, embedded=True,
                     exclude=[w for w in D.UNKNOWN_TRAIN + D.UNKNOWN_EMBEDDED if w not in keep])
    for k in ("val", "test"):
        assert m0[k] == m1[k] and np.array_equal(base[k][1], new[k][1])
    words = [m["word"] for m, c in zip(m1["train"], new["train"][1]) if c == D.UNK]
    assert len(words) == 6 and set(words) <= set(keep)
    with pytest.raises(ValueError, match="not among them"):
        D.generate(1, 1, 2, seed=3, splits=("train",), exclude=["loft"])
    with pytest.raises(ValueError, match="not among them"):
        D.generate(1, 1, 2, seed=3, splits=("train",), exclude=["cleft"])   # a round-10 word without embedded


def test_holdout_validation_voices_never_reach_training_nor_the_test_ones_either():
    """voices(holdout_val=True) (round 13, data.py --holdout-val): the validation split's held-out
    accent and voices leave the training split; no test accent or voice is in either."""
    v = D.voices(True)
    train_a, train_v = map(set, v["train"])
    assert set(D.VAL_HOLDOUT_ACCENTS) <= set(D.ACCENTS_TRAIN) and set(D.VAL_HOLDOUT_VARIANTS) <= set(D.VARIANTS_TRAIN)
    assert not train_a & set(D.VAL_HOLDOUT_ACCENTS) and not train_v & set(D.VAL_HOLDOUT_VARIANTS + D.VARIANTS_VAL)
    assert train_a == set(D.ACCENTS_TRAIN) - set(D.VAL_HOLDOUT_ACCENTS)
    assert train_v == set(D.VARIANTS_TRAIN) - set(D.VAL_HOLDOUT_VARIANTS)
    for k in ("train", "val", "val_voices", "val_accents"):
        assert not set(v[k][0]) & set(D.ACCENTS_TEST) and not set(v[k][1]) & set(D.VARIANTS_TEST)
    assert v["test"] == D.voices(False)["test"]
    assert D.voices(False)["train"] == (D.ACCENTS_TRAIN, D.VARIANTS_TRAIN)     # the default split unchanged


@needs_voice
def test_holdout_validation_split_clip_by_clip(tmp_path):
    """generate(holdout_val=True): every training clip is of a training accent and voice, every
    validation clip has a held-out accent or voice (its first half a validation voice, its second
    the held-out accent), none of either split a test accent, voice or word; the test split draws
    the same clips as without the option, and data.py --holdout-val --splits-from makes the
    validation split and copies the test split only."""
    m0, m1 = {}, {}
    base = D.generate(2, 4, 2, seed=3, meta=m0, splits=("test",))
    new = D.generate(2, 4, 2, seed=3, meta=m1, embedded=True, holdout_val=True)
    assert m0["test"] == m1["test"] and np.array_equal(base["test"][1], new["test"][1])
    held_a, held_v = set(D.VAL_HOLDOUT_ACCENTS), set(D.VAL_HOLDOUT_VARIANTS + D.VARIANTS_VAL)
    for m in m1["train"]:
        assert m["accent"] not in held_a | set(D.ACCENTS_TEST) and m["variant"] not in held_v | set(D.VARIANTS_TEST)
        assert m["word"] not in D.UNKNOWN_TEST
    val = m1["val"]
    assert len(val) == len(new["val"][1]) == 4 * (len(D.COMMANDS) + 2)
    for i, m in enumerate(val):
        assert m["accent"] not in D.ACCENTS_TEST and m["variant"] not in D.VARIANTS_TEST
        assert m["word"] not in D.UNKNOWN_TEST
        assert (m["variant"] in held_v) if i < len(val) // 2 else (m["accent"] in held_a)
    src = {f"{k}_{f}": v for k in ("val", "test") for f, v in
           (("x", np.random.default_rng(1).random((3, 100, 32)).astype(np.float32)), ("y", np.arange(3)),
            ("end", np.array([5, -1, 7])))}
    np.savez(tmp_path / "src.npz", **src)
    D.main(["--out", str(tmp_path / "d.npz"), "--train", "1", "--seed", "3", "--holdout-val",
            "--splits-from", str(tmp_path / "src.npz")])
    with np.load(tmp_path / "d.npz") as d:
        assert all(np.array_equal(d[f"test_{f}"], src[f"test_{f}"]) for f in ("x", "y", "end"))
        assert len(d["val_y"]) == 20 * (len(D.COMMANDS) + 2) and len(d["train_y"]) == len(D.COMMANDS) + 4


@needs_voice
def test_foreign_accents_reach_the_training_split_only(tmp_path):
    """generate(foreign=) (round 14, data.py --foreign): the foreign languages speak training clips
    only — never a validation or test clip, which draw the same words, voices and noises as without
    the option (eSpeak's state carried from the calls before makes the samples differ slightly:
    --splits-from copies them) — the
    training split keeps its number of clips, its voices and words, and no foreign language is an
    English (training or test) accent; English accents are refused as foreign ones."""
    assert not set(D.ACCENTS_FOREIGN) & set(D.ACCENTS_TRAIN + D.ACCENTS_TEST)
    assert not [a for a in D.ACCENTS_FOREIGN if a.startswith("en")]
    m0, m1 = {}, {}
    base = D.generate(3, 1, 2, seed=3, meta=m0, embedded=True)
    new = D.generate(3, 1, 2, seed=3, meta=m1, embedded=True, foreign=D.ACCENTS_FOREIGN, foreign_fraction=0.5)
    for k in ("val", "test"):
        assert m0[k] == m1[k] and np.array_equal(base[k][1], new[k][1])
        assert not {m["accent"] for m in m1[k]} & set(D.ACCENTS_FOREIGN)
    assert np.array_equal(base["train"][1], new["train"][1]) and len(m1["train"]) == len(m0["train"])
    accents = [m["accent"] for m in m1["train"]]
    assert set(accents) <= set(D.ACCENTS_TRAIN + D.ACCENTS_FOREIGN) and set(accents) & set(D.ACCENTS_FOREIGN)
    assert not set(accents) & set(D.ACCENTS_TEST)
    assert {m["variant"] for m in m1["train"]} <= set(D.VARIANTS_TRAIN)
    assert not {m["word"] for m in m1["train"]} & set(D.UNKNOWN_TEST)
    speech = [x for x, y in zip(*new["train"][:2]) if y != D.CLASSES.index("background")]
    assert all(np.max(np.abs(x)) > 0 for x in speech)
    with pytest.raises(ValueError, match="English accents"):
        D.generate(1, 1, 2, seed=3, splits=("train",), foreign=["de", "en-029"])
    with pytest.raises(ValueError, match="foreign_fraction"):
        D.generate(1, 1, 2, seed=3, splits=("train",), foreign=["de"], foreign_fraction=1.0)
    src = {f"{k}_{f}": v for k in ("val", "test") for f, v in
           (("x", np.zeros((3, 100, 32), np.float32)), ("y", np.arange(3)), ("end", np.array([5, -1, 7])))}
    np.savez(tmp_path / "src.npz", **src)
    D.main(["--out", str(tmp_path / "d.npz"), "--train", "1", "--seed", "3", "--foreign",
            "--splits-from", str(tmp_path / "src.npz")])
    with np.load(tmp_path / "d.npz") as d:
        assert all(np.array_equal(d[f"{k}_{f}"], src[f"{k}_{f}"]) for k in ("val", "test") for f in ("x", "y", "end"))
        assert len(d["train_y"]) == len(D.COMMANDS) + 4


@needs_voice
def test_foreign_accents_say_the_commands_audibly():
    """accents.py (round 14): each chosen language says every command (default variant) non-empty,
    at 0.4-1.6x the English voice's duration and >= 0.4x its energy, with phonemes of its own."""
    from tianrt.demos.voice import accents as A
    for lang in D.ACCENTS_FOREIGN:
        r = A.ratios(lang, "", D.COMMANDS)
        assert r.shape == (len(D.COMMANDS), 2)
        assert np.all((r[:, 0] > 0.4) & (r[:, 0] < 1.6)) and np.all(r[:, 1] > 0.4), (lang, r)
        assert A.phonemes("left", lang).strip()
    assert A.ratios("en", "", ["go"])[0, 0] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="no voice"):
        A.phonemes("left", "xx-nonexistent")
