"""The scheduler's tick loop, apart from its set-up (scheduler.py): per tick, poll the due
sources, deliver queued samples, step the runtimes, hand outputs to their sinks, keep the
statistics, and handle wall-clock overruns; then jump to the next tick with work (due.py),
over the ticks on which nothing is due (docs/streaming.md)."""
from __future__ import annotations

import time

from .base import EPS
from .clocks import SimClock
from .due import NextDue

LONGEST = 1024  # ticks in one Runtime.advance call, at most (status callbacks, Ctrl-C stay prompt)


def quiet_ticks(feeds, n: int, end, dt: float, until_end: bool) -> int:
    """How many ticks from tick ``n`` on (>= 1) may run without the scheduler looking at a
    source: up to the first later tick at which a source is due (polled, or a miss counted),
    never past ``end``; 1 while a sample waits in a queue, or when every source has ended
    (the loop may stop after this tick)."""
    lim = min(end - n, LONGEST)
    ended = until_end
    for f in feeds:
        if f.buf:
            return 1
        if ended and f.state not in ("ended", "failed"):
            ended = False
        w = f.wake
        if w < (n + lim) * dt:  # due within the run (an ended source waits forever: inf)
            j = n + 1  # the first tick j > n with j * dt >= w is the next one that polls f
            if j * dt < w:
                j = max(j, int(w / dt) - 1)
                while j * dt < w:
                    j += 1
            if j - n < lim:
                lim = j - n
    return 1 if ended else max(int(lim), 1)


