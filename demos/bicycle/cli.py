"""``tianrt demo bicycle``: ride one scenario headless and write a JSON summary and a video.

By default: the built-in demo scenario (S-curve, speed changes, gusts, lanes, cones, boxes
and a walking target), 30 s, the shipped balance MLP running in tr.stream's scheduler on
the reference backend, the LQR teacher on the same scenario for comparison, the 64x48
camera rendered at 30 Hz, and a video of the network's ride.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import tianrt as tr

from . import policy, suite, world
from .run import run, run_stream, teacher_for


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tianrt demo bicycle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", metavar="FILE.json", help="scenario file (default: a built-in scenario)")
    ap.add_argument("--kind", default="demo", choices=suite.KINDS, help="built-in scenario kind (default: demo)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the built-in scenario")
    ap.add_argument("--duration", type=float, default=None, help="seconds (default: 30, or the file's)")
    ap.add_argument("--controller", default="mlp", choices=("mlp", "snn", "lqr"),
                    help="balance controller: the MLP (ANN), the MLP converted to an SNN, or the LQR teacher")
    ap.add_argument("--backend", default="reference", help="tianrt backend for the network: reference | numba")
    ap.add_argument("--model", help="balance model file (default: the shipped data/balance_mlp.tnr)")
    ap.add_argument("--T", type=int, default=16, help="SNN ticks per control step (--controller snn)")
    ap.add_argument("--direct", action="store_true",
                    help="step the Runtime directly instead of through tr.stream's scheduler")
    ap.add_argument("--realtime", action="store_true",
                    help="run the scheduler on the wall clock (real time) instead of as fast as possible")
    ap.add_argument("--out", default="out", help="output folder (default: ./out)")
    ap.add_argument("--no-video", action="store_true", help="do not write a video")
    ap.add_argument("--camera-hz", type=float, default=30.0, help="camera frame rate (0: no rendering)")
    ap.add_argument("--no-teacher", action="store_true", help="skip the LQR comparison ride")
    ap.add_argument("--write-scenario", metavar="FILE.json", help="write the scenario used as JSON and exit")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.duration is not None and not args.duration > 0:
            raise world.ScenarioError(f"--duration must be > 0 seconds, got {args.duration}")
        if args.scenario:
            sc = world.load_scenario(args.scenario)  # checks the file; errors name the field
            sc_dict = json.loads(Path(args.scenario).read_text())
        else:
            sc_dict = suite.make(args.kind, args.seed, args.duration or 30.0)
            sc = world.parse_scenario(sc_dict, f"<built-in {args.kind} seed {args.seed}>")
        if args.duration:
            sc.duration = float(args.duration)
    except (world.ScenarioError, OSError, json.JSONDecodeError) as exc:
        print(f"tianrt demo bicycle: {exc}", file=sys.stderr)
        return 2
    if args.write_scenario:
        Path(args.write_scenario).write_text(json.dumps(sc_dict, indent=1))
        print(f"wrote {args.write_scenario}")
        return 0
    graph = None
    if args.controller != "lqr":
        try:
            graph = policy.load(args.model)
        except (OSError, tr.TianrtError) as exc:
            print(f"tianrt demo bicycle: cannot load the balance model: {exc}", file=sys.stderr)
            return 2
        if args.controller == "snn":
            graph = policy.to_snn(graph, policy.calibration_data(), T=args.T)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from .render import CameraSpec, Scene, SensorCamera, VideoRecorder

    scene = Scene(sc)
    camera = SensorCamera(scene, CameraSpec()) if args.camera_hz > 0 else None
    video = None if args.no_video else VideoRecorder(out / f"bicycle-{sc.name}-{args.controller}.mp4", scene)
    print(f"scenario {sc.name}: {sc.duration:g} s, control {sc.control_hz:g} Hz, physics {sc.physics_hz:g} Hz, "
          f"{len(sc.obstacles)} obstacles, target {'yes' if sc.target else 'no'}")
    try:
        if graph is None:
            res = run(sc, teacher_for(sc), "lqr", camera_hz=args.camera_hz, camera=camera, video=video)
        elif args.direct:
            res = run(sc, policy.NetworkPolicy(graph, args.backend), f"{args.controller}/{args.backend}",
                      camera_hz=args.camera_hz, camera=camera, video=video)
        else:
            res = run_stream(sc, graph, args.backend, f"{args.controller}/{args.backend}/stream",
                             camera_hz=args.camera_hz, camera=camera, video=video,
                             clock="wall" if args.realtime else "sim")
    finally:
        if video is not None:
            video.close()
    rides = [res.summary()]
    if not args.no_teacher and args.controller != "lqr":
        rides.append(run(sc, teacher_for(sc), "lqr").summary())
    for r in rides:
        print(f"  {r['controller']:>24s}: {'FELL at %.1f s' % r['fall_time'] if r['fell'] else 'no fall'}, "
              f"max lean {r['max_lean_deg']:.1f} deg, RMS path error {r['rms_path_error']:.3f} m, "
              f"latency p50 {r['latency_us']['p50']:.0f} us, real-time factor {r['real_time_factor']:.0f}x")
    summary = {"scenario": sc.name, "source": sc.source, "duration_s": sc.duration, "rides": rides,
               "video": res.video, "camera": {"hz": args.camera_hz, "frames": res.camera_frames,
                                              "size": [CameraSpec().width, CameraSpec().height]}}
    path = out / f"bicycle-{sc.name}-summary.json"
    path.write_text(json.dumps(summary, indent=1))
    print(f"wrote {path}" + (f" and {res.video} ({video.frames} frames)" if video is not None else ""))
    return 1 if res.fell else 0
