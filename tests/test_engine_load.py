"""firmware_sim's Engine: atomic image loading, refusals with protocol error codes, input
checks, output pulls and counters (tested directly, without the serial link)."""
import copy

import numpy as np
import pytest

import tianrt as tr
from tianrt.chip import ChipSpec, protocol as P
from tianrt.chip.image_format import pack, unpack
from tianrt.firmware_sim.engine import Engine, EngineError

from chip_graphs import SMALL, mlp, spike_input

SPEC = ChipSpec(**SMALL)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    g1, _ = mlp(rng)
    g2, _ = spike_input(rng)
    return (g1, tr.chip.compile(g1, SPEC)[0]), (g2, tr.chip.compile(g2, SPEC)[0])


def engine():
    return Engine({"mesh_rows": 14, "mesh_cols": 14})


def code(fn, *args):
    with pytest.raises(EngineError) as e:
        fn(*args)
    return e.value.code


def test_info_inputs_outputs(images):
    (g, img), _ = images
    e = engine()
    assert e.info() == {}
    info = e.load_image(img)
    meta = unpack(img).meta
    assert info["name"] == "mlp" and info["cores_used"] == len(meta["cores"])
    assert [i["name"] for i in info["inputs"]] == ["quant1"]
    assert {o["name"] for o in info["outputs"]} == set(g.outputs)
    assert all(o["dtype"] == "int32" for o in info["outputs"])


