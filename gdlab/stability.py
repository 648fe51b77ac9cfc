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

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from gdlab.errors import ArgumentError

__all__ = ["LINEAR_OPTIMIZERS", "iteration_matrix", "roots", "error_weights", "spectral_radius",
           "converges", "critical_alpha", "oscillation_onset", "ErrorTerms", "error_terms",
           "dominance_step", "far_side"]

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


def error_weights(optimizer: str, alpha: ArrayLike, lam: ArrayLike,
                  beta: ArrayLike = 0.0) -> np.ndarray:
    r"""The weights a of the closed-form error e_t = a₁ z₁^t + a₂ z₂^t from s₀ = (1, 0) (scale by
    the initial error), z = :func:`roots`; shape broadcast + (2,), complex.

    e_t obeys the characteristic recurrence, so it is fixed by e₀ = 1 and e₁ = M₀₀:
    a₁ = (M₀₀ − z₂)/(z₁ − z₂), a₂ = (z₁ − M₀₀)/(z₁ − z₂); gradient descent has a = (1, 0). At a
    double root (z₁ = z₂, where e_t = (a + bt) z^t) the weights are not finite.
    """
    z = roots(optimizer, alpha, lam, beta)
    if optimizer == "sgd":
        return np.stack([np.ones(z.shape[:-1]), np.zeros(z.shape[:-1])], axis=-1) + 0j
    m00 = iteration_matrix(optimizer, alpha, lam, beta)[..., 0, 0]
    z1, z2 = z[..., 0], z[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([(m00 - z2) / (z1 - z2), (z1 - m00) / (z1 - z2)], axis=-1)


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
    """The largest stable α for −1 < β < 1: 2/λ, 2(1 + β)/λ, or for Nesterov 2(1 + β)/((1 + 2β)λ)
    when β ≥ −1/3 and (1 − 1/β)/λ below. Jury on z² − (1 + β)y·z + βy, y = 1 − αλ:
    1 + a₁ + a₀ = αλ > 0, 1 − a₁ + a₀ = 2(1 + β) − αλ(1 + 2β) > 0 and |β(1 − αλ)| < 1; the second
    binds first for β ≥ −1/3, the third below (both are 4/λ at β = −1/3)."""
    _check(optimizer)
    lam, b = np.broadcast_arrays(np.asarray(lam, np.float64), np.asarray(beta, np.float64))
    if optimizer == "sgd":
        return 2 / lam
    if optimizer == "momentum":
        return 2 * (1 + b) / lam
    with np.errstate(divide="ignore", invalid="ignore"):   # the branch not taken
        return np.where(b >= -1 / 3, 2 * (1 + b) / (1 + 2 * b), 1 - 1 / b) / lam


def oscillation_onset(optimizer: str, lam: ArrayLike, beta: ArrayLike = 0.0) -> np.ndarray:
    """The α above which the dominant root is not a positive real (−1 < β < 1).

    For −1 < β < 0, with x = αλ: heavy ball, z² − (1 + β − x)z + β: the roots' product β < 0
    makes them real and of opposite signs, and the one of the sign of their sum 1 + β − x
    dominates, so the error oscillates from x = 1 + β on (at x = 1 + β exactly the roots are ±√−β
    and e_t = z^t(a + b(−1)^t) with a > b > 0 keeps its sign). Nesterov, z² − (1 + β)y·z + βy with
    y = 1 − x: for y > 0 the product βy < 0 and the sum (1 + β)y > 0, so the positive root
    dominates; for y < 0 the product is > 0 and the sum < 0, so both roots are negative or
    complex: the onset is x = 1 (both roots are 0 there)."""
    _check(optimizer)
    lam, b = np.broadcast_arrays(np.asarray(lam, np.float64), np.asarray(beta, np.float64))
    if optimizer == "sgd":
        return 1 / lam
    with np.errstate(invalid="ignore"):   # the branch not taken (√β for β < 0)
        if optimizer == "momentum":
            return np.where(b >= 0, (1 - np.sqrt(b)) ** 2, 1 + b) / lam
        return np.where(b >= 0, ((1 - b) / (1 + b)) ** 2, 1.0) / lam

class ErrorTerms(NamedTuple):
    """Each run's closed-form error e_t = Σ_j a_j z_j^t q_(j), two terms per direction
    (:func:`roots`, :func:`error_weights`), seen through its dominant term."""

    z: np.ndarray          # (N, 2d) complex roots, direction i in columns 2i, 2i + 1
    a: np.ndarray          # (N, 2d) complex weights, the initial component included (0: not finite)
    rho: np.ndarray        # |z| of the dominant term (the largest |z| with a ≠ 0)
    theta: np.ndarray      # its argument in [0, π]: 0 a positive real root, π a negative one
    omega: np.ndarray      # its signed argument (a pair's term is A·ρ^t cos(ωt + φ))
    amp: np.ndarray        # its amplitude A: |a|, or 2|a| for a complex pair
    phase: np.ndarray      # φ = arg a
    others: np.ndarray     # O = Σ|a| of the other terms (the conjugate partner excluded)
    rho2: np.ndarray       # ρ₂: their largest |z| (0 if none)
    finite: np.ndarray     # bool: finite weights (no double root) and a term at all


def error_terms(optimizer: str, alpha: np.ndarray, lam: np.ndarray, beta: np.ndarray,
                c: np.ndarray) -> ErrorTerms:
    """:class:`ErrorTerms` of runs with (N,) α, β and (N, d) eigenvalues λ and initial error
    components c."""
    z = roots(optimizer, alpha[:, None], lam, beta[:, None])
    with np.errstate(invalid="ignore"):
        a = c[..., None] * error_weights(optimizer, alpha[:, None], lam, beta[:, None])
    n = len(z)
    z, a = z.reshape(n, -1), a.reshape(n, -1)
    finite = np.isfinite(a).all(axis=1)
    a = np.where(np.isfinite(a), a, 0.0)
    has = np.abs(a) > 0
    k = np.argmax(np.where(has, np.abs(z), -1.0), axis=1)
    rows = np.arange(n)
    zd, ad = z[rows, k], a[rows, k]
    pair = zd.imag != 0
    other = has.copy()
    other[rows, k] = False
    other[rows, k ^ 1] &= ~pair     # the conjugate root of the same direction
    return ErrorTerms(z, a, np.abs(zd), np.abs(np.angle(zd)), np.angle(zd),
                      np.abs(ad) * np.where(pair, 2.0, 1.0), np.angle(ad),
                      np.where(other, np.abs(a), 0.0).sum(axis=1),
                      np.where(other, np.abs(z), 0.0).max(axis=1, initial=0.0),
                      finite & has.any(axis=1))


def dominance_step(t: ErrorTerms) -> np.ndarray:
    """The step from which the dominant term's sign changes reverse the whole error vector: with
    D_t = A·ρ^t·cos(ωt + φ), min over t of D_t·D_{t+1} is −A²ρ^{2t+1}·sin²(θ/2), which outweighs
    the other terms' ⟨O_t, O_{t+1}⟩ ≤ O²ρ₂^{2t+1} by a factor 4 once
    A·sin(θ/2)·ρ^s ≥ 2·O·ρ₂^s: s = log(2·O/(A·sin(θ/2)))/log(ρ/ρ₂) (0 without others)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.log(2 * t.others / (t.amp * np.sin(t.theta / 2))) / np.log(t.rho / t.rho2)
    s = np.where(t.rho2 < t.rho, s, np.inf)
    return np.where(t.others > 0, np.maximum(s, 0.0), 0.0)


def far_side(t: ErrorTerms, s_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The step where the dominant term is first seen on the far side of a sign change after s_d,
    and its magnitude there (``gdlab.theory.oscillation_check``). With ω > 0 (cos is even) the
    zeros of cos(ωt + φ) are at ωt + φ = π/2 + kπ; on the next half period A·ρ^t·|cos(ωt + φ)|
    peaks where tan(ωt + φ) = log ρ/ω, so the largest integer step is one of the first step after
    the zero and the two around that peak. A negative root (ω = π) changes sign at every step."""
    w = np.maximum(np.abs(t.omega), 1e-300)
    phi = np.where(t.omega < 0, -t.phase, t.phase)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        k = np.ceil((w * s_d + phi - np.pi / 2) / np.pi)
        t_zero = (np.pi / 2 + k * np.pi - phi) / w
        first = np.floor(t_zero) + 1
        last = np.maximum(np.floor(t_zero + np.pi / w), first)
        peak = (np.arctan(np.log(t.rho) / w) + (k + 1) * np.pi - phi) / w
        best, at = np.zeros_like(t.rho), np.full_like(t.rho, np.inf)
        for step in (first, np.floor(peak), np.ceil(peak)):
            step = np.clip(step, first, last)
            seen = t.amp * t.rho ** step * np.abs(np.cos(w * step + phi))
            at = np.where(seen > best, step, at)
            best = np.maximum(best, np.where(np.isfinite(seen), seen, 0.0))
    negative = t.theta == np.pi
    s_neg = np.ceil(s_d) + 1
    with np.errstate(over="ignore", under="ignore"):
        at_neg = t.amp * t.rho ** s_neg
    return (np.where(negative, s_neg, at), np.where(negative, at_neg, best))
