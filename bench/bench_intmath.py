"""Integer-mode kernels (tianrt.kernels.intmath) against the numpy integer reference, side
by side in one run; prints µs per call and ratios.

    .venv/bin/python bench/bench_intmath.py [--quick]

1. Spiking 1024 -> 1024 int8 synapse (batch 1) as input activity grows: the event-driven
   kernel (work ~ active inputs) against the dense int MAC kernel and the reference backend's
   numpy op (exact float BLAS under the bound, docs/integer.md);
   the crossover where dense wins is marked.
2. int8 dense 700 -> 256 (ANN, requantised) and the first W2 conv layer (1x48x64 ->
   8x48x64, 3x3, pad 1): numba int kernels (and, for the conv, the numba backend's exact
   float GEMM, tianrt.backends.numba.intgemm) against the reference backend's numpy ops.
3. Integer LIF step, 1024 neurons.
4. The quantized digits SNNs (demos/digits.py: MLP 64-128-64-10 and CNN conv32-conv32-
   dense64-10, int8, T = 8) through tr.Runtime at batch 540 (the test set) and batch 1:
   the exact float-BLAS GEMM path against the int64 paths it replaced (numba: the int
   kernels, ``NumbaBackend.int_gemm = False``; reference: ``conv_acc_int64`` /
   ``dense_acc_int64``), ms per tick, outputs checked equal. ``--only digits`` runs just this.
All results are checked equal before timing.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

from tianrt.backends.numba.intgemm import ExactGemm
from tianrt.ops import exact as ref
from tianrt.ops import linear, synapse
from tianrt.ops.linear import requant_out
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
    print(f"{'activity':>9} {'events':>8} {'dense MAC':>10} {'numpy ref':>10} {'event':>8} {'dense/event':>12}")
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
    assert np.array_equal(out, requant_out(ref.dense_acc(x, w, b), node))
    num = 100 if quick else 500
    t_nb = best_us(lambda: im.dense(x, w, b, m, s, -128, 127, out), num)
    t_np = best_us(lambda: requant_out(ref.dense_acc(x, w, b), node), max(num // 10, 5))
    print(f"   dense 700->256 + requant: numba {t_nb:.1f}  numpy ref {t_np:.1f}  ratio {t_np / t_nb:.1f}x")

    xi = rng.integers(-128, 128, size=(1, 1, 48, 64)).astype(np.int32)
    wc = rng.integers(-127, 128, size=(8, 1, 3, 3)).astype(np.int8)
    bc = rng.integers(-500, 500, size=8).astype(np.int32)
    mc = rng.integers(2 ** 14, 2 ** 15, size=8).astype(np.int32)
    sc = np.full(8, 16, np.int32)
    oc = np.zeros((1, 8, 48, 64), np.int32)
    cnode = type("N", (), dict(multiplier=mc, shift=sc, lo=0, hi=127))
    im.conv2d(xi, wc, bc, mc, sc, 1, 1, 1, 1, 0, 127, oc)
    assert np.array_equal(oc, requant_out(ref.conv_acc(xi, wc, bc, (1, 1), (1, 1)), cnode))
    num = 20 if quick else 100
    t_nb = best_us(lambda: im.conv2d(xi, wc, bc, mc, sc, 1, 1, 1, 1, 0, 127, oc), num)
    t_np = best_us(lambda: requant_out(ref.conv_acc(xi, wc, bc, (1, 1), (1, 1)), cnode), max(num // 10, 3))
    gemm = ExactGemm(xi, wc, bc, oc, conv=(1, 1, 1, 1), requant=(mc, sc, 0, 127))
    oc[:] = 0
    assert gemm() and np.array_equal(oc, requant_out(ref.conv_acc(xi, wc, bc, (1, 1), (1, 1)), cnode))
    t_gm = best_us(gemm, num)
    print(f"   conv 1x48x64 -> 8x48x64 3x3 + requant: numba int {t_nb:.1f}  numba exact GEMM {t_gm:.1f}  "
          f"numpy ref {t_np:.1f}  ratios int/GEMM {t_nb / t_gm:.1f}x, ref/GEMM {t_np / t_gm:.1f}x")


def lif(rng, quick):
    n = 1024
    cur = rng.integers(-200, 600, size=n).astype(np.int32)
    v = np.zeros(n, np.int32)
    s = np.zeros(n, np.float32)
    e = np.zeros(0, np.int32)
    num = 500 if quick else 5000
    t = best_us(lambda: im.lif_step(cur, v, e, e, *(np.full(1, p, np.int64) for p in (1000, 29491, 15)), -1, 0, False, 0, 0, s), num)
    print(f"\n3. integer LIF step, 1024 neurons: {t:.2f} µs ({t * 1e3 / n:.2f} ns per neuron)")


def _digits_graphs():
    import tianrt as tr
    from tianrt.demos import digits as D

    x_tr, x_te, y_tr, _ = D.load_split(0)
    models = D.get_models(False, x_tr, y_tr, progress=False)
    out = {}
    for name in ("mlp", "cnn"):
        prep = D.MODELS[name][1]
        snn = tr.convert(models[name], calibration={"x": prep(x_tr)}, T=8)
        out[name] = (tr.quantize(snn, calibration={"x": prep(x_tr)}), prep(x_te))
    return out


def _ms_per_tick(graph, backend, x, ticks, old, repeat):
    """Best of ``repeat`` runs of ``ticks`` held ticks, ms per tick; and the outputs."""
    import tianrt as tr
    from tianrt.backends import numba as nb

    mods = (linear, synapse)  # the reference rules that call the exact products
    saved = nb.NumbaBackend.int_gemm, [(m.dense_acc, m.conv_acc) for m in mods]
    if old:  # the paths before the exact float GEMM
        nb.NumbaBackend.int_gemm = False
        for m in mods:
            m.dense_acc, m.conv_acc = ref.dense_acc_int64, ref.conv_acc_int64
    try:
        best, out = float("inf"), None
        for _ in range(repeat):
            rt = tr.Runtime(graph, backend)
            rt.run({"x": x[:2]}, ticks=1)  # compile / warm up the batch paths (state rebuilt below)
            rt.reset()
            t0 = timeit.default_timer()
            out = rt.run({"x": x}, ticks=ticks)["y"]
            best = min(best, (timeit.default_timer() - t0) / ticks * 1e3)
        return best, out
    finally:
        nb.NumbaBackend.int_gemm = saved[0]
        for m, (d, c) in zip(mods, saved[1]):
            m.dense_acc, m.conv_acc = d, c


def digits(quick):
    print("\n4. quantized digits SNNs through tr.Runtime.run, T = 8 held ticks (ms per tick)")
    print(f"{'model':>6} {'backend':>10} {'batch':>6} {'int64 path':>11} {'exact GEMM':>11} {'speed-up':>9}")
    for name, (g, x_te) in _digits_graphs().items():
        for backend in ("numba", "reference"):
            for batch in (540, 1):
                x = x_te[:batch]
                ticks = 8 if batch > 1 else 64
                rep = 1 if quick or (batch > 1 and name == "cnn") else 3
                t_old, y_old = _ms_per_tick(g, backend, x, ticks, True, rep)
                t_new, y_new = _ms_per_tick(g, backend, x, ticks, False, rep)
                assert np.array_equal(y_old, y_new), (name, backend, batch)
                print(f"{name:>6} {backend:>10} {batch:>6} {t_old:>11.2f} {t_new:>11.2f} {t_old / t_new:>8.1f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--only", choices=["kernels", "digits"], help="run one part only")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.only != "digits":
        synapse_scaling(rng, args.quick)
        ann_layers(rng, args.quick)
        lif(rng, args.quick)
    if args.only != "kernels":
        digits(args.quick)


if __name__ == "__main__":
    main()
