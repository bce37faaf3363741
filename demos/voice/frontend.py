"""The cochlea-like front end: a log-mel filterbank in numpy, one frame per 10 ms chunk.

    fe = LogMel()                       # 16 kHz, 25 ms Hann window, 10 ms hop, 32 mel bands
    for chunk in chunks:                # 160 samples each (an AudioSource with chunk=160)
        f = fe.push(chunk)              # (32,) normalised log-mel energies of the last 25 ms

``features(wav)`` computes the frames of a whole clip (the training data); ``push`` gives
bit-for-bit the same values chunk by chunk (tests/test_voice.py). The frames
feed the SNN as currents through ``bridge.DirectCurrent`` (the analog input the network
was trained on); ``OnOff`` turns them into send-on-delta ON/OFF spikes instead (round 19:
``--frontend onoff`` / ``level-onoff``, tests/test_voice_onoff.py). ``VoiceFrontEnd`` builds
a graph's front end from its metadata.
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


ONOFF_DELTA = 0.3   # normalised log-mel units: ~9 % of channel-frames spike (docs/voice.md, "Round 19")
ONOFF_AMPLITUDE = 3.0   # the spikes' height the recipes train with: 0/1 spikes at ~9 % have a deviation of
                        # 0.29, and at height 1 ON/OFF alone barely trains (docs/voice.md, "Round 19")


class OnOff:
    """Send-on-delta ON/OFF spikes of each channel (a silicon cochlea's, on the normalised
    log-mel bands): per channel a reference ``r`` (0 at a fresh state: the training set's mean
    frame); at frame ``f_t`` an ON spike when ``f_t - r >= delta``, an OFF spike when
    ``f_t - r <= -delta``, and after either ``r = f_t`` (at most one spike per channel per
    frame: a rise of 3 * delta in one frame is one ON spike, not three). Out: ``[ON, OFF]``
    (2 * channels of 0 or ``amplitude``, default 1), or ``[f_t, ON, OFF]`` (3 * channels)
    with ``level``: the level
    beside the spikes (``--frontend level-onoff``: the spikes instead of ``Delta``'s
    differences). Unlike ``Delta`` the memory is unbounded — a channel that never changes by
    ``delta`` keeps its reference from power-on — so a stream and a clip agree only once each
    channel has spiked. ``push`` (one frame) and ``apply`` (whole clips, frames along axis -2,
    each from a fresh state) compute the same values; all arithmetic in float32."""

    def __init__(self, channels: int, delta: float = ONOFF_DELTA, level: bool = False, amplitude: float = 1.0):
        if not delta > 0:
            raise ValueError(f"OnOff: delta must be > 0 (normalised log-mel units), got {delta!r}")
        if not amplitude > 0:
            raise ValueError(f"OnOff: amplitude must be > 0, got {amplitude!r}")
        self.channels, self.delta, self.level = int(channels), np.float32(delta), bool(level)
        self.amplitude = np.float32(amplitude)
        self.n_out = self.channels * (3 if self.level else 2)
        self.reset()

    def reset(self):
        self.ref = np.zeros(self.channels, np.float32)

    def _step(self, f, ref):
        """(spikes [ON, OFF] along the last axis, the new reference) of frames ``f`` after ``ref``."""
        d = f - ref
        on, off = d >= self.delta, d <= -self.delta
        s = np.concatenate([on, off], axis=-1).astype(np.float32)
        return s * self.amplitude, np.where(on | off, f, ref)

    def push(self, f) -> np.ndarray:
        f = np.asarray(f, np.float32)
        s, self.ref = self._step(f, self.ref)
        return np.concatenate([f, s]) if self.level else s

    def apply(self, frames) -> np.ndarray:
        """(..., T, channels) -> (..., T, n_out), each clip from a fresh state."""
        x = np.asarray(frames, np.float32)
        ref = np.zeros(x.shape[:-2] + x.shape[-1:], np.float32)
        s = np.empty(x.shape[:-1] + (2 * x.shape[-1],), np.float32)
        for t in range(x.shape[-2]):
            s[..., t, :], ref = self._step(x[..., t, :], ref)
        return np.concatenate([x, s], axis=-1) if self.level else s

    def rate(self, out) -> float:
        """The mean spike rate of this encoder's output ``out`` (``apply``'s or ``push``'s, the
        level too if it has one): spikes per ON/OFF channel per frame."""
        return float((np.asarray(out)[..., -2 * self.channels:] != 0).mean())


class RunningNorm:
    """Causal per-channel mean normalisation (a running CMN): a slow running mean ``m`` of
    each normalised log-mel channel, ``m_t = m_{t-1} + a_t (f_t - m_{t-1})`` with
    ``a_t = max(1 / (t + 1), 1 / tau)`` (the plain mean of the frames so far until ``tau``
    frames, then an exponential one of time constant ``tau`` frames), and the frame out is
    ``[f_t, (f_t - m_t) / scale]`` (2 * channels): the level and the level relative to the
    recent past, which discounts what stays put — the noise floor, the channel, a voice's
    average spectrum. ``push`` (one frame) and ``apply`` (whole clips, frames along axis -2)
    compute the same float32 values."""

    def __init__(self, channels: int, tau: float = 100.0, scale=None):
        if not tau >= 1:
            raise ValueError(f"RunningNorm: tau must be >= 1 frame, got {tau}")
        self.channels, self.tau = int(channels), float(tau)
        self.scale = np.ones(self.channels, np.float32) if scale is None else np.asarray(scale, np.float32)
        self.reset()

    def reset(self):
        self.m = np.zeros(self.channels, np.float32)
        self.t = 0

    def _rate(self, t) -> np.float32:
        return np.float32(max(1.0 / (t + 1), 1.0 / self.tau))

    def push(self, f) -> np.ndarray:
        f = np.asarray(f, np.float32)
        self.m = (self.m + self._rate(self.t) * (f - self.m)).astype(np.float32)
        self.t += 1
        return np.concatenate([f, ((f - self.m) / self.scale).astype(np.float32)])

    def apply(self, frames, m0=None, t0=None) -> np.ndarray:
        """(..., T, channels) -> (..., T, 2 * channels), each clip from a fresh state, or
        from the running mean ``m0`` (..., channels) after ``t0`` (...) frames."""
        x = np.asarray(frames, np.float32)
        lead = x.shape[:-2]
        m = np.zeros(lead + x.shape[-1:], np.float32) if m0 is None else np.array(m0, np.float32)
        t0 = np.zeros(lead, np.int64) if t0 is None else np.broadcast_to(np.asarray(t0, np.int64), lead)
        rel = np.empty_like(x)
        for t in range(x.shape[-2]):
            rate = np.maximum(1.0 / (t0 + t + 1), 1.0 / self.tau).astype(np.float32)[..., None]
            m = (m + rate * (x[..., t, :] - m)).astype(np.float32)
            rel[..., t, :] = ((x[..., t, :] - m) / self.scale).astype(np.float32)
        return np.concatenate([x, rel], axis=-1)

    def warm(self, prefix, lengths) -> tuple[np.ndarray, np.ndarray]:
        """The state a stream reaches from power-on through the last ``lengths[i]`` frames
        of ``prefix[i]`` (batch, L, channels): (running mean (batch, channels), frames seen
        (batch,)) — ``apply``'s ``m0`` and ``t0`` for a clip heard after that audio."""
        x = np.asarray(prefix, np.float32)
        n = np.asarray(lengths, np.int64)
        if x.ndim != 3 or n.shape != x.shape[:1] or np.any(n < 0) or np.any(n > x.shape[1]):
            raise ValueError(f"RunningNorm.warm: prefix {x.shape} and lengths {n.shape} in 0..{x.shape[1]} "
                             "expected as (batch, frames, channels) and (batch,)")
        L = x.shape[1]
        m = np.zeros((len(x), self.channels), np.float32)
        for t in range(L):
            k = t - (L - n)                      # this frame's index in example i's own prefix
            on = k >= 0
            rate = np.maximum(1.0 / (np.maximum(k, 0) + 1), 1.0 / self.tau).astype(np.float32)[:, None]
            m = np.where(on[:, None], (m + rate * (x[:, t, :] - m)).astype(np.float32), m)
        return m, n


