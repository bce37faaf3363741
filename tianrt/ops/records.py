"""Helpers for chip core records (the soma stages of the image, docs/image-format.md):
parameters that are one integer or an array of one value per neuron of the core.

A scalar parameter is a JSON integer; a per-neuron one is ``{"array": id}``, the id of an
int32 array of the image. The compiler writes records with ``put``, the emulator reads them
with ``get``, which checks type, size and range and raises ``RecordError`` (a ValueError:
the emulator refuses the image with BAD_IMAGE and names the field).
"""
from __future__ import annotations

import numpy as np


class RecordError(ValueError):
    """A core record field that is missing, of the wrong type or out of range."""


def put(value, shape, sel, arr):
    """Record form of a (possibly per-neuron) integer parameter for the neurons ``sel``
    (flat indices into ``shape``); ``arr(array, dtype) -> id`` stores an image array."""
    if not isinstance(value, np.ndarray):
        return int(value)
    flat = np.broadcast_to(value, tuple(shape)).reshape(-1)[np.asarray(sel)]
    return {"array": arr(flat, np.int32)}


def get(rec: dict, key: str, arrays, n: int, lo: int, hi: int, *, optional=False, per_neuron=False):
    """A parameter of a record: an int in [lo, hi], or (``per_neuron``) an int32 array of
    n such values. ``optional``: JSON null (None) is allowed and returned as None."""
    if key not in rec:
        raise RecordError(f"{rec.get('op')} record: missing field {key!r}")
    v = rec[key]
    if v is None and optional:
        return None
    if isinstance(v, dict) and per_neuron:
        aid = v.get("array")
        if set(v) != {"array"} or not isinstance(aid, int) or isinstance(aid, bool) or not 0 <= aid < len(arrays):
            raise RecordError(f"{rec.get('op')} record: {key} must be an integer or {{'array': id}}, got {v!r}")
        a = arrays[aid]
        if a.dtype != np.int32 or a.shape != (n,):
            raise RecordError(f"{rec.get('op')} record: {key} array is {a.dtype} {a.shape}, expected int32 ({n},)")
        if a.size and (a.min() < lo or a.max() > hi):
            raise RecordError(f"{rec.get('op')} record: {key} values must lie in [{lo}, {hi}]")
        return np.array(a)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise RecordError(f"{rec.get('op')} record: {key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def get_bool(rec: dict, key: str) -> bool:
    v = rec.get(key)
    if not isinstance(v, bool):
        raise RecordError(f"{rec.get('op')} record: {key} must be true or false, got {v!r}")
    return v


def check_fields(rec: dict, node, n: int) -> None:
    """A record holds exactly the fields its op family writes for ``node`` (decoded from
    it): an unknown field is refused, not ignored (RecordError naming it)."""
    from .registry import find
    want = set(find("chip_stage", node)(node, (n,), np.arange(n), lambda a, dtype: 0))
    extra, missing = sorted(set(rec) - want), sorted(want - set(rec))
    if extra or missing:
        raise RecordError(f"{rec.get('op')} record: " + "; ".join(
            part for part in (f"unknown field(s) {extra}" if extra else "",
                              f"missing field(s) {missing}" if missing else "") if part)
            + f" (a {rec.get('op')} record has {sorted(want)})")
