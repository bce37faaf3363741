"""The bicycle's whole-brain control step on the numba backend, one core: every network that
is due in a 10 ms control step, stepped through ``tr.Runtime.step``, timed per network and in
total (p50 / p99 / max over the steps). Target (issue 17): p99 <= 1 ms on this machine.

    .venv/bin/python bench/bench_brain_step.py [--seconds 30] [--gc on]

Per control step, at the brain's rates: the balance SNN 16 ticks (T = 16, 0.625 ms tick), the
neural state machine 10 ticks (1 ms), the CANN 6 ticks (1/600 s; 20 per camera frame), the
voice SNN 1 tick (10 ms) after its log-mel front end (160 samples), and the vision CNN once on
the steps where a 30 Hz camera frame is due (3 steps in 10). Inputs are real: observations of
a teacher ride, rendered camera frames, bearing bumps of a moving target, the NSM's event
spikes, the shipped voice clips. Two brains side by side: float (every network as trained) and
integer (the balance SNN, NSM, CNN and CANN in numba's integer mode, as the chip runs them;
the voice SNN stays float: tr.quantize refuses it, docs/bicycle.md).

Pins itself to one CPU, one numba and BLAS thread; the GC is frozen and disabled while timing
(``--gc on`` keeps it running). Every network is warmed up (compiled) before timing. Besides
the wall time, the step's CPU time (``time.thread_time``) is reported: on a machine shared with
other jobs it leaves out the time the process was preempted.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time

from benchutil import pin_one_cpu

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

CONTROL_HZ, CAMERA_HZ = 100.0, 30.0


def inputs(steps: int):
    """Real per-step inputs for every network (cycled where shorter than the run)."""
    import wave

    import numpy as np

    from tianrt.demos import voice
    from tianrt.demos.bicycle import cann, nsm, policy, vision

    obs = policy.calibration_data(n_seconds=10.0)           # teacher rides, 2.5-8.5 m/s
    frames = vision.calibration_frames(n=32)                  # rendered camera frames, normalised
    bearings = 25.0 * np.sin(np.arange(steps) * 2 * np.pi / 400.0)   # a target swinging +-25 deg
    codes = np.stack([cann.code(b) for b in bearings])
    ev = nsm.events_array(steps * 10, [("go", 0.5, 0.1), ("person", 3.0, 0.1), ("obstacle", 8.0, 0.1),
                                       ("done", 11.0, 0.1), ("stop", 20.0, 0.1)], p_noise=0.005)
    clips = []
    data = voice.SHIPPED.parent
    for c in json.loads((data / "voice_clips.json").read_text()):
        with wave.open(str(data / c["file"])) as w:
            clips.append(np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0)
    audio = np.concatenate(clips)
    return {"obs": obs, "frames": frames, "codes": codes, "events": ev, "audio": audio}


def brains():
    """name -> {network: graph} for the float and the integer brain."""
    import tianrt as tr
    from tianrt.demos import voice
    from tianrt.demos.bicycle import brain_chip, cann, nsm, policy, vision

    snn = policy.to_snn(policy.load(), policy.calibration_data())
    ints = brain_chip.networks(("balance", "nsm", "vision", "cann"))
    voice_snn = tr.load(str(voice.SHIPPED))
    return {"float": {"balance": snn, "nsm": nsm.build(), "vision": vision.load(), "cann": cann.build_graph(),
                      "voice": voice_snn},
            "integer": {k: ints[k][0] for k in ("balance", "nsm", "vision", "cann")} | {"voice": voice_snn}}


def run_brain(graphs: dict, data: dict, steps: int, warm: int = 50):
    """Time ``steps`` control steps (after ``warm`` untimed ones): per network and total [s]."""
    import numpy as np

    import tianrt as tr
    from tianrt.demos.voice.frontend import HOP, VoiceFrontEnd

    vg = graphs["voice"]
    rts = {k: tr.Runtime(g, backend="numba") for k, g in graphs.items()}
    fe = VoiceFrontEnd(vg.metadata)
    T = int(graphs["balance"].metadata.get("ticks_per_step", 16))
    names = ("balance", "nsm", "cann", "voice", "vision")
    times = {k: np.zeros(steps) for k in names}
    total = np.zeros(steps)
    cpu = np.zeros(steps)
    tt = time.thread_time
    obs, frames, codes, ev, audio = (data[k] for k in ("obs", "frames", "codes", "events", "audio"))
    next_cam = 0.0
    pc = time.perf_counter
    for k in range(-warm, steps):
        i = k % steps
        t = i / CONTROL_HZ
        c0 = tt()
        t0 = pc()
        out = rts["balance"].step({"obs": obs[i % len(obs)]})
        for _ in range(T - 1):
            out = rts["balance"].step()
        t1 = pc()
        for j in range(10):
            rts["nsm"].step({"events": ev[(i * 10 + j) % len(ev)]})
        t2 = pc()
        for _ in range(6):
            rts["cann"].step({"code": codes[i]})
        t3 = pc()
        a = (i * HOP) % (len(audio) - HOP)
        rts["voice"].step({"x": fe.push(audio[a:a + HOP])[None]})
        t4 = pc()
        due = t >= next_cam - 1e-12
        if due:
            rts["vision"].step({"frame": frames[(i // 3) % len(frames)]})
            next_cam += 1.0 / CAMERA_HZ
        t5 = pc()
        c5 = tt()
        if k >= 0:
            for n, dt in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                times[n][k] = dt
            times["vision"][k] = (t5 - t4) if due else np.nan
            total[k] = t5 - t0
            cpu[k] = c5 - c0
        if k == -1:
            next_cam = 0.0
    return times, total, cpu


def stats(x):
    import numpy as np

    x = np.asarray(x)[~np.isnan(x)] * 1e3
    return {"p50_ms": float(np.percentile(x, 50)), "p99_ms": float(np.percentile(x, 99)),
            "max_ms": float(x.max()), "n": int(len(x))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="simulated seconds (control steps / 100)")
    ap.add_argument("--gc", choices=("off", "on"), default="off")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    pinned = pin_one_cpu()
    steps = int(round(a.seconds * CONTROL_HZ))
    data = inputs(steps)
    res = {}
    for name, graphs in brains().items():
        gc.collect()
        if a.gc == "off":
            gc.freeze()
            gc.disable()
        try:
            times, total, cpu = run_brain(graphs, data, steps)
        finally:
            gc.enable()
            gc.unfreeze()
        res[name] = {**{k: stats(v) for k, v in times.items()}, "total": stats(total), "total_cpu": stats(cpu)}
    print(f"# {platform.machine()}, Python {sys.version.split()[0]}, {pinned}, GC {a.gc}, {steps} control steps, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| network (ticks per step) | float p50 / p99 / max [ms] | integer p50 / p99 / max [ms] |")
    print("|---|---|---|")
    label = {"balance": "balance SNN (16)", "nsm": "NSM (10)", "cann": "CANN (6)",
             "voice": "voice SNN (1) + log-mel (float in both)", "vision": "vision CNN (1 per frame, 3 steps in 10)",
             "total": "**whole step** (wall)", "total_cpu": "whole step, CPU time of the thread"}
    for k in ("balance", "nsm", "cann", "voice", "vision", "total", "total_cpu"):
        cells = [f"{res[b][k]['p50_ms']:.3f} / {res[b][k]['p99_ms']:.3f} / {res[b][k]['max_ms']:.2f}"
                 for b in ("float", "integer")]
        print(f"| {label[k]} | {cells[0]} | {cells[1]} |")
    for b in ("float", "integer"):
        p99, c99 = res[b]["total"]["p99_ms"], res[b]["total_cpu"]["p99_ms"]
        print(f"{b} brain: p99 {p99:.3f} ms wall ({c99:.3f} ms CPU) against the 1 ms target: "
              f"{'met' if p99 <= 1.0 else 'MISSED'} (wall), {'met' if c99 <= 1.0 else 'MISSED'} (CPU)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
