"""The plots of a sweep study: which ones a grid gets (and why not, where a reader would expect
one), their titles, and the closed-form curves overlaid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gdlab import plots, stability, theory, trainability
from gdlab._sweep import SweepResult
from gdlab.config import SweepConfig
from gdlab.interfaces import Linear, WithOptimum

__all__ = ["draw", "not_drawn", "HEATMAP_COLUMNS", "HEATMAP_MAX_VALUES"]

HEATMAP_COLUMNS = 200          # snapshots along t in the α × t heatmap
HEATMAP_MAX_VALUES = 5_000_000  # above this many stored values the heatmap is skipped


def draw(directory: Path, cfg: SweepConfig, res: SweepResult, pred: theory.Prediction | None,
         edges: dict[str, float], linear: bool, traj: SweepResult | None) -> list[str]:
    """Write the plots of this grid into ``directory``; return their file names. ``pred``,
    ``edges``: the theory's prediction and closed-form edges in α (if any); ``linear``: closed-form
    curves exist for the phase map. (The plots this grid does not get, and why:
    :func:`not_drawn`.)"""
    fixed = lambda d: {plots.symbol(k): v for k, v in d.items() if k not in res.axes}
    hp = _params(fixed(cfg.hparams))
    title = (f"{cfg.problem} {_params(fixed(cfg.problem_params))}, {cfg.optimizer}"
             f"{' ' + hp if hp else ''}, T = {res.steps}")
    if len(res.axes) == 1:
        files = _plots_1d(directory, res, pred, edges, cfg, title)
    elif len(res.axes) == 2:
        (_, a), (o_name, o) = res.axes.items()
        curves = _overlays(cfg.problem_value, cfg, o_name) if linear else {}
        files = plots.save(plots.phase_map(a, o, o_name, res.regime, curves,
                                           title=f"Regime over α × {plots.symbol(o_name)} — "
                                                 f"{title}"),
                           directory, "phase_map")
        if res.score is not None:
            files += plots.save(trainability.score_image(
                a, o, res.score, x_name="step size α", y_name=plots.symbol(o_name),
                title=f"Trainability score — {title}"),
                directory, "score_map")
    else:  # α fixed to one value, two other axes mapped
        (_, _), (x_name, x), (o_name, o) = res.axes.items()
        files = plots.save(plots.phase_map(x, o, o_name, res.regime[0], None, x_name=x_name,
                                           title=f"Regime over {plots.symbol(x_name)} × "
                                                 f"{plots.symbol(o_name)} at α = "
                                                 f"{float(res.alpha[0]):g} — {title}"),
                           directory, "phase_map")
    if traj is not None and traj.w_star is not None and traj.w_star.ndim == 1:
        rates = (theory.rate(traj.alpha, traj.curvature)   # e_{t+1} = (1 − αλ) e_t
                 if cfg.optimizer == "sgd" and isinstance(cfg.problem_value, Linear)
                 and traj.curvature is not None else None)
        files += plots.save(plots.trajectories(traj.alpha, traj.snapshot_steps, traj.trajectory,
                                               traj.w_star, traj.diverged_at, rates=rates,
                                               title=f"Trajectories — {title}"),
                            directory, "trajectories")
    return files


def _plots_1d(directory: Path, res: SweepResult, pred: theory.Prediction | None,
              edges: dict[str, float], cfg: SweepConfig, title: str) -> list[str]:
    """The regime strip (theory row from the closed-form edges where known) and, unless
    :func:`not_drawn` says why not, the α × t error heatmap."""
    files = plots.save(plots.regime_strip(res.alpha, res.regime,
                                          None if pred is None else pred.regime,
                                          closed_form=edges,
                                          title=f"Regime per step size — {title}"),
                       directory, "regime_strip")
    if res.trajectory is not None and "error_heatmap" not in not_drawn(cfg, res):
        err = res.trajectory.astype(np.float64) - res.w_star[:, None]
        err = np.abs(err) if err.ndim == 2 else np.sqrt(np.sum(err * err, axis=-1))
        files += plots.save(plots.error_heatmap(res.alpha, res.snapshot_steps, err,
                                                res.diverged_at,
                                                plots.closed_form_lines(edges),
                                                title=f"log₁₀‖w_t − w*‖ — {title}",
                                                floor=res.noise_floor),
                            directory, "error_heatmap")
    return files


def not_drawn(cfg: SweepConfig, res: SweepResult) -> dict[str, str]:
    """Plot name → why this grid does not get it, where a reader would expect it: the α × t error
    heatmap of a 1-D sweep with a known optimum (too few α to be a map; too many values to
    record; keep = "compact")."""
    if len(res.axes) != 1 or not isinstance(cfg.problem_value, WithOptimum):
        return {}
    n = res.alpha.size
    if n < plots.HEATMAP_MIN_ALPHA:
        why = (f"{n} α value{'s' * (n != 1)}: too few columns for an α × t map (it needs at least "
               f"{plots.HEATMAP_MIN_ALPHA})")
    elif res.diverged_at is None:
        why = 'keep = "compact": no iterates were kept'
    elif res.trajectory is None:
        columns = cfg.steps // math.ceil(cfg.steps / HEATMAP_COLUMNS) + 2
        why = (f"{n} α × {columns} snapshots = {n * columns:,} stored values, over the limit of "
               f"{HEATMAP_MAX_VALUES:,}; sweep fewer α for the map")
    else:
        return {}
    return {"error_heatmap": f"not drawn: {why}"}


def _overlays(problem: Linear, cfg: SweepConfig, other: str) -> dict:
    """Closed-form edges as α(other): oscillation onset and divergence, for linear optimizers."""
    beta0 = cfg.hparams.get("beta", 0.0)

    def lam_beta(v):
        if other in cfg.hparams:                       # β on the other axis
            return np.full_like(v, float(problem.curvature())), v
        if other in getattr(problem, "_fields", ()):   # a problem parameter
            lam = [float(np.max(problem._replace(**{other: float(x)}).curvature())) for x in v]
            return np.asarray(lam), np.full_like(v, beta0)
        return np.full_like(v, float(np.max(problem.curvature()))), np.full_like(v, beta0)

    def edge(fn):
        return lambda v: fn(cfg.optimizer, *lam_beta(np.asarray(v, np.float64)))

    # On an n-D problem the onset is the stiffest mode's (λ_max), not the whole error's.
    n_d = int(np.prod(problem.param_shape, dtype=np.int64)) > 1
    onset = "stiffest mode starts to oscillate" if n_d else "oscillation starts"
    return {f"{onset} (closed form)": edge(stability.oscillation_onset),
            "divergence starts (closed form)": edge(stability.critical_alpha)}


def _params(params: dict) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in params.items() if isinstance(v, (int, float)))
