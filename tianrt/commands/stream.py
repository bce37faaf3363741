"""``tianrt stream MODEL --camera [INPUT=]0|FILE --audio [INPUT=]FILE.wav --serial [INPUT=]URL``:
run a saved model live against devices or files, with a live status line and a final report."""
from __future__ import annotations

import json
import re
import sys

_INPUT_PREFIX = re.compile(r"^([A-Za-z_][\w.-]*)=(.*)$")


def _split(arg: str) -> tuple[str | None, str]:
    """'camera=0' -> ('camera', '0'); '0', 'clip.avi', 'loop://?a=b' -> (None, arg)."""
    m = _INPUT_PREFIX.match(arg)
    return (m.group(1), m.group(2)) if m else (None, arg)


def _fits(kind: str, shape: tuple) -> bool:
    if kind == "camera":
        return (len(shape) == 3 and (shape[0] in (1, 3) or shape[2] in (1, 3))) or len(shape) == 2
    if kind == "audio":
        return len(shape) == 1 or (len(shape) == 2 and shape[0] <= 8)
    return True


def _choose_input(kind: str, explicit: str | None, inputs: dict, taken: set) -> str:
    from ..stream import StreamError

    if explicit is not None:
        if explicit not in inputs:
            raise StreamError(f"--{kind} {explicit}=…: the model has no input {explicit!r}; its inputs "
                              f"are {', '.join(inputs)}")
        return explicit
    if kind in inputs and kind not in taken:
        return kind
    fit = [k for k, spec in inputs.items() if k not in taken and _fits(kind, spec.shape)]
    busy = [k for k, spec in inputs.items() if k in taken and _fits(kind, spec.shape)]
    if not fit and busy:
        raise StreamError(f"--{kind}: the input(s) that fit ({', '.join(f'{k} {inputs[k].shape}' for k in busy)}) "
                          f"are already bound by another flag; each input takes one source - bind this "
                          f"one with --{kind} INPUT=… to another input")
    if len(fit) != 1:
        listing = ", ".join(f"{k} {inputs[k].shape}" for k in inputs)
        raise StreamError(f"--{kind}: cannot tell which input it feeds ({'several fit' if fit else 'none fits'}: "
                          f"{listing}); write --{kind} INPUT=…")
    return fit[0]


def _policy(v: str) -> str:
    from ..stream import POLICIES, StreamError

    if v not in POLICIES:
        raise StreamError(f"policy {v!r}: use one of {', '.join(POLICIES)}")
    return v


def _per_input(opt: str, items: list, conv, inputs) -> dict:
    """'--policy imu=latest' (repeatable) -> {'imu': 'latest'}."""
    from ..stream import StreamError

    out = {}
    for item in items:
        name, eq, v = item.partition("=")
        if not eq or name not in inputs:
            raise StreamError(f"--{opt} {item}: write INPUT=VALUE with INPUT one of "
                              f"{', '.join(inputs)}")
        try:
            out[name] = conv(v)
        except (TypeError, ValueError):
            raise StreamError(f"--{opt} {item}: {v!r} is not a valid {opt}") from None
    return out


def _size(v: str) -> tuple:
    from ..stream import StreamError

    w, _, h = v.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        raise StreamError(f"--camera-size {v}: write WIDTHxHEIGHT, e.g. 640x480") from None
    if min(size) < 1:
        raise StreamError(f"--camera-size {v}: width and height must be positive")
    return size


