"""The bicycle's neural state machine: which behaviour runs, decided by spiking neurons.

One tianrt graph, one recurrent spiking layer (``snn.Recurrent`` fed back through a spike
``Graph.delay``) of LIF neurons with per-neuron leaks and thresholds. Its populations:

- **event filters** (one neuron per event): leaky integrators (tau 20 ms) of the event's
  spike input; one fires only after ~14 ms of (nearly) continuous evidence, so a glitch of
  8 ms (at most 80 of the 140 units of threshold) never gets through;
- **states** (idle, ride, follow, avoid, stop-requested; 4 neurons each): memoryless
  (beta 0) neurons kept on by their own population's spikes of the previous tick
  (self-excitation 4 x 5 = 20 >= 10) and switched off by any other state
  (mutual inhibition 4 x -10): a winner-take-all attractor. Idle has a bias instead of
  self-excitation: it is on exactly when no other state is;
- **transition gates** (one neuron per (state, event) pair that means something): an AND
  of the state (4 x 4 = 16) and the event's filter (6) against a threshold of 20; a gate
  turns its target state on (+127) and its source off (-30); gates inhibit each other for
  the following tick (so at most one transition per step), and when two gates of one
  state fire at the same tick the one of higher priority wins (stop > obstacle > lost >
  person > spoken follow > avoidance done > go);
- **a stop timer**: a leaky integrator (tau 100 ms) of the stop-requested state that fires
  after 150 ms of it and moves the machine to idle (the bicycle has braked);
- **enables**: OR neurons of the states, the outputs that switch the other networks on
  (``balance``, ``vision``, ``cann``) and select the behaviour (``follow``, ``avoid``,
  ``brake``).

All weights are integers with a largest magnitude of 127, so ``tr.quantize`` keeps every
weight, bias and threshold exactly (one current unit of 1); only the two leaks become
fixed-point multipliers. The state is never decided by Python: :func:`decode` only reads
which population spiked.
"""
from __future__ import annotations

import numpy as np

import tianrt as tr

EVENTS = ("go", "stop", "person", "lost", "obstacle", "done", "follow")   # "follow": the spoken command
STATES = ("idle", "ride", "follow", "avoid", "stop_requested")
ENABLES = {  # output -> the states in which it is on
    "balance": ("ride", "follow", "avoid", "stop_requested"),
    "vision": ("ride", "follow", "avoid"),
    "cann": ("follow",),
    "follow": ("follow",),
    "avoid": ("avoid",),
    "brake": ("idle", "stop_requested"),
}
# (source state, event) -> target state, in priority order (first wins at a tie)
TRANSITIONS = (
    ("ride", "stop", "stop_requested"),
    ("follow", "stop", "stop_requested"),
    ("avoid", "stop", "stop_requested"),
    ("ride", "obstacle", "avoid"),
    ("follow", "obstacle", "avoid"),
    ("follow", "lost", "ride"),
    ("ride", "person", "follow"),
    ("ride", "follow", "follow"),
    ("avoid", "done", "ride"),
    ("idle", "go", "ride"),
)
POP = 4                   # neurons per state population
DT = 1e-3                 # 1 ms tick
TAU_FILTER, TH_FILTER, W_EVENT = 0.020, 140.0, 10.0
TAU_TIMER, STOP_HOLD = 0.100, 0.150  # stop-requested lasts STOP_HOLD before idle
TH_STATE, W_SELF, W_INH = 10.0, 5.0, -10.0
TH_GATE, W_GATE_STATE, W_GATE_EVENT = 20.0, 4.0, 6.0
W_ON, W_OFF, W_GATE_GATE, W_PRIORITY = 127.0, -30.0, -30.0, -127.0
W_TIMER_IDLE = 60.0


def layout() -> dict:
    """Neuron index ranges of every population: ``{name: slice}``; names are ``filter:<event>``,
    ``state:<state>``, ``gate:<state>:<event>``, ``timer`` and ``enable:<output>``."""
    out, i = {}, 0
    for name, size in ([(f"filter:{e}", 1) for e in EVENTS] + [(f"state:{s}", POP) for s in STATES]
                       + [(f"gate:{s}:{e}", 1) for s, e, _ in TRANSITIONS] + [("timer", 1)]
                       + [(f"enable:{k}", 1) for k in ENABLES]):
        out[name] = slice(i, i + size)
        i += size
    return out


def stop_timer_threshold(dt: float = DT) -> float:
    """The timer's threshold: its membrane after STOP_HOLD of stop-requested input."""
    beta = np.exp(-dt / TAU_TIMER)
    n = round(STOP_HOLD / dt)
    return float(np.floor(POP * W_SELF * (1 - beta ** n) / (1 - beta)))


