r"""Stability regions of linear optimizers on a quadratic, derived in optax's own update convention.

Along an eigen-direction with curvature λ the gradient is g = λe (e = w − w*), and each optimizer is
a linear map of its state s = (e, v) (v: the momentum trace, ``optax.trace``):

* ``sgd`` — e ← (1 − αλ)e. Converges iff 0 < αλ < 2; oscillates iff αλ > 1.
* ``momentum`` (heavy ball, ``optax.sgd(α, momentum=β)``): v ← g + βv, e ← e − αv, so

      M = [[1 − αλ, −αβ], [λ, β]]  →  char. polynomial  z² − (1 + β − αλ) z + β = 0.

  By the Jury criterion (|a₀| < 1, 1 ± a₁ + a₀ > 0 for z² + a₁z + a₀) it converges iff
  |β| < 1 and 0 < αλ < 2(1 + β). For 0 ≤ β < 1 the roots are complex (the error rotates) for
  (1 − √β)² < αλ < (1 + √β)² and both negative beyond, so the error oscillates iff αλ > (1 − √β)².
* ``nesterov`` (``optax.sgd(α, momentum=β, nesterov=True)``): v ← g + βv, e ← e − α(g + βv), so

      e' = (1 − αλ(1 + β)) e − αβ² v,   v' = λe + βv,
      z² − (1 + β)(1 − αλ) z + β(1 − αλ) = 0.

  Jury: 1 + a₁ + a₀ = αλ > 0, 1 − a₁ + a₀ = 2(1 + β) − αλ(1 + 2β) > 0, |β(1 − αλ)| < 1; for
  0 ≤ β < 1 it converges iff 0 < αλ < 2(1 + β)/(1 + 2β). The dominant root is not a positive real
  (the error oscillates) iff αλ > ((1 − β)/(1 + β))².

At β = 0 both reduce to gradient descent. Adam has no such closed form (it is not linear in the
gradient); gdlab shows its map empirically only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from gdlab.errors import ArgumentError

__all__ = ["LINEAR_OPTIMIZERS", "iteration_matrix", "roots", "spectral_radius", "converges",
           "critical_alpha", "oscillation_onset"]

LINEAR_OPTIMIZERS = ("sgd", "momentum", "nesterov")


def _check(optimizer: str):
    if optimizer not in LINEAR_OPTIMIZERS:
        raise ArgumentError("optimizer", f"optimizer {optimizer!r}: no closed-form stability "
                            f"region; known for {', '.join(LINEAR_OPTIMIZERS)}", prefix=False)


def iteration_matrix(optimizer: str, alpha: ArrayLike, lam: ArrayLike,
                     beta: ArrayLike = 0.0) -> np.ndarray:
    """M with s_{t+1} = M s_t for s = (e, v), shape broadcast(α, λ, β) + (2, 2), float64."""
    _check(optimizer)
    a, lam, b = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (alpha, lam, beta)))
    if optimizer == "sgd":
        b = np.zeros_like(b)
    M = np.zeros(a.shape + (2, 2))
    if optimizer == "nesterov":
        M[..., 0, 0] = 1 - a * lam * (1 + b)
        M[..., 0, 1] = -a * b * b
    else:  # sgd and heavy ball: e' = e − α(λe + βv)
        M[..., 0, 0] = 1 - a * lam
        M[..., 0, 1] = -a * b
    M[..., 1, 0] = lam
    M[..., 1, 1] = b
    return M


def roots(optimizer: str, alpha: ArrayLike, lam: ArrayLike,
          beta: ArrayLike = 0.0) -> np.ndarray:
    """The two roots of the characteristic polynomial (complex), shape broadcast + (2,)."""
    _check(optimizer)
    a, lam, b = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (alpha, lam, beta)))
    x = a * lam
    if optimizer == "sgd":
        return np.stack([1 - x + 0j, np.zeros_like(x) + 0j], axis=-1)
    if optimizer == "momentum":
        tr, det = 1 + b - x, b
    else:
        tr, det = (1 + b) * (1 - x), b * (1 - x)
    disc = np.sqrt(tr * tr - 4 * det + 0j)
    return np.stack([(tr + disc) / 2, (tr - disc) / 2], axis=-1)


def spectral_radius(optimizer: str, alpha: ArrayLike, lam: ArrayLike,
                    beta: ArrayLike = 0.0) -> np.ndarray:
    """ρ(M) = max |root|: the asymptotic contraction factor per step."""
    return np.abs(roots(optimizer, alpha, lam, beta)).max(axis=-1)


def converges(optimizer: str, alpha: ArrayLike, lam: ArrayLike,
              beta: ArrayLike = 0.0) -> np.ndarray:
    """The closed-form region (Jury criterion), as inequalities — no roots computed."""
    _check(optimizer)
    a, lam, b = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (alpha, lam, beta)))
    x = a * lam
    if optimizer == "sgd":
        return (x > 0) & (x < 2)
    if optimizer == "momentum":
        return (np.abs(b) < 1) & (x > 0) & (x < 2 * (1 + b))
    return (x > 0) & (2 * (1 + b) - x * (1 + 2 * b) > 0) & (np.abs(b * (1 - x)) < 1)


def critical_alpha(optimizer: str, lam: ArrayLike, beta: ArrayLike = 0.0) -> np.ndarray:
    """The largest stable α for 0 ≤ β < 1: 2/λ, 2(1 + β)/λ, or 2(1 + β)/((1 + 2β)λ)."""
    _check(optimizer)
    lam, b = np.broadcast_arrays(np.asarray(lam, np.float64), np.asarray(beta, np.float64))
    if optimizer == "sgd":
        return 2 / lam
    if optimizer == "momentum":
        return 2 * (1 + b) / lam
    return 2 * (1 + b) / ((1 + 2 * b) * lam)


def oscillation_onset(optimizer: str, lam: ArrayLike, beta: ArrayLike = 0.0) -> np.ndarray:
    """The α above which the dominant root is not a positive real (0 ≤ β < 1)."""
    _check(optimizer)
    lam, b = np.broadcast_arrays(np.asarray(lam, np.float64), np.asarray(beta, np.float64))
    if optimizer == "sgd":
        return 1 / lam
    with np.errstate(invalid="ignore", divide="ignore"):  # β < 0: no real onset (NaN)
        if optimizer == "momentum":
            return (1 - np.sqrt(b)) ** 2 / lam
        return ((1 - b) / (1 + b)) ** 2 / lam
