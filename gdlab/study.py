"""A sweep study end to end: config → sweep → theory → report, results file and plots.

This is what ``gdlab run CONFIG`` does for a ``[sweep]`` config; every piece it uses is public API.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import numpy as np

import gdlab
from gdlab import (
    _study_plots,
    boundary,
    eos_study,
    grids,
    plots,
    quadratics,
    report,
    resources,
    rundir,
    stability,
    theory,
    trainability,
    zoom,
)
from gdlab._study_log import closing_lines, comparison_lines, emit, sweep_lines, zoom_lines
from gdlab._study_plots import HeatmapSample, heatmap_every, heatmap_sample
from gdlab._sweep import SweepResult, finish_sweep, simulate_shard
from gdlab.config import ConfigError, SweepConfig
from gdlab.engine import Simulation, snapshot_count
from gdlab.interfaces import Linear, WithOptimum, studied_as_map
from gdlab.orbit_study import run_orbit_study
from gdlab.progress import Progress
from gdlab.regimes import REGIME_NAMES, Regime, growth_band, late_window
from gdlab.shards import write_shard

__all__ = ["run_sweep_study", "environment", "sweep_options"]

_TRAJECTORY_LIST_MAX = 12       # an explicit α list this short is shown step by step
_TRAJECTORY_POINTS = 100_000    # iterates kept per trajectory (every k-th step beyond this)


class _Plan(NamedTuple):
    """What the sweep records and keeps, decided before any work."""

    short_list: bool           # an explicit α list short enough to show step by step
    record_every: int | None   # snapshot interval of the main sweep; None: no snapshots
    traj_every: int            # snapshot interval of the trajectory sweep (beyond its first
                               # table_steps steps, always recorded: _with_first_steps)
    keep: str                  # "all", or "compact" (regime and steps) where "all" would not fit
    heatmap_sample: np.ndarray | None  # grid indices swept again with snapshots for the heatmap,
                                       # where the main sweep's would pass HEATMAP_MAX_VALUES


class _Theory(NamedTuple):
    """The closed forms the sweep is compared with; None (or empty) where they do not apply."""

    linear: bool                      # a linear optimizer, every statistic kept
    pred: theory.Prediction | None
    agree: theory.Agreement | None
    closed: dict | None               # theory.closed_form: converges, oscillates, rate
    const_lam: float | None           # λ_max when every run shares it
    edges: dict[str, float]           # closed-form α of the regime edges (1-D, see _edges)


def environment() -> dict:
    """Versions and device, for summary.json."""
    import jaxlib
    import matplotlib
    import optax
    devices = jax.devices()
    return {
        "versions": {"gdlab": gdlab.__version__, "jax": jax.__version__,
                     "jaxlib": jaxlib.__version__, "numpy": np.__version__,
                     "optax": optax.__version__, "matplotlib": matplotlib.__version__,
                     "python": platform.python_version()},
        "device": {"backend": jax.default_backend(), "count": len(devices),
                   "kind": devices[0].device_kind, "platform": platform.platform()},
    }


def run_sweep_study(cfg: SweepConfig, out: Path, *, overwrite: bool = False,
                    progress: bool | None = None, log: Callable[[str], None] = print,
                    simulation: Simulation | None = None) -> dict:
    """Run ``cfg``, write ``out`` (results.npz, summary.json, plots) atomically; return the summary.

    With ``cfg.shard`` only that slice is simulated and written raw (see ``gdlab.shards``);
    ``simulation`` (merged shards) replaces simulating the main sweep. ``log`` receives each
    stage's lines as the stage finishes, and the closing lines once ``out`` is in place.
    """
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    problem = cfg.problem_value
    if cfg.track is not None:   # [track]: the loss and the sharpness along training
        return eos_study.run_track_study(cfg, out, overwrite=overwrite, progress=progress,
                                         log=log, environment=environment())
    if cfg.shard is not None and not studied_as_map(problem):
        raise ConfigError(f"{cfg.path}: sweep.shard: sharding is supported for quadratic and "
                         "loss-judged sweeps, not for orbit studies of non-quadratic losses")
    if not studied_as_map(problem):  # a non-quadratic loss with an optimum: study the orbits
        return run_orbit_study(cfg, out, overwrite=overwrite, progress=progress, log=log,
                               environment=environment())
    if len(cfg.axes) == 1 and cfg.shard is None:   # refuse an edge search that cannot end
        _check_edge_search(cfg)
    plan = _plan(cfg, log)
    if cfg.shard is not None:    # a shard keeps every statistic, raw
        sim = simulate_shard(problem, cfg.axes["alpha"], shard=cfg.shard,
                             **_options(cfg, plan, progress))
        return write_shard(cfg, out, sim, overwrite=overwrite, environment=environment(), log=log)
    res, traj = _simulate(cfg, plan, progress, simulation)
    heat = _heatmap_runs(cfg, plan, res)
    emit(log, sweep_lines(cfg, res, traj))      # each stage's lines as it finishes
    th = _theory(cfg, res, plan.keep)
    changes = _grid_changes(res) if len(res.axes) == 1 else None
    found = _bisect(cfg, res, changes, progress)
    summary = _summary(cfg, res, plan.keep, th, found, changes, heat)
    emit(log, comparison_lines(cfg, summary))
    zs = _zoom(cfg, progress) if cfg.zoom is not None else None
    if zs is not None:
        summary["zoom"] = zs.summary()
        emit(log, zoom_lines(summary))
    _write(out, overwrite, cfg, res, th, traj, heat, summary, zs, t_start=t_start, log=log)
    return summary


def _plan(cfg: SweepConfig, log: Callable[[str], None]) -> _Plan:
    """Snapshots for the heatmap or the trajectories, and keep = "all" when every statistic fits
    in the memory limit (a shard's always does), else "compact" with no snapshots.

    A 1-D sweep records its heatmap's iterates while n_α × snapshots ≤ HEATMAP_MAX_VALUES; beyond
    that its heatmap is drawn from ``_study_plots.heatmap_sample``'s α, swept again."""
    n_alpha, one_d = cfg.axis_sizes["alpha"], len(cfg.axes) == 1
    short_list = one_d and n_alpha <= _TRAJECTORY_LIST_MAX and not cfg.trajectories
    traj_every = max(1, math.ceil(cfg.steps / _TRAJECTORY_POINTS))
    record_every, sample = None, None
    if short_list:
        record_every = traj_every
    elif one_d:
        every = heatmap_every(cfg.steps)
        if n_alpha * snapshot_count(cfg.steps, every) <= _study_plots.HEATMAP_MAX_VALUES:
            record_every = every
        else:
            sample = heatmap_sample(n_alpha)
    if cfg.shard is not None:
        return _Plan(short_list, record_every, traj_every, "all", sample)
    n = cfg.runs
    common = dict(keep="all", param_size=int(np.prod(cfg.problem_value.param_shape,
                                                     dtype=np.int64)),
                  itemsize=np.dtype(cfg.dtype).itemsize)
    snaps = snapshot_count(cfg.steps, record_every) if record_every else 0
    full = resources.sweep_bytes(n, snapshots=snaps, **common)
    if sample is not None:   # its runs and iterates, held beside the main sweep's results
        full += (resources.sweep_bytes(sample.size, **common,
                                       snapshots=snapshot_count(cfg.steps, every))
                 - resources.sweep_bytes(0, **common))
    limit = resources.memory_limit()
    if full <= limit:
        return _Plan(short_list, record_every, traj_every, "all", sample)
    log(f"{cfg.path}: {n} runs: keeping regime and steps-to-tol only (keep = \"compact\"): "
        f"all statistics would not fit in {resources.format_bytes(limit)}")
    return _Plan(False, None, traj_every, "compact", None)


def sweep_options(cfg: SweepConfig) -> dict:
    """The ``gdlab.sweep`` arguments of ``cfg`` that every sweep of its study shares (the main
    sweep, the trajectories, the bisection, the zoom, ``gdlab view``'s windows): w0, steps, tol,
    optimizer, hparams, dtype and unroll."""
    return dict(w0=cfg.w0, steps=cfg.steps, tol=cfg.tol, optimizer=cfg.optimizer,
                hparams=cfg.hparams, dtype=cfg.dtype, unroll=cfg.unroll)


def _options(cfg: SweepConfig, plan: _Plan, progress: bool | None) -> dict:
    """The main sweep's arguments besides the problem, α and ``keep``; the Q4.3 recurrence
    deviation wherever it is defined (``recurrence=None``), for the Q4.3 check."""
    return dict(over={k: v for k, v in cfg.axes.items() if k != "alpha"},
                record_every=plan.record_every, chunk_size=cfg.chunk_size, devices=cfg.devices,
                progress=progress, recurrence=None, **sweep_options(cfg))


def _rounding_check(cfg: SweepConfig, plan: _Plan) -> bool:
    """Whether the main sweep is re-simulated in float64 to flag the runs rounding decides: for
    float32 runs with a known optimum under an optimizer without a closed form (Adam, …), whose
    labels nothing else checks (``gdlab.sweep``'s ``rounding_check``)."""
    return (cfg.dtype == "float32" and cfg.optimizer not in stability.LINEAR_OPTIMIZERS
            and plan.keep == "all" and isinstance(cfg.problem_value, WithOptimum))


def _simulate(cfg: SweepConfig, plan: _Plan, progress: bool | None,
              simulation: Simulation | None) -> tuple[SweepResult, SweepResult | None]:
    """The main sweep (finished from ``simulation`` when given), and the runs shown step by step:
    the main sweep's own for a short α list, else those of ``cfg.trajectories`` (or none)."""
    problem, alpha, options = cfg.problem_value, cfg.axes["alpha"], _options(cfg, plan, progress)
    if simulation is not None:
        res = finish_sweep(problem, alpha, simulation, keep=plan.keep, **options)
    else:
        res = gdlab.sweep(problem, alpha, keep=plan.keep,
                          rounding_check=_rounding_check(cfg, plan), **options)
    traj = res if plan.short_list else None
    if cfg.trajectories:
        traj = gdlab.sweep(problem, list(cfg.trajectories), record_every=plan.traj_every,
                           progress=False, **sweep_options(cfg))
    if traj is not None and plan.traj_every > 1:
        traj = _with_first_steps(cfg, traj)
    return res, traj


def _heatmap_runs(cfg: SweepConfig, plan: _Plan, res: SweepResult) -> HeatmapSample | None:
    """The α of ``plan.heatmap_sample`` (grid values of ``res``) swept again as the trajectories
    are, their iterates recorded every ``heatmap_every(T)`` steps, for the error heatmap; None
    where the plan has no sample. The main sweep's results do not depend on it."""
    if plan.heatmap_sample is None:
        return None
    runs = gdlab.sweep(cfg.problem_value, res.alpha[plan.heatmap_sample],
                       record_every=heatmap_every(cfg.steps), progress=False,
                       **sweep_options(cfg))
    return HeatmapSample(plan.heatmap_sample, runs, res.alpha.size)


def _with_first_steps(cfg: SweepConfig, traj: SweepResult) -> SweepResult:
    """``traj`` with its first ``cfg.table_steps`` steps recorded one by one (the tables of
    homework Q4.1 show t = 0, 1, 2, …, not the stride a long horizon records at): those steps
    simulated again, from the same α and w₀ in the same dtype, and put in front of the strided
    snapshots beyond them. Gradient descent is deterministic: the first k steps do not depend on
    the horizon."""
    k = min(cfg.table_steps, cfg.steps)
    first = gdlab.sweep(cfg.problem_value, traj.alpha, record_every=1, progress=False,
                        **{**sweep_options(cfg), "steps": k})
    later = traj.snapshot_steps > k
    return dataclasses.replace(
        traj, snapshot_steps=np.concatenate([first.snapshot_steps, traj.snapshot_steps[later]]),
        trajectory=np.concatenate([first.trajectory, traj.trajectory[:, later]], axis=1))


def _theory(cfg: SweepConfig, res: SweepResult, keep: str) -> _Theory:
    """Predictions of the closed forms for a linear optimizer, and the closed-form edges in α
    where every run of a 1-D sweep shares one curvature λ."""
    linear = (cfg.optimizer in stability.LINEAR_OPTIMIZERS and keep == "all"
              and isinstance(cfg.problem_value, Linear))
    lam = res.curvature
    const_lam = float(lam.ravel()[0]) if lam is not None and np.ptp(lam) == 0 else None
    edges = _edges(cfg, res) if linear and const_lam is not None and len(res.axes) == 1 else {}
    if not linear:
        return _Theory(False, None, None, None, const_lam, edges)
    pred = theory.predict(res)
    return _Theory(True, pred, theory.agreement(res, pred), theory.closed_form(res, pred),
                   const_lam, edges)


def _edges(cfg: SweepConfig, res: SweepResult) -> dict[str, float]:
    """The closed-form α where a 1-D sweep's regime changes, named by what changes there.

    A scalar parameter: ``oscillation_onset`` (the error starts to change sign) and
    ``divergence``. An n-D one: ``oscillation_onset_stiffest_mode`` (the direction of λ_max starts
    to oscillate, α = 1/λ_max for GD), ``oscillation_dominates`` (GD: the oscillating direction
    outlasts the slowest one, |1 − αλ_max| > |1 − αλ_min| for α > 2/(λ_min + λ_max), so the error
    as a whole changes sign from then on) and ``divergence`` (2/λ_max).
    """
    beta = cfg.hparams.get("beta", 0.0)
    ev = np.asarray(cfg.problem_value.eigenvalues(), np.float64)
    lam_max = float(ev.max())
    onset = float(stability.oscillation_onset(cfg.optimizer, lam_max, beta))
    divergence = float(stability.critical_alpha(cfg.optimizer, lam_max, beta))
    if _scalar_w(res):
        return {"oscillation_onset": onset, "divergence": divergence}
    edges = {"oscillation_onset_stiffest_mode": onset}
    if cfg.optimizer == "sgd":
        edges["oscillation_dominates"] = float(quadratics.optimal_alpha(ev))
    return {**edges, "divergence": divergence}


def _check_edge_search(cfg: SweepConfig) -> None:
    """Refuse, before any work, a 1-D sweep whose float64 edge search would take more steps one
    after another than one run may (``boundary.check_work``): sized by the grid's widest cell,
    found a chunk at a time (the grid is never built whole)."""
    spec, n = cfg.axes["alpha"], cfg.axis_sizes["alpha"]
    parts = (grids.axis_part(spec, lo, lo + grids.CHUNK + 1, name="sweep.alpha")
             for lo in range(0, max(n - 1, 1), grids.CHUNK))
    boundary.check_work(boundary.widest_cell(parts), cfg.steps)


def _bisect(cfg: SweepConfig, res: SweepResult, changes: _GridChanges | None = None,
            progress: bool | None = False) -> list[boundary.Boundary] | None:
    """The regime boundaries of a 1-D α grid, located between grid points in float64 by
    ``boundary.locate`` (a dyadic k-section, its rounds shown as progress); None for other grids.
    ``changes``: the grid's :func:`_grid_changes`, where the caller has them.

    A float32 sweep's labels change where its rounding lets them (the Q4 sweep counts its first
    sign change only once |e₁| = |1 − α|·|e₀| clears float32's rounding floor, at α ≈ 1.000015,
    not 1/x² = 1), so a bracket of ``boundary.PRECISION``·max(1, |α|) around that would be precise
    about the wrong number. The grid values on both sides of every change are simulated again in
    float64, and bisected between with those labels: a change that float64 does not show there is
    rounding's alone and gives no edge (``_boundaries`` counts them).
    """
    if len(res.axes) != 1 or res.alpha.size <= 1:
        return None
    problem, common = cfg.problem_value, {**sweep_options(cfg), "dtype": "float64"}

    def rerun(alphas):
        return gdlab.sweep(problem, alphas, progress=False, **common).regime

    alpha, regime, change = _grid_changes(res) if changes is None else changes
    ends = np.union1d(change, change + 1)
    if ends.size == 0:
        return []
    labels = regime[ends] if res.dtype == "float64" else rerun(alpha[ends])
    return boundary.locate(rerun, alpha[ends], labels, dtype="float64",
                           progress=_edge_progress(cfg.steps, progress))


def _edge_progress(steps: int, enabled: bool | None) -> Callable[[boundary.Round], None]:
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


class _GridChanges(NamedTuple):
    """Where a 1-D sweep's regime changes along α (:func:`_grid_changes`)."""

    alpha: np.ndarray    # float64, sorted
    regime: np.ndarray   # in the order of ``alpha``
    change: np.ndarray   # the i where regime[i + 1] ≠ regime[i]


def _grid_changes(res: SweepResult) -> _GridChanges:
    """A 1-D sweep's α (float64) and regimes sorted by α, and the i where regime[i + 1] differs."""
    alpha = np.asarray(res.alpha, np.float64)
    order = np.argsort(alpha)
    regime = np.asarray(res.regime)[order]
    return _GridChanges(alpha[order], regime, np.flatnonzero(regime[1:] != regime[:-1]))


def _boundaries(cfg: SweepConfig, res: SweepResult, th: _Theory,
                found: list[boundary.Boundary], changes: _GridChanges | None = None) -> dict:
    """summary.json's "boundaries": the bisected edges between regimes, the closed-form ones, the
    precision, the grid cells holding several edges (regimes the grid does not resolve), the
    grid's changes that float64 does not show (``changes``: the grid's :func:`_grid_changes`, if
    known) and, apart, the edges to or from "stalled" (:func:`_progress`): no regime edge in
    theory, but where the horizon starts to show progress."""
    cells = [(b.grid_lo, b.grid_hi) for b in found]
    alpha, _, change = _grid_changes(res) if changes is None else changes
    # a change between α_i and α_{i+1} that float64 shows has an edge with grid_lo = α_i
    rounding = np.sum(~np.isin(alpha[change], [b.grid_lo for b in found]))
    stalled = [b for b in found if REGIME_NAMES[Regime.STALLED] in (b.below, b.above)]
    return {"bisected": [b.as_dict() for b in found if b not in stalled],
            "closed_form": th.edges,
            "precision": f"bracket ≤ {boundary.PRECISION:g}·max(1, |α|), simulated in float64",
            "unresolved_cells": sorted({c for c in cells if cells.count(c) > 1}),
            "grid_changes_not_in_float64": int(rounding),
            "progress": [_progress(cfg, res, th, b) for b in stalled]}


_PROGRESS = ("in theory only α = 0 stalls (0 < α < 2/λ_max converges, α < 0 diverges); a run is "
             "called stalled while its error's growth over the horizon stays within the band "
             "e^±b (gdlab.regimes: b = late_window(T)·δ), so this edge is where T steps start to "
             "show the iterate move, not a regime edge")


def _progress(cfg: SweepConfig, res: SweepResult, th: _Theory, b: boundary.Boundary) -> dict:
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


def _summary(cfg: SweepConfig, res: SweepResult, keep: str, th: _Theory,
             found: list[boundary.Boundary] | None, changes: _GridChanges | None,
             heat: HeatmapSample | None = None) -> dict:
    """summary.json, less its timings and files (added once the plots are written);
    ``changes``: the grid's :func:`_grid_changes` (1-D), for the boundaries; ``heat``: the
    heatmap's subsample, if any."""
    summary = {
        "config_path": cfg.path, "config": cfg.resolved, **environment(),
        "dtype": res.dtype, "n_runs": res.n_runs, "grid_shape": list(res.grid_shape),
        "axes": list(res.axes), "steps": res.steps, "tol": res.tol,
        "regime_names": list(REGIME_NAMES), "regime_counts": report.regime_counts(res.regime),
        "keep": keep,
    }
    not_drawn = _study_plots.not_drawn(cfg, res, heat)
    if not_drawn:
        summary["plots_not_drawn"] = not_drawn
    if res.rounding_sensitive is not None:
        summary["rounding_check"] = {
            "n_flagged": int(res.rounding_sensitive.sum()), "n_runs": res.n_runs,
            "rule": "re-simulated in float64 from the same float32 inputs: the trend (shrinks, "
                    "grows, neither) or steps_to_tol changes"}
    if keep == "compact":
        summary["compact"] = ("only regime and steps_to_tol were kept (every statistic would not "
                              "fit in the memory limit): no theory comparison; run a smaller "
                              f"grid, or raise ${resources.ENV_LIMIT}, for the agreement figures")
    spectrum = _spectrum(cfg.problem_value, res)
    if spectrum is not None:
        summary["spectrum"] = spectrum
    bounds = None if found is None else _boundaries(cfg, res, th, found, changes)
    if th.pred is not None:
        unresolved = [] if bounds is None else bounds["unresolved_cells"]
        summary.update(_theory_summary(cfg, res, th, unresolved))
    if not isinstance(cfg.problem_value, WithOptimum):
        summary["trainability"] = trainability.summary(res)
    if bounds is not None:
        summary["boundaries"] = bounds
    if th.edges:   # the regime strip's closed-form row, for `gdlab plot`
        summary["closed_form_edges"] = th.edges
    return summary


def _scalar_w(res: SweepResult) -> bool:
    """Is the parameter a scalar (w* has the grid's shape)?"""
    return res.w_star is not None and res.w_star.ndim == len(res.grid_shape)


def _spectrum(problem: Linear, res: SweepResult) -> dict | None:
    """The Hessian's spectrum and GD's optimal step for a vector parameter with one spectrum."""
    if res.w_star is None or _scalar_w(res):
        return None
    ev = np.asarray(problem.eigenvalues(), np.float64)
    if ev.ndim != 1:
        return None
    return {"lam_min": ev.min(), "lam_max": ev.max(), "kappa": ev.max() / ev.min(),
            "optimal_alpha_gd": quadratics.optimal_alpha(ev),
            "optimal_rate_gd": (ev.max() - ev.min()) / (ev.max() + ev.min()),
            # GD: the stiffest direction changes sign from 1/λ_max on, the error as a whole once
            # that direction outlasts the slowest, from 2/(λ_min + λ_max) (= optimal_alpha_gd).
            "oscillation_onset_stiffest_mode_gd": 1.0 / ev.max(),
            "oscillation_dominates_gd": quadratics.optimal_alpha(ev)}


_AGAINST = ("the exact float64 evaluation of the same linear map (scalar GD: |r|^t|e₀|), with the "
            "simulation's definitions (flip rule, floor, growth); runs whose outcome rounding "
            "decides (n_sensitive, by reason in sensitive_why) are left out")


def _theory_summary(cfg: SweepConfig, res: SweepResult, th: _Theory,
                    unresolved: list[tuple[float, float]]) -> dict:
    """The comparison with theory: predicted regimes, agreement, stability region, the Q4.3
    recurrence check and, for GD on one scalar curvature over α, the Q4.2 answer (with intervals
    only across grid cells not in ``unresolved``, see ``report.q4_statement``)."""
    out = {"predicted_regime_counts": report.regime_counts(th.pred.regime),
           "agreement": {**th.agree.as_dict(), "compared_with": _AGAINST},
           "closed_form": th.closed, "region": th.closed["converges"]}
    if res.recurrence_dev is not None:
        rec = float(res.recurrence_dev.max())
        eps = float(np.finfo(res.dtype).eps)
        out["recurrence"] = {
            "claim": "|w* − w_{t+1}| = |1 − αλ|·|w* − w_t| at every step of every run",
            "max_dev": rec, "max_dev_in_eps": rec / eps,
            "measure": "max over runs and steps of ||e_{t+1}| − |r||e_t|| / "
                       "(|w*| + |e_t| + |e_{t+1}| + |αλ e_t|), r = 1 − αλ, e_t = w_t − w*"}
    if (len(res.axes) == 1 and th.const_lam is not None and cfg.optimizer == "sgd"
            and _scalar_w(res)):
        out["q4_answer"] = report.q4_statement(res.alpha, res.regime, th.const_lam,
                                               unresolved)
    return out


def _zoom(cfg: SweepConfig, progress: bool | None) -> zoom.ZoomSeries:
    """The zoom series of ``[zoom]``: the map again on windows shrinking around its center."""
    _, other = cfg.axes   # a 2-D map's two small axes, built here in float64 for the windows
    return zoom.series(cfg.problem_value, cfg.axis_values("alpha"), other,
                       cfg.axis_values(other), cfg.zoom.center,
                       frames=cfg.zoom.frames, factor=cfg.zoom.factor, chunk_size=cfg.chunk_size,
                       devices=cfg.devices, progress=progress, **sweep_options(cfg))


def _write(out: Path, overwrite: bool, cfg: SweepConfig, res: SweepResult, th: _Theory,
           traj: SweepResult | None, heat: HeatmapSample | None, summary: dict,
           zs: zoom.ZoomSeries | None, *, t_start: float,
           log: Callable[[str], None]) -> None:
    """results.npz, summary.json (with its timings and files) and the plots, then the log."""
    arrays = _result_arrays(res, th.pred, traj, heat)
    t_plot = time.perf_counter()

    def contents(tmp: Path) -> rundir.RunFiles:
        files = _study_plots.draw(tmp, cfg, res, None if th.pred is None else th.pred.regime,
                                  th.edges, th.linear, traj,
                                  skipped=summary.get("plots_not_drawn", {}), heat=heat)
        extra = {}
        if zs is not None:
            files += plots.save(zoom.frames_figure(zs), tmp, "zoom_frames")
            extra["zoom.npz"] = {"x": zs.x, "y": zs.y, "regime": zs.regime,
                                 **({"score": zs.score} if zs.score is not None else {})}
        summary["timings"] = {"compile_s": res.compile_s, "run_s": res.run_s,
                              "updates_per_s": res.updates_per_s,
                              "plot_s": time.perf_counter() - t_plot,
                              "total_s": time.perf_counter() - t_start}
        summary["files"] = ["results.npz", "summary.json", *extra, *files]
        return rundir.RunFiles({"results.npz": arrays, **extra, "summary.json": summary},
                               closing_lines(out, res, files))

    rundir.write_run(out, overwrite, contents, log=log)


def _result_arrays(res: SweepResult, pred: theory.Prediction | None, traj: SweepResult | None,
                   heat: HeatmapSample | None = None) -> dict[str, np.ndarray]:
    """results.npz: the axes, the per-run results kept, the predictions and the snapshots (the
    grid's own, or the heatmap's subsample's with what redrawing it needs)."""
    arrays = {name: values for name, values in res.axes.items()}
    arrays.update(axis_names=np.array(list(res.axes)), regime=res.regime,
                  regime_names=np.array(REGIME_NAMES), steps_to_tol=res.steps_to_tol)
    arrays.update({k: v for k, v in dict(
        contraction=res.contraction, flips=res.flips, diverged_at=res.diverged_at,
        final_error=res.final_error, max_error=res.max_error, w0=res.w0, score=res.score,
        loss_ratio=res.loss_ratio, min_loss_ratio=res.min_loss_ratio).items() if v is not None})
    if res.recurrence_dev is not None:
        arrays["recurrence_dev"] = res.recurrence_dev
    if pred is not None:
        arrays.update(predicted_regime=pred.regime, predicted_steps_to_tol=pred.steps_to_tol,
                      rounding_sensitive=pred.sensitive, spectral_radius=pred.rho)
        if pred.r is not None:
            arrays["rate"] = pred.r
    elif res.rounding_sensitive is not None:
        arrays["rounding_sensitive"] = res.rounding_sensitive
    if res.mode_flips is not None:
        arrays["mode_flips"] = res.mode_flips
    if res.trajectory is not None:   # w* and the noise floor: the heatmap's, for `gdlab plot`
        arrays.update(snapshot_steps=res.snapshot_steps, snapshot_w=res.trajectory,
                      w_star=res.w_star, noise_floor=res.noise_floor)
    if traj is not None:
        arrays.update(trajectory_alpha=traj.alpha, trajectory_steps=traj.snapshot_steps,
                      trajectory_w=traj.trajectory)
        arrays.update({f"trajectory_{k}": v for k, v in dict(
            diverged_at=traj.diverged_at, w_star=traj.w_star,
            curvature=traj.curvature).items() if v is not None})
    if heat is not None:
        h = heat.runs
        arrays.update({f"heatmap_{k}": v for k, v in dict(
            index=heat.index, alpha=h.alpha, steps=h.snapshot_steps, w=h.trajectory,
            diverged_at=h.diverged_at, w_star=h.w_star,
            noise_floor=h.noise_floor).items() if v is not None})
    return arrays
