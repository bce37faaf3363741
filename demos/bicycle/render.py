"""Drawing the world with OpenCV: the pinhole camera on the bicycle (a small grayscale sensor
frame, and a larger colour debug view of the same camera), a top-down map, lean/steer
traces, and the side-by-side video frame of a run.

World frame as in the physics (Meijaard et al.): x forward of the start, y to the right,
z down; the ground is z = 0. The camera sits on the rear frame, so it leans with the bicycle
about the ground contact line and looks along the heading, pitched down a little.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# BGR colours of the debug view; the grayscale sensor frame is their luminance.
SKY = (235, 206, 160)
GROUND = (96, 112, 96)
LANE_EDGE = (245, 245, 245)
LANE_CENTRE = (60, 215, 245)
CONE = (20, 110, 250)
BOX = (40, 80, 140)
PERSON = (60, 40, 200)
HEAD = (120, 170, 230)


@dataclass
class CameraSpec:
    width: int = 64
    height: int = 48
    hfov_deg: float = 70.0
    mount_height: float = 1.2   # above the ground, bicycle upright [m]
    mount_forward: float = 0.6  # ahead of the rear contact point [m]
    pitch_deg: float = 8.0      # down from the horizontal
    max_range: float = 60.0     # nothing farther is drawn [m]

    def intrinsics(self) -> tuple[float, float, float]:
        f = 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2)
        return f, 0.5 * self.width, 0.5 * self.height

    def scaled(self, width: int, height: int) -> "CameraSpec":
        return CameraSpec(width, height, self.hfov_deg, self.mount_height, self.mount_forward,
                          self.pitch_deg, self.max_range)


# Camera axes (OpenCV: x right, y down, z forward) from the camera body axes (x forward,
# y right, z down).
_PERM = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def camera_pose(spec: CameraSpec, x: float, y: float, heading: float, lean: float):
    """World-from-camera-body rotation and the camera centre, for a bicycle pose."""
    cz, sz = math.cos(heading), math.sin(heading)
    cx, sx = math.cos(lean), math.sin(lean)
    p = math.radians(spec.pitch_deg)
    cp, sp = math.cos(-p), math.sin(-p)
    Rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    Ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    R_wb = Rz @ Rx
    centre = np.array([x, y, 0.0]) + R_wb @ np.array([spec.mount_forward, 0.0, -spec.mount_height])
    return R_wb @ Ry, centre


class Scene:
    """The static and moving parts of a scenario's world, pre-computed as 3-D primitives."""

    def __init__(self, scenario, dash: float = 3.0, gap: float = 3.0):
        segs, kinds = [], []
        for lane in scenario.lanes:
            p = lane.points
            n = _vertex_normals(p)  # per vertex, so the offset edge lines join up
            for side in (-0.5, 0.5):
                q = p + n * lane.width * side
                a, b = q[:-1], q[1:]
                for s, e in self._split(a, b, 5.0):
                    segs.append((s, e))
                    kinds.append(0)
            for s, e in self._dashes(p, dash, gap):
                segs.append((s, e))
                kinds.append(1)
        self.segments = np.array(segs, float).reshape(-1, 2, 2)
        self.kinds = np.array(kinds, np.int8)
        self.mid = self.segments.mean(axis=1) if len(segs) else np.zeros((0, 2))
        self.obstacles = list(scenario.obstacles)
        self.target = scenario.target
        self.scenario = scenario
        from .world import LOOK_DEFAULT
        self.look = {**LOOK_DEFAULT, **(getattr(scenario, "look", None) or {})}
        lk = self.look
        self.ground = tuple(float(c) for c in lk["ground"])
        self.clothing = tuple(float(c) for c in lk["clothing"])
        rng = np.random.default_rng([int(lk["texture_seed"]), 5])
        az = rng.uniform(0, 2 * math.pi)
        self.sun = np.array([math.cos(az), math.sin(az)])     # direction towards the sun, seen from above
        self.patches, self.patch_col = self._patches(scenario, rng, lk["texture"])

    def _patches(self, scenario, rng, texture):
        """Ground texture: darker and lighter blobs (hexagons) scattered along the path."""
        if texture <= 0:
            return np.zeros((0, 6, 2)), np.zeros((0, 3))
        p = scenario.path.p
        seg = np.diff(p, axis=0)
        L = np.hypot(seg[:, 0], seg[:, 1])
        s_cum = np.concatenate([[0.0], np.cumsum(L)])
        s = np.arange(0.0, s_cum[-1], 1.5)
        idx = np.clip(np.searchsorted(s_cum, s, side="right") - 1, 0, len(L) - 1)
        base = p[idx] + seg[idx] / L[idx, None] * (s - s_cum[idx])[:, None]
        n = len(base) * 3
        centre = np.repeat(base, 3, axis=0) + rng.uniform(-14, 14, size=(n, 2))
        r = rng.uniform(0.4, 1.8, size=n)
        ang = np.linspace(0, 2 * math.pi, 7)[:-1] + rng.uniform(0, 1, size=(n, 1))
        hexes = centre[:, None, :] + r[:, None, None] * np.stack([np.cos(ang), np.sin(ang)], axis=2)
        shade = 1.0 + texture * rng.uniform(-1, 1, size=n)
        col = np.clip(np.asarray(self.ground)[None, :] * shade[:, None], 0, 255)
        return hexes, col

    @staticmethod
    def _split(a, b, max_len):
        for s, e in zip(a, b):
            n = max(1, int(math.ceil(np.hypot(*(e - s)) / max_len)))
            for i in range(n):
                yield s + (e - s) * i / n, s + (e - s) * (i + 1) / n

    @staticmethod
    def _dashes(p, dash, gap):
        seg = np.diff(p, axis=0)
        L = np.hypot(seg[:, 0], seg[:, 1])
        s_cum = np.concatenate([[0.0], np.cumsum(L)])
        s = 0.0
        def at(sv):
            i = min(int(np.searchsorted(s_cum, sv, side="right")) - 1, len(L) - 1)
            return p[i] + seg[i] / L[i] * (sv - s_cum[i])
        while s < s_cum[-1]:
            yield at(s), at(min(s + dash, s_cum[-1]))
            s += dash + gap


