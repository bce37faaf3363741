"""Post-training int8 quantisation (``tr.quantize``): a float graph (ANN, converted SNN or
hybrid) becomes an integer-mode graph of ``tr.q`` nodes that follows docs/integer.md.

Scales: inputs and ANN activations are symmetric int8 with scales from calibration data
(max of |x| / 127, or a percentile); ANN weights are int8 per output channel (or per
layer), requantised by multiplier/shift; spiking synapses have one weight scale per
layer (the threshold of a q.LIF is one integer), and every current, membrane and
threshold of a spiking layer is an int32 in units of input scale * weight scale.
A rate encoder's input is given the scale lambda / 127, so that its integer full scale
D is 127. Details and the error budget: docs/conversion.md.
"""
from __future__ import annotations

import numpy as np

from . import ann, bridge, q, qmath, snn
from .domains import SPIKE, TENSOR
from .errors import GraphError, InputError
from .graph import Delay, Graph, Input

F32 = np.float32


def quantize(graph: Graph, calibration: dict, *, per_channel: bool = True, method: str = "max",
             percentile: float = 99.99, ticks: int | None = None, max_samples: int = 512,
             name: str | None = None) -> Graph:
    """Quantise ``graph`` to integer (chip) mode; returns a new graph of ``tr.q`` nodes.

    calibration: ``{input_name: X}`` (X with a leading sample axis) for every tensor input;
        the float graph is run on (up to ``max_samples`` of) it to measure activation ranges.
    per_channel: per-output-channel weight scales for ANN layers (spiking layers always use
        one scale per layer, because a neuron population has one integer threshold).
    method: "max" (max |x| / 127) or "percentile" (that percentile of |x|, clipping rare
        outliers) for activation scales.
    ticks: how many ticks to run the calibration for (default: the longest decoder window,
        or the conversion T kept in the graph's metadata, or 1 for a pure ANN).
    Outputs keep their names and are float again (``q.Dequantize``); spike outputs stay spikes.
    """
    if not isinstance(graph, Graph):
        raise GraphError(f"quantize takes a tr.Graph, got {type(graph).__name__}")
    if method not in ("max", "percentile"):
        raise GraphError(f"quantize: method must be 'max' or 'percentile', got {method!r}")
    plan = graph.build()  # validated, BatchNorm folded
    for e in plan.entries:
        if e.node.op.startswith("q."):
            raise GraphError(f"quantize: `{e.name}` is already an integer node ({e.node.op}); "
                             "quantize takes a float graph")
        if isinstance(e.node, Delay):
            raise GraphError(f"quantize: delay `{e.name}` (recurrence) is not supported by tr.quantize yet")
    xs = _calibration(plan, calibration, max_samples)
    obs = _observe(graph, plan, xs, ticks)
    return _Builder(plan, obs, per_channel, method, float(percentile), name or f"{graph.name}-int8").run()


def _calibration(plan, calibration, max_samples):
    tensor_inputs = {n: i for n, i in plan.inputs.items() if i.domain == TENSOR}
    if not isinstance(calibration, dict) or set(calibration) != set(tensor_inputs):
        got = sorted(calibration) if isinstance(calibration, dict) else type(calibration).__name__
        raise InputError(f"quantize: calibration must be a dict with one array per tensor input "
                         f"({', '.join(tensor_inputs)}), got {got}")
    out = {}
    for k, spec in tensor_inputs.items():
        x = np.asarray(calibration[k], F32)
        if x.ndim != len(spec.shape) + 1 or x.shape[1:] != spec.shape or len(x) < 1:
            raise InputError(f"quantize: calibration data for `{k}` has shape {x.shape}, expected "
                             f"(N, {', '.join(map(str, spec.shape))}) with N >= 1 samples")
        if not np.isfinite(x).all():
            raise InputError(f"quantize: calibration data for `{k}` holds NaN or inf")
        out[k] = x[:max_samples]
    return out


