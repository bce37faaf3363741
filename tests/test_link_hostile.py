"""The chip link under the faults of issue 13, with the real emulator behind a loopback
socket: a stall longer than the host's patience during step() never shifts the outputs
(host and board ticks agree), a reset between a batched push and the first RUN recovers,
a long RUN can be aborted and streamed, and names the protocol cannot carry are clear
LinkErrors."""
import threading
import time
import warnings

import numpy as np
import pytest

import tianrt as tr
from tianrt.chip import ChipSpec, protocol as P
from tianrt.chip.link import ChipLink, LinkError, LinkWarning
from tianrt.firmware_sim.engine import Engine

from chip_graphs import SMALL, TEMPLATES, inputs
from link_fault_board import FaultBoard

SPEC = ChipSpec(**SMALL)


def real_engine():
    return Engine(SPEC.to_dict())


@pytest.fixture
def make_board():
    made = []

    def make(**kw):
        b = FaultBoard(engine_factory=real_engine, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def stall_reply(cmd, which, seconds):
    """A to_host hook: the ``which``-th reply to ``cmd`` is held back ``seconds``."""
    seen = {"n": 0}

    def hook(n, block):
        f = P.decode_frame(block)
        if f.cmd == cmd and f.kind in (P.ACK, P.NAK):
            seen["n"] += 1
            if seen["n"] == which:
                time.sleep(seconds)
        return b"\x00" + block + b"\x00"
    return hook


# -- item 1 -----------------------------------------------------------------------------------------
def test_a_stalled_step_retried_by_the_user_does_not_shift_the_outputs(make_board):
    rng = np.random.default_rng(11)
    g, shapes = TEMPLATES["spike_input"](rng)
    xs = inputs(rng, shapes, g, None, 40)
    ref = tr.Runtime(g, backend="chip", port="inproc", spec=SPEC)
    want = [ref.step({k: v[t] for k, v in xs.items()}) for t in range(40)]
    board = make_board(to_host=stall_reply(P.STEP, 7, 0.6))
    rt = tr.Runtime(g, backend="chip", port=board.url, spec=SPEC, timeout=0.1, retries=1)
    got, failures = [], 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in range(40):
            x = {k: v[t] for k, v in xs.items()}
            while True:
                try:
                    got.append(rt.step(x))
                    break
                except LinkError:
                    failures += 1
                    time.sleep(0.7)          # the board finishes the STEP the host gave up on
    link = rt._impl.link
    assert failures == 1
    assert any("resynchronised" in str(w.message) for w in caught)
    assert link.stats["resyncs"] == 1
    assert link.tick == 40 and link.info()["tick"] == 40 and rt.tick == 40
    for a, b in zip(want, got):
        assert sorted(a) == sorted(b)
        for k in a:
            assert np.array_equal(a[k], b[k]), k
    rt.close()


def test_without_replay_a_disagreement_is_refused_until_reset(make_board):
    rng = np.random.default_rng(12)
    g, shapes = TEMPLATES["spike_input"](rng)
    image = tr.chip.compile(g, SPEC)[0]
    board = make_board(to_host=stall_reply(P.RUN, 2, 0.5))
    with ChipLink(board.url, timeout=0.1, retries=1, replay=False) as link:
        link.upload_image(image)
        link.run(3)
        with pytest.raises(LinkError):
            link.run(2)
        time.sleep(0.6)
        with pytest.raises(LinkError, match="board is at tick 5, the host at 3") as ex:
            link.run(1)
        assert ex.value.code == P.E_ABORTED
        with pytest.raises(LinkError, match="disagree"):
            link.pull_outputs()
        link.reset()
        link.run(2)
        assert link.tick == 2 == link.info()["tick"]


# -- item 3 -----------------------------------------------------------------------------------------
def test_reset_between_a_batched_push_and_the_first_run(make_board):
    rng = np.random.default_rng(13)
    g, shapes = TEMPLATES["mlp"](rng)
    xs = inputs(rng, shapes, g, 2)
    want = tr.Runtime(g, backend="chip", port="inproc", spec=SPEC).run(xs, ticks=6)
    board = make_board()
    rt = tr.Runtime(g, backend="chip", port=board.url, spec=SPEC, timeout=0.3, retries=5)
    link = rt._impl.link
    real_run = link.run

    def run_after_reset(n, **kw):
        board.reboot()
        return real_run(n, **kw)
    link.run = run_after_reset
    with pytest.warns(LinkWarning, match="replayed"):
        got = rt.run(xs, ticks=6)
    for k in want:
        assert np.array_equal(want.ticks[k], got.ticks[k]) and np.array_equal(want[k], got[k]), k
    assert link.tick == 6 == link.info()["tick"]
    rt.close()


# -- item 5 -----------------------------------------------------------------------------------------
def test_link_abort_from_another_thread_journals_the_ticks_that_ran():
    import json
    rng = np.random.default_rng(15)
    g, shapes = TEMPLATES["spike_input"](rng)
    image = tr.chip.compile(g, SPEC)[0]
    with ChipLink("auto", timeout=0.5, retries=2, spawn_args=("--spec", json.dumps(SPEC.to_dict()))) as link:
        link.upload_image(image)
        timer = threading.Timer(0.5, link.abort)
        timer.start()
        t0 = time.perf_counter()
        with pytest.raises(LinkError, match="aborted at tick") as ex:
            link.run(100000)
        assert ex.value.code == P.E_ABORTED and time.perf_counter() - t0 < 3
        ran = link.tick
        assert 0 < ran < 100000 and link.info()["tick"] == ran
        outs = link.pull_outputs()
        assert len(outs["s"][0]) == ran        # the ticks that ran delivered their outputs
        link.run(3)                            # the board keeps answering
        assert link.tick == ran + 3 == link.info()["tick"]


def test_a_long_run_is_streamed_in_pieces(make_board, monkeypatch):
    rng = np.random.default_rng(16)
    g, shapes = TEMPLATES["spike_input"](rng)
    image = tr.chip.compile(g, SPEC)[0]
    monkeypatch.setattr(P, "MAX_HELD_VALUES", 2000)
    board = make_board()
    with ChipLink(board.url, timeout=1.0) as link:
        info = link.upload_image(image)
        per = info["out_values_per_tick"]
        pieces = []
        link.run(300, on_outputs=pieces.append)
        assert len(pieces) >= 300 * per // 2000
        ticks = np.concatenate([p["s"][0] for p in pieces if "s" in p])
        assert ticks.tolist() == list(range(300))
        link.run(300)                       # without a callback: held on the host, pulled at once
        t, v = link.pull_outputs()["s"]
        assert t.tolist() == list(range(300, 600)) and v.shape[0] == 300


# -- item 7 -----------------------------------------------------------------------------------------
def test_names_the_protocol_cannot_carry_are_link_errors(make_board):
    rng = np.random.default_rng(17)
    g, shapes = TEMPLATES["spike_input"](rng)
    image = tr.chip.compile(g, SPEC)[0]
    board = make_board()
    with ChipLink(board.url, timeout=1.0) as link:
        link.upload_image(image)
        for call in (lambda: link.push_input("x" * 300, np.zeros(3, np.int32)),
                     lambda: link.step({"x" * 300: np.zeros(3, np.int32)})):
            with pytest.raises(LinkError, match="1..255 UTF-8 bytes") as ex:
                call()
            assert ex.value.code == P.E_BAD_PAYLOAD
        assert link.tick == 0


# -- link efficiency: sparse outputs ---------------------------------------------------------------
def test_sparse_outputs_round_trip_and_are_smaller():
    rng = np.random.default_rng(18)
    for shape, density, ones in (((50, 1, 256), 0.02, True), ((50, 2, 256), 0.3, True),
                                 ((40, 1, 64), 0.05, False), ((3, 1, 4), 0.5, True), ((10, 1, 300), 0.0, True)):
        a = (rng.random(shape) < density).astype(np.int32)
        if not ones:
            a *= rng.integers(-5, 6, shape).astype(np.int32)
        blob = P.pack_sparse(a)
        r = P.Reader(blob, "t")
        back = P.read_array(r, "v", sparse=True)
        r.end()
        assert back.dtype == np.int32 and np.array_equal(back, a)
        assert len(blob) <= len(P.pack_array(a))
    a = (rng.random((100, 1, 256)) < 0.02).astype(np.int32)
    assert len(P.pack_sparse(a)) < len(P.pack_array(a)) / 10
    # the board never takes sparse arrays from a host (no allocation bombs), and a hostile
    # sparse array is a clean BAD_PAYLOAD on the host
    bomb = bytes([P.SPARSE | 4, 3]) + np.array([65536] * 3, "<u4").tobytes() + bytes([1]) + (0).to_bytes(4, "little")
    with pytest.raises(P.ProtocolError):
        P.read_array(P.Reader(bomb, "t"), "v")
    with pytest.raises(P.ProtocolError, match="elements, at most"):
        P.read_array(P.Reader(bomb, "t"), "v", sparse=True)
    # inputs: the board decodes sparse pushes, bounded before it allocates
    with pytest.raises(P.ProtocolError, match="at most 4194304"):
        P.read_push(P.pack_name("x") + bomb)
    x = (rng.random((3, 256)) < 0.05).astype(np.int32)
    name, back = P.read_push(P.pack_push("x", x, sparse=True))
    assert name == "x" and np.array_equal(back, x)
    assert len(P.pack_push("x", x, sparse=True)) < len(P.pack_push("x", x)) / 4


def test_a_spike_output_over_the_link_is_sent_sparsely(make_board):
    rng = np.random.default_rng(19)
    g, shapes = TEMPLATES["spike_input"](rng)
    image = tr.chip.compile(g, SPEC)[0]
    sent = {}
    for sparse in (False, True):
        board = make_board()
        with ChipLink(board.url, timeout=1.0, sparse=sparse) as link:
            link.upload_image(image)
            link.run(200)
            before = link.stats["bytes_received"]
            out = link.pull_outputs()
            sent[sparse] = (link.stats["bytes_received"] - before, out)
    (dense_bytes, a), (sparse_bytes, b) = sent[False], sent[True]
    for k in a:
        assert np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1])
    assert sparse_bytes < dense_bytes


