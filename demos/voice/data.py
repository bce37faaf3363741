"""The voice-command data set, generated (never downloaded): eSpeak NG speaks the commands
and other words, which are then varied and buried in noise. Deterministic from a seed.

Classes: the 8 commands, ``unknown`` (any other word) and ``background`` (noise only).
Split (docs/voice.md): the test set holds the held-out voice variants and the two held-out
accents, never heard in training, and the confusable unknown words, never seen in
training; the validation set holds one more voice variant (``--holdout-val``, round 13: voices
and an accent taken out of training).

    python -m tianrt.demos.voice.data --out voice-data.npz      # (a minute or two)
    python -m tianrt.demos.voice.data --out r10.npz --embedded --unknowns 3 --babble 0.33 \
        --splits-from voice-data.npz    # round 10: another training split, the same val/test clips
    python -m tianrt.demos.voice.data --out r13.npz --embedded --unknowns 3 --babble 0.33 --holdout-val \
        --splits-from voice-data.npz    # round 13: a validation split of an unheard accent and voices
    python -m tianrt.demos.voice.data --out r14.npz --embedded --unknowns 3 --babble 0.33 --foreign \
        --splits-from voice-data.npz    # round 14: a third of the training clips in foreign accents
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from . import synth
from .frontend import HOP, SR, LogMel

COMMANDS = ["left", "right", "straight", "faster", "slower", "stop", "go", "follow"]
CLASSES = COMMANDS + ["unknown", "background"]
UNKNOWN_TRAIN = ["bicycle", "house", "yellow", "water", "seven", "table", "green", "music",
                 "happy", "window", "kitchen", "paper", "morning", "river", "number", "doctor",
                 "bird", "cup", "zero", "three", "up", "down", "yes", "no", "wow", "dog", "tree",
                 "learn", "visual", "forward", "backward", "on", "off", "one", "five", "six",
                 # near misses of the commands (hard negatives; none is a test word or a homophone)
                 "lift", "let", "leaf", "ride", "white", "fight", "kite", "state", "stay", "great",
                 "master", "fast", "after", "lower", "flower", "sober", "shop", "top", "step",
                 "stuff", "grow", "goat", "toe", "coat", "hollow", "swallow", "hello", "soft"]
UNKNOWN_TEST = ["loft", "night", "fellow", "light", "slow", "stock", "gold", "bright"]
# Round 10 (``--embedded``, training split only): words of the test words' kind — a command with
# another onset or ending (f+right, up+right, a+go, go+al, stop+per, follow+er, c+left) or a
# near rhyme of one (tight, stack, mellow) — that are not a test word or a command, not a
# homophone of one (HOMOPHONES) and do not contain a test word (flight, blight and aloft do:
# left out, as are inflections of the test words: slowly, golden, nightly). docs/voice.md.
UNKNOWN_EMBEDDED = ["fright", "upright", "alright", "tight", "might", "cleft", "theft", "lefty",
                    "blow", "glow", "below", "stack", "stuck", "stomp", "stopper", "ago", "goal",
                    "golf", "ghost", "mellow", "pillow", "follower", "plaster", "stray"]
# homophones of the commands and of the test words, never a training word
HOMOPHONES = ["write", "rite", "wright", "strait", "lite", "knight", "nite", "sloe"]
ACCENTS_TRAIN = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan"]
ACCENTS_TEST = ["en-029", "en-gb-x-gbcwmd"]
VARIANTS_TRAIN = ["", "m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt", "klatt2", "croak",
                  "Andy", "max", "grandma", "iven", "Mike", "linda"]
VARIANTS_VAL = ["m6", "f4"]
VARIANTS_TEST = ["m7", "f5", "klatt3", "whisper", "Storm", "iven3"]
# Round 13 (``--holdout-val``): a validation split that holds out, as the test does, an accent
# and voices never trained on, for choosing the epoch. Chosen from eSpeak's voice files, not
# from any test measurement: the training accent furthest from the others (its own phoneme
# table and the most phoneme replacements) and the two training variants with the least
# voicing (``voicing 50`` and ``70``; the nearest a training voice comes to a whisper).
VAL_HOLDOUT_ACCENTS = ["en-gb-scotland"]
VAL_HOLDOUT_VARIANTS = ["grandma", "Mike"]
# Round 14 (``--foreign``, training split only): eSpeak's voices of other languages reading the
# same English words by their own rules — foreign-accented English. Chosen from how they say the
# commands (accents.py; docs/voice.md, "Round 14"), before any training: Latin-script languages
# (hi, ru switch every word to English), `right` said with its diphthong, not as spelled (`rigt`,
# `richt`: es, it, nl, sv, nb, fi, hu, ro, id left out), `go` with its g (af: `xʊə`), and every
# training variant's commands non-empty at 0.49-1.51x the English voice's duration and >= 0.45x
# its RMS energy.
ACCENTS_FOREIGN = ["de", "fr", "pl", "cs", "da", "pt"]
UNK = CLASSES.index("unknown")
CLIP = SR  # 1 s clips: 100 frames of 10 ms
NOISES = ("white", "pink", "brown", "motor", "wind", "babble")
BABBLE_BANK = 48   # utterances a split's babble draws its words from


def voice_name(accent, variant):
    return accent if not variant else f"{accent}+{variant}"


# -- noise -----------------------------------------------------------------------------------

def _colored(n, rng, power):
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (power / 2.0), n)
    return x / (np.std(x) + 1e-12)


def noise(kind, n, rng, words=None):
    """n samples of background noise of unit RMS: white, pink, brown, a motor's harmonics,
    wind (low-passed, gusting) or babble (other words)."""
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _colored(n, rng, 1.0)
    elif kind == "brown":
        x = _colored(n, rng, 2.0)
    elif kind == "motor":
        t = np.arange(n) / SR
        f0 = rng.uniform(40, 160) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t))
        ph = 2 * np.pi * np.cumsum(f0) / SR
        x = sum(rng.uniform(0.2, 1.0) / k * np.sin(k * ph + rng.uniform(0, 6.3)) for k in range(1, 12))
        x = x + 0.2 * _colored(n, rng, 1.0)
    elif kind == "wind":
        x = _colored(n, rng, 1.6)
        gust = 0.5 + np.abs(np.cumsum(rng.standard_normal(n)) / np.sqrt(n) * 2)
        x = x * gust
    else:  # babble: several other words at once
        x = np.zeros(n)
        for _ in range(rng.integers(2, 5)):
            w = place(words[rng.integers(len(words))], n, rng)  # words: a bank of utterances
            x += w / (np.std(w) + 1e-9)
        x += 0.05 * rng.standard_normal(n)
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def place(wav, n, rng, start=None):
    """The word at a random (or given) offset in n samples (cropped if longer)."""
    out = np.zeros(n, np.float32)
    wav = wav[:n]
    if start is None:
        start = int(rng.integers(0, max(1, n - len(wav) + 1)))
    out[start:start + len(wav)] = wav[:n - start]
    return out


def reverb(x, rng):
    """Convolution with an exponentially decaying noise impulse response (RT60 0.1-0.6 s)."""
    rt60 = rng.uniform(0.1, 0.6)
    n = int(rt60 * SR)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct sound
    m = len(x) + n
    y = np.fft.irfft(np.fft.rfft(x, m) * np.fft.rfft(ir, m), m)[:len(x)]
    return (y / (np.max(np.abs(y)) + 1e-9) * np.max(np.abs(x))).astype(np.float32)


# -- one utterance -------------------------------------------------------------------------------

def utter(word, accent, variant, rng):
    """The word spoken at a random rate and pitch, speed-perturbed, resampled to 16 kHz."""
    wav, sr = synth.speak(word, voice_name(accent, variant), rate=int(rng.integers(120, 230)),
                          pitch=int(rng.integers(20, 80)), pitch_range=int(rng.integers(20, 90)))
    nz = np.nonzero(np.abs(wav) > 0.01)[0]
    if len(nz):
        wav = wav[nz[0]:nz[-1] + 1]
    speed = rng.uniform(0.88, 1.12)
    n = max(1, int(len(wav) * SR / sr / speed))
    return np.interp(np.linspace(0, len(wav) - 1, n), np.arange(len(wav)), wav).astype(np.float32)


def make_clip(label, word, accent, variant, rng, babble, snr_db=None, info=None, kind=None):
    """(1 s clip, end of speech in samples or -1) for one example; ``info`` (a dict), when
    given, receives the noise's kind and the SNR drawn (the error analysis's, errors.py);
    ``kind``: the noise's kind (default: drawn uniformly from NOISES)."""
    if label == CLASSES.index("background"):
        x, end = np.zeros(CLIP, np.float32), -1
        level = 0.0
    else:
        w = utter(word, accent, variant, rng)
        if rng.random() < 0.5:
            w = reverb(w, rng)
        start = int(rng.integers(0, max(1, CLIP - len(w) - int(0.15 * SR)) + 1))
        x = place(w, CLIP, rng, start)
        end = min(CLIP, start + len(w))
        level = np.sqrt(np.mean(w ** 2))
    kind = NOISES[rng.integers(len(NOISES))] if kind is None else kind
    nz = noise(kind, CLIP, rng, babble)
    snr = rng.uniform(0, 20) if snr_db is None else snr_db
    if info is not None:
        info.update(noise=kind, snr_db=float(snr) if level > 0 else None)
    if level > 0:
        x = x + nz * level / 10 ** (snr / 20)
    else:
        x = nz * 0.05 * 10 ** rng.uniform(-1, 1)
    gain = 10 ** rng.uniform(-1, 0.5) * 0.3 / (np.max(np.abs(x)) + 1e-9)
    return np.clip(x * gain, -1, 1).astype(np.float32), end