def _build(args):
    from ..inputfile import read_arrays
    from ..modelfile import load
    from ..runtime import Runtime
    from ..stream import (ArraySink, ArraySource, AudioSource, CameraSource, Scheduler,
                          SerialSink, SerialSource, StreamError)

    g = load(args.model)
    rt = Runtime(g, backend=args.backend)
    replay = getattr(args, "replay", None)  # tianrt serve has no --replay
    clock = args.clock or ("sim" if replay else "wall")
    sched = Scheduler(rt, clock=clock, overrun=args.overrun, max_lateness=args.max_lateness)
    if args.record:
        sched.record(args.record)
    inputs = g.inputs
    # explicit bindings first, so that the defaults of the others see them taken
    specs = [(kind, *_split(v)) for kind in ("camera", "audio", "serial", "array")
             for v in (getattr(args, kind) or [])]
    named = [name for _, name, _ in specs if name is not None]
    dup = sorted({n for n in named if named.count(n) > 1})
    if dup:
        raise StreamError(f"input {dup[0]!r} is bound by two source flags; each input takes one source")
    taken = set(named)
    if replay:
        if specs:
            raise StreamError("--replay feeds every input from the recording; give no source flags with it")
        sched.replay(replay)
    elif not specs:
        raise StreamError("give at least one source: --camera, --audio, --serial, --array or --replay")
    per_input = {opt: _per_input(opt, getattr(args, opt.replace("-", "_")) or [], conv, inputs)
                 for opt, conv in (("policy", _policy), ("capacity", int), ("delay", float))}
    size = _size(args.camera_size) if args.camera_size else None
    for kind, name, value in sorted(specs, key=lambda s: s[1] is None):
        inp = _choose_input(kind, name, inputs, taken - ({name} if name else set()))
        taken.add(inp)
        common = dict(name=inp, invalid=args.invalid)
        for opt in ("policy", "capacity", "delay"):
            if inp in per_input[opt]:
                common[opt] = per_input[opt][inp]
        if kind == "camera":
            src = CameraSource(value, capture_size=size, rate_hz=args.camera_fps, **common)
        elif kind == "audio":
            src = AudioSource(value, target_rate=args.audio_rate, resample=args.resample, **common)
        elif kind == "serial":
            src = SerialSource(value, format=args.serial_format, baudrate=args.baud, **common)
        else:
            path, _, rate = value.partition("@")
            try:
                hz = float(rate) if rate else None
            except ValueError:
                raise StreamError(f"--array {inp}={value}: the rate after @ must be a number of Hz, "
                                  f"e.g. {inp}={path}@200") from None
            arrays = read_arrays(path, fail=lambda problem: StreamError(
                f"--array {inp}={value}: cannot read {path} ({problem})"))
            if len(arrays) != 1:
                raise StreamError(f"--array {inp}={value}: {path} holds {len(arrays)} arrays "
                                  f"({', '.join(map(str, arrays))}); give an .npy or an .npz with one array")
            data = next(iter(arrays.values()))
            src = ArraySource(data, rate_hz=hz, **common)
        sched.add_source(src, to=inp)
    for item in args.sync or []:
        names, _, tol = item.partition("@")
        try:
            tolerance = float(tol)
        except ValueError:
            raise StreamError(f"--sync {item}: write INPUT,INPUT[,…]@SECONDS, e.g. camera,imu@0.005") from None
        sched.synchronise([n.strip() for n in names.split(",") if n.strip()], tolerance)
    for item in args.deadline or []:
        out, _, sec = item.partition("=")
        try:
            sched.set_deadline(out, float(sec))
        except ValueError:
            raise StreamError(f"--deadline {item}: write OUTPUT=SECONDS, e.g. y=0.02") from None
    for item in args.serial_out or []:
        out, _, url = item.partition("=")
        if not url:
            raise StreamError(f"--serial-out {item}: write OUTPUT=URL, e.g. y=/dev/ttyUSB1")
        sched.add_sink(out, SerialSink(url, format=args.serial_format, baudrate=args.baud))
    sinks = {o: sched.add_sink(o, ArraySink()) for o in g.outputs} if args.save else {}
    return sched, sinks


