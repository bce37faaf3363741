"""Issue 14: the cost of Runtime.step around the kernels, side by side with a hand-written
numba loop in the same run.

    .venv/bin/python bench/bench_step.py            # or: w1 | general | reset | w3

W1 (700-256-256-20 LIF, beta 0.9, theta 1, subtract; 5 % Bernoulli input) at two activity
levels -- the benchmark's weights (uniform x 4, hidden layers ~5-9 %) and normal weights
(sigma 0.12 / 0.10 / 0.15, ~10-20 %) -- with every layer's spikes read as a graph output.
The limit is a plain @njit event loop over the same weights (active rows only, the three
layers in one call per tick, one dispatcher call from Python per tick). Timings are the
minimum over repeats, all rows of a table measured in the same process, interleaved (the
machine is shared: read the ratios, not the absolute figures).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

import tianrt as tr  # noqa: E402

SIZES = [(700, 256), (256, 256), (256, 20)]
SIGMAS = (0.12, 0.10, 0.15)


def w1_graph(weights: str = "bench", observe_all: bool = True, neuron=None):
    """W1; ``weights`` "bench" (bench_kernels.py's: PyTorch init x 4) or "normal";
    ``neuron`` a node factory instead of the LIF (e.g. an ALIF: a graph that is not fused)."""
    g = tr.Graph(name="w1")
    h = g.input("x", shape=(700,), domain="spike")
    rng = np.random.default_rng(7)
    for i, (a, b) in enumerate(SIZES):
        syn = tr.snn.Dense(a, b, seed=i)
        if weights == "normal":
            syn.weight[...] = rng.normal(0.0, SIGMAS[i], (b, a))
            syn.bias[...] = 0.0
        else:
            syn.weight *= 4.0
        h = g.add(syn, h, name=f"syn{i + 1}")
        lif = neuron() if neuron else tr.snn.LIF(beta=0.9, threshold=1.0, reset="subtract")
        h = g.add(lif, h, name=f"lif{i + 1}")
        if observe_all or i == len(SIZES) - 1:
            g.output(f"s{i + 1}", h)
    return g


@njit(cache=True)
def _layer(x, wt, b, v, s):
    n_out = wt.shape[1]
    cur = b.copy()
    for j in range(x.size):
        if x[j] != 0:
            for o in range(n_out):
                cur[o] += wt[j, o]
    for o in range(n_out):
        vn = np.float32(0.9) * v[o] + cur[o]
        f = vn >= np.float32(1.0)
        v[o] = vn - np.float32(1.0) if f else vn
        s[o] = np.float32(1.0) if f else np.float32(0.0)


@njit(cache=True)
def hand_w1(x, w1, b1, w2, b2, w3, b3, v1, v2, v3, s1, s2, s3):
    """The hand-written limit: one call per tick, three layers, active rows only."""
    _layer(x, w1, b1, v1, s1)
    _layer(s1, w2, b2, v2, s2)
    _layer(s2, w3, b3, v3, s3)


def hand_state(g):
    ws = []
    for i in (1, 2, 3):
        n = g[f"syn{i}"]
        ws += [np.ascontiguousarray(n.weight.T), n.bias.copy()]
    vs = [np.zeros(b, np.float32) for _, b in SIZES]
    ss = [np.zeros(b, np.float32) for _, b in SIZES]
    return ws, vs, ss


def best_of(fns: dict, repeat: int) -> dict:
    """name -> minimum time of fn() over ``repeat`` rounds, the functions interleaved."""
    res = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            res[k] = min(res[k], time.perf_counter() - t)
    return res


def bench_w1(T=200, repeat=15):
    print(f"\n== W1 through Runtime.step vs a hand-written numba loop (batch 1, T = {T}, every layer observed) ==")
    rng = np.random.default_rng(0)
    X = (rng.random((T, 700)) < 0.05).astype(np.float32)
    frames = [{"x": x} for x in X]
    out = {}
    for weights in ("bench", "normal"):
        g = w1_graph(weights)
        rt = tr.Runtime(g, backend="numba")
        ref = tr.Runtime(g, backend="reference")
        ws, vs, ss = hand_state(g)
        step = rt.step
        step(frames[0])
        hand_w1(X[0], *ws, *vs, *ss)
        acts = np.zeros(3)
        for f in frames:
            o = ref.step(f)
            acts += [o[f"s{i}"].mean() for i in (1, 2, 3)]
        acts /= T

        def stream():
            for f in frames:
                step(f)

        def hand():
            for x in X:
                hand_w1(x, *ws, *vs, *ss)

        def hand_copy():  # the hand loop plus a copy of each layer's spikes (what step returns)
            for x in X:
                hand_w1(x, *ws, *vs, *ss)
                {"s1": ss[0].copy(), "s2": ss[1].copy(), "s3": ss[2].copy()}

        t = best_of({"step": stream, "hand": hand, "hand+copy": hand_copy}, repeat)
        r = t["step"] / t["hand"]
        print(f"  weights {weights:6s} (activity per layer {', '.join(f'{a:.1%}' for a in acts)}): "
              f"step {t['step'] / T * 1e6:6.2f} us/tick, hand loop {t['hand'] / T * 1e6:6.2f}, "
              f"hand loop + copies {t['hand+copy'] / T * 1e6:6.2f}; step / hand = {r:.2f}x (target <= 1.25x)")
        out[weights] = r
    return out


def bench_general(T=200, repeat=15):
    """W1 (normal weights, every layer observed) on the paths a general graph takes: the
    per-op program (fuse=False: one Python call per op) and the compiled tick
    (compiled=True: the six ops in one generated call), against the fused one-call step
    and the hand loop; and the same paths for an ALIF variant."""
    print(f"\n== General graphs: W1 per op, compiled tick, fused (batch 1, T = {T}, every layer observed) ==")
    rng = np.random.default_rng(0)
    X = (rng.random((T, 700)) < 0.05).astype(np.float32)
    frames = [{"x": x} for x in X]
    g = w1_graph("normal")
    ws, vs, ss = hand_state(g)
    rts = {"fused (default)": tr.Runtime(g, "numba"),
           "per op (fuse=False)": tr.Runtime(g, "numba", fuse=False),
           "compiled tick (fuse=False, compiled=True)": tr.Runtime(g, "numba", fuse=False, compiled=True)}
    ga = w1_graph("normal", neuron=lambda: tr.snn.ALIF(beta=0.9, threshold=1.0, adapt=0.05, rho=0.95))
    rts["ALIF variant, fused (default)"] = tr.Runtime(ga, "numba")
    rts["ALIF variant, per op (fuse=False)"] = tr.Runtime(ga, "numba", fuse=False)
    rts["ALIF variant, compiled tick (fuse=False)"] = tr.Runtime(ga, "numba", fuse=False, compiled=True)
    fns = {}
    for k, rt in rts.items():
        rt.step(frames[0])
        fns[k] = (lambda s: lambda: [s(f) for f in frames])(rt.step)
    hand_w1(X[0], *ws, *vs, *ss)
    fns["hand loop"] = lambda: [hand_w1(x, *ws, *vs, *ss) for x in X]
    t = best_of(fns, repeat)
    for k, v in t.items():
        print(f"  {k:45s} {v / T * 1e6:7.2f} us/tick   {v / t['hand loop']:5.2f}x the hand loop")
    return t


def bench_w3(ticks=3000, repeat=5):
    """W3 CUBA (bench_kernels.cuba_graph) on the per-op program and the compiled tick."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_kernels import cuba_graph
    print(f"\n== W3 CUBA: per-op program vs compiled tick ({ticks} ticks, best of {repeat}, interleaved) ==")
    g, drive, v0 = cuba_graph()
    runs = {}
    for comp in (False, True):
        rt = tr.Runtime(g, "numba", compiled=comp)
        st = rt.state()
        st["lif/v"] = v0[None]
        runs[comp] = (rt, st)
        rt.load_state(st)
        rt.step({"drive": drive})

    def one(comp):
        rt, st = runs[comp]
        rt.load_state(st)
        rt.run({"drive": drive}, ticks=ticks)
    t = best_of({"per op": lambda: one(False), "compiled": lambda: one(True)}, repeat)
    for k, v in t.items():
        print(f"  {k:10s} {v / ticks * 1e6:7.2f} us/tick  ({v / ticks * 1e4:.3f} s per simulated second)")
    print(f"  compiled / per op = {t['compiled'] / t['per op']:.2f}")
    return t


def bench_reset(T=50, repeat=15):
    print("\n== First step after reset() vs a normal step (W1, every layer observed) ==")
    g = w1_graph("normal")
    rng = np.random.default_rng(1)
    X = (rng.random((T, 700)) < 0.05).astype(np.float32)
    rt = tr.Runtime(g, backend="numba")
    rt.step({"x": X[0]})
    first, normal, resets = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rt.reset()
        t1 = time.perf_counter()
        rt.step({"x": X[0]})
        t2 = time.perf_counter()
        for x in X[1:]:
            rt.step({"x": x})
        t3 = time.perf_counter()
        resets.append(t1 - t0)
        first.append(t2 - t1)
        normal.append((t3 - t2) / (T - 1))
    f, n, r = min(first), min(normal), min(resets)
    print(f"  reset() {r * 1e6:.2f} us; first step after it {f * 1e6:.2f} us; a normal step {n * 1e6:.2f} us; "
          f"first / normal = {f / n:.2f}x (target <= 2x); median first {np.median(first) * 1e6:.2f} us")
    return f / n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", nargs="?", default="all", choices=["all", "w1", "general", "w3", "reset"])
    a = p.parse_args(argv)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    if a.which in ("all", "w1"):
        bench_w1()
    if a.which in ("all", "general"):
        bench_general()
    if a.which in ("all", "reset"):
        bench_reset()
    if a.which in ("all", "w3"):
        bench_w3()


if __name__ == "__main__":
    main()
