"""eSpeak NG through ctypes, from the ``espeakng-loader`` wheel (the ``voice`` extra): the
library and its data ship in the wheel, so no system package and no network are needed.

    wav, sr = speak("left", voice="en-us+f3", rate=160, pitch=50)   # float32 in [-1, 1), 22050 Hz
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE, ESPEAK_PITCH, ESPEAK_RANGE = 1, 3, 4
_LOCK = threading.Lock()
_LIB = None
_SR = 0
_BUF: list = []
_CB_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def available() -> bool:
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return False
    return True


@_CB_TYPE
def _callback(wav, n, events):
    if n > 0:
        _BUF.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    return 0


def _lib():
    global _LIB, _SR
    if _LIB is None:
        import espeakng_loader
        lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        sr = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                   str(espeakng_loader.get_data_path()).encode(), 0)
        if sr <= 0:
            raise RuntimeError("espeak_Initialize failed")
        lib.espeak_SetSynthCallback(_callback)
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        _LIB, _SR = lib, sr
    return _LIB


def speak(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50, pitch_range: int = 50):
    """(samples float32, sample rate) of ``text`` spoken by ``voice`` (eSpeak name, with an
    optional variant: "en-gb+m3", "en-us+whisper")."""
    with _LOCK:
        lib = _lib()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak has no voice {voice!r}")
        lib.espeak_SetParameter(ESPEAK_RATE, int(rate), 0)
        lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
        lib.espeak_SetParameter(ESPEAK_RANGE, int(pitch_range), 0)
        _BUF.clear()
        b = text.encode() + b"\0"
        lib.espeak_Synth(b, len(b), 0, 0, 0, 0, None, None)
        lib.espeak_Synchronize()
        wav = np.concatenate(_BUF) if _BUF else np.zeros(0, np.int16)
        _BUF.clear()
    return wav.astype(np.float32) / 32768.0, _SR
