"""An ensemble of independently trained voice networks (docs/voice.md, round 16): several
networks hear the same clip, and the clip is decided on the mean of their per-tick readout
probabilities with the shipped clip decision (``model.decide_probs``: smoothed over 5 ticks,
the command with the highest peak if it reaches 0.5, else ``unknown`` if it does, else
background) — or, with ``combine="logits"``, on the softmax of their mean readout.

``ensemble_graph`` makes one ``tr.Graph`` of k members that share a front end: one input
``x`` and its ``DirectCurrent``, then k parallel sub-networks (each member's nodes, renamed
``m{i}_...``) with one output each, ``y0 ... y{k-1}``; ``tr.quantize`` and the runtimes take
it as any graph; ``stream.Detector`` streams it (the rule sees the mean of the members'
probabilities). Members that read their inputs through different front ends (other
training statistics) are combined on clips only (``member_readouts`` per member).

    python -m tianrt.demos.voice.ensemble --data voice-data.npz --model a.tnr --model b.tnr \\
        [--model c.tnr ...] [--int8] [--meta meta.json] [--streams] [--greedy 5] [--out ens.json]

Prints, for the ensembles of the first 1, 2, ..., k models in the order given, the
validation and test accuracy, the test recall per class, the held-out voices' and accents'
halves of the test (and each held-out accent with ``--meta``), and with ``--int8`` the
ensemble of the members' integer-mode graphs (``tr.quantize``, as ``tianrt demo voice``
calibrates it). ``--all-subsets``: the mean (and
range) over every subset of each size. ``--greedy n``: members added one at a time, each the one that lifts the
ensemble's *validation* accuracy most, up to n — reported on test. ``--streams``: the demo's
calibration and held-out streams (``compare.streams``, synthesised once) for the ensembles of
the first 1, ..., k models: the demo's calibrated rule and ``compare.RULES``, and the real-time
factor of the ensemble graph of all k (of the members one after the other when their front
ends differ) and of the first alone.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np

import tianrt as tr

from . import stream as S
from .frontend import front_end_differences, graph_front_end
from .model import decide_probs, softmax

def _same_front_end(graphs):
    ref = graph_front_end(graphs[0])
    for i, g in enumerate(graphs[1:], 1):
        diff = front_end_differences(ref, graph_front_end(g))
        if diff:
            raise ValueError(f"voice.ensemble: member {i} reads its inputs through another front end than member 0 "
                             f"(differs in {', '.join(diff)}); one graph needs members trained on the same "
                             "data file — combine such members on clips with member_readouts instead")
    return ref


def ensemble_graph(graphs, name="voice-ensemble") -> tr.Graph:
    """One graph of the k voice networks ``graphs`` (each: input ``x`` -> ``DirectCurrent`` ->
    ... -> output ``y``, one front end for all): the input and its ``DirectCurrent`` shared, each
    member's other nodes copied under ``m{i}_`` with its delays, outputs ``y0 ... y{k-1}``."""
    graphs = list(graphs)
    if not graphs:
        raise ValueError("voice.ensemble: ensemble_graph needs at least one member graph")
    front = _same_front_end(graphs)
    first = graphs[0]
    (xin, xnode), = first.inputs.items()
    g = tr.Graph(dt=first.dt, name=name)
    x = g.input(xin, xnode.shape, domain=xnode.domain, rate_hz=xnode.rate_hz, hold=xnode.hold)
    direct = None
    for i, m in enumerate(graphs):
        if list(m.inputs) != [xin] or list(m.outputs) != ["y"] or m.dt != first.dt:
            raise ValueError(f"voice.ensemble: member {i} must have the input {xin!r} and the output 'y' at "
                             f"dt {first.dt} like member 0, has {list(m.inputs)}, {list(m.outputs)}, dt {m.dt}")
        handles = {xin: x}
        delays = []
        for nm, e in m.entries.items():
            if nm == xin:
                continue
            node = e.node
            if node.op == "bridge.DirectCurrent":
                if direct is None:
                    direct = (g.add(copy.deepcopy(node), x, name=nm), node.gain)
                elif node.gain != direct[1]:
                    raise ValueError(f"voice.ensemble: member {i}'s DirectCurrent gain {node.gain} is not member "
                                     f"0's {direct[1]}")
                handles[nm] = direct[0]
            elif node.op == "graph.Delay":
                handles[nm] = g.delay(node.shape, node.domain, name=f"m{i}_{nm}", numeric=node.numeric)
                delays.append((nm, e))
            else:
                handles[nm] = g.add(copy.deepcopy(node), *(handles[s] for s in e.inputs), name=f"m{i}_{nm}")
        for nm, e in delays:
            g.connect(handles[nm], handles[e.source])
        g.output(f"y{i}", handles[m.outputs["y"]])
    g.metadata.update({k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in front.items()})
    g.metadata.update({"threshold": float(first.metadata.get("threshold", 0.5)),
                       "classes": list(first.metadata.get("classes", [])), "members": len(graphs)})
    return g


