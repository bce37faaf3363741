"""``tianrt demo voice``: spoken commands for the bicycle, heard by a recurrent adaptive-LIF
network trained with surrogate gradients (docs/voice.md).

    tianrt demo voice                       # load the shipped model, evaluate, voice-eval.json
    tianrt demo voice --train               # train from scratch (50 epochs, 256 ALIF: 22 min here)

Generating data needs the ``voice`` extra (eSpeak NG from the espeakng-loader wheel):
``pip install tianrt[voice]``. Writes ``voice-eval.json`` with accuracy (10 classes, held-out
voices and accents), accuracy_ann_baseline, accuracy_int8, false_alarms_per_hour and
latency_ms_p50, and the measurements behind them.
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


def _limit_threads():
    try:  # one BLAS thread: the per-tick matrices are small, threads only contend
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


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


def graph_of(net, mean, std, threshold):
    from .data import CLASSES
    g = net.to_graph(name="voice-snn")
    g.metadata.update({"logmel_mean": [float(v) for v in mean], "logmel_std": [float(v) for v in std],
                       "threshold": float(threshold), "classes": list(CLASSES)})
    return g


def graph_accuracy(g, x, y, threshold, backend="reference", batch=500):
    """Clip accuracy of the graph run by the runtime, with the detector's decision rule."""
    from .model import decide
    preds = []
    for i in range(0, len(x), batch):
        rt = tr.Runtime(g, backend=backend)
        out = rt.run({"x": x[i:i + batch].transpose(1, 0, 2)})
        preds.append(decide(out["y"], threshold))
    pred = np.concatenate(preds)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tianrt demo voice", description=DEMO_HELP)
    p.add_argument("--data", default="voice-data.npz", help="data set (generated there if missing)")
    p.add_argument("--clips", type=int, default=400, help="training clips per class when generating")
    p.add_argument("--train", action="store_true", help="train the SNN instead of loading the shipped one")
    p.add_argument("--model", default=str(SHIPPED), help="the SNN to load (or to write with --train)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threshold", type=float, default=0.5, help="clip decision threshold (5-tick smoothing)")
    p.add_argument("--stream-threshold", type=float, default=0.7,
                   help="streaming detector threshold (20-tick smoothing; docs/voice.md)")
    p.add_argument("--stream-smoothing", type=int, default=20)
    p.add_argument("--stream-seconds", type=float, default=600, help="background audio for false alarms")
    p.add_argument("--commands", type=int, default=60, help="commands in the streaming test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="voice-eval.json")
    a = p.parse_args(argv)
    _limit_threads()
    from . import model as M
    from . import stream as S
    res = {}
    d = load_data(a.data, a.clips, a.seed)
    raw = {k: d[k] for k in ("train_x", "val_x", "test_x")}
    if a.train or not Path(a.model).exists():
        mean, std = raw["train_x"].mean((0, 1)), raw["train_x"].std((0, 1))
    else:
        g = tr.load(a.model)
        mean, std = np.array(g.metadata["logmel_mean"]), np.array(g.metadata["logmel_std"])
    for k in raw:
        d[k] = ((raw[k] - mean) / std).astype(np.float32)
    if a.train or not Path(a.model).exists():
        t0 = time.time()
        net = M.train_snn(d, epochs=a.epochs, hidden=a.hidden, seed=a.seed, lr=a.lr, log=_log)
        res["train_seconds_snn"] = round(time.time() - t0, 1)
        g = graph_of(net, mean, std, a.threshold)
        tr.save(g, a.model)
        _log(f"saved {a.model}")
    res["accuracy"], _ = graph_accuracy(g, d["test_x"], d["test_y"], a.threshold)
    _log(f"SNN test accuracy {res['accuracy']:.3f}")
    res["accuracy_int8"], _ = graph_accuracy(int8_graph(g), d["test_x"], d["test_y"], a.threshold)
    _log(f"SNN int8-weight accuracy {res['accuracy_int8']:.3f}")
    t0 = time.time()
    ann = M.train_ann(d, seed=a.seed, log=_log)
    res["accuracy_ann_baseline"] = ann.accuracy(d["test_x"], d["test_y"])
    res["train_seconds_ann"] = round(time.time() - t0, 1)
    _log(f"ANN baseline test accuracy {res['accuracy_ann_baseline']:.3f}")
    res.update(streaming(g, mean, std, a, S))
    res["test_clips"] = int(len(d["test_y"]))
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
    return 0


def streaming(g, mean, std, a, S):
    from . import data as D
    from . import synth
    rng = np.random.default_rng(a.seed + 7)
    try:
        tr.Runtime(g, backend="numba")
        backend = "numba"
    except tr.TianrtError:
        backend = "reference"
    out = {"stream_backend": backend, "stream_threshold": a.stream_threshold,
           "stream_smoothing_ticks": a.stream_smoothing}
    if not synth.available():
        out["streaming"] = "skipped: needs the voice extra (eSpeak NG) to synthesise the stream"
        return out
    bank = [D.utter(w, "en", "", rng) for w in D.UNKNOWN_TRAIN[:24]]
    det = S.Detector(g, mean, std, a.stream_threshold, a.stream_smoothing, backend=backend)
    det.push(np.zeros(160, np.float32))  # compile / warm up
    bg = S.background_audio(a.stream_seconds, rng, bank)
    dets, secs = S.run(det, bg)
    out["false_alarms_per_hour"] = len(dets) * 3600.0 / a.stream_seconds
    out["background_seconds"] = a.stream_seconds
    out["realtime_factor"] = round(a.stream_seconds / secs, 1)  # front end + graph + detector
    out["graph_realtime_factor"] = round(a.stream_seconds / det.graph_seconds, 1)
    det = S.Detector(g, mean, std, a.stream_threshold, a.stream_smoothing, backend=backend)
    audio, events = S.command_audio(a.commands, rng, bank)
    dets, _ = S.run(det, audio)
    hits, lat, wrong = S.score(dets, events)
    out["stream_commands"] = len(events)
    out["stream_hit_rate"] = hits / max(1, len(events))
    out["stream_wrong_detections"] = wrong
    out["latency_ms_p50"] = float(np.median(lat)) if lat else None
    out["latency_ms_p90"] = float(np.percentile(lat, 90)) if lat else None
    return out
