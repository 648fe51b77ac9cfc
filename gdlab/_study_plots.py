"""The plots of a sweep study: which ones a grid gets (and why not, where a reader would expect
one), their titles, and the closed-form curves overlaid."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np

from gdlab import plots, stability, theory, trainability
from gdlab._sweep import SweepResult
from gdlab.config import SweepConfig
from gdlab.interfaces import Linear, WithOptimum

__all__ = ["draw", "redraw", "not_drawn", "HeatmapSample", "heatmap_every", "heatmap_sample",
           "HEATMAP_COLUMNS", "HEATMAP_MAX_VALUES", "HEATMAP_SAMPLE"]

HEATMAP_COLUMNS = 200          # snapshots along t in the α × t heatmap
# Most iterates a 1-D sweep records for its α × t heatmap (n_α × snapshots, ≈ 24,875 α at
# T = 200; gdlab.study decides): beyond it the sweep records none, and the heatmap is drawn from
# at most HEATMAP_SAMPLE of its α (every k-th grid value), swept again with snapshots.
HEATMAP_MAX_VALUES = 5_000_000
HEATMAP_SAMPLE = plots.HEATMAP_MAX_CELLS[0]   # the heatmap's resolution along α


class HeatmapSample(NamedTuple):
    """The α of a 1-D grid over :data:`HEATMAP_MAX_VALUES` that its heatmap is drawn from."""

    index: np.ndarray    # their grid indices (:func:`heatmap_sample`): every k-th, and the last
    runs: SweepResult    # those α swept again, w_t recorded every heatmap_every(T) steps
    n_grid: int          # the grid's α count

    def caption(self) -> str:
        """"N of M α (every k-th grid value)"."""
        k = int(self.index[1] - self.index[0]) if self.index.size > 1 else 1
        return (f"{self.index.size:,} of {self.n_grid:,} α "
                f"(every {'' if k == 1 else _ordinal(k) + ' '}grid value)")


def _ordinal(k: int) -> str:
    """1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st, …"""
    suffix = "th" if k % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def heatmap_every(steps: int) -> int:
    """The snapshot stride k = ⌈T/HEATMAP_COLUMNS⌉ of the heatmap's iterates."""
    return max(1, math.ceil(steps / HEATMAP_COLUMNS))


