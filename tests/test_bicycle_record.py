"""tianrt demo bicycle --record: the ride as MCAP, read back with the mcap library's own
reader: the scheduler's samples and outputs plus the ride's camera, torque and true state."""
from collections import Counter

import pytest

from tianrt.demos.bicycle.cli import main

mcap_reader = pytest.importorskip("mcap.reader")


def test_a_ride_records_to_mcap(tmp_path):
    path = tmp_path / "ride.mcap"
    assert main(["--kind", "demo", "--duration", "2", "--no-video", "--no-teacher", "--camera-hz", "10",
                 "--out", str(tmp_path), "--record", str(path)]) == 0
    with open(path, "rb") as f:
        topics = Counter(ch.topic for _, ch, _ in mcap_reader.make_reader(f).iter_messages())
    assert topics["/bicycle/steer_torque"] == topics["/output/torque"] == 200  # 100 Hz for 2 s
    assert topics["/bicycle/true_state"] == 200 and topics["/bicycle/camera"] == 20


def test_record_is_refused_where_no_network_rides_through_the_scheduler(tmp_path, capsys):
    assert main(["--controller", "lqr", "--record", str(tmp_path / "r.mcap"), "--out", str(tmp_path)]) == 2
    assert "--record" in capsys.readouterr().err
    assert main(["--record", str(tmp_path / "no" / "r.mcap"), "--out", str(tmp_path)]) == 2
