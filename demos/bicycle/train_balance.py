"""Train the balance MLP by imitation of the LQR teacher, with tianrt's own trainer
(``tianrt.train``), and save it as a tianrt model file.

    python -m tianrt.demos.bicycle.train_balance [--out demos/bicycle/data/balance_mlp.tnr]

Data (all seeded, training scenarios use seeds 1000+, never the evaluation seeds 0-19):
1. teacher rollouts on gust scenarios at 3-7 m/s and on constant-speed S-curves at the two
   ends of the speed envelope (envelope.TRAINED_SPEEDS, 2.0 and 8.5 m/s), with a random torque disturbance added to
   what the motor applies (so the data covers states off the teacher's own path), each
   observation labelled with the clean teacher torque;
2. observations drawn uniformly from the operating box (lean, rates, steer, 2.0-8.5 m/s,
   desired lean), labelled by the teacher;
3. DAgger rounds: the student rides the training scenarios in tr.Runtime; the teacher labels
   the states the student visits; retrain on everything.
Inputs are standardised and targets divided by the 5 N m torque limit for training; both
scalings are folded into the first and last Dense layers of the saved graph.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import tianrt as tr
from tianrt import train as T

from . import envelope, policy, suite, world
from .control import Noisy
from .run import run, teacher_for

HIDDEN = (32, 32)
BOX_LO = np.array([-0.30, -1.5, -0.5, -3.0, 2.5, -0.27])
BOX_HI = -BOX_LO
BOX_LO[4], BOX_HI[4] = envelope.TRAINED_SPEEDS


def collect_teacher(scenarios, sigma, rng):
    obs = []
    for sc in scenarios:
        run(sc, Noisy(teacher_for(sc), sigma, rng, obs), "teacher+noise")
    return np.array(obs)


def collect_student(scenarios, graph, backend="reference"):
    obs, results = [], []
    for sc in scenarios:
        r = run(sc, policy.NetworkPolicy(graph, backend), "student", keep_traces=True)
        obs.append(r.traces["obs"])
        results.append(r)
    return np.concatenate(obs), results


def fit(model, x, y, mean, std, epochs, seed, lr):
    xn = ((x - mean) / std).astype(np.float32)
    yn = (y / 5.0).astype(np.float32)[:, None]
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(xn))
    nv = min(4000, len(xn) // 10)
    val, tr_ = idx[:nv], idx[nv:]
    return model.fit(xn[tr_], yn[tr_], epochs=epochs, batch_size=256, optimizer=T.Adam(lr),
                     loss=T.MSELoss(), validation=(xn[val], yn[val]), patience=8, lr_schedule="cosine",
                     seed=seed, progress=False)


def graph_of(model, mean, std, control_hz, info):
    layers = [(l.params["weight"], l.params["bias"]) for l in model.layers if isinstance(l, T.Dense)]
    return policy.mlp_graph(layers, mean, std, 5.0, control_hz, metadata=info)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.bicycle.train_balance", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(policy.DEFAULT_MODEL), help="model file to write")
    ap.add_argument("--scenarios", type=int, default=12, help="training scenarios (seeds 1000+)")
    ap.add_argument("--duration", type=float, default=40.0, help="seconds per training scenario")
    ap.add_argument("--box", type=int, default=150_000, help="uniform samples from the operating box")
    ap.add_argument("--dagger", type=int, default=2, help="DAgger rounds")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    scs = [world.parse_scenario(suite.make("gust_suite", 1000 + i, args.duration)) for i in range(args.scenarios)]
    scs += [world.parse_scenario(envelope.fixed_speed(1100 + i, v, args.duration))
            for i, v in enumerate(envelope.TRAINED_SPEEDS)]
    teacher = teacher_for(scs[0])
    control_hz = scs[0].control_hz
    x_roll = collect_teacher(scs, 0.6, rng)
    x_box = rng.uniform(BOX_LO, BOX_HI, size=(args.box, 6))
    x = np.concatenate([x_roll, x_box])
    mean, std = x.mean(0), x.std(0)
    print(f"teacher rollouts: {len(x_roll)} samples, box: {len(x_box)} samples ({time.time() - t0:.0f} s)")

    model = T.Sequential(T.Dense(6, HIDDEN[0]), T.ReLU(), T.Dense(HIDDEN[0], HIDDEN[1]), T.ReLU(),
                         T.Dense(HIDDEN[1], 1), input_shape=(6,), seed=args.seed)
    hist = fit(model, x, teacher.batch(x), mean, std, args.epochs, args.seed, 3e-3)
    print(f"fit: val MSE {min(hist.val_loss) * 25:.5f} (N m)^2 after {len(hist.loss)} epochs ({time.time() - t0:.0f} s)")
    info = {"trained_by": "tianrt.demos.bicycle.train_balance", "teacher": "LQR gain-scheduled on speed",
            "hidden": list(HIDDEN), "seed": args.seed, "trained_speeds": list(envelope.TRAINED_SPEEDS)}
    g = graph_of(model, mean, std, control_hz, info)
    for r in range(args.dagger):
        x_new, res = collect_student(scs, g)
        fell = sum(q.fell for q in res)
        print(f"DAgger round {r + 1}: student fell in {fell}/{len(res)} training rides, "
              f"{len(x_new)} new samples ({time.time() - t0:.0f} s)")
        x = np.concatenate([x, x_new])
        hist = fit(model, x, teacher.batch(x), mean, std, max(10, args.epochs // 2), args.seed + r + 1, 1e-3)
        print(f"  refit: val MSE {min(hist.val_loss) * 25:.5f} (N m)^2")
        g = graph_of(model, mean, std, control_hz, info)
    _, res = collect_student(scs, g)
    print(f"final student on the training scenarios: falls {sum(q.fell for q in res)}/{len(res)}, "
          f"mean RMS path error {np.mean([q.rms_path_error for q in res]):.3f} m")
    g.metadata.update(samples=int(len(x)), val_mse_Nm2=float(min(hist.val_loss) * 25))
    tr.save(g, args.out)
    print(f"saved {args.out} ({time.time() - t0:.0f} s); metadata: {json.dumps(g.metadata)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
