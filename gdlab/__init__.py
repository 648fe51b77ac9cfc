"""gdlab: a JAX lab for gradient-descent dynamics.

Sweep many step sizes at once (``gdlab.sweep``), classify every run into a named regime
(``gdlab.Regime``), and check the maps against closed forms (``gdlab.theory``,
``gdlab.stability``); study cycles and chaos of non-quadratic losses (``gdlab.dynamics``); check
hand-derived gradients three ways (``gdlab.check_gradient``).
"""

from importlib import metadata as _metadata

from gdlab import (boundary, dynamics, engine, gradcheck, grids, modes, optimizers, problems,
                   quadratics, regimes, stability, theory)
from gdlab.gradcheck import check_gradient
from gdlab.regimes import REGIME_INFO, REGIME_NAMES, Regime
from gdlab.sweep import SweepResult, sweep

try:
    __version__ = _metadata.version("gdlab")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "REGIME_INFO",
    "REGIME_NAMES",
    "Regime",
    "SweepResult",
    "boundary",
    "check_gradient",
    "dynamics",
    "engine",
    "gradcheck",
    "grids",
    "modes",
    "optimizers",
    "problems",
    "quadratics",
    "regimes",
    "stability",
    "sweep",
    "theory",
]