def combine(readouts, how="probs") -> np.ndarray:
    """The ensemble's probabilities (..., classes) from the members' readouts (a list of
    arrays (..., classes)): the mean of their softmaxes (``how="probs"``), or the softmax of
    their mean readout (``"logits"``)."""
    r = [np.asarray(y, np.float64) for y in readouts]
    if how == "probs":
        return np.mean([softmax(y, -1) for y in r], axis=0)
    if how == "logits":
        return softmax(np.mean(r, axis=0), -1)
    raise ValueError(f"voice.ensemble: combine how={how!r}; one of 'probs', 'logits'")


def readouts(graph, x, backend="reference", batch=500) -> list[np.ndarray]:
    """Each member's readout traces (ticks, clips, classes) on clips ``x`` (clips, ticks,
    inputs) of the (ensemble) graph, run by the runtime ``batch`` clips at a time."""
    names = S.member_outputs(graph)
    parts = {n: [] for n in names}
    for i in range(0, len(x), batch):
        out = tr.Runtime(graph, backend=backend).run({"x": x[i:i + batch].transpose(1, 0, 2)})
        for n in names:
            parts[n].append(out[n])
    return [np.concatenate(parts[n], axis=1) for n in names]


def decide(graph, x, threshold=None, how="probs", backend="reference") -> np.ndarray:
    """Clip decisions of an ensemble graph (or of a single network) on clips ``x``."""
    th = graph.metadata.get("threshold", 0.5) if threshold is None else threshold
    return decide_probs(combine(readouts(graph, x, backend), how), th)


def stream_probs(graph, st, backend="numba") -> dict:
    """One member's (or an ensemble graph's) probabilities (ticks, classes) on the four streams
    of ``compare.streams``, tick by tick as the detector computes them."""
    return {k: S.probs_of(graph, st[k], backend)[0].astype(np.float32) for k in ("cal_bg", "cal_cmd", "bg", "cmd")}


def streaming(member_p, st, seconds, rules=None) -> dict:
    """The demo's streaming measurement on the mean of the members' stream probabilities
    (``stream_probs`` of each): the rule ``stream.calibrate`` chooses on the calibration streams
    (at most 1 false alarm per hour, the demo's), measured on the held-out streams, and beside
    it the fixed ``rules`` (default ``compare.RULES``): false alarms per hour (calibration and
    held out), hits of the commands, p50 latency (``compare.rule_row``)."""
    from . import compare as C
    p = {k: np.mean([m[k] for m in member_p], axis=0) for k in member_p[0]}
    out = {}
    for r in [S.parse_rule(t) for t in (rules or C.RULES)]:
        out[f"{r.threshold}/{r.k}/{r.hold}"] = C.rule_row(r, p, st, seconds)
    rule, _ = S.calibrate(p["cal_bg"], seconds, p["cal_cmd"], st["cal_events"], max_fa_per_hour=1.0)
    row = C.rule_row(rule, p, st, seconds)
    out["calibrated"] = dict(row, rule=f"{rule.threshold}/{rule.k}/{rule.hold}")
    return out


def speed(graphs, audio, backend="numba") -> dict:
    """Real-time factors on ``audio`` through ``stream.Detector``: front end + graph + rule, and the
    graph's ticks alone — of the ensemble graph of ``graphs`` when they share a front end,
    else of each member on its own, the times added (``one_graph`` says which)."""
    from .frontend import SR
    try:
        parts, one = [ensemble_graph(graphs)], True
    except ValueError:
        parts, one = [ensemble_graph([g]) for g in graphs], False
    t = tg = 0.0
    for g in parts:
        det = S.Detector(g, S.Rule(), backend)
        det.push(np.zeros(160, np.float32))   # compile / warm up
        det.graph_seconds = 0.0
        t += S.run(det, audio)[1]
        tg += det.graph_seconds
    secs = len(audio) / SR
    return {"seconds": secs, "one_graph": one, "realtime_factor": round(secs / t, 1),
            "graph_realtime_factor": round(secs / tg, 1)}


def member_readouts(g, d0, int8=False, seed=0) -> dict:
    """One member's readout traces {val, test} (ticks, clips, classes) on data set ``d0``,
    through its own front end; with ``int8`` also its integer-mode graph's on test
    (``test8``), calibrated as ``voice.integer_accuracy`` does (4096 training frames, numba
    integer mode)."""
    from . import _fast
    from . import integer
    from . import recipes as R
    d, _, _ = R.prepare(d0, metadata=g.metadata)
    out = {k: readouts(g, d[f"{k}_x"])[0] for k in ("val", "test")}
    if int8:
        q = integer.quantized(g, integer.training_frames(d, seed))
        out["test8"] = readouts(q, d["test_x"], backend=_fast())[0]
    return out


