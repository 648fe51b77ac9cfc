"""Phase plots: regime strips and maps, error heatmaps and trajectories.

Object-oriented matplotlib (``Figure``, no pyplot state), so library use never opens a window.
Cells are drawn with ``pcolormesh`` on explicit edges (correct on log axes, unlike ``imshow``),
regimes with a ``ListedColormap`` + ``BoundaryNorm`` and a legend of patches from the shared regime
table, analytic boundaries as overlaid lines. Meshes are rasterized so SVGs stay small; SVG/PDF
output carries no date and a fixed hash salt, so it is byte-reproducible.

Plots cost O(pixels), not O(runs): a sweep with more runs than the figure can show is first reduced
to at most ``STRIP_MAX_CELLS`` cells along α (``MAP_MAX_CELLS`` / ``HEATMAP_MAX_CELLS`` for the 2-D
plots) by merging consecutive runs (:func:`reduce_regimes`, :func:`reduce_regime_map`,
:func:`reduce_log_errors`). Merged cells keep exact edges — each is the union of the original cells,
so its edges are original edges — and inputs within the caps are drawn exactly as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from numpy.typing import ArrayLike

from gdlab.regimes import REGIME_INFO, Regime

__all__ = ["cell_edges", "regime_strip", "error_heatmap", "trajectories", "phase_map", "save",
           "reduce_regimes", "reduce_regime_map", "reduce_log_errors", "STRIP_MAX_CELLS",
           "MAP_MAX_CELLS", "HEATMAP_MAX_CELLS"]

matplotlib.rcParams["svg.hashsalt"] = "gdlab"
_CMAP = ListedColormap([REGIME_INFO[r].color for r in Regime])
_NORM = BoundaryNorm(np.arange(len(Regime) + 1) - 0.5, len(Regime))
_BOUNDARY_STYLE = {"color": "black", "lw": 1.2, "ls": "--"}

# Most cells drawn along an axis. The figures are 8–11 in wide and saved at 130 dpi (≈ 1000–1400
# pixel columns, fewer inside the axes), so these caps stay at or above the pixel resolution:
# merging beyond them is invisible, drawing beyond them only costs time and memory. 4096 along α
# also keeps every bundled config (≤ 3001 α) below the cap, so its plots are drawn unreduced,
# exactly as before.
STRIP_MAX_CELLS = 4096
MAP_MAX_CELLS = (1000, 1000)        # (x, y) of a phase map: 8 × 6 in at 130 dpi is 1040 × 780 px
HEATMAP_MAX_CELLS = (4096, 1024)    # (α, t) of an error heatmap


def cell_edges(centers: np.ndarray, log: bool = False) -> np.ndarray:
    """Edges of cells around sorted centers: midpoints (geometric midpoints on a log axis)."""
    c = np.asarray(centers, np.float64)
    if c.size == 1:
        return np.array([c[0] / 1.1, c[0] * 1.1]) if log else np.array([c[0] - 0.5, c[0] + 0.5])
    if log:
        return np.exp(cell_edges(np.log(c)))
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def is_log_spaced(values: ArrayLike) -> bool:
    """Whether ``values`` are geometrically (and not also linearly) spaced: at least 3, all > 0."""
    v = np.asarray(values, np.float64)
    if v.size < 3 or np.any(v <= 0):
        return False
    ratios = v[1:] / v[:-1]
    return bool(np.ptp(ratios) < 1e-6 * ratios.mean()
                and np.ptp(np.diff(v)) > 1e-6 * np.abs(v).max())


def _cell_groups(edges: np.ndarray, max_cells, log: bool = False) -> np.ndarray | None:
    """Start indices of the groups of consecutive cells that are merged, or None: no merging.

    ``edges`` are the n + 1 edges of n cells. With n ≤ ``max_cells`` (or ``max_cells`` None) nothing
    is merged. Otherwise the axis — in display coordinates, log10 on a log axis — is cut into
    ``max_cells`` equal slices and a group starts at the first cell edge at or after each cut, so a
    group spans about one slice (or a single cell wider than a slice) and there are at most
    ``max_cells`` groups. Equal slices, not equal run counts, so a non-uniform grid is reduced to
    the screen's resolution everywhere. Edges that are not increasing (or not finite) fall back to
    groups of equal run counts.
    """
    n = edges.size - 1
    if max_cells is None or n <= max_cells:
        return None
    max_cells = max(1, int(max_cells))
    t = np.log10(edges) if log else np.asarray(edges, np.float64)
    if np.all(np.isfinite(t[[0, -1]])) and t[-1] > t[0] and np.all(np.diff(t) >= 0):
        cuts = np.searchsorted(t, np.linspace(t[0], t[-1], max_cells + 1)[1:-1], side="left")
    else:
        cuts = np.arange(1, max_cells) * n // max_cells
    return np.unique(np.concatenate([[0], cuts[(cuts > 0) & (cuts < n)]])).astype(np.intp)


def _merged_edges(edges: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
    return edges if starts is None else edges[np.append(starts, edges.size - 1)]


def _code_counts(values) -> tuple[np.ndarray, np.ndarray]:
    """The regime codes present (ascending) and how often: one O(n) pass, no sort."""
    v = np.ravel(values)
    if v.size and v.dtype.kind in "iu" and v.min() >= 0 and v.max() < 4096:
        counts = np.bincount(v)
        codes = np.flatnonzero(counts)
        return codes, counts[codes]
    return np.unique(v, return_counts=True)


def _block_mode(values, starts) -> np.ndarray:
    """Most frequent code per block, ties to the lower code; ``starts[axis]`` None: axis kept."""
    values = np.asarray(values)
    best = best_count = None
    for code in _code_counts(values)[0]:           # ascending: a later code must beat, not tie
        count = values == code
        for axis, st in enumerate(starts):
            if st is not None:
                count = np.add.reduceat(count, st, axis=axis, dtype=np.int64)
        if best is None:
            best, best_count = np.full(count.shape, code, values.dtype), count
        else:
            better = count > best_count
            best[better] = code
            best_count = np.where(better, count, best_count)
    return best


def reduce_regimes(alpha: ArrayLike, regime: ArrayLike, max_cells: int | None = STRIP_MAX_CELLS,
                   log: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a regime per α (``regime``: shape (n,), or (rows, n) reduced along the last axis) to
    at most ``max_cells`` cells; return ``(edges, codes)`` for ``pcolormesh``.

    Consecutive runs are merged into cells of about equal width on the plotted axis (log10 α when
    ``log``; None: detected as the plots do), see :func:`_cell_groups`. Each merged cell is the
    union of the original cells, so its edges are original :func:`cell_edges` (the geometric
    midpoints before its first and after its last run on a log axis): a class boundary that falls on
    a merged cell's edge is drawn exactly where the unreduced plot draws it, and one inside a cell
    moves by less than that cell (≈ a pixel).

    Each cell gets its most frequent regime, ties to the lower code. The mode never invents a
    regime — the colour is one that occurs in the cell — and it is what the pixel mostly covers,
    so a regime's drawn extent is right to within a cell. (A priority rule, "rarest wins", would
    instead widen single-α regimes such as the αλ = 2 cycle to whole pixels and shift boundaries;
    :func:`regime_strip` flags those rare regimes with markers at their exact α instead.)

    With n ≤ ``max_cells`` (or ``max_cells`` None) the input is returned unchanged:
    ``(cell_edges(alpha, log), regime)``.
    """
    alpha = np.asarray(alpha)
    log = is_log_spaced(alpha) if log is None else log
    edges = cell_edges(alpha, log)
    starts = _cell_groups(edges, max_cells, log)
    if starts is None:
        return edges, regime
    regime = np.asarray(regime)
    return _merged_edges(edges, starts), _block_mode(regime, [None] * (regime.ndim - 1) + [starts])


