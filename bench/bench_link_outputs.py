"""Spike outputs over the link: bytes per tick and ticks per second over a pty for a
256-neuron spiking output, dense (the protocol's plain int32 arrays, as before sparse
encoding) against sparse (event lists or bitmaps, docs/protocol.md section 3c), and the
time a 921,600-baud UART would need for the same bytes; then a clip of new inputs every
tick as one STEP per tick against STEPS exchanges of 256 frames.

    .venv/bin/python bench/bench_link_outputs.py [--ticks 50000] [--steps 500]

Starts its own emulators (ChipLink("auto")) and stops them at the end.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

import tianrt as tr
from tianrt import q
from tianrt.chip.link import ChipLink

UART_BYTES_PER_S = 921600 / 10   # 8N1


def graph(n=256, seed=0):
    rng = np.random.default_rng(seed)
    g = tr.Graph(name="bench-spikes")
    x = g.input("x", (n,), domain="spike")
    i = g.add(q.SynDense(n, n, weight=rng.integers(-20, 40, (n, n)), bias=np.zeros(n, int)), x)
    s = g.add(q.LIF(threshold=2000, leak_mult=30000, leak_shift=15), i)
    g.output("spikes", s)
    return g


def measure(image, x_run, xs_step, ticks, sparse):
    with ChipLink("auto", timeout=5.0, sparse=sparse) as link:
        info = link.upload_image(image)
        name = info["inputs"][0]["name"]
        link.push_input(name, x_run)
        link.run(8)
        link.pull_outputs()
        link.reset()
        rx0, tx0 = link.stats["bytes_received"], link.stats["bytes_sent"]
        t0 = time.perf_counter()
        link.push_input(name, x_run)
        link.run(ticks)
        out = link.pull_outputs()
        dt = time.perf_counter() - t0
        rx, tx = link.stats["bytes_received"] - rx0, link.stats["bytes_sent"] - tx0
        spikes = int(out["spikes"][1].sum())
        run = {"bytes_per_tick": (rx + tx) / ticks, "ticks_per_s": ticks / dt, "MB": (rx + tx) / 1e6,
               "uart_s": (rx + tx) / UART_BYTES_PER_S, "spike_rate": spikes / (ticks * 256)}
        link.reset()
        rx0, tx0 = link.stats["bytes_received"], link.stats["bytes_sent"]
        t0 = time.perf_counter()
        for x in xs_step:
            link.step({name: x}, 1)
        dt = time.perf_counter() - t0
        rx, tx = link.stats["bytes_received"] - rx0, link.stats["bytes_sent"] - tx0
        n = len(xs_step)
        step = {"bytes_per_tick": (rx + tx) / n, "ticks_per_s": n / dt, "uart_s_per_tick": (rx + tx) / n / UART_BYTES_PER_S}
        # the same frames as a clip: one STEPS exchange per 256 frames
        link.reset()
        rx0, tx0 = link.stats["bytes_received"], link.stats["bytes_sent"]
        t0 = time.perf_counter()
        for i in range(0, n, 256):
            link.steps([({name: x}, 1) for x in xs_step[i:i + 256]])
        dt = time.perf_counter() - t0
        rx, tx = link.stats["bytes_received"] - rx0, link.stats["bytes_sent"] - tx0
        step["clip_ticks_per_s"] = n / dt
        step["clip_bytes_per_tick"] = (rx + tx) / n
    return run, step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=50000)
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args(argv)
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {sys.platform}")
    image = tr.chip.compile(graph(), tr.chip.ChipSpec())[0]
    rng = np.random.default_rng(1)
    x_run = (rng.random(256) < 0.1).astype(np.int32)
    xs_step = (rng.random((args.steps, 256)) < 0.1).astype(np.int32)
    for sparse in (False, True):
        run, step = measure(image, x_run, xs_step, args.ticks, sparse)
        label = "sparse" if sparse else "dense "
        print(f"{label} run({args.ticks}): {run['bytes_per_tick']:.1f} B/tick, {run['MB']:.2f} MB, "
              f"{run['ticks_per_s']:.0f} ticks/s over the pty, UART 921600 baud {run['uart_s']:.1f} s "
              f"(spike rate {run['spike_rate']:.3f})")
        print(f"{label} step x{args.steps}: {step['bytes_per_tick']:.1f} B/tick, "
              f"{step['ticks_per_s']:.0f} ticks/s over the pty, UART {step['uart_s_per_tick'] * 1e3:.2f} ms/tick")
        print(f"{label} clip of {args.steps} frames as STEPS of 256: {step['clip_bytes_per_tick']:.1f} B/tick, "
              f"{step['clip_ticks_per_s']:.0f} ticks/s over the pty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
