"""Spiking layers for surrogate-gradient BPTT (``tr.train``): forward over all ticks of a
batch, backward through time. Arrays are time first, ``(T, B, features)``, float32 in the
forward pass (the same operations, in the same order, as the reference backend's rules,
so the spikes are the runtime's), float64 gradients.

``SpikingLayer``: a synapse (``snn.Dense``, or ``snn.Recurrent`` with a delay edge when
``recurrent``) and a neuron (``snn.LIF`` or ``snn.ALIF``). Per tick (docs/semantics.md):

    I_t   = W x_t + b  (+ W_rec z_{t-1})
    u_t   = beta * v_{t-1} + I_t
    th_t  = threshold + adapt * a_{t-1}                 (LIF: th_t = threshold)
    z_t   = H(u_t - th_t)                               (smooth mode: p(u_t - th_t))
    v_t   = u_t - th_t z_t     or  u_t (1 - z_t) + v_reset z_t       (reset "zero")
    a_t   = rho * a_{t-1} + z_t                         (ALIF)

The backward pass differentiates these equations exactly, with H' replaced by the
surrogate's derivative (train/surrogate.py); ``detach_reset=True`` treats the spike in the
reset term as a constant (Zenke & Vogels 2021). ``Readout``: ``snn.Dense`` then ``snn.LI``,
y_t = beta y_{t-1} + W x_t + b, emitted every tick.

``truncate=K`` in ``backward`` cuts the gradient carried through the state (v, a, the
recurrent spikes, the readout membrane) every K ticks: truncated BPTT.

``train_tau=True`` trains the time constants too: per neuron, beta = sigmoid(beta_p) (and
rho = sigmoid(rho_p) for ALIF; the readout's beta likewise), the logits ``beta_p``/``rho_p``
being parameters beside the weights (initialised from the given beta/rho, which must lie in
(0, 1)), so the decays stay in (0, 1) whatever the step. Their gradients are BPTT's:
dL/dbeta = sum over ticks of dL/du_t * v_{t-1} (dL/dy_t * y_{t-1} in the readout) and
dL/drho = sum of dL/da_t * a_{t-1}, times sigmoid' of the logit. The graph gets the float32
decays the forward pass used, one per neuron. ``rho_max`` bounds the trained rho (the
adaptation's longest time constant, -dt / ln rho_max): ``constrain``, which the optimisers call
after every step, clips the logits ``rho_p`` to at most logit(rho_max).
"""
from __future__ import annotations

import numpy as np

from .. import snn
from ..errors import ShapeError
from . import surrogate as S

F32 = np.float32


def _sigmoid(p):
    return 1.0 / (1.0 + np.exp(-np.asarray(p, np.float64)))


def _logit(name, v):
    v = np.asarray(v, np.float64)
    if not np.all((v > 0) & (v < 1)):
        raise ValueError(f"train_tau: {name} must lie in (0, 1) to be trained, got {v.min()}..{v.max()}")
    return np.log(v / (1 - v)).astype(F32)


def _decay(layer, name, smooth=False):
    """The layer's decay ``name`` (beta or rho): the sigmoid of its logit when trained
    (float32, the graph's value; float64 in smooth mode, for gradient checks), else the
    fixed per-neuron array."""
    p = layer.params.get(f"{name}_p")
    if p is None:
        return getattr(layer, f"_{name}")
    v = _sigmoid(p)
    return v if smooth else v.astype(F32)


def _decay_property(name):
    return property(lambda self: _decay(self, name), lambda self, v: setattr(self, f"_{name}", v),
                    doc=f"per-neuron {name} (float32): the trained one when train_tau")


def _init(shape, fan_in, gain, rng):
    b = gain * np.sqrt(3.0 / max(fan_in, 1))
    return rng.uniform(-b, b, size=shape).astype(F32)


def _cut(t, truncate):
    """True when the gradient must not flow from tick t+1 back into tick t."""
    return bool(truncate) and (t + 1) % truncate == 0


