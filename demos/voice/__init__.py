"""``tianrt demo voice``: spoken commands for the bicycle, heard by a recurrent adaptive-LIF
network trained with surrogate gradients (docs/voice.md).

    tianrt demo voice                       # load the shipped model, evaluate, voice-eval.json
    tianrt demo voice --train               # train from scratch (80 epochs, 256 ALIF, log-mel: the
                                            # shipped recipe; --frontend delta: round 6's, docs/voice.md;
                                            # --hetero --train-tau --steps --steps-before: rounds 8-9)

Generating data needs the ``voice`` extra (eSpeak NG from the espeakng-loader wheel):
``pip install tianrt[voice]``. Writes ``voice-eval.json`` with accuracy (10 classes, held-out
voices and accents), accuracy_ann_baseline, accuracy_int8 (the integer-mode graph of
``tr.quantize``, demos/voice/integer.py), false_alarms_per_hour and latency_ms_p50, and the
measurements behind them.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import tianrt as tr

DEMO_NAME = "voice"
DEMO_HELP = "voice commands: a recurrent ALIF SNN trained by BPTT, a streaming detector, voice-eval.json"
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "voice_snn.tnr"


def _log(msg):
    print(msg, flush=True)


def load_data(path, n_train, seed):
    from . import data as D
    path = Path(path)
    if not path.exists():
        from . import synth
        if not synth.available():
            raise SystemExit("tianrt demo voice: no data at {path} and no synthesiser: "
                             "pip install 'tianrt[voice]' (espeakng-loader) to generate it")
        _log(f"generating the voice data set ({n_train} training clips per class) -> {path}")
        D.main(["--out", str(path), "--train", str(n_train), "--seed", str(seed)])
    return dict(np.load(path))


def graph_traces(g, x, backend="reference", batch=500):
    """The graph's readout traces (ticks, clips, classes) on clips ``x`` (clips, ticks, inputs),
    run by the runtime ``batch`` clips at a time."""
    return np.concatenate([tr.Runtime(g, backend=backend).run({"x": x[i:i + batch].transpose(1, 0, 2)})["y"]
                           for i in range(0, len(x), batch)], axis=1)


def graph_accuracy(g, x, y, threshold, backend="reference", batch=500):
    """Clip accuracy of the graph run by the runtime, with the detector's decision rule."""
    from .model import decide
    pred = decide(graph_traces(g, x, backend, batch), threshold)
    return float((pred == y).mean()), pred


def int8_graph(g):
    """The graph with every synapse's weights rounded to int8 on one scale per matrix."""
    import copy
    q = copy.deepcopy(g)
    for name in q.entries:
        n = q[name]
        for k in ("weight", "weight_rec"):
            w = getattr(n, k, None)
            if isinstance(w, np.ndarray) and n.op.startswith("snn."):
                s = float(np.abs(w).max()) / 127.0
                setattr(n, k, (np.round(w / s).clip(-127, 127) * s).astype(np.float32))
    return q


def integer_accuracy(g, d, threshold, seed, pred) -> dict:
    """``accuracy_int8``: the integer (chip) mode graph of ``tr.quantize`` (demos/voice/integer.py),
    calibrated on 4096 training frames, run by the numba backend's integer mode (bit-exact with
    the chip); beside it the float graph with its weights only rounded to int8."""
    from . import integer
    q = integer.quantized(g, integer.training_frames(d, seed))
    out = {}
    out["accuracy_int8"], pred8 = graph_accuracy(q, d["test_x"], d["test_y"], threshold, backend=_fast())
    out["int8_changed_decisions"] = int((pred != pred8).sum())
    out["int8_mode"] = "tr.quantize integer mode (q.SynRecurrent with a rescaled feed-forward product)"
    _log(f"SNN integer-mode accuracy {out['accuracy_int8']:.3f} ({out['int8_changed_decisions']} decisions changed)")
    out["accuracy_int8_weights_only"], _ = graph_accuracy(int8_graph(g), d["test_x"], d["test_y"], threshold)
    _log(f"SNN with int8-rounded weights (float runtime) {out['accuracy_int8_weights_only']:.3f}")
    return out


