"""The bicycle demo: Tianjic's unmanned bicycle, first half — the Whipple/Carvallo bicycle
(Meijaard et al. 2007) in a world with lanes, obstacles and a walking target, seen by a camera
on the bicycle, balanced in closed loop by a learned MLP running in tianrt (as an ANN, or
converted to an SNN), with an LQR teacher for comparison. See docs/bicycle.md.

    tianrt demo bicycle                     # default scenario, writes out/ summary + video
    tianrt demo bicycle --controller snn --backend numba --duration 20
"""
from __future__ import annotations

DEMO_NAME = "bicycle"
DEMO_HELP = "balance and path following of a simulated bicycle by a network in tianrt (JSON summary + video)"


def main(argv=None) -> int:
    from .cli import main as _main

    return _main(argv)