class _TimeLayer:
    """Base: parameters in ``params``, gradients in ``grads`` (as train.layers.Layer, so the
    optimisers of tr.train update them)."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.decay: set[str] = set()


class SpikingLayer(_TimeLayer):
    """Synapse + spiking neuron, trained through time (module docstring)."""
    beta, rho = _decay_property("beta"), _decay_property("rho")

    def __init__(self, in_features: int, out_features: int, *, neuron: str = "lif",
                 recurrent: bool = False, beta=0.9, threshold=1.0, adapt=0.2, rho=0.95,
                 reset: str = "subtract", v_reset: float = 0.0, surrogate="fast_sigmoid",
                 detach_reset: bool = False, init_gain: float = 1.0, weight=None,
                 weight_rec=None, bias=None, train_tau: bool = False, rho_max: float | None = None):
        super().__init__()
        if neuron not in ("lif", "alif"):
            raise ValueError(f"SpikingLayer: neuron must be 'lif' or 'alif', got {neuron!r}")
        if reset not in snn.RESETS:
            raise ValueError(f"SpikingLayer: reset must be one of {snn.RESETS}, got {reset!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.neuron, self.recurrent, self.reset = neuron, bool(recurrent), reset
        n = self.out_features
        per = lambda v: np.broadcast_to(np.asarray(v, F32), (n,)).copy()  # noqa: E731
        self.beta, self.threshold = per(beta), per(threshold)
        self.adapt = per(adapt if neuron == "alif" else 0.0)
        self.rho = per(rho if neuron == "alif" else 0.0)
        self.v_reset = F32(v_reset)
        self.surrogate = S.get(surrogate)
        self.detach_reset = bool(detach_reset)
        self.init_gain = float(init_gain)
        self._given = (weight, weight_rec, bias)
        self.decay = {"weight", "weight_rec"}
        self.train_tau = bool(train_tau)
        if rho_max is not None and not 0.0 < float(rho_max) < 1.0:
            raise ValueError(f"SpikingLayer: rho_max must lie in (0, 1), got {rho_max!r}")
        if rho_max is not None and not (self.train_tau and neuron == "alif"):
            raise ValueError("SpikingLayer: rho_max bounds a trained adaptation decay: it needs "
                             "neuron='alif' and train_tau=True")
        self.rho_max = None if rho_max is None else float(rho_max)

    def constrain(self):
        """After an optimiser's step: the trained rho kept at most ``rho_max``."""
        if self.rho_max is not None:
            np.minimum(self.params["rho_p"], _logit("rho_max", self.rho_max), out=self.params["rho_p"])

    def init(self, in_features: int, rng) -> int:
        if int(in_features) != self.in_features:
            raise ShapeError(f"SpikingLayer({self.in_features}, {self.out_features}) got {in_features} inputs")
        n, m = self.out_features, self.in_features
        w, wr, b = self._given
        self.params["weight"] = (_init((n, m), m, self.init_gain, rng) if w is None
                                 else np.array(w, F32).reshape(n, m))
        self.params["bias"] = np.zeros(n, F32) if b is None else np.array(b, F32).reshape(n)
        if self.recurrent:
            self.params["weight_rec"] = (_init((n, n), n, 0.5 * self.init_gain, rng) if wr is None
                                         else np.array(wr, F32).reshape(n, n))
        if self.train_tau:
            self.params["beta_p"] = _logit("beta", self.beta)
            if self.neuron == "alif":
                self.params["rho_p"] = _logit("rho", self.rho)
                self.constrain()
        return n

    # -- forward -------------------------------------------------------------------------
    def forward(self, x, train: bool = False, smooth: bool = False):
        T, B, _ = x.shape
        n = self.out_features
        dt = np.float64 if smooth else F32  # smooth mode: float64, for gradient checks
        w, b = self.params["weight"], self.params["bias"]
        wr = self.params.get("weight_rec")
        beta, rho = _decay(self, "beta", smooth), _decay(self, "rho", smooth)
        thr, adapt = self.threshold, self.adapt
        alif = self.neuron == "alif"
        v = np.zeros((B, n), dt)
        a = np.zeros((B, n), dt)
        z = np.zeros((B, n), dt)
        Z = np.zeros((T, B, n), dt)
        keep = train or smooth
        if keep:
            U, TH = np.zeros((T, B, n), dt), np.zeros((T, B, n), dt)
        prev = keep and self.train_tau   # v_{t-1}, a_{t-1}: the decays' gradients need them
        if prev:
            VP, AP = np.zeros((T, B, n), dt), np.zeros((T, B, n), dt)
        for t in range(T):
            if prev:
                VP[t], AP[t] = v, a
            if self.recurrent:
                cur = (x[t] @ w.T + z @ wr.T + b).astype(dt)
            else:
                cur = (x[t] @ w.T + b).astype(dt, copy=False)
            u = (beta * v + cur).astype(dt)
            th = (thr + adapt * a).astype(dt) if alif else thr
            if smooth:
                z = self.surrogate.primitive(u - th)
            else:
                z = (u >= th).astype(dt)
            if self.reset == "subtract":
                v = (u - th * z).astype(dt)
            else:
                v = (u * (1 - z) + self.v_reset * z).astype(dt)
            if keep:
                U[t], TH[t] = u, th
            if alif:
                a = (rho * a + z).astype(dt)
            Z[t] = z
        if keep:
            self._cache = (x, U, TH, Z) + ((VP, AP) if prev else ())
        return Z

    # -- backward ------------------------------------------------------------------------
    def backward(self, gz_ext, truncate: int | None = None):
        x, U, TH, Z = self._cache[:4]
        T, B, n = Z.shape
        beta, rho = (np.asarray(_decay(self, k, True), np.float64) for k in ("beta", "rho"))
        adapt = self.adapt.astype(np.float64)
        trained = len(self._cache) > 4
        if trained:
            VP, AP = self._cache[4:]
            gbeta, grho = np.zeros(n), np.zeros(n)
        wr = self.params.get("weight_rec")
        wr = None if wr is None else wr.astype(np.float64)
        SG = self.surrogate.grad(U.astype(np.float64) - TH)  # all ticks at once
        gI = np.zeros((T, B, n))
        gv = np.zeros((B, n))
        ga = np.zeros((B, n))
        gzr = np.zeros((B, n))  # dL/dz_t through the next tick's recurrent current
        alif = self.neuron == "alif"
        for t in range(T - 1, -1, -1):
            if _cut(t, truncate):
                gv[...] = 0.0
                ga[...] = 0.0
                gzr[...] = 0.0
            u, th, z = U[t], TH[t], Z[t]
            gz = gz_ext[t] + gzr
            if alif:
                gz = gz + ga
                if trained:
                    grho += (ga * AP[t]).sum(0)   # ga is dL/da_t here
            if self.reset == "subtract":
                gu = gv.copy()
                gth = -z * gv
                if not self.detach_reset:
                    gz = gz - th * gv
            else:
                gu = gv * (1.0 - z)
                gth = 0.0
                if not self.detach_reset:
                    gz = gz + gv * (float(self.v_reset) - u)
            gx = gz * SG[t]
            gu = gu + gx
            gth = gth - gx
            gI[t] = gu
            if trained:
                gbeta += (gu * VP[t]).sum(0)
            gv = beta * gu
            if alif:
                ga = rho * ga + adapt * gth
            if self.recurrent:
                gzr = gu @ wr
        gI2 = gI.reshape(T * B, n)
        self.grads["weight"] = (gI2.T @ x.reshape(T * B, -1)).astype(F32)
        self.grads["bias"] = gI2.sum(0).astype(F32)
        if self.recurrent:
            zprev = np.concatenate([np.zeros((1, B, n), F32), Z[:-1]]).reshape(T * B, n)
            self.grads["weight_rec"] = (gI2.T @ zprev).astype(F32)
        if trained:
            self.grads["beta_p"] = (gbeta * beta * (1 - beta)).astype(F32)
            if alif:
                self.grads["rho_p"] = (grho * rho * (1 - rho)).astype(F32)
        return (gI2 @ self.params["weight"]).reshape(T, B, -1)

    # -- graph ---------------------------------------------------------------------------
    def neuron_node(self):
        one = lambda p: float(p[0]) if np.all(p == p[0]) else p.copy()  # noqa: E731
        if self.neuron == "lif":
            return snn.LIF(beta=one(self.beta), threshold=one(self.threshold), reset=self.reset,
                           v_reset=float(self.v_reset))
        return snn.ALIF(beta=one(self.beta), threshold=one(self.threshold), adapt=one(self.adapt),
                        rho=one(self.rho), reset=self.reset, v_reset=float(self.v_reset))

    def add_to(self, g, h, name: str):
        """Add the synapse and the neuron to graph ``g`` after handle ``h``; returns the spikes."""
        w, b = self.params["weight"].copy(), self.params["bias"].copy()
        if not self.recurrent:
            cur = g.add(snn.Dense(self.in_features, self.out_features, weight=w, bias=b), h, name=f"{name}_syn")
            return g.add(self.neuron_node(), cur, name=name)
        fb = g.delay((self.out_features,), "spike", name=f"{name}_fb")
        cur = g.add(snn.Recurrent(self.in_features, self.out_features, weight=w,
                                  weight_rec=self.params["weight_rec"].copy(), bias=b), h, fb, name=f"{name}_syn")
        s = g.add(self.neuron_node(), cur, name=name)
        g.connect(fb, s)
        return s


