"""Obstacle avoidance from the vision network's sectors: a local occupancy map and a planner.

``ObstacleMap`` accumulates the sector evidence of every camera frame in a log-odds grid in
the *estimated* world frame (the dead-reckoned pose): a sector that reports its nearest
obstacle at d metres marks the cells of that sector at d (within a tolerance) as occupied and
the cells nearer than an obstacle read at d can be (``nearest_possible``) as free; a sector
that reports nothing marks its cells free up to ``FREE_RANGE``. A single false detection does
not reach the occupied threshold; a missed frame does not erase an obstacle seen before. Both
kinds of evidence weigh by range, as the CNN's measured sensor model says (``free_weight``,
``occupied_weight``): it misses an obstacle 8-15 m away in a third to two thirds of the
frames, so "nothing there" at that range is weak evidence (a box mapped at 10 m is not erased
by the frames that miss it), and its false reports, rare near, are several times likelier
far, so a far reading adds less than a near one.

Because detections and the bicycle's pose live in the same estimated frame, the drift of the
dead reckoning (metres over a ride) does not misplace an obstacle relative to the bicycle; it
only shifts the whole scene against the true path.

``plan`` chooses a lateral offset from the path (in the same frame) by scoring candidate
trajectories — from the bicycle's lateral position, blending to the offset over a few metres —
against the occupied cells with a clearance ``CLEARANCE``: penetration costs most, then the
size of the offset, then changing it. It also says whether the chosen trajectory is clear and
whether staying on the path would be, so the speed loop slows down while something is in the way.
"""
from __future__ import annotations

import math

import numpy as np

from . import lateral, vision

CELL = 0.25            # grid cell [m]
SIZE = 48.0            # side of the (rolling) map square [m]
L_OCC, L_FREE = 0.9, 0.35  # log-odds added per frame by a detection / removed by free space
L_MIN, L_MAX = -2.0, 4.0
THRESHOLD = 1.6        # occupied above this (two consistent frames within 5 m, four at 12 m)
FREE_RANGE = 13.0      # a sector reporting nothing is free up to here [m]
# The CNN's sensor model (``evaluate_nav --sensor``, validation seeds 2000-2059 and 2100-2129,
# never ridden; measured again for each shipped CNN: these are round 15's): the chance that a
# sector holding an obstacle at this range reports nothing, and that an empty sector does.
MISS_RANGE = (4.0, 5.0, 7.0, 9.0, 11.0, 13.5)   # [m]: <= 4, 4-6, 6-8, 8-10, 10-12, 12-15
MISS_P = (0.08, 0.03, 0.08, 0.21, 0.39, 0.65)
NOTHING_EMPTY = 0.940
# ... and, per range of the reading, the chance that a sector holding an obstacle there reports
# it within the map's tolerance, and that an empty sector reports something at that range.
REPORT_RANGE = (5.0, 7.0, 9.0, 11.0, 13.0)       # [m]: 4-6, 6-8, 8-10, 10-12, 12-14
HIT_P = (0.332, 0.367, 0.251, 0.188, 0.114)
FALSE_P = (0.0039, 0.0078, 0.0122, 0.0164, 0.0195)
# the weights' references: "nothing" within 8 m (the worst miss rate there), a reading at 5 m
_FREE_NEAR = math.log(max(p for r, p in zip(MISS_RANGE, MISS_P) if r <= 8.0) / NOTHING_EMPTY)
_OCCUPIED_NEAR = math.log(HIT_P[0] / FALSE_P[0])
# ... and the 90th percentile of the reported / true distance of an obstacle in MISS_RANGE's
# ranges (nearer than vision.SECTOR_NEAR the label saturates: the ratio is to SECTOR_NEAR)
FAR_P90 = (1.37, 1.47, 1.41, 1.33, 1.19, 1.04)
_REACH = np.maximum(MISS_RANGE, vision.SECTOR_NEAR) * np.asarray(FAR_P90)   # p90 reading of each range [m]
FREE_SHORT = 0.75      # a sector reporting d is free only nearer than this share of d: a quarter of the
                       # CNN's readings were 25-50 % too far (docs/bicycle.md, round 7's sensor model;
                       # round 14's CNN: a quarter 15-24 % or more at 4-12 m)
MIN_VALUE = vision.sector_value(14.0)   # sector values below this report nothing
SATURATED = 0.97       # a sector value this high says only "nearer than SECTOR_NEAR": no update