def _fast() -> str:
    try:
        import numba  # noqa: F401
        return "numba"
    except ImportError:
        return "reference"


def main(argv=None) -> int:
    from . import recipes as R
    p = argparse.ArgumentParser(prog="tianrt demo voice", description=DEMO_HELP)
    p.add_argument("--data", default="voice-data.npz", help="data set (generated there if missing)")
    p.add_argument("--clips", type=int, default=400, help="training clips per class when generating")
    p.add_argument("--train", action="store_true", help="train the SNN instead of loading the shipped one")
    p.add_argument("--model", default=str(SHIPPED), help="the SNN to load (or to write with --train)")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1, help="with --train: stacked recurrent ALIF layers of --hidden")
    p.add_argument("--peak", type=float, default=0.0,
                   help="with --train: weight of the clip decision's loss (model.peak_hinge) beside the per-tick one "
                        "(tried, not shipped: docs/voice.md)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--unknown-before", type=int, default=40,
                   help="ticks before the end of an unknown word from which it is taught as unknown")
    p.add_argument("--warp", type=float, default=0.0,
                   help="training augmentation: vocal-tract-length warp of the mel axis, up to this fraction")
    p.add_argument("--tilt", type=float, default=0.0,
                   help="training augmentation: random spectral tilt, standard deviation (normalised units)")
    p.add_argument("--frontend", default="logmel", choices=R.FRONT_ENDS,
                   help="with --train: log-mel alone (the shipped recipe), or beside it their causal first "
                        "difference (round 6's best on clips, not shipped), or relative to a running mean, or "
                        "send-on-delta ON/OFF spikes alone or beside the log-mel (round 19) (docs/voice.md)")
    R.add_input_flags(p)   # with --train: --onoff-delta, --onoff-amplitude, --input-gain (round 19)
    p.add_argument("--tau", type=float, default=100.0, help="with --frontend cmn: the running mean's time constant, ticks")
    p.add_argument("--prefix", type=float, default=0.0,
                   help="with --train --frontend cmn: this fraction of the training clips starts the running mean "
                        "after preceding audio (silence or other clips), as in a stream")
    p.add_argument("--more", action="append", default=[],
                   help="with --train: another data set (another seed) whose training clips join the training split")
    R.add_time_flags(p)   # with --train: --hetero, --train-tau, --adapt-spread, --steps, --steps-before (rounds 8-9)
    p.add_argument("--weight-decay", type=float, default=0.0, help="with --train: AdamW's decoupled weight decay")
    p.add_argument("--dropout", type=float, default=0.0, help="with --train: dropout of the hidden spikes")
    p.add_argument("--threshold", type=float, default=0.5, help="clip decision threshold (5-tick smoothing)")
    p.add_argument("--stream-seconds", type=float, default=3600,
                   help="background audio for calibrating the detector and for counting false alarms")
    p.add_argument("--commands", type=int, default=100, help="commands in the calibration and test streams")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="voice-eval.json")
    a = p.parse_args(argv)
    from . import data as D
    from . import model as M
    from . import stream as S
    M.limit_threads()
    res = {}
    d = load_data(a.data, a.clips, a.seed)
    train = a.train or not Path(a.model).exists()
    if train and a.more:
        d = R.with_more_training(d, *(dict(np.load(m)) for m in a.more))
    # the front end: the training set's statistics when training, else the model's own
    d, aug, front = R.prepare(d, a.frontend if train else None, a.tau, a.warp, a.tilt,
                              metadata=None if train else tr.load(a.model).metadata,
                              prefix=a.prefix if train else 0.0, onoff_delta=a.onoff_delta,
                              onoff_amplitude=a.onoff_amplitude)
    if train:
        dt, targets = R.stepped(d, front, a)   # the training clips with noise steps, when asked for
        t0, c0 = time.time(), time.process_time()
        net = M.train_snn(dt, epochs=a.epochs, hidden=a.hidden, seed=a.seed, lr=a.lr,
                          unknown_before=a.unknown_before, augment=aug, weight_decay=a.weight_decay,
                          dropout=a.dropout, layers=a.layers, peak=a.peak, hetero=a.hetero,
                          train_tau=a.train_tau, adapt_spread=a.adapt_spread, targets=targets, log=_log,
                          gain=a.input_gain)
        res["train_seconds_snn"] = round(time.time() - t0, 1)          # wall clock
        res["train_cpu_seconds_snn"] = round(time.process_time() - c0, 1)  # one thread: the single-core figure
        g = R.graph_of(net, front, a.threshold)
        tr.save(g, a.model)
        _log(f"saved {a.model}")
    else:
        g = tr.load(a.model)
    res["accuracy"], pred = graph_accuracy(g, d["test_x"], d["test_y"], a.threshold)
    _log(f"SNN test accuracy {res['accuracy']:.3f}")
    res.update(integer_accuracy(g, d, a.threshold, a.seed, pred))
    res["recall_per_class"] = {c: float((pred[d["test_y"] == i] == i).mean()) for i, c in enumerate(D.CLASSES)}
    t0 = time.time()
    ann = M.train_ann(R.training_rows(d), seed=a.seed, augment=aug, log=_log)
    res["accuracy_ann_baseline"] = ann.accuracy(d["test_x"], d["test_y"])
    res["train_seconds_ann"] = round(time.time() - t0, 1)
    _log(f"ANN baseline test accuracy {res['accuracy_ann_baseline']:.3f}")
    res.update(streaming(g, a, S))
    res["test_clips"] = int(len(d["test_y"]))
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
    return 0


