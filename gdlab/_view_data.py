"""What ``gdlab view`` shows, computed without Bokeh: the map of a run, windows re-simulated at
screen resolution, and one run's trajectory.

A window [x₀, x₁] × [y₀, y₁] is simulated on n points per axis, ``linspace`` (``geomspace`` on a
log-spaced axis) from edge to edge, through :func:`gdlab.sweep` with the run's own problem,
optimizer, hyperparameters, w₀, horizon and tolerance, ``keep="compact"``. A float32 run switches
to float64 when an axis's window is narrower than float32 resolves on it: relative width
(x₁ − x₀)/max(|x₀|, |x₁|) < ``FLOAT64_BELOW`` = 10⁵·ε₃₂ ≈ 1.2·10⁻², i.e. when neighbouring points
of a 200-point window would be fewer than ~500 float32 units apart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab._cells import cell_edges, is_log_spaced
from gdlab.errors import ArgumentError
from gdlab.regimes import REGIME_INFO, Regime

__all__ = ["MapSpec", "Window", "spec_from_run", "simulate_window", "initial_window",
           "cells", "trajectory", "window_dtype", "FLOAT64_BELOW"]

FLOAT64_BELOW = 1e5 * float(np.finfo(np.float32).eps)
_NAMES = [REGIME_INFO[r].name for r in Regime]
COLORS = [REGIME_INFO[r].color for r in Regime]


@dataclass(frozen=True)
class MapSpec:
    """A run's map: its config and axes (α first; ``y_name`` None for a 1-D sweep)."""

    cfg: Any
    x: np.ndarray
    y_name: str | None
    y: np.ndarray | None
    log_x: bool
    log_y: bool
    by_loss: bool                 # judged by the loss ratio (networks): scores, loss curves
    edges: dict[str, float]       # 1-D: closed-form edges in α (summary.json)


@dataclass(frozen=True)
class Window:
    """A simulated window: axis values, per-run fields on (nx, ny), and what it cost."""

    x: np.ndarray
    y: np.ndarray | None
    fields: dict[str, np.ndarray]
    runs: int
    seconds: float
    dtype: str


def spec_from_run(ds: Any) -> MapSpec:
    """The map of a run directory loaded by :func:`gdlab.load` (a 1-D or 2-D α sweep)."""
    from gdlab import config as config_lib
    summary = json.loads(ds.attrs["summary_json"])
    axes = list(ds["regime"].dims)
    if axes[0] != "alpha" or len(axes) > 2:
        raise ArgumentError("run_dir", f"a map over {' × '.join(axes)}: gdlab view shows maps "
                                       "over α or α × one other axis", prefix=False)
    cfg = config_lib.from_table(summary["config"], str(summary["config_path"]))
    y_name = axes[1] if len(axes) == 2 else None
    x = np.asarray(ds["alpha"].values, np.float64)
    y = np.asarray(ds[y_name].values, np.float64) if y_name else None
    return MapSpec(cfg, x, y_name, y, is_log_spaced(x), y is not None and is_log_spaced(y),
                   "score" in ds, dict(summary.get("closed_form_edges") or {}))


def initial_window(ds: Any, spec: MapSpec) -> Window:
    """The run's own results as a window (nothing simulated)."""
    keep = ("regime", "steps_to_tol", "rate", "contraction", "score")
    fields = {k: np.asarray(ds[k].values).reshape(spec.x.size, -1) for k in keep if k in ds}
    return Window(spec.x, spec.y, fields, int(ds["regime"].size), 0.0, str(ds.attrs["dtype"]))


def window_dtype(base: str, *windows: tuple[float, float]) -> str:
    """``base``, or float64 for a float32 run when a window is narrower than float32 resolves."""
    if base != "float32":
        return base
    for lo, hi in windows:
        scale = max(abs(lo), abs(hi))
        if scale > 0 and abs(hi - lo) < FLOAT64_BELOW * scale:
            return "float64"
    return base


def _axis(lo: float, hi: float, n: int, log: bool) -> np.ndarray:
    if log:
        if lo <= 0 or hi <= 0:
            raise ArgumentError("window", f"[{lo:g}, {hi:g}] on a log axis must be > 0")
        return np.geomspace(lo, hi, n)
    return np.linspace(lo, hi, n)


