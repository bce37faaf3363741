"""``tianrt run MODEL --input FILE``: run a saved model on inputs from an .npz (or, for a
single-input model, an .npy) file; print the outputs or save them with ``--output``.

Everything the command line gives is checked before the model runs: the output folder
exists, the model file loads, every input array names a graph input and has a shape that
fits (saying how axis 0 was read). Exit status (docs/limits.md): 0 done, 1 bad input
(model or input file, values that do not fit), 2 bad usage, 3 runtime failure.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

BACKENDS = ("reference", "numba", "chip", "auto")
MAX_TICKS = 10_000_000


def _ticks(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of ticks, got {text!r}") from None
    if not 1 <= n <= MAX_TICKS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TICKS:,}, got {n}")
    return n


def check_output(path: str | None, option: str = "--output", example: str = "out.npz") -> Path | None:
    """``path`` as a Path if a file can be written there (checked before any work), else UsageError."""
    from ..errors import UsageError

    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file name such as {out / example}")
    parent = out.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: directory {parent} is not writable")
    return out


def save_npz(out: Path, values: dict, ticks: dict) -> None:
    """Write outputs and their ``NAME__ticks`` to exactly ``out`` (numpy would append .npz to
    a bare name), through a temporary file renamed into place."""
    tmp = out.with_name(out.name + ".tmp")
    created = False
    try:
        with open(tmp, "wb") as f:
            created = True
            np.savez(f, **values, **{f"{k}__ticks": v for k, v in ticks.items()})
        os.replace(tmp, out)
    except OSError:
        if created:
            tmp.unlink(missing_ok=True)
        raise


def _cmd_run(args) -> int:
    from ..inputfile import fit_inputs, read_arrays
    from ..modelfile import load
    from ..runtime import Runtime

    out = check_output(args.output)
    g = load(args.model)
    inputs = fit_inputs(g, read_arrays(args.input), args.ticks, args.input)
    rt = Runtime(g, backend=args.backend)
    try:
        outs = rt.run(inputs, ticks=args.ticks)
    finally:
        rt.close()
    if out is not None:
        save_npz(out, outs, outs.ticks)
        print(f"wrote {', '.join(outs)} to {out}")
    else:
        np.set_printoptions(precision=4, suppress=True, linewidth=120)
        for k, v in outs.items():
            print(f"{k}: {v.shape[0]} value(s) at ticks {outs.ticks[k].tolist()[:10]}"
                  f"{' …' if len(outs.ticks[k]) > 10 else ''}")
            if len(v):
                print(f"  latest: {v[-1]}")
    return 0


def register(sub) -> None:
    q = sub.add_parser("run", help="run a model on inputs from an .npz (or .npy) file",
                       description="Run a saved model on inputs from an .npz file (one array per graph input) "
                                   "or, for a model with one input, an .npy file. With --ticks each array is one "
                                   "value held for that many ticks; without it, axis 0 of every array is time "
                                   "(one slice per tick). Exit status: 0 done, 1 bad input, 2 bad usage, "
                                   "3 runtime failure (docs/limits.md).")
    q.add_argument("model", help="model file (.tnr)")
    q.add_argument("--input", required=True, metavar="FILE.npz|FILE.npy",
                   help="inputs: an .npz with one array per graph input, or an .npy for a single-input model")
    q.add_argument("--ticks", type=_ticks, default=None, help="hold the inputs for this many ticks")
    q.add_argument("--backend", default="reference", choices=BACKENDS,
                   help="reference | numba | chip | auto (default: reference)")
    q.add_argument("--output", metavar="OUT.npz", help="save the outputs to exactly this file instead of printing them")
    q.set_defaults(func=_cmd_run)
