"""Test helper: what a follower's per-frame log says about its estimate."""
import numpy as np


def lost_seconds(frames, end):
    """Seconds in [0, end] without an estimate, from a per-frame log of (t, true bearing, visible,
    estimate or NaN, distance) in which each frame's estimate holds until the next frame."""
    t = [f[0] for f in frames] + [end]
    lost = t[0]
    for i, f in enumerate(frames):
        if not np.isfinite(f[3]):
            lost += t[i + 1] - t[i]
    return lost
