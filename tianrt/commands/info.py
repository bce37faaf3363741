"""``tianrt info MODEL``: print a model file's summary table and metadata."""
from __future__ import annotations


def _cmd_info(args) -> int:
    from ..modelfile import load

    g = load(args.model)
    g.summary()
    if g.metadata:
        print("metadata:", ", ".join(f"{k}={v}" for k, v in g.metadata.items()))
    return 0


def register(sub) -> None:
    q = sub.add_parser("info", help="print a model's summary table",
                       description="Print the summary table (node, kind, domain, shape, params, clock) of a model file.")
    q.add_argument("model", help="model file (.tnr)")
    q.set_defaults(func=_cmd_info)
