"""The bicycle's whole brain on one Tianjic-like chip: every network quantised and compiled
together onto one ChipSpec (one region of the mesh each, ``tr.chip.compile_many``), with a
mapping report per network and per control step.

    python -m tianrt.demos.bicycle.brain_chip                       # the default 12x13 preset
    python -m tianrt.demos.bicycle.brain_chip --preset tianjic-sram  # 22 KiB of weights per core
    python -m tianrt.demos.bicycle.brain_chip --json out/brain-chip.json
    python -m tianrt.demos.bicycle.brain_chip --ride --seed 1 --port auto   # the brain in the loop on it
    python -m tianrt.demos.bicycle.brain_chip --ride --kind errand --seeds 0,1,2 --duration 60   # the pilot too

``--ride``: the whole brain rides in the closed loop on one chip over one serial link, checked
bit for bit against numba's integer mode on the same ride (chip_ride.py).

The networks and how each becomes an integer graph:

- ``balance``: the balance MLP converted to an SNN (T = 16), ``policy.quantize``: ``tr.quantize``
  on its calibration rides and on rides of hard manoeuvres (the input ranges); 16 ticks of
  0.625 ms per 10 ms control step;
- ``nsm``: the neural state machine (integer by construction, ``nsm.quantized``); 1 ms tick;
- ``vision``: the CNN, ``vision.int8``; one inference per camera frame (30 Hz);
- ``cann``: ``cann.quantized`` (its detection code enters as rate-coded spikes); 20 ticks per
  camera frame;
- ``voice``: ``voice.integer.quantized`` (``tr.quantize`` calibrated on the shipped clips): its
  recurrent ALIF layer reads the log-mel frames as an int8 current beside its own spikes, the
  feed-forward product rescaled to the membrane's unit in the dendrite (``q.SynRecurrent``
  ff_mult/ff_shift); one tick per 10 ms audio frame.

Per control step (10 ms): a region's cycles are its ticks in the step times its cycles per
tick (the report's upper bound: every axon active); regions run side by side, so the chip's
step takes as long as its slowest region; energy adds up.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import tianrt as tr

CONTROL_HZ = 100.0
CAMERA_HZ = 30.0
KINDS = {"balance": "SNN (converted MLP)", "nsm": "SNN (state machine)", "vision": "CNN (ANN)",
         "cann": "SNN (ring attractor)", "voice": "SNN (recurrent ALIF)"}


def networks(which=tuple(KINDS)) -> dict:
    """name -> (integer graph, ticks per control step, ticks per inference, how it was made)."""
    from . import cann, nsm, policy, vision

    out = {}
    if "balance" in which:
        snn = policy.to_snn(policy.load(), policy.calibration_data())
        T = int(snn.metadata["T"])
        out["balance"] = (policy.quantize(snn), T, T,
                          "policy.quantize of policy.to_snn (runs: numba integer / chip)")
    if "nsm" in which:
        g = nsm.quantized()
        out["nsm"] = (g, round(1.0 / (CONTROL_HZ * g.dt)), 1, "nsm.quantized (runs)")
    if "vision" in which:
        out["vision"] = (vision.int8(vision.load()), 1, 1, "vision.int8 (runs)")
    if "cann" in which:
        q = cann.quantized()  # its detection code enters as rate-coded spikes, so it quantises
        per_frame = cann.TICKS
        out["cann"] = (q, round(1.0 / (CONTROL_HZ * q.dt)), per_frame, "cann.quantized (runs)")
    if "voice" in which:
        from tianrt.demos.voice import integer

        q = integer.quantized()
        out["voice"] = (q, max(1, round(1.0 / (CONTROL_HZ * q.dt))), 1,
                        "tr.quantize, feed-forward product rescaled (runs: numba integer / chip)")
    return out


def per_step(name: str, rep, ticks_per_step: int, clock_hz: float) -> dict:
    """One network's costs per 10 ms control step: the vision CNN runs once per camera frame
    (in 3 of every 10 steps; the worst step has one frame), the SNNs every tick."""
    if name == "vision":
        worst_cyc, worst_nj = rep.cycles_per_tick, rep.energy_per_inference_nj
        mean_nj = worst_nj * CAMERA_HZ / CONTROL_HZ
    else:
        worst_cyc, worst_nj = rep.cycles_per_tick * ticks_per_step, rep.energy_per_tick_nj * ticks_per_step
        mean_nj = worst_nj
    return {"ticks_per_step": ticks_per_step, "cycles_per_step": worst_cyc,
            "latency_us_per_step": worst_cyc / clock_hz * 1e6, "energy_nj_per_step": worst_nj,
            "energy_nj_per_step_mean": mean_nj}


def brain_on_chip(spec: tr.chip.ChipSpec | None = None, which=tuple(KINDS), nets: dict | None = None) -> dict:
    """Compile the brain's networks together onto ``spec``: the partition and per-network rows."""
    nets = nets if nets is not None else networks(which)
    spec = spec or tr.chip.ChipSpec()
    part = tr.chip.compile_many({k: v[0] for k, v in nets.items()}, spec,
                                ticks_per_inference={k: v[2] for k, v in nets.items()})
    rows = {}
    for r in part.regions:
        rep = r.report
        _, tps, _, how = nets[r.name]
        rows[r.name] = {"kind": KINDS[r.name], "how": how, "region": [r.row, r.col, r.rows, r.cols],
                        "cores": rep.cores_used, "neuron_util": rep.neuron_util, "axon_util": rep.axon_util,
                        "weight_util": rep.weight_util, "rounds_per_tick": rep.rounds_per_tick,
                        "hops_per_tick": rep.hops_per_tick, "host_extra_hops_per_tick": r.host_extra_hops,
                        "worst_link_packets": rep.worst_link_packets, "cycles_per_tick": rep.cycles_per_tick,
                        "energy_nj_per_tick": rep.energy_per_tick_nj, **per_step(r.name, rep, tps, spec.clock_hz)}
    step_us = max(x["latency_us_per_step"] for x in rows.values())
    return {"spec": spec.to_dict(), "partition": part, "networks": rows,
            "total": {"cores": part.cores_used, "cores_reserved": part.cores_reserved, "cores_chip": spec.n_cores,
                      "step_latency_us": step_us, "energy_nj_per_step": sum(x["energy_nj_per_step"]
                                                                           for x in rows.values()),
                      "energy_nj_per_step_mean": sum(x["energy_nj_per_step_mean"] for x in rows.values())}}


