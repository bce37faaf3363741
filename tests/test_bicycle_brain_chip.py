"""The bicycle's whole brain on one chip (demos/bicycle/brain_chip.py): all five networks
quantised and compiled together onto the 156-core preset (and the 22 KiB-per-core one), a
row per network, the regions that run bit-exact to numba's integer mode, and the refusal
with the shortfall on a chip that is too small."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.demos.bicycle import brain_chip, nsm


@pytest.fixture(scope="module")
def nets():
    return brain_chip.networks()


@pytest.mark.parametrize("preset", ["default", "tianjic-sram"])
def test_whole_brain_fits_one_156_core_chip(nets, preset):
    spec = tr.chip.ChipSpec.preset(preset)
    assert spec.n_cores == 156
    res = brain_chip.brain_on_chip(spec, nets=nets)
    rows, part = res["networks"], res["partition"]
    assert set(rows) == set(brain_chip.KINDS)
    used = np.zeros((12, 13), int)
    for r in part.regions:
        used[r.row:r.row + r.rows, r.col:r.col + r.cols] += 1
        alone = tr.chip.compile(nets[r.name][0], spec)[1]
        assert rows[r.name]["cores"] == alone.cores_used == r.report.cores_used
        assert r.report.weight_util <= 1.0
    assert used.max() == 1
    assert res["total"]["cores"] == sum(x["cores"] for x in rows.values()) <= 156
    assert rows["vision"]["cores"] > 90 and rows["nsm"]["cores"] == 1
    # per control step: 16 ticks of the balance SNN, 10 of the NSM, one CNN frame at most
    assert rows["balance"]["ticks_per_step"] == 16 and rows["nsm"]["ticks_per_step"] == 10
    assert rows["cann"]["ticks_per_step"] == 6 and rows["voice"]["ticks_per_step"] == 1
    b = rows["balance"]
    assert b["cycles_per_step"] == pytest.approx(16 * b["cycles_per_tick"])
    assert res["total"]["step_latency_us"] == max(x["latency_us_per_step"] for x in rows.values())
    assert res["total"]["step_latency_us"] < 10_000        # well inside a 10 ms control period
    assert "whole brain" in brain_chip.markdown(res)


def test_regions_of_balance_and_nsm_run_bit_exact(nets):
    part = brain_chip.brain_on_chip(tr.chip.ChipSpec(), nets=nets)["partition"]
    rng = np.random.default_rng(0)
    for name in ("balance", "nsm"):
        g, tps = nets[name][0], nets[name][1]
        r = part.region(name)
        sub = tr.chip.ChipSpec.from_dict({**tr.chip.ChipSpec().to_dict(), "mesh_rows": r.rows, "mesh_cols": r.cols})
        assert tr.chip.compile(g, sub)[0] == r.image
        chip = tr.Runtime(g, backend="chip", port="inproc", spec=sub)
        nb = tr.Runtime(g, backend="numba")
        if name == "balance":
            for _ in range(4):   # four control steps: a reading, then T - 1 ticks
                obs = {"obs": (rng.normal(0, 0.1, 6) + [0, 0, 0, 0, 5, 0]).astype(np.float32)}
                a, b = chip.step(obs), nb.step(obs)
                for _ in range(tps - 1):
                    a, b = chip.step(), nb.step()
                np.testing.assert_array_equal(a["torque"], b["torque"])
        else:
            ev = nsm.events_array(400, [("go", 0.02, 0.1), ("person", 0.2, 0.1)])
            a, b = chip.run({"events": ev}), nb.run({"events": ev})
            np.testing.assert_array_equal(a["nsm"], b["nsm"])
            assert nsm.sequence(nsm.decode(a["nsm"])["state"])[-1] == "follow"


def test_voice_region_is_the_real_integer_voice_snn_and_runs_bit_exact(nets):
    """The voice SNN on the chip is tr.quantize's integer graph of the shipped model (its
    current-fed recurrent layer rescales the feed-forward product), not a twin: its region's
    image runs a shipped clip bit for bit as the numba integer mode, and decides like float."""
    from tianrt.demos import voice
    from tianrt.demos.voice import integer
    from tianrt.demos.voice.model import decide

    g, tps = nets["voice"][0], nets["voice"][1]
    syn = next(e.node for e in g.entries.values() if e.node.op == "q.SynRecurrent")
    assert syn.rescaled and g.inputs["x"].domain == "tensor"
    part = brain_chip.brain_on_chip(tr.chip.ChipSpec(), which=("voice", "nsm"),
                                    nets={k: nets[k] for k in ("voice", "nsm")})["partition"]
    r = part.region("voice")
    sub = tr.chip.ChipSpec.from_dict({**tr.chip.ChipSpec().to_dict(), "mesh_rows": r.rows, "mesh_cols": r.cols})
    assert tr.chip.compile(g, sub)[0] == r.image
    frames = integer.clip_frames(g)[:100][:, None]          # 1 s of a shipped clip, one tick per frame
    a = tr.Runtime(g, backend="chip", port="inproc", spec=sub).run({"x": frames})
    b = tr.Runtime(g, backend="numba").run({"x": frames})
    np.testing.assert_array_equal(a["y"], b["y"])
    f = tr.Runtime(tr.load(str(voice.SHIPPED))).run({"x": frames})["y"]
    assert decide(a["y"])[0] == decide(f)[0]


def test_cli_says_by_how_much_a_small_chip_is_short(capsys):
    assert brain_chip.main(["--mesh", "10x11", "--networks", "vision,balance,nsm,voice,cann"]) == 1
    out = capsys.readouterr().out
    assert "does not fit" in out and "110" in out and "too many" in out
    assert brain_chip.main(["--mesh", "8x12", "--networks", "vision"]) == 1
    assert "graph 'vision' alone does not fit" in capsys.readouterr().out
