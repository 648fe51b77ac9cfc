"""What a sweep study logs, each line read from its summary (the content of summary.json).

``gdlab.study`` computes the summary; these functions only word it: the header, the step-by-step
tables of a scalar parameter, the spectrum, the comparison with theory (no fraction where no run
was compared; reasons for leaving runs out that overlap said so), the regime boundaries (apart from
them the edges of "stalled", which only say where the horizon starts to show progress) and the
regime counts (:func:`summary_lines`), and, once the run directory is in place, the timings
and the files written (:func:`closing_lines`). The study logs each stage's lines as that stage
finishes: :func:`sweep_lines` after the sweep, :func:`comparison_lines` after the comparison with
theory, :func:`zoom_lines` after the zoom series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import jax
import tqdm

import gdlab
from gdlab import report
from gdlab._sweep import SweepResult
from gdlab.config import SweepConfig

__all__ = ["summary_lines", "sweep_lines", "comparison_lines", "zoom_lines", "closing_lines",
           "emit"]


def emit(log: Callable[[str], None], lines: Iterable[str]) -> None:
    """``log`` each line, in order."""
    for line in lines:
        log(line)


def summary_lines(cfg: SweepConfig, res: SweepResult, traj: SweepResult | None,
                  summary: dict) -> list[str]:
    """Every line the study logs before its files are written."""
    return [*sweep_lines(cfg, res, traj), *comparison_lines(cfg, summary), *zoom_lines(summary)]


def sweep_lines(cfg: SweepConfig, res: SweepResult, traj: SweepResult | None) -> list[str]:
    """What was simulated, and the runs shown step by step (``traj``)."""
    out = [f"gdlab {gdlab.__version__}: {cfg.path}: {report.plural(res.n_runs, 'run')} × "
           f"{report.plural(res.steps, 'step')}, "
           f"{cfg.optimizer}, {res.dtype}, {jax.default_backend()}"]
    if traj is not None and traj.w_star is not None and traj.w_star.ndim == 1:  # a scalar w
        w_star = traj.w_star.reshape(len(traj.alpha), -1)
        for i, a in enumerate(traj.alpha):
            out.append(report.trajectory_table(float(a), traj.snapshot_steps,
                                               traj.trajectory[i], float(w_star[i, 0]),
                                               cfg.table_steps, int(traj.diverged_at[i])))
    return out


def comparison_lines(cfg: SweepConfig, summary: dict) -> list[str]:
    """The spectrum, the comparison with theory, the boundaries and the regimes found."""
    out = []
    if "spectrum" in summary:
        s = summary["spectrum"]
        out.append(f"spectrum: λ in [{s['lam_min']:.4g}, {s['lam_max']:.4g}] (κ = "
                   f"{s['kappa']:.4g}); GD converges iff 0 < α < 2/λ_max = "
                   f"{2 / s['lam_max']:.6g}; its stiffest direction oscillates from α = 1/λ_max"
                   f" = {s['oscillation_onset_stiffest_mode_gd']:.6g}, the error as a whole "
                   f"from α = 2/(λ_min + λ_max) = {s['oscillation_dominates_gd']:.6g} (where "
                   "that direction outlasts the slowest; GD is also fastest there)")
    if "agreement" in summary:
        out += _theory_lines(cfg, summary)
    if "boundaries" in summary:
        out += _boundary_lines(summary["boundaries"], summary["steps"],
                               {"name": cfg.optimizer, **cfg.hparams})
    if "rounding_check" in summary:
        rc = summary["rounding_check"]
        out.append(f"rounding-sensitive (no closed form for this optimizer; {rc['rule']}): "
                   f"{rc['n_flagged']} of {rc['n_runs']} runs")
    for name, why in summary.get("plots_not_drawn", {}).items():
        out.append(f"{name}.png {why}")
    counts = {k: v for k, v in summary["regime_counts"].items() if v}
    out.append("simulated regimes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if "trainability" in summary:
        out += _trainability_lines(summary["trainability"])
    return out


def zoom_lines(summary: dict) -> list[str]:
    """The zoom series, where there is one."""
    if "zoom" not in summary:
        return []
    z = summary["zoom"]
    dims = ", ".join("n/a" if d is None else f"{d:.3f}" for d in z["dimensions"])
    return [f"zoom series: {z['frames']} frames, boundary dimension per frame {dims}"
            + (f" (median {z['median']:.3f})" if z["median"] is not None else "")]


def _trainability_lines(t: dict) -> list[str]:
    """Runs judged by their loss: the rules, the trained fraction and the boundary's dimension."""
    out = [f"judged by {t['judged_by']}: converged = {t['rules']['converged']}; "
           f"trained {100 * t['trained_fraction']:.1f} % of runs"]
    dim = t.get("boundary_dimension")
    if dim is not None and dim.get("dimension") is not None:
        sizes = dim["fit_sizes"]
        out.append(f"trainability boundary: box-counting dimension {dim['dimension']:.3f} ± "
                   f"{dim['stderr']:.3f} ({dim['n_boundary']} boundary pixels, boxes "
                   f"{min(sizes)}–{max(sizes)} px)")
    elif dim is not None:
        out.append(f"trainability boundary: no dimension ({dim['why']})")
    return out