def _vertex_normals(p: np.ndarray) -> np.ndarray:
    """Unit normals (to the right of travel) at the vertices of a polyline, miter-scaled so
    that offset lines keep their distance from both neighbouring segments."""
    d = np.diff(p, axis=0)
    seg = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.hypot(d[:, 0], d[:, 1])[:, None]
    n = np.vstack([seg[:1], seg[:-1] + seg[1:], seg[-1:]])
    n /= np.maximum(np.hypot(n[:, 0], n[:, 1]), 1e-9)[:, None]
    cos_half = np.einsum("ij,ij->i", n, np.vstack([seg, seg[-1:]]))
    return n / np.maximum(cos_half, 0.25)[:, None]


def _to_camera(R, centre, pts):
    """World points (n, 3) -> OpenCV camera coordinates (n, 3)."""
    return (pts - centre) @ R @ _PERM.T


def _clip_segments(a, b, near):
    """Clip camera-frame segments to z >= near; returns the kept (a, b)."""
    za, zb = a[:, 2], b[:, 2]
    keep = (za >= near) | (zb >= near)
    a, b, za, zb = a[keep], b[keep], za[keep], zb[keep]
    t = np.clip((near - za) / np.where(zb - za == 0, 1e-12, zb - za), 0.0, 1.0)
    a = np.where((za < near)[:, None], a + (b - a) * t[:, None], a)
    t2 = np.clip((near - zb) / np.where(za - zb == 0, 1e-12, za - zb), 0.0, 1.0)
    b = np.where((zb < near)[:, None], b + (a - b) * t2[:, None], b)
    return a, b