def make_set(n_per_class, accents, variants, unknown_words, seed, negatives=1, meta=None,
             unknowns=None, bank_words=None, babble=None, accent_p=None, bank_size=BABBLE_BANK,
             babble_words=None):
    """Clips, labels and speech ends (samples) of a split; ``unknown`` and ``background``
    get ``negatives`` times as many clips as a command (``unknowns``: ``unknown`` that many
    instead). ``meta`` (a list), when given, receives one dict per clip: word, accent,
    variant, noise, snr_db (recording them draws nothing: the clips are the same).
    ``bank_words``: the words of the babble noise (default UNKNOWN_TRAIN); ``babble``: the
    fraction of background clips whose noise is babble (default: one kind in six, like the
    other clips; given, the others draw from the other five kinds — one more draw per
    background clip, and background clips come last: the other classes' clips stay).
    ``accent_p``: the probability of each accent (default: uniform; round 14). ``bank_size``:
    the utterances the babble draws its words from (round 20: a bank of 48 is heard so often
    in training that a network learns those recordings as background, not babble as such);
    ``babble_words``: as ``babble``, for the clips of words (commands and unknown) — one more
    draw per such clip when given, so every clip after the first changes."""
    rng = np.random.default_rng(seed)
    words = UNKNOWN_TRAIN if bank_words is None else bank_words

    def pick_accent():
        if accent_p is None:
            return accents[rng.integers(len(accents))]
        return accents[rng.choice(len(accents), p=accent_p)]

    if bank_size < 1:
        raise ValueError(f"make_set: the babble needs a bank of at least one utterance, got bank_size={bank_size!r}")
    for name, f in (("babble", babble), ("babble_words", babble_words)):
        if f is not None and not 0.0 <= f <= 1.0:
            raise ValueError(f"make_set: {name} must be a fraction in [0, 1], got {f!r}")
    bank = [utter(words[rng.integers(len(words))], pick_accent(),
                  variants[rng.integers(len(variants))], rng) for _ in range(bank_size)]  # for babble
    bg = CLASSES.index("background")
    xs, ys, ends = [], [], []
    for label, name in enumerate(CLASSES):
        many = 1 if label < len(COMMANDS) else unknowns if (label == UNK and unknowns is not None) else negatives
        for _ in range(n_per_class * many):
            accent, variant = pick_accent(), variants[rng.integers(len(variants))]
            word = name if label < len(COMMANDS) else unknown_words[rng.integers(len(unknown_words))]
            info = None if meta is None else {"word": word, "accent": accent, "variant": variant}
            kind = None
            share = babble if label == bg else babble_words
            if share is not None:
                kind = "babble" if rng.random() < share else NOISES[rng.integers(len(NOISES) - 1)]  # babble is last
            x, end = make_clip(label, word, accent, variant, rng, bank, info=info, kind=kind)
            if meta is not None:
                meta.append(info)
            xs.append(x)
            ys.append(label)
            ends.append(end)
    return np.stack(xs), np.array(ys, np.int64), np.array(ends, np.int64)