def _common(cfg: Any) -> dict:
    """The main sweep's arguments (``_study_plan.sweep_options``), loaded on the first window: the
    viewer starts before JAX does."""
    from gdlab._study_plan import sweep_options
    return sweep_options(cfg)


def simulate_window(spec: MapSpec, x_window: tuple[float, float],
                    y_window: tuple[float, float] | None, n: tuple[int, int]) -> Window:
    """Simulate ``n = (nx, ny)`` points on the window (``y_window`` None for a 1-D map)."""
    import gdlab
    x = _axis(*x_window, n[0], spec.log_x)
    y = _axis(*y_window, n[1], spec.log_y) if spec.y_name else None
    windows = [x_window] + ([y_window] if spec.y_name else [])
    options = {**_common(spec.cfg), "dtype": window_dtype(spec.cfg.dtype, *windows)}
    t0 = time.perf_counter()
    res = gdlab.sweep(spec.cfg.problem_value, x, over={spec.y_name: y} if spec.y_name else None,
                      keep="compact", progress=False, **options)
    fields = {"regime": res.regime, "steps_to_tol": res.steps_to_tol}
    if res.score is not None:
        fields["score"] = res.score
    fields = {k: np.asarray(v).reshape(x.size, -1) for k, v in fields.items()}
    return Window(x, y, fields, int(res.regime.size), time.perf_counter() - t0, options["dtype"])


def _text(values: np.ndarray | None, fmt: str, size: int) -> list[str]:
    if values is None:
        return ["—"] * size
    return [fmt.format(v) for v in np.ravel(values)]


def cells(w: Window, log: tuple[bool, bool]) -> dict[str, list]:
    """The window as one rectangle per run (α-major order, k = i·ny + j): edges, colour, and the
    hover texts (α, the second axis, regime, steps to tol, rate, contraction, score)."""
    xe = cell_edges(w.x, log[0])
    ye = cell_edges(w.y, log[1]) if w.y is not None else np.array([0.0, 1.0])
    ny = ye.size - 1
    ii, jj = np.meshgrid(np.arange(w.x.size), np.arange(ny), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    code = np.asarray(w.fields["regime"]).ravel().astype(int)
    size = code.size
    get = w.fields.get
    steps = np.asarray(w.fields["steps_to_tol"]).ravel()
    return {
        "left": xe[ii].tolist(), "right": xe[ii + 1].tolist(),
        "bottom": ye[jj].tolist(), "top": ye[jj + 1].tolist(),
        "alpha": w.x[ii].tolist(),
        "y": (w.y[jj] if w.y is not None else np.full(size, np.nan)).tolist(),
        "code": code.tolist(),
        "regime": [_NAMES[c] for c in code],
        "color": [COLORS[c] for c in code],
        "steps": [str(int(s)) if s >= 0 else "never" for s in steps],
        "rate": _text(get("rate"), "{:.6g}", size),
        "contraction": _text(get("contraction"), "{:.6g}", size),
        "score": _text(get("score"), "{:.6g}", size),
    }


def trajectory(spec: MapSpec, alpha: float, y: float | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(t, value, what) of the run at (α, y), simulated again with every step recorded: the error
    ‖w_t − w*‖, or for a run judged by its loss the loss ratio L_t/L_0."""
    import jax
    import jax.numpy as jnp

    import gdlab
    from gdlab._sweep_checks import precision, problem_fields
    over = {spec.y_name: [y]} if spec.y_name else None
    res = gdlab.sweep(spec.cfg.problem_value, [alpha], over=over, record_every=1,
                      progress=False, **_common(spec.cfg))
    w = np.asarray(res.trajectory).reshape(res.snapshot_steps.size, -1)
    if res.w_star is not None:
        err = np.linalg.norm(w - np.asarray(res.w_star).reshape(1, -1), axis=1)
        return res.snapshot_steps, err, "‖w_t − w*‖"
    problem = spec.cfg.problem_value
    if spec.y_name and spec.y_name in problem_fields(problem)[0]:   # a problem key, swept
        problem = problem._replace(**{spec.y_name: y})
    with precision(res.dtype):                 # the loss in the run's own dtype
        loss = np.asarray(jax.vmap(problem.loss)(jnp.asarray(w, res.dtype)), np.float64)
    return res.snapshot_steps, loss / loss[0], "L_t / L_0"
