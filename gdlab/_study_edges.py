"""The regime edges of a 1-D sweep study: the edge search refused before any work where it could
not end (:func:`check_edge_search`), the grid's regime changes (:func:`grid_changes`) located in
float64 between grid points (:func:`bisect`, its rounds shown as progress), and summary.json's
"boundaries" (:func:`boundaries`), the edges of "stalled" apart, as the horizon's
closed form (:func:`progress_edge`)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

import gdlab
from gdlab import boundary, grids, report
from gdlab._study_plan import sweep_options
from gdlab._study_theory import Theory
from gdlab._sweep import SweepResult
from gdlab.config import SweepConfig
from gdlab.progress import Progress
from gdlab.regimes import REGIME_NAMES, Regime, growth_band, late_window

__all__ = ["check_edge_search", "bisect", "edge_progress", "GridChanges", "grid_changes",
           "boundaries", "progress_edge"]


def check_edge_search(cfg: SweepConfig) -> None:
    """Refuse, before any work, a 1-D sweep whose float64 edge search would take more steps one
    after another than one run may (``boundary.check_work``): sized by the grid's widest cell,
    found a chunk at a time (the grid is never built whole)."""
    spec, n = cfg.axes["alpha"], cfg.axis_sizes["alpha"]
    parts = (grids.axis_part(spec, lo, lo + grids.CHUNK + 1, name="sweep.alpha")
             for lo in range(0, max(n - 1, 1), grids.CHUNK))
    boundary.check_work(boundary.widest_cell(parts), cfg.steps)


def bisect(cfg: SweepConfig, res: SweepResult, changes: GridChanges | None = None,
           progress: bool | None = False) -> list[boundary.Boundary] | None:
    """The regime boundaries of a 1-D α grid, located between grid points in float64 by
    ``boundary.locate`` (a dyadic k-section, its rounds shown as progress); None for other grids.
    ``changes``: the grid's :func:`grid_changes`, where the caller has them.

    A float32 sweep's labels change where its rounding lets them (the Q4 sweep counts its first
    sign change only once |e₁| = |1 − α|·|e₀| clears float32's rounding floor, at α ≈ 1.000015,
    not 1/x² = 1), so a bracket of ``boundary.PRECISION``·max(1, |α|) around that would be precise
    about the wrong number. The grid values on both sides of every change are simulated again in
    float64, and bisected between with those labels: a change that float64 does not show there is
    rounding's alone and gives no edge (:func:`boundaries` counts them).
    """
    if len(res.axes) != 1 or res.alpha.size <= 1:
        return None
    problem, common = cfg.problem_value, {**sweep_options(cfg), "dtype": "float64"}

    def rerun(alphas):
        return gdlab.sweep(problem, alphas, progress=False, **common).regime

    alpha, regime, change = grid_changes(res) if changes is None else changes
    ends = np.union1d(change, change + 1)
    if ends.size == 0:
        return []
    labels = regime[ends] if res.dtype == "float64" else rerun(alpha[ends])
    return boundary.locate(rerun, alpha[ends], labels, dtype="float64",
                           progress=edge_progress(cfg.steps, progress))


def edge_progress(steps: int, enabled: bool | None) -> Callable[[boundary.Round], None]:
    """The edge search's rounds shown as the sweep's chunks are (``gdlab.progress``: a bar on a
    terminal, plain lines in a log, nothing when ``enabled`` is False), out of the rounds it
    plans; each round simulates ``Round.runs`` α for ``steps`` steps."""
    bar: list[Progress] = []

    def update(r: boundary.Round) -> None:
        if r.round == 0:
            if r.left == 0:
                return
            bar.append(Progress(r.left, enabled=enabled, work_per_unit=r.runs * steps,
                                unit=f"rounds of the float64 edge search "
                                     f"({report.plural(r.open, 'grid change')})"))
            return
        if not bar:
            return
        bar[0].set_total(r.round + r.left)   # the plan, revised as brackets split or close
        bar[0].update(1, seconds=r.seconds)
        if r.left == 0:
            bar[0].close()
    return update


class GridChanges(NamedTuple):
    """Where a 1-D sweep's regime changes along α (:func:`grid_changes`)."""

    alpha: np.ndarray    # float64, sorted
    regime: np.ndarray   # in the order of ``alpha``
    change: np.ndarray   # the i where regime[i + 1] ≠ regime[i]


def grid_changes(res: SweepResult) -> GridChanges:
    """A 1-D sweep's α (float64) and regimes sorted by α, and the i where regime[i + 1] differs."""
    alpha = np.asarray(res.alpha, np.float64)
    order = np.argsort(alpha)
    regime = np.asarray(res.regime)[order]
    return GridChanges(alpha[order], regime, np.flatnonzero(regime[1:] != regime[:-1]))