def voices(holdout_val=False):
    """{split: (accents, voice variants)} that ``generate`` draws from. With ``holdout_val``
    (round 13) VAL_HOLDOUT_ACCENTS and VAL_HOLDOUT_VARIANTS leave the training split for the
    validation split, which then has, like the test, a half of its own voices (VARIANTS_VAL and
    the held-out variants) on every non-test accent (``val_voices``) and a half of every
    non-test voice on the held-out accent (``val_accents``); the test split is the same either
    way."""
    test = (ACCENTS_TRAIN + ACCENTS_TEST, VARIANTS_TRAIN + VARIANTS_TEST)
    if not holdout_val:
        return {"train": (ACCENTS_TRAIN, VARIANTS_TRAIN), "val": (ACCENTS_TRAIN, VARIANTS_VAL), "test": test}
    accents = [a for a in ACCENTS_TRAIN if a not in VAL_HOLDOUT_ACCENTS]
    variants = [v for v in VARIANTS_TRAIN if v not in VAL_HOLDOUT_VARIANTS]
    return {"train": (accents, variants),
            "val": (ACCENTS_TRAIN, VARIANTS_TRAIN + VARIANTS_VAL),
            "val_voices": (ACCENTS_TRAIN, VARIANTS_VAL + VAL_HOLDOUT_VARIANTS),   # the first half
            "val_accents": (VAL_HOLDOUT_ACCENTS, VARIANTS_TRAIN + VARIANTS_VAL),  # the second half
            "test": test}


