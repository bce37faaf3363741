"""The streaming scheduler: drives one or more runtimes on the graph's tick, from sources to
sinks, and measures what happens (docs/streaming.md).

Each tick n (stream time t = n * dt), in this order:

1. every source that is due is polled; new samples are validated against the graph input
   they feed (shape, finite values; see ``invalid``) and queued by the source's policy;
   a source with a declared rate that stays silent for 1.5 periods gets a miss counted per
   period; a source that raises is marked failed and closed, and its input keeps its value;
2. each source with a queued sample delivers one (the newest, for keep-latest) to its inputs;
3. each runtime whose tick this is steps with the inputs that got a new value (the others
   keep their last value inside the runtime);
4. outputs go to their sinks; each output's latency is its time minus the timestamp of the
   newest sample its runtime consumed since that output's previous value.
"""
from __future__ import annotations

import math
import time
from collections import deque

import numpy as np

from ..domains import SPIKE
from .base import EPS, NEVER_DROP_LIMIT, Source, StreamError
from .clocks import make_clock
from .metrics import SourceStats, Stat, format_report, status_line
from .sinks import as_sink

_MISS_SLACK = 1.5  # periods of silence before the first miss is counted
_STALL = 3.0  # periods of silence after which a running source is reported as stalled


class _Rt:
    """One runtime and its per-run state."""

    def __init__(self, name, rt, stride):
        self.name, self.rt, self.stride = name, rt, stride
        self.step = rt.step
        g = rt.graph
        self.inputs = {k: (tuple(v.shape), v.domain) for k, v in g.inputs.items()}
        self.outputs = list(g.outputs)
        self.pending: dict = {}
        self.pending_ts = -math.inf
        self.seq = 0  # number of steps that consumed at least one new sample
        self.last_ts = -math.inf


class _Target:
    __slots__ = ("r", "input", "shape", "domain", "rate_hz", "last_good")

    def __init__(self, r: _Rt, name: str):
        self.r, self.input = r, name
        self.shape, self.domain = r.inputs[name]
        self.rate_hz = r.rt.graph.inputs[name].rate_hz  # the rate the graph declares
        self.last_good = None

    @property
    def label(self):
        return f"{self.r.name}.{self.input}"


class _Out:
    __slots__ = ("name", "r", "sinks", "deadline", "misses", "values", "lat", "seen")

    def __init__(self, name, r):
        self.name, self.r = name, r
        self.sinks = []
        self.deadline = None
        self.misses = self.values = 0
        self.lat = Stat()
        self.seen = 0


class _Feed:
    """A source with its bindings, queue, counters and health."""

    def __init__(self, src: Source, targets, keyed):
        self.src, self.name = src, src.name
        self.targets = targets  # list of _Target (single-value sources)
        self.keyed = keyed  # dict key -> list of _Target, filled lazily (dict-valued sources)
        self.buf = deque()
        self.stats = SourceStats()
        self.state, self.error = "idle", None
        self.last_reject = None  # why the latest rejected value was rejected
        self.period = 1.0 / src.rate_hz if src.rate_hz else None
        self.last_arrival = None
        self.miss_at = math.inf
        self.wake = -math.inf
        self.stride = 1
        self.limit = src.capacity if src.policy == "queue" else (
            src.capacity or NEVER_DROP_LIMIT)


def _resolve_dt(rts) -> float:
    return min(r.graph.dt for r in rts)