def heatmap_sample(n: int, most: int | None = None) -> np.ndarray:
    """Indices of at most ``most`` (default :data:`HEATMAP_SAMPLE`) of a grid's ``n`` α: every
    k-th, k = ⌈(n − 1)/(most − 1)⌉ the smallest stride that gives no more, and the last."""
    most = HEATMAP_SAMPLE if most is None else most
    k = max(1, -(-(n - 1) // (most - 1)))
    index = np.arange(0, n, k)
    return index if index[-1] == n - 1 else np.append(index, n - 1)


def draw(directory: Path, cfg: SweepConfig, res: SweepResult, predicted: np.ndarray | None,
         edges: dict[str, float], linear: bool, traj: SweepResult | None, *,
         skipped: Mapping[str, str], heat: HeatmapSample | None = None) -> list[str]:
    """Write the plots of this grid into ``directory``; return their file names. ``predicted``,
    ``edges``: the theory's predicted regimes and closed-form edges in α (if any); ``linear``:
    closed-form curves exist for the phase map; ``skipped``: the plots this grid does not get,
    and why (:func:`not_drawn` of ``cfg``, ``res`` and ``heat``, computed once by the caller);
    ``heat``: the α the heatmap is drawn from where ``res`` recorded no iterates."""
    fixed = lambda d: {plots.symbol(k): v for k, v in d.items() if k not in res.axes}
    hp = _params(fixed(cfg.hparams))
    title = (f"{cfg.problem} {_params(fixed(cfg.problem_params))}, {cfg.optimizer}"
             f"{' ' + hp if hp else ''}, T = {res.steps}")
    if len(res.axes) == 1:
        files = _plots_1d(directory, res, predicted, edges, title, skipped, heat)
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


def _plots_1d(directory: Path, res: SweepResult, predicted: np.ndarray | None,
              edges: dict[str, float], title: str, skipped: Mapping[str, str],
              heat: HeatmapSample | None) -> list[str]:
    """The regime strip (theory row from the closed-form edges where known) and, unless
    ``skipped`` (:func:`not_drawn`) says why not, the α × t error heatmap: from ``res``'s own
    iterates, else from those of the subsample ``heat`` (one α per column, said in the title)."""
    files = plots.save(plots.regime_strip(res.alpha, res.regime, predicted, closed_form=edges,
                                          title=f"Regime per step size — {title}"),
                       directory, "regime_strip")
    if "error_heatmap" in skipped:
        return files
    if res.trajectory is not None:
        src, title = res, f"log₁₀‖w_t − w*‖ — {title}"
    elif heat is not None:
        src, title = heat.runs, f"log₁₀‖w_t − w*‖ — {title}\n{heat.caption()}"
    else:
        return files
    if src.w_star is None:   # no known optimum (a user's loss without one): no error to map
        return files
    err = src.trajectory.astype(np.float64) - src.w_star[:, None]
    err = np.abs(err) if err.ndim == 2 else np.sqrt(np.sum(err * err, axis=-1))
    return files + plots.save(plots.error_heatmap(src.alpha, src.snapshot_steps, err,
                                                  src.diverged_at, plots.closed_form_lines(edges),
                                                  title=title, floor=src.noise_floor),
                              directory, "error_heatmap")


def not_drawn(cfg: SweepConfig, res: SweepResult,
              heat: HeatmapSample | None = None) -> dict[str, str]:
    """Plot name → why this grid does not get it, where a reader would expect it: the α × t error
    heatmap of a 1-D sweep with a known optimum (too few α to be a map; keep = "compact"; no
    iterates, neither ``res``'s nor a subsample's ``heat``)."""
    if len(res.axes) != 1 or not isinstance(cfg.problem_value, WithOptimum):
        return {}
    n = res.alpha.size
    if n < plots.HEATMAP_MIN_ALPHA:
        why = (f"{n} α value{'s' * (n != 1)}: too few columns for an α × t map (it needs at least "
               f"{plots.HEATMAP_MIN_ALPHA})")
    elif res.diverged_at is None and heat is None:
        why = ('keep = "compact": no iterates were kept, and a subsample\'s would not fit in the '
               'memory limit beside the compact results')
    elif res.trajectory is None and heat is None:   # a run directory of an older gdlab
        why = ("no iterates were recorded to draw it from (results.npz has neither snapshot_w "
               "nor heatmap_w); run the config again")
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


def redraw(directory: Path, cfg: SweepConfig, arrays: dict[str, np.ndarray],
           summary: dict) -> list[str]:
    """:func:`draw` again from a run directory's stored results (``arrays``: results.npz,
    ``summary``: summary.json), without simulating; return the file names written.

    The results are rebuilt as a :class:`SweepResult` holding what the plots read: the axes, the
    per-run regimes, steps and statistics kept, the snapshots with w* and the noise floor, and the
    runs shown step by step. The predicted regimes and the closed-form edges come from the files
    too (``predicted_regime``, summary.json ``closed_form_edges``); closed-form curves are drawn
    where the sweep was compared with theory (summary.json ``agreement``).
    """
    get = arrays.get
    names = [str(n) for n in arrays["axis_names"]]
    timings = summary.get("timings", {})
    res = SweepResult(
        axes={n: arrays[n] for n in names}, regime=arrays["regime"],
        steps_to_tol=arrays["steps_to_tol"], optimizer=cfg.optimizer, steps=summary["steps"],
        tol=summary["tol"], dtype=summary["dtype"], compile_s=timings.get("compile_s", 0.0),
        run_s=timings.get("run_s", 0.0), n=summary["n_runs"], diverged_at=get("diverged_at"),
        w_star=get("w_star"), trajectory=get("snapshot_w"), snapshot_steps=get("snapshot_steps"),
        noise_floor=get("noise_floor"), score=get("score"))
    traj = None
    if "trajectory_alpha" in arrays:   # their regimes are not drawn (nor stored): −1, unknown
        traj = dataclasses.replace(
            res, axes={"alpha": arrays["trajectory_alpha"]},
            regime=np.full(arrays["trajectory_alpha"].shape, -1, np.int8),
            trajectory=arrays["trajectory_w"], snapshot_steps=arrays["trajectory_steps"],
            diverged_at=get("trajectory_diverged_at"), w_star=get("trajectory_w_star"),
            curvature=get("trajectory_curvature"))
    heat = _stored_sample(res, arrays)
    return draw(directory, cfg, res, get("predicted_regime"),
                summary.get("closed_form_edges", {}), "agreement" in summary, traj,
                skipped=not_drawn(cfg, res, heat), heat=heat)


def _stored_sample(res: SweepResult, arrays: dict[str, np.ndarray]) -> HeatmapSample | None:
    """The heatmap's subsample from results.npz's ``heatmap_*`` arrays (None where absent), its
    runs as :func:`draw` reads them (regimes not stored: −1, unknown)."""
    if "heatmap_index" not in arrays:
        return None
    get = arrays.get
    runs = dataclasses.replace(
        res, axes={"alpha": arrays["heatmap_alpha"]},
        regime=np.full(arrays["heatmap_alpha"].shape, -1, np.int8),
        trajectory=arrays["heatmap_w"], snapshot_steps=arrays["heatmap_steps"],
        diverged_at=arrays["heatmap_diverged_at"], w_star=arrays["heatmap_w_star"],
        noise_floor=get("heatmap_noise_floor"), curvature=None)
    return HeatmapSample(arrays["heatmap_index"], runs, res.alpha.size)
