"""Losses: ``value, grad = loss(outputs, targets)`` with the gradient already divided by
the batch size (mean reduction, as PyTorch's default).

``soft_target_loss`` is Hinton's distillation loss toward a teacher's probabilities at a
temperature, ``soft_targets`` those probabilities from one or several teachers' logits (an
ensemble: the mean of their tempered softmaxes)."""
from __future__ import annotations

import numpy as np


def _one_hot(y, n, who):
    y = np.asarray(y)
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n:
            raise ValueError(f"{who}: class labels must be integers in [0, {n}), got range "
                             f"[{y.min()}, {y.max()}] of dtype {y.dtype}")
        return np.eye(n, dtype=np.float32)[y]
    return y.astype(np.float32)


def _log_softmax(z, axis=-1):
    z = z - z.max(axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis, keepdims=True))


class CrossEntropyLoss:
    """Softmax cross-entropy on logits; targets are class indices or probability rows."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = float(label_smoothing)

    def __call__(self, logits, y):
        n = logits.shape[1]
        t = _one_hot(y, n, "CrossEntropyLoss")
        if t.shape != logits.shape:
            raise ValueError(f"CrossEntropyLoss: targets of shape {t.shape} for logits {logits.shape}")
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / n
        logp = _log_softmax(logits, 1)
        b = logits.shape[0]
        return float(-(t * logp).sum() / b), ((np.exp(logp) - t) / b).astype(np.float32)


class MSELoss:
    """Mean squared error over all elements; class-index targets become one-hot rows."""

    def __call__(self, out, y):
        t = _one_hot(y, out.shape[1], "MSELoss") if np.asarray(y).ndim == 1 and out.ndim == 2 else np.asarray(y, np.float32)
        if t.shape != out.shape:
            raise ValueError(f"MSELoss: targets of shape {t.shape} for outputs {out.shape}")
        d = out - t
        return float((d ** 2).mean()), (2 * d / d.size).astype(np.float32)


def soft_targets(logits, temperature: float = 1.0) -> np.ndarray:
    """A teacher's probabilities at ``temperature``, softmax(z / T) over the last axis, from
    its logits ``z`` (..., classes) — or, given a list of several teachers' logits of one
    shape (an ensemble), the mean of their tempered softmaxes (float64)."""
    if not temperature > 0:
        raise ValueError(f"soft_targets: the temperature must be > 0, got {temperature}")
    many = isinstance(logits, (list, tuple))
    zs = [np.asarray(z, np.float64) for z in (logits if many else [logits])]
    if not zs or any(z.shape != zs[0].shape for z in zs):
        raise ValueError(f"soft_targets: teachers' logits of one shape needed, got {[z.shape for z in zs]}")
    return np.mean([np.exp(_log_softmax(z / temperature)) for z in zs], axis=0)


def soft_target_loss(logits, soft, temperature: float = 1.0, weight=None):
    """Hinton's distillation loss: ``T**2 * KL(q || softmax(z / T))`` per row of the student's
    logits ``z`` (..., classes) against the teacher's probabilities ``q`` at the same
    temperature T (``soft_targets``), averaged over the rows — or weighted by ``weight``
    (one non-negative weight per row, shape ``z.shape[:-1]``; e.g. 0 for a padded tick) and
    divided by the weights' sum. The T**2 keeps the gradient's scale independent of T
    (it is ``T * (softmax(z / T) - q)`` per row, divided likewise). At T = 1 with one-hot rows
    ``q`` it is ``CrossEntropyLoss`` (a one-hot row has no entropy). Returns (value,
    dL/dz) in float64."""
    if not temperature > 0:
        raise ValueError(f"soft_target_loss: the temperature must be > 0, got {temperature}")
    z = np.asarray(logits, np.float64)
    q = np.asarray(soft, np.float64)
    if q.shape != z.shape:
        raise ValueError(f"soft_target_loss: soft targets of shape {q.shape} for logits {z.shape}")
    if not np.allclose(q.sum(-1), 1.0, atol=1e-6) or q.min() < 0:
        raise ValueError("soft_target_loss: each row of soft targets must be probabilities summing to 1 "
                         "(soft_targets of the teacher's logits)")
    w = np.ones(z.shape[:-1]) if weight is None else np.asarray(weight, np.float64)
    if w.shape != z.shape[:-1] or w.min(initial=0.0) < 0:
        raise ValueError(f"soft_target_loss: weight must be {z.shape[:-1]} non-negative numbers, one per row, "
                         f"got shape {w.shape}")
    n = float(w.sum()) or 1.0
    T = float(temperature)
    logp = _log_softmax(z / T)
    logq = np.log(np.where(q > 0, q, 1.0))                   # 0 log 0 = 0
    kl = (q * (logq - logp)).sum(-1)
    value = T * T * float((w * kl).sum()) / n
    grad = T * (np.exp(logp) - q) * (w / n)[..., None]
    return value, grad
