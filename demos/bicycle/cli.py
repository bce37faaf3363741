"""``tianrt demo bicycle``: ride one scenario headless and write a JSON summary and a video.

By default: the whole brain's scenario (``--kind errand``, 60 s): the bicycle waits on its
stand for a spoken "go", rides a lane past a box and cones, hears "faster", follows a person
who walks behind tall boxes, and stops on a spoken "stop" — every network in one scheduler
(balance, neural state machine, vision CNN, CANN tracker, voice SNN), the state machine
choosing the behaviour; a video shows each network's activity and the state.
``--kind demo``: the earlier waypoint demo (S-curve, speed changes, gusts; 30 s) with the LQR
teacher on the same scenario for comparison.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import tianrt as tr

from . import envelope, policy, suite, world
from .run import run, run_stream, teacher_for


# Exit status (docs/bicycle.md, docs/limits.md).
EXIT_OK, EXIT_FELL, EXIT_BAD, EXIT_RUNTIME, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
BACKENDS = ("reference", "numba", "auto")


def _bounded(kind, lo, hi, what):
    """An argparse type: a finite ``kind`` number within [lo, hi] (the option is named by argparse)."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not (math.isfinite(v) and lo <= v <= hi):
            raise argparse.ArgumentTypeError(f"must be {what} in [{lo:g}, {hi:g}], got {text}")
        return v
    return parse


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tianrt demo bicycle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", metavar="FILE.json", help="scenario file (default: a built-in scenario)")
    ap.add_argument("--kind", default="errand", choices=suite.KINDS,
                    help="built-in scenario kind (default: errand, the whole brain's ride)")
    ap.add_argument("--seed", type=_bounded(int, 0, 2 ** 63 - 1, "an integer"), default=0,
                    help="seed of the built-in scenario")
    ap.add_argument("--duration", type=_bounded(float, world.MIN_DURATION, world.MAX_DURATION, "seconds"),
                    default=None, help=f"seconds, {world.MIN_DURATION:g} to {world.MAX_DURATION:g} "
                                       "(default: 60 for errand, else 30, or the file's)")
    ap.add_argument("--controller", default="mlp", choices=("mlp", "snn", "lqr"),
                    help="balance controller: the MLP (ANN), the MLP converted to an SNN, or the LQR teacher")
    ap.add_argument("--backend", default="reference", choices=BACKENDS,
                    help="tianrt backend for the network: reference | numba | auto")
    ap.add_argument("--model", help="balance model file (default: the shipped data/balance_mlp.tnr)")
    ap.add_argument("--T", type=_bounded(int, 1, 1000, "a whole number of ticks"), default=16,
                    help="SNN ticks per control step, 1 to 1000 (--controller snn)")
    ap.add_argument("--direct", action="store_true",
                    help="step the Runtime directly instead of through tr.stream's scheduler")
    ap.add_argument("--realtime", action="store_true",
                    help="run the scheduler on the wall clock (real time) instead of as fast as possible")
    ap.add_argument("--out", default="out", help="output folder (default: ./out)")
    ap.add_argument("--no-video", action="store_true", help="do not write a video")
    ap.add_argument("--still", metavar="SECONDS", type=_bounded(float, 0.0, world.MAX_DURATION, "seconds"),
                    help="also write the video's frame at this simulated time as a PNG (bicycle-<scenario>-still.png)")
    ap.add_argument("--camera-hz", type=_bounded(float, 0.0, 1000.0, "a frame rate"), default=30.0,
                    help="camera frame rate (0: no rendering)")
    ap.add_argument("--no-teacher", action="store_true", help="skip the LQR comparison ride")
    ap.add_argument("--nav", default="auto", choices=("auto", "waypoints", "avoid", "follow"),
                    help="outer loop: waypoints from the true pose, or from perception and the dead-reckoned "
                         "pose: avoid obstacles, follow the person (auto: follow for --kind follow, avoid for "
                         "--kind obstacles, waypoints otherwise)")
    ap.add_argument("--brain", default="auto", choices=("auto", "on", "off"),
                    help="ride with the whole brain (state machine, voice, vision, CANN in one scheduler, "
                         "acting on spoken commands); auto: for scenarios with spoken commands (errand)")
    ap.add_argument("--chip", metavar="PORT", nargs="?", const="auto",
                    help="the whole brain on one emulated Tianjic-like chip over a serial link: every network "
                         "quantised, compiled onto one 156-core chip and run there (PORT: a serial device, or auto: "
                         "firmware_sim on a pseudo-terminal); the summary adds chip.cores")
    ap.add_argument("--vision", default="float", choices=("float", "int8", "truth"),
                    help="the vision CNN in float or int8 (tr.quantize), or the ground-truth labels (a diagnostic)")
    ap.add_argument("--record", metavar="RIDE.mcap",
                    help="record the ride as MCAP (IMU and encoder samples, network outputs, camera "
                         "frames, steer torque, true state; needs pip install 'tianrt[record]'); "
                         "the network ride through the scheduler only")
    ap.add_argument("--write-scenario", metavar="FILE.json", help="write the scenario used as JSON and exit")
    return ap


