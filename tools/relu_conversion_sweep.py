"""How faithfully tr.convert turns plain-ReLU digits MLPs into SNNs, over many training seeds.

For each seed: train the 64-128-64-10 ReLU MLP of ``tianrt demo digits --act relu`` on that
seed's split, convert with the given options at T = 4, 8, 16, 32, and report the accuracy,
whether T = 16 is within 0.2 point of the ANN, whether accuracy never falls as T grows, and the
number of test digits on which the SNN's decision differs from the ANN's (what conversion
controls; the accuracy moves with it by +-1-3 digits of random sign).

    python tools/relu_conversion_sweep.py --seeds 16                  # the defaults
    python tools/relu_conversion_sweep.py --seeds 16 --per-layer      # one scale per layer
"""
from __future__ import annotations

import argparse

import numpy as np

import tianrt as tr
from tianrt.demos import digits

TICKS = (4, 8, 16, 32)


def one_seed(seed: int, **convert_kw) -> dict:
    x_tr, x_te, y_tr, y_te = digits.load_split(seed)
    ann = digits.train_mlp(x_tr, y_tr, seed=seed, progress=False, act="relu")
    ref = tr.Runtime(ann).run({"x": x_te}, ticks=1)["y"][-1].argmax(1)
    row = {"seed": seed, "ann": 100 * float((ref == y_te).mean()), "acc": [], "differ": []}
    for T in TICKS:
        snn = tr.convert(ann, {"x": x_tr}, T=T, **convert_kw)
        pred = tr.Runtime(snn).run({"x": x_te}, ticks=T)["y"][-1].argmax(1)
        row["acc"].append(100 * float((pred == y_te).mean()))
        row["differ"].append(int((pred != ref).sum()))
    row["bar16"] = row["acc"][TICKS.index(16)] >= row["ann"] - 0.2 - 1e-9
    row["monotone"] = all(a <= b + 1e-9 for a, b in zip(row["acc"], row["acc"][1:]))
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--per-layer", action="store_true", help="convert with per_channel=False")
    args = ap.parse_args(argv)
    rows = [one_seed(s, per_channel=not args.per_layer) for s in range(args.seeds)]
    print("seed   ANN  " + "  ".join(f"T{T:<5}" for T in TICKS) + "  differ          T16 bar  monotone")
    for r in rows:
        print(f"{r['seed']:>4} {r['ann']:6.2f} " + " ".join(f"{a:6.2f}" for a in r["acc"])
              + f"  {str(r['differ']):<15} {'yes' if r['bar16'] else 'no':<8} {'yes' if r['monotone'] else 'no'}")
    deficit = np.mean([[a - r["ann"] for a in r["acc"]] for r in rows], axis=0)
    print(f"T16 bar {sum(r['bar16'] for r in rows)}/{len(rows)}, monotone {sum(r['monotone'] for r in rows)}/"
          f"{len(rows)}, differing digits {np.sum([r['differ'] for r in rows], axis=0).tolist()}, mean SNN - ANN "
          + " ".join(f"T{T} {d:+.3f}" for T, d in zip(TICKS, deficit)))


if __name__ == "__main__":
    main()
