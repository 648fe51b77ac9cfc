"""A bifurcation study end to end: a non-quadratic loss swept over α, orbits classified.

What ``gdlab run`` does for a config whose problem is not a quadratic (e.g. ``double_well``): long
runs, late iterates, periods, Lyapunov exponents, the period-doubling edge located by bisection and
compared with the closed form α = 2/λ* (λ* = ∇²L(w*)), and the plots.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

import gdlab
from gdlab import boundary, dynamics, plots, report, rundir
from gdlab.config import ConfigError
from gdlab.regimes import REGIME_NAMES, Regime

__all__ = ["run_orbit_study"]


def run_orbit_study(cfg, out: Path, *, overwrite: bool = False, progress=None,
                    log: Callable[[str], None] = print, environment: dict) -> dict:
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    if len(cfg.axes) != 1 or cfg.optimizer != "sgd":
        raise ConfigError(f"{cfg.path}: sweep: a non-quadratic problem is studied over α alone "
                          "with optimizer 'sgd' (its Lyapunov exponent is that of the GD map)")
    problem = cfg.problem_value
    kw = dict(w0=cfg.w0, steps=cfg.steps, window=cfg.orbit_window, max_period=cfg.max_period,
              dtype=cfg.dtype)
    orb = dynamics.orbits(problem, cfg.axes["alpha"], progress=progress, **kw)
    alpha = orb.alpha.astype(np.float64)
    lam_star = float(np.asarray(problem.curvature()))
    doubling = 2.0 / lam_star
    found = boundary.locate(lambda a: dynamics.orbits(problem, a, **kw).regime, alpha, orb.regime,
                            dtype=cfg.dtype)
    first_cycle = next((b for b in found if b.above == "periodic"
                        and b.below.startswith("converging")), None)
    fixed = (orb.period == 1) & (np.abs(orb.late[:, -1] - float(np.asarray(problem.optimum())))
                                 < 1e-3)
    with np.errstate(divide="ignore"):
        closed_lyap = np.log(np.abs(1.0 - alpha * lam_star))
    # Near α = 1/λ* the fixed point is super-attracting (f' = 0): the orbit reaches w* exactly and
    # log|f'| is −∞ in theory; compare where the closed form is finite and moderate.
    comparable = fixed & (closed_lyap > -10)
    lyap_dev = (float(np.max(np.abs(orb.lyapunov - closed_lyap)[comparable]))
                if comparable.any() else None)
    chaos = alpha[orb.regime == Regime.CHAOTIC]
    escape = alpha[orb.diverged]
    periods = {int(p): int(c) for p, c in zip(*np.unique(orb.period[orb.period >= 2],
                                                         return_counts=True))}
    summary = {
        "config_path": cfg.path, "config": cfg.resolved, **environment,
        "dtype": cfg.dtype, "n_runs": int(alpha.size), "steps": cfg.steps,
        "orbit_window": cfg.orbit_window, "regime_names": list(REGIME_NAMES),
        "regime_counts": report.regime_counts(orb.regime), "periods": periods,
        "period_doubling": {"closed_form_alpha": doubling,
                            "bisected": None if first_cycle is None else first_cycle.as_dict()},
        "chaos_first_alpha": float(chaos.min()) if chaos.size else None,
        "escape_first_alpha": float(escape.min()) if escape.size else None,
        "lyapunov_check": {"claim": "λ_L = log|1 − αλ*| at an attracting fixed point",
                           "max_abs_dev": lyap_dev, "cells": int(comparable.sum())},
        "boundaries": [b.as_dict() for b in found],
    }
    lines = [f"gdlab {gdlab.__version__}: {cfg.path}: {alpha.size} runs × {cfg.steps} steps, "
             f"{cfg.dtype}, {jax.default_backend()} — orbits over the last {cfg.orbit_window} "
             "steps"]
    lines.append(f"period doubling: closed form α = 2/λ* = {doubling:.7g}; simulated "
                 + ("none on this grid" if first_cycle is None else
                    f"{first_cycle.below} → periodic at α = {first_cycle.alpha:.7g}"))
    lines.append("periods seen: "
                 + (", ".join(f"{p} ({c} runs)" for p, c in periods.items()) or "none"))
    lines.append(f"chaos from α ≈ {summary['chaos_first_alpha']}; escape from α ≈ "
                 f"{summary['escape_first_alpha']}")
    if lyap_dev is not None:
        lines.append(f"Lyapunov exponent at the fixed point vs log|1 − αλ*|: max deviation "
                     f"{lyap_dev:.3g} over {int(comparable.sum())} runs")
    counts = {k: v for k, v in summary["regime_counts"].items() if v}
    lines.append("regimes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    arrays = {"alpha": orb.alpha, "axis_names": np.array(["alpha"]), "regime": orb.regime,
              "regime_names": np.array(REGIME_NAMES), "period": orb.period,
              "lyapunov": orb.lyapunov,
              "late_iterates": np.where(orb.diverged[:, None], 0.0, orb.late),
              "diverged_at": orb.result.diverged_at, "steps_to_tol": orb.result.steps_to_tol}
    with rundir.run_directory(out, overwrite) as tmp:
        shown = np.where(orb.diverged[:, None], np.nan, orb.late)
        def closed_form(a):
            with np.errstate(divide="ignore"):
                return np.log(np.abs(1 - a * lam_star))
        params = ", ".join(f"{k} = {v:g}" for k, v in cfg.problem_params.items())
        fig = plots.bifurcation(alpha, shown, orb.regime, orb.lyapunov,
                                {"αλ* = 2": (doubling, closed_form)},
                                title=f"GD on {cfg.problem} {params}, w0 = {cfg.w0:g}")
        files = plots.save(fig, tmp, "bifurcation")
        summary["timings"] = {"compile_s": orb.result.compile_s, "run_s": orb.result.run_s,
                              "total_s": time.perf_counter() - t_start}
        summary["files"] = ["results.npz", "summary.json", *files]
        rundir.write_npz(tmp / "results.npz", arrays)
        rundir.write_json(tmp / "summary.json", summary)
    lines.append(f"results: {out}/results.npz, {out}/summary.json; plot: {out}/bifurcation.png")
    for line in lines:
        log(line)
    return summary
