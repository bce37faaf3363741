"""tianrt.stream: run graphs live - a scheduler that drives runtimes on the graph tick from
sensor sources (camera, audio, serial, simulation, arrays) to sinks, on a simulated or a
wall clock, and measures latency, deadline misses, drops and rejects (docs/streaming.md).

    sched = tr.stream.Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.SimulationSource(bike.advance, rate_hz=200), to="imu")
    sched.add_sink("torque", bike.set_torque)
    report = sched.run(seconds=10)
"""
from .base import END, EPS, POLICIES, Sink, Source, StreamError, Terminated, TimedSource
from .clocks import Clock, SimClock, WallClock
from .scheduler import Report, Scheduler
from .sinks import ArraySink, CallableSink, SerialSink
from .synthetic import ArraySource, SimulationSource

__all__ = ["Scheduler", "Report", "Source", "TimedSource", "Sink", "END", "EPS", "POLICIES",
           "StreamError", "Terminated", "Clock", "SimClock", "WallClock", "ArraySource", "SimulationSource",
           "ArraySink", "CallableSink", "SerialSink", "CameraSource", "AudioSource",
           "SerialSource"]


def __getattr__(name):
    # Device sources import cv2 / pyserial; load them on first use.
    import importlib

    where = {"CameraSource": ".camera", "AudioSource": ".audio", "SerialSource": ".serialport"}
    if name in where:
        return getattr(importlib.import_module(where[name], __name__), name)
    raise AttributeError(f"module 'tianrt.stream' has no attribute {name!r}")