def test_refused_image_keeps_the_old_one_running(images):
    (g, img), (g2, img2) = images
    e = engine()
    e.load_image(img)
    n = g.entries["quant1"].shape[0]
    x = np.arange(n, dtype=np.int32) % 50
    e.push_input("quant1", x)
    e.run(6)
    first = e.pull_outputs()
    bad = bytearray(img2)
    bad[len(bad) // 2] ^= 0x10
    assert code(e.load_image, bytes(bad)) == P.E_BAD_IMAGE
    assert code(e.load_image, img2[:-3]) == P.E_BAD_IMAGE
    assert e.info()["name"] == "mlp"
    e.run(6)  # the old image keeps running, its state untouched
    assert all(len(t) for t, _ in e.pull_outputs().values() if len(first["count"][0]))
    e.reset()
    e.push_input("quant1", x)
    e.run(6)
    again = e.pull_outputs()
    for k in first:
        assert np.array_equal(first[k][0], again[k][0]) and np.array_equal(first[k][1], again[k][1])


def test_capacity_refusals(images):
    (_, img), _ = images
    assert code(Engine().load_image, img) == P.E_CAPACITY  # compiled for 14x14, the chip is 12x13
    small = Engine({"mesh_rows": 14, "mesh_cols": 14, "axons_per_core": 16})
    with pytest.raises(EngineError, match="axons") as e:
        small.load_image(img)
    assert e.value.code == P.E_CAPACITY and small.info() == {}


def _repack(img, edit):
    u = unpack(img)
    meta = copy.deepcopy(u.meta)
    edit(meta, u.arrays)
    return pack(meta, list(u.arrays))


def test_inconsistent_contents_are_refused_before_loading(images):
    (_, img), _ = images
    e = engine()

    def drop_route(m, arrays):
        arrays[m["routes"]] = arrays[m["routes"]][1:]

    def swap_schedule(m, arrays):
        m["schedule"] = m["schedule"][::-1]

    def bad_weights(m, arrays):
        c = next(c for c in m["cores"] if c["dendrite"]["kind"] == "mac")
        arrays.append(np.zeros((3, 3), np.int8))
        c["dendrite"]["weight"] = len(arrays) - 1

    def unknown_op(m, arrays):
        next(c for c in m["cores"] if c["stages"])["stages"][0]["op"] = "teleport"

    for edit, msg in ((drop_route, "routing"), (swap_schedule, "schedule"), (bad_weights, "weights"),
                      (unknown_op, "teleport")):
        with pytest.raises(EngineError, match=msg) as ex:
            e.load_image(_repack(img, edit))
        assert ex.value.code == P.E_BAD_IMAGE
        assert e.info() == {}


def test_fuzzed_metadata_never_crashes_the_engine(images):
    (_, img), _ = images
    rng = np.random.default_rng(0)
    junk = [None, -1, 2 ** 40, "x", [], {}, [[0, 0]], 0.5, True]
    e = engine()
    for _ in range(150):
        def edit(m, arrays):
            node = m
            for _ in range(int(rng.integers(1, 5))):
                keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
                if not keys:
                    break
                k = keys[int(rng.integers(len(keys)))]
                if rng.random() < 0.4 or not isinstance(node[k], (dict, list)):
                    node[k] = junk[int(rng.integers(len(junk)))]
                    return
                node = node[k]
        try:
            e.load_image(_repack(img, edit))
        except EngineError as ex:
            assert ex.code in (P.E_BAD_IMAGE, P.E_CAPACITY)


def test_input_checks_and_no_image(images):
    (g, img), (g2, img2) = images
    e = engine()
    assert code(e.run, 1) == P.E_NO_IMAGE
    assert code(e.push_input, "quant1", np.zeros(3, np.int32)) == P.E_NO_IMAGE
    e.load_image(img)
    n = g.entries["quant1"].shape[0]
    assert code(e.push_input, "nope", np.zeros(n, np.int32)) == P.E_BAD_INPUT
    assert code(e.push_input, "quant1", np.zeros(n + 1, np.int32)) == P.E_BAD_INPUT
    assert code(e.push_input, "quant1", np.zeros(n, np.float32)) == P.E_BAD_INPUT
    assert code(e.push_input, "quant1", np.full(n, 2 ** 40)) == P.E_BAD_INPUT
    e.push_input("quant1", np.zeros((2, n), np.int32))
    e.run(1)
    assert code(e.push_input, "quant1", np.zeros((3, n), np.int32)) == P.E_BAD_INPUT
    assert code(e.run, -1) == P.E_CAPACITY
    e.load_image(img2)
    m = g2.entries["x"].shape[0]
    assert code(e.push_input, "x", np.full(m, 2, np.int32)) == P.E_BAD_INPUT  # spikes are 0/1


def test_pulls_and_counters(images):
    _, (g, img) = images
    e = engine()
    e.load_image(img)
    m = g.entries["x"].shape[0]
    e.run(4)  # no spikes in: no synaptic events (event-driven), biases still integrate
    c = e.counters()
    assert c["syn_events"] == 0 and c["ticks"] == 4 and c["rounds"] == 4 * e.info()["rounds"]
    out = e.pull_outputs()
    assert out["s"][0].tolist() == [0, 1, 2, 3] and out["s"][1].shape == (4, 1, g.entries[g.outputs["s"]].shape[0])
    assert out["c"][0].tolist() == [2]  # SpikeCount(window=3) emits at the window's end
    empty = e.pull_outputs()
    assert empty["s"][0].shape == (0,) and empty["s"][1].shape == (0, 1, g.entries[g.outputs["s"]].shape[0])
    e.reset_counters()
    e.push_input("x", np.ones((1, m), np.int32))
    e.run(1)
    c = e.counters()
    n_out = g.entries[g.outputs["s"]].shape[0]
    assert c["syn_events"] == m * n_out  # every input spiked once, each reaches every neuron
    spec = ChipSpec()
    assert c["energy_pj"] == pytest.approx(c["macs"] * spec.energy_per_mac_pj + c["syn_events"]
                                           * spec.energy_per_syn_event_pj + c["hops"] * spec.energy_per_hop_pj
                                           + c["neuron_updates"] * spec.energy_per_neuron_update_pj)
    assert c["packets"] >= m and c["hops"] >= c["packets"] and c["cycles"] > 0
    assert m <= c["link_max_packets"] <= c["packets"]  # the m input spikes share the host link
    assert 0 < c["busy_fraction_max"] <= 1
    e.reset_counters()
    assert e.counters()["ticks"] == 0
