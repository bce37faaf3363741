"""Audio source: a wav file (PCM 8/16/24/32-bit, read by tianrt.stream.wavfile) or an array,
delivered in chunks.

Samples are floats in [-1, 1). Chunk k holds samples [k·chunk, (k+1)·chunk) and is stamped
at its end, (k+1)·chunk / sample_rate: that is when a microphone would have it complete.
The chunk size comes from the input's shape unless given: an input of shape ``(chunk,)``
gets mono (channels averaged), ``(channels, chunk)`` gets channels first. A last partial
chunk is padded with zeros (counted in ``padded``). The file is read chunk by chunk, so
long recordings stream without being loaded whole, up to the real end of its data (not the
frame count its header claims).

The sample rate is checked against the graph: an input of 160 samples declared at 100 Hz
takes 16 000 Hz audio (or give ``target_rate=``). Audio at another rate is refused, unless
``resample=True``: then it is resampled with a polyphase Kaiser-windowed sinc
(tianrt.stream.resample).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import END, StreamError, TimedSource
from .wavfile import WavError, WavFile


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
    """Chunks of a wav file or an array. ``sample_rate``: the rate of an array (for a file,
    if given, the rate the file must have). ``target_rate``: the rate the network takes (by
    default the bound input's declared rate times its chunk, when it declares one).
    ``resample=True`` converts audio at another rate instead of refusing it."""

    kind = "audio"
    default_policy = "queue"

    def __init__(self, data, *, sample_rate: int | None = None, chunk: int | None = None,
                 gain: float = 1.0, target_rate: int | None = None, resample: bool = False, **kw):
        if kw.get("rate_hz") is not None:
            raise StreamError("AudioSource: the rate follows from sample_rate / chunk; do not give rate_hz")
        super().__init__(**kw)
        self.gain = float(gain)
        self.chunk = None if chunk is None else int(chunk)
        self.mono = None
        self.resample = bool(resample)
        self._wav = None
        if isinstance(data, (str, Path)):
            self.path = Path(data)
            try:
                w = WavFile(self.path)
            except FileNotFoundError:
                raise StreamError(f"audio source `{self.name}`: no file {str(data)!r}") from None
            except WavError as exc:
                raise StreamError(f"audio source `{self.name}`: {str(data)!r} is not a PCM wav file "
                                  f"({exc})") from None
            self.sample_rate, self.channels, self.width = w.rate, w.channels, w.width
            if sample_rate is not None and int(sample_rate) != self.sample_rate:
                raise StreamError(f"audio source `{self.name}`: {str(data)!r} is {self.sample_rate} Hz, "
                                  f"not {sample_rate}; to convert it give target_rate={sample_rate} "
                                  "and resample=True")
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
            self.sample_rate, self.channels = int(sample_rate), a.shape[1]
        if self.sample_rate <= 0:
            raise StreamError(f"audio source `{self.name}`: sample rate must be positive")
        self.target_rate = None
        self._rate_from = "target_rate="
        if target_rate is not None:
            if not (target_rate > 0 and float(target_rate).is_integer()):
                raise StreamError(f"audio source `{self.name}`: target_rate must be a whole number "
                                  f"of Hz, got {target_rate!r}")
            self.target_rate = int(target_rate)
            self._check_rate()

    def _what(self) -> str:
        what = repr(str(self.path)) if self.path is not None else "the array"
        return f"{what} is {self.sample_rate} Hz ({self.channels} channel(s))"

    def _check_rate(self) -> None:
        if self.target_rate is not None and self.target_rate != self.sample_rate and not self.resample:
            raise StreamError(
                f"audio source `{self.name}`: {self._what()}, but {self._rate_from} takes "
                f"{self.target_rate} Hz; refused rather than played at the wrong speed: give "
                f"resample=True (--resample) to convert it, or use a {self.target_rate} Hz recording")

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

    def fit_rate(self, rate_hz, label):
        want = rate_hz * self.chunk
        if abs(want - round(want)) > 1e-6 * want:
            raise StreamError(f"audio source `{self.name}`: input `{label}` takes {self.chunk} samples "
                              f"at {rate_hz:g} Hz = {want:g} samples/s, not a whole number of Hz")
        want = int(round(want))
        if self.target_rate is not None and self.target_rate != want:
            raise StreamError(f"audio source `{self.name}`: target_rate={self.target_rate}, but input "
                              f"`{label}` takes {self.chunk} samples at {rate_hz:g} Hz = {want} Hz")
        self.target_rate = want
        self._rate_from = f"input `{label}` ({self.chunk} samples at {rate_hz:g} Hz)"
        self._check_rate()

    def open(self, clock, dt):
        from .resample import Resampler

        if self.chunk is None:
            raise StreamError(f"audio source `{self.name}`: give chunk= (samples per value)")
        if self.mono is None:
            self.mono = self.channels == 1
        out_rate = self.target_rate or self.sample_rate
        self.rate_hz = out_rate / self.chunk
        self.extra = {"padded": 0, "sample_rate": out_rate}
        ch = 1 if self.mono else self.channels
        self._resampler = None
        if out_rate != self.sample_rate:
            self._resampler = Resampler(self.sample_rate, out_rate, ch)
            self.extra["resampled_from"] = self.sample_rate
        if self.path is not None:
            if self._wav is not None:
                self._wav.close()
            self._wav = WavFile(self.path)
        self._pos = 0  # samples of the data read so far
        self._pend = np.zeros((0, ch), np.float32)
        self._done = False
        self._k = 0
        self.ended = False
        self._fill()
        self.ended = not len(self._pend)

    def _time_of(self, k):
        return self.start + (k + 1) * self.chunk / (self.target_rate or self.sample_rate)

    def _block(self, n: int) -> np.ndarray:
        """The next ``n`` samples of the data (fewer at its real end), mixed to mono if wanted."""
        if self._wav is not None:
            raw = self._wav.read(n)  # whole frames, to the real end of the data
            x = _decode(raw, self.width, self.channels)
        else:
            x = self.array[self._pos:self._pos + n]
        self._pos += len(x)
        if self.mono and self.channels > 1:
            x = x.mean(axis=1, dtype=np.float32, keepdims=True)
        elif self.mono:
            x = x[:, :1]
        return x

    def _fill(self) -> None:
        """Read until one chunk more than a chunk is pending, or the data has ended."""
        while not self._done and len(self._pend) <= self.chunk:
            n = max(self.chunk, 1024)
            if self._resampler is not None:
                n = n * self._resampler.down // self._resampler.up + 1
            x = self._block(n)
            if len(x) < n:
                self._done = True
            if self._resampler is not None:
                y = self._resampler.feed(x)
                if self._done:
                    y = np.concatenate([y, self._resampler.flush()])
                x = y
            if len(x):
                self._pend = np.concatenate([self._pend, x])

    def _read(self, k, ts):
        self._fill()
        if not len(self._pend):
            return END
        x, self._pend = self._pend[:self.chunk], self._pend[self.chunk:]
        if len(x) < self.chunk:
            x = np.concatenate([x, np.zeros((self.chunk - len(x), x.shape[1]), np.float32)])
            self.extra["padded"] += 1
        if self.gain != 1.0:
            x = x * np.float32(self.gain)
        if self.mono:
            return np.ascontiguousarray(x[:, 0])
        return np.ascontiguousarray(x.T)

    def poll(self, t):
        out = super().poll(t)
        self._fill()
        if self._done and not len(self._pend):
            self.ended = True
        return out

    def close(self):
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def describe(self):
        what = str(self.path) if self.path is not None else "array"
        rate = f"{self.sample_rate} Hz"
        if self.target_rate and self.target_rate != self.sample_rate:
            rate += f" resampled to {self.target_rate} Hz"
        return f"{what}, {rate} x {self.channels}, chunks of {self.chunk}"