def boundaries(cfg: SweepConfig, res: SweepResult, th: Theory,
               found: list[boundary.Boundary], changes: GridChanges | None = None) -> dict:
    """summary.json's "boundaries": the bisected edges between regimes, the closed-form ones, the
    precision, the grid cells holding several edges (regimes the grid does not resolve), the
    grid's changes that float64 does not show (``changes``: the grid's :func:`grid_changes`, if
    known) and, apart, the edges to or from "stalled" (:func:`progress_edge`): no regime edge in
    theory, but where the horizon starts to show progress."""
    cells = [(b.grid_lo, b.grid_hi) for b in found]
    alpha, _, change = grid_changes(res) if changes is None else changes
    # a change between α_i and α_{i+1} that float64 shows has an edge with grid_lo = α_i
    rounding = np.sum(~np.isin(alpha[change], [b.grid_lo for b in found]))
    stalled = [b for b in found if REGIME_NAMES[Regime.STALLED] in (b.below, b.above)]
    return {"bisected": [b.as_dict() for b in found if b not in stalled],
            "closed_form": th.edges,
            "precision": f"bracket ≤ {boundary.PRECISION:g}·max(1, |α|), simulated in float64",
            "unresolved_cells": sorted({c for c in cells if cells.count(c) > 1}),
            "grid_changes_not_in_float64": int(rounding),
            "progress": [progress_edge(cfg, res, th, b) for b in stalled]}


_PROGRESS = ("in theory only α = 0 stalls (0 < α < 2/λ_max converges, α < 0 diverges); a run is "
             "called stalled while its error's growth over the horizon stays within the band "
             "e^±b (gdlab.regimes: b = late_window(T)·δ), so this edge is where T steps start to "
             "show the iterate move, not a regime edge")


def progress_edge(cfg: SweepConfig, res: SweepResult, th: Theory, b: boundary.Boundary) -> dict:
    """A bisected edge to or from "stalled", as what it is: the smallest |α| whose progress is
    visible within T steps (``_PROGRESS``), with, for gradient descent on a quadratic, its closed
    form in the sweep's dtype and in float64 (the bisection's).

    A run is stalled when e^−b ≤ g ≤ e^b, g = max_{t>h} ‖e_t‖ / max_{t≤h} ‖e_t‖, h = ⌊T/2⌋,
    b = (T − h)·δ, δ = ``regimes.growth_band``(ε, ‖w*‖, ‖e₀‖). For 0 < α < 1/λ_max every direction
    shrinks monotonically, so g = ‖e_{h+1}‖/‖e₀‖, a weighted mean of (1 − αλ_i)^{h+1}: it
    lies in [(1 − αλ_max)^{h+1}, (1 − αλ_min)^{h+1}], and the run shrinks visibly for
    α > (1 − e^{−b/(h+1)})/λ_min, never for α < (1 − e^{−b/(h+1)})/λ_max. For α < 0 every
    direction grows, g = ‖e_T‖/‖e_h‖ ∈ [(1 + |α|λ_min)^{T−h}, (1 + |α|λ_max)^{T−h}]: visible for
    |α| > (e^{b/(T−h)} − 1)/λ_min, never below (e^{b/(T−h)} − 1)/λ_max. One curvature λ (a scalar
    parameter): a single α, exactly."""
    out = {**b.as_dict(), "meaning": _PROGRESS}
    if not (th.edges and cfg.optimizer == "sgd"):
        return out
    ev = np.asarray(cfg.problem_value.eigenvalues(), np.float64).ravel()
    w_star = np.asarray(res.w_star, np.float64).reshape(res.n_runs, -1)[0]
    e0 = np.asarray(res.w0, np.float64).reshape(-1)[: w_star.size] - w_star
    T, h = res.steps, res.steps // 2

    def threshold(dtype: str) -> list[float]:
        """[never below, always above] of |α|, from the band of ``dtype``."""
        band = late_window(T) * float(growth_band(float(np.finfo(dtype).eps),
                                                  np.linalg.norm(w_star), np.linalg.norm(e0)))
        x = -np.expm1(-band / (h + 1)) if b.alpha > 0 else np.expm1(band / (T - h))
        return [float(x / ev.max()), float(x / ev.min())]

    closed = {res.dtype: threshold(res.dtype), "float64": threshold("float64")}
    lo, hi = sorted(abs(v) for v in (b.lo, b.hi))
    near, far = closed["float64"]
    out.update(closed_form_abs_alpha=closed,
               bracket_holds_closed_form=bool(lo <= far and near <= hi))
    return out
