"""Plain-text reports: trajectory tables, regime counts, and the homework Q4.2 answer from a sweep.

The Q4.2 answer is *read off the simulation*: the α intervals in which runs were observed to
oscillate, converge or diverge, printed next to the analytic statement from r = 1 − αλ.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from gdlab.regimes import REGIME_NAMES, Regime

__all__ = ["trajectory_table", "regime_counts", "intervals", "q4_statement", "format_intervals"]

_OSCILLATING = (Regime.CONVERGING_OSCILLATING, Regime.BOUNDED_OSCILLATION,
                Regime.DIVERGING_OSCILLATING)
_CONVERGING = (Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING)
_DIVERGING = (Regime.DIVERGING_MONOTONE, Regime.DIVERGING_OSCILLATING)


def trajectory_table(alpha: float, steps: Sequence[int], w: Sequence[float], w_star: float,
                     rows: int,
                     diverged_at: int = -1) -> str:
    """Rows ``t  w_t  |w* − w_t|`` for the first ``rows`` steps of one run."""
    lines = [f"α = {alpha:g}", f"{'t':>5} {'w_t':>16} {'|w* − w_t|':>16}"]
    for t, wt in zip(steps[: rows + 1], w[: rows + 1]):
        if 0 <= diverged_at <= t:
            lines.append(f"{t:>5} {'(diverged, frozen)':>33}")
            break
        lines.append(f"{t:>5} {wt:>16.6g} {abs(w_star - wt):>16.6g}")
    return "\n".join(lines)


def regime_counts(regime: ArrayLike) -> dict[str, int]:
    """Number of runs per regime name (every name present, zeros included)."""
    counts = np.bincount(np.ravel(regime).astype(np.int64), minlength=len(REGIME_NAMES))
    return {name: int(c) for name, c in zip(REGIME_NAMES, counts)}


def intervals(alpha: ArrayLike, mask: ArrayLike) -> list[tuple[float, float]]:
    """Maximal runs of consecutive (sorted) grid values where ``mask`` holds, as (first, last)."""
    order = np.argsort(alpha)
    a, m = np.asarray(alpha, np.float64)[order], np.asarray(mask, bool)[order]
    out, start = [], None
    for i, flag in enumerate(m):
        if flag and start is None:
            start = i
        if start is not None and (not flag or i == len(m) - 1):
            end = i if flag else i - 1
            out.append((float(a[start]), float(a[end])))
            start = None
    return out


def format_intervals(spans: Sequence[tuple[float, float]]) -> str:
    """``spans`` of :func:`intervals` as one line."""
    if not spans:
        return "no grid value"
    return ", ".join(f"α = {lo:.6g}" if lo == hi else f"{lo:.6g} ≤ α ≤ {hi:.6g}"
                     for lo, hi in spans)


def q4_statement(alpha: ArrayLike, regime: ArrayLike, curvature: float) -> dict[str, str]:
    """Homework Q4.2, observed on the grid and stated from theory, for one curvature λ."""
    lam = float(curvature)
    reg = np.asarray(regime)
    observed = {
        "oscillation": format_intervals(intervals(alpha, np.isin(reg, _OSCILLATING))),
        "convergence": format_intervals(intervals(alpha, np.isin(reg, _CONVERGING))),
        "bounded cycle": format_intervals(intervals(alpha, reg == Regime.BOUNDED_OSCILLATION)),
        "divergence": format_intervals(intervals(alpha, np.isin(reg, _DIVERGING))),
    }
    theory = {
        "oscillation": f"α > 1/λ = {1 / lam:.6g}",
        "convergence": f"0 < α < 2/λ = {2 / lam:.6g}",
        "bounded cycle": f"α = 2/λ = {2 / lam:.6g}",
        "divergence": f"α > 2/λ = {2 / lam:.6g} or α < 0",
    }
    return {k: f"simulated: {observed[k]}; theory (|1 − αλ|, λ = {lam:g}): {theory[k]}"
            for k in observed}
