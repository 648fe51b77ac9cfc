"""The curvature of a loss: the top eigenvalues of its Hessian ∇²L(w).

Dense for a few parameters — ``eigvalsh(jax.hessian(L)(w))`` — and, above that, Lanczos on
Hessian-vector products Hv = ∂/∂ε ∇L(w + εv) (``jax.jvp`` of ``jax.grad``), which never forms the
d × d matrix: m iterations build an orthonormal Krylov basis V (with full reorthogonalisation) and
the m × m tridiagonal T = VᵀHV, whose largest eigenvalues (Ritz values) converge to H's largest
from below, the top one first. Both are pure JAX functions of w: jit-able and vmappable over runs.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["DENSE_MAX", "LANCZOS_ITERS", "hvp", "dense_eigenvalues", "lanczos_eigenvalues",
           "top_eigenvalues"]

DENSE_MAX = 256       # parameters up to which the Hessian is formed and diagonalised exactly
LANCZOS_ITERS = 64    # Krylov dimension m: the top Ritz value is then accurate to ~1e-10 on
                      # smooth spectra (tests/test_curvature.py measures it)


def hvp(loss: Callable, w: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """The Hessian-vector product ∇²L(w) v, forward-over-reverse."""
    return jax.jvp(jax.grad(loss), (w,), (v,))[1]


def dense_eigenvalues(loss: Callable, w: jnp.ndarray, k: int = 1) -> jnp.ndarray:
    """The k largest eigenvalues of ∇²L(w), descending, from the dense Hessian."""
    flat = w.reshape(-1)
    h = jax.hessian(lambda x: loss(x.reshape(w.shape)))(flat)
    return jnp.linalg.eigvalsh(0.5 * (h + h.T))[::-1][:k]


def lanczos_eigenvalues(loss: Callable, w: jnp.ndarray, k: int = 1,
                        iters: int = LANCZOS_ITERS) -> jnp.ndarray:
    """The k largest Ritz values of ∇²L(w) after ``iters`` Lanczos steps, descending.

    The start vector is fixed (a normalised Gaussian from key 0), so the result is a deterministic
    function of w. If the Krylov space closes early (β_j ≈ 0: H restricted to it is exact), the
    remaining steps are skipped and T is padded with copies of its first Ritz diagonal entry, which
    lies inside the spectrum and adds no value above H's top.
    """
    d = w.size
    m = min(int(iters), d)
    if k > m:
        raise ValueError(f"k = {k} exceeds the Krylov dimension {m} (iters = {iters}, "
                         f"{d} parameters); raise iters")
    flat = w.reshape(-1)
    mv = lambda v: hvp(lambda x: loss(x.reshape(w.shape)), flat, v)
    v0 = jax.random.normal(jax.random.PRNGKey(0), (d,), flat.dtype)
    v0 = v0 / jnp.linalg.norm(v0)
    tiny = jnp.finfo(flat.dtype).eps

    def step(j, state):
        basis, alphas, betas, alive = state
        v = basis[j]
        u = mv(v)
        a = jnp.vdot(v, u)
        # full reorthogonalisation against every basis vector so far (twice is enough; the rows
        # not yet filled are zero)
        for _ in range(2):
            u = u - basis.T @ (basis @ u)
        b = jnp.linalg.norm(u)
        scale = jnp.maximum(jnp.abs(a), jnp.max(jnp.abs(alphas)))
        alive_next = alive & (b > tiny * jnp.maximum(scale, 1.0) * 10)
        nxt = jnp.where(alive_next, u / jnp.where(b > 0, b, 1.0), 0.0)
        basis = basis.at[jnp.minimum(j + 1, m - 1)].set(nxt)   # (after the last step: unused)
        alphas = alphas.at[j].set(jnp.where(alive, a, alphas[0]))
        betas = betas.at[j].set(jnp.where(alive_next, b, 0.0))
        return basis, alphas, betas, alive_next

    basis = jnp.zeros((m, d), flat.dtype).at[0].set(v0)
    init = (basis, jnp.zeros(m, flat.dtype), jnp.zeros(m, flat.dtype), jnp.array(True))
    _, alphas, betas, _ = jax.lax.fori_loop(0, m, step, init)
    t = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    return jnp.linalg.eigvalsh(t)[::-1][:k]


def top_eigenvalues(loss: Callable, w: jnp.ndarray, k: int = 1, *,
                    iters: int = LANCZOS_ITERS, dense_max: int = DENSE_MAX) -> jnp.ndarray:
    """The k largest eigenvalues of ∇²L(w): dense up to ``dense_max`` parameters, else Lanczos."""
    if w.size <= dense_max:
        return dense_eigenvalues(loss, w, k)
    return lanczos_eigenvalues(loss, w, k, iters)
