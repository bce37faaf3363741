"""Record a stream to MCAP and read it back for replay.

MCAP (https://mcap.dev) is the log format of ROS 2 bags and Foxglove; it is written and read
with the ``mcap`` library (the optional extra ``tianrt[record]``). Every message is JSON
(``message_encoding="json"``) with a JSON Schema (``encoding="jsonschema"``), never pickle:

- ``/<runtime>.<input>`` (schema ``tianrt.Tensor``): every sample a source produced that
  passed the checks, as the network would get it (float32), on the topic of the input it
  feeds. ``publish_time``: its sensor time; ``log_time``: the tick that received it;
  ``sequence``: its index among its source's samples.
- ``/<runtime>.<input>/image`` (schema ``foxglove.CompressedImage``, PNG): instead of the
  above, for camera frames that are whole multiples of the camera's scale (an 8-bit image
  scaled to float32, the default): lossless, and shown as video by Foxglove. RGB or gray.
- ``/tianrt/delivery`` (``tianrt.Delivery``): which sample of which source reached the
  network on which tick - what a replay needs to reproduce a run exactly.
- ``/tianrt/skip`` (``tianrt.Skip``): ticks the overrun policy ``skip`` never ran.
- ``/<runtime>.<input>/rejected`` (``tianrt.Rejected``): samples the checks refused, as they
  arrived, with the reason.
- any topic an application adds with ``Recorder.log(topic, value, t)`` (controls, a rendered
  camera): uint8 images as ``foxglove.CompressedImage``, the rest as ``tianrt.Tensor``.
- ``/output/<name>`` (``tianrt.Tensor``): every output value, ``log_time`` its tick.
- metadata ``tianrt``: format version, tick dt, clock, ticks, wall-clock start, sources.

Times are absolute: nanoseconds since the Unix epoch, the run's wall-clock start plus stream
time. ``read_recording`` reads such a file back (with the ``mcap`` reader), and
``ReplaySource`` feeds a recorded source's samples to the same inputs on the same ticks, so
that a wall-clock run replays bit for bit on the simulated clock.
"""
from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np

from .base import StreamError, TimedSource

FORMAT = "tianrt-stream-1"
TENSOR_SCHEMA = {
    "title": "tianrt.Tensor", "type": "object",
    "description": "An n-dimensional array: little-endian `dtype` values, C order, base64.",
    "properties": {
        "timestamp": {"type": "object", "properties": {"sec": {"type": "integer"},
                                                       "nsec": {"type": "integer"}}},
        "tick": {"type": "integer", "description": "scheduler tick of the message"},
        "stream_time": {"type": "number", "description": "seconds since the run started"},
        "source": {"type": "string"}, "input": {"type": "string"}, "output": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "dtype": {"type": "string", "enum": ["float32"]},
        "data": {"type": "string", "contentEncoding": "base64"}}}
IMAGE_SCHEMA = {  # foxglove.CompressedImage
    "title": "foxglove.CompressedImage", "type": "object",
    "properties": {
        "timestamp": {"type": "object", "properties": {"sec": {"type": "integer"},
                                                       "nsec": {"type": "integer"}}},
        "frame_id": {"type": "string"},
        "data": {"type": "string", "contentEncoding": "base64"},
        "format": {"type": "string"}}}
DELIVERY_SCHEMA = {
    "title": "tianrt.Delivery", "type": "object",
    "description": "sample `sample` of source `source` reached its inputs on tick `tick`",
    "properties": {"tick": {"type": "integer"}, "source": {"type": "string"},
                   "sample": {"type": "integer"}}}

REJECTED_SCHEMA = {
    "title": "tianrt.Rejected", "type": "object",
    "description": "a sample the checks rejected (wrong shape, NaN or inf, not 0/1 on a spike "
                   "input), as it arrived: `shape`/`dtype`/`data` when it was numbers, else `repr`",
    "properties": {
        "timestamp": {"type": "object", "properties": {"sec": {"type": "integer"},
                                                       "nsec": {"type": "integer"}}},
        "tick": {"type": "integer"}, "stream_time": {"type": "number"},
        "source": {"type": "string"}, "input": {"type": "string"}, "reason": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}}, "dtype": {"type": "string"},
        "data": {"type": "string", "contentEncoding": "base64"}, "repr": {"type": "string"}}}
SKIP_SCHEMA = {
    "title": "tianrt.Skip", "type": "object",
    "description": "overrun policy skip: ticks from_tick .. to_tick - 1 never ran",
    "properties": {"from_tick": {"type": "integer"}, "to_tick": {"type": "integer"}}}


def _need_mcap():
    try:
        import mcap  # noqa: F401
    except ImportError:
        raise StreamError("recording and replay use the `mcap` library: pip install 'tianrt[record]' "
                          "(or pip install mcap)") from None


