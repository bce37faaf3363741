"""Digits demo: train an MLP and a small CNN in numpy on scikit-learn's bundled 8x8 digits
(nothing is downloaded), convert them to spiking networks, quantise them to int8, and
sweep the number of ticks T.

Stratified 70/30 split with seed 0. The trained weights ship in demos/data/ as tianrt
model files (``--retrain`` trains them again, ``python -m tianrt.demos.make_digits_weights``
rewrites the shipped files). For every model and T the demo prints the accuracy of the
converted SNN (float and int8 integer mode), of the hybrid network whose first layer stays
ANN, the spikes and synaptic operations per inference, and the ANN's MACs; it writes a
PNG plot of accuracy against T.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import tianrt as tr
from tianrt import opcount

DEMO_NAME = "digits"
DEMO_HELP = "train/convert/quantise an MLP and a CNN on 8x8 digits; accuracy vs T table and plot"
DATA = Path(__file__).with_name("data")
TICKS = (4, 8, 16, 32, 64)


def load_split(seed: int = 0):
    """(x_train, x_test, y_train, y_test), pixels scaled to [0, 1], stratified 70/30."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return train_test_split(x, d.target, test_size=0.3, stratify=d.target, random_state=seed)


def as_images(x):
    return x.reshape(-1, 1, 8, 8)


def activation(kind: str):
    """"qcfs": ClippedReLU quantised to 4 levels with a learnt clip during training
    (conversion-aware, Bu et al. 2022; exported as a plain ClippedReLU); "relu": ReLU."""
    T = tr.train
    if kind == "qcfs":
        return lambda: T.ClippedReLU(1.0, levels=4, trainable=True)
    if kind == "relu":
        return T.ReLU
    raise ValueError(f"activation must be 'qcfs' or 'relu', got {kind!r}")


def train_mlp(x, y, seed: int = 0, progress: bool = True, act: str = "qcfs") -> tr.Graph:
    T = tr.train
    a = activation(act)
    m = T.Sequential(T.Dense(64, 128), a(), T.Dense(128, 64), a(), T.Dense(64, 10),
                     input_shape=(64,), seed=seed)
    m.fit(x, y, epochs=60, batch_size=32, optimizer=T.Adam(1e-3, weight_decay=1e-4),
          lr_schedule="cosine", progress=progress)
    return m.to_graph(name="digits-mlp")


def train_cnn(x, y, seed: int = 0, progress: bool = True, act: str = "qcfs") -> tr.Graph:
    T = tr.train
    a = activation(act)
    m = T.Sequential(T.Conv2d(1, 32, 3, padding=1), a(), T.Conv2d(32, 32, 3, padding=1), a(),
                     T.AvgPool2d(2), T.Flatten(), T.Dropout(0.3, seed=seed), T.Dense(512, 64), a(),
                     T.Dense(64, 10), input_shape=(1, 8, 8), seed=seed)
    m.fit(as_images(x), y, epochs=40, batch_size=32, optimizer=T.Adam(1e-3, weight_decay=5e-4),
          lr_schedule="cosine", progress=progress)
    return m.to_graph(name="digits-cnn")


MODELS = {"mlp": (train_mlp, lambda x: x), "cnn": (train_cnn, as_images)}


def get_models(retrain: bool, x_tr, y_tr, seed: int = 0, progress: bool = True,
               act: str = "qcfs", names=tuple(MODELS)) -> dict[str, tr.Graph]:
    out = {}
    for name in names:
        fn = MODELS[name][0]
        path = DATA / f"digits_{name}.tnr"
        if retrain or act != "qcfs" or not path.exists():
            t0 = time.perf_counter()
            out[name] = fn(x_tr, y_tr, seed=seed, progress=progress, act=act)
            print(f"trained {name} in {time.perf_counter() - t0:.1f} s")
        else:
            out[name] = tr.load(path)
    return out


def accuracy(graph, x, y, ticks: int, backend: str) -> tuple[float, object]:
    outs = tr.Runtime(graph, backend=backend).run({"x": x}, ticks=ticks)  # whole set as one batch
    return float((outs["y"][-1].argmax(axis=1) == y).mean()), outs


