"""The compiler: errors that name the node/layer, tiling (fan-in merge, fan-out, conv with
weight reuse), converter cores, placement against random, the report and the CLI."""
import json

import numpy as np
import pytest

import tianrt as tr
from tianrt import q
from tianrt.chip import CapacityError, ChipSpec, CompileError
from tianrt.chip.image_format import unpack
from tianrt.cli import main

from chip_graphs import SMALL, mlp


def hybrid(n_in=600, h=300):
    rng = np.random.default_rng(0)
    g = tr.Graph(name="hyb")
    x = g.input("x", (n_in,))
    a = g.add(q.Quantize(0.1), x)
    a = g.add(q.Dense(n_in, h, weight=rng.integers(-127, 128, (h, n_in)), multiplier=20000, shift=18), a)
    s = g.add(q.RateEncoder(full_scale=100), a, name="enc")
    i = g.add(q.SynDense(h, 40, weight=rng.integers(-127, 128, (40, h))), s)
    s = g.add(q.LIF(threshold=300), i)
    c = g.add(tr.bridge.SpikeCount(window=8), s)
    g.output("y", g.add(q.Dequantize(0.5), c))
    return g


def cores(image):
    return unpack(image).meta["cores"]


def test_fan_in_and_fan_out_splits_merge_cores_and_converters():
    image, report = tr.chip.compile(hybrid())
    cs = cores(image)
    dense = [c for c in cs if c["layer"] == "qdense1"]
    # 600 inputs = 3 fan-in blocks of 200 axons, 300 neurons = 2 fan-out blocks; merges take 85 neurons
    assert sum(c["role"] == "partial" for c in dense) == 6
    assert sum(c["role"] == "merge" for c in dense) == 4
    assert all(c["n_axons"] <= 256 and c["n_neurons"] <= 256 for c in cs)
    merge = next(c for c in dense if c["role"] == "merge")
    assert merge["dendrite"] == {"kind": "merge", "groups": 3}
    # the requantisation and the rate encoder sit on the merge cores: ANN axon, SNN soma
    assert [s["op"] for s in merge["stages"]] == ["bias", "requant", "rate"]
    assert (merge["axon_mode"], merge["soma_mode"]) == ("ann", "snn")
    dec = next(c for c in cs if c["layer"] == "qsyn1" and c["role"] != "partial")
    assert (dec["axon_mode"], dec["soma_mode"]) == ("snn", "ann")  # LIF + SpikeCount fused: decoder
    row = next(r for r in report.layers if r.layer == "qdense1")
    assert (row.cores, row.partial_cores, row.merge_cores, row.modes) == (10, 6, 4, "ann->snn")
    assert row.fused == ["enc"]
    text = str(report)
    assert "qdense1" in text and "6+4m" in text and "better than random" in text


def test_conv_tiles_store_the_kernel_once():
    rng = np.random.default_rng(1)
    g = tr.Graph(name="conv")
    x = g.input("x", (3, 20, 20))
    a = g.add(q.Quantize(0.1), x)
    a = g.add(q.Conv2d(3, 8, 3, padding=1, weight=rng.integers(-127, 128, (8, 3, 3, 3))), a)
    g.output("y", a)
    image, report = tr.chip.compile(g)
    cs = cores(image)
    assert all(c["dendrite"]["kind"] == "conv" for c in cs)
    # each tile keeps (out channels x in channels x 3 x 3) weights, not its unrolled crossbar
    assert all(c["weight_bytes"] <= 8 * 3 * 9 for c in cs)
    assert sum(c["n_neurons"] for c in cs) == 8 * 20 * 20
    assert report.layers[0].cores == len(cs)


def test_float_node_is_refused_by_name():
    g = tr.Graph(name="f")
    x = g.input("x", (4,))
    g.output("y", g.add(tr.ann.Dense(4, 2), x, name="fc"))
    with pytest.raises(CompileError, match=r"`fc` \(ann.Dense\).*tr.quantize"):
        tr.chip.compile(g)


