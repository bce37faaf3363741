"""Reproduce the digits demo's shipped weights: train the MLP and the CNN (seed 0) and
write demos/data/digits_mlp.tnr and demos/data/digits_cnn.tnr.

    python -m tianrt.demos.make_digits_weights [--seed 0] [--out DIR]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import tianrt as tr
from tianrt.demos import digits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=digits.DATA)
    args = ap.parse_args(argv)
    x_tr, x_te, y_tr, y_te = digits.load_split(0)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (fn, prep) in digits.MODELS.items():
        g = fn(x_tr, y_tr, seed=args.seed, act="qcfs")
        g.metadata.update({"dataset": "sklearn digits, stratified 70/30 split, random_state=0",
                           "recipe": f"tianrt.demos.digits.train_{name}(seed={args.seed}, act='qcfs')"})
        out = tr.Runtime(g).run({"x": prep(x_te)}, ticks=1)["y"][-1]
        acc = float((out.argmax(1) == y_te).mean())
        path = tr.save(g, args.out / f"digits_{name}.tnr")
        print(f"{name}: test accuracy {acc:.2%}, wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
