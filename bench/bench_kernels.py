"""Benchmarks of the numba backend (issue 3): W1 streaming SNN, W2 batch-1 CNN, W3 CUBA,
synaptic scaling with the event/dense crossover, a converted SNN over growing batches, and
start-up time.

    .venv/bin/python bench/bench_kernels.py all        # or: w1 | w2 | w3 | scaling | batch | startup
    .venv/bin/python bench/bench_kernels.py w2 --peer-python PEER/bin/python --baseline-tree /path/to/other/tree
    .venv/bin/python bench/bench_kernels.py w3-side --peer-python PEER/bin/python --baseline-tree /path/to/other/tree

Every figure is measured in this process run, side by side with its baselines (reference
backend, plain numpy, BLAS), and printed with the ratio. Peer libraries (snnTorch, Norse,
SpikingJelly, ONNX Runtime, Brian2) are used only when importable; they are never a
dependency of tianrt. Timings are the minimum over repeats (the machine is shared).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

from benchutil import serve_steps

# one thread, as the targets are stated (BLAS would otherwise use both cores)
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/peers.py

import tianrt as tr  # noqa: E402
from tianrt.backends import numba as nb
from tianrt.backends.numba import policy
from tianrt.kernels import synapse


def best(fn, repeat=5):
    """Minimum wall time of fn() over ``repeat`` calls, seconds."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def peers(*names):
    return {n: importlib.util.find_spec(n) is not None for n in names}


# -- W1 -------------------------------------------------------------------------------------

W1_GAIN = 4.0  # x PyTorch's default init, so hidden layers fire (~5-9 %) instead of staying silent


def w1_graph():
    g = tr.Graph(name="w1")
    h = g.input("x", shape=(700,), domain="spike")
    for i, (a, b) in enumerate([(700, 256), (256, 256), (256, 20)]):
        syn = tr.snn.Dense(a, b, seed=i)
        syn.weight *= W1_GAIN
        h = g.add(syn, h, name=f"syn{i + 1}")
        h = g.add(tr.snn.LIF(beta=0.9, threshold=1.0, reset="subtract"), h, name=f"lif{i + 1}")
    g.output("y", h)
    return g


def numpy_dense_w1(g, X):
    """Plain numpy, dense, the same network: the 'no framework' baseline."""
    ws = [(g[f"syn{i}"].weight, g[f"syn{i}"].bias) for i in (1, 2, 3)]
    vs = [np.zeros(w.shape[0], np.float32) for w, _ in ws]
    for x in X:
        s = x
        for (w, b), v in zip(ws, vs):
            v *= np.float32(0.9)
            v += w @ s + b
            s = (v >= 1.0).astype(np.float32)
            v -= s


