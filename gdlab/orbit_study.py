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
from gdlab.config import ConfigError, SweepConfig
from gdlab.regimes import REGIME_NAMES, Regime

__all__ = ["run_orbit_study", "redraw"]


def run_orbit_study(cfg: SweepConfig, out: Path, *, overwrite: bool = False,
                    progress: bool | None = None, log: Callable[[str], None] = print,
                    environment: dict) -> dict:
    """Run the orbits of ``cfg`` over α, write ``out`` (results.npz, summary.json, the bifurcation
    plot) atomically; return the summary. ``environment`` is summary.json's versions and device."""
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    if len(cfg.axes) != 1 or cfg.optimizer != "sgd":
        raise ConfigError(f"{cfg.path}: sweep: a non-quadratic problem is studied over α alone "
                          "with optimizer 'sgd' (its Lyapunov exponent is that of the GD map)")
    if np.size(cfg.w0) != 1:
        raise ConfigError(f"{cfg.path}: problem.w0: {np.size(cfg.w0)} parameters; the orbit study "
                          "of a loss with an optimum (periods, Lyapunov exponents) takes one — "
                          "leave out problem.optimum to judge the runs by their loss instead")
    kw = dict(w0=cfg.w0, steps=cfg.steps, tol=cfg.tol, window=cfg.orbit_window,
              max_period=cfg.max_period, dtype=cfg.dtype)
    problem = cfg.problem_value
    orb = dynamics.orbits(problem, cfg.axes["alpha"], progress=progress, **kw)
    found = boundary.locate(lambda a: dynamics.orbits(problem, a, **kw).regime,
                            orb.alpha.astype(np.float64), orb.regime, dtype=cfg.dtype)
    lam_star = float(np.asarray(problem.curvature()))   # λ* = ∇²L(w*)
    summary = _summary(cfg, orb, found, lam_star, environment)
    lines = _lines(cfg, summary)
    arrays = {"alpha": orb.alpha, "axis_names": np.array(["alpha"]), "regime": orb.regime,
              "regime_names": np.array(REGIME_NAMES), "period": orb.period,
              "lyapunov": np.where(orb.diverged, 0.0, orb.lyapunov),  # undefined: diverged_at ≥ 0
              "late_iterates": np.where(orb.diverged[:, None], 0.0, orb.late),
              "diverged_at": orb.result.diverged_at, "steps_to_tol": orb.result.steps_to_tol}

    def contents(tmp: Path) -> rundir.RunFiles:
        files = plots.save(_figure(cfg, orb.alpha, orb.late, orb.diverged, orb.regime,
                                   orb.lyapunov), tmp, "bifurcation")
        summary["timings"] = {"compile_s": orb.result.compile_s, "run_s": orb.result.run_s,
                              "total_s": time.perf_counter() - t_start}
        summary["files"] = ["results.npz", "summary.json", *files]
        return rundir.RunFiles({"results.npz": arrays, "summary.json": summary}, [
            *lines, f"results: {out}/results.npz, {out}/summary.json; plot: "
                    f"{out}/bifurcation.png"])

    rundir.write_run(out, overwrite, contents, log=log)
    return summary


def _summary(cfg: SweepConfig, orb: dynamics.Orbits, found: list[boundary.Boundary],
             lam_star: float, environment: dict) -> dict:
    """summary.json, less its timings and files: regimes, periods, the period-doubling edge
    (closed form and bisected), where chaos and escape start, and the Lyapunov check."""
    alpha = orb.alpha.astype(np.float64)
    first_cycle = next((b for b in found if b.above == "periodic"
                        and b.below.startswith("converging")), None)
    chaos = alpha[orb.regime == Regime.CHAOTIC]
    escape = alpha[orb.period < 0]   # left the float range, or unbounded (dynamics.orbits)
    periods = {int(p): int(c) for p, c in zip(*np.unique(orb.period[orb.period >= 2],
                                                         return_counts=True))}
    return {
        "config_path": cfg.path, "config": cfg.resolved, **environment,
        "dtype": cfg.dtype, "n_runs": int(alpha.size), "steps": cfg.steps,
        "orbit_window": cfg.orbit_window, "regime_names": list(REGIME_NAMES),
        "regime_counts": report.regime_counts(orb.regime), "periods": periods,
        "period_doubling": {"closed_form_alpha": 2.0 / lam_star,
                            "bisected": None if first_cycle is None else first_cycle.as_dict()},
        "chaos_first_alpha": float(chaos.min()) if chaos.size else None,
        "escape_first_alpha": float(escape.min()) if escape.size else None,
        "lyapunov_check": _lyapunov_check(cfg, orb, lam_star),
        "lyapunov_estimate": {
            "method": f"mean log|f'(w)| over {dynamics.LYAPUNOV_STEPS} float64 steps continuing "
                      "each orbit from its last simulated iterate",
            "error_bound": dynamics.LYAPUNOV_ERROR,
            "bound_from": "max |λ_L − λ_ref| = 0.013 over the 641 chaotic α of "
                          "configs/quartic_bifurcation.toml, λ_ref from 10⁶ float64 steps",
            "escaped_runs": "undefined: NaN in the plot, 0 in results.npz (diverged_at ≥ 0)"},
        "cycles": _cycle_check(orb),
        "boundaries": [b.as_dict() for b in found],
    }


