"""The whole brain's acceptance: seeded rides of the ``errand`` scenario (a spoken "go", a box
and cones on the lane, "faster", a person to follow behind tall boxes, "stop"), every network in
one scheduler and the state machine choosing the behaviour (``pilot.Pilot``).

    python -m tianrt.demos.bicycle.evaluate_brain --n 20                 # seeds 0-19, the CNN in float
    python -m tianrt.demos.bicycle.evaluate_brain --n 20 --vision int8   # the integer CNN, NSM and CANN
    python -m tianrt.demos.bicycle.evaluate_brain --n 20 --vision truth  # labels for the CNN: behaviour alone
    python -m tianrt.demos.bicycle.evaluate_brain --n 20 --vision int8 --controller snn-int8   # every network integer

Pass (issue 17): no falls, no collisions, and every spoken command heard obeyed within
``pilot.OBEY_S`` of being heard, in every ride. Also reported: commands heard of those spoken,
false commands (heard, not spoken), the state sequences, the CANN's ``target.lost_s`` (seconds
without an estimate, the whole ride) and bearing errors (visible / occluded frames), and near
misses (``collide.near_miss``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from . import collide, sweep

SPOKEN_SLACK_S = 0.6   # a word is heard from its start to this long after its end
TARGET_KEYS = ("lost_s", "bearing_error_deg", "bearing_error_occluded_deg")   # the CANN's, per ride (target.*)


def ride(seed: int, duration: float, vision: str, controller: str = "mlp", backend: str = "numba") -> dict:
    """One errand ride (a sweep task): its summary plus the spoken words."""
    from . import brain, pilot, policy, render, speech, suite, world
    from .run import run_stream, schedule_for

    sc = world.parse_scenario(suite.make("errand", seed, duration))
    graph = policy.load()
    if controller in ("snn", "snn-int8"):
        graph = policy.to_snn(graph, policy.calibration_data())
    if controller == "snn-int8":     # the integer SNN the chip runs, in numba's integer mode
        graph = policy.quantize(graph)
    audio, said = speech.track(sc.speech, sc.duration, sc.seed)
    b = brain.Brain(audio=audio, backend=backend, nets=brain.graphs(integer=vision == "int8"))
    pl = pilot.Pilot(sc, schedule_for(sc.bicycle, 1.0 / sc.control_hz), b,
                     perception="truth" if vision == "truth" else "cnn")
    cam = render.SensorCamera(render.Scene(sc))
    t0 = time.perf_counter()
    r = run_stream(sc, graph, backend, f"{controller}/{backend}/brain", camera_hz=30.0, camera=cam, nav=pl, brain=b)
    s = r.summary()
    s["said"] = said
    s["eval_wall_s"] = time.perf_counter() - t0
    return s


def match(heard, said) -> int:
    """How many of the words heard ([(t, word)]) were spoken (``said``: speech.track's list): the
    same word, heard from its start to ``SPOKEN_SLACK_S`` after its end, each spoken word once."""
    used = set()
    for t, w in heard:
        hit = [i for i, x in enumerate(said)
               if x["word"] == w and x["t"] <= t <= x["end"] + SPOKEN_SLACK_S and i not in used]
        if hit:
            used.add(hit[0])
    return len(used)


def score(s: dict) -> dict:
    """Per ride: spoken words heard, false commands, commands heard but not obeyed in time."""
    cmd = s["brain"]["commands"]
    heard = [(t, w) for t, w in cmd["heard"]]
    spoken_heard = match(heard, s["said"])
    return {"seed": s["seed"], "fell": s["fell"], "collisions": s["collisions"], "crashed_into": s["crashed_into"],
            "spoken": len(s["said"]), "spoken_heard": spoken_heard, "false_commands": len(heard) - spoken_heard,
            "not_obeyed": cmd["not_obeyed"], "states": s["brain"]["nsm"]["states"],
            "emergency_stops": len(s.get("pilot", {}).get("emergency_stops", [])),
            "emergency_swerves": len(s.get("swerves", [])),   # the plan's swerves (follow.Navigator)
            "closest_gap_m": (s.get("closest_obstacle") or {}).get("gap_m"), "near_miss": collide.near_miss(s),
            "duration": s["duration"], **{k: s.get("target", {}).get(k) for k in TARGET_KEYS}}


def summarise(rows: list) -> dict:
    sc = [score(r) for r in rows]
    out = {"rides": len(sc), "falls": sum(r["fell"] for r in sc), "collisions": sum(r["collisions"] for r in sc),
           "spoken": sum(r["spoken"] for r in sc), "spoken_heard": sum(r["spoken_heard"] for r in sc),
           "false_commands": sum(r["false_commands"] for r in sc),
           "not_obeyed": sum(len(r["not_obeyed"]) for r in sc),
           "emergency_stops": sum(r["emergency_stops"] for r in sc),
           "emergency_swerves": sum(r["emergency_swerves"] for r in sc),
           "crashes": [(r["seed"], r["crashed_into"]) for r in sc if r["collisions"]],
           "fell_seeds": [r["seed"] for r in sc if r["fell"]],
           "near_miss_seeds": [r["seed"] for r in sc if r["near_miss"]]}
    out["near_misses"] = len(out["near_miss_seeds"])
    lost = [r["lost_s"] for r in sc if r["lost_s"] is not None]
    out["lost_s_max"] = max(lost, default=None)
    for k in TARGET_KEYS[1:]:
        v = [r[k] for r in sc if r[k] is not None]
        out[k + "_mean"] = sum(v) / len(v) if v else None
    out["passed"] = bool(out["falls"] == 0 and out["collisions"] == 0 and out["not_obeyed"] == 0)
    return out


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.bicycle.evaluate_brain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--vision", default="float", choices=("float", "int8", "truth"))
    ap.add_argument("--controller", default="mlp", choices=("mlp", "snn", "snn-int8"),
                    help="the balance network: the MLP, its SNN, or the SNN in integer (chip) mode")
    ap.add_argument("--json")
    sweep.add_arguments(ap)
    a = ap.parse_args(argv)
    tasks = [(seed, a.duration, a.vision, a.controller) for seed in range(a.first_seed, a.first_seed + a.n)]
    rows = sweep.run_tasks(ride, tasks, **sweep.options(a))
    for r in rows:
        s = score(r)
        print(f"  errand seed {s['seed']}: fell {s['fell']}, collisions {s['collisions']} ({s['crashed_into']}), "
              f"heard {s['spoken_heard']}/{s['spoken']} (+{s['false_commands']} false), "
              f"not obeyed {len(s['not_obeyed'])}, emergency stops {s['emergency_stops']} / swerves "
              f"{s['emergency_swerves']}, closest {_f(s['closest_gap_m'])} m, lost {_f(s['lost_s'])} s, bearing error "
              f"{_f(s['bearing_error_deg'])} / occluded {_f(s['bearing_error_occluded_deg'])} deg, "
              f"states {' > '.join(s['states'])}")
    summ = summarise(rows)
    print(json.dumps(summ))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"summary": summ, "rides": rows}, indent=1, default=float))
    return 0 if summ["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
