"""Synaptic accumulation: event-driven (work follows the active inputs) and dense forms.

Layout: ``wt`` is the weight matrix transposed, (n_in, n_out) C-order, so the fan-out of
input j is the contiguous row ``wt[j]``; an active input adds its row. The dense form is
the same loop without the zero test, so both give bit-identical float32 sums (same order);
which one runs is purely a speed choice. Mode codes: 0 event, 1 dense, 2 auto (count the
active inputs, then event below ``crossover`` activity, dense above); 3 and 4 are auto and
dense where the dense side is left to the caller (BLAS, for batches): accumulate_flat then
returns HANDED_BACK without writing.
"""
import numpy as np
from ._jit import njit
from .simd import LANES, vany, vload, vstore

EVENT, DENSE, AUTO, AUTO_CALLER, DENSE_CALLER = 0, 1, 2, 3, 4
HANDED_BACK = -1


@njit(cache=True)
def count_active(x):
    """Number of non-zero entries of a flat array."""
    n = 0
    for k in range(x.size):
        if x[k] != 0:
            n += 1
    return n


# Offsets are cast to uint64 so that numba drops its negative-index wraparound test from
# the inner loops (measured 1.5-2.4x faster on W1's layers, and the loops vectorise).

@njit(cache=True)
def _rows_event(x, xoff, n_in, batch, wt, woff, out, ooff, n_out):
    # input-major: the weight row of input j is loaded once and reused by every sample
    nu = np.uint64(n_out)
    if batch == 1:  # streaming: a plain scan (measured 2x faster than the general loop nest)
        xo, ob = np.uint64(xoff), np.uint64(ooff)
        for j in range(np.uint64(n_in)):
            xv = x[xo + j]
            if xv != 0:
                r = np.uint64(woff) + j * nu
                for o in range(nu):
                    out[ob + o] += xv * wt[r + o]
        return
    for j in range(n_in):
        r = np.uint64(woff + j * n_out)
        for b in range(batch):
            xv = x[np.uint64(xoff + b * n_in + j)]
            if xv != 0:
                ob = np.uint64(ooff + b * n_out)
                for o in range(nu):
                    out[ob + o] += xv * wt[r + o]


@njit(cache=True)
def _rows_dense(x, xoff, n_in, batch, wt, woff, out, ooff, n_out):
    nu = np.uint64(n_out)
    if batch == 1:
        xo, ob = np.uint64(xoff), np.uint64(ooff)
        for j in range(np.uint64(n_in)):
            xv = x[xo + j]
            r = np.uint64(woff) + j * nu
            for o in range(nu):
                out[ob + o] += xv * wt[r + o]
        return
    for j in range(n_in):
        r = np.uint64(woff + j * n_out)
        for b in range(batch):
            xv = x[np.uint64(xoff + b * n_in + j)]
            ob = np.uint64(ooff + b * n_out)
            for o in range(nu):
                out[ob + o] += xv * wt[r + o]


@njit(cache=True)
def active_list(x, xoff, n, idx):
    """The indices of the non-zero entries of x[xoff:xoff + n], in order, into ``idx``
    (branch-free: every index is written, the count advances on a non-zero); returns how many."""
    m = 0
    xo = np.uint64(xoff)
    for j in range(np.uint64(n)):
        idx[m] = j
        m += x[xo + j] != 0
    return m


@njit(cache=True)
def accumulate_list(x, xoff, idx, m, n_in, wt, woff, bias, boff, out, ooff, n_out, mode, crossover):
    """accumulate_flat at batch 1 for an input whose ``m`` active indices are in ``idx``
    (active_list, or written by the layer that produced x): the event loop visits only the
    active rows, with no test per input (the scan's branch mispredicts at random spike
    patterns). Same additions in the same order as accumulate_flat: bit-identical."""
    nu, bo, ob = np.uint64(n_out), np.uint64(boff), np.uint64(ooff)
    for o in range(nu):
        out[ob + o] = bias[bo + o]
    if mode == DENSE or (mode >= AUTO and m > crossover * n_in):
        _rows_dense(x, xoff, n_in, 1, wt, woff, out, ooff, n_out)
        return m * n_out
    xo = np.uint64(xoff)
    for a in range(m):
        j = np.uint64(idx[a])
        xv = x[xo + j]
        r = np.uint64(woff) + j * nu
        for o in range(nu):
            out[ob + o] += xv * wt[r + o]
    return m * n_out


