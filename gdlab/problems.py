"""Problems: small immutable values that know their loss, analytic gradient, optimum and curvature.

A problem is a NamedTuple of its parameters, hence a pytree: a sweep over a problem parameter (say x)
is the same problem with that field holding one value per run, and ``jax.vmap`` maps over it.

Every problem provides

* ``loss(w)`` and ``grad(w)`` — the analytic gradient, tested equal to ``jax.grad(loss)``;
* ``optimum()`` — w*, and ``curvature()`` — λ_max of the Hessian, from which theory gives the
  gradient-descent threshold α < 2/λ_max;
* ``param_shape`` — the shape of w (``()`` for a scalar parameter).
"""

from __future__ import annotations

import difflib
from typing import Callable, NamedTuple

import jax.numpy as jnp

__all__ = ["ScalarRegression", "scalar_regression", "PROBLEMS", "ProblemSpec", "get"]


class ScalarRegression(NamedTuple):
    r"""Least squares with one example and no intercept (homework Q4).

    L(w) = ½(xw − y)²,   ∇L(w) = x(xw − y),   w* = y/x,   λ = ∂²L/∂w² = x².

    Gradient descent w_{t+1} = w_t − α x(x w_t − y) gives w* − w_{t+1} = (1 − αx²)(w* − w_t):
    it converges iff 0 < αx² < 2 and oscillates iff αx² > 1.
    """

    x: jnp.ndarray
    y: jnp.ndarray

    param_shape = ()

    def loss(self, w):
        return 0.5 * (self.x * w - self.y) ** 2

    def grad(self, w):
        return self.x * (self.x * w - self.y)

    def optimum(self):
        return self.y / self.x

    def curvature(self):
        return self.x * self.x


def scalar_regression(x: float = 1.0, y: float = 100.0) -> ScalarRegression:
    """L(w) = ½(xw − y)²; x ≠ 0 so that the optimum w* = y/x exists."""
    return ScalarRegression(x=x, y=y)


class ProblemSpec(NamedTuple):
    """How configs and the CLI build a problem by name."""

    make: Callable[..., NamedTuple]
    defaults: dict[str, float]
    summary: str
    nonzero: tuple[str, ...] = ()  # parameters that must not be 0


PROBLEMS: dict[str, ProblemSpec] = {
    "scalar_regression": ProblemSpec(
        make=scalar_regression,
        defaults={"x": 1.0, "y": 100.0},
        summary="L(w) = ½(xw − y)², λ = x², w* = y/x (homework Q4)",
        nonzero=("x",),
    ),
}


def get(name: str) -> ProblemSpec:
    """The registered problem ``name``; ValueError with a suggestion if unknown."""
    try:
        return PROBLEMS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), PROBLEMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown problem {name!r}{hint}; known: {', '.join(PROBLEMS)}") from None