def _lyapunov_check(cfg: SweepConfig, orb: dynamics.Orbits, lam_star: float) -> dict:
    """The simulated Lyapunov exponent against log|1 − αλ*| where the orbit sits at w*."""
    alpha = orb.alpha.astype(np.float64)
    w_star = float(np.asarray(cfg.problem_value.optimum()))
    fixed = (orb.period == 1) & (np.abs(orb.late[:, -1] - w_star) < 1e-3)
    with np.errstate(divide="ignore"):
        closed_lyap = np.log(np.abs(1.0 - alpha * lam_star))
    # Near α = 1/λ* the fixed point is super-attracting (f' = 0): the orbit reaches w* exactly and
    # log|f'| is −∞ in theory; compare where the closed form is finite and moderate.
    comparable = fixed & (closed_lyap > -10)
    lyap_dev = (float(np.max(np.abs(orb.lyapunov - closed_lyap)[comparable]))
                if comparable.any() else None)
    return {"claim": "λ_L = log|1 − αλ*| at an attracting fixed point",
            "max_abs_dev": lyap_dev, "cells": int(comparable.sum())}


def _cycle_check(orb: dynamics.Orbits) -> dict:
    """Detected cycles rejected as not attracting, and what they were labelled instead."""
    rejected = np.isfinite(orb.multiplier) & (orb.period == 0)
    return {"claim": "a detected cycle attracts iff log|Π f'(w_i)| ≤ p·"
                     f"{dynamics.CYCLE_TOL:g} over one period (float64)",
            "rejected": int(rejected.sum()),
            "rejected_as": {k: v for k, v in report.regime_counts(orb.regime[rejected]).items()
                            if v},
            "periodic_with_positive_lyapunov": int(np.sum((orb.regime == Regime.PERIODIC)
                                                          & (orb.lyapunov > 0)))}


def _lines(cfg: SweepConfig, summary: dict) -> list[str]:
    """The log: header, period doubling, periods, chaos and escape, the Lyapunov check, regimes."""
    doubling = summary["period_doubling"]["closed_form_alpha"]
    first_cycle = summary["period_doubling"]["bisected"]
    lyap = summary["lyapunov_check"]
    lines = [f"gdlab {gdlab.__version__}: {cfg.path}: {summary['n_runs']} runs × {cfg.steps} "
             f"steps, {cfg.dtype}, {jax.default_backend()} — orbits over the last "
             f"{cfg.orbit_window} steps"]
    lines.append(f"period doubling: closed form α = 2/λ* = {doubling:.7g}; simulated "
                 + ("none on this grid" if first_cycle is None else
                    f"{first_cycle['below']} → periodic at α = {first_cycle['alpha']:.7g}"))
    lines.append("periods seen: " + (", ".join(f"{p} ({report.plural(c, 'run')})"
                                               for p, c in summary["periods"].items()) or "none"))
    first = lambda key: ("none on this grid" if summary[key] is None else
                         f"from α ≈ {summary[key]:.7g}")
    lines.append(f"chaos: {first('chaos_first_alpha')}; escape: {first('escape_first_alpha')}")
    est, cyc = summary["lyapunov_estimate"], summary["cycles"]
    lines.append(f"Lyapunov exponents: {est['method']}; error ≤ {est['error_bound']:g} on "
                 "chaotic orbits (vs 10⁶-step float64 references)")
    rejected_as = ", ".join(f"{k} {v}" for k, v in cyc["rejected_as"].items())
    lines.append(f"cycles: {cyc['rejected']} detected cycles rejected as not attracting "
                 f"({cyc['claim']})" + (f": now {rejected_as}" if rejected_as else ""))
    if lyap["max_abs_dev"] is not None:
        lines.append(f"Lyapunov exponent at the fixed point vs log|1 − αλ*|: max deviation "
                     f"{lyap['max_abs_dev']:.3g} over {lyap['cells']} runs")
    counts = {k: v for k, v in summary["regime_counts"].items() if v}
    lines.append("regimes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return lines


def redraw(directory: Path, cfg: SweepConfig, arrays: dict[str, np.ndarray]) -> list[str]:
    """The bifurcation plot again from a run directory's results.npz (``arrays``), without
    simulating; return the file names. Escaped runs (``diverged_at`` ≥ 0) are stored with 0 as
    their late iterates and Lyapunov exponent, which are undefined: NaN again, as first drawn."""
    diverged = arrays["diverged_at"] >= 0
    return plots.save(_figure(cfg, arrays["alpha"], arrays["late_iterates"], diverged,
                              arrays["regime"], np.where(diverged, np.nan, arrays["lyapunov"])),
                      directory, "bifurcation")


def _figure(cfg: SweepConfig, alpha: np.ndarray, late: np.ndarray, diverged: np.ndarray,
            regime: np.ndarray, lyapunov: np.ndarray) -> plots.Figure:
    """The bifurcation diagram: late iterates and Lyapunov exponents over α (neither drawn for
    runs that left the float range or escape: ``plots.bifurcation`` leaves out every diverging
    regime), with αλ* = 2 (λ* = ∇²L(w*)) and log|1 − αλ*| at the fixed point."""
    lam_star = float(np.asarray(cfg.problem_value.curvature()))

    def closed_form(a):
        with np.errstate(divide="ignore"):
            return np.log(np.abs(1 - a * lam_star))

    shown = np.where(diverged[:, None], np.nan, late)
    params = ", ".join(f"{k} = {v:g}" for k, v in cfg.problem_params.items())
    return plots.bifurcation(np.asarray(alpha, np.float64), shown, regime, lyapunov,
                             {"αλ* = 2": (2.0 / lam_star, closed_form)},
                             title=f"GD on {cfg.problem} {params}, w0 = {cfg.w0:g}")
