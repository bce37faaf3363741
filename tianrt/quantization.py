"""Post-training int8 quantisation (``tr.quantize``): a float graph (ANN, converted SNN or
hybrid) becomes an integer-mode graph of ``tr.q`` nodes that follows docs/integer.md.

Scales: inputs and ANN activations are symmetric int8 with scales from calibration data
(max of |x| / 127, or a percentile); ANN weights are int8 per output channel (or per
layer), requantised by multiplier/shift; spiking synapses have one weight scale per
layer (the threshold of a q.LIF is one integer), and every current, membrane and
threshold of a spiking layer is an int32 in units of input scale * weight scale. A recurrent
layer fed an int8 current keeps one int8 scale per row for its feed-forward weights and
rescales that product to the membrane's unit (the recurrent weights') before the fed-back
spikes' product is added (ops.synapse.quantize_recurrent; docs/integer.md).
A rate encoder's input is given the scale lambda / 127, so that its integer full scale
D is 127. Details and the error budget: docs/conversion.md.
"""
from __future__ import annotations

import copy

import numpy as np

from . import ann, bridge, q, qmath, snn
from .ops import find
from .ops.probe import Probe
from .ops.synapse import mean_current
from .domains import CURRENT, SPIKE, TENSOR
from .errors import GraphError, InputError
from .graph import Delay, Graph, Input

F32 = np.float32


