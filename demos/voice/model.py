"""The voice-command SNN and its ANN baseline, trained with ``tr.train``.

SNN: 32 log-mel currents (``bridge.DirectCurrent``) -> a recurrent adaptive-LIF layer ->
an ``snn.LI`` readout of 10 classes, one tick per 10 ms frame, trained by surrogate-gradient
BPTT with a per-tick cross-entropy: the class around the end of the word, background
throughout a background clip, no target elsewhere (data.targets_per_tick). The decision rule is the streaming detector's: a
command (or unknown word) is detected when its readout probability, smoothed over a few
ticks, exceeds a threshold; a clip without a detection is background.
"""
from __future__ import annotations

import numpy as np

from tianrt import train as T

from .data import CLASSES, UNK, targets_per_tick
from .frontend import mel_centres


BG = CLASSES.index("background")


def limit_threads():
    """One BLAS thread for training and running the voice network: its per-tick matrices are
    small, and threads only contend."""
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


TAU_SPREAD = ((0.02, 0.2), (0.1, 2.0))   # hetero: membrane and adaptation time constants (s)


def time_constants(hidden, layers, seed, dt=0.01, spread=TAU_SPREAD):
    """Per-neuron (beta, rho) of each layer for ``build_snn(hetero=True)``: membrane and
    adaptation time constants drawn once, log-uniform in ``spread`` (seconds), from a
    generator of their own (seeded by ``seed``: the weights' draws are unchanged);
    beta = exp(-dt / tau), rho = exp(-dt / tau_adapt)."""
    rng = np.random.default_rng([int(seed), 16])
    (m0, m1), (a0, a1) = spread
    out = []
    for _ in range(layers):
        tau = np.exp(rng.uniform(np.log(m0), np.log(m1), hidden))
        tau_a = np.exp(rng.uniform(np.log(a0), np.log(a1), hidden))
        out.append((np.exp(-dt / tau).astype(np.float32), np.exp(-dt / tau_a).astype(np.float32)))
    return out


def build_snn(n_in=32, hidden=128, seed=0, dt=0.01, slope=2.0, gain=1.0, label_smoothing=0.0, dropout=0.0,
              layers=1, peak=0.0, hetero=False, train_tau=False, adapt_spread=None, class_weight=None):
    """``layers`` recurrent adaptive-LIF layers of ``hidden`` neurons each, stacked (the
    second reads the first's spikes), and the leaky-integrator readout; ``peak > 0`` adds
    that much of ``peak_hinge`` to the per-tick loss (``PeakSNN``). ``hetero``: per-neuron
    time constants (``time_constants``) instead of one per layer (50 ms membrane, 300 ms
    adaptation); ``train_tau``: every neuron's beta and rho, and the readout's beta, trained
    by BPTT beside the weights (``tr.train.SpikingLayer(train_tau=True)``). ``adapt_spread=(lo,
    hi)`` (seconds, with ``hetero``): the adaptation time constants drawn in it instead of
    0.1-2 s, and with ``train_tau`` the trained ones kept at most ``hi`` (``rho_max``).
    ``class_weight``: one weight per class for the per-tick loss's ticks (``tr.train.SNN``;
    round 12: ``unknown`` weighed down)."""
    if layers < 1:
        raise ValueError(f"voice.model: layers must be >= 1, got {layers}")
    if adapt_spread is not None:
        lo, hi = (float(v) for v in adapt_spread)
        if not (hetero and 0 < lo <= hi):
            raise ValueError(f"voice.model: adapt_spread needs hetero and 0 < lo <= hi (seconds), got {adapt_spread}")
    spread = TAU_SPREAD if adapt_spread is None else (TAU_SPREAD[0], (lo, hi))
    taus = (time_constants(hidden, layers, seed, dt, spread) if hetero
            else [(np.exp(-1 / 5), np.exp(-1 / 30))] * layers)
    rho_max = float(np.exp(-dt / hi)) if (adapt_spread is not None and train_tau) else None
    alif = [T.SpikingLayer(n_in if i == 0 else hidden, hidden, neuron="alif", recurrent=True, beta=taus[i][0],
                           adapt=0.3, rho=taus[i][1], surrogate=T.FastSigmoid(slope), init_gain=1.0,
                           train_tau=train_tau, rho_max=rho_max)
            for i in range(layers)]
    kw = dict(n_in=n_in, input="tensor", gain=gain, loss="per_tick", label_smoothing=label_smoothing, seed=seed, dt=dt,
              class_weight=class_weight)
    readout = T.Readout(hidden, len(CLASSES), beta=np.exp(-1 / 6), dropout=dropout, train_tau=train_tau)
    return PeakSNN(*alif, readout, peak=peak, **kw) if peak else T.SNN(*alif, readout, **kw)


