"""The scheduler jumps over ticks on which nothing is due (tianrt/stream/due.py): random sets
of runtimes at different ticks, fed by sources at different rates, start offsets, policies and
delays (array, timed and simulation sources, synchronised pairs, sources that fail or end),
give bit for bit what the per-tick loop gives (``Scheduler.per_tick``, the loop before the
jump, kept as the oracle): every sink value with its tick and time, every simulation call,
the report except its wall-time figures, and the MCAP recording. The ticks jumped over are
exactly those a simple model says are empty."""
import json
import math
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tianrt as tr
from tianrt.stream import END, ArraySink, ArraySource, Clock, Scheduler, SimulationSource
from tianrt.stream.due import NextDue, first_at

DT = 1e-3
WALL_KEYS = ("wall_s", "ticks_per_s", "overhead_per_tick_s", "jumped_ticks", "start_unix_s")


def net(stride: int, window: int, seed: int, name: str, dt: float = DT) -> tr.Graph:
    """Inputs a (2,) and b (3,); outputs a_out and b_out repeat them (what reached the runtime,
    and when), count is a spiking layer's spike count every ``window`` ticks (its state
    depends on every step)."""
    g = tr.Graph(dt=stride * dt, name=name)
    a, b = g.input("a", shape=(2,)), g.input("b", shape=(3,))
    g.output("a_out", g.add(tr.ann.ReLU(), a))
    g.output("b_out", g.add(tr.ann.ReLU(), b))
    s = g.add(tr.bridge.RateEncoder(), g.add(tr.ann.ReLU(), g.add(tr.ann.Concat(), a, b)))
    v = g.add(tr.snn.LIF(beta=0.8), g.add(tr.snn.Dense(5, 4, seed=seed), s))
    g.output("count", g.add(tr.bridge.SpikeCount(window=window), v))
    return g


source_spec = st.fixed_dictionaries({
    "kind": st.sampled_from(["rate", "times", "sim"]),
    "rate": st.sampled_from([7.0, 30.0, 47.0, 100.0, 200.0, 333.0, 1000.0, 1500.0]),
    "start": st.integers(0, 80).map(lambda k: k * 2.5e-4),
    "n": st.integers(1, 40),
    "policy": st.sampled_from(["latest", "queue", "never-drop"]),
    "delay": st.sampled_from([0.0, 0.0007, 0.003]),
    "input": st.sampled_from(["a", "b"]),
    "runtime": st.integers(-1, 2),          # -1: the input in every runtime that has it
    "silent_every": st.integers(0, 4),      # simulation: None every k-th call (misses)
    "fail_at": st.integers(0, 30),          # simulation: raises at this call (0: never)
    "keyed": st.booleans(),                 # simulation: returns {"v": value}, bound by key
    "seed": st.integers(0, 1000),
})

case = st.fixed_dictionaries({
    "strides": st.lists(st.sampled_from([1, 2, 3, 4, 5, 6, 8, 10, 15, 24]), min_size=1, max_size=3),
    "windows": st.lists(st.integers(1, 3), min_size=3, max_size=3),
    "sources": st.lists(source_spec, min_size=1, max_size=4),
    "sync": st.booleans(),
    "runs": st.lists(st.integers(1, 300), min_size=0, max_size=2),  # [] : until every source ends
    "record": st.booleans(),
    "tick": st.sampled_from([DT, 1 / 24000]),   # 1/24000 s: the bicycle brain's, inexact in binary
})