class Scheduler:
    """Drive runtimes from sources to sinks on the graph tick.

    ``runtimes``: one ``tr.Runtime``, a list, or a dict name -> Runtime (names are used in
    ``"name.input"`` / ``"name.output"`` when a bare name is ambiguous). Every runtime's dt must
    be a whole multiple of the scheduler's tick ``dt`` (default: the smallest graph dt); a
    runtime with dt = k * tick steps every k ticks. ``clock``: ``"sim"`` (default) or ``"wall"``
    or a Clock object.
    """

    def __init__(self, runtimes, clock="sim", *, dt: float | None = None):
        from ..runtime import Runtime

        if isinstance(runtimes, Runtime):
            named = [(runtimes.graph.name, runtimes)]
        elif isinstance(runtimes, dict):
            named = list(runtimes.items())
        else:
            named = []
            for r in runtimes:
                named.append((r.graph.name if isinstance(r, Runtime) else "?", r))
        if not named:
            raise StreamError("Scheduler needs at least one tr.Runtime")
        seen = {}
        for i, (name, r) in enumerate(named):
            if not isinstance(r, Runtime):
                raise StreamError(f"Scheduler drives tr.Runtime objects, got {type(r).__name__} "
                                  f"for runtime {name!r}")
            if name in seen:
                name = f"{name}{i}"
            seen[name] = r
        self.dt = float(dt) if dt is not None else _resolve_dt(seen.values())
        self.rts = []
        for name, r in seen.items():
            k = r.graph.dt / self.dt
            if abs(k - round(k)) > 1e-6 or round(k) < 1:
                raise StreamError(f"runtime {name!r}: its graph dt {r.graph.dt:g} s is not a whole "
                                  f"multiple of the scheduler tick {self.dt:g} s; pick graph dts that "
                                  "are multiples of the smallest one")
            self.rts.append(_Rt(name, r, int(round(k))))
        self.clock = make_clock(clock)
        self.feeds: list[_Feed] = []
        self.outs: dict[str, _Out] = {}
        for r in self.rts:
            for o in r.outputs:
                clash = sum(o in x.outputs for x in self.rts) > 1
                self.outs[f"{r.name}.{o}" if clash else o] = _Out(o, r)
        self._rt_outs = {id(r): {o.name: o for o in self.outs.values() if o.r is r} for r in self.rts}
        self.tick = 0
        self._opened = self._closed = False
        self._reset_run_stats()

    def _reset_run_stats(self):
        self.step_stat = Stat()
        self.late = Stat()
        self.late_ticks = 0
        self.wall = self.step_total = self.wait_total = 0.0
        self.ticks_run = 0
        self.stopped = "not started"

    # -- binding ------------------------------------------------------------------------------
    def _targets(self, ref: str, who: str) -> list[_Target]:
        if not isinstance(ref, str) or not ref:
            raise StreamError(f"{who}: a target must be a graph input name, got {ref!r}")
        if "." in ref:
            rname, inp = ref.split(".", 1)
            for r in self.rts:
                if r.name == rname:
                    if inp not in r.inputs:
                        raise StreamError(f"{who}: runtime {rname!r} has no input {inp!r}; its inputs "
                                          f"are {', '.join(r.inputs)}")
                    return [_Target(r, inp)]
        found = [_Target(r, ref) for r in self.rts if ref in r.inputs]
        if not found:
            known = ", ".join(f"{r.name}.{i}" if len(self.rts) > 1 else i
                              for r in self.rts for i in r.inputs)
            raise StreamError(f"{who}: no graph input named {ref!r}; inputs are {known}")
        return found

    def _bound_inputs(self):
        out = set()
        for f in self.feeds:
            out.update((t.r.name, t.input) for t in f.targets)
            for ts in f.keyed.values():
                out.update((t.r.name, t.input) for t in ts)
        return out

    def add_source(self, source: Source, to=None) -> Source:
        """Bind ``source`` to graph input(s). ``to``: an input name (bound in every runtime that
        has it), ``"runtime.input"``, a list of those, or, for sources whose values are dicts,
        a dict mapping value keys to inputs. Without ``to``: the input named like the source,
        else the only input no other source feeds; dict-valued sources use their keys."""
        if not isinstance(source, Source):
            raise StreamError(f"add_source takes a tianrt.stream source, got {type(source).__name__}")
        self._not_started("add_source")
        if any(f.src is source for f in self.feeds):
            raise StreamError(f"source `{source.name}` is already bound")
        names = {f.name for f in self.feeds}
        if source.name in names:
            base, i = source.name, 2
            while f"{base}{i}" in names:
                i += 1
            source.name = f"{base}{i}"
        who = f"source `{source.name}`"
        targets, keyed = [], {}
        if isinstance(to, dict):
            keyed = {k: self._targets(v, who) for k, v in to.items()}
        elif isinstance(to, (list, tuple)):
            for ref in to:
                targets += self._targets(ref, who)
        elif isinstance(to, str):
            targets = self._targets(to, who)
        elif to is None:
            bound = self._bound_inputs()
            free = [(r, i) for r in self.rts for i in r.inputs if (r.name, i) not in bound]
            if any(source.name in r.inputs for r in self.rts):
                targets = self._targets(source.name, who)
            elif len(free) != 1 and getattr(source, "may_be_keyed", False):
                pass  # values are dicts whose keys name the inputs; resolved on first use
            else:
                if len(free) != 1:
                    raise StreamError(f"{who}: say which input it feeds with to=...; free inputs: "
                                      + (", ".join(f"{r.name}.{i}" for r, i in free) or "none"))
                targets = [_Target(free[0][0], free[0][1])]
        else:
            raise StreamError(f"{who}: to= must be an input name, a list or a dict, got {to!r}")
        if targets:
            shapes = {(t.shape, t.domain) for t in targets}
            if len(shapes) > 1:
                raise StreamError(f"{who} feeds inputs of different shapes: "
                                  + ", ".join(f"{t.label} {t.shape}" for t in targets))
            source.fit(targets[0].shape, targets[0].domain)
        feed = _Feed(source, targets, keyed)
        feed.stride = min((t.r.stride for t in targets), default=1)
        self.feeds.append(feed)
        return source

    def add_sink(self, output: str, sink=None, *, deadline: float | None = None):
        """Send output ``output`` (or ``"runtime.output"``) to ``sink`` (a Sink, a list, or a
        callable ``fn(value)`` / ``fn(value, t)``); ``deadline`` in seconds sets the output's
        latency deadline. Returns the sink. Several sinks per output are fine."""
        o = self._out(output)
        if sink is not None:
            self._not_started("add_sink")
        if deadline is not None:
            self.set_deadline(output, deadline)
        if sink is None:
            return None
        s = as_sink(sink)
        o.sinks.append(s)
        return s

    def set_deadline(self, output: str, seconds: float) -> None:
        """Latency deadline of an output: a value later than this counts as a deadline miss."""
        if not (seconds > 0 and math.isfinite(seconds)):
            raise StreamError(f"deadline of output {output!r} must be a positive number of seconds, "
                              f"got {seconds!r}")
        self._out(output).deadline = float(seconds)

    def _not_started(self, what: str) -> None:
        if self._opened or self._closed:
            raise StreamError(f"{what}: the stream has already started; bind every source and sink "
                              "before the first run()")

    def _out(self, name) -> _Out:
        if name in self.outs:
            return self.outs[name]
        matches = [o for o in self.outs.values() if o.name == name or f"{o.r.name}.{o.name}" == name]
        if len(matches) != 1:
            raise StreamError(f"no output named {name!r}; outputs are {', '.join(self.outs)}")
        return matches[0]

    # -- values -------------------------------------------------------------------------------
    def _check(self, feed: _Feed, tgt: _Target, value):
        """The value as float32 of the target's shape, or None when rejected."""
        src, st = feed.src, feed.stats
        problem = None
        try:
            # a copy: a simulation may hand out one buffer that it mutates in place later
            a = np.array(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            a, problem = None, f"not numbers ({exc})"
        if a is not None and a.shape != tgt.shape:
            problem = f"shape {a.shape}, expected {tgt.shape}"
        if problem is None:
            finite = np.isfinite(a)
            if not finite.all():
                if src.invalid == "sanitise":
                    fill = tgt.last_good if tgt.last_good is not None else np.float32(0)
                    a = np.where(finite, a, fill).astype(np.float32)
                    st.sanitised += 1
                else:
                    bad = tuple(int(i) for i in np.argwhere(~finite)[0])
                    problem = f"NaN or inf at index {bad}"
            if problem is None and tgt.domain == SPIKE and not np.isin(a, (0.0, 1.0)).all():
                problem = "a spike input needs values 0 or 1"
        if problem is not None:
            if src.invalid == "raise":
                raise StreamError(f"source `{feed.name}` -> input `{tgt.label}`: {problem}")
            st.rejected += 1
            feed.last_reject = f"{tgt.label}: {problem}"
            return None
        tgt.last_good = a
        return a

    def _keyed_targets(self, feed: _Feed, key) -> list[_Target]:
        ts = feed.keyed.get(key)
        if ts is None:
            ts = feed.keyed[key] = self._targets(key, f"source `{feed.name}` (key {key!r})")
        return ts

    def _arrive(self, feed: _Feed, ts: float, value) -> None:
        st = feed.stats
        st.received += 1
        feed.last_arrival = ts
        if feed.period is not None:
            feed.miss_at = ts + _MISS_SLACK * feed.period
        if isinstance(value, dict):
            item = []
            for k, v in value.items():
                for tgt in self._keyed_targets(feed, k):
                    a = self._check(feed, tgt, v)
                    if a is not None:
                        item.append((tgt, a))
            if not item:
                return
        else:
            if not feed.targets:
                raise StreamError(f"source `{feed.name}` produced a {type(value).__name__}, but it is "
                                  "bound by dict keys; return a dict or bind it with to='input'")
            a = self._check(feed, feed.targets[0], value)
            if a is None:
                return
            item = [(t, a) for t in feed.targets]
        buf, pol = feed.buf, feed.src.policy
        if pol == "latest":
            if buf:
                st.dropped += len(buf)
                buf.clear()
        elif len(buf) >= feed.limit:
            if pol == "never-drop":
                raise StreamError(f"never-drop source `{feed.name}` has a backlog of {len(buf)} samples: "
                                  "it produces faster than the runtime consumes; lower its rate or use "
                                  "policy='queue' or 'latest'")
            st.dropped += 1
            if feed.src.overflow == "drop-newest":
                return
            buf.popleft()
        buf.append((ts, item))

    def _service(self, feed: _Feed, t: float) -> None:
        src = feed.src
        if feed.state in ("running", "stalled"):
            try:
                samples = src.poll(t)
            except StreamError:
                raise
            except Exception as exc:  # noqa: BLE001 - a dead device must not stop the loop
                feed.state, feed.error = "failed", f"{type(exc).__name__}: {exc}"
                self._close_source(feed)
                samples = []
            for ts, v in samples:
                self._arrive(feed, ts, v)
            if src.ended and feed.state != "failed":
                feed.state = "ended"
                feed.miss_at = math.inf
        if t > feed.miss_at + EPS:
            n = int((t - feed.miss_at) / feed.period - EPS) + 1
            feed.stats.missed += n
            feed.miss_at += n * feed.period
        nxt = src.next_time() if (src.timed and feed.state in ("running", "stalled")) else (
            math.inf if feed.state in ("ended", "failed") else -math.inf)
        feed.wake = min(nxt - EPS, feed.miss_at + EPS)

    # -- running ------------------------------------------------------------------------------
    def open(self) -> None:
        """Open every source and sink (``run`` does it when needed)."""
        if self._opened:
            return
        if self._closed:
            raise StreamError("this stream was closed (run() closes it unless keep_open=True); "
                              "make a new Scheduler to stream again")
        try:
            for f in self.feeds:
                f.src.open(self.clock, self.dt)
                f.state, f.error = "running", None
                # known once open; a source without a rate takes its input's declared rate
                rate = f.src.rate_hz or next((x.rate_hz for x in f.targets if x.rate_hz), None)
                f.period = 1.0 / rate if rate else None
                f.miss_at = math.inf
                if f.period is not None:
                    f.miss_at = _MISS_SLACK * f.period
            for o in self.outs.values():
                for s in o.sinks:
                    s.open(self.clock, self.dt)
        except BaseException:
            self.close()
            raise
        self.clock.start(at=self.tick * self.dt)  # after opening: device start-up is not lateness
        self._opened = True

    def _close_source(self, f: _Feed):
        try:
            f.src.close()
        except Exception as exc:  # noqa: BLE001
            if f.error is None:
                f.error = f"close failed: {exc}"

    def close(self) -> None:
        """Close every source and sink; safe to call twice."""
        for f in self.feeds:
            self._close_source(f)
        seen, first_error = set(), None
        for o in self.outs.values():
            for s in o.sinks:
                if id(s) not in seen:
                    seen.add(id(s))
                    try:
                        s.close()
                    except Exception as exc:  # noqa: BLE001 - close the others first
                        first_error = first_error or exc
        self._closed = self._opened or self._closed
        self._opened = False
        if first_error is not None:
            raise first_error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, ticks: int | None = None, seconds: float | None = None, *,
            until_end: bool | None = None, on_status=None, status_every: float = 0.5,
            keep_open: bool = False) -> "Report":
        """Run ``ticks`` ticks (or ``seconds`` of stream time). ``until_end`` (default: when
        neither is given) also stops once every source has ended and delivered its last
        sample. Ctrl-C stops cleanly. Devices are closed at the end unless ``keep_open``
        (then a later ``run`` continues the stream). ``on_status(report)`` is called about
        every ``status_every`` wall seconds. Returns the report."""
        if ticks is not None and seconds is not None:
            raise StreamError("run: give ticks or seconds, not both")
        if seconds is not None:
            ticks = int(round(seconds / self.dt))
        if ticks is not None and int(ticks) < 0:
            raise StreamError(f"run: ticks must be >= 0, got {ticks}")
        if until_end is None:
            until_end = ticks is None
        if ticks is None and not until_end:
            raise StreamError("run: give ticks, seconds or until_end=True")
        if self._opened:
            self.clock.start(at=self.tick * self.dt)  # resume: no lateness for the pause
        self.open()
        self.stopped = "running"
        end = math.inf if ticks is None else self.tick + int(ticks)
        try:
            self._loop(end, until_end, on_status, status_every)
        except KeyboardInterrupt:
            self.stopped = "interrupted"
        except BaseException:
            self.stopped = "error"
            self.close()
            raise
        if not keep_open:
            self.close()
        return self.report()

    def _loop(self, end, until_end, on_status, status_every):
        feeds, rts, clock, dt = self.feeds, self.rts, self.clock, self.dt
        realtime = clock.realtime
        perf = time.perf_counter
        late_add, step_add = self.late.add, self.step_stat.add
        rt_outs = [(r, self._rt_outs[id(r)]) for r in rts]
        w0 = perf()
        next_status = w0 + status_every
        n = self.tick
        try:
            while n < end:
                t = n * dt
                if realtime:
                    a = perf()
                    clock.wait_until(t)
                    b = perf()
                    self.wait_total += b - a
                    lateness = clock.now() - t
                    late_add(lateness)
                    if lateness > dt:
                        self.late_ticks += 1
                else:
                    clock.wait_until(t)
                for f in feeds:
                    if t >= f.wake:
                        self._service(f, t)
                    if f.buf and not n % f.stride:
                        ts, item = f.buf.popleft()
                        f.stats.delivered += 1
                        for tgt, a in item:
                            r = tgt.r
                            if tgt.input in r.pending:
                                f.stats.dropped += 1  # superseded before a slower runtime stepped
                            r.pending[tgt.input] = a
                            if ts > r.pending_ts:
                                r.pending_ts = ts
                step_time = 0.0
                for r, outs in rt_outs:
                    if n % r.stride:
                        continue
                    inputs = r.pending
                    if inputs:
                        r.pending = {}
                        r.seq += 1
                        r.last_ts = r.pending_ts
                        r.pending_ts = -math.inf
                    a = perf()
                    res = r.step(inputs)
                    step_time += perf() - a
                    if res:
                        now = clock.now() if realtime else t
                        for k, v in res.items():
                            o = outs[k]
                            o.values += 1
                            if o.seen != r.seq:
                                o.seen = r.seq
                                lat = now - r.last_ts
                                o.lat.add(lat)
                                if o.deadline is not None and lat > o.deadline:
                                    o.misses += 1
                            for s in o.sinks:
                                s.write(v, n, t)
                step_add(step_time)
                self.step_total += step_time
                n += 1
                self.tick = n
                if until_end and self._all_ended():
                    self.stopped = "end"
                    break
                if on_status is not None and not n & 31:
                    w = perf()
                    if w >= next_status:
                        next_status = w + status_every
                        self.wall += w - w0
                        w0 = w
                        on_status(self.report())
            else:
                self.stopped = "ticks"
        finally:
            self.wall += perf() - w0
            self.ticks_run = n

    def _all_ended(self) -> bool:
        for f in self.feeds:
            if f.state != "ended" or f.buf:
                return False
        for r in self.rts:
            if r.pending:
                return False
        return True

    # -- reporting ----------------------------------------------------------------------------
    def report(self) -> "Report":
        """Metrics so far: per output latency (p50/p99/max) and deadline misses, per source
        counters and state, ticks/s, runtime step time, and on the wall clock tick lateness."""
        n = self.tick
        t = n * self.dt
        outs = {}
        for name, o in self.outs.items():
            outs[name] = {"values": o.values, "latency_s": o.lat.summary(), "deadline_s": o.deadline,
                          "deadline_misses": o.misses}
        srcs = {}
        for f in self.feeds:
            d = f.stats.as_dict()
            d.update(f.src.extra)
            state = f.state
            last_tick = (n - 1) * self.dt
            if (state == "running" and f.period is not None and
                    last_tick - (f.last_arrival or 0.0) > _STALL * f.period + EPS):
                state = "stalled"
            d.update(state=state, error=f.error, last_reject=f.last_reject, policy=f.src.policy,
                     queued=len(f.buf),
                     open=self._opened and state not in ("failed",),
                     targets=sorted({x.label for x in f.targets} |
                                    {x.label for ts in f.keyed.values() for x in ts}))
            srcs[f.name] = d
        wall = self.wall
        overhead = (wall - self.step_total - self.wait_total) / n if n else None
        return Report({
            "clock": self.clock.kind, "dt": self.dt, "ticks": n, "time_s": t, "wall_s": wall,
            "ticks_per_s": n / wall if wall > 0 else 0.0, "stopped": self.stopped,
            "step_s": self.step_stat.summary(), "overhead_per_tick_s": overhead,
            "lateness_s": self.late.summary() if self.clock.realtime else None,
            "late_ticks": self.late_ticks, "outputs": outs, "sources": srcs})


class Report(dict):
    """The scheduler's metrics as a plain dict (JSON-able), with text forms."""

    def status_line(self) -> str:
        return status_line(self)

    def __str__(self) -> str:
        return format_report(self)
