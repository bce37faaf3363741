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


def test_silent_track_is_the_same_noise_without_the_words():
    """``voices="silent"``: the noise a ride's detector hears, at the level the words set, and no
    word — the audio for counting false alarms (hear_errands --voices silent)."""
    sc = _sc({"commands": [[0.2, "go"], [1.5, "stop"]], "snr_db": 10, "noise": ["motor", "wind"]})
    spoken, said = speech.track(sc.speech, sc.duration, seed=4)
    silent, none = speech.track(sc.speech, sc.duration, seed=4, voices="silent")
    assert none == [] and len(said) == 2
    lo = int(said[0]["t"] * 16000)
    assert np.array_equal(spoken[:lo], silent[:lo])            # the same noise before the first word
    gap = slice(int((said[0]["t"] + 1.01) * 16000), int(said[1]["t"] * 16000))   # a shipped clip is 1 s
    assert np.allclose(spoken[gap], silent[gap], atol=1e-6)    # and between the words (after the first clip)
    assert np.abs(spoken - silent).max() > 0.05                # the words are gone
    with pytest.raises(speech.SpeechError, match="voices must be one of shipped, generated, silent"):
        speech.track(sc.speech, sc.duration, voices="loud")


@pytest.mark.skipif(not __import__("tianrt.demos.voice.synth", fromlist=["x"]).available(),
                    reason="needs the voice extra (eSpeak NG)")
def test_generated_track_speaks_each_word_in_a_held_out_voice(monkeypatch):
    """``voices="generated"``: every word spoken by eSpeak NG in a voice of the voice data set's
    test split, drawn per word from the seed, at the same times. (The voices are seeded; eSpeak
    NG's waveform is not: its flutter and a whisper's breath are its own random draws.)"""
    from tianrt.demos.voice import data as D
    used = []
    real = D.utter
    monkeypatch.setattr(D, "utter", lambda w, a, v, rng: used.append((w, a, v)) or real(w, a, v, rng))
    sc = _sc({"commands": [[0.2, "go"], [1.5, "stop"]], "snr_db": 10, "noise": ["motor", "wind"]})
    a, said = speech.track(sc.speech, sc.duration, seed=4, voices="generated")
    shipped, _ = speech.track(sc.speech, sc.duration, seed=4)
    assert np.abs(a - shipped).max() > 0.05
    assert [s["word"] for s in said] == ["go", "stop"] and all(s["t"] < s["end"] for s in said)
    assert [w for w, _, _ in used] == ["go", "stop"]
    used_first = list(used)
    used.clear()
    speech.track(sc.speech, sc.duration, seed=4, voices="generated")
    assert len(used) == 2 and used == used_first
    assert all(acc in D.ACCENTS_TEST and var in D.VARIANTS_TEST for _, acc, var in used)
    other = []
    monkeypatch.setattr(D, "utter", lambda w, a, v, rng: other.append((a, v)) or real(w, a, v, rng))
    for seed in range(5, 15):
        speech.track(sc.speech, sc.duration, seed=seed, voices="generated")
    assert len(set(other)) >= 4                  # the voice changes with the seed
