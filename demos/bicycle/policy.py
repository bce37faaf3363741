"""The balance network as a tianrt graph: building it from trained weights (input
normalisation and output scale folded into the first and last Dense layers, so the graph
takes SI units and returns newton-metres), converting it to an SNN, and running it as a
controller ``obs -> steer torque`` through ``tr.Runtime``.

Graph contract: input ``obs`` of shape (6,) = (lean [rad], lean rate [rad/s], steer [rad],
steer rate [rad/s], speed [m/s], desired lean [rad]); output ``torque`` of shape (1,) [N m].
``metadata``: ``control_hz``, ``ticks_per_step`` (graph ticks per control step) and
``delay_steps`` (control steps between a sensor read and the torque it produces).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import tianrt as tr

INPUT, OUTPUT = "obs", "torque"
DATA = Path(__file__).resolve().parent / "data"
DEFAULT_MODEL = DATA / "balance_mlp.tnr"
MANOEUVRE_LEAN = math.radians(15.0)   # the largest desired lean the riders ask for (control.PathFollower)


def mlp_graph(layers, mean, std, out_scale: float, control_hz: float = 100.0,
              name: str = "balance-mlp", metadata: dict | None = None) -> tr.Graph:
    """A Dense/ReLU chain from ``layers`` = [(W (out, in), b), ...] trained on inputs
    (obs - mean) / std and targets torque / out_scale."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    g = tr.Graph(dt=1.0 / control_hz, name=name)
    h = g.input(INPUT, shape=(6,), rate_hz=control_hz)
    for i, (w, b) in enumerate(layers):
        w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
        if i == 0:
            b = b - w @ (mean / std)
            w = w / std[None, :]
        if i == len(layers) - 1:
            w, b = w * out_scale, b * out_scale
        h = g.add(tr.ann.Dense(w.shape[1], w.shape[0], weight=w.astype(np.float32), bias=b.astype(np.float32)),
                  h, name=f"dense{i + 1}")
        if i < len(layers) - 1:
            h = g.add(tr.ann.ReLU(), h, name=f"relu{i + 1}")
    g.output(OUTPUT, h)
    g.metadata.update(metadata or {})
    g.metadata.update(control_hz=float(control_hz), ticks_per_step=1, delay_steps=0,
                      inputs=["lean", "lean_rate", "steer", "steer_rate", "speed", "lean_desired"],
                      outputs=["steer_torque_Nm"])
    return g


def with_dt(g: tr.Graph, dt: float, name: str | None = None) -> tr.Graph:
    """A copy of a chain graph with another tick."""
    out = tr.Graph(dt=dt, name=name or g.name)
    for n, e in g.entries.items():
        if not e.inputs and n in g.inputs:
            out.input(n, e.shape, e.domain, e.node.rate_hz)
        else:
            out.add(e.node.copy(), *e.inputs, name=n)
    for k, v in g.outputs.items():
        out.output(k, v)
    out.metadata = dict(g.metadata)
    return out


def to_snn(ann: tr.Graph, calibration: np.ndarray, T: int = 16, tau: float | None = 0.125,
           **convert_kw) -> tr.Graph:
    """Convert the balance MLP (threshold balancing per neuron unless ``per_channel=False``)
    to a spiking graph whose T ticks fit in one control period;
    its torque therefore acts one control step after the sensor read (``delay_steps`` = 1).

    ``tau`` [s]: membrane time constant of the LIF neurons (beta = exp(-tick / tau)); None
    gives leak-free IF neurons, which on a continuous stream pile up negative membrane
    while their input is negative and then answer late (docs/bicycle.md)."""
    control_hz = float(ann.metadata.get("control_hz", 1.0 / ann.dt))
    tick = 1.0 / (control_hz * T)
    fast = with_dt(ann, tick)
    # one threshold-balancing scale per hidden neuron: finer steps for the quieter neurons, less
    # chatter in the torque than one scale per layer (docs/bicycle.md, Speed envelope)
    convert_kw.setdefault("per_channel", True)
    if tau is not None:
        convert_kw.setdefault("neuron", "lif")
        convert_kw.setdefault("beta", float(np.exp(-tick / tau)))
    snn = tr.convert(fast, calibration={INPUT: np.asarray(calibration, np.float32)}, T=T,
                     name="balance-snn", **convert_kw)
    snn.metadata.update(ann.metadata)
    snn.metadata.update(control_hz=control_hz, ticks_per_step=int(T), delay_steps=1, T=int(T),
                        neuron=convert_kw.get("neuron", "if"), tau_s=tau)
    return snn


