"""Clip decision rules that weigh ``unknown`` against the commands (docs/voice.md, round 11).

The shipped clip decision (``model.decide``) puts the commands first: the command with the
highest smoothed probability wins if it reaches the threshold, ``unknown`` only when no
command does. The network's ``unknown`` probability is high early in every word, commands
included, so the rules here look at it differently — each a family with a small grid, its
parameters chosen on the validation clips only and then measured once on the test clips:

- ``peak``: the shipped decision (threshold, smoothing ``k``).
- ``command_threshold``: a command only if its smoothed peak reaches ``tc`` (above the
  threshold: ``unknown`` weighed up; below it: down); a clip with speech (any class but
  background at the threshold) is otherwise ``unknown``.
- ``trailing``: a command's tick counts only if, over the ``W`` ticks ending there, its
  probability exceeds ``unknown``'s by ``m`` on average; the best such tick's command wins.
- ``evidence``: decided at the clip's end on the accumulated evidence — among clips with
  speech, the class with the largest summed probability over the clip, ``unknown``'s sum
  weighted by ``lam``.

``separability`` asks the question under the rules: among clips where some command peaks at
the threshold, how well does a score separate the unknown words from the commands decided
right (the area under the ROC curve; 0.5 is chance)?

    python -m tianrt.demos.voice.decisions --data voice-data.npz --model a.tnr [--model b.tnr] [--out d.json]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from .data import CLASSES
from .model import decide_probs, smooth, softmax

UNK = CLASSES.index("unknown")
BG = CLASSES.index("background")


def peak(p, th=0.5, k=5):
    """The shipped decision on probabilities ``p`` (ticks, clips, classes): ``model.decide``."""
    return decide_probs(p, th, k)


def command_threshold(p, tc=0.5, th=0.5, k=5):
    """A command only if its smoothed peak reaches ``tc``; else ``unknown`` if any class but
    background reaches ``th``; else background (``tc = th`` is ``peak``)."""
    best = smooth(p, k).max(0)
    cmd = best[:, :UNK]
    speech = best[:, :BG].max(1) >= th
    return np.where(cmd.max(1) >= tc, cmd.argmax(1), np.where(speech, UNK, BG))


def trailing(p, W=10, m=0.0, th=0.5, k=5):
    """A command's tick counts when its smoothed probability reaches ``th`` and its margin
    over ``unknown``, averaged over the ``W`` ticks ending there, is at least ``m``; the
    command of the highest counting tick wins; else ``unknown`` if its smoothed peak reaches
    ``th``; else background (``m = -1`` is ``peak``)."""
    ps = smooth(p, k)
    margin = smooth(p[:, :, :UNK] - p[:, :, UNK:UNK + 1], W)
    score = np.where((ps[:, :, :UNK] >= th) & (margin >= m), ps[:, :, :UNK], -1.0).max(0)
    return np.where(score.max(1) >= 0, score.argmax(1), np.where(ps.max(0)[:, UNK] >= th, UNK, BG))


def evidence(p, lam=1.0, th=0.5, k=5):
    """At the clip's end: among clips with speech (any class but background at ``th``,
    smoothed), the command or ``unknown`` with the largest summed probability over the clip,
    ``unknown``'s weighted by ``lam``; the others background."""
    speech = smooth(p, k).max(0)[:, :BG].max(1) >= th
    e = p.sum(0)[:, :BG].copy()
    e[:, UNK] *= lam
    return np.where(speech, e.argmax(1), BG)


FAMILIES = {
    "peak": (peak, [dict(th=th, k=k) for th in (0.4, 0.5, 0.6) for k in (1, 5, 10)]),
    "command_threshold": (command_threshold, [dict(tc=tc, k=k) for tc in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
                                              for k in (5, 10)]),
    "trailing": (trailing, [dict(W=W, m=m) for W in (5, 10, 20, 30, 50)
                            for m in (-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3)]),
    "evidence": (evidence, [dict(lam=lam) for lam in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5)]),
}


