"""The cochlea-like front end: a log-mel filterbank in numpy, one frame per 10 ms chunk.

    fe = LogMel()                       # 16 kHz, 25 ms Hann window, 10 ms hop, 32 mel bands
    for chunk in chunks:                # 160 samples each (an AudioSource with chunk=160)
        f = fe.push(chunk)              # (32,) normalised log-mel energies of the last 25 ms

``features(wav)`` computes the frames of a whole clip (the training data); ``push`` gives
bit-for-bit the same values chunk by chunk (tests/test_voice.py). The frames
feed the SNN as currents through ``bridge.DirectCurrent`` (the analog input the network
was trained on); ``OnOff`` turns them into send-on-delta ON/OFF spikes instead.
"""
from __future__ import annotations

import numpy as np

SR = 16000
HOP = 160       # 10 ms
WIN = 400       # 25 ms
NFFT = 512
N_MELS = 32
FMIN, FMAX = 60.0, 7600.0
LOG_FLOOR = 1e-6


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_matrix(n_mels: int = N_MELS, nfft: int = NFFT, sr: int = SR, fmin: float = FMIN,
               fmax: float = FMAX) -> np.ndarray:
    """Triangular filters (n_mels, nfft // 2 + 1) on the HTK mel scale, peak 1 (as
    librosa.filters.mel(htk=True, norm=None))."""
    freqs = np.linspace(0.0, sr / 2.0, nfft // 2 + 1)
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def mel_centres(n_mels: int = N_MELS, fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """The centre frequencies (Hz) of ``mel_matrix``'s triangles."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))[1:-1]


class LogMel:
    """Streaming log-mel: ``push(chunk of HOP samples)`` -> one frame (n_mels,)."""

    def __init__(self, n_mels: int = N_MELS, mean=None, std=None):
        self.fb = mel_matrix(n_mels)
        self.window = np.hanning(WIN + 2)[1:-1].astype(np.float32)
        self.mean = np.zeros(n_mels, np.float32) if mean is None else np.asarray(mean, np.float32)
        self.std = np.ones(n_mels, np.float32) if std is None else np.asarray(std, np.float32)
        self.reset()

    def reset(self):
        self.buf = np.zeros(WIN, np.float32)

    def _frame(self, seg):
        spec = np.abs(np.fft.rfft(seg * self.window, NFFT)) ** 2
        return ((np.log(self.fb @ spec + LOG_FLOOR) - self.mean) / self.std).astype(np.float32)

    def push(self, chunk) -> np.ndarray:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        if chunk.size != HOP:
            raise ValueError(f"LogMel.push takes chunks of {HOP} samples, got {chunk.size}")
        self.buf = np.concatenate([self.buf[HOP:], chunk])
        return self._frame(self.buf)

    def features(self, wav) -> np.ndarray:
        """(frames, n_mels) of a clip, frame k ending at sample (k + 1) * HOP: exactly the
        frames ``push`` returns for the clip's chunks, from a zero history."""
        wav = np.asarray(wav, np.float32)
        n = len(wav) // HOP
        x = np.concatenate([np.zeros(WIN - HOP, np.float32), wav[:n * HOP]])
        return np.stack([self._frame(x[k * HOP:k * HOP + WIN]) for k in range(n)]).reshape(n, -1)


class OnOff:
    """Send-on-delta: per channel, an ON spike when the feature rose by ``delta`` since the
    last spike, an OFF spike when it fell by ``delta``; output (2 * channels,) of 0/1."""

    def __init__(self, channels: int, delta: float = 0.3):
        self.delta = float(delta)
        self.ref = np.zeros(channels, np.float32)

    def push(self, f) -> np.ndarray:
        d = f - self.ref
        on, off = d >= self.delta, d <= -self.delta
        self.ref = np.where(on | off, f, self.ref).astype(np.float32)
        return np.concatenate([on, off]).astype(np.float32)
