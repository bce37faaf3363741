"""Scenario files with timed spoken commands (demos/bicycle/speech.py): the ``speech`` field's
checks name the field, and the audio track places each word at its time in the noise."""
import numpy as np
import pytest

from tianrt.demos.bicycle import speech, suite, world


def _sc(sp, duration=3.0):
    d = suite.make("straight", 0, duration)
    d["speech"] = sp
    return world.parse_scenario(d)


@pytest.mark.parametrize("sp, msg", [
    ([[0.3, "go"]], "field 'speech' must be an object"),
    ({"words": []}, "unknown field.*'speech.words'"),
    ({"commands": [[0.3]]}, r"'speech.commands\[0\]' must be a \[t, word\] pair"),
    ({"commands": [[True, "go"]]}, r"'speech.commands\[0\]' must be a \[t, word\] pair"),
    ({"commands": [[3.5, "go"]]}, r"'speech.commands\[0\]': time 3.5 must be within \[0, 3\) s"),
    ({"commands": [[0.1, "jump"]]}, r"'jump' is not a command; the bicycle knows left, right"),
    ({"snr_db": "loud"}, "'speech.snr_db' must be a number"),
    ({"noise": ["rain"]}, "'speech.noise' must be a list of noise kinds out of white"),
])
def test_bad_speech_fields_are_named(sp, msg):
    with pytest.raises(world.ScenarioError, match=msg):
        _sc(sp)


def test_track_places_words_in_noise_at_the_snr():
    sc = _sc({"commands": [[1.5, "stop"], [0.2, "go"]], "snr_db": 10, "noise": ["motor", "wind"]})
    assert sc.speech.commands == ((0.2, "go"), (1.5, "stop"))
    a, said = speech.track(sc.speech, sc.duration, seed=4)
    b, _ = speech.track(sc.speech, sc.duration, seed=4)
    assert a.dtype == np.float32 and len(a) == 3 * 16000 and np.array_equal(a, b)   # seeded
    assert [s["word"] for s in said] == ["go", "stop"] and all(s["t"] < s["end"] < s["t"] + 1 for s in said)
    quiet, _ = speech.track(speech.Speech(sc.speech.commands, 10.0, ()), sc.duration)
    noise = a.astype(np.float64) - quiet
    lo, hi = int(0.2 * 16000), int(said[0]["end"] * 16000)
    snr = 20 * np.log10(np.sqrt(np.mean(quiet[lo:hi] ** 2)) / np.sqrt(np.mean(noise ** 2)))
    assert 6 < snr < 14          # 10 dB against the mean level of the two words
    assert speech.track(None, 1.0)[1] == [] and not speech.track(None, 1.0)[0].any()
    assert world.parse_scenario(suite.make("straight", 0, 1.0)).speech is None
