"""Spike-timing-dependent plasticity (pair-based, trace form) on an ``snn.Dense`` synapse,
applied inside the runtime's tick loop. docs/training.md gives the equations:

    x_pre  <- lambda_pre  * x_pre  + s_pre          (lambda = exp(-1 / tau), tau in ticks)
    x_post <- lambda_post * x_post + s_post         (this tick's spikes included)
    dW     = lr * (a_plus * s_post (x) x_pre - a_minus * x_post (x) s_pre)   summed over the batch
    soft bounds (soft=True): the a_plus term times (w_max - W), the a_minus term times (W - w_min)
    W      <- clip(W + dW, w_min, w_max)
    normalisation (norm=c): every ``norm_every`` ticks each row (one post neuron) is rescaled
                            so that its weights sum to c (Diehl & Cook 2015)

A pre spike and a post spike at the same tick count as both a potentiating and a
depressing pair. ``STDP.step`` is the rule on arrays; ``STDP.run`` drives a
``tr.Runtime`` tick by tick through its public API and updates the synapse's weight
array in place between ticks, where the reference backend reads it (the rule runs in the
reference backend's tick loop; the fast backends keep their own copies of the weights,
so learning runs on the reference backend and the learned graph then runs anywhere).
"""
from __future__ import annotations

import numpy as np

from .. import snn
from ..errors import GraphError

F32 = np.float32


class STDP:
    """Pair-based STDP with exponential traces, weight bounds and row normalisation."""

    def __init__(self, *, lr: float = 1e-2, a_plus: float = 1.0, a_minus: float = 1.05,
                 tau_pre: float = 10.0, tau_post: float = 10.0, w_min: float = 0.0, w_max: float = 1.0,
                 soft: bool = True, norm: float | None = None, norm_every: int = 1):
        if not (tau_pre > 0 and tau_post > 0):
            raise ValueError("STDP: tau_pre and tau_post must be > 0 ticks")
        if not w_max > w_min:
            raise ValueError(f"STDP: w_max must exceed w_min, got [{w_min}, {w_max}]")
        self.lr, self.a_plus, self.a_minus = float(lr), float(a_plus), float(a_minus)
        self.lam_pre, self.lam_post = float(np.exp(-1.0 / tau_pre)), float(np.exp(-1.0 / tau_post))
        self.w_min, self.w_max, self.soft = float(w_min), float(w_max), bool(soft)
        self.norm, self.norm_every = (None if norm is None else float(norm)), int(norm_every)
        self.reset()

    def reset(self):
        self.x_pre = self.x_post = None
        self.t = 0

    def step(self, w: np.ndarray, s_pre, s_post) -> np.ndarray:
        """One tick: update the traces with spikes (batch, n_pre) and (batch, n_post) and
        the weights ``w`` (n_post, n_pre) in place; returns w."""
        s_pre = np.atleast_2d(np.asarray(s_pre, np.float64))
        s_post = np.atleast_2d(np.asarray(s_post, np.float64))
        if self.x_pre is None or self.x_pre.shape != s_pre.shape:
            self.x_pre, self.x_post = np.zeros_like(s_pre), np.zeros_like(s_post)
        self.x_pre = self.lam_pre * self.x_pre + s_pre
        self.x_post = self.lam_post * self.x_post + s_post
        ltp = s_post.T @ self.x_pre          # (n_post, n_pre)
        ltd = self.x_post.T @ s_pre
        if self.soft:
            dw = self.a_plus * ltp * (self.w_max - w) - self.a_minus * ltd * (w - self.w_min)
        else:
            dw = self.a_plus * ltp - self.a_minus * ltd
        w += (self.lr * dw).astype(w.dtype)
        np.clip(w, self.w_min, self.w_max, out=w)
        self.t += 1
        if self.norm is not None and self.t % self.norm_every == 0:
            normalise(w, self.norm)
        return w

    def run(self, rt, synapse: str, inputs: dict, *, pre: str, post: str, ticks: int | None = None):
        """Run ``rt`` (a tr.Runtime on the reference backend) over ``inputs`` (a leading time
        axis, as Runtime.run) or ``ticks`` ticks of held inputs, applying the rule to the
        weight of the ``snn.Dense`` named ``synapse`` after every tick. ``pre`` and ``post``
        name graph outputs giving the synapse's input spikes and its neurons' spikes.
        Returns the post spikes (ticks, batch, n_post)."""
        node = rt.graph[synapse] if synapse in rt.graph else None
        if not isinstance(node, snn.Dense):
            what = "not in the graph" if node is None else f"{node.op}, not snn.Dense"
            raise GraphError(f"STDP: `{synapse}` is {what}")
        if rt.backend != "reference":
            raise GraphError("STDP.run: plasticity runs on the reference backend (the fast backends "
                             "keep copies of the weights); run the learned graph anywhere afterwards")
        n = ticks if ticks is not None else len(next(iter(inputs.values())))
        posts = []
        for t in range(n):
            feed = {k: v for k, v in inputs.items()} if (ticks is not None and t == 0) else (
                {k: v[t] for k, v in inputs.items()} if ticks is None else None)
            out = rt.step(feed)
            self.step(node.weight, out[pre], out[post])
            posts.append(out[post])
        return np.stack(posts)


def normalise(w: np.ndarray, total: float) -> np.ndarray:
    """Rescale each row of w (one post neuron's incoming weights) to sum to ``total``."""
    s = w.sum(axis=1, keepdims=True)
    w *= np.where(s > 0, total / np.maximum(s, 1e-12), 1.0).astype(w.dtype)
    return w
