"""Training recipes of the voice SNN compared on one data set (docs/voice.md, "Recipes"):
trains one recipe, scores it on the validation and the held-out test clips (float, the
clip decision of model.decide) and appends a JSON line to a results file.

    python -m tianrt.demos.voice.recipes --data voice-data.npz --epochs 40 --seed 0 \\
        [--frontend cmn --tau 100 [--prefix 0.5 | --context 3]] [--more other-seed.npz] \\
        [--weight-decay 0.1] [--dropout 0.2] [--frontend delta] [--layers 2] [--peak 0.5] \\
        [--hetero [--adapt-spread 0.1 0.5]] [--train-tau] [--steps 0.5] [--steps-before 0.75] \\
        [--unknown-weight 0.33] [--monitor-test] [--distil ens.tnr [--distil-t 2] [--distil-alpha 0.5] [--distil-ticks taught]] \\
        [--frontend onoff|level-onoff [--onoff-delta 0.3] [--onoff-amplitude 3] [--input-gain 1]] \\
        --results runs.jsonl

``--frontend cmn`` feeds the network ``frontend.RunningNorm``'s 64 channels (the normalised
log-mel frames and the same relative to their causal running mean); the training
augmentation is applied to the log-mel frames before the running mean, as it would reach
the microphone.

``--frontend onoff`` (round 19) feeds it ``frontend.OnOff``'s 64 send-on-delta spike
channels (ON and OFF of each normalised log-mel band, threshold ``--onoff-delta``) instead
of any analog value, ``level-onoff`` the 32 log-mel frames beside them (96 channels); the
augmentation is applied to the log-mel frames before the encoder, as for delta. Its JSON
line records the spike rate (``onoff_rate``); ``--onoff-amplitude`` sets the spikes' height
(default ``frontend.ONOFF_AMPLITUDE`` = 3: about unit deviation, the height that trains),
``--input-gain`` scales every input current (default 1).

``--distil ens.tnr`` (round 17) trains the network toward an ensemble's per-tick
probabilities beside the labels (Hinton's distillation: ``tr.train.soft_target_loss`` at
temperature ``--distil-t``, weighed ``--distil-alpha``, the labels' loss ``1 - alpha``), the
members run on every augmented minibatch, at every tick (``--distil-ticks taught``: only
at the ticks the labels teach); the ensemble (``voice.ensemble``'s graph, or one
network) must read the student's front end. The saved graph's metadata record it
(``distil``: the teacher's file, sha256, members, temperature, alpha and ticks).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import tianrt as tr

from . import model as M
from .data import CLASSES
from .distil import from_flags as distil_from_flags
from .frontend import FRONT_KEYS, LOG_FLOOR, ONOFF_AMPLITUDE, ONOFF_DELTA, Delta, RunningNorm, VoiceFrontEnd

FRONT_ENDS = ("logmel", "cmn", "delta", "onoff", "level-onoff")   # --frontend (one home: recipes and the demo)


def prepare(d, frontend="logmel", tau=100.0, warp=0.0, tilt=0.0, metadata=None, context=0.0, prefix=0.0,
            onoff_delta=ONOFF_DELTA, onoff_amplitude=ONOFF_AMPLITUDE):
    """The network's inputs from a data set's log-mel frames: normalised by the training
    set's statistics, then (``frontend="cmn"``) ``RunningNorm`` of time constant ``tau``
    with its relative channels scaled to unit deviation on the training set — or, given a
    model's ``metadata``, by that model's front end. Returns (arrays, the training
    augmentation — model.augmentation on the log-mel frames, then the rest of the front
    end —, the front end's metadata). ``context=c``: half the training clips start the
    running mean in its steady state (rate 1 / tau) from the clip's first frame shifted by a
    level uniform in [-c, c] (normalised units), as if the noise level had just changed —
    what a stream meets and a fresh clip does not. ``prefix=p``: a fraction p of the
    training clips is heard after preceding audio, as in a stream — the running mean starts
    where ``RunningNorm.warm`` leaves it after 0.1-1 s of digital silence (a quarter of
    them) or the last 0.2-2 s of two other training clips (augmented alike: another word,
    another noise, another level); the network itself still starts the clip fresh and the
    loss is on the clip only.

    ``frontend="onoff"`` (round 19): ``OnOff`` spikes of threshold ``onoff_delta`` alone (64
    channels of 0 or ``onoff_amplitude``); ``"level-onoff"``: the log-mel frames beside them (96 channels). The
    ON/OFF inputs do not contain the log-mel frames the augmentation starts from, so the
    arrays keep them as ``train_logmel`` and the trainer takes ``training_rows(arrays)``:
    ``train_x`` is what the network reads, un-augmented, for every front end."""
    if metadata is None:
        mean, std = d["train_x"].mean((0, 1)), d["train_x"].std((0, 1))
        metadata = {"logmel_mean": mean, "logmel_std": std, "frontend": frontend}
        if frontend == "cmn":
            rel = RunningNorm(len(mean), tau).apply((d["train_x"] - mean) / std)[..., len(mean):]
            metadata.update({"cmn_tau": float(tau), "cmn_scale": rel.std((0, 1))})
        elif frontend == "delta":
            diff = Delta(len(mean)).apply((d["train_x"] - mean) / std)[..., len(mean):]
            metadata["delta_scale"] = diff.std((0, 1))
        elif frontend in ("onoff", "level-onoff"):
            metadata.update({"onoff_delta": float(onoff_delta), "onoff_level": frontend == "level-onoff",
                             "onoff_amplitude": float(onoff_amplitude)})
        elif frontend != "logmel":
            raise ValueError(f"recipes: unknown front end {frontend!r} (one of {', '.join(FRONT_ENDS)})")
    fe = VoiceFrontEnd(metadata)
    if (context or prefix) and fe.norm is None:
        raise ValueError("recipes: context and prefix start a running mean: they need the cmn front end")
    mean, std = np.asarray(metadata["logmel_mean"]), np.asarray(metadata["logmel_std"])
    out = {k: v for k, v in d.items() if not k.endswith("_x")}
    for k in ("train_x", "val_x", "test_x"):
        out[k] = fe.from_logmel(((d[k] - mean) / std).astype(np.float32))
    if not fe.level:
        out["train_logmel"] = ((d["train_x"] - mean) / std).astype(np.float32)
    base = M.augmentation(len(mean), warp, tilt)
    n = len(mean)

    def through_front_end(xb, rng):   # augment the log-mel frames, then the rest of the front end
        x = base(xb[..., :n], rng)
        if fe.norm is None:
            return fe.from_logmel(x)
        if prefix:
            return fe.norm.apply(x, *preceded(x, rng))
        if not context:
            return fe.from_logmel(x)
        warm = rng.random(len(x)) < 0.5
        m0 = x[:, 0, :] + rng.uniform(-context, context, (len(x), 1)).astype(np.float32)
        m0[~warm] = 0.0
        return fe.norm.apply(x, m0, np.where(warm, int(fe.norm.tau), 0))
    silence = ((np.log(LOG_FLOOR) - mean) / std).astype(np.float32)   # the frame of digital zeros
    pool = logmel_rows(out, n)

    def preceded(x, rng):   # the running mean's state after what came before each clip
        B, T = x.shape[:2]
        m0, t0 = np.zeros((B, n), np.float32), np.zeros(B, np.int64)
        warm = np.flatnonzero(rng.random(B) < prefix)
        if len(warm) == 0:
            return m0, t0
        quiet = rng.random(len(warm)) < 0.25
        pre = base(pool[rng.integers(len(pool), size=(len(warm), 2))].reshape(len(warm), 2 * T, n), rng)
        pre[quiet] = silence
        lengths = np.where(quiet, rng.integers(T // 10, T + 1, len(warm)), rng.integers(T // 5, 2 * T + 1, len(warm)))
        m0[warm], t0[warm] = fe.norm.warm(pre, lengths)
        return m0, t0
    front = {k: metadata[k] for k in FRONT_KEYS if k in metadata}
    return out, (base if fe.stage is None else through_front_end), front


def logmel_rows(d, n: int) -> np.ndarray:
    """The prepared training clips' ``n`` normalised log-mel bands per frame (what the
    augmentation starts from): ``train_logmel`` when the inputs do not begin with them (ON/OFF
    alone), else the first channels of ``train_x``."""
    return d["train_logmel"] if "train_logmel" in d else d["train_x"][..., :n]


def training_rows(d):
    """The prepared data ``d`` as the trainer takes it, the rows the augmentation of
    ``prepare`` reads the normalised log-mel frames from (their first channels): ``d`` itself,
    or for a front end whose inputs do not begin with those frames (ON/OFF alone: ``d`` has
    ``train_logmel``) ``train_x`` replaced by ``train_logmel`` padded with zero channels to the
    network's width. Such rows are only the augmentation's input (it encodes them): the
    network never reads them as they are."""
    if "train_logmel" not in d:
        return d
    x, width = d["train_logmel"], d["train_x"].shape[-1]
    if x.shape[:-1] != d["train_x"].shape[:-1] or x.shape[-1] > width:
        raise ValueError(f"recipes: train_logmel {x.shape} does not fit train_x {d['train_x'].shape}")
    pad = np.zeros(x.shape[:-1] + (width - x.shape[-1],), np.float32)
    return {**d, "train_x": np.concatenate([x, pad], axis=-1)}


def spike_rates(d, front) -> dict:
    """The ON/OFF front end's mean spike rate (spikes per ON/OFF channel per 10 ms frame) on
    the prepared clips of each split, un-augmented ({} for the other front ends)."""
    onoff = VoiceFrontEnd(front).onoff
    if onoff is None:
        return {}
    return {s: round(onoff.rate(d[f"{s}_x"]), 4) for s in ("train", "val", "test")}


def with_more_training(d, *others):
    """The data set ``d`` with the training clips of ``others`` (data sets generated with
    other seeds: the same voices, accents and words, other utterances) appended to its
    training split; its validation and test splits unchanged."""
    out = dict(d)
    for o in others:
        if o["train_x"].shape[1:] != d["train_x"].shape[1:]:
            raise ValueError(f"recipes: training clips of shape {o['train_x'].shape[1:]} cannot join "
                             f"clips of shape {d['train_x'].shape[1:]}")
        for k in ("train_x", "train_y", "train_end"):
            out[k] = np.concatenate([out[k], o[k]])
    return out


def with_noise_steps(d, front, fraction=0.5, extra=50, delay=(10, 60), seed=0, after=30, quiet=30,
                     unknown_before=40, before=0.0, before_ticks=(30, 80), same=0.25, settle=10):
    """Training clips with steps in the noise, as a stream has them (docs/voice.md, rounds 8
    and 9), built from the training split only (its clips and its background clips).

    After the word (round 8): every training clip is extended by ``extra`` ticks; in a
    ``fraction`` of them (of each class) the normalised log-mel frames from a step on are
    replaced — by digital silence (a third of them) or by another training background clip
    (its own noise kind and level, mirrored in time to fill the length without a second
    step) — the step ``delay`` ticks (uniform) after the end of the word (a background clip:
    anywhere in its middle 80 %), and every tick from ``max(step, end + quiet)`` on is taught
    ``background`` (the word's class stays taught until ``end + after``, as in every clip;
    between the two, no target). The other clips' extra ticks have no target.

    Before the word (round 9, ``before > 0``): a fraction ``before`` of the clips is preceded
    by a stretch of ``before_ticks`` ticks (uniform in the range) of other audio, the network
    starting fresh at the stretch and carrying its state into the clip: another training
    background clip (another noise kind and level: a step at the clip's start), or with
    probability ``same`` the clip's own noise (its frames from 10 ticks after the word's end —
    the whole clip for a background clip — tiled back and forth in time: no step). The
    stretch is taught ``background`` from tick ``settle`` on; the clip keeps its targets
    (background throughout a background clip, right from the step); the clips are placed at
    their stretch's end, so every sequence is ``before_ticks[1]`` ticks longer, the ticks
    after a clip's end (and after its ``extra`` ticks) without target. Drawn from a generator
    of their own: ``before=0`` gives round 8's clips.

    Returns (data with the extended ``train_x`` through ``front``'s front end, per-tick
    targets (clips, ticks)). The ticks that are no audio — after a clip (and its ``extra``
    ticks), and the ``extra`` ticks of a clip without a step: the normalised zero frame — are
    ``tr.train``'s ``PADDING`` (no target, and no soft target with ``distil_ticks="audio"``);
    the audio without a label is ``NO_TARGET`` (-1)."""
    from .data import HOP, targets_per_tick
    rng = np.random.default_rng([int(seed), 8])
    mean, std = np.asarray(front["logmel_mean"]), np.asarray(front["logmel_std"])
    fe = VoiceFrontEnd(front)
    x = logmel_rows(d, len(mean))
    N, T, n = x.shape
    lo, hi = (int(v) for v in before_ticks) if before else (0, 0)
    if before and not (0 <= settle <= lo <= hi):
        raise ValueError(f"recipes: before_ticks must satisfy settle <= lo <= hi, got {before_ticks} (settle {settle})")
    y, ends = d["train_y"], d["train_end"]
    bg = CLASSES.index("background")
    pool = np.flatnonzero(y == bg)
    pre = np.zeros(N, np.int64)                                     # each clip's stretch before it
    L = hi + T + extra
    tt = np.full((N, L), tr.train.PADDING, np.int64)
    xx = np.zeros((N, L, n), np.float32)
    if before:
        rb = np.random.default_rng([int(seed), 9])
        for i in np.flatnonzero(rb.random(N) < before):
            p = pre[i] = int(rb.integers(lo, hi + 1))
            if rb.random() < same:
                own = x[i, 0 if (y[i] == bg or ends[i] < 0) else min(T - 1, int(ends[i]) // HOP + 10):]
                xx[i, :p] = _tiled(own, p)[::-1]                  # ends on the frame it starts from
            else:
                xx[i, :p] = _tiled(x[int(rb.choice(pool[pool != i]))], p)
            tt[i, :settle], tt[i, settle:p] = tr.train.NO_TARGET, bg
    rows = np.arange(N)[:, None]
    cols = pre[:, None] + np.arange(T + extra)[None]                # each clip and its extra ticks, in place
    base = np.full((N, T + extra), tr.train.PADDING, np.int64)       # the extra ticks of a clip without a step
    base[:, :T] = targets_per_tick(y, ends, T, after=after, unknown_before=unknown_before)
    xc = np.zeros((N, T + extra, n), np.float32)
    xc[:, :T] = x
    silence = ((np.log(LOG_FLOOR) - mean) / std).astype(np.float32)
    step = rng.random(N) < fraction
    for i in np.flatnonzero(step):
        base[i, T:] = tr.train.NO_TARGET                             # audio after the step
        if y[i] == bg or ends[i] < 0:
            k = int(rng.integers(T // 10, 9 * T // 10 + 1))
            base[i, k:] = bg
        else:
            e = int(ends[i]) // HOP
            k = min(e + int(rng.integers(delay[0], delay[1] + 1)), T)
            base[i, max(k, e + after, e + quiet):] = bg
        if rng.random() < 1 / 3:
            xc[i, k:] = silence
        else:
            j = int(rng.choice(pool[pool != i]))
            xc[i, k:] = _tiled(x[j], T + extra - k)
    xx[rows, cols], tt[rows, cols] = xc, base
    out = dict(d)
    out["train_x"] = fe.from_logmel(xx) if fe.stage is not None else xx
    if "train_logmel" in d:
        out["train_logmel"] = xx
    return out, tt


def _tiled(frames, length):
    """``length`` frames: ``frames`` then the same backwards, and so on (no jump in between)."""
    return np.concatenate([frames, frames[::-1]] * (length // (2 * len(frames)) + 1))[:length]


def graph_of(net, front, threshold):
    """The trained network as a graph whose metadata describe its front end (``front``: the
    metadata of ``prepare``) and its clip decision."""
    g = net.to_graph(name="voice-snn")
    g.metadata.update({k: ([float(x) for x in v] if isinstance(v, np.ndarray) else v) for k, v in front.items()})
    g.metadata.update({"threshold": float(threshold), "classes": list(CLASSES)})
    return g


def add_input_flags(p):
    """The flags of the network's inputs (round 19: the ON/OFF threshold and height, the input
    gain), one home for this script and ``tianrt demo voice --train``."""
    p.add_argument("--onoff-delta", type=float, default=ONOFF_DELTA,
                   help="with --frontend onoff or level-onoff: the send-on-delta threshold (normalised log-mel units)")
    p.add_argument("--onoff-amplitude", type=float, default=ONOFF_AMPLITUDE,
                   help="with --frontend onoff or level-onoff: the spikes' height (default %(default)g: about unit "
                        "deviation, as delta's differences have; to repeat round 19's runs at height 1, give 1)")
    p.add_argument("--input-gain", type=float, default=1.0,
                   help="the input currents' gain (DirectCurrent; round 19: 3 for ON/OFF spikes of height 1 trains as "
                        "height 3 does at gain 1, the default)")


def add_time_flags(p):
    """The flags of the per-neuron time constants and of the noise steps (rounds 8 and 9),
    one home for this script and ``tianrt demo voice --train``; ``stepped`` applies them."""
    p.add_argument("--hetero", action="store_true",
                   help="per-neuron time constants, log-uniform 20-200 ms (membrane) and 0.1-2 s (adaptation)")
    p.add_argument("--train-tau", action="store_true",
                   help="train every neuron's membrane and adaptation decay (and the readout's) by BPTT")
    p.add_argument("--adapt-spread", type=float, nargs=2, metavar=("LO", "HI"),
                   help="with --hetero: the adaptation time constants drawn in LO-HI seconds instead of 0.1-2; "
                        "with --train-tau the trained ones kept at most HI")
    p.add_argument("--steps", type=float, default=0.0,
                   help="this fraction of the training clips has a step in the noise after the word (with_noise_steps)")
    p.add_argument("--steps-quiet", type=int, default=30,
                   help="with --steps: background is taught from this many ticks after the word's end (and the step)")
    p.add_argument("--steps-before", type=float, default=0.0,
                   help="this fraction of the training clips is preceded by other training background (a noise "
                        "step before the word, the network's state carried over; with_noise_steps(before=))")
    p.add_argument("--steps-before-ticks", type=int, nargs=2, default=(30, 80), metavar=("LO", "HI"),
                   help="with --steps-before: the length of the preceding stretch, uniform in LO-HI ticks")


def stepped(d, front, a):
    """(the trainer's data — ``training_rows`` —, per-tick targets or None) of
    ``add_time_flags``' flags ``a`` (with ``a.seed`` and ``a.unknown_before``): the training
    clips of ``with_noise_steps`` when a step is asked for."""
    if not (a.steps or a.steps_before):
        return training_rows(d), None
    d, targets = with_noise_steps(d, front, a.steps, extra=50 if a.steps else 0, seed=a.seed, quiet=a.steps_quiet,
                                  unknown_before=a.unknown_before, before=a.steps_before,
                                  before_ticks=a.steps_before_ticks)
    return training_rows(d), targets


def class_weight(unknown_weight):
    """The per-tick loss's weight per class for ``--unknown-weight``: None (the unweighted
    loss) at 1, else 1 for every class but ``unknown``."""
    if unknown_weight == 1.0:
        return None
    if not unknown_weight > 0:
        raise ValueError(f"recipes: --unknown-weight must be > 0, got {unknown_weight}")
    w = np.ones(len(CLASSES))
    w[CLASSES.index("unknown")] = unknown_weight
    return w


def test_monitor(d):
    """``train_snn``'s ``monitor``: the test clips' accuracy and the recall of ``left`` and
    ``go`` (on the two halves of the test: held-out voices, held-out accents), for the epoch
    log only — never a choice (round 13)."""
    x, y = d["test_x"], d["test_y"]
    h = len(y) // 2
    left, go = CLASSES.index("left"), CLASSES.index("go")

    def recall(pred, c, part):
        m = np.zeros(len(y), bool)
        m[part] = True
        m &= y == c
        return float((pred[m] == c).mean())

    def monitor(net):
        acc, pred = M.snn_accuracy(net, x, y)
        return (f"test acc {acc:.3f}, left recall {recall(pred, left, slice(None)):.2f} "
                f"(held-out accents {recall(pred, left, slice(h, None)):.2f}), go recall "
                f"{recall(pred, go, slice(None)):.2f}")
    return monitor


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tianrt.demos.voice.recipes", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--frontend", default="logmel", choices=FRONT_ENDS)
    add_input_flags(p)
    p.add_argument("--tau", type=float, default=100.0, help="running mean's time constant (frames)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--dropout", type=float, default=0.0, help="of the hidden spikes into the readout")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1, help="stacked recurrent ALIF layers of --hidden neurons")
    p.add_argument("--peak", type=float, default=0.0,
                   help="weight of the clip decision's loss (model.peak_hinge) beside the per-tick one")
    add_time_flags(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unknown-before", type=int, default=40)
    p.add_argument("--unknown-weight", type=float, default=1.0,
                   help="the weight of an unknown tick in the per-tick loss, every other class's 1 (round 12; "
                        "tr.train.SNN's class_weight)")
    p.add_argument("--context", type=float, default=0.0,
                   help="with cmn: train half the clips from a steady running mean shifted by up to this level")
    p.add_argument("--prefix", type=float, default=0.0,
                   help="with cmn: this fraction of the training clips starts the running mean after preceding "
                        "audio (silence or other clips), as in a stream")
    p.add_argument("--more", action="append", default=[],
                   help="another data set (another seed) whose training clips join the training split")
    p.add_argument("--monitor-test", action="store_true",
                   help="log the test accuracy and the recall of left and go after every epoch, for reading only "
                        "(the weights kept are the best on the validation split; round 13)")
    p.add_argument("--distil", metavar="ENSEMBLE.tnr",
                   help="distil this ensemble graph (voice.ensemble) or network: soft targets of its members' "
                        "mean tempered probabilities, every tick of every augmented minibatch (round 17)")
    p.add_argument("--distil-t", type=float, default=2.0, help="with --distil: the temperature")
    p.add_argument("--distil-alpha", type=float, default=0.5,
                   help="with --distil: the soft targets' weight in the loss, the labels' 1 - alpha")
    p.add_argument("--distil-ticks", default="all", choices=tr.train.DISTIL_TICKS,
                   help="with --distil: the soft targets at every tick, only at the ticks the labels teach "
                        "(taught), or at every tick but the padding after a clip (audio; round 18)")
    p.add_argument("--distil-backend", default="numba", choices=("numba", "reference"),
                   help="with --distil: the runtime that runs the teacher (float)")
    p.add_argument("--save", help="write the trained network (a graph with its front end's metadata) here")
    p.add_argument("--results", default="voice-recipes.jsonl")
    a = p.parse_args(argv)
    M.limit_threads()
    d = with_more_training(dict(np.load(a.data)), *(dict(np.load(m)) for m in a.more))
    d, aug, front = prepare(d, a.frontend, a.tau, context=a.context, prefix=a.prefix, onoff_delta=a.onoff_delta,
                            onoff_amplitude=a.onoff_amplitude)
    rates = spike_rates(d, front)
    if rates:
        print(f"ON/OFF spikes per channel per frame: {rates}", flush=True)
    d, targets = stepped(d, front, a)
    teacher, distil = distil_from_flags(a, front)
    c0 = time.process_time()
    net = M.train_snn(d, epochs=a.epochs, hidden=a.hidden, seed=a.seed, unknown_before=a.unknown_before,
                      augment=aug, weight_decay=a.weight_decay, dropout=a.dropout, layers=a.layers,
                      peak=a.peak, hetero=a.hetero, train_tau=a.train_tau, adapt_spread=a.adapt_spread,
                      targets=targets, class_weight=class_weight(a.unknown_weight),
                      monitor=test_monitor(d) if a.monitor_test else None, log=lambda m: print(m, flush=True),
                      teacher=teacher, temperature=a.distil_t, alpha=a.distil_alpha,
                      distil_ticks=a.distil_ticks, gain=a.input_gain)
    cpu = time.process_time() - c0
    rec = dict(vars(a), cpu_s=round(cpu, 1), **({"onoff_rate": rates} if rates else {}))
    for split in ("val", "test"):
        acc, pred = M.snn_accuracy(net, d[f"{split}_x"], d[f"{split}_y"])
        rec[f"{split}_acc"] = round(acc, 4)
        y = d[f"{split}_y"]
        rec[f"{split}_recall"] = {c: round(float((pred[y == i] == i).mean()), 3) for i, c in enumerate(CLASSES)}
    if a.save:
        g = graph_of(net, front, 0.5)
        if distil:
            g.metadata["distil"] = distil
        tr.save(g, a.save)
    print(json.dumps(rec), flush=True)
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