def _horizon_polygon(spec, R):
    """Image polygon of the sky: where the ray through a pixel points upwards (z < 0)."""
    f, cx, cy = spec.intrinsics()
    W, H = spec.width, spec.height
    corners = [(0.0, 0.0), (W, 0.0), (W, H), (0.0, H)]
    def up(u, v):  # world z of the ray direction through pixel (u, v)
        d_cam = np.array([(u - cx) / f, (v - cy) / f, 1.0])
        return (R @ _PERM.T @ d_cam)[2]
    vals = [up(u, v) for u, v in corners]
    poly = []
    for i in range(4):
        (u0, v0), (u1, v1) = corners[i], corners[(i + 1) % 4]
        z0, z1 = vals[i], vals[(i + 1) % 4]
        if z0 < 0:
            poly.append((u0, v0))
        if (z0 < 0) != (z1 < 0):
            t = z0 / (z0 - z1)
            poly.append((u0 + (u1 - u0) * t, v0 + (v1 - v0) * t))
    return np.array(poly, float)


class CameraRenderer:
    """Renders the scene from the bicycle's camera at one resolution."""

    SHIFT = 4  # sub-pixel bits for cv2 drawing

    def __init__(self, scene: Scene, spec: CameraSpec, antialias: bool = True):
        self.scene, self.spec = scene, spec
        self.line = cv2.LINE_AA if antialias else cv2.LINE_8
        self.thick = max(1, int(round(spec.width / 200)))

    def _px(self, pts):
        return np.round(pts * (1 << self.SHIFT)).astype(np.int32)

    def render(self, x, y, heading, lean, t: float = 0.0) -> np.ndarray:
        spec = self.spec
        f, cx, cy = spec.intrinsics()
        near = 0.2
        R, C = camera_pose(spec, x, y, heading, lean)
        img = np.empty((spec.height, spec.width, 3), np.uint8)
        img[:] = self.scene.ground
        self._draw_patches(img, R, C, f, cx, cy, near)
        sky = _horizon_polygon(spec, R)
        if len(sky) >= 3:
            cv2.fillPoly(img, [self._px(sky)], SKY, self.line, self.SHIFT)
        # Ground markings near enough to matter.
        segs = self.scene.segments
        if len(segs):
            mid = self.scene.mid
            close = (mid[:, 0] - C[0]) ** 2 + (mid[:, 1] - C[1]) ** 2 < spec.max_range ** 2
            sel, kinds = segs[close], self.scene.kinds[close]
            if len(sel):
                zeros = np.zeros((len(sel), 1))
                a = _to_camera(R, C, np.hstack([sel[:, 0], zeros]))
                b = _to_camera(R, C, np.hstack([sel[:, 1], zeros]))
                keep = (a[:, 2] >= near) | (b[:, 2] >= near)
                a, b = _clip_segments(a, b, near)
                kinds = kinds[keep]
                pa = np.stack([f * a[:, 0] / a[:, 2] + cx, f * a[:, 1] / a[:, 2] + cy], 1)
                pb = np.stack([f * b[:, 0] / b[:, 2] + cx, f * b[:, 1] / b[:, 2] + cy], 1)
                # (the near plane bounds the coordinates; the clip only guards int32 after the sub-pixel shift)
                lines = self._px(np.clip(np.stack([pa, pb], axis=1), -1e6, 1e6))
                for k, colour in ((0, LANE_EDGE), (1, LANE_CENTRE)):
                    sel_k = lines[kinds == k]
                    if len(sel_k):
                        cv2.polylines(img, list(sel_k), False, colour, self.thick, self.line, self.SHIFT)
        # Upright things, far to near (painter's algorithm).
        items = []
        for o in self.scene.obstacles:
            items.append((o.x, o.y, o))
        tgt = self.scene.target
        if tgt is not None:
            tx, ty, th = tgt.position(t)
            items.append((tx, ty, ("person", th)))
        fwd = np.array([math.cos(heading), math.sin(heading)])
        drawn = []
        for ox, oy, obj in items:
            rel = np.array([ox - C[0], oy - C[1]])
            dist = float(np.hypot(*rel))
            if dist > spec.max_range or rel @ fwd < near:
                continue
            drawn.append((dist, ox, oy, obj))
        for dist, ox, oy, obj in sorted(drawn, key=lambda q: -q[0]):
            self._draw_object(img, R, C, f, cx, cy, ox, oy, obj, near)
        light = self.scene.look["light"]
        if light != 1.0:
            img = cv2.convertScaleAbs(img, alpha=light)
        return img

    def _draw_patches(self, img, R, C, f, cx, cy, near):
        hexes = self.scene.patches
        if not len(hexes):
            return
        c = hexes.mean(axis=1)
        rel = c - C[:2]
        close = np.flatnonzero(np.hypot(rel[:, 0], rel[:, 1]) < min(self.spec.max_range, 40.0))
        if not len(close):
            return
        pts = hexes[close].reshape(-1, 2)
        cam = _to_camera(R, C, np.hstack([pts, np.zeros((len(pts), 1))])).reshape(len(close), 6, 3)
        ok = np.all(cam[:, :, 2] >= near, axis=1)
        uv = np.stack([f * cam[..., 0] / np.maximum(cam[..., 2], near) + cx,
                       f * cam[..., 1] / np.maximum(cam[..., 2], near) + cy], axis=2)
        for i in np.flatnonzero(ok)[::-1]:   # roughly far to near (they are flat; order barely matters)
            cv2.fillConvexPoly(img, self._px(uv[i]), tuple(self.scene.patch_col[close[i]]), self.line, self.SHIFT)

    def _project(self, R, C, f, cx, cy, pts, near):
        c = _to_camera(R, C, pts)
        if np.any(c[:, 2] < near):
            return None
        return np.stack([f * c[:, 0] / c[:, 2] + cx, f * c[:, 1] / c[:, 2] + cy], 1)

    def _draw_object(self, img, R, C, f, cx, cy, ox, oy, obj, near):
        view = np.array([ox - C[0], oy - C[1]])
        view /= max(np.hypot(*view), 1e-9)
        side = np.array([-view[1], view[0]])  # billboard axis, perpendicular to the view ray
        if isinstance(obj, tuple):  # the walking person: body, legs and head as billboards
            h = self.scene.target.height
            w = 0.45
            body = [(-w / 2, -0.8), (w / 2, -0.8), (w / 2, -(h - 0.3)), (-w / 2, -(h - 0.3))]
            legs = [(-w / 3, 0.0), (w / 3, 0.0), (w / 3, -0.8), (-w / 3, -0.8)]
            lit = self._lit(-view)
            body_col = tuple(c * lit for c in self.scene.clothing)
            for quad, col in ((legs, (80, 60, 60)), (body, body_col)):
                pts = np.array([[ox + side[0] * s, oy + side[1] * s, z] for s, z in quad])
                p = self._project(R, C, f, cx, cy, pts, near)
                if p is not None:
                    cv2.fillConvexPoly(img, self._px(p), col, self.line, self.SHIFT)
            head = self._project(R, C, f, cx, cy, np.array([[ox, oy, -(h - 0.13)], [ox + side[0] * 0.13,
                                                                                      oy + side[1] * 0.13,
                                                                                      -(h - 0.13)]]), near)
            if head is not None:
                r = float(np.hypot(*(head[1] - head[0])))
                cv2.circle(img, tuple(self._px(head[0])), max(1, int(r * (1 << self.SHIFT))), HEAD, -1,
                           self.line, self.SHIFT)
            return
        if obj.kind == "cone":
            s = obj.size / 2
            pts = np.array([[ox - side[0] * s, oy - side[1] * s, 0.0], [ox + side[0] * s, oy + side[1] * s, 0.0],
                            [ox, oy, -obj.height]])
            p = self._project(R, C, f, cx, cy, pts, near)
            if p is not None:
                cv2.fillConvexPoly(img, self._px(p), CONE, self.line, self.SHIFT)
                if self.scene.look["shading"] > 0:   # the white reflective band of a traffic cone
                    band = p[:2] + (p[2] - p[:2]) * 0.45
                    band2 = p[:2] + (p[2] - p[:2]) * 0.65
                    cv2.fillConvexPoly(img, self._px(np.vstack([band, band2[::-1]])), (235, 235, 235),
                                       self.line, self.SHIFT)
            return
        s = obj.size / 2
        cy_, sy_ = math.cos(obj.yaw), math.sin(obj.yaw)
        corners = []
        for dx, dy in ((-s, -s), (s, -s), (s, s), (-s, s)):
            for z in (0.0, -obj.height):
                corners.append([ox + dx * cy_ - dy * sy_, oy + dx * sy_ + dy * cy_, z])
        p = self._project(R, C, f, cx, cy, np.array(corners), near)
        if p is None:
            return
        hull = cv2.convexHull(p.astype(np.float32)).reshape(-1, 2)
        cv2.fillConvexPoly(img, self._px(hull), BOX, self.line, self.SHIFT)
        if self.scene.look["shading"] <= 0:
            return
        # shaded faces: the vertical faces that face the camera, each lit by the sun, then the top
        for k in range(4):
            a, b = 2 * k, 2 * ((k + 1) % 4)
            mid = (np.array(corners[a][:2]) + np.array(corners[b][:2])) / 2
            nrm = mid - (ox, oy)
            nrm /= max(np.hypot(*nrm), 1e-9)
            if nrm @ (C[:2] - mid) <= 0:
                continue
            quad = p[[a, b, b + 1, a + 1]]
            cv2.fillConvexPoly(img, self._px(quad), tuple(c * self._lit(nrm) for c in BOX), self.line, self.SHIFT)
        top = p[[1, 3, 5, 7]]
        cv2.fillConvexPoly(img, self._px(top), tuple(min(255.0, c * 1.25) for c in BOX), self.line, self.SHIFT)

    def _lit(self, normal) -> float:
        """Brightness of a vertical surface with this (horizontal) normal under the scene's sun."""
        k = self.scene.look["shading"]
        return 1.0 - k + k * (0.5 + 0.5 * float(np.dot(normal, self.scene.sun)))