def _stamp(ns: int) -> dict:
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def _tensor(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "dtype": "float32", "data": base64.b64encode(a.tobytes()).decode()}


def _untensor(m: dict) -> np.ndarray:
    if m.get("dtype") != "float32":
        raise StreamError(f"recording: tensor of dtype {m.get('dtype')!r}; float32 is expected")
    return np.frombuffer(base64.b64decode(m["data"]), "<f4").reshape(m["shape"]).copy()


class Recorder:
    """Writes a scheduler's run to an MCAP file (``Scheduler.record(path)`` makes one)."""

    def __init__(self, path):
        _need_mcap()
        self.path = Path(path)
        self.writer = None
        self._f = None

    # called by the scheduler -------------------------------------------------------------
    def open(self, sched, start_unix_ns: int) -> None:
        from mcap.writer import Writer

        self.start = int(start_unix_ns)
        self.dt = sched.dt
        self._f = open(self.path, "wb")
        w = self.writer = Writer(self._f)
        w.start(profile="", library="tianrt")
        self._schema = {k: w.register_schema(name=s["title"], encoding="jsonschema",
                                             data=json.dumps(s).encode())
                        for k, s in (("tensor", TENSOR_SCHEMA), ("image", IMAGE_SCHEMA),
                                     ("delivery", DELIVERY_SCHEMA), ("skip", SKIP_SCHEMA),
                                     ("rejected", REJECTED_SCHEMA))}
        self._chan = {}
        self._nlog = {}
        self._delivery = w.register_channel("/tianrt/delivery", "json", self._schema["delivery"])
        self._skip = w.register_channel("/tianrt/skip", "json", self._schema["skip"])
        self._outs = {name: w.register_channel(f"/output/{name}", "json", self._schema["tensor"],
                                               {"output": name}) for name in sched.outs}
        self.sources = {f.name: {"kind": f.src.kind, "timestamps": f.src.time_base,
                                 "targets": sorted({t.label for t in f.all_targets()})}
                        for f in sched.feeds}
        self._cams = {f.name: f.src for f in sched.feeds if f.src.kind == "camera"}

    def _channel(self, source, label, image):
        key = (source, label, image)
        if key not in self._chan:
            meta = {"source": source, "input": label}
            if image:
                src = self._cams[source]
                meta.update(scale=repr(src.scale), layout=src.layout)
            self._chan[key] = self.writer.register_channel(
                f"/{label}/image" if image else f"/{label}", "json",
                self._schema["image" if image else "tensor"], meta)
        return self._chan[key]

    def _ns(self, t: float) -> int:
        return self.start + int(round(t * 1e9))

    def sample(self, feed, k: int, ts: float, tick: int, item) -> None:
        log, pub = self._ns(tick * self.dt), self._ns(ts)
        for tgt, a in item:
            png = self._png(feed.name, a) if feed.name in self._cams else None
            if png is not None:
                msg = {"timestamp": _stamp(pub), "frame_id": tgt.label, "format": "png",
                       "data": base64.b64encode(png).decode()}
            else:
                msg = {"timestamp": _stamp(pub), "tick": tick, "stream_time": ts, "source": feed.name,
                       "input": tgt.label, **_tensor(a)}
            self.writer.add_message(self._channel(feed.name, tgt.label, png is not None), log_time=log,
                                    data=json.dumps(msg).encode(), publish_time=pub, sequence=k)

    def _png(self, source, a):
        """A lossless PNG of a camera frame that is whole multiples of the camera's scale."""
        import cv2

        src = self._cams[source]
        scale = np.float32(src.scale)
        q = np.round(a / scale)
        if not ((q >= 0) & (q <= 255)).all():
            return None
        q = q.astype(np.uint8)
        if not np.array_equal(q.astype(np.float32) * scale, a):
            return None
        img = _to_hwc(q, src.layout)
        if img is None:
            return None
        if img.shape[2] == 3:
            img = img[..., ::-1]  # RGB -> BGR, the order PNG writers take
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
        return buf.tobytes() if ok else None

    def log(self, topic: str, value, t: float) -> None:
        """An application's own channel (controls, a rendered camera, a plant's true state):
        ``value`` at stream time ``t`` on ``topic``. A uint8 array of shape (H, W) or
        (H, W, 3) (RGB) is written as a foxglove.CompressedImage PNG, anything else as a
        tianrt.Tensor. Replay ignores these channels; ``Recording.logs`` has them."""
        if self.writer is None:
            raise StreamError(f"recorder log {topic!r}: the recording is not open (log from sources, "
                              "sinks or callbacks while the scheduler runs)")
        if not isinstance(topic, str) or not topic.startswith("/") or topic.startswith("/tianrt/"):
            raise StreamError(f"recorder log: topic must start with '/' and not with '/tianrt/', "
                              f"got {topic!r}")
        a = np.asarray(value)
        image = a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3))
        key = ("log", topic, image)
        if key not in self._chan:
            if any(k[1] == topic for k in self._chan if k[0] == "log") or topic in (
                    f"/{k[1]}" for k in self._chan if k[0] != "log"):
                raise StreamError(f"recorder log: topic {topic!r} already carries other data")
            self._chan[key] = self.writer.register_channel(
                topic, "json", self._schema["image" if image else "tensor"], {"kind": "log"})
        ns = self._ns(t)
        if image:
            import cv2

            ok, buf = cv2.imencode(".png", np.ascontiguousarray(a[..., ::-1] if a.ndim == 3 else a))
            msg = {"timestamp": _stamp(ns), "frame_id": topic, "format": "png",
                   "data": base64.b64encode(buf.tobytes()).decode()}
        else:
            msg = {"timestamp": _stamp(ns), "stream_time": t, **_tensor(np.asarray(a, np.float32))}
        self._nlog[topic] = self._nlog.get(topic, 0) + 1
        self.writer.add_message(self._chan[key], log_time=ns, publish_time=ns, sequence=self._nlog[topic],
                                data=json.dumps(msg).encode())

    def rejected(self, feed, tgt, value, reason: str, ts: float, tick: int) -> None:
        """A sample the checks refused, kept for the record (replay does not need it)."""
        key = ("rejected", tgt.label, False)
        if key not in self._chan:
            self._chan[key] = self.writer.register_channel(
                f"/{tgt.label}/rejected", "json", self._schema["rejected"],
                {"kind": "rejected", "source": feed.name, "input": tgt.label})
        pub = self._ns(ts)
        msg = {"timestamp": _stamp(pub), "tick": tick, "stream_time": ts, "source": feed.name,
               "input": tgt.label, "reason": reason}
        try:
            msg.update(_tensor(np.asarray(value, np.float32)))
        except (TypeError, ValueError):
            msg["repr"] = repr(value)[:1000]
        self.writer.add_message(self._chan[key], log_time=self._ns(tick * self.dt), publish_time=pub,
                                data=json.dumps(msg).encode())

    def skipped(self, first: int, resume: int) -> None:
        """Overrun policy ``skip``: ticks ``first`` .. ``resume - 1`` never ran."""
        t = self._ns(first * self.dt)
        self.writer.add_message(self._skip, log_time=t, publish_time=t, sequence=first, data=json.dumps(
            {"from_tick": first, "to_tick": resume}).encode())

    def delivered(self, feed, k: int, tick: int) -> None:
        t = self._ns(tick * self.dt)
        self.writer.add_message(self._delivery, log_time=t, publish_time=t, sequence=tick, data=json.dumps(
            {"tick": tick, "source": feed.name, "sample": k}).encode())

    def output(self, name: str, value, tick: int, t: float) -> None:
        ns = self._ns(t)
        msg = {"timestamp": _stamp(ns), "tick": tick, "stream_time": t, "output": name,
               **_tensor(np.asarray(value, np.float32))}
        self.writer.add_message(self._outs[name], log_time=ns, publish_time=ns, sequence=tick,
                                data=json.dumps(msg).encode())

    def close(self, sched) -> None:
        if self.writer is None:
            return
        self.writer.add_metadata("tianrt", {
            "format": FORMAT, "dt": repr(sched.dt), "clock": sched.clock.kind,
            "ticks": str(sched.tick), "start_unix_ns": str(self.start),
            "runtimes": json.dumps({r.name: r.rt.graph.name for r in sched.rts}),
            "sources": json.dumps(self.sources)})
        self.writer.finish()
        self._f.close()
        self.writer = None


