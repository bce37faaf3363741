"""Issue 18's conversion target, the part that holds: a plain-ReLU MLP
(64-128-64-10, not conversion-aware) trained by tr.train on the digits and converted with
the defaults should lose <= 0.2 point at T = 16 and never lose accuracy as T grows
4 -> 8 -> 16 -> 32. Measured (seed 0): ANN 98.15, T4 97.04, T8 98.15, T16 98.52, T32 98.33 %:
T = 32 is one test digit behind T = 16. The SNN tracks the rate-quantised ANN (layer 1 exactly,
layer 2 up to ~2.5 % of neurons firing one spike too many), so the wobble is +-1-2 digits of
1/T quantisation noise; no readout ties occur and the per-tick bias is exact. Over 16 seeds of
this recipe the defaults meet the T = 16 bar on 11 and are monotone on 6; per_channel=True meets
the T = 16 bar on 16 (monotone on 7) but, as a default, puts the shipped digits MLP's int8 SNN
0.56 point from float at T = 4 (bar 0.5), so the default is unchanged. The test checks what
holds on seed 0: the T = 16 bar and accuracy rising from T = 4 to 8 to 16; the step to T = 32
is the open part of issue 18 (its closing note), not asserted here."""
import numpy as np
import pytest

import tianrt as tr

pytest.importorskip("sklearn")

from tianrt.demos import digits  # noqa: E402


def test_plain_relu_mlp_converted_with_defaults_meets_the_T16_bar_and_improves_to_T16():
    x_tr, x_te, y_tr, y_te = digits.load_split(0)
    ann = digits.train_mlp(x_tr, y_tr, seed=0, progress=False, act="relu")

    def acc(g, T):
        return 100 * float((tr.Runtime(g).run({"x": x_te}, ticks=T)["y"][-1].argmax(1) == y_te).mean())

    a = acc(ann, 1)
    accs = {T: acc(tr.convert(ann, {"x": x_tr}, T=T), T) for T in (4, 8, 16)}
    assert accs[16] >= a - 0.2, (a, accs)
    assert accs[4] <= accs[8] <= accs[16], (a, accs)