def test_graph_that_does_not_fit_names_layer_and_core_counts():
    spec = ChipSpec(mesh_rows=2, mesh_cols=3)
    with pytest.raises(CapacityError, match=r"layer `qdense1` \(q.Dense\) needs 10 core\(s\) but only 6 "
                                            r"of the 6 cores of a 2x3 mesh are free"):
        tr.chip.compile(hybrid(), spec)
    with pytest.raises(CapacityError, match=r"layer `qsyn1`.*needs 1 core\(s\) but only 0"):
        tr.chip.compile(hybrid(600, 200), ChipSpec(mesh_rows=2, mesh_cols=3))


def test_placement_beats_random_and_report_fields():
    g, _ = mlp(np.random.default_rng(3))
    image, r = tr.chip.compile(g, ChipSpec(**SMALL))
    assert r.placement_cost <= r.greedy_cost and r.placement_cost < r.random_cost
    assert r.placement_gain > 1.5
    assert r.cores_used == len(cores(image)) and r.image_bytes == len(image)
    assert r.rounds_per_tick >= 3 and r.hops_per_tick > 0 and r.worst_link_packets > 0
    assert r.cycles_per_tick > 0 and r.energy_per_tick_nj > 0 and r.latency_per_inference_us > 0
    d = r.to_dict()
    assert json.loads(json.dumps(d))["placement_gain"] == pytest.approx(r.placement_gain)


def test_compile_command_writes_image_and_prints_report(tmp_path, capsys):
    g, _ = mlp(np.random.default_rng(4))
    tr.save(g, tmp_path / "m.tnr")
    assert main(["compile", str(tmp_path / "m.tnr"), "-o", str(tmp_path / "m.img"), "--mesh", "14x14",
                 "--set", "axons_per_core=24", "--set", "neurons_per_core=16",
                 "--set", "weight_bytes_per_core=384", "--report", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "mapping of 'mlp' onto a 14x14 mesh" in out and "better than random" in out
    data = (tmp_path / "m.img").read_bytes()
    assert unpack(data).meta["spec"]["axons_per_core"] == 24
    assert json.loads((tmp_path / "r.json").read_text())["cores_used"] == len(unpack(data).meta["cores"])
    assert main(["compile", str(tmp_path / "m.tnr"), "-o", str(tmp_path / "x.img"), "--mesh", "2x1"]) == 1
    assert "needs" in capsys.readouterr().err


def test_chipspec_defaults_are_the_emulators_and_validated():
    from tianrt.firmware_sim.engine import Engine
    assert Engine().spec == ChipSpec().to_dict()
    with pytest.raises(tr.chip.SpecError, match="macs_per_cycle"):  # the emulator checks as the compiler does
        Engine({"macs_per_cycle": 0})
    assert ChipSpec().n_cores == 156
    with pytest.raises(tr.chip.SpecError, match="axons_per_core"):
        ChipSpec(axons_per_core=0)
    with pytest.raises(tr.chip.SpecError, match="12x13"):
        ChipSpec().with_mesh("twelve")
    assert ChipSpec().with_mesh("4x5").n_cores == 20


def test_random_templates_cover_every_core_kind():
    """The random graphs of the bit-exact tests exercise every dendrite kind, fan-in splits
    of crossbars and convolutions (with 64-bit partial sums), converter cores and delays."""
    from chip_graphs import TEMPLATES
    seen = set()
    for seed in range(12):
        for make in TEMPLATES.values():
            g, _ = make(np.random.default_rng(seed))
            meta = unpack(tr.chip.compile(g, ChipSpec(**SMALL))[0]).meta
            for c in meta["cores"]:
                seen.add(c["dendrite"]["kind"])
                seen.add((c["role"], c["dendrite"]["kind"]))
                seen.add((c["axon_mode"], c["soma_mode"]))
                seen.update(s["op"] for s in c["stages"])
                if c["wide_out"]:
                    seen.add("wide")
            if meta["delays"]:
                seen.add("delay")
    want = {"mac", "conv", "sumpool", "maxpool", "add", "merge", "pass", ("partial", "mac"),
            ("partial", "conv"), ("merge", "merge"), "wide", ("ann", "snn"), ("snn", "ann"), "delay",
            "bias", "requant", "clamp", "lookup", "lif", "li", "rate", "latency", "direct", "membrane",
            "spikecount", "firstspike"}
    assert want <= seen, want - seen
