"""Digits conversion pipeline timings, side by side in one run; prints seconds and ratios.

    .venv/bin/python bench/bench_convert.py [--quick]

1. Training (tr.train, numpy, one core): the digits MLP (60 epochs) and CNN (40 epochs).
2. tr.convert and tr.quantize on the shipped digits models (calibration: the 1257 training digits).
3. Evaluating the whole test set (540 digits, one batch) for T ticks: float SNN and int8 graph,
   reference backend against numba (numba timed after a warm-up run of the same batch); outputs are checked to
   agree (float: same predictions up to a few ties; int8: bit-identical).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tianrt as tr
from tianrt.demos import digits


def timed(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="MLP only, T = 8")
    args = ap.parse_args(argv)
    x_tr, x_te, y_tr, y_te = digits.load_split(0)
    names = ["mlp"] if args.quick else ["mlp", "cnn"]
    T = 8 if args.quick else 16

    print("1. training (numpy, seed 0)")
    for name in names:
        fn, _ = digits.MODELS[name]
        s, _ = timed(lambda: fn(x_tr, y_tr, seed=0, progress=False, act="qcfs"))
        print(f"   {name}: {s:6.2f} s")

    print(f"2./3. convert, quantize, evaluate 540 digits at T = {T}")
    print(f"   {'model':5s} {'convert ms':>10s} {'quantize ms':>11s} {'float ref ms':>12s} {'float numba ms':>14s} "
          f"{'ratio':>6s} {'int8 ref ms':>11s} {'int8 numba ms':>13s} {'ratio':>6s}")
    for name in names:
        ann = tr.load(digits.DATA / f"digits_{name}.tnr")
        prep = digits.MODELS[name][1]
        xc, xt = prep(x_tr), prep(x_te)
        tc, snn = timed(lambda: tr.convert(ann, {"x": xc}, T=T))
        tq, qg = timed(lambda: tr.quantize(snn, {"x": xc}))
        res = {}
        for label, g in (("float", snn), ("int8", qg)):
            for be in ("reference", "numba"):
                rt = tr.Runtime(g, backend=be)
                if be == "numba":
                    rt.run({"x": xt}, ticks=T)  # compile / warm up at the timed batch size
                    rt.reset()
                def once():
                    rt.reset()
                    return rt.run({"x": xt}, ticks=T)["y"][-1]

                s, out = timed(once, repeat=3 if label == "float" else 1)
                res[label, be] = (s, out)
        pf = [res["float", b][1].argmax(1) for b in ("reference", "numba")]
        assert (pf[0] == pf[1]).mean() > 0.99, "float backends disagree"
        assert np.array_equal(res["int8", "reference"][1], res["int8", "numba"][1]), "int8 backends differ"
        fr, fn_ = res["float", "reference"][0], res["float", "numba"][0]
        ir, in_ = res["int8", "reference"][0], res["int8", "numba"][0]
        ms = 1e3
        print(f"   {name:5s} {tc * ms:10.0f} {tq * ms:11.0f} {fr * ms:12.1f} {fn_ * ms:14.1f} {fr / fn_:6.2f} "
              f"{ir * ms:11.0f} {in_ * ms:13.0f} {ir / in_:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