CLEARANCE = 1.15       # wanted distance from the footprint's axis to an occupied cell centre [m]
OFFSETS = np.arange(-3.0, 3.01, 0.25)
HORIZON = 14.0         # metres of path scored ahead
SWITCH = 20.0          # cost of moving to the other side of the path
SWITCH_BETTER = 0.5    # committed to a side, cross over only to a way with less than this share of its best penetration
CONTACT = 0.65         # a trajectory point this near an occupied cell's centre is contact: the rider's half width
                       # (collide.HALF_WIDTH) and half a cell's diagonal, with 0.15 m to spare [m]
NEAR = 6.0             # a side chosen around something in the way is kept unless it runs into something this near [m]


def free_weight(d):
    """Share of ``L_FREE`` that a free reading of a cell ``d`` metres away removes: the
    log-likelihood ratio of "nothing there" at that range, log(P_miss(d) / P(nothing | empty)),
    relative to its value within 8 m (where the CNN misses at most 8 % of obstacles), in [0, 1].
    1 up to 7 m, 0.61 at 9 m, 0.36 at 11 m, 0.15 from 13.5 m."""
    return np.clip(np.log(np.interp(d, MISS_RANGE, MISS_P) / NOTHING_EMPTY) / _FREE_NEAR, 0.0, 1.0)


def nearest_possible(d):
    """The nearest an obstacle can be [m] that the CNN reads at ``d`` metres, at the 90th
    percentile of its reported / true distance (FAR_P90): an obstacle at t is read up to
    max(t, SECTOR_NEAR) * FAR_P90(t), so the reading rules out t below the inverse of that. 0
    for readings up to 1.37 SECTOR_NEAR (5.5 m): an obstacle anywhere nearer than SECTOR_NEAR,
    where the label saturates, is read that far (a box 2.5 m ahead read at 4.3-5.2 m freed its
    own cells and was hit: errand seeds 2 and 93, round 12). 5.5 m for a reading at 8 m, 7.1 m
    at 10 m, 9.1 m at 12 m (the shipped CNN's sensor model, round 15)."""
    return np.where(np.asarray(d) > _REACH[0], np.interp(d, _REACH, MISS_RANGE), 0.0)


def occupied_weight(d):
    """Share of ``L_OCC`` that a reading at ``d`` metres adds to its cells: the log-likelihood
    ratio of a report there, log(P(hit | obstacle at d) / P(report at d | empty)), relative to
    its value at 5 m, in [0, 1]. 1 up to 5 m, 0.87 at 7 m, 0.55 at 11 m, 0.40 at 13 m and beyond."""
    llr = np.log(np.interp(d, REPORT_RANGE, HIT_P) / np.interp(d, REPORT_RANGE, FALSE_P))
    return np.clip(llr / _OCCUPIED_NEAR, 0.0, 1.0)


