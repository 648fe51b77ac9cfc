"""Plain-text reports: trajectory tables, regime counts, and the homework Q4.2 answer from a sweep.

The Q4.2 answer is *read off the simulation*: the grid values α at which runs were observed to
oscillate, converge or diverge (as intervals where the grid resolves them), printed next to the
analytic statement from r = 1 − αλ. :func:`left_out` and :func:`agreement_text` word the
comparisons with theory: the runs left out by reason, and no fraction where nothing was compared.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from gdlab.regimes import REGIME_NAMES, Regime

__all__ = ["trajectory_table", "stride_note", "regime_counts", "grid_runs",
           "format_runs", "q4_statement", "plural", "reasons", "left_out", "agreement_text",
           "LISTED_MAX"]

_OSCILLATING = (Regime.CONVERGING_OSCILLATING, Regime.BOUNDED_OSCILLATION,
                Regime.DIVERGING_OSCILLATING)
_CONVERGING = (Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING)
_DIVERGING = (Regime.DIVERGING_MONOTONE, Regime.DIVERGING_OSCILLATING)


def trajectory_table(alpha: float, steps: Sequence[int], w: Sequence[float], w_star: float,
                     rows: int,
                     diverged_at: int = -1) -> str:
    """Rows ``t  w_t  |w* − w_t|`` for the first ``rows`` recorded steps of one run; where those
    are not consecutive steps the header names the stride (:func:`stride_note`)."""
    lines = [f"α = {alpha:g}{stride_note(steps[: rows + 1])}",
             f"{'t':>5} {'w_t':>16} {'|w* − w_t|':>16}"]
    for t, wt in zip(steps[: rows + 1], w[: rows + 1]):
        if 0 <= diverged_at <= t:
            lines.append(f"{t:>5} {'(diverged, frozen)':>33}")
            break
        lines.append(f"{t:>5} {wt:>16.6g} {abs(w_star - wt):>16.6g}")
    return "\n".join(lines)


def stride_note(steps: Sequence[int]) -> str:
    """"" where ``steps`` are consecutive, else " (w_t recorded every k steps)", k the largest
    gap: a table of recorded steps must not read as the first steps."""
    gap = int(np.max(np.diff(np.asarray(steps)))) if len(steps) > 1 else 1
    return "" if gap <= 1 else f" (w_t recorded every {gap} steps)"


def regime_counts(regime: ArrayLike) -> dict[str, int]:
    """Number of runs per regime name (every name present, zeros included)."""
    counts = np.bincount(np.ravel(regime).astype(np.int64), minlength=len(REGIME_NAMES))
    return {name: int(c) for name, c in zip(REGIME_NAMES, counts)}


def grid_runs(alpha: ArrayLike, mask: ArrayLike,
              unresolved: Sequence[tuple[float, float]] = ()) -> list[np.ndarray]:
    """Maximal runs of consecutive (sorted, float64) grid values where ``mask`` holds, each an
    array; a run is also cut at every grid cell (α_i, α_{i+1}) in ``unresolved`` (summary.json
    ``boundaries.unresolved_cells``: the bisection found several edges between them)."""
    order = np.argsort(alpha)
    a, m = np.asarray(alpha, np.float64)[order], np.asarray(mask, bool)[order]
    cut = {(float(lo), float(hi)) for lo, hi in unresolved}
    out, start = [], None
    for i, flag in enumerate(m):
        if flag and start is None:
            start = i
        last = i == len(m) - 1 or not m[i + 1] or (float(a[i]), float(a[i + 1])) in cut
        if start is not None and last:
            out.append(a[start: i + 1])
            start = None
    return out


LISTED_MAX = 12   # a run of at most this many grid values is listed, not written as an interval


def format_runs(runs: Sequence[np.ndarray]) -> str:
    """:func:`grid_runs` as one line, saying what was simulated where. A run of at most
    ``LISTED_MAX`` grid values is listed (``α = 0.5, 1.5``): so few points do not make an
    interval. A longer one is written as the interval it samples, with its number of values and
    its largest spacing (``0.001 ≤ α ≤ 1.999 (1999 grid values, spacing 0.001)``). Listed runs
    next to each other are one list (a list claims nothing between its values, so a cut between
    two short runs says nothing more)."""
    if not runs:
        return "at no grid value"
    parts, listed = [], []
    for r in runs:
        if r.size <= LISTED_MAX:
            listed.extend(f"{a:.7g}" for a in r)
            continue
        if listed:
            parts.append("at α = " + ", ".join(listed))
            listed = []
        parts.append(f"on {r[0]:.7g} ≤ α ≤ {r[-1]:.7g} ({r.size} grid values, spacing "
                     f"{np.max(np.diff(r)):.3g})")
    if listed:
        parts.append("at α = " + ", ".join(listed))
    return "; ".join(parts)


def plural(n: int, noun: str) -> str:
    """``n`` and ``noun``, with an s unless n = 1: "1 run", "3 runs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def reasons(why: dict[str, int]) -> str:
    """The reasons that apply (reason → runs, those with runs), "" if none. Reasons may overlap
    (a run is counted under each that applies, so the counts can add up to more than the runs
    left out): where several apply, the text says so."""
    parts = [f"{k}: {v}" for k, v in why.items() if v]
    if len(parts) > 1:
        return "by reason, a run counted under each that applies: " + "; ".join(parts)
    return "".join(parts)


def left_out(n: int, why: dict[str, int], how: str = "left out") -> str:
    """"N left out" (``how``) with the :func:`reasons` that apply."""
    text = reasons(why)
    if text.startswith("by reason"):
        return f"{n} {how}; {text}"
    return f"{n} {how}" + (f" ({text})" if text else "")


def agreement_text(fraction: float | None, n_compared: int, n_left_out: int,
                   why: dict[str, int]) -> str:
    """"agreement F on N runs; M left out (…)", or, with no run compared, "no run to compare: all
    M left out (…)": a fraction of nothing is never printed."""
    if n_compared == 0 or fraction is None:
        return f"no run to compare: all {left_out(n_left_out, why)}"
    return (f"agreement {fraction:.6f} on {plural(n_compared, 'run')}; "
            + left_out(n_left_out, why))


def q4_statement(alpha: ArrayLike, regime: ArrayLike, curvature: float,
                 unresolved: Sequence[tuple[float, float]] = ()) -> dict[str, str]:
    """Homework Q4.2, observed on the grid and stated from theory, for one curvature λ.

    What was simulated is said grid value by grid value (:func:`format_runs`); an interval is
    given only where the grid resolves it: more than ``LISTED_MAX`` consecutive grid values
    behave alike, and no grid cell between them is in ``unresolved`` (cells where the bisection
    found several regime edges, summary.json ``boundaries.unresolved_cells``)."""
    lam = float(curvature)
    reg = np.asarray(regime)
    observed = {k: format_runs(grid_runs(alpha, mask, unresolved)) for k, mask in {
        "oscillation": np.isin(reg, _OSCILLATING), "convergence": np.isin(reg, _CONVERGING),
        "bounded cycle": reg == Regime.BOUNDED_OSCILLATION,
        "divergence": np.isin(reg, _DIVERGING)}.items()}
    theory = {
        "oscillation": f"α > 1/λ = {1 / lam:.6g}",
        "convergence": f"0 < α < 2/λ = {2 / lam:.6g}",
        "bounded cycle": f"α = 2/λ = {2 / lam:.6g}",
        "divergence": f"α > 2/λ = {2 / lam:.6g} or α < 0",
    }
    return {k: f"simulated: {observed[k]}; theory (|1 − αλ|, λ = {lam:g}): {theory[k]}"
            for k in observed}
