"""Camera source through OpenCV's ``VideoCapture``: a live camera (a device index, a device
path such as ``/dev/video0``, a stream URL such as ``rtsp://…``, or a GStreamer pipeline) or a
video file.

Frames are converted to what the graph input wants: grayscale or RGB, resized with area
interpolation, scaled to float32 (``scale``, default 1/255) and laid out channels-first
``(C, H, W)`` or as ``(H, W)``. Unless given, size and colour come from the input's shape.

A video file is a timed source: each frame is due at its presentation time
(``CAP_PROP_POS_MSEC``, so variable-frame-rate files keep their timing; k / fps when the
container gives none, k / ``rate_hz`` when that is given) and is decoded one frame ahead.
A device is live: on the wall clock a background thread grabs frames as the camera delivers
them (so a slow camera never blocks the loop), stamped with the frame's own time when the backend gives one (``CAP_PROP_POS_MSEC``: V4L2's buffer
timestamp, a file's presentation time; mapped to stream time by tianrt.stream.sensortime,
``timestamps: sensor`` in the report), else with their arrival time; on the simulated clock
frames are read in the loop at ``rate_hz``. ``sensor_time=False`` always uses arrival times.
"""
from __future__ import annotations

import math
import re
import threading
from collections import deque
from pathlib import Path

import numpy as np

from .base import EPS, Source, StreamError

_THREAD_BUFFER = 4  # frames the grabber thread keeps before it drops the oldest


_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_live_device(device) -> bool:
    """A camera given as something other than a video file: an index, a device path
    (``/dev/video0``, ``/dev/v4l/by-id/…``), a stream URL (``rtsp://``, ``http://``, ``udp://``
    …; a ``file://`` URL is a file) or a GStreamer pipeline (``… ! appsink``)."""
    if isinstance(device, int):
        return True
    d = str(device)
    if d.startswith("/dev/"):
        return True
    if _URL.match(d):
        return not d.lower().startswith("file://")
    return " ! " in d or d.rstrip().endswith("appsink")


