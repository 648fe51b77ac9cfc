"""Experiment configs: strict TOML in, frozen dataclasses out.

Every problem with a file is reported once, at the boundary, as a :class:`ConfigError` whose single
line names the file, the key path, the value and the fix::

    configs/x.toml: sweep.alpha.nmu: unknown key (did you mean 'num'?)

``--set KEY=VALUE`` overrides are applied to the parsed table before validation; VALUE is a TOML
literal (``run.steps=500``, ``sweep.alpha=[0.5, 1.5]``, ``run.dtype="float64"``), and a bare word
such as ``run.dtype=float64`` is taken as a string.

The pieces live in private modules, each importing only those before it: ``_config_messages``
(the error and how keys are quoted), ``_config_toml`` (file checks, parsing, overrides),
``_config_values`` (one value against its kind), ``_config_sections`` (one function per TOML
section). This module assembles their results into the dataclasses below.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from gdlab import _config_sections as sections
from gdlab import grids
from gdlab._config_messages import ConfigError, show_key
from gdlab._config_messages import show_value as show_value  # re-exported, as before the split
from gdlab._config_sections import MAX_DEVICES as MAX_DEVICES  # re-exported
from gdlab._config_sections import MAX_UNROLL as MAX_UNROLL  # re-exported
from gdlab._config_toml import apply_overrides, parse_override, read_text, tomllib_loads
from gdlab._config_values import MAX_INT as MAX_INT  # re-exported
from gdlab._config_values import Validator

__all__ = ["ConfigError", "SweepConfig", "GradientsConfig", "load", "from_table", "parse_override",
           "config_key"]


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A step-size sweep study (``[problem]``, ``[optimizer]``, ``[sweep]``, ``[run]``,
    ``[report]``).

    ``axes`` keeps each axis as written, to be passed as is to ``gdlab.sweep``, which builds it in
    the run's dtype a chunk at a time: a ``{start, stop, num, scale}`` range as its checked
    mapping (10⁸ values are not 800 MB of float64 here), an explicit list as its float64 values.
    """

    path: str
    problem: str
    problem_params: dict[str, float]
    w0: float
    optimizer: str
    hparams: dict[str, float]
    axes: dict[str, Any]             # name → axis as written (see above); "alpha" first
    steps: int
    tol: float
    dtype: str
    unroll: int | str
    chunk_size: int | None
    trajectories: tuple[float, ...]  # α values tabulated and plotted step by step
    table_steps: int                 # rows of the printed trajectory table
    resolved: dict[str, Any]         # the validated table, as written to summary.json
    problem_value: Any = None        # the problem built from problem_params
    orbit_window: int = 256          # non-quadratic losses: late iterates examined
    max_period: int = 64             # longest cycle looked for
    devices: int | str = "all"       # "all" or a count: the run axis is split over devices
    shard: tuple[int, int] | None = None  # (i, n): simulate only slice i of n, for `gdlab merge`
    zoom: Any = None                 # sections.ZoomSection: a zoom series of the 2-D map
    track: Any = None                # sections.TrackSection: a tracked run (gdlab.eos_study)

    @functools.cached_property
    def axis_sizes(self) -> dict[str, int]:
        """Values per axis, in axis order, without building any; computed once (the config is
        frozen and nothing changes its ``axes`` after validation)."""
        return {k: grids.axis_size(x, name=f"sweep.{k}") for k, x in self.axes.items()}

    @property
    def runs(self) -> int:
        """Runs of the sweep: the product of the axis sizes."""
        return math.prod(self.axis_sizes.values())

    def axis_values(self, name: str) -> np.ndarray:
        """float64 values of axis ``name``, built whole now (np.linspace/np.geomspace bit for
        bit): for consumers of small axes only, e.g. a zoom's windows."""
        return grids.axis_values(self.axes[name], name=f"sweep.{name}")


@dataclasses.dataclass(frozen=True)
class GradientsConfig:
    """The homework Q1–Q3 gradient checks (``[gradients]``)."""

    path: str
    functions: tuple[str, ...] | None
    dtypes: tuple[str, ...]
    seed: int
    sizes: tuple[int, ...]
    betas: tuple[float, ...]
    resolved: dict[str, Any]


_SWEEP_SECTIONS = ("problem", "optimizer", "sweep", "run", "report", "zoom", "track")


def load(path: str | Path, overrides: Iterable[str] = ()) -> SweepConfig | GradientsConfig:
    """Read, override and validate a config; raise ConfigError on the first problem."""
    path = Path(path)
    where = show_key(str(path))
    table = tomllib_loads(read_text(path, where), where)
    apply_overrides(table, overrides, where)
    return from_table(table, where)


