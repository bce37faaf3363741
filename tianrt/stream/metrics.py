"""Streaming metrics: bounded latency statistics, per-source counters, and the text forms
(one status line while running, a table at the end) of a scheduler's report."""
from __future__ import annotations

import math

import numpy as np

# Percentiles are taken over the most recent values; count, mean and max cover the whole run.
WINDOW = 1 << 16
# The live status line takes its percentiles over fewer values, so that building it costs the
# same (tens of microseconds) however long the run has been going.
STATUS_WINDOW = 1 << 10


class Stat:
    """Count, mean and max of a series, with p50/p99 over its last ``WINDOW`` values."""

    __slots__ = ("n", "total", "max", "_ring")

    def __init__(self):
        self.n = 0
        self.total = 0.0
        self.max = -math.inf
        self._ring = np.empty(WINDOW, np.float64)

    def add(self, x: float) -> None:
        self._ring[self.n & (WINDOW - 1)] = x
        self.n += 1
        self.total += x
        if x > self.max:
            self.max = x

    def add_many(self, x: float, m: int) -> None:
        """``add(x)`` ``m`` times."""
        i = self.n & (WINDOW - 1)
        if i + m <= WINDOW:
            self._ring[i:i + m] = x
        else:
            self._ring[i:] = x
            self._ring[:min(i + m - WINDOW, WINDOW)] = x
        self.n += m
        self.total += x * m
        if x > self.max:
            self.max = x

    def summary(self, last: int = WINDOW) -> dict:
        """Count, mean, max of the whole series; p50 and p99 over its ``last`` values."""
        if not self.n:
            return {"count": 0, "mean": None, "p50": None, "p99": None, "max": None}
        if last < min(self.n, WINDOW):
            i = self.n & (WINDOW - 1)
            recent = (self._ring[i - last:i] if i >= last else
                      np.concatenate([self._ring[WINDOW - (last - i):], self._ring[:i]]))
        else:
            recent = self._ring[:min(self.n, WINDOW)]
        p50, p99 = np.percentile(recent, (50, 99))
        return {"count": self.n, "mean": self.total / self.n, "p50": float(p50),
                "p99": float(p99), "max": float(self.max)}


class SourceStats:
    """Counters of one source. For a source bound to one input, at every moment
    ``received == delivered + dropped + rejected + queued``."""

    __slots__ = ("received", "delivered", "dropped", "rejected", "sanitised", "missed", "extra")

    def __init__(self):
        self.received = self.delivered = self.dropped = 0
        self.rejected = self.sanitised = self.missed = 0
        self.extra: dict[str, int] = {}

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("received", "delivered", "dropped", "rejected",
                                            "sanitised", "missed")}
        d.update(self.extra)
        return d


def ms(x) -> str:
    return "-" if x is None else f"{x * 1e3:.2f}ms"


def status_line(report: dict) -> str:
    """One line for a live display: time, tick rate, lateness, per-output and per-source state."""
    parts = [f"t={report['time_s']:.2f}s", f"{report['ticks']} ticks ({report['ticks_per_s']:.0f}/s)"]
    late = report.get("lateness_s")
    if late and late["count"]:
        parts.append(f"late p99 {ms(late['p99'])}")
    behind = report.get("behind_s")
    if behind is not None and behind > report.get("max_lateness_s", report["dt"]):
        warn = f"OVERRUN: {ms(behind)} behind real time ({report.get('overrun', 'catch-up')})"
        parts.append(warn)
    if report.get("skipped_ticks"):
        parts.append(f"SKIPPED {report['skipped_ticks']} ticks")
    for name, o in report["outputs"].items():
        lat = o["latency_s"]
        s = f"{name}: {o['values']} out, p50 {ms(lat['p50'])} p99 {ms(lat['p99'])}"
        if o["deadline_s"] is not None:
            s += f" miss {o['deadline_misses']}"
        parts.append(s)
    for name, s in report["sources"].items():
        flag = "" if s["state"] == "running" else f" [{s['state']}]"
        parts.append(f"{name}: {s['received']} rx {s['dropped']} drop {s['rejected']} rej"
                     f" {s['missed']} miss{flag}")
    return " | ".join(parts)


def format_report(report: dict) -> str:
    """A multi-line final report: run summary, one row per output and per source."""
    lines = [f"stream: {report['ticks']} ticks on the {report['clock']} clock, "
             f"{report['time_s']:.3f} s stream time in {report['wall_s']:.3f} s wall "
             f"({report['ticks_per_s']:.0f} ticks/s); stopped: {report['stopped']}"]
    st = report["step_s"]
    if st["count"]:
        lines.append(f"  runtime step: mean {ms(st['mean'])}, p99 {ms(st['p99'])}, max {ms(st['max'])}")
    late = report.get("lateness_s")
    if late and late["count"]:
        lines.append(f"  tick lateness: p50 {ms(late['p50'])}, p99 {ms(late['p99'])}, "
                     f"max {ms(late['max'])}; {report['late_ticks']} tick(s) later than one dt")
        if report.get("skipped_ticks"):
            lines.append(f"  overrun policy {report['overrun']}: {report['skipped_ticks']} tick(s) skipped")
    if report["outputs"]:
        lines.append(f"  {'output':16s} {'values':>8s} {'lat p50':>9s} {'lat p99':>9s} {'lat max':>9s}"
                     f" {'deadline':>9s} {'misses':>7s}")
        for name, o in report["outputs"].items():
            lat = o["latency_s"]
            dl = "-" if o["deadline_s"] is None else ms(o["deadline_s"])
            lines.append(f"  {name:16s} {o['values']:8d} {ms(lat['p50']):>9s} {ms(lat['p99']):>9s}"
                         f" {ms(lat['max']):>9s} {dl:>9s} {o['deadline_misses']:7d}")
    if report["sources"]:
        lines.append(f"  {'source':16s} {'received':>8s} {'deliv.':>8s} {'dropped':>8s} {'rejected':>8s}"
                     f" {'sanit.':>7s} {'missed':>7s}  state")
        for name, s in report["sources"].items():
            extra = {k: v for k, v in s.items() if k not in (
                "received", "delivered", "dropped", "rejected", "sanitised", "missed", "state",
                "error", "policy", "queued", "targets", "open", "last_reject", "timestamps")}
            tail = s["state"] + (f" ({s['error']})" if s.get("error") else "")
            if s.get("last_reject"):
                tail += f"; last reject: {s['last_reject']}"
            if extra:
                tail += "; " + ", ".join(f"{k} {v}" for k, v in extra.items())
            lines.append(f"  {name:16s} {s['received']:8d} {s['delivered']:8d} {s['dropped']:8d}"
                         f" {s['rejected']:8d} {s['sanitised']:7d} {s['missed']:7d}  {tail}")
    for w in report.get("warnings") or ():
        lines.append(f"  warning: {w}")
    for grp in report.get("sync") or ():
        lines.append(f"  synchronised {' + '.join(grp['sources'])} (within {ms(grp['tolerance_s'])}): "
                     f"{grp['sets']} sets, {grp['unmatched']} unmatched")
    return "\n".join(lines)
