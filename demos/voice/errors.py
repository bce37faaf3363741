"""Error analysis of a voice model on a data set's held-out clips (docs/voice.md, "Recipes
of round 6"): the confusion matrix, and the accuracy per voice variant, per accent, per kind
of noise, per SNR band and — for the test set's unknown words — what each word was heard as.

    python -m tianrt.demos.voice.errors --data voice-data.npz [--model m.tnr] [--split test]

The data set keeps no per-clip voice, accent or word; they are recovered by generating the
set again with the same seed (``data.generate(meta=...)``, needs the ``voice`` extra, ~20 s of
CPU) — the random draws that choose them do not depend on the audio, so they are the data
set's even where eSpeak's output differs by a sample (checked: the labels must agree).
``--meta`` caches them in a JSON file.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from .data import CLASSES, COMMANDS, UNK


def confusion(y, pred, n=len(CLASSES)) -> np.ndarray:
    """(true, predicted) counts."""
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y), np.asarray(pred)), 1)
    return cm


def by_group(y, pred, keys) -> dict:
    """{key: (accuracy, clips)} over the clips grouped by ``keys`` (one per clip)."""
    ok = defaultdict(list)
    for k, a, b in zip(keys, y, pred):
        ok[k].append(a == b)
    return {k: (float(np.mean(v)), len(v)) for k, v in sorted(ok.items(), key=lambda kv: str(kv[0]))}


def heard_as(y, pred, words) -> dict:
    """{unknown word: Counter of the classes its clips were decided as}."""
    out = defaultdict(Counter)
    for a, b, w in zip(y, pred, words):
        if a == UNK:
            out[w][CLASSES[b]] += 1
    return dict(sorted(out.items()))


def commands_heard(y, pred, meta, command, key, groups) -> dict:
    """{group: (recall, clips decided unknown, clips)} of ``command``'s clips, grouped by
    ``key(meta) in group`` for each named group of ``groups`` ({name: set}); round 12's and
    13's reading of ``left`` on the held-out accents and ``go`` whispered."""
    c = CLASSES.index(command)
    out = {}
    for name, members in groups.items():
        idx = [i for i, (a, m) in enumerate(zip(y, meta)) if a == c and key(m) in members]
        p = np.asarray(pred)[idx]
        out[name] = (float((p == c).mean()) if idx else float("nan"), int((p == UNK).sum()), len(idx))
    return out


def snr_band(m) -> str:
    s = m["snr_db"]
    return "noise only" if s is None else f"{int(s // 5) * 5}-{int(s // 5) * 5 + 5} dB"


def recover_meta(n_train, seed, labels) -> dict:
    """Per split, the per-clip dicts of ``data.generate`` (word, accent, variant, noise,
    snr_db) of the data set generated with ``seed``; ``labels`` (split -> y) must agree."""
    from . import data as D
    meta = {}
    D.generate(*D.split_sizes(n_train), seed, meta=meta, splits=tuple(labels))  # only those asked for
    for k, y in labels.items():
        got = np.array([CLASSES.index(m["word"]) if m["word"] in COMMANDS else -1 for m in meta[k]])
        want = np.where(np.asarray(y) < len(COMMANDS), y, -1)
        if len(got) != len(want) or not np.array_equal(got, want):
            raise ValueError(f"voice.errors: the {k} split regenerated with seed {seed} does not match the data set")
    return meta


def report(y, pred, meta) -> str:
    """The tables as markdown."""
    cm = confusion(y, pred)
    lines = ["| true \\ decided | " + " | ".join(CLASSES) + " | recall |", "|---" * (len(CLASSES) + 2) + "|"]
    for i, c in enumerate(CLASSES):
        lines.append(f"| {c} | " + " | ".join(str(v) for v in cm[i]) + f" | {cm[i, i] / max(1, cm[i].sum()):.0%} |")
    for title, key in (("voice variant", lambda m: m["variant"] or "default"), ("accent", lambda m: m["accent"]),
                       ("noise", lambda m: m["noise"]), ("SNR", snr_band)):
        g = by_group(y, pred, [key(m) for m in meta])
        lines.append(f"\n{title}: " + ", ".join(f"{k} {a:.1%} ({n})" for k, (a, n) in g.items()))
    from .data import ACCENTS_TEST
    for command, key, groups in (
            ("left", lambda m: m["accent"], {"held-out accents": set(ACCENTS_TEST),
                                             "other accents": {m["accent"] for m in meta} - set(ACCENTS_TEST)}),
            ("go", lambda m: m["variant"], {"whisper": {"whisper"},
                                            "other voices": {m["variant"] for m in meta} - {"whisper"}})):
        g = commands_heard(y, pred, meta, command, key, groups)
        lines.append(f"\n{command} (recall, decided unknown, clips): " + ", ".join(
            f"{k} {r:.0%} {u} of {n}" if n else f"{k} no clips" for k, (r, u, n) in g.items()))
    lines.append("\nunknown words heard as: " + "; ".join(
        f"{w} ({sum(c.values())}): " + ", ".join(f"{k} {v}" for k, v in c.most_common()) for w, c in
        heard_as(y, pred, [m["word"] for m in meta]).items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    import tianrt as tr

    from . import SHIPPED, graph_accuracy
    from . import model as M
    from . import recipes as R
    p = argparse.ArgumentParser(prog="python -m tianrt.demos.voice.errors", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=str(SHIPPED))
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--seed", type=int, default=0, help="the data set's seed")
    p.add_argument("--meta", help="JSON cache of the recovered per-clip metadata")
    a = p.parse_args(argv)
    M.limit_threads()
    d = dict(np.load(a.data))
    if a.meta and Path(a.meta).exists():
        meta = json.loads(Path(a.meta).read_text())
    else:
        n_train = int((d["train_y"] == 0).sum())
        # val and test only: a training split made with other words or shares (data.py's
        # --embedded, --unknowns, --babble) has other draws; the tables need none of it
        meta = recover_meta(n_train, a.seed, {k: d[f"{k}_y"] for k in ("val", "test")})
        if a.meta:
            Path(a.meta).write_text(json.dumps(meta))
    g = tr.load(a.model)
    d, _, _ = R.prepare(d, metadata=g.metadata)
    y = d[f"{a.split}_y"]
    acc, pred = graph_accuracy(g, d[f"{a.split}_x"], y, g.metadata.get("threshold", 0.5))
    print(f"{a.model} on the {a.split} split of {a.data}: {acc:.1%}")
    if a.split == "test":   # data.generate: the held-out voices' half first, then the held-out accents'
        h = len(y) // 2
        print(f"held-out voices (first half) {np.mean(pred[:h] == y[:h]):.1%}, "
              f"held-out accents (second half) {np.mean(pred[h:] == y[h:]):.1%}")
    print()
    print(report(y, pred, meta[a.split]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
