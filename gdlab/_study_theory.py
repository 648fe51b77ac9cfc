"""A sweep study's comparison with the closed forms: which apply (:func:`closed_forms`), the
regime edges in α they give (:func:`closed_form_edges`), the Hessian's spectrum
(:func:`spectrum`), and summary.json's comparison with theory (:func:`comparison`)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from gdlab import quadratics, report, stability, theory
from gdlab._sweep import SweepResult
from gdlab.config import SweepConfig
from gdlab.interfaces import Linear

__all__ = ["Theory", "closed_forms", "closed_form_edges", "edge_alphas", "scalar_w", "spectrum",
           "comparison"]


class Theory(NamedTuple):
    """The closed forms the sweep is compared with; None (or empty) where they do not apply."""

    linear: bool                      # a linear optimizer, every statistic kept
    pred: theory.Prediction | None
    agree: theory.Agreement | None
    closed: dict | None               # theory.closed_form: converges, oscillates, rate
    const_lam: float | None           # λ_max when every run shares it
    edges: dict[str, float]           # closed-form α of the regime edges (1-D, see
                                      # closed_form_edges)


def closed_forms(cfg: SweepConfig, res: SweepResult, keep: str) -> Theory:
    """Predictions of the closed forms for a linear optimizer, and the closed-form edges in α
    where every run of a 1-D sweep shares one curvature λ."""
    linear = (cfg.optimizer in stability.LINEAR_OPTIMIZERS and keep == "all"
              and isinstance(cfg.problem_value, Linear))
    lam = res.curvature
    const_lam = float(lam.ravel()[0]) if lam is not None and np.ptp(lam) == 0 else None
    edges = (closed_form_edges(cfg, res) if linear and const_lam is not None
             and len(res.axes) == 1 else {})
    if not linear:
        return Theory(False, None, None, None, const_lam, edges)
    pred = theory.predict(res)
    return Theory(True, pred, theory.agreement(res, pred), theory.closed_form(res, pred),
                  const_lam, edges)


def closed_form_edges(cfg: SweepConfig, res: SweepResult) -> dict[str, float]:
    """The closed-form α where a 1-D sweep's regime changes, named by what changes there.

    A scalar parameter: ``oscillation_onset`` (the error starts to change sign) and
    ``divergence``. An n-D one: ``oscillation_onset_stiffest_mode`` (the direction of λ_max starts
    to oscillate, α = 1/λ_max for GD), ``oscillation_dominates`` (GD: the oscillating direction
    outlasts the slowest one, |1 − αλ_max| > |1 − αλ_min| for α > 2/(λ_min + λ_max), so the error
    as a whole changes sign from then on) and ``divergence`` (2/λ_max).
    """
    beta = float(cfg.hparams.get("beta", 0.0))
    ev = np.asarray(cfg.problem_value.eigenvalues(), np.float64)
    lam_max = float(ev.max())
    onset, divergence = edge_alphas(cfg.optimizer, lam_max, beta)
    if scalar_w(res):
        edges = {"oscillation_onset": onset}
    else:
        edges = {"oscillation_onset_stiffest_mode": onset}
        if cfg.optimizer == "sgd":
            edges["oscillation_dominates"] = float(quadratics.optimal_alpha(ev))
    edges["divergence"] = divergence
    # none is left out for λ_max > 0 and |β| < 1; a degenerate λ_max = 0 has no edge in α
    return {k: v for k, v in edges.items() if math.isfinite(v)}


def edge_alphas(optimizer: str, lam: float, beta: float) -> tuple[float, float]:
    """(oscillation onset, divergence): the α from which the dominant root of a direction of
    curvature λ > 0 is no positive real, and above which it leaves the unit disc, for
    −1 < β < 1 (:func:`gdlab.stability.oscillation_onset`, ``critical_alpha``: derived there for
    β < 0 too; λ = 0: inf, left out by the caller)."""
    with np.errstate(divide="ignore"):
        return (float(stability.oscillation_onset(optimizer, lam, beta)),
                float(stability.critical_alpha(optimizer, lam, beta)))


def scalar_w(res: SweepResult) -> bool:
    """Is the parameter a scalar (w* has the grid's shape)?"""
    return res.w_star is not None and res.w_star.ndim == len(res.grid_shape)


def spectrum(problem: Linear, res: SweepResult) -> dict | None:
    """The Hessian's spectrum and GD's optimal step for a vector parameter with one spectrum."""
    if res.w_star is None or scalar_w(res):
        return None
    ev = np.asarray(problem.eigenvalues(), np.float64)
    if ev.ndim != 1:
        return None
    return {"lam_min": ev.min(), "lam_max": ev.max(), "kappa": ev.max() / ev.min(),
            "optimal_alpha_gd": quadratics.optimal_alpha(ev),
            "optimal_rate_gd": (ev.max() - ev.min()) / (ev.max() + ev.min()),
            # GD: the stiffest direction changes sign from 1/λ_max on, the error as a whole once
            # that direction outlasts the slowest, from 2/(λ_min + λ_max) (= optimal_alpha_gd).
            "oscillation_onset_stiffest_mode_gd": 1.0 / ev.max(),
            "oscillation_dominates_gd": quadratics.optimal_alpha(ev)}


_AGAINST = ("the exact float64 evaluation of the same linear map (scalar GD: |r|^t|e₀|), with the "
            "simulation's definitions (flip rule, floor, growth); runs whose outcome rounding "
            "decides (n_sensitive, by reason in sensitive_why) are left out")


def comparison(cfg: SweepConfig, res: SweepResult, th: Theory,
               unresolved: list[tuple[float, float]]) -> dict:
    """The comparison with theory: predicted regimes, agreement, stability region, the Q4.3
    recurrence check and, for GD on one scalar curvature over α, the Q4.2 answer (with intervals
    only across grid cells not in ``unresolved``, see ``report.q4_statement``)."""
    out = {"predicted_regime_counts": report.regime_counts(th.pred.regime),
           "agreement": {**th.agree.as_dict(), "compared_with": _AGAINST},
           "closed_form": th.closed, "region": th.closed["converges"]}
    if res.recurrence_dev is not None:
        rec = float(res.recurrence_dev.max())
        eps = float(np.finfo(res.dtype).eps)
        out["recurrence"] = {
            "claim": "|w* − w_{t+1}| = |1 − αλ|·|w* − w_t| at every step of every run",
            "max_dev": rec, "max_dev_in_eps": rec / eps,
            "measure": "max over runs and steps of ||e_{t+1}| − |r||e_t|| / "
                       "(|w*| + |e_t| + |e_{t+1}| + |αλ e_t|), r = 1 − αλ, e_t = w_t − w*"}
    if (len(res.axes) == 1 and th.const_lam is not None and cfg.optimizer == "sgd"
            and scalar_w(res)):
        out["q4_answer"] = report.q4_statement(res.alpha, res.regime, th.const_lam,
                                               unresolved)
    return out
