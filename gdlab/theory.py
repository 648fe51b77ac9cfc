r"""Closed-form predictions for gradient descent on a quadratic, and their check against simulation.

With curvature λ and step size α the error e_t = w_t − w* obeys (homework Q4.3)

    e_{t+1} = e_t − αλ e_t = r e_t,   r = 1 − αλ,   so |e_t| = |r|^t |e_0|.

Hence: monotone convergence for 0 ≤ r < 1 (0 < αλ ≤ 1), oscillating convergence for −1 < r < 0
(1 < αλ < 2), a period-2 cycle at r = −1 (αλ = 2), divergence for |r| > 1, no motion at α = 0; and
the first t with |e_t| < tol is the smallest t ≥ 0 with |r|^t |e_0| < tol (−1 if beyond the horizon T).

Predictions are evaluated in float64 on exactly the (dtype-rounded) numbers the simulation used.
A run is *rounding-sensitive* when float rounding, not the formula, decides its outcome: its |r| is
within 2δ of 1 without being exactly 1, its first step already lands in the rounding noise, or its
predicted |e_t| is within accumulated rounding of ``tol`` at the decisive step, or its magnitudes
sit at the underflow threshold (where subnormals are flushed on CPUs). Such runs are
reported and left out of the agreement fraction, never silently counted either way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gdlab.regimes import Regime

__all__ = ["Prediction", "Agreement", "rate", "predict_regime", "predict_steps_to_tol",
           "predict", "agreement", "critical_alphas"]


class Prediction(NamedTuple):
    r: np.ndarray                # float64, 1 − αλ
    regime: np.ndarray           # int8
    steps_to_tol: np.ndarray     # int32
    sensitive: np.ndarray        # bool: rounding decides this run


class Agreement(NamedTuple):
    fraction: float              # agreeing runs / comparable (non-sensitive) runs
    n_runs: int
    n_compared: int
    n_sensitive: int
    regime_mismatches: int
    steps_mismatches: int

    def as_dict(self) -> dict:
        return self._asdict()


def rate(alpha, curvature) -> np.ndarray:
    """r = 1 − αλ in float64."""
    return 1.0 - np.asarray(alpha, np.float64) * np.asarray(curvature, np.float64)


def critical_alphas(curvature) -> dict[str, np.ndarray]:
    """The α at which the regime changes: oscillation starts at 1/λ, divergence at 2/λ."""
    lam = np.asarray(curvature, np.float64)
    return {"oscillation": 1.0 / lam, "divergence": 2.0 / lam}


def predict_regime(r, err0) -> np.ndarray:
    """Regime from r = 1 − αλ; a run started at the optimum (|e_0| = 0) is converged."""
    r = np.asarray(r, np.float64)
    regime = np.select(
        [r == 1.0, r > 1.0, r >= 0.0, r > -1.0, r == -1.0],
        [Regime.STALLED, Regime.DIVERGING_MONOTONE, Regime.CONVERGING_MONOTONE,
         Regime.CONVERGING_OSCILLATING, Regime.BOUNDED_OSCILLATION],
        default=Regime.DIVERGING_OSCILLATING)
    return np.where(np.asarray(err0) == 0.0, Regime.CONVERGING_MONOTONE, regime).astype(np.int8)


def _err_at(q, err0, t):
    """|r|^t |e_0| with 0^0 = 1."""
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        return np.where(t == 0, err0, q ** t * err0)


def predict_steps_to_tol(r, err0, tol: float, steps: int) -> np.ndarray:
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


def predict(result) -> Prediction:
    """Theory for a :class:`gdlab.SweepResult` of plain gradient descent on a quadratic."""
    if result.optimizer != "sgd":
        raise ValueError(f"theory: no closed form here for optimizer {result.optimizer!r}; "
                         "compare against 'sgd' runs")
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
                      sensitive=near_one | unobservable | near_tol | underflow)


def agreement(result, prediction: Prediction) -> Agreement:
    """Fraction of comparable runs whose simulated regime *and* steps-to-tol equal the prediction."""
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
