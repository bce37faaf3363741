"""The whole brain in the closed loop on one chip (demos/bicycle/chip_ride.py): the balance SNN,
the state machine, the CNN, the CANN and the voice SNN in their regions of one 156-core chip, every step a
REGION frame on one link (here the in-process board: the whole protocol without the pty),
ride 2 s of follow seed 2 with a spoken "go" bit for bit as numba's integer mode does: every
output of every network, the torques, the state sequence."""
import numpy as np
import pytest

from tianrt.demos.bicycle import brain_chip, chip_ride
from tianrt.firmware_sim.loopback import BoardPort


@pytest.fixture(scope="module")
def parts():
    return chip_ride.nets_and_partition(brain_chip.networks(chip_ride.ON_CHIP))


def test_brain_on_one_chip_rides_bit_exact_to_numba_integer(parts):
    chip_nets, host_nets, part = parts
    assert set(chip_nets) == {"balance", "nsm", "vision", "cann", "voice"} and not host_nets
    assert [r.name for r in part.regions] == list(chip_nets) and part.cores_used <= 156
    res = chip_ride.check(2, parts, duration=2.0, port=BoardPort(part.spec.to_dict()))
    outs = res["outputs"]
    assert res["bit_exact"] and res["torques_identical"] and res["nsm_states_identical"], outs
    assert all(o["identical"] for o in outs.values())
    # every network delivered at its rate: 100 torques, ~1000 NSM ticks, 30 frames per second
    assert outs["balance.torque"]["values"] == 200 and outs["vision.y"]["values"] == 60
    assert abs(outs["voice.y"]["values"] - 200) <= 1
    assert abs(outs["nsm.nsm"]["values"] - 2000) <= 2 and abs(outs["cann.spikes"]["values"] - 1200) <= 2
    assert res["nsm_states"] == ["idle", "ride", "follow"] and [w for _, w in res["heard"]] == ["go"]
    assert res["control_steps"] == 200 and not res["fell"] and res["collisions"] == 0
    # one REGION frame per network tick: 16 balance + 10 NSM + 10 CNN + 6 CANN + 1 voice per control step
    assert res["chip_frames"] >= 200 * 43 and res["chip_energy_uj"] > 0


def test_compare_catches_any_difference():
    """The comparison is not vacuous: a value, a tick or a missing value makes an output differ."""
    a = {"x.y": [(0, np.array([1, 2])), (24, np.array([3, 4]))], "z.w": [(0, np.zeros(2))]}
    assert all(v["identical"] for v in chip_ride.compare(a, a).values())
    for b in ({"x.y": [(0, np.array([1, 2])), (24, np.array([3, 5]))]},
              {"x.y": [(0, np.array([1, 2])), (48, np.array([3, 4]))]},
              {"x.y": [(0, np.array([1, 2]))]},
              {"x.y": [(0, np.array([1, 2])), (24, np.array([[3, 4]]))]}):
        cmp = chip_ride.compare(a, {**a, **b})
        assert not cmp["x.y"]["identical"] and cmp["z.w"]["identical"]
    assert not chip_ride.compare(a, {"x.y": a["x.y"]})["z.w"]["identical"]


def test_a_graph_that_is_not_what_the_brain_feeds_cannot_ride(parts):
    """A region's graph must take what the brain's glue feeds that network (here the CANN's
    graph offered as the voice network)."""
    chip_nets = parts[0]
    with pytest.raises(ValueError, match="'voice' on the chip .* cannot ride"):
        chip_ride.nets_and_partition({"balance": chip_nets["balance"], "voice": chip_nets["cann"]},
                                     on_chip=("balance", "voice"))


def test_ride_cli_refuses_a_too_short_ride(capsys):
    with pytest.raises(SystemExit):
        brain_chip.main(["--ride", "--duration", "1"])
    assert "at least 2 s" in capsys.readouterr().err
