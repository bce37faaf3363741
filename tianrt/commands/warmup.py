"""``tianrt warmup``: compile every numba kernel once, so later runs start from the cache.

Numba compiles a kernel per argument-type signature on first call and, with
``cache=True``, stores the machine code next to the kernel's source (or in
``NUMBA_CACHE_DIR`` / the user cache dir when that is read-only). Calling the kernels
directly would miss signatures the backend actually uses, so the warm-up instead runs
small graphs that hold every node type, float and integer mode, batch 1 (the fused
program) and batch 2 (layer by layer), on the numba backend.
"""
from __future__ import annotations

import time

import numpy as np


def _float_graphs():
    import tianrt as tr

    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.uniform(-1, 1, size=shape).astype(np.float32)

    g = tr.Graph(name="warmup_float")
    img = g.input("img", shape=(2, 6, 6))
    h = g.add(tr.ann.Conv2d(2, 3, 3, padding=1, weight=w(3, 2, 3, 3)), img)
    h = g.add(tr.ann.BatchNorm(3), h)
    h = g.add(tr.ann.ReLU(), h)
    m = g.add(tr.ann.MaxPool2d(2), h)
    m2 = g.add(tr.ann.MaxPool2d(3, stride=1, padding=1), m)
    a = g.add(tr.ann.AvgPool2d(2, stride=1, padding=1), m)
    a = g.add(tr.ann.Conv2d(3, 3, 2, stride=2, weight=w(3, 3, 2, 2)), a)
    s = g.add(tr.ann.Add(), m2, m, m)
    gap = g.add(tr.ann.GlobalAvgPool2d(), a)
    f = g.add(tr.ann.Concat(), g.add(tr.ann.Flatten(), s), gap)
    f = g.add(tr.ann.ClippedReLU(), f)
    n = 3 * 9 + 3
    g.output("t", g.add(tr.ann.Tanh(), g.add(tr.ann.Dense(3, 2, weight=w(2, 3)), g.add(tr.ann.Sigmoid(), gap))))
    spikes = g.add(tr.ann.Concat(), g.add(tr.bridge.RateEncoder(), f), g.add(tr.bridge.PoissonEncoder(), f),
                   g.add(tr.bridge.LatencyEncoder(window=4), f))
    d = g.delay((5,), "spike")
    s1 = g.add(tr.snn.LIF(refractory=1), g.add(tr.snn.Recurrent(3 * n, 5, weight=w(5, 3 * n)), spikes, d))
    g.connect(d, s1)
    cur = g.add(tr.ann.Add(), g.add(tr.snn.Dense(n, 5, weight=w(5, n)), g.add(tr.bridge.DirectCurrent(), f)),
                g.add(tr.snn.Dense(5, 5, weight=w(5, 5) * (rng.random((5, 5)) < 0.1)), s1))
    s2 = g.add(tr.snn.LIF(alpha=0.5, reset="zero"), cur)
    li = g.add(tr.snn.LI(), cur)
    sc = g.input("sc", shape=(1, 4, 4), domain="spike")
    s3 = g.add(tr.snn.IF(), g.add(tr.snn.Conv2d(1, 2, 3, padding=1, weight=w(2, 1, 3, 3)), sc))
    g.output("count", g.add(tr.bridge.SpikeCount(window=2), s2))
    g.output("rate", g.add(tr.bridge.SpikeCount(window=2, mode="sliding", rate=True), s1))
    g.output("mem", g.add(tr.bridge.MembraneReadout(window=2, mean=True), li))
    g.output("first", g.add(tr.bridge.FirstSpike(window=2), g.add(tr.ann.Flatten(), s3)))
    feeds = {"img": rng.random((3, 2, 6, 6)).astype(np.float32),
             "sc": (rng.random((3, 1, 4, 4)) < 0.5).astype(np.float32)}
    # the fused chain: spike input -> (Dense -> LIF) x 2
    c = tr.Graph(name="warmup_chain")
    x = c.input("x", shape=(8,), domain="spike")
    h = c.add(tr.snn.LIF(), c.add(tr.snn.Dense(8, 6, weight=w(6, 8)), x))
    h = c.add(tr.snn.LIF(alpha=0.5, refractory=1, reset="zero"), c.add(tr.snn.Dense(6, 4, weight=w(4, 6)), h))
    c.output("y", h)
    return [(g, feeds), (c, {"x": (rng.random((3, 8)) < 0.5).astype(np.float32)})]


