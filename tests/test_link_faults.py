"""ChipLink over pyserial's socket:// transport against firmware_sim's server, with frames
damaged, dropped, repeated or truncated on the way, and firmware resets mid-stream. In every
case the outputs must equal a fault-free run and each command must execute exactly once."""
import warnings

import numpy as np
import pytest

from tianrt.chip import protocol as P
from tianrt.chip.link import ChipLink, LinkError, LinkWarning

from link_engine_double import FakeEngine, make_image
from link_fault_board import FaultBoard

IMAGE = make_image(name="first", shape=(3,), gain=2, window=2, pad=40000)   # 3 upload chunks
A, B = np.array([1, 2, 3]), np.array([-4, 5, 60])


def reference():
    e = FakeEngine()
    e.load_image(IMAGE)
    e.push_input("x", A)
    e.run(5)
    first = e.pull_outputs()
    e.push_input("x", B)
    e.run(4)
    return first, e.pull_outputs(), e.counters()["rounds"]


REF_FIRST, REF_SECOND, REF_ROUNDS = reference()


def same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1]), k


def session(link, between=lambda: None):
    link.upload_image(IMAGE)
    link.push_input("x", A)
    link.run(5)
    same(link.pull_outputs(), REF_FIRST)
    between()
    link.push_input("x", B)
    link.run(4)
    same(link.pull_outputs(), REF_SECOND)


