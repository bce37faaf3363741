"""STDP learns features of the digits, without labels: a spiking layer with lateral
inhibition and adaptive thresholds, trained by pair-based STDP (tr.train.STDP) in the
reference runtime's tick loop, scored by a linear readout of its spike counts against the
same layer with random weights (the same row sums).

    tianrt demo stdp [--neurons 64] [--train 600] [--out stdp-eval.json]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import tianrt as tr
from tianrt import train as T

DEMO_NAME = "stdp"
DEMO_HELP = "unsupervised STDP features on the digits vs random features (linear readout)"
TICKS, BLANK = 20, 5


def load(seed=0):
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    return x[idx[:1200]], y[idx[:1200]], x[idx[1200:]], y[idx[1200:]]


def poisson(x, ticks, rng, rate=0.5):
    """Spikes (ticks, samples, 64): each pixel fires with probability rate * intensity."""
    return (rng.random((ticks,) + x.shape) < rate * x[None]).astype(np.float32)


def build(weight, inhibition=3.0, adapt=0.3, rho=0.999, threshold=1.0, beta=0.8):
    """x (64 spikes) -> snn.Dense `syn` (plastic) + lateral inhibition -> ALIF `exc`."""
    n = weight.shape[0]
    g = tr.Graph(name="stdp-digits")
    x = g.input("x", (64,), domain="spike")
    fb = g.delay((n,), "spike", name="fb")
    ff = g.add(tr.snn.Dense(64, n, weight=weight), x, name="syn")
    w_inh = -inhibition * (1.0 - np.eye(n, dtype=np.float32))
    inh = g.add(tr.snn.Dense(n, n, weight=w_inh), fb, name="inh")
    s = g.add(tr.snn.ALIF(beta=beta, threshold=threshold, adapt=adapt, rho=rho), g.add(tr.ann.Add(), ff, inh), name="exc")
    g.connect(fb, s)
    g.output("pre", x)
    g.output("post", s)
    return g


def random_weights(n, rng, total=6.0):
    w = rng.random((n, 64)).astype(np.float32)
    return (w * (total / w.sum(1, keepdims=True))).astype(np.float32)


def counts(g, x, rng, threshold=3.0):
    """Spike counts (samples, n) for each digit of the learned (or random) weights used as
    a feed-forward layer: the same neurons without lateral inhibition or adaptation, no
    learning, fresh state."""
    g = build(g["syn"].weight.copy(), inhibition=0.0, adapt=0.0, threshold=threshold, beta=0.8)
    rt = tr.Runtime(g, backend="reference")
    out = rt.run({"x": poisson(x, TICKS, rng)})
    return out["post"].sum(0)


def readout_accuracy(ftr, ytr, fte, yte, seed=0):
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-3
    m = T.Sequential(T.Dense(ftr.shape[1], 10), input_shape=(ftr.shape[1],), seed=seed)
    m.fit((ftr - mu) / sd, ytr, epochs=60, batch_size=32, optimizer=T.Adam(1e-2, weight_decay=1e-4), progress=False)
    return m.accuracy((fte - mu) / sd, yte)


def learn(g, x, rng, rule, batch=10):
    """One unsupervised pass over x: digits in batches, TICKS ticks each then BLANK silent
    ticks, the runtime never reset (the adaptive thresholds carry over: homeostasis)."""
    rt = tr.Runtime(g, backend="reference")
    for i in range(0, len(x) - batch + 1, batch):
        sp = poisson(x[i:i + batch], TICKS, rng)
        sp = np.concatenate([sp, np.zeros((BLANK,) + sp.shape[1:], np.float32)])
        rule.run(rt, "syn", {"x": sp}, pre="pre", post="post")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tianrt demo stdp", description=DEMO_HELP)
    p.add_argument("--neurons", type=int, default=64)
    p.add_argument("--train", type=int, default=600, help="digits in the unsupervised pass")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threshold", type=float, default=3.0, choices=(2.0, 3.0, 4.0),
                   help="threshold of the feature layer read out (both STDP and random)")
    p.add_argument("--out", default="stdp-eval.json")
    a = p.parse_args(argv)
    xtr, ytr, xte, yte = load(a.seed)
    rng = np.random.default_rng(a.seed)
    w0 = random_weights(a.neurons, rng)
    t0 = time.time()
    g = build(w0.copy(), inhibition=5.0, adapt=0.5, rho=0.999, threshold=5.0, beta=0.95)
    rule = T.STDP(lr=0.01, a_plus=1.0, a_minus=0.3, tau_pre=4.0, tau_post=4.0, w_max=1.0, norm=6.0)
    for _ in range(a.epochs):
        learn(g, xtr[:a.train], rng, rule)
    t_learn = time.time() - t0
    rand = build(w0.copy())
    table = {}
    for th in (2.0, 3.0, 4.0):  # the readout layer's threshold, the same for both
        acc = {}
        for name, gg in (("stdp", g), ("random", rand)):
            frng = np.random.default_rng(a.seed + 1)
            acc[name] = readout_accuracy(counts(gg, xtr, frng, th), ytr, counts(gg, xte, frng, th), yte, a.seed)
        table[str(th)] = acc
        print(f"feature threshold {th}: STDP {acc['stdp']:.3f}, random {acc['random']:.3f}", flush=True)
    main_th = str(float(a.threshold))
    out = {"accuracy_stdp": table[main_th]["stdp"], "accuracy_random": table[main_th]["random"],
           "margin_points": 100 * (table[main_th]["stdp"] - table[main_th]["random"]),
           "feature_threshold": float(a.threshold), "by_feature_threshold": table, "neurons": a.neurons,
           "train_digits": a.train, "test_digits": int(len(yte)), "learn_seconds": round(t_learn, 1)}
    print(json.dumps(out, indent=1))
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
