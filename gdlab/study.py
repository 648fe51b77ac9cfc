"""A sweep study end to end: config → sweep → theory → report, results file and plots.

This is what ``gdlab run CONFIG`` does for a ``[sweep]`` config; every piece it uses is public API.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

import gdlab
from gdlab import boundary, plots, quadratics, report, resources, rundir, stability, theory
from gdlab._sweep import finish_sweep, simulate_shard
from gdlab.config import ConfigError, SweepConfig
from gdlab.interfaces import Linear
from gdlab.regimes import REGIME_NAMES

__all__ = ["run_sweep_study", "environment"]

_HEATMAP_COLUMNS = 200          # snapshots along t in the α × t heatmap
_HEATMAP_MAX_VALUES = 5_000_000  # above this many stored values the heatmap is skipped
_TRAJECTORY_LIST_MAX = 12       # an explicit α list this short is shown step by step
_TRAJECTORY_POINTS = 100_000    # iterates kept per trajectory (every k-th step beyond this)


def _keep(cfg: SweepConfig, n: int, record_every: int | None) -> str:
    """"all" when every statistic fits in the memory limit, else "compact" (regime and steps)."""
    size = int(np.prod(cfg.problem_value.param_shape, dtype=np.int64))
    snaps = cfg.steps // record_every + 2 if record_every else 0
    full = resources.sweep_bytes(n, keep="all", param_size=size,
                                 itemsize=np.dtype(cfg.dtype).itemsize, snapshots=snaps)
    return "all" if full <= resources.memory_limit() else "compact"


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
                    simulation=None) -> dict:
    """Run ``cfg``, write ``out`` (results.npz, summary.json, plots) atomically; return the summary.

    With ``cfg.shard`` only that slice is simulated and written raw (see ``gdlab.shards``);
    ``simulation`` (merged shards) replaces simulating the main sweep.
    """
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    problem = cfg.problem_value
    if cfg.shard is not None and not isinstance(problem, Linear):
        raise ConfigError(f"{cfg.path}: sweep.shard: sharding is supported for quadratic sweeps, "
                         "not for orbit studies of non-quadratic losses")
    if not isinstance(problem, Linear):  # not a quadratic: study the orbits instead
        from gdlab.orbit_study import run_orbit_study
        return run_orbit_study(cfg, out, overwrite=overwrite, progress=progress, log=log,
                               environment=environment())
    alpha = cfg.axes["alpha"]
    over = {k: v for k, v in cfg.axes.items() if k != "alpha"}
    one_d = not over
    short_list = one_d and alpha.size <= _TRAJECTORY_LIST_MAX and not cfg.trajectories
    record_every = None
    traj_every = max(1, math.ceil(cfg.steps / _TRAJECTORY_POINTS))
    if short_list:
        record_every = traj_every
    elif one_d:
        record_every = max(1, math.ceil(cfg.steps / _HEATMAP_COLUMNS))
        if alpha.size * (cfg.steps // record_every + 2) > _HEATMAP_MAX_VALUES:
            record_every = None
    n = int(np.prod([v.size for v in cfg.axes.values()], dtype=np.int64))
    keep = _keep(cfg, n, record_every) if cfg.shard is None else "all"
    if keep == "compact":
        record_every, short_list = None, False
        log(f"{cfg.path}: {n} runs: keeping regime and steps-to-tol only (keep = \"compact\"): "
            f"all statistics would not fit in {resources.format_bytes(resources.memory_limit())}")
    common = dict(w0=cfg.w0, steps=cfg.steps, tol=cfg.tol, optimizer=cfg.optimizer,
                  hparams=cfg.hparams, dtype=cfg.dtype, unroll=cfg.unroll)
    options = dict(over=over, record_every=record_every, chunk_size=cfg.chunk_size,
                   devices=cfg.devices, progress=progress, **common)
    if cfg.shard is not None:    # a shard keeps every statistic
        res = simulate_shard(problem, alpha, shard=cfg.shard, **options)
    elif simulation is not None:
        res = finish_sweep(problem, alpha, simulation, keep=keep, **options)
    else:
        res = gdlab.sweep(problem, alpha, keep=keep, **options)
    traj = res if short_list else None
    if cfg.trajectories:
        traj = gdlab.sweep(problem, list(cfg.trajectories), record_every=traj_every,
                           progress=False, **common)
    if cfg.shard is not None:
        from gdlab.shards import write_shard
        return write_shard(cfg, out, res, overwrite=overwrite, environment=environment(), log=log)

    linear = (cfg.optimizer in stability.LINEAR_OPTIMIZERS and isinstance(problem, Linear)
              and keep == "all")
    pred = agree = region = None
    if linear:
        pred = theory.predict(res)
        agree = theory.agreement(res, pred)
        region = theory.region_check(res, pred)
    lam = res.curvature
    const_lam = float(lam.ravel()[0]) if lam is not None and np.ptp(lam) == 0 else None
    scalar_w = res.w_star is not None and res.w_star.ndim == len(res.grid_shape)
    beta = cfg.hparams.get("beta", 0.0)

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
    lines = [f"gdlab {gdlab.__version__}: {cfg.path}: {res.n_runs} runs × {res.steps} steps, "
             f"{cfg.optimizer}, {res.dtype}, {jax.default_backend()}"]
    if traj is not None:
        w_star = traj.w_star.reshape(len(traj.alpha), -1)
        for i, a in enumerate(traj.alpha):
            if traj.w_star.ndim == 1:  # scalar parameter: a step-by-step table
                lines.append(report.trajectory_table(float(a), traj.snapshot_steps,
                                                     traj.trajectory[i], float(w_star[i, 0]),
                                                     cfg.table_steps, int(traj.diverged_at[i])))
    if res.w_star is not None and not scalar_w and isinstance(problem, Linear):
        ev = np.asarray(problem.eigenvalues(), np.float64)
        if ev.ndim == 1:
            summary["spectrum"] = {"lam_min": ev.min(), "lam_max": ev.max(),
                                   "kappa": ev.max() / ev.min(),
                                   "optimal_alpha_gd": quadratics.optimal_alpha(ev),
                                   "optimal_rate_gd": (ev.max() - ev.min()) / (ev.max() + ev.min())}
            lines.append(f"spectrum: λ in [{ev.min():.4g}, {ev.max():.4g}] (κ = "
                         f"{ev.max() / ev.min():.4g}); GD converges iff 0 < α < 2/λ_max = "
                         f"{2 / ev.max():.6g}, fastest at α = 2/(λ_min + λ_max) = "
                         f"{quadratics.optimal_alpha(ev):.6g}")
    if pred is not None:
        summary["predicted_regime_counts"] = report.regime_counts(pred.regime)
        summary["agreement"] = agree.as_dict()
        summary["region"] = region
        if res.recurrence_dev is not None:
            rec = float(res.recurrence_dev.max())
            eps = float(np.finfo(res.dtype).eps)
            summary["recurrence"] = {
                "claim": "|w* − w_{t+1}| = |1 − αλ|·|w* − w_t| at every step of every run",
                "max_dev": rec, "max_dev_in_eps": rec / eps,
                "measure": "max over runs and steps of ||e_{t+1}| − |r||e_t|| / "
                           "(|w*| + |e_t| + |e_{t+1}| + |αλ e_t|), r = 1 − αλ, e_t = w_t − w*"}
        if one_d and const_lam is not None and cfg.optimizer == "sgd" and scalar_w:
            summary["q4_answer"] = report.q4_statement(res.alpha, res.regime, const_lam)
            lines.append("Q4.2 from the sweep:")
            lines += [f"  {k:>13}: {v}" for k, v in summary["q4_answer"].items()]
        lines.append(f"agreement with theory: {agree.fraction:.6f} "
                     f"({agree.n_compared} runs compared, {agree.n_sensitive} rounding-sensitive "
                     f"runs reported separately, {agree.regime_mismatches} regime and "
                     f"{agree.steps_mismatches} steps-to-tol mismatches)")
        dist = region["max_boundary_distance"]
        lines.append(f"closed-form stability region ({cfg.optimizer}): agreement "
                     f"{region['fraction']:.6f} on {region['n_compared']} cells outside the band "
                     f"({region['band']}: {region['n_band']} cells)"
                     + ("" if dist is None else f"; largest |simulated − closed-form edge| "
                        f"{dist:.3g} (α grid step {region['alpha_grid_step']:.3g})"))
        if "recurrence" in summary:
            r_ = summary["recurrence"]
            lines.append(f"recurrence check (Q4.3): max deviation {r_['max_dev']:.3g} = "
                         f"{r_['max_dev_in_eps']:.2f} eps")
    if one_d and res.alpha.size > 1:
        def rerun(alphas):
            return gdlab.sweep(problem, alphas, progress=False, **common).regime
        found = boundary.locate(rerun, res.alpha, res.regime, dtype=res.dtype)
        closed = {}
        if linear and const_lam is not None:
            closed = {"oscillation_onset": float(stability.oscillation_onset(
                          cfg.optimizer, const_lam, beta)),
                      "divergence": float(stability.critical_alpha(cfg.optimizer, const_lam, beta))}
        summary["boundaries"] = {"bisected": [b.as_dict() for b in found], "closed_form": closed,
                                 "precision": "bracket ≤ 1e-6·max(1, |α|) or float resolution"}
        if found:
            lines.append("regime boundaries (bisection on the grid): " + "; ".join(
                f"{b.below} → {b.above} at α = {b.alpha:.7g}" for b in found))
        if closed:
            lines.append("closed form: " + ", ".join(f"{k} α = {v:.7g}" for k, v in closed.items()))
    counts = {k: v for k, v in summary["regime_counts"].items() if v}
    lines.append("simulated regimes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    arrays = _result_arrays(res, pred, traj)
    t_plot = time.perf_counter()
    with rundir.run_directory(out, overwrite) as tmp:
        files = _plots(tmp, res, pred, traj, const_lam, problem, cfg, linear)
        summary["timings"] = {"compile_s": res.compile_s, "run_s": res.run_s,
                              "updates_per_s": res.updates_per_s,
                              "plot_s": time.perf_counter() - t_plot,
                              "total_s": time.perf_counter() - t_start}
        summary["files"] = ["results.npz", "summary.json", *files]
        rundir.write_npz(tmp / "results.npz", arrays)
        rundir.write_json(tmp / "summary.json", summary)
    lines.append(f"compile {res.compile_s:.2f} s, run {res.run_s:.3f} s "
                 f"({res.updates_per_s / 1e9:.3f} G updates/s)")
    lines.append(f"results: {out}/results.npz, {out}/summary.json; plots: "
                 + ", ".join(f"{out}/{f}" for f in files if f.endswith(".png")))
    for line in lines:
        log(line)
    return summary


def _result_arrays(res, pred, traj) -> dict[str, np.ndarray]:
    arrays = {name: values for name, values in res.axes.items()}
    arrays.update(axis_names=np.array(list(res.axes)), regime=res.regime,
                  regime_names=np.array(REGIME_NAMES), steps_to_tol=res.steps_to_tol)
    arrays.update({k: v for k, v in dict(
        contraction=res.contraction, flips=res.flips, diverged_at=res.diverged_at,
        final_error=res.final_error, max_error=res.max_error, w0=res.w0).items() if v is not None})
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


def _plots(directory: Path, res, pred, traj, const_lam, problem, cfg, linear) -> list[str]:
    files = []
    fixed = lambda d: {k: v for k, v in d.items() if k not in res.axes}
    hp = _params(fixed(cfg.hparams))
    title = (f"{cfg.problem} {_params(fixed(cfg.problem_params))}, {cfg.optimizer}"
             f"{' ' + hp if hp else ''}, T = {res.steps}")
    beta = cfg.hparams.get("beta", 0.0)
    if len(res.axes) == 1:
        bounds = {}
        if linear and const_lam is not None:
            bounds = {"oscillation starts":
                          float(stability.oscillation_onset(cfg.optimizer, const_lam, beta)),
                      "divergence starts":
                          float(stability.critical_alpha(cfg.optimizer, const_lam, beta))}
        files += plots.save(plots.regime_strip(res.alpha, res.regime,
                                               None if pred is None else pred.regime, bounds,
                                               title=f"Regime per step size — {title}"),
                            directory, "regime_strip")
        if res.trajectory is not None and res.alpha.size > 1:
            err = res.trajectory.astype(np.float64) - res.w_star[:, None]
            err = np.abs(err) if err.ndim == 2 else np.sqrt(np.sum(err * err, axis=-1))
            files += plots.save(plots.error_heatmap(res.alpha, res.snapshot_steps, err,
                                                    res.diverged_at, bounds,
                                                    title=f"log₁₀‖w_t − w*‖ — {title}"),
                                directory, "error_heatmap")
    elif len(res.axes) == 2:
        (_, a), (o_name, o) = res.axes.items()
        curves = _overlays(problem, cfg, o_name) if linear else {}
        files += plots.save(plots.phase_map(a, o, o_name, res.regime, curves,
                                            title=f"Regime over α × {o_name} — {title}"),
                            directory, "phase_map")
    else:  # α fixed to one value, two other axes mapped
        (_, _), (x_name, x), (o_name, o) = res.axes.items()
        files += plots.save(plots.phase_map(x, o, o_name, res.regime[0], None, x_name=x_name,
                                            title=f"Regime over {x_name} × {o_name} at α = "
                                                  f"{float(res.alpha[0]):g} — {title}"),
                            directory, "phase_map")
    if traj is not None and traj.w_star.ndim == 1:
        files += plots.save(plots.trajectories(traj.alpha, traj.snapshot_steps, traj.trajectory,
                                               traj.w_star, traj.diverged_at,
                                               title=f"Trajectories — {title}"),
                            directory, "trajectories")
    return files


def _overlays(problem, cfg, other: str) -> dict:
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
