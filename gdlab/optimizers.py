"""Optimizers by name, as optax transformations with *traced* hyperparameters.

Each entry builds an ``optax.GradientTransformation`` from hyperparameter arrays inside the vmapped
simulation, so α (and every other hyperparameter) is data: a new α or β of the same shape reuses
the compiled program. A Python float baked in at trace time would recompile for every value
(optax issue 577).

``alpha`` is always the learning rate. Update rules (optax conventions, v the momentum trace):

* ``sgd``:      w ← w − α∇L(w)
* ``momentum``: v ← ∇L + βv,  w ← w − αv                    (heavy ball, optax.sgd(momentum=β))
* ``nesterov``: v ← ∇L + βv,  w ← w − α(∇L + βv)            (optax.sgd(momentum=β, nesterov=True))
* ``adam``:     optax.adam(α, b1, b2, eps)
* any other optax optimizer whose hyperparameters are numbers (``rmsprop``, ``adagrad``, ``lion``,
  …): its numeric keyword arguments become sweepable hyperparameters with optax's defaults.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
from typing import Callable, NamedTuple

import optax

__all__ = ["OptimizerSpec", "OPTIMIZERS", "get", "names"]


class OptimizerSpec(NamedTuple):
    """``make(alpha, **hparams)`` builds the transformation; ``defaults`` lists the hparams but α."""

    make: Callable[..., optax.GradientTransformation]
    defaults: dict[str, float]
    summary: str


def _sgd(alpha):
    return optax.sgd(learning_rate=alpha)


def _momentum(alpha, beta):
    return optax.sgd(learning_rate=alpha, momentum=beta)


def _nesterov(alpha, beta):
    return optax.sgd(learning_rate=alpha, momentum=beta, nesterov=True)


def _adam(alpha, b1, b2, eps):
    return optax.adam(learning_rate=alpha, b1=b1, b2=b2, eps=eps)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(_sgd, {}, "plain gradient descent, w ← w − α∇L (optax.sgd)"),
    "momentum": OptimizerSpec(_momentum, {"beta": 0.9},
                              "heavy ball, v ← ∇L + βv, w ← w − αv (optax.sgd(momentum=β))"),
    "nesterov": OptimizerSpec(_nesterov, {"beta": 0.9},
                              "Nesterov, w ← w − α(∇L + βv) (optax.sgd(momentum=β, nesterov=True))"),
    "adam": OptimizerSpec(_adam, {"b1": 0.9, "b2": 0.999, "eps": 1e-8}, "optax.adam(α, b1, b2, eps)"),
}


@functools.lru_cache(maxsize=None)
def _generic(name: str) -> OptimizerSpec | None:
    """optax.<name> if it takes ``learning_rate`` and its other defaults include numbers."""
    fn = getattr(optax, name, None)
    if not callable(fn) or name.startswith("_"):
        return None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if "learning_rate" not in params:
        return None
    numeric = {k: float(p.default) for k, p in params.items()
               if k != "learning_rate" and isinstance(p.default, numbers.Real)
               and not isinstance(p.default, bool)}

    def make(alpha, **hp):
        return fn(learning_rate=alpha, **hp)

    return OptimizerSpec(make, numeric, f"optax.{name}(α, {', '.join(numeric)})")


def names() -> list[str]:
    return list(OPTIMIZERS)


def get(name: str) -> OptimizerSpec:
    """The optimizer ``name`` (registered, or any numeric optax optimizer); ValueError otherwise."""
    if name in OPTIMIZERS:
        return OPTIMIZERS[name]
    spec = _generic(str(name)) if isinstance(name, str) else None
    if spec is not None:
        return spec
    close = difflib.get_close_matches(str(name), OPTIMIZERS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown optimizer {name!r}{hint}; known: {', '.join(OPTIMIZERS)} "
                     "or any optax optimizer taking learning_rate")
