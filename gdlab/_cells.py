"""A sweep reduced to a figure's resolution: cell edges, and consecutive runs merged into at most
as many cells as the figure can show (:func:`reduce_regimes`, :func:`reduce_regime_map`,
:func:`reduce_log_errors`). Merged cells keep exact edges — each is the union of original cells, so
its edges are original edges — and inputs within the caps are returned as given."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["cell_edges", "is_log_spaced", "reduce_regimes", "reduce_regime_map",
           "reduce_log_errors", "STRIP_MAX_CELLS", "MAP_MAX_CELLS", "HEATMAP_MAX_CELLS",
           "HEATMAP_MIN_ALPHA", "cell_groups", "merged_edges", "code_counts", "block_mode"]


# Most cells drawn along an axis. The figures are 8–11 in wide and saved at 130 dpi (≈ 1000–1400
# pixel columns, fewer inside the axes), so these caps stay at or above the pixel resolution:
# merging beyond them is invisible, drawing beyond them only costs time and memory. 4096 along α
# also keeps every bundled config (≤ 3001 α) below the cap, so its plots are drawn unreduced,
# exactly as before.
STRIP_MAX_CELLS = 4096
MAP_MAX_CELLS = (1000, 1000)        # (x, y) of a phase map: 8 × 6 in at 130 dpi is 1040 × 780 px
HEATMAP_MAX_CELLS = (4096, 1024)    # (α, t) of an error heatmap
# Fewest α an error heatmap is drawn for: a handful of columns is not a map (each would be a
# wide band whose neighbours' colours say nothing about the α between them). ``gdlab run`` shows
# α lists of up to 12 values step by step instead (trajectories.png), so 13 leaves no gap.
HEATMAP_MIN_ALPHA = 13


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


def cell_groups(edges: np.ndarray, max_cells, log: bool = False) -> np.ndarray | None:
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


def merged_edges(edges: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
    return edges if starts is None else edges[np.append(starts, edges.size - 1)]


def code_counts(values) -> tuple[np.ndarray, np.ndarray]:
    """The regime codes present (ascending) and how often: one O(n) pass, no sort."""
    v = np.ravel(values)
    if v.size and v.dtype.kind in "iu" and v.min() >= 0 and v.max() < 4096:
        counts = np.bincount(v)
        codes = np.flatnonzero(counts)
        return codes, counts[codes]
    return np.unique(v, return_counts=True)


def block_mode(values, starts) -> np.ndarray:
    """Most frequent code per block, ties to the lower code; ``starts[axis]`` None: axis kept."""
    values = np.asarray(values)
    best = best_count = None
    for code in code_counts(values)[0]:           # ascending: a later code must beat, not tie
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
    ``log``; None: detected as the plots do), see :func:`cell_groups`. Each merged cell is the
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
    starts = cell_groups(edges, max_cells, log)
    if starts is None:
        return edges, regime
    regime = np.asarray(regime)
    return merged_edges(edges, starts), block_mode(regime, [None] * (regime.ndim - 1) + [starts])


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
    sx, sy = cell_groups(ex, cap_x, log_x), cell_groups(ey, cap_y, log_y)
    if sx is None and sy is None:
        return ex, ey, regime
    return merged_edges(ex, sx), merged_edges(ey, sy), block_mode(regime, [sx, sy])


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
    sa, st = cell_groups(ea, cap_a, log), cell_groups(et, cap_t)
    if sa is None and st is None:
        return ea, et, z, frozen
    z = np.ma.getdata(z)
    frozen = np.asarray(frozen, bool)
    for axis, s in enumerate((sa, st)):
        if s is not None:
            z = np.maximum.reduceat(z, s, axis=axis)
            frozen = np.logical_or.reduceat(frozen, s, axis=axis)
    return merged_edges(ea, sa), merged_edges(et, st), z, frozen