def generate(n_train=400, n_val=60, n_test=150, seed=0, negatives=2, meta=None, embedded=False, unknowns=None,
             babble=None, splits=("train", "val", "test"), exclude=(), holdout_val=False, foreign=(),
             foreign_fraction=1 / 3, babble_bank=BABBLE_BANK, babble_words=None):
    """The three splits as arrays (train: train voices and accents; val: the validation
    voices on the train accents; test: held-out voices on every accent, plus every voice on
    the held-out accents, with the confusable unknown words). ``meta`` (a dict), when given,
    receives per split the list of ``make_set``'s per-clip dicts. The training split only
    (round 10): ``embedded`` adds UNKNOWN_EMBEDDED to its unknown words and to its babble's
    words, ``unknowns`` its unknown clips per command clip (default ``negatives``), ``babble``
    the fraction of its background clips that are babble, ``exclude`` words taken out of its
    unknown words and its babble's (round 12; each must be one of them). ``holdout_val``
    (round 13): the validation split holds out an accent and voices of the training split's
    (``voices``), which then never hears them. ``foreign`` (round 14): eSpeak languages (e.g.
    ACCENTS_FOREIGN) that join the training split's accents only, drawn for ``foreign_fraction``
    of its clips (uniformly among them; the English accents uniformly for the rest): as many
    clips as without them. ``babble_bank`` (round 20): the training split's babble draws from
    that many utterances (the other splits keep BABBLE_BANK); ``babble_words`` the fraction of
    its clips of words whose noise is babble. ``splits``: the
    splits to make (each draws from a generator of its own seed, so the others do not change
    it)."""
    bad = set(splits) - {"train", "val", "test"}
    if bad:
        raise ValueError(f"generate: splits are among train, val, test; got {sorted(bad)}")
    m = {k: ([] if meta is not None else None) for k in ("train", "val", "test")}
    out = {}
    if "train" in splits:
        words = UNKNOWN_TRAIN + (UNKNOWN_EMBEDDED if embedded else [])
        bad = sorted(set(exclude) - set(words))
        if bad:
            raise ValueError(f"generate: exclude takes the training split's unknown words (UNKNOWN_TRAIN"
                             f"{', UNKNOWN_EMBEDDED' if embedded else ''}); {bad} are not among them")
        words = [w for w in words if w not in set(exclude)]
        accents, variants = voices(holdout_val)["train"]
        p = None
        if foreign:
            bad = sorted(set(foreign) & set(ACCENTS_TRAIN + ACCENTS_TEST) | {a for a in foreign if a.startswith("en")})
            if bad:
                raise ValueError(f"generate: foreign takes non-English eSpeak languages (e.g. ACCENTS_FOREIGN "
                                 f"{ACCENTS_FOREIGN}); {bad} are English accents")
            if not 0.0 < foreign_fraction < 1.0:
                raise ValueError(f"generate: foreign_fraction must be in (0, 1), got {foreign_fraction!r}")
            foreign = list(dict.fromkeys(foreign))
            p = ([(1 - foreign_fraction) / len(accents)] * len(accents)
                 + [foreign_fraction / len(foreign)] * len(foreign))
            accents = list(accents) + foreign
        out["train"] = make_set(n_train, accents, variants, words, seed, negatives, meta=m["train"],
                                unknowns=unknowns, bank_words=words, babble=babble, accent_p=p,
                                bank_size=babble_bank, babble_words=babble_words)
    if "val" in splits and not holdout_val:
        out["val"] = make_set(n_val, ACCENTS_TRAIN, VARIANTS_VAL, UNKNOWN_TRAIN, seed + 1, meta=m["val"])
    elif "val" in splits:   # round 13: the test's two halves, with the validation's own voices and accent
        v = voices(True)
        half = n_val // 2
        v1 = make_set(half, *v["val_voices"], UNKNOWN_TRAIN, seed + 1, meta=m["val"])
        v2 = make_set(n_val - half, *v["val_accents"], UNKNOWN_TRAIN, seed + 4, meta=m["val"])
        out["val"] = tuple(np.concatenate([a, b]) for a, b in zip(v1, v2))
    if "test" in splits:
        half = n_test // 2
        t1 = make_set(half, ACCENTS_TRAIN + ACCENTS_TEST, VARIANTS_TEST, UNKNOWN_TEST, seed + 2, meta=m["test"])
        t2 = make_set(n_test - half, ACCENTS_TEST, VARIANTS_TRAIN + VARIANTS_TEST, UNKNOWN_TEST, seed + 3,
                      meta=m["test"])
        out["test"] = tuple(np.concatenate([a, b]) for a, b in zip(t1, t2))
    if meta is not None:
        meta.update({k: m[k] for k in splits})
    return out