def markdown(res: dict) -> str:
    lines = ["| network | kind | cores (region) | util neurons / axons / weights | rounds per tick | "
             "hops per tick (+ host) | ticks per step | cycles per step | µs per step | nJ per step (mean) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["networks"].items():
        lines.append(f"| {name} | {r['kind']} | {r['cores']} ({r['region'][2]}x{r['region'][3]} at "
                     f"{r['region'][0]},{r['region'][1]}) | {r['neuron_util']:.0%} / {r['axon_util']:.0%} / "
                     f"{r['weight_util']:.1%} | {r['rounds_per_tick']} | {r['hops_per_tick']:,} "
                     f"(+{r['host_extra_hops_per_tick']:,}) | {r['ticks_per_step']} | {r['cycles_per_step']:,.0f} | "
                     f"{r['latency_us_per_step']:.2f} | {r['energy_nj_per_step']:.1f} "
                     f"({r['energy_nj_per_step_mean']:.1f}) |")
    t = res["total"]
    lines.append(f"| **whole brain** | | **{t['cores']} of {t['cores_chip']}** ({t['cores_reserved']} reserved) | "
                 f"| | | | | **{t['step_latency_us']:.2f}** (regions in parallel) | **{t['energy_nj_per_step']:.1f}** "
                 f"({t['energy_nj_per_step_mean']:.1f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.bicycle.brain_chip", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default", help="ChipSpec preset: default or tianjic-sram")
    ap.add_argument("--mesh", help="another mesh, ROWSxCOLS (default: the preset's 12x13)")
    ap.add_argument("--networks", default=",".join(KINDS), help=f"comma list of {', '.join(KINDS)}")
    ap.add_argument("--reports", action="store_true", help="print each network's full mapping report")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--ride", action="store_true", help="ride the brain in the closed loop on the chip and "
                    "check it bit for bit against numba integer on the same ride")
    ap.add_argument("--seed", type=int, default=1, help="--ride: the scenario's seed")
    ap.add_argument("--seeds", help="--ride: several seeds, comma separated (instead of --seed)")
    ap.add_argument("--duration", type=float, default=3.0, help="--ride: seconds of ride (>= 2)")
    ap.add_argument("--port", default="auto", help="--ride: the board (auto: firmware_sim on a pty)")
    ap.add_argument("--kind", default="follow", choices=("follow", "errand"),
                    help="--ride: a short follow ride with go/stop (the waypoint follower), or the errand "
                         "scenario ridden by the pilot acting on the state machine")
    a = ap.parse_args(argv)
    if a.ride:
        return _ride(a, ap)
    which = [w.strip() for w in a.networks.split(",") if w.strip()]
    bad = [w for w in which if w not in KINDS]
    if bad:
        ap.error(f"unknown network(s) {bad}; choose from {', '.join(KINDS)}")
    try:
        spec = tr.chip.ChipSpec.preset(a.preset)
        if a.mesh:
            spec = spec.with_mesh(a.mesh)
    except tr.chip.SpecError as exc:
        ap.error(str(exc))
    try:
        res = brain_on_chip(spec, which)
    except tr.chip.CapacityError as exc:
        print(f"does not fit: {exc}")
        return 1
    print(res["partition"])
    if a.reports:
        for r in res["partition"].regions:
            print(f"\n[{r.name}]\n{r.report}")
    print(markdown(res))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        out = {k: v for k, v in res.items() if k != "partition"}
        out["partition"] = res["partition"].to_dict()
        Path(a.json).write_text(json.dumps(out, indent=1, default=float))
    return 0


def _ride(a, ap) -> int:
    from . import chip_ride

    if a.duration < 2.0:
        ap.error("--duration: at least 2 s (the spoken go and stop)")
    try:
        seeds = [int(x) for x in a.seeds.split(",")] if a.seeds else [a.seed]
    except ValueError:
        ap.error(f"--seeds: comma separated integers, got {a.seeds!r}")
    parts = chip_ride.nets_and_partition(networks(chip_ride.ON_CHIP), tr.chip.ChipSpec.preset(a.preset))
    results, ok = [], True
    for seed in seeds:
        r = chip_ride.check(seed, parts, a.duration, a.port, a.kind)
        results.append(r)
        ok &= r["bit_exact"]
        bad = [k for k, v in r["outputs"].items() if not v["identical"]]
        print(f"seed {seed}: {r['duration_s']:.2f} s, {r['control_steps']} control steps, "
              f"{'BIT-EXACT' if r['bit_exact'] else 'DIFFERENT: ' + ', '.join(bad or ['summary'])} "
              f"(on the chip: {', '.join(r['on_chip'])}; host: {', '.join(r['on_host']) or 'none'}); "
              f"NSM {' -> '.join(r['nsm_states'])}; heard {[w for _, w in r['heard']]}; "
              f"{'fell, ' if r['fell'] else ''}{'crashed, ' if r['collisions'] else ''}"
              f"{r['ms_per_control_step']['chip']:.1f} ms per control step on the chip "
              f"({r['chip_frames']} frames), {r['ms_per_control_step']['numba']:.1f} on numba")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(results, indent=1, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
