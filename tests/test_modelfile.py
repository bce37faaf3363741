"""Model files: save -> load gives identical outputs; every kind of bad file is refused
with an error naming the file and the problem; loading never unpickles."""
import io
import json
import zipfile

import numpy as np
import pytest

import tianrt as tr


def full_graph():
    """A graph using every node type with parameters or settings, plus a delay edge."""
    g = tr.Graph(dt=5e-4, name="everything")
    x = g.input("img", (1, 8, 8), rate_hz=30)
    h = g.add(tr.ann.Conv2d(1, 3, 3, padding=1, seed=1), x)
    h = g.add(tr.ann.BatchNorm(3, running_mean=[0.1, 0.2, 0.3], running_var=[1, 2, 3]), h)
    h = g.add(tr.ann.ReLU(), h)
    h = g.add(tr.ann.MaxPool2d(2), h)
    a = g.add(tr.ann.AvgPool2d(2), h)
    a = g.add(tr.ann.Flatten(), a)
    gap = g.add(tr.ann.GlobalAvgPool2d(), h)
    v = g.add(tr.ann.Concat(), a, gap)
    v = g.add(tr.ann.ClippedReLU(max_value=2.0), g.add(tr.ann.Dense(15, 10, seed=2), v))
    v = g.add(tr.ann.Add(), g.add(tr.ann.Sigmoid(), v), g.add(tr.ann.Tanh(), v))
    s = g.add(tr.bridge.RateEncoder(scale=2.0), v)
    p = g.add(tr.bridge.PoissonEncoder(seed=3), v)
    lat = g.add(tr.bridge.LatencyEncoder(window=4), v)
    dc = g.add(tr.bridge.DirectCurrent(gain=0.5), v)
    fb = g.delay((6,), "spike")
    i = g.add(tr.snn.Recurrent(10, 6, seed=4), s, fb)
    i = g.add(tr.ann.Add(), i, g.add(tr.snn.Dense(10, 6, seed=5), p), g.add(tr.snn.Dense(10, 6, seed=6), dc))
    out = g.add(tr.snn.LIF(beta=0.8, threshold=0.7, reset="zero", v_reset=-0.1, refractory=1, alpha=0.3), i)
    g.connect(fb, out)
    g.output("count", g.add(tr.bridge.SpikeCount(window=4, mode="sliding", rate=True), out))
    g.output("first", g.add(tr.bridge.FirstSpike(window=4), lat))
    g.output("mem", g.add(tr.bridge.MembraneReadout(window=4, beta=0.9, mean=True),
                          g.add(tr.snn.IF(threshold=1.5), g.add(tr.snn.Dense(10, 4, seed=7), s))))
    g.output("li", g.add(tr.snn.LI(beta=0.5), g.add(tr.snn.Dense(6, 2, seed=8), out)))
    g.metadata = {"note": "round trip", "T": 4}
    return g


@pytest.fixture
def saved(tmp_path):
    g = full_graph()
    path = tmp_path / "model.tnr"
    tr.save(g, path)
    return g, path


def outputs(g, seed=0):
    clip = np.random.default_rng(seed).random((12, 2, 1, 8, 8)).astype(np.float32)
    return tr.Runtime(g).run({"img": clip})


def test_save_load_gives_identical_outputs(saved):
    g, path = saved
    g2 = tr.load(path)
    assert g2.dt == g.dt and g2.name == g.name and g2.metadata == g.metadata
    assert list(g2.entries) == list(g.entries) and g2.outputs == g.outputs
    a, b = outputs(g), outputs(g2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a.ticks[k].tolist() == b.ticks[k].tolist()


def test_file_is_npz_without_pickle(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as z:
        assert "__header__" in z.files
        header = json.loads(z["__header__"].tobytes())
    assert header["format"] == "tianrt-model" and header["version"] == 1


def rewrite(path, mutate_header=None, mutate_arrays=None):
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z["__header__"].tobytes())
        arrays = {k: z[k] for k in z.files if k != "__header__"}
    if mutate_header:
        mutate_header(header)
    if mutate_arrays:
        mutate_arrays(arrays)
    raw = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, __header__=raw, **arrays)


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(tr.ModelFileError, match=r"model\.tnr: .*(truncated|corrupt)"):
        tr.load(path)