class Delta:
    """Causal delta features: per channel the first-order difference across frames,
    ``[f_t, (f_t - f_{t-1}) / scale]`` (2 * channels); at a fresh state (a clip's first
    frame, a stream's first frame after power-on) the previous frame is the frame itself, so
    the first difference is 0. One frame of memory: a stream and a clip agree from the second
    frame on, whatever came before. ``push`` (one frame) and ``apply`` (whole clips, frames
    along axis -2) compute the same float32 values."""

    def __init__(self, channels: int, scale=None):
        self.channels = int(channels)
        self.scale = np.ones(self.channels, np.float32) if scale is None else np.asarray(scale, np.float32)
        if self.scale.shape != (self.channels,) or not np.all(self.scale > 0):
            raise ValueError(f"Delta: scale must be {self.channels} positive values, got shape {self.scale.shape}")
        self.reset()

    def reset(self):
        self.prev = None

    def push(self, f) -> np.ndarray:
        f = np.asarray(f, np.float32)
        prev = f if self.prev is None else self.prev
        self.prev = f.copy()
        return np.concatenate([f, ((f - prev) / self.scale).astype(np.float32)])

    def apply(self, frames) -> np.ndarray:
        """(..., T, channels) -> (..., T, 2 * channels), each clip from a fresh state."""
        x = np.asarray(frames, np.float32)
        prev = np.concatenate([x[..., :1, :], x[..., :-1, :]], axis=-2)
        return np.concatenate([x, ((x - prev) / self.scale).astype(np.float32)], axis=-1)


