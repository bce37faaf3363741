"""Splitting layers into core-sized tiles (axons x neurons x weight memory of a ChipSpec).

Each function returns a list of Tile plans; the compiler turns them into core records.
Fan-in splits produce *partial* tiles (raw int64 partial sums) plus *merge* tiles that add
the partial sums of a range of neurons exactly and then apply the layer's soma; fan-out
splits produce tiles that share the layer's input. Convolutions are unrolled per tile
onto the crossbar: a tile holds a block of output positions for a group of output
channels, reads the input patch those positions need, and stores the kernel slice once
(weight reuse: the crossbar's rows for different positions read the same weights).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CapacityError


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class DenseTiling:
    k: int                 # fan-in blocks
    in_blocks: list        # (start, stop) of each fan-in block over the axon space
    out_blocks: list       # (start, stop) of the partial (or only) tiles' neurons
    merge_blocks: list     # (start, stop) of merge tiles' neurons (empty when k == 1)

    @property
    def n_cores(self) -> int:
        return self.k * len(self.out_blocks) + len(self.merge_blocks)


@dataclass
class ConvTiling:
    k: int                 # input-channel groups (fan-in blocks)
    cg: int                # input channels per group
    og: int                # output channels per tile
    bh: int                # output rows per tile
    bw: int                # output columns per tile
    merge_blocks: list = field(default_factory=list)
    n_partial: int = 0

    @property
    def n_cores(self) -> int:
        return self.n_partial + len(self.merge_blocks)


def _blocks(n: int, size: int) -> list:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _merge_blocks(layer: str, n_out: int, k: int, spec) -> list:
    per = spec.axons_per_core // k
    if per < 1:
        raise CapacityError(f"layer `{layer}`: a fan-in split into {k} blocks needs merge cores with "
                            f"{k} axons per neuron, more than the {spec.axons_per_core} axons of a core")
    return _blocks(n_out, min(per, spec.neurons_per_core))


def dense_tiling(layer: str, n_in: int, n_out: int, spec, split: int | None = None) -> DenseTiling:
    """Tiles for a weight matrix (n_out, n_in). ``split``: when the fan-in is split and the
    first block does not hold all of axons 0..split-1, no block straddles axon ``split`` (the
    feed-forward product of a q.SynRecurrent that is rescaled must be summed whole, in one
    core or in a merge)."""
    A, N, M = spec.axons_per_core, spec.neurons_per_core, spec.weight_bytes_per_core
    k = ceil_div(n_in, A)
    size = ceil_div(n_in, k)
    in_blocks = _blocks(n_in, size)
    if split is not None and k > 1 and in_blocks[0][1] < split < n_in:
        a = _blocks(split, ceil_div(split, ceil_div(split, A)))
        b = [(s + split, e + split) for s, e in _blocks(n_in - split, ceil_div(n_in - split, ceil_div(n_in - split, A)))]
        in_blocks = a + b
        size = max(e - s for s, e in in_blocks)
    k = len(in_blocks)
    per = min(N, M // size)
    if per < 1:
        raise CapacityError(f"layer `{layer}`: one neuron with {size} axons needs {size} weight bytes, "
                            f"more than the {M} of a core")
    out_blocks = _blocks(n_out, per)
    merge = _merge_blocks(layer, n_out, k, spec) if k > 1 else []
    return DenseTiling(k, in_blocks, out_blocks, merge)


def conv_tiling(layer: str, C: int, O: int, out_hw, kernel, stride, spec, depthwise=False,
                multiple=(1, 1)) -> ConvTiling:
    """The cheapest (fewest cores) blocking of a convolution or pooling window op; with
    ``multiple`` the blocks' rows and columns are multiples of it (whole pooling windows)."""
    A, N, M = spec.axons_per_core, spec.neurons_per_core, spec.weight_bytes_per_core
    (Ho, Wo), (kh, kw), (sh, sw) = out_hw, kernel, stride
    my, mx = multiple
    best = None
    for bh in range(my, Ho + 1, my):
        ph = (bh - 1) * sh + kh
        if ph * kw > A:
            break
        for bw in range(mx, Wo + 1, mx):
            pw = (bw - 1) * sw + kw
            patch = ph * pw
            if patch > A:
                break
            pos = bh * bw
            if pos > N:
                break
            if depthwise:
                cg = min(C, A // patch, N // pos)
                if cg < 1:
                    continue
                k, og = 1, cg
            else:
                cg = min(C, A // patch)
                if cg < 1:
                    continue
                k = ceil_div(C, cg)
                cg = ceil_div(C, k)
                og = min(O, N // pos, M // (cg * kh * kw))
                if og < 1:
                    continue
            n_partial = k * ceil_div(O, og) * ceil_div(Ho, bh) * ceil_div(Wo, bw)
            merges = ceil_div(O * Ho * Wo, min(A // k, N)) if k > 1 else 0
            if k > 1 and A // k < 1:
                continue
            key = (n_partial + merges, -pos * og)
            if best is None or key < best[0]:
                best = (key, ConvTiling(k, cg, og, bh, bw, n_partial=n_partial))
    if best is None:
        raise CapacityError(f"layer `{layer}`: a {kh}x{kw} window does not fit one core's "
                            f"{A} axons (or its weights the {M} bytes of weight memory); "
                            "use a smaller kernel or a larger ChipSpec.axons_per_core")
    t = best[1]
    if t.k > 1:
        t.merge_blocks = _merge_blocks(layer, O * Ho * Wo, t.k, spec)
    return t


def pool_folds(layer: str, C: int, conv_out, conv, pool, spec) -> bool:
    """Whether a max-pooling of a convolution's output folds into the convolution's cores:
    windows that tile the output (kernel = stride, no padding) and blocks of whole windows
    with no fan-in split."""
    (py, px), (sy, sx), pad = pool.kernel_size, pool.stride, pool.padding
    O, Ho, Wo = conv_out
    if (py, px) != (sy, sx) or tuple(pad) != (0, 0) or Ho % py or Wo % px:
        return False
    try:
        t = conv_tiling(layer, C, O, (Ho, Wo), conv.kernel_size, conv.stride, spec, multiple=(py, px))
    except CapacityError:
        return False
    return t.k == 1


def window_connections(geo, depthwise, inside) -> int:
    """Structural synapses of a window tile (connections to padding excluded)."""
    cg, PH, PW = geo["patch"]
    og, bh, bw = geo["block"]
    kh, kw = geo["kernel"]
    sh, sw = geo["stride"]
    ins = inside.reshape(cg, PH, PW)
    total = 0
    for y in range(bh):
        for x in range(bw):
            win = ins[:, y * sh:y * sh + kh, x * sw:x * sw + kw].sum(axis=(1, 2))
            total += int(win.sum()) * (1 if depthwise else og)
    return total



def elementwise_blocks(n: int, groups: int, spec) -> list:
    """Neuron ranges for cores that read ``groups`` axons per neuron (pass-through: 1)."""
    per = min(spec.neurons_per_core, spec.axons_per_core // groups)
    if per < 1:
        raise CapacityError(f"{groups} inputs per neuron exceed the {spec.axons_per_core} axons of a core")
    return _blocks(n, per)
