"""What the brain's voice detector hears on the errand rides' audio, without riding: each
seed's microphone track (``speech.track``: the spoken words in the motor's and the wind's
noise), chunk by chunk through the voice network and its front end (``voice.stream``), and
the bicycle's detection rule (``brain.voice_rule``) — the same decisions at the same times as
the whole-brain ride makes on that audio (its scheduler steps the same network on the same
chunks), in a fraction of a second instead of ~10-30 s per ride, and over the whole scenario
whatever happens to the ride (a ride that falls ends early and hears no more).

    python -m tianrt.demos.bicycle.hear_errands --n 40                 # seeds 0-39, the shipped voice SNN
    python -m tianrt.demos.bicycle.hear_errands --n 40 --model m.tnr   # another voice model
    python -m tianrt.demos.bicycle.hear_errands --n 60 --voices generated   # words in held-out eSpeak voices
    python -m tianrt.demos.bicycle.hear_errands --n 60 --voices silent      # the noise alone: false alarms
    python -m tianrt.demos.bicycle.hear_errands --n 60 --rule 0.8/20/5      # another rule (threshold/k/hold[/word=θ])
    python -m tianrt.demos.bicycle.hear_errands --n 60 --integer            # the integer voice SNN

The shipped clips are one recording per word: ``--voices generated`` speaks every word in a
voice of the voice data set's test split instead, and ``--voices silent`` leaves the words
out of the same noise (``speech.track``), which is what calibrating the rule needs (docs/bicycle.md).

Per seed: the words heard with their times, the spoken ones heard, and false commands (heard,
not spoken; matched as ``evaluate_brain`` does). The summary line is JSON.
"""
from __future__ import annotations

import argparse
import json

import tianrt as tr
from tianrt.demos.voice.stream import parse_rule

from . import speech

DURATION = 60.0


def hear(graph, seed: int, duration: float = DURATION, backend: str = "numba", voices: str = "shipped",
         rule=None) -> dict:
    """One errand seed's audio (``speech.track(..., voices=)``) through the brain's voice detector
    (``rule``, default ``brain.voice_rule()``): {seed, said, heard, spoken_heard, false}."""
    from tianrt.demos.voice import stream as S

    from . import brain, evaluate_brain, suite, world
    sc = world.parse_scenario(suite.make("errand", seed, duration))
    audio, said = speech.track(sc.speech, sc.duration, sc.seed, voices=voices)
    probs, _, _ = S.probs_of(graph, audio, backend)
    rule = brain.voice_rule() if rule is None else rule
    classes = list(graph.metadata["classes"])
    # chunk k is the microphone's at k / 100 s, and the ride's sink sees its readout at that time
    heard = [(round(k * S.HOP / S.SR, 2), classes[c]) for c, k in rule.scan(probs)]
    ok = evaluate_brain.match(heard, said)
    return {"seed": seed, "said": [(x["t"], x["word"]) for x in said], "heard": heard,
            "spoken": len(said), "spoken_heard": ok, "false": len(heard) - ok}


def main(argv=None) -> int:
    from tianrt.demos import voice
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.bicycle.hear_errands", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=DURATION)
    ap.add_argument("--model", default=str(voice.SHIPPED), help="the voice SNN (default: the shipped one)")
    ap.add_argument("--voices", default="shipped", choices=speech.VOICES,
                    help="the shipped clips, every word in a held-out eSpeak voice, or no words (speech.track)")
    ap.add_argument("--integer", action="store_true",
                    help="the model in integer mode (voice.integer.quantized), as in the all-integer rides")
    ap.add_argument("--rule", default=None,
                    help="threshold/k/hold[/word=threshold...] (default: the brain's, brain.voice_rule)")
    a = ap.parse_args(argv)
    try:
        rule = None if a.rule is None else parse_rule(a.rule)
    except ValueError as e:
        ap.error(str(e))
    g = tr.load(a.model)
    if a.integer:
        from tianrt.demos.voice import integer as voice_int
        g = voice_int.quantized(g)
    rows = []
    for seed in range(a.first_seed, a.first_seed + a.n):
        r = hear(g, seed, a.duration, voices=a.voices, rule=rule)
        rows.append(r)
        print(f"  errand seed {seed}: heard {r['spoken_heard']}/{r['spoken']} (+{r['false']} false): "
              f"{', '.join(f'{w} {t:.2f}' for t, w in r['heard'])}", flush=True)
    out = {"seeds": len(rows), "spoken": sum(r["spoken"] for r in rows),
           "spoken_heard": sum(r["spoken_heard"] for r in rows), "false_commands": sum(r["false"] for r in rows),
           "false_seeds": [r["seed"] for r in rows if r["false"]],
           "false_per_hour": round(sum(r["false"] for r in rows) * 3600.0 / (len(rows) * a.duration), 2)}
    print(json.dumps(out))
    return 0 if out["false_commands"] == 0 and out["spoken_heard"] == out["spoken"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