def _to_hwc(q, layout):
    if layout == "chw" and q.ndim == 3:
        return q.transpose(1, 2, 0)
    if layout == "hwc" and q.ndim == 3:
        return q
    if layout == "hw" and q.ndim == 2:
        return q[..., None]
    return None


def _from_png(data: bytes, scale: float, layout: str) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img.ndim == 2:
        img = img[..., None]
    elif img.shape[2] == 3:
        img = img[..., ::-1]
    a = img.astype(np.float32) * np.float32(scale)
    if layout == "chw":
        return np.ascontiguousarray(a.transpose(2, 0, 1))
    if layout == "hw":
        return np.ascontiguousarray(a[..., 0])
    return np.ascontiguousarray(a)


class Recording:
    """A recorded stream read back: ``meta`` (the ``tianrt`` metadata), ``samples[source][k]``
    = (sensor stream time, {input label: value}), ``deliveries[source]`` = [(tick, k)],
    ``skips`` = {first skipped tick: resume tick}, ``outputs[name]`` = (ticks, values)."""

    def __init__(self, path):
        _need_mcap()
        from mcap.reader import make_reader

        self.path = Path(path)
        self.meta, self.samples, self.deliveries, outs = None, {}, {}, {}
        self.skips: dict[int, int] = {}  # first skipped tick -> the tick the run resumed at
        self.logs: dict[str, list] = {}  # an application's own topics: [(stream time, value)]
        self.rejected: dict[str, list] = {}  # input label -> the rejected samples' messages
        try:
            with open(self.path, "rb") as f:
                reader = make_reader(f)
                for m in reader.iter_metadata():
                    if m.name == "tianrt":
                        self.meta = dict(m.metadata)
                if self.meta is None or self.meta.get("format") != FORMAT:
                    raise StreamError(f"replay: {str(path)!r} is an MCAP file but not a tianrt recording "
                                      f"(no `tianrt` metadata of format {FORMAT})")
                start = int(self.meta["start_unix_ns"])
                for schema, channel, message in reader.iter_messages():
                    body = json.loads(message.data)
                    if channel.topic == "/tianrt/skip":
                        self.skips[body["from_tick"]] = body["to_tick"]
                    elif channel.topic == "/tianrt/delivery":
                        self.deliveries.setdefault(body["source"], []).append((body["tick"], body["sample"]))
                    elif channel.topic.startswith("/output/"):
                        outs.setdefault(body["output"], []).append((body["tick"], _untensor(body)))
                    elif channel.metadata.get("kind") == "rejected":
                        self.rejected.setdefault(channel.metadata["input"], []).append(body)
                    elif channel.metadata.get("kind") == "log":
                        if schema.name == "foxglove.CompressedImage":
                            import cv2

                            img = cv2.imdecode(np.frombuffer(base64.b64decode(body["data"]), np.uint8),
                                               cv2.IMREAD_UNCHANGED)
                            value = img[..., ::-1] if img.ndim == 3 else img
                        else:
                            value = _untensor(body)
                        self.logs.setdefault(channel.topic, []).append(((message.log_time - start) * 1e-9,
                                                                        value))
                    else:
                        meta = channel.metadata
                        src, label = meta["source"], meta["input"]
                        if schema.name == "foxglove.CompressedImage":
                            value = _from_png(base64.b64decode(body["data"]), float(meta["scale"]),
                                              meta["layout"])
                        else:
                            value = _untensor(body)
                        ts = (message.publish_time - start) * 1e-9
                        entry = self.samples.setdefault(src, {}).setdefault(message.sequence, (ts, {}))
                        entry[1][label] = value
        except FileNotFoundError:
            raise StreamError(f"replay: no file {str(path)!r}") from None
        except StreamError:
            raise
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
            raise StreamError(f"replay: cannot read {str(path)!r} as MCAP ({type(exc).__name__}: {exc})") from None
        self.dt = float(self.meta["dt"])
        self.ticks = int(self.meta["ticks"])
        self.start_unix_ns = int(self.meta["start_unix_ns"])
        self.sources = json.loads(self.meta["sources"])
        self.outputs = {k: (np.array([t for t, _ in v]), np.stack([x for _, x in v])) for k, v in outs.items()}


