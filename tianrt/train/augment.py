"""Data augmentation for sequences of features ``(batch, ticks, features)`` — log-mel
frames, say — as callables ``augment(xb, rng) -> xb`` for ``fit(augment=...)`` of
``train.SNN`` and ``train.Sequential``. Seeded through the ``rng`` the trainer passes.

    aug = T.SpecAugment(freq_masks=2, freq_width=4, time_masks=2, time_width=8,
                        freq_shift=2, level=0.3, noise=0.1)
    net.fit(x, y, augment=aug)

``SpecAugment`` (Park et al. 2019), per example:

- ``freq_masks`` bands of up to ``freq_width`` adjacent features set to ``fill``;
- ``time_masks`` spans of up to ``time_width`` ticks set to ``fill``;
- ``freq_shift``: the features moved by a random whole number of channels in
  ``[-freq_shift, freq_shift]``, the edge channel repeated (on a mel axis, a crude vocal
  tract length perturbation: a speaker with a longer or shorter vocal tract);
- ``warp``: a random frequency scale ``a`` uniform in ``[1 - warp, 1 + warp]`` per example
  (vocal tract length perturbation, Jaitly & Hinton 2013): feature ``i``, centred at
  ``centres[i]`` (Hz for a mel axis; default the channel index), takes the value the input
  has at ``centres[i] / a``, interpolated linearly in frequency between the two nearest
  channels, the edge held — a shorter vocal tract (``a > 1``) moves the formants up;
- ``tilt``: a random spectral slope, ``t * linspace(-1, 1, features)`` with ``t`` of
  standard deviation ``tilt`` added per example (a brighter or duller voice or channel);
- ``level``: a random offset of standard deviation ``level`` added to every feature (a gain
  change, on log energies); ``noise``: independent Gaussian noise of that standard deviation.

It never moves anything in time, so per-tick targets stay aligned with the inputs.
With ``fill=0`` on features normalised to zero mean, a mask is the average frame.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


class SpecAugment:
    """Frequency and time masking, channel shift, level and noise (module docstring)."""

    def __init__(self, freq_masks: int = 2, freq_width: int = 4, time_masks: int = 2,
                 time_width: int = 8, freq_shift: int = 0, level: float = 0.0, noise: float = 0.0,
                 fill: float = 0.0, warp: float = 0.0, centres=None, tilt: float = 0.0):
        for name, v in (("freq_masks", freq_masks), ("freq_width", freq_width), ("time_masks", time_masks),
                        ("time_width", time_width), ("freq_shift", freq_shift)):
            if int(v) != v or v < 0:
                raise ValueError(f"SpecAugment: {name} must be a whole number >= 0, got {v!r}")
        if level < 0 or noise < 0 or tilt < 0:
            raise ValueError(f"SpecAugment: level, noise and tilt must be >= 0, got {level}, {noise}, {tilt}")
        if not 0 <= warp < 1:
            raise ValueError(f"SpecAugment: warp must be in [0, 1), got {warp!r}")
        self.warp, self.tilt = float(warp), float(tilt)
        self.centres = None if centres is None else np.asarray(centres, np.float64).reshape(-1)
        if self.centres is not None and (self.centres.size < 2 or np.any(np.diff(self.centres) <= 0)
                                         or self.centres[0] <= 0):
            raise ValueError("SpecAugment: centres must be positive and strictly increasing")
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.freq_shift, self.level, self.noise, self.fill = int(freq_shift), float(level), float(noise), float(fill)

    def __call__(self, xb, rng) -> np.ndarray:
        x = np.array(xb, F32)  # a copy: the training set is never modified
        if x.ndim != 3:
            raise ValueError(f"SpecAugment: inputs of shape {x.shape}, expected (batch, ticks, features)")
        B, T, F = x.shape
        if self.freq_shift:
            s = rng.integers(-self.freq_shift, self.freq_shift + 1, B)
            idx = np.clip(np.arange(F)[None, :] - s[:, None], 0, F - 1)     # (B, F)
            x = np.take_along_axis(x, idx[:, None, :].repeat(T, 1), axis=2)
        if self.warp:
            x = _warp(x, rng, self.warp, self.centres)
        for _ in range(self.freq_masks):
            _mask(x, rng, self.freq_width, F, axis=2, fill=self.fill)
        for _ in range(self.time_masks):
            _mask(x, rng, self.time_width, T, axis=1, fill=self.fill)
        if self.tilt:
            x += (rng.normal(0.0, self.tilt, (B, 1, 1)) * np.linspace(-1.0, 1.0, F)[None, None, :]).astype(F32)
        if self.level:
            x += rng.normal(0.0, self.level, (B, 1, 1)).astype(F32)
        if self.noise:
            x += rng.normal(0.0, self.noise, x.shape).astype(F32)
        return x


def _mask(x, rng, width, size, axis, fill):
    """One mask per example: a span of 0..width positions along ``axis`` set to ``fill``."""
    B = x.shape[0]
    w = rng.integers(0, width + 1, B)
    start = rng.integers(0, np.maximum(size - w, 0) + 1)
    pos = np.arange(size)[None, :]
    m = (pos >= start[:, None]) & (pos < (start + w)[:, None])               # (B, size)
    if axis == 1:
        x[m[:, :, None].repeat(x.shape[2], 2)] = fill
    else:
        x[m[:, None, :].repeat(x.shape[1], 1)] = fill


def _warp(x, rng, warp, centres):
    """Each example's features resampled at ``centres / a`` (``a`` uniform in 1 +- warp)."""
    B, T, F = x.shape
    c = np.arange(1.0, F + 1.0) if centres is None else centres
    if c.size != F:
        raise ValueError(f"SpecAugment: {c.size} warp centres for {F} features")
    a = rng.uniform(1.0 - warp, 1.0 + warp, B)
    src = np.interp(c[None, :] / a[:, None], c, np.arange(F, dtype=np.float64))  # (B, F), edges held
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, F - 1)
    w = (src - lo).astype(F32)[:, None, :]
    take = lambda i: np.take_along_axis(x, i[:, None, :].repeat(T, 1), axis=2)  # noqa: E731
    return take(lo) * (1 - w) + take(hi) * w
