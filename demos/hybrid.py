"""Hybrid demo: an ANN front end, a rate bridge, a spiking layer and a membrane decoder
classify scikit-learn's bundled 8x8 handwritten digits (nothing is downloaded).

The ANN part is a fixed random-feature layer (Dense + ReLU); the spiking readout's weights
are fitted by ridge regression on the rate-coded features, in numpy. The graph then runs
on tianrt's Runtime: the ANN runs once per image, the encoder and synapses every tick.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tianrt as tr

DEMO_NAME = "hybrid"
DEMO_HELP = "hybrid ANN->SNN graph classifying 8x8 digits (random features + spiking readout)"


def load_digits_split(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return train_test_split(x, d.target, test_size=0.3, stratify=d.target, random_state=seed)


def fit(x_train, y_train, hidden: int, seed: int, ridge: float = 1e-1):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1 / np.sqrt(x_train.shape[1]), size=(hidden, x_train.shape[1])).astype(np.float32)
    b1 = rng.normal(0, 0.1, size=hidden).astype(np.float32)
    h = np.maximum(x_train @ w1.T + b1, 0)
    scale = float(np.percentile(h, 99.9))
    r = np.clip(h / scale, 0, 1)
    r1 = np.hstack([r, np.ones((len(r), 1), np.float32)])
    y = np.eye(10, dtype=np.float32)[y_train]
    sol = np.linalg.solve(r1.T @ r1 + ridge * np.eye(r1.shape[1]), r1.T @ y)
    return w1, b1, scale, sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32)


def build(w1, b1, scale, w2, b2, T: int) -> tr.Graph:
    g = tr.Graph(dt=1e-3, name="hybrid-digits")
    x = g.input("pixels", shape=(64,), domain="tensor")
    h = g.add(tr.ann.Dense(64, w1.shape[0], weight=w1, bias=b1), x)
    h = g.add(tr.ann.ReLU(), h)
    s = g.add(tr.bridge.RateEncoder(scale=scale), h, name="encoder")
    i = g.add(tr.snn.Dense(w1.shape[0], 10, weight=w2, bias=b2), s)
    y = g.add(tr.bridge.MembraneReadout(window=T, mean=True), i)
    g.output("scores", y)
    g.output("spikes", s)
    return g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tianrt demo hybrid", description=__doc__)
    ap.add_argument("--ticks", "-T", type=int, default=32, help="ticks per image (window of the decoder)")
    ap.add_argument("--hidden", type=int, default=512, help="width of the ANN feature layer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="reference", help="reference | numba")
    ap.add_argument("--save", metavar="MODEL.tnr", help="also save the graph here")
    args = ap.parse_args(argv)

    x_tr, x_te, y_tr, y_te = load_digits_split(args.seed)
    w1, b1, scale, w2, b2 = fit(x_tr, y_tr, args.hidden, args.seed)
    g = build(w1, b1, scale, w2, b2, args.ticks)
    g.summary()

    ann_scores = np.clip(np.maximum(x_te @ w1.T + b1, 0) / scale, 0, 1) @ w2.T + b2
    ann_acc = float((ann_scores.argmax(1) == y_te).mean())

    rt = tr.Runtime(g, backend=args.backend)
    t0 = time.perf_counter()
    out = rt.run({"pixels": x_te}, ticks=args.ticks)  # whole test set as one batch
    wall = time.perf_counter() - t0
    pred = out["scores"][-1].argmax(axis=1)
    acc = float((pred == y_te).mean())
    spikes = out["spikes"].sum() / len(x_te)

    print(f"\n{len(x_te)} test digits, T = {args.ticks} ticks, backend {args.backend}")
    print(f"  ANN (float, rate-clipped features):   accuracy {ann_acc:.2%}")
    print(f"  hybrid graph (ANN -> spikes -> SNN):  accuracy {acc:.2%}")
    print(f"  encoder spikes per image: {spikes:.0f}  "
          f"synaptic events per image: {spikes * 10:.0f}  wall time {wall:.2f} s for the batch")

    rt.reset()
    first = {}
    for t in range(args.ticks):
        first = rt.step({"pixels": x_te[0]} if t == 0 else {})
    print(f"  stepping one image tick by tick: decoder fired at tick {rt.tick - 1}, "
          f"predicted {int(first['scores'].argmax())}, true {int(y_te[0])}")
    if args.save:
        tr.save(g, args.save)
        print(f"  saved the graph to {args.save}")
    return 0
