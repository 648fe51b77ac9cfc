"""Phase plots: regime strips and maps, error heatmaps and trajectories.

Object-oriented matplotlib (``Figure``, no pyplot state), so library use never opens a window.
Cells are drawn with ``pcolormesh`` on explicit edges (correct on log axes, unlike ``imshow``),
regimes with a ``ListedColormap`` + ``BoundaryNorm`` in colour-blind-safe colours
(:data:`REGIME_COLORS`) and a legend of patches named from the shared regime table, placed where it
covers no data; analytic boundaries as overlaid lines, each labelled by what it means. Parameter
names are drawn as their symbols (:func:`symbol`). Meshes are rasterized so SVGs stay small; SVG/PDF
output carries no date and a fixed hash salt, so it is byte-reproducible.

Plots cost O(pixels), not O(runs): a sweep with more runs than the figure can show is first reduced
to at most ``STRIP_MAX_CELLS`` cells along α (``MAP_MAX_CELLS`` / ``HEATMAP_MAX_CELLS`` for the 2-D
plots) by merging consecutive runs (:func:`reduce_regimes`, :func:`reduce_regime_map`,
:func:`reduce_log_errors`). Merged cells keep exact edges — each is the union of the original cells,
so its edges are original edges — and inputs within the caps are drawn exactly as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from gdlab._cells import (
    HEATMAP_MAX_CELLS,
    HEATMAP_MIN_ALPHA,
    MAP_MAX_CELLS,
    STRIP_MAX_CELLS,
    block_mode,
    cell_edges,
    cell_groups,
    code_counts,
    is_log_spaced,
    merged_edges,
    reduce_log_errors,
    reduce_regime_map,
    reduce_regimes,
)
from gdlab._naming import symbol
from gdlab.errors import ArgumentError
from gdlab.regimes import REGIME_INFO, Regime
from gdlab.rundir import replace_file

__all__ = ["cell_edges", "regime_strip", "error_heatmap", "trajectories", "phase_map", "save",
           "reduce_regimes", "reduce_regime_map", "reduce_log_errors", "STRIP_MAX_CELLS",
           "MAP_MAX_CELLS", "HEATMAP_MAX_CELLS", "HEATMAP_MIN_ALPHA", "STRIP_MIN_CELLS",
           "REGIME_COLORS", "symbol", "draw_regime_map", "regime_handles", "bifurcation",
           "CLOSED_FORM_EDGES", "closed_form_lines", "closed_form_regime"]

matplotlib.rcParams["svg.hashsalt"] = "gdlab"

# Regime colours: the shared table's (colour-blind safe, see gdlab.regimes.REGIME_INFO).
REGIME_COLORS: dict[Regime, str] = {r: REGIME_INFO[r].color for r in Regime}
_CMAP = ListedColormap([REGIME_COLORS[r] for r in Regime])
_NORM = BoundaryNorm(np.arange(len(Regime) + 1) - 0.5, len(Regime))
_BOUNDARY_STYLE = {"color": "black", "lw": 1.2, "ls": "--"}
_LINE_STYLES = ("--", ":", "-.", (0, (6, 2, 1, 2, 1, 2)))   # one per labelled edge or curve
_FROZEN_COLOR = "#400000"    # error heatmap: steps after a run was frozen (diverged)
_BELOW_COLOR = "#c8c8c8"     # error heatmap: |e| at or below the noise floor (rounding)
# Fewest α a regime strip draws as cells. A cell reaches halfway to each neighbour, so a few wide
# cells would colour α that no run measured (for the same reason a heatmap needs as many columns):
# fewer α are drawn each as its own narrow bar at its α (:func:`_alpha_bars`).
STRIP_MIN_CELLS = HEATMAP_MIN_ALPHA
_BAR_WIDTH = 0.012           # such a bar's width, a fraction of the axis span: ≈ 12 px
# Regimes of runs whose orbit is unbounded: left out of the bifurcation diagram's panels.
_UNBOUNDED = (Regime.DIVERGING_OSCILLATING, Regime.DIVERGING_MONOTONE)
_FLOAT_MAX = float(np.finfo(np.float64).max)

class ClosedFormEdge(NamedTuple):
    label: str                 # what the line means, as drawn
    above: Regime | None       # the closed-form regime just above this edge; None: unchanged


# The closed-form edges in α, keyed as ``gdlab.study`` names them (``_Theory.edges``). Along
# α > 0 a linear optimizer on a quadratic goes converging_monotone → converging_oscillating (at
# the oscillation onset; on an n-D problem where the oscillating stiffest mode starts to dominate
# the error, 2/(λ_min + λ_max) for GD) → bounded_oscillation exactly at the divergence edge →
# diverging_oscillating; α = 0 is stalled and α < 0 diverging_monotone. The stiffest mode's own
# onset, 1/λ_max, changes no regime of the whole error while the slow mode dominates: a line only.
CLOSED_FORM_EDGES: dict[str, ClosedFormEdge] = {
    "oscillation_onset": ClosedFormEdge("oscillation starts", Regime.CONVERGING_OSCILLATING),
    "oscillation_onset_stiffest_mode": ClosedFormEdge(
        "stiffest mode starts to oscillate (1/λ_max)", None),
    "oscillation_dominates": ClosedFormEdge(
        "oscillating mode dominates (2/(λ_min+λ_max))", Regime.CONVERGING_OSCILLATING),
    "divergence": ClosedFormEdge("divergence starts", Regime.DIVERGING_OSCILLATING),
}
_ND_DIVERGENCE_LABEL = "divergence (2/λ_max)"   # beside the n-D keys, which are GD's


def closed_form_lines(edges: dict[str, float] | None) -> dict[str, float]:
    """The finite closed-form ``edges`` (keys of :data:`CLOSED_FORM_EDGES`) as label → α lines;
    other keys are taken as labels already."""
    n_d = bool({"oscillation_dominates", "oscillation_onset_stiffest_mode"} & set(edges or {}))
    out = {}
    for key, a in (edges or {}).items():
        if a is None or not np.isfinite(a):
            continue
        label = CLOSED_FORM_EDGES[key].label if key in CLOSED_FORM_EDGES else key
        out[_ND_DIVERGENCE_LABEL if n_d and key == "divergence" else label] = float(a)
    return out


def closed_form_regime(alpha: ArrayLike, edges: dict[str, float]) -> np.ndarray:
    """The closed-form regime (int8) at each α from the edges alone (see
    :data:`CLOSED_FORM_EDGES`): a step function of α, exact at any α, not only on a grid."""
    alpha = np.asarray(alpha, np.float64)
    regime = np.full(alpha.shape, Regime.CONVERGING_MONOTONE, np.int8)
    changes = sorted((a, CLOSED_FORM_EDGES[k].above) for k, a in edges.items()
                     if k in CLOSED_FORM_EDGES and CLOSED_FORM_EDGES[k].above is not None
                     and a is not None and np.isfinite(a))
    for a, above in changes:
        regime[alpha > a] = above
    if "divergence" in edges:
        regime[alpha == edges["divergence"]] = Regime.BOUNDED_OSCILLATION
    regime[alpha == 0] = Regime.STALLED
    regime[alpha < 0] = Regime.DIVERGING_MONOTONE
    return regime


def _has_closed_form(edges: dict[str, float] | None) -> bool:
    """Do ``edges`` fix the closed-form regime at every α? They need the divergence edge and, on
    an n-D problem (a stiffest-mode onset given), the edge where oscillation dominates."""
    return (bool(edges) and np.isfinite(edges.get("divergence", np.nan))
            and ("oscillation_onset_stiffest_mode" not in edges
                 or np.isfinite(edges.get("oscillation_dominates", np.nan))))


def regime_handles(codes) -> list[Patch]:
    """Legend patches of the regimes in ``codes``, ascending."""
    return [Patch(color=REGIME_COLORS[Regime(r)], label=REGIME_INFO[Regime(r)].name)
            for r in sorted(set(int(x) for x in np.ravel(codes)))]


def _boundary_lines(ax, boundaries: dict[str, float]) -> list[Line2D]:
    """The edges (label → α) as black vertical lines, one dash style each (so labels sit in the
    legend, never on top of each other where edges are close); returns the legend handles."""
    finite = [(label, a) for label, a in boundaries.items() if np.isfinite(a)]
    return [ax.axvline(a, color="black", lw=1.2, ls=_LINE_STYLES[i % len(_LINE_STYLES)],
                       label=label, zorder=3)
            for i, (label, a) in enumerate(finite)]


def _padded(lo: float, hi: float, log: bool, frac: float = 0.02) -> tuple[float, float]:
    """(lo, hi) widened by ``frac`` of the span on each side (of log10 on a log axis): room for a
    9-pt marker at either end of a ~7.5-in axis, which needs ≈ 0.9 %. An empty span (lo = hi)
    is first widened to :func:`_around` lo, never to limits matplotlib finds singular."""
    if log:
        lo_l, hi_l = _padded(np.log10(lo), np.log10(hi), False, frac)
        return 10 ** lo_l, 10 ** hi_l
    lo, hi = (float(lo), float(hi)) if hi > lo else _around(float(lo))
    pad = frac * (hi - lo)
    return max(lo - pad, -_FLOAT_MAX), min(hi + pad, _FLOAT_MAX)


def _around(x: float) -> tuple[float, float]:
    """A range around a single value x: x ± max(½, |x|/2), as wide as the cell of one α in the
    strip (x ± ½) for |x| ≤ 1, and visibly wider than x's rounding however large x is (1e30 ± ½
    is 1e30); held within the float64 range."""
    half = max(0.5, abs(x) / 2)
    return max(x - half, -_FLOAT_MAX), min(x + half, _FLOAT_MAX)


def _markers(ax, xs, y: float, code: int) -> None:
    """Triangles at ``xs`` in a strip row for a regime too narrow to see (drawn above the lines)."""
    ax.plot(xs, np.full(np.size(xs), y), "v", ms=9, color=REGIME_COLORS[Regime(int(code))],
            mec="black", mew=0.8, zorder=4, gid="regime_marker")


def _grid_rows(ax, alpha, rows, edges, starts) -> np.ndarray:
    """Strip rows per grid cell (merged beyond the cap), row i at y = i … i + 1, in one mesh; the
    codes present.

    Regimes that hold only a few grid cells (α = 0, the cycle at αλ = 2) would be invisible
    slivers: each such cell is marked (one marker per merged cell: same pixel)."""
    rows = [np.asarray(r) for r in rows]
    if starts is None:
        ax.pcolormesh(edges, np.arange(len(rows) + 1), np.stack(rows), cmap=_CMAP, norm=_NORM,
                      rasterized=True)
    else:
        ax.pcolormesh(merged_edges(edges, starts), np.arange(len(rows) + 1),
                      np.stack([block_mode(r, [starts]) for r in rows]),
                      cmap=_CMAP, norm=_NORM, rasterized=True)
    present = []
    for i, row in enumerate(rows):
        codes, counts = code_counts(row)
        present.append(codes)
        for code, count in zip(codes, counts):
            if count <= max(1, row.size // 200):
                cells = np.flatnonzero(row == code)
                if starts is not None:
                    _, first = np.unique(np.searchsorted(starts, cells, side="right"),
                                         return_index=True)
                    cells = cells[first]
                _markers(ax, np.asarray(alpha)[cells], i + 0.5, code)
    return np.concatenate(present)


def _alpha_bars(ax, alpha: np.ndarray, rows, span: float, log: bool) -> np.ndarray:
    """Strip rows of a few α (fewer than :data:`STRIP_MIN_CELLS`): each α its own narrow bar in
    its regime's colour, centred on it and outlined, row i at y = i … i + 1; the codes present.

    A bar is ``_BAR_WIDTH`` of the axis ``span`` wide (in log10 α on a log axis), narrower where
    neighbours are closer, so that bars never touch: nothing is drawn at an α that was not run.
    """
    t = np.log10(alpha) if log else alpha.astype(np.float64)
    gaps = np.diff(np.sort(t))
    half = min(_BAR_WIDTH * span, gaps[gaps > 0].min(initial=np.inf) * 0.8) / 2
    lo, hi = (10 ** (t - half), 10 ** (t + half)) if log else (t - half, t + half)
    present = []
    for i, row in enumerate(rows):
        row = np.asarray(row)
        ax.broken_barh(list(zip(lo, hi - lo)), (i, 1), gid="simulated_alpha",
                       facecolors=[REGIME_COLORS[Regime(int(c))] for c in row],
                       edgecolor="black", linewidth=0.8, zorder=2)
        present.append(row)
    return np.concatenate(present)


def _closed_form_row(ax, lo: float, hi: float, edges: dict[str, float], y0: float,
                     log: bool) -> np.ndarray:
    """The theory row from the closed-form ``edges``: one cell per interval between them over
    [lo, hi], coloured by :func:`closed_form_regime` at its middle, and the single-α regimes
    (α = 0 stalled, the cycle at the divergence edge) marked at their exact α; the codes drawn."""
    cuts = sorted({float(a) for a in (0.0, *edges.values())
                   if a is not None and np.isfinite(a) and lo < a < hi})
    xs = np.array([lo, *cuts, hi])
    mids = np.sqrt(xs[1:] * xs[:-1]) if log else 0.5 * (xs[1:] + xs[:-1])
    codes = closed_form_regime(mids, edges)
    ax.pcolormesh(xs, [y0, y0 + 1], codes[None, :], cmap=_CMAP, norm=_NORM, rasterized=True)
    points = np.array([a for a in (0.0, edges["divergence"]) if lo <= a <= hi])
    point_codes = closed_form_regime(points, edges)
    for x, code in zip(points, point_codes):
        _markers(ax, [x], y0 + 0.5, code)
    return np.concatenate([codes, point_codes])


def _distinct(alpha: ArrayLike, regime: ArrayLike, predicted: ArrayLike | None) -> tuple:
    """``alpha`` sorted, each value once (its first run's regimes), with ``regime`` and
    ``predicted`` to match: a repeated α is one run repeated, drawn once. Already increasing
    input (a grid) is returned as it is, without a sort."""
    alpha, regime = np.asarray(alpha), np.asarray(regime)
    if alpha.size < 2 or np.all(np.diff(alpha) > 0):
        return alpha, regime, predicted
    alpha, first = np.unique(alpha, return_index=True)
    return alpha, regime[first], None if predicted is None else np.asarray(predicted)[first]


def regime_strip(alpha: ArrayLike, regime: ArrayLike, predicted: ArrayLike | None = None,
                 boundaries: dict[str, float] | None = None, title: str = "",
                 max_cells: int | None = STRIP_MAX_CELLS,
                 closed_form: dict[str, float] | None = None) -> Figure:
    """Regime per α: simulated (bottom row, one cell per grid α) and theory (top row), separated
    and labelled, with closed-form edges as labelled vertical lines.

    Both rows span the swept range, [min α, max α]: the outer cells end at the first and last α
    (a single α: α ± max(½, |α|/2)). A repeated α is drawn once, and unsorted α in order.
    Fewer than :data:`STRIP_MIN_CELLS` α are drawn each as its own narrow, outlined bar at its α
    (cells reaching halfway to the neighbours would show regimes of α that were never run).

    ``closed_form`` holds closed-form edges in α keyed as :data:`CLOSED_FORM_EDGES`. With a finite
    ``divergence`` among them the theory row is drawn from them — intervals between the edges,
    each in its closed-form regime (:func:`closed_form_regime`) over the swept range, right
    wherever the grid points lie — else from ``predicted`` per grid cell. ``boundaries``
    (label → α) adds lines. Regimes that hold only a few cells are marked by triangles at their
    α; the α axis is padded so that a marker at either end of the grid is drawn whole.

    More than ``max_cells`` runs are merged to that many cells first (:func:`reduce_regimes`;
    None: never), so the cost is O(pixels), not O(runs).
    """
    alpha, regime, predicted = _distinct(alpha, regime, predicted)
    log = is_log_spaced(alpha)
    edges = cell_edges(alpha, log)
    if alpha.size > 1:   # the outer cells end at the swept range's ends: no run lies beyond them
        edges[[0, -1]] = alpha[[0, -1]]
    starts = cell_groups(edges, max_cells, log)
    exact = _has_closed_form(closed_form)
    theory = exact or predicted is not None
    fig = Figure(figsize=(9, 3.0 + 0.8 * theory), layout="constrained")
    ax = fig.add_subplot()
    grid_rows = [regime] if exact or predicted is None else [regime, predicted]
    # Both rows span the swept range [min α, max α] (one α: a range around it), no further.
    lo, hi = ((float(alpha.min()), float(alpha.max())) if alpha.size > 1
              else _around(float(alpha[0])))
    if alpha.size < STRIP_MIN_CELLS:
        span = np.log10(hi / lo) if log else hi - lo
        present = [_alpha_bars(ax, alpha, grid_rows, span, log)]
    else:
        present = [_grid_rows(ax, alpha, grid_rows, edges, starts)]
    if exact:
        present.append(_closed_form_row(ax, lo, hi, closed_form, 1.0, log))
    labels = ["simulated\n(per grid α)",
              "theory\n(closed form)" if exact else "theory\n(per grid α)"][: 1 + theory]
    if theory:   # the separator: a white band between the rows
        ax.axhline(1.0, color="white", lw=6, zorder=2.5, gid="row_separator")
    ax.set_ylim(0, len(labels))
    ax.set_yticks(np.arange(len(labels)) + 0.5, labels)
    ax.tick_params(axis="y", length=0)
    ax.set_xscale("log" if log else "linear")
    x_lo, x_hi = _padded(lo, hi, log)
    ax.set_xlim(x_lo, x_hi)
    ax.set_xlabel("step size α")
    # edges beyond the axis are not drawn, so not in the legend either
    lines = _boundary_lines(ax, {label: a for label, a in
                                 {**closed_form_lines(closed_form), **(boundaries or {})}.items()
                                 if x_lo <= a <= x_hi})
    fig.legend(handles=regime_handles(np.concatenate(present)) + lines,
               loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    ax.set_title(title or "Gradient-descent regime per step size", fontsize=10)
    return fig


def error_heatmap(alpha: ArrayLike, steps: ArrayLike, errors: ArrayLike, diverged_at: ArrayLike,
                  boundaries: dict[str, float] | None = None, title: str = "",
                  max_cells: tuple[int, int] | None = HEATMAP_MAX_CELLS,
                  floor: ArrayLike | None = None) -> Figure:
    """log₁₀‖w_t − w*‖ over α × t, for at least :data:`HEATMAP_MIN_ALPHA` values of α.

    Two kinds of cells are not measurements and get colours of their own, at the ends of the
    colour bar and in the legend: steps at and after a run was frozen (diverged; what is stored
    there is the last in-bound iterate), and errors at or below ``floor`` (per α: the noise floor,
    below which rounding rather than the dynamics sets the error — a float32 iterate that lands
    exactly on w* has error 0; None: exact zeros only). ``boundaries`` (label → α) are drawn as
    labelled lines. Beyond ``max_cells = (nα, nt)`` blocks are merged, each showing its largest
    log error (:func:`reduce_log_errors`; None: never): a block is frozen if any of its cells is,
    below rounding only if all are.
    """
    alpha = np.asarray(alpha)
    if alpha.size < HEATMAP_MIN_ALPHA:
        raise ArgumentError("alpha", f"{alpha.size} values: an α × t heatmap needs at least "
                                     f"{HEATMAP_MIN_ALPHA} (show a few α with trajectories())")
    errors = np.asarray(errors, np.float64)
    steps = np.asarray(steps)
    d = np.asarray(diverged_at)[:, None]
    frozen = (d >= 0) & (steps[None, :] >= d)
    floor = np.zeros(alpha.size) if floor is None else np.broadcast_to(floor, alpha.shape)
    with np.errstate(divide="ignore"):
        z = np.where(errors > np.asarray(floor, np.float64)[:, None], np.log10(errors), -np.inf)
    log = is_log_spaced(alpha)
    a_edges, t_edges, z, frozen = reduce_log_errors(alpha, steps, z, frozen, max_cells, log)
    below = ~frozen & (z == -np.inf)
    data = ~frozen & ~below
    lo, hi = (float(z[data].min()), float(z[data].max())) if data.any() else (0.0, 1.0)
    hi = max(hi, lo + 1e-3)
    shown = np.where(frozen, hi + 1.0, np.where(below, lo - 1.0, z))
    cmap = matplotlib.colormaps["viridis"].with_extremes(under=_BELOW_COLOR, over=_FROZEN_COLOR)
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(a_edges, t_edges, shown.T, cmap=cmap, norm=Normalize(lo, hi),
                         rasterized=True)
    fig.colorbar(mesh, ax=ax, extend="both",
                 label="log₁₀ ‖w_t − w*‖   (▲ diverged, frozen;  ▼ below rounding)")
    ax.set_xscale("log" if log else "linear")
    ax.set_xlabel("step size α")
    ax.set_ylabel("step t")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    lines = _boundary_lines(ax, boundaries or {})
    floors = np.unique(floor)
    below_label = ("below rounding: error at or below the noise floor"
                   + (f" ({floors[0]:.2g})" if floors.size == 1 and floors[0] > 0 else "")
                   + ", or exactly 0")
    fig.legend(handles=[Patch(color=_FROZEN_COLOR, label="diverged: frozen (the stored iterate is "
                                                        "the last in-bound one)"),
                        Patch(color=_BELOW_COLOR, label=below_label), *lines],
               loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    ax.set_title(title or "Distance to the optimum over step size and time", fontsize=10)
    return fig


def _closed_form_errors(rate: float, err0: float, steps: np.ndarray) -> np.ndarray:
    """|e_t| = |r|^t·|e₀|: the error of e_{t+1} = r e_t (GD on a scalar quadratic, r = 1 − αλ)."""
    with np.errstate(under="ignore", over="ignore"):
        return np.abs(rate) ** np.asarray(steps, np.float64) * err0


def trajectories(alphas: Sequence[float], steps: ArrayLike, w: ArrayLike, w_star: ArrayLike,
                 diverged_at: Sequence[int], title: str = "",
                 rates: Sequence[float] | None = None) -> Figure:
    """w_t (left, first steps) and |w_t − w*| on a log axis (right, whole horizon) per α; steps
    have integer ticks.

    ``rates``: the closed-form per-step factor r = 1 − αλ of each α where the error obeys
    e_{t+1} = r e_t (gradient descent on a scalar quadratic): |w* − w_t| = |r|^t·|w* − w₀| is then
    drawn as a thin dashed black line over each simulated one, up to where the run was frozen.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    steps = np.asarray(steps)
    if rates is not None and (steps.size == 0 or steps[0] != 0):
        raise ArgumentError("rates", "the closed-form overlay needs w₀: steps must start at 0")
    first = steps <= min(steps[-1], 20)
    lowest = np.inf
    for i, (a, wt, ws, d) in enumerate(zip(alphas, np.asarray(w, np.float64), np.ravel(w_star),
                                           diverged_at)):
        live = steps < d if d >= 0 else np.ones_like(steps, bool)
        line, = left.plot(steps[first & live], wt[first & live], marker="o", ms=3,
                          label=f"α = {a:g}")
        err = np.abs(wt - ws)
        shown = live & (err > 0)  # an exact hit of w* has no logarithm; the line just ends
        lowest = min(lowest, err[shown].min(initial=np.inf))
        # Solid lines, each thinner than the one before: coinciding ones stay visible.
        right.semilogy(steps[shown], err[shown], color=line.get_color(), lw=(4, 2.5, 1.5)[i % 3],
                       label=f"α = {a:g}" + (f" (diverged at t = {d})" if d >= 0 else ""))
        if rates is not None:
            ref = _closed_form_errors(rates[i], err[0], steps[live])
            right.semilogy(steps[live][ref > 0], ref[ref > 0], color="black", lw=0.9,
                           ls=(0, (3, 2)), zorder=3, gid="closed_form")
    left.axhline(float(np.ravel(w_star)[0]), color="black", lw=1, ls=":", label="w*")
    ymax = 3 * abs(float(np.ravel(w_star)[0])) + 1
    left.set_ylim(-ymax, ymax)
    left.set_xlabel("step t")
    left.set_ylabel("w_t")
    # legends below the axes: a diverging α zig-zags through every corner of the first steps
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4,
                frameon=False)
    left.set_title("Iterates (first steps)")
    if np.isfinite(lowest):
        right.set_ylim(bottom=lowest / 10)
    right.set_xlabel("step t")
    right.set_ylabel("|w_t − w*|")
    handles = right.get_legend_handles_labels()[0]
    if rates is not None:
        handles.append(Line2D([], [], color="black", lw=0.9, ls=(0, (3, 2)),
                              label="closed form |1 − αλ|^t·|w* − w₀|"))
    right.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
                 ncol=2, frameon=False)
    right.set_title("Distance to the optimum")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title or "Gradient-descent trajectories")
    return fig