def bench_w1(T=100, repeat=7):
    print("\n== W1 streaming SNN: 700-256-256-20 LIF (beta 0.9, theta 1, subtract), 5 % Bernoulli input, "
          f"T = {T} ==")
    g = w1_graph()
    rng = np.random.default_rng(0)
    X = (rng.random((T, 700)) < 0.05).astype(np.float32)
    rt = tr.Runtime(g, backend="numba")
    step = rt.step
    frames = [{"x": x} for x in X]
    rt.step(frames[0])

    def stream():
        for f in frames:
            step(f)
    t_nb = best(stream, repeat) / T
    be = rt._impl
    be.events = 0
    rt.reset()
    stream()
    events = be.events / T
    ref = tr.Runtime(g, backend="reference")
    rstep = ref.step
    t_ref = best(lambda: [rstep(f) for f in frames], 3) / T
    t_np = best(lambda: numpy_dense_w1(g, X), repeat) / T
    # the fused kernel alone (what a hand-written numba loop costs), without Runtime.step
    op = be.ops[0]
    kern = (op.wb, op.ip, op.fp, op.st, op.refrac)
    from tianrt.kernels.neuron import snn_chain_step
    x0 = be.slots["x"][1]

    def kernel_only():
        for x in X:
            x0[:] = x
            snn_chain_step(x0, *kern, 0, False)
    t_kern = best(kernel_only, repeat) / T
    rows = [("numba Runtime.step, batch 1", t_nb), ("  fused kernel alone (no step overhead)", t_kern),
            ("plain numpy dense loop", t_np), ("reference backend step", t_ref)]
    for name, t in rows:
        print(f"  {name:42s} {t * 1e6:9.2f} us/tick   numba is {t / t_nb:6.1f}x faster")
    print(f"  synaptic events per tick {events:,.0f}; per second at batch 1: {events / t_nb / 1e6:,.0f} M")
    # batch 32, step by step
    XB = (rng.random((T, 32, 700)) < 0.05).astype(np.float32)
    rtb = tr.Runtime(g, backend="numba")
    fb = [{"x": x} for x in XB]
    rtb.step(fb[0])
    t_b = best(lambda: [rtb.step(f) for f in fb], repeat) / T
    print(f"  numba batch 32 step: {t_b * 1e6:.1f} us/tick = {t_b / 32 * 1e6:.2f} us per sample-tick "
          f"(target <= 3)")
    # T at once through run()
    rtr = tr.Runtime(g, backend="numba")
    rtr.run({"x": X[:2]})
    t_run = best(lambda: (rtr.reset(), rtr.run({"x": X})), repeat) / T
    print(f"  numba run(T={T}) at once: {t_run * 1e6:.2f} us/tick")
    p = peers("snntorch", "spikingjelly", "norse")
    weights = [(g[f"syn{i}"].weight, g[f"syn{i}"].bias) for i in (1, 2, 3)]
    import peers as pr
    fns = {"snntorch": pr.w1_snntorch, "norse": pr.w1_norse, "spikingjelly": pr.w1_spikingjelly}
    found = []
    for name, ok in p.items():
        if not ok:
            print(f"  {name}: not installed")
            continue
        try:
            t = fns[name](weights, X, lambda f: best(f, 3))
        except Exception as exc:  # a peer's API drift is reported, not fatal
            print(f"  {name}: failed ({type(exc).__name__}: {exc})")
            continue
        found.append(t)
        print(f"  {name + ' step (batch 1, 1 thread)':42s} {t * 1e6:9.2f} us/tick   numba is {t / t_nb:6.1f}x faster")
    if found:
        print(f"  numba vs the best peer: {min(found) / t_nb:.1f}x (target >= 40x)")
    return {"w1_us": t_nb * 1e6, "events": events}


# -- W2 -------------------------------------------------------------------------------------

def w2_graph():
    g = tr.Graph(name="w2")
    x = g.input("img", shape=(1, 48, 64))
    h = g.chain(x, tr.ann.Conv2d(1, 8, 3, padding=1, seed=1), tr.ann.ReLU(), tr.ann.MaxPool2d(2),
                tr.ann.Conv2d(8, 16, 3, padding=1, seed=2), tr.ann.ReLU(), tr.ann.MaxPool2d(2),
                tr.ann.Conv2d(16, 32, 3, padding=1, seed=3), tr.ann.ReLU(), tr.ann.GlobalAvgPool2d(),
                tr.ann.Dense(32, 4, seed=4))
    g.output("y", h)
    return g


def w2_weights(g, img, path):
    np.savez(path, img=img, **{f"w{i}": g[f"conv{i}"].weight for i in (1, 2, 3)},
             **{f"b{i}": g[f"conv{i}"].bias for i in (1, 2, 3)}, wd=g["dense1"].weight, bd=g["dense1"].bias)


class Server:
    """A timing process answering ``N`` with microseconds per inference of N calls, wall and
    process CPU time (the ``serve`` modes of peer_ort_w2.py and of this file): its rounds
    are interleaved with ours, so both are measured under the same load on a shared
    machine."""

    def __init__(self, cmd, env=None):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ if env is None else env, OMP_NUM_THREADS="1"))
        self.head = self.p.stdout.readline().split()
        if not self.head:
            self.close()
            raise RuntimeError(f"{cmd[:2]} did not start")

    def time(self, n):
        """(wall, cpu) seconds per call."""
        self.p.stdin.write(f"{n}\n")
        self.p.stdin.flush()
        wall, cpu = self.p.stdout.readline().split()
        return float(wall) * 1e-6, float(cpu) * 1e-6

    def close(self):
        try:
            self.p.stdin.write("\n")
            self.p.stdin.flush()
        except OSError:
            pass
        self.p.wait(timeout=30)


