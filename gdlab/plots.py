"""Phase plots: regime strips and maps, error heatmaps and trajectories.

Object-oriented matplotlib (``Figure``, no pyplot state), so library use never opens a window.
Cells are drawn with ``pcolormesh`` on explicit edges (correct on log axes, unlike ``imshow``),
regimes with a ``ListedColormap`` + ``BoundaryNorm`` and a legend of patches from the shared regime
table, analytic boundaries as overlaid lines. Meshes are rasterized so SVGs stay small; SVG/PDF
output carries no date and a fixed hash salt, so it is byte-reproducible.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from gdlab.regimes import REGIME_INFO, Regime

__all__ = ["cell_edges", "regime_strip", "error_heatmap", "trajectories", "phase_map", "save"]

matplotlib.rcParams["svg.hashsalt"] = "gdlab"
_CMAP = ListedColormap([REGIME_INFO[r].color for r in Regime])
_NORM = BoundaryNorm(np.arange(len(Regime) + 1) - 0.5, len(Regime))
_BOUNDARY_STYLE = {"color": "black", "lw": 1.2, "ls": "--"}


def cell_edges(centers: np.ndarray, log: bool = False) -> np.ndarray:
    """Edges of cells around sorted centers: midpoints (geometric midpoints on a log axis)."""
    c = np.asarray(centers, np.float64)
    if c.size == 1:
        return np.array([c[0] / 1.1, c[0] * 1.1]) if log else np.array([c[0] - 0.5, c[0] + 0.5])
    if log:
        return np.exp(cell_edges(np.log(c)))
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _is_log(values) -> bool:
    v = np.asarray(values, np.float64)
    if v.size < 3 or np.any(v <= 0):
        return False
    ratios = v[1:] / v[:-1]
    return bool(np.ptp(ratios) < 1e-6 * ratios.mean() and np.ptp(np.diff(v)) > 1e-6 * np.abs(v).max())


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


def regime_strip(alpha, regime, predicted=None, boundaries=None, title="") -> Figure:
    """Regime per α (top: simulated; bottom: predicted), analytic boundaries dashed."""
    rows = [regime] if predicted is None else [regime, predicted]
    fig = Figure(figsize=(9, 2.4 + 0.6 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    log = _is_log(alpha)
    ax.pcolormesh(cell_edges(alpha, log), np.arange(len(rows) + 1), np.stack(rows),
                  cmap=_CMAP, norm=_NORM, rasterized=True)
    # Regimes that hold only a few grid cells (α = 0, the cycle at αλ = 2) would be invisible slivers:
    # mark each such cell with a triangle above the strip.
    for i, row in enumerate(rows):
        row = np.asarray(row)
        for code in np.unique(row):
            cells = np.flatnonzero(row == code)
            if cells.size <= max(1, row.size // 200):
                ax.plot(np.asarray(alpha)[cells], np.full(cells.size, i + 0.85), "v", ms=9,
                        color=REGIME_INFO[Regime(int(code))].color, mec="black", mew=0.8)
    ax.set_yticks(np.arange(len(rows)) + 0.5, ["simulated", "theory"][: len(rows)])
    ax.set_xscale("log" if log else "linear")
    ax.set_xlabel("step size α")
    _vlines(ax, boundaries or {})
    _legend(ax, np.concatenate([np.ravel(r) for r in rows]), loc="upper center",
            bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    ax.set_title(title or "Gradient-descent regime per step size", fontsize=10)
    return fig


def error_heatmap(alpha, steps, errors, diverged_at, boundaries=None, title="") -> Figure:
    """log₁₀|w_t − w*| over α × t; steps after a run was frozen (diverged) are shown hatched."""
    errors = np.asarray(errors, np.float64)
    steps = np.asarray(steps)
    frozen = (np.asarray(diverged_at)[:, None] >= 0) & (steps[None, :] >= np.asarray(diverged_at)[:, None])
    with np.errstate(divide="ignore"):
        z = np.log10(np.maximum(errors, 1e-300))
    z = np.ma.masked_where(frozen, np.clip(z, -12, None))
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("#400000")
    log = _is_log(alpha)
    mesh = ax.pcolormesh(cell_edges(alpha, log), cell_edges(steps), z.T, cmap="viridis",
                         rasterized=True)
    fig.colorbar(mesh, ax=ax, label="log₁₀ |w_t − w*|  (dark red: diverged, frozen)")
    ax.set_xscale("log" if log else "linear")
    ax.set_xlabel("step size α")
    ax.set_ylabel("step t")
    _vlines(ax, boundaries or {})
    ax.set_title(title or "Distance to the optimum over step size and time", fontsize=10)
    return fig


def trajectories(alphas, steps, w, w_star, diverged_at, title="") -> Figure:
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


def phase_map(alpha, other, other_name, regime, curves=None, title="",
              x_name="step size α") -> Figure:
    """Regime over α (or another x axis, ``x_name``) × another parameter, boundaries overlaid.

    ``curves`` maps a label to the α on the boundary for each value of ``other``.
    """
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.add_subplot()
    log_a, log_o = _is_log(alpha), _is_log(other)
    ax.pcolormesh(cell_edges(alpha, log_a), cell_edges(other, log_o), np.asarray(regime).T,
                  cmap=_CMAP, norm=_NORM, rasterized=True)
    fine = (np.geomspace if log_o else np.linspace)(np.min(other), np.max(other), 400)
    for (label, fn), ls in zip((curves or {}).items(), ("--", ":", "-.", "-")):
        ax.plot(fn(fine), fine, color="black", lw=1.5, ls=ls, label=label)
    ax.set_xlim(cell_edges(alpha, log_a)[[0, -1]])
    ax.set_ylim(cell_edges(other, log_o)[[0, -1]])
    ax.set_xscale("log" if log_a else "linear")
    ax.set_yscale("log" if log_o else "linear")
    ax.set_xlabel(x_name)
    ax.set_ylabel(other_name)
    handles = [Patch(color=REGIME_INFO[Regime(r)].color, label=REGIME_INFO[Regime(r)].name)
               for r in sorted(set(int(x) for x in np.unique(regime)))]
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


def bifurcation(alpha, late, regime, lyapunov, marks=None, title="") -> Figure:
    """Late iterates vs α (top), the Lyapunov exponent vs α (bottom), regime strip between."""
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    top, strip, bottom = fig.subplots(3, 1, sharex=True, height_ratios=[5, 0.5, 3])
    alpha = np.asarray(alpha, np.float64)
    late = np.asarray(late, np.float64)
    top.plot(np.repeat(alpha, late.shape[1]), late.ravel(), ",", color="black", alpha=0.5,
             rasterized=True)
    top.set_ylabel("late iterates w_t")
    top.set_title(title or "Bifurcation diagram of gradient descent")
    strip.pcolormesh(cell_edges(alpha), [0, 1], np.asarray(regime)[None, :], cmap=_CMAP,
                     norm=_NORM, rasterized=True)
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
