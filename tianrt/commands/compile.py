"""``tianrt compile MODEL -o IMAGE``: compile an integer model onto the chip, print the
mapping report (and write it as JSON with --report)."""
from __future__ import annotations

import json
import sys


def _cmd_compile(args) -> int:
    from ..chip.compiler import compile as chip_compile
    from ..chip.spec import ChipSpec, SpecError
    from ..modelfile import load
    from .run import check_output

    check_output(args.output, "-o", "model.img")
    check_output(args.report, "--report", "report.json")
    try:
        spec = ChipSpec.preset(args.preset)
        if args.mesh:
            spec = spec.with_mesh(args.mesh)
        over = {}
        for item in args.set or []:
            key, _, val = item.partition("=")
            over[key] = float(val) if "." in val or "e" in val.lower() else int(val)
        if over:
            spec = ChipSpec.from_dict({**spec.to_dict(), **over})
    except (SpecError, ValueError) as exc:
        print(f"tianrt compile: {exc}", file=sys.stderr)
        return 2
    g = load(args.model)
    image, report = chip_compile(g, spec, seed=args.seed, ticks_per_inference=args.ticks)
    with open(args.output, "wb") as f:
        f.write(image)
    print(report)
    print(f"wrote {len(image):,} bytes to {args.output}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report.to_dict(), f, indent=1)
    return 0


def register(sub) -> None:
    p = sub.add_parser("compile", help="compile an integer model to a chip image and print the mapping",
                       description="Compile an integer (tr.quantize'd) model onto the unified-core chip: "
                                   "writes the image and prints the mapping report (cores per layer, "
                                   "utilisation, hops, cycles, latency and energy). See docs/chip.md.")
    p.add_argument("model", help="model file (.tnr) of an integer graph")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE", help="image file to write")
    p.add_argument("--mesh", metavar="ROWSxCOLS", help="mesh size (default 12x13, Tianjic)")
    p.add_argument("--preset", default="default", metavar="NAME",
                   help="named ChipSpec: default (64 KiB weights per core) or tianjic-sram (22 KiB)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a ChipSpec field, e.g. --set axons_per_core=128 (repeatable)")
    p.add_argument("--ticks", type=int, default=None, help="ticks per inference for the estimates "
                                                           "(default: the longest decoder window)")
    p.add_argument("--seed", type=int, default=0, help="placement seed")
    p.add_argument("--report", metavar="FILE.json", help="also write the report as JSON")
    p.set_defaults(func=_cmd_compile)
