"""A stand-in for firmware_sim's Engine in the link/protocol tests (tests only).

Same interface as firmware_sim.engine.Engine, with a tiny stateful model so that lost,
doubled or replayed commands show up in the outputs: each tick every output accumulates
``gain * input`` and emits the accumulator every ``window`` ticks. Image bytes: b"FAKEIMG1",
u32 CRC-32 of the rest, then a JSON description.
"""
from __future__ import annotations

import json
import struct
import time
import zlib

import numpy as np

from tianrt.chip import protocol as P

MAGIC = b"FAKEIMG1"


class EngineError(Exception):
    def __init__(self, code: int, message: str):
        self.code, self.message = code, message
        super().__init__(message)


def make_image(name="fake", shape=(3,), gain=2, window=2, cores=4, pad=0, sleep=0.0) -> bytes:
    """``sleep``: seconds each tick takes (a slow board)."""
    body = json.dumps({"name": name, "shape": list(shape), "gain": gain, "window": window,
                       "cores": cores, "pad": "x" * pad, "sleep": sleep}).encode()
    return MAGIC + struct.pack("<I", zlib.crc32(body)) + body


class FakeEngine:
    def __init__(self, spec=None):
        self.spec = {"mesh_rows": 2, "mesh_cols": 4, **(spec or {})}
        self.image = None
        self.reset_counters()
        self.reset()

    def load_image(self, data: bytes) -> dict:
        if data[:8] != MAGIC:
            raise EngineError(P.E_BAD_IMAGE, "byte 0: not a FAKEIMG1 image")
        (crc,) = struct.unpack_from("<I", data, 8)
        if zlib.crc32(data[12:]) != crc:
            raise EngineError(P.E_BAD_IMAGE, "byte 8: image checksum mismatch")
        desc = json.loads(data[12:])
        free = self.spec["mesh_rows"] * self.spec["mesh_cols"]
        if desc["cores"] > free:
            raise EngineError(P.E_CAPACITY, f"image needs {desc['cores']} cores, {free} free")
        self.image = desc
        self.reset()
        return self.info()

    def info(self) -> dict:
        if self.image is None:
            return {}
        d = self.image
        return {"name": d["name"], "cores_used": d["cores"],
                "inputs": [{"name": "x", "shape": d["shape"], "dtype": "int32"}],
                "outputs": [{"name": "y", "shape": d["shape"], "dtype": "int32"}]}

    def reset(self) -> None:
        self.t = 0
        self.x = None
        self.acc = None
        self.out_t, self.out_v = [], []

    def push_input(self, name, values) -> None:
        if self.image is None:
            raise EngineError(P.E_NO_IMAGE, "no image loaded")
        if name != "x":
            raise EngineError(P.E_BAD_INPUT, f"no input {name!r}; inputs: x")
        v = np.asarray(values, dtype=np.int32)
        shape = tuple(self.image["shape"])
        if v.shape == shape:
            v = v[None]
        if v.shape[1:] != shape:
            raise EngineError(P.E_BAD_INPUT, f"input 'x': shape {v.shape}, expected {shape}")
        self.x = v.copy()

    def run(self, ticks: int) -> None:
        if self.image is None:
            raise EngineError(P.E_NO_IMAGE, "no image loaded")
        for _ in range(ticks):
            time.sleep(self.image.get("sleep", 0.0))
            if self.x is not None:
                if self.acc is None or self.acc.shape != self.x.shape:
                    self.acc = np.zeros_like(self.x)
                self.acc += self.image["gain"] * self.x
            self.t += 1
            self.rounds += 1
            if self.t % self.image["window"] == 0 and self.acc is not None:
                self.out_t.append(self.t)
                self.out_v.append(self.acc.copy())

    def pull_outputs(self) -> dict:
        if not self.out_t:
            return {}
        out = {"y": (np.array(self.out_t, np.int64), np.stack(self.out_v).astype(np.int32))}
        self.out_t, self.out_v = [], []
        return out

    def counters(self) -> dict:
        return {"rounds": self.rounds, "cycles": 100 * self.rounds}

    def reset_counters(self) -> None:
        self.rounds = 0
