"""What tianrt's NIR files hold: the tianrt <-> NIR conventions shared by export and import.

NIR describes neurons in continuous time (tau, r, v_leak, v_threshold, v_reset); tianrt
steps them with a fixed tick ``dt``. The two are tied by the forward-Euler step that
snnTorch, Norse and SpikingJelly use (docs/interop.md §2):

    LIF/LI:   beta = 1 - dt/tau,  input gain g = dt*r/tau,  bias per tick c = dt*v_leak/tau
    IF/I:     beta = 1,           input gain g = dt*r
    CubaLIF:  alpha = 1 - dt/tau_syn, beta = 1 - dt/tau_mem, g = (dt/tau_syn)*w_in*(dt*r/tau_mem)
    firing:   NIR fires when v > v_threshold, tianrt when v >= threshold: in float32 the two
              agree exactly with threshold = the next float32 above v_threshold.

Gains are folded into the synapse that feeds the neuron (or a diagonal synapse is inserted).
What NIR cannot say (ANN layers, max pooling, bridges, subtractive reset, refractory
periods, initial membranes) is written as ``tianrt.Extension`` nodes or as ``tianrt``
node metadata, so tianrt -> NIR -> tianrt is lossless; ``to_nir`` lists what other
readers will refuse or read differently.
"""
from __future__ import annotations

import json

import numpy as np

F32 = np.float32
META = "tianrt"  # metadata key of every node tianrt writes: JSON of what NIR cannot hold
EXT = "tianrt.Extension"  # NIR node type of tianrt nodes without a NIR counterpart
PEERS = "snnTorch, Norse, SpikingJelly, Sinabs, Lava-dl, Rockpool and any reader built on nir.read"
GAIN_TOL = 1e-6  # input gains within this of 1 are taken as exactly 1


def full(shape, value):
    return np.full(tuple(shape), value, dtype=F32)


def below(thr):
    """The NIR threshold (v > t) that fires exactly where tianrt's v >= thr does (float32;
    a number or one value per neuron)."""
    t = np.nextafter(np.asarray(thr, F32), F32(-np.inf))
    return float(t) if t.ndim == 0 else t


def above(thr) -> np.ndarray:
    """The tianrt threshold (v >= t) that fires exactly where NIR's v > thr does (float32)."""
    return np.nextafter(np.asarray(thr, F32), F32(np.inf))


def jsonable(v):
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def as_str(v) -> str:
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


def meta_of(d) -> dict:
    raw = (d.get("metadata") or {}).get(META)
    if raw is None:
        return {}
    try:
        return json.loads(as_str(raw))
    except json.JSONDecodeError:
        return {}
