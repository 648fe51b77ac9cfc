"""One function per TOML section of a config: each validates its table (with the sections it
depends on) and returns a NamedTuple of checked values, or raises ConfigError naming the key."""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import numpy as np

from gdlab import grids, resources
from gdlab import optimizers as optimizers_lib
from gdlab import problems as problems_lib
from gdlab._config_messages import ConfigError, show_value
from gdlab._config_values import Validator
from gdlab._naming import did_you_mean
from gdlab._sweep import DTYPES
from gdlab.interfaces import Linear

__all__ = ["MAX_UNROLL", "MAX_DEVICES", "ProblemSection", "OptimizerSection", "SweepSection",
           "RunSection", "ReportSection", "GradientsSection", "problem_table", "optimizer_table",
           "sweep_table", "run_table", "report_table", "gradients_table"]

MAX_UNROLL = 1024        # compile time grows with the unroll; beyond this it is minutes
MAX_DEVICES = 2**16

_RUN_KEYS = {"steps": 200, "tol": 1.0, "dtype": "float32", "unroll": "auto", "chunk_size": None,
             "devices": 1}
_REPORT_KEYS = {"trajectories": [], "table_steps": 10, "orbit_window": 256, "max_period": 64}
_GRADIENT_KEYS = {"functions": None, "dtypes": ["float32", "float64"], "seed": 0,
                  "sizes": [1, 3, 64], "betas": [0.5, 1.0, 10.0, 100.0]}


class ProblemSection(NamedTuple):
    name: str
    spec: problems_lib.ProblemSpec
    params: dict[str, Any]                 # validated; None keeps the problem's default
    w0: float | tuple[float, ...]
    value: Any                             # the problem built from params


class OptimizerSection(NamedTuple):
    name: str
    spec: optimizers_lib.OptimizerSpec
    hparams: dict[str, float]              # every hyperparameter but α, defaults filled in


class SweepSection(NamedTuple):
    axes: dict[str, np.ndarray]            # name → float64 values; "alpha" first
    specs: dict[str, Any]                  # the same axes as written in the file
    shard: tuple[int, int] | None


class RunSection(NamedTuple):
    steps: int
    tol: float
    dtype: str
    unroll: int | str
    chunk_size: int | None
    devices: int | str


class ReportSection(NamedTuple):
    trajectories: tuple[float, ...]
    table_steps: int
    orbit_window: int
    max_period: int


class GradientsSection(NamedTuple):
    functions: tuple[str, ...] | None
    dtypes: tuple[str, ...]
    seed: int
    sizes: tuple[int, ...]
    betas: tuple[float, ...]


def problem_table(v: Validator, table: dict) -> ProblemSection:
    """``[problem]``: the name, the problem's own parameters and w0; builds the problem."""
    prob = v.table(table, "problem", None, required=True)
    if "name" not in prob:
        v.fail("problem.name", f"missing; one of {', '.join(problems_lib.PROBLEMS)}")
    name = v.choice("problem.name", prob["name"], problems_lib.PROBLEMS)
    spec = problems_lib.get(name)
    v.table(table, "problem", ["name", "w0", *spec.params])
    params = {k: v.param(f"problem.{k}", prob.get(k, p.default), p)
              for k, p in spec.params.items()}
    w0 = prob.get("w0", 0.0)
    w0 = (v.number_list("problem.w0", w0) if isinstance(w0, list)
          else v.number("problem.w0", w0))
    size, size_key = spec.size(**{k: x for k, x in params.items() if x is not None})
    v.fits(size_key, resources.BASE_BYTES + size, f"this {name} problem",
           "choose a smaller problem")
    try:
        value = spec.make(**params)
    except ValueError as e:
        raise ConfigError(f"{v.where}: problem: {e}") from None
    shape = tuple(value.param_shape)
    if isinstance(w0, tuple) and (len(shape) != 1 or len(w0) != shape[0]):
        need = "a number" if not shape else f"a number or a list of {shape[0]} numbers"
        v.fail("problem.w0", f"{list(w0)!r} must be {need} for {name}")
    return ProblemSection(name, spec, params, w0, value)


