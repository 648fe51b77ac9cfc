"""gdlab: a JAX lab for gradient-descent dynamics.

Sweep many step sizes at once (``gdlab.sweep``), classify every run into a named regime
(``gdlab.Regime``), and check the maps against closed forms (``gdlab.theory``,
``gdlab.stability``); study cycles and chaos of non-quadratic losses (``gdlab.dynamics``); check
hand-derived gradients three ways (``gdlab.check_gradient``).

The names below are loaded on first use (PEP 562), so ``import gdlab`` — and the ``gdlab`` command,
which must handle Ctrl-C from its first moment — does not wait for JAX until JAX is needed. Loading
one that runs JAX first exposes every CPU core as a JAX device (:mod:`gdlab._cores`), so that
``gdlab.sweep`` (``devices="all"`` by default) uses every core.
"""

import importlib as _importlib

from gdlab import _cores

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


# Modules that load without JAX (the rest start it: every core is made a device first).
_NO_JAX = frozenset({"dataset", "distributed", "errors", "grids", "interfaces", "regimes",
                     "resources", "stability"})


def __getattr__(name: str):
    if name == "__version__":
        value = _version()
    elif name in _NAMES:
        if _NAMES[name].removeprefix("gdlab.") not in _NO_JAX:
            _cores.use_every_core()
        value = getattr(_importlib.import_module(_NAMES[name]), name)
    elif name in _MODULES:
        if name not in _NO_JAX:
            _cores.use_every_core()
        value = _importlib.import_module(f"gdlab.{name}")
    else:
        raise AttributeError(f"module 'gdlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