def sweep(name: str, ann, x_tr, x_te, y_te, ticks, backend: str, method: str, int8: bool,
          report=None, per_channel: bool = True) -> list[dict]:
    prep = MODELS[name][1]
    xc, xt = prep(x_tr), prep(x_te)
    ann_acc, _ = accuracy(ann, xt, y_te, 1, "reference")
    macs = opcount.ann_macs(ann)
    rows = []
    for T in ticks:
        snn = tr.convert(ann, calibration={"x": xc}, T=T, method=method, per_channel=per_channel)
        probed = opcount.probe_spikes(snn, window=T)
        acc, outs = accuracy(probed, xt, y_te, T, backend)
        ops = opcount.snn_ops(probed, outs, ticks=T)
        hyb = tr.convert(ann, calibration={"x": xc}, T=T, method=method, per_channel=per_channel,
                         layers=slice(1, None))
        hyb_acc, _ = accuracy(hyb, xt, y_te, T, backend)
        row = {"model": name, "T": T, "ann": ann_acc, "snn": acc, "hybrid": hyb_acc, "spikes": ops["spikes"],
               "synops": ops["synops"], "dense_macs": ops["dense_macs"], "ann_macs": macs}
        if int8:
            row["snn_int8"], _ = accuracy(tr.quantize(snn, calibration={"x": xc}), xt, y_te, T, backend)
            row["hybrid_int8"], _ = accuracy(tr.quantize(hyb, calibration={"x": xc}), xt, y_te, T, backend)
        rows.append(row)
        if report is not None:
            report([row])
    return rows


HEAD = ["model", "T", "ANN %", "SNN %", "d", "int8 %", "hybrid %", "hyb int8 %", "spikes/inf",
        "synops/inf", "input MACs", "ANN MACs"]


def print_head() -> None:
    print("  ".join(f"{h:>10s}" for h in HEAD), flush=True)


def print_rows(rows, int8: bool) -> None:
    for r in rows:
        cells = [r["model"], str(r["T"]), f"{100 * r['ann']:.2f}", f"{100 * r['snn']:.2f}",
                 f"{100 * (r['snn'] - r['ann']):+.2f}",
                 f"{100 * r['snn_int8']:.2f}" if int8 else "-", f"{100 * r['hybrid']:.2f}",
                 f"{100 * r['hybrid_int8']:.2f}" if int8 else "-", f"{r['spikes']:.0f}",
                 f"{r['synops']:.0f}", f"{r['dense_macs']:.0f}", f"{r['ann_macs']}"]
        print("  ".join(f"{c:>10s}" for c in cells), flush=True)


def print_notes() -> None:
    print("(d: SNN minus ANN, points; synops: spikes x non-zero fan-out; input MACs: the first layer's "
          "synapse fed by a direct current, per inference)")


