"""Losses: ``value, grad = loss(outputs, targets)`` with the gradient already divided by
the batch size (mean reduction, as PyTorch's default)."""
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
        z = logits - logits.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
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
