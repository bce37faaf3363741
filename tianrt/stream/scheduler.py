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
4. outputs go to their sinks; each output's latency is its time minus the sensor time of the
   newest sample of *its own* inputs (the graph inputs it depends on) consumed since that
   output's previous value.

A tick on which none of this happens (no source due, nothing to deliver, no runtime's tick)
changes nothing: the loop jumps over such ticks to the next one with work (due.py), on either
clock, and counts them as ticks all the same (``Scheduler.per_tick`` visits them).
"""
from __future__ import annotations

import math
import time

from .base import Source, StreamError, Terminated
from .clocks import make_clock
from .feeds import Feed, OutputSlot, RuntimeSlot, Target
from .metrics import STATUS_WINDOW, WINDOW, Stat, format_report, status_line
from .sinks import as_sink
from .tickloop import tick_loop

# What the loop does when it runs late on the wall clock (docs/streaming.md, Overruns)
OVERRUNS = ("catch-up", "skip", "drop-stale")


def _resolve_dt(rts) -> float:
    return min(r.graph.dt for r in rts)


class Scheduler:
    """Drive runtimes from sources to sinks on the graph tick.

    ``runtimes``: one ``tr.Runtime``, a list, or a dict name -> Runtime (names are used in
    ``"name.input"`` / ``"name.output"`` when a bare name is ambiguous). Every runtime's dt must
    be a whole multiple of the scheduler's tick ``dt`` (default: the smallest graph dt); a
    runtime with dt = k * tick steps every k ticks. ``clock``: ``"sim"`` (default) or ``"wall"``
    or a Clock object. ``overrun``: what to do when the loop runs more than ``max_lateness``
    seconds late on the wall clock (``"catch-up"``, ``"skip"``, ``"drop-stale"``);
    ``on_overrun(behind, lateness_s, tick)`` is called when it falls behind (``behind=True``)
    and when it has caught up again - where an application degrades (a cheaper model, a lower
    camera rate) and restores.

    ``per_tick`` (class attribute, or per instance before ``run``): visit every tick, also the
    ticks on which nothing is due, as the loop did before it jumped over them; the results are
    the same, only slower (for benchmarks and as the tests' oracle).
    """

    per_tick = False

    def __init__(self, runtimes, clock="sim", *, dt: float | None = None, overrun: str = "catch-up",
                 max_lateness: float | None = None, on_overrun=None):
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
            self.rts.append(RuntimeSlot(name, r, int(round(k))))
        self.clock = make_clock(clock)
        if overrun not in OVERRUNS:
            raise StreamError(f"overrun must be one of {', '.join(OVERRUNS)}, got {overrun!r}")
        self.overrun = overrun
        if on_overrun is not None and not callable(on_overrun):
            raise StreamError(f"on_overrun must be callable, got {on_overrun!r}")
        self.on_overrun = on_overrun  # on_overrun(behind: bool, lateness_s, tick): degrade here
        self.overruns = 0  # times the loop fell more than max_lateness behind
        self._over = False
        self.max_lateness = 10 * self.dt if max_lateness is None else float(max_lateness)
        if not (self.max_lateness > 0 and math.isfinite(self.max_lateness)):
            raise StreamError(f"max_lateness must be a positive number of seconds, got {max_lateness!r}")
        self.feeds: list[Feed] = []
        self.outs: dict[str, OutputSlot] = {}
        for r in self.rts:
            for o in r.outputs:
                clash = sum(o in x.outputs for x in self.rts) > 1
                key = f"{r.name}.{o}" if clash else o
                self.outs[key] = OutputSlot(o, r, key)
        self._rt_outs = {id(r): {o.name: o for o in self.outs.values() if o.r is r} for r in self.rts}
        self.groups: list = []
        self.warnings: list[str] = []  # said once, in the report
        self.recorder = None
        self.replaying = None  # the Recording that replay() feeds from
        self.start_unix_ns = None
        self.tick = 0
        self._opened = self._closed = False
        self._reset_run_stats()

    def _reset_run_stats(self):
        self.step_stat = Stat()
        self.late = Stat()
        self.late_ticks = 0
        self.skipped_ticks = 0
        self.behind = 0.0  # lateness of the latest tick (wall clock)
        self.wall = self.step_total = self.wait_total = 0.0
        self.ticks_run = 0
        self.jumped_ticks = 0  # ticks with nothing due, which the loop did not visit
        self.stopped = "not started"

    # -- binding ------------------------------------------------------------------------------
    def _targets(self, ref: str, who: str) -> list[Target]:
        if not isinstance(ref, str) or not ref:
            raise StreamError(f"{who}: a target must be a graph input name, got {ref!r}")
        if "." in ref:
            rname, inp = ref.split(".", 1)
            for r in self.rts:
                if r.name == rname:
                    if inp not in r.inputs:
                        raise StreamError(f"{who}: runtime {rname!r} has no input {inp!r}; its inputs "
                                          f"are {', '.join(r.inputs)}")
                    return [Target(r, inp)]
        found = [Target(r, ref) for r in self.rts if ref in r.inputs]
        if not found:
            known = ", ".join(f"{r.name}.{i}" if len(self.rts) > 1 else i
                              for r in self.rts for i in r.inputs)
            raise StreamError(f"{who}: no graph input named {ref!r}; inputs are {known}")
        return found

    def _bound_inputs(self):
        out = set()
        for f in self.feeds:
            out.update((t.r.name, t.input) for t in f.all_targets())
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
                targets = [Target(free[0][0], free[0][1])]
        else:
            raise StreamError(f"{who}: to= must be an input name, a list or a dict, got {to!r}")
        if targets:
            shapes = {(t.shape, t.domain) for t in targets}
            if len(shapes) > 1:
                raise StreamError(f"{who} feeds inputs of different shapes: "
                                  + ", ".join(f"{t.label} {t.shape}" for t in targets))
            source.fit(targets[0].shape, targets[0].domain)
            rates = sorted({t.rate_hz for t in targets if t.rate_hz})
            if rates:
                source.fit_rate(rates[0], next(t.label for t in targets if t.rate_hz == rates[0]))
        self.feeds.append(Feed(source, targets, keyed,
                               lambda key: self._targets(key, f"{who} (key {key!r})")))
        return source

    def add_sink(self, output: str, sink=None, *, deadline: float | None = None, on_miss=None):
        """Send output ``output`` (or ``"runtime.output"``) to ``sink`` (a Sink, a list, or a
        callable ``fn(value)`` / ``fn(value, t)``); ``deadline`` in seconds sets the output's
        latency deadline, and ``on_miss(output, latency_s, tick)`` is called for every value
        later than it. Returns the sink. Several sinks per output are fine."""
        o = self._out(output)
        if sink is not None:
            self._not_started("add_sink")
        if deadline is not None:
            self.set_deadline(output, deadline)
        if on_miss is not None:
            if not callable(on_miss):
                raise StreamError(f"on_miss of output {output!r} must be callable, got {on_miss!r}")
            o.on_miss = on_miss
        if sink is None:
            return None
        s = as_sink(sink)
        o.sinks.append(s)
        return s

    def synchronise(self, sources, tolerance: float):
        """Deliver ``sources`` (names or Source objects, already added) only as matched sets:
        one sample of each, their sensor times within ``tolerance`` seconds (approximate-time
        synchronisation, tianrt.stream.sync). Samples that cannot be matched are counted as
        ``unmatched``. Returns the group, whose ``sets`` and ``unmatched`` count what happened."""
        from .sync import SyncGroup

        self._not_started("synchronise")
        chosen = []
        for s in sources:
            f = next((f for f in self.feeds if f.src is s or f.name == s), None)
            if f is None:
                raise StreamError(f"synchronise: no source {getattr(s, 'name', s)!r}; sources are "
                                  + ", ".join(f.name for f in self.feeds))
            if f.group is not None:
                raise StreamError(f"synchronise: source `{f.name}` is already in a synchronised group")
            chosen.append(f)
        grp = SyncGroup(chosen, tolerance)
        for f in chosen:
            f.group = grp
        self.groups.append(grp)
        return grp

    synchronize = synchronise

    def record(self, path):
        """Record the run to an MCAP file (tianrt.stream.record): every sample with its sensor
        time, which sample reached the network on which tick, and every output value.
        Needs the ``mcap`` library (``pip install 'tianrt[record]'``)."""
        from .record import Recorder

        self._not_started("record")
        self.recorder = Recorder(path)
        return self.recorder

    def replay(self, path) -> list:
        """Feed the network from a recording (``record``) instead of devices: every recorded
        source becomes a ReplaySource delivering the same samples to the same inputs on the
        same ticks. Returns the sources; ``run()`` without ticks then runs as many ticks as were
        recorded."""
        from .record import Recording, ReplaySource

        rec = Recording(path)
        if abs(rec.dt - self.dt) > 1e-12:
            raise StreamError(f"replay: {str(path)!r} was recorded with a tick of {rec.dt:g} s; this "
                              f"scheduler ticks every {self.dt:g} s")
        self.replaying = rec
        return [self.add_source(ReplaySource(rec, name)) for name in rec.sources]

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

    def _out(self, name) -> OutputSlot:
        if name in self.outs:
            return self.outs[name]
        matches = [o for o in self.outs.values() if o.name == name or f"{o.r.name}.{o.name}" == name]
        if len(matches) != 1:
            raise StreamError(f"no output named {name!r}; outputs are {', '.join(self.outs)}")
        return matches[0]

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
                f.open(self.clock, self.dt)
            for o in self.outs.values():
                for s in o.sinks:
                    s.open(self.clock, self.dt)
        except BaseException:
            self.close()
            raise
        if not self.clock.realtime:
            for f in self.feeds:
                if not f.src.timed and not getattr(f.src, "quiet_on_sim", False):
                    self.warnings.append(
                        f"source `{f.name}` is a live device, but the clock is simulated: stream time "
                        "runs as fast as the machine, so the device is read far less often than its "
                        "rate and misses pile up; use the wall clock (clock='wall', --clock wall)")
        self.clock.start(at=self.tick * self.dt)  # after opening: device start-up is not lateness
        self.start_unix_ns = time.time_ns() - int(round(self.tick * self.dt * 1e9))
        if self.recorder is not None:
            try:
                self.recorder.open(self, self.start_unix_ns)
            except BaseException:
                self.close()
                raise
            for f in self.feeds:
                f.rec = self.recorder
        self._opened = True

    def close(self) -> None:
        """Close every source and sink; safe to call twice."""
        for f in self.feeds:
            f.close()
        seen, first_error = set(), None
        for o in self.outs.values():
            for s in o.sinks:
                if id(s) not in seen:
                    seen.add(id(s))
                    try:
                        s.close()
                    except Exception as exc:  # noqa: BLE001 - close the others first
                        first_error = first_error or exc
        if self.recorder is not None and self._opened:
            try:
                self.recorder.close(self)
            except Exception as exc:  # noqa: BLE001 - report after closing everything
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
        neither is given) also stops once every source has ended (or failed) and delivered its
        last sample. Ctrl-C stops cleanly. Devices are closed at the end unless ``keep_open``
        (then a later ``run`` continues the stream). ``on_status(report)`` is called about
        every ``status_every`` wall seconds. Returns the report."""
        if ticks is not None and seconds is not None:
            raise StreamError("run: give ticks or seconds, not both")
        if ticks is None and seconds is None and until_end is None and self.replaying is not None:
            ticks, until_end = max(self.replaying.ticks - self.tick, 0), False  # as long as recorded
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
        except KeyboardInterrupt as exc:
            self.stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        except BaseException:
            self.stopped = "error"
            self.close()
            raise
        if not keep_open:
            self.close()
        return self.report()

    def _loop(self, end, until_end, on_status, status_every):
        return tick_loop(self, end, until_end, on_status, status_every)

    def _all_ended(self) -> bool:
        for f in self.feeds:
            if f.state == "failed":  # it will never send again; what it sent is delivered
                if f.buf and not self._unmatchable(f):
                    return False
                continue
            if f.state != "ended" or (f.buf and not self._unmatchable(f)):
                return False
        for r in self.rts:
            if r.pending:
                return False
        return True

    @staticmethod
    def _unmatchable(f) -> bool:
        """A synchronised source's leftovers that can never complete a set: a partner ended
        with nothing left."""
        return f.group is not None and any(g.state in ("ended", "failed") and not g.buf
                                           for g in f.group.feeds)

    # -- reporting ----------------------------------------------------------------------------
    def report(self, live: bool = False) -> "Report":
        """Metrics so far: per output latency (p50/p99/max) and deadline misses, per source
        counters and state, ticks/s, runtime step time, and on the wall clock tick lateness.
        ``live=True`` (the reports ``on_status`` gets): percentiles over the last
        ``STATUS_WINDOW`` values only, so that it is cheap at any point of a long run."""
        last = STATUS_WINDOW if live else WINDOW
        n = self.tick
        t = n * self.dt
        outs = {}
        for name, o in self.outs.items():
            outs[name] = {"values": o.values, "latency_s": o.lat.summary(last), "deadline_s": o.deadline,
                          "deadline_misses": o.misses}
        srcs = {}
        for f in self.feeds:
            d = f.stats.as_dict()
            d.update(f.src.extra)
            state = f.reported_state((n - 1) * self.dt)
            d.update(state=state, error=f.error, timestamps=f.src.time_base, last_reject=f.last_reject, policy=f.src.policy,
                     queued=len(f.buf),
                     open=self._opened and state not in ("failed",),
                     targets=sorted({x.label for x in f.all_targets()}))
            if f.group is not None:
                d["unmatched"] = f.unmatched
            srcs[f.name] = d
        wall = self.wall
        overhead = (wall - self.step_total - self.wait_total) / n if n else None
        return Report({
            "clock": self.clock.kind, "dt": self.dt, "ticks": n, "time_s": t, "wall_s": wall,
            "ticks_per_s": n / wall if wall > 0 else 0.0, "stopped": self.stopped,
            "jumped_ticks": self.jumped_ticks,
            "start_unix_s": None if self.start_unix_ns is None else self.start_unix_ns * 1e-9,
            "step_s": self.step_stat.summary(last), "overhead_per_tick_s": overhead,
            "lateness_s": self.late.summary(last) if self.clock.realtime else None,
            "late_ticks": self.late_ticks, "overrun": self.overrun, "skipped_ticks": self.skipped_ticks,
            "max_lateness_s": self.max_lateness, "overruns": self.overruns,
            "behind_s": self.behind if self.clock.realtime else None, "outputs": outs, "sources": srcs,
            "sync": [g.as_dict() for g in self.groups], "warnings": list(self.warnings)})


class Report(dict):
    """The scheduler's metrics as a plain dict (JSON-able), with text forms."""

    def status_line(self) -> str:
        return status_line(self)

    def __str__(self) -> str:
        return format_report(self)
