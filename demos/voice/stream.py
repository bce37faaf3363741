"""The streaming detector: audio in 10 ms chunks -> log-mel frame -> one tick of the voice
graph -> smoothed readout probabilities -> a detection when a command's probability
crosses the threshold (then a refractory second). Measured on continuous audio: commands
embedded in background noise (hits, latency from the end of the command) and background
alone (false alarms per hour), and the real-time factor of front end + graph."""
from __future__ import annotations

import time

import numpy as np

import tianrt as tr

from . import data as D
from .frontend import HOP, SR, LogMel

BG = D.CLASSES.index("background")
UNKNOWN = D.CLASSES.index("unknown")


class Detector:
    """Per tick: p = softmax(readout), smoothed over ``k`` ticks; a detection of class c
    (a command, not unknown or background) when p_c >= threshold, then ``refractory``
    ticks without detections."""

    def __init__(self, graph, mean, std, threshold=0.5, k=5, refractory=100, backend="numba"):
        self.rt = tr.Runtime(graph, backend=backend)
        self.fe = LogMel(mean=mean, std=std)
        self.threshold, self.k, self.refractory = float(threshold), int(k), int(refractory)
        self.hist = []
        self.quiet = 0
        self.tick = 0
        self.graph_seconds = 0.0  # time spent in the graph's ticks alone

    def push(self, chunk):
        """One 10 ms chunk; returns the detected class or None."""
        f = self.fe.push(chunk)
        t0 = time.perf_counter()
        y = self.rt.step({"x": f[None]})["y"][0].astype(np.float64)
        self.graph_seconds += time.perf_counter() - t0
        p = np.exp(y - y.max())
        p /= p.sum()
        self.hist.append(p)
        if len(self.hist) > self.k:
            self.hist.pop(0)
        self.tick += 1
        if self.quiet > 0:
            self.quiet -= 1
            return None
        ps = np.mean(self.hist, axis=0)
        ps[BG] = ps[UNKNOWN] = 0.0
        c = int(ps.argmax())
        if ps[c] >= self.threshold:
            self.quiet = self.refractory
            return c
        return None


def background_audio(seconds, rng, bank):
    """Continuous background: 2 s pieces of the data set's noises at random levels."""
    out = []
    for _ in range(int(np.ceil(seconds / 2))):
        kind = D.NOISES[rng.integers(len(D.NOISES))]
        out.append(D.noise(kind, 2 * SR, rng, bank) * 0.05 * 10 ** rng.uniform(-1, 0.5))
    return np.concatenate(out)[:int(seconds * SR)].astype(np.float32)


def command_audio(n, rng, bank, accents=D.ACCENTS_TEST, variants=D.VARIANTS_TEST):
    """n commands by held-out voices, one every 3 s over background noise at 0-20 dB SNR;
    returns (audio, [(class, end sample)])."""
    bgs = background_audio(3 * n, rng, bank)
    events = []
    for i in range(n):
        c = int(rng.integers(len(D.COMMANDS)))
        w = D.utter(D.COMMANDS[c], accents[rng.integers(len(accents))], variants[rng.integers(len(variants))], rng)
        start = i * 3 * SR + int(rng.integers(int(0.5 * SR), int(1.5 * SR)))
        seg = bgs[start:start + len(w)]
        noise_rms = np.sqrt(np.mean(bgs[i * 3 * SR:(i + 1) * 3 * SR] ** 2)) + 1e-9
        snr = rng.uniform(0, 20)
        bgs[start:start + len(w)] = seg + w * (noise_rms * 10 ** (snr / 20) / (np.sqrt(np.mean(w ** 2)) + 1e-9))
        events.append((c, start + len(w)))
    return np.clip(bgs, -1, 1).astype(np.float32), events


def run(det, audio):
    """Feed the audio chunk by chunk; returns [(class, tick)] and the seconds it took."""
    t0 = time.perf_counter()
    out = []
    for k in range(len(audio) // HOP):
        c = det.push(audio[k * HOP:(k + 1) * HOP])
        if c is not None:
            out.append((c, k))
    return out, time.perf_counter() - t0


def score(detections, events, window_s=1.0):
    """Hits (right class within window_s after the end), latencies (ms), wrong detections."""
    lat, hits, used = [], 0, set()
    for c, end in events:
        end_tick = end // HOP
        for j, (d, k) in enumerate(detections):
            if j not in used and end_tick - 50 <= k <= end_tick + int(window_s * 100):
                used.add(j)
                if d == c:
                    hits += 1
                    lat.append(max(0, (k + 1) * HOP - end) * 1000.0 / SR)
                break
    return hits, lat, len(detections) - len(used)
