"""``tianrt chip info|load|run``: talk to a board (or firmware_sim) over the serial link."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _link(args):
    from tianrt.chip.link import ChipLink

    secret = None
    if getattr(args, "secret_file", None):
        from tianrt.errors import TianrtError
        try:
            secret = Path(args.secret_file).read_bytes().strip()
        except OSError as exc:
            raise TianrtError(f"--secret-file {args.secret_file}: {exc.strerror}") from None
    return ChipLink(args.port, baudrate=args.baudrate, timeout=args.timeout, retries=args.retries,
                    secret=secret, take_over=getattr(args, "take_over", False))


def _print_info(info: dict) -> None:
    if not info:
        print("image: none loaded")
        return
    print(f"image: {info.get('name', '?')}, {info.get('cores_used', '?')} cores")
    for kind in ("inputs", "outputs"):
        for io in info.get(kind, []):
            print(f"  {kind[:-1]:6s} {io['name']}: shape {tuple(io['shape'])} {io.get('dtype', '')}")


def _print_counters(counters: dict) -> None:
    keys = [k for k in counters if not isinstance(counters[k], (dict, list))]
    print("counters: " + ", ".join(f"{k}={counters[k]:g}" if isinstance(counters[k], float)
                                   else f"{k}={counters[k]}" for k in keys))


def _read_image(path: str) -> bytes:
    from tianrt.errors import TianrtError

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TianrtError(f"cannot read image {path}: {exc.strerror}") from None


def _cmd_info(args) -> int:
    with _link(args) as link:
        b = link.board
        print(f"board at {link.where}: {b.get('firmware')} (protocol {b.get('protocol')}, "
              f"boot #{b.get('boot')}, max payload {b.get('max_payload')} bytes)")
        spec = b.get("spec")
        if isinstance(spec, dict) and "mesh_rows" in spec:
            print(f"mesh: {spec['mesh_rows']}x{spec['mesh_cols']} cores")
        _print_info(link.info())
        _print_counters(link.counters())
    return 0


def _cmd_load(args) -> int:
    data = _read_image(args.image)
    with _link(args) as link:
        info = link.upload_image(data)
        print(f"loaded {args.image} ({len(data)} bytes) on {args.port}")
        _print_info(info)
        if args.port == "auto":
            print("note: with --port auto the emulator stops when this command ends; "
                  "use `tianrt chip run --image` to load and run in one go")
    return 0


def _cmd_run(args) -> int:
    from tianrt.commands.run import check_output, save_npz
    from tianrt.errors import InputError, TianrtError
    from tianrt.inputfile import NPY, read_arrays

    out = check_output(args.output)
    inputs = read_arrays(args.input)  # fully read and checked here: nothing fails half-way on the board
    with _link(args) as link:
        if args.image:
            link.upload_image(_read_image(args.image))
        info = link.info()
        if not info:
            raise TianrtError(f"no image on the board at {args.port}; give one with --image")
        if NPY in inputs:
            names = [io["name"] for io in info.get("inputs", [])]
            if len(names) != 1:
                raise InputError(f"{args.input}: an .npy file holds one array, but the image has {len(names)} "
                                 f"inputs ({', '.join(names)}); give an .npz with one array per input")
            inputs = {names[0]: inputs[NPY]}
        link.reset()
        if args.ticks is not None:
            for name, v in inputs.items():
                link.push_input(name, v)
            link.run(args.ticks)
            outs = link.pull_outputs()
        else:
            lengths = {v.shape[0] if v.ndim else 0 for v in inputs.values()}
            if len(lengths) != 1:
                raise TianrtError(f"without --ticks every input needs the same leading time axis; "
                                  f"got lengths {sorted(lengths)}")
            # one STEPS exchange per 256 ticks: push each tick's slices, run 1, collect
            n = lengths.pop()
            frames = [({name: v[t] for name, v in inputs.items()}, 1) for t in range(n)]
            steps = [link.steps(frames[t0:t0 + 256]) for t0 in range(0, n, 256)]
            steps.append(link.pull_outputs())
            names = list(dict.fromkeys(k for st in steps for k in st))
            outs = {}
            for k in names:
                parts = [st[k] for st in steps if k in st]
                full = [p for p in parts if len(p[0])] or parts[-1:]
                outs[k] = (np.concatenate([p[0] for p in full]), np.concatenate([p[1] for p in full]))
        counters = link.counters()
    if out is not None:
        save_npz(out, {k: v for k, (t, v) in outs.items()}, {k: t for k, (t, v) in outs.items()})
        print(f"wrote {', '.join(outs) or 'no outputs'} to {out}")
    else:
        for k, (t, v) in outs.items():
            print(f"{k}: {len(t)} value(s) at ticks {t.tolist()[:10]}{' …' if len(t) > 10 else ''}")
            if len(t):
                print(f"  latest: {v[-1].tolist() if v[-1].size <= 32 else v[-1].shape}")
    _print_counters(counters)
    return 0


def register(sub) -> None:
    p = sub.add_parser("chip", help="talk to a chip board (or firmware_sim) over the serial link",
                       description="Talk to a board over the serial link (docs/protocol.md).")
    csub = p.add_subparsers(dest="chip_command", metavar="ACTION", required=True)

    def common(q):
        q.add_argument("--port", default="auto",
                       help="serial device, pty path, pyserial URL (socket://HOST:PORT), or 'auto' "
                            "to start a local firmware_sim (default: auto)")
        q.add_argument("--baudrate", type=int, default=921600)
        q.add_argument("--timeout", type=float, default=1.0, help="seconds per try (default 1.0)")
        q.add_argument("--retries", type=int, default=5, help="retransmissions per frame (default 5)")
        q.add_argument("--secret-file", metavar="PATH", help="shared secret of a socket board (its --secret-file)")
        q.add_argument("--take-over", action="store_true",
                       help="take a socket board over from the host that holds it")

    q = csub.add_parser("info", help="board, image and counters")
    common(q)
    q.set_defaults(func=_cmd_info)
    q = csub.add_parser("load", help="upload an image file")
    q.add_argument("image", help="image file (from `tianrt compile`)")
    common(q)
    q.set_defaults(func=_cmd_load)
    q = csub.add_parser("run", help="run inputs from an .npz file on the board",
                        description="Reset the board's state, feed int32 inputs from an .npz file "
                                    "(held for --ticks, or one slice per tick along the first axis), "
                                    "and print or save the outputs.")
    q.add_argument("--image", help="upload this image first")
    q.add_argument("--input", required=True, metavar="FILE.npz|FILE.npy",
                   help="integer inputs, one array per input (an .npy for a single-input image)")
    q.add_argument("--ticks", type=int, default=None, help="hold the inputs for this many ticks")
    q.add_argument("--output", metavar="OUT.npz", help="save outputs (and NAME__ticks) to exactly this file")
    common(q)
    q.set_defaults(func=_cmd_run)

