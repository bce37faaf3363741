"""The chip backend: compile the integer graph to an image, load it on a board, drive it.

``Runtime(qgraph, backend="chip", port="auto")``: graph inputs are quantized on the host
(their ``q.Quantize`` nodes), the integer part runs on the chip, ``q.Dequantize`` nodes at
the outputs run on the host. ``port`` is a serial device or pty path, a pyserial URL
(``socket://127.0.0.1:PORT``), ``"auto"`` (start a local firmware_sim on a pty) or
``"inproc"`` (the emulator's Engine in this process, no link: for tests and tools).
Options: ``spec`` (a ChipSpec), ``seed``; any other option goes to ChipLink.

``Runtime(qgraph, backend="chip", session=chip, region=name)``: the graph runs in region
``name`` of a chip shared with other networks (``chip = tr.chip.open_many(partition, port)``):
its image is the partition's, its commands go over the session's one link addressed to its
region (docs/chip.md, One chip, several networks).
"""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import BackendError
from ..qmath import dequantize, quantize
from .base import Backend, RunResult


class _InProcess:
    """The Engine behind the same methods as ChipLink."""

    def __init__(self, spec: dict):
        from ..firmware_sim.engine import Engine
        self.engine = Engine(spec)

    def __getattr__(self, name):
        if name == "upload_image":
            return self.engine.load_image
        return getattr(self.engine, name)

    @property
    def tick(self) -> int:
        return self.engine.t

    def step(self, inputs: dict, ticks: int = 1) -> dict:
        """ChipLink.step's push + run + pull, on the Engine directly."""
        for name, values in inputs.items():
            self.engine.push_input(name, values)
        self.engine.run(ticks)
        return self.engine.pull_outputs()

    def steps(self, segments: list) -> dict:
        """ChipLink.steps on the Engine directly."""
        for inputs, ticks in segments:
            for name, values in inputs.items():
                self.engine.push_input(name, values)
            self.run(ticks)
        return self.pull_outputs()

    def run(self, ticks: int) -> None:
        """As ChipLink.run: a run longer than the board holds outputs for is cut into
        pieces, their outputs held here until pull_outputs()."""
        from ..chip.protocol import MAX_HELD_VALUES
        e = self.engine
        per = e.prog.out_values * max(1, e.batch or e._pending_batch() or 1) if e.prog else 0
        chunk = max(1, MAX_HELD_VALUES // per) if per else ticks
        if ticks <= chunk:
            e.run(ticks)
            return
        self._held = getattr(self, "_held", [])
        while ticks > 0:
            self._held.append(e.pull_outputs())
            n = min(ticks, chunk)
            e.run(n)
            ticks -= n

    def pull_outputs(self) -> dict:
        parts, self._held = getattr(self, "_held", []) + [self.engine.pull_outputs()], []
        out = {}
        for name, last in parts[-1].items():
            got = [p[name] for p in parts if len(p[name][0])] or [last]
            out[name] = (np.concatenate([g[0] for g in got]), np.concatenate([g[1] for g in got]))
        return out

    def reset(self) -> None:
        self._held = []
        self.engine.reset()

    def close(self):
        pass


CLIP_PIECE = 256      # frames of a clip sent in one STEPS exchange


def _merge(parts: list) -> dict:
    """Outputs pulled in pieces, concatenated per output (empty pieces dropped)."""
    out = {}
    for name in dict.fromkeys(k for p in parts for k in p):
        have = [p[name] for p in parts if name in p]
        full = [h for h in have if len(h[0])] or have[-1:]
        out[name] = (np.concatenate([h[0] for h in full]), np.concatenate([h[1] for h in full]))
    return out


class ChipBackend(Backend):
    """Runs the integer part of a graph on a chip (emulated or real) over a link."""

    name = "chip"

    def __init__(self, plan, port: str = "auto", spec=None, seed: int = 0, session=None,
                 region: str | None = None, **link_options):
        super().__init__(plan)
        from ..chip.compiler import compile as chip_compile
        from ..chip.spec import ChipSpec
        from ..chip.image_format import unpack

        if session is not None or region is not None:
            self._in_region(plan, session, region, port, spec, seed, link_options)
        else:
            self.spec = ChipSpec() if spec is None else spec
            self.image, self.report = chip_compile(plan, self.spec, seed=seed)
        self.host = unpack(self.image).meta["host"]
        if session is not None:
            self.link = session.attach(region)
        elif port == "inproc":
            if link_options:
                raise BackendError(f"chip backend: port='inproc' takes no link options {sorted(link_options)}")
            self.link = _InProcess(self.spec.to_dict())
        else:
            from ..chip.link import ChipLink
            if port == "auto" and "spawn_args" not in link_options:  # a local board built to the spec
                import json
                link_options["spawn_args"] = ("--spec", json.dumps(self.spec.to_dict()))
            self.link = ChipLink(port, **link_options)
        try:
            self.link.upload_image(self.image)
        except Exception:
            self.close()
            raise
        self.in_map: dict[str, list] = {}
        for h in self.host["inputs"]:  # one graph input may feed several q.Quantize nodes
            self.in_map.setdefault(h["input"], []).append(h)
        self.out_map = {h["name"]: h for h in self.host["outputs"]}
        self.once = [k for k, spec in self.input_specs.items() if not spec.hold]
        self.live: set = set()
        self.shapes = {k: tuple(plan.entry(v).shape) for k, v in plan.outputs.items()}

    def _in_region(self, plan, session, region, port, spec, seed, link_options) -> None:
        """The partition's image of ``region``, checked to be this graph's."""
        from ..chip.image_format import unpack

        if session is None or region is None:
            raise BackendError("chip backend: session= and region= go together (a region of a chip "
                               "opened with tr.chip.open_many)")
        if port != "auto" or spec is not None or seed != 0 or link_options:
            raise BackendError(f"chip backend: a region of a session takes no port, spec, seed or link "
                               f"options (the session has them); got region={region!r} with "
                               f"{sorted(['port'] * (port != 'auto') + ['spec'] * (spec is not None) + ['seed'] * (seed != 0) + list(link_options))}")
        try:
            r = session.partition.region(region)
        except KeyError as exc:
            raise BackendError(f"chip backend: {exc.args[0]}") from None
        meta = unpack(r.image).meta
        have = (sorted(meta["host"]["graph_inputs"]), sorted(h["name"] for h in meta["host"]["outputs"]))
        want = (sorted(plan.inputs), sorted(plan.outputs))
        if meta["name"] != plan.name or have != want:
            raise BackendError(f"chip backend: region {region!r} holds graph {meta['name']!r} (inputs {have[0]}, "
                               f"outputs {have[1]}), not {plan.name!r} (inputs {want[0]}, outputs {want[1]})")
        self.spec = session.region_spec(region)
        self.image, self.report = r.image, r.report

    # -- host side of the boundary ---------------------------------------------------------
    def _to_chip(self, xs: dict) -> dict[str, np.ndarray]:
        """Graph inputs -> the chip's int32 inputs (the host runs the q.Quantize nodes)."""
        out = {}
        for name, x in xs.items():
            for h in self.in_map.get(name, ()):  # none: an input nothing on the chip reads
                q = quantize(x, h["scale"]) if h["scale"] is not None else x
                out[h["chip_input"]] = np.asarray(q).astype(np.int32)
        return out

    def _push(self, xs: dict) -> None:
        for name, values in self._to_chip(self._once(xs)).items():
            self.link.push_input(name, values)

    def _once(self, xs: dict) -> dict:
        """The board holds what it was sent: an input with hold=False that had a value and
        is not given at this tick is sent zeros (once)."""
        out = dict(xs)
        for name in self.once:
            if name in xs:
                self.live.add(name)
            elif name in self.live:
                self.live.discard(name)
                out[name] = np.zeros((self.batch,) + self.input_specs[name].shape, np.float32)
        return out

    def _host_out(self, name: str, v: np.ndarray) -> np.ndarray:
        h = self.out_map[name]
        if h["scale"] is not None:
            return np.asarray(dequantize(v, h["scale"]), dtype=np.float32)
        return v.astype(np.int32 if h["numeric"] == "int" else np.float32)

    # -- Backend hooks ---------------------------------------------------------------------------
    def _init_state(self, batch):
        self.live = set()
        self.link.reset()
        self.link.pull_outputs()

    def _tick(self, inputs):
        at = self.link.tick                               # the board's tick this step runs
        outs = self.link.step(self._to_chip(self._once(inputs)), 1)  # one exchange per tick, not three
        res = {}
        for k, (t, v) in outs.items():
            t = np.asarray(t)
            if len(t) and int(t.max()) > at:
                raise BackendError(f"chip backend: the board returned {k!r} for tick {int(t.max())} "
                                   f"while running tick {at}: host and board disagree; call reset()")
            hit = np.flatnonzero(t == at)                 # by the board's tick numbers
            if len(hit):
                res[k] = self._host_out(k, v[hit[-1]])
        return res

    def run(self, inputs: dict, ticks: int | None = None) -> RunResult:
        """As Backend.run, with few round trips: held inputs are pushed once and run for
        ``ticks`` in one command; a clip goes in pieces of CLIP_PIECE ticks, one STEPS
        exchange each; the board keeps the outputs with their ticks."""
        frames, n, b = self._check_run(inputs, ticks)  # every tick checked before any is sent
        self._start(b)
        got = []
        if ticks is None:       # a clip: pieces of frames, one exchange each (STEPS)
            frames = iter(frames)
            while piece := list(itertools.islice(frames, CLIP_PIECE)):
                got.append(self.link.steps([(self._to_chip(self._once(f)), 1) for f in piece]))
        else:
            self._push(next(frames))
            if n > 1 and self.live:  # inputs presented once: zeros from the second tick on
                self.link.run(1)
                self._push({})
                self.link.run(n - 1)
            else:
                self.link.run(n)
        ticks = n
        raw = _merge(got + [self.link.pull_outputs()])
        vals, when = {}, {}
        for k in self.plan.outputs:
            t, v = raw.get(k, (np.zeros(0, np.int64), None))
            when[k] = np.asarray(t, dtype=np.int64)
            if len(t):
                v = self._host_out(k, v)
                vals[k] = v if self.batched else v[:, 0]
            else:
                lead = (0, self.batch) if self.batched else (0,)
                h = self.out_map[k]
                dt = np.int32 if h["scale"] is None and h["numeric"] == "int" else np.float32
                vals[k] = np.zeros(lead + self.shapes[k], dt)
        self.t += int(ticks)
        return RunResult(vals, when)

    def reset(self) -> None:
        super().reset()
        self.live = set()
        self.link.reset()
        self.link.pull_outputs()

    def _get_state(self):
        raise BackendError("chip backend: the board's state cannot be read back over the link; "
                           "use reset() and replay, or the numba backend for checkpoints")

    _set_state = _get_state

    def state(self):
        self._get_state()

    def load_state(self, state):
        self._get_state()

    def counters(self) -> dict:
        """The chip's counters (rounds, cycles, MACs, synaptic events, spikes, packets, hops, energy)."""
        return self.link.counters()

    def close(self) -> None:
        link = getattr(self, "link", None)
        if link is not None:
            link.close()
            self.link = None