def phase_map(alpha: ArrayLike, other: ArrayLike, other_name: str, regime: ArrayLike,
              curves: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
              title: str = "", x_name: str = "step size α",
              max_cells: tuple[int, int] | None = MAP_MAX_CELLS) -> Figure:
    """Regime over α (or another x axis, ``x_name``) × another parameter, boundaries overlaid.

    ``curves`` maps a label to the α on the boundary for each value of ``other``. The map is
    drawn by :func:`draw_regime_map` (symbols, regime colours, merged beyond ``max_cells``). The
    legend sits below the axes, covering no cell or curve.
    """
    fig = Figure(figsize=(8, 6.6), layout="constrained")
    ax = fig.add_subplot()
    codes = draw_regime_map(ax, alpha, other, regime, x_name=x_name, y_name=other_name,
                            max_cells=max_cells)
    log_o = is_log_spaced(other)
    fine = (np.geomspace if log_o else np.linspace)(np.min(other), np.max(other), 400)
    for (label, fn), ls in zip((curves or {}).items(), _LINE_STYLES):
        ax.plot(fn(fine), fine, color="black", lw=1.5, ls=ls, label=label)
    handles = regime_handles(codes) + ax.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    ax.set_title(title or f"Regime over α × {symbol(other_name)}", fontsize=10)
    return fig


