"""Streaming polyphase resampling of audio by a rational factor, numpy only.

``Resampler(in_rate, out_rate)`` converts a stream of ``(n, channels)`` float32 blocks from
``in_rate`` to ``out_rate`` samples per second, chunk by chunk, with the same result as
resampling the whole signal at once. The ratio is reduced to ``up / down`` (44 100 Hz ->
16 000 Hz is 160 / 441) and the signal is filtered as if it were upsampled by ``up`` with
zeros, low-passed, and kept every ``down``-th sample - computed in the polyphase form, so only
the kept samples are ever evaluated.

The filter (documented in docs/streaming.md): a Kaiser-windowed sinc, ``2 * half * max(up,
down) + 1`` taps at the upsampled rate (``half = 16`` zero crossings per side), beta 8.6
(about 80 dB stop-band attenuation), cut off at 0.45 of the lower of the two rates (90 % of the
lower Nyquist frequency, so the transition band ends below it). It is linear phase, and its
delay is compensated: output sample m is centred on input time m / out_rate. The signal is
taken as zero before its start and after its end (``flush``).
"""
from __future__ import annotations

import math

import numpy as np

HALF = 16
BETA = 8.6
CUTOFF = 0.9  # fraction of the lower Nyquist frequency


def design(up: int, down: int, half: int = HALF, beta: float = BETA, cutoff: float = CUTOFF):
    """The prototype low-pass filter at the upsampled rate, with gain ``up``."""
    m = max(up, down)
    n = 2 * half * m + 1
    fc = 0.5 * cutoff / m  # cycles per upsampled sample
    t = np.arange(n) - (n - 1) / 2
    h = 2 * fc * np.sinc(2 * fc * t) * np.kaiser(n, beta)
    return h * (up / h.sum())


class Resampler:
    """Streams ``(n, channels)`` blocks from ``in_rate`` to ``out_rate`` (integers, Hz)."""

    def __init__(self, in_rate: int, out_rate: int, channels: int = 1, half: int = HALF):
        g = math.gcd(int(in_rate), int(out_rate))
        self.up, self.down = int(out_rate) // g, int(in_rate) // g
        self.channels = int(channels)
        h = design(self.up, self.down, half)
        self.delay = (len(h) - 1) // 2  # in upsampled samples
        k = -(-len(h) // self.up)
        h = np.concatenate([h, np.zeros(k * self.up - len(h))])
        # taps[p, j] multiplies x[i0 - j] for output phase p
        self.taps = h.reshape(k, self.up).T.astype(np.float32).copy()
        self.k = k
        self.buf = np.zeros((k, self.channels), np.float32)  # zeros before the signal starts
        self.base = -k  # input index of buf[0]
        self.n_in = 0  # input samples fed
        self.m = 0  # next output index

    def _produce(self, limit: int) -> np.ndarray:
        """Every output m whose inputs are all fed (or, with ``limit``, up to ``limit``)."""
        up, down, k = self.up, self.down, self.k
        # output m needs x[(m*down + delay)//up]; available while that index < n_in
        last = (self.n_in * up - self.delay - 1) // down  # largest m with its input fed
        stop = min(last + 1, limit)
        if stop <= self.m:
            return np.zeros((0, self.channels), np.float32)
        ms = np.arange(self.m, stop, dtype=np.int64)
        j = ms * down + self.delay
        p, i0 = j % up, j // up
        idx = i0[:, None] - np.arange(k)[None, :] - self.base
        y = np.einsum("mk,mkc->mc", self.taps[p], self.buf[idx], optimize=True)
        self.m = stop
        # keep only what later outputs can still need
        need = (self.m * down + self.delay) // up - (k - 1)
        cut = max(0, min(need - self.base, len(self.buf)))
        if cut:
            self.buf = self.buf[cut:]
            self.base += cut
        return y.astype(np.float32)

    def feed(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(-1, self.channels)
        self.buf = np.concatenate([self.buf, x])
        self.n_in += len(x)
        return self._produce(np.iinfo(np.int64).max)

    def flush(self) -> np.ndarray:
        """The remaining outputs (the signal taken as zero after its end): in all,
        ceil(n_in * up / down) outputs come out."""
        total = -(-self.n_in * self.up // self.down)
        pad = self.delay // self.up + self.k + 1
        self.buf = np.concatenate([self.buf, np.zeros((pad, self.channels), np.float32)])
        n = self.n_in
        self.n_in += pad
        y = self._produce(total)
        self.n_in = n
        return y
