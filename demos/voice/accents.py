"""Which eSpeak languages say the English command words recognisably, without listening (round 14,
data.py --foreign): for each language, the commands' phonemes (IPA, ``espeak_TextToPhonemes``;
``(en)`` marks a word eSpeak switches to English for) and each word's duration (trimmed at 0.01)
and RMS energy relative to the English voice's, at one rate and pitch; with ``--variants``, the
same over every training voice variant (the smallest and largest ratios).

    python -m tianrt.demos.voice.accents de fr pl cs da pt es it nl --variants
"""
from __future__ import annotations

import argparse
import ctypes

import numpy as np

from . import data, synth

WORDS = data.COMMANDS + ["bicycle", "house", "seven", "water", "forward", "hello"]


def phonemes(word, voice):
    """``word`` as eSpeak's ``voice`` would say it, in IPA (``espeak_TextToPhonemes``, through
    synth's library handle and lock: eSpeak is one global state)."""
    lib = synth._lib()
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    with synth._LOCK:
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak has no voice {voice!r}")
        b = ctypes.c_char_p(word.encode())
        return lib.espeak_TextToPhonemes(ctypes.byref(b), 1, 0x02).decode(errors="replace")  # IPA


def stats(word, voice):
    """(duration in s, RMS) of ``word`` spoken by ``voice`` at rate 170, pitch 50, range 50."""
    w, sr = synth.speak(word, voice, rate=170, pitch=50, pitch_range=50)
    nz = np.nonzero(np.abs(w) > 0.01)[0]
    w = w[nz[0]:nz[-1] + 1] if len(nz) else w[:0]
    return len(w) / sr, float(np.sqrt(np.mean(w ** 2))) if len(w) else 0.0


def ratios(lang, variant="", words=WORDS):
    """Per word (duration, RMS) of ``lang`` over the English voice's, both with ``variant``."""
    out = []
    for w in words:
        (d, r), (d0, r0) = stats(w, data.voice_name(lang, variant)), stats(w, data.voice_name("en", variant))
        out.append((d / d0, r / r0))
    return np.array(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("langs", nargs="*", default=data.ACCENTS_FOREIGN)
    p.add_argument("--variants", action="store_true", help="also over every training voice variant (the commands)")
    a = p.parse_args(argv)
    for lang in ["en"] + a.langs:
        r = ratios(lang)
        print(f"{lang:6s} duration/en median {np.median(r[:, 0]):.2f} min {r[:, 0].min():.2f} max {r[:, 0].max():.2f}"
              f"  rms/en median {np.median(r[:, 1]):.2f} min {r[:, 1].min():.2f}  | "
              + " ".join(phonemes(w, lang) for w in data.COMMANDS))
    if a.variants:
        for lang in a.langs:
            r = np.concatenate([ratios(lang, v, data.COMMANDS) for v in data.VARIANTS_TRAIN])
            print(f"{lang}: {len(data.VARIANTS_TRAIN)} variants x {len(data.COMMANDS)} commands: duration/en "
                  f"{r[:, 0].min():.2f}-{r[:, 0].max():.2f}, rms/en min {r[:, 1].min():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