def tick_loop(self, end, until_end, on_status, status_every):
    """The scheduler's tick loop (steps 1-4 of scheduler.py's docstring) until ``end``;
    ``self`` is the Scheduler (its sources, runtimes, clock, statistics)."""
    feeds, rts, clock, dt = self.feeds, self.rts, self.clock, self.dt
    groups = self.groups
    rec = self.recorder
    skip = clock.realtime and self.overrun == "skip"
    stale = clock.realtime and self.overrun == "drop-stale"
    max_late = self.max_lateness
    replay_skips = self.replaying.skips if self.replaying is not None else None
    realtime = clock.realtime
    perf = time.perf_counter
    late_add, step_add = self.late.add, self.step_stat.add
    rt_outs = [(r, self._rt_outs[id(r)]) for r in rts]
    # runs of ticks without samples go to the runtime in one call (Runtime.advance) on the
    # simulated clock, with one runtime stepping every tick and no recorded skips to replay
    runs = (type(clock) is SimClock and len(rts) == 1 and rts[0].stride == 1 and not replay_skips
            and rts[0].advance is not None)
    step_many = self.step_stat.add_many
    # the ticks between two ticks with work are jumped over (Scheduler.per_tick: visit them),
    # unless some runtime steps every tick anyway
    due = None
    if not self.per_tick and min(r.stride for r in rts) > 1:
        due = NextDue([r.stride for r in rts], feeds, groups, dt, stale=stale, skips=replay_skips)
    jumped = 0
    w0 = perf()
    next_status = w0 + status_every
    n = self.tick
    next_check = n + 32 - (n & 31)
    try:
        while n < end:
            t = n * dt
            if realtime:
                a = perf()
                clock.wait_until(t)
                b = perf()
                self.wait_total += b - a
                now = clock.now()
                lateness = now - t
                if skip and lateness > max_late and end - n > 1:
                    # jump to the tick due now (not past the end: the last tick still runs)
                    k = min(int((now + EPS) / dt) - n, int(min(end, 2 ** 62)) - 1 - n)
                    if k > 0:
                        if rec is not None:
                            rec.skipped(n, n + k)
                        n += k
                        self.skipped_ticks += k
                        t = n * dt
                        lateness = now - t
                late_add(lateness)
                self.behind = lateness
                if (lateness > max_late) != self._over:  # fell behind, or caught up again
                    self._over = not self._over
                    self.overruns += self._over
                    if self.on_overrun is not None:
                        self.on_overrun(self._over, lateness, n)
                if lateness > dt:
                    self.late_ticks += 1
            else:
                if replay_skips and n in replay_skips:  # the recorded run skipped these ticks
                    k = min(replay_skips[n], end) - n
                    n += k
                    self.skipped_ticks += k
                    t = n * dt
                clock.wait_until(t)
            for f in feeds:
                if t >= f.wake:
                    f.service(t)
                if stale and f.buf:
                    f.drop_stale(clock.now() - max_late)
                if f.buf and f.group is None and not n % f.stride and f.buf[0][0] + f.delay <= t + EPS:
                    ts, item, k = f.buf.popleft()
                    f.stats.delivered += 1
                    if rec is not None:
                        rec.delivered(f, k, n)
                    for tgt, a in item:
                        r = tgt.r
                        if tgt.input in r.pending:
                            f.stats.dropped += 1  # superseded before a slower runtime stepped
                        r.pending[tgt.input] = a
                        r.pending_ts[tgt.input] = ts
            for grp in groups:
                if n % grp.stride:
                    continue
                matched = grp.match(t)
                for f, ts, item, k in matched or ():
                    f.stats.delivered += 1
                    if rec is not None:
                        rec.delivered(f, k, n)
                    for tgt, a in item:
                        r = tgt.r
                        if tgt.input in r.pending:
                            f.stats.dropped += 1
                        r.pending[tgt.input] = a
                        r.pending_ts[tgt.input] = ts
            step_time = 0.0
            for r, outs in rt_outs:
                if n % r.stride:
                    continue
                inputs = r.pending
                if inputs:
                    r.pending = {}
                    r.seq += 1
                    seq = r.seq
                    for k, ts in r.pending_ts.items():
                        r.in_seq[k] = seq
                        r.in_ts[k] = ts
                    r.pending_ts = {}
                a = perf()
                m = quiet_ticks(feeds, n, end, dt, until_end) if runs else 1
                if m > 1:
                    t_rt = r.rt.tick
                    try:
                        m, res = r.advance(inputs, m)
                    except BaseException:  # interrupted inside the run: count the ticks that ran
                        n += max(r.rt.tick - t_rt, 0)
                        self.tick = n
                        raise
                    if m > 1:  # the ticks up to the one that answered ran in that call
                        n += m - 1
                        t = n * dt
                        clock.wait_until(t)
                else:
                    res = r.step(inputs)
                step_time += perf() - a
                if res:
                    now = clock.now() if realtime else t
                    for k, v in res.items():
                        o = outs[k]
                        o.values += 1
                        if o.seen != r.seq:
                            fresh = o.fresh_time()
                            o.seen = r.seq
                            if fresh is not None:
                                lat = now - fresh
                                o.lat.add(lat)
                                if o.deadline is not None and lat > o.deadline:
                                    o.misses += 1
                                    if o.on_miss is not None:
                                        o.on_miss(o.key, lat, n)
                        for s in o.sinks:
                            s.write(v, n, t)
                        if rec is not None:
                            rec.output(o.key, v, n, t)
            if runs and m > 1:
                step_many(step_time / m, m)  # each tick of the call counts its share
            else:
                step_add(step_time)
            self.step_total += step_time
            n += 1
            self.tick = n
            if until_end and self._all_ended():
                self.stopped = "end"
                break
            if on_status is not None and n >= next_check:
                next_check = n + 32 - (n & 31)
                w = perf()
                if w >= next_status:
                    next_status = w + status_every
                    self.wall += w - w0
                    w0 = w
                    on_status(self.report(live=True))
            if due is not None:
                j = due(n, end)
                if j > n:  # nothing is due before tick j: as if ticks n .. j-1 ran empty
                    step_many(0.0, j - n)  # (each counts a step time of 0, as when visited)
                    jumped += j - n
                    n = j
                    self.tick = n
        else:
            self.stopped = "ticks"
            if not realtime and n > 0:
                clock.wait_until((n - 1) * dt)  # where the last tick, visited or not, left it
    finally:
        self.wall += perf() - w0
        self.ticks_run = n
        self.jumped_ticks += jumped

