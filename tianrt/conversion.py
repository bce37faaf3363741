"""ANN -> SNN conversion (``tr.convert``): a trained chain of ``tr.ann`` layers becomes a
spiking (or hybrid) graph with rate-coded integrate-and-fire neurons.

Method (Rueckauer et al. 2017; Bu et al. 2022), details in docs/conversion.md: every
ReLU becomes an IF neuron with threshold 1 whose incoming weights are normalised by
activation scales lambda measured on calibration data (max, percentile or robust
percentile, per layer or per channel): W' = W * lambda_in / lambda_out, b' = b / lambda_out,
biases applied every tick, reset by subtraction, membranes starting at theta/2. BatchNorm
is folded, average pooling is folded into the next synapse, max pooling is replaced by
average pooling (``maxpool="avg"``) or refused. The last layer is read out by integrating
its current (``MembraneReadout(mean=True)``), so no spike is lost at the output. With
``layers=`` only part of the network is converted and the bridges are inserted for you.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ann, bridge, snn
from .errors import GraphError, InputError
from .graph import Graph

F32 = np.float32
WEIGHTS = (ann.Dense, ann.Conv2d)
SPIKING_ACTS = (ann.ReLU, ann.ClippedReLU)
SHAPE_OPS = (ann.AvgPool2d, ann.MaxPool2d, ann.GlobalAvgPool2d, ann.Flatten)
METHODS = ("max", "percentile", "robust")


@dataclass
class _Unit:
    """One layer of the chain: shape ops before it, the weight layer, its activation."""
    name: str
    node: ann.Node
    pre: list = field(default_factory=list)  # [(name, node)] pools / flatten before the weights
    act: tuple | None = None  # (name, node)
    lam: np.ndarray | None = None  # activation scale, per layer (shape ()) or per channel


def convert(graph: Graph, calibration: dict, T: int = 16, *, layers=None, method: str = "robust",
            percentile: float = 99.9, per_channel: bool = True, neuron: str = "if", beta: float = 1.0,
            v_init: float = 0.5, encoding: str = "direct", maxpool: str = "avg",
            name: str | None = None) -> Graph:
    """Convert a trained ANN graph into a spiking (or hybrid) graph; returns a new graph.

    graph: a chain of ``tr.ann`` nodes (one input, one output), e.g. ``model.to_graph()``.
    calibration: ``{input_name: X}`` with X of shape (N, *input_shape), a few hundred
        training samples; activation scales are measured on it.
    T: ticks per inference; the output is read out by a ``MembraneReadout(window=T,
        mean=True)``, so ``Runtime(snn).run({"x": X}, ticks=T)["y"][-1]`` are the scores.
    layers: which weight layers to convert: None (all), a list of weight-layer node names
        (contiguous), or a ``slice`` over the weight layers (``slice(1, None)`` keeps the
        first layer as ANN). Layers before the range stay ANN and feed the SNN through
        an encoder; layers after it stay ANN and are fed by a ``SpikeCount`` rate decoder.
    method: "max", "percentile" (the ``percentile``-th of all activations) or "robust"
        (the ``percentile``-th of the non-zero activations, as snn_toolbox); ``per_channel``
        (default) gives every output channel its own scale, ``False`` one per layer.
    neuron: "if" (default) or "lif" with leak ``beta``; ``v_init`` is the initial membrane
        as a fraction of the threshold (0.5: theta/2).
    encoding: "direct" (the analog value as a current into the first synapse, best) or
        "rate" (deterministic rate-coded spikes).
    maxpool: "avg" (replace max pooling by average pooling of the same window inside the
        spiking range and calibrate on that network) or "error".
    """
    if not isinstance(graph, Graph):
        raise GraphError(f"convert takes a tr.Graph of tr.ann nodes, got {type(graph).__name__}")
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise GraphError(f"convert: T must be an integer number of ticks >= 1, got {T!r}")
    if method not in METHODS:
        raise GraphError(f"convert: method must be one of {METHODS}, got {method!r}")
    if not 0 < float(percentile) <= 100:
        raise GraphError(f"convert: percentile must be in (0, 100], got {percentile}")
    if neuron not in ("if", "lif"):
        raise GraphError(f"convert: neuron must be 'if' or 'lif', got {neuron!r}")
    if encoding not in ("direct", "rate"):
        raise GraphError(f"convert: encoding must be 'direct' or 'rate', got {encoding!r}")
    if maxpool not in ("avg", "error"):
        raise GraphError(f"convert: maxpool must be 'avg' or 'error', got {maxpool!r}")
    if not 0.0 <= float(v_init) < 1.0:
        raise GraphError(f"convert: v_init is a fraction of the threshold in [0, 1), got {v_init}")

    in_name, in_shape, chain, out_name = _chain(graph)
    head, units, tail = _units(chain)
    lo, hi = _select(units, layers)
    for u in units[lo + 1:hi]:  # max pooling inside the spiking range
        for k, (pname, p) in enumerate(u.pre):
            if isinstance(p, ann.MaxPool2d):
                if maxpool == "error":
                    raise GraphError(f"convert: `{pname}` (ann.MaxPool2d) feeds spiking layer `{u.name}` and "
                                     "spiking max pooling is not available; pass maxpool='avg' to use "
                                     "average pooling of the same window (retrain with AvgPool2d for no "
                                     "loss), or keep it on the ANN side with layers=")
                u.pre[k] = (pname, ann.AvgPool2d(p.kernel_size, p.stride, p.padding))
    for u in units[lo:hi]:
        last = u is units[-1]
        if u.act is None and not last:
            raise GraphError(f"convert: weight layer `{u.name}` has no activation before the next layer; "
                             "a spiking layer needs a ReLU (or ClippedReLU) after it")
        if u.act is not None and not isinstance(u.act[1], SPIKING_ACTS) and u is not units[hi - 1]:
            raise GraphError(_no_equivalent(u.act[0], u.act[1], u.name))
        if u is units[hi - 1] and not last and not isinstance(u.act[1], SPIKING_ACTS):
            raise GraphError(_no_equivalent(u.act[0], u.act[1], u.name))

    x = _calibration(calibration, in_name, in_shape)
    in_lam, in_min = _calibrate(x, head, units, lo, hi, method, float(percentile), per_channel)
    if encoding == "rate" and in_min < 0:
        raise GraphError(f"convert: encoding='rate' cannot represent the negative values (down to {in_min:.4g}) "
                         f"that enter spiking layer `{units[lo].name}`; use encoding='direct'")

    g = Graph(dt=graph.dt, name=name or f"{graph.name}-snn")
    g.metadata = dict(graph.metadata)
    h = g.input(in_name, in_shape, rate_hz=graph.inputs[in_name].rate_hz)
    for pname, p in head:
        h = g.add(p.copy(), h, name=pname)
    for u in units[:lo]:  # ANN prefix
        h = _add_ann_unit(g, u, h, scale_in=None)
    # encoder into the first spiking layer; its shape ops stay on the ANN side
    first = units[lo]
    for pname, p in first.pre:
        h = g.add(p.copy(), h, name=pname)
    if encoding == "direct":
        h = g.add(bridge.DirectCurrent(gain=1.0), h, name="encoder")
        lam_prev = np.asarray(1.0, F32)
    else:
        scale = float(in_lam)
        h = g.add(bridge.RateEncoder(scale=scale), h, name="encoder")
        lam_prev = np.asarray(scale, F32)
    for i, u in enumerate(units[lo:hi]):
        pre = [] if i == 0 else u.pre
        readout = u is units[-1] or u.act is None or not isinstance(u.act[1], SPIKING_ACTS)
        lam_out = np.asarray(1.0, F32) if readout else u.lam
        h = _add_synapse(g, u, pre, h, lam_prev, lam_out)
        if readout:
            h = g.add(bridge.MembraneReadout(window=int(T), mean=True), h, name=f"{u.name}_readout")
            if u.act is not None:
                h = g.add(u.act[1].copy(), h, name=u.act[0])
            break
        thr = 1.0
        cell = (snn.IF(threshold=thr, v_init=float(v_init) * thr) if neuron == "if"
                else snn.LIF(beta=float(beta), threshold=thr, v_init=float(v_init) * thr))
        h = g.add(cell, h, name=u.act[0])
        lam_prev = u.lam
    else:  # the spiking range ends before the output: decode rates, fold lambda onward
        h = g.add(bridge.SpikeCount(window=int(T), rate=True), h, name=f"{units[hi - 1].name}_rate")
    scale_in = None if hi == len(units) or units[hi - 1].act is None else units[hi - 1].lam
    for u in units[hi:]:  # ANN suffix
        h = _add_ann_unit(g, u, h, scale_in=scale_in)
        scale_in = None
    for pname, p in tail:
        h = g.add(p.copy(), h, name=pname)
    g.output(out_name, h)
    g.metadata["conversion"] = {
        "T": int(T), "method": method, "percentile": float(percentile), "per_channel": bool(per_channel),
        "neuron": neuron, "v_init": float(v_init), "encoding": encoding, "maxpool": maxpool,
        "spiking_layers": [u.name for u in units[lo:hi]], "ann_layers": [u.name for u in units[:lo] + units[hi:]],
        "lambda": {u.name: np.asarray(u.lam).round(6).tolist() for u in units if u.lam is not None}}
    return g


# -- reading the ANN -------------------------------------------------------------------------

def _chain(graph: Graph):
    ins = list(graph.inputs)
    if len(ins) != 1 or len(graph.outputs) != 1:
        raise GraphError(f"convert: graph {graph.name!r} must have exactly one input and one output "
                         f"(has inputs {ins}, outputs {list(graph.outputs)})")
    graph.validate()
    (out_name, out_node), = graph.outputs.items()
    in_name = ins[0]
    if graph.entries[in_name].domain != "tensor":
        raise GraphError(f"convert: input `{in_name}` must be a tensor input, is {graph.entries[in_name].domain}")
    chain, cur = [], in_name
    while cur != out_node:
        users = graph.consumers(cur)
        if len(users) != 1:
            raise GraphError(f"convert handles chains of layers; `{cur}` feeds {len(users)} nodes "
                             f"({', '.join(users) or 'none'})")
        cur = users[0]
        e = graph.entries[cur]
        if len(e.inputs) != 1:
            raise GraphError(f"convert handles chains of layers; `{cur}` ({e.node.op}) has "
                             f"{len(e.inputs)} inputs (branches such as Add/Concat are not converted)")
        if e.node.op.split(".")[0] != "ann":
            raise GraphError(f"convert takes an ANN graph; `{cur}` is a {e.node.op} node")
        chain.append((cur, e.node))
    if graph.consumers(out_node):
        raise GraphError(f"convert: output node `{out_node}` also feeds {graph.consumers(out_node)}")
    return in_name, graph.entries[in_name].shape, chain, out_name


def _units(chain):
    """Split the chain into head shape ops, weight units (BatchNorm folded) and a tail."""
    units: list[_Unit] = []
    pending: list = []
    for name, node in chain:
        if isinstance(node, WEIGHTS):
            units.append(_Unit(name, node.copy(), pre=pending))
            pending = []
        elif isinstance(node, ann.BatchNorm):
            u = units[-1] if units else None
            if u is None or pending or u.act is not None:
                raise GraphError(f"convert: BatchNorm `{name}` must directly follow a Dense or Conv2d "
                                 "layer to be folded into it")
            scale, shift = node.scale_shift()
            w = u.node.weight * scale.reshape((-1,) + (1,) * (u.node.weight.ndim - 1))
            u.node = u.node.copy(weight=w.astype(F32), bias=(u.node.bias * scale + shift).astype(F32))
        elif isinstance(node, ann.ACTIVATIONS):
            if units and pending and units[-1].act is None and isinstance(node, SPIKING_ACTS):
                raise GraphError(f"convert: `{name}` ({node.op}) follows `{pending[-1][0]}` "
                                 f"({pending[-1][1].op}) instead of the weight layer `{units[-1].name}`; put the "
                                 "activation right after the weight layer (ReLU commutes with max pooling)")
            if not units or pending or units[-1].act is not None:
                raise GraphError(_no_equivalent(name, node, units[-1].name if units else "the input"))
            units[-1].act = (name, node)
        elif isinstance(node, SHAPE_OPS):
            pending.append((name, node))
        else:
            raise GraphError(f"convert: node `{name}` ({node.op}) has no place in a converted network")
    if not units:
        raise GraphError("convert: the graph has no Dense or Conv2d layer to convert")
    head = units[0].pre
    units[0].pre = []
    return head, units, pending


def _no_equivalent(name, node, after):
    return (f"convert: `{name}` ({node.op}, after `{after}`) has no spiking equivalent; only ReLU and "
            "ClippedReLU become IF neurons. Options: keep it on the ANN side with layers= (convert only "
            "the layers after it), or retrain with ReLU/ClippedReLU")


def _select(units, layers):
    n = len(units)
    names = [u.name for u in units]
    if layers is None:
        return 0, n
    if isinstance(layers, slice):
        idx = list(range(n))[layers]
    else:
        if isinstance(layers, str):
            layers = [layers]
        idx = []
        for ln in layers:
            if ln not in names:
                raise GraphError(f"convert: layers= names `{ln}`, which is not a Dense/Conv2d node; "
                                 f"weight layers: {', '.join(names)}")
            idx.append(names.index(ln))
        idx.sort()
    if not idx:
        raise GraphError(f"convert: layers={layers!r} selects no weight layer (of {', '.join(names)})")
    if idx != list(range(idx[0], idx[-1] + 1)):
        raise GraphError(f"convert: layers= must select consecutive weight layers, got "
                         f"{', '.join(names[i] for i in idx)} (in order: {', '.join(names)})")
    return idx[0], idx[-1] + 1


def _calibration(calibration, in_name, in_shape):
    if not isinstance(calibration, dict) or set(calibration) != {in_name}:
        got = sorted(calibration) if isinstance(calibration, dict) else type(calibration).__name__
        raise InputError(f"convert: calibration must be a dict {{'{in_name}': X}} for the graph input "
                         f"`{in_name}`, got {got}")
    x = np.asarray(calibration[in_name], F32)
    if x.ndim != len(in_shape) + 1 or x.shape[1:] != tuple(in_shape) or len(x) < 1:
        raise InputError(f"convert: calibration data for `{in_name}` has shape {x.shape}, expected "
                         f"(N, {', '.join(map(str, in_shape))}) with N >= 1 samples")
    if not np.isfinite(x).all():
        raise InputError(f"convert: calibration data for `{in_name}` holds NaN or inf")
    return x


def _forward(node, x):
    from .backends.reference import stateless_fn
    return stateless_fn(node)(x)


def _scale_of(a, method, p, per_channel):
    a = np.asarray(a, np.float64)
    layer = _stat(a.ravel(), method, p)
    if per_channel:
        flat = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
        # A channel that (almost) never fires on the calibration data would get a tiny scale and
        # huge incoming weights, which wreck a shared int8 weight scale later: floor at 1 % of
        # the layer's scale (a silent channel gets the layer's scale).
        vals = [_stat(r, method, p) for r in flat]
        lam = np.asarray([layer if v <= 1e-6 else max(v, 0.01 * layer) for v in vals], F32)
        return lam.reshape((-1,) + (1,) * (a.ndim - 2)) if a.ndim > 2 else lam
    return np.asarray(layer, F32)


def _stat(v, method, p):
    if method == "max":
        s = v.max(initial=0.0)
    elif method == "robust":
        nz = v[v > 0]
        s = np.percentile(nz, p) if nz.size else 0.0
    else:
        s = np.percentile(v, p)
    return max(float(s), 1e-6)  # a silent channel keeps a harmless positive scale


def _calibrate(x, head, units, lo, hi, method, p, per_channel):
    """Run the (modified) ANN on the calibration set, setting each unit's lambda; returns
    the scale of the input of the first converted layer (for rate encoding)."""
    for _, n in head:
        x = _forward(n, x)
    in_lam = None
    for i, u in enumerate(units):
        for _, n in u.pre:
            x = _forward(n, x)
        if i == lo:
            in_lam = _scale_of(x, method, p, False)
            in_min = float(x.min()) if x.size else 0.0
        x = _forward(u.node, x)
        if u.act is not None:
            x = _forward(u.act[1], x)
            if isinstance(u.act[1], SPIKING_ACTS):
                u.lam = _scale_of(x, method, p, per_channel)
    return in_lam, in_min


# -- building the new graph ----------------------------------------------------------------------

def _lam_for_input(lam, weight_in_shape):
    """Broadcast a per-layer or per-channel scale to the input of a weight layer."""
    lam = np.asarray(lam, F32)
    if lam.ndim == 0:
        return lam
    c = lam.shape[0]
    if len(weight_in_shape) == 3:
        return lam.reshape(c, 1, 1)
    n = weight_in_shape[0]  # Dense: after Flatten (C*H*W) or GlobalAvgPool (C)
    return np.repeat(lam.reshape(c), n // c)


def _scaled(node, lam_in, lam_out):
    """Copy of a weight layer with W * lam_in (over inputs) / lam_out (over outputs)."""
    w = node.weight.astype(np.float64)
    if np.ndim(lam_in):
        w = w * (lam_in[None, :] if w.ndim == 2 else lam_in.reshape(1, -1, 1, 1))
    else:
        w = w * float(lam_in)
    lo = np.asarray(lam_out, np.float64).reshape(-1)
    lo_w = lo.reshape((-1,) + (1,) * (w.ndim - 1)) if lo.size > 1 else float(lo[0])
    return node.copy(weight=(w / lo_w).astype(F32), bias=(node.bias / lo).astype(F32))


def _add_ann_unit(g, u, h, scale_in):
    for pname, p in u.pre:
        h = g.add(p.copy(), h, name=pname)
    node = u.node
    if scale_in is not None:  # rates from a SpikeCount decoder: a = lambda * rate
        lam = _lam_for_input(scale_in, _weight_in_shape(node, g, h))
        node = _scaled(node, lam, 1.0)
    h = g.add(node.copy(), h, name=u.name)
    if u.act is not None:
        h = g.add(u.act[1].copy(), h, name=u.act[0])
    return h


def _weight_in_shape(node, g, h):
    return (node.in_features,) if isinstance(node, ann.Dense) else g.entries[h.name].shape


def _add_synapse(g, u, pre, h, lam_prev, lam_out):
    """Add the synapse of unit ``u`` fed by spikes/current ``h``, folding ``pre`` shape ops."""
    shape = g.entries[h.name].shape
    node = u.node
    lam_prev = np.asarray(lam_prev, F32)
    if isinstance(node, ann.Dense):
        w = _fold_into_dense(node.weight, pre, shape, u.name)
        if len(shape) > 1:
            h = g.add(ann.Flatten(), h, name=f"{u.name}_flatten")
        # per-channel scales of the spiking input, laid out like the flattened spikes
        lam_in = np.broadcast_to(lam_prev, shape).reshape(-1) if lam_prev.ndim else lam_prev
        syn = _scaled(ann.Dense(w.shape[1], node.out_features, weight=w, bias=node.bias), lam_in, lam_out)
        syn = snn.Dense(syn.in_features, syn.out_features, weight=syn.weight, bias=syn.bias)
        return g.add(syn, h, name=u.name)
    conv = node
    for k in range(len(pre) - 1, -1, -1):  # fold pools nearest-first; the rest become pooling synapses
        folded = _fold_pool_into_conv(conv, pre[k][1], _shape_after(pre[:k], shape))
        if folded is None:
            break
        conv = folded
        pre = pre[:k]
    lam_in = lam_prev.reshape(-1) if lam_prev.ndim else lam_prev
    for pname, p in pre:
        if isinstance(p, ann.Flatten):
            raise GraphError(f"convert: `{pname}` (Flatten) before Conv2d `{u.name}` is not supported")
        h = g.add(_pool_synapse(p, g.entries[h.name].shape), h, name=f"{pname}_syn")
    syn = _scaled(conv, lam_in, lam_out)
    syn = snn.Conv2d(syn.in_channels, syn.out_channels, syn.kernel_size, syn.stride, syn.padding,
                     weight=syn.weight, bias=syn.bias)
    return g.add(syn, h, name=u.name)


def _shape_after(pre, shape):
    for _, p in pre:
        shape = p.out_shape([shape])
    return shape


def _fold_into_dense(w, pre, shape, who):
    """W_eff with W_eff @ s == W @ pre(s) for the linear shape ops ``pre``: the adjoint of the
    ops applied to W's rows (through the training layers' backward passes)."""
    if not pre:
        return np.asarray(w, F32)
    from .train import layers as L
    layers, cur = [], tuple(shape)
    rng = np.random.default_rng(0)
    for pname, p in pre:
        if isinstance(p, ann.AvgPool2d):
            lay = L.AvgPool2d(p.kernel_size, p.stride, p.padding)
        elif isinstance(p, ann.GlobalAvgPool2d):
            lay = L.GlobalAvgPool2d()
        elif isinstance(p, ann.Flatten):
            lay = L.Flatten()
        else:
            raise GraphError(f"convert: `{pname}` ({p.op}) before `{who}` cannot be folded into a synapse")
        cur = lay.init(cur, rng)
        layers.append(lay)
    x = np.zeros((w.shape[0],) + tuple(shape), F32)
    for lay in layers:
        x = lay.forward(x, train=True)
    gr = np.asarray(w, F32).reshape((w.shape[0],) + tuple(cur))
    for lay in reversed(layers):
        gr = lay.backward(gr)
    return gr.reshape(w.shape[0], -1).astype(F32)


def _fold_pool_into_conv(conv, pool, in_shape):
    """conv(avgpool_p(x)) as one conv on x when the pool tiles its input exactly
    (kernel == stride, no padding, sizes divisible): kernel (kh p, kw p), stride s p."""
    if not isinstance(pool, ann.AvgPool2d):
        return None
    (ph, pw), (sh, sw), pad = pool.kernel_size, pool.stride, pool.padding
    _, h, w = in_shape
    if (ph, pw) != (sh, sw) or pad != (0, 0) or h % ph or w % pw:
        return None
    kh, kw = conv.kernel_size
    wt = np.repeat(np.repeat(conv.weight, ph, axis=2), pw, axis=3) / (ph * pw)
    return conv.copy(weight=wt.astype(F32), kernel_size=(kh * ph, kw * pw),
                     stride=(conv.stride[0] * ph, conv.stride[1] * pw),
                     padding=(conv.padding[0] * ph, conv.padding[1] * pw))


def _pool_synapse(pool, shape):
    """Average pooling as a fixed channel-diagonal synapse (current in, current out)."""
    c = shape[0]
    if isinstance(pool, ann.GlobalAvgPool2d):
        k, s, p = shape[1:], (1, 1), (0, 0)
    else:
        k, s, p = pool.kernel_size, pool.stride, pool.padding
    w = np.zeros((c, c) + tuple(k), F32)
    w[np.arange(c), np.arange(c)] = 1.0 / (k[0] * k[1])
    return snn.Conv2d(c, c, k, s, p, weight=w)


__all__ = ["convert"]