def closing_lines(out: Path, res: SweepResult, files: list[str]) -> list[str]:
    """The timings, and where the results and the plots (``files``, written) are."""
    rate = res.n_runs / max(res.run_s, 1e-12)
    # SI prefixes, as the progress bar's (a small run's 23.8k, not 0.000 G)
    return [f"compile {res.compile_s:.2f} s, run {res.run_s:.3f} s "
            f"({tqdm.tqdm.format_sizeof(res.updates_per_s)} updates/s, {rate:,.0f} runs/s)",
            f"results: {out}/results.npz, {out}/summary.json; plots: "
            + ", ".join(f"{out}/{f}" for f in files if f.endswith(".png"))]


def _progress_line(p: dict, steps: int) -> str:
    """An edge of "stalled" (summary.json ``boundaries.progress``): the bracket bisected, and the
    closed form of the smallest |α| that shows progress within the horizon, where there is one."""
    side = "α > 0" if p["alpha"] > 0 else "α < 0"
    line = (f"not a regime edge: {p['below']} → {p['above']} in [{p['lo']:.3g}, "
            f"{p['hi']:.3g}] (located in float64): the smallest |α| ({side}) whose progress "
            f"shows within {report.plural(steps, 'step')} (every α ≠ 0 moves; stalled: the "
            "error's growth stays within the band e^±b over the horizon)")
    closed = p.get("closed_form_abs_alpha")
    if closed is None:
        return line
    forms = ", ".join(f"{dt} {_span(lo, hi)}" for dt, (lo, hi) in closed.items())
    held = "in" if p["bracket_holds_closed_form"] else "NOT in"
    return f"{line}; closed form |α|: {forms} ({held} the float64 bracket)"


def _span(lo: float, hi: float) -> str:
    """``lo`` where the closed form is one number, else "between lo and hi"."""
    return f"{lo:.4g}" if lo == hi else f"between {lo:.4g} and {hi:.4g}"


_CLOSED_FORM = {
    "converges": "converges ({opt}: Jury region on every direction)",
    "oscillates": "oscillates (the dominant root not a positive real)",
    "rate": "contraction (ρ, the largest root modulus)",
}


def _theory_lines(cfg: SweepConfig, summary: dict) -> list[str]:
    """The Q4.2 answer, the agreement with theory, the stability region and the recurrence."""
    out = []
    if "q4_answer" in summary:
        out.append(f"Q4.2 from the sweep (the grid values simulated; an interval where more than "
                   f"{report.LISTED_MAX} consecutive ones agree, across no grid cell holding "
                   "several bisected edges):")
        out += [f"  {k:>13}: {v}" for k, v in summary["q4_answer"].items()]
    agree = summary["agreement"]
    out.append("agreement with theory (the exact linear map, under the simulation's flip rule, "
               "floor and growth test): " + _agreement(agree))
    for name, c in summary["closed_form"].items():
        dist = c.get("max_boundary_distance")
        dev = c.get("max_relative_deviation_from_rho")
        out.append(f"closed form, {_CLOSED_FORM[name].format(opt=cfg.optimizer)}: "
                   + report.agreement_text(c["fraction"], c["n_compared"], c["n_band"],
                                           c["band_why"])
                   + ("" if dist is None else f"; largest |simulated − closed-form edge| "
                      f"{dist:.3g} (α grid step {c['alpha_grid_step']:.3g})")
                   + ("" if dev is None else f"; largest |contraction/ρ − 1| {dev:.3g}"))
    if "recurrence" in summary:
        r_ = summary["recurrence"]
        out.append(f"recurrence check (Q4.3): max deviation {r_['max_dev']:.3g} = "
                   f"{r_['max_dev_in_eps']:.2f} eps")
    return out


