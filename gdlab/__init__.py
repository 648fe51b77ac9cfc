"""gdlab: a JAX lab for gradient-descent dynamics.

Sweep many step sizes at once (``gdlab.sweep``), classify every run into a named regime
(``gdlab.Regime``), and check the maps against closed forms (``gdlab.theory``,
``gdlab.stability``); study cycles and chaos of non-quadratic losses (``gdlab.dynamics``); check
hand-derived gradients three ways (``gdlab.check_gradient``).

The names below are loaded on first use (PEP 562), so ``import gdlab`` — and the ``gdlab`` command,
which must handle Ctrl-C from its first moment — does not wait for JAX until JAX is needed. Every
CPU core becomes a JAX device as JAX is imported (:mod:`gdlab._cores`), so that ``gdlab.sweep``
(``devices="all"`` by default) uses every core.
"""

import importlib as _importlib

from gdlab import _cores

_cores.use_every_core()   # here, where every route into gdlab passes (it does not import JAX)

_MODULES = ("boundary", "curvature", "custom", "dataset", "distributed", "dynamics", "engine",
            "errors", "fractal", "gradients", "grids", "interfaces", "modes", "networks",
            "optimizers", "problems", "quadratics", "regimes", "resources", "eos", "stability",
            "theory", "tracking")
_NAMES = {  # public name → the module that defines it
    "check_gradient": "gdlab.gradients.gradcheck",
    "load": "gdlab.dataset",
    "REGIME_INFO": "gdlab.regimes",
    "REGIME_NAMES": "gdlab.regimes",
    "Regime": "gdlab.regimes",
    "SweepResult": "gdlab._sweep",
    "finish_sweep": "gdlab._sweep",
    "sharpness": "gdlab.eos",
    "simulate_shard": "gdlab._sweep",
    "sweep": "gdlab._sweep",
    "track": "gdlab.tracking",
}

__all__ = sorted([*_MODULES, *_NAMES])


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("gdlab")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        value = _version()
    elif name in _NAMES:
        value = getattr(_importlib.import_module(_NAMES[name]), name)
    elif name in _MODULES:
        value = _importlib.import_module(f"gdlab.{name}")
    else:
        raise AttributeError(f"module 'gdlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
