"""Where each element of a value lives on the chip: a buffer id and an index per element
(buffer -1: the constant 0 of padding). The compiler builds these for every node's value;
the mapper turns them into axon segments and routes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Src:
    """Where each element of a value lives: buffer id and index (-1 buffer: constant 0)."""
    buf: np.ndarray
    idx: np.ndarray

    def __len__(self):
        return len(self.buf)

    def take(self, sel) -> "Src":
        sel = np.asarray(sel)
        pad = sel < 0
        s = np.where(pad, 0, sel)
        return Src(np.where(pad, -1, self.buf[s]), np.where(pad, 0, self.idx[s]))

    @staticmethod
    def cat(parts) -> "Src":
        return Src(np.concatenate([p.buf for p in parts]), np.concatenate([p.idx for p in parts]))

    @staticmethod
    def of_buffer(buf: int, n: int) -> "Src":
        return Src(np.full(n, buf, np.int64), np.arange(n, dtype=np.int64))