def serve_w2():
    """``bench_kernels.py w2-serve``: the numba backend's W2 (default options) as a Server,
    for a baseline tree put first on PYTHONPATH (``--baseline-tree``)."""
    g, img = w2_graph(), np.random.default_rng(1).random((1, 48, 64)).astype(np.float32)
    rt = tr.Runtime(g, backend="numba")
    feed = {"img": img}
    y = rt.step(feed)["y"]
    serve_steps(" ".join(f"{v:.9g}" for v in y.ravel()) + " " + os.path.dirname(tr.__file__), lambda: rt.step(feed))


def w2_side_by_side(rt, feed, servers, n=100, rounds=31):
    """Interleaved rounds: ours, then each server's, ``rounds`` times; per row the best
    and median round (wall time and process CPU time: under load the CPU time is the one
    that preemption by other jobs does not inflate), and per server the median over rounds
    of (its time / ours)."""
    me = "numba (this tree)"
    ts = {me: []} | {k: [] for k in servers}
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            rt.step(feed)
        ts[me].append(((time.perf_counter() - t0) / n, (time.process_time() - c0) / n))
        for k, s in servers.items():
            ts[k].append(s.time(n))
    print(f"  interleaved: {rounds} rounds of {n} inferences each, one thread everywhere (us per inference)")
    for k, v in ts.items():
        w, c = np.array(v).T * 1e6
        print(f"    {k:26s} wall best {w.min():7.1f} median {np.median(w):7.1f} | "
              f"cpu best {c.min():7.1f} median {np.median(c):7.1f}")
    mine = np.array(ts[me])
    for k in servers:
        r = np.array(ts[k]) / mine
        print(f"    {k} / {me}: wall {np.median(r[:, 0]):5.2f}x, cpu {np.median(r[:, 1]):5.2f}x "
              f"(medians of per-round ratios; > 1: this tree is faster)")
    return ts


def bench_w2(n=200, repeat=7, peer_python=None, baseline_tree=None):
    print("\n== W2 batch-1 CNN: 1x48x64, conv3x3(8)-ReLU-pool, conv3x3(16)-ReLU-pool, conv3x3(32)-ReLU, GAP, "
          "dense 32->4 ==")
    g = w2_graph()
    img = np.random.default_rng(1).random((1, 48, 64)).astype(np.float32)
    feed = {"img": img}
    res, chosen = {}, None
    for mode in ("auto", "direct", "im2col"):
        rt = tr.Runtime(g, backend="numba", conv_mode=mode)
        rt.step(feed)
        res[mode] = best(lambda: [rt.step(feed) for _ in range(n)], repeat) / n
        chosen = chosen or dict(rt._impl.conv_chosen)
    ref = tr.Runtime(g, backend="reference")
    ref.step(feed)
    t_ref = best(lambda: [ref.step(feed) for _ in range(20)], 3) / 20
    print(f"  auto choice per layer (timed at the first input): {chosen}")
    for k in ("auto", "direct", "im2col"):
        print(f"  numba step, conv {k:7s} {res[k] * 1e6:9.1f} us/inference   vs reference {t_ref / res[k]:5.1f}x")
    print(f"  reference step          {t_ref * 1e6:9.1f} us/inference")
    rt = tr.Runtime(g, backend="numba")
    y = rt.step(feed)["y"]
    servers = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w2.npz")
        w2_weights(g, img, path)
        here = os.path.dirname(os.path.abspath(__file__))
        if peer_python:
            try:
                s = Server([peer_python, os.path.join(here, "peer_ort_w2.py"), path, "serve"])
                print(f"  ONNX Runtime {s.head[-1]} in {peer_python}; max abs diff vs numba "
                      f"{np.abs(np.array(s.head[:4], np.float64) - y).max():.1e}")
                servers["ONNX Runtime (1 thread)"] = s
            except (OSError, RuntimeError, ValueError) as exc:
                print(f"  ONNX Runtime via {peer_python}: failed ({type(exc).__name__}: {exc})")
        if baseline_tree:
            env = dict(os.environ, PYTHONPATH=baseline_tree)
            s = Server([sys.executable, os.path.abspath(__file__), "w2-serve"], env)
            print(f"  baseline: numba backend of {s.head[-1]}; max abs diff vs this tree "
                  f"{np.abs(np.array(s.head[:4], np.float64) - y).max():.1e}")
            servers["numba (baseline tree)"] = s
        if servers:
            try:
                w2_side_by_side(rt, feed, servers)
            finally:
                for s in servers.values():
                    s.close()
    if peers("torch")["torch"]:
        import peers as pr
        for name, t in pr.w2_torch_and_onnx(g, img, lambda f: best(f, repeat)).items():
            if name.startswith("_"):
                print(f"  (ONNX Runtime vs torch output, max abs diff {t:.1e})")
                continue
            print(f"  {name:23s} {t * 1e6:9.1f} us/inference   numba (auto) is {t / res['auto']:5.2f}x as fast")
    elif not peer_python:
        print("  torch: not installed (ONNX Runtime without torch: --peer-python)")
    print("  target: no slower than ONNX Runtime with one thread")
    return res


