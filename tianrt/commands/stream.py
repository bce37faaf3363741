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
    if len(fit) != 1:
        listing = ", ".join(f"{k} {inputs[k].shape}" for k in inputs)
        raise StreamError(f"--{kind}: cannot tell which input it feeds ({'several fit' if fit else 'none fits'}: "
                          f"{listing}); write --{kind} INPUT=…")
    return fit[0]


def _build(args):
    import numpy as np

    from ..inputfile import read_arrays
    from ..modelfile import load
    from ..runtime import Runtime
    from ..stream import (ArraySink, ArraySource, AudioSource, CameraSource, Scheduler,
                          SerialSink, SerialSource, StreamError)

    g = load(args.model)
    rt = Runtime(g, backend=args.backend)
    sched = Scheduler(rt, clock=args.clock)
    inputs = g.inputs
    # explicit bindings first, so that the defaults of the others see them taken
    specs = [(kind, *_split(v)) for kind in ("camera", "audio", "serial", "array")
             for v in (getattr(args, kind) or [])]
    named = [name for _, name, _ in specs if name is not None]
    dup = sorted({n for n in named if named.count(n) > 1})
    if dup:
        raise StreamError(f"input {dup[0]!r} is bound by two source flags; each input takes one source")
    taken = set(named)
    if not specs:
        raise StreamError("give at least one source: --camera, --audio, --serial or --array")
    for kind, name, value in sorted(specs, key=lambda s: s[1] is None):
        inp = _choose_input(kind, name, inputs, taken - ({name} if name else set()))
        taken.add(inp)
        common = dict(name=inp, invalid=args.invalid)
        if kind == "camera":
            src = CameraSource(value, **common)
        elif kind == "audio":
            src = AudioSource(value, **common)
        elif kind == "serial":
            src = SerialSource(value, format=args.serial_format, baudrate=args.baud, **common)
        else:
            path, _, rate = value.partition("@")
            arrays = read_arrays(path, fail=lambda problem: StreamError(
                f"--array {inp}={value}: cannot read {path} ({problem})"))
            if len(arrays) != 1:
                raise StreamError(f"--array {inp}={value}: {path} holds {len(arrays)} arrays "
                                  f"({', '.join(map(str, arrays))}); give an .npy or an .npz with one array")
            data = next(iter(arrays.values()))
            src = ArraySource(data, rate_hz=float(rate) if rate else None, **common)
        sched.add_source(src, to=inp)
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

    report = sched.run(ticks=args.ticks, seconds=args.seconds,
                       until_end=True if args.ticks is None and args.seconds is None else False,
                       on_status=live, status_every=args.status_every)
    if live is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    print(report)
    if args.save:
        arrays = {}
        for name, s in sinks.items():
            arrays[name] = s.values
            arrays[f"{name}__ticks"] = s.ticks
        np.savez(args.save, **arrays)
        print(f"wrote {', '.join(sinks)} to {args.save}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def add_source_arguments(q, default_backend: str) -> None:
    """The source, sink and backend options shared by ``tianrt stream`` and ``tianrt serve``."""
    q.add_argument("--camera", action="append", metavar="[INPUT=]0|FILE",
                   help="camera device index or video file (OpenCV)")
    q.add_argument("--audio", action="append", metavar="[INPUT=]FILE.wav",
                   help="wav file, delivered in chunks of the input's size")
    q.add_argument("--serial", action="append", metavar="[INPUT=]URL",
                   help="serial device path or pyserial URL (loop://, socket://host:port)")
    q.add_argument("--array", action="append", metavar="INPUT=FILE.npy[@HZ]",
                   help="values from a .npy file with a leading time axis (default: one per tick)")
    q.add_argument("--serial-format", choices=("lines", "frames"), default="lines",
                   help="serial wire format (default: lines of comma-separated numbers)")
    q.add_argument("--baud", type=int, default=115200, help="serial baud rate (default 115200)")
    q.add_argument("--serial-out", action="append", metavar="OUTPUT=URL",
                   help="also write an output to a serial device")
    q.add_argument("--invalid", choices=("reject", "sanitise", "raise"), default="reject",
                   help="what to do with NaN/inf or wrong-shaped sensor values (default: reject)")
    q.add_argument("--backend", default=default_backend,
                   help=f"reference | numba | chip | auto (default: {default_backend})")


def register(sub) -> None:
    q = sub.add_parser(
        "stream", help="run a model live on a camera, wav files, serial devices or arrays",
        description="Run a saved model live: each source flag binds to the graph input named INPUT, by "
                    "default the input named after the flag (camera, audio, serial) or the only input "
                    "that fits. Shows a status line and ends with a report (latency p50/p99, misses, "
                    "drops, rejects) when the sources end, after --seconds/--ticks, or on Ctrl-C. "
                    "See docs/streaming.md.")
    q.add_argument("model", help="model file (.tnr)")
    add_source_arguments(q, default_backend="reference")
    q.add_argument("--clock", choices=("wall", "sim"), default="wall",
                   help="wall: real time (default); sim: as fast as possible (files only)")
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
