"""Sessions of a socket board (issue 13, item 10): a second host is told "board busy, held
by ..." or takes the board over explicitly; a previous session's outputs are not readable by
the next; an optional shared secret (HMAC challenge in HELLO) for socket boards, never for a
pty. Loopback only."""
import pytest

from tianrt.chip import protocol as P
from tianrt.chip.link import ChipLink, LinkError
from tianrt.cli import main as cli_main

from link_engine_double import make_image
from test_link_faults import A
from test_link_process import Emulator, engine_double_importable  # noqa: F401 (autouse fixture)


@pytest.fixture
def board():
    made = []

    def start(*args):
        e = Emulator("--socket", "0", "--quiet", *args)
        made.append(e)
        return e

    yield start
    for e in made:
        e.stop()


def test_a_second_host_is_told_who_holds_the_board(board):
    emu = board()
    with ChipLink(emu.where, timeout=1.0) as first:
        first.upload_image(make_image(name="mine", window=1))
        first.push_input("x", A)
        first.run(2)
        with pytest.raises(LinkError, match=r"board busy, held by 127\.0\.0\.1:\d+ since .*take_over=True") as ex:
            ChipLink(emu.where, timeout=0.5, retries=1)
        assert ex.value.code == P.E_BUSY
        first.run(1)                      # the holder is not disturbed
        assert first.pull_outputs()["y"][0].tolist() == [1, 2, 3]


def test_take_over_drops_the_previous_session(board):
    emu = board()
    first = ChipLink(emu.where, timeout=0.3, retries=1, reconnect_timeout=1.0)
    try:
        first.upload_image(make_image(name="mine", window=1))
        first.push_input("x", A)
        first.run(2)                      # outputs left unpulled
        with ChipLink(emu.where, timeout=1.0, take_over=True) as second:
            assert second.board["image"]["name"] == "mine"
            assert second.pull_outputs() == {}          # not the first host's outputs
            assert second.info()["name"] == "mine"
            with pytest.raises(LinkError):
                first.pull_outputs()      # the first host lost the board (it is held now)
    finally:
        first.close()


def test_shared_secret_handshake(board, tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"correct horse battery staple\n")
    emu = board("--secret-file", str(key))
    with pytest.raises(LinkError, match="requires a shared secret") as ex:
        ChipLink(emu.where, timeout=0.5, retries=1)
    assert ex.value.code == P.E_AUTH
    with pytest.raises(LinkError, match="refused the shared secret"):
        ChipLink(emu.where, timeout=0.5, retries=1, secret=b"wrong")
    with ChipLink(emu.where, timeout=1.0, secret="correct horse battery staple") as link:
        link.upload_image(make_image(name="keyed", window=1))
        assert link.info()["name"] == "keyed"
    assert cli_main(["chip", "info", "--port", emu.where, "--secret-file", str(key)]) == 0


def test_secret_is_refused_for_a_pty(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"k")
    from tianrt.firmware_sim.__main__ import main
    assert main(["--pty", "--secret-file", str(key)]) == 2


def test_hello_proof_is_bound_to_the_challenge_and_nonce():
    a = P.hello_proof(b"s", b"c" * 16, 1)
    assert a != P.hello_proof(b"s", b"d" * 16, 1) and a != P.hello_proof(b"s", b"c" * 16, 2)
    assert P.read_hello_full(P.pack_hello(1, 5, P.HELLO_PROOF | P.HELLO_TAKE_OVER, a)) == (
        1, 5, P.HELLO_PROOF | P.HELLO_TAKE_OVER, a)
    assert P.read_hello(P.pack_hello(1, 5)) == (1, 5)
    with pytest.raises(P.ProtocolError):
        P.read_hello_full(P.pack_hello(1, 5, 0x80))


def test_a_second_host_can_wait_for_the_board(board):
    import threading
    import warnings
    emu = board()
    first = ChipLink(emu.where, timeout=1.0)
    first.upload_image(make_image(name="mine", window=1))
    threading.Timer(0.8, first.close).start()          # the holder leaves after a while
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ChipLink(emu.where, timeout=0.5, retries=1, wait_busy=10) as second:
            assert second.board["image"]["name"] == "mine"
            assert second.pull_outputs() == {}
    assert any("board busy, held by" in str(w.message) and "waiting up to 10 s" in str(w.message)
               for w in caught)