def _agreement(agree: dict) -> str:
    """summary.json ``agreement`` in words: the fraction on the runs compared (none: said so),
    the rounding-sensitive runs left out, by reason, and the mismatches."""
    left = report.left_out(agree["n_sensitive"], agree["sensitive_why"],
                           "left out as rounding-sensitive")
    if agree["fraction"] is None:
        return f"no run to compare: all {left}"
    return (f"{agree['fraction']:.6f} on {agree['n_compared']} of "
            f"{report.plural(agree['n_runs'], 'run')}; {left}; {agree['regime_mismatches']} "
            f"regime and {agree['steps_mismatches']} steps-to-tol mismatches")


def _boundary_lines(boundaries: dict, steps: int, optimizer: dict) -> list[str]:
    """The regime boundaries bisected on a 1-D α grid (those between the same two grid values
    together: the grid does not resolve the regimes between them), the closed-form edges (with
    where they come from for a negative β: ``optimizer``, the config's name and hparams), and
    apart the edges of "stalled" (where the horizon starts to show progress)."""
    out = []
    progress = boundaries.get("progress", [])
    cells: dict[tuple, list[dict]] = {}
    for b in sorted(boundaries["bisected"] + progress, key=lambda b: b["alpha"]):
        cells.setdefault((b["grid_lo"], b["grid_hi"]), []).append(b)
    parts = []
    for (lo, hi), edges in cells.items():
        listed = [b for b in edges if b not in progress]
        found = ", ".join(f"{b['below']} → {b['above']} at α = {b['alpha']:.7g}" for b in listed)
        if len(edges) > 1:
            parts.append(f"grid values α = {lo:.7g} ({edges[0]['below']}) and {hi:.7g} "
                         f"({edges[-1]['above']}) do not resolve what lies between them: {found}")
        elif listed:
            parts.append(found)
    if parts:
        out.append(f"regime boundaries (located by k-section, {boundaries['precision']}): "
                   + "; ".join(parts))
    out += [_progress_line(p, steps) for p in progress]
    if boundaries.get("grid_changes_not_in_float64"):
        out.append(f"{boundaries['grid_changes_not_in_float64']} regime change(s) of the grid "
                   "not seen in float64 between the same grid values (rounding decides them)")
    if boundaries["closed_form"]:
        out.append("closed form: " + ", ".join(
            f"{k} α = {v:.7g}" for k, v in boundaries["closed_form"].items())
            + _negative_beta(optimizer))
    return out


# Why the closed-form edges of a negative β are what they are (derived in gdlab.stability's
# oscillation_onset and critical_alpha): the README table's 0 ≤ β < 1 forms do not apply there.
_NEGATIVE_BETA = {
    "momentum": "the roots of z² − (1 + β − αλ)z + β are real and of opposite signs, and the "
                "negative one dominates from αλ = 1 + β on (not (1 − √β)², which holds for "
                "β ≥ 0); divergence at αλ = 2(1 + β) as for β ≥ 0",
    "nesterov": "the roots of z² − (1 + β)(1 − αλ)z + β(1 − αλ) are real and of opposite signs, "
                "the positive one dominant, for αλ < 1, and negative or complex from αλ = 1 on "
                "(not ((1 − β)/(1 + β))², which holds for β ≥ 0); divergence where "
                "αλ(1 + 2β) = 2(1 + β) for β ≥ −1/3, where |β(1 − αλ)| = 1 below",
}


def _negative_beta(optimizer: dict) -> str:
    """Where the closed form's edges come from when β < 0 (``optimizer``: the config's
    ``[optimizer]`` as resolved), else ""."""
    beta, why = optimizer.get("beta"), _NEGATIVE_BETA.get(optimizer.get("name"))
    if why is None or not isinstance(beta, (int, float)) or beta >= 0:
        return ""
    return f" (β = {beta:g} < 0: {why})"
