"""The chip emulator's execution engine: loads an image, runs ticks round by round core
by core, moves values between cores by the routing tables, keeps the counters.

Contract (shared with the serial server, docs/protocol.md): ``load_image`` verifies
everything first and swaps atomically (a refused image leaves the old one running);
inputs are pushed as int32 arrays and take effect at the next tick; ``pull_outputs``
returns every output value emitted since the last pull with its tick. Errors are
EngineError with a protocol error code. Never imports the graph or the runtime.
"""
from __future__ import annotations

import numpy as np

import tianrt.chip.protocol as protocol
from tianrt.kernels.limits import INT32_MAX, INT32_MIN
from tianrt.chip.image_format import HOST, IMAGE_KIND, ImageFormatError, unpack

from tianrt.chip import timing
from tianrt.chip.spec import ChipSpec

from . import router
from .checks import EngineError, buffer_capacity, _name, _pair, _prod, _shape  # noqa: F401 (EngineError re-exported)
from .core import BadRecord, CoreUnit

I64 = np.int64


class _Program:
    """A verified image, ready to run: cores, buffers, schedule, routes."""

    def __init__(self, data: bytes, spec: dict):
        try:
            img = unpack(data)
        except ImageFormatError as exc:
            raise EngineError(protocol.E_BAD_IMAGE, str(exc)) from None
        m, arrays = img.meta, img.arrays
        try:
            self._build(m, arrays, spec)
        except EngineError:
            raise
        except router.RouteError as exc:
            raise EngineError(protocol.E_BAD_IMAGE, f"routing: {exc}") from None
        except (BadRecord, KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)[:500]
            raise EngineError(protocol.E_BAD_IMAGE, f"image contents: {what}") from None

    def _build(self, m, arrays, spec):
        if m.get("kind") != IMAGE_KIND:
            raise BadRecord(f"metadata kind {m.get('kind')!r}, expected {IMAGE_KIND!r}")
        self.name = str(m["name"])
        rows, cols = m["spec"]["mesh_rows"], m["spec"]["mesh_cols"]
        if not (isinstance(rows, int) and isinstance(cols, int) and rows >= 1 and cols >= 1):
            raise BadRecord(f"image mesh {rows!r}x{cols!r} is not a pair of positive integers")
        if rows > spec["mesh_rows"] or cols > spec["mesh_cols"]:
            raise EngineError(protocol.E_CAPACITY, f"the image is compiled for a {rows}x{cols} mesh, larger "
                                                   f"than this chip's {spec['mesh_rows']}x{spec['mesh_cols']}")
        self.mesh = (rows, cols)  # router ids in the image are row * cols + col of this mesh
        self.buffers = list(m["buffers"])
        self.cap = cap = buffer_capacity(spec)
        total = 0
        for i, b in enumerate(self.buffers):
            if not (isinstance(b, dict) and isinstance(b.get("size"), int) and not isinstance(b["size"], bool)
                    and 0 <= b["size"] and b.get("kind") in ("input", "core", "psum", "delay")):
                raise BadRecord(f"buffers[{i}] is malformed: {str(b)[:200]}")
            if b["size"] > cap:
                raise EngineError(protocol.E_CAPACITY, f"buffers[{i}].size {b['size']} exceeds this chip's "
                                                       f"limit of {cap} values per buffer")
            total += b["size"]
        if total > 4 * cap:
            raise EngineError(protocol.E_CAPACITY, f"buffers hold {total} values in all, more than this "
                                                   f"chip's {4 * cap}")
        cores = m["cores"]
        if not isinstance(cores, list):
            raise BadRecord("cores must be a list")
        if len(cores) > spec["mesh_rows"] * spec["mesh_cols"]:
            raise EngineError(protocol.E_CAPACITY, f"image needs {len(cores)} cores, this chip has "
                                                   f"{spec['mesh_rows'] * spec['mesh_cols']}")
        for c in cores:
            for key, lim in (("n_axons", "axons_per_core"), ("n_neurons", "neurons_per_core"),
                             ("weight_bytes", "weight_bytes_per_core")):
                if isinstance(c.get(key), int) and c[key] > spec[lim]:
                    raise EngineError(protocol.E_CAPACITY, f"core {c.get('id')} needs {c[key]} {key[2:] if key != 'weight_bytes' else 'weight bytes'}, "
                                                           f"a core of this chip has {spec[lim]}")
            r, col = _pair(c.get("pos"), f"cores[{c.get('id')}].pos")
            if not (isinstance(r, int) and isinstance(col, int) and 0 <= r < rows and 0 <= col < cols):
                raise BadRecord(f"core {c.get('id')} is placed at {c['pos']}, outside the image's {rows}x{cols} mesh")
        self.cores = [CoreUnit(c, arrays, self.buffers, spec) for c in cores]
        if [c.id for c in self.cores] != list(range(len(self.cores))):
            raise BadRecord("core ids must be 0..n-1 in order")
        self.pos = {c.id: tuple(rec["pos"]) for c, rec in zip(self.cores, cores)}
        if len(set(self.pos.values())) != len(self.pos):
            raise BadRecord("two cores share one mesh position")
        self.inputs = {}
        for i in m["inputs"]:
            _name(i["name"], "input")
            shape = _shape(i["shape"], cap, f"input {str(i['name'])[:60]!r}")
            b = i["buffer"]
            if not (isinstance(b, int) and 0 <= b < len(self.buffers) and self.buffers[b]["kind"] == "input"
                    and self.buffers[b]["size"] == _prod(shape)):
                raise BadRecord(f"input {i['name']!r} does not match its buffer")
            self.inputs[str(i["name"])] = (shape, b, bool(i["per_tick"]))
        self.outputs = {}
        for o in m["outputs"]:
            _name(o["name"], "output")
            shape = _shape(o["shape"], cap, f"output {str(o['name'])[:60]!r}")
            segs = self._segs(o["gather"], arrays, f"output {o['name']!r}")
            if sum(i.size for _, i in segs) != _prod(shape):
                raise BadRecord(f"output {o['name']!r} gathers the wrong number of values")
            self.outputs[str(o["name"])] = (shape, segs)
        self.delays = []
        for d in m["delays"]:
            b = d["buffer"]
            segs = self._segs(d["gather"], arrays, f"delay {d.get('name')!r}")
            if not (isinstance(b, int) and 0 <= b < len(self.buffers) and self.buffers[b]["kind"] == "delay"
                    and sum(i.size for _, i in segs) == self.buffers[b]["size"]):
                raise BadRecord(f"delay {d.get('name')!r} does not match its buffer")
            self.delays.append((b, segs))
        sched = [[int(c) for c in r] for r in m["schedule"]]
        flat = sorted(c for r in sched for c in r)
        if flat != list(range(len(self.cores))):
            raise BadRecord("the schedule must run every core exactly once per tick")
        writers = {}
        for c in self.cores:
            writers.setdefault(c.out_buf, set()).add(c.id)
        done = set()
        for r in sched:
            for cid in r:
                for b in set(self.cores[cid].bufs_in) | set(self.cores[cid].clock):
                    if self.buffers[b]["kind"] in ("core", "psum") and not writers.get(b, set()) <= done:
                        raise BadRecord(f"schedule: core {cid} reads buffer {b} before all its writers ran")
            done.update(r)
        self.rounds = [[self.cores[c] for c in r] for r in sched]
        self.links = self._routes(m, arrays, spec)
        # values per inference the state takes (buffers and the cores' neuron state), and
        # values the outputs can emit per tick: the board's batch and held-output limits
        self.state_values = total + sum(c.state_values for c in self.cores)
        self.out_values = sum(_prod(s) for s, _ in self.outputs.values())
        if self.state_values * 8 > protocol.MAX_STATE_BYTES:
            raise EngineError(protocol.E_CAPACITY, f"the image's state takes {self.state_values * 8} bytes "
                                                   f"per inference, this board has {protocol.MAX_STATE_BYTES}")

    def max_batch(self) -> int:
        return max(1, min(protocol.MAX_BATCH, protocol.MAX_STATE_BYTES // (8 * max(1, self.state_values)),
                          protocol.MAX_HELD_VALUES // max(1, self.out_values)))

    def _segs(self, segs, arrays, what):
        out = []
        for seg in segs:
            b, aid = seg
            if not (isinstance(b, int) and -1 <= b < len(self.buffers)):
                raise BadRecord(f"{what}: buffer {b!r} out of range")
            if not (isinstance(aid, int) and 0 <= aid < len(arrays)) or arrays[aid].dtype != np.int32:
                raise BadRecord(f"{what}: index array {aid!r} missing or not int32")
            if arrays[aid].ndim != 1 or arrays[aid].size > self.cap:
                raise BadRecord(f"{what}: index array {aid} must be 1-D with at most {self.cap} entries")
            idx = arrays[aid].astype(np.intp)
            if b >= 0 and idx.size and (idx.min() < 0 or idx.max() >= self.buffers[b]["size"]):
                raise BadRecord(f"{what}: indices outside buffer {b}")
            out.append((b, idx))
        return out

    def _routes(self, m, arrays, spec):
        """Which core produces each buffer element (delays resolved), then the table check."""
        prod = {}
        for i, b in enumerate(self.buffers):
            if b["kind"] == "input":
                prod[i] = np.full(b["size"], HOST, I64)
            elif b["kind"] in ("core", "psum"):
                prod[i] = np.full(b["size"], -1, I64)
        for c in self.cores:
            prod[c.out_buf][c.out_idx] = c.id
        # delays may read other delays: resolve them in dependency order (depth-first, each
        # delay once, so linear in the image; a cycle is refused)
        by_buf = {}
        for b, segs in self.delays:
            if b in by_buf:
                raise BadRecord(f"two delays write buffer {b}")
            by_buf[b] = segs
        state = {}          # buffer -> 1 visiting, 2 done
        for root in by_buf:
            stack = [root]
            while stack:
                b = stack[-1]
                if b in prod:
                    stack.pop()
                    continue
                if state.get(b) != 1:
                    state[b] = 1
                    waiting = [s for s, _ in by_buf[b] if s >= 0 and s not in prod]
                    for s in waiting:
                        if s not in by_buf:
                            raise BadRecord(f"delay buffer {b} reads buffer {s}, which no core, input or delay writes")
                        if state.get(s) == 1:
                            raise BadRecord("delays read each other in a cycle")
                    if waiting:
                        stack.extend(waiting)
                        continue
                segs = by_buf[b]
                prod[b] = np.concatenate([prod[s][i] if s >= 0 else np.full(i.size, -1, I64) for s, i in segs]
                                         or [np.zeros(0, I64)])
                state[b] = 2
                stack.pop()
        needs: dict[int, set] = {}
        for c in self.cores:
            for b, idx in c.segs:
                if b >= 0:
                    for p in np.unique(prod[b][idx]).tolist():
                        if p >= 0 and p != c.id:
                            needs.setdefault(p, set()).add(c.id)
        host_needs = set()
        for _, segs in self.outputs.values():
            for b, idx in segs:
                if b >= 0:
                    host_needs.update(p for p in np.unique(prod[b][idx]).tolist() if p >= 0 and p != HOST)
        rid = m["routes"]
        if not (isinstance(rid, int) and 0 <= rid < len(arrays)) or arrays[rid].dtype != np.uint16:
            raise BadRecord("routes must name a uint16 array")
        trees = router.build(arrays[rid].astype(I64), self.pos, self.mesh[0], self.mesh[1], needs, host_needs)
        ids: dict = {}
        self.link_ids = {src: np.array([ids.setdefault(l, len(ids)) for l in tree], np.intp)
                         for src, tree in trees.items()}
        self.n_links = len(ids)
        return {src: len(tree) for src, tree in trees.items()}


class Engine:
    """The emulated chip: one loaded image, its state, its counters."""

    def __init__(self, spec: dict | None = None):
        """``spec``: fields of tianrt.chip.ChipSpec that differ from the default (the same
        checks as the compiler's: a refused field raises SpecError, a ValueError)."""
        self.spec = ChipSpec.from_dict({**ChipSpec().to_dict(), **(spec or {})}).to_dict()
        self.prog: _Program | None = None
        self.reset_counters()
        self._clear()

    # -- image -------------------------------------------------------------------------------
    def load_image(self, data: bytes) -> dict:
        prog = _Program(bytes(data), self.spec)  # raises before touching the running image
        self.prog = prog
        self._clear()
        return self.info()

    def info(self) -> dict:
        p = self.prog
        if p is None:
            return {}
        return {"name": p.name, "cores_used": len(p.cores), "rounds": len(p.rounds),
                "mesh": [self.spec["mesh_rows"], self.spec["mesh_cols"]],
                "tick": self.t, "batch": self.batch or self._pending_batch() or 1,
                "max_batch": p.max_batch(), "held_values": self.held_values,
                "max_held_values": protocol.MAX_HELD_VALUES, "out_values_per_tick": p.out_values,
                "inputs": [{"name": k, "shape": list(v[0]), "dtype": "int32"} for k, v in p.inputs.items()],
                "outputs": [{"name": k, "shape": list(v[0]), "dtype": "int32"} for k, v in p.outputs.items()]}

    # -- state -------------------------------------------------------------------------------
    def _clear(self):
        self.t = 0
        self.batch = None
        self.abort = False     # set by the server's ABORT (another thread): stop at the next tick
        self.pending: dict[str, np.ndarray] = {}
        self.emitted = {k: ([], []) for k in (self.prog.outputs if self.prog else {})}
        self.held_values = 0

    def _pending_batch(self):
        return next(iter(self.pending.values())).shape[0] if self.pending else None

    def reset(self) -> None:
        self._clear()

    def _need_image(self):
        if self.prog is None:
            raise EngineError(protocol.E_NO_IMAGE, "no image is loaded; upload one first")

    def _init_state(self, B: int):
        p = self.prog
        self.batch = B
        self.bufs = [np.zeros((B, b["size"]), I64) for b in p.buffers]
        # a spike/current delay (per_tick) emits zeros at tick 0, as on the host backends
        self.fresh = [b["kind"] == "delay" and b.get("per_tick") is True for b in p.buffers]
        for c in p.cores:
            c.init(B)

    # -- I/O ---------------------------------------------------------------------------------
    def push_input(self, name: str, values) -> None:
        self._need_image()
        p = self.prog
        if name not in p.inputs:
            raise EngineError(protocol.E_BAD_INPUT, f"the image has no input {name!r}; "
                                                    f"its inputs are {', '.join(p.inputs) or 'none'}")
        shape, buf, per_tick = p.inputs[name]
        a = np.asarray(values)
        if a.ndim == len(shape) + 1 and a.shape[1:] == shape and a.shape[0] > p.max_batch():
            raise EngineError(protocol.E_CAPACITY, f"input {name!r}: batch {a.shape[0]} exceeds this board's "
                                                   f"limit of {p.max_batch()} for this image (state memory "
                                                   f"{protocol.MAX_STATE_BYTES} bytes, {protocol.MAX_HELD_VALUES} "
                                                   f"held output values, at most {protocol.MAX_BATCH})")
        if a.dtype.kind not in "iub":
            raise EngineError(protocol.E_BAD_INPUT, f"input {name!r}: integer values expected, got {a.dtype}")
        if a.shape == shape:
            a = a[None]
        elif not (a.ndim == len(shape) + 1 and a.shape[1:] == shape and a.shape[0] >= 1):
            raise EngineError(protocol.E_BAD_INPUT, f"input {name!r}: shape {a.shape}, expected {shape} "
                                                    f"or (batch, {', '.join(map(str, shape))})")
        a = a.astype(I64).reshape(a.shape[0], -1)
        if a.size and (a.min() < INT32_MIN or a.max() > INT32_MAX):
            raise EngineError(protocol.E_BAD_INPUT, f"input {name!r}: values outside int32")
        if per_tick and a.size and not np.isin(a, (0, 1)).all():
            raise EngineError(protocol.E_BAD_INPUT, f"input {name!r} is a spike input: values must be 0 or 1")
        B = self.batch or self._pending_batch()
        if B is not None and a.shape[0] != B:
            raise EngineError(protocol.E_BAD_INPUT, f"input {name!r}: batch {a.shape[0]} differs from the "
                                                    f"running batch {B}; reset first")
        self.pending[name] = a

    def run(self, ticks: int) -> None:
        self._need_image()
        if isinstance(ticks, bool) or not isinstance(ticks, (int, np.integer)) or not 0 <= ticks <= (1 << 24):
            raise EngineError(protocol.E_CAPACITY, f"run: ticks must be an integer in [0, 2^24], got {ticks!r}")
        B = self.batch or self._pending_batch() or 1
        worst = self.held_values + int(ticks) * B * self.prog.out_values
        if worst > protocol.MAX_HELD_VALUES:
            room = max(0, protocol.MAX_HELD_VALUES - self.held_values) // max(1, B * self.prog.out_values)
            raise EngineError(protocol.E_CAPACITY, f"run of {ticks} ticks could hold {worst} output values "
                                                   f"unpulled, this board holds {protocol.MAX_HELD_VALUES}: "
                                                   f"pull the outputs at least every {room} ticks")
        start = self.t
        try:
            for _ in range(int(ticks)):
                if self.abort:
                    raise EngineError(protocol.E_ABORTED, f"aborted at tick {self.t}, after {self.t - start} "
                                                          f"of {ticks} ticks")
                self._tick()
        except EngineError:
            raise
        except Exception as exc:  # an emulator bug must not take the board down
            raise EngineError(protocol.E_ENGINE, f"tick {self.t}: {type(exc).__name__}: {exc}") from None
        finally:
            self.abort = False

    def peek_outputs(self) -> dict:
        """What pull_outputs would return, without clearing it (the server encodes it first,
        and clears only what it could deliver)."""
        self._need_image()
        out = {}
        B = self.batch or self._pending_batch() or 1
        for name, (shape, _) in self.prog.outputs.items():
            ts, vs = self.emitted[name]
            out[name] = (np.asarray(ts, dtype=np.int64),
                         np.stack(vs).astype(np.int32) if vs else np.zeros((0, B) + shape, np.int32))
        return out

    def clear_outputs(self) -> None:
        self.emitted = {k: ([], []) for k in self.prog.outputs}
        self.held_values = 0

    def pull_outputs(self) -> dict:
        out = self.peek_outputs()
        self.clear_outputs()
        return out

    # -- the tick ----------------------------------------------------------------------------
    def _tick(self):
        p = self.prog
        if self.batch is None:
            self._init_state(next(iter(self.pending.values())).shape[0] if self.pending else 1)
        bufs, fresh = self.bufs, self.fresh
        for i, b in enumerate(p.buffers):
            if b["kind"] != "delay":
                fresh[i] = False
        for name, (shape, buf, per_tick) in p.inputs.items():
            if name in self.pending:
                bufs[buf][:] = self.pending.pop(name)
                fresh[buf] = True
            elif per_tick:
                fresh[buf] = True
        c = self.c
        spec = self.spec
        for name, (shape, buf, per_tick) in p.inputs.items():  # host -> chip packets this tick
            if fresh[buf]:
                k = int(np.count_nonzero(bufs[buf])) if per_tick else bufs[buf].size
                c["packets"] += k
                c["hops"] += k * p.links.get(HOST, 0)
                c["energy_pj"] += timing.energy_pj(self.spec, 0, 0, k * p.links.get(HOST, 0), 0)
                if HOST in p.link_ids and len(p.link_ids[HOST]):
                    c["link_max_packets"] = max(c["link_max_packets"], k)
        for rnd in p.rounds:
            comp = route = 0.0
            load = np.zeros(p.n_links)
            for core in rnd:
                w = {"macs": 0, "syn_events": 0, "neurons": 0, "spikes": 0, "packets": 0}
                core.step(bufs, fresh, self.t, w)
                cyc = timing.compute_cycles(spec, w["macs"], w["syn_events"], w["neurons"])
                links = p.links.get(core.id, 0)
                hops = w["packets"] * links
                if w["packets"] and links:
                    load[p.link_ids[core.id]] += w["packets"]
                comp = max(comp, cyc)
                route = max(route, timing.route_cycles(spec, w["packets"], links))
                self.busy[core.id] = self.busy.get(core.id, 0.0) + cyc
                for k in ("macs", "syn_events", "spikes", "packets"):
                    c[k] += w[k]
                c["hops"] += hops
                c["neuron_updates"] += w["neurons"]
                c["energy_pj"] += timing.energy_pj(spec, w["macs"], w["syn_events"], hops, w["neurons"])
            c["cycles"] += comp + route
            c["rounds"] += 1
            if load.size:
                c["link_max_packets"] = max(c["link_max_packets"], float(load.max()))
        for name, (shape, segs) in p.outputs.items():
            if any(fresh[b] for b, _ in segs if b >= 0):
                v = self._gather(segs)
                self.emitted[name][0].append(self.t)
                self.emitted[name][1].append(v.reshape((self.batch,) + shape))
                self.held_values += v.size
        new = [(b, self._gather(segs), any(fresh[s] for s, _ in segs if s >= 0)) for b, segs in p.delays]
        for b, v, f in new:
            bufs[b][:] = v
            fresh[b] = f
        c["ticks"] += 1
        self.t += 1

    def _gather(self, segs):
        B = self.batch
        parts = [self.bufs[b][:, i] if b >= 0 else np.zeros((B, i.size), I64) for b, i in segs]
        return np.concatenate(parts, axis=1) if parts else np.zeros((B, 0), I64)

    # -- counters ----------------------------------------------------------------------------
    def counters(self) -> dict:
        out = dict(self.c)
        busy = np.array(list(self.busy.values()) or [0.0])
        total = max(self.c["cycles"], 1.0)
        out.update({"busy_cycles_max": float(busy.max()), "busy_cycles_mean": float(busy.mean()),
                    "busy_fraction_max": float(busy.max() / total), "busy_fraction_mean": float(busy.mean() / total),
                    "time_s": self.c["cycles"] / self.spec["clock_hz"],
                    "cores_used": float(len(self.prog.cores) if self.prog else 0)})
        return {k: float(v) for k, v in out.items()}

    def core_busy(self) -> dict[int, float]:
        """Busy cycles per core id since the last reset_counters()."""
        return dict(self.busy)

    def reset_counters(self) -> None:
        self.c = {k: 0.0 for k in ("ticks", "rounds", "cycles", "macs", "syn_events", "spikes", "packets",
                                   "hops", "neuron_updates", "energy_pj", "link_max_packets")}
        self.busy: dict[int, float] = {}
