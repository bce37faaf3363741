"""The link with the emulator's real engine in a separate process (port="auto", a pty):
a compiled hybrid graph gives the same outputs over the link as the engine in process,
through a firmware reset mid-stream (reload + replay) and a refused corrupted image."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.chip import protocol as P
from tianrt.chip.link import ChipLink, LinkError, LinkWarning
from tianrt.firmware_sim.engine import Engine


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(3)
    g = tr.Graph(dt=1e-3, name="link-hybrid")
    x = g.input("x", shape=(12,))
    h = g.add(tr.ann.ReLU(), g.add(tr.ann.Dense(12, 20), x))
    s = g.add(tr.bridge.RateEncoder(), h)
    s = g.add(tr.snn.LIF(beta=0.9, threshold=0.5), g.add(tr.snn.Dense(20, 6), s))
    g.output("y", g.add(tr.bridge.SpikeCount(window=4), s))
    q = tr.quantize(g, calibration={"x": rng.random((32, 12)).astype(np.float32)})
    img, _report = tr.chip.compile(q, tr.chip.ChipSpec())
    return img


def drive(dev, name, xs):
    """Push xs[t] and run one tick for each t, pulling every 3 ticks; all outputs in order."""
    got = []
    for t, x in enumerate(xs):
        dev.push_input(name, x)
        dev.run(1)
        if t % 3 == 2:
            got.append(dev.pull_outputs())
    got.append(dev.pull_outputs())
    return got


def flat(pulls):
    ticks = [t for p in pulls if "y" in p for t in p["y"][0].tolist()]
    vals = [v for p in pulls if "y" in p for v in p["y"][1]]
    return ticks, np.array(vals)


def test_real_engine_over_a_pty(image):
    rng = np.random.default_rng(4)
    xs = rng.integers(-128, 128, (24, 2, 12)).astype(np.int32)
    local = Engine()
    name = local.load_image(image)["inputs"][0]["name"]
    want = flat(drive(local, name, xs))
    assert len(want[0]) == 6 and want[1].any()

    with ChipLink("auto", timeout=2.0) as link:
        info = link.upload_image(image)
        static = lambda d: {k: v for k, v in d.items() if k not in ("tick", "batch", "held_values")}  # noqa: E731
        assert static(info) == static(local.info()) and info["tick"] == 0
        got = flat(drive(link, name, xs))
        assert got[0] == want[0] and np.array_equal(got[1], want[1])

        # the same again with a firmware reset after tick 10: reload, replay, nothing lost
        link.reset()
        pulls = drive(link, name, xs[:10])
        link.reboot()
        with pytest.warns(LinkWarning, match="reloaded the image"):
            pulls += drive(link, name, xs[10:])
        got = flat(pulls)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])

        # STEP gives the same as push + run + pull
        link.reset()
        steps = [link.step({name: x}, 1) for x in xs]
        got = flat(steps)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])

        # a corrupted image is refused whole; the loaded one keeps its state and runs on
        link.reset()
        link.reset_counters()
        for x in xs[:2]:
            link.push_input(name, x)
            link.run(1)
        bad = bytearray(image)
        bad[len(bad) // 2] ^= 0x20
        with pytest.raises(LinkError) as e:
            link.upload_image(bytes(bad))
        assert e.value.code == P.E_BAD_IMAGE
        for x in xs[2:4]:
            link.push_input(name, x)
            link.run(1)
        ticks, vals = link.pull_outputs()["y"]
        assert ticks.tolist() == want[0][:1] and np.array_equal(vals[0], want[1][0])
        c = link.counters()
        assert c["ticks"] == 4 and c["link_boots"] == 2