def split_sizes(n_train):
    """(train, validation, test) clips per class of the data set with ``n_train`` training
    clips per command (``main``'s --train)."""
    return n_train, max(20, n_train // 6), max(40, n_train * 3 // 8)


def featurize(clips, fe=None):
    fe = fe or LogMel()
    return np.stack([fe.features(c) for c in clips])


def targets_per_tick(y, ends, ticks, after=30, before=5, unknown_before=None):
    """Per-tick targets for the streaming loss: the class from
    ``before`` frames before the end of speech (``unknown_before`` for unknown words, so
    that most of an unknown word is taught as unknown) to ``after`` frames after it, -1 (no
    target) elsewhere; background clips are background throughout."""
    bg, unk = CLASSES.index("background"), CLASSES.index("unknown")
    t = np.full((len(y), ticks), -1, np.int64)
    for i, (c, e) in enumerate(zip(y, ends)):
        if c == bg or e < 0:
            t[i] = bg
            continue
        fe = e // HOP
        b = unknown_before if (c == unk and unknown_before is not None) else before
        t[i, max(0, fe - b):min(ticks, fe + after)] = c
    return t


def write_clips(folder, seed=0):
    """The handful of shipped test clips: commands by held-out voices and accents at 10 dB SNR
    (go, stop, left first; then the bicycle's other commands) and one background clip, 16-bit mono wav at 16 kHz, as demos/data/voice_*.wav
    (voice_clips.json lists them)."""
    import json
    import wave
    from pathlib import Path
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bank = [utter(w, "en", "", rng) for w in UNKNOWN_TRAIN[:12]]
    spec = [("left", "en-029", "m7"), ("stop", "en-gb-x-gbcwmd", "f5"), ("go", "en-us", "klatt3"),
            ("background", None, None),
            # the bicycle's spoken commands (demos/bicycle/speech.py), also by held-out voices
            ("faster", "en-gb-x-gbcwmd", "m7"), ("slower", "en-029", "klatt3"), ("right", "en-us", "f5"),
            ("follow", "en-gb-x-rp", "m7"), ("straight", "en-029", "f5")]
    listing = []
    for word, accent, variant in spec:
        label = CLASSES.index(word)
        x, end = make_clip(label, word, accent, variant, rng, bank, snr_db=10.0)
        name = f"voice_{word}.wav"
        with wave.open(str(folder / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes((np.clip(x, -1, 1 - 1 / 32768) * 32768).astype("<i2").tobytes())
        listing.append({"file": name, "label": word, "end_sample": int(end), "accent": accent, "variant": variant})
    (folder / "voice_clips.json").write_text(json.dumps(listing, indent=1) + "\n")
    return listing


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="voice-data.npz")
    p.add_argument("--train", type=int, default=400, help="train clips per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--negatives", type=int, default=2,
                   help="training clips of unknown words and of background, per command clip")
    p.add_argument("--embedded", action="store_true",
                   help="training split: UNKNOWN_EMBEDDED (commands with another onset or ending) join its unknown "
                        "words and its babble (round 10)")
    p.add_argument("--unknowns", type=int,
                   help="training clips of unknown words per command clip (default --negatives)")
    p.add_argument("--babble", type=float, help="the fraction of the training background clips that are babble "
                                                "(default: one in six, as every noise kind)")
    p.add_argument("--babble-bank", type=int, default=BABBLE_BANK,
                   help="training split: the utterances its babble draws words from (default %(default)s, as the "
                        "other splits; round 20)")
    p.add_argument("--babble-words", type=float,
                   help="training split: the fraction of its clips of words (commands, unknown) whose noise is "
                        "babble (default: one in six, as every noise kind; round 20)")
    p.add_argument("--exclude-words", nargs="+", default=[], metavar="WORD",
                   help="training split: these words taken out of its unknown words and its babble (round 12)")
    p.add_argument("--holdout-val", action="store_true",
                   help="the validation split holds out an accent and two voices of the training split "
                        "(VAL_HOLDOUT_ACCENTS, VAL_HOLDOUT_VARIANTS), never trained on, as the test does (round 13)")
    p.add_argument("--foreign", nargs="*", metavar="LANG",
                   help="training split only: these eSpeak languages (none given: ACCENTS_FOREIGN, "
                        + " ".join(ACCENTS_FOREIGN) + ") speak the English words too, as foreign-accented English, "
                          "for --foreign-fraction of the training clips (as many clips in all) (round 14)")
    p.add_argument("--foreign-fraction", type=float, default=1 / 3,
                   help="the fraction of the training clips in --foreign's languages (default 1/3)")
    p.add_argument("--splits-from", metavar="NPZ",
                   help="make the training split only (with --holdout-val: and the validation split) and take the "
                        "other splits from this data set, as they are (the same clips for the control and the new "
                        "recipe)")
    a = p.parse_args(argv)
    t0 = time.time()
    made = ("train", "val") if a.holdout_val else ("train",)
    splits = made if a.splits_from else ("train", "val", "test")
    d = generate(*split_sizes(a.train), a.seed, a.negatives, embedded=a.embedded, unknowns=a.unknowns,
                 babble=a.babble, splits=splits, exclude=a.exclude_words, holdout_val=a.holdout_val,
                 foreign=(a.foreign or ACCENTS_FOREIGN) if a.foreign is not None else (),
                 foreign_fraction=a.foreign_fraction, babble_bank=a.babble_bank,
                 babble_words=a.babble_words)
    fe = LogMel()
    arrays = {}
    for k, (x, y, e) in d.items():
        arrays[f"{k}_x"], arrays[f"{k}_y"], arrays[f"{k}_end"] = featurize(x, fe), y, e
    if a.splits_from:
        with np.load(a.splits_from) as src:
            for k in ("val", "test"):
                if k in made:
                    continue
                for f in ("x", "y", "end"):
                    arrays[f"{k}_{f}"] = src[f"{k}_{f}"]
    np.savez_compressed(a.out, **arrays)
    print(f"wrote {a.out} in {time.time() - t0:.0f} s: " + ", ".join(
        f"{k} {len(arrays[k + '_y'])}" for k in ("train", "val", "test"))
          + (f" ({' and '.join(k for k in ('val', 'test') if k not in made)} from {a.splits_from})"
             if a.splits_from else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