class ReplaySource(TimedSource):
    """A recorded source's samples, delivered to the same inputs on the same ticks as in the
    recorded run (bind it with ``to=None``: its values are dicts keyed by input label)."""

    kind = "replay"
    default_policy = "never-drop"
    may_be_keyed = True

    def __init__(self, recording: Recording, source: str, **kw):
        if source not in recording.sources:
            raise StreamError(f"replay: {str(recording.path)!r} has no source {source!r}; it has "
                              + ", ".join(recording.sources))
        super().__init__(name=kw.pop("name", source), **kw)
        self.rec, self.source = recording, source
        self.plan = sorted(recording.deliveries.get(source, []))
        self.time_base = recording.sources[source].get("timestamps", "due")

    def open(self, clock, dt):
        if abs(dt - self.rec.dt) > 1e-12:
            raise StreamError(f"replay source `{self.name}`: recorded with a tick of {self.rec.dt:g} s, "
                              f"replayed with {dt:g} s")
        self._k = 0
        self.ended = not self.plan

    def _time_of(self, k):
        return self.plan[k][0] * self.rec.dt if k < len(self.plan) else math.inf

    def poll(self, t):
        out = []
        while self._k < len(self.plan) and self._time_of(self._k) <= t + 1e-9:
            tick, k = self.plan[self._k]
            self._k += 1
            ts, values = self.rec.samples[self.source][k]
            out.append((min(ts, t), dict(values)))
        if self._k >= len(self.plan):
            self.ended = True
        return out

    def describe(self):
        return f"{self.source} from {self.rec.path.name}, {len(self.plan)} deliveries"
