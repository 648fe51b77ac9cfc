"""Optimizers by name, as optax transformations with *traced* hyperparameters.

Each entry builds an ``optax.GradientTransformation`` from hyperparameter arrays inside the vmapped
simulation, so α (and every other hyperparameter) is data: a new α of the same shape reuses the
compiled program. A Python float baked in at trace time would recompile for every value
(optax issue 577).

``alpha`` is always the learning rate. Update rules (optax conventions):

* ``sgd``: w ← w − α ∇L(w).
"""

from __future__ import annotations

import difflib
from typing import Callable, NamedTuple

import optax

__all__ = ["OptimizerSpec", "OPTIMIZERS", "get"]


class OptimizerSpec(NamedTuple):
    """``make(**hparams)`` builds the transformation; ``defaults`` lists every hyperparameter but α."""

    make: Callable[..., optax.GradientTransformation]
    defaults: dict[str, float]
    summary: str


def _sgd(alpha):
    return optax.sgd(learning_rate=alpha)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(_sgd, {}, "plain gradient descent, w ← w − α∇L (optax.sgd)"),
}


def get(name: str) -> OptimizerSpec:
    """The registered optimizer ``name``; ValueError with a suggestion if unknown."""
    try:
        return OPTIMIZERS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), OPTIMIZERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown optimizer {name!r}{hint}; known: {', '.join(OPTIMIZERS)}") from None
