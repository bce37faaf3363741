"""The replay journal of a chip link: the pushes and runs the board acknowledged since the
last reset, in order, so that after a board reset the host can rebuild the chip state
(docs/protocol.md). Bounded: past ``limit`` bytes of pushed inputs it is dropped and marked
incomplete, and the link then says the state was not restored. ``Delivery`` keeps the
outputs a replay emits again from reaching the user twice."""
from __future__ import annotations

import numpy as np


class Journal:
    def __init__(self):
        self.entries: list[tuple] = []   # ("push", payload bytes) or ("run", ticks)
        self.nbytes = 0
        self.complete = True
        self.ticks = 0                   # ticks the board ran since the last reset (kept when incomplete)

    def add(self, entry: tuple, nbytes: int, limit: int, max_run: int) -> None:
        """Record an acknowledged command; consecutive runs merge (up to ``max_run`` ticks)."""
        if entry[0] == "run":
            self.ticks += entry[1]
        if not self.complete:
            return
        self.nbytes += nbytes
        if self.nbytes > limit:
            self.entries.clear()
            self.complete = False
        elif (entry[0] == "run" and self.entries and self.entries[-1][0] == "run"
              and self.entries[-1][1] + entry[1] <= max_run):
            self.entries[-1] = ("run", self.entries[-1][1] + entry[1])   # one RUN on replay
        else:
            self.entries.append(entry)

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0
        self.complete = True
        self.ticks = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(list(self.entries))


class Delivery:
    """What the user has been given of each output: the last tick delivered, and outputs a
    recovery's replay produced that are not delivered yet (returned first by ``deliver``)."""

    def __init__(self):
        self.last: dict[str, int] = {}
        self.pending: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def clear(self) -> None:
        self.last.clear()
        self.pending.clear()

    def hold(self, name: str, item: tuple) -> None:
        self.pending.setdefault(name, []).append(item)

    def unseen(self, name: str, ticks: np.ndarray) -> np.ndarray:
        """Mask of ``ticks`` neither delivered nor already held (a replay emits again what
        was already pulled)."""
        seen = self.last.get(name, -1)
        for t, _ in self.pending.get(name, []):
            if len(t):
                seen = max(seen, int(t.max()))
        return ticks > seen

    def deliver(self, new: dict) -> dict:
        """Held outputs, then the new ones; remembers the last tick given."""
        pending, self.pending = self.pending, {}
        out = {}
        for name in list(pending) + [n for n in new if n not in pending]:
            parts = pending.get(name, []) + ([new[name]] if name in new else [])
            full = [p for p in parts if len(p[0])] or parts[-1:]   # empty parts may have another batch
            ticks = np.concatenate([p[0] for p in full]).astype(np.int64)
            values = np.concatenate([p[1] for p in full]) if full else np.zeros((0,), np.int32)
            out[name] = (ticks, values)
            if len(ticks):
                self.last[name] = max(self.last.get(name, -1), int(ticks.max()))
        return out
