"""The bicycle's neural state machine (demos/bicycle/nsm.py): the verification table of
issue 17, 20 seeded runs per row with jittered timing, dropped event spikes and spurious
spikes; every run must pass, on the float graph and on its integer version (tr.quantize),
which runs bit for bit on the reference and numba backends."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.demos.bicycle import nsm

RUNS = 20
P_ON, P_NOISE = 0.9, 0.005   # an event's channel spikes at 90 % of its ticks; 0.5 % spurious spikes
GAP = 0.4                    # seconds between events before jitter


def jittered(rng, events, start=0.2, gap=GAP, dur=0.1):
    """[(event, t0, duration)] with onsets jittered by +-50 ms and durations by +-20 ms."""
    out, t = [], start
    for ev in events:
        d = dur if not isinstance(ev, tuple) else ev[1]
        ev = ev if not isinstance(ev, tuple) else ev[0]
        out.append((ev, t + rng.uniform(-0.05, 0.05), d + (rng.uniform(-0.02, 0.02) if d >= 0.05 else 0.0)))
        t += gap + (d if d > 0.5 else 0.0)
    return out


def run_batch(graph, schedules, seconds, seed, backend="reference"):
    """The machine on RUNS schedules at once (one batch); returns the per-run state sequences."""
    rng = np.random.default_rng(seed)
    ticks = int(round(seconds / nsm.DT))
    x = np.stack([nsm.events_array(ticks, s, rng, P_ON, P_NOISE) for s in schedules], axis=1)
    spikes = tr.Runtime(graph, backend).run({"events": x})["nsm"]
    return spikes, [nsm.sequence(nsm.decode(spikes[:, b])["state"]) for b in range(len(schedules))]


GRAPHS = {"float": nsm.build, "int": nsm.quantized}


@pytest.fixture(scope="module", params=["float", "int"])
def graph(request):
    return GRAPHS[request.param]()


def check(graph, events, want, seed, seconds=None, start=0.2):
    rng = np.random.default_rng(seed)
    schedules = [jittered(rng, events, start=start) for _ in range(RUNS)]
    seconds = seconds or max(t0 + d for s in schedules for _, t0, d in s) + 0.5
    _, seqs = run_batch(graph, schedules, seconds, seed + 1)
    bad = [(i, s) for i, s in enumerate(seqs) if not want(s)]
    assert not bad, f"{len(bad)} of {RUNS} runs failed, first: run {bad[0][0]}: {bad[0][1]}"


def test_a_go_person_obstacle_done_person_stop(graph):
    ok = (["idle", "ride", "follow", "avoid", "ride", "follow", "stop_requested", "idle"],)
    check(graph, ["go", "person", "obstacle", "done", "person", "stop"], lambda s: s in [list(x) for x in ok], 10)


def test_b_go_person_lost_person(graph):
    check(graph, ["go", "person", "lost", "person"],
          lambda s: s == ["idle", "ride", "follow", "ride", "follow"], 20)


def test_b_spoken_follow_is_a_way_into_following(graph):
    check(graph, ["go", "follow", "lost", "follow", "stop"],
          lambda s: s == ["idle", "ride", "follow", "ride", "follow", "stop_requested", "idle"], 25)


@pytest.mark.parametrize("prefix,state,ignored", [
    ([], "idle", ["stop", "person", "lost", "obstacle", "done", "follow"]),
    (["go"], "ride", ["go", "lost", "done"]),
    (["go", "person"], "follow", ["go", "person", "done", "follow"]),
    (["go", "obstacle"], "avoid", ["go", "person", "lost", "obstacle", "follow"]),
])
def test_c_events_irrelevant_to_the_state_are_ignored(graph, prefix, state, ignored):
    path = ["idle", "ride", "follow"][:len(prefix) + 1] if prefix != ["go", "obstacle"] else ["idle", "ride", "avoid"]
    check(graph, prefix + ignored, lambda s: s == path, 30 + len(prefix))


def test_d_glitches_do_not_switch_a_real_go_does(graph):
    ev = [("go", 0.008), ("person", 0.008), ("go", 0.008), ("go", 0.1), ("person", 0.008), ("person", 0.008)]
    check(graph, ev, lambda s: s == ["idle", "ride"], 40)


@pytest.mark.parametrize("glitch", ["go", "person"])
def test_d_a_glitch_alone_leaves_the_state(graph, glitch):
    """Glitches of 8 ms (every tick of them on) from idle and from ride switch nothing."""
    check(graph, [(glitch, 0.008)] * 3, lambda s: s == ["idle"], 41)
    check(graph, ["go"] + [(glitch, 0.008)] * 3, lambda s: s == ["idle", "ride"], 42)


def test_e_go_obstacle_done_lost(graph):
    check(graph, ["go", "obstacle", "done", "lost"], lambda s: s == ["idle", "ride", "avoid", "ride"], 50)


@pytest.mark.parametrize("prefix,event,path", [
    ([], "go", ["idle", "ride"]),
    (["go"], "person", ["idle", "ride", "follow"]),
    (["go"], "follow", ["idle", "ride", "follow"]),
    (["go", "person"], "lost", ["idle", "ride", "follow", "ride"]),
    (["go"], "obstacle", ["idle", "ride", "avoid"]),
    (["go", "obstacle"], "done", ["idle", "ride", "avoid", "ride"]),
    # stop: one transition to stop-requested, then the timed one to idle (the machine's own)
    (["go"], "stop", ["idle", "ride", "stop_requested", "idle"]),
])
def test_f_an_event_held_for_a_second_makes_one_transition(graph, prefix, event, path):
    check(graph, prefix + [(event, 1.0)], lambda s: s == path, 60)


@pytest.mark.parametrize("prefix,path", [
    ([], ["idle"]), (["go"], ["idle", "ride"]), (["go", "person"], ["idle", "ride", "follow"]),
    (["go", "obstacle"], ["idle", "ride", "avoid"])])
def test_g_no_input_for_two_seconds_holds_the_state(graph, prefix, path):
    rng = np.random.default_rng(70)
    schedules = [jittered(rng, prefix) for _ in range(RUNS)]
    _, seqs = run_batch(graph, schedules, 0.2 + GAP * len(prefix) + 2.0, 71)
    assert all(s == path for s in seqs), seqs


def test_the_machine_starts_idle_and_is_always_in_exactly_one_state(graph):
    rng = np.random.default_rng(80)
    schedules = [jittered(rng, list(rng.choice(nsm.EVENTS, 12))) for _ in range(RUNS)]
    spikes, _ = run_batch(graph, schedules, 5.5, 81)
    for b in range(RUNS):
        st = nsm.decode(spikes[:, b])["state"]
        assert st[0] == 0 and (st >= 0).all()


def test_enables_follow_the_state():
    out = nsm.run([("go", 0.2, 0.1), ("person", 0.6, 0.1)], 1.0)
    st = out["state"]
    for k, states in nsm.ENABLES.items():
        idx = [nsm.STATES.index(s) for s in states]
        # an enable is the OR of its states, one tick later
        assert np.array_equal(out[f"enable:{k}"][1:], np.isin(st[:-1], idx).astype(np.int8)), k


def test_float_machine_runs_the_same_on_numba():
    rng = np.random.default_rng(95)
    schedules = [jittered(rng, list(rng.choice(nsm.EVENTS, 10))) for _ in range(4)]
    g = nsm.build()
    ref, seqs = run_batch(g, schedules, 4.5, 96)
    nb, seqs_nb = run_batch(g, schedules, 4.5, 96, backend="numba")
    assert seqs == seqs_nb and np.array_equal(ref, nb)


def test_quantized_machine_is_exact_and_bit_exact_on_reference_and_numba():
    g, q = nsm.build(), nsm.quantized()
    syn = q["nsm_syn"]
    assert np.array_equal(syn.weight, g["nsm_syn"].weight) and np.array_equal(syn.weight_rec, g["nsm_syn"].weight_rec)
    assert np.array_equal(np.asarray(q["nsm_neurons"].threshold).ravel(),
                          np.asarray(g["nsm_neurons"].threshold).ravel()), "every threshold kept exactly"
    rng = np.random.default_rng(90)
    schedules = [jittered(rng, list(rng.choice(nsm.EVENTS, 10))) for _ in range(8)]
    ref, _ = run_batch(q, schedules, 4.5, 91)
    nb, _ = run_batch(q, schedules, 4.5, 91, backend="numba")
    assert ref.sum() > 1000 and np.array_equal(ref, nb)
