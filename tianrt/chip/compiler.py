"""The unified-core compiler: an integer graph (tr.q nodes) -> a chip image + a mapping report.

Steps (docs/chip.md explains each):

1. Split off the host part: graph inputs and ``q.Quantize`` nodes (float -> int8 on the
   host), ``q.Dequantize`` nodes at the outputs (int -> float on the host). Any other float
   node is an error that names it and says to run ``tr.quantize``.
2. Group nodes into *layers*: a head (a crossbar op such as q.Dense / q.SynDense / q.Conv2d,
   a pooling window op, q.Add, or a pass-through) followed by the elementwise nodes fused
   into its soma (requantisation, q.Clamp, q.Lookup, q.LIF, encoders, decoders). Flatten
   and Concat are only address maps; delays are buffers the router refills every tick.
3. Tile every layer (tianrt.chip.tiling), give each core its (axon mode, soma mode) pair —
   a core whose axon and soma modes differ is a converter between the domains.
4. Place cores (greedy + swaps, tianrt.chip.placement), route (XY with multicast,
   tianrt.chip.routing), schedule rounds (a core runs in the round after every core it
   reads from), estimate timing and energy, and pack the image (tianrt.chip.image_format).
"""
from __future__ import annotations

import math

import numpy as np

from .. import ann, bridge, q
from ..ops import find
from ..domains import SPIKE, TENSOR
from ..graph import Delay, Graph, Input
from . import tiling
from .limits import check_board_limits, value_bound
from .sources import Src
from .units import Core, Layer
from .errors import CapacityError, CompileError
from .report import MappingReport
from .spec import ChipSpec


def _is_head(node) -> bool:
    """A crossbar, window or sum op: it starts a layer (its family registers ``chip_head``,
    the soma program of its cores; q.Add's is the compiler's own)."""
    return isinstance(node, q.Add) or find("chip_head", node, None) is not None


def _is_stage(node) -> bool:
    """An elementwise op fused into the soma of the layer before it (``chip_stage``)."""
    return find("chip_stage", node, None) is not None

_VIRTUAL = (ann.Flatten, ann.Concat)


