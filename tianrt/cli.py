"""The ``tianrt`` command line: ``info``, ``run``, ``demo`` and the subcommands that
modules in ``tianrt.commands`` register (each defines ``register(subparsers)``)."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import numpy as np


def _cmd_info(args) -> int:
    from .modelfile import load

    g = load(args.model)
    g.summary()
    if g.metadata:
        print("metadata:", ", ".join(f"{k}={v}" for k, v in g.metadata.items()))
    return 0


def _cmd_run(args) -> int:
    from .modelfile import load
    from .runtime import Runtime

    g = load(args.model)
    try:
        with np.load(args.input, allow_pickle=False) as z:
            inputs = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        print(f"tianrt run: cannot read inputs from {args.input}: {exc}", file=sys.stderr)
        return 2
    rt = Runtime(g, backend=args.backend)
    outs = rt.run(inputs, ticks=args.ticks)
    if args.output:
        np.savez(args.output, **outs, **{f"{k}__ticks": v for k, v in outs.ticks.items()})
        print(f"wrote {', '.join(outs)} to {args.output}")
    else:
        np.set_printoptions(precision=4, suppress=True, linewidth=120)
        for k, v in outs.items():
            print(f"{k}: {v.shape[0]} value(s) at ticks {outs.ticks[k].tolist()[:10]}"
                  f"{' …' if len(outs.ticks[k]) > 10 else ''}")
            if len(v):
                print(f"  latest: {v[-1]}")
    return 0


def _cmd_demo(args) -> int:
    from tianrt.demos import available, run_demo

    demos = available()
    if not args.name:
        print("demos:")
        for name, doc in demos.items():
            print(f"  {name:12s} {doc}")
        print("run one with: tianrt demo NAME [options]")
        return 0
    return run_demo(args.name, args.rest)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="tianrt", description="Hybrid ANN/SNN runtime for edge machines.")
    p.add_argument("--version", action="version", version=f"tianrt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("info", help="print a model's summary table",
                       description="Print the summary table (node, kind, domain, shape, params, clock) of a model file.")
    q.add_argument("model", help="model file (.tnr)")
    q.set_defaults(func=_cmd_info)

    q = sub.add_parser("run", help="run a model on inputs from an .npz file",
                       description="Run a saved model on inputs from an .npz file (one array per graph input; "
                                   "with --ticks the arrays are held values, without it they have a leading time axis).")
    q.add_argument("model", help="model file (.tnr)")
    q.add_argument("--input", required=True, metavar="FILE.npz", help="inputs, one array per graph input")
    q.add_argument("--ticks", type=int, default=None, help="hold the inputs for this many ticks")
    q.add_argument("--backend", default="reference", help="reference | numba | chip (default: reference)")
    q.add_argument("--output", metavar="OUT.npz", help="save the outputs here instead of printing them")
    q.set_defaults(func=_cmd_run)

    q = sub.add_parser("demo", help="run a demo (lists them without NAME)",
                       description="Run one of the bundled demos; without NAME, list them.")
    q.add_argument("name", nargs="?", help="demo name")
    q.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the demo (see tianrt demo NAME --help)")
    q.set_defaults(func=_cmd_demo)

    from . import commands
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        m = importlib.import_module(f"{commands.__name__}.{mod.name}")
        if hasattr(m, "register"):
            m.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .errors import TianrtError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except TianrtError as exc:
        print(f"tianrt {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