def plot(rows, path: Path, int8: bool) -> None:
    """Accuracy (%) against T (log2 axis), one colour per model, drawn with OpenCV."""
    import cv2

    w, h, left, right, top, bottom = 720, 460, 70, 200, 40, 60
    img = np.full((h, w, 3), 255, np.uint8)
    ticks = sorted({r["T"] for r in rows})
    accs = [100 * r[k] for r in rows for k in ("snn", "hybrid", "ann", "snn_int8") if k in r]
    lo_y = np.floor(min(accs) - 1)
    hi_y = np.ceil(max(accs) + 0.5)

    def px(t, a):
        lx = (np.log2(t) - np.log2(ticks[0])) / max(np.log2(ticks[-1]) - np.log2(ticks[0]), 1e-9)
        return (int(left + lx * (w - left - right)), int(top + (hi_y - a) / (hi_y - lo_y) * (h - top - bottom)))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for a in np.arange(lo_y, hi_y + 1e-9, max(1.0, np.ceil((hi_y - lo_y) / 8))):
        p = px(ticks[0], a)
        cv2.line(img, (left, p[1]), (w - right, p[1]), (225, 225, 225), 1)
        cv2.putText(img, f"{a:.0f}", (left - 35, p[1] + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for t in ticks:
        p = px(t, lo_y)
        cv2.putText(img, str(t), (p[0] - 8, h - bottom + 20), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    cv2.putText(img, "T (ticks per inference)", (left + 150, h - 15), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "test accuracy (%) on sklearn digits", (left, 25), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    colours = {"mlp": (200, 80, 20), "cnn": (30, 120, 230)}
    styles = [("snn", "SNN", 2), ("hybrid", "hybrid", 1)] + ([("snn_int8", "SNN int8", 1)] if int8 else [])
    ly = top + 10
    for model, col in colours.items():
        rs = [r for r in rows if r["model"] == model]
        if not rs:
            continue
        ann_pts = [px(t, 100 * rs[0]["ann"]) for t in ticks]
        for x0 in range(ann_pts[0][0], ann_pts[-1][0], 12):  # dashed ANN line
            cv2.line(img, (x0, ann_pts[0][1]), (min(x0 + 6, ann_pts[-1][0]), ann_pts[0][1]), col, 1)
        lx = w - right + 10
        cv2.line(img, (lx, ly - 4), (lx + 6, ly - 4), col, 1)
        cv2.line(img, (lx + 12, ly - 4), (lx + 18, ly - 4), col, 1)
        cv2.putText(img, f"{model} ANN", (lx + 26, ly), font, 0.42, col, 1, cv2.LINE_AA)
        ly += 20
        for key, label, thick in styles:
            pts = [px(r["T"], 100 * r[key]) for r in rs]
            for a, b in zip(pts, pts[1:]):
                cv2.line(img, a, b, col, thick, cv2.LINE_AA)
            for p in pts:
                _marker(img, key, p, col)
            cv2.line(img, (lx, ly - 4), (lx + 18, ly - 4), col, thick, cv2.LINE_AA)
            _marker(img, key, (lx + 9, ly - 4), col)
            cv2.putText(img, f"{model} {label}", (lx + 26, ly), font, 0.42, col, 1, cv2.LINE_AA)
            ly += 20
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write the plot to {path}")


def _marker(img, key, p, col) -> None:
    import cv2

    if key == "snn":
        cv2.circle(img, p, 4, col, -1, cv2.LINE_AA)
    elif key == "hybrid":
        cv2.rectangle(img, (p[0] - 3, p[1] - 3), (p[0] + 3, p[1] + 3), col, 1)
    else:
        cv2.drawMarker(img, p, col, cv2.MARKER_CROSS, 8, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tianrt demo digits", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retrain", action="store_true", help="train the ANNs again instead of loading demos/data")
    ap.add_argument("--ticks", "-T", type=int, nargs="+", default=list(TICKS), help="values of T to sweep")
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--method", default="robust", choices=["max", "percentile", "robust"],
                    help="threshold balancing (default: robust = 99.9th percentile of non-zero activations)")
    ap.add_argument("--per-layer", dest="per_channel", action="store_false",
                    help="one activation scale per layer (default: one per channel)")
    ap.add_argument("--backend", default="auto", help="reference | numba | auto (numba if it works)")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 (integer mode) columns")
    ap.add_argument("--plot", default="digits_accuracy.png", metavar="FILE.png", help="where to write the plot")
    ap.add_argument("--seed", type=int, default=0, help="training seed (with --retrain)")
    ap.add_argument("--act", default="qcfs", choices=["qcfs", "relu"],
                    help="hidden activation for training: qcfs (conversion-aware, the shipped weights) or "
                         "relu (plain ReLU; always retrains)")
    args = ap.parse_args(argv)
    if any(t < 1 for t in args.ticks):
        ap.error("--ticks values must be >= 1")
    backend = pick_backend(args.backend)

    x_tr, x_te, y_tr, y_te = load_split(0)
    models = get_models(args.retrain, x_tr, y_tr, seed=args.seed, act=args.act, names=args.models)
    print(f"{len(x_tr)} training / {len(x_te)} test digits; backend {backend}; threshold balancing "
          f"{args.method} {'per channel' if args.per_channel else 'per layer'}; hidden activation {args.act}")
    rows = []
    t0 = time.perf_counter()
    print()
    print_head()
    for name in args.models:
        rows += sweep(name, models[name], x_tr, x_te, y_te, sorted(args.ticks), backend, args.method,
                      not args.no_int8, report=lambda r: print_rows(r, not args.no_int8),
                      per_channel=args.per_channel)
    print_notes()
    print(f"evaluated in {time.perf_counter() - t0:.1f} s")
    plot(rows, Path(args.plot), not args.no_int8)
    print(f"wrote {args.plot}")
    return 0


def pick_backend(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        g = tr.Graph()
        x = g.input("x", (2,))
        g.output("y", g.add(tr.bridge.MembraneReadout(window=1), g.add(tr.snn.Dense(2, 1),
                                                                      g.add(tr.bridge.RateEncoder(), x))))
        tr.Runtime(g, backend="numba").run({"x": np.ones(2, np.float32)}, ticks=1)
        return "numba"
    except Exception:  # noqa: BLE001 - any failure means: use the reference backend
        return "reference"
