"""The edge of stability: sharpness along training and its thresholds (``gdlab.sharpness``).

``sharpness(problem_or_loss, w, k)`` is λ₁ ≥ … ≥ λ_k of ∇²L(w), by :mod:`gdlab.curvature`: the
dense Hessian up to ``dense_max`` parameters (:data:`gdlab.curvature.DENSE_MAX` = 256 by default;
``dense_max=0`` forces Lanczos), else ``iters`` Lanczos steps on Hessian-vector products. Pure JAX,
jit-compiled, vmappable over runs (w, and the problem's arrays, may be batched).

A quadratic model of L near w says gradient descent with step α is stable along an eigenvector iff
λ < 2/α: Cohen et al. (2021) found full-batch GD raises the sharpness λ₁ to 2/α and then hovers
there (the edge of stability). The thresholds, from the linear recurrences on a quadratic:

* GD,          w ← w − α∇L:                  λ₁ < 2/α;
* heavy ball,  v ← ∇L + βv, w ← w − αv:       λ₁ < 2(1 + β)/α     (optax's form);
* Adam, preconditioned by P = diag(√v̂ + ε) (Cohen et al. 2022, frozen P, EMA momentum β₁, so
  the step is w ← w − αP⁻¹m): λ₁(P⁻¹H) < (2 + 2β₁)/((1 − β₁)α)  (38/α at β₁ = 0.9). P carries no
  1/α: with P = diag(√v̂ + ε)/α the threshold would be the α-free (2 + 2β₁)/(1 − β₁); writing both
  the /α in P and the 1/α in the threshold counts α twice (tests/test_sharpness.py simulates the
  frozen recurrence on either side of the edge).

``preconditioned_sharpness`` is λ₁(P⁻¹H) = λ₁(P^{-1/2} H P^{-1/2}), the symmetric form, computed as
the plain sharpness of L̃(u) = L(s ⊙ u) at u = w / s with s = P^{-1/2} = 1/√(√v̂ + ε): the
chain rule gives ∇²L̃(u) = diag(s) ∇²L(w) diag(s), so the same Lanczos applies unchanged. (Cohen et
al. also scale P by Adam's momentum bias correction 1 − β₁^{t+1}, which tends to 1; left out.)
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from gdlab import curvature
from gdlab.errors import ArgumentError
from gdlab.interfaces import Problem

__all__ = ["sharpness", "preconditioned_sharpness", "preconditioned_eigenvalues", "adam_v_hat",
           "gd_threshold", "momentum_threshold", "adam_threshold", "threshold"]


def _holder(problem_or_loss):
    """A pytree that carries the loss into a jitted function: the problem itself (its arrays
    traced, its class static) or the function wrapped in ``jax.tree_util.Partial``."""
    if isinstance(problem_or_loss, Problem) and isinstance(problem_or_loss, tuple):
        return problem_or_loss
    if callable(problem_or_loss) and not isinstance(problem_or_loss, Problem):
        return jax.tree_util.Partial(problem_or_loss)
    raise ArgumentError("problem", f"{type(problem_or_loss).__name__} is not a gdlab problem nor a "
                                   "function w -> scalar loss")


def _loss_of(holder) -> Callable:
    return holder.loss if isinstance(holder, Problem) else holder


def _check_k_iters(k, iters) -> None:
    for name, value in (("k", k), ("iters", iters)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(name, f"{value!r} must be an integer >= 1")
    if k > iters:
        raise ArgumentError("k", f"{k} exceeds iters = {iters}: Lanczos gives at most iters "
                                 "eigenvalues; raise iters")


@functools.partial(jax.jit, static_argnames=("k", "iters", "dense_max"))
def _top(holder, w, *, k, iters, dense_max):
    return curvature.top_eigenvalues(_loss_of(holder), w, k, iters=iters, dense_max=dense_max)


def preconditioned_eigenvalues(loss: Callable, w, v_hat, eps, k: int = 1, *,
                               iters: int = curvature.LANCZOS_ITERS,
                               dense_max: int = curvature.DENSE_MAX) -> jax.Array:
    """:func:`preconditioned_sharpness` for a loss function, unchecked and unjitted (for use
    inside a traced program)."""
    s = 1 / jnp.sqrt(jnp.sqrt(v_hat) + eps)      # P^{-1/2}
    scaled = lambda u: loss(s * u)       # ∇²(scaled)(w/s) = diag(s) ∇²L(w) diag(s)
    return curvature.top_eigenvalues(scaled, w / s, k, iters=iters, dense_max=dense_max)


@functools.partial(jax.jit, static_argnames=("k", "iters", "dense_max"))
def _top_preconditioned(holder, w, v_hat, eps, *, k, iters, dense_max):
    return preconditioned_eigenvalues(_loss_of(holder), w, v_hat, eps, k, iters=iters,
                                      dense_max=dense_max)


def sharpness(problem_or_loss, w, k: int = 1, *, iters: int = curvature.LANCZOS_ITERS,
              dense_max: int = curvature.DENSE_MAX) -> jax.Array:
    """The k largest eigenvalues of ∇²L(w), descending, shape (k,).

    Dense ``eigvalsh`` of the Hessian if w has at most ``dense_max`` entries, else ``iters``
    Lanczos steps (Ritz values: they approach the true eigenvalues from below as ``iters`` grows).
    """
    _check_k_iters(k, iters)
    return _top(_holder(problem_or_loss), jnp.asarray(w), k=k, iters=iters, dense_max=dense_max)


def preconditioned_sharpness(problem_or_loss, w, v_hat, eps=1e-8, k: int = 1, *,
                             iters: int = curvature.LANCZOS_ITERS,
                             dense_max: int = curvature.DENSE_MAX) -> jax.Array:
    """The k largest eigenvalues of P⁻¹∇²L(w), P = diag(√v̂ + ε), descending, shape (k,).

    v̂ is Adam's bias-corrected second moment (:func:`adam_v_hat`), shaped like w.
    """
    _check_k_iters(k, iters)
    w = jnp.asarray(w)
    return _top_preconditioned(_holder(problem_or_loss), w, jnp.asarray(v_hat, w.dtype),
                               jnp.asarray(eps, w.dtype), k=k, iters=iters, dense_max=dense_max)


def adam_v_hat(opt_state, b2) -> jax.Array:
    """Adam's bias-corrected second moment v̂_t = ν_t / (1 − β₂ᵗ) from an optax Adam state."""
    states = [s for s in jax.tree.leaves(
        opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)]
    if len(states) != 1:
        raise ArgumentError("opt_state", "not an optax Adam state (no single ScaleByAdamState)")
    st = states[0]
    return st.nu / (1 - jnp.asarray(b2, st.nu.dtype) ** st.count)


def gd_threshold(alpha):
    """2/α: GD's stability threshold for the sharpness."""
    return 2 / alpha


def momentum_threshold(alpha, beta):
    """2(1 + β)/α: heavy ball's threshold (optax's form v ← ∇L + βv, w ← w − αv)."""
    return 2 * (1 + beta) / alpha


def adam_threshold(alpha, b1):
    """(2 + 2β₁)/((1 − β₁)α): Adam's threshold for the preconditioned sharpness."""
    return (2 + 2 * b1) / ((1 - b1) * alpha)


def threshold(optimizer: str, alpha, **hparams):
    """The edge-of-stability threshold of ``optimizer`` (sgd, momentum, adam) at step size α."""
    if optimizer == "sgd":
        return gd_threshold(alpha)
    if optimizer == "momentum":
        return momentum_threshold(alpha, hparams.get("beta", 0.9))
    if optimizer == "adam":
        return adam_threshold(alpha, hparams.get("b1", 0.9))
    raise ArgumentError("optimizer", f"no edge-of-stability threshold for {optimizer!r}; "
                                     "known: sgd, momentum, adam")
