"""Zoom series: a 2-D map repeated on windows shrinking around a chosen point, as in
Sohl-Dickstein's (2024) videos of the trainability boundary.

Frame k covers, on each axis, the window centred on ``center`` with half-width h₀·factor^k, where
h₀ is the first window's (the sweep's own range); on a log-spaced axis the window is taken in
log₁₀. Every frame has the same number of points per axis, so every frame is a run of the same
compiled program. Each frame's box-counting dimension of the trained/untrained boundary
(:mod:`gdlab.fractal`) is measured where the frame holds enough boundary; the series reports their
median and range.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from gdlab import plots, trainability
from gdlab._sweep import sweep
from gdlab.errors import ArgumentError

__all__ = ["ZoomSeries", "windows", "series", "frames_figure"]


class ZoomSeries(NamedTuple):
    """The frames of a zoom series (frame index first in every array)."""

    x_name: str
    y_name: str
    x: np.ndarray            # (frames, nx): the first axis's values in each frame
    y: np.ndarray            # (frames, ny)
    regime: np.ndarray       # (frames, nx, ny) int8
    score: np.ndarray | None  # (frames, nx, ny) float64, for runs judged by their loss
    dimensions: list[dict]   # per frame: FractalDimension.as_dict(), or {"dimension": None, "why"}

    def summary(self) -> dict[str, Any]:
        d = [f["dimension"] for f in self.dimensions if f["dimension"] is not None]
        return {"frames": len(self.dimensions),
                "windows": [{self.x_name: [float(x[0]), float(x[-1])],
                             self.y_name: [float(y[0]), float(y[-1])]}
                            for x, y in zip(self.x, self.y)],
                "dimensions": [f["dimension"] for f in self.dimensions],
                "stderr": [f.get("stderr") for f in self.dimensions],
                "fit_sizes": [f.get("fit_sizes") for f in self.dimensions],
                "why_missing": [f.get("why") for f in self.dimensions],
                "median": float(np.median(d)) if d else None,
                "range": [float(min(d)), float(max(d))] if d else None}


def windows(values: np.ndarray, center: float, frames: int, factor: float) -> np.ndarray:
    """(frames, n) axis values: ``values``'s spacing (linear or log) on windows shrinking by
    ``factor`` per frame around ``center``."""
    values = np.asarray(values, np.float64)
    log = plots.is_log_spaced(values)
    if log and center <= 0:
        raise ArgumentError("zoom.center", f"{center!r} must be > 0 on a log-spaced axis")
    f = np.log10 if log else (lambda v: v)
    lo, hi, c = f(values[0]), f(values[-1]), f(center)
    if not min(lo, hi) <= c <= max(lo, hi):
        raise ArgumentError("zoom.center", f"{center!r} lies outside the map "
                                           f"[{values[0]:g}, {values[-1]:g}]")
    half = 0.5 * (hi - lo)
    k = np.arange(frames)[:, None]
    grid = c + half * factor ** k * np.linspace(-1, 1, values.size)[None, :]
    return 10.0 ** grid if log else grid


def series(problem: Any, alphas: np.ndarray, other: str, other_values: np.ndarray,
           center: tuple[float, float], *, frames: int, factor: float,
           **options: Any) -> ZoomSeries:
    """``frames`` maps of α × ``other`` on windows shrinking by ``factor`` around ``center``
    (``options``: :func:`gdlab.sweep`'s, e.g. steps, dtype; each frame keeps only regimes and
    scores)."""
    if not (isinstance(frames, int) and 1 <= frames <= 64):
        raise ArgumentError("zoom.frames", f"{frames!r} must be an integer in [1, 64]")
    if not 0 < factor < 1:
        raise ArgumentError("zoom.factor", f"{factor!r} must be in (0, 1): each frame shrinks")
    xs = windows(alphas, center[0], frames, factor)
    ys = windows(other_values, center[1], frames, factor)
    regimes, scores, dims = [], [], []
    for x, y in zip(xs, ys):
        res = sweep(problem, x, over={other: y}, keep="compact", **options)
        regimes.append(res.regime)
        scores.append(res.score)
        dims.append(trainability.boundary_dimension(res.regime))
    score = None if scores[0] is None else np.stack(scores)
    return ZoomSeries("alpha", other, xs, ys, np.stack(regimes), score, dims)


def frames_figure(zs: ZoomSeries, title: str = "") -> Figure:
    """Every frame's regime map side by side, each titled with its window and dimension, drawn as
    the phase map is (:func:`gdlab.plots.draw_regime_map`: the axes' symbols, the regime colours,
    one legend below)."""
    n = len(zs.regime)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows + 0.7), layout="constrained")
    codes = []
    for k in range(n):
        ax = fig.add_subplot(rows, cols, k + 1)
        codes.append(plots.draw_regime_map(ax, zs.x[k], zs.y[k], zs.regime[k], x_name=zs.x_name,
                                           y_name=zs.y_name))
        # ticks at the window's first and last values only: small panels, and the window is
        # what changes from frame to frame
        for axis, values in ((ax.xaxis, zs.x[k]), (ax.yaxis, zs.y[k])):
            axis.set_ticks(values[[0, -1]], [f"{v:.4g}" for v in values[[0, -1]]], fontsize=7)
            axis.set_minor_locator(NullLocator())
            axis.label.set_fontsize(8)
        d = zs.dimensions[k]["dimension"]
        ax.set_title(f"frame {k}: D = {d:.2f}" if d is not None else f"frame {k}: D n/a",
                     fontsize=9)
    fig.legend(handles=plots.regime_handles(np.concatenate(codes)), loc="outside lower center",
               ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title or "Zoom series: the regime map on shrinking windows", fontsize=10)
    return fig
