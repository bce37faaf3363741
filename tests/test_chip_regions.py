"""One chip split into regions over one link (LOAD_REGIONS, REGION; docs/protocol.md 3d):
the payloads round-trip and refuse what breaks them (offsets named), hostile payloads never
crash the board, the board keeps regions apart (an image larger than its rectangle, an
unaddressed command), and a session's runtimes — one per region, over one port — are bit
for bit numba's integer mode, through a board reboot and over a real pty."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr
from tianrt.chip import protocol as P
from tianrt.chip import regionwire as RW
from tianrt.chip.link import LinkWarning
from tianrt.firmware_sim.loopback import BoardPort
from tianrt.firmware_sim.engine import Engine
from tianrt.firmware_sim.server import Server

SPEC = tr.chip.ChipSpec()


def graph(name, n_in, n_out, seed):
    g = tr.Graph(dt=1e-3, name=name)
    x = g.input("x", (n_in,))
    s = g.add(tr.bridge.RateEncoder(), x)
    s = g.add(tr.snn.Dense(n_in, n_out, seed=seed), s)
    s = g.add(tr.snn.LIF(beta=0.9), s)
    g.output("y", s)
    return tr.quantize(g, {"x": np.random.default_rng(seed).random((8, n_in)).astype(np.float32)}, name=name)


@pytest.fixture(scope="module")
def two():
    gs = {"a": graph("a", 8, 5, 1), "b": graph("b", 6, 4, 2)}
    return gs, tr.chip.compile_many(gs, SPEC)


# -- payloads ------------------------------------------------------------------------------------
@st.composite
def layouts(draw):
    """Disjoint rectangles: cut the mesh into columns bands, then rows within a band."""
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 13))
    out, c = [], 0
    while c < cols and len(out) < 20:
        w = draw(st.integers(1, cols - c))
        r = 0
        while r < rows and len(out) < 20:
            h = draw(st.integers(1, rows - r))
            if draw(st.booleans()):
                out.append((draw(st.text(min_size=1, max_size=12).filter(lambda s: len(s.encode()) < 256)), r, c, h, w))
            r += h
        c += w
    names = [o[0] for o in out]
    if not out or len(set(names)) != len(names):
        out = [("only", 0, 0, rows, cols)]
    return (rows, cols), out


@settings(max_examples=60, deadline=None)
@given(layouts())
def test_layout_round_trips(case):
    mesh, regions = case
    assert RW.read_layout(RW.pack_layout(regions), mesh) == regions


@settings(max_examples=60, deadline=None)
@given(layouts(), st.data())
def test_a_cut_layout_is_refused_with_its_offset(case, data):
    mesh, regions = case
    blob = RW.pack_layout(regions)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(P.ProtocolError) as e:
        RW.read_layout(blob[:cut], mesh)
    assert e.value.code == P.E_BAD_PAYLOAD and "byte" in e.value.message
    with pytest.raises(P.ProtocolError, match="trailing"):
        RW.read_layout(blob + b"\x01", mesh)


def test_layout_refusals():
    ok = [("a", 0, 0, 2, 2), ("b", 2, 0, 1, 3)]
    assert RW.read_layout(RW.pack_layout(ok), (3, 3)) == ok
    cases = [([("a", 0, 0, 2, 2), ("b", 1, 1, 2, 2)], P.E_BAD_PAYLOAD, "both hold core (1,1)"),
             ([("a", 0, 0, 2, 2), ("a", 2, 0, 1, 1)], P.E_BAD_PAYLOAD, "appears twice"),
             ([("a", 2, 2, 2, 1)], P.E_CAPACITY, "inside this chip's 3x3 mesh"),
             ([("a", 0, 0, 0, 1)], P.E_CAPACITY, "inside")]
    for regions, code, msg in cases:
        with pytest.raises(P.ProtocolError) as e:
            RW.read_layout(RW.pack_layout(regions), (3, 3))
        assert e.value.code == code and msg in e.value.message, e.value.message
    with pytest.raises(P.ProtocolError, match="0 regions"):
        RW.read_layout(b"\x00\x00", (3, 3))
    with pytest.raises(P.ProtocolError, match="1..64"):
        RW.pack_layout([])


def test_call_round_trips_and_refusals():
    for cmd in P.REGION_COMMANDS:
        assert RW.read_call(RW.pack_call(3, cmd, b"\x00xyz"), 4) == (3, cmd, b"\x00xyz")
    for cmd in (P.HELLO, P.REGION, P.LOAD_REGIONS, P.UPLOAD_BEGIN, P.FETCH, P.ABORT, P.REBOOT, 0x7E):
        with pytest.raises(P.ProtocolError, match="cannot be addressed to a region"):
            RW.pack_call(0, cmd)
        with pytest.raises(P.ProtocolError, match="cannot be addressed"):
            RW.read_call(bytes([0, cmd]), 1)
    with pytest.raises(P.ProtocolError, match="region 4, the layout has 4"):
        RW.read_call(bytes([4, P.RUN]), 4)
    for cut in (b"", b"\x00"):
        with pytest.raises(P.ProtocolError, match="needs 2 bytes"):
            RW.read_call(cut, 4)


# -- the board -----------------------------------------------------------------------------------
def board():
    srv = Server(lambda: Engine(SPEC.to_dict()))
    assert srv.execute(P.Frame(P.REQUEST, P.HELLO, 1, P.pack_hello(P.PROTOCOL_VERSION, 9)))[0] == P.ACK
    return srv


def call(srv, cmd, payload=b""):
    kind, out = srv.execute(P.Frame(P.REQUEST, cmd, 2, payload))
    return (kind, P.read_nak(out) if kind == P.NAK else out)


def region(srv, index, cmd, payload=b""):
    return call(srv, P.REGION, RW.pack_call(index, cmd, payload))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([P.LOAD_REGIONS, P.REGION]), st.binary(max_size=80))
def test_hostile_region_payloads_never_crash_the_board(cmd, blob):
    srv = board()
    call(srv, P.LOAD_REGIONS, RW.pack_layout([("a", 0, 0, 1, 1), ("b", 0, 1, 2, 3)]))
    kind, out = call(srv, cmd, blob)
    if kind == P.NAK:
        assert out[0] != P.E_INTERNAL and out[0] in P.ERROR_NAMES, out
    assert call(srv, P.INFO)[0] == P.ACK


def test_board_keeps_regions_apart(two):
    gs, part = two
    srv = board()
    code, msg = call(srv, P.REGION, RW.pack_call(0, P.INFO))[1]
    assert code == P.E_NO_IMAGE and "LOAD_REGIONS first" in msg
    assert call(srv, P.LOAD_IMAGE, tr.chip.compile(gs["a"], SPEC)[0])[0] == P.ACK
    bad = RW.pack_layout([("a", 0, 0, 2, 1), ("b", 1, 0, 2, 1)])
    code, msg = call(srv, P.LOAD_REGIONS, bad)[1]
    assert code == P.E_BAD_PAYLOAD and "both hold core (1,0)" in msg
    assert P.read_json(call(srv, P.INFO)[1], "i")["name"] == "a"     # a refused layout changes nothing
    small = RW.pack_layout([("a", 0, 0, 1, 1), ("b", 5, 5, 2, 1)])
    assert call(srv, P.LOAD_REGIONS, small)[0] == P.ACK
    code, msg = region(srv, 0, P.LOAD_IMAGE, part.region("a").image)[1]   # compiled for 2x1
    assert code == P.E_CAPACITY and "larger than this chip's 1x1" in msg
    assert region(srv, 1, P.LOAD_IMAGE, part.region("b").image)[0] == P.ACK
    code, msg = call(srv, P.RUN, P.pack_run(1))[1]
    assert code == P.E_NO_IMAGE and "split into regions (a, b)" in msg
    code, _ = region(srv, 0, P.RUN, P.pack_run(1))[1]
    assert code == P.E_NO_IMAGE                          # region a has no image: b is untouched
    assert region(srv, 1, P.STEP, P.pack_step({"x_quant": np.ones(6, np.int32)}, 5))[0] == P.ACK
    assert P.read_json(region(srv, 1, P.INFO)[1], "i")["tick"] == 5
    c = P.read_json(call(srv, P.COUNTERS)[1], "c")
    assert c["regions"] == 2 and c["ticks"] == 5 and c["cores_used"] == 2
    assert call(srv, P.LOAD_IMAGE, tr.chip.compile(gs["a"], SPEC)[0])[0] == P.ACK   # whole chip again
    assert region(srv, 1, P.INFO)[1][0] == P.E_NO_IMAGE


# -- a session: one port, one runtime per region ---------------------------------------------------
def drive(rts, nb, gs, ticks, seed):
    rng = np.random.default_rng(seed)
    for t in range(ticks):
        for k, g in gs.items():
            x = {"x": rng.random(g.inputs["x"].shape).astype(np.float32)} if t % 3 == 0 else {}
            a, b = rts[k].step(x), nb[k].step(x)
            assert a.keys() == b.keys()
            for o in a:
                np.testing.assert_array_equal(a[o], b[o])


def test_session_regions_run_bit_exact_and_survive_a_reboot(two):
    gs, part = two
    port = BoardPort(SPEC.to_dict())
    with tr.chip.open_many(part, port=port) as chip:
        rts = {k: tr.Runtime(g, backend="chip", session=chip, region=k) for k, g in gs.items()}
        nb = {k: tr.Runtime(g, backend="numba") for k, g in gs.items()}
        drive(rts, nb, gs, 12, 0)
        sent = chip.link.stats["frames_sent"]
        drive(rts, nb, gs, 3, 1)
        assert chip.link.stats["frames_sent"] - sent == 6           # one REGION frame per step
        port.reboot()                                               # the board loses everything
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            drive(rts, nb, gs, 12, 2)
        assert any(issubclass(x.category, LinkWarning) and "reconnected" in str(x.message) for x in w)
        assert chip.link.stats["replayed"] > 0 and chip.counters()["regions"] == 2
        rts["a"].reset(), nb["a"].reset()
        drive({"a": rts["a"]}, {"a": nb["a"]}, {"a": gs["a"]}, 5, 3)   # reset one region only
        drive(rts, nb, gs, 4, 4)


def test_session_refusals(two):
    gs, part = two
    with tr.chip.open_many(part, port=BoardPort(SPEC.to_dict())) as chip:
        rt = tr.Runtime(gs["a"], backend="chip", session=chip, region="a")
        with pytest.raises(tr.chip.LinkError, match="already attached"):
            tr.Runtime(gs["a"], backend="chip", session=chip, region="a")
        with pytest.raises(tr.BackendError, match="region 'b' holds graph 'b'"):
            tr.Runtime(gs["a"], backend="chip", session=chip, region="b")
        with pytest.raises(tr.BackendError, match="no region 'c'"):
            tr.Runtime(gs["a"], backend="chip", session=chip, region="c")
        with pytest.raises(tr.BackendError, match="no port, spec, seed or link options"):
            tr.Runtime(gs["b"], backend="chip", session=chip, region="b", port="inproc")
        with pytest.raises(tr.BackendError, match="go together"):
            tr.Runtime(gs["b"], backend="chip", region="b")
        rt.close()
        tr.Runtime(gs["a"], backend="chip", session=chip, region="a").close()   # free again
    with pytest.raises(tr.chip.LinkError, match="session is closed"):
        chip.attach("a")
    with pytest.raises(tr.chip.LinkError, match="BoardPort"):
        tr.chip.open_many(part, port="inproc")


def test_session_over_a_pty(two):
    gs, part = two
    with tr.chip.open_many(part, port="auto") as chip:
        assert chip.where.startswith("/dev/")
        rts = {k: tr.Runtime(g, backend="chip", session=chip, region=k) for k, g in gs.items()}
        nb = {k: tr.Runtime(g, backend="numba") for k, g in gs.items()}
        drive(rts, nb, gs, 10, 5)
        c = chip.counters()
        assert c["regions"] == 2 and c["cores_used"] == part.cores_used


def test_a_region_step_the_host_gave_up_on_is_resynchronised_in_that_region_only(two):
    """The reply to one REGION STEP is held back longer than the host waits: the user's retry
    finds the region ahead, the region alone is reloaded and replayed, outputs do not shift."""
    import time

    from link_fault_board import FaultBoard

    gs, part = two
    seen = {"n": 0}

    def stall(n, block):
        f = P.decode_frame(block)
        if f.cmd == P.REGION and f.kind == P.ACK:
            seen["n"] += 1
            if seen["n"] == 20:
                time.sleep(0.6)
        return b"\x00" + block + b"\x00"

    board = FaultBoard(to_host=stall, engine_factory=lambda: Engine(SPEC.to_dict()))
    try:
        with tr.chip.open_many(part, port=board.url, timeout=0.1, retries=1) as chip:
            rts = {k: tr.Runtime(g, backend="chip", session=chip, region=k) for k, g in gs.items()}
            nb = {k: tr.Runtime(g, backend="numba") for k, g in gs.items()}
            rng = np.random.default_rng(7)
            failures = 0
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for t in range(20):
                    for k, g in gs.items():
                        x = {"x": rng.random(g.inputs["x"].shape).astype(np.float32)}
                        while True:
                            try:
                                a = rts[k].step(x)
                                break
                            except tr.chip.LinkError:
                                failures += 1
                                time.sleep(0.7)   # the board finishes the STEP the host gave up on
                        b = nb[k].step(x)
                        for o in b:
                            np.testing.assert_array_equal(a[o], b[o])
            assert failures == 1 and chip.link.stats["resyncs"] == 1
            assert any("resynchronised" in str(w.message) for w in caught)
            assert [rts[k].tick for k in gs] == [20, 20]
    finally:
        board.close()
