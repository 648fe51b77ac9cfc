r"""Closed-form predictions for gradient descent on a quadratic, and their check against simulation.

With curvature λ and step size α the error e_t = w_t − w* obeys (homework Q4.3)

    e_{t+1} = e_t − αλ e_t = r e_t,   r = 1 − αλ,   so |e_t| = |r|^t |e_0|.

Hence: monotone convergence for 0 ≤ r < 1 (0 < αλ ≤ 1), oscillating convergence for −1 < r < 0
(1 < αλ < 2), a period-2 cycle at r = −1 (αλ = 2), divergence for |r| > 1, no motion at α = 0; and
the first t with |e_t| < tol is the smallest t ≥ 0 with |r|^t |e_0| < tol (−1 if beyond
the horizon T).

Predictions are evaluated in float64 on exactly the (dtype-rounded) numbers the simulation used:
λ = x² is computed in float64 from the rounded x (not rounded again), α is the rounded α.
A run is *rounding-sensitive* when float rounding, not the formula, decides its outcome
(``Prediction.why`` names the reason): its |r| is within 2δ of 1 without being exactly 1, rounding
decides the sign of its first step (:func:`_sign_by_rounding`), its oscillation stays below the
noise floor from the first step on, its largest |e_t| is within rounding of the noise floor (a run
whose error never rises above the floor is at the optimum, ``gdlab.regimes.quiet``: predicted
``converging_monotone``), its predicted |e_t| is within accumulated rounding of ``tol``
at the decisive step, or its magnitudes sit at the underflow threshold (where subnormals are
flushed on CPUs) — |w*| + |e₀|, or a residual, gradient or update the run computes before its
steps-to-tol is decided (``gdlab.modes.gradient_gain``); for n-D problems and momentum see
``gdlab.modes``. Such runs are reported and left out of the agreement fraction, never silently
counted either way.

That agreement compares the simulation with the same linear map under the same definitions, so it
cannot see a defect those definitions share. :func:`closed_form` compares it with the closed forms
of ``gdlab.stability`` instead — the Jury region, the oscillation onsets, the roots' moduli —
each outside a band it derives and counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from gdlab import modes, stability
from gdlab.engine import divergence_bound, flip_floor
from gdlab.errors import ArgumentError
from gdlab.interfaces import Linear
from gdlab.regimes import Regime, decide, late_window
from gdlab.stability import ErrorTerms

if TYPE_CHECKING:
    from gdlab._sweep import SweepResult

__all__ = ["Prediction", "Agreement", "rate", "predict_regime", "predict_steps_to_tol",
           "predict", "agreement", "critical_alphas", "closed_form", "region_check",
           "oscillation_check", "rate_check"]


class Prediction(NamedTuple):
    r: np.ndarray | None         # float64, 1 − αλ_max for gradient descent; None for momentum
    regime: np.ndarray           # int8
    steps_to_tol: np.ndarray     # int32
    sensitive: np.ndarray        # bool: rounding decides this run (any of ``why``)
    rho: np.ndarray              # float64, asymptotic contraction factor (spectral radius)
    why: dict[str, np.ndarray]   # reason → bool, grid-shaped: why a run is rounding-sensitive
    spread: np.ndarray           # float64, c·(rounding spread of ‖e_T‖) at the horizon


class Agreement(NamedTuple):
    fraction: float | None       # agreeing runs / comparable runs; None where none is comparable
    n_runs: int
    n_compared: int
    n_sensitive: int
    regime_mismatches: int
    steps_mismatches: int
    sensitive_why: dict[str, int]  # reason → runs (a run can have several)

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


def _float64(problem: Linear) -> Linear:
    """The problem with its (dtype-rounded) parameters in float64: the numbers the simulation used,
    without rounding anything derived from them (λ = x² of a float32 x is exact in float64)."""
    return type(problem)(*(np.asarray(f, np.float64) for f in problem))


def _sign_by_rounding(r: np.ndarray, alpha_lam: np.ndarray, w_star_abs: np.ndarray,
                      err0: np.ndarray, eps: float) -> np.ndarray:
    r"""Runs whose factor r = 1 − αλ is so small that rounding decides the sign of the first step.

    One step of ``scalar_regression`` in the dtype, w' = fl(w − fl(α·fl(x·fl(fl(x·w) − y)))), with
    each rounding a factor (1 + δ), |δ| ≤ u = eps/2, and e = w − w*, y = x·w*:
    fl(x·w) − y = x(e + wδ₁), so the step subtracts αλ(e + wδ₁)(1 + δ₂ + δ₃ + δ₄) and rounds the
    result (δ₅): e' = r·e + n, |n| ≤ u·(αλ|w| + 3αλ|e| + |w'|) ≤ u·((1 + αλ)|w*| + (4αλ + 1)|e|).
    The engine measures e against fl(w*), |fl(w*) − w*| ≤ u|w*|, which adds αλ·u|w*|. The computed
    factor e'/e has the sign of r only if |r|·|e| exceeds that; at the first step (|e| = |e₀|, the
    most favourable) the sign is rounding's when 0 < |r|·|e₀| ≤ u·((1 + 2αλ)|w*| + (4αλ + 1)|e₀|).
    (At r = 0 the formula's answer, the optimum in one step, holds whatever sign the rounding
    leaves on e₁: it is far below the noise floor.)
    """
    u = 0.5 * eps
    bound = u * ((1 + 2 * alpha_lam) * w_star_abs + (4 * alpha_lam + 1) * err0)
    return (np.abs(r) * err0 <= bound) & (r != 0) & (err0 > 0)


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
    grid = result.grid_shape
    lam = np.broadcast_to(np.asarray(_float64(result.problem).curvature(), np.float64), grid)
    alpha = np.broadcast_to(np.asarray(result.hparams["alpha"], np.float64), grid)
    r = rate(alpha, lam)
    w_star = result.w_star
    err0 = np.abs(np.asarray(result.w0, np.float64) - w_star)
    eps = float(np.finfo(result.dtype).eps)
    q = np.abs(r)
    scale = np.abs(w_star) + err0
    spread = modes.NOISE_SIGMAS * eps * scale * _walk(q, result.steps)
    quiet, at_floor = _quiet(q, err0, np.where(alpha != 0, spread, 0.0), 4.0 * eps * scale,
                             result.noise_floor, result.steps)
    regime = np.where(quiet, Regime.CONVERGING_MONOTONE, predict_regime(r, err0)).astype(np.int8)
    # An oscillation stays hidden below the floor unless two successive errors rise above it,
    # so unless max_{1≤t≤T−1} |e_t| does: the first step if |r| < 1, step T − 1 if it grows.
    # The floor it must clear counts 64 ulps of the error before it (engine.flip_floor). An error
    # past the divergence bound is seen at the step that passes it (its sign is the flip), so
    # both are taken at most at the bound: |r|^(T−1) overflowing float64 hides nothing.
    bound = divergence_bound(result.dtype)
    hidden = np.minimum(_largest_after(q, err0, result.steps - 1), bound)
    before = np.minimum(np.maximum(err0, _largest_after(q, err0, result.steps - 2)), bound)
    steps = predict_steps_to_tol(r, err0, result.tol, result.steps)

    why = {"near |r| = 1": (np.abs(q - 1.0) <= 2.0 * result.delta) & (q != 1.0),
           "sign of r by rounding": _sign_by_rounding(r, alpha * lam, np.abs(w_star), err0, eps),
           "oscillation below the floor": ((r < 0) & ~quiet & (hidden <= 4.0 * flip_floor(
               result.noise_floor, eps, before))),
           "at the noise floor": at_floor}
    # Rounding accumulated by step t: each step adds a few ulps of |w*| + |e|, damped by |r| < 1.
    with np.errstate(divide="ignore"):
        memory = np.where(q < 1.0, 1.0 / np.maximum(1.0 - q, 1e-300), np.inf)
    near_tol = np.zeros(np.shape(r), bool)
    decisive = np.where(steps >= 0, steps, result.steps)
    for t in (decisive - 1, decisive):
        valid = (t >= 0) & (t <= result.steps)
        slack = 4.0 * eps * scale * np.minimum(t + 1.0, memory)
        near_tol |= valid & (np.abs(_err_at(q, err0, np.maximum(t, 0)) - result.tol) <= slack)
    why["near tol"] = near_tol
    # The smallest error above the floor whose gradient decides steps-to-tol: |e_t|, t < the
    # decisive step, is smallest at the last such t (or t = 0 if it does not shrink).
    last = np.maximum(decisive, 1) - 1
    with np.errstate(under="ignore", over="ignore"):
        e_min = np.maximum(err0 * np.minimum(1.0, q ** last), result.noise_floor)
    why["underflow"] = _underflow(scale, result.dtype) | (
        (err0 > result.noise_floor)
        & (modes.gradient_gain(alpha, lam) * e_min < 2 * np.finfo(result.dtype).tiny))
    return Prediction(r=r, regime=regime, steps_to_tol=steps, sensitive=_any(why), rho=q,
                      why=why, spread=spread)


def _largest_after(q: np.ndarray, err0: np.ndarray, k: int) -> np.ndarray:
    """max_{1≤t≤k} |r|^t|e₀| = |e₀|·max(|r|, |r|^k) (the first step's for k < 1)."""
    with np.errstate(over="ignore"):
        return np.where(err0 > 0, err0 * np.maximum(q, q ** max(k, 1)), 0.0)


def _quiet(q: np.ndarray, err0: np.ndarray, spread: np.ndarray, ulps: np.ndarray,
           floor: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(quiet, undecided) of scalar runs: whether |e_t| = |r|^t|e₀| never rises above the noise
    floor over t = 0 … T — a run at the optimum (``gdlab.regimes.quiet``) — and whether rounding
    decides that. The simulated max |e_t| lies between max(|e₀| − a, m − s) and
    max(|e₀| + a, m + s), m = max_{1≤t≤T} |r|^t|e₀| = |e₀|·max(|r|, |r|^T), a (``ulps``) the
    rounding of e₀ and s (``spread``) rounding's reach by the horizon (0 where α = 0: nothing
    moves); the run is undecided where the floor lies within. So a run started at w* with |r| > 1,
    whose roundings the map grows, is undecided: whether it leaves w* is rounding's."""
    m = _largest_after(q, err0, steps)
    with np.errstate(invalid="ignore"):  # m = s = ∞: a run that surely grows, lo = NaN, decided
        lo = np.maximum(err0 - ulps, m - spread)
    hi = np.maximum(err0 + ulps, m + spread)
    return np.maximum(err0, m) <= floor, (lo <= floor) & (floor < hi)


def _walk(q: np.ndarray, t: int) -> np.ndarray:
    """√(Σ_{k<t} q^{2k}): the random walk of unit roundings damped by |r| = q per step."""
    q2 = np.minimum(q * q, 1e300)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = (1.0 - q2 ** t) / (1.0 - q2)
    return np.sqrt(np.where(np.isfinite(s) & (q2 != 1.0), s, np.where(q2 == 1.0, t, np.inf)))


def _any(why: dict[str, np.ndarray]) -> np.ndarray:
    return np.logical_or.reduce(list(why.values()))


def _underflow(scale: np.ndarray, dtype: str) -> np.ndarray:
    """Magnitudes near the underflow threshold: CPUs flush subnormals to zero, GPUs do not."""
    fi = np.finfo(dtype)
    return (scale > 0) & (scale < fi.tiny / fi.eps)


class _Modal(NamedTuple):
    """A sweep's runs as the per-direction linear maps of ``gdlab.modes``, flat over the grid."""

    alpha: np.ndarray      # (N,)
    beta: np.ndarray       # (N,)
    lam: np.ndarray        # (N, d) Hessian eigenvalues, from the float64 parameters
    c: np.ndarray          # (N, d) initial error components q_iᵀ(w₀ − w*)
    w_star_abs: np.ndarray  # (N,) |w*|
    floor: np.ndarray      # (N,) the simulation's noise floor


def _modal(result: SweepResult) -> _Modal:
    grid = result.grid_shape
    nd = result.w_star.ndim > len(grid)
    problem = _float64(result.problem)
    lam = np.asarray(problem.eigenvalues() if nd else problem.curvature(), np.float64)
    lam = lam if nd else lam[..., None]
    d = lam.shape[-1]
    lam = np.broadcast_to(lam, grid + (d,)).reshape(-1, d)
    e0 = np.asarray(result.w0, np.float64) - result.w_star
    c = (e0 @ np.asarray(problem.Q, np.float64) if nd else e0[..., None]).reshape(-1, d)
    flat = lambda a: np.broadcast_to(np.asarray(a, np.float64), grid).ravel()
    w_abs = modes.length(result.w_star.reshape(len(c), -1))
    return _Modal(flat(result.hparams["alpha"]), flat(result.hparams.get("beta", 0.0)), lam, c,
                  w_abs, flat(result.noise_floor))


def _predict_modes(result: SweepResult) -> Prediction:
    grid = result.grid_shape
    m = _modal(result)
    eps = float(np.finfo(result.dtype).eps)
    window = late_window(result.steps)
    mp = modes.evaluate(result.optimizer, m.alpha, m.beta, m.lam, m.c, steps=result.steps,
                        tol=result.tol, floor=m.floor, band=window * np.ravel(
                            np.broadcast_to(result.delta, grid)), eps=eps,
                        tiny=float(np.finfo(result.dtype).tiny), w_star_abs=m.w_star_abs,
                        bound=divergence_bound(result.dtype))
    why = {"near tol": mp.near_tol, "flips by rounding": mp.flip_noise,
           "growth within the band": mp.growth_band,
           "at the noise floor": mp.floor_noise,
           "underflow": _underflow(m.w_star_abs + np.sqrt(np.sum(m.c * m.c, axis=1)),
                                   result.dtype) | mp.underflow}
    why = {k: v.reshape(grid) for k, v in why.items()}
    r = (1.0 - m.alpha * m.lam.max(axis=1)).reshape(grid) if result.optimizer == "sgd" else None
    return Prediction(r=r, regime=mp.regime.reshape(grid),
                      steps_to_tol=mp.steps_to_tol.reshape(grid), sensitive=_any(why),
                      rho=mp.rho.reshape(grid), why=why, spread=mp.spread.reshape(grid))


def agreement(result: SweepResult, prediction: Prediction) -> Agreement:
    """Fraction of comparable runs whose simulated regime *and* steps-to-tol equal the
    prediction; None where every run is rounding-sensitive (no fraction of nothing)."""
    keep = ~prediction.sensitive
    regime_ok = result.regime == prediction.regime
    steps_ok = result.steps_to_tol == prediction.steps_to_tol
    n_compared = int(keep.sum())
    agree = int((keep & regime_ok & steps_ok).sum())
    return Agreement(
        fraction=agree / n_compared if n_compared else None, n_runs=int(keep.size),
        n_compared=n_compared, n_sensitive=int(prediction.sensitive.sum()),
        regime_mismatches=int((keep & ~regime_ok).sum()),
        steps_mismatches=int((keep & ~steps_ok).sum()),
        sensitive_why={k: int(v.sum()) for k, v in prediction.why.items()})


_CONVERGING = (Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING)
_OSCILLATING = (Regime.CONVERGING_OSCILLATING, Regime.BOUNDED_OSCILLATION,
                Regime.DIVERGING_OSCILLATING)
_VISIBLE = 4.0   # a sign change is seen when its far side reaches this many noise floors


def closed_form(result: SweepResult, prediction: Prediction) -> dict:
    """The simulation against the closed forms of ``gdlab.stability``, not against an iterated map:
    "converges" (:func:`region_check`), "oscillates" (:func:`oscillation_check`) and "rate"
    (:func:`rate_check`); each gives the fraction agreeing, the cells compared and the cells left
    out (its ``band``, and why)."""
    m = _modal(result)
    terms = _terms(result.optimizer, m)
    return {"converges": region_check(result, prediction, m, terms),
            "oscillates": oscillation_check(result, prediction, m, terms),
            "rate": rate_check(result, prediction, m, terms)}


def _check(simulated: np.ndarray, closed: np.ndarray, band: dict[str, np.ndarray]) -> dict:
    """Agreement of ``simulated`` with ``closed`` outside the band (reason → cells, which may
    overlap: ``band_why`` counts a cell under each reason that applies), with the cells compared
    and left out; ``fraction`` None where the band holds every cell."""
    left_out = np.logical_or.reduce([np.broadcast_to(v, closed.shape) for v in band.values()])
    keep = ~left_out
    fraction = float((simulated == closed)[keep].mean()) if keep.any() else None
    return {"fraction": fraction, "n_compared": int(keep.sum()), "n_band": int(left_out.sum()),
            "band": "; ".join(band), "band_why": {k: int(v.sum()) for k, v in band.items()}}


def region_check(result: SweepResult, prediction: Prediction | None = None,
                 m: _Modal | None = None, t: ErrorTerms | None = None) -> dict:
    """The closed-form stability region (``gdlab.stability.converges``, the Jury criterion on every
    direction) against the simulation's "converges".

    The simulation calls a run converging when the largest error of the late half of the horizon
    (t > h = T//2) is below the early half's (t ≤ h), diverging when above (within a band ≪ 1 in
    log). From the closed-form terms (``stability.ErrorTerms``: the dominant one A·ρ^t, the
    others below O·ρ₂^t) that is certain, by a factor 2, when the closed form says "converges" and
    A·ρ^{h+1} + O·ρ₂^{h+1} ≤ ‖e₀‖/2, or "diverges" and A·ρ^T·κ − O·ρ₂^T ≥ 2·(A·max(1, ρ^h) +
    O·max(1, ρ₂^h)) (κ = 1 for a real dominant root; cos(θ/2) for a complex one when the late half
    holds a whole period 2π/θ, else 0). The *band* left out is the rest: cells whose ρ is too
    close to 1 for T/2 steps to tell (about |log ρ|·T/2 ≲ log 2 + |log(A/‖e₀‖)|), whose dominant
    term starts too small to rule by the horizon, with a double root, or started at the optimum.
    The boundary distance is, per value of the other axes, |α̂* − α*| between the simulated edge
    (midpoint between the largest converging α and the next grid value) and the closed-form
    critical α. (``prediction`` is not needed: the band comes from the closed form alone.)
    """
    grid = result.grid_shape
    m = _modal(result) if m is None else m
    t = _terms(result.optimizer, m) if t is None else t
    closed = stability.converges(result.optimizer, m.alpha[:, None], m.lam,
                                 m.beta[:, None]).all(-1)
    band = ~_horizon_decides(t, result.steps, np.sqrt(np.sum(m.c * m.c, axis=1)), closed)
    out = _check(np.isin(result.regime, _CONVERGING), closed.reshape(grid), {
        "the closed-form terms do not decide the growth test over T by a factor 2 (ρ near 1, a "
        "small dominant term, a double root, started at the optimum)": band.reshape(grid)})
    # Boundary distance along α (axis 0), for each value of the other axes, on α in ascending
    # order (a list may be given in any order).
    order = np.argsort(result.alpha.astype(np.float64), kind="stable")
    simulated = np.isin(result.regime, _CONVERGING)[order]
    a = result.alpha.astype(np.float64)[order]
    crit = stability.critical_alpha(result.optimizer, m.lam.max(-1).reshape(grid),
                                    m.beta.reshape(grid))[0]
    dist = []
    for idx in np.ndindex(grid[1:]):
        inside = np.flatnonzero(simulated[(slice(None),) + idx])
        if inside.size == 0 or inside[-1] == len(a) - 1:
            continue
        dist.append(abs(0.5 * (a[inside[-1]] + a[inside[-1] + 1]) - crit[idx]))
    out.update(max_boundary_distance=max(dist) if dist else None,
               alpha_grid_step=float(np.max(np.diff(a))) if a.size > 1 else 0.0)
    return out


def _terms(optimizer: str, m: _Modal) -> ErrorTerms:
    """The runs' closed-form error terms, ``finite`` also False for runs started at the optimum
    (within the noise floor)."""
    t = stability.error_terms(optimizer, m.alpha, m.lam, m.beta, m.c)
    return t._replace(finite=t.finite & (np.sqrt(np.sum(m.c * m.c, axis=1)) > m.floor))


def _horizon_decides(t: ErrorTerms, steps: int, e0: np.ndarray,
                     converges: np.ndarray) -> np.ndarray:
    """Does the closed form decide the simulation's growth test by a factor 2? (region_check)"""
    h = steps // 2
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        late_max = t.amp * t.rho ** (h + 1) + t.others * t.rho2 ** (h + 1)
        shrinks = (t.rho < 1) & (late_max <= e0 / 2)
        period = np.where(t.theta > 0, 2 * np.pi / np.maximum(t.theta, 1e-300), np.inf)
        kappa = np.where((t.theta == 0) | (t.theta == np.pi), 1.0,
                         np.where(steps - h >= period, np.cos(t.theta / 2), 0.0))
        late_min = t.amp * t.rho ** steps * kappa - t.others * t.rho2 ** steps
        early_max = t.amp * np.maximum(1, t.rho ** h) + t.others * np.maximum(1, t.rho2 ** h)
        grows = (t.rho > 1) & (late_min >= 2 * early_max)
    return t.finite & np.where(converges, shrinks, grows)


def oscillation_check(result: SweepResult, prediction: Prediction, m: _Modal,
                      t: ErrorTerms) -> dict:
    r"""The closed-form "oscillates" — the dominant root is not a positive real: αλ above
    (1 − √β)² (heavy ball), ((1 − β)/(1 + β))² (Nesterov), 1 (GD), and for n-D gradient descent
    |1 − αλ_max| > |1 − αλ_min|, α > 2/(λ_min + λ_max) — against the simulation's sign flips.

    The closed form speaks of the error once its dominant term (amplitude A, root ρe^{iθ}) rules,
    from the step s_d of ``stability.dominance_step`` on: it changes sign at the first zero
    t_z ≥ s_d of A·ρ^t·cos(ωt + φ) (the next step for a negative root), and the far side is seen at
    the integer step of (t_z, t_z + π/θ] where A·ρ^t·|cos(ωt + φ)| is largest
    (``stability.far_side``). Left out
    (the *band*):

    * above the onset, cells whose far side comes after the horizon, beyond the divergence bound,
      or below 4 noise floors (half of it may be the other terms, and a margin of 2): cells just
      above the onset, where θ → 0 and π/θ steps is long, and where the error falls below the floor
      before its first sign change;
    * below it, cells whose other, oscillating terms change the error's sign (⟨e_t, e_{t+1}⟩ < 0
      with both above a quarter floor) before the dominant one rules — n-D gradient descent between
      1/λ_max and 2/(λ_min + λ_max) (a single direction from rest has no such transient: both roots
      are positive there, the smaller one's weight negative and smaller);
    * cells where rounding may add or remove the only flips (``prediction.why``), double roots,
      and runs started at the optimum.
    """
    closed, band = oscillation_band(result, prediction, m, t)
    return _check(np.isin(result.regime, _OSCILLATING), closed, band)


def oscillation_band(result: SweepResult, prediction: Prediction, m: _Modal | None = None,
                     t: ErrorTerms | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The closed-form "oscillates" per cell and the band :func:`oscillation_check` leaves out
    (reason → cells), grid-shaped."""
    m = _modal(result) if m is None else m
    t = _terms(result.optimizer, m) if t is None else t
    oscillates = (t.theta > 0) & t.finite
    s_far, far = stability.far_side(t, stability.dominance_step(t))
    with np.errstate(over="ignore", invalid="ignore"):
        reach = t.amp * t.rho ** np.minimum(s_far, result.steps + 1.0)
    visible = ((s_far <= result.steps) & (far > _VISIBLE * m.floor)
               & (reach < divergence_bound(result.dtype)))
    transient = _transient_flips(t, m.floor, result.steps) & ~oscillates
    grid = result.grid_shape
    rounding = np.zeros(grid, bool)
    for k in ("flips by rounding", "sign of r by rounding"):
        rounding |= prediction.why.get(k, rounding)
    return oscillates.reshape(grid), {
        "first sign change after the horizon or below 4 noise floors":
            (oscillates & ~visible).reshape(grid),
        "sign changes of sub-dominant terms": transient.reshape(grid),
        "rounding-decided flips": rounding,
        "double root or started at the optimum": ~t.finite.reshape(grid)}


def _transient_flips(t: ErrorTerms, floor: np.ndarray, steps: int) -> np.ndarray:
    """Runs whose closed-form error changes sign between consecutive steps, both above a quarter
    floor, within the horizon, while a term other than the dominant one is oscillating."""
    osc = (np.angle(t.z) != 0) & (np.abs(t.a) > 0)
    rows = np.flatnonzero(osc.any(axis=1) & (t.theta == 0) & t.finite)
    out = np.zeros(len(t.z), bool)
    if rows.size == 0:
        return out
    z, a, f = t.z[rows], t.a[rows], floor[rows] / _VISIBLE
    n = len(rows)
    e = (a.reshape(n, -1, 2).sum(axis=2)).real
    seen = np.zeros(n, bool)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for _ in range(steps):
            a = a * z
            e_new = a.reshape(n, -1, 2).sum(axis=2).real
            big = (np.sqrt(np.sum(e * e, axis=1)) > f) & (np.sqrt(np.sum(e_new ** 2, axis=1)) > f)
            seen |= big & (np.sum(e * e_new, axis=1) < 0)
            e = e_new
    out[rows] = seen
    return out


def _fewest_steps(t: ErrorTerms, e0: np.ndarray, floor: np.ndarray, steps: int,
                  spread: np.ndarray) -> np.ndarray:
    """A lower bound on k_obs, the last step whose predecessor is above the floor, for a single
    real term |e_t| = ρ^t·|e₀|: the simulated error, within its spread s of the exact one, stays
    above the floor at least while ρ^t·|e₀| > floor + s, so k ≥ min(T, t* + 1) for the last such
    t*; one less again for the spread's own uncertainty, and 1 where s is not small against the
    floor."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_last = np.floor(np.log((floor + spread) / e0) / np.log(t.rho))
        t_last = np.where((t.rho > 0) & (t.rho < 1) & (e0 > floor + spread), t_last, 0.0)
        k = np.minimum(float(steps), np.maximum(t_last, 0.0) + 1.0)
    return np.where(spread < floor / 2, np.maximum(k - 1.0, 1.0), 1.0)


def rate_check(result: SweepResult, prediction: Prediction, m: _Modal,
               t: ErrorTerms) -> dict:
    r"""The per-direction rates (the roots' |z|, ρ the largest) against the measured contraction
    c = (‖e_k‖/‖e₀‖)^{1/k}, k the run's last resolvable step.

    The closed form bounds ‖e_k‖ between L_k = A·ρ^k·|cos(ωk + φ)| − others·ρ₂^k (|cos| = 1 for a
    real root) and U_k = A·ρ^k + others·ρ₂^k. Rounding moves the simulated ‖e_k‖ by the
    propagated spread s (``prediction.spread``, random) and each step's factor by at most
    η = u·((1 + 2αλ)|w*| + (1 + 4αλ)‖e‖)/‖e‖ (the bound of one step's roundings,
    ``_sign_by_rounding``, relative to the smallest error ‖e‖ of the run): where the orbit repeats
    (ρ ≈ 1, a period-2 cycle) the roundings repeat too and add up coherently, and the k-th root of
    k factors each within η is within η. So c must lie in
    [((L_k − s)/‖e₀‖)^{1/k}·(1 − η), ((U_k + s)/‖e₀‖)^{1/k}·(1 + η)], with k known without the
    simulation: k = T when L_{T−1} − s exceeds the noise floor (the run resolvable to the horizon),
    or any k for a single real term (scalar gradient descent: c = |1 − αλ| for every k, within
    s/(ρ·floor) + η of it for an error still above a floor). Left out (the *band*): runs that fall
    to the floor before T with several terms (k unknown), that may reach the divergence bound,
    with a double root, and started at the optimum.
    """
    grid, T = result.grid_shape, result.steps
    flat = lambda a: np.ravel(np.broadcast_to(a, grid)).astype(np.float64)
    e0 = np.sqrt(np.sum(m.c * m.c, axis=1))
    eps = float(np.finfo(result.dtype).eps)
    spread = flat(prediction.spread) + eps * t.amp    # and the stored value's rounding
    c = flat(result.contraction)
    real = (t.theta == 0) | (t.theta == np.pi)

    def bounds(k):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            dom = t.amp * t.rho ** k
            cos = np.where(real, 1.0, np.abs(np.cos(t.omega * k + t.phase)))
            rest = t.others * t.rho2 ** k
            return dom * cos - rest - spread, dom + rest + spread

    lo, hi = bounds(T)
    lo_prev, _ = bounds(T - 1)
    single = real & (t.others == 0)
    x = np.abs(m.alpha * m.lam.max(axis=1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        small = np.minimum(np.where(single, m.floor, lo), e0)
        eta = 0.5 * eps * ((1 + 2 * x) * m.w_star_abs + (1 + 4 * x) * np.maximum(hi, e0)) / small
        # c = (|e_k|/|e₀|)^{1/k}: |e_k|'s relative rounding, at most spread/(ρ·floor), enters
        # c divided by k (at least _fewest_steps).
        eta = eta + np.where(single, spread / (t.rho * m.floor) / _fewest_steps(t, e0, m.floor, T,
                                                                                spread), 0.0)
        c_lo = np.where(single, t.rho, (lo / e0) ** (1.0 / T)) * (1 - eta)
        c_hi = np.where(single, t.rho, (hi / e0) ** (1.0 / T)) * (1 + eta)
        at_T = (lo_prev > m.floor) & (lo > 0)
    # α = 0: nothing moves, c = 1 exactly (the terms' weights, computed in float64, need not sum to
    # e₀ exactly, which would push the bounds off 1 by more than η in float64).
    still = x == 0
    c_lo, c_hi = np.where(still, 1.0, c_lo), np.where(still, 1.0, c_hi)
    band = {"k unknown (several terms, the floor reached before T)":
            ~((single & (eta < 0.5)) | at_T),
            "the divergence bound in reach": ~(hi < divergence_bound(result.dtype) / 2),
            "double root or started at the optimum": ~t.finite}
    out = _check(((c >= c_lo) & (c <= c_hi)).reshape(grid), np.ones(grid, bool),
                 {k: v.reshape(grid) for k, v in band.items()})
    compared = ~np.logical_or.reduce(list(band.values()))
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.abs(c / t.rho - 1.0)[compared]
    out["max_relative_deviation_from_rho"] = float(dev.max()) if dev.size else None
    return out
