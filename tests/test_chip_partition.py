"""Several graphs on one chip (tianrt/chip/partition.py): rectangles packed into the mesh,
each graph compiled onto its own, the reports those of the graph on that rectangle, a clear
refusal (by how many cores) when they do not fit, and a region's image runs bit-exact."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.chip.partition import pack

from chip_graphs import TEMPLATES


def _graphs(n=3, seed=0):
    rng = np.random.default_rng(seed)
    names = sorted(TEMPLATES)
    return {f"g{i}": TEMPLATES[names[i % len(names)]](rng)[0] for i in range(n)}


SMALL = dict(axons_per_core=24, neurons_per_core=16, weight_bytes_per_core=384)


def test_pack_rectangles_are_disjoint_inside_and_big_enough():
    rng = np.random.default_rng(1)
    for _ in range(50):
        rows, cols = (int(v) for v in rng.integers(3, 14, 2))
        sizes = {f"n{i}": int(rng.integers(1, 12)) for i in range(int(rng.integers(1, 6)))}
        if sum(sizes.values()) > rows * cols // 2:
            continue
        rects = pack(sizes, rows, cols)
        used = np.zeros((rows, cols), int)
        for k, (r, c, h, w) in rects.items():
            assert h * w >= sizes[k] and r + h <= rows and c + w <= cols
            used[r:r + h, c:c + w] += 1
        assert used.max() <= 1


def test_pack_refuses_what_does_not_fit_as_rectangles():
    with pytest.raises(tr.chip.CapacityError, match="as one rectangle"):
        pack({"a": 5, "b": 5}, 2, 4)   # 10 > 8 cores
    assert pack({"a": 4, "b": 4}, 2, 4) in ({"a": (0, 0, 2, 2), "b": (0, 2, 2, 2)},
                                            {"a": (0, 0, 1, 4), "b": (1, 0, 1, 4)})


def test_compile_many_regions_match_single_compiles_and_run():
    graphs = _graphs(3)
    spec = tr.chip.ChipSpec(mesh_rows=14, mesh_cols=14, **SMALL)
    part = tr.chip.compile_many(graphs, spec)
    assert [r.name for r in part.regions] == list(graphs)
    used = np.zeros((14, 14), int)
    for r in part.regions:
        used[r.row:r.row + r.rows, r.col:r.col + r.cols] += 1
        _, alone = tr.chip.compile(graphs[r.name], spec)
        assert r.report.cores_used == alone.cores_used <= r.cores        # same tiling, its own rectangle
        assert r.report.mesh == (r.rows, r.cols)
        assert r.host_extra_hops == r.host_values_per_tick * (r.row + r.col)
    assert used.max() == 1 and part.cores_used == sum(r.report.cores_used for r in part.regions)
    d = part.to_dict()
    assert d["cores_used"] == part.cores_used and len(d["regions"]) == 3
    assert "3 graph(s) on one 14x14 mesh" in str(part)
    # a region's image is what the chip backend runs for that rectangle: bit-exact to numba
    r = part.regions[0]
    g = graphs[r.name]
    sub = tr.chip.ChipSpec(mesh_rows=r.rows, mesh_cols=r.cols, **SMALL)
    chip = tr.Runtime(g, backend="chip", port="inproc", spec=sub)
    assert tr.chip.compile(g, sub)[0] == r.image   # the same image the backend compiles and uploads
    rng = np.random.default_rng(5)
    xs = {k: rng.uniform(-1, 1, (4, *v.shape)).astype(np.float32) if v.domain != "spike"
          else (rng.random((4, *v.shape)) < 0.3).astype(np.float32) for k, v in g.inputs.items()}
    a, b = chip.run(xs), tr.Runtime(g, backend="numba").run(xs)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_compile_many_says_by_how_much_it_does_not_fit():
    graphs = _graphs(3)
    need = {k: tr.chip.compile(g, tr.chip.ChipSpec(mesh_rows=14, mesh_cols=14, **SMALL))[1].cores_used
            for k, g in graphs.items()}
    total = sum(need.values())
    side = int(np.floor(np.sqrt(total - 1)))
    spec = tr.chip.ChipSpec(mesh_rows=side, mesh_cols=side, **SMALL)
    # the seeded graphs each fit the small mesh, so the refusal is about their sum
    assert max(need.values()) <= spec.n_cores, need
    with pytest.raises(tr.chip.CapacityError, match=f"need {total} cores together .* {total - side * side} too many"):
        tr.chip.compile_many(graphs, spec)
    with pytest.raises(tr.chip.CompileError, match="no graphs"):
        tr.chip.compile_many({}, spec)