def optimizer_table(v: Validator, table: dict, problem: ProblemSection) -> OptimizerSection:
    """``[optimizer]``: the name (default sgd) and its hyperparameters."""
    opt = v.table(table, "optimizer", None)
    name = opt.get("name", "sgd")
    if not isinstance(name, str):
        v.fail("optimizer.name", f"{name!r} must be a name, e.g. \"sgd\"")
    try:
        spec = optimizers_lib.get(name)
    except ValueError as e:
        v.fail("optimizer.name", str(e).replace(f"unknown optimizer {name!r}",
                                                f"{name!r} is not a known optimizer"))
    v.table(table, "optimizer", ["name", *spec.defaults])
    hparams = {k: v.number(f"optimizer.{k}", opt.get(k, d))
               for k, d in spec.defaults.items()}
    if name not in optimizers_lib.OPTIMIZERS:
        try:
            optimizers_lib.check_fits(name, tuple(problem.value.param_shape))
        except ValueError as e:
            v.fail("optimizer.name", str(e))
    return OptimizerSection(name, spec, hparams)


def _axis_length(spec: Any) -> int:
    """Values an axis spec will have, without building it (malformed specs count 1: the axis
    builder reports them)."""
    if isinstance(spec, list):
        return max(1, len(spec))
    if isinstance(spec, dict) and isinstance(spec.get("num"), int) and not isinstance(
            spec.get("num"), bool):
        return max(1, spec["num"])
    return 1


def sweep_table(v: Validator, table: dict, problem: ProblemSection,
                optimizer: OptimizerSection) -> SweepSection:
    """``[sweep]``: one axis per swept parameter (alpha required, at most two mapped) and the
    optional shard "i/n"."""
    sweepable = ["alpha", *problem.spec.sweepable, *optimizer.spec.defaults, "w0"]
    sw = dict(v.table(table, "sweep", None, required=True))
    shard = None
    if "shard" in sw:
        text = sw.pop("shard")
        m = re.fullmatch(r"(\d+)/(\d+)", text) if isinstance(text, str) else None
        if not m or not int(m[1]) < int(m[2]):
            v.fail("sweep.shard", f"{text!r} must be \"i/n\" with 0 <= i < n, e.g. \"0/2\"")
        shard = (int(m[1]), int(m[2]))
    for k in sw:
        if k not in sweepable:
            hint = did_you_mean(k, sweepable, cutoff=0.7, form="did you mean {!r}? ")
            v.fail(f"sweep.{k}", f"not a sweepable parameter ({hint}sweepable here: "
                                 f"{', '.join(sweepable)})")
    if "alpha" not in sw:
        v.fail("sweep.alpha", "missing; e.g. alpha = { start = 0.0, stop = 3.0, num = 301 }")
    lengths = {k: _axis_length(x) for k, x in sw.items()}
    n_runs = math.prod(lengths.values())
    longest = max(lengths, key=lengths.get)
    v.fits(f"sweep.{longest}" + (".num" if isinstance(sw[longest], dict) else ""),
           resources.sweep_bytes(n_runs, keep="compact"),
           (f"{' × '.join(map(str, lengths.values()))} = " if len(lengths) > 1 else "")
           + f"{n_runs} runs",
           "use fewer runs")
    axes = {}
    for name in ["alpha", *(k for k in sw if k != "alpha")]:
        try:
            axes[name] = grids.axis_values(sw[name], name=f"sweep.{name}")
        except ValueError as e:
            raise ConfigError(f"{v.where}: {e}") from None
    mapped = [k for k, x in axes.items() if x.size > 1 or k != "alpha"]
    if len(mapped) > 2:
        v.fail("sweep", f"{len(mapped)} axes ({', '.join(mapped)}); at most 2 can be mapped "
                        "(fix alpha to one value, e.g. alpha = [0.5], to map two others)")
    for k, p in problem.spec.params.items():
        if k in axes and p.nonzero and np.any(axes[k] == 0.0):
            v.fail(f"sweep.{k}", "contains 0.0; the optimum needs a nonzero value")
        if k in axes and p.positive and np.any(axes[k] <= 0.0):
            v.fail(f"sweep.{k}", "contains a value <= 0; it must be > 0")
    return SweepSection(axes, {k: sw[k] for k in axes}, shard)