# -- W3 CUBA ----------------------------------------------------------------------------------

def cuba_graph(n=4000, n_exc=3200, p=0.02, seed=0, dt=1e-4):
    """Brette et al. 2007 CUBA on the tick semantics. Membrane in mV above the reset
    potential (w = v - Vr: reset 0, threshold 10 mV, rest El - Vr = 11 mV); exact
    exponential decay per tick; the factor (1 - beta_m) of the membrane update is folded
    into the synaptic weights and the drive."""
    bm, be_, bi = np.exp(-dt / 20e-3), np.exp(-dt / 5e-3), np.exp(-dt / 10e-3)
    rng = np.random.default_rng(seed)
    conn = rng.random((n, n)) < p  # (post, pre)
    we, wi = 60 * 0.27 / 10, -20 * 4.5 / 10  # mV
    w_e = np.where(conn[:, :n_exc], np.float32((1 - bm) * we), np.float32(0))
    w_i = np.where(conn[:, n_exc:], np.float32((1 - bm) * wi), np.float32(0))
    W_e = np.zeros((n, n), np.float32)
    W_e[:, :n_exc] = w_e
    W_i = np.zeros((n, n), np.float32)
    W_i[:, n_exc:] = w_i
    g = tr.Graph(dt=dt, name="cuba")
    drive = g.input("drive", shape=(n,))
    d = g.delay((n,), "spike", name="spikes_prev")
    ge = g.add(tr.snn.LI(beta=be_), g.add(tr.snn.Dense(n, n, weight=W_e), d, name="syn_e"), name="ge")
    gi = g.add(tr.snn.LI(beta=bi), g.add(tr.snn.Dense(n, n, weight=W_i), d, name="syn_i"), name="gi")
    dc = g.add(tr.bridge.DirectCurrent(gain=1.0), drive)
    s = g.add(tr.snn.LIF(beta=bm, threshold=10.0, reset="zero", v_reset=0.0, refractory=int(round(5e-3 / dt))),
              g.add(tr.ann.Add(), ge, gi, dc), name="lif")
    g.connect(d, s)
    g.output("count", g.add(tr.bridge.SpikeCount(window=int(round(1.0 / dt))), s))
    return g, np.full(n, (1 - bm) * 11.0, np.float32), rng.random(n).astype(np.float32) * 10.0


