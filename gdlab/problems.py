"""Problems: small immutable values that know their loss, analytic gradient, optimum and curvature.

A problem is a NamedTuple of its parameters, hence a pytree: a sweep over a problem parameter
(say x) is the same problem with that field holding one value per run, and ``jax.vmap`` maps
over it.

Every problem provides

* ``loss(w)`` and ``grad(w)`` — the analytic gradient, tested equal to ``jax.grad(loss)``;
* ``optimum()`` — w*, and ``curvature()`` — λ_max of the Hessian, from which theory gives the
  gradient-descent threshold α < 2/λ_max;
* ``param_shape`` — the shape of w (``()`` for a scalar parameter).

Beyond the catalogue: ``custom(loss, optimum=None, **params)`` makes a problem of any
differentiable loss (:mod:`gdlab.custom`), and ``mlp(...)`` is Sohl-Dickstein's network
(:mod:`gdlab.networks`); without a known optimum both are judged by their loss. ``digits_mlp(...)``
is an MLP on scikit-learn's handwritten digits (the edge-of-stability study, ``gdlab.track``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp

from gdlab import networks, quadratics
from gdlab._naming import did_you_mean
from gdlab.custom import CustomProblem, custom
from gdlab.errors import ArgumentError
from gdlab.networks import MLP, digits_mlp, mlp
from gdlab.quadratics import LinearRegression, Quadratic, linear_regression, quadratic

__all__ = ["custom", "CustomProblem", "mlp", "digits_mlp", "MLP", "ScalarRegression",
           "scalar_regression",
           "Quadratic", "quadratic", "LinearRegression", "linear_regression", "DoubleWell",
           "double_well", "PROBLEMS", "ProblemSpec", "Param", "get"]


class ScalarRegression(NamedTuple):
    r"""Least squares with one example and no intercept (homework Q4).

    L(w) = ½(xw − y)²,   ∇L(w) = x(xw − y),   w* = y/x,   λ = ∂²L/∂w² = x².

    Gradient descent w_{t+1} = w_t − α x(x w_t − y) gives w* − w_{t+1} = (1 − αx²)(w* − w_t):
    it converges iff 0 < αx² < 2 and oscillates iff αx² > 1.
    """

    x: jnp.ndarray
    y: jnp.ndarray

    param_shape = ()

    def loss(self, w: jnp.ndarray) -> jnp.ndarray:
        return 0.5 * (self.x * w - self.y) ** 2

    def grad(self, w: jnp.ndarray) -> jnp.ndarray:
        return self.x * (self.x * w - self.y)

    def optimum(self) -> jnp.ndarray:
        return self.y / self.x

    def curvature(self) -> jnp.ndarray:
        return self.x * self.x

    def eigenvalues(self) -> jnp.ndarray:
        return self.curvature()


def scalar_regression(x: float = 1.0, y: float = 100.0) -> ScalarRegression:
    """L(w) = ½(xw − y)²; x ≠ 0 so that the optimum w* = y/x exists."""
    return ScalarRegression(x=x, y=y)


class Param(NamedTuple):
    """One config key of a problem: its default, its kind, and whether it can be a sweep axis."""

    default: object
    kind: str = "float"      # "float" | "int" | "seed" | "ints" | "vector" | "matrix" | "choice"
    #                          ("ints": a non-empty list of integers >= 1, e.g. layer widths;
    #                          "seed": an integer >= 0, NumPy's random generators' seed)
    sweepable: bool = False
    nonzero: bool = False    # 0 is not allowed (e.g. x: the optimum y/x would not exist)
    positive: bool = False
    choices: tuple[str, ...] = ()   # kind "choice": the allowed names


class DoubleWell(NamedTuple):
    r"""A non-quadratic loss whose gradient descent period-doubles into chaos.

    L(w) = ¼(w² − a²)²,   ∇L(w) = w(w² − a²),   ∇²L(w) = 3w² − a²,   minima w* = ±a, λ* = 2a².

    GD is the cubic map f(w) = w − αw(w² − a²), with f'(a) = 1 − 2αa²: the minimum is attracting for
    0 < αλ* < 2 and loses stability to a period-2 cycle at α = 2/λ* = 1/a², after which the cycles
    double again and the orbit turns chaotic before it escapes. ``optimum()`` is +a, the minimum
    a run started at w₀ > 0 heads for.
    """

    a: jnp.ndarray

    param_shape = ()

    def loss(self, w: jnp.ndarray) -> jnp.ndarray:
        return 0.25 * (w * w - self.a * self.a) ** 2

    def grad(self, w: jnp.ndarray) -> jnp.ndarray:
        return w * (w * w - self.a * self.a)

    def hessian(self, w: jnp.ndarray) -> jnp.ndarray:
        return 3 * w * w - self.a * self.a

    def optimum(self) -> jnp.ndarray:
        return self.a

    def curvature(self) -> jnp.ndarray:
        return 2 * self.a * self.a


def double_well(a: float = 1.0) -> DoubleWell:
    """L(w) = ¼(w² − a²)², a ≠ 0."""
    return DoubleWell(a=a)


class ProblemSpec(NamedTuple):
    """How configs and the CLI build a problem by name: ``make(**params)``."""

    make: Callable[..., NamedTuple]
    params: dict[str, Param]
    summary: str
    # (bytes, key): memory that make(**params) needs and the config key that sets it, estimated
    # before building (a Hessian of dim = 10⁶ would be 8 TB)
    size: Callable[..., tuple[int, str]] = lambda **params: (0, "")

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
        # H, its eigenvectors and the QR that makes them: a few d × d float64 matrices
        size=lambda dim, spectrum=None, **_: (
            quadratics.quadratic_bytes(len(spectrum) if spectrum is not None else dim),
            "problem.spectrum" if spectrum is not None else "problem.dim"),
    ),
    "double_well": ProblemSpec(
        make=double_well,
        params={"a": Param(1.0, sweepable=True, nonzero=True)},
        summary="¼(w² − a²)², non-quadratic: period doubling into chaos at large α",
    ),
    "linear_regression": ProblemSpec(
        make=quadratics.linear_regression,
        params={"X": Param(None, "matrix"), "y": Param(None, "vector"),
                "m": Param(50, "int", positive=True), "d": Param(10, "int", positive=True),
                "kappa": Param(100.0, positive=True), "noise": Param(0.1),
                "seed": Param(0, "seed")},
        summary="(1/2m)‖Xw − y‖², data inline (X, y) or generated with condition number κ",
        # X, the QR factor that generates it and their product: a few m × d float64 matrices
        size=lambda m, d, X=None, **_: (
            (quadratics.linear_regression_bytes(len(X), len(X[0])), "problem.X")
            if X is not None else
            (quadratics.linear_regression_bytes(m, d), "problem.m" if m >= d else "problem.d")),
    ),
    "mlp": ProblemSpec(
        make=mlp,
        params={"width": Param(16, "int", positive=True), "depth": Param(1, "int", positive=True),
                "nonlinearity": Param("tanh", "choice", choices=networks.NONLINEARITIES),
                "parameterization": Param("mean_field", "choice",
                                          choices=networks.PARAMETERIZATIONS),
                "points": Param(None, "int", positive=True), "seed": Param(0, "int")},
        summary="Sohl-Dickstein's network: depth × width tanh/relu/identity MLP, MSE on random "
                "data (no known optimum: judged by the loss; float64)",
        # the data, weights and one run's working set, float64
        size=lambda width, depth, points=None, **_: (
            8 * ((points or (depth + 1) * width * width) * width * 4
                 + (depth + 1) * width * width), networks.size_key(width, depth, points)),
    ),
    "digits_mlp": ProblemSpec(
        make=digits_mlp,
        params={"hidden": Param([128, 128], "ints"),
                "nonlinearity": Param("tanh", "choice", choices=networks.NONLINEARITIES),
                "parameterization": Param("standard", "choice",
                                          choices=networks.PARAMETERIZATIONS),
                "points": Param(1000, "int", positive=True), "seed": Param(0, "int")},
        summary="MLP 64-hidden-10 on scikit-learn's digits (first `points` images), MSE on "
                "one-hot targets: the edge-of-stability study (float64 by default)",
        # the data, the weights and the activations of one run, float64
        size=lambda hidden, points, **_: (
            8 * (points * (74 + 2 * sum(hidden))
                 + sum(a * b for a, b in zip((64, *hidden), (*hidden, 10)))), "problem.hidden"),
    ),
}


def get(name: str) -> ProblemSpec:
    """The registered problem ``name``; ValueError with a suggestion if unknown."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise ArgumentError("problem", f"unknown problem {name!r}{did_you_mean(name, PROBLEMS)}; "
                                       f"known: {', '.join(PROBLEMS)}", prefix=False) from None
