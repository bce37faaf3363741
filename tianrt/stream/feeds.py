"""The scheduler's per-run bookkeeping: a runtime slot (pending inputs, latency sequence),
a bound input (``Target``), an output slot (sinks, deadline, latency), and a ``Feed`` — one
source with its targets, queue policy, value checks, counters and health."""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..domains import SPIKE
from .base import EPS, NEVER_DROP_LIMIT, Source, StreamError
from .metrics import SourceStats, Stat

SMALL = 64  # values checked one by one in Python rather than by numpy (cheaper up to here)
BINARY = frozenset((0.0, 1.0))  # the values of a spike (-0.0 is 0.0)
MISS_SLACK = 1.5  # periods of silence before the first miss is counted
STALL = 3.0  # periods of silence after which a running source is reported as stalled


def output_inputs(graph) -> dict[str, tuple[str, ...]]:
    """For each output of ``graph``, the graph inputs it depends on (through any path,
    delays included): an output's latency follows only these inputs' samples."""
    inputs = set(graph.inputs)
    entries = getattr(graph, "entries", None)
    out = {}
    for name, node in graph.outputs.items():
        if entries is None:  # a graph without an inspectable structure: every input counts
            out[name] = tuple(sorted(inputs))
            continue
        seen, todo = set(), [node]
        while todo:
            n = todo.pop()
            if n in seen or n not in entries:
                continue
            seen.add(n)
            e = entries[n]
            todo.extend(getattr(e, "inputs", ()) or ())
            if getattr(e, "source", None):
                todo.append(e.source)
        out[name] = tuple(sorted(seen & inputs))
    return out


class RuntimeSlot:
    """One runtime and its per-run state: the inputs waiting for its next step, and, per
    graph input, when it last got a sample (the step's sequence number) and that sample's
    sensor time, from which each output's latency is measured."""

    def __init__(self, name, rt, stride):
        self.name, self.rt, self.stride = name, rt, stride
        self.step = rt.step
        self.advance = getattr(rt, "advance", None)  # step, then ticks without samples in one call
        g = rt.graph
        self.inputs = {k: (tuple(v.shape), v.domain) for k, v in g.inputs.items()}
        self.outputs = list(g.outputs)
        self.depends = output_inputs(g)
        self.pending: dict = {}
        self.pending_ts: dict = {}  # input -> sensor time of the pending sample
        self.seq = 0  # number of steps that consumed at least one new sample
        self.in_seq = {k: 0 for k in self.inputs}  # input -> seq of the step that last took a sample
        self.in_ts = {k: -math.inf for k in self.inputs}  # input -> that sample's sensor time


class Target:
    """A graph input a feed delivers to."""

    __slots__ = ("r", "input", "shape", "domain", "rate_hz", "last_good")

    def __init__(self, r: RuntimeSlot, name: str):
        self.r, self.input = r, name
        self.shape, self.domain = r.inputs[name]
        self.rate_hz = r.rt.graph.inputs[name].rate_hz  # the rate the graph declares
        self.last_good = None

    @property
    def label(self):
        return f"{self.r.name}.{self.input}"


class OutputSlot:
    """An output: its sinks, deadline and latency; ``inputs`` are the graph inputs it depends
    on, ``seen`` the runtime step sequence number of its previous latency sample."""

    __slots__ = ("name", "r", "sinks", "deadline", "misses", "values", "lat", "seen", "inputs", "key",
                 "on_miss")

    def __init__(self, name, r, key=None):
        self.name, self.r = name, r
        self.key = key or name  # the scheduler's name for it ("runtime.output" when ambiguous)
        self.on_miss = None  # called as on_miss(key, latency, tick) for a value past its deadline
        self.inputs = r.depends.get(name, tuple(r.inputs))
        self.sinks = []
        self.deadline = None
        self.misses = self.values = 0
        self.lat = Stat()
        self.seen = 0

    def fresh_time(self):
        """Sensor time of the newest sample among this output's inputs taken since its
        previous latency sample, or None when none of its inputs got a new sample."""
        r, seen, best = self.r, self.seen, None
        for i in self.inputs:
            if r.in_seq[i] > seen:
                ts = r.in_ts[i]
                if best is None or ts > best:
                    best = ts
        return best