def _cmd_stream(args) -> int:
    import numpy as np

    sched, sinks = _build(args)
    live = None
    if not args.quiet:
        tty = sys.stderr.isatty()

        def live(report):
            line = report.status_line()
            if tty:
                sys.stderr.write("\r\033[K" + line[:200])
            else:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()

    to_end = args.ticks is None and args.seconds is None
    with _sigterm_stops_the_run():
        report = sched.run(ticks=args.ticks, seconds=args.seconds,
                           until_end=(None if args.replay else True) if to_end else False,
                           on_status=live, status_every=args.status_every)
    if live is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    print(report)
    if args.save:
        arrays = {}
        for name, s in sinks.items():
            arrays[name] = s.values
            arrays[f"{name}__ticks"] = s.ticks
            arrays[f"{name}__unix_s"] = report["start_unix_s"] + s.times  # absolute wall-clock time
        np.savez(args.save, **arrays)
        print(f"wrote {', '.join(sinks)} to {args.save}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    code, why = exit_code(report)
    if code:
        sys.stderr.write(f"tianrt stream: exit {code}: {why}\n")
    return code


# Exit codes of `tianrt stream` (docs/streaming.md); 1 is any error before or during the run.
EXIT_OK, EXIT_SOURCE_FAILED, EXIT_ALL_REJECTED = 0, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report


def exit_code(report) -> tuple[int, str]:
    """The exit code a finished run's report calls for, and why."""
    if report["stopped"] == "interrupted":
        return EXIT_INTERRUPTED, "interrupted (Ctrl-C)"
    if report["stopped"] == "terminated":
        return EXIT_TERMINATED, "terminated (SIGTERM)"
    failed = [n for n, s in report["sources"].items() if s["state"] == "failed"]
    if failed:
        return EXIT_SOURCE_FAILED, "source(s) failed: " + ", ".join(
            f"{n} ({report['sources'][n]['error']})" for n in failed)
    refused = [n for n, s in report["sources"].items() if s["rejected"] and not s["delivered"]]
    if refused:
        return EXIT_ALL_REJECTED, "every sample was rejected: " + ", ".join(
            f"{n} ({report['sources'][n]['last_reject']})" for n in refused)
    return EXIT_OK, ""


class _sigterm_stops_the_run:
    """SIGTERM (systemd, docker stop, launch systems) stops the run like Ctrl-C: the report
    is printed and written, outputs saved, devices closed."""

    def __enter__(self):
        import signal
        import threading

        from ..stream import Terminated

        self.old = None
        if threading.current_thread() is threading.main_thread():
            def stop(signum, frame):
                raise Terminated()

            self.old = signal.signal(signal.SIGTERM, stop)
        return self

    def __exit__(self, *exc):
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


def add_source_arguments(q, default_backend: str) -> None:
    """The source, sink and backend options shared by ``tianrt stream`` and ``tianrt serve``."""
    q.add_argument("--camera", action="append", metavar="[INPUT=]0|FILE",
                   help="camera device index or video file (OpenCV)")
    q.add_argument("--audio", action="append", metavar="[INPUT=]FILE.wav",
                   help="wav file, delivered in chunks of the input's size")
    q.add_argument("--audio-rate", type=int, metavar="HZ",
                   help="sample rate the network takes (default: the audio input's declared rate "
                        "times its chunk); audio at another rate is refused unless --resample")
    q.add_argument("--resample", action="store_true",
                   help="resample audio to the network's rate (polyphase Kaiser-windowed sinc) "
                        "instead of refusing it")
    q.add_argument("--serial", action="append", metavar="[INPUT=]URL",
                   help="serial device path or pyserial URL (loop://, socket://host:port)")
    q.add_argument("--array", action="append", metavar="INPUT=FILE.npy[@HZ]",
                   help="values from a .npy file with a leading time axis (default: one per tick)")
    q.add_argument("--policy", action="append", metavar="INPUT=latest|queue|never-drop",
                   help="queue policy of the source feeding INPUT (default: the source's own)")
    q.add_argument("--capacity", action="append", metavar="INPUT=N",
                   help="queue capacity of the source feeding INPUT")
    q.add_argument("--delay", action="append", metavar="INPUT=SECONDS",
                   help="hold each sample of INPUT until its sensor time + SECONDS (evens out "
                        "bursty devices; see docs/streaming.md, Sensor time)")
    q.add_argument("--sync", action="append", metavar="INPUT,INPUT[,…]@SECONDS",
                   help="deliver these inputs' samples only as matched sets within SECONDS")
    q.add_argument("--camera-size", metavar="WxH",
                   help="capture size asked of a live camera, e.g. 640x480 (frames are then resized "
                        "to the input's shape)")
    q.add_argument("--camera-fps", type=float, metavar="HZ",
                   help="frame rate asked of a live camera, or the rate a video file is played at "
                        "(default: the device's or the file's)")
    q.add_argument("--serial-format", choices=("lines", "frames"), default="lines",
                   help="serial wire format (default: lines of comma-separated numbers)")
    q.add_argument("--baud", type=int, default=115200, help="serial baud rate (default 115200)")
    q.add_argument("--serial-out", action="append", metavar="OUTPUT=URL",
                   help="also write an output to a serial device")
    q.add_argument("--invalid", choices=("reject", "sanitise", "raise"), default="reject",
                   help="what to do with NaN/inf or wrong-shaped sensor values (default: reject)")
    q.add_argument("--backend", default=default_backend,
                   help=f"reference | numba | chip | auto (default: {default_backend})")
    q.add_argument("--overrun", choices=("catch-up", "skip", "drop-stale"), default="catch-up",
                   help="when the model is slower than real time: run late ticks back to back "
                        "(catch-up, default), skip ticks to the present (skip), or drop samples older "
                        "than --max-lateness (drop-stale)")
    q.add_argument("--max-lateness", type=float, metavar="SEC",
                   help="lateness that triggers the overrun policy (default: 10 ticks)")
    q.add_argument("--record", metavar="RUN.mcap",
                   help="record every sample (with its sensor time), what reached the network on "
                        "which tick, and every output, as MCAP (needs: pip install 'tianrt[record]')")


def register(sub) -> None:
    q = sub.add_parser(
        "stream", help="run a model live on a camera, wav files, serial devices or arrays",
        description="Run a saved model live: each source flag binds to the graph input named INPUT, by "
                    "default the input named after the flag (camera, audio, serial) or the only input "
                    "that fits. Shows a status line and ends with a report (latency p50/p99, misses, "
                    "drops, rejects) when the sources end, after --seconds/--ticks, or on Ctrl-C or "
                    "SIGTERM. Exit codes: 0 ran to its end; 1 error; 3 a source failed; 4 every "
                    "sample of a source was rejected; 130 Ctrl-C; 143 SIGTERM. See docs/streaming.md.")
    q.add_argument("model", help="model file (.tnr)")
    add_source_arguments(q, default_backend="reference")
    q.add_argument("--clock", choices=("wall", "sim"), default=None,
                   help="wall: real time (default); sim: as fast as possible (files only; the "
                        "default with --replay)")
    q.add_argument("--replay", metavar="RUN.mcap",
                   help="feed the model from a recording instead of devices: the same samples on the "
                        "same ticks, on the simulated clock (bit for bit)")
    stop = q.add_mutually_exclusive_group()
    stop.add_argument("--seconds", type=float, help="stop after this much stream time")
    stop.add_argument("--ticks", type=int, help="stop after this many ticks")
    q.add_argument("--deadline", action="append", metavar="OUTPUT=SECONDS",
                   help="latency deadline of an output; later values count as misses")
    q.add_argument("--save", metavar="OUT.npz", help="save every output value (and its tick) here")
    q.add_argument("--report", metavar="REPORT.json", help="write the final report as JSON")
    q.add_argument("--status-every", type=float, default=0.5, metavar="SEC",
                   help="seconds between status lines (default 0.5)")
    q.add_argument("--quiet", action="store_true", help="no live status line")
    q.set_defaults(func=_cmd_stream)
