"""A sweep study end to end: config → sweep → theory → report, results file and plots.

This is what ``gdlab run CONFIG`` does for a ``[sweep]`` config; every piece it uses is public API.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import numpy as np

import gdlab
from gdlab import (
    boundary,
    plots,
    quadratics,
    report,
    resources,
    rundir,
    stability,
    theory,
    trainability,
    zoom,
)
from gdlab._study_log import closing_lines, summary_lines
from gdlab._sweep import SweepResult, finish_sweep, simulate_shard
from gdlab.config import ConfigError, SweepConfig
from gdlab.engine import Simulation
from gdlab.interfaces import Linear, WithOptimum, studied_as_map
from gdlab.orbit_study import run_orbit_study
from gdlab.regimes import REGIME_NAMES
from gdlab.shards import write_shard

__all__ = ["run_sweep_study", "environment"]

_HEATMAP_COLUMNS = 200          # snapshots along t in the α × t heatmap
_HEATMAP_MAX_VALUES = 5_000_000  # above this many stored values the heatmap is skipped
_TRAJECTORY_LIST_MAX = 12       # an explicit α list this short is shown step by step
_TRAJECTORY_POINTS = 100_000    # iterates kept per trajectory (every k-th step beyond this)


class _Plan(NamedTuple):
    """What the sweep records and keeps, decided before any work."""

    short_list: bool           # an explicit α list short enough to show step by step
    record_every: int | None   # snapshot interval of the main sweep; None: no snapshots
    traj_every: int            # snapshot interval of the trajectory sweep
    keep: str                  # "all", or "compact" (regime and steps) where "all" would not fit


class _Theory(NamedTuple):
    """The closed forms the sweep is compared with; None (or empty) where they do not apply."""

    linear: bool                      # a linear optimizer, every statistic kept
    pred: theory.Prediction | None
    agree: theory.Agreement | None
    region: dict | None
    const_lam: float | None           # λ_max when every run shares it
    edges: dict[str, float]           # closed-form α of oscillation onset and divergence (1-D)


def environment() -> dict:
    """Versions and device, for summary.json."""
    import jaxlib
    import matplotlib
    import optax
    devices = jax.devices()
    return {
        "versions": {"gdlab": gdlab.__version__, "jax": jax.__version__,
                     "jaxlib": jaxlib.__version__, "numpy": np.__version__,
                     "optax": optax.__version__, "matplotlib": matplotlib.__version__,
                     "python": platform.python_version()},
        "device": {"backend": jax.default_backend(), "count": len(devices),
                   "kind": devices[0].device_kind, "platform": platform.platform()},
    }


def run_sweep_study(cfg: SweepConfig, out: Path, *, overwrite: bool = False,
                    progress: bool | None = None, log: Callable[[str], None] = print,
                    simulation: Simulation | None = None) -> dict:
    """Run ``cfg``, write ``out`` (results.npz, summary.json, plots) atomically; return the summary.

    With ``cfg.shard`` only that slice is simulated and written raw (see ``gdlab.shards``);
    ``simulation`` (merged shards) replaces simulating the main sweep.
    """
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    problem = cfg.problem_value
    if cfg.shard is not None and not studied_as_map(problem):
        raise ConfigError(f"{cfg.path}: sweep.shard: sharding is supported for quadratic and "
                         "loss-judged sweeps, not for orbit studies of non-quadratic losses")
    if not studied_as_map(problem):  # a non-quadratic loss with an optimum: study the orbits
        return run_orbit_study(cfg, out, overwrite=overwrite, progress=progress, log=log,
                               environment=environment())
    plan = _plan(cfg, log)
    if cfg.shard is not None:    # a shard keeps every statistic, raw
        sim = simulate_shard(problem, cfg.axes["alpha"], shard=cfg.shard,
                             **_options(cfg, plan, progress))
        return write_shard(cfg, out, sim, overwrite=overwrite, environment=environment(), log=log)
    res, traj = _simulate(cfg, plan, progress, simulation)
    th = _theory(cfg, res, plan.keep)
    found = _bisect(cfg, res)
    summary = _summary(cfg, res, plan.keep, th, found)
    zs = _zoom(cfg, progress) if cfg.zoom is not None else None
    if zs is not None:
        summary["zoom"] = zs.summary()
    _write(out, overwrite, cfg, res, th, traj, summary, zs, t_start=t_start, log=log)
    return summary


def _plan(cfg: SweepConfig, log: Callable[[str], None]) -> _Plan:
    """Snapshots for the heatmap or the trajectories, and keep = "all" when every statistic fits
    in the memory limit (a shard's always does), else "compact" with no snapshots."""
    alpha, one_d = cfg.axes["alpha"], len(cfg.axes) == 1
    short_list = one_d and alpha.size <= _TRAJECTORY_LIST_MAX and not cfg.trajectories
    traj_every = max(1, math.ceil(cfg.steps / _TRAJECTORY_POINTS))
    record_every = None
    if short_list:
        record_every = traj_every
    elif one_d:
        record_every = max(1, math.ceil(cfg.steps / _HEATMAP_COLUMNS))
        if alpha.size * (cfg.steps // record_every + 2) > _HEATMAP_MAX_VALUES:
            record_every = None
    if cfg.shard is not None:
        return _Plan(short_list, record_every, traj_every, "all")
    n = int(np.prod([v.size for v in cfg.axes.values()], dtype=np.int64))
    size = int(np.prod(cfg.problem_value.param_shape, dtype=np.int64))
    snaps = cfg.steps // record_every + 2 if record_every else 0
    full = resources.sweep_bytes(n, keep="all", param_size=size,
                                 itemsize=np.dtype(cfg.dtype).itemsize, snapshots=snaps)
    limit = resources.memory_limit()
    if full <= limit:
        return _Plan(short_list, record_every, traj_every, "all")
    log(f"{cfg.path}: {n} runs: keeping regime and steps-to-tol only (keep = \"compact\"): "
        f"all statistics would not fit in {resources.format_bytes(limit)}")
    return _Plan(False, None, traj_every, "compact")


def _common(cfg: SweepConfig) -> dict:
    """The sweep arguments the main sweep, the trajectories and the bisection share."""
    return dict(w0=cfg.w0, steps=cfg.steps, tol=cfg.tol, optimizer=cfg.optimizer,
                hparams=cfg.hparams, dtype=cfg.dtype, unroll=cfg.unroll)


def _options(cfg: SweepConfig, plan: _Plan, progress: bool | None) -> dict:
    """The main sweep's arguments besides the problem, α and ``keep``."""
    return dict(over={k: v for k, v in cfg.axes.items() if k != "alpha"},
                record_every=plan.record_every, chunk_size=cfg.chunk_size, devices=cfg.devices,
                progress=progress, **_common(cfg))


def _simulate(cfg: SweepConfig, plan: _Plan, progress: bool | None,
              simulation: Simulation | None) -> tuple[SweepResult, SweepResult | None]:
    """The main sweep (finished from ``simulation`` when given), and the runs shown step by step:
    the main sweep's own for a short α list, else those of ``cfg.trajectories`` (or none)."""
    problem, alpha, options = cfg.problem_value, cfg.axes["alpha"], _options(cfg, plan, progress)
    if simulation is not None:
        res = finish_sweep(problem, alpha, simulation, keep=plan.keep, **options)
    else:
        res = gdlab.sweep(problem, alpha, keep=plan.keep, **options)
    traj = res if plan.short_list else None
    if cfg.trajectories:
        traj = gdlab.sweep(problem, list(cfg.trajectories), record_every=plan.traj_every,
                           progress=False, **_common(cfg))
    return res, traj


def _theory(cfg: SweepConfig, res: SweepResult, keep: str) -> _Theory:
    """Predictions of the closed forms for a linear optimizer, and the closed-form edges in α
    where every run of a 1-D sweep shares one curvature λ."""
    linear = (cfg.optimizer in stability.LINEAR_OPTIMIZERS and keep == "all"
              and isinstance(cfg.problem_value, Linear))
    lam = res.curvature
    const_lam = float(lam.ravel()[0]) if lam is not None and np.ptp(lam) == 0 else None
    edges = {}
    if linear and const_lam is not None and len(res.axes) == 1:
        beta = cfg.hparams.get("beta", 0.0)
        edges = {"oscillation_onset": float(stability.oscillation_onset(cfg.optimizer, const_lam,
                                                                        beta)),
                 "divergence": float(stability.critical_alpha(cfg.optimizer, const_lam, beta))}
    if not linear:
        return _Theory(False, None, None, None, const_lam, edges)
    pred = theory.predict(res)
    return _Theory(True, pred, theory.agreement(res, pred), theory.region_check(res, pred),
                   const_lam, edges)


def _bisect(cfg: SweepConfig, res: SweepResult) -> list[boundary.Boundary] | None:
    """The regime boundaries of a 1-D α grid, bisected between grid points; None for other grids."""
    if len(res.axes) != 1 or res.alpha.size <= 1:
        return None
    problem, common = cfg.problem_value, _common(cfg)

    def rerun(alphas):
        return gdlab.sweep(problem, alphas, progress=False, **common).regime

    return boundary.locate(rerun, res.alpha, res.regime, dtype=res.dtype)


def _summary(cfg: SweepConfig, res: SweepResult, keep: str, th: _Theory,
             found: list[boundary.Boundary] | None) -> dict:
    """summary.json, less its timings and files (added once the plots are written)."""
    summary = {
        "config_path": cfg.path, "config": cfg.resolved, **environment(),
        "dtype": res.dtype, "n_runs": res.n_runs, "grid_shape": list(res.grid_shape),
        "axes": list(res.axes), "steps": res.steps, "tol": res.tol,
        "regime_names": list(REGIME_NAMES), "regime_counts": report.regime_counts(res.regime),
        "keep": keep,
    }
    if keep == "compact":
        summary["compact"] = ("only regime and steps_to_tol were kept (every statistic would not "
                              "fit in the memory limit): no theory comparison; run a smaller "
                              f"grid, or raise ${resources.ENV_LIMIT}, for the agreement figures")
    spectrum = _spectrum(cfg.problem_value, res)
    if spectrum is not None:
        summary["spectrum"] = spectrum
    if th.pred is not None:
        summary.update(_theory_summary(cfg, res, th))
    if not isinstance(cfg.problem_value, WithOptimum):
        summary["trainability"] = trainability.summary(res)
    if found is not None:
        summary["boundaries"] = {"bisected": [b.as_dict() for b in found],
                                 "closed_form": th.edges,
                                 "precision": "bracket ≤ 1e-6·max(1, |α|) or float resolution"}
    return summary


def _scalar_w(res: SweepResult) -> bool:
    """Is the parameter a scalar (w* has the grid's shape)?"""
    return res.w_star is not None and res.w_star.ndim == len(res.grid_shape)


def _spectrum(problem: Linear, res: SweepResult) -> dict | None:
    """The Hessian's spectrum and GD's optimal step for a vector parameter with one spectrum."""
    if res.w_star is None or _scalar_w(res):
        return None
    ev = np.asarray(problem.eigenvalues(), np.float64)
    if ev.ndim != 1:
        return None
    return {"lam_min": ev.min(), "lam_max": ev.max(), "kappa": ev.max() / ev.min(),
            "optimal_alpha_gd": quadratics.optimal_alpha(ev),
            "optimal_rate_gd": (ev.max() - ev.min()) / (ev.max() + ev.min())}


def _theory_summary(cfg: SweepConfig, res: SweepResult, th: _Theory) -> dict:
    """The comparison with theory: predicted regimes, agreement, stability region, the Q4.3
    recurrence check and, for GD on one scalar curvature over α, the Q4.2 answer."""
    out = {"predicted_regime_counts": report.regime_counts(th.pred.regime),
           "agreement": th.agree.as_dict(), "region": th.region}
    if res.recurrence_dev is not None:
        rec = float(res.recurrence_dev.max())
        eps = float(np.finfo(res.dtype).eps)
        out["recurrence"] = {
            "claim": "|w* − w_{t+1}| = |1 − αλ|·|w* − w_t| at every step of every run",
            "max_dev": rec, "max_dev_in_eps": rec / eps,
            "measure": "max over runs and steps of ||e_{t+1}| − |r||e_t|| / "
                       "(|w*| + |e_t| + |e_{t+1}| + |αλ e_t|), r = 1 − αλ, e_t = w_t − w*"}
    if (len(res.axes) == 1 and th.const_lam is not None and cfg.optimizer == "sgd"
            and _scalar_w(res)):
        out["q4_answer"] = report.q4_statement(res.alpha, res.regime, th.const_lam)
    return out


def _zoom(cfg: SweepConfig, progress: bool | None) -> zoom.ZoomSeries:
    """The zoom series of ``[zoom]``: the map again on windows shrinking around its center."""
    (_, alpha), (other, values) = cfg.axes.items()
    return zoom.series(cfg.problem_value, alpha, other, values, cfg.zoom.center,
                       frames=cfg.zoom.frames, factor=cfg.zoom.factor, chunk_size=cfg.chunk_size,
                       devices=cfg.devices, progress=progress, **_common(cfg))


def _write(out: Path, overwrite: bool, cfg: SweepConfig, res: SweepResult, th: _Theory,
           traj: SweepResult | None, summary: dict, zs: zoom.ZoomSeries | None, *,
           t_start: float,
           log: Callable[[str], None]) -> None:
    """results.npz, summary.json (with its timings and files) and the plots, then the log."""
    lines = summary_lines(cfg, res, traj, summary)
    arrays = _result_arrays(res, th.pred, traj)
    t_plot = time.perf_counter()

    def contents(tmp: Path) -> rundir.RunFiles:
        files = _plots(tmp, res, th, traj, cfg)
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
                               [*lines, *closing_lines(out, res, files)])

    rundir.write_run(out, overwrite, contents, log=log)


def _result_arrays(res: SweepResult, pred: theory.Prediction | None,
                   traj: SweepResult | None) -> dict[str, np.ndarray]:
    """results.npz: the axes, the per-run results kept, the predictions and the snapshots."""
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
    if res.mode_flips is not None:
        arrays["mode_flips"] = res.mode_flips
    if res.trajectory is not None:
        arrays.update(snapshot_steps=res.snapshot_steps, snapshot_w=res.trajectory)
    if traj is not None:
        arrays.update(trajectory_alpha=traj.alpha, trajectory_steps=traj.snapshot_steps,
                      trajectory_w=traj.trajectory)
    return arrays


def _plots(directory: Path, res: SweepResult, th: _Theory, traj: SweepResult | None,
           cfg: SweepConfig) -> list[str]:
    """Write the plots of this grid into ``directory``; return their file names."""
    files = []
    fixed = lambda d: {k: v for k, v in d.items() if k not in res.axes}
    hp = _params(fixed(cfg.hparams))
    title = (f"{cfg.problem} {_params(fixed(cfg.problem_params))}, {cfg.optimizer}"
             f"{' ' + hp if hp else ''}, T = {res.steps}")
    pred = th.pred
    if len(res.axes) == 1:
        bounds = {}
        if th.edges:
            bounds = {"oscillation starts": th.edges["oscillation_onset"],
                      "divergence starts": th.edges["divergence"]}
        files += plots.save(plots.regime_strip(res.alpha, res.regime,
                                               None if pred is None else pred.regime, bounds,
                                               title=f"Regime per step size — {title}"),
                            directory, "regime_strip")
        if res.trajectory is not None and res.alpha.size > 1 and res.w_star is not None:
            err = res.trajectory.astype(np.float64) - res.w_star[:, None]
            err = np.abs(err) if err.ndim == 2 else np.sqrt(np.sum(err * err, axis=-1))
            files += plots.save(plots.error_heatmap(res.alpha, res.snapshot_steps, err,
                                                    res.diverged_at, bounds,
                                                    title=f"log₁₀‖w_t − w*‖ — {title}"),
                                directory, "error_heatmap")
    elif len(res.axes) == 2:
        (_, a), (o_name, o) = res.axes.items()
        curves = _overlays(cfg.problem_value, cfg, o_name) if th.linear else {}
        files += plots.save(plots.phase_map(a, o, o_name, res.regime, curves,
                                            title=f"Regime over α × {o_name} — {title}"),
                            directory, "phase_map")
        if res.score is not None:
            files += plots.save(trainability.score_image(
                a, o, res.score, x_name="step size α", y_name=o_name,
                title=f"Trainability score — {title}"),
                directory, "score_map")
    else:  # α fixed to one value, two other axes mapped
        (_, _), (x_name, x), (o_name, o) = res.axes.items()
        files += plots.save(plots.phase_map(x, o, o_name, res.regime[0], None, x_name=x_name,
                                            title=f"Regime over {x_name} × {o_name} at α = "
                                                  f"{float(res.alpha[0]):g} — {title}"),
                            directory, "phase_map")
    if traj is not None and traj.w_star is not None and traj.w_star.ndim == 1:
        files += plots.save(plots.trajectories(traj.alpha, traj.snapshot_steps, traj.trajectory,
                                               traj.w_star, traj.diverged_at,
                                               title=f"Trajectories — {title}"),
                            directory, "trajectories")
    return files


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

    return {"oscillation starts (closed form)": edge(stability.oscillation_onset),
            "divergence starts (closed form)": edge(stability.critical_alpha)}


def _params(params: dict) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in params.items() if isinstance(v, (int, float)))