def scores(pred, y) -> dict:
    """Accuracy and the recalls of ``unknown``, of the commands together and of background
    (None for a kind the clips do not have)."""
    def rate(sel):
        return float((pred[sel] == y[sel]).mean()) if sel.any() else None
    return {"accuracy": float((pred == y).mean()), "unknown": rate(y == UNK), "commands": rate(y < UNK),
            "background": rate(y == BG)}


def choose(family, p, y):
    """The parameters of ``family`` with the best accuracy on (p, y) — the first of the grid
    among equals — and its scores."""
    if family not in FAMILIES:
        raise ValueError(f"decisions: unknown family {family!r}; one of {', '.join(FAMILIES)}")
    fn, grid = FAMILIES[family]
    best = None
    for kw in grid:
        s = scores(fn(p, **kw), y)
        if best is None or s["accuracy"] > best[1]["accuracy"]:
            best = (kw, s)
    return best


def auc(pos, neg) -> float:
    """P(a positive's score > a negative's), ties counted half."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if not len(pos) or not len(neg):
        raise ValueError("decisions.auc: needs at least one positive and one negative score")
    gt = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    return float(gt / (len(pos) * len(neg)))


def separability(p, y, th=0.5, k=5, windows=(5, 10, 20, 40)) -> dict:
    """Among clips whose best command peaks at ``th`` (smoothed over ``k``): how well each
    score separates the commands decided right (positives) from the unknown words
    (negatives) — the command's peak, its margin over ``unknown`` over the W ticks ending at
    its peak, the ratio of the command's summed probability to ``unknown``'s, and (negated)
    ``unknown``'s own peak. Returns {score: AUC, 'positives': n, 'negatives': n}."""
    ps = smooth(p, k)
    n = p.shape[1]
    rows = np.arange(n)
    cmd = ps.max(0)[:, :UNK]
    c, top = cmd.argmax(1), cmd.max(1)
    t_pk = ps[:, rows, c].argmax(0)
    cs = np.cumsum(np.concatenate([np.zeros((1,) + p.shape[1:]), p]), 0)
    feats = {"command_peak": top}
    for W in windows:
        lo = np.maximum(0, t_pk + 1 - W)
        win = (cs[t_pk + 1, rows] - cs[lo, rows]) / (t_pk + 1 - lo)[:, None]
        feats[f"margin_{W}"] = win[rows, c] - win[:, UNK]
    feats["mass_ratio"] = p[:, :, :UNK].sum(0)[rows, c] / (p[:, :, UNK].sum(0) + 1e-9)
    feats["minus_unknown_peak"] = -ps.max(0)[:, UNK]
    pos = (top >= th) & (y < UNK) & (c == y)
    neg = (top >= th) & (y == UNK)
    out = {name: auc(v[pos], v[neg]) for name, v in feats.items()}
    out.update(positives=int(pos.sum()), negatives=int(neg.sum()))
    return out


def traces(g, x, batch=500):
    """The graph's readout on clips ``x`` (clips, ticks, inputs) as probabilities (ticks, clips, classes)."""
    from . import graph_traces
    return softmax(graph_traces(g, x, batch=batch).astype(np.float64), -1)


def main(argv=None) -> int:
    import tianrt as tr

    from . import model as M
    from . import recipes as R
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.voice.decisions", description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", action="append", required=True, help="a model file (repeat for several)")
    ap.add_argument("--out", default="voice-decisions.json")
    a = ap.parse_args(argv)
    M.limit_threads()
    d0 = dict(np.load(a.data))
    res = {}
    for m in a.model:
        g = tr.load(m)
        d, _, _ = R.prepare(d0, metadata=g.metadata)
        pv, pt = traces(g, d["val_x"]), traces(g, d["test_x"])
        res[m] = {"separability": {"val": separability(pv, d["val_y"]), "test": separability(pt, d["test_y"])}}
        print(m, "separability", json.dumps(res[m]["separability"]), flush=True)
        for fam, (fn, _) in FAMILIES.items():
            kw, sv = choose(fam, pv, d["val_y"])
            st = scores(fn(pt, **kw), d["test_y"])
            res[m][fam] = {"chosen": kw, "val": sv, "test": st}
            print(m, fam, json.dumps(kw), "val", json.dumps(sv), "test", json.dumps(st), flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
