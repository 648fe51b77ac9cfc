"""A sweep study end to end: config → sweep → theory → report, results file and plots.

This is what ``gdlab run CONFIG`` does for a ``[sweep]`` config. This module runs the stages in
order (plan → simulate → theory → edges → summary → write); the larger ones live apart: the plan
(:mod:`gdlab._study_plan`), the comparison with the closed forms (:mod:`gdlab._study_theory`), the
regime edges (:mod:`gdlab._study_edges`), the log's wording (:mod:`gdlab._study_log`) and the
plots (:mod:`gdlab._study_plots`).
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

import gdlab
from gdlab import (
    _study_edges,
    _study_plan,
    _study_plots,
    _study_theory,
    boundary,
    eos_study,
    plots,
    report,
    resources,
    rundir,
    theory,
    trainability,
    zoom,
)
from gdlab._study_edges import GridChanges
from gdlab._study_log import closing_lines, comparison_lines, emit, sweep_lines, zoom_lines
from gdlab._study_plan import Plan, sweep_options
from gdlab._study_plots import HeatmapSample, heatmap_every
from gdlab._study_theory import Theory
from gdlab._sweep import SweepResult, finish_sweep, simulate_shard
from gdlab.config import ConfigError, SweepConfig
from gdlab.engine import Simulation, device_count
from gdlab.interfaces import WithOptimum, studied_as_map
from gdlab.orbit_study import run_orbit_study
from gdlab.regimes import REGIME_NAMES
from gdlab.shards import write_shard

__all__ = ["run_sweep_study", "environment", "sweep_options"]


def environment(devices: int | str | None = None) -> dict:
    """Versions and device, for summary.json: ``count`` the devices JAX sees, ``used`` those a
    sweep asking for ``devices`` (``[run] devices``) runs on, when given."""
    import jaxlib
    import matplotlib
    import optax
    used, devices = devices, jax.devices()
    return {
        "versions": {"gdlab": gdlab.__version__, "jax": jax.__version__,
                     "jaxlib": jaxlib.__version__, "numpy": np.__version__,
                     "optax": optax.__version__, "matplotlib": matplotlib.__version__,
                     "python": platform.python_version()},
        "device": {"backend": jax.default_backend(), "count": len(devices),
                   **({} if used is None else {"used": device_count(used)}),
                   "kind": devices[0].device_kind, "platform": platform.platform()},
    }


def run_sweep_study(cfg: SweepConfig, out: Path, *, overwrite: bool = False,
                    progress: bool | None = None, log: Callable[[str], None] = print,
                    simulation: Simulation | None = None) -> dict:
    """Run ``cfg``, write ``out`` (results.npz, summary.json, plots) atomically; return the summary.

    With ``cfg.shard`` only that slice is simulated and written raw (see ``gdlab.shards``);
    ``simulation`` (merged shards) replaces simulating the main sweep. ``log`` receives each
    stage's lines as the stage finishes, and the closing lines once ``out`` is in place.
    """
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    problem = cfg.problem_value
    if cfg.track is not None:   # [track]: the loss and the sharpness along training
        return eos_study.run_track_study(cfg, out, overwrite=overwrite, progress=progress,
                                         log=log, environment=environment())
    if cfg.shard is not None and not studied_as_map(problem):
        raise ConfigError(f"{cfg.path}: sweep.shard: sharding is supported for quadratic and "
                         "loss-judged sweeps, not for orbit studies of non-quadratic losses")
    if not studied_as_map(problem):  # a non-quadratic loss with an optimum: study the orbits
        return run_orbit_study(cfg, out, overwrite=overwrite, progress=progress, log=log,
                               environment=environment(cfg.devices))
    if len(cfg.axes) == 1 and cfg.shard is None:   # refuse an edge search that cannot end
        _study_edges.check_edge_search(cfg)
    plan = _study_plan.plan(cfg, log)
    if cfg.shard is not None:    # a shard keeps every statistic, raw
        sim = simulate_shard(problem, cfg.axes["alpha"], shard=cfg.shard,
                             **_study_plan.main_options(cfg, plan, progress))
        return write_shard(cfg, out, sim, overwrite=overwrite,
                           environment=environment(cfg.devices), log=log)
    res, traj = _simulate(cfg, plan, progress, simulation)
    heat = _heatmap_runs(cfg, plan, res)
    emit(log, sweep_lines(cfg, res, traj))      # each stage's lines as it finishes
    th = _study_theory.closed_forms(cfg, res, plan.keep)
    changes = _study_edges.grid_changes(res) if len(res.axes) == 1 else None
    found = _study_edges.bisect(cfg, res, changes, progress)
    summary = _summary(cfg, res, plan.keep, th, found, changes, heat)
    emit(log, comparison_lines(cfg, summary))
    zs = _zoom(cfg, progress) if cfg.zoom is not None else None
    if zs is not None:
        summary["zoom"] = zs.summary()
        emit(log, zoom_lines(summary))
    _write(out, overwrite, cfg, res, th, traj, heat, summary, zs, t_start=t_start, log=log)
    return summary


def _simulate(cfg: SweepConfig, plan: Plan, progress: bool | None,
              simulation: Simulation | None) -> tuple[SweepResult, SweepResult | None]:
    """The main sweep (finished from ``simulation`` when given), and the runs shown step by step:
    the main sweep's own for a short α list, else those of ``cfg.trajectories`` (or none)."""
    problem, alpha = cfg.problem_value, cfg.axes["alpha"]
    options = _study_plan.main_options(cfg, plan, progress)
    if simulation is not None:
        res = finish_sweep(problem, alpha, simulation, keep=plan.keep, **options)
    else:
        res = gdlab.sweep(problem, alpha, keep=plan.keep,
                          rounding_check=_study_plan.rounding_check(cfg, plan), **options)
    traj = res if plan.short_list else None
    if cfg.trajectories:
        traj = gdlab.sweep(problem, list(cfg.trajectories), record_every=plan.traj_every,
                           progress=False, **sweep_options(cfg))
    if traj is not None and plan.traj_every > 1:
        traj = _with_first_steps(cfg, traj)
    return res, traj


