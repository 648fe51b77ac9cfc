"""gdlab: a JAX lab for gradient-descent dynamics.

Sweep many step sizes at once (``gdlab.sweep``), classify every run into a named regime
(``gdlab.Regime``), and check the maps against closed forms (``gdlab.theory``).
"""

from importlib import metadata as _metadata

from gdlab import engine, grids, optimizers, problems, regimes, theory
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
    "engine",
    "grids",
    "optimizers",
    "problems",
    "regimes",
    "sweep",
    "theory",
]
