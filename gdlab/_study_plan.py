"""The plan of a sweep study, decided before any work: what the main sweep records and keeps
(:func:`plan`), and the arguments its sweeps run with (:func:`sweep_options`, shared by every
sweep of the study; :func:`main_options`, the main sweep's)."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from gdlab import _study_plots, resources, stability
from gdlab._study_plots import heatmap_every, heatmap_sample
from gdlab._sweep_plan import padded_chunk
from gdlab.config import SweepConfig
from gdlab.engine import snapshot_count
from gdlab.interfaces import WithOptimum

__all__ = ["Plan", "plan", "sweep_options", "main_options", "rounding_check",
           "TRAJECTORY_LIST_MAX", "TRAJECTORY_POINTS"]

TRAJECTORY_LIST_MAX = 12       # an explicit α list this short is shown step by step
TRAJECTORY_POINTS = 100_000    # iterates kept per trajectory (every k-th step beyond this)


class Plan(NamedTuple):
    """What the sweep records and keeps, decided before any work."""

    short_list: bool           # an explicit α list short enough to show step by step
    record_every: int | None   # snapshot interval of the main sweep; None: no snapshots
    traj_every: int            # snapshot interval of the trajectory sweep (beyond its first
                               # table_steps steps, always recorded: study._with_first_steps)
    keep: str                  # "all", or "compact" (regime and steps) where "all" would not fit
    heatmap_sample: np.ndarray | None  # grid indices swept again with snapshots for the heatmap,
                                       # where the main sweep's would pass HEATMAP_MAX_VALUES


def plan(cfg: SweepConfig, log: Callable[[str], None]) -> Plan:
    """Snapshots for the heatmap or the trajectories, and keep = "all" when every statistic fits
    in the memory limit (a shard's always does), else "compact" with no snapshots.

    A 1-D sweep records its heatmap's iterates while n_α × snapshots ≤ HEATMAP_MAX_VALUES; beyond
    that its heatmap is drawn from ``_study_plots.heatmap_sample``'s α, swept again."""
    n_alpha, one_d = cfg.axis_sizes["alpha"], len(cfg.axes) == 1
    short_list = one_d and n_alpha <= TRAJECTORY_LIST_MAX and not cfg.trajectories
    traj_every = max(1, math.ceil(cfg.steps / TRAJECTORY_POINTS))
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
        return Plan(short_list, record_every, traj_every, "all", sample)
    n = cfg.runs
    common = dict(keep="all", param_size=int(np.prod(cfg.problem_value.param_shape,
                                                     dtype=np.int64)),
                  itemsize=np.dtype(cfg.dtype).itemsize,
                  chunk_runs=padded_chunk(cfg.problem_value, n, dtype=cfg.dtype, steps=cfg.steps,
                                          record_every=record_every, chunk_size=cfg.chunk_size,
                                          devices=cfg.devices))   # as the sweep's own check
    snaps = snapshot_count(cfg.steps, record_every) if record_every else 0
    full = resources.sweep_bytes(n, snapshots=snaps, **common)
    if sample is not None:   # its runs and iterates, held beside the main sweep's results
        full += (resources.sweep_bytes(sample.size, **common,
                                       snapshots=snapshot_count(cfg.steps, every))
                 - resources.sweep_bytes(0, **common))
    limit = resources.memory_limit()
    if full <= limit:
        return Plan(short_list, record_every, traj_every, "all", sample)
    log(f"{cfg.path}: {n} runs: keeping regime and steps-to-tol only (keep = \"compact\"): "
        f"all statistics would not fit in {resources.format_bytes(limit)}")
    return Plan(False, None, traj_every, "compact", _compact_sample(cfg, common, limit))


def _compact_sample(cfg: SweepConfig, common: dict, limit: int) -> np.ndarray | None:
    """The heatmap's subsample of a compact 1-D sweep (its iterates were not kept): at most
    ``_study_plots.HEATMAP_SAMPLE`` grid α swept again with snapshots, where those fit in the
    limit beside the compact results; None otherwise (``_study_plots.not_drawn`` says why)."""
    if len(cfg.axes) != 1:
        return None
    sample = heatmap_sample(cfg.axis_sizes["alpha"])
    snaps = snapshot_count(cfg.steps, heatmap_every(cfg.steps))
    need = (resources.sweep_bytes(cfg.runs, **{**common, "keep": "compact"})
            + resources.sweep_bytes(sample.size, **common, snapshots=snaps)
            - resources.sweep_bytes(0, **common))
    return sample if need <= limit else None


def sweep_options(cfg: SweepConfig) -> dict:
    """The ``gdlab.sweep`` arguments of ``cfg`` that every sweep of its study shares (the main
    sweep, the trajectories, the bisection, the zoom, ``gdlab view``'s windows): w0, steps, tol,
    optimizer, hparams, dtype and unroll."""
    return dict(w0=cfg.w0, steps=cfg.steps, tol=cfg.tol, optimizer=cfg.optimizer,
                hparams=cfg.hparams, dtype=cfg.dtype, unroll=cfg.unroll)


def main_options(cfg: SweepConfig, plan: Plan, progress: bool | None) -> dict:
    """The main sweep's arguments besides the problem, α and ``keep``; the Q4.3 recurrence
    deviation wherever it is defined (``recurrence=None``), for the Q4.3 check."""
    return dict(over={k: v for k, v in cfg.axes.items() if k != "alpha"},
                record_every=plan.record_every, chunk_size=cfg.chunk_size, devices=cfg.devices,
                progress=progress, recurrence=None, **sweep_options(cfg))


def rounding_check(cfg: SweepConfig, plan: Plan) -> bool:
    """Whether the main sweep is re-simulated in float64 to flag the runs rounding decides: for
    float32 runs with a known optimum under an optimizer without a closed form (Adam, …), whose
    labels nothing else checks (``gdlab.sweep``'s ``rounding_check``)."""
    return (cfg.dtype == "float32" and cfg.optimizer not in stability.LINEAR_OPTIMIZERS
            and plan.keep == "all" and isinstance(cfg.problem_value, WithOptimum))