def _heatmap_runs(cfg: SweepConfig, plan: Plan, res: SweepResult) -> HeatmapSample | None:
    """The α of ``plan.heatmap_sample`` (grid values of ``res``) swept again as the trajectories
    are, their iterates recorded every ``heatmap_every(T)`` steps, for the error heatmap; None
    where the plan has no sample. The main sweep's results do not depend on it."""
    if plan.heatmap_sample is None:
        return None
    runs = gdlab.sweep(cfg.problem_value, res.alpha[plan.heatmap_sample],
                       record_every=heatmap_every(cfg.steps), progress=False,
                       **sweep_options(cfg))
    return HeatmapSample(plan.heatmap_sample, runs, res.alpha.size)


def _with_first_steps(cfg: SweepConfig, traj: SweepResult) -> SweepResult:
    """``traj`` with its first ``cfg.table_steps`` steps recorded one by one (the tables of
    homework Q4.1 show t = 0, 1, 2, …, not the stride a long horizon records at): those steps
    simulated again, from the same α and w₀ in the same dtype, and put in front of the strided
    snapshots beyond them. Gradient descent is deterministic: the first k steps do not depend on
    the horizon."""
    k = min(cfg.table_steps, cfg.steps)
    first = gdlab.sweep(cfg.problem_value, traj.alpha, record_every=1, progress=False,
                        **{**sweep_options(cfg), "steps": k})
    later = traj.snapshot_steps > k
    return dataclasses.replace(
        traj, snapshot_steps=np.concatenate([first.snapshot_steps, traj.snapshot_steps[later]]),
        trajectory=np.concatenate([first.trajectory, traj.trajectory[:, later]], axis=1))


def _summary(cfg: SweepConfig, res: SweepResult, keep: str, th: Theory,
             found: list[boundary.Boundary] | None, changes: GridChanges | None,
             heat: HeatmapSample | None = None) -> dict:
    """summary.json, less its timings and files (added once the plots are written);
    ``changes``: the grid's :func:`_study_edges.grid_changes` (1-D), for the boundaries;
    ``heat``: the heatmap's subsample, if any."""
    summary = {
        "config_path": cfg.path, "config": cfg.resolved, **environment(cfg.devices),
        "dtype": res.dtype, "n_runs": res.n_runs, "grid_shape": list(res.grid_shape),
        "axes": list(res.axes), "steps": res.steps, "tol": res.tol,
        "regime_names": list(REGIME_NAMES), "regime_counts": report.regime_counts(res.regime),
        "keep": keep,
    }
    not_drawn = _study_plots.not_drawn(cfg, res, heat)
    if not_drawn:
        summary["plots_not_drawn"] = not_drawn
    if res.rounding_sensitive is not None:
        summary["rounding_check"] = {
            "n_flagged": int(res.rounding_sensitive.sum()), "n_runs": res.n_runs,
            "rule": "re-simulated in float64 from the same float32 inputs: the trend (shrinks, "
                    "grows, neither) or steps_to_tol changes"}
    if keep == "compact":
        summary["compact"] = ("only regime and steps_to_tol were kept (every statistic would not "
                              "fit in the memory limit): no theory comparison; run a smaller "
                              f"grid, or raise ${resources.ENV_LIMIT}, for the agreement figures")
    spectrum = _study_theory.spectrum(cfg.problem_value, res)
    if spectrum is not None:
        summary["spectrum"] = spectrum
    bounds = None if found is None else _study_edges.boundaries(cfg, res, th, found, changes)
    if th.pred is not None:
        unresolved = [] if bounds is None else bounds["unresolved_cells"]
        summary.update(_study_theory.comparison(cfg, res, th, unresolved))
    if not isinstance(cfg.problem_value, WithOptimum):
        summary["trainability"] = trainability.summary(res)
    if bounds is not None:
        summary["boundaries"] = bounds
    if th.edges:   # the regime strip's closed-form row, for `gdlab plot`
        summary["closed_form_edges"] = th.edges
    return summary


