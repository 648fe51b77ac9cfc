r"""Exact evaluation of linear optimizers on quadratics, one eigen-direction at a time.

On a quadratic with Hessian eigenvalues λ_i, ``sgd``, ``momentum`` and ``nesterov`` act on each
eigen-direction as the 2×2 map s_{t+1} = M(α, β, λ_i) s_t of ``gdlab.stability`` (state
s = (e_i, v_i), starting from (c_i, 0) with c_i = q_iᵀ(w₀ − w*)). Iterating M in float64 gives the
error e_t of every run *as theory has it* — no problem gradient, no optax — and from it the
quantities the simulation measures, with the same definitions: the first t with ‖e_t‖ < tol, sign
flips of ⟨e_{t+1}, e_t⟩ while both norms are above the noise floor, and the growth of the largest
error from the early to the late half of the horizon.

A run is *rounding-sensitive* when those quantities would change under perturbations of the size of
float rounding in the simulated dtype: growth within twice the rounding band of 1 (but not exactly
1), flips that appear or vanish when the noise floor is scaled by 4 or 1/4, or ‖e_t‖ within
accumulated rounding of tol while steps-to-tol is undecided: 4 eps·(|w*| + |e₀|)·√k, with k the
number of steps whose rounding the error still remembers (t, or 1/(1 − ρ) when that is smaller) and
√ for rounding errors that add up like a random walk (the worst case, k instead of √k, flagged ~500×
more runs of which 0.2 % differed, by one step, in the linear-regression sweep).
"""

from __future__ import annotations

import numpy as np

from gdlab import stability
from gdlab.regimes import decide

__all__ = ["ModePrediction", "evaluate"]

_MAX_ELEMENTS = 2_000_000  # runs × directions evaluated at once (bounded memory)


class ModePrediction:
    def __init__(self, regime: np.ndarray, steps_to_tol: np.ndarray, sensitive: np.ndarray,
                 rho: np.ndarray, growth: np.ndarray) -> None:
        self.regime, self.steps_to_tol, self.sensitive = regime, steps_to_tol, sensitive
        self.rho, self.growth = rho, growth


def evaluate(optimizer: str, alpha: np.ndarray, beta: np.ndarray, lam: np.ndarray, c: np.ndarray,
             *, steps: int, tol: float, floor: np.ndarray, band: np.ndarray, eps: float,
             scale: np.ndarray) -> ModePrediction:
    """Predicted statistics for runs with flat inputs.

    Args:
      alpha, beta: (N,) hyperparameters; lam, c: (N, d) eigenvalues and initial components;
      floor, band, scale: (N,) noise floor, log-growth band and magnitude |w*| + |e₀| of the
      simulation; eps: its machine epsilon.
    """
    n, d = np.shape(lam)
    chunk = max(1, _MAX_ELEMENTS // max(d, 1))
    parts = [_evaluate(optimizer, alpha[s:s + chunk], beta[s:s + chunk], lam[s:s + chunk],
                       c[s:s + chunk], steps, tol, floor[s:s + chunk], band[s:s + chunk], eps,
                       scale[s:s + chunk]) for s in range(0, n, chunk)]
    return ModePrediction(*(np.concatenate(x) for x in zip(*parts)))


def _norm(e: np.ndarray) -> np.ndarray:
    """‖e‖ per run of an (n, d) array of eigen-components."""
    return np.sqrt(np.sum(e * e, axis=1))


def _evaluate(optimizer, alpha, beta, lam, c, steps, tol, floor, band, eps, scale):
    M = stability.iteration_matrix(optimizer, alpha[:, None], lam, beta[:, None])  # (n, d, 2, 2)
    active = c != 0
    rho_modes = stability.spectral_radius(optimizer, alpha[:, None], lam, beta[:, None])
    rho = np.where(active, rho_modes, 0.0).max(axis=1)

    e, v = c.astype(np.float64), np.zeros_like(c, dtype=np.float64)
    norm0 = _norm(e)
    half = steps // 2
    early, late = norm0.copy(), np.zeros_like(norm0)
    first = np.where(norm0 < tol, 0, -1)
    flips = {k: np.zeros(len(e), bool) for k in (0.25, 1.0, 4.0)}
    norm = norm0
    near_tol = np.zeros(len(e), bool)
    memory = np.where(rho < 1, 1.0 / np.maximum(1.0 - rho, 1e-300), np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            e_new = M[..., 0, 0] * e + M[..., 0, 1] * v
            v = M[..., 1, 0] * e + M[..., 1, 1] * v
            norm_new = _norm(e_new)
            negative = np.sum(e_new * e, axis=1) < 0
            for k in flips:
                flips[k] |= negative & (norm > k * floor) & (norm_new > k * floor)
            if t + 1 > half:
                late = np.maximum(late, np.where(np.isfinite(norm_new), norm_new, np.inf))
            else:
                early = np.maximum(early, np.where(np.isfinite(norm_new), norm_new, np.inf))
            # Within accumulated rounding of tol at a step that decides steps-to-tol.
            slack = 4.0 * eps * scale * np.sqrt(np.minimum(t + 2.0, memory))
            undecided = first < 0
            near_tol |= undecided & (np.abs(norm_new - tol) <= slack)
            first = np.where(undecided & (norm_new < tol), t + 1, first)
            e, norm = e_new, norm_new
    with np.errstate(divide="ignore", invalid="ignore"):
        log_g = np.log(late / early)
    log_g = np.where(np.isnan(log_g), np.inf, log_g)
    at_optimum = norm0 <= floor
    regime = decide(log_g > 0, log_g < 0, flips[1.0], at_optimum)
    sensitive = ((np.abs(log_g) <= 2 * band) & (log_g != 0)) | (flips[0.25] != flips[4.0])
    sensitive = (sensitive | near_tol) & ~at_optimum
    return regime, first.astype(np.int32), sensitive, rho, np.exp(log_g)
