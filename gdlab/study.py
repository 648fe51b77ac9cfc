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
from gdlab import plots, report, rundir, theory
from gdlab import problems as problems_lib
from gdlab.config import SweepConfig
from gdlab.regimes import REGIME_NAMES

__all__ = ["run_sweep_study", "environment"]

_HEATMAP_COLUMNS = 200          # snapshots along t in the α × t heatmap
_HEATMAP_MAX_VALUES = 5_000_000  # above this many stored values the heatmap is skipped
_TRAJECTORY_LIST_MAX = 12       # an explicit α list this short is shown step by step


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
                    progress: bool | None = None, log: Callable[[str], None] = print) -> dict:
    """Run ``cfg``, write ``out`` (results.npz, summary.json, plots) atomically; return the summary."""
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    problem = problems_lib.get(cfg.problem).make(**cfg.problem_params)
    alpha = cfg.axes["alpha"]
    over = {k: v for k, v in cfg.axes.items() if k != "alpha"}
    one_d = not over
    short_list = one_d and alpha.size <= _TRAJECTORY_LIST_MAX and not cfg.trajectories
    record_every = None
    if short_list:
        record_every = 1
    elif one_d:
        record_every = max(1, math.ceil(cfg.steps / _HEATMAP_COLUMNS))
        if alpha.size * (cfg.steps // record_every + 2) > _HEATMAP_MAX_VALUES:
            record_every = None
    common = dict(w0=cfg.w0, steps=cfg.steps, tol=cfg.tol, optimizer=cfg.optimizer,
                  hparams=cfg.hparams, dtype=cfg.dtype, unroll=cfg.unroll)
    res = gdlab.sweep(problem, alpha, over=over, record_every=record_every,
                      chunk_size=cfg.chunk_size, progress=progress, **common)
    traj = res if short_list else None
    if cfg.trajectories:
        traj = gdlab.sweep(problem, list(cfg.trajectories), record_every=1, progress=False, **common)

    pred = agree = None
    if cfg.optimizer == "sgd":
        pred = theory.predict(res)
        agree = theory.agreement(res, pred)
    lam = res.curvature
    const_lam = float(lam.ravel()[0]) if np.ptp(lam) == 0 else None

    summary = {
        "config_path": cfg.path, "config": cfg.resolved, **environment(),
        "dtype": res.dtype, "n_runs": res.n_runs, "grid_shape": list(res.grid_shape),
        "axes": list(res.axes), "steps": res.steps, "tol": res.tol,
        "regime_names": list(REGIME_NAMES), "regime_counts": report.regime_counts(res.regime),
    }
    lines = [f"gdlab {gdlab.__version__}: {cfg.path}: {res.n_runs} runs × {res.steps} steps, "
             f"{res.dtype}, {jax.default_backend()}"]
    if traj is not None:
        w_star = np.ravel(traj.w_star)
        for i, a in enumerate(traj.alpha):
            lines.append(report.trajectory_table(float(a), traj.snapshot_steps, traj.trajectory[i],
                                                 float(w_star[i]), cfg.table_steps,
                                                 int(traj.diverged_at[i])))
    if pred is not None:
        summary["predicted_regime_counts"] = report.regime_counts(pred.regime)
        summary["agreement"] = agree.as_dict()
        rec = float(res.recurrence_dev.max()) if res.recurrence_dev is not None else None
        eps = float(np.finfo(res.dtype).eps)
        summary["recurrence"] = {
            "claim": "|w* − w_{t+1}| = |1 − αλ|·|w* − w_t| at every step of every run",
            "max_dev": rec, "max_dev_in_eps": None if rec is None else rec / eps,
            "measure": "max over runs and steps of ||e_{t+1}| − |r||e_t|| / "
                       "(|w*| + |e_t| + |e_{t+1}| + |αλ e_t|), r = 1 − αλ, e_t = w_t − w*"}
        if one_d and const_lam is not None:
            summary["q4_answer"] = report.q4_statement(res.alpha, res.regime, const_lam)
            summary["boundaries"] = {"oscillation_alpha": 1 / const_lam,
                                     "divergence_alpha": 2 / const_lam}
            lines.append("Q4.2 from the sweep:")
            lines += [f"  {k:>13}: {v}" for k, v in summary["q4_answer"].items()]
        lines.append(f"agreement with theory: {agree.fraction:.6f} "
                     f"({agree.n_compared} runs compared, {agree.n_sensitive} rounding-sensitive "
                     f"runs reported separately, {agree.regime_mismatches} regime and "
                     f"{agree.steps_mismatches} steps-to-tol mismatches)")
        if rec is not None:
            lines.append(f"recurrence check (Q4.3): max deviation {rec:.3g} = {rec / eps:.2f} eps")
    counts = {k: v for k, v in summary["regime_counts"].items() if v}
    lines.append("simulated regimes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    arrays = _result_arrays(res, pred, traj)
    t_plot = time.perf_counter()
    with rundir.run_directory(out, overwrite) as tmp:
        files = _plots(tmp, res, pred, traj, const_lam, problem, cfg)
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
    arrays.update(
        axis_names=np.array(list(res.axes)), regime=res.regime,
        regime_names=np.array(REGIME_NAMES), steps_to_tol=res.steps_to_tol,
        contraction=res.contraction, flips=res.flips, diverged_at=res.diverged_at,
        final_error=res.final_error, max_error=res.max_error, w0=res.w0)
    if res.recurrence_dev is not None:
        arrays["recurrence_dev"] = res.recurrence_dev
    if pred is not None:
        arrays.update(predicted_regime=pred.regime, predicted_steps_to_tol=pred.steps_to_tol,
                      rounding_sensitive=pred.sensitive, rate=pred.r)
    if res.trajectory is not None:
        arrays.update(snapshot_steps=res.snapshot_steps, snapshot_w=res.trajectory)
    if traj is not None:
        arrays.update(trajectory_alpha=traj.alpha, trajectory_steps=traj.snapshot_steps,
                      trajectory_w=traj.trajectory)
    return arrays


def _plots(directory: Path, res, pred, traj, const_lam, problem, cfg) -> list[str]:
    files = []
    title = f"{cfg.problem} {_params(cfg.problem_params)}, w0 = {cfg.w0:g}, {cfg.optimizer}, T = {res.steps}"
    if len(res.axes) == 1:
        bounds = {} if const_lam is None else {"αλ = 1": 1 / const_lam, "αλ = 2": 2 / const_lam}
        files += plots.save(plots.regime_strip(res.alpha, res.regime,
                                               None if pred is None else pred.regime, bounds,
                                               title=f"Regime per step size — {title}"),
                            directory, "regime_strip")
        if res.trajectory is not None and res.alpha.size > 1:
            w_star = res.w_star[:, None]
            err = np.abs(res.trajectory.astype(np.float64) - w_star)
            files += plots.save(plots.error_heatmap(res.alpha, res.snapshot_steps, err,
                                                    res.diverged_at, bounds,
                                                    title=f"log₁₀|w_t − w*| — {title}"),
                                directory, "error_heatmap")
    else:
        (a_name, a), (o_name, o) = res.axes.items()
        curves = {}
        if pred is not None:
            field = o_name if o_name in problem._fields else None

            def boundary(c):
                def alpha_on_boundary(v):
                    p = problem._replace(**{field: v}) if field else problem
                    return c / np.asarray(p.curvature(), np.float64) * np.ones_like(v)
                return alpha_on_boundary
            curves = {"αλ = 1 (oscillation starts)": boundary(1.0),
                      "αλ = 2 (divergence starts)": boundary(2.0)}
        files += plots.save(plots.phase_map(a, o, o_name, res.regime, curves,
                                            title=f"Regime over α × {o_name} — {title}"),
                            directory, "phase_map")
    if traj is not None:
        files += plots.save(plots.trajectories(traj.alpha, traj.snapshot_steps, traj.trajectory,
                                               traj.w_star,
                                               traj.diverged_at, title=f"Trajectories — {title}"),
                            directory, "trajectories")
    return files


def _params(params: dict) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in params.items())
