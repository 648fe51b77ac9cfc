"""What a problem provides, declared once; gdlab dispatches on these, never on ``hasattr``.

A problem is an immutable pytree (a NamedTuple of its parameters), so a swept parameter is the same
problem with that field holding one value per run. The interfaces nest:

* :class:`Problem` — ``loss(w)``, ``grad(w)`` and ``param_shape``: all the engine needs to step.
* :class:`WithOptimum` — also ``optimum()`` (w*) and ``curvature()`` (λ_max of ∇²L at w*): runs are
  judged by their distance to w*, and theory gives α < 2/λ_max.
* :class:`Linear` — a constant Hessian: ``eigenvalues()``; gradient descent is then linear and its
  regimes have closed forms (``gdlab.theory``). Without it a loss is studied through its orbits.
* :class:`Modal` — also ``modes(e)``: the error's components along the eigen-directions, whose sign
  changes the engine counts one by one.
* :class:`WithHessian` — ``hessian(w)`` in closed form (else ``jax.grad`` of the gradient is used).

A problem without :class:`WithOptimum` (a user's loss, a network) is judged by its loss: the ratio
L_t/L_0 (``gdlab.engine``, ``gdlab.regimes``). Three more capabilities are independent of these:

* :class:`Bindable` — ``bind(w0)``: the parameter's layout comes from w0 (any pytree); returns the
  problem for that layout and w0 as the flat vector the engine steps (``gdlab.custom``).
* :class:`WithInit` — ``init()``: the w0 every run starts from when the sweep is given none, and
  ``default_dtype`` (a network is simulated in float64 unless asked otherwise).
* :class:`Layered` — ``rate_names`` and ``step_sizes(alpha, rates)``: each layer its own step size,
  hyperparameters ``alpha`` (layer 1), ``alpha_2``, … (``gdlab.networks``).
* :class:`WithWorkingSet` — ``run_bytes(itemsize)``: memory one run touches per step (a network's
  activations), from which the CPU engine sizes its cache-resident blocks of runs.
* :class:`Verifiable` — ``verify()``: raises ArgumentError where a fact the problem was given
  does not hold (a user's optimum where ∇L ≠ 0); a sweep calls it on every chunk before any work.

The methods are written for JAX arrays, traced under ``jit``; on the host ``optimum``,
``curvature`` and ``eigenvalues`` are also called on a problem whose fields are NumPy arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import jax.numpy as jnp

__all__ = ["Problem", "WithOptimum", "Linear", "Modal", "WithHessian", "Bindable", "WithInit",
           "Layered", "WithWorkingSet", "Verifiable", "studied_as_map"]


@runtime_checkable
class Problem(Protocol):
    param_shape: tuple

    def loss(self, w: jnp.ndarray) -> jnp.ndarray: ...

    def grad(self, w: jnp.ndarray) -> jnp.ndarray: ...


@runtime_checkable
class WithOptimum(Problem, Protocol):
    def optimum(self) -> jnp.ndarray: ...

    def curvature(self) -> jnp.ndarray: ...


@runtime_checkable
class Linear(WithOptimum, Protocol):
    def eigenvalues(self) -> jnp.ndarray: ...


@runtime_checkable
class Modal(Linear, Protocol):
    def modes(self, e: jnp.ndarray) -> jnp.ndarray: ...


@runtime_checkable
class WithHessian(Problem, Protocol):
    def hessian(self, w: jnp.ndarray) -> jnp.ndarray: ...


@runtime_checkable
class Bindable(Protocol):
    def bind(self, w0: object) -> tuple[Problem, object]: ...


@runtime_checkable
class Verifiable(Protocol):
    def verify(self) -> None: ...


@runtime_checkable
class WithInit(Protocol):
    default_dtype: str

    def init(self) -> jnp.ndarray: ...


@runtime_checkable
class Layered(Protocol):
    rate_names: tuple[str, ...]

    def step_sizes(self, alpha: jnp.ndarray, rates: dict) -> jnp.ndarray: ...


@runtime_checkable
class WithWorkingSet(Protocol):
    def run_bytes(self, itemsize: int) -> int: ...


def studied_as_map(problem: object) -> bool:
    """Whether a config's problem is studied as a regime map of its sweep: a quadratic (closed
    forms to check it against) or a problem judged by its loss (no optimum); the other
    non-quadratic losses are studied through their orbits (``gdlab.orbit_study``)."""
    return isinstance(problem, Linear) or not isinstance(problem, WithOptimum)
