r"""Long-run dynamics of gradient descent on non-quadratic losses: cycles, chaos, Lyapunov
exponents.

GD is the map f(w) = w − α∇L(w). After a transient, the last ``window`` iterates of each run are
examined (host side, float64 of the simulated values):

* period p = the smallest p ≤ ``max_period`` with |w_{t+p} − w_t| ≤ √eps·scale over the window
  (p = 1: a fixed point; 0: none found), except that a run still converging geometrically to w*
  (Aitken's extrapolation of |w_t − w*| reaches 0) is a fixed point even if it is slow;
* the Lyapunov exponent λ_L = mean_t log|f'(w_t)| = mean_t log|1 − α∇²L(w_t)| over the window.
  At an attracting fixed point w* it equals log|1 − α∇²L(w*)| — a closed form the tests check.

Regimes (decided by ``gdlab.regimes.decide_orbit``): a run that left the float range keeps the
engine's diverging regime; p = 1 is converging (monotone or oscillating, from the engine's sign
flips); p ≥ 2 is ``periodic``; no period and λ_L > 10⁻³ is ``chaotic``; no period otherwise (slow
convergence near a bifurcation, or a cycle longer than ``max_period``) is ``periodic`` with
period 0.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import numpy as np
from numpy.typing import ArrayLike

from gdlab._sweep import sweep
from gdlab.errors import ArgumentError
from gdlab.interfaces import WithHessian, WithOptimum
from gdlab.regimes import decide_orbit

__all__ = ["Orbits", "orbits"]


class Orbits(NamedTuple):
    alpha: np.ndarray       # (N,)
    late: np.ndarray        # (N, window) float64: the last iterates
                            # (frozen runs: NaN-free, see mask)
    diverged: np.ndarray    # (N,) bool
    period: np.ndarray      # (N,) int32: 1 fixed point, p ≥ 2 cycle, 0 none found, −1 diverged
    lyapunov: np.ndarray    # (N,) float64 (0 for diverged runs, where it is undefined)
    regime: np.ndarray      # (N,) int8, gdlab.regimes.Regime
    result: object          # the underlying SweepResult (engine statistics)


def _hessian(problem):
    if isinstance(problem, WithHessian):
        return lambda w: np.asarray(problem.hessian(w), np.float64)
    h = jax.vmap(jax.grad(problem.grad))
    return lambda w: np.asarray(h(w.ravel()), np.float64).reshape(w.shape)


def orbits(problem: WithOptimum, alphas: ArrayLike | Mapping[str, object], *,
           w0: ArrayLike = 0.5, steps: int = 1200, window: int = 256, max_period: int = 64,
           dtype: str = "float32", progress: bool | None = None) -> Orbits:
    """Simulate ``steps`` GD steps per α and classify the last ``window`` iterates."""
    if not 2 <= window <= steps:
        raise ArgumentError("window", f"{window!r} must be in [2, steps = {steps}]")
    if not 1 <= max_period <= window // 2:
        raise ArgumentError("max_period",
                            f"{max_period!r} must be in [1, window/2 = {window // 2}]")
    res = sweep(problem, alphas, w0=w0, steps=steps, tol=1e-6, record_every=1, dtype=dtype,
                progress=progress)
    late = res.trajectory[:, -window:].astype(np.float64)
    diverged = res.diverged_at >= 0
    eps = float(np.finfo(res.dtype).eps)
    scale = np.abs(late).max(axis=1) + np.abs(res.w_star)
    ptol = np.sqrt(eps) * scale
    period = np.zeros(len(late), np.int32)
    for p in range(max_period, 0, -1):  # descending, so the smallest matching p wins
        ok = np.max(np.abs(late[:, p:] - late[:, :-p]), axis=1) <= ptol
        period = np.where(ok, p, period)
    # Slow convergence to w* (near a bifurcation |f'(w*)| ≈ 1) can look like a 2-cycle over a short
    # window. The distance d_t = |w_t − w*| at three equally spaced even steps extrapolates
    # (Aitken's Δ²) to its limit: 0 for convergence to w*, the cycle's amplitude for a cycle.
    k = 2 * (window // 4)
    w_star = np.broadcast_to(np.asarray(res.w_star, np.float64), (len(late),))
    d0, d1, d2 = (np.abs(late[:, i] - w_star) for i in (0, k, 2 * k - (2 * k >= window) * 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = d2 - (d2 - d1) ** 2 / ((d2 - d1) - (d1 - d0))
    geometric = (d0 > d1) & (d1 > d2) & ((d0 - d1) > (d1 - d2))
    period = np.where(geometric & (np.abs(limit) <= ptol), 1, period)
    alpha = res.alpha.astype(np.float64)
    with np.errstate(divide="ignore"):
        deriv = np.abs(1.0 - alpha[:, None] * _hessian(problem)(late))
        lyap = np.mean(np.log(np.maximum(deriv, 1e-300)), axis=1)
    lyap = np.where(diverged, 0.0, lyap)
    period = np.where(diverged, -1, period)

    regime = decide_orbit(period, lyap, res.flips > 0, alpha == 0, diverged, res.regime)
    return Orbits(res.alpha, late, diverged, period, lyap, regime, res)