def draw_regime_map(ax, x: ArrayLike, y: ArrayLike, regime: ArrayLike, *, x_name: str,
                    y_name: str, max_cells: tuple[int, int] | None = MAP_MAX_CELLS
                    ) -> np.ndarray:
    """A regime map (``regime``: shape (len(x), len(y))) on ``ax``: cells on explicit edges
    (log axes where the values are log-spaced), in the regime colours (:data:`REGIME_COLORS`),
    axes named by their symbols (:func:`symbol`); blocks merged to their most frequent regime
    beyond ``max_cells = (nx, ny)`` (:func:`reduce_regime_map`; None: never). Returns the regime
    codes present, for a legend (:func:`regime_handles`)."""
    log_x, log_y = is_log_spaced(x), is_log_spaced(y)
    x_edges, y_edges, cells = reduce_regime_map(x, y, regime, max_cells, (log_x, log_y))
    ax.pcolormesh(x_edges, y_edges, np.asarray(cells).T, cmap=_CMAP, norm=_NORM, rasterized=True)
    ax.set_xlim(x_edges[[0, -1]])
    ax.set_ylim(y_edges[[0, -1]])
    ax.set_xscale("log" if log_x else "linear")
    ax.set_yscale("log" if log_y else "linear")
    ax.set_xlabel(symbol(x_name))
    ax.set_ylabel(symbol(y_name))
    return code_counts(regime)[0]


