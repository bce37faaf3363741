"""The 25 physical parameters of the Whipple/Carvallo bicycle (Meijaard et al. 2007, Table 1).

Four rigid bodies: rear wheel R, rear frame with rider B, front frame (fork and handlebar) H,
front wheel F. Coordinates as in the paper: x forward, z down, origin at the rear contact
point; angles in radians, SI units throughout. ``benchmark()`` is the paper's benchmark
bicycle; ``from_dict`` reads a user's bicycle and names any missing or bad field.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


# Parameters that must be positive, with an upper bound well past any bicycle: lengths [m],
# masses [kg], principal inertias [kg m^2]. The products IBxz, IHxz may have either sign.
RANGES = {"w": 10.0, "rR": 5.0, "rF": 5.0, "mR": 1000.0, "mB": 1000.0, "mH": 1000.0, "mF": 1000.0,
          "IRxx": 1000.0, "IRyy": 1000.0, "IFxx": 1000.0, "IFyy": 1000.0,
          "IBxx": 1000.0, "IByy": 1000.0, "IBzz": 1000.0, "IHxx": 1000.0, "IHyy": 1000.0, "IHzz": 1000.0}


@dataclass(frozen=True)
class BicycleParams:
    w: float      # wheelbase [m]
    c: float      # trail [m]
    lam: float    # steer axis tilt lambda [rad] (pi/2 - head angle)
    rR: float     # rear wheel radius [m]
    mR: float     # rear wheel mass [kg]
    IRxx: float   # rear wheel inertia about a diameter [kg m^2]
    IRyy: float   # rear wheel inertia about its axle [kg m^2]
    xB: float     # rear body centre of mass, forward [m]
    zB: float     # rear body centre of mass, down (negative: above ground) [m]
    mB: float     # rear body mass [kg]
    IBxx: float
    IByy: float
    IBzz: float
    IBxz: float
    xH: float     # front frame centre of mass [m]
    zH: float
    mH: float
    IHxx: float
    IHyy: float
    IHzz: float
    IHxz: float
    rF: float     # front wheel radius [m]
    mF: float
    IFxx: float
    IFyy: float

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"bicycle parameter {f.name!r} must be a finite number, got {v!r}")
        for name, hi in RANGES.items():
            v = getattr(self, name)
            if not 0 < v <= hi:
                raise ValueError(f"bicycle parameter {name!r} must be > 0 and <= {hi:g}, got {v}")
        for name in ("c", "xB", "xH"):
            if abs(getattr(self, name)) > 10:
                raise ValueError(f"bicycle parameter {name!r} must be within +-10 m, got {getattr(self, name)}")
        for name in ("zB", "zH"):
            if not -10 <= getattr(self, name) < 0:
                raise ValueError(f"bicycle parameter {name!r} (centre of mass, z down) must be above the "
                                 f"ground: in [-10, 0) m, got {getattr(self, name)}")
        for body in ("B", "H"):
            ixx, izz, ixz = (getattr(self, f"I{body}{k}") for k in ("xx", "zz", "xz"))
            if ixx * izz - ixz * ixz <= 0:
                raise ValueError(f"bicycle parameters I{body}xx, I{body}zz, I{body}xz ({ixx}, {izz}, {ixz}) are "
                                 f"not a physical inertia: I{body}xx * I{body}zz must exceed I{body}xz^2")
        if not -math.pi / 2 < self.lam < math.pi / 2:
            raise ValueError(f"bicycle parameter 'lam' (steer axis tilt) must be in (-pi/2, pi/2) rad, "
                             f"got {self.lam}")

    def to_dict(self) -> dict:
        return asdict(self)


NAMES = tuple(f.name for f in fields(BicycleParams))


def benchmark() -> BicycleParams:
    """The benchmark bicycle of Meijaard et al. (2007), Table 1."""
    return BicycleParams(
        w=1.02, c=0.08, lam=math.pi / 10,
        rR=0.3, mR=2.0, IRxx=0.0603, IRyy=0.12,
        xB=0.3, zB=-0.9, mB=85.0, IBxx=9.2, IByy=11.0, IBzz=2.8, IBxz=2.4,
        xH=0.9, zH=-0.7, mH=4.0, IHxx=0.05892, IHyy=0.06, IHzz=0.00708, IHxz=-0.00756,
        rF=0.35, mF=3.0, IFxx=0.1405, IFyy=0.28,
    )


def from_dict(d, where: str = "bicycle.params") -> BicycleParams:
    """Parameters from a JSON object; ``"benchmark"`` (or a dict with ``"base": "benchmark"``
    and some fields overridden) also works. Errors name the field."""
    if d == "benchmark":
        return benchmark()
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected \"benchmark\" or an object with the 25 parameters "
                         f"{', '.join(NAMES)}; got {type(d).__name__}")
    d = dict(d)
    base = d.pop("base", None)
    if base not in (None, "benchmark"):
        raise ValueError(f"{where}.base: only \"benchmark\" is known, got {base!r}")
    unknown = sorted(set(d) - set(NAMES))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {', '.join(unknown)}; "
                         f"the parameters are {', '.join(NAMES)}")
    vals = benchmark().to_dict() if base else {}
    vals.update(d)
    missing = [n for n in NAMES if n not in vals]
    if missing:
        raise ValueError(f"{where}: missing parameter(s) {', '.join(missing)} "
                         "(or add \"base\": \"benchmark\" to start from the benchmark bicycle)")
    try:
        return BicycleParams(**vals)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