def clip_report(pred, y, meta=None) -> dict:
    """Accuracy, recall per class, the test's halves (held-out voices first, then held-out
    accents: ``data.generate``) and, with ``meta`` (per-clip dicts), accuracy per accent."""
    from .data import ACCENTS_TEST, CLASSES, UNK
    h = len(y) // 2
    out = {"accuracy": float((pred == y).mean()),
           "recall": {c: float((pred[y == i] == i).mean()) for i, c in enumerate(CLASSES)},
           "held_out_voices": float((pred[:h] == y[:h]).mean()),
           "held_out_accents": float((pred[h:] == y[h:]).mean()),
           "commands_decided_unknown": int(((y < UNK) & (pred == UNK)).sum())}
    if meta is not None:
        for a in ACCENTS_TEST:
            sel = np.array([m["accent"] == a for m in meta])
            out[f"accent {a}"] = float((pred[sel] == y[sel]).mean())
    return out


def greedy(val_probs, val_y, n, threshold=0.5):
    """Members chosen one at a time on validation: each step adds the member (repeats not
    allowed) that gives the best validation accuracy of the mean probabilities; the first
    among equals. Returns the indices in the order chosen."""
    chosen = []
    for _ in range(min(n, len(val_probs))):
        best = None
        for j in range(len(val_probs)):
            if j in chosen:
                continue
            p = np.mean([val_probs[i] for i in chosen + [j]], axis=0)
            acc = float((decide_probs(p, threshold) == val_y).mean())
            if best is None or acc > best[1]:
                best = (j, acc)
        chosen.append(best[0])
    return chosen