def _zoom(cfg: SweepConfig, progress: bool | None) -> zoom.ZoomSeries:
    """The zoom series of ``[zoom]``: the map again on windows shrinking around its center."""
    _, other = cfg.axes   # a 2-D map's two small axes, built here in float64 for the windows
    return zoom.series(cfg.problem_value, cfg.axis_values("alpha"), other,
                       cfg.axis_values(other), cfg.zoom.center,
                       frames=cfg.zoom.frames, factor=cfg.zoom.factor, chunk_size=cfg.chunk_size,
                       devices=cfg.devices, progress=progress, **sweep_options(cfg))


def _write(out: Path, overwrite: bool, cfg: SweepConfig, res: SweepResult, th: Theory,
           traj: SweepResult | None, heat: HeatmapSample | None, summary: dict,
           zs: zoom.ZoomSeries | None, *, t_start: float,
           log: Callable[[str], None]) -> None:
    """results.npz, summary.json (with its timings and files) and the plots, then the log."""
    arrays = _result_arrays(res, th.pred, traj, heat)
    t_plot = time.perf_counter()

    def contents(tmp: Path) -> rundir.RunFiles:
        files = _study_plots.draw(tmp, cfg, res, None if th.pred is None else th.pred.regime,
                                  th.edges, th.linear, traj,
                                  skipped=summary.get("plots_not_drawn", {}), heat=heat)
        extra = {}
        if zs is not None:
            files += plots.save(zoom.frames_figure(zs), tmp, "zoom_frames")
            extra["zoom.npz"] = {"x": zs.x, "y": zs.y, "regime": zs.regime,
                                 **({"score": zs.score} if zs.score is not None else {})}
        summary["timings"] = {"compile_s": res.compile_s, "run_s": res.run_s,
                              "updates_per_s": res.updates_per_s,
                              "plot_s": time.perf_counter() - t_plot,
                              "total_s": time.perf_counter() - t_start}
        summary["files"] = ["results.npz", "summary.json", *extra, *files]
        return rundir.RunFiles({"results.npz": arrays, **extra, "summary.json": summary},
                               closing_lines(out, res, files))

    rundir.write_run(out, overwrite, contents, log=log)


def _result_arrays(res: SweepResult, pred: theory.Prediction | None, traj: SweepResult | None,
                   heat: HeatmapSample | None = None) -> dict[str, np.ndarray]:
    """results.npz: the axes, the per-run results kept, the predictions and the snapshots (the
    grid's own, or the heatmap's subsample's with what redrawing it needs)."""
    arrays = {name: values for name, values in res.axes.items()}
    arrays.update(axis_names=np.array(list(res.axes)), regime=res.regime,
                  regime_names=np.array(REGIME_NAMES), steps_to_tol=res.steps_to_tol)
    arrays.update({k: v for k, v in dict(
        contraction=res.contraction, flips=res.flips, diverged_at=res.diverged_at,
        final_error=res.final_error, max_error=res.max_error, w0=res.w0, score=res.score,
        loss_ratio=res.loss_ratio, min_loss_ratio=res.min_loss_ratio).items() if v is not None})
    if res.recurrence_dev is not None:
        arrays["recurrence_dev"] = res.recurrence_dev
    if pred is not None:
        arrays.update(predicted_regime=pred.regime, predicted_steps_to_tol=pred.steps_to_tol,
                      rounding_sensitive=pred.sensitive, spectral_radius=pred.rho)
        if pred.r is not None:
            arrays["rate"] = pred.r
    elif res.rounding_sensitive is not None:
        arrays["rounding_sensitive"] = res.rounding_sensitive
    if res.mode_flips is not None:
        arrays["mode_flips"] = res.mode_flips
    if res.trajectory is not None:   # w* and the noise floor: the heatmap's, for `gdlab plot`
        arrays.update({k: v for k, v in dict(
            snapshot_steps=res.snapshot_steps, snapshot_w=res.trajectory, w_star=res.w_star,
            noise_floor=res.noise_floor).items() if v is not None})   # no optimum: no w*
    if traj is not None:
        arrays.update(trajectory_alpha=traj.alpha, trajectory_steps=traj.snapshot_steps,
                      trajectory_w=traj.trajectory)
        arrays.update({f"trajectory_{k}": v for k, v in dict(
            diverged_at=traj.diverged_at, w_star=traj.w_star,
            curvature=traj.curvature).items() if v is not None})
    if heat is not None:
        h = heat.runs
        arrays.update({f"heatmap_{k}": v for k, v in dict(
            index=heat.index, alpha=h.alpha, steps=h.snapshot_steps, w=h.trajectory,
            diverged_at=h.diverged_at, w_star=h.w_star,
            noise_floor=h.noise_floor).items() if v is not None})
    return arrays
