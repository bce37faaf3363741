"""Train the vision CNN (``data/vision_cnn.tnr``) on frames rendered by the simulator, with
labels from its ground truth. Seeded and deterministic: the data set is regenerated every run
(it is not committed) and the shipped weights are reproduced.

    python -m tianrt.demos.bicycle.train_vision            # 17-40 min at nice 10 on the shared 2-core machine

Data: frames from ``follow`` scenarios (seeds 1000-1479, 20 frames each: every seed has its own
look) seen from poses behind the person (2-15 m, half of them 2-6 m (``NEAR``), off the route
by up to 1.5 m, heading off by 12 degrees RMS, sometimes by 30-70 degrees so the person leaves
the frame), and from ``obstacles`` scenarios (seeds 1000-1239, 20 each: 70 % before an
obstacle, the rest anywhere along the lane). Validation: seeds 2000-2059 of both kinds. The
evaluation seeds (0-19, 100-119) are never used here (``evaluate_nav --accuracy``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import suite, vision, world

# Many scenarios with few frames each: every scenario seed has its own look (light, ground,
# clothing), and the person's distance read on a look never seen was biased by ride (a network
# trained on 60 looks x 80 frames read the near person 0.6-2.8 m too far, depending on the ride).
TRAIN_SEEDS = {"follow": range(1000, 1480), "obstacles": range(1000, 1240)}
VAL_SEEDS = {"follow": range(2000, 2060), "obstacles": range(2000, 2060)}


PER_SCENARIO = {"follow": 20, "obstacles": 20}


# Fraction of the training `follow` frames drawn 2-6 m behind the person (the rest 2-15 m): the
# range where the follower stops behind it, where a distance read too far means a collision.
NEAR = 0.5


def dataset(seeds: dict, per_scenario: dict, seed: int, near: float = 0.0):
    xs, ys = [], []
    for kind, ss in seeds.items():
        for s in ss:
            sc = world.parse_scenario(suite.make(kind, s, 60.0))
            lab = vision.Labeller(sc)
            rng = np.random.default_rng([seed, s, 0 if kind == "follow" else 1])
            for p in vision.poses(sc, kind, per_scenario[kind], rng, near):
                f, y, _ = lab.sample(*p)
                xs.append(f)
                ys.append(y)
    return np.stack(xs), np.stack(ys)


# Units of the dense layer, shared by the person's and the obstacles' outputs (docs/bicycle.md:
# with 64 and the distance weighted 6x the near person was read 2.6 m too far).
HIDDEN = 96


def model(seed: int = 0):
    from tianrt import train as T

    return T.Sequential(T.Conv2d(1, 8, 5, stride=2, padding=2), T.ReLU(),
                        T.Conv2d(8, 16, 3, stride=2, padding=1), T.ReLU(),
                        T.Conv2d(16, 16, 3, stride=2, padding=1), T.ReLU(), T.Flatten(),
                        T.Dense(16 * 6 * 8, HIDDEN), T.ReLU(), T.Dense(HIDDEN, vision.N_OUT),
                        input_shape=(1, 48, 64), seed=seed)


# Squared-error weights per output: the rare sector and distance labels count more than the
# bearing code, and a sector with an obstacle in it (label > 0) POSITIVE times more than an empty
# one (few sectors hold an obstacle: unweighted, the network learns to report none). The
# distance counts only where the person is visible: its label elsewhere means nothing (as a
# nearness of 0 on every frame without a person, it pulled the near person's distance "far").
WEIGHTS = np.array([1.0] * 15 + [1.5, 12.0] + [3.0] * 7, np.float32)
POSITIVE = 4.0


class WeightedMSE:
    """Mean of w * (out - target)^2; the targets arrive as rows [target, w] (see ``weighted``)."""

    def __call__(self, out, y):
        t, w = y[:, :out.shape[1]], y[:, out.shape[1]:]
        d = out - t
        return float((w * d ** 2).mean()), (2 * w * d / d.size).astype(np.float32)


def weighted(y: np.ndarray) -> np.ndarray:
    w = np.broadcast_to(WEIGHTS, y.shape).copy()
    sec = vision.SLICES["sectors"]
    w[:, sec] *= np.where(y[:, sec] > 0, POSITIVE, 1.0)
    w[:, vision.SLICES["distance"]] *= y[:, vision.SLICES["visible"]] > 0.5
    return np.concatenate([y, w], axis=1).astype(np.float32)


def train(per_scenario: dict = PER_SCENARIO, epochs: int = 40, seed: int = 0, log=print):
    from tianrt import train as T

    t0 = time.time()
    x, y = dataset(TRAIN_SEEDS, per_scenario, seed, NEAR)
    xv, yv = dataset(VAL_SEEDS, per_scenario, seed + 1)
    log(f"data: {len(x)} training and {len(xv)} validation frames in {time.time() - t0:.0f} s")
    m = model(seed)
    hist = m.fit(vision.normalise(x), weighted(y), epochs=epochs, batch_size=64, optimizer=T.Adam(2e-3),
                 loss=WeightedMSE(), validation=(vision.normalise(xv), weighted(yv)), patience=10,
                 lr_schedule="cosine", seed=seed, progress=False)
    g = m.to_graph(name="vision-cnn", input_name="frame", output_name="y")
    g.metadata.update({"outputs": {k: [v.start, v.stop] for k, v in vision.SLICES.items()},
                       "bins_deg": vision.BINS.tolist(), "sectors_deg": vision.SECTORS.tolist(),
                       "sector_range_m": vision.SECTOR_RANGE, "distance_scale_m": vision.DIST_SCALE,
                       "distance": f"log2(d / {vision.DIST_REF:g} m) / {vision.DIST_OCTAVES:g}, clipped to [-1, 1]",
                       "train": {"frames": int(len(x)), "val_frames": int(len(xv)), "epochs_run": len(hist.val_loss),
                                 "val_mse": float(min(hist.val_loss)), "seed": seed,
                                 "hidden": HIDDEN, "near_fraction": NEAR, "weights": WEIGHTS.tolist(),
                                 "scenario_seeds": {k: [v.start, v.stop - 1] for k, v in TRAIN_SEEDS.items()}}})
    log(f"trained in {time.time() - t0:.0f} s: val MSE {min(hist.val_loss):.4f} after {len(hist.val_loss)} epochs")
    return g


def main(argv=None) -> int:
    import tianrt as tr

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).with_name("data") / "vision_cnn.tnr"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    g = train(PER_SCENARIO, a.epochs, a.seed)
    tr.save(g, a.out)
    print(f"saved {a.out}; metadata {json.dumps(g.metadata['train'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