def bench_w3():
    print("\n== W3 CUBA (Brette et al. 2007): 4000 LIF (3200 exc / 800 inh), p = 0.02, exponential "
          "current synapses, dt = 0.1 ms, 1 s ==")
    t0 = time.perf_counter()
    g, drive, v0 = cuba_graph()
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    rt = tr.Runtime(g, backend="numba")
    st = rt.state()
    st["lif/v"] = v0[None]
    rt.load_state(st)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    rt.step({"drive": drive})  # first tick: loads the kernels' machine code from the cache
    t_first = time.perf_counter() - t0
    t_run = float("inf")
    for _ in range(3):  # minimum of three runs of the same second
        rt.load_state(st)  # back to t = 0 and the initial membranes
        rt._impl.events = 0
        t0 = time.perf_counter()
        out = rt.run({"drive": drive}, ticks=10_000)
        t_run = min(t_run, time.perf_counter() - t0)
    spikes = int(out["count"].sum())
    print(f"  network construction (numpy, random connectivity) {t_graph:.2f} s; Runtime build + CSR "
          f"{t_build:.2f} s; first tick (kernels loaded from the cache) {t_first:.2f} s")
    print(f"  numba: simulation loop (best of 3) {t_run:.3f} s for 10,000 ticks ({t_run / 1e4 * 1e6:.1f} us/tick), "
          f"{spikes:,} spikes ({spikes / 4000:.1f} Hz mean rate), {rt._impl.events:,} synaptic events")
    ref = tr.Runtime(g, backend="reference")
    st = ref.state()
    st["lif/v"] = v0[None]
    ref.load_state(st)
    t0 = time.perf_counter()
    ref.run({"drive": drive}, ticks=50)
    t_ref = (time.perf_counter() - t0) / 50
    print(f"  reference backend: {t_ref * 1e3:.2f} ms/tick (50 ticks) -> {t_ref * 1e4:.1f} s for 1 s; "
          f"numba is {t_ref / (t_run / 1e4):.0f}x faster")
    if peers("brian2")["brian2"]:
        import peers as pr
        for target in ("cython", "cpp_standalone"):
            try:
                loop, n_sp, total = pr.w3_brian2(target)
            except Exception as exc:
                print(f"  brian2 {target}: failed ({type(exc).__name__}: {str(exc)[-300:]})")
                continue
            extra = f" (build + run {total:.1f} s)" if total else ""
            clock = " (its CPU time, std::clock; ours is wall time: see w3-side)" if target == "cpp_standalone" else ""
            print(f"  brian2 {target:15s} loop {loop:.3f} s{clock}, {n_sp:,} spikes{extra}; "
                  f"numba's loop is {loop / t_run:.2f}x as fast")
    else:
        print("  brian2: not installed")
    print("  targets: faster than Brian2's Cython loop, within 1.5x of cpp_standalone's")
    return {"w3_s": t_run, "spikes": spikes}


def _w3_runtime(**opts):
    g, drive, v0 = cuba_graph()
    rt = tr.Runtime(g, backend="numba", **opts)
    st = rt.state()
    st["lif/v"] = v0[None]
    rt.load_state(st)
    rt.step({"drive": drive})

    def second():  # the simulated second from t = 0, as Brian2's loop: (wall s, cpu s), spikes
        rt.load_state(st)
        t0, c0 = time.perf_counter(), time.process_time()
        out = rt.run({"drive": drive}, ticks=10_000)
        return (time.perf_counter() - t0, time.process_time() - c0), int(out["count"].sum())
    return second


def serve_w3():
    """``bench_kernels.py w3-serve``: W3's simulated second on the numba backend (default
    options) as a Server, for a baseline tree put first on PYTHONPATH."""
    second = _w3_runtime()
    print(second()[1], os.path.dirname(tr.__file__), flush=True)
    while True:
        line = sys.stdin.readline()
        if not line.strip():
            break
        w, c = second()[0]
        print(f"{w * 1e6:.3f} {c * 1e6:.3f}", flush=True)


