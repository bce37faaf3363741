"""Random command sequences over a link that drops, repeats, damages, truncates and pads
frames in both directions, with firmware resets at random points: every output equals a
fault-free run of the same commands, none is lost or delivered twice, and (without resets)
every command executed exactly once."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tianrt.chip.link import ChipLink

from link_engine_double import FakeEngine, make_image
from link_fault_board import FaultBoard

IMAGE = make_image(name="chaos", shape=(4,), gain=3, window=3, pad=20000)


def mangle(rng, rate):
    def hook(n, block):
        wire = b"\x00" + block + b"\x00"
        r = rng.random()
        if r >= rate:
            return wire
        kind = rng.integers(5)
        if kind == 0:
            return b""                                                     # dropped
        if kind == 1:
            return wire * 2                                                # repeated
        if kind == 2:                                                      # bit flip
            b = bytearray(block)
            b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
            return b"\x00" + bytes(b).replace(b"\x00", b"\x02") + b"\x00"
        if kind == 3:                                                      # truncated
            return b"\x00" + block[:int(rng.integers(1, len(block)))] + b"\x00"
        return rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes() + wire
    return hook


def collect(into, outs):
    for k, (t, v) in outs.items():
        into.setdefault(k, []).extend(zip(t.tolist(), v.tolist()))


@pytest.mark.filterwarnings("ignore::tianrt.chip.link.LinkWarning")   # resets are the point
@settings(derandomize=True, deadline=None, max_examples=8)
@given(seed=st.integers(0, 2 ** 31 - 1),
       ops=st.lists(st.sampled_from(["push", "run", "pull", "step", "reset", "reboot"]),
                    min_size=6, max_size=14))
def test_random_commands_over_a_faulty_link(seed, ops):
    rng = np.random.default_rng(seed)
    board = FaultBoard(to_board=mangle(np.random.default_rng(seed + 1), 0.15),
                       to_host=mangle(np.random.default_rng(seed + 2), 0.15))
    ref = FakeEngine()
    ref.load_image(IMAGE)
    want, got = {}, {}
    rebooted = False
    try:
        with ChipLink(board.url, timeout=0.05, retries=10) as link:
            link.upload_image(IMAGE)
            for op in ops:
                x = rng.integers(-50, 50, 4).astype(np.int32)
                k = int(rng.integers(1, 7))
                if op == "push":
                    ref.push_input("x", x)
                    link.push_input("x", x)
                elif op == "run":
                    ref.run(k)
                    link.run(k)
                elif op == "pull":
                    collect(want, ref.pull_outputs())
                    collect(got, link.pull_outputs())
                elif op == "step":
                    ref.push_input("x", x)
                    ref.run(k)
                    collect(want, ref.pull_outputs())
                    collect(got, link.step({"x": x}, k))
                elif op == "reset":
                    collect(want, ref.pull_outputs())
                    collect(got, link.pull_outputs())
                    ref.reset()
                    link.reset()
                else:
                    board.reboot()
                    rebooted = True
            collect(want, ref.pull_outputs())
            collect(got, link.pull_outputs())
            rounds = link.counters()["rounds"]
            faults = link.stats["retransmits"] + link.stats["bad_frames"]
    finally:
        board.close()
    assert got == want
    assert faults > 0
    if not rebooted:
        assert rounds == ref.counters()["rounds"]
