"""Trainability maps: runs judged by their loss, summarised and drawn as Sohl-Dickstein (2024) does.

A run is *trained* when its regime is ``converged``: the mean loss ratio of the last 20 steps is
below 1, the notebook's criterion, so exactly where its score is negative (it says the loss fell,
not that it reached a minimum); above 1 it is ``diverged`` (:func:`gdlab.regimes.judge_by_loss`).
The boundary of the trained region on a 2-D map is measured by box counting (:mod:`gdlab.fractal`).
The score image uses the notebook's colouring: scores ranked separately below and above zero onto
[−1, −¼] and [¼, 1] (equal numbers of pixels per colour), sign flipped, shown with the ``Spectral``
colour map — blue trained, red not; the deepest colours (slowest training, latest blow-up) lie at
the boundary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from gdlab import engine, fractal, plots
from gdlab.errors import ArgumentError
from gdlab.regimes import Regime

__all__ = ["summary", "trained", "score_colours", "score_image", "boundary_dimension"]


def trained(regime: ArrayLike) -> np.ndarray:
    """Whether each run trained (regime ``converged``)."""
    return np.asarray(regime) == Regime.CONVERGED


def boundary_dimension(regime: np.ndarray) -> dict[str, Any]:
    """The box-counting dimension of the trained/untrained boundary of a 2-D map, or why none."""
    try:
        return fractal.dimension(trained(regime).astype(np.int8)).as_dict()
    except ArgumentError as e:
        return {"dimension": None, "why": e.detail}


def summary(res: Any) -> dict[str, Any]:
    """What summary.json reports for runs judged by their loss (``res``: a SweepResult)."""
    ok = trained(res.regime)
    out: dict[str, Any] = {
        "judged_by": "the loss ratio L_t/L_0 (no known optimum)",
        "rules": {"converged": f"mean of the last {engine.SCORE_WINDOW} ratios (clipped at "
                               f"{engine.SCORE_CLIP:g}) below 1: the loss ends below its start",
                  "diverged": "that mean above 1 (the loss ends above its start), or L_t/L_0 > "
                              f"{engine.loss_blowup(res.dtype):.3g} or not finite (run frozen)",
                  "undecided": "that mean exactly 1: the loss never changed",
                  "steps_to_tol": f"first step with L_t/L_0 < tol = {res.tol:g}",
                  "score": "−Σ ratios (clipped at 1e6) if the mean of the last 20 is below 1, "
                           "else Σ 1/ratio (Sohl-Dickstein 2024)"},
        "trained_fraction": float(ok.mean()),
    }
    if res.score is not None:
        out["score_range"] = [float(res.score.min()), float(res.score.max())]
        out["score_sign_agrees_with_regime"] = float(((res.score < 0) == ok).mean())
    if res.regime.ndim == 2:
        out["boundary_dimension"] = boundary_dimension(res.regime)
    return out


def score_colours(score: ArrayLike, buffer: float = 0.25) -> np.ndarray:
    """The notebook's colour values in [−1, 1]: ranks of the negative scores spread over
    [−1, −buffer], of the others over [buffer, 1], then negated (trained runs positive)."""
    score = np.asarray(score, np.float64)
    flat = np.sort(score.ravel())
    neg = int(np.sum(flat < 0))
    levels = np.concatenate([np.linspace(-1, -buffer, neg),
                             np.linspace(buffer, 1, flat.size - neg)])
    return -np.interp(score, flat, levels)


def score_image(x: ArrayLike, y: ArrayLike, score: ArrayLike, *, x_name: str, y_name: str,
                title: str = "") -> Figure:
    """The score over a 2-D grid (``score[i, j]`` at x[i], y[j]) in the notebook's colouring, on
    log axes where the grid is log-spaced."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.add_subplot()
    log_x, log_y = plots.is_log_spaced(x), plots.is_log_spaced(y)
    mesh = ax.pcolormesh(plots.cell_edges(x, log_x), plots.cell_edges(y, log_y),
                         score_colours(score).T, cmap="Spectral", vmin=-1, vmax=1, rasterized=True)
    for axis, log in (("x", log_x), ("y", log_y)):
        if log:
            getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    bar = fig.colorbar(mesh, ax=ax, ticks=[-1, -0.25, 0.25, 1])
    # −Σρ is most negative for the slowest training, Σ1/ρ largest for the latest blow-up: both
    # ends of the colour scale lie at the boundary
    bar.ax.set_yticklabels(["not trained:\nblew up late", "blew up early", "trained fast",
                            "trained:\nslowly"])
    ax.set_title(title or "Trainability score", fontsize=10)
    return fig