def reduce_regime_map(x: ArrayLike, y: ArrayLike, regime: ArrayLike,
                      max_cells: tuple[int, int] | None = MAP_MAX_CELLS,
                      log: tuple[bool | None, bool | None] = (None, None),
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block-reduce a regime map (``regime``: shape (len(x), len(y))) to at most
    ``max_cells = (nx, ny)`` cells; return ``(x_edges, y_edges, codes)`` for ``pcolormesh``.

    Each axis is grouped as in :func:`reduce_regimes` (exact original edges, about equal width on
    the plotted axis; an axis within its cap is kept) and each block gets its most frequent regime,
    ties to the lower code, for the same reasons. Within both caps the input comes back unchanged.
    """
    log_x = is_log_spaced(x) if log[0] is None else log[0]
    log_y = is_log_spaced(y) if log[1] is None else log[1]
    ex, ey = cell_edges(x, log_x), cell_edges(y, log_y)
    cap_x, cap_y = (None, None) if max_cells is None else max_cells
    sx, sy = _cell_groups(ex, cap_x, log_x), _cell_groups(ey, cap_y, log_y)
    if sx is None and sy is None:
        return ex, ey, regime
    return _merged_edges(ex, sx), _merged_edges(ey, sy), _block_mode(regime, [sx, sy])


def reduce_log_errors(alpha: ArrayLike, steps: ArrayLike, z: np.ndarray, frozen: ArrayLike,
                      max_cells: tuple[int, int] | None = HEATMAP_MAX_CELLS,
                      log: bool | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Block-reduce log₁₀ errors ``z`` (shape (len(alpha), len(steps))) and the ``frozen`` mask to
    at most ``max_cells = (nα, nt)`` cells; return ``(alpha_edges, step_edges, z, frozen)``.

    Axes are grouped as in :func:`reduce_regimes`. A block shows the **maximum** of its log₁₀
    errors (log is monotone, so this is log₁₀ of the largest error): the worst run in a block stays
    visible — a slow or diverging α next to fast ones is not averaged away as a mean of logs
    (a geometric mean) would do, so the edge of convergence and the divergence boundary keep their
    place. In the same worst-case spirit a block counts as frozen (diverged) when any of its entries
    is. NaN propagates (drawn as "bad", like an unreduced NaN cell). Within both caps the input
    comes back unchanged.
    """
    alpha = np.asarray(alpha)
    log = is_log_spaced(alpha) if log is None else log
    ea, et = cell_edges(alpha, log), cell_edges(steps)
    cap_a, cap_t = (None, None) if max_cells is None else max_cells
    sa, st = _cell_groups(ea, cap_a, log), _cell_groups(et, cap_t)
    if sa is None and st is None:
        return ea, et, z, frozen
    z = np.ma.getdata(z)
    frozen = np.asarray(frozen, bool)
    for axis, s in enumerate((sa, st)):
        if s is not None:
            z = np.maximum.reduceat(z, s, axis=axis)
            frozen = np.logical_or.reduceat(frozen, s, axis=axis)
    return _merged_edges(ea, sa), _merged_edges(et, st), z, frozen


def _legend(ax, present, **kw):
    handles = [Patch(color=REGIME_INFO[Regime(r)].color, label=REGIME_INFO[Regime(r)].name)
               for r in sorted(set(int(x) for x in np.unique(present)))]
    ax.legend(handles=handles, **kw)


def _vlines(ax, boundaries: dict[str, float]):
    for label, a in boundaries.items():
        if np.isfinite(a):
            ax.axvline(a, **_BOUNDARY_STYLE)
            ax.annotate(label, (a, 0.03), xycoords=("data", "axes fraction"), xytext=(3, 0),
                        textcoords="offset points", fontsize=8, va="bottom", ha="left",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8, "lw": 0})