def run_table(v: Validator, table: dict) -> RunSection:
    """``[run]``: steps, tol (representable in dtype), dtype, unroll, chunk_size, devices."""
    run = v.table(table, "run", _RUN_KEYS)
    r = {k: run.get(k, d) for k, d in _RUN_KEYS.items()}
    steps = v.integer("run.steps", r["steps"], 1, resources.MAX_STEPS)
    tol = v.number("run.tol", r["tol"], positive=True)
    dtype = v.choice("run.dtype", r["dtype"], DTYPES)
    with np.errstate(all="ignore"):
        tol_cast = float(np.asarray(tol).astype(dtype))
    if not 0 < tol_cast < math.inf:
        v.fail("run.tol", f"{tol!r} {'overflows' if tol_cast else 'underflows to 0 in'} "
                          f"{dtype}; use a value in [{np.finfo(dtype).tiny:.3g}, "
                          f"{np.finfo(dtype).max:.3g}] or another run.dtype")
    unroll = r["unroll"]
    if unroll != "auto":
        if isinstance(unroll, str):
            v.fail("run.unroll", f"{show_value(unroll)} must be \"auto\" or an integer >= 1")
        unroll = v.integer("run.unroll", unroll, 1, MAX_UNROLL)
    chunk = (None if r["chunk_size"] is None
             else v.integer("run.chunk_size", r["chunk_size"], 1))
    devices = r["devices"]
    if devices != "all":
        if isinstance(devices, str):
            v.fail("run.devices", f"{show_value(devices)} must be \"all\" "
                                  "or an integer >= 1")
        devices = v.integer("run.devices", devices, 1, MAX_DEVICES)
    return RunSection(steps, tol, dtype, unroll, chunk, devices)


def report_table(v: Validator, table: dict, steps: int, problem: Any) -> ReportSection:
    """``[report]``: trajectories tabulated, table rows, and the orbit window and longest
    period of non-quadratic losses (defaults fitted to ``steps``)."""
    rep = v.table(table, "report", _REPORT_KEYS)
    trajectories = v.number_list("report.trajectories", rep.get("trajectories", []))
    table_steps = v.integer("report.table_steps", rep.get("table_steps", 10), 1)
    orbit_window = v.integer("report.orbit_window", rep.get("orbit_window", min(256, steps)),
                             2 if "orbit_window" in rep else 1)
    if orbit_window > steps:
        v.fail("report.orbit_window", f"{orbit_window} must be <= run.steps = {steps}")
    if orbit_window < 2 and not isinstance(problem, Linear):
        v.fail("run.steps", f"{steps} is too short for an orbit study; use at least 2 steps")
    max_period = v.integer("report.max_period",
                           rep.get("max_period", max(1, min(64, orbit_window // 2))), 1)
    if "max_period" not in rep:
        max_period = max(1, min(max_period, orbit_window // 2))
    if max_period > max(1, orbit_window // 2):
        v.fail("report.max_period", f"{max_period} must be <= orbit_window/2 = "
                                    f"{orbit_window // 2}")
    return ReportSection(trajectories, table_steps, orbit_window, max_period)


def gradients_table(v: Validator, table: dict) -> GradientsSection:
    """``[gradients]``: which homework functions, dtypes, seed, sizes and betas to check."""
    g = v.table(table, "gradients", _GRADIENT_KEYS)
    r = {k: g.get(k, d) for k, d in _GRADIENT_KEYS.items()}
    functions = r["functions"]
    if functions is not None:
        if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
            v.fail("gradients.functions", f"{functions!r} must be a list of names")
        if not functions:
            v.fail("gradients.functions", "[] names no function; omit the key to check all")
        functions = tuple(functions)
    if not isinstance(r["dtypes"], list) or not r["dtypes"]:
        v.fail("gradients.dtypes", f"{r['dtypes']!r} must be a non-empty list, e.g. "
                                   "[\"float32\", \"float64\"]")
    dtypes = tuple(v.choice(f"gradients.dtypes[{i}]", d, DTYPES)
                   for i, d in enumerate(r["dtypes"]))
    seed = v.integer("gradients.seed", r["seed"], 0)
    sizes = v.number_list("gradients.sizes", r["sizes"], integer=True)
    betas = v.number_list("gradients.betas", r["betas"], positive=True)
    for i, b in enumerate(betas):
        if b > 100:
            v.fail(f"gradients.betas[{i}]", f"{b!r} must be in (0, 100]")
    if not sizes or not betas:
        v.fail("gradients", "sizes and betas must be non-empty lists")
    return GradientsSection(functions, dtypes, seed, sizes, betas)