class Feed:
    """A source with its bindings, queue, counters and health. ``resolve(key)`` turns a key
    of a dict-valued sample into targets."""

    def __init__(self, src: Source, targets, keyed, resolve):
        self.src, self.name = src, src.name
        self.targets = targets  # list of Target (single-value sources)
        self.keyed = keyed  # dict key -> list of Target, filled lazily (dict-valued sources)
        self.resolve = resolve
        self.buf = deque()
        self.stats = SourceStats()
        self.state, self.error = "idle", None
        self.last_reject = None  # why the latest rejected value was rejected
        self.period = None
        self.last_arrival = None
        self.miss_at = math.inf
        self.wake = -math.inf
        self.stride = min((t.r.stride for t in targets), default=1)
        self.delay = src.delay  # a sample is delivered no earlier than its time + delay
        self.group = None  # the SyncGroup delivering this feed's samples, if any
        self.unmatched = 0
        self.accepted = 0  # samples that passed the checks: the next one's index
        self.rec = None  # a Recorder, when the run is recorded
        self.now = 0.0  # stream time of the current poll
        self.ts = 0.0  # timestamp of the sample being checked
        self.limit = src.capacity if src.policy == "queue" else (src.capacity or NEVER_DROP_LIMIT)

    def all_targets(self) -> list[Target]:
        return list(self.targets) + [t for ts in self.keyed.values() for t in ts]

    # -- life cycle -------------------------------------------------------------------------
    def open(self, clock, dt) -> None:
        self.src.open(clock, dt)
        self.state, self.error = "running", None
        # known once open; a source without a rate takes its input's declared rate
        rate = self.src.rate_hz or next((x.rate_hz for x in self.targets if x.rate_hz), None)
        self.period = 1.0 / rate if rate else None
        self.miss_at = MISS_SLACK * self.period if self.period is not None else math.inf

    def close(self) -> None:
        try:
            self.src.close()
        except Exception as exc:  # noqa: BLE001 - a failing close must not hide the others
            if self.error is None:
                self.error = f"close failed: {exc}"

    def reported_state(self, last_tick_time: float) -> str:
        if (self.state == "running" and self.period is not None and
                last_tick_time - (self.last_arrival or 0.0) > STALL * self.period + EPS):
            return "stalled"
        return self.state

    # -- values -----------------------------------------------------------------------------
    def check(self, tgt: Target, value):
        """The value as a float32 copy of the target's shape, or None when rejected."""
        src, st = self.src, self.stats
        problem = None
        try:
            # a copy: a simulation may hand out one buffer that it mutates in place later
            a = np.array(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            a, problem = None, f"not numbers ({exc})"
        if a is not None and a.shape != tgt.shape:
            problem = f"shape {a.shape}, expected {tgt.shape}"
        if problem is None:
            # a few values (sensor vectors): Python's isfinite on a list is 3x cheaper than numpy's
            vals = a.reshape(-1).tolist() if a.size <= SMALL else None
            if vals is not None and all(map(math.isfinite, vals)):
                finite = None
            else:
                finite = np.isfinite(a)
            if finite is not None and not finite.all():
                if src.invalid == "sanitise":
                    fill = tgt.last_good if tgt.last_good is not None else np.float32(0)
                    a = np.where(finite, a, fill).astype(np.float32)
                    st.sanitised += 1
                else:
                    bad = tuple(int(i) for i in np.argwhere(~finite)[0])
                    problem = f"NaN or inf at index {bad}"
            if problem is None and tgt.domain == SPIKE and not (
                    BINARY.issuperset(vals) if finite is None  # a few values, as read: all finite
                    else ((a == 0.0) | (a == 1.0)).all()):
                problem = "a spike input needs values 0 or 1"
        if problem is not None:
            if src.invalid == "raise":
                raise StreamError(f"source `{self.name}` -> input `{tgt.label}`: {problem}")
            st.rejected += 1
            self.last_reject = f"{tgt.label}: {problem}"
            if self.rec is not None:
                self.rec.rejected(self, tgt, value, problem, self.ts, int(round(self.now / self.rec.dt)))
            return None
        tgt.last_good = a
        return a

    def arrive(self, ts: float, value) -> None:
        """A sample from the source: count, check, and queue it by the source's policy."""
        st = self.stats
        st.received += 1
        self.last_arrival = self.ts = ts
        if self.period is not None:
            self.miss_at = ts + MISS_SLACK * self.period
        if isinstance(value, dict):
            item = []
            for k, v in value.items():
                tgts = self.keyed.get(k)
                if tgts is None:
                    tgts = self.keyed[k] = self.resolve(k)
                for tgt in tgts:
                    a = self.check(tgt, v)
                    if a is not None:
                        item.append((tgt, a))
            if not item:
                return
        else:
            if not self.targets:
                raise StreamError(f"source `{self.name}` produced a {type(value).__name__}, but it is "
                                  "bound by dict keys; return a dict or bind it with to='input'")
            a = self.check(self.targets[0], value)
            if a is None:
                return
            item = [(t, a) for t in self.targets]
        k = self.accepted
        self.accepted += 1
        if self.rec is not None:
            self.rec.sample(self, k, ts, int(round(self.now / self.rec.dt)), item)
        buf, pol = self.buf, self.src.policy
        if pol == "latest":
            if buf:
                st.dropped += len(buf)
                buf.clear()
        elif len(buf) >= self.limit:
            if pol == "never-drop":
                raise StreamError(f"never-drop source `{self.name}` has a backlog of {len(buf)} samples: "
                                  "it produces faster than the runtime consumes; lower its rate or use "
                                  "policy='queue' or 'latest'")
            st.dropped += 1
            if self.src.overflow == "drop-newest":
                return
            buf.popleft()
        buf.append((ts, item, k))

    def drop_stale(self, oldest: float) -> None:
        """Overrun policy ``drop-stale``: discard queued samples taken before ``oldest``. With
        nothing fresh to compute on, a network that steps on new samples skips its work and
        the loop catches up; its inputs hold their last values meanwhile."""
        buf = self.buf
        while buf and buf[0][0] < oldest:
            buf.popleft()
            self.stats.dropped += 1
            self.src.extra["stale"] = self.src.extra.get("stale", 0) + 1

    def service(self, t: float) -> None:
        """Poll the source if it is due, count misses, and set when to look again."""
        src = self.src
        self.now = t
        if self.state == "running":
            try:
                samples = src.poll(t)
            except StreamError:
                raise
            except Exception as exc:  # noqa: BLE001 - a dead device must not stop the loop
                self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
                self.close()
                samples = []
            for ts, v in samples:
                self.arrive(ts, v)
            if src.ended and self.state != "failed":
                self.state = "ended"
                self.miss_at = math.inf
        if t > self.miss_at + EPS:
            n = int((t - self.miss_at) / self.period - EPS) + 1
            self.stats.missed += n
            self.miss_at += n * self.period
        if self.state == "running":
            nxt = src.next_time() if src.timed else -math.inf
        else:
            nxt = math.inf
        self.wake = min(nxt - EPS, self.miss_at + EPS)
