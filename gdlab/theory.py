r"""Closed-form predictions for gradient descent on a quadratic, and their check against simulation.

With curvature λ and step size α the error e_t = w_t − w* obeys (homework Q4.3)

    e_{t+1} = e_t − αλ e_t = r e_t,   r = 1 − αλ,   so |e_t| = |r|^t |e_0|.

Hence: monotone convergence for 0 ≤ r < 1 (0 < αλ ≤ 1), oscillating convergence for −1 < r < 0
(1 < αλ < 2), a period-2 cycle at r = −1 (αλ = 2), divergence for |r| > 1, no motion at α = 0; and
the first t with |e_t| < tol is the smallest t ≥ 0 with |r|^t |e_0| < tol (−1 if beyond
the horizon T).

Predictions are evaluated in float64 on exactly the (dtype-rounded) numbers the simulation used.
A run is *rounding-sensitive* when float rounding, not the formula, decides its outcome: its |r| is
within 2δ of 1 without being exactly 1, its first step already lands in the rounding noise, or its
predicted |e_t| is within accumulated rounding of ``tol`` at the decisive step, or its magnitudes
sit at the underflow threshold (where subnormals are flushed on CPUs). Such runs are
reported and left out of the agreement fraction, never silently counted either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from gdlab import modes, stability
from gdlab.errors import ArgumentError
from gdlab.interfaces import Linear
from gdlab.regimes import Regime, decide, late_window

if TYPE_CHECKING:
    from gdlab._sweep import SweepResult

__all__ = ["Prediction", "Agreement", "rate", "predict_regime", "predict_steps_to_tol",
           "predict", "agreement", "critical_alphas", "region_check"]


class Prediction(NamedTuple):
    r: np.ndarray | None         # float64, 1 − αλ_max for gradient descent; None for momentum
    regime: np.ndarray           # int8
    steps_to_tol: np.ndarray     # int32
    sensitive: np.ndarray        # bool: rounding decides this run
    rho: np.ndarray              # float64, asymptotic contraction factor (spectral radius)


class Agreement(NamedTuple):
    fraction: float              # agreeing runs / comparable (non-sensitive) runs
    n_runs: int
    n_compared: int
    n_sensitive: int
    regime_mismatches: int
    steps_mismatches: int

    def as_dict(self) -> dict:
        return self._asdict()


def rate(alpha: ArrayLike, curvature: ArrayLike) -> np.ndarray:
    """r = 1 − αλ in float64."""
    return 1.0 - np.asarray(alpha, np.float64) * np.asarray(curvature, np.float64)


def critical_alphas(curvature: ArrayLike) -> dict[str, np.ndarray]:
    """The α at which the regime changes: oscillation starts at 1/λ, divergence at 2/λ."""
    lam = np.asarray(curvature, np.float64)
    return {"oscillation": 1.0 / lam, "divergence": 2.0 / lam}


def predict_regime(r: ArrayLike, err0: ArrayLike) -> np.ndarray:
    """Regime from r = 1 − αλ through the table of ``gdlab.regimes.decide``: |e_t| = |r|^t |e_0|
    grows for |r| > 1, shrinks for |r| < 1 and changes sign each step for r < 0; a run started at
    the optimum (|e_0| = 0) is converged. A NaN r counts as growing and oscillating."""
    r, at_optimum = np.broadcast_arrays(np.asarray(r, np.float64), np.asarray(err0) == 0.0)
    q = np.abs(r)
    return decide(~(q <= 1.0), q < 1.0, ~(r >= 0.0), at_optimum)


def _err_at(q, err0, t):
    """|r|^t |e_0| with 0^0 = 1."""
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        return np.where(t == 0, err0, q ** t * err0)


def predict_steps_to_tol(r: ArrayLike, err0: ArrayLike, tol: float, steps: int) -> np.ndarray:
    """Smallest t in [0, steps] with |r|^t |e_0| < tol, else −1."""
    q, err0 = np.abs(np.asarray(r, np.float64)), np.asarray(err0, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        guess = np.ceil(np.log(tol / np.where(err0 > 0, err0, 1.0)) / np.log(q))
    guess = np.where(np.isfinite(guess), np.clip(guess, 0, steps + 1), steps + 1).astype(np.int64)
    # Correct the floating-point guess by checking its neighbours exactly.
    t = np.full(np.shape(q), -1, np.int64)
    for cand in (guess + 1, guess, guess - 1):
        ok = (cand >= 0) & (cand <= steps) & (_err_at(q, err0, cand) < tol)
        t = np.where(ok, cand, t)
    t = np.where((q == 0.0) & (err0 >= tol), min(1, steps), t)
    t = np.where(err0 < tol, 0, t)
    return t.astype(np.int32)


def predict(result: SweepResult) -> Prediction:
    """Theory for a :class:`gdlab.SweepResult` of a linear optimizer on a quadratic.

    Scalar gradient descent uses the closed forms above; n-D problems and momentum evaluate the
    derived per-direction linear map exactly (``gdlab.modes``).
    """
    if result.optimizer not in stability.LINEAR_OPTIMIZERS:
        raise ArgumentError("theory", f"no closed form here for optimizer {result.optimizer!r}; "
                         f"theory covers {', '.join(stability.LINEAR_OPTIMIZERS)}")
    if not isinstance(result.problem, Linear):
        raise ArgumentError("theory", f"{type(result.problem).__name__} is not a quadratic; "
                         "no closed form")
    if result.optimizer != "sgd" or result.w_star.ndim > len(result.grid_shape):
        return _predict_modes(result)
    lam = result.curvature
    r = rate(result.hparams["alpha"], lam)
    w_star = result.w_star
    err0 = np.abs(np.asarray(result.w0, np.float64) - w_star)
    eps = float(np.finfo(result.dtype).eps)
    regime = predict_regime(r, err0)
    steps = predict_steps_to_tol(r, err0, result.tol, result.steps)

    q = np.abs(r)
    near_one = (np.abs(q - 1.0) <= 2.0 * result.delta) & (q != 1.0)
    unobservable = (r < 0) & (q * err0 <= 4.0 * result.noise_floor) & (err0 > 0)
    # Rounding accumulated by step t: each step adds a few ulps of |w*| + |e|, damped by |r| < 1.
    scale = np.abs(w_star) + err0
    with np.errstate(divide="ignore"):
        memory = np.where(q < 1.0, 1.0 / np.maximum(1.0 - q, 1e-300), np.inf)
    near_tol = np.zeros(np.shape(r), bool)
    decisive = np.where(steps >= 0, steps, result.steps)
    for t in (decisive - 1, decisive):
        valid = (t >= 0) & (t <= result.steps)
        slack = 4.0 * eps * scale * np.minimum(t + 1.0, memory)
        near_tol |= valid & (np.abs(_err_at(q, err0, np.maximum(t, 0)) - result.tol) <= slack)
    # Magnitudes near the underflow threshold: CPUs flush subnormals to zero, GPUs do not.
    underflow = (scale > 0) & (scale < np.finfo(result.dtype).tiny / eps)
    return Prediction(r=r, regime=regime, steps_to_tol=steps,
                      sensitive=near_one | unobservable | near_tol | underflow, rho=np.abs(r))


def _predict_modes(result: SweepResult) -> Prediction:
    grid = result.grid_shape
    nd = result.w_star.ndim > len(grid)
    lam = np.asarray(result.problem.eigenvalues(), np.float64)
    lam = lam if nd else lam[..., None]
    d = lam.shape[-1]
    lam = np.broadcast_to(lam, grid + (d,)).reshape(-1, d)
    e0 = np.asarray(result.w0, np.float64) - result.w_star
    c = e0 @ np.asarray(result.problem.Q, np.float64) if nd else e0[..., None]
    c = c.reshape(-1, d)
    flat = lambda a: np.broadcast_to(np.asarray(a, np.float64), grid).ravel()
    alpha, beta = flat(result.hparams["alpha"]), flat(result.hparams.get("beta", 0.0))
    scale = flat(np.sqrt(np.sum(result.w_star.reshape(len(c), -1) ** 2, axis=1)).reshape(grid)
                 + np.sqrt(np.sum(c * c, axis=1)).reshape(grid))
    eps = float(np.finfo(result.dtype).eps)
    window = late_window(result.steps)
    mp = modes.evaluate(result.optimizer, alpha, beta, lam, c, steps=result.steps, tol=result.tol,
                        floor=flat(result.noise_floor), band=window * flat(result.delta), eps=eps,
                        scale=scale)
    underflow = (scale > 0) & (scale < np.finfo(result.dtype).tiny / eps)
    r = (1.0 - alpha * lam.max(axis=1)).reshape(grid) if result.optimizer == "sgd" else None
    return Prediction(r=r, regime=mp.regime.reshape(grid),
                      steps_to_tol=mp.steps_to_tol.reshape(grid),
                      sensitive=(mp.sensitive | underflow).reshape(grid), rho=mp.rho.reshape(grid))


def agreement(result: SweepResult, prediction: Prediction) -> Agreement:
    """Fraction of comparable runs whose simulated regime *and* steps-to-tol equal the
    prediction."""
    keep = ~prediction.sensitive
    regime_ok = result.regime == prediction.regime
    steps_ok = result.steps_to_tol == prediction.steps_to_tol
    n_compared = int(keep.sum())
    agree = int((keep & regime_ok & steps_ok).sum())
    return Agreement(
        fraction=agree / n_compared if n_compared else 1.0, n_runs=int(keep.size),
        n_compared=n_compared, n_sensitive=int(prediction.sensitive.sum()),
        regime_mismatches=int((keep & ~regime_ok).sum()),
        steps_mismatches=int((keep & ~steps_ok).sum()))


_CONVERGING = (Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING)


def region_check(result: SweepResult, prediction: Prediction) -> dict:
    """The closed-form stability region (``gdlab.stability.converges``) against the simulation.

    A cell is in the *band* around the boundary when its asymptotic factor ρ cannot be told from 1
    within the horizon — |log ρ|·(T/2) ≤ 1, growth or decay by less than a factor e over the half of
    the horizon that the growth statistic compares — or when rounding decides it. Outside the band
    the simulated "converges" must equal the closed form. The boundary distance is, per value of the
    other axes, |α̂* − α*| between the simulated edge (midpoint between the largest converging α and
    the next grid value) and the closed-form critical α.
    """
    grid = result.grid_shape
    lam = np.asarray(result.problem.eigenvalues(), np.float64)
    nd = result.w_star.ndim > len(grid)
    lam = np.broadcast_to(lam if nd else lam[..., None], grid + (lam.shape[-1] if nd else 1,))
    alpha = np.broadcast_to(np.asarray(result.hparams["alpha"], np.float64), grid)
    beta = np.broadcast_to(np.asarray(result.hparams.get("beta", 0.0), np.float64), grid)
    closed = stability.converges(result.optimizer, alpha[..., None], lam, beta[..., None]).all(-1)
    simulated = np.isin(result.regime, _CONVERGING)
    window = late_window(result.steps)
    with np.errstate(divide="ignore"):
        band = (np.abs(np.log(prediction.rho)) * window <= 1.0) | prediction.sensitive
    keep = ~band
    fraction = float((simulated == closed)[keep].mean()) if keep.any() else 1.0
    # Boundary distance along α (axis 0), for each value of the other axes.
    a = result.alpha.astype(np.float64)
    crit = stability.critical_alpha(result.optimizer, lam.max(-1), beta)[0]
    dist = []
    for idx in np.ndindex(grid[1:]):
        conv = simulated[(slice(None),) + idx]
        inside = np.flatnonzero(conv)
        if inside.size == 0 or inside[-1] == len(a) - 1:
            continue
        edge = 0.5 * (a[inside[-1]] + a[inside[-1] + 1])
        dist.append(abs(edge - crit[idx]))
    step = float(np.max(np.diff(a))) if a.size > 1 else 0.0
    return {"fraction": fraction, "n_compared": int(keep.sum()), "n_band": int(band.sum()),
            "max_boundary_distance": max(dist) if dist else None, "alpha_grid_step": step,
            "band": "|log ρ|·T/2 ≤ 1 or rounding-sensitive"}