def peak_hinge(y, target, lo=0.4, hi=0.6):
    """The clip decision's loss: (value, dL/dy) for readout traces y (ticks, batch, classes)
    and per-tick targets (batch, ticks) (data.targets_per_tick: the clip's class where taught,
    -1 elsewhere; background clips background throughout). The decision (``decide``) takes each
    class's *peak* probability over the clip, so a brief excursion decides it although a
    per-tick loss averages it away; per clip, with ``p`` the softmax and ``m_c = max_t p_c``:
    ``sum over the wrong classes c of relu(m_c - lo)`` — the commands other than the clip's,
    and ``unknown`` too in a background clip — ``+ relu(hi - m_label)`` for a command or an
    unknown word; averaged over the batch. The gradient goes to each peak's tick (as
    max-over-time does), through the softmax."""
    T, B, C = y.shape
    label = np.asarray(target).max(1)                      # -1 nowhere taught: the clip's class
    p = softmax(y.astype(np.float64), 2)
    t_peak = p.argmax(0)                                   # (batch, classes)
    m = np.take_along_axis(p, t_peak[None], 0)[0]
    rows = np.arange(B)
    own = (label >= 0) & (label != BG)                     # a command or an unknown word: its peak up
    wrong = np.zeros((B, C), bool)
    wrong[:, :UNK] = True                                  # every command but the clip's own ...
    wrong[rows[own], label[own]] = False
    wrong[:, UNK] = label == BG                            # ... and unknown in a background clip
    over = wrong & (m > lo)
    under = np.zeros((B, C), bool)
    under[rows[own], label[own]] = m[rows[own], label[own]] < hi
    value = float(((m - lo) * over).sum() + ((hi - m) * under).sum()) / B
    gp = (over.astype(np.float64) - under) / B             # dL/dm
    g_p = np.zeros_like(p)                                 # dL/dp at the peaks' ticks
    b, c = np.nonzero(gp)
    np.add.at(g_p, (t_peak[b, c], b, c), gp[b, c])
    g = p * (g_p - (g_p * p).sum(2, keepdims=True))        # through the softmax, tick by tick
    return value, g


class PeakSNN(T.SNN):
    """``tr.train.SNN`` whose per-tick loss is joined by ``peak`` times ``peak_hinge``: the
    network is trained for the decision it is judged by. The graph it makes is an ordinary
    one (``to_graph``)."""

    def __init__(self, *layers, peak=0.0, **kw):
        super().__init__(*layers, **kw)
        self.peak = float(peak)

    def loss_and_grad(self, y, target):
        value, g = super().loss_and_grad(y, target)
        if self.peak:
            v, gh = peak_hinge(y, target)
            value, g = value + self.peak * v, g + self.peak * gh
        return value, g


def softmax(y, axis=-1):
    z = y - y.max(axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis, keepdims=True)


def smooth(p, k=5):
    """Moving average over the last k ticks along axis 0 (causal)."""
    c = np.cumsum(np.concatenate([np.zeros((k,) + p.shape[1:]), p]), axis=0)
    return (c[k:] - c[:-k]) / k


def decide(trace, threshold=0.5, k=5):
    """Clip decisions from readout traces (ticks, batch, classes), the streaming rule's
    priorities: the command with the highest smoothed probability if it reaches
    ``threshold``; else ``unknown`` if its smoothed probability does; else background."""
    return decide_probs(softmax(trace), threshold, k)


def decide_probs(probs, threshold=0.5, k=5):
    """``decide`` on probabilities (ticks, batch, classes) instead of readout traces."""
    best = smooth(probs, k).max(0)          # (batch, classes)
    cmd = best[:, :UNK]
    return np.where(cmd.max(1) >= threshold, cmd.argmax(1), np.where(best[:, UNK] >= threshold, UNK, BG))


def snn_accuracy(net, x, y, threshold=0.5, batch=256):
    pred = np.concatenate([decide(net.forward(x[i:i + batch]), threshold) for i in range(0, len(x), batch)])
    return float((pred == y).mean()), pred