@njit(cache=True)
def accumulate_flat(x, xoff, n_in, batch, wt, woff, bias, boff, out, ooff, n_out, mode, crossover):
    """out[b] = bias + sum_j x[b, j] wt[j] on flat buffers; returns the synaptic events
    done (active inputs x n_out), or HANDED_BACK (modes 3/4: the caller does the dense sum)."""
    if mode == DENSE_CALLER:
        return HANDED_BACK
    nnz = 0
    xo = np.uint64(xoff)
    for k in range(np.uint64(batch * n_in)):
        if x[xo + k] != 0:
            nnz += 1
    dense = mode == DENSE or (mode >= AUTO and nnz > crossover * batch * n_in)
    if dense and mode == AUTO_CALLER:
        return HANDED_BACK
    nu, bo = np.uint64(n_out), np.uint64(boff)
    for b in range(batch):
        ob = np.uint64(ooff + b * n_out)
        for o in range(nu):
            out[ob + o] = bias[bo + o]
    if dense:
        _rows_dense(x, xoff, n_in, batch, wt, woff, out, ooff, n_out)
    else:
        _rows_event(x, xoff, n_in, batch, wt, woff, out, ooff, n_out)
    return nnz * n_out


@njit(cache=True)
def accumulate(x, wt, bias, out, mode, crossover):
    """(B, n_in) x (n_in, n_out) -> out (B, n_out) = x @ wt + bias; event-driven, dense or
    auto. Returns the synaptic events done."""
    return accumulate_flat(x.reshape(-1), 0, wt.shape[0], x.shape[0], wt.reshape(-1), 0, bias, 0,
                           out.reshape(-1), 0, wt.shape[1], mode, crossover)


@njit(cache=True)
def accumulate_add(x, wt, out, mode, crossover):
    """out += x @ wt (no bias; for a second input such as a recurrent one)."""
    n_in, n_out, batch = wt.shape[0], wt.shape[1], x.shape[0]
    xf, of, wf = x.reshape(-1), out.reshape(-1), wt.reshape(-1)
    nnz = count_active(xf)
    dense = mode == DENSE or (mode == AUTO and nnz > crossover * batch * n_in)
    if dense:
        _rows_dense(xf, 0, n_in, batch, wf, 0, of, 0, n_out)
    else:
        _rows_event(xf, 0, n_in, batch, wf, 0, of, 0, n_out)
    return nnz * n_out


@njit(cache=True)
def accumulate_csr(x, indptr, indices, data, bias, out):
    """Sparse connectivity stored by presynaptic row (CSR of the (n_in, n_out) matrix):
    out[b] = bias + sum over active j of x[b, j] * data[indptr[j]:indptr[j+1]] scattered
    to ``indices``. Returns the synaptic events done.

    The inputs are scanned LANES at a time with one vector test (kernels/simd.py): at W3's
    ~0.1 % activity almost every block of 16 is silent, and the scalar scan's per-input
    test was most of the kernel. Same additions in the same order as the plain loop."""
    batch, n_in = x.shape
    n_out = out.shape[1]
    fast = x.strides[1] == 4 and out.strides[1] == 4 and bias.strides[0] == 4  # unit strides
    mo = n_out - n_out % LANES if fast else 0
    ev = 0
    for b in range(batch):
        xb, ob = x[b], out[b]
        for o in range(0, mo, LANES):
            vstore(ob, o, vload(bias, o))
        for o in range(mo, n_out):
            ob[o] = bias[o]
        j0 = 0
        while j0 < n_in:
            j1 = min(j0 + LANES, n_in)
            if fast and j1 - j0 == LANES and not vany(vload(xb, j0)):
                j0 = j1
                continue
            for j in range(j0, j1):
                xv = xb[j]
                if xv == 0:
                    continue
                lo, hi = indptr[j], indptr[j + 1]
                ev += hi - lo
                for k in range(lo, hi):
                    ob[indices[k]] += xv * data[k]
            j0 = j1
    return ev


def to_csr(wt: np.ndarray):
    """CSR arrays (indptr int64, indices int32, data) of a (n_in, n_out) matrix, by row.
    Zero weights are dropped: they add exactly nothing, so results do not change."""
    nz = wt != 0
    indptr = np.zeros(wt.shape[0] + 1, np.int64)
    np.cumsum(nz.sum(axis=1), out=indptr[1:])
    rows, cols = np.nonzero(nz)
    return indptr, cols.astype(np.int32), np.ascontiguousarray(wt[rows, cols])