def bench_w3_side_by_side(peer_python=None, baseline_tree=None, rounds=7):
    """W3's simulated second interleaved: this tree per op and compiled, Brian2's compiled
    cpp_standalone binary (built once, re-run each round), and a baseline tree's numba
    backend; per row the best and median round, per pair the median of per-round ratios."""
    print(f"\n== W3 CUBA side by side: {rounds} interleaved rounds of the simulated second (10,000 ticks) ==")
    rows = {"numba per op (this tree)": _w3_runtime(), "numba compiled tick (this tree)": _w3_runtime(compiled=True)}
    spikes = {k: f() for k, f in rows.items()}
    print("  spikes in the second: " + ", ".join(f"{k} {v[1]:,}" for k, v in spikes.items()))
    servers, tmp = {}, tempfile.TemporaryDirectory()
    try:
        if baseline_tree:
            env = dict(os.environ, PYTHONPATH=baseline_tree)
            s = Server([sys.executable, os.path.abspath(__file__), "w3-serve"], env)
            print(f"  baseline: numba backend of {s.head[-1]} ({int(s.head[0]):,} spikes)")
            rows["numba per op (baseline tree)"] = lambda s=s: (s.time(1), 0)
            servers["baseline"] = s
        if peer_python or peers("brian2")["brian2"]:
            import peers as pr
            t0 = time.perf_counter()
            try:
                brian = pr.w3_brian2_binary(tmp.name, peer_python)
                print(f"  Brian2 cpp_standalone built in {time.perf_counter() - t0:.1f} s")
                rows["Brian2 cpp_standalone"] = lambda: ((float("nan"), brian()), 0)
            except Exception as exc:  # reported, not fatal
                print(f"  Brian2 cpp_standalone: failed ({type(exc).__name__}: {str(exc)[-300:]})")
        ts = {k: [] for k in rows}
        for _ in range(rounds):
            for k, f in rows.items():
                ts[k].append(f()[0])
        print("  seconds for the simulated second; Brian2 reports its loop's CPU time (std::clock), so the "
              "ratios use CPU time (process_time) on both sides")
        for k, v in ts.items():
            w, c = np.array(v).T
            wall = f"wall best {np.nanmin(w):.4f} median {np.median(w):.4f} | " if not np.isnan(w).all() else " " * 36
            print(f"    {k:32s} {wall}cpu best {c.min():.4f} median {np.median(c):.4f} ({c.min() * 100:.2f} us/tick)")
        cpu = {k: np.array(v)[:, 1] for k, v in ts.items()}
        if "Brian2 cpp_standalone" in cpu:
            b = cpu["Brian2 cpp_standalone"]
            for k in rows:
                if k != "Brian2 cpp_standalone":
                    print(f"    {k} / Brian2 cpp_standalone (cpu): best/best {cpu[k].min() / b.min():.2f}x, "
                          f"median of per-round ratios {np.median(cpu[k] / b):.2f}x  (target <= 1.2x)")
        if "numba per op (baseline tree)" in cpu:
            base = cpu["numba per op (baseline tree)"]
            for k in ("numba per op (this tree)", "numba compiled tick (this tree)"):
                print(f"    baseline / {k} (cpu): median of per-round ratios {np.median(base / cpu[k]):.2f}x")
    finally:
        for s in servers.values():
            s.close()
        tmp.cleanup()
    return ts


# -- scaling ----------------------------------------------------------------------------------

