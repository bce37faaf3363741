"""Overruns (issue 20): a model slower than real time, on a deterministic "slow machine"
clock: catch-up drifts without bound, skip keeps up by skipping ticks, drop-stale keeps
every tick but feeds fresh samples; deadline-miss callbacks; the status line warns."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.stream import ArraySink, Scheduler, SimulationSource, StreamError


class SlowMachine(tr.stream.Clock):
    """A wall clock in simulated time: waiting is free, and every runtime step costs
    ``cost`` seconds (charged by a sink on every output)."""
    kind = "slow"
    realtime = True

    def __init__(self, cost):
        self.t, self.cost = 0.0, cost

    def start(self, at=0.0):
        self.t = max(self.t, at)

    def now(self):
        return self.t

    def wait_until(self, t):
        self.t = max(self.t, t)

    def charge(self, value):
        self.t += self.cost


class LiveImu(tr.stream.Source):
    """A live 1 kHz sensor: each poll returns the samples taken (in the clock's real time)
    since the previous one, stamped with their sensor time."""
    kind = "imu"
    default_policy = "never-drop"

    def open(self, clock, dt):
        self.clock, self.k = clock, 0

    def poll(self, t):
        out = []
        while self.k * 1e-3 <= self.clock.now() + 1e-12:
            out.append((self.k * 1e-3, np.array([self.k * 1e-3, 1.0])))
            self.k += 1
        return out


def run(overrun, cost=1.5e-3, seconds=1.0, policy=None, live=False, **kw):
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("imu", shape=(2,))))
    clock = SlowMachine(cost)
    sched = Scheduler(tr.Runtime(g), clock=clock, overrun=overrun, **kw)
    if live:
        sched.add_source(LiveImu(policy=policy), to="imu")
    else:
        sched.add_source(SimulationSource(lambda t: np.array([t, 1.0]), rate_hz=1000, policy=policy),
                         to="imu")
    misses = []
    sched.add_sink("y", clock.charge, deadline=5e-3, on_miss=lambda *a: misses.append(a))
    ys = sched.add_sink("y", ArraySink())
    statuses = []
    rep = sched.run(seconds=seconds, on_status=lambda r: statuses.append(r.status_line()), status_every=0)
    return rep, ys, clock, misses, statuses


def test_catch_up_drifts_without_bound_and_says_so():
    rep, ys, clock, misses, statuses = run("catch-up")
    assert rep["ticks"] == 1000 and rep["skipped_ticks"] == 0
    assert clock.t == pytest.approx(1.5)  # 1 s of stream took 1.5 s
    assert rep["lateness_s"]["max"] == pytest.approx(0.5 - 1.5e-3, abs=2e-3)
    assert len(misses) == rep["outputs"]["y"]["deadline_misses"] > 900
    assert misses[0][0] == "y" and misses[0][1] > 5e-3
    assert "OVERRUN" in statuses[-1] and "behind real time (catch-up)" in statuses[-1]


def test_skip_keeps_up_with_real_time():
    rep, ys, clock, misses, statuses = run("skip", max_lateness=3e-3, policy="latest")
    assert rep["ticks"] == 1000
    # each step costs 1.5 ticks: it falls 3 ms behind, skips to now, and so on
    assert clock.t < 1.0 + 5e-3
    assert rep["skipped_ticks"] > 300 and len(ys) + rep["skipped_ticks"] == 1000
    assert ys.ticks[:9].tolist() == [0, 1, 2, 3, 4, 5, 6, 10, 11]
    assert rep["lateness_s"]["max"] <= 3e-3 + 1e-9
    assert rep["outputs"]["y"]["deadline_misses"] == 0 and not misses
    assert "tick(s) skipped" in str(rep) and "SKIPPED" in statuses[-1]
    s = rep["sources"]["sim"]
    assert s["received"] == s["delivered"] + s["dropped"] + s["queued"]  # keep-latest drops
    # a never-drop source keeps every sample: skipping ticks then leaves a growing backlog,
    # which its latency shows
    rep, ys, clock, misses, statuses = run("skip", max_lateness=3e-3)
    assert rep["sources"]["sim"]["queued"] > 300 and rep["outputs"]["y"]["latency_s"]["max"] > 0.3


def test_drop_stale_feeds_fresh_samples_to_every_tick():
    """A live sensor while the loop falls behind: catch-up hands the network an ever older
    backlog; drop-stale discards what is older than max_lateness and keeps every tick."""
    rep, ys, clock, misses, statuses = run("catch-up", live=True)
    assert rep["outputs"]["y"]["latency_s"]["max"] > 0.4  # the backlog of 1.5 s of samples
    rep, ys, clock, misses, statuses = run("drop-stale", max_lateness=2e-3, live=True)
    s = rep["sources"]["imu"]
    assert rep["skipped_ticks"] == 0 and s["stale"] > 300
    # the network does less work (an ANN steps only on a new sample): the loop keeps up
    assert clock.t < 1.0 + 5e-3 and len(ys) + s["stale"] + s["queued"] == s["received"]
    assert s["received"] == s["delivered"] + s["dropped"] + s["queued"]
    # every value the network got was at most 2 ms old when delivered (+ the step's cost)
    assert rep["outputs"]["y"]["latency_s"]["max"] <= 2e-3 + 1.5e-3 + 1e-9
    assert not misses


def test_overrun_policy_is_checked():
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("x", shape=(1,))))
    with pytest.raises(StreamError, match="overrun must be one of catch-up, skip, drop-stale"):
        Scheduler(tr.Runtime(g), overrun="degrade")


def test_on_overrun_lets_the_application_degrade_and_restore():
    """'Degrade': told when it falls behind and when it has caught up, the application runs a
    cheaper model meanwhile (here: a step that costs 0.5 ms instead of 1.5 ms)."""
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("imu", shape=(2,))))
    clock = SlowMachine(1.5e-3)
    events = []

    def degrade(behind, lateness, tick):
        events.append((behind, tick))
        clock.cost = 0.5e-3 if behind else 1.5e-3

    sched = Scheduler(tr.Runtime(g), clock=clock, max_lateness=5e-3, on_overrun=degrade)
    sched.add_source(SimulationSource(lambda t: np.array([t, 1.0]), rate_hz=1000), to="imu")
    sched.add_sink("y", clock.charge)
    rep = sched.run(ticks=1000)
    assert len(events) > 10 and [b for b, _ in events[:4]] == [True, False, True, False]
    assert rep["overruns"] == sum(b for b, _ in events)
    assert rep["lateness_s"]["max"] < 7e-3  # never far behind: degraded while late
    assert clock.t < 1.0 + 7e-3
    with pytest.raises(StreamError, match="on_overrun must be callable"):
        Scheduler(tr.Runtime(g), on_overrun=3)