class ObstacleMap:
    def __init__(self, cell: float = CELL, size: float = SIZE):
        self.cell = cell
        self.n = int(round(size / cell))
        self.logodds = np.zeros((self.n, self.n), np.float32)
        self.origin = None            # world (x, y) of cell [0, 0]'s corner

    def _recentre(self, x: float, y: float) -> None:
        half = self.n * self.cell / 2
        if self.origin is None:
            self.origin = np.array([x - half, y - half])
            return
        centre = self.origin + half
        if max(abs(x - centre[0]), abs(y - centre[1])) < half / 2:
            return
        shift = np.round((np.array([x, y]) - centre) / self.cell).astype(int)
        new = np.zeros_like(self.logodds)
        sx, sy = shift
        src = self.logodds[max(0, sx):self.n + min(0, sx), max(0, sy):self.n + min(0, sy)]
        new[max(0, -sx):max(0, -sx) + src.shape[0], max(0, -sy):max(0, -sy) + src.shape[1]] = src
        self.logodds = new
        self.origin = self.origin + shift * self.cell

    def centres(self, i, j):
        return self.origin[0] + (np.asarray(i) + 0.5) * self.cell, self.origin[1] + (np.asarray(j) + 0.5) * self.cell

    def update(self, cx: float, cy: float, heading: float, sectors, unknown=None) -> None:
        """One frame's sectors (values as ``vision.sectors_truth``) seen from the camera at
        (cx, cy) with this heading (estimated frame). ``unknown`` (a mask per sector): sectors
        whose reading says nothing either way, left as they are — those whose reading the person
        explained (``vision.Percept.explained``): the person stands there, so they are not free,
        and what the network reported there may be the person. (Marked free, a box the CNN took
        for the person was erased from the map: errand seed 39, the pilot back on the path.)"""
        self._recentre(cx, cy)
        r = vision.SECTOR_RANGE + 1.0    # the cells of the bounding box of the field of view
        a = heading + np.radians([vision.SECTORS[0], 0.5 * vision.SECTORS[0], 0.0,
                                  0.5 * vision.SECTORS[-1], vision.SECTORS[-1]])
        fx, fy = np.append(cx + r * np.cos(a), cx), np.append(cy + r * np.sin(a), cy)
        i0 = max(0, int((fx.min() - self.origin[0]) / self.cell))
        i1 = min(self.n, int((fx.max() - self.origin[0]) / self.cell) + 1)
        j0 = max(0, int((fy.min() - self.origin[1]) / self.cell))
        j1 = min(self.n, int((fy.max() - self.origin[1]) / self.cell) + 1)
        if i0 >= i1 or j0 >= j1:
            return
        gx, gy = self.centres(np.arange(i0, i1)[:, None], np.arange(j0, j1)[None, :])
        dx, dy = gx - cx, gy - cy
        d = np.hypot(dx, dy)
        b = np.degrees(np.arctan2(dy, dx) - heading)
        b = (b + 180.0) % 360.0 - 180.0
        edges = vision.SECTORS
        k = np.searchsorted(edges, b) - 1                 # sector index per cell (-1 / 7: outside)
        inside = (k >= 0) & (k < len(edges) - 1) & (d > 0.5)
        ks = np.clip(k, 0, len(edges) - 2)
        if unknown is not None:
            inside &= ~np.asarray(unknown, bool)[ks]
        s = np.clip(np.asarray(sectors, float), 0.0, 1.0)
        dk = np.where(s >= MIN_VALUE, vision.SECTOR_NEAR / np.maximum(s, 1e-6), np.inf)
        dsec = dk[ks]
        sat = (s >= SATURATED)[ks]
        seen = np.isfinite(dsec)
        tol = np.maximum(0.6, 0.08 * np.where(seen, dsec, 0.0))
        occ = inside & ~sat & seen & (np.abs(d - np.where(seen, dsec, 0.0)) <= tol)
        free_to = np.where(seen, np.minimum.reduce([dsec - tol, FREE_SHORT * dsec, nearest_possible(dsec)]),
                           np.inf)
        free = inside & ~sat & (d < np.minimum(free_to, FREE_RANGE))
        L = self.logodds[i0:i1, j0:j1]
        L[occ] += L_OCC * occupied_weight(d[occ])
        L[free] -= L_FREE * free_weight(d[free])
        np.clip(L, L_MIN, L_MAX, out=L)

    def occupied(self, x: float, y: float, radius: float) -> np.ndarray:
        """(m, 2) centres of the occupied cells within ``radius`` of (x, y)."""
        if self.origin is None:
            return np.zeros((0, 2))
        i, j = np.nonzero(self.logodds > THRESHOLD)
        if not len(i):
            return np.zeros((0, 2))
        px, py = self.centres(i, j)
        near = np.hypot(px - x, py - y) <= radius
        return np.stack([px[near], py[near]], axis=1)


def trajectories(path, s0: float, lat: float, v: float, offsets=OFFSETS, gain: float | None = None,
                 **motion) -> np.ndarray:
    """(len(offsets), m, 2) points of candidate trajectories along the path from s0, every 0.5 m
    of travel up to HORIZON: where the bicycle goes when the pursuit law is given each offset,
    predicted from what it is doing now (``motion``: its heading against the path ``rel``, the
    curvature ``kappa`` it turns at, the desired leans it has been asked for, ``lateral.rollout``).
    A bicycle must lean before it turns, and first steers the other way: reversing a swerve
    under way takes longer than continuing it (measured: ~0.55 s before the curvature answers).
    ``gain``: desired lean per unit curvature at v [rad m]; by default that of a point mass's
    steady turn, v^2 / g."""
    gain = v * v / 9.81 if gain is None else gain
    return lateral.rollout(path, s0, lat, v, offsets, gain=gain, horizon=HORIZON, **motion)