def _observe(graph, plan, xs, ticks):
    """Every tensor-domain value the float graph produces on the calibration data."""
    from .runtime import Runtime

    if ticks is None:
        wins = [e.node.window for e in plan.entries if isinstance(e.node, bridge.Decoder)]
        conv_t = (graph.metadata.get("conversion") or {}).get("T")
        ticks = max(wins + ([int(conv_t)] if conv_t else []) + [1])
    probe = Graph(dt=plan.dt, name="calibration")
    for e in plan.entries:
        if isinstance(e.node, Input):
            probe.input(e.name, e.shape, e.domain)
        else:
            probe.add(e.node.copy(), *e.inputs, name=e.name)
    for e in plan.entries:
        if e.domain == TENSOR:
            probe.output(e.name, e.name)
        elif e.domain == SPIKE and not isinstance(e.node, Input):
            # mean rates of spike edges, for the bias correction of the synapses they feed
            probe.output(_RATE + e.name, probe.add(bridge.SpikeCount(window=int(ticks), rate=True), e.name,
                                                   name=f"{e.name}__rate_probe"))
    outs = Runtime(probe, backend="reference").run(xs, ticks=int(ticks))
    return {k: np.asarray(v) for k, v in outs.items() if len(v)}


_RATE = "__rate__:"


def _grid_scale(x) -> float | None:
    """A scale that represents inputs on a coarse uniform grid exactly (e.g. 4-bit pixels
    k/16 get scale 1/112, so k/16 -> 7k), or None. Rounding such inputs to max/127 steps
    would perturb every pixel a little, which a spiking network at small T notices."""
    v = np.unique(np.abs(np.asarray(x, np.float64)))
    v = v[v > 0]
    if not 0 < v.size <= 127:
        return None
    d = v[0]
    r = v / d
    if np.abs(r - np.round(r)).max() > 1e-4 or r[-1] > 127:
        return None
    return float(d / np.floor(127 / np.round(r[-1])))


_SAME_SCALE = (ann.MaxPool2d, ann.AvgPool2d, ann.GlobalAvgPool2d, ann.Flatten, ann.ReLU, ann.ClippedReLU)