def regime_strip(alpha: ArrayLike, regime: ArrayLike, predicted: ArrayLike | None = None,
                 boundaries: dict[str, float] | None = None, title: str = "",
                 max_cells: int | None = STRIP_MAX_CELLS) -> Figure:
    """Regime per α (top: simulated; bottom: predicted), analytic boundaries dashed.

    More than ``max_cells`` runs are merged to that many cells first (:func:`reduce_regimes`;
    None: never), so the cost is O(pixels), not O(runs).
    """
    rows = [regime] if predicted is None else [regime, predicted]
    fig = Figure(figsize=(9, 2.4 + 0.6 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    log = is_log_spaced(alpha)
    edges = cell_edges(alpha, log)
    starts = _cell_groups(edges, max_cells, log)
    if starts is None:
        ax.pcolormesh(edges, np.arange(len(rows) + 1), np.stack(rows),
                      cmap=_CMAP, norm=_NORM, rasterized=True)
    else:
        ax.pcolormesh(_merged_edges(edges, starts), np.arange(len(rows) + 1),
                      np.stack([_block_mode(r, [starts]) for r in rows]),
                      cmap=_CMAP, norm=_NORM, rasterized=True)
    # Regimes that hold only a few grid cells (α = 0, the cycle at αλ = 2) would be invisible
    # slivers: mark each such cell with a triangle above the strip (one per merged cell: same
    # pixel).
    present = []
    for i, row in enumerate(rows):
        row = np.asarray(row)
        codes, counts = _code_counts(row)
        present.append(codes)
        for code, count in zip(codes, counts):
            if count <= max(1, row.size // 200):
                cells = np.flatnonzero(row == code)
                if starts is not None:
                    _, first = np.unique(np.searchsorted(starts, cells, side="right"),
                                         return_index=True)
                    cells = cells[first]
                ax.plot(np.asarray(alpha)[cells], np.full(cells.size, i + 0.85), "v", ms=9,
                        color=REGIME_INFO[Regime(int(code))].color, mec="black", mew=0.8)
    ax.set_yticks(np.arange(len(rows)) + 0.5, ["simulated", "theory"][: len(rows)])
    ax.set_xscale("log" if log else "linear")
    ax.set_xlabel("step size α")
    _vlines(ax, boundaries or {})
    _legend(ax, np.concatenate(present), loc="upper center",
            bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    ax.set_title(title or "Gradient-descent regime per step size", fontsize=10)
    return fig


def error_heatmap(alpha: ArrayLike, steps: ArrayLike, errors: ArrayLike, diverged_at: ArrayLike,
                  boundaries: dict[str, float] | None = None, title: str = "",
                  max_cells: tuple[int, int] | None = HEATMAP_MAX_CELLS) -> Figure:
    """log₁₀|w_t − w*| over α × t; steps after a run was frozen (diverged) are shown hatched.

    Beyond ``max_cells = (nα, nt)`` blocks are merged, each showing its largest log error
    (:func:`reduce_log_errors`; None: never).
    """
    errors = np.asarray(errors, np.float64)
    steps = np.asarray(steps)
    frozen = ((np.asarray(diverged_at)[:, None] >= 0)
              & (steps[None, :] >= np.asarray(diverged_at)[:, None]))
    with np.errstate(divide="ignore"):
        z = np.log10(np.maximum(errors, 1e-300))
    log = is_log_spaced(alpha)
    a_edges, t_edges, z, frozen = reduce_log_errors(alpha, steps, np.clip(z, -12, None), frozen,
                                                    max_cells, log)
    z = np.ma.masked_where(frozen, z)
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("#400000")
    mesh = ax.pcolormesh(a_edges, t_edges, z.T, cmap="viridis", rasterized=True)
    fig.colorbar(mesh, ax=ax, label="log₁₀ |w_t − w*|  (dark red: diverged, frozen)")
    ax.set_xscale("log" if log else "linear")
    ax.set_xlabel("step size α")
    ax.set_ylabel("step t")
    _vlines(ax, boundaries or {})
    ax.set_title(title or "Distance to the optimum over step size and time", fontsize=10)
    return fig


def trajectories(alphas: Sequence[float], steps: ArrayLike, w: ArrayLike, w_star: ArrayLike,
                 diverged_at: Sequence[int], title: str = "") -> Figure:
    """w_t (left, first steps) and |w_t − w*| on a log axis (right, whole horizon) per α."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    steps = np.asarray(steps)
    first = steps <= min(steps[-1], 20)
    lowest = np.inf
    styles = ("-", "--", ":", "-.")
    for i, (a, wt, ws, d) in enumerate(zip(alphas, np.asarray(w, np.float64), np.ravel(w_star),
                                           diverged_at)):
        live = steps < d if d >= 0 else np.ones_like(steps, bool)
        line, = left.plot(steps[first & live], wt[first & live], marker="o", ms=3,
                          label=f"α = {a:g}")
        err = np.abs(wt - ws)
        shown = live & (err > 0)  # an exact hit of w* has no logarithm; the line just ends
        lowest = min(lowest, err[shown].min(initial=np.inf))
        right.semilogy(steps[shown], err[shown], color=line.get_color(), ls=styles[i % 4],
                       lw=2.5 - 0.4 * (i % 4),
                       label=f"α = {a:g}" + (f" (diverged at t = {d})" if d >= 0 else ""))
    left.axhline(float(np.ravel(w_star)[0]), color="black", lw=1, ls=":", label="w*")
    ymax = 3 * abs(float(np.ravel(w_star)[0])) + 1
    left.set_ylim(-ymax, ymax)
    left.set_xlabel("step t")
    left.set_ylabel("w_t")
    left.legend(fontsize=8)
    left.set_title("Iterates (first steps)")
    if np.isfinite(lowest):
        right.set_ylim(bottom=lowest / 10)
    right.set_xlabel("step t")
    right.set_ylabel("|w_t − w*|")
    right.legend(fontsize=8)
    right.set_title("Distance to the optimum")
    fig.suptitle(title or "Gradient-descent trajectories")
    return fig


def phase_map(alpha: ArrayLike, other: ArrayLike, other_name: str, regime: ArrayLike,
              curves: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
              title: str = "", x_name: str = "step size α",
              max_cells: tuple[int, int] | None = MAP_MAX_CELLS) -> Figure:
    """Regime over α (or another x axis, ``x_name``) × another parameter, boundaries overlaid.

    ``curves`` maps a label to the α on the boundary for each value of ``other``. Beyond
    ``max_cells = (nx, ny)`` blocks are merged to their most frequent regime
    (:func:`reduce_regime_map`; None: never).
    """
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.add_subplot()
    log_a, log_o = is_log_spaced(alpha), is_log_spaced(other)
    a_edges, o_edges, cells = reduce_regime_map(alpha, other, regime, max_cells, (log_a, log_o))
    ax.pcolormesh(a_edges, o_edges, np.asarray(cells).T, cmap=_CMAP, norm=_NORM, rasterized=True)
    fine = (np.geomspace if log_o else np.linspace)(np.min(other), np.max(other), 400)
    for (label, fn), ls in zip((curves or {}).items(), ("--", ":", "-.", "-")):
        ax.plot(fn(fine), fine, color="black", lw=1.5, ls=ls, label=label)
    ax.set_xlim(a_edges[[0, -1]])
    ax.set_ylim(o_edges[[0, -1]])
    ax.set_xscale("log" if log_a else "linear")
    ax.set_yscale("log" if log_o else "linear")
    ax.set_xlabel(x_name)
    ax.set_ylabel(other_name)
    handles = [Patch(color=REGIME_INFO[Regime(r)].color, label=REGIME_INFO[Regime(r)].name)
               for r in sorted(set(int(x) for x in _code_counts(regime)[0]))]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8, loc="upper right", framealpha=0.9)
    ax.set_title(title or f"Regime over α × {other_name}", fontsize=10)
    return fig


def save(fig: Figure, directory: Path, stem: str) -> list[str]:
    """Write ``stem.png`` and ``stem.svg``; return the file names."""
    names = [f"{stem}.png", f"{stem}.svg"]
    fig.savefig(Path(directory) / names[0], dpi=130, metadata={"Software": None})
    fig.savefig(Path(directory) / names[1], metadata={"Date": None})
    return names


def bifurcation(alpha: ArrayLike, late: ArrayLike, regime: ArrayLike, lyapunov: ArrayLike,
                marks: dict[str, tuple[float, Callable[[np.ndarray], np.ndarray] | None]]
                | None = None, title: str = "",
                max_cells: int | None = STRIP_MAX_CELLS) -> Figure:
    """Late iterates vs α (top), the Lyapunov exponent vs α (bottom), regime strip between.

    The strip is reduced like :func:`regime_strip`'s (``max_cells``; None: never).
    """
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    top, strip, bottom = fig.subplots(3, 1, sharex=True, height_ratios=[5, 0.5, 3])
    alpha = np.asarray(alpha, np.float64)
    late = np.asarray(late, np.float64)
    top.plot(np.repeat(alpha, late.shape[1]), late.ravel(), ",", color="black", alpha=0.5,
             rasterized=True)
    top.set_ylabel("late iterates w_t")
    top.set_title(title or "Bifurcation diagram of gradient descent")
    edges, cells = reduce_regimes(alpha, np.asarray(regime)[None, :], max_cells, log=False)
    strip.pcolormesh(edges, [0, 1], cells, cmap=_CMAP, norm=_NORM, rasterized=True)
    strip.set_yticks([])
    bottom.plot(alpha, lyapunov, lw=1, color="#6a3d9a", label="Lyapunov exponent (simulated)")
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
    bottom.set_ylim(max(-4.0, np.min(lyapunov) - 0.2), max(1.0, np.max(lyapunov) + 0.2))
    bottom.set_xlabel("step size α")
    bottom.set_ylabel("λ_L (per step)")
    bottom.legend(fontsize=8, loc="lower left")
    _legend(top, regime, fontsize=8, loc="upper left")
    return fig