def nearest(obstacles: np.ndarray, traj: np.ndarray) -> np.ndarray:
    """(offsets, points) distance [m] from each point of the candidate trajectories to the
    nearest occupied cell (inf where none comes within CLEARANCE of any trajectory): what
    ``plan`` and ``contact`` score, computed once per frame."""
    traj = np.asarray(traj, float)
    out = np.full(traj.shape[:2], math.inf)
    if len(obstacles):   # only cells that can come within CLEARANCE of some trajectory
        lo, hi = traj.reshape(-1, 2).min(0) - CLEARANCE, traj.reshape(-1, 2).max(0) + CLEARANCE
        obstacles = obstacles[np.all((obstacles >= lo) & (obstacles <= hi), axis=1)]
    if len(obstacles):
        out = np.hypot(traj[..., None, 0] - obstacles[None, None, :, 0],
                       traj[..., None, 1] - obstacles[None, None, :, 1]).min(axis=2)
    return out


def plan(obstacles: np.ndarray, traj: np.ndarray, previous: float, offsets=OFFSETS,
         centre: float = 0.0, hold: bool = False, gap: np.ndarray | None = None) -> tuple[float, float, float]:
    """(offset, penetration [m]) of the best candidate — penetration 0 means clear by
    CLEARANCE — and the penetration of staying at ``centre`` (the path, or a lane beside it):
    something in the way. The size of an offset is counted from ``centre``.

    ``hold``: the side of ``previous`` is committed to (the caller holds it while something is
    in the way of the centre, ``follow.Navigator._plan``): the other side is
    chosen only when every trajectory on this side runs into something within ``NEAR`` metres
    and one on the other side does not. The CNN's sectors put weak false sightings into the
    map, a few on either side of a real obstacle; without the commitment the best side flips
    from frame to frame as they come and go, and the bicycle, which needs seconds to cross
    over, ends up in the middle (errand seed 17: five flips in 2.4 s, into the box). Holding,
    the offset is not narrowed either unless the map calls for it: a swerve turns the camera
    away from what it passes, the map then holds only the near face the sectors saw, and
    narrowing on that evidence ran the bicycle back into the box's far corner (errand seed 0).

    ``gap``: ``nearest(obstacles, traj)`` when the caller has it already."""
    gap = nearest(obstacles, traj) if gap is None else gap
    short = np.clip(CLEARANCE - gap, 0.0, None)      # (offsets, points)
    pen = short.sum(axis=1)
    steps = np.hypot(*np.diff(traj, axis=1).transpose(2, 0, 1)).cumsum(axis=1)
    near = (short[:, 1:] * (steps <= NEAR)).sum(axis=1) + short[:, 0]
    # committing to a side: crossing over to the other one costs SWITCH (the bicycle needs a
    # second or more to change its lateral direction; flip-flopping between sides runs it into
    # the middle)
    other = (np.sign(offsets - centre) * np.sign(previous - centre)) < 0
    switch = SWITCH * other
    if hold and other.any() and (~other).any():
        # crossing over in front of what is in the way is itself a risk: only for a clearly
        # better way (less than half the penetration of the best on this side)
        forced = (near[~other].min() > 0 and (near[other] <= 0).any()
                  and pen[other].min() < SWITCH_BETTER * pen[~other].min())
        if not forced:
            switch = np.where(other, np.inf, 0.0)
    size = np.abs(offsets - centre)
    if hold:   # passing something: no reward for narrowing the swerve before it is behind
        size = np.maximum(size, abs(previous - centre))
    cost = 100.0 * pen + 1.0 * size + 0.6 * np.abs(offsets - previous) + switch
    k = int(np.argmin(cost))
    return float(offsets[k]), float(pen[k]), float(pen[int(np.argmin(np.abs(offsets - centre)))])


def contact(obstacles: np.ndarray, traj: np.ndarray, gap: np.ndarray | None = None):
    """Metres of travel along a candidate trajectory (``trajectories(...)[k]``, a point every
    0.5 m; or all of them, giving one distance per candidate) before it comes within CONTACT of
    an occupied cell: where the bicycle would touch what the map holds if it rode on (inf:
    nowhere within the horizon). Clearance is a comfort; this is the last line: the pilot
    swerves to a candidate that does not touch, or brakes to its stand when none is farther
    than it can stop. ``gap``: ``nearest(obstacles, traj)`` when the caller has it already."""
    traj = np.asarray(traj, float)
    one = traj.ndim == 2
    traj = traj[None] if one else traj
    touch = (nearest(obstacles, traj) if gap is None else gap) < CONTACT
    out = np.where(touch.any(axis=1), 0.5 * (touch.argmax(axis=1) + 1), math.inf)
    return float(out[0]) if one else out
