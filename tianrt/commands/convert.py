"""``tianrt convert`` and ``tianrt quantize``: the conversion and quantisation of model files
from the command line (calibration data from an .npz file with one array per graph input,
or an .npy for a single-input model)."""
from __future__ import annotations

import sys


def _calibration(path: str, graph) -> dict:
    """Calibration arrays by input name from an .npz (or an .npy for a single-input graph)."""
    from tianrt.errors import InputError
    from tianrt.inputfile import NPY, graph_inputs, read_arrays

    data = read_arrays(path, "calibration data")
    if NPY in data:
        names = list(graph_inputs(graph))
        if len(names) != 1:
            raise InputError(f"{path}: an .npy file holds one array, but graph {graph.name!r} has "
                             f"{len(names)} inputs ({', '.join(names)}); give an .npz with one array per input")
        data = {names[0]: data[NPY]}
    return data


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

    from .run import check_output
    check_output(args.output, "-o", "snn.tnr")
    ann = tr.load(args.model)
    snn = tr.convert(ann, _calibration(args.calibration, ann), T=args.ticks, layers=_layers(args.layers),
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

    from .run import check_output
    check_output(args.output, "-o", "q.tnr")
    g = tr.load(args.model)
    q = tr.quantize(g, _calibration(args.calibration, g), per_channel=not args.per_layer,
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
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--per-channel", dest="per_channel", action="store_true", default=True,
                       help="one activation scale per channel (the default)")
    scale.add_argument("--per-layer", dest="per_channel", action="store_false",
                       help="one activation scale per layer")
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
    p.add_argument("--per-layer", action="store_true", help="one weight scale per layer (default: per output channel, for ANN layers and for "
                   "spiking synapses feeding one IF/LIF population)")
    p.add_argument("--method", default="max", choices=["max", "percentile"])
    p.add_argument("--ticks", type=int, default=None, help="calibration ticks (default: the conversion's T)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tnr")
    p.set_defaults(func=_cmd_quantize)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: tianrt convert ... / tianrt quantize ...")