class VoiceFrontEnd:
    """A voice graph's front end, as its metadata describes it: ``LogMel`` normalised by
    ``logmel_mean``/``logmel_std``, then at most one stage — ``RunningNorm(cmn_tau,
    cmn_scale)`` when the metadata has ``cmn_tau`` (tried in docs/voice.md's "Recipes of round
    4", not shipped), ``Delta(delta_scale)`` when it has ``delta_scale`` (round 6), or
    ``OnOff(onoff_delta, onoff_level, onoff_amplitude)`` when it has ``onoff_delta`` (round 19). ``push``,
    ``features`` and ``reset`` as ``LogMel``'s; ``from_logmel`` applies the rest to normalised
    log-mel frames already computed (a data set's). ``level``: whether the inputs begin with
    the normalised log-mel frames themselves (all but ON/OFF alone)."""

    STAGES = ("cmn_tau", "delta_scale", "onoff_delta")

    def __init__(self, metadata):
        n = len(metadata["logmel_mean"])
        self.logmel = LogMel(n, metadata["logmel_mean"], metadata["logmel_std"])
        given = [k for k in self.STAGES if metadata.get(k) is not None]
        if len(given) > 1:
            raise ValueError(f"VoiceFrontEnd: metadata with both {' and '.join(given)} (one stage at most: "
                             f"{', '.join(self.STAGES)})")
        tau, dscale, oo = (metadata.get(k) for k in self.STAGES)
        self.norm = None if tau is None else RunningNorm(n, tau, metadata["cmn_scale"])
        self.delta = None if dscale is None else Delta(n, dscale)
        self.onoff = None if oo is None else OnOff(n, oo, bool(metadata.get("onoff_level", False)),
                                                   float(metadata.get("onoff_amplitude", 1.0)))
        self.n_out = (self.onoff.n_out if self.onoff is not None
                      else n * (1 if self.norm is None and self.delta is None else 2))
        self.level = self.onoff is None or self.onoff.level

    @property
    def stage(self):
        """The stage after the log-mel frames (RunningNorm, Delta, OnOff or None)."""
        return next((s for s in (self.norm, self.delta, self.onoff) if s is not None), None)

    def reset(self):
        self.logmel.reset()
        if self.stage is not None:
            self.stage.reset()

    def push(self, chunk) -> np.ndarray:
        f = self.logmel.push(chunk)
        return f if self.stage is None else self.stage.push(f)

    def from_logmel(self, frames) -> np.ndarray:
        return np.asarray(frames, np.float32) if self.stage is None else self.stage.apply(frames)

    def features(self, wav) -> np.ndarray:
        return self.from_logmel(self.logmel.features(wav))


FRONT_KEYS = ("logmel_mean", "logmel_std", "frontend", "cmn_tau", "cmn_scale", "delta_scale", "onoff_delta",
              "onoff_level", "onoff_amplitude")


def graph_front_end(graph) -> dict:
    """The front-end part of a voice graph's metadata (``recipes.prepare``'s): the statistics and
    settings that turn audio into the inputs the network was trained on."""
    return {k: graph.metadata[k] for k in FRONT_KEYS if k in graph.metadata}


def front_end_differences(a: dict, b: dict) -> list[str]:
    """The keys in which two front ends (``graph_front_end``'s) differ, sorted: [] when a
    network trained on one reads its inputs as one trained on the other does."""
    return sorted(k for k in set(a) | set(b)
                  if k not in a or k not in b or not np.array_equal(np.asarray(a[k]), np.asarray(b[k])))