def main(argv=None) -> int:
    from . import decisions as D
    from . import model as M
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.voice.ensemble", description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", action="append", required=True, help="a member (repeat; the order matters)")
    ap.add_argument("--int8", action="store_true", help="also the ensemble of the members' integer-mode graphs")
    ap.add_argument("--meta", help="per-clip metadata JSON of the data set (voice.errors --meta): accuracy per accent")
    ap.add_argument("--all-subsets", action="store_true",
                    help="also every subset of each size: mean, min and max accuracy")
    ap.add_argument("--greedy", type=int, default=0, help="also members chosen one by one on validation, up to n")
    ap.add_argument("--streams", action="store_true",
                    help="the demo's streams (synthesised once) for the ensembles of the first 1..k models")
    ap.add_argument("--seconds", type=float, default=3600.0, help="of each background stream")
    ap.add_argument("--speed-seconds", type=float, default=600.0,
                    help="of held-out background for the real-time factor")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", help="directory for each member's readouts (reused when present)")
    ap.add_argument("--out", default="voice-ensemble.json")
    a = ap.parse_args(argv)
    M.limit_threads()
    from pathlib import Path
    d0 = dict(np.load(a.data))
    meta = json.loads(Path(a.meta).read_text())["test"] if a.meta else None
    graphs = [tr.load(m) for m in a.model]
    th = graphs[0].metadata.get("threshold", 0.5)
    probs, readout = [], []
    for m, g in zip(a.model, graphs):
        c0 = time.process_time()
        path = Path(a.cache) / (Path(m).stem + ("-int8" if a.int8 else "") + ".npz") if a.cache else None
        if path is not None and path.exists():
            ro = dict(np.load(path))
        else:
            ro = member_readouts(g, d0, a.int8, a.seed)
            if path is not None:
                np.savez(path, **ro)
        readout.append(ro)
        probs.append({k: softmax(v.astype(np.float64), -1) for k, v in ro.items()})
        print(f"{m}: readouts in {time.process_time() - c0:.0f} s of CPU", flush=True)
    yv, yt = d0["val_y"], d0["test_y"]
    res = {"models": a.model, "decision": "model.decide_probs on the mean of the members' softmax", "rows": []}

    def row(idx, label):
        r = {"members": [a.model[i] for i in idx], "label": label}
        pv, pt = (np.mean([probs[i][k] for i in idx], 0) for k in ("val", "test"))
        r["val"] = float((decide_probs(pv, th) == yv).mean())
        r["test"] = clip_report(decide_probs(pt, th), yt, meta)
        right = np.array([decide_probs(probs[i]["test"], th) == yt for i in idx])
        r["test"]["some_member_right"] = float(right.any(0).mean())    # what a perfect chooser would reach
        r["test"]["every_member_right"] = float(right.all(0).mean())
        kw, sv = D.choose("peak", pv, yv)   # the decision's threshold and smoothing chosen on validation
        r["peak_chosen"] = {"setting": kw, "val": sv["accuracy"], "test": float((D.peak(pt, **kw) == yt).mean())}
        if a.int8:
            r["peak_chosen"]["test_int8"] = float((D.peak(np.mean([probs[i]["test8"] for i in idx], 0), **kw)
                                                   == yt).mean())
        r["logits"] = {k: float((decide_probs(combine([readout[i][k] for i in idx], "logits"), th) == y).mean())
                       for k, y in (("val", yv), ("test", yt))}   # the softmax of the mean readout instead
        if a.int8:
            p8 = decide_probs(np.mean([probs[i]["test8"] for i in idx], 0), th)
            r["test_int8"] = clip_report(p8, yt, meta)
        res["rows"].append(r)
        t = r["test"]
        print(f"{label}: val {r['val']:.1%} test {t['accuracy']:.1%}"
              + (f" int8 {r['test_int8']['accuracy']:.1%}" if a.int8 else "")
              + f" | peak {r['peak_chosen']['setting']} val {r['peak_chosen']['val']:.1%} test "
              + f"{r['peak_chosen']['test']:.1%}"
              + (f" int8 {r['peak_chosen']['test_int8']:.1%}" if a.int8 else "")
              + f" | logits val {r['logits']['val']:.1%} test {r['logits']['test']:.1%}"
              + f" | held-out voices {t['held_out_voices']:.1%} accents {t['held_out_accents']:.1%}"
              + f" | members right: some {t['some_member_right']:.1%} every {t['every_member_right']:.1%}"
              + f" | commands -> unknown {t['commands_decided_unknown']}"
              + "".join(f" {k} {v:.1%}" for k, v in t.items() if k.startswith("accent "))
              + " | recall " + " ".join(f"{c} {v:.0%}" for c, v in t["recall"].items()), flush=True)

    for i in range(len(graphs)):
        row([i], f"single {a.model[i]}")
    for k in range(2, len(graphs) + 1):
        row(list(range(k)), f"first {k}")
    if a.all_subsets:
        import itertools
        res["subsets"] = {}
        for k in range(1, len(graphs) + 1):
            accs = {split: [float((decide_probs(np.mean([probs[i][split] for i in idx], 0), th) == y).mean())
                            for idx in itertools.combinations(range(len(graphs)), k)]
                    for split, y in (("val", yv), ("test", yt))}
            accs["test_peak_chosen"] = []   # the decision's threshold and smoothing chosen on validation
            for idx in itertools.combinations(range(len(graphs)), k):
                kw, _ = D.choose("peak", np.mean([probs[i]["val"] for i in idx], 0), yv)
                accs["test_peak_chosen"].append(
                    float((D.peak(np.mean([probs[i]["test"] for i in idx], 0), **kw) == yt).mean()))
            res["subsets"][k] = accs
            t, c = accs["test"], accs["test_peak_chosen"]
            print(f"all {len(t)} subsets of {k}: test mean {np.mean(t):.1%} (min {min(t):.1%}, max {max(t):.1%}), "
                  f"val mean {np.mean(accs['val']):.1%}; the decision chosen on validation: test mean "
                  f"{np.mean(c):.1%} (min {min(c):.1%}, max {max(c):.1%})", flush=True)
    if a.greedy:
        order = greedy([p["val"] for p in probs], yv, a.greedy, th)
        res["greedy_order"] = [a.model[i] for i in order]
        for k in range(1, len(order) + 1):
            row(order[:k], f"greedy {k} (chosen on validation): " + " ".join(Path(a.model[i]).stem for i in order[:k]))
    if a.streams:
        from . import compare as C
        from .frontend import SR
        c0 = time.process_time()
        st = C.streams(a.seconds, 100, a.seed)
        print(f"streams synthesised in {time.process_time() - c0:.0f} s of CPU", flush=True)
        sp = []
        for m, g in zip(a.model, graphs):
            c0 = time.process_time()
            sp.append(stream_probs(g, st))
            print(f"{m}: stream probabilities in {time.process_time() - c0:.0f} s of CPU", flush=True)
        res["streams"] = {}
        for k in range(1, len(graphs) + 1):
            res["streams"][f"first {k}"] = rows = streaming(sp[:k], st, a.seconds)
            for name, r in rows.items():
                print(f"streams, first {k}, {name}: " + json.dumps(r), flush=True)
        n = int(min(a.speed_seconds, a.seconds) * SR)
        for k in sorted({1, len(graphs)}):
            res["streams"][f"speed, first {k}"] = v = speed(graphs[:k], st["bg"][:n])
            print(f"speed, first {k}: " + json.dumps(v), flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