ACTIVITIES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def bench_scaling(n=1024, batch=1, reps=200):
    print(f"\n== Scaling: one {n}->{n} spiking layer, batch {batch}: us per tick vs input activity ==")
    print("  event / dense loop: the numba kernels; BLAS: numpy matmul into a preallocated output;")
    print("  auto: the layer in Runtime.step (spike input -> snn.Dense -> output current), which counts")
    print("  the active inputs and takes the event loop or BLAS at the crossover")
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((n, n)) * 0.05).astype(np.float32)
    wt = np.ascontiguousarray(w.T)
    b = np.zeros(n, np.float32)
    out = np.zeros((batch, n), np.float32)
    g = tr.Graph()
    g.output("i", g.add(tr.snn.Dense(n, n, weight=w), g.input("x", (n,), domain="spike")))
    rt = tr.Runtime(g, backend="numba")
    print(f"  {'activity':>8s} {'event':>9s} {'dense':>9s} {'BLAS':>9s} {'auto':>9s}  best dense / event")
    cross = None
    for a in ACTIVITIES:
        xs = [(rng.random((batch, n)) < a).astype(np.float32) for _ in range(8)]
        t = {}
        for name, mode in (("event", synapse.EVENT), ("dense", synapse.DENSE)):
            synapse.accumulate(xs[0], wt, b, out, mode, 0.0)
            t[name] = best(lambda: [synapse.accumulate(x, wt, b, out, mode, 0.0)
                                    for x in xs for _ in range(reps // 8)], 5) / reps

        def blas():
            for x in xs:
                for _ in range(reps // 8):
                    np.matmul(x, wt, out=out)
                    np.add(out, b, out=out)
        t["BLAS"] = best(blas, 5) / reps
        feeds = [{"x": x if batch > 1 else x[0]} for x in xs]
        rt.reset()
        rt.step(feeds[0])
        t["auto"] = best(lambda: [rt.step(f) for f in feeds for _ in range(reps // 8)], 5) / reps
        dense = min(t["dense"], t["BLAS"])
        if cross is None and t["event"] >= dense:
            cross = a
        print(f"  {a * 100:7.1f}% {t['event'] * 1e6:9.2f} {t['dense'] * 1e6:9.2f} {t['BLAS'] * 1e6:9.2f} "
              f"{t['auto'] * 1e6:9.2f}  {dense / t['event']:6.1f}x")
    used = policy.DEFAULT_CROSSOVER if batch == 1 else policy.DEFAULT_CROSSOVER_BATCH
    print(f"  measured crossover (first activity where the event loop is no longer faster): "
          f"{'none up to ' + str(ACTIVITIES[-1] * 100) + ' %' if cross is None else f'{cross * 100:.0f} %'}; "
          f"the backend switches at {used * 100:.0f} % for batch {'1' if batch == 1 else '> 1'}")
    return cross


# -- batch: converted float SNN over a batch ----------------------------------------------------

BATCHES = (1, 2, 8, 32, 128, 540, 1797)


def digits_snn(T=32):
    """The digits demo's converted MLP (64-128-64-10, IF, DirectCurrent input, MembraneReadout)
    from the shipped model, and the 1797 digit images scaled to [0, 1] (random images of the
    same shape when scikit-learn is missing)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ann = tr.load(os.path.join(root, "demos", "data", "digits_mlp.tnr"))
    try:
        from sklearn.datasets import load_digits
        x = (load_digits().data / 16).astype(np.float32)
    except ImportError:
        x = np.random.default_rng(3).random((1797, 64)).astype(np.float32)
    return tr.convert(ann, calibration={"x": x[:500]}, T=T), x


def bench_batch(T=32):
    print(f"\n== Batch: the converted digits MLP (64-128-64-10 IF, DirectCurrent, MembraneReadout), "
          f"run(x, ticks={T}) over a batch ==")
    snn, x = digits_snn(T)
    print(f"  {'batch':>6s} {'reference':>12s} {'numba':>12s}  numba is   max |diff|")
    res = {}
    for b in BATCHES:
        xb = x[:b]
        t, y = {}, {}
        for name in ("reference", "numba"):
            rt = tr.Runtime(snn, backend=name)
            rt.run({"x": xb}, ticks=2)
            reps = 5 if b <= 540 else 3

            def once():
                rt.reset()
                y[name] = rt.run({"x": xb}, ticks=T)["y"][-1]
            t[name] = best(once, reps)
        res[b] = t["reference"] / t["numba"]
        print(f"  {b:6d} {t['reference'] / T * 1e6:9.1f} us {t['numba'] / T * 1e6:9.1f} us  {res[b]:5.2f}x   "
              f"{np.abs(y['reference'] - y['numba']).max():.1e}   (per tick)")
    print("  target: numba at least as fast as the reference at every batch size")
    crossover_sweep()
    return res


def crossover_sweep(reps=20):
    """Event loop vs BLAS on one layer as the batch grows: what the batch crossover's
    scaling (NumbaBackend.crossover_for) was fitted to."""
    print("  event loop / BLAS, us per tick, one layer (random spikes at the activity):")
    rng = np.random.default_rng(4)
    acts = (0.05, 0.2, 0.5)
    print(f"  {'layer, batch':>16s} " + " ".join(f"{a * 100:>13.0f}%" for a in acts) + "   auto switches at")
    be = nb.NumbaBackend(digits_snn(2)[0].build())
    for (n_in, n_out), batch in (((128, 64), 32), ((128, 64), 540), ((64, 10), 540), ((700, 256), 540),
                                 ((1024, 1024), 32), ((1024, 1024), 540)):
        wt = rng.standard_normal((n_in, n_out)).astype(np.float32)
        b = np.zeros(n_out, np.float32)
        out = np.zeros((batch, n_out), np.float32)
        n = max(1, reps * 64 // batch)
        cells = []
        for a in acts:
            x = (rng.random((batch, n_in)) < a).astype(np.float32)
            synapse.accumulate(x, wt, b, out, synapse.EVENT, 0.0)
            te = best(lambda: [synapse.accumulate(x, wt, b, out, synapse.EVENT, 0.0) for _ in range(n)], 5) / n

            def blas():
                for _ in range(n):
                    np.matmul(x, wt, out=out)
                    np.add(out, b, out=out)
            tb = best(blas, 5) / n
            cells.append(f"{te * 1e6:6.1f} /{tb * 1e6:6.1f}")
        print(f"  {f'{n_in}->{n_out}, B {batch}':>16s} " + " ".join(f"{c:>14s}" for c in cells)
              + f"   {be.crossover_for(batch, n_out) * 100:5.1f} %")


# -- start-up -------------------------------------------------------------------------------

STARTUP = r"""
import time
t0 = time.perf_counter()
import numpy as np, tianrt as tr
import sys; sys.path.insert(0, {bench!r})
from bench_kernels import w1_graph, cuba_graph
if {which!r} == "w1":
    g, feed = w1_graph(), {{"x": np.zeros(700, np.float32)}}
else:
    g, drive, _ = cuba_graph(n=400, n_exc=320, p=0.2)
    feed = {{"drive": drive}}
rt = tr.Runtime(g, backend="numba")
rt.step(feed)
print(time.perf_counter() - t0)
"""


def bench_startup():
    print("\n== Start-up: fresh process, import tianrt + build the graph + first tick ==")
    res = {}
    for which in ("w1", "w3"):
        code = STARTUP.format(bench=os.path.dirname(os.path.abspath(__file__)), which=which)
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            run = lambda: float(subprocess.check_output([sys.executable, "-c", code], env=env).split()[-1])  # noqa: E731
            cold = run()
            cached = min(run() for _ in range(3))
        res[which] = (cold, cached)
        label = "W1" if which == "w1" else "W3 (CUBA kernels, small network)"
        print(f"  {label}: cold (empty kernel cache, JIT compile) {cold:.2f} s; cached kernels {cached:.2f} s")
    print("  targets: cached W1 start < 1.5 s; W3 cold JIT compile < 3 s")
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", help="an interpreter with onnxruntime + onnx (W2) or brian2 (w3-side): "
                   "the peer is measured there in a subprocess, interleaved with this run")
    p.add_argument("--baseline-tree", help="W2, W3 (w3-side): also time the numba backend of another source tree (e.g. "
                   "the main checkout) in a subprocess, interleaved with this tree's rounds")
    p.add_argument("which", nargs="?", default="all",
                   choices=["all", "w1", "w2", "w3", "w3-side", "scaling", "batch", "startup", "w2-serve",
                            "w3-serve"])
    a = p.parse_args(argv)
    if a.which == "w2-serve":
        return serve_w2()
    if a.which == "w3-serve":
        return serve_w3()
    print(f"numba backend benchmarks; python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs")
    if a.which in ("all", "w1"):
        bench_w1()
    if a.which in ("all", "w2"):
        bench_w2(peer_python=a.peer_python, baseline_tree=a.baseline_tree)
    if a.which in ("all", "scaling"):
        bench_scaling()
        bench_scaling(batch=32, reps=40)
    if a.which in ("all", "batch"):
        bench_batch()
    if a.which in ("all", "w3"):
        bench_w3()
    if a.which in ("all", "w3-side"):
        bench_w3_side_by_side(a.peer_python, a.baseline_tree)
    if a.which in ("all", "startup"):
        bench_startup()


if __name__ == "__main__":
    main()
