"""Peer libraries on the workloads of bench_kernels.py (snnTorch, Norse, SpikingJelly,
PyTorch eager, ONNX Runtime, Brian2). Imported only when they are installed — run
bench_kernels.py from an environment that has them (never tianrt's own). Each function
takes the tianrt graph's weights so that the work is the same; one thread throughout.
Semantics may differ in details (e.g. snnTorch resets with the previous step's spike);
the point is the cost of the same amount of work."""
from __future__ import annotations

import numpy as np


def _torch():
    import torch
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    return torch


def _linears(torch, weights):
    fcs = []
    for w, b in weights:
        fc = torch.nn.Linear(w.shape[1], w.shape[0])
        fc.weight.copy_(torch.from_numpy(w))
        fc.bias.copy_(torch.from_numpy(b))
        fcs.append(fc)
    return fcs


def w1_snntorch(weights, X, best):
    torch = _torch()
    import snntorch as snn
    fcs = _linears(torch, weights)
    lifs = [snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism="subtract") for _ in fcs]
    xs = [torch.from_numpy(x)[None] for x in X]

    def run():
        mems = [lif.init_leaky() for lif in lifs]
        for x in xs:
            s = x
            for i, (fc, lif) in enumerate(zip(fcs, lifs)):
                s, mems[i] = lif(fc(s), mems[i])
    return best(run) / len(X)


def w1_norse(weights, X, best):
    torch = _torch()
    import norse.torch as nt
    fcs = _linears(torch, weights)
    # LIFBox: a leaky integrate-and-fire without a synaptic current, the closest to W1
    p = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(1.0 / (10 * 1e-3)), v_th=torch.tensor(1.0),
                            v_leak=torch.tensor(0.0), v_reset=torch.tensor(0.0))
    cells = [nt.LIFBoxCell(p, dt=1e-3) for _ in fcs]
    xs = [torch.from_numpy(x)[None] for x in X]

    def run():
        states = [None] * len(cells)
        for x in xs:
            s = x
            for i, (fc, cell) in enumerate(zip(fcs, cells)):
                s, states[i] = cell(fc(s), states[i])
    return best(run) / len(X)


def w1_spikingjelly(weights, X, best):
    torch = _torch()
    from spikingjelly.activation_based import functional, neuron
    fcs = _linears(torch, weights)
    # tau = 10 and decay_input=False: v = 0.9 v + I; v_reset=None: reset by subtraction
    lifs = [neuron.LIFNode(tau=10.0, decay_input=False, v_threshold=1.0, v_reset=None, step_mode="s")
            for _ in fcs]
    net = torch.nn.Sequential(*[m for pair in zip(fcs, lifs) for m in pair])
    xs = [torch.from_numpy(x)[None] for x in X]

    def run():
        functional.reset_net(net)
        for x in xs:
            net(x)
    return best(run) / len(X)


def w2_torch_and_onnx(g, img, best, n=200):
    """PyTorch eager and ONNX Runtime (one intra-op thread) on W2 with the graph's weights.
    Returns {name: seconds per inference}."""
    torch = _torch()
    convs = [g[name] for name in ("conv1", "conv2", "conv3")]
    layers = []
    for i, c in enumerate(convs):
        m = torch.nn.Conv2d(c.in_channels, c.out_channels, 3, padding=1)
        m.weight.copy_(torch.from_numpy(c.weight))
        m.bias.copy_(torch.from_numpy(c.bias))
        layers += [m, torch.nn.ReLU()] + ([torch.nn.MaxPool2d(2)] if i < 2 else [])
    d = g["dense1"]
    lin = torch.nn.Linear(32, 4)
    lin.weight.copy_(torch.from_numpy(d.weight))
    lin.bias.copy_(torch.from_numpy(d.bias))
    model = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), lin).eval()
    x = torch.from_numpy(img)[None]
    out = {"torch eager": best(lambda: [model(x) for _ in range(n)]) / n}
    ref = model(x).numpy()
    try:
        import io

        import onnxruntime as ort
        f = io.BytesIO()
        torch.onnx.export(model, (x,), f, input_names=["img"], output_names=["y"], dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(f.getvalue(), so, providers=["CPUExecutionProvider"])
        feed = {"img": img[None]}
        sess.run(None, feed)
        out["ONNX Runtime (1 thread)"] = best(lambda: [sess.run(None, feed) for _ in range(n)]) / n
        out["_ort_max_abs_diff_vs_torch"] = float(np.abs(sess.run(None, feed)[0] - ref).max())
    except Exception as exc:  # exporter or runtime problems are reported, not fatal
        print(f"  ONNX Runtime skipped: {type(exc).__name__}: {exc}")
    return out


BRIAN_CUBA = r"""
import time, sys
from brian2 import *
target = sys.argv[1]
if target == "cpp_standalone":
    set_device("cpp_standalone", directory=sys.argv[2], build_on_run=False)
else:
    prefs.codegen.target = target
defaultclock.dt = 0.1 * ms
taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV
eqs = '''dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt'''
seed(0)
P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5 * ms, method='exact')
P.v = 'Vr + rand() * (Vt - Vr)'
P.ge = 0 * mV
P.gi = 0 * mV
we, wi = (60 * 0.27 / 10) * mV, (-20 * 4.5 / 10) * mV
Ce = Synapses(P, P, on_pre='ge += we')
Ci = Synapses(P, P, on_pre='gi += wi')
Ce.connect('i<3200', p=0.02)
Ci.connect('i>=3200', p=0.02)
s_mon = SpikeMonitor(P)
if target == "cpp_standalone" and sys.argv[3:4] == ["build"]:  # compile only: w3_brian2_binary
    run(1 * second)
    device.build(directory=sys.argv[2], run=False, compile=True)
    print("RESULT 0 0 0")
elif target == "cpp_standalone":
    t0 = time.perf_counter()
    run(1 * second)
    device.build(directory=sys.argv[2], run=True, compile=True)
    total = time.perf_counter() - t0
    print("RESULT", device._last_run_time, s_mon.num_spikes, total)
else:
    run(0.1 * ms)  # code generation and compilation
    t0 = time.perf_counter()
    run(1 * second)
    print("RESULT", time.perf_counter() - t0, s_mon.num_spikes, 0.0)
"""


def w3_brian2(target: str):
    """Brian2's CUBA example on ``target`` in a subprocess: (loop seconds, spikes, total s)."""
    import os
    import subprocess
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, "-c", BRIAN_CUBA, target, d], capture_output=True, text=True,
                             env=env, timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            _, loop, spikes, total = line.split()
            return float(loop), int(spikes), float(total)
    raise RuntimeError(out.stderr[-800:])


def w3_brian2_binary(directory: str, python: str | None = None):
    """Build Brian2's cpp_standalone CUBA (the same script) in ``directory`` without running
    it, with ``python`` (an interpreter that has brian2; default this one). Returns a
    function that runs the compiled binary once and returns its loop time in seconds (as
    Brian2 reports it: results/last_run_info.txt), so that runs can be interleaved with
    another program's under the same load."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([python or sys.executable, "-c", BRIAN_CUBA, "cpp_standalone", directory, "build"],
                         capture_output=True, text=True, env=env, timeout=900)
    if "RESULT" not in out.stdout:
        raise RuntimeError(out.stderr[-800:])

    def run_once() -> float:
        subprocess.run([os.path.join(directory, "main")], cwd=directory, check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(directory, "results", "last_run_info.txt")) as f:
            return float(f.read().split()[0])
    return run_once
