"""`tianrt warmup` runs every node type on the numba backend (float, integer, batch 1 and 2)
and reports; its graphs also give the numba backend a wide smoke test against the reference."""
import numpy as np

import tianrt as tr
from tianrt.cli import main
from tianrt.commands.warmup import _float_graphs, _int_graphs


def test_warmup_command_runs(capsys):
    assert main(["warmup", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "warm-up done in" in out


def test_warmup_graphs_agree_with_reference():
    for g, feeds in _float_graphs() + _int_graphs():
        ref = tr.Runtime(g, "reference").run(feeds)
        got = tr.Runtime(g, "numba").run(feeds)
        for k in ref:
            assert np.array_equal(ref.ticks[k], got.ticks[k]), (g.name, k)
            if g.name == "warmup_int":
                assert np.array_equal(ref[k], got[k]), (g.name, k)
            else:
                np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-5, err_msg=f"{g.name}:{k}")
