"""Audio source: a wav file (read with the standard library's ``wave``, PCM 8/16/24/32-bit)
or an array, delivered in chunks.

Samples are floats in [-1, 1). Chunk k holds samples [k·chunk, (k+1)·chunk) and is stamped
at its end, (k+1)·chunk / sample_rate: that is when a microphone would have it complete.
The chunk size comes from the input's shape unless given: an input of shape ``(chunk,)``
gets mono (channels averaged), ``(channels, chunk)`` gets channels first. A last partial
chunk is padded with zeros (counted in ``padded``). The file is read chunk by chunk, so
long recordings stream without being loaded whole.
"""
from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

from .base import END, StreamError, TimedSource


def _decode(raw: bytes, width: int, channels: int) -> np.ndarray:
    """PCM bytes -> float32 (n, channels) in [-1, 1)."""
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    else:
        raise ValueError(f"{8 * width}-bit samples")
    return x.reshape(-1, channels)


class AudioSource(TimedSource):
    kind = "audio"
    default_policy = "queue"

    def __init__(self, data, *, sample_rate: int | None = None, chunk: int | None = None,
                 gain: float = 1.0, **kw):
        if kw.get("rate_hz") is not None:
            raise StreamError("AudioSource: the rate follows from sample_rate / chunk; do not give rate_hz")
        super().__init__(**kw)
        self.gain = float(gain)
        self.chunk = None if chunk is None else int(chunk)
        self.mono = None
        self._wav = None
        if isinstance(data, (str, Path)):
            self.path = Path(data)
            try:
                with wave.open(str(self.path), "rb") as w:
                    self.sample_rate = w.getframerate()
                    self.channels = w.getnchannels()
                    self.width = w.getsampwidth()
                    self.frames = w.getnframes()
            except FileNotFoundError:
                raise StreamError(f"audio source `{self.name}`: no file {str(data)!r}") from None
            except (wave.Error, EOFError) as exc:
                raise StreamError(f"audio source `{self.name}`: {str(data)!r} is not a PCM wav file "
                                  f"({exc})") from None
            if self.width not in (1, 2, 3, 4):
                raise StreamError(f"audio source `{self.name}`: {str(data)!r} has {8 * self.width}-bit "
                                  "samples; 8, 16, 24 or 32-bit PCM is supported")
            if sample_rate is not None and int(sample_rate) != self.sample_rate:
                raise StreamError(f"audio source `{self.name}`: {str(data)!r} is {self.sample_rate} Hz, "
                                  f"not {sample_rate}; resample the file first")
            self.array = None
        else:
            if sample_rate is None:
                raise StreamError(f"audio source `{self.name}`: an array needs sample_rate=")
            a = np.asarray(data, np.float32)
            if a.ndim == 1:
                a = a[:, None]
            if a.ndim != 2:
                raise StreamError(f"audio source `{self.name}`: an array must be (samples,) or "
                                  f"(samples, channels), got shape {a.shape}")
            if not np.isfinite(a).all():
                raise StreamError(f"audio source `{self.name}`: the array holds NaN or inf")
            self.path, self.array = None, a
            self.sample_rate, self.channels, self.frames = int(sample_rate), a.shape[1], a.shape[0]
        if self.sample_rate <= 0:
            raise StreamError(f"audio source `{self.name}`: sample rate must be positive")

    def fit(self, shape, domain):
        shape = tuple(shape)
        if len(shape) == 1:
            chunk, self.mono = shape[0], True
        elif len(shape) == 2 and shape[0] == self.channels:
            chunk, self.mono = shape[1], False
        else:
            raise StreamError(f"audio source `{self.name}` ({self.channels} channel(s)) cannot feed an "
                              f"input of shape {shape}; use (chunk,) for mono or "
                              f"({self.channels}, chunk)")
        if self.chunk is not None and self.chunk != chunk:
            raise StreamError(f"audio source `{self.name}`: chunk={self.chunk} but the input takes "
                              f"{chunk} samples per value")
        self.chunk = chunk

    def open(self, clock, dt):
        if self.chunk is None:
            raise StreamError(f"audio source `{self.name}`: give chunk= (samples per value)")
        if self.mono is None:
            self.mono = self.channels == 1
        self.rate_hz = self.sample_rate / self.chunk
        self.n_chunks = math.ceil(self.frames / self.chunk)
        self.extra = {"padded": 0}
        if self.path is not None and self._wav is None:
            self._wav = wave.open(str(self.path), "rb")
        self._k = 0
        self.ended = self.n_chunks == 0

    def _time_of(self, k):
        return self.start + (k + 1) * self.chunk / self.sample_rate

    def _read(self, k, ts):
        if k >= self.n_chunks:
            return END
        if self._wav is not None:
            x = _decode(self._wav.readframes(self.chunk), self.width, self.channels)
        else:
            x = self.array[k * self.chunk:(k + 1) * self.chunk]
        if len(x) < self.chunk:
            x = np.concatenate([x, np.zeros((self.chunk - len(x), self.channels), np.float32)])
            self.extra["padded"] += 1
        if self.gain != 1.0:
            x = x * np.float32(self.gain)
        if self.mono:
            return x[:, 0].copy() if self.channels == 1 else x.mean(axis=1, dtype=np.float32)
        return np.ascontiguousarray(x.T)

    def poll(self, t):
        out = super().poll(t)
        if self._k >= self.n_chunks:
            self.ended = True
        return out

    def close(self):
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def describe(self):
        what = str(self.path) if self.path is not None else "array"
        return f"{what}, {self.sample_rate} Hz x {self.channels}, chunks of {self.chunk}"
