"""The digits demo: shipped weights meet the ANN accuracy bar, and a small sweep runs end to end."""
import numpy as np
import pytest

import tianrt as tr

pytest.importorskip("sklearn")  # the demos extra; installed in the dev environment

from tianrt.demos import digits  # noqa: E402


@pytest.fixture(scope="module")
def split():
    return digits.load_split(0)


def test_shipped_weights_are_tianrt_model_files_meeting_the_bar(split):
    x_tr, x_te, y_tr, y_te = split
    for name, bar in (("mlp", 0.97), ("cnn", 0.98)):
        path = digits.DATA / f"digits_{name}.tnr"
        assert path.read_bytes()[:2] == b"PK"  # a numpy zip archive, no pickle
        g = tr.load(path)
        assert "recipe" in g.metadata
        prep = digits.MODELS[name][1]
        out = tr.Runtime(g).run({"x": prep(x_te)}, ticks=1)["y"][-1]
        assert (out.argmax(1) == y_te).mean() >= bar


def test_demo_sweep_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    import cv2

    png = tmp_path / "acc.png"
    assert digits.main(["--models", "mlp", "--ticks", "4", "8", "--backend", "reference", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    lines = [ln.split() for ln in out.splitlines() if ln.strip().startswith("mlp")]
    assert [ln[1] for ln in lines] == ["4", "8"]
    for ln in lines:
        ann, snn, int8, hyb = float(ln[2]), float(ln[3]), float(ln[5]), float(ln[6])
        assert snn >= ann - 2.0 and abs(int8 - snn) <= 2.0 and hyb >= ann - 2.0
        assert float(ln[8]) > 0 and float(ln[9]) > float(ln[8])  # spikes, synops
    img = cv2.imread(str(png))
    assert img is not None and img.shape == (460, 720, 3)
    assert (img != 255).any()
    with pytest.raises(SystemExit):
        digits.main(["--ticks", "0"])


def test_issue_acceptance_bars_on_the_shipped_models(split):
    """SNN within 2.0 / 1.0 / 0.5 points of the ANN at T = 4 / 8 / 16 (full and hybrid), and
    int8 within 0.5 points of float at the same T (T = 4, the hardest, for both models)."""
    x_tr, x_te, y_tr, y_te = split
    bars = {4: 2.0, 8: 1.0, 16: 0.5}

    def acc(g, x, T):
        return 100 * float((tr.Runtime(g).run({"x": x}, ticks=T)["y"][-1].argmax(1) == y_te).mean())

    for name in ("mlp", "cnn"):
        ann = tr.load(digits.DATA / f"digits_{name}.tnr")
        prep = digits.MODELS[name][1]
        xc, xt = prep(x_tr), prep(x_te)
        a = acc(ann, xt, 1)
        for T, bar in bars.items():
            snn = tr.convert(ann, {"x": xc}, T=T)
            s = acc(snn, xt, T)
            assert s >= a - bar, (name, T, s, a)
            assert acc(tr.convert(ann, {"x": xc}, T=T, layers=slice(1, None)), xt, T) >= a - bar
            if T == 4:
                assert abs(acc(tr.quantize(snn, {"x": xc}), xt, T) - s) <= 0.5, (name, "int8")