def streaming(g, a, S):
    """Calibrate the detection rule on training material, then measure it on held-out
    streams: false alarms on background-only audio, hits and latency on commands."""
    from . import synth
    try:
        tr.Runtime(g, backend="numba")
        backend = "numba"
    except tr.TianrtError:
        backend = "reference"
    out = {"stream_backend": backend}
    if not synth.available():
        out["streaming"] = "skipped: needs the voice extra (eSpeak NG) to synthesise the stream"
        return out
    secs = a.stream_seconds
    bg, _, audio, events = S.calibration_streams(secs, a.commands, a.seed)
    bg_p, _, _ = S.probs_of(g, bg, backend)
    cmd_p, _, _ = S.probs_of(g, audio, backend)
    rule, table = S.calibrate(bg_p, secs, cmd_p, events, max_fa_per_hour=1.0)  # the target
    out["rule"] = {"threshold": rule.threshold, "smoothing_ticks": rule.k, "hold_ticks": rule.hold,
                   "refractory_ticks": rule.refractory}
    best = [t for t in table if (t["threshold"], t["k"], t["hold"]) == (rule.threshold, rule.k, rule.hold)][0]
    out["calibration"] = {"background_seconds": secs, "false_alarms_per_hour": best["fa_per_hour"],
                          "commands": len(events), "hit_rate": best["hit_rate"]}
    _log(f"detection rule {out['rule']} (calibration: {out['calibration']})")
    bg, _, audio, events = S.held_out_streams(secs, a.commands, a.seed)
    det = S.Detector(g, rule, backend=backend)
    det.push(np.zeros(160, np.float32))  # compile / warm up
    dets, t = S.run(det, bg)
    out["false_alarms_per_hour"] = len(dets) * 3600.0 / secs
    out["background_seconds"] = secs
    out["realtime_factor"] = round(secs / t, 1)  # front end + graph + detector
    out["graph_realtime_factor"] = round(secs / det.graph_seconds, 1)
    det = S.Detector(g, rule, backend=backend)
    dets, _ = S.run(det, audio)
    hits, lat, wrong = S.score(dets, events)
    out["stream_commands"] = len(events)
    out["stream_hit_rate"] = hits / max(1, len(events))
    out["stream_wrong_detections"] = wrong
    out["latency_ms_p50"] = float(np.median(lat)) if lat else None
    out["latency_ms_p90"] = float(np.percentile(lat, 90)) if lat else None
    return out
