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

from gdlab import quadratics
from gdlab.quadratics import LinearRegression, Quadratic, linear_regression, quadratic

__all__ = ["ScalarRegression", "scalar_regression", "Quadratic", "quadratic", "LinearRegression",
           "linear_regression", "PROBLEMS", "ProblemSpec", "Param", "get"]


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

    def eigenvalues(self):
        return self.curvature()


def scalar_regression(x: float = 1.0, y: float = 100.0) -> ScalarRegression:
    """L(w) = ½(xw − y)²; x ≠ 0 so that the optimum w* = y/x exists."""
    return ScalarRegression(x=x, y=y)


class Param(NamedTuple):
    """One config key of a problem: its default, its kind, and whether it can be a sweep axis."""

    default: object
    kind: str = "float"      # "float" | "int" | "vector" | "matrix"
    sweepable: bool = False
    nonzero: bool = False    # 0 is not allowed (e.g. x: the optimum y/x would not exist)
    positive: bool = False


class ProblemSpec(NamedTuple):
    """How configs and the CLI build a problem by name: ``make(**params)``."""

    make: Callable[..., NamedTuple]
    params: dict[str, Param]
    summary: str

    @property
    def defaults(self) -> dict[str, object]:
        return {k: p.default for k, p in self.params.items()}

    @property
    def sweepable(self) -> tuple[str, ...]:
        return tuple(k for k, p in self.params.items() if p.sweepable)


PROBLEMS: dict[str, ProblemSpec] = {
    "scalar_regression": ProblemSpec(
        make=scalar_regression,
        params={"x": Param(1.0, sweepable=True, nonzero=True), "y": Param(100.0, sweepable=True)},
        summary="L(w) = ½(xw − y)², λ = x², w* = y/x (homework Q4)",
    ),
    "quadratic": ProblemSpec(
        make=quadratics.quadratic,
        params={"dim": Param(10, "int", positive=True),
                "lam_max": Param(1.0, sweepable=True, positive=True),
                "kappa": Param(10.0, sweepable=True, positive=True),
                "spectrum": Param(None, "vector", positive=True),
                "seed": Param(0, "int"),
                "w_star": Param(1.0, "vector")},
        summary="½(w − w*)ᵀH(w − w*), eigenvalues λ_max·κ^(−i/(d−1)) or a given spectrum",
    ),
    "linear_regression": ProblemSpec(
        make=quadratics.linear_regression,
        params={"X": Param(None, "matrix"), "y": Param(None, "vector"),
                "m": Param(50, "int", positive=True), "d": Param(10, "int", positive=True),
                "kappa": Param(100.0, positive=True), "noise": Param(0.1),
                "seed": Param(0, "int")},
        summary="(1/2m)‖Xw − y‖², data inline (X, y) or generated with condition number κ",
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