# -- item 5: what BUSY says, and a reset stops a running RUN ---------------------------------------
def _pump_with_image():
    from tianrt.firmware_sim.server import Server
    from tianrt.firmware_sim.transport import Pump
    rng = np.random.default_rng(20)
    g, _ = TEMPLATES["spike_input"](rng)
    image = tr.chip.compile(g, SPEC)[0]
    server = Server(real_engine)
    server.feed(P.encode_frame(P.REQUEST, P.HELLO, 1, P.pack_hello(1, 3)))
    server.engine.load_image(image)
    out = []
    return server, Pump(server, out.append), out


def _frames(out):
    return [f for chunk in list(out) for f in (P.decode_frame(b) for b in P.Deframer().feed(chunk))]


def _wait(cond, limit=5.0):
    deadline = time.monotonic() + limit
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_busy_says_executing_or_queued_and_abort_answers_at_once():
    server, pump, out = _pump_with_image()
    try:
        run = P.encode_frame(P.REQUEST, P.RUN, 2, P.pack_run(20000))
        info = P.encode_frame(P.REQUEST, P.INFO, 3)
        pump.data(run)
        assert _wait(lambda: pump.running is not None)
        pump.data(info)                       # queued behind the RUN
        pump.data(run + info)                 # the host asks again about both
        busy = [f for f in _frames(out) if f.kind == P.BUSY]
        assert {(f.cmd, f.payload) for f in busy} == {(P.RUN, b"\x01"), (P.INFO, b"\x02")}
        t0 = time.perf_counter()
        pump.data(P.encode_frame(P.REQUEST, P.ABORT, 0))
        ack = next(f for f in _frames(out) if f.cmd == P.ABORT)   # answered by the read loop
        assert P.read_json(ack.payload, "ABORT")["running"] == "RUN"
        assert _wait(lambda: any(f.cmd == P.RUN and f.kind == P.NAK for f in _frames(out)))
        assert time.perf_counter() - t0 < 3.0  # promptly (a loaded machine adds time)
        nak = next(f for f in _frames(out) if f.cmd == P.RUN and f.kind == P.NAK)
        assert P.read_nak(nak.payload)[0] == P.E_ABORTED
        assert not any(f.cmd == P.INFO and f.kind == P.ACK for f in _frames(out))   # dropped, not run
    finally:
        pump.stop()