class _Builder:
    def __init__(self, plan, spec: ChipSpec):
        self.spec = spec
        self.plan = plan
        self.arrays: list[np.ndarray] = []
        self.buffers: list[dict] = []
        self.src: dict[str, Src] = {}
        self.layers: list[Layer] = []
        self.cores: list[Core] = []
        self.chip_inputs, self.host_inputs, self.delays, self.outputs, self.host_outputs = [], [], [], [], []
        self.consumers: dict[str, list[str]] = {e.name: [] for e in self.plan.entries}
        for e in self.plan.entries:
            for i in e.inputs:
                self.consumers[i].append(e.name)
            if e.source:
                self.consumers[e.source].append(e.name)
        self.out_sources = set(self.plan.outputs.values())

    # -- helpers ------------------------------------------------------------------------------
    def arr(self, a, dtype) -> int:
        self.arrays.append(np.ascontiguousarray(np.asarray(a, dtype=dtype)))
        return len(self.arrays) - 1

    def buffer(self, name: str, size: int, kind: str, wide=False) -> int:
        self.buffers.append({"name": name, "size": int(size), "kind": kind, "wide": bool(wide)})
        return len(self.buffers) - 1

    def segments(self, s: Src) -> list:
        """Runs of one buffer as [buffer id, index array id] (buffer -1: zeros)."""
        out, n, start = [], len(s), 0
        while start < n:
            b = s.buf[start]
            stop = start + 1
            while stop < n and s.buf[stop] == b:
                stop += 1
            out.append([int(b), self.arr(s.idx[start:stop], np.int32)])
            start = stop
        return out

    def entry(self, name):
        return self.plan.entry(name)

    # -- step 1: host boundary and layers ------------------------------------------------------
    def lower(self):
        for e in self.plan.entries:
            n = e.node
            if isinstance(n, Input):
                if e.domain == SPIKE:
                    b = self.buffer(e.name, math.prod(e.shape), "input")
                    self.chip_inputs.append({"name": e.name, "shape": list(e.shape), "dtype": "int32",
                                             "buffer": b, "per_tick": True})
                    self.host_inputs.append({"input": e.name, "chip_input": e.name, "scale": None})
                    self.src[e.name] = Src.of_buffer(b, math.prod(e.shape))
                else:
                    bad = [c for c in self.consumers[e.name] if not isinstance(self.entry(c).node, q.Quantize)]
                    if bad:
                        op = self.entry(bad[0]).node.op
                        what = "is a float node" if not op.startswith("q.") else "reads a float input"
                        raise CompileError(f"`{bad[0]}` ({op}) {what} (fed by graph input `{e.name}`): the "
                                           "chip runs integer graphs whose float inputs go through q.Quantize; "
                                           "run tr.quantize(graph, calibration=...)")
                continue
            if isinstance(n, q.Quantize):
                (src,) = e.inputs
                if not isinstance(self.entry(src).node, Input):
                    raise CompileError(f"`{e.name}` (q.Quantize) reads `{src}`, not a graph input: the "
                                       "float part before it cannot run on the chip; run tr.quantize on "
                                       "the whole graph so that only inputs are quantized")
                size = math.prod(e.shape)
                b = self.buffer(e.name, size, "input")
                self.chip_inputs.append({"name": e.name, "shape": list(e.shape), "dtype": "int32",
                                         "buffer": b, "per_tick": False})
                self.host_inputs.append({"input": src, "chip_input": e.name,  # a list: one per feature
                                         "scale": n.scale.tolist() if isinstance(n.scale, np.ndarray) else n.scale})
                self.src[e.name] = Src.of_buffer(b, size)
                continue
            if isinstance(n, q.Dequantize):
                others = [c for c in self.consumers[e.name]]
                if others:
                    raise CompileError(f"`{e.name}` (q.Dequantize) feeds `{others[0]}`: on the chip, "
                                       "Dequantize may only produce graph outputs (it runs on the host)")
                continue
            if isinstance(n, Delay):
                size = math.prod(e.shape)
                b = self.buffer(e.name, size, "delay")
                self.buffers[b]["per_tick"] = e.per_tick  # present at tick 0 (zeros) when True
                self.delays.append((e, b))
                self.src[e.name] = Src.of_buffer(b, size)
                continue
            if isinstance(n, ann.Flatten):
                self.src[e.name] = self.src_of(e.inputs[0])
                continue
            if isinstance(n, ann.Concat):
                self.src[e.name] = self._concat(e)
                continue
            if isinstance(n, bridge.SpikeCount) and n.rate:
                raise CompileError(f"`{e.name}` (bridge.SpikeCount rate=True) emits fractions; an "
                                   "integer graph needs rate=False (scale on the host with Dequantize)")
            if n.reads_input_state:
                raise CompileError(f"`{e.name}` ({n.op}) is a probe of a neuron's state; probes run on the "
                                   "reference and numba backends, not on the chip: remove it before compiling")
            if not (_is_head(n) or _is_stage(n)):
                kind = "a float node" if e.numeric == "float" or not n.op.startswith("q.") else "not supported"
                raise CompileError(f"`{e.name}` ({n.op}) is {kind} on the chip; run "
                                   "tr.quantize(graph, calibration=...) to get an integer graph of tr.q nodes")
            if _is_stage(n) and self._fuse(e):
                continue
            if isinstance(n, q.MaxPool2d) and self._fold_pool(e):
                continue
            self._new_layer(e)
        self.delays = [(e, b, self.src_of(e.source)) for e, b in self.delays]  # sources known now

    def src_of(self, name: str) -> Src:
        if name not in self.src:
            e = self.entry(name)
            if isinstance(e.node, q.Dequantize):
                raise CompileError(f"`{name}` (q.Dequantize) output is read on the chip; only graph "
                                   "outputs may be dequantized")
            if isinstance(e.node, Input):
                readers = [r for r in self.consumers[name] if isinstance(self.entry(r).node, q.Quantize)]
                fit = (f"output its q.Quantize node `{readers[0]}` (with q.Dequantize for floats) instead"
                       if readers else "quantize it with q.Quantize and output that")
                raise CompileError(f"graph input `{name}` ({e.domain}, float) is read directly by a graph "
                                   f"output: the chip holds only integer values, so a float input cannot "
                                   f"travel through it; {fit}, or return the input on the host")
            raise CompileError(f"`{name}` ({e.node.op}) has no chip value (internal order error)")
        return self.src[name]

    def _concat(self, e) -> Src:
        parts = []
        for i in e.inputs:
            ie = self.entry(i)
            s = self.src_of(i)
            parts.append((s, ie.shape))
        ax = e.node.axis if e.node.axis >= 0 else len(e.shape) + e.node.axis
        offs = np.cumsum([0] + [len(s) for s, _ in parts])
        ids = [np.arange(len(s)).reshape(sh) + o for (s, sh), o in zip(parts, offs[:-1])]
        order = np.concatenate(ids, axis=ax).reshape(-1)
        allsrc = Src.cat([s for s, _ in parts])
        return allsrc.take(order)

    def _fuse(self, e) -> bool:
        """Append an elementwise node to the soma of the layer that produces its input."""
        (src,) = e.inputs
        chain = [src]
        while isinstance(self.entry(chain[-1]).node, ann.Flatten) and len(self.consumers[chain[-1]]) == 1:
            chain.append(self.entry(chain[-1]).inputs[0])
        base = chain[-1]
        for lay in self.layers:
            if lay.out_entry is not None and lay.out_entry.name == base:
                break
        else:
            return False
        if lay.pool is not None:
            return False     # values after a folded pool are pooled positions: a layer of their own
        for name in chain:
            if name in self.out_sources or len(self.consumers[name]) != 1:
                return False
        lay.entries.append(e)
        lay.out_entry = e
        self.src[e.name] = self.src[base]
        self.buffers[lay.out_buf]["name"] = e.name
        return True

    def _fold_pool(self, e) -> bool:
        """Fold a max-pooling whose windows tile the output of a q.Conv2d layer into that
        layer's cores (a soma stage after the requantisation): no pooling cores, when the
        convolution needs no fan-in split and the pool reads nothing else."""
        n = e.node
        (src,) = e.inputs
        lay = next((x for x in self.layers if x.out_entry is not None and x.out_entry.name == src), None)
        if (lay is None or not isinstance(lay.head, q.Conv2d) or lay.pool is not None
                or src in self.out_sources or len(self.consumers[src]) != 1):
            return False
        C = self.entry(lay.entries[0].inputs[0]).shape[0]
        if not tiling.pool_folds(lay.name, C, self.entry(src).shape, lay.head, n, self.spec):
            return False
        lay.pool = n
        lay.entries.append(e)
        lay.out_entry = e
        size = math.prod(e.shape)
        self.buffers[lay.out_buf].update(name=e.name, size=size)
        del self.src[src]
        self.src[e.name] = Src.of_buffer(lay.out_buf, size)
        return True

    def _new_layer(self, e):
        n = e.node
        head = n if _is_head(n) else None
        ins = [self.src_of(i) for i in e.inputs]
        doms = [self.entry(i).domain for i in e.inputs]
        lay = Layer(e.name, head, [e], ins, doms, e.per_tick, out_entry=e)
        size = math.prod(e.shape)
        lay.out_buf = self.buffer(e.name, size, "core")
        self.src[e.name] = Src.of_buffer(lay.out_buf, size)
        self.layers.append(lay)

    # -- step 2: stages and tiles ---------------------------------------------------------------
    def stage_list(self, lay: Layer, sl: np.ndarray, channel: np.ndarray, pool: dict | None = None) -> list:
        """The soma program of a core holding neurons ``sl`` of the layer (``channel`` gives
        each neuron's output channel for per-channel parameters; ``pool`` the folded pooling
        stage of this core)."""
        out = []
        for k, e in enumerate(lay.entries):
            n = e.node
            if n is lay.pool:
                out.append(pool)
                continue
            if k == 0 and lay.head is not None:
                if isinstance(n, q.Add):
                    out.append({"op": "requant", "mult": self.arr(np.ones(len(sl)), np.int32),
                                "shift": self.arr(np.full(len(sl), n.shift), np.int32), "lo": n.lo, "hi": n.hi})
                else:
                    out += find("chip_head", n)(n, sl, channel, self.arr)
                continue
            record = find("chip_stage", n, None)
            if record is None:
                raise CompileError(f"`{e.name}` ({n.op}) cannot run in a core's soma")
            out.append(record(n, e.shape, sl, self.arr))
        return out

    def modes(self, lay: Layer) -> tuple[str, str]:
        axon = "snn" if any(d != TENSOR for d in lay.in_domains) else "ann"
        soma = "ann" if lay.out_entry.domain == TENSOR else "snn"
        return axon, soma

    def tile(self, lay: Layer):
        n, e0 = lay.head, lay.entries[0]
        size = math.prod(lay.out_entry.shape)
        axon_mode, soma_mode = self.modes(lay)
        common = dict(axon_mode=axon_mode, soma_mode=soma_mode)
        spec = self.spec
        if isinstance(n, (q.Dense, q.SynDense, q.SynRecurrent)):
            w = n.weight if not isinstance(n, q.SynRecurrent) else np.hstack([n.weight, n.weight_rec])
            rescale = (n.in_features, n.ff_mult, n.ff_shift) if isinstance(n, q.SynRecurrent) and n.rescaled else None
            self._tile_matrix(lay, Src.cat(lay.inputs), w, common, rescale)
            return
        if isinstance(n, q.GlobalAvgPool2d):
            C, H, W = self.entry(e0.inputs[0]).shape
            if H * W > spec.axons_per_core:  # too wide for one core: a crossbar of ones, fan-in split
                self._tile_matrix(lay, lay.inputs[0], np.kron(np.eye(C), np.ones((1, H * W))).astype(np.int8),
                                  common)
                return
        if isinstance(n, (q.Conv2d, q.SynConv2d, q.MaxPool2d, q.AvgPool2d, q.GlobalAvgPool2d)):
            self._tile_window(lay, common)
            return
        if isinstance(n, q.Add):
            k = len(lay.inputs)
            for o0, o1 in tiling.elementwise_blocks(size, k, spec):
                sl = np.arange(o0, o1)
                axons = Src.cat([s.take(sl) for s in lay.inputs])
                self._core(lay, "full", axons, sl, lay.out_buf, sl,
                           {"kind": "add", "groups": k, "multipliers": [int(m) for m in n.multipliers]},
                           self.stage_list(lay, sl, sl), 0, k * len(sl), **common)
            return
        (src,) = lay.inputs
        for o0, o1 in tiling.elementwise_blocks(size, 1, spec):
            sl = np.arange(o0, o1)
            self._core(lay, "full", src.take(sl), sl, lay.out_buf, sl, {"kind": "pass"},
                       self.stage_list(lay, sl, sl), 0, len(sl), **common)

    def _rescale(self, rescale, sl, what, count):
        """The dendrite's ``rescale`` field: the first ``count`` axons (mac) or groups (merge)
        hold the feed-forward product, rescaled per neuron before the rest is added."""
        _, mult, shift = rescale
        return {what: int(count), "mult": self.arr(mult[sl], np.int32), "shift": self.arr(shift[sl], np.int32)}

    def _tile_matrix(self, lay: Layer, axons: Src, w: np.ndarray, common, rescale=None):
        """A weight matrix (out, in) on crossbars; all-zero tiles of a fan-in split are left
        out (their partial sums are zero). ``rescale`` (n_ff, ff_mult, ff_shift): a
        q.SynRecurrent whose first n_ff axons' product is rescaled (dendrite ``rescale``)."""
        t = tiling.dense_tiling(lay.name, w.shape[1], w.shape[0], self.spec, rescale and rescale[0])
        chan = np.arange(w.shape[0])
        bound = max(value_bound(self.plan, i) for i in lay.entries[0].inputs)
        if t.k == 1:
            for o0, o1 in t.out_blocks:
                sl = np.arange(o0, o1)
                dend = {"kind": "mac", "weight": self.arr(w[o0:o1], np.int8)}
                if rescale:
                    dend["rescale"] = self._rescale(rescale, sl, "axons", rescale[0])
                self._core(lay, "full", axons, sl, lay.out_buf, sl, dend,
                           self.stage_list(lay, sl, chan[sl]), (o1 - o0) * w.shape[1], (o1 - o0) * w.shape[1],
                           **common)
            return
        psum = []
        for i, (a0, a1) in enumerate(t.in_blocks):
            wide = (a1 - a0) * 128 * bound >= 2 ** 31
            pb = self.buffer(f"{lay.name}/psum{i}", w.shape[0], "psum", wide)
            psum.append(pb)
            for o0, o1 in t.out_blocks:
                if not w[o0:o1, a0:a1].any() and isinstance(lay.head, q.GlobalAvgPool2d):
                    continue
                sl = np.arange(o0, o1)
                dend = {"kind": "mac", "weight": self.arr(w[o0:o1, a0:a1], np.int8)}
                if rescale and a0 == 0 and a1 >= rescale[0]:  # the whole feed-forward sum is here
                    dend["rescale"] = self._rescale(rescale, sl, "axons", rescale[0])
                self._core(lay, "partial", axons.take(np.arange(a0, a1)), sl, pb, sl, dend, [],
                           (o1 - o0) * (a1 - a0), int(np.count_nonzero(w[o0:o1, a0:a1]))
                           if isinstance(lay.head, q.GlobalAvgPool2d) else (o1 - o0) * (a1 - a0),
                           wide_out=wide, axon_mode=common["axon_mode"], soma_mode="psum")
        whole = rescale and t.in_blocks[0][1] >= rescale[0]  # rescaled in the first partial core
        self._merges(lay, t.merge_blocks, psum, chan, common, rescale and not whole and (
            rescale, sum(1 for _, a1 in t.in_blocks if a1 <= rescale[0])))

    def _merges(self, lay, blocks, psum, chan, common, rescale=None):
        k = len(psum)
        for o0, o1 in blocks:
            sl = np.arange(o0, o1)
            axons = Src.cat([Src(np.full(len(sl), pb, np.int64), sl.astype(np.int64)) for pb in psum])
            dend = {"kind": "merge", "groups": k}
            if rescale:
                dend["rescale"] = self._rescale(rescale[0], sl, "groups", rescale[1])
            self._core(lay, "merge", axons, sl, lay.out_buf, sl, dend,
                       self.stage_list(lay, sl, chan[sl]), 0, k * len(sl), axon_mode=common["axon_mode"],
                       soma_mode=common["soma_mode"])

    def _tile_window(self, lay: Layer, common):
        n = lay.head
        e_in = self.entry(lay.entries[0].inputs[0])
        C, H, W = e_in.shape
        src = lay.inputs[0]
        if isinstance(n, q.GlobalAvgPool2d):
            kernel, stride, pad, O, Ho, Wo = (H, W), (1, 1), (0, 0), C, 1, 1
        else:
            kernel, stride, pad = n.kernel_size, n.stride, n.padding
            O, Ho, Wo = lay.entries[0].shape
        depthwise = not isinstance(n, (q.Conv2d, q.SynConv2d))
        py, px = lay.pool.kernel_size if lay.pool is not None else (1, 1)
        t = tiling.conv_tiling(lay.name, C, O, (Ho, Wo), kernel, stride, self.spec, depthwise, (py, px))
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
        bound = max(value_bound(self.plan, i) for i in lay.entries[0].inputs)
        psum = []
        groups = [(c0, min(C, c0 + t.cg)) for c0 in range(0, C, t.cg)] if not depthwise else [(0, C)]
        for gi, (c0, c1) in enumerate(groups):
            if t.k > 1:
                wide = (c1 - c0) * kh * kw * 128 * bound >= 2 ** 31
                pb = self.buffer(f"{lay.name}/psum{gi}", O * Ho * Wo, "psum", wide)
                psum.append(pb)
            for o0 in range(0, O, t.og):
                o1 = min(O, o0 + t.og)
                if depthwise:
                    cc0, cc1 = o0, o1
                else:
                    cc0, cc1 = c0, c1
                for y0 in range(0, Ho, t.bh):
                    y1 = min(Ho, y0 + t.bh)
                    for x0 in range(0, Wo, t.bw):
                        x1 = min(Wo, x0 + t.bw)
                        PH, PW = (y1 - y0 - 1) * sh + kh, (x1 - x0 - 1) * sw + kw
                        cs, ys, xs = np.meshgrid(np.arange(cc0, cc1), np.arange(PH) + y0 * sh - ph,
                                                 np.arange(PW) + x0 * sw - pw, indexing="ij")
                        inside = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)
                        flat = np.where(inside, (cs * H + ys) * W + xs, -1).reshape(-1)
                        axons = src.take(flat)
                        os_, oy, ox = np.meshgrid(np.arange(o0, o1), np.arange(y0, y1), np.arange(x0, x1),
                                                  indexing="ij")
                        out_idx = ((os_ * Ho + oy) * Wo + ox).reshape(-1)
                        geo = {"patch": [cc1 - cc0, PH, PW], "block": [o1 - o0, y1 - y0, x1 - x0],
                               "kernel": [kh, kw], "stride": [sh, sw]}
                        n_conn = tiling.window_connections(geo, depthwise, inside.reshape(-1))
                        if isinstance(n, (q.Conv2d, q.SynConv2d)):
                            dend = {"kind": "conv", "weights": self.arr(n.weight[o0:o1, c0:c1], np.int8), **geo}
                            wbytes = (o1 - o0) * (c1 - c0) * kh * kw
                        elif isinstance(n, q.MaxPool2d):
                            dend, wbytes = {"kind": "maxpool", **geo}, 0
                        else:
                            dend, wbytes = {"kind": "sumpool", **geo}, 0
                        if t.k > 1:
                            self._core(lay, "partial", axons, out_idx, psum[-1], out_idx, dend, [], wbytes,
                                       n_conn, wide_out=psum and self.buffers[psum[-1]]["wide"],
                                       axon_mode=common["axon_mode"], soma_mode="psum")
                        elif lay.pool is not None:     # the soma pools whole windows of the block
                            Hp, Wp = Ho // py, Wo // px
                            ps, pyy, pxx = np.meshgrid(np.arange(o0, o1), np.arange(y0 // py, y1 // py),
                                                       np.arange(x0 // px, x1 // px), indexing="ij")
                            pooled = ((ps * Hp + pyy) * Wp + pxx).reshape(-1)
                            pool = {"op": "maxpool", "block": [o1 - o0, y1 - y0, x1 - x0], "window": [py, px]}
                            self._core(lay, "full", axons, out_idx, lay.out_buf, pooled, dend,
                                       self.stage_list(lay, out_idx, out_idx // (Ho * Wo), pool), wbytes,
                                       n_conn, **common)
                        else:
                            self._core(lay, "full", axons, out_idx, lay.out_buf, out_idx, dend,
                                       self.stage_list(lay, out_idx, out_idx // (Ho * Wo)), wbytes, n_conn, **common)
        if t.k > 1:
            chan = np.arange(O * Ho * Wo) // (Ho * Wo)
            self._merges(lay, t.merge_blocks, psum, chan, common)

    def _core(self, lay, role, axons, sl, out_buf, out_idx, dendrite, stages, wbytes, connections, *,
              axon_mode, soma_mode, wide_out=False):
        c = Core(lay.name, role, axons, len(sl), out_buf, np.asarray(out_idx, np.int64), dendrite, stages,
                 axon_mode, soma_mode, int(wbytes), int(connections), bool(wide_out))
        # a tile runs when any input of its layer is new (as the node does), even if its own
        # axons are all padding or all unchanged
        c.clock = sorted({int(v) for s in lay.inputs for v in np.unique(s.buf) if v >= 0})
        c.id = len(self.cores)
        self.cores.append(c)
        lay.cores.append(c.id)

    # -- step 3: outputs ------------------------------------------------------------------------
    def finish_outputs(self):
        for name, src in self.plan.outputs.items():
            e = self.entry(src)
            scale = None
            if isinstance(e.node, q.Dequantize):
                scale = e.node.scale
                src = e.inputs[0]
                e = self.entry(src)
            s = self.src_of(src)
            self.outputs.append({"name": name, "shape": list(e.shape), "dtype": "int32", "src": s})
            self.host_outputs.append({"name": name, "scale": scale,
                                      "numeric": "int" if e.numeric == "int" else "any"})


def compile(graph, spec: ChipSpec | None = None, *, seed: int = 0,
            ticks_per_inference: int | None = None) -> tuple[bytes, MappingReport]:
    """Compile an integer graph (a tr.Graph, or the Plan of one) for ``spec``: returns
    (image bytes, MappingReport).

    Raises CompileError naming a float or unsupported node, CapacityError naming the layer
    that does not fit (cores it needs against cores free)."""
    from ..graph import Plan
    from .mapping import build_image
    if isinstance(graph, Graph):
        graph = graph.build()
    if not isinstance(graph, Plan):
        raise CompileError(f"tr.chip.compile takes a tr.Graph, got {type(graph).__name__}")
    spec = ChipSpec() if spec is None else spec
    if not isinstance(spec, ChipSpec):
        raise CompileError(f"tr.chip.compile: spec must be a tr.chip.ChipSpec, got {type(spec).__name__}")
    b = _Builder(graph, spec)
    b.lower()
    used = 0
    for lay in b.layers:
        before = len(b.cores)
        b.tile(lay)
        used = len(b.cores)
        if used > spec.n_cores:
            raise CapacityError(f"layer `{lay.name}` ({lay.entries[0].node.op}) needs {used - before} "
                                f"core(s) but only {max(spec.n_cores - before, 0)} of the "
                                f"{spec.n_cores} cores of a {spec.mesh_rows}x{spec.mesh_cols} mesh are free "
                                "(use a larger ChipSpec mesh or a smaller layer)")
    b.finish_outputs()
    check_board_limits(b.plan, b.chip_inputs, b.outputs)
    return build_image(b, seed=seed, ticks_per_inference=ticks_per_inference)

