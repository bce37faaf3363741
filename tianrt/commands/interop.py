"""``tianrt import MODEL.onnx|MODEL.nir -o OUT.tnr`` and ``tianrt export MODEL.tnr -o OUT.nir``:
model files from and to other frameworks (docs/interop.md; needs ``tianrt[interop]``)."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path


def _cmd_import(args) -> int:
    import tianrt as tr
    from tianrt.interop import InteropError, read_nir, read_onnx

    suffix = Path(args.model).suffix.lower()
    if suffix == ".onnx":
        g = read_onnx(args.model, name=args.name)
    elif suffix in (".nir", ".h5", ".hdf5"):
        g = read_nir(args.model, dt=args.dt, input_domain=args.input_domain, name=args.name)
    else:
        raise InteropError(f"{args.model}: unknown model type {suffix or '(no suffix)'!r}; "
                           "tianrt imports .onnx (ANNs) and .nir (NIR graphs, HDF5)")
    tr.save(g, args.output)
    print(f"wrote {args.output}: {len(g.entries)} nodes, inputs {', '.join(g.inputs)}, "
          f"outputs {', '.join(g.outputs)} (tianrt info {args.output} shows them)")
    return 0


def _cmd_export(args) -> int:
    import tianrt as tr
    from tianrt.interop import write_nir

    g = tr.load(args.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notes are printed below
        notes = write_nir(g, args.output, strict=args.strict)
    print(f"wrote {args.output}: {len(g.entries)} nodes as NIR (dt = {g.dt:g} s)")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("import", help="import an ONNX (ANN) or NIR (SNN) model as a tianrt model file",
                       description="Read MODEL.onnx (an ANN: Gemm/MatMul, Conv, ReLU, Clip, pooling, BatchNorm, ...) "
                                   "or MODEL.nir (a NIR graph) and write a tianrt model file (docs/interop.md).")
    p.add_argument("model", help="MODEL.onnx or MODEL.nir")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tnr")
    p.add_argument("--dt", type=float, default=1e-3,
                   help="NIR only: the time step (s) the file's time constants are discretised with "
                        "(the exporter's; files written by tianrt carry their own). Default 1e-3")
    p.add_argument("--input-domain", default="spike", choices=["spike", "current"], help="NIR only: graph inputs")
    p.add_argument("--name", default=None, help="graph name (default: the model's)")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("export", help="export a tianrt model file as NIR",
                       description="Write MODEL.tnr as a NIR graph (HDF5). Parts NIR has no type for are written as "
                                   "tianrt extension nodes; the notes say which readers will refuse or differ.")
    p.add_argument("model", help="model file (.tnr)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.nir")
    p.add_argument("--strict", action="store_true", help="fail instead of writing extension nodes")
    p.set_defaults(func=_cmd_export)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: tianrt import ... / tianrt export ...")