def save(fig: Figure, directory: Path, stem: str) -> list[str]:
    """Write ``stem.png`` and ``stem.svg``, each atomically (``gdlab plot`` redraws a run
    directory's plots in place); return the file names."""
    names = [f"{stem}.png", f"{stem}.svg"]
    for name, kw in zip(names, ({"dpi": 130, "metadata": {"Software": None}},
                                {"metadata": {"Date": None}})):
        replace_file(Path(directory) / name,
                     lambda p, kw=kw, fmt=name[-3:]: fig.savefig(p, format=fmt, **kw))
    return names


def bifurcation(alpha: ArrayLike, late: ArrayLike, regime: ArrayLike, lyapunov: ArrayLike,
                marks: dict[str, tuple[float, Callable[[np.ndarray], np.ndarray] | None]]
                | None = None, title: str = "",
                max_cells: int | None = STRIP_MAX_CELLS) -> Figure:
    """Late iterates vs α (top), the Lyapunov exponent vs α (bottom), regime strip between.

    Runs in a diverging regime (in an orbit study: those that escaped or left the float range)
    are left out of both panels: their late iterates are a transient on its way out, their λ_L
    is not an attractor's. The iterate panel is scaled by the orbits that stay bounded, so one
    run on its way to 10¹⁹ cannot flatten every branch onto a line. The strip is reduced like
    :func:`regime_strip`'s (``max_cells``; None: never); the legends sit below the axes, off
    the data.
    """
    fig = Figure(figsize=(10, 8.0), layout="constrained")
    top, strip, bottom = fig.subplots(3, 1, sharex=True, height_ratios=[5, 0.5, 3])
    alpha = np.asarray(alpha, np.float64)
    regime = np.asarray(regime)
    unbounded = np.isin(regime, _UNBOUNDED)
    late = np.where(unbounded[:, None], np.nan, np.asarray(late, np.float64))
    shown = np.isfinite(late)
    top.plot(np.repeat(alpha, late.shape[1])[shown.ravel()], late[shown], ",", color="black",
             alpha=0.5, rasterized=True)
    if shown.any():
        top.set_ylim(*_padded(float(late[shown].min()), float(late[shown].max()), False, 0.05))
    top.set_ylabel("late iterates w_t")
    top.set_title(title or "Bifurcation diagram of gradient descent")
    edges, cells = reduce_regimes(alpha, regime[None, :], max_cells, log=False)
    strip.pcolormesh(edges, [0, 1], cells, cmap=_CMAP, norm=_NORM, rasterized=True)
    strip.set_yticks([])
    # NaN where the run escaped (diverging, or left the float range): not drawn
    lyapunov = np.where(unbounded, np.nan, np.asarray(lyapunov, np.float64))
    label = "Lyapunov exponent (simulated" + ("; not drawn where the run escaped)"
                                              if np.isnan(lyapunov).any() else ")")
    bottom.plot(alpha, lyapunov, lw=1, color="#6a3d9a", label=label)
    bottom.axhline(0, color="black", lw=0.8)
    for label, (a, fn) in (marks or {}).items():
        for ax in (top, bottom):
            ax.axvline(a, **_BOUNDARY_STYLE)
        top.annotate(label, (a, 0.97), xycoords=("data", "axes fraction"), xytext=(3, 0),
                     textcoords="offset points", fontsize=8, va="top")
        if fn is not None:
            sel = alpha < a
            bottom.plot(alpha[sel], fn(alpha[sel]), color="#e6550d", lw=1.5, ls="--",
                        label="closed form at the fixed point: log|1 − αλ*|")
    if np.isfinite(lyapunov).any():
        bottom.set_ylim(max(-4.0, np.nanmin(lyapunov) - 0.2),
                        max(1.0, np.nanmax(lyapunov) + 0.2))
    bottom.set_xlabel("step size α")
    bottom.set_ylabel("λ_L (per step)")
    fig.legend(handles=regime_handles(regime) + bottom.get_legend_handles_labels()[0],
               loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return fig