def from_table(table: dict, where: str) -> SweepConfig | GradientsConfig:
    """Validate an already parsed table (e.g. the resolved config of a shard)."""
    v = Validator(where)
    return _gradients(v, table) if "gradients" in table else _sweep(v, table)


def _sweep(v: Validator, table: dict) -> SweepConfig:
    """A sweep config from its five sections, with the resolved table written to summary.json."""
    for k in table:
        if k not in _SWEEP_SECTIONS:
            v.unknown(k, k, _SWEEP_SECTIONS)
    problem = sections.problem_table(v, table)
    optimizer = sections.optimizer_table(v, table, problem)
    sweep = sections.sweep_table(v, table, problem, optimizer)
    run = sections.run_table(v, table, problem)
    report = sections.report_table(v, table, run.steps, problem.value)
    zoom = sections.zoom_table(v, table, sweep.axes) if "zoom" in table else None
    track = (sections.track_table(v, table, problem, optimizer, sweep, run.steps)
             if "track" in table else None)
    w0 = problem.w0
    resolved = {
        "problem": {"name": problem.name, **problem.extra,
                    **{k: x for k, x in problem.params.items() if x is not None},
                    **({} if w0 is None or "w0" in problem.extra
                       else {"w0": list(w0) if isinstance(w0, tuple) else w0})},
        "optimizer": {"name": optimizer.name, **optimizer.hparams},
        "sweep": sweep.specs | ({"shard": f"{sweep.shard[0]}/{sweep.shard[1]}"}
                                if sweep.shard else {}),
        "run": {"steps": run.steps, "tol": run.tol, "dtype": run.dtype, "unroll": run.unroll,
                "devices": run.devices,
                **({"chunk_size": run.chunk_size} if run.chunk_size else {})},
        "report": {"trajectories": list(report.trajectories),
                   "table_steps": report.table_steps, "orbit_window": report.orbit_window,
                   "max_period": report.max_period},
        **({"zoom": {"center": list(zoom.center), "frames": zoom.frames,
                     "factor": zoom.factor}} if zoom else {}),
        **({"track": track._asdict()} if track else {}),
    }
    return SweepConfig(
        path=v.where, problem=problem.name, problem_params=problem.params, w0=w0,
        optimizer=optimizer.name, hparams=optimizer.hparams, axes=sweep.axes,
        steps=run.steps, tol=run.tol, dtype=run.dtype, unroll=run.unroll,
        chunk_size=run.chunk_size, trajectories=report.trajectories,
        table_steps=report.table_steps, resolved=resolved, problem_value=problem.value,
        orbit_window=report.orbit_window, max_period=report.max_period, devices=run.devices,
        shard=sweep.shard, zoom=zoom, track=track)


def _gradients(v: Validator, table: dict) -> GradientsConfig:
    """A gradient-check config from its one section, with its resolved table."""
    for k in table:
        if k != "gradients":
            v.unknown(k, k, ["gradients"])
    g = sections.gradients_table(v, table)
    resolved = {"gradients": {"functions": list(g.functions) if g.functions else None,
                              "dtypes": list(g.dtypes), "seed": g.seed, "sizes": list(g.sizes),
                              "betas": list(g.betas)}}
    if resolved["gradients"]["functions"] is None:
        del resolved["gradients"]["functions"]
    return GradientsConfig(v.where, g.functions, g.dtypes, g.seed, g.sizes, g.betas, resolved)


def config_key(cfg: SweepConfig, argument: str) -> str:
    """The config key a ``gdlab.sweep`` argument comes from (``alphas`` → ``sweep.alpha``,
    ``over['x'].num`` → ``sweep.x.num``: an axis range's key)."""
    axis = re.fullmatch(r"(?:alphas|over\[(['\"])(\w+)\1\])(\.\w+)?", argument)
    if axis:
        return f"sweep.{axis[2] or 'alpha'}{axis[3] or ''}"
    name = argument.split("[")[-1].strip("'\"]") if "[" in argument else argument
    if argument.startswith("over"):
        return f"sweep.{name}"
    if argument.startswith("hparams"):
        return f"sweep.{name}" if name in cfg.axes else f"optimizer.{name}"
    if argument.startswith("problem.") or argument == "w0":
        field = argument.split(".", 1)[-1]
        return f"sweep.{field}" if field in cfg.axes else f"problem.{field}"
    if argument in ("steps", "tol", "dtype", "unroll", "chunk_size", "devices"):
        return f"run.{argument}"
    return {"optimizer": "optimizer.name", "shard": "sweep.shard", "problem": "problem",
            "window": "report.orbit_window",
            "max_period": "report.max_period"}.get(argument, argument)