def augmentation(n_mels=32, warp=0.0, tilt=0.0):
    """The training augmentation of both networks: ``tr.train.SpecAugment`` with a level
    shift (0.3) and channel noise (0.1) of the normalised log energies, a vocal-tract-length
    warp of the mel axis by up to ``warp`` (on the filters' centre frequencies) and a
    spectral ``tilt``; no masks."""
    return T.SpecAugment(0, 0, 0, 0, level=0.3, noise=0.1, warp=warp, tilt=tilt, centres=mel_centres(n_mels))


def train_snn(d, epochs=60, hidden=256, seed=0, lr=3e-3, batch=64, clip=1.0, unknown_before=5,
              augment=None, label_smoothing=0.0, warp=0.0, tilt=0.0, weight_decay=0.0, dropout=0.0,
              layers=1, peak=0.0, hetero=False, train_tau=False, adapt_spread=None, targets=None,
              class_weight=None, monitor=None, log=print, teacher=None, temperature=2.0, alpha=0.5,
              distil_ticks="all", gain=1.0):
    """Train the voice SNN by BPTT (tr.train.SNN.fit): per-tick targets, Adam with cosine
    decay, gradient clipping, ``augment`` (default: tr.train.SpecAugment with only a level
    shift and channel noise, plus a vocal-tract-length warp of up to ``warp`` on the mel
    centres and a spectral ``tilt``), decoupled ``weight_decay`` (AdamW) on the weights,
    ``dropout`` of the hidden spikes into the readout, the weights of the best validation
    clip accuracy kept; ``layers`` stacked recurrent ALIF layers and ``peak`` times the
    clip decision's loss beside the per-tick one, ``hetero`` per-neuron time constants,
    ``train_tau`` trained ones, ``adapt_spread`` their adaptation's range (build_snn);
    ``targets``: per-tick targets of the training clips (default data.targets_per_tick of
    their labels and ends); ``class_weight``: the per-tick loss's weight per class (build_snn);
    ``monitor(net) -> str``: appended to each epoch's log line (for reading only: the weights
    kept are chosen on the validation clips alone); ``teacher(xb) -> readouts``: distillation
    (``tr.train.SNN.fit``'s teacher, ``temperature``, ``alpha``, ``distil_ticks``; round 17:
    an ensemble's members, ``distil.teacher``); ``gain``: the input currents' gain
    (``bridge.DirectCurrent``, build_snn; round 19: 0/1 ON/OFF spikes at ~10 % are 3.4× weaker
    than unit-deviation features)."""
    net = build_snn(d["train_x"].shape[2], hidden, seed, label_smoothing=label_smoothing, dropout=dropout,
                    layers=layers, peak=peak, hetero=hetero, train_tau=train_tau, adapt_spread=adapt_spread,
                    class_weight=class_weight, gain=gain)
    ticks = d["train_x"].shape[1]
    tt = (targets_per_tick(d["train_y"], d["train_end"], ticks, unknown_before=unknown_before)
          if targets is None else targets)
    aug = augment or augmentation(d["train_x"].shape[2], warp, tilt)

    def val(net):
        return snn_accuracy(net, d["val_x"], d["val_y"])[0]

    def report(ep, r):
        log(f"snn epoch {ep + 1}/{epochs}: loss {r['loss']:.3f}, val acc {r['val_acc']:.3f}"
            + (f", {monitor(net)}" if monitor is not None else ""))

    net.fit(d["train_x"], tt, epochs=epochs, batch_size=batch, optimizer=T.Adam(lr, weight_decay=weight_decay),
            lr_schedule="cosine",
            validation=val, augment=aug, clip=clip, seed=seed, log=report,
            teacher=teacher, temperature=temperature, alpha=alpha, distil_ticks=distil_ticks)
    return net


def train_ann(d, epochs=40, seed=0, augment=None, log=print):
    """The baseline: an MLP on the flattened log-mel frames of the clip, trained with the
    SNN's ``augment`` when given (the same SpecAugment: it applies to the frames alike)."""
    n = int(np.prod(d["train_x"].shape[1:]))
    m = T.Sequential(T.Flatten(), T.Dense(n, 256), T.ReLU(), T.Dropout(0.3), T.Dense(256, len(CLASSES)),
                     input_shape=d["train_x"].shape[1:], seed=seed)
    m.fit(d["train_x"], d["train_y"], epochs=epochs, batch_size=64, optimizer=T.Adam(1e-3, weight_decay=1e-3),
          validation=(d["val_x"], d["val_y"]), patience=8, progress=False, augment=augment)
    log(f"ann: val acc {m.accuracy(d['val_x'], d['val_y']):.3f}")
    return m
