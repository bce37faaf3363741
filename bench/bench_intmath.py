"""Integer-mode kernels (tianrt.kernels.intmath) against the numpy integer reference, side
by side in one run; prints µs per call and ratios.

    .venv/bin/python bench/bench_intmath.py [--quick]

1. Spiking 1024 -> 1024 int8 synapse (batch 1) as input activity grows: the event-driven
   kernel (work ~ active inputs) against the dense int MAC kernel and numpy int64 matmul;
   the crossover where dense wins is marked.
2. int8 dense 700 -> 256 (ANN, requantised) and the first W2 conv layer (1x48x64 ->
   8x48x64, 3x3, pad 1): numba against the reference backend's numpy int64 ops.
3. Integer LIF step, 1024 neurons.
All results are checked equal before timing.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

from tianrt.backends import reference_int as ref
from tianrt.kernels import intmath as im


def best_us(fn, number, repeat=5):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def synapse_scaling(rng, quick):
    n = 1024
    w = rng.integers(-127, 128, size=(n, n)).astype(np.int8)
    wt = np.ascontiguousarray(w.T)
    bias = rng.integers(-1000, 1000, size=n).astype(np.int32)
    out = np.zeros((1, n), np.int32)
    acc = np.zeros(n, np.int64)
    print("\n1. spiking 1024->1024 int8 synapse, batch 1 (µs per tick)")
    print(f"{'activity':>9} {'events':>8} {'dense MAC':>10} {'numpy i64':>10} {'event':>8} {'dense/event':>12}")
    crossover = None
    for p in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5):
        x = (rng.random((1, n)) < p).astype(np.float32)
        im.syn_dense_events(x, wt, bias, out, acc)
        ev = out.copy()
        im.dense_acc(x, w, bias, out)
        assert np.array_equal(ev, out)
        num = 50 if quick else 200
        t_dense = best_us(lambda: im.dense_acc(x, w, bias, out), num)
        t_np = best_us(lambda: ref.dense_acc(x, w, bias), max(num // 10, 5))
        t_ev = best_us(lambda: im.syn_dense_events(x, wt, bias, out, acc), num)
        if crossover is None and t_ev >= t_dense:
            crossover = p
        print(f"{p * 100:>8.1f}% {int(x.sum()):>8d} {t_dense:>10.1f} {t_np:>10.1f} {t_ev:>8.1f} {t_dense / t_ev:>11.1f}x")
    print("   crossover (event-driven no longer faster):",
          f"~{crossover * 100:.1f}% activity" if crossover else "above 50% activity")


def ann_layers(rng, quick):
    print("\n2. int8 ANN layers, batch 1 (µs per call)")
    x = rng.integers(-128, 128, size=(1, 700)).astype(np.int32)
    w = rng.integers(-127, 128, size=(256, 700)).astype(np.int8)
    b = rng.integers(-5000, 5000, size=256).astype(np.int32)
    m = rng.integers(2 ** 14, 2 ** 15, size=256).astype(np.int32)
    s = np.full(256, 20, np.int32)
    out = np.zeros((1, 256), np.int32)
    node = type("N", (), dict(multiplier=m, shift=s, lo=-128, hi=127))
    im.dense(x, w, b, m, s, -128, 127, out)
    assert np.array_equal(out, ref._requant_out(ref.dense_acc(x, w, b), node))
    num = 100 if quick else 500
    t_nb = best_us(lambda: im.dense(x, w, b, m, s, -128, 127, out), num)
    t_np = best_us(lambda: ref._requant_out(ref.dense_acc(x, w, b), node), max(num // 10, 5))
    print(f"   dense 700->256 + requant: numba {t_nb:.1f}  numpy int64 {t_np:.1f}  ratio {t_np / t_nb:.1f}x")

    xi = rng.integers(-128, 128, size=(1, 1, 48, 64)).astype(np.int32)
    wc = rng.integers(-127, 128, size=(8, 1, 3, 3)).astype(np.int8)
    bc = rng.integers(-500, 500, size=8).astype(np.int32)
    mc = rng.integers(2 ** 14, 2 ** 15, size=8).astype(np.int32)
    sc = np.full(8, 16, np.int32)
    oc = np.zeros((1, 8, 48, 64), np.int32)
    cnode = type("N", (), dict(multiplier=mc, shift=sc, lo=0, hi=127))
    im.conv2d(xi, wc, bc, mc, sc, 1, 1, 1, 1, 0, 127, oc)
    assert np.array_equal(oc, ref._requant_out(ref.conv_acc(xi, wc, bc, (1, 1), (1, 1)), cnode))
    num = 20 if quick else 100
    t_nb = best_us(lambda: im.conv2d(xi, wc, bc, mc, sc, 1, 1, 1, 1, 0, 127, oc), num)
    t_np = best_us(lambda: ref._requant_out(ref.conv_acc(xi, wc, bc, (1, 1), (1, 1)), cnode), max(num // 10, 3))
    print(f"   conv 1x48x64 -> 8x48x64 3x3 + requant: numba {t_nb:.1f}  numpy int64 {t_np:.1f}  "
          f"ratio {t_np / t_nb:.1f}x")


def lif(rng, quick):
    n = 1024
    cur = rng.integers(-200, 600, size=n).astype(np.int32)
    v = np.zeros(n, np.int32)
    s = np.zeros(n, np.float32)
    e = np.zeros(0, np.int32)
    num = 500 if quick else 5000
    t = best_us(lambda: im.lif_step(cur, v, e, e, 1000, 29491, 15, -1, 0, False, 0, 0, s), num)
    print(f"\n3. integer LIF step, 1024 neurons: {t:.2f} µs ({t * 1e3 / n:.2f} ns per neuron)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    synapse_scaling(rng, args.quick)
    ann_layers(rng, args.quick)
    lif(rng, args.quick)


if __name__ == "__main__":
    main()
