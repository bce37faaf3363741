"""``python -m tianrt.firmware_sim``: the emulated board behind a pseudo-terminal or a socket.

The first stdout line is where to connect (a pty path such as /dev/pts/3, or a pyserial URL
``socket://127.0.0.1:PORT``); then the process serves frames until SIGTERM/SIGINT. SIGUSR1
simulates a firmware reset (watchdog, power glitch): the image and all state are dropped and
a BOOT frame is sent, as a real board would after a restart.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys


def _parse_mesh(text: str) -> list[int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
        if rows <= 0 or cols <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mesh {text!r}: expected ROWSxCOLS such as 12x13") from None
    return [rows, cols]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tianrt.firmware_sim",
                                description="Emulated Tianjic-style board behind a serial port.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal (default)")
    where.add_argument("--socket", type=int, metavar="PORT",
                       help="serve on socket://127.0.0.1:PORT (0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="address the socket listens on (default 127.0.0.1; another address "
                        "exposes the board: use --secret-file too)")
    p.add_argument("--secret-file", metavar="PATH",
                   help="socket only: hosts must prove they know the secret in this file "
                        "(HMAC challenge in HELLO; ChipLink(secret=...), tianrt chip --secret-file)")
    p.add_argument("--mesh", type=_parse_mesh, metavar="ROWSxCOLS", help="core mesh (default 12x13)")
    p.add_argument("--spec", metavar="JSON", help='ChipSpec field overrides as a JSON object, e.g. \'{"axons_per_core": 128}\'')
    p.add_argument("--engine", default="tianrt.firmware_sim.engine:Engine", metavar="MODULE:CLASS",
                   help="execution engine class (default: the emulator's own)")
    p.add_argument("--max-payload", type=int, default=None, metavar="BYTES",
                   help="largest frame payload this board takes (64..16384, default 16384): "
                        "emulates a board with small receive buffers")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit when the process that started this one goes away")
    p.add_argument("--quiet", action="store_true", help="no log lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    import os

    from .server import Server
    from .transport import serve_pty, serve_socket, stderr_log

    args = build_parser().parse_args(argv)
    spec: dict = {}
    if args.spec:
        try:
            spec = json.loads(args.spec)
            if not isinstance(spec, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            print(f"firmware_sim: --spec is not a JSON object ({exc})", file=sys.stderr)
            return 2
    if args.mesh:
        spec["mesh_rows"], spec["mesh_cols"] = args.mesh
    mod_name, _, cls_name = args.engine.partition(":")
    try:
        engine_cls = getattr(importlib.import_module(mod_name), cls_name or "Engine")
    except (ImportError, AttributeError) as exc:
        print(f"firmware_sim: cannot load engine {args.engine!r}: {exc}", file=sys.stderr)
        return 2
    try:
        engine_cls(spec or None)   # fail now, not at the first HELLO, if the spec is bad
    except Exception as exc:  # noqa: BLE001 - report any engine/spec error and exit
        print(f"firmware_sim: cannot start the engine with spec {spec}: {exc}", file=sys.stderr)
        return 2

    log = (lambda msg: None) if args.quiet else stderr_log
    secret = None
    if args.secret_file:
        if args.socket is None:
            print("firmware_sim: --secret-file is for --socket boards (a pty is local)", file=sys.stderr)
            return 2
        try:
            with open(args.secret_file, "rb") as f:
                secret = f.read().strip()
        except OSError as exc:
            print(f"firmware_sim: --secret-file: {exc}", file=sys.stderr)
            return 2
        if not secret:
            print("firmware_sim: --secret-file is empty", file=sys.stderr)
            return 2
    try:
        server = Server(lambda: engine_cls(spec or None), log=log, secret=secret,
                        **({"max_payload": args.max_payload} if args.max_payload else {}))
    except ValueError as exc:
        print(f"firmware_sim: --max-payload: {exc}", file=sys.stderr)
        return 2
    parent = os.getppid() if args.exit_with_parent else None

    def announce(where: str) -> None:
        print(where, flush=True)

    if args.socket is not None:
        return serve_socket(server, args.socket, host=args.host, announce=announce, exit_with_parent=parent)
    if not hasattr(os, "openpty"):
        print("firmware_sim: this system has no pseudo-terminals; use --socket PORT", file=sys.stderr)
        return 2
    return serve_pty(server, announce=announce, exit_with_parent=parent)


if __name__ == "__main__":
    sys.exit(main())