def build(c, per_tick: bool, path=None):
    dt = c["tick"]
    rts = {f"r{i}": tr.Runtime(net(s, c["windows"][i], i, f"r{i}", dt)) for i, s in enumerate(c["strides"])}
    sched = Scheduler(rts, dt=dt)
    sched.per_tick = per_tick
    if path is not None:
        sched.record(path)
    calls = []
    names = []
    for j, s in enumerate(c["sources"]):
        rng = np.random.default_rng(s["seed"])
        shape = (2,) if s["input"] == "a" else (3,)
        vals = rng.random((s["n"],) + shape).astype(np.float32)
        scale = dt / DT  # times, rates and delays in ticks alike on either tick
        kw = {"name": f"s{j}", "policy": s["policy"], "delay": s["delay"] * scale,
              **({"capacity": 3} if s["policy"] == "queue" else {})}
        start = s["start"] * scale
        if s["kind"] == "rate":
            src = ArraySource(vals, rate_hz=s["rate"] / scale, start=start, **kw)
        elif s["kind"] == "times":
            times = np.sort(rng.integers(0, 400, s["n"]) * 2.5e-4 * scale + start)
            src = ArraySource(vals, times=times, **kw)
        else:
            def fn(t, j=j, s=s, vals=vals, count=[0]):
                k = count[0]
                count[0] += 1
                calls.append((j, t))
                if s["fail_at"] and k == s["fail_at"]:
                    raise RuntimeError("sensor unplugged")
                if k >= len(vals):
                    return END
                if s["silent_every"] and k % s["silent_every"] == s["silent_every"] - 1:
                    return None
                return {"v": vals[k]} if s["keyed"] else vals[k]
            src = SimulationSource(fn, rate_hz=s["rate"] / scale, start=start, **kw)
        r = s["runtime"]
        to = s["input"] if r < 0 or r >= len(rts) else f"r{r}.{s['input']}"
        if s["kind"] == "sim" and s["keyed"]:  # a feed bound by keys delivers on any tick
            to = {"v": to}
        sched.add_source(src, to=to)
        names.append(src.name)
    if c["sync"] and len(names) >= 2:
        sched.synchronise(names[:2], tolerance=0.002 * dt / DT)
    sinks = {o: sched.add_sink(o, ArraySink()) for o in sched.outs}
    seen = []
    first = next(iter(sched.outs))
    sched.add_sink(first, lambda v, t: seen.append((t, sched.clock.now())))
    return sched, sinks, calls, seen


def ride(c, per_tick: bool, path=None):
    sched, sinks, calls, seen = build(c, per_tick, path)
    reports = []
    try:
        if c["runs"]:
            for k, ticks in enumerate(c["runs"]):
                reports.append(sched.run(ticks=ticks, keep_open=k < len(c["runs"]) - 1))
        else:
            reports.append(sched.run(until_end=True))
    except tr.stream.StreamError as exc:  # a never-drop backlog: the same error, on the same tick
        reports.append({"error": str(exc), "ticks": sched.tick})
    for r in reports:
        for k in WALL_KEYS:
            r.pop(k, None)
        if "step_s" in r:
            r["step_s"] = r["step_s"]["count"]
    out = {"reports": [json.loads(json.dumps(r, default=float)) for r in reports], "calls": calls,
           "seen": seen, "tick": sched.tick, "clock": sched.clock.now(),
           "sinks": {k: (s.ticks.tolist(), s.times.tolist(), [np.asarray(v).tobytes() for v in s._v])
                     for k, s in sinks.items()}}
    return out, sched


def messages(path):
    """Every message of a recording, its times relative to the run's start (the wall-clock
    start differs between runs; nothing else may)."""
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        reader = make_reader(f)
        meta = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
        start = int(meta["tianrt"].pop("start_unix_ns"))
        out = [meta]
        for schema, channel, m in reader.iter_messages():
            body = json.loads(m.data)
            body.pop("timestamp", None)
            out.append((channel.topic, schema.name, m.log_time - start, m.publish_time - start, m.sequence, body))
    return out


@settings(derandomize=True, deadline=None, max_examples=80)
@given(c=case)
def test_jumping_over_empty_ticks_changes_nothing(c):
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, "old.mcap"), os.path.join(d, "new.mcap")] if c["record"] else [None, None]
        old, s_old = ride(c, True, paths[0])
        new, s_new = ride(c, False, paths[1])
        assert new == old
        if c["record"]:
            assert messages(paths[1]) == messages(paths[0])
    assert s_old.jumped_ticks == 0
    if min(c["strides"]) == 1:
        assert s_new.jumped_ticks == 0        # some runtime steps every tick: nothing to jump
    assert s_new.step_stat.n == s_old.step_stat.n == s_new.tick - s_new.skipped_ticks


