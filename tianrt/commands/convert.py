"""``tianrt convert`` and ``tianrt quantize``: the conversion and quantisation of model files
from the command line (calibration data from an .npz file with one array per graph input)."""
from __future__ import annotations

import sys

import numpy as np


def _calibration(path: str, what: str) -> dict:
    from tianrt.errors import InputError

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{what}: cannot read calibration data from {path}: {exc}") from None


def _layers(spec: str | None):
    """None, "a,b,c" (weight-layer names) or "START:" / ":STOP" / "START:STOP" (a slice)."""
    if spec is None:
        return None
    if ":" in spec:
        a, _, b = spec.partition(":")
        try:
            return slice(int(a) if a else None, int(b) if b else None)
        except ValueError:
            raise SystemExit(f"tianrt convert: --layers {spec!r}: a slice needs integers, e.g. 1: ") from None
    return [s.strip() for s in spec.split(",") if s.strip()]


def _cmd_convert(args) -> int:
    import tianrt as tr

    ann = tr.load(args.model)
    snn = tr.convert(ann, _calibration(args.calibration, "convert"), T=args.ticks, layers=_layers(args.layers),
                     method=args.method, percentile=args.percentile, per_channel=args.per_channel,
                     neuron=args.neuron, beta=args.beta, v_init=args.v_init, encoding=args.encoding,
                     maxpool=args.maxpool)
    tr.save(snn, args.output)
    meta = snn.metadata["conversion"]
    print(f"wrote {args.output}: spiking {', '.join(meta['spiking_layers'])}"
          + (f"; ANN {', '.join(meta['ann_layers'])}" if meta["ann_layers"] else "")
          + f"; run it for T = {args.ticks} ticks per input")
    return 0


def _cmd_quantize(args) -> int:
    import tianrt as tr

    g = tr.load(args.model)
    q = tr.quantize(g, _calibration(args.calibration, "quantize"), per_channel=not args.per_layer,
                    method=args.method, ticks=args.ticks)
    tr.save(q, args.output)
    print(f"wrote {args.output}: {len(q.entries)} nodes in integer mode")
    return 0


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert an ANN model file to a spiking (or hybrid) one",
                       description="ANN -> SNN conversion with threshold balancing (docs/conversion.md).")
    p.add_argument("model", help="ANN model file (.tnr), a chain of tr.ann layers")
    p.add_argument("--calibration", required=True, metavar="CAL.npz", help="one array (N, ...) per graph input")
    p.add_argument("-T", "--ticks", type=int, default=16, help="ticks per inference (default 16)")
    p.add_argument("--layers", default=None,
                   help="weight layers to convert: names 'conv2,dense1' or a slice '1:' (default: all)")
    p.add_argument("--method", default="robust", choices=["max", "percentile", "robust"])
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument("--per-channel", action="store_true", help="one activation scale per channel")
    p.add_argument("--neuron", default="if", choices=["if", "lif"])
    p.add_argument("--beta", type=float, default=1.0, help="leak of --neuron lif")
    p.add_argument("--v-init", type=float, default=0.5, help="initial membrane as a fraction of the threshold")
    p.add_argument("--encoding", default="direct", choices=["direct", "rate"])
    p.add_argument("--maxpool", default="avg", choices=["avg", "error"])
    p.add_argument("-o", "--output", required=True, metavar="OUT.tnr")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("quantize", help="quantise a float model file to int8 integer (chip) mode",
                       description="Post-training int8 quantisation following docs/integer.md.")
    p.add_argument("model", help="float model file (.tnr): ANN, converted SNN or hybrid")
    p.add_argument("--calibration", required=True, metavar="CAL.npz", help="one array (N, ...) per tensor input")
    p.add_argument("--per-layer", action="store_true", help="one weight scale per ANN layer (default: per channel)")
    p.add_argument("--method", default="max", choices=["max", "percentile"])
    p.add_argument("--ticks", type=int, default=None, help="calibration ticks (default: the conversion's T)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tnr")
    p.set_defaults(func=_cmd_quantize)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: tianrt convert ... / tianrt quantize ...")