def quantize(graph: Graph, calibration: dict, *, per_channel: bool = True, method: str = "max",
             percentile: float = 99.99, ticks: int | None = None, max_samples: int = 512,
             name: str | None = None) -> Graph:
    """Quantise ``graph`` to integer (chip) mode; returns a new graph of ``tr.q`` nodes.

    calibration: ``{input_name: X}`` (X with a leading sample axis) for every tensor input;
        the float graph is run on it (on ``max_samples`` evenly spaced samples of a larger
        set) to measure activation ranges.
    per_channel: per-output-channel weight scales for ANN layers, and for spiking synapses
        that feed one LIF/IF population (each neuron then gets its own exact integer
        threshold and initial membrane); other spiking synapses use one scale per layer.
    method: "max" (max |x| / 127) or "percentile" (that percentile of |x|, clipping rare
        outliers) for activation scales.
    ticks: how many ticks to run the calibration for (default: the longest decoder window,
        or the conversion T kept in the graph's metadata, or 1 for a pure ANN).
    Outputs keep their names and are float again (``q.Dequantize``); spike outputs stay spikes.
    The new graph keeps a copy of ``graph.metadata`` and adds ``quantized`` (method, per_channel).
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
        if isinstance(e.node, Delay) and e.domain != SPIKE:
            raise GraphError(f"quantize: delay `{e.name}` carries a {e.domain} edge; tr.quantize takes "
                             "delays of spikes (a layer's own spikes fed back, as snn.Recurrent reads them)")
    xs = _calibration(plan, calibration, max_samples)
    obs = _observe(graph, plan, xs, ticks)
    g = _Builder(plan, obs, per_channel, method, float(percentile), name or f"{graph.name}-int8").run()
    # the float graph's notes (e.g. ticks per step, the conversion's T) still describe the integer one
    g.metadata = copy.deepcopy(graph.metadata)
    g.metadata["quantized"] = {"method": method, "per_channel": bool(per_channel),
                               **({"percentile": float(percentile)} if method == "percentile" else {})}
    return g


def _calibration(plan, calibration, max_samples):
    tensor_inputs = {n: i for n, i in plan.inputs.items() if i.domain in (TENSOR, CURRENT)}
    if not isinstance(calibration, dict) or set(calibration) != set(tensor_inputs):
        got = sorted(calibration) if isinstance(calibration, dict) else type(calibration).__name__
        raise InputError(f"quantize: calibration must be a dict with one array per tensor or current input "
                         f"({', '.join(tensor_inputs)}), got {got}")
    out = {}
    for k, spec in tensor_inputs.items():
        x = np.asarray(calibration[k], F32)
        if x.ndim != len(spec.shape) + 1 or x.shape[1:] != spec.shape or len(x) < 1:
            raise InputError(f"quantize: calibration data for `{k}` has shape {x.shape}, expected "
                             f"(N, {', '.join(map(str, spec.shape))}) with N >= 1 samples")
        if not np.isfinite(x).all():
            raise InputError(f"quantize: calibration data for `{k}` holds NaN or inf")
        # an evenly spaced subset, not the first rows: calibration sets are often rides or
        # recordings concatenated in order (e.g. one per speed), and the first rows alone
        # would miss the ranges of the later ones
        out[k] = x[np.unique(np.linspace(0, len(x) - 1, max_samples).round().astype(np.int64))] \
            if len(x) > max_samples else x
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
            probe.input(e.name, e.shape, e.domain, hold=e.node.hold)
        elif isinstance(e.node, Delay):
            probe.delay(e.shape, e.domain, name=e.name, numeric=e.node.numeric)
        else:
            probe.add(e.node.copy(), *e.inputs, name=e.name)
    for e in plan.entries:
        if isinstance(e.node, Delay):
            probe.connect(e.name, e.source)
    for e in plan.entries:
        if e.domain == TENSOR or isinstance(e.node, Input) and e.domain == CURRENT:
            probe.output(e.name, e.name)
        elif e.domain == SPIKE and not isinstance(e.node, Input):
            # mean rates of spike edges, for the bias correction of the synapses they feed
            probe.output(_RATE + e.name, probe.add(bridge.SpikeCount(window=int(ticks), rate=True), e.name,
                                                   name=f"{e.name}__rate_probe"))
    outs = Runtime(probe, backend="reference").run(xs, ticks=int(ticks))
    return {k: np.asarray(v) for k, v in outs.items() if len(v)}


_RATE = "__rate__:"
FEATURE_SCALE_SPREAD = 4.0  # feature ranges further apart than this get one scale each


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
            if isinstance(e.node, Delay):  # spikes of the previous tick: connected below
                self.map[e.name] = (self.g.delay(e.shape, SPIKE, name=e.name).name, "spike", 1.0)
                continue
            self._node(e)
        for e in self.plan.entries:
            if isinstance(e.node, Delay):
                self.g.connect(self.map[e.name][0], self.map[e.source][0])
        for out, src in self.plan.outputs.items():
            new, kind, scale = self.map[src]
            if kind in ("int", "current"):
                new = self._add(q.Dequantize(scale), new, f"{out}_dequant")
            self.g.output(out, new)
        return self.g

    def _input(self, e):
        h = self.g.input(e.name, e.shape, e.domain, rate_hz=e.node.rate_hz, hold=e.node.hold).name
        if e.domain == SPIKE:
            self.map[e.name] = (h, "spike", 1.0)
            return
        s = self.want_scale.get(e.name) or _grid_scale(self.obs[e.name])
        if s is None:
            s = self._feature_scales(e)
        if s is None:
            s = self._act_scale(e.name)
        # a current input becomes an int8 current (the host quantises it, as a tensor input)
        self.map[e.name] = (self._add(q.Quantize(s), h, f"{e.name}_quant"),
                            "current" if e.domain == CURRENT else "int", s)

    def _feature_scales(self, e):
        """One int8 scale per feature for a vector input whose features have very different
        ranges (e.g. a lean angle of 0.03 rad beside a speed of 8 m/s, where one scale would
        leave the angle a level or two) when it only feeds spiking dense synapses directly or
        through DirectCurrent (their weight columns absorb the scales); else None."""
        if len(e.shape) != 1 or e.name in self.plan.outputs.values():
            return None
        feeds = list(self.users[e.name])
        for u in list(feeds):
            if isinstance(self.entry[u].node, bridge.DirectCurrent) and u not in self.plan.outputs.values():
                feeds.remove(u)
                feeds += self.users[u]
        if not feeds or not all(type(self.entry[u].node) is snn.Dense for u in feeds):
            return None
        peak = np.abs(np.asarray(self.obs[e.name], np.float64)).reshape(-1, e.shape[0]).max(axis=0)
        if not np.all(peak > 0) or peak.max() <= FEATURE_SCALE_SPREAD * peak.min():
            return None
        return peak / 127

    def _fuse_act(self, e):
        """The ReLU/ClippedReLU that directly and only follows ``e``, if any."""
        users = self.users[e.name]
        if len(users) != 1 or e.name in self.plan.outputs.values():
            return None
        u = self.entry[users[0]]
        return u if isinstance(u.node, (ann.ReLU, ann.ClippedReLU)) else None

    def _node(self, e):
        """Quantise one node by the rule its op family registers (tianrt.ops)."""
        n, name = e.node, e.name
        src, kind, s_in = self.map[e.inputs[0]] if e.inputs else (None, None, None)
        rule = find("quantize", n, None)  # a node of several inputs reads them from self.map
        if rule is None and len(e.inputs) > 1:
            raise GraphError(f"quantize: `{name}` ({n.op}) joins several edges; only Concat of spikes "
                             "and snn.Recurrent are supported by tr.quantize in this version")
        if rule is None:
            if kind in ("spike", "current"):
                raise GraphError(f"quantize: `{name}` ({n.op}) on a {kind} edge has no integer form")
            raise GraphError(f"quantize: `{name}` ({n.op}) has no integer form in tr.quantize")
        rule(self, e, src, kind, s_in)

    def _need(self, e, kind, want):
        if kind != "int":
            raise GraphError(f"quantize: `{e.name}` ({e.node.op}) expects an int8 tensor input, got a {kind} edge")

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
        return (mean_current(e.node, wr, mean_q) - mean_current(e.node, w, mean_f)).astype(F32)

    def _per_neuron_scales(self, name):
        """Whether synapse ``name`` may take one weight scale per output channel: with
        ``per_channel``, when it feeds exactly one LIF/IF population (one threshold for the
        layer, reset by subtraction or to 0) that no probe reads, and is not itself an output.
        Its current unit is then per neuron, and q.LIF takes per-neuron thresholds and
        initial membranes; every other reader of a current needs one scale."""
        users = self.users[name]
        if not self.per_channel or len(users) != 1 or name in self.plan.outputs.values():
            return False
        neuron = self.entry[users[0]].node
        if type(neuron) not in (snn.LIF, snn.IF) or not isinstance(neuron.threshold, float):
            return False
        if neuron.reset == "zero" and neuron.v_reset != 0.0:
            return False
        return not any(isinstance(self.entry[u].node, Probe) for u in self.users[users[0]])

    def _threshold_of(self, name):
        """The threshold of the one neuron a synapse feeds (None: several users, or one
        value per neuron), which the synapse's weight scale makes an exact integer."""
        users = self.users[name]
        if len(users) == 1:
            th = getattr(self.entry[users[0]].node, "threshold", None)
            if isinstance(th, float):
                return th
        return None


__all__ = ["quantize"]