def test_the_ticks_jumped_over_are_the_empty_ones():
    """Runtimes every 4 and 6 ticks and a 100 Hz source from 2.5 ms on a 1 ms tick: the loop
    visits the ticks that are multiples of 4 or 6 and the ticks the samples land on, and only
    those (a simple model of the empty ticks, independent of the loop)."""
    rts = {"r0": tr.Runtime(net(4, 1, 0, "r0")), "r1": tr.Runtime(net(6, 1, 1, "r1"))}
    sched = Scheduler(rts, dt=DT)
    visited = []
    inner = sched.clock.wait_until
    sched.clock.wait_until = lambda t: visited.append(round(t / DT)) or inner(t)
    src = sched.add_source(ArraySource(np.ones((1000, 2), np.float32), rate_hz=100.0, start=0.0025,
                                       name="x"), to="r0.a")
    out = sched.add_sink("r0.a_out", ArraySink())
    rep = sched.run(ticks=120)
    due = sorted({n for n in range(120) if n % 4 == 0 or n % 6 == 0 or n == 0}
                 | {math.ceil(2.5 + 10 * k) for k in range(12)})
    assert visited[:-1] == due and visited[-1] == 119    # the clock is left where tick 119 would
    assert rep["ticks"] == 120 and rep["jumped_ticks"] == 120 - len(due)
    assert rep["step_s"]["count"] == 120
    # a sample landing on tick 3, 13, 23, ... reaches r0 (every 4 ticks) on its next tick
    assert out.ticks[out.ticks > 0][:3].tolist() == [4, 16, 24]
    assert src.name == "x" and rep["sources"]["x"]["delivered"] == 12


class LagClock(Clock):
    """A deterministic real-time clock: time moves only when the loop waits, or when a sink
    says the machine was slow (``lag``); for tests of the wall-clock path."""

    kind = "wall"
    realtime = True

    def __init__(self):
        self.t, self.waits = 0.0, []

    def start(self, at=0.0):
        self.t = float(at)

    def now(self):
        return self.t

    def wait_until(self, t):
        self.waits.append(t)
        self.t = max(self.t, t)


def test_wall_clock_waits_only_for_ticks_with_work_and_delivers_the_same():
    """On the real-time path the loop sleeps until the next tick with work; with a clock never
    late, everything but the lateness statistics (now over the ticks visited) is as before."""
    got = {}
    for per_tick in (True, False):
        clock = LagClock()
        sched = Scheduler({"r0": tr.Runtime(net(5, 2, 0, "r0")), "r1": tr.Runtime(net(8, 1, 1, "r1"))},
                          clock=clock, dt=DT)
        sched.per_tick = per_tick
        sched.add_source(ArraySource(np.arange(40.0, dtype=np.float32).reshape(20, 2), rate_hz=30.0), to="a")
        sinks = {o: sched.add_sink(o, ArraySink()) for o in sched.outs}
        rep = sched.run(ticks=200)
        got[per_tick] = ({k: (s.ticks.tolist(), s.values.tolist()) for k, s in sinks.items()},
                         rep["sources"], rep["ticks"], [round(t / DT) for t in clock.waits],
                         rep["lateness_s"]["count"])
    (old, src_old, n_old, w_old, l_old), (new, src_new, n_new, w_new, l_new) = got[True], got[False]
    assert new == old and src_new == src_old and n_new == n_old == 200
    assert w_old == list(range(200)) and l_old == 200
    due = sorted({n for n in range(200) if n % 5 == 0 or n % 8 == 0} | {math.ceil(k * 1000 / 30) for k in range(6)})
    assert w_new == due and l_new == len(due)


