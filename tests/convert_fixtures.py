"""Tiny seeded data sets and trained models shared by the train/convert/quantize tests."""
from __future__ import annotations

import functools

import numpy as np

from tianrt import train as T


def blobs(n=240, d=16, classes=4, seed=0, noise=0.35):
    """Non-negative class prototypes plus noise, in [0, 1]: an easy 4-class problem."""
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, d))
    y = np.arange(n) % classes
    x = np.clip(protos[y] + noise * rng.standard_normal((n, d)), 0, 1).astype(np.float32)
    return x, y


def images(n=160, classes=3, seed=0):
    """6x6 one-channel images: a bright bar per class (row, column or diagonal) plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = 0.15 * rng.random((n, 1, 6, 6))
    for i, c in enumerate(y):
        k = rng.integers(1, 5)
        if c == 0:
            x[i, 0, k, :] += 0.8
        elif c == 1:
            x[i, 0, :, k] += 0.8
        else:
            x[i, 0, np.arange(6), np.arange(6)] += 0.8
    return np.clip(x, 0, 1).astype(np.float32), y


@functools.lru_cache(maxsize=None)
def trained_mlp():
    x, y = blobs()
    m = T.Sequential(T.Dense(16, 24), T.ReLU(), T.Dense(24, 16), T.ReLU(), T.Dense(16, 4),
                     input_shape=(16,), seed=1)
    m.fit(x, y, epochs=12, batch_size=16, optimizer=T.Adam(3e-3), progress=False)
    return m, x, y


@functools.lru_cache(maxsize=None)
def trained_cnn():
    x, y = images()
    m = T.Sequential(T.Conv2d(1, 4, 3, padding=1), T.ReLU(), T.AvgPool2d(2), T.Conv2d(4, 6, 3, padding=1),
                     T.ReLU(), T.Flatten(), T.Dense(54, 3), input_shape=(1, 6, 6), seed=2)
    m.fit(x, y, epochs=8, batch_size=16, optimizer=T.Adam(3e-3), progress=False)
    return m, x, y
