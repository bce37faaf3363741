"""The voice SNN in integer (chip) mode: ``tr.quantize`` of the float graph, calibrated on the
log-mel frames of the shipped clips (``demos/data/voice_*.wav``), so that the integer graph can
be made anywhere, without the generated data set.

The recurrent ALIF layer reads the log-mel frames as an int8 current beside its own 0/1
spikes; ``tr.quantize`` gives the feed-forward product its own int8 weight scale per neuron
and rescales it to the membrane's unit before the recurrent product is added
(docs/integer.md, ``q.SynRecurrent``). docs/voice.md has the measured accuracy.
"""
from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

import tianrt as tr

DATA = Path(__file__).resolve().parent.parent / "data"
SKIP = 3  # the first frames of a clip read the zero history before it


def clip_frames(graph) -> np.ndarray:
    """The front-end frames (n, inputs) of the shipped clips, by the graph's own front end
    (normalised log-mel, and the running normalisation when the graph has one)."""
    from .frontend import VoiceFrontEnd

    fe = VoiceFrontEnd(graph.metadata)
    frames = []
    for c in json.loads((DATA / "voice_clips.json").read_text()):
        with wave.open(str(DATA / c["file"])) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
        frames.append(fe.features(x)[SKIP:])
    return np.concatenate(frames).astype(np.float32)


def training_frames(d, seed: int, n: int = 4096) -> np.ndarray:
    """``n`` front-end frames (n, inputs) drawn without replacement, seeded, from the training
    clips ``d["train_x"]`` of a prepared data set (all of them when there are fewer): the
    calibration of ``quantized`` for ``accuracy_int8``."""
    frames = d["train_x"].reshape(-1, d["train_x"].shape[-1])
    return frames[np.random.default_rng(seed).choice(len(frames), min(n, len(frames)), replace=False)]


def quantized(graph=None, calibration=None) -> tr.Graph:
    """The integer voice graph (``graph``: the float one, default the shipped model;
    ``calibration``: frames (n, 32), default ``clip_frames``)."""
    if graph is None:
        graph = tr.load(str(DATA / "voice_snn.tnr"))  # voice.SHIPPED
    frames = clip_frames(graph) if calibration is None else np.asarray(calibration, np.float32)
    q = tr.quantize(graph, {"x": frames}, ticks=1, max_samples=len(frames), name=f"{graph.name}-int8")
    q.metadata.update({k: v for k, v in graph.metadata.items() if k not in q.metadata})
    return q
