"""Cores a LeNet-size CNN and a 784-512-256-10 MLP need on the chip, with the default
ChipSpec (64 KiB of weights per core: a 256x256 int8 crossbar) and with the named preset
"tianjic-sram" (22 KiB of weight SRAM per core, the figure quoted for a Tianjic FCore).

    .venv/bin/python bench/bench_mapping.py

Random int8 weights (the mapping depends on shapes only); a large mesh so that the count is
reported even when it exceeds the 156 cores of the real chip.
"""
from __future__ import annotations

import sys

import numpy as np

import tianrt as tr
from tianrt import q
from tianrt.chip import ChipSpec


def _dense(rng, n_in, n_out):
    return q.Dense(n_in, n_out, weight=rng.integers(-128, 128, (n_out, n_in)), bias=np.zeros(n_out, int),
                   multiplier=np.full(n_out, 1 << 14), shift=np.full(n_out, 20), lo=0)


def _conv(rng, c_in, c_out):
    return q.Conv2d(c_in, c_out, 3, padding=1, weight=rng.integers(-128, 128, (c_out, c_in, 3, 3)),
                    bias=np.zeros(c_out, int), multiplier=np.full(c_out, 1 << 14), shift=np.full(c_out, 20), lo=0)


def lenet(rng):
    g = tr.Graph(name="lenet-28")
    x = g.add(q.Quantize(0.02), g.input("x", (1, 28, 28)))
    x = g.add(q.MaxPool2d(2), g.add(_conv(rng, 1, 16), x))
    x = g.add(q.MaxPool2d(2), g.add(_conv(rng, 16, 32), x))
    x = g.add(tr.ann.Flatten(), x)
    g.output("y", g.add(_dense(rng, 128, 10), g.add(_dense(rng, 1568, 128), x)))
    return g


def mlp(rng):
    g = tr.Graph(name="mlp-784")
    x = g.add(q.Quantize(0.02), g.input("x", (784,)))
    for a, b in ((784, 512), (512, 256), (256, 10)):
        x = g.add(_dense(rng, a, b), x)
    g.output("y", x)
    return g


def main() -> int:
    big = {"mesh_rows": 40, "mesh_cols": 40}
    specs = {"default (64 KiB/core)": ChipSpec(**big),
             "tianjic-sram (22 KiB/core)": ChipSpec.preset("tianjic-sram").with_mesh("40x40")}
    for make in (lenet, mlp):
        g = make(np.random.default_rng(0))
        for label, spec in specs.items():
            _img, rep = tr.chip.compile(g, spec)
            d = rep.to_dict()
            rows = ", ".join(f"{r['layer']} {r['cores']}" for r in d["layers"])
            print(f"{g.name:9s} {label:27s} {d['cores_used']:4d} cores ({'fits' if d['cores_used'] <= 156 else 'does not fit'} "
                  f"the 156-core chip): {rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
