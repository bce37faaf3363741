"""Chip emulator and compiler benchmarks (docs/benchmarks.md, "Chip emulator and compiler").

1. Emulated work rate: synaptic events/s (a spiking MLP, event-driven cores, input held)
   and MACs/s (an ANN MLP on crossbar cores, a new input every tick) of firmware_sim's
   Engine, run in process, side by side with the numba backend's integer mode on the same
   graph and inputs (outputs checked equal).
2. Placement: traffic x hops and XY-multicast hops per tick of the compiler's placement
   (greedy + swaps) against random placements, for three graphs.

    .venv/bin/python bench/bench_chip.py [--batch 32] [--ticks 20] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tianrt as tr
from tianrt import q
from tianrt.chip import ChipSpec
from tianrt.chip import compiler, mapping, placement, routing
from tianrt.firmware_sim.engine import Engine
from tianrt.qmath import quantize


def snn_mlp(rng, n_in=512, h=512, out=256):
    g = tr.Graph(name="snn-mlp")
    x = g.input("x", (n_in,), domain="spike", hold=True)  # held for the run, as pushed to the engine
    i = g.add(q.SynDense(n_in, h, weight=rng.integers(-127, 128, (h, n_in))), x)
    s = g.add(q.LIF(threshold=2000, leak_mult=30000, leak_shift=15), i)
    i = g.add(q.SynDense(h, out, weight=rng.integers(-127, 128, (out, h))), s)
    s = g.add(q.LIF(threshold=2000), i)
    g.output("c", g.add(tr.bridge.SpikeCount(window=10), s))
    return g


def ann_mlp(rng, n_in=512, h=512, out=256):
    g = tr.Graph(name="ann-mlp")
    x = g.input("x", (n_in,))
    a = g.add(q.Quantize(0.05), x)
    a = g.add(q.Dense(n_in, h, weight=rng.integers(-127, 128, (h, n_in)), multiplier=20000, shift=22, lo=0), a)
    a = g.add(q.Dense(h, out, weight=rng.integers(-127, 128, (out, h)), multiplier=20000, shift=22), a)
    g.output("y", a)
    return g


def hybrid_cnn(rng):
    g = tr.Graph(name="hybrid-cnn")
    x = g.input("x", (1, 16, 16))
    a = g.add(q.Quantize(0.05), x)
    a = g.add(q.Conv2d(1, 8, 3, padding=1, weight=rng.integers(-127, 128, (8, 1, 3, 3)), multiplier=20000,
                       shift=16, lo=0), a)
    a = g.add(q.MaxPool2d(2), a)
    s = g.add(q.RateEncoder(full_scale=127), a)
    i = g.add(q.SynConv2d(8, 16, 3, padding=1, weight=rng.integers(-127, 128, (16, 8, 3, 3))), s)
    s = g.add(q.LIF(threshold=3000), i)
    f = g.add(tr.ann.Flatten(), s)
    i = g.add(q.SynDense(16 * 64, 10, weight=rng.integers(-127, 128, (10, 1024))), f)
    s = g.add(q.LIF(threshold=3000), i)
    g.output("c", g.add(tr.bridge.SpikeCount(window=8), s))
    return g


def work_rate(g, xs, ticks, repeat, key, clip=False):
    """Engine and numba on the same inputs: held for ``ticks``, or (clip) a new value at
    every tick (the ANN layers then compute every tick)."""
    image, report = tr.chip.compile(g)
    nb = tr.Runtime(g, backend="numba")
    nb.run(xs) if clip else nb.run(xs, ticks=2)  # compile the kernels outside the timing
    e = Engine()
    e.load_image(image)
    host = {h["input"]: h for h in __import__("tianrt.chip.image_format", fromlist=["unpack"]).unpack(image)
            .meta["host"]["inputs"]}
    best_e, best_n = np.inf, np.inf
    for _ in range(repeat):
        nb.reset()
        t0 = time.perf_counter()
        a = nb.run(xs) if clip else nb.run(xs, ticks=ticks)
        best_n = min(best_n, time.perf_counter() - t0)
        e.reset()
        e.reset_counters()
        t0 = time.perf_counter()
        for t in range(ticks if clip else 1):
            for name, x in xs.items():
                h = host[name]
                x = x[t] if clip else x
                v = quantize(x, h["scale"]) if h["scale"] is not None else x
                e.push_input(h["chip_input"], np.asarray(v).astype(np.int32))
            e.run(1 if clip else ticks)
        out = e.pull_outputs()
        best_e = min(best_e, time.perf_counter() - t0)
    k = next(iter(a))
    exact = np.array_equal(np.asarray(a[k], np.float64), out[k][1].astype(np.float64))
    c = e.counters()
    return report, c, best_e, best_n, exact, c[key] / best_e


def tree_hops(b, slots, spec):
    """XY-multicast hops per tick (every core sends every value once) for a placement."""
    positions = {c.id: (int(slots[c.id]) // spec.mesh_cols, int(slots[c.id]) % spec.mesh_cols) for c in b.cores}
    prod = mapping._producers(b)
    dests, to_host = {}, set()
    for c in b.cores:
        for p in np.unique(mapping._sources(prod, c.axons)).tolist():
            if p != c.id:
                dests.setdefault(p, set()).add(c.id)
    for o in b.outputs:
        to_host.update(p for p in np.unique(mapping._sources(prod, o["src"])).tolist() if p != routing.HOST)
    _, links, _ = routing.build_tables(positions, dests, to_host, spec.mesh_cols)
    sends = {c.id: c.n_neurons for c in b.cores}
    sends[routing.HOST] = sum(x["size"] for x in b.buffers if x["kind"] == "input")
    return sum(sends[s] * links[s] for s in links)


def placement_rows(graphs, spec, seeds=10):
    rows = []
    for g in graphs:
        b = compiler._Builder(g.build(), spec)
        b.lower()
        for lay in b.layers:
            b.tile(lay)
        b.finish_outputs()
        n = len(b.cores)
        prod = mapping._producers(b)
        traffic, host = np.zeros((n, n)), np.zeros(n)
        for c in b.cores:
            u, cnt = np.unique(mapping._sources(prod, c.axons), return_counts=True)
            for p, k in zip(u.tolist(), cnt.tolist()):
                if p == routing.HOST:
                    host[c.id] += k
                elif p != c.id:
                    traffic[p, c.id] += k
        sym = traffic + traffic.T
        t0 = time.perf_counter()
        slots, stats = placement.place(sym, host, spec.mesh_rows, spec.mesh_cols)
        dt = time.perf_counter() - t0
        rand = [np.random.default_rng(s).permutation(spec.n_cores)[:n] for s in range(seeds)]
        rcost = np.mean([placement.cost(sym, host, r, spec.mesh_rows, spec.mesh_cols) for r in rand])
        rhops = np.mean([tree_hops(b, r, spec) for r in rand])
        rows.append((g.name, n, rcost, stats["greedy_cost"], stats["improved_cost"], rhops,
                     tree_hops(b, slots, spec), dt))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--ticks", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"work rate: batch {a.batch}, {a.ticks} ticks, best of {a.repeat}")
    print(f"{'graph':10s} {'cores':>5s} {'engine s':>9s} {'numba s':>8s} {'engine/numba':>12s} {'exact':>5s}  rate")
    g = snn_mlp(rng)
    xs = {"x": (rng.random((a.batch, 512)) < 0.2).astype(np.float32)}
    r, c, te, tn, ok, rate = work_rate(g, xs, a.ticks, a.repeat, "syn_events")
    print(f"{g.name:10s} {r.cores_used:5d} {te:9.3f} {tn:8.3f} {te / tn:11.1f}x {str(ok):>5s}  "
          f"{rate / 1e6:.1f} M synaptic events/s ({c['syn_events']:.3g} events)")
    g = ann_mlp(rng)
    xs = {"x": rng.normal(0, 2, (a.ticks, a.batch, 512)).astype(np.float32)}
    r, c, te, tn, ok, rate = work_rate(g, xs, a.ticks, a.repeat, "macs", clip=True)
    print(f"{g.name:10s} {r.cores_used:5d} {te:9.3f} {tn:8.3f} {te / tn:11.1f}x {str(ok):>5s}  "
          f"{rate / 1e6:.1f} M MACs/s ({c['macs']:.3g} MACs)")
    print()
    spec = ChipSpec()
    rng = np.random.default_rng(1)
    graphs = [snn_mlp(rng, 1024, 1024, 512), ann_mlp(rng, 784, 1024, 256), hybrid_cnn(rng)]
    print("placement on a 12x13 mesh (costs: values per tick x Manhattan hops; random: mean of 10)")
    print(f"{'graph':11s} {'cores':>5s} {'random':>9s} {'greedy':>9s} {'improved':>9s} {'gain':>6s} "
          f"{'hops rand':>10s} {'hops ours':>10s} {'gain':>6s} {'time s':>7s}")
    for name, n, rc, gc, ic, rh, oh, dt in placement_rows(graphs, spec):
        print(f"{name:11s} {n:5d} {rc:9.0f} {gc:9.0f} {ic:9.0f} {rc / ic:5.2f}x {rh:10.0f} {oh:10.0f} "
              f"{rh / oh:5.2f}x {dt:7.2f}")


if __name__ == "__main__":
    main()