def test_corrupted_byte_in_an_array(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("a0.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF  # inside a0's data
    path.write_bytes(bytes(data))
    with pytest.raises(tr.ModelFileError, match=r"model\.tnr: .*(corrupt|CRC|digest)"):
        tr.load(path)


def test_tampered_weights_with_valid_zip(saved):
    _, path = saved
    rewrite(path, mutate_arrays=lambda a: a["a0"].__setitem__((0, 0, 0, 0), 42.0))
    with pytest.raises(tr.ModelFileError, match=r"array a0 does not match its SHA-256 digest"):
        tr.load(path)


def test_tampered_graph_description(saved):
    _, path = saved
    rewrite(path, mutate_header=lambda h: h["graph"]["nodes"][1]["config"].__setitem__("stride", [2, 2]))
    with pytest.raises(tr.ModelFileError, match="graph description does not match its digest"):
        tr.load(path)


def test_newer_version_is_refused(saved):
    _, path = saved
    rewrite(path, mutate_header=lambda h: h.__setitem__("version", 99))
    with pytest.raises(tr.ModelFileError, match="version 99 is newer"):
        tr.load(path)


def test_unknown_op_is_refused_without_running_anything(saved):
    _, path = saved

    def evil(h):
        h["graph"]["nodes"][1]["op"] = "os.system"
    rewrite(path, mutate_header=evil)
    with pytest.raises(tr.ModelFileError, match="(unknown op 'os.system'|digest)"):
        tr.load(path)


def test_not_a_model_file(tmp_path):
    p = tmp_path / "junk.tnr"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(tr.ModelFileError, match=r"junk\.tnr: not a tianrt model file"):
        tr.load(p)
    p2 = tmp_path / "plain.npz"
    np.savez(p2, w=np.zeros(3))
    with pytest.raises(tr.ModelFileError, match=r"plain\.npz: no __header__"):
        tr.load(p2)
    with pytest.raises(tr.ModelFileError, match="no such file"):
        tr.load(tmp_path / "missing.tnr")


def test_pickled_object_array_is_refused(tmp_path):
    p = tmp_path / "obj.tnr"
    with open(p, "wb") as f:
        np.savez(f, __header__=np.array([{"format": "tianrt-model"}], dtype=object))
    with pytest.raises(tr.ModelFileError, match=r"obj\.tnr: .*pickled Python objects, which are never loaded"):
        tr.load(p)


def test_save_validates_first(tmp_path):
    g = tr.Graph()
    g.input("x", (1,))
    with pytest.raises(tr.GraphError, match="no outputs"):
        tr.save(g, tmp_path / "x.tnr")
    assert not (tmp_path / "x.tnr").exists()


def test_a_fresh_process_loads_every_node_family(tmp_path):
    """Node types register on import: load must not depend on what the caller imported."""
    import subprocess
    import sys
    g = tr.Graph(name="int")
    x = g.add(tr.q.Quantize(0.1), g.input("x", (4,)))
    s = g.add(tr.q.RateEncoder(), g.add(tr.q.Dense(4, 3, weight=np.ones((3, 4))), x))
    v = g.add(tr.q.LIF(threshold=5), g.add(tr.q.SynDense(3, 2, weight=np.ones((2, 3))), s))
    g.output("y", g.add(tr.bridge.SpikeCount(window=4), v))
    path = tmp_path / "q.tnr"
    tr.save(g, path)
    code = f"import tianrt as tr; g = tr.load({str(path)!r}); print(len(g.entries))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "7"