class Readout(_TimeLayer):
    """``snn.Dense`` + ``snn.LI``: y_t = beta y_{t-1} + W x_t + b, every tick (no spikes).
    ``dropout=p`` (training only): each example's inputs (the spikes of the layer below)
    are zeroed with probability p, one mask for all ticks of the example, the kept ones
    scaled by 1 / (1 - p); the mask is drawn from the layer's own seeded generator."""
    beta = _decay_property("beta")

    def __init__(self, in_features: int, out_features: int, *, beta=0.9, init_gain: float = 1.0,
                 weight=None, bias=None, dropout: float = 0.0, train_tau: bool = False):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Readout: dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self._mask = None   # this batch's dropout mask (forward), applied again to the gradient (backward)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.beta = np.broadcast_to(np.asarray(beta, F32), (self.out_features,)).copy()
        self.init_gain = float(init_gain)
        self._given = (weight, bias)
        self.decay = {"weight"}
        self.train_tau = bool(train_tau)

    def init(self, in_features, rng) -> int:
        if int(in_features) != self.in_features:
            raise ShapeError(f"Readout({self.in_features}, {self.out_features}) got {in_features} inputs")
        n, m = self.out_features, self.in_features
        w, b = self._given
        self.params["weight"] = _init((n, m), m, self.init_gain, rng) if w is None else np.array(w, F32).reshape(n, m)
        self.params["bias"] = np.zeros(n, F32) if b is None else np.array(b, F32).reshape(n)
        if self.train_tau:
            self.params["beta_p"] = _logit("beta", self.beta)
        if self.dropout:  # only then: the seeds of networks without dropout are unchanged
            self._rng = np.random.default_rng(rng.integers(2 ** 63))
        return n

    def forward(self, x, train: bool = False, smooth: bool = False):
        T, B, _ = x.shape
        dt = np.float64 if smooth else F32
        self._mask = None
        if train and self.dropout:
            keep = self._rng.random((B, x.shape[2])) >= self.dropout
            self._mask = (keep / (1.0 - self.dropout)).astype(x.dtype)
            x = x * self._mask[None]
        w, b = self.params["weight"], self.params["bias"]
        beta = _decay(self, "beta", smooth)
        y = np.zeros((B, self.out_features), dt)
        Y = np.zeros((T, B, self.out_features), dt)
        for t in range(T):
            y = (beta * y + (x[t] @ w.T + b).astype(dt, copy=False)).astype(dt)
            Y[t] = y
        if train or smooth:
            self._cache = (x, Y) if self.train_tau else (x,)
        return Y

    def backward(self, gy_ext, truncate: int | None = None):
        x = self._cache[0]
        T, B, n = gy_ext.shape
        beta = np.asarray(_decay(self, "beta", True), np.float64)
        trained = len(self._cache) > 1
        gbeta = np.zeros(n)
        gI = np.zeros((T, B, n))
        gy = np.zeros((B, n))
        for t in range(T - 1, -1, -1):
            if _cut(t, truncate):
                gy[...] = 0.0
            gy = gy_ext[t] + gy
            gI[t] = gy
            if trained and t > 0:
                gbeta += (gy * self._cache[1][t - 1]).sum(0)   # y_{t-1}
            gy = beta * gy
        gI2 = gI.reshape(T * B, n)
        self.grads["weight"] = (gI2.T @ x.reshape(T * B, -1)).astype(F32)
        self.grads["bias"] = gI2.sum(0).astype(F32)
        if trained:
            self.grads["beta_p"] = (gbeta * beta * (1 - beta)).astype(F32)
        gx = (gI2 @ self.params["weight"]).reshape(T, B, -1)
        return gx if self._mask is None else gx * self._mask[None]

    def add_to(self, g, h, name: str):
        one = float(self.beta[0]) if np.all(self.beta == self.beta[0]) else self.beta.copy()
        cur = g.add(snn.Dense(self.in_features, self.out_features, weight=self.params["weight"].copy(),
                              bias=self.params["bias"].copy()), h, name=f"{name}_syn")
        return g.add(snn.LI(beta=one), cur, name=name)