def test_a_firmware_reset_stops_the_running_run_within_a_tick():
    server, pump, out = _pump_with_image()
    try:
        old = server.engine
        pump.data(P.encode_frame(P.REQUEST, P.RUN, 2, P.pack_run(20000)))
        assert _wait(lambda: pump.running is not None)
        time.sleep(0.2)
        t0 = time.perf_counter()
        pump.reboot()                          # what SIGUSR1 does
        assert _wait(lambda: pump.running is None, 3.0) and time.perf_counter() - t0 < 3.0
        assert 0 < old.t < 20000 and server.engine is not old
        assert any(f.kind == P.BOOT for f in _frames(out))
    finally:
        pump.stop()


# -- link efficiency: a clip in a few exchanges (STEPS) ----------------------------------------------
def test_a_clip_goes_in_a_few_exchanges_and_survives_a_reset(make_board):
    rng = np.random.default_rng(21)
    g, shapes = TEMPLATES["mlp"](rng)
    xs = inputs(rng, shapes, g, 2, 300)
    want = tr.Runtime(g, backend="chip", port="inproc", spec=SPEC).run(xs)
    board = make_board()
    rt = tr.Runtime(g, backend="chip", port=board.url, spec=SPEC, timeout=1.0)
    link = rt._impl.link
    sent = link.stats["frames_sent"]
    got = rt.run(xs)
    assert link.stats["frames_sent"] - sent < 300 // 4        # not one exchange per tick
    for k in want:
        assert np.array_equal(want.ticks[k], got.ticks[k]) and np.array_equal(want[k], got[k]), k
    # a firmware reset between two pieces: the replay restores the state, nothing is lost
    rt.reset()
    real = link.steps
    calls = {"n": 0}

    def steps_with_reset(segments):
        calls["n"] += 1
        if calls["n"] == 2:
            board.reboot()
        return real(segments)
    link.steps = steps_with_reset
    with pytest.warns(LinkWarning, match="replayed"):
        again = rt.run(xs)
    for k in want:
        assert np.array_equal(want.ticks[k], again.ticks[k]) and np.array_equal(want[k], again[k]), k
    assert link.tick == 300 == link.info()["tick"]
    rt.close()


def test_an_aborted_steps_is_undone_and_ticks_agree():
    import json
    rng = np.random.default_rng(22)
    g, shapes = TEMPLATES["spike_input"](rng)
    image = tr.chip.compile(g, SPEC)[0]
    n_in = shapes["x"][0]
    with ChipLink("auto", timeout=0.5, retries=2, spawn_args=("--spec", json.dumps(SPEC.to_dict()))) as link:
        link.upload_image(image)
        link.run(3)
        x = np.ones(n_in, np.int32)
        timer = threading.Timer(0.4, link.abort)
        timer.start()
        with pytest.warns(LinkWarning, match="resynchronised"):
            with pytest.raises(LinkError, match="STEPS aborted and undone: the board is back at tick 3") as ex:
                link.steps([({"x": x}, 20000), ({"x": x}, 20000)])
        assert ex.value.code == P.E_ABORTED
        assert link.tick == 3 == link.info()["tick"]
        link.run(2)
        assert link.tick == 5 == link.info()["tick"]