@pytest.fixture
def make_board():
    made = []

    def make(**kw):
        b = FaultBoard(**kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def connect(board, **kw):
    return ChipLink(board.url, timeout=kw.pop("timeout", 0.15), retries=kw.pop("retries", 8), **kw)


def board_counters(board):
    return {**board.server.engine.counters(), **board.server.stats}


def passthrough(block):
    return b"\x00" + block + b"\x00"


def test_clean_session(make_board):
    board = make_board()
    with connect(board, timeout=2.0) as link:      # long: no spurious retries on a busy machine
        assert link.board["protocol"] == P.PROTOCOL_VERSION
        session(link)
        assert link.stats["retransmits"] == 0 and link.stats["reconnects"] == 0
        assert link.info()["name"] == "first"
        c = link.counters()
        assert c["rounds"] == REF_ROUNDS and c["link_duplicates"] == 0
        link.reset_counters()
        assert link.counters()["rounds"] == 0


def test_random_garbage_between_frames(make_board):
    rng = np.random.default_rng(5)

    def to_board(n, block):
        junk = rng.integers(0, 256, int(rng.integers(1, 80)), dtype=np.uint8).tobytes()
        return junk + passthrough(block) if n % 3 == 0 else passthrough(block)

    board = make_board(to_board=to_board)
    with connect(board) as link:
        session(link)
    assert board_counters(board)["rounds"] == REF_ROUNDS


def test_bit_flips_in_requests(make_board):
    rng = np.random.default_rng(6)

    def to_board(n, block):
        if n % 4 == 0:
            b = bytearray(block)
            b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
            return passthrough(bytes(b).replace(b"\x00", b"\x01"))
        return passthrough(block)

    board = make_board(to_board=to_board)
    with connect(board) as link:
        session(link)
        assert link.stats["retransmits"] > 0
    assert board_counters(board)["link_bad_frames"] > 0
    assert board_counters(board)["rounds"] == REF_ROUNDS


def test_bit_flips_in_replies_are_retransmitted_not_re_executed(make_board):
    def to_host(n, block):
        if n % 3 == 0:
            b = bytearray(block)
            b[len(b) // 2] ^= 0x04
            return passthrough(bytes(b).replace(b"\x00", b"\x01"))
        return passthrough(block)

    board = make_board(to_host=to_host)
    with connect(board) as link:
        session(link)
        assert link.stats["bad_frames"] > 0
    c = board_counters(board)
    assert c["link_duplicates"] > 0 and c["rounds"] == REF_ROUNDS


def test_truncated_frames(make_board):
    def to_board(n, block):
        return passthrough(block[:len(block) // 2]) if n % 5 == 0 else passthrough(block)

    board = make_board(to_board=to_board)
    with connect(board) as link:
        session(link)
    assert board_counters(board)["link_bad_frames"] > 0
    assert board_counters(board)["rounds"] == REF_ROUNDS


def test_duplicated_frames_execute_once(make_board):
    board = make_board(to_board=lambda n, block: passthrough(block) * 2)
    with connect(board) as link:
        session(link)
    c = board_counters(board)
    assert c["link_duplicates"] >= 10 and c["rounds"] == REF_ROUNDS


def test_dropped_ack(make_board):
    dropped = []

    def to_host(n, block):
        f = P.decode_frame(block)
        if f.cmd == P.RUN and not dropped:
            dropped.append(f)
            return b""
        return passthrough(block)

    board = make_board(to_host=to_host)
    with connect(board) as link:
        session(link)
        assert link.stats["retransmits"] >= 1 and link.stats["timeouts"] >= 1
    c = board_counters(board)
    assert dropped and c["link_duplicates"] >= 1 and c["rounds"] == REF_ROUNDS


def test_firmware_reset_between_commands_restores_state(make_board):
    board = make_board()
    with connect(board) as link:
        with pytest.warns(LinkWarning, match=r"reloaded the image \(40\d+ bytes\) and replayed 2"):
            session(link, between=board.reboot)
        assert link.stats["reconnects"] == 1 and link.stats["image_reloads"] == 1
        assert board.server.boots == 2
        assert link.info()["name"] == "first"


def test_firmware_reset_before_unpulled_outputs_loses_nothing(make_board):
    board = make_board()
    with connect(board) as link:
        link.upload_image(IMAGE)
        link.push_input("x", A)
        link.run(3)
        assert link.pull_outputs()["y"][0].tolist() == [2]
        link.run(2)                   # acknowledged, emits tick 4, not pulled yet
        board.reboot()
        with pytest.warns(LinkWarning):
            link.push_input("x", B)
        link.run(4)
        got = link.pull_outputs()
    ticks = np.concatenate([REF_FIRST["y"][0], REF_SECOND["y"][0]])
    vals = np.concatenate([REF_FIRST["y"][1], REF_SECOND["y"][1]])
    assert got["y"][0].tolist() == ticks[1:].tolist()        # 4, 6, 8: none lost, none twice
    assert np.array_equal(got["y"][1], vals[1:])


def test_firmware_reset_during_an_image_upload(make_board):
    state = {"chunks": 0}
    new = make_image(name="second", pad=40000)

    def to_board(n, block):
        f = P.decode_frame(block)
        if f.cmd == P.UPLOAD_CHUNK:
            state["chunks"] += 1
            if state["chunks"] == 5:    # the second chunk of the second upload
                board.reboot()
                return b""
        return passthrough(block)

    board = make_board(to_board=to_board)
    with connect(board) as link:
        link.upload_image(IMAGE)
        link.push_input("x", A)
        link.run(3)
        with pytest.warns(LinkWarning, match="restarted"):
            info = link.upload_image(new)
        assert info["name"] == "second" and link.info()["name"] == "second"
        link.push_input("x", A)
        link.run(2)
        assert link.pull_outputs()["y"][0].tolist() == [2]


def test_connection_drop_and_power_cycle(make_board):
    board = make_board()
    with connect(board) as link:
        link.upload_image(IMAGE)
        link.push_input("x", A)
        link.run(5)
        same(link.pull_outputs(), REF_FIRST)
        with board.lock:            # the board loses power: the connection drops, state is gone
            board.server.boot()
            board.conn.close()
            board.conn = None
        with pytest.warns(LinkWarning):
            link.push_input("x", B)
        link.run(4)
        same(link.pull_outputs(), REF_SECOND)


def test_silent_board_gives_a_clear_error(make_board):
    board = make_board()
    with connect(board, timeout=0.05, retries=2) as link:
        board.to_host = lambda n, block: b""
        with pytest.raises(LinkError, match=r"no reply to INFO after 3 tries"):
            link.info()


def test_refusals_raise_link_errors_with_codes(make_board):
    board = make_board()
    with connect(board) as link:
        with pytest.raises(LinkError) as e:
            link.run(1)
        assert e.value.code == P.E_NO_IMAGE and "NO_IMAGE" in str(e.value)
        link.upload_image(IMAGE)
        bad = bytearray(make_image(name="bad"))
        bad[-2] ^= 1
        with pytest.raises(LinkError, match="BAD_IMAGE") as e:
            link.upload_image(bytes(bad))
        assert e.value.code == P.E_BAD_IMAGE and link.info()["name"] == "first"
        with pytest.raises(LinkError, match="CAPACITY"):
            link.upload_image(make_image(cores=500))
        with pytest.raises(LinkError, match="BAD_INPUT") as e:
            link.push_input("x", np.ones(7, np.int32))
        with pytest.raises(LinkError, match="quantise on the host"):
            link.push_input("x", np.ones(3, np.float32))
        link.push_input("x", A)      # the link is still fine after all that
        link.run(5)
        same(link.pull_outputs(), REF_FIRST)


def test_large_inputs_and_outputs_are_chunked_and_paged(make_board):
    board = make_board()
    x = np.arange(2 * 6000, dtype=np.int32).reshape(2, 6000) - 5000
    with connect(board) as link:
        link.upload_image(make_image(shape=(6000,), gain=1, window=1))
        link.push_input("x", x)
        link.run(2)
        ticks, vals = link.pull_outputs()["y"]
    assert ticks.tolist() == [1, 2] and vals.shape == (2, 2, 6000)
    assert np.array_equal(vals[1], 2 * x)


def test_version_mismatch_is_reported(make_board):
    board = make_board()
    board.server.protocol_version = P.PROTOCOL_VERSION + 1     # a board with newer firmware
    with pytest.raises(LinkError, match=r"VERSION \(6\): host speaks protocol version 1, this "
                       r"firmware .* speaks 2") as e:
        connect(board)
    assert e.value.code == P.E_VERSION


def test_no_warnings_on_a_clean_link(make_board):
    board = make_board()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with connect(board, timeout=2.0) as link:
            session(link)


def test_step_is_push_run_pull_in_one_exchange(make_board):
    board = make_board()
    with connect(board, timeout=2.0) as link:
        link.upload_image(IMAGE)
        sent = link.stats["frames_sent"]
        first = link.step({"x": A}, 5)
        assert link.stats["frames_sent"] == sent + 1
        same(first, REF_FIRST)
        with pytest.raises(LinkError, match="BAD_INPUT.*no input 'nope'"):
            link.step({"x": B, "nope": A}, 4)       # refused as a whole: x was not pushed
        board.reboot()
        with pytest.warns(LinkWarning, match="replayed 2"):
            second = link.step({"x": B}, 4)
        same(second, REF_SECOND)
    assert board_counters(board)["rounds"] == REF_ROUNDS


def test_step_with_a_lost_reply_loses_no_outputs(make_board):
    lost = []

    def to_host(n, block):
        if P.decode_frame(block).cmd == P.STEP and not lost:
            lost.append(n)
            return b""
        return passthrough(block)

    board = make_board(to_host=to_host)
    with connect(board) as link:
        link.upload_image(IMAGE)
        same(link.step({"x": A}, 5), REF_FIRST)   # the reply with ticks 2, 4 came on the retry
        same(link.step({"x": B}, 4), REF_SECOND)
    assert lost and board_counters(board)["link_duplicates"] >= 1


def test_a_board_that_is_gone_for_good_gives_a_clear_error(make_board):
    board = make_board()
    with connect(board, reconnect_timeout=0.5) as link:
        link.info()
        board.close()              # unplugged: the connection drops and nothing listens
        with pytest.raises(LinkError, match=r"lost the board .* could not reconnect: cannot open"):
            link.info()


def test_a_board_with_small_buffers_gets_small_frames(make_board):
    board = make_board(max_payload=64)
    x = np.arange(2 * 300, dtype=np.int32).reshape(2, 300)
    with connect(board) as link:
        assert link.board["max_payload"] == 64 and link.max_payload == 64
        session(link)                      # a 40 kB image in 60-byte chunks, JSON replies paged
        link.upload_image(make_image(shape=(300,), gain=1, window=1))
        link.push_input("x", x)
        link.run(2)
        ticks, vals = link.pull_outputs()["y"]
        assert link.stats["frames_sent"] > 700
    assert ticks.tolist() == [1, 2] and np.array_equal(vals[1], 2 * x)
    assert board.server.stats["link_bad_frames"] == 0      # nothing the board could not take


def test_without_replay_the_warning_says_the_state_is_fresh(make_board):
    board = make_board()
    with connect(board, replay=False) as link:
        link.upload_image(IMAGE)
        link.push_input("x", A)
        link.run(3)
        board.reboot()
        with pytest.warns(LinkWarning, match=r"state was NOT restored \(replay=False\)"):
            link.run(1)
        assert link.pull_outputs() == {}     # the input pushed before the reset is gone


def test_journal_overflow_is_reported_not_replayed(make_board, monkeypatch):
    import tianrt.chip.link as link_module

    monkeypatch.setattr(link_module, "JOURNAL_LIMIT", 200)
    board = make_board()
    with connect(board) as link:
        link.upload_image(IMAGE)
        for _ in range(10):                   # ~30 bytes per push: past 200 bytes
            link.push_input("x", A)
            link.run(1)
        board.reboot()
        with pytest.warns(LinkWarning, match=r"NOT restored \(more than 0 MiB of inputs"):
            link.info()
        assert link.stats["replayed"] == 0
        link.reset()                           # a fresh start journals again
        link.push_input("x", A)
        link.run(2)
        board.reboot()
        with pytest.warns(LinkWarning, match="replayed 2"):
            assert link.pull_outputs()["y"][0].tolist() == [2]