class SensorCamera:
    """The small grayscale frame a vision network would see (default 64 x 48)."""

    def __init__(self, scene: Scene, spec: CameraSpec | None = None):
        self.renderer = CameraRenderer(scene, spec or CameraSpec())

    def frame(self, x, y, heading, lean, t=0.0) -> np.ndarray:
        return cv2.cvtColor(self.renderer.render(x, y, heading, lean, t), cv2.COLOR_BGR2GRAY)


class MapView:
    """Top-down map centred on the bicycle: lanes, obstacles, the target and the trail."""

    def __init__(self, scene: Scene, size: int = 240, metres: float = 80.0):
        self.scene, self.size, self.scale = scene, size, size / metres
        self.path = scene.scenario.path.p

    def _px(self, pts, cx, cy):
        p = (np.asarray(pts, float) - [cx, cy]) * self.scale + self.size / 2
        return np.round(p * 16).astype(np.int32)

    def render(self, x, y, heading, trail, t=0.0) -> np.ndarray:
        img = np.full((self.size, self.size, 3), (70, 85, 70), np.uint8)
        for ln in self.scene.scenario.lanes:
            cv2.polylines(img, [self._px(ln.points, x, y)], False, (120, 120, 120),
                          max(1, int(ln.width * self.scale)), cv2.LINE_AA, 4)
        cv2.polylines(img, [self._px(self.path, x, y)], False, LANE_CENTRE, 1, cv2.LINE_AA, 4)
        for o in self.scene.obstacles:
            cv2.circle(img, tuple(self._px([o.x, o.y], x, y)), max(2, int(o.size * self.scale * 16 / 2)),
                       CONE if o.kind == "cone" else BOX, -1, cv2.LINE_AA, 4)
        if self.scene.target is not None:
            tx, ty, _ = self.scene.target.position(t)
            cv2.circle(img, tuple(self._px([tx, ty], x, y)), 3 * 16, PERSON, -1, cv2.LINE_AA, 4)
        if len(trail) > 1:
            cv2.polylines(img, [self._px(np.asarray(trail), x, y)], False, (255, 255, 255), 1, cv2.LINE_AA, 4)
        c, s = math.cos(heading), math.sin(heading)
        tri = np.array([[x + 2.0 * c, y + 2.0 * s], [x - c - 0.8 * s, y - s + 0.8 * c],
                        [x - c + 0.8 * s, y - s - 0.8 * c]])
        cv2.fillConvexPoly(img, self._px(tri, x, y), (0, 255, 255), cv2.LINE_AA, 4)
        cv2.putText(img, f"map {self.size / self.scale:.0f} m (x right, y down)", (4, self.size - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (230, 230, 230), 1, cv2.LINE_AA)
        return img


def traces_panel(width: int, height: int, t: np.ndarray, series: list[tuple[str, np.ndarray, float, tuple]],
                 window: float = 10.0) -> np.ndarray:
    """Strip chart of the last ``window`` seconds: (label, values, full scale, colour) per series."""
    img = np.full((height, width, 3), 25, np.uint8)
    mid = height // 2
    cv2.line(img, (0, mid), (width, mid), (80, 80, 80), 1)
    if len(t) < 2:
        return img
    t_end = t[-1]
    sel = t >= t_end - window
    tt = t[sel]
    xs = (tt - (t_end - window)) / window * (width - 1)
    for i, (label, vals, scale, col) in enumerate(series):
        v = np.clip(vals[sel] / scale, -1, 1)
        ys = mid - v * (height / 2 - 4)
        pts = np.round(np.stack([xs, ys], 1) * 16).astype(np.int32)
        cv2.polylines(img, [pts], False, col, 1, cv2.LINE_AA, 4)
        cv2.putText(img, f"{label} {vals[sel][-1]:+.3f}", (6 + 170 * i, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1,
                    cv2.LINE_AA)
    return img


class VideoRecorder:
    """Composes camera view, colour debug view, map and traces into frames for cv2.VideoWriter.
    ``still=(t, path)`` also writes the first frame at or after simulated time ``t`` as a
    lossless PNG (``still_written`` is then its path; None if the ride ended before ``t``)."""

    def __init__(self, path, scene: Scene, fps: float = 30.0, cam_spec: CameraSpec | None = None,
                 still: tuple | None = None):
        if still is not None and not (math.isfinite(float(still[0])) and float(still[0]) >= 0.0
                                      and str(still[1]).lower().endswith(".png")):
            raise ValueError(f"VideoRecorder: still must be (seconds >= 0, a .png path), got {still!r}")
        self.still, self.still_written = still, None
        self.scene, self.fps = scene, fps
        spec = cam_spec or CameraSpec()
        self.sensor = SensorCamera(scene, spec)
        self.debug = CameraRenderer(scene, spec.scaled(320, 240))
        self.map = MapView(scene)
        self.width, self.height = 320 + 320 + 240, 240 + 140
        path = str(path)
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.endswith(".mp4") else "MJPG"))
        self.writer = cv2.VideoWriter(path, fourcc, fps, (self.width, self.height))
        if not self.writer.isOpened():
            raise OSError(f"cv2.VideoWriter could not open {path} for writing")
        self.path, self.frames = path, 0

    def add(self, t, x, y, heading, lean, trace_t, series, trail, text: str = "", overlay=None) -> None:
        """One video frame; ``overlay(camera, debug, map, map_view, x, y, camera_spec)`` draws on
        the panels before they are joined (panels.draw_nav: what the networks see and decide)."""
        cam = self.sensor.frame(x, y, heading, lean, t)
        cam_big = cv2.cvtColor(cv2.resize(cam, (320, 240), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        cv2.putText(cam_big, f"camera {cam.shape[1]}x{cam.shape[0]} gray", (4, 232), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 255, 0), 1, cv2.LINE_AA)
        dbg = self.debug.render(x, y, heading, lean, t)
        cv2.putText(dbg, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
        mp = self.map.render(x, y, heading, trail, t)
        if overlay is not None:
            overlay(cam_big, dbg, mp, self.map, x, y, self.sensor.renderer.spec)
        top = np.hstack([cam_big, dbg, mp])
        bottom = traces_panel(self.width, 140, trace_t, series)
        frame = np.vstack([top, bottom])
        self.writer.write(frame)
        self.frames += 1
        if self.still is not None and self.still_written is None and t >= float(self.still[0]):
            if not cv2.imwrite(str(self.still[1]), frame, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                raise OSError(f"cv2.imwrite could not write the still {self.still[1]}")
            self.still_written = str(self.still[1])

    def close(self) -> None:
        self.writer.release()