def main(argv=None) -> int:
    """Exit status: 0 the ride ended upright, 1 the bicycle fell or crashed, 2 bad usage or a bad scenario
    or model file (nothing is ridden or written), 3 the ride could not run (a backend that is
    not available, a network that fails), 130 interrupted."""
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _fail(code: int, message: str) -> int:
    print(f"tianrt demo bicycle: {message}", file=sys.stderr)
    return code


def _main(args) -> int:
    if args.record and (args.direct or args.controller == "lqr"):
        return _fail(2, "--record records the network's ride through the scheduler: use --controller "
                        "mlp or snn, without --direct")
    for opt, p in (("--out", args.out), ("--write-scenario", args.write_scenario), ("--record", args.record)):
        if p is None:
            continue
        p = Path(p)
        if opt == "--out" and p.exists() and not p.is_dir():
            return _fail(EXIT_BAD, f"--out {p}: exists and is not a folder")
        if opt != "--out" and (p.is_dir() or not p.parent.is_dir()):
            return _fail(EXIT_BAD, f"{opt} {p}: " + ("is a folder" if p.is_dir() else
                                                     f"folder {p.parent} does not exist"))
    try:
        if args.scenario:
            sc_dict = world.read_scenario_file(args.scenario)  # checks the file; errors name the field
            sc = world.parse_scenario(sc_dict, args.scenario)
        else:
            # built for at least 10 s so that its speed profile's knots stay distinct; ridden for --duration
            default = 60.0 if args.kind == "errand" else 30.0
            sc_dict = suite.make(args.kind, args.seed, max(args.duration or default, 10.0))
            sc = world.parse_scenario(sc_dict, f"<built-in {args.kind} seed {args.seed}>")
        if args.duration:
            sc.duration = sc_dict["duration"] = float(args.duration)
    except world.ScenarioError as exc:
        return _fail(EXIT_BAD, str(exc))
    if args.still is not None and (args.no_video or args.camera_hz <= 0):
        return _fail(EXIT_BAD, "--still takes a frame of the video: drop --no-video (and keep --camera-hz above 0)")
    if args.still is not None and args.still > sc.duration:
        return _fail(EXIT_BAD, f"--still {args.still:g}: after the ride's end; give a time in [0, {sc.duration:g}] s")
    if args.write_scenario:
        try:
            Path(args.write_scenario).write_text(json.dumps(sc_dict, indent=1))
        except OSError as exc:
            return _fail(EXIT_RUNTIME, f"--write-scenario {args.write_scenario}: {exc.strerror or exc}")
        print(f"wrote {args.write_scenario}")
        return EXIT_OK
    graph = None
    if args.controller != "lqr":
        try:
            graph = policy.load(args.model)
        except (OSError, tr.TianrtError) as exc:
            return _fail(EXIT_BAD, f"cannot load the balance model: {exc}")
        if msg := envelope.message(envelope.scenario_speeds(sc), f"scenario {sc.name}", envelope.trained_speeds(graph)):
            print(f"warning: {msg}", file=sys.stderr)  # a ride outside the trained speeds
        try:
            tr.Runtime(graph, backend=args.backend).close()  # a backend that cannot run says so now
            if args.controller == "snn":
                graph = policy.to_snn(graph, policy.calibration_data(), T=args.T)
        except tr.TianrtError as exc:
            return _fail(EXIT_RUNTIME, f"cannot run the {args.controller} controller on backend "
                                       f"{args.backend!r}: {exc}")
    chip = None
    try:
        brain = _brain(args, sc, graph)
        if args.chip is not None:
            chip, graph = _on_chip(args, brain)
    except ValueError as exc:
        return _fail(EXIT_BAD, str(exc))
    except tr.TianrtError as exc:
        return _fail(EXIT_RUNTIME, f"the chip could not be reached or loaded: {exc}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(EXIT_BAD, f"--out {out}: cannot create the folder ({exc.strerror or exc})")

    from .render import CameraSpec, Scene, SensorCamera, VideoRecorder

    scene = Scene(sc)
    camera = SensorCamera(scene, CameraSpec()) if args.camera_hz > 0 else None
    still = None if args.still is None else (args.still, out / f"bicycle-{sc.name}-still.png")
    video = None if args.no_video else VideoRecorder(out / f"bicycle-{sc.name}-{args.controller}.mp4", scene,
                                                     still=still)
    print(f"scenario {sc.name}: {sc.duration:g} s, control {sc.control_hz:g} Hz, physics {sc.physics_hz:g} Hz, "
          f"{len(sc.obstacles)} obstacles, target {'yes' if sc.target else 'no'}")
    nav = _navigator(args, sc) if brain is None else _pilot(sc, brain)
    try:
        res = _ride(args, sc, graph, camera, video, nav, brain, chip)
    except (tr.TianrtError, ValueError, OSError) as exc:   # OSError: the video or its still could not be written
        return _fail(EXIT_RUNTIME, f"the ride could not run: {exc}")
    finally:
        if video is not None:
            video.close()
        if chip is not None:
            for rt in brain.runtimes.values():
                rt.close()
            chip["session"].close()
    rides = [res.summary()]
    if not args.no_teacher and args.controller != "lqr" and nav is None and brain is None:
        rides.append(run(sc, teacher_for(sc), "lqr").summary())
    for r in rides:
        if r.get("collisions"):
            print(f"  {r['controller']:>24s}: CRASHED into {r['crashed_into']} at {r['crash_time']:.1f} s")
        if r.get("target"):
            print(f"  {'':>24s}  target: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in r["target"].items()))
        print(f"  {r['controller']:>24s}: {'FELL at %.1f s' % r['fall_time'] if r['fell'] else 'no fall'}, "
              f"max lean {r['max_lean_deg']:.1f} deg, RMS path error {r['rms_path_error']:.3f} m, "
              f"latency p50 {r['latency_us']['p50']:.0f} us, real-time factor {r['real_time_factor']:.0f}x")
    summary = {"scenario": sc.name, "source": sc.source, "duration_s": sc.duration, "rides": rides,
               "video": res.video, "camera": {"hz": args.camera_hz, "frames": res.camera_frames,
                                              "size": [CameraSpec().width, CameraSpec().height]}}
    if res.brain is not None:
        cmd, states = res.brain["commands"], res.brain["nsm"]["states"]
        summary["commands"] = {"heard": cmd["heard"], "obeyed": cmd.get("obeyed", []),
                               "not_obeyed": cmd.get("not_obeyed", [])}
        summary["nsm"] = {"states": states, "changes": res.brain["nsm"]["changes"]}
        print(f"  {'':>24s}  heard {', '.join(w for _, w in cmd['heard']) or 'nothing'}; obeyed "
              f"{len(cmd.get('obeyed', []))} of {len(cmd['heard'])}; states {' > '.join(states)}")
    if chip is not None:
        summary["chip"] = {"cores": chip["partition"].cores_used, "cores_chip": chip["partition"].spec.n_cores,
                           "port": args.chip, "networks": [r.name for r in chip["partition"].regions]}
        print(f"  {'':>24s}  on the chip: {', '.join(summary['chip']['networks'])} on "
              f"{summary['chip']['cores']} of {summary['chip']['cores_chip']} cores")
    if video is not None and video.still_written:
        summary["still"] = video.still_written
    path = out / f"bicycle-{sc.name}-summary.json"
    path.write_text(json.dumps(summary, indent=1))
    print(f"wrote {path}" + (f" and {res.video} ({video.frames} frames)" if video is not None else "")
          + (f" and {video.still_written}" if video is not None and video.still_written else ""))
    return EXIT_FELL if res.fell or res.collisions else EXIT_OK


def _navigator(args, sc):
    mode = args.nav
    if mode == "auto":
        mode = {"follow": "follow", "obstacles": "avoid"}.get(args.kind if not args.scenario else "", "waypoints")
    if mode == "waypoints":
        return None
    if mode == "follow" and sc.target is None:
        raise SystemExit(_fail(EXIT_BAD, "--nav follow needs a scenario with a target person (world.target)"))
    from . import follow, vision
    from .run import schedule_for

    perception = "truth"
    if args.vision != "truth":
        perception = vision.load()
        if args.vision == "int8":
            perception = vision.int8(perception)
    return follow.Navigator(sc, mode, schedule_for(sc.bicycle, 1.0 / sc.control_hz), perception=perception,
                            backend="reference" if args.backend == "auto" else args.backend)


def _brain(args, sc, graph):
    """The whole brain for this ride (brain.Brain hearing the scenario's speech), or None; a
    ValueError says why this ride cannot have it."""
    on = args.brain == "on" or (args.brain == "auto" and sc.speech is not None)
    if not on:
        return None
    if graph is None or args.direct:
        raise ValueError("the brain rides with a balance network in the scheduler: use --controller mlp or "
                         "snn, without --direct (or --brain off)")
    if args.camera_hz != 30.0:
        raise ValueError("the brain's vision runs at the camera's 30 Hz: leave --camera-hz at 30 (or --brain off)")
    from . import brain, speech

    audio, _ = speech.track(sc.speech, sc.duration, sc.seed)   # a SpeechError is a ValueError
    nets = brain.graphs(integer=args.vision == "int8")
    return brain.Brain(audio=audio, backend="auto", nets=nets)


def _on_chip(args, brain):
    """Every network of ``brain`` and the balance network quantised, compiled onto one chip and
    opened over one serial link; the brain's networks then run in the chip's regions. Returns
    ({"session", "partition"}, the integer balance graph)."""
    if brain is None:
        raise ValueError("--chip runs the whole brain on the chip: a scenario with spoken commands (the "
                         "default errand) or --brain on")
    if args.controller != "snn":
        raise ValueError("--chip: the balance network on the chip is the spiking one: add --controller snn")
    if args.vision == "truth":
        raise ValueError("--chip: the vision network runs on the chip; --vision truth is a host-side diagnostic")
    from . import brain_chip, chip_ride

    nets, _, part = chip_ride.nets_and_partition(brain_chip.networks(chip_ride.ON_CHIP))
    session = tr.chip.open_many(part, port=args.chip)
    try:
        for k, g in nets.items():
            if k != "balance":
                brain.runtimes[k].close()
                brain.graphs[k] = g
                brain.runtimes[k] = tr.Runtime(g, backend="chip", session=session, region=k)
    except BaseException:
        session.close()
        raise
    return {"session": session, "partition": part}, nets["balance"]


def _pilot(sc, brain):
    from . import pilot
    from .run import schedule_for

    return pilot.Pilot(sc, schedule_for(sc.bicycle, 1.0 / sc.control_hz), brain)


def _ride(args, sc, graph, camera, video, nav=None, brain=None, chip=None):
    if graph is None:
        return run(sc, teacher_for(sc), "lqr", camera_hz=args.camera_hz, camera=camera, video=video, nav=nav)
    if args.direct:
        return run(sc, policy.NetworkPolicy(graph, args.backend), f"{args.controller}/{args.backend}",
                   camera_hz=args.camera_hz, camera=camera, video=video, nav=nav)
    if chip is not None:
        return run_stream(sc, graph, "chip", f"{args.controller}/chip/stream", camera_hz=args.camera_hz,
                          camera=camera, video=video, clock="wall" if args.realtime else "sim", nav=nav,
                          record=args.record, brain=brain, options={"session": chip["session"], "region": "balance"})
    return run_stream(sc, graph, args.backend, f"{args.controller}/{args.backend}/stream",
                      camera_hz=args.camera_hz, camera=camera, video=video,
                      clock="wall" if args.realtime else "sim", nav=nav, record=args.record, brain=brain)
