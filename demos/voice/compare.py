"""Several voice models on the same clips and the same streams (docs/voice.md, rounds 9-10):
the demo's calibration and held-out streams (``tianrt demo voice``'s, seeds + 11 and + 7)
synthesised once — eSpeak's output differs a little from one synthesis to the next, so
scoring every model on one synthesis is the fair comparison — and scanned with
``stream.Rule.scan`` at a list of rules; beside them each model's float and integer clip
accuracy on the validation and test splits.

    python -m tianrt.demos.voice.compare --data voice-data.npz --model a.tnr --model b.tnr \\
        [--rule 0.98/20/20 ...] [--seconds 3600] [--no-clips | --no-streams] [--out compare.json]

Per rule and model: false alarms per hour on the calibration and the held-out background
hour (and how many of the held-out ones fell in babble, and how many 0.25-0.75 s after a
2 s boundary of the background, where its noise changes kind and level at once), hits of
the 100 commands and their p50 latency; then the rule ``stream.calibrate`` chooses on the
calibration streams (the demo's), measured held out.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

RULES = ("0.995/20/30", "0.98/20/20", "0.95/20/20", "0.9/20/20", "0.9/20/5")


def streams(seconds=3600.0, commands=100, seed=0):
    """The demo's streams (``stream.calibration_streams`` and ``stream.held_out_streams``):
    {cal_bg, cal_cmd, cal_events, bg, bg_kinds, cmd, events}."""
    from . import stream as S
    out = {}
    out["cal_bg"], _, out["cal_cmd"], out["cal_events"] = S.calibration_streams(seconds, commands, seed)
    out["bg"], out["bg_kinds"], out["cmd"], out["events"] = S.held_out_streams(seconds, commands, seed)
    return out


def rule_row(rule, p, st, seconds):
    """One rule on one model's probabilities ``p`` (a dict of the streams' (ticks, classes))."""
    from . import stream as S
    cal = rule.scan(p["cal_bg"])
    held = rule.scan(p["bg"])
    hits_c, _, _ = S.score(rule.scan(p["cal_cmd"]), st["cal_events"])
    hits, lat, wrong = S.score(rule.scan(p["cmd"]), st["events"])
    babble = sum(st["bg_kinds"][t // 200] == "babble" for _, t in held)
    step = sum(25 <= t % 200 < 75 for _, t in held)
    return {"cal_fa_per_hour": len(cal) * 3600.0 / seconds, "cal_hit_rate": hits_c / len(st["cal_events"]),
            "fa_per_hour": len(held) * 3600.0 / seconds, "fa_in_babble": int(babble), "fa_after_step": int(step),
            "fa_count": len(held), "hit_rate": hits / len(st["events"]), "wrong": wrong,
            "latency_ms_p50": float(np.median(lat)) if lat else None}


def main(argv=None) -> int:
    import tianrt as tr

    from . import graph_accuracy, integer_accuracy
    from . import model as M
    from . import recipes as R
    from . import stream as S
    p = argparse.ArgumentParser(prog="python -m tianrt.demos.voice.compare", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", action="append", required=True, help="a model file (repeat for several)")
    p.add_argument("--rule", action="append", help=f"threshold/k/hold (repeat; default {', '.join(RULES)})")
    p.add_argument("--seconds", type=float, default=3600.0, help="of each background stream")
    p.add_argument("--commands", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-clips", action="store_true", help="streams only")
    p.add_argument("--no-streams", action="store_true", help="clips only (float and integer mode; round 19)")
    p.add_argument("--out", default="voice-compare.json")
    a = p.parse_args(argv)
    M.limit_threads()
    rules = [S.parse_rule(r) for r in (a.rule or RULES)]
    res = {m: {} for m in a.model}
    if not a.no_clips:
        d0 = dict(np.load(a.data))
        for m in a.model:
            g = tr.load(m)
            d, _, _ = R.prepare(d0, metadata=g.metadata)
            th = g.metadata.get("threshold", 0.5)
            res[m]["val"], _ = graph_accuracy(g, d["val_x"], d["val_y"], th)
            res[m]["test"], pred = graph_accuracy(g, d["test_x"], d["test_y"], th)
            res[m].update(integer_accuracy(g, d, th, a.seed, pred))
            print(m, json.dumps({k: v for k, v in res[m].items() if not isinstance(v, str)}), flush=True)
    if a.no_streams:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
        return 0
    st = streams(a.seconds, a.commands, a.seed)
    for m in a.model:
        g = tr.load(m)
        pr = {k: S.probs_of(g, st[k])[0] for k in ("cal_bg", "cal_cmd", "bg", "cmd")}
        res[m]["rules"] = {}
        for r in rules:
            row = rule_row(r, pr, st, a.seconds)
            res[m]["rules"][f"{r.threshold}/{r.k}/{r.hold}"] = row
            print(m, f"{r.threshold}/{r.k}/{r.hold}", json.dumps(row), flush=True)
        rule, _ = S.calibrate(pr["cal_bg"], a.seconds, pr["cal_cmd"], st["cal_events"], max_fa_per_hour=1.0)
        row = rule_row(rule, pr, st, a.seconds)
        res[m]["calibrated"] = dict(row, rule=f"{rule.threshold}/{rule.k}/{rule.hold}")
        print(m, "calibrated", json.dumps(res[m]["calibrated"]), flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
