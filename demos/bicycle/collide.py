"""Collisions between the bicycle and the world's solid things (obstacles and the person).

The bicycle's footprint is a capsule seen from above: the segment from the back of the rear
wheel (``rR`` behind the rear contact) to the front of the front wheel (``w + rF`` ahead of
it) along the heading, widened by ``HALF_WIDTH`` (handlebar and rider) on every side. A cone is
a disc of its base diameter, a box a square of its side turned by its yaw, the person a disc
of ``PERSON_RADIUS``. A ride whose footprint touches one of them ends as a crash, counted
apart from falls (``run.RunResult.collisions``); the smallest gap to an obstacle over a ride is
its ``closest_obstacle``.
"""
from __future__ import annotations

import math

import numpy as np

HALF_WIDTH = 0.3      # half the width of the bicycle with its rider [m]
PERSON_RADIUS = 0.3   # the walking person seen from above [m]
NEAR_MISS_M = 0.25    # a ride that passed an obstacle closer than this without touching it [m]
_SAMPLES = 9          # points along the footprint's axis (spacing < HALF_WIDTH for the benchmark bicycle)


class Collider:
    """Checks the footprint against a scenario's obstacles (static) and target (moving)."""

    def __init__(self, scenario):
        b = scenario.bicycle
        self.back, self.front = float(b.rR), float(b.w + b.rF)
        obs = scenario.obstacles
        self.kind = np.array([o.kind == "box" for o in obs], bool)
        self.xy = np.array([[o.x, o.y] for o in obs], float).reshape(-1, 2)
        self.half = np.array([o.size / 2 for o in obs], float)
        self.cos = np.array([math.cos(o.yaw) for o in obs], float)
        self.sin = np.array([math.sin(o.yaw) for o in obs], float)
        self.target = scenario.target
        self.reach = self.front + self.back + HALF_WIDTH   # bound for a quick distance filter
        # the filter per obstacle on plain floats: (x, y, distance within which it is checked)
        self._near = [(float(px), float(py), float(self.reach + h * 1.5)) for (px, py), h in zip(self.xy, self.half)]

    def axis(self, x: float, y: float, heading: float) -> np.ndarray:
        """(SAMPLES, 2) points on the footprint's axis."""
        c, s = math.cos(heading), math.sin(heading)
        a = np.linspace(-self.back, self.front, _SAMPLES)
        return np.stack([x + a * c, y + a * s], axis=1)

    def _gaps(self, pts: np.ndarray, i: int) -> np.ndarray:
        """Distance from each footprint axis point to obstacle i's outline [m] (0 inside it)."""
        d = pts - self.xy[i]
        if self.kind[i]:   # box: distance to a square in its own frame
            u = np.abs(d[:, 0] * self.cos[i] + d[:, 1] * self.sin[i]) - self.half[i]
            v = np.abs(-d[:, 0] * self.sin[i] + d[:, 1] * self.cos[i]) - self.half[i]
            return np.hypot(np.maximum(u, 0), np.maximum(v, 0))
        return np.maximum(np.hypot(d[:, 0], d[:, 1]) - self.half[i], 0.0)

    def hits(self, x: float, y: float, heading: float, t: float) -> list:
        """Indices of the obstacles the footprint touches at this pose, plus ``"person"`` if it
        touches the target at time t."""
        out = []
        if self._near:
            # a filter with room to spare (reach + 1.5 half sizes): the exact test below decides
            near = [i for i, (px, py, r) in enumerate(self._near) if math.hypot(px - x, py - y) < r]
            if near:
                pts = self.axis(x, y, heading)
                out = [int(i) for i in near if self._gaps(pts, i).min() < HALF_WIDTH]
        if self.target is not None:
            tx, ty, _ = self.target.position(t)
            if math.hypot(tx - x, ty - y) < self.reach + PERSON_RADIUS:
                d = self.axis(x, y, heading) - (tx, ty)
                if np.hypot(d[:, 0], d[:, 1]).min() < HALF_WIDTH + PERSON_RADIUS:
                    out.append("person")
        return out

    def clearance(self, x: float, y: float, heading: float, within: float = 3.0) -> tuple:
        """(gap, index) to the nearest obstacle (not the person) at this pose: the free space
        between the footprint and its outline [m], 0 when touching; ``(inf, None)`` when no
        obstacle is within ``within`` metres of the footprint. The rides report its smallest
        value as ``closest_obstacle``."""
        best, arg, pts = math.inf, None, None
        for i, (px, py, r) in enumerate(self._near):
            if math.hypot(px - x, py - y) < r + within:
                pts = self.axis(x, y, heading) if pts is None else pts
                g = max(float(self._gaps(pts, i).min()) - HALF_WIDTH, 0.0)
                if g < best and g <= within:
                    best, arg = g, i
        return best, arg


def near_miss(ride: dict) -> bool:
    """Whether a ride (``RunResult.summary()``) came within NEAR_MISS_M of an obstacle without a
    crash: counted beside the crashes when two codes are compared. (On the errand they are about
    as rare as the crashes, one ride in a hundred: docs/bicycle.md, round 17.)"""
    c = ride.get("closest_obstacle")
    return not ride["collisions"] and c is not None and c["gap_m"] < NEAR_MISS_M