def weights(dt: float = DT):
    """``(w_in (n, events), w_rec (n, n), bias (n,), beta (n,), threshold (n,))``."""
    L = layout()
    n = max(s.stop for s in L.values())
    w_in = np.zeros((n, len(EVENTS)))
    w = np.zeros((n, n))  # w[post, pre]
    bias, beta, th = np.zeros(n), np.zeros(n), np.zeros(n)
    for k, e in enumerate(EVENTS):
        f = L[f"filter:{e}"]
        w_in[f, k] = W_EVENT
        beta[f], th[f] = np.exp(-dt / TAU_FILTER), TH_FILTER
    for s in STATES:
        p = L[f"state:{s}"]
        th[p] = TH_STATE
        for o in STATES:
            w[p, L[f"state:{o}"]] = W_INH if o != s else (0.0 if s == "idle" else W_SELF)
    bias[L["state:idle"]] = TH_STATE  # idle = no other state
    gates = [L[f"gate:{s}:{e}"] for s, e, _ in TRANSITIONS]
    for rank, (s, e, t) in enumerate(TRANSITIONS):
        gt = L[f"gate:{s}:{e}"]
        th[gt] = TH_GATE
        w[gt, L[f"state:{s}"]] = W_GATE_STATE
        w[gt, L[f"filter:{e}"]] = W_GATE_EVENT
        for other in gates:
            w[gt, other] = W_GATE_GATE
        w[L[f"state:{t}"], gt] = W_ON
        w[L[f"state:{s}"], gt] = W_OFF
        for s2, e2, t2 in TRANSITIONS[rank + 1:]:  # lower priority, same source: this one wins
            if s2 == s and t2 != t:
                w[L[f"state:{t2}"], gt] = W_PRIORITY
    tm = L["timer"]
    w[tm, L["state:stop_requested"]] = W_SELF
    beta[tm], th[tm] = np.exp(-dt / TAU_TIMER), stop_timer_threshold(dt)
    w[L["state:stop_requested"], tm] = W_OFF
    w[L["state:idle"], tm] = W_TIMER_IDLE
    for k, states in ENABLES.items():
        en = L[f"enable:{k}"]
        th[en] = 1.0
        for s in states:
            w[en, L[f"state:{s}"]] = 1.0
    return w_in, w, bias, beta, th


def build(dt: float = DT, name: str = "nsm") -> tr.Graph:
    """The state machine graph: spike input ``events`` (EVENTS, one tick each spike; not held),
    spike output ``nsm`` (every neuron of :func:`layout`)."""
    w_in, w_rec, bias, beta, th = weights(dt)
    n = w_rec.shape[0]
    g = tr.Graph(dt=dt, name=name)
    x = g.input("events", (len(EVENTS),), domain="spike")
    fb = g.delay((n,), "spike")
    i = g.add(tr.snn.Recurrent(len(EVENTS), n, weight=w_in.astype(np.float32),
                               weight_rec=w_rec.astype(np.float32), bias=bias.astype(np.float32)),
              x, fb, name="nsm_syn")
    h = g.add(tr.snn.LIF(beta=beta.astype(np.float32), threshold=th.astype(np.float32), reset="zero"),
              i, name="nsm_neurons")
    g.connect(fb, h)
    g.output("nsm", h)
    g.metadata.update(events=list(EVENTS), states=list(STATES), enables=list(ENABLES))
    return g


def quantized(dt: float = DT) -> tr.Graph:
    """The integer state machine (``tr.quantize``; no tensor input, so no calibration data)."""
    return tr.quantize(build(dt), calibration={})


def decode(spikes) -> dict:
    """Read the output ``nsm`` of shape (ticks, n): ``state`` (ticks,) the index into STATES of
    the population that spiked (-1: none, -2: several), and ``enable:<k>`` (ticks,) 0/1."""
    L = layout()
    s = np.asarray(spikes)
    pops = np.stack([s[:, L[f"state:{k}"]].sum(axis=1) for k in STATES], axis=1)
    on = pops > POP // 2
    state = np.where(on.sum(axis=1) == 1, on.argmax(axis=1), np.where(on.any(axis=1), -2, -1))
    out = {"state": state}
    for k in ENABLES:
        out[f"enable:{k}"] = s[:, L[f"enable:{k}"]][:, 0].astype(np.int8)
    return out


def sequence(state) -> list:
    """The sequence of states visited (names), from the per-tick state indices."""
    seq = []
    for v in np.asarray(state):
        name = STATES[v] if v >= 0 else ("none" if v == -1 else "several")
        if not seq or seq[-1] != name:
            seq.append(name)
    return seq


def events_array(ticks: int, schedule, rng=None, p_on: float = 1.0, p_noise: float = 0.0) -> np.ndarray:
    """An ``events`` input of ``ticks`` ticks: ``schedule`` = [(event, start_s, duration_s), ...];
    during an event its channel spikes with probability ``p_on`` per tick, and every channel
    has spurious spikes with probability ``p_noise`` (``rng``: numpy Generator)."""
    x = np.zeros((ticks, len(EVENTS)), np.float32)
    rng = rng or np.random.default_rng(0)
    for ev, t0, dur in schedule:
        a, b = int(round(t0 / DT)), int(round((t0 + dur) / DT))
        k = EVENTS.index(ev)
        x[a:b, k] = (rng.random(b - a) < p_on) if p_on < 1 else 1.0
    if p_noise > 0:
        x = np.maximum(x, (rng.random(x.shape) < p_noise).astype(np.float32))
    return x


def run(schedule, seconds: float, backend: str = "reference", graph: tr.Graph | None = None,
        rng=None, p_on: float = 1.0, p_noise: float = 0.0) -> dict:
    """Run the machine on a schedule; returns :func:`decode`'s dict plus ``sequence``."""
    g = graph if graph is not None else build()
    x = events_array(int(round(seconds / DT)), schedule, rng, p_on, p_noise)
    out = decode(tr.Runtime(g, backend).run({"events": x})["nsm"])
    out["sequence"] = sequence(out["state"])
    return out