class CameraSource(Source):
    kind = "camera"
    default_policy = "latest"

    def __init__(self, device=0, *, size: tuple | None = None, gray: bool | None = None,
                 scale: float = 1.0 / 255.0, layout: str | None = None, rate_hz: float | None = None,
                 backend: int | None = None, threaded: bool | None = None,
                 sensor_time: bool = True, capture_size: tuple | None = None, **kw):
        super().__init__(rate_hz=rate_hz, **kw)
        self._rate_given = rate_hz is not None
        self.sensor_time = bool(sensor_time)
        # asked of a live camera (CAP_PROP_FRAME_WIDTH/HEIGHT), with rate_hz as CAP_PROP_FPS;
        # frames are then resized to the input's shape as usual
        self.capture_size = None if capture_size is None else (int(capture_size[0]), int(capture_size[1]))
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        if isinstance(device, Path):
            device = str(device)
        self.device = device
        self.is_file = not isinstance(device, int) and not is_live_device(device)
        if self.is_file and not Path(device).is_file():
            raise StreamError(f"camera source `{self.name}`: no video file {str(device)!r}; a live "
                              "camera is a device index (0), a device path (/dev/video0, "
                              "/dev/v4l/by-id/…), a stream URL (rtsp://…, http://…) or a GStreamer "
                              "pipeline (… ! appsink)")
        self.timed = self.is_file
        self.size = None if size is None else (int(size[0]), int(size[1]))  # (width, height)
        self.gray = gray
        self.scale = float(scale)
        if layout not in (None, "chw", "hw", "hwc"):
            raise StreamError(f"camera source `{self.name}`: layout must be 'chw', 'hw' or 'hwc', "
                              f"got {layout!r}")
        self.layout = layout
        self.backend = backend
        self.threaded = threaded
        self.cap = None
        self._k = 0
        self._thread = None
        self._stop = threading.Event()
        self._frames: deque = deque()
        self._lock = threading.Lock()
        self._clock = None
        self._eof, self._error = False, "unknown error"

    def fit(self, shape, domain):
        shape = tuple(shape)
        if len(shape) == 3 and shape[0] in (1, 3):
            layout, ch, h, w = "chw", shape[0], shape[1], shape[2]
        elif len(shape) == 3 and shape[2] in (1, 3):
            layout, ch, h, w = "hwc", shape[2], shape[0], shape[1]
        elif len(shape) == 2:
            layout, ch, h, w = "hw", 1, shape[0], shape[1]
        else:
            raise StreamError(f"camera source `{self.name}` cannot feed an input of shape {shape}; "
                              "camera inputs are (C, H, W) or (H, W, C) with C = 1 or 3, or (H, W)")
        self.layout = self.layout or layout
        self.size = self.size or (w, h)
        if self.gray is None:
            self.gray = ch == 1

    def open(self, clock, dt):
        import cv2

        self._clock = clock
        if self.cap is None:
            src = self.device if not self.is_file else str(self.device)
            cap = cv2.VideoCapture(src) if self.backend is None else cv2.VideoCapture(src, self.backend)
            if not cap.isOpened():
                cap.release()
                what = f"video file {src!r}" if self.is_file else f"camera device {src!r}"
                raise StreamError(f"camera source `{self.name}`: OpenCV cannot open {what}")
            if not self.is_file:
                if self.capture_size is not None:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.capture_size[0])
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.capture_size[1])
                if self.rate_hz is not None:
                    cap.set(cv2.CAP_PROP_FPS, self.rate_hz)
            self.cap = cap
        if self.is_file and self.rate_hz is None:
            fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if not (fps > 0 and math.isfinite(fps)):
                raise StreamError(f"camera source `{self.name}`: {self.device!r} does not say its "
                                  "frame rate; give rate_hz=")
            self.rate_hz = fps
        if not self.is_file and self.rate_hz is None:
            fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
            self.rate_hz = fps if 0 < fps < 1000 else 30.0
        self._k = 0
        self.ended = False
        self._ahead, self._last_pos = None, -math.inf
        self.extra = {"read_errors": 0}
        use_thread = self.threaded if self.threaded is not None else (not self.is_file and clock.realtime)
        self.time_base = "due" if self.is_file and not use_thread else "arrival"
        self._eof = False
        if use_thread:
            from .sensortime import SensorClock

            self._sensor_clock = SensorClock()
            self._eof, self._error = False, "unknown error"
            self._stop.clear()
            self._thread = threading.Thread(target=self._grab, name=f"tianrt-camera-{self.name}",
                                            daemon=True)
            self._thread.start()

    def convert(self, frame) -> np.ndarray:
        """A BGR (or gray) uint8 frame from OpenCV, as the graph input wants it."""
        import cv2

        if frame.ndim == 3 and self.gray:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        elif frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        elif frame.ndim == 2 and self.gray is False:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if self.size is not None and (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        a = frame.astype(np.float32) * np.float32(self.scale)
        if a.ndim == 2:
            return a[None] if self.layout == "chw" else (a[..., None] if self.layout == "hwc" else a)
        return np.ascontiguousarray(a.transpose(2, 0, 1)) if self.layout == "chw" else a

    # -- timed (file, or device on the simulated clock) -----------------------------------------
    def next_time(self):
        if self.ended:
            return math.inf
        if self._thread is not None:
            return -math.inf
        if self.is_file:
            self._peek()
            return self._ahead[0] if self._ahead is not None else math.inf
        return self._k / self.rate_hz

    def _peek(self):
        """Decode the next frame of a file and learn its time: its presentation time
        (CAP_PROP_POS_MSEC, so variable-frame-rate files keep their timing), or k / rate_hz when
        the rate was given or the container gives no usable times."""
        if self._ahead is not None or self._eof:
            return
        import cv2

        ok, frame = self.cap.read()
        if not ok:
            self._eof = True
            return
        ts = self._k / self.rate_hz
        if not self._rate_given:
            pos = self.cap.get(cv2.CAP_PROP_POS_MSEC) * 1e-3
            if math.isfinite(pos) and pos > self._last_pos and (pos > 0 or self._k == 0):
                ts = pos
            self._last_pos = max(self._last_pos, ts)
        self._k += 1
        self._ahead = (ts, frame)

    def poll(self, t):
        if self._thread is not None:
            return self._drain()
        out = []
        if self.is_file:
            while True:
                self._peek()
                if self._ahead is None or self._ahead[0] > t + EPS:
                    break
                ts, frame = self._ahead
                self._ahead = None
                out.append((ts, self.convert(frame)))
            if self._ahead is None and self._eof:
                self.ended = True
            return out
        while not self.ended and self._k / self.rate_hz <= t + EPS:
            ts = self._k / self.rate_hz if self.is_file else t
            self._k += 1
            ok, frame = self.cap.read()
            if not ok:
                if self.is_file:
                    self.ended = True
                else:
                    self.extra["read_errors"] += 1
                continue
            out.append((ts, self.convert(frame)))
        return out

    # -- threaded (device on the wall clock) ------------------------------------------------------
    def _grab(self):
        try:
            self._grab_loop()
        except Exception as exc:  # noqa: BLE001 - reported by the next poll, in the loop's thread
            self._error = f"{type(exc).__name__}: {exc}"

    def _grab_loop(self):
        import cv2

        cap, clock, stamps = self.cap, self._clock, self.sensor_time
        while not self._stop.is_set():
            ok, frame = cap.read()
            if not ok and self.is_file:
                self._eof = True  # the end of a video file read by the thread
                break
            if not ok:
                with self._lock:
                    self.extra["read_errors"] += 1
                if self._stop.wait(0.01):
                    break
                continue
            pos = cap.get(cv2.CAP_PROP_POS_MSEC) if stamps else 0.0
            item = (clock.now(), frame, pos * 1e-3 if (pos > 0 or self.is_file) else None)
            with self._lock:
                if len(self._frames) >= _THREAD_BUFFER:
                    self._frames.popleft()
                    self.extra["thread_dropped"] = self.extra.get("thread_dropped", 0) + 1
                self._frames.append(item)

    def _drain(self):
        alive = self._thread.is_alive()  # before draining: a finished thread added its last frame
        with self._lock:
            items = list(self._frames)
            self._frames.clear()
        if not alive and not self._stop.is_set():
            if self._eof:
                self.ended = True
            elif not items:  # the frames it grabbed before it died are delivered first
                raise RuntimeError(f"camera `{self.name}`: the frame grabber stopped: {self._error}")
        stamped = [(a, s) for a, _, s in items if s is not None]
        placed = iter(self._sensor_clock.place([a for a, _ in stamped], [s for _, s in stamped]))
        out = []
        for arrival, f, sensor in items:
            if sensor is not None:
                arrival = next(placed)
                self.time_base = "sensor"
            out.append((arrival, self.convert(f)))
        return out

    def close(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    def describe(self):
        what = f"file {str(self.device)!r}" if self.is_file else f"device {self.device!r}"
        return f"{what}" + (f" at {self.rate_hz:g} fps" if self.rate_hz else "")
