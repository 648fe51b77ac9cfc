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

The methods are written for JAX arrays, traced under ``jit``; on the host ``optimum``,
``curvature`` and ``eigenvalues`` are also called on a problem whose fields are NumPy arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import jax.numpy as jnp

__all__ = ["Problem", "WithOptimum", "Linear", "Modal", "WithHessian"]


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