def calibration_data(n_seconds: float = 20.0, speeds=None) -> np.ndarray:
    """Observations for the conversion's threshold balancing, over the whole speed envelope:
    a teacher ride on a training gust scenario (seed 1000, 3-7 m/s) and one constant-speed
    teacher ride of ``n_seconds`` at each of ``speeds`` (default
    ``envelope.CALIBRATION_SPEEDS``, 2.0-8.5 m/s; training seeds 1001+). Calibrating on one
    3.85-6.93 m/s ride alone left the SNN's torque gain at 0.69 at 7 m/s and 0.40 at 8 m/s."""
    from . import envelope, suite, world
    from .run import run, teacher_for

    scs = [world.parse_scenario(suite.make("gust_suite", 1000, n_seconds))]
    for i, v in enumerate(envelope.CALIBRATION_SPEEDS if speeds is None else speeds):
        scs.append(world.parse_scenario(envelope.fixed_speed(1001 + i, float(v), n_seconds)))
    return np.concatenate([run(sc, teacher_for(sc), keep_traces=True).traces["obs"][::4] for sc in scs])


def manoeuvre_data(n_seconds: float = 20.0, speeds=None, sigma: float = 0.6) -> np.ndarray:
    """Observations of hard riding, for the integer quantisation's input ranges: at each of
    ``speeds`` (default ``envelope.CALIBRATION_SPEEDS``) a teacher ride of ``n_seconds`` whose
    desired lean jumps every 0.6-1.5 s to a value uniform in +-MANOEUVRE_LEAN, with the
    training's random torque disturbance (``sigma`` N m, held 0.2 s; seeds 2001+). The
    constant-speed rides of ``calibration_data`` lean at most ~7 degrees; the navigator asks for
    up to 15 and a 7 m/s S-curve for 12, so an input scale set on them alone clips the lean and
    the desired lean, and the integer SNN's torque gain fell to 0.5 (docs/bicycle.md)."""
    from . import envelope, world
    from .run import run, teacher_for
    from .control import Noisy

    out = []
    for i, v in enumerate(envelope.CALIBRATION_SPEEDS if speeds is None else speeds):
        d = envelope.fixed_speed(2001 + i, float(v), n_seconds)
        d["world"]["obstacles"] = []           # the ride leaves the path: nothing to run into
        d.pop("target", None)
        sc = world.parse_scenario(d)
        log = []
        rng = np.random.default_rng(2001 + i)
        run(sc, _LeanSteps(Noisy(teacher_for(sc), sigma, rng, log), rng, sc.control_hz))
        out.append(np.array(log)[::4])
    return np.concatenate(out)


class _LeanSteps:
    """A controller (the disturbed teacher, ``control.Noisy``, which logs what it sees)
    asked for a desired lean that jumps at random every 0.6-1.5 s."""

    def __init__(self, controller, rng, control_hz):
        self.controller, self.rng, self.hz = controller, rng, control_hz
        self.k, self.next, self.lean_d = 0, 0, 0.0

    def __call__(self, obs):
        obs = np.array(obs, np.float64)
        if self.k >= self.next:
            self.lean_d = self.rng.uniform(-MANOEUVRE_LEAN, MANOEUVRE_LEAN)
            self.next = self.k + int(self.rng.uniform(0.6, 1.5) * self.hz)
        self.k += 1
        obs[5] = self.lean_d
        return self.controller(obs)


def quantize(snn: tr.Graph) -> tr.Graph:
    """The balance SNN in integer (chip) mode: ``tr.quantize`` calibrated on
    ``calibration_data`` and ``manoeuvre_data``, so that its int8 inputs span the leans, rates
    and desired leans of hard riding over the whole speed envelope."""
    x = np.concatenate([calibration_data(), manoeuvre_data()]).astype(np.float32)
    return tr.quantize(snn, {INPUT: x}, name="balance-snn-int8")


def load(path=None) -> tr.Graph:
    """The shipped balance MLP (or the model file at ``path``)."""
    path = Path(path) if path else DEFAULT_MODEL
    if not path.exists():
        raise FileNotFoundError(f"no balance model at {path}; make one with "
                                "`python -m tianrt.demos.bicycle.train_balance`")
    return tr.load(str(path))


class NetworkPolicy:
    """A balance graph run by ``tr.Runtime.step`` as a controller: one call per control step,
    ``ticks_per_step`` ticks each (the new observation is presented at the first)."""

    def __init__(self, graph: tr.Graph, backend: str = "reference"):
        self.graph, self.backend = graph, backend
        self.rt = tr.Runtime(graph, backend=backend)
        self.ticks = int(graph.metadata.get("ticks_per_step", 1))
        self.delay_steps = int(graph.metadata.get("delay_steps", 0))
        self._last = 0.0

    def reset(self) -> None:
        self.rt.reset()
        self._last = 0.0

    def __call__(self, obs) -> float:
        step = self.rt.step
        out = step({INPUT: np.asarray(obs, np.float32)})
        for _ in range(self.ticks - 1):
            out = step()
        if OUTPUT in out:
            self._last = float(out[OUTPUT][0])
        return self._last
