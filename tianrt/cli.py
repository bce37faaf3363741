"""The ``tianrt`` command line: ``demo`` and the subcommands that modules in
``tianrt.commands`` register (each defines ``register(subparsers)``: ``info``, ``run``,
``convert``, ``compile``, ``chip``, ...), and the exit status every command shares."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


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
    from . import commands

    first = ("info", "run")  # listed first in --help, then demo, then the rest by name
    mods = sorted(pkgutil.iter_modules(commands.__path__),
                  key=lambda m: (first.index(m.name) if m.name in first else len(first), m.name))
    for i, mod in enumerate(mods):
        if i == len(first):
            _register_demo(sub)
        m = importlib.import_module(f"{commands.__name__}.{mod.name}")
        if hasattr(m, "register"):
            m.register(sub)
    if len(mods) <= len(first):
        _register_demo(sub)
    return p


def _register_demo(sub) -> None:
    q = sub.add_parser("demo", help="run a demo (lists them without NAME)",
                       description="Run one of the bundled demos; without NAME, list them.")
    q.add_argument("name", nargs="?", help="demo name")
    q.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the demo (see tianrt demo NAME --help)")
    q.set_defaults(func=_cmd_demo)


# Exit status of every command (docs/limits.md).
EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_RUNTIME, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit status 0 done, 1 bad input (a model, input or data file, or
    values that do not fit), 2 bad usage (argparse's own code too), 3 runtime failure (a
    backend or device that cannot run, a file that cannot be written, out of memory), 130
    interrupted."""
    from .errors import BackendError, TianrtError, UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    where = f"tianrt {args.command}"
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BackendError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except TianrtError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"{where}: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except MemoryError:
        print(f"{where}: out of memory", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