def _int_graphs():
    import tianrt as tr

    Q = tr.q
    rng = np.random.default_rng(1)

    def w(*shape):
        return rng.integers(-127, 128, size=shape)

    g = tr.Graph(name="warmup_int")
    img = g.input("img", shape=(1, 6, 6))
    q = g.add(Q.Quantize(scale=1 / 64), img)
    h = g.add(Q.Conv2d(1, 2, 3, padding=1, weight=w(2, 1, 3, 3), multiplier=1 << 14, shift=20), q)
    h = g.add(Q.MaxPool2d(2), h)
    a = g.add(Q.AvgPool2d(2, stride=1, multiplier=1 << 14, shift=16), h)
    gp = g.add(Q.GlobalAvgPool2d(multiplier=1 << 14, shift=18), a)
    f = g.add(tr.ann.Flatten(), h)
    d = g.add(Q.Dense(18, 4, weight=w(4, 18), multiplier=1 << 14, shift=20), f)
    d = g.add(Q.Lookup(), g.add(Q.Clamp(0, 127), d))
    d = g.add(Q.Add(multipliers=[1, 2], shift=1), d, g.add(Q.Dense(2, 4, weight=w(4, 2)), gp))
    g.output("deq", g.add(Q.Dequantize(scale=0.1), d))
    sp = g.add(tr.ann.Concat(), g.add(Q.RateEncoder(), d), g.add(Q.LatencyEncoder(window=3), d))
    dl = g.delay((4,), "spike")
    s1 = g.add(Q.LIF(threshold=100, leak_mult=3, leak_shift=2, refractory=1, alpha_mult=1, alpha_shift=1),
               g.add(Q.SynRecurrent(8, 4, weight=w(4, 8), weight_rec=w(4, 4)), sp, dl))
    g.connect(dl, s1)
    cur = g.add(Q.SynDense(4, 3, weight=w(3, 4)), g.add(Q.DirectCurrent(gain=3), d))
    s2 = g.add(Q.LIF(threshold=50, reset="zero"), cur)
    g.output("li", g.add(Q.LI(leak_mult=1), g.add(Q.SynDense(3, 2, weight=w(2, 3)), s2)))
    g.output("mem", g.add(Q.MembraneReadout(window=2), cur))
    g.output("count", g.add(tr.bridge.SpikeCount(window=2), s1))
    dr = g.delay((4,), "spike")  # a current-fed recurrent layer: its feed-forward product rescaled
    s3 = g.add(Q.ALIF(threshold=100, leak_mult=3, leak_shift=2), g.add(
        Q.SynRecurrent(3, 4, weight=w(4, 3), weight_rec=w(4, 4), ff_mult=1 << 14, ff_shift=16), cur, dr))
    g.connect(dr, s3)
    g.output("rescaled", s3)
    sc = g.input("sc", shape=(1, 4, 4), domain="spike")
    g.output("first", g.add(tr.bridge.FirstSpike(window=2), g.add(tr.ann.Flatten(), g.add(
        Q.LIF(threshold=10), g.add(Q.SynConv2d(1, 2, 3, padding=1, weight=w(2, 1, 3, 3)), sc)))))
    feeds = {"img": rng.random((3, 1, 6, 6)).astype(np.float32),
             "sc": (rng.random((3, 1, 4, 4)) < 0.5).astype(np.float32)}
    return [(g, feeds)]


def warmup(verbose: bool = True) -> float:
    """Run the warm-up graphs on the numba backend; returns the seconds it took."""
    import tianrt as tr

    t0 = time.perf_counter()
    for g, feeds in _float_graphs() + _int_graphs():
        for batch in (1, 2):
            fb = feeds if batch == 1 else {k: np.stack([v] * batch, axis=1) for k, v in feeds.items()}
            for conv_mode in ("im2col", "direct"):
                rt = tr.Runtime(g, backend="numba", conv_mode=conv_mode)
                rt.run(fb)  # the time-axis fast path
                rt.reset()
                rt.step({k: v[0] for k, v in fb.items()})  # the per-tick fast path
                rt.step({k: v[1] for k, v in fb.items()})
        if verbose:
            print(f"  {g.name}: ok")
    return time.perf_counter() - t0


def _portable(args) -> int:
    """Re-run the warm-up in a child with NUMBA_CPU_NAME=generic: numba reads the variable when
    it is first imported, and the code it then writes to the cache (keyed by CPU name and
    features: generic has none) runs on every core of this architecture."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CPU_NAME="generic")
    env.pop("NUMBA_CPU_FEATURES", None)
    cmd = [sys.executable, "-m", "tianrt.cli", "warmup"] + (["--quiet"] if args.quiet else [])
    print("portable cache: compiling for NUMBA_CPU_NAME=generic (runs on any core of this architecture; "
          "processes that use it must set NUMBA_CPU_NAME=generic too)")
    return subprocess.run(cmd, env=env).returncode


def _cmd(args) -> int:
    import os

    from tianrt.errors import BackendError
    try:
        import numba
    except (ImportError, OSError):  # OSError: a broken llvmlite (its shared library does not load)
        raise BackendError("numba is not installed on this machine: there is nothing to precompile; "
                           "graphs run on backend='reference' (numpy)") from None
    if args.portable and os.environ.get("NUMBA_CPU_NAME") != "generic":
        if args.calibrate:
            from tianrt.errors import UsageError
            raise UsageError("--portable and --calibrate: calibrate on the board itself (the crossover "
                             "is a property of the machine), without --portable")
        return _portable(args)

    cpu = numba.config.CPU_NAME or "this machine's CPU"
    print(f"compiling the numba kernels (numba {numba.__version__}, for {cpu}; cache: "
          f"{numba.config.CACHE_DIR or 'next to the kernel sources, or the user cache dir if read-only'})")
    dt = warmup(verbose=not args.quiet)
    print(f"warm-up done in {dt:.2f} s (a second run reads the cache and is much faster)")
    if args.calibrate:
        from tianrt.backends.numba.calibrate import calibrate
        print("measuring the event/dense crossover on this machine (a few seconds)")
        calibrate(verbose=True)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("warmup", help="precompile the numba kernels into the on-disk cache",
                              description="Compile every numba kernel of the fast backend (float and integer "
                                          "mode, batch 1 and batched) so that later runs load machine code "
                                          "from the cache instead of compiling.")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--calibrate", action="store_true",
                   help="also measure the event/dense crossover of this machine and store it for the "
                        "numba backend ($TIANRT_CALIBRATION or ~/.cache/tianrt/numba-crossover.json)")
    p.add_argument("--portable", action="store_true",
                   help="compile for NUMBA_CPU_NAME=generic: a cache another board of the same architecture "
                        "can reuse (it must run with NUMBA_CPU_NAME=generic too; docs/deploy.md)")
    p.set_defaults(func=_cmd)
