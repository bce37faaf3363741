"""Video overlays of what the networks see and decide (rides with a ``follow.Navigator``):

- on the camera image: the CNN's bearing code (15 bars at the image columns of their bearings,
  height = activation), its obstacle sectors (7 bars along the bottom, red = near), and the
  CANN's tracked bearing (a green line);
- on the debug view: the CANN's ring of 72 neurons, each dot's brightness its spike count in
  the last frame, the population vector as a needle (straight up = straight ahead);
- on the map: the dead-reckoned pose (magenta) next to the true one (yellow) with its trail, and
  (avoiding) the occupied cells of the obstacle map (red dots) and the planned offset;
- rides with the whole brain (``pilot.Pilot``), on the debug view: the state machine's five
  states (the current one lit), its enables, the stand, and the voice network's last heard
  command and the cruise speed and lane it set.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from . import vision


def _col(spec, bearing_deg, width):
    f, cx, _ = spec.intrinsics()
    return (cx + f * math.tan(math.radians(bearing_deg))) * width / spec.width


def draw_nav(cam, dbg, mp, mapview, nav, x, y, spec):
    H, W = cam.shape[:2]
    p = nav.percept
    if p is not None:
        for b, a in zip(vision.BINS, p.code):
            u = int(_col(spec, b, W))
            h = int(np.clip(a, 0, 1) * 40)
            cv2.rectangle(cam, (u - 6, 4), (u + 6, 4 + h), (0, 200, 255), -1)
        for k, occ in enumerate(p.sectors):
            u0, u1 = int(_col(spec, vision.SECTORS[k], W)), int(_col(spec, vision.SECTORS[k + 1], W))
            c = float(np.clip(occ, 0, 1))
            cv2.rectangle(cam, (u0 + 1, H - 26), (u1 - 1, H - 18), (0, int(255 * (1 - c)), int(255 * c)), -1)
        cv2.putText(cam, f"CNN vis {p.visible:.2f} d {p.distance:4.1f} m", (4, 60), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 200, 255), 1, cv2.LINE_AA)
    if nav.tracker is not None:
        if nav.bearing is not None:
            u = int(_col(spec, nav.bearing, W))
            cv2.line(cam, (u, 50), (u, H - 30), (0, 255, 0), 2)
        bump = nav.tracker.bump
        cx, cy, r = dbg.shape[1] - 50, 60, 38
        cv2.circle(dbg, (cx, cy), r + 6, (30, 30, 30), -1)
        m = max(float(bump.max()), 1.0)
        for j, val in enumerate(bump):
            a = math.radians(nav.tracker.p.bearings[j] - nav.heading_at_frame)   # world -> camera frame
            q = (int(cx + r * math.sin(a)), int(cy - r * math.cos(a)))
            g = int(60 + 195 * val / m)
            cv2.circle(dbg, q, 2, (g // 3, g, g // 3), -1)
        if nav.bearing is not None:
            a = math.radians(nav.bearing)
            cv2.line(dbg, (cx, cy), (int(cx + r * math.sin(a)), int(cy - r * math.cos(a))), (0, 255, 0), 1)
        cv2.putText(dbg, "CANN", (cx - 16, cy + r + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 0), 1, cv2.LINE_AA)
    if getattr(nav, "brain", None) is not None:
        _draw_brain(dbg, nav)
    ex, ey, eh = nav.est.pose
    nav.trail_est = getattr(nav, "trail_est", [])[-400:] + [(ex, ey)]
    if len(nav.trail_est) > 1:
        cv2.polylines(mp, [mapview._px(np.asarray(nav.trail_est), x, y)], False, (255, 0, 255), 1, cv2.LINE_AA, 4)
    c, s = math.cos(eh), math.sin(eh)
    tri = np.array([[ex + 2.0 * c, ey + 2.0 * s], [ex - c - 0.8 * s, ey - s + 0.8 * c],
                    [ex - c + 0.8 * s, ey - s - 0.8 * c]])
    cv2.polylines(mp, [mapview._px(tri, x, y)], True, (255, 0, 255), 1, cv2.LINE_AA, 4)
    cv2.putText(mp, "estimated pose", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 0, 255), 1, cv2.LINE_AA)
    if getattr(nav, "map", None) is not None:   # the avoider's occupied cells (estimated frame)
        occ = nav.map.occupied(ex, ey, 20.0)
        for u, v in mapview._px(occ, x, y).reshape(-1, 2) if len(occ) else ():
            cv2.circle(mp, (int(u), int(v)), 16, (0, 0, 255), -1, cv2.LINE_AA, 4)
        cv2.putText(mp, f"avoid offset {nav.offset:+.2f} m", (4, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (0, 0, 255), 1, cv2.LINE_AA)


def _draw_brain(dbg, nav):
    from .nsm import STATES

    font, y0 = cv2.FONT_HERSHEY_SIMPLEX, 112
    cv2.putText(dbg, "NSM", (6, y0), font, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    for k, name in enumerate(STATES):
        x = 40 + k * 62
        on = name == nav.state
        cv2.rectangle(dbg, (x, y0 - 11), (x + 58, y0 + 3), (0, 200, 255) if on else (60, 60, 60), -1 if on else 1)
        cv2.putText(dbg, name.replace("stop_requested", "stop-req"), (x + 3, y0), font, 0.32,
                    (0, 0, 0) if on else (170, 170, 170), 1, cv2.LINE_AA)
    txt = " ".join(k for k, v in (nav.brain.enables or {}).items() if v) or "-"
    cv2.putText(dbg, f"enables: {txt}   stand {'down' if nav.stand else 'up'}", (6, y0 + 16), font, 0.35,
                (200, 200, 200), 1, cv2.LINE_AA)
    heard = nav.brain.heard[-1] if nav.brain.heard else None
    said = f"heard '{heard[1]}' at {heard[0]:.1f} s" if heard else "heard nothing yet"
    cv2.putText(dbg, f"voice SNN: {said}   speed {nav.speed_offset:+.0f} m/s  lane {nav.lane:+.1f} m",
                (6, y0 + 30), font, 0.35, (120, 255, 120), 1, cv2.LINE_AA)
