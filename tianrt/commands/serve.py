"""``tianrt serve MODEL --camera 0 … [--checkpoint state.npz]``: ``tianrt stream`` as a service
for systemd — logs on stdout, clean shutdown on SIGTERM with the final report, checkpoints
of the runtime's state and resume after a restart (tianrt.deploy.service, docs/deploy.md)."""
from __future__ import annotations


def _cmd_serve(args) -> int:
    from ..deploy.service import serve
    from ..errors import UsageError
    from .stream import _build

    if args.checkpoint_every <= 0 or args.log_every <= 0:
        raise UsageError("--checkpoint-every and --log-every must be positive seconds")
    return serve(args, _build)


def register(sub) -> None:
    from ..deploy.service import add_arguments
    from .stream import add_source_arguments

    q = sub.add_parser(
        "serve", help="run a model live as a service (systemd): logs, SIGTERM, checkpoints",
        description="Like `tianrt stream`, for a board: status lines on stdout every --log-every seconds, "
                    "SIGTERM/SIGINT stop at the next tick boundary with a last checkpoint and the final "
                    "report (exit 0), and --checkpoint saves the runtime's state periodically and resumes "
                    "from it at start. Runs until the sources end (or --seconds/--ticks). "
                    "See docs/deploy.md for the systemd unit.")
    q.add_argument("model", help="model file (.tnr)")
    add_source_arguments(q, default_backend="auto")
    q.add_argument("--clock", choices=("wall", "sim"), default="wall",
                   help="wall: real time (default); sim: as fast as possible (files only, tests)")
    stop = q.add_mutually_exclusive_group()
    stop.add_argument("--seconds", type=float, help="stop after this much stream time")
    stop.add_argument("--ticks", type=int, help="stop after this many ticks")
    q.add_argument("--deadline", action="append", metavar="OUTPUT=SECONDS",
                   help="latency deadline of an output; later values count as misses")
    q.add_argument("--report", metavar="REPORT.json", help="write the final report as JSON at shutdown")
    add_arguments(q)
    q.set_defaults(func=_cmd_serve)