def test_a_replayed_skip_lands_where_it_was_recorded(tmp_path):
    """A wall-clock run that fell behind and skipped ticks (overrun="skip"), replayed on the
    simulated clock: the jumping loop stops at the recorded skip and resumes where the
    recorded run did, as the per-tick loop does."""
    pytest.importorskip("mcap")
    path = tmp_path / "lag.mcap"
    clock = LagClock()
    sched = Scheduler({"r0": tr.Runtime(net(3, 1, 0, "r0")), "r1": tr.Runtime(net(4, 1, 1, "r1"))},
                      clock=clock, dt=DT, overrun="skip", max_lateness=0.005)
    sched.per_tick = True               # the skip starts on tick 34, on which nothing is due
    sched.record(path)
    sched.add_source(ArraySource(np.ones((40, 2), np.float32), rate_hz=100.0, start=0.0013, name="x"), to="a")

    def slow(v, t):                      # the machine stalls for 20 ms once, at tick 33
        if round(t / DT) == 33:
            clock.t += 0.020
    sched.add_sink("r0.a_out", slow)
    rep = sched.run(ticks=150)
    assert rep["skipped_ticks"] > 0 and 34 in tr.stream.record.Recording(path).skips
    got = []
    for per_tick in (True, False):
        s = Scheduler({"r0": tr.Runtime(net(3, 1, 0, "r0")), "r1": tr.Runtime(net(4, 1, 1, "r1"))}, dt=DT)
        s.per_tick = per_tick
        s.replay(path)
        sinks = {o: s.add_sink(o, ArraySink()) for o in s.outs}
        r = s.run()
        got.append(({k: (x.ticks.tolist(), x.values.tolist()) for k, x in sinks.items()},
                    r["skipped_ticks"], r["ticks"], r["step_s"]["count"]))
    assert got[1] == got[0] and got[0][1] == rep["skipped_ticks"]


@settings(derandomize=True, deadline=None, max_examples=200)
@given(x=st.floats(-1.0, 10.0), n=st.integers(0, 20000), eps=st.sampled_from([0.0, 1e-9]),
       dt=st.sampled_from([1e-3, 1 / 24000, 1 / 600, 0.01]))
def test_first_at_is_the_first_tick_the_loop_would_act_on(x, n, eps, dt):
    k = first_at(x, n, dt, eps)
    assert k >= n and k * dt + eps >= x
    assert k == n or (k - 1) * dt + eps < x


def test_next_due_without_a_table_for_long_stride_patterns():
    """Strides whose common period is too long for a table are searched directly."""
    nd = NextDue([1009, 1013, 997], [], [], DT)
    assert nd.gap is None
    assert nd(1, math.inf) == 997 and nd(998, 5000) == 1009 and nd(1010, 1012) == 1012
    small = NextDue([4, 6], [], [], DT)
    assert [small(n, math.inf) for n in range(13)] == [0, 4, 4, 4, 4, 6, 6, 8, 8, 12, 12, 12, 12]


def test_drop_stale_on_the_wall_clock_drops_the_same_samples():
    """Under overrun="drop-stale" a queued sample may go stale on any tick: while one is
    queued, the loop visits every tick, so the same samples are dropped as stale (and not as
    an overflow of the queue) as by the per-tick loop."""
    got = []
    for per_tick in (True, False):
        clock = LagClock()
        sched = Scheduler({"r0": tr.Runtime(net(10, 1, 0, "r0")), "r1": tr.Runtime(net(15, 1, 1, "r1"))},
                          clock=clock, dt=DT, overrun="drop-stale", max_lateness=0.004)
        sched.per_tick = per_tick
        sched.add_source(ArraySource(np.random.default_rng(0).random((300, 2), np.float32), rate_hz=700.0,
                                     policy="queue", capacity=3, name="x"), to="r0.a")

        def slow(v, t, clock=clock):        # the machine stalls for 25 ms at ticks 40 and 90
            if round(t / DT) in (40, 90):
                clock.t += 0.025
        sched.add_sink("r0.a_out", slow)
        out = sched.add_sink("r0.a_out", ArraySink())
        rep = sched.run(ticks=200)
        got.append((out.ticks.tolist(), out.values.tolist(), rep["sources"]["x"]))
    assert got[1] == got[0]
    assert got[0][2]["stale"] > 0 and got[0][2]["dropped"] > got[0][2]["stale"]