class _Builder:
    def __init__(self, plan, obs, per_channel, method, percentile, name):
        self.plan, self.obs, self.per_channel = plan, obs, per_channel
        self.method, self.percentile = method, percentile
        self.bias_correction = True
        self.g = Graph(dt=plan.dt, name=name)
        self.map: dict[str, tuple] = {}  # old name -> (new name, kind, scale)
        self.users = {e.name: [u.name for u in plan.entries if e.name in u.inputs] for e in plan.entries}
        self.entry = {e.name: e for e in plan.entries}
        self.fused: set[str] = set()
        # a rate or latency encoder wants its input at scale lambda / 127 (full scale D = 127)
        self.want_scale = {}
        for e in plan.entries:
            if isinstance(e.node, bridge.PoissonEncoder):
                raise GraphError(f"quantize: `{e.name}` (PoissonEncoder) has no integer form; "
                                 "use bridge.RateEncoder")
            if isinstance(e.node, (bridge.RateEncoder, bridge.LatencyEncoder)):
                src = e.inputs[0]
                if src in self.want_scale and self.want_scale[src] != e.node.scale / 127:
                    raise GraphError(f"quantize: `{src}` feeds encoders of different scales")
                self.want_scale[src] = e.node.scale / 127
                # scale-preserving nodes pass the wish on to the layer that sets the scale
                while isinstance(self.entry[src].node, _SAME_SCALE) and len(self.users[src]) == 1:
                    src = self.entry[src].inputs[0]
                    self.want_scale[src] = e.node.scale / 127

    # -- helpers ------------------------------------------------------------------------------
    def _act_scale(self, name, values=None):
        if name in self.want_scale:
            return self.want_scale[name]
        v = self.obs.get(name) if values is None else values
        if v is None or not np.size(v):
            raise GraphError(f"quantize: `{name}` produced no value on the calibration data; "
                             "run longer (ticks=) or check the graph")
        a = np.abs(np.asarray(v, np.float64)).ravel()
        m = a.max() if self.method == "max" else np.percentile(a, self.percentile)
        return float(m) / 127 if m > 0 else 1.0 / 127

    def _add(self, node, src, name):
        return self.g.add(node, src, name=name).name

    # -- the walk -----------------------------------------------------------------------------
    def run(self) -> Graph:
        for e in self.plan.entries:
            if e.name in self.fused:
                continue
            if isinstance(e.node, Input):
                self._input(e)
                continue
            self._node(e)
        for out, src in self.plan.outputs.items():
            new, kind, scale = self.map[src]
            if kind in ("int", "current"):
                new = self._add(q.Dequantize(scale), new, f"{out}_dequant")
            self.g.output(out, new)
        return self.g

    def _input(self, e):
        h = self.g.input(e.name, e.shape, e.domain, rate_hz=e.node.rate_hz).name
        if e.domain == SPIKE:
            self.map[e.name] = (h, "spike", 1.0)
            return
        if e.domain != TENSOR:
            raise GraphError(f"quantize: input `{e.name}` of domain {e.domain} is not supported")
        s = self.want_scale.get(e.name) or _grid_scale(self.obs[e.name]) or self._act_scale(e.name)
        self.map[e.name] = (self._add(q.Quantize(s), h, f"{e.name}_quant"), "int", s)

    def _fuse_act(self, e):
        """The ReLU/ClippedReLU that directly and only follows ``e``, if any."""
        users = self.users[e.name]
        if len(users) != 1 or e.name in self.plan.outputs.values():
            return None
        u = self.entry[users[0]]
        return u if isinstance(u.node, (ann.ReLU, ann.ClippedReLU)) else None

    def _node(self, e):
        n, name = e.node, e.name
        src, kind, s_in = self.map[e.inputs[0]] if e.inputs else (None, None, None)
        if len(e.inputs) > 1:
            if isinstance(n, ann.Concat) and len({self.map[i][1] for i in e.inputs}) == 1 and \
                    self.map[e.inputs[0]][1] == "spike":
                new = self.g.add(n.copy(), *[self.map[i][0] for i in e.inputs], name=name).name
                self.map[name] = (new, "spike", 1.0)
                return
            raise GraphError(f"quantize: `{name}` ({n.op}) joins several edges; only Concat of spikes "
                             "is supported by tr.quantize in this version")
        if isinstance(n, (snn.Dense, snn.Conv2d)):
            return self._synapse(e, src, kind, s_in)
        if isinstance(n, (ann.Dense, ann.Conv2d)):
            return self._ann_weights(e, src, kind, s_in)
        if isinstance(n, snn.LIF):
            return self._neuron(e, src, kind, s_in)
        if isinstance(n, snn.LI):
            lm, ls = qmath.quantize_leak(n.beta)
            new = self._add(q.LI(leak_mult=lm, leak_shift=ls,
                                 v_init=int(qmath.round_half_away(n.v_init / s_in))), src, name)
            self.map[name] = (new, "current", s_in)
            return
        if isinstance(n, bridge.DirectCurrent):
            self._need(e, kind, "int")
            new = self._add(q.DirectCurrent(gain=1), src, name)
            self.map[name] = (new, "current", s_in * float(n.gain))
            return
        if isinstance(n, bridge.RateEncoder):
            self._need(e, kind, "int")
            d = int(qmath.round_half_away(n.scale / s_in))
            if not 1 <= d <= 127:
                raise GraphError(f"quantize: rate encoder `{name}` would need full scale {d} (outside 1..127)")
            self.map[name] = (self._add(q.RateEncoder(full_scale=d), src, name), "spike", 1.0)
            return
        if isinstance(n, bridge.LatencyEncoder):
            self._need(e, kind, "int")
            d = int(qmath.round_half_away(n.scale / s_in))
            if not 1 <= d <= 127:
                raise GraphError(f"quantize: latency encoder `{name}` would need full scale {d} (outside 1..127)")
            self.map[name] = (self._add(q.LatencyEncoder(window=n.window, full_scale=d), src, name), "spike", 1.0)
            return
        if isinstance(n, bridge.MembraneReadout):
            if self.users[name] or name not in self.plan.outputs.values():
                raise GraphError(f"quantize: membrane readout `{name}` feeds further layers "
                                 f"({', '.join(self.users[name])}); tr.quantize supports readouts at outputs only")
            lm, ls = qmath.quantize_leak(n.beta)
            new = self._add(q.MembraneReadout(window=n.window, leak_mult=lm, leak_shift=ls), src, name)
            self.map[name] = (new, "int", s_in / n.window if n.mean else s_in)
            return
        if isinstance(n, bridge.SpikeCount):
            if n.window > 127 and self.users[name]:
                raise GraphError(f"quantize: spike count `{name}` over {n.window} ticks does not fit int8")
            new = self._add(n.copy(rate=False), src, name)
            self.map[name] = (new, "int", 1.0 / n.window if n.rate else 1.0)
            return
        if isinstance(n, bridge.FirstSpike):
            self.map[name] = (self._add(n.copy(), src, name), "int", 1.0)
            return
        if isinstance(n, ann.Flatten):
            self.map[name] = (self._add(n.copy(), src, name), kind, s_in)
            return
        if kind == "spike" or kind == "current":
            raise GraphError(f"quantize: `{name}` ({n.op}) on a {kind} edge has no integer form")
        # tensor-domain ANN nodes on int8 edges
        if isinstance(n, ann.MaxPool2d):
            self.map[name] = (self._add(q.MaxPool2d(n.kernel_size, n.stride, n.padding), src, name), "int", s_in)
        elif isinstance(n, ann.AvgPool2d):
            m, sh = qmath.quantize_multiplier(1.0 / (n.kernel_size[0] * n.kernel_size[1]))
            self.map[name] = (self._add(q.AvgPool2d(n.kernel_size, n.stride, n.padding, multiplier=m, shift=sh),
                                        src, name), "int", s_in)
        elif isinstance(n, ann.GlobalAvgPool2d):
            _, h, w = self.entry[e.inputs[0]].shape
            m, sh = qmath.quantize_multiplier(1.0 / (h * w))
            self.map[name] = (self._add(q.GlobalAvgPool2d(multiplier=m, shift=sh), src, name), "int", s_in)
        elif isinstance(n, ann.ReLU):
            self.map[name] = (self._add(q.Clamp(0, 127), src, name), "int", s_in)
        elif isinstance(n, ann.ClippedReLU):
            hi = int(np.clip(qmath.round_half_away(n.max_value / s_in), 0, 127))
            self.map[name] = (self._add(q.Clamp(0, hi), src, name), "int", s_in)
        elif isinstance(n, (ann.Sigmoid, ann.Tanh)):
            s_out = 1.0 / 127
            xv = (np.arange(256) - 128) * s_in
            f = 1 / (1 + np.exp(-xv)) if isinstance(n, ann.Sigmoid) else np.tanh(xv)
            table = np.clip(qmath.round_half_away(f / s_out), -128, 127)
            self.map[name] = (self._add(q.Lookup(table=table), src, name), "int", s_out)
        else:
            raise GraphError(f"quantize: `{name}` ({n.op}) has no integer form in tr.quantize")

    def _need(self, e, kind, want):
        if kind != "int":
            raise GraphError(f"quantize: `{e.name}` ({e.node.op}) expects an int8 tensor input, got a {kind} edge")

    def _ann_weights(self, e, src, kind, s_in):
        n, name = e.node, e.name
        self._need(e, kind, "int")
        act = self._fuse_act(e)
        out_name = act.name if act is not None else name
        s_out = self._act_scale(out_name)
        axis = 0 if self.per_channel else None
        wq, s_w = qmath.quantize_weights(n.weight, axis=axis)
        bias = qmath.quantize_bias(n.bias, s_in * np.asarray(s_w, np.float64))
        m, sh = qmath.requant_params(s_in, s_w, s_out)
        lo, hi = -128, 127
        if act is not None:
            lo = 0
            if isinstance(act.node, ann.ClippedReLU):
                hi = int(np.clip(qmath.round_half_away(act.node.max_value / s_out), 0, 127))
            self.fused.add(act.name)
        if isinstance(n, ann.Dense):
            node = q.Dense(n.in_features, n.out_features, weight=wq, bias=bias, multiplier=m, shift=sh, lo=lo, hi=hi)
        else:
            node = q.Conv2d(n.in_channels, n.out_channels, n.kernel_size, n.stride, n.padding,
                            weight=wq, bias=bias, multiplier=m, shift=sh, lo=lo, hi=hi)
        new = self._add(node, src, name)
        self.map[name] = (new, "int", s_out)
        if act is not None:
            self.map[act.name] = (new, "int", s_out)

    def _synapse(self, e, src, kind, s_in):
        n, name = e.node, e.name
        if kind not in ("spike", "current"):
            raise GraphError(f"quantize: synapse `{name}` needs spikes or an integer current, got {kind}")
        # one scale per layer: the neuron population has one threshold
        s_unit = 1.0 if kind == "spike" else s_in
        s_w = float(qmath.symmetric_scale(n.weight))
        theta = self._threshold_of(name)
        if theta is not None:
            # make the integer threshold exact: theta / s_cur = K, an integer (a rounded
            # threshold would change the gain of every neuron of the layer alike)
            k = int(np.floor(theta / (s_unit * s_w)))
            if k >= 1:
                s_w = theta / (s_unit * k)
        wq, _ = qmath.quantize_weights(n.weight, scale=s_w)
        s_cur = s_w * s_unit
        bias = qmath.quantize_bias(n.bias - self._rounding_drift(e, wq * s_w), s_cur)
        if isinstance(n, snn.Dense):
            node = q.SynDense(n.in_features, n.out_features, weight=wq, bias=bias)
        else:
            node = q.SynConv2d(n.in_channels, n.out_channels, n.kernel_size, n.stride, n.padding,
                               weight=wq, bias=bias)
        self.map[name] = (self._add(node, src, name), "current", s_cur)

    def _rounding_drift(self, e, w_rounded):
        """Mean extra current per output channel that rounding the weights adds, on the
        calibration data (bias correction, Nagel et al. 2019): the bias absorbs it, so a
        neuron's average drive is unchanged by quantisation."""
        src = e.inputs[0]
        shape = self.entry[src].shape
        while isinstance(self.entry[src].node, ann.Flatten):
            src = self.entry[src].inputs[0]
        if not self.bias_correction:
            return 0.0
        w = np.asarray(e.node.weight, np.float64)
        if isinstance(self.entry[src].node, bridge.DirectCurrent):
            # a current from an int8 tensor: the input's own rounding drifts the current too
            t = self.entry[src].inputs[0]
            gain = float(self.entry[src].node.gain)
            x = np.asarray(self.obs[t], np.float64).reshape((-1,) + tuple(shape))
            s_t = self.map[t][2]
            xq = np.clip(qmath.round_half_away(x / s_t), -128, 127) * s_t
            mean_q, mean_f = gain * xq.mean(axis=0), gain * x.mean(axis=0)
        else:
            v = self.obs.get(_RATE + src)
            if v is None:
                return 0.0
            mean_q = mean_f = np.asarray(v, np.float64).reshape((-1,) + tuple(shape)).mean(axis=0)
        wr = np.asarray(w_rounded, np.float64)
        return (self._apply(e.node, wr, mean_q) - self._apply(e.node, w, mean_f)).astype(F32)

    @staticmethod
    def _apply(node, w, mean):
        """Mean current per output channel of a synapse with weights ``w`` on input ``mean``."""
        if isinstance(node, snn.Dense):
            return w @ mean.reshape(-1)
        from .backends.reference import conv2d
        out = conv2d(mean[None].astype(F32), w.astype(F32), np.zeros(w.shape[0], F32), node.stride, node.padding)
        return out[0].astype(np.float64).mean(axis=(1, 2))

    def _threshold_of(self, name):
        users = self.users[name]
        if len(users) == 1 and isinstance(self.entry[users[0]].node, snn.LIF):
            return float(self.entry[users[0]].node.threshold)
        return None

    def _neuron(self, e, src, kind, s_in):
        n, name = e.node, e.name
        if kind != "current":
            raise GraphError(f"quantize: neuron `{name}` needs an integer current input, got {kind}")
        lm, ls = qmath.quantize_leak(n.beta)
        am, ash = (None, 0) if n.alpha is None else qmath.quantize_leak(n.alpha)
        rnd = lambda v: int(qmath.round_half_away(v / s_in))  # noqa: E731
        node = q.LIF(threshold=qmath.quantize_threshold(n.threshold, s_in), leak_mult=lm, leak_shift=ls,
                     reset=n.reset, v_reset=rnd(n.v_reset), refractory=n.refractory,
                     alpha_mult=am, alpha_shift=ash, v_init=rnd(n.v_init))
        self.map[name] = (self._add(node, src, name), "spike", 1.0)


__all__ = ["quantize"]

