"""One function per TOML section of a config: each validates its table (with the sections it
depends on) and returns a NamedTuple of checked values, or raises ConfigError naming the key."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from gdlab import grids, resources
from gdlab import optimizers as optimizers_lib
from gdlab import problems as problems_lib
from gdlab._config_messages import ConfigError, show_value
from gdlab._config_values import Validator
from gdlab._imports import resolve as import_path
from gdlab._naming import did_you_mean
from gdlab._sweep import DTYPES
from gdlab._sweep_checks import axis_refusal
from gdlab.errors import USER_CODE_ERRORS, ArgumentError, one_line
from gdlab.interfaces import Layered, Linear, WithInit
from gdlab.problems import Param

__all__ = ["MAX_UNROLL", "MAX_DEVICES", "ProblemSection", "OptimizerSection", "SweepSection",
           "RunSection", "ReportSection", "GradientsSection", "problem_table", "optimizer_table",
           "sweep_table", "run_table", "report_table", "gradients_table", "zoom_table",
           "ZoomSection", "TrackSection", "track_table"]

MAX_UNROLL = 1024        # compile time grows with the unroll; beyond this it is minutes
MAX_DEVICES = 2**16

_RUN_KEYS = {"steps": 200, "tol": 1.0, "dtype": "float32", "unroll": "auto", "chunk_size": None,
             "devices": "all"}
_REPORT_KEYS = {"trajectories": [], "table_steps": 10, "orbit_window": 256, "max_period": 64}
_GRADIENT_KEYS = {"functions": None, "dtypes": ["float32", "float64"], "seed": 0,
                  "sizes": [1, 3, 64], "betas": [0.5, 1.0, 10.0, 100.0]}


class ProblemSection(NamedTuple):
    name: str
    spec: problems_lib.ProblemSpec
    params: dict[str, Any]                 # validated; None keeps the problem's default
    w0: float | tuple[float, ...]
    value: Any                             # the problem built from params
    extra: dict[str, Any] = {}             # a custom loss's keys as written (loss, optimum, w0)


class OptimizerSection(NamedTuple):
    name: str
    spec: optimizers_lib.OptimizerSpec
    hparams: dict[str, float]              # every hyperparameter but α, defaults filled in


class SweepSection(NamedTuple):
    axes: dict[str, Any]                   # name → axis (see config.SweepConfig.axes); alpha first
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
        v.fail("problem.name", f"missing; one of {', '.join(problems_lib.PROBLEMS)} or custom")
    if prob["name"] == "custom":
        return _custom_problem(v, prob)
    name = v.choice("problem.name", prob["name"], [*problems_lib.PROBLEMS, "custom"])
    spec = problems_lib.get(name)
    v.table(table, "problem", ["name", "w0", *spec.params])
    params = {k: _param(v, f"problem.{k}", prob.get(k, p.default), p)
              for k, p in spec.params.items()}
    w0 = prob.get("w0")   # absent: 0, or the problem's own initial weights (a network's)
    if w0 is not None:
        w0 = (v.number_list("problem.w0", w0) if isinstance(w0, list)
              else v.number("problem.w0", w0))
    size, size_key = spec.size(**{k: x for k, x in params.items() if x is not None})
    v.fits(size_key, resources.BASE_BYTES + size, f"this {name} problem",
           "choose a smaller problem")
    try:
        value = spec.make(**params)
    except ValueError as e:
        if isinstance(e, ArgumentError) and e.argument.startswith("problem."):  # names its key
            v.fail(e.argument, e.detail)
        if isinstance(e, ArgumentError) and e.argument in spec.params:   # one of the problem's
            v.fail(f"problem.{e.argument}", e.detail)
        raise ConfigError(f"{v.where}: problem: {e}") from None
    if w0 is None and not isinstance(value, WithInit):
        w0 = 0.0
    shape = tuple(value.param_shape)
    if isinstance(w0, tuple) and (len(shape) != 1 or len(w0) != shape[0]):
        need = "a number" if not shape else f"a number or a list of {shape[0]} numbers"
        v.fail("problem.w0", f"{list(w0)!r} must be {need} for {name}")
    return ProblemSection(name, spec, params, w0, value)


def _param(v: Validator, key: str, value: Any, spec: Param) -> Any:
    """A problem parameter by its kind: ``"ints"`` (a non-empty list of integers >= 1, kept as a
    list) here, every other kind by :meth:`Validator.param`."""
    if spec.kind != "ints":
        return v.param(key, value, spec)
    ints = list(v.number_list(key, value, integer=True))
    if not ints:
        v.fail(key, "[] must list at least one integer >= 1, e.g. [128, 128]")
    return ints


def _custom_problem(v: Validator, prob: dict) -> ProblemSection:
    """``[problem] name = "custom"``: ``loss = "module:function"`` (next to the config first),
    ``optimum`` (an import path, a number or a list; optional), ``w0`` (a number, a list, or an
    import path to a pytree), and every other key a parameter of the loss (a number — sweepable —
    a list, or a list of rows)."""
    base = Path(v.where).parent
    if "loss" not in prob:
        v.fail("problem.loss", "missing; name the loss by import path, e.g. "
                               "loss = \"my_losses:rosenbrock\" (my_losses.py next to the config)")
    loss = _imported(v, prob["loss"], base, "problem.loss")
    if not callable(loss):
        v.fail("problem.loss", f"{prob['loss']!r} is not callable; name a function "
                               "loss(w, **params) returning a scalar")
    optimum = prob.get("optimum")
    if isinstance(optimum, str):
        optimum = _imported(v, optimum, base, "problem.optimum")
    elif optimum is not None:
        optimum = (v.number_list("problem.optimum", optimum) if isinstance(optimum, list)
                   else v.number("problem.optimum", optimum))
    params = {}
    for k, x in prob.items():
        if k in ("name", "loss", "optimum", "w0"):
            continue
        kind = "float" if not isinstance(x, list) else (
            "matrix" if x and all(isinstance(r, list) for r in x) else "vector")
        params[k] = Param(x, kind, sweepable=kind == "float")
    values = {k: v.param(f"problem.{k}", prob[k], p) for k, p in params.items()}
    w0 = prob.get("w0", 0.0)
    w0 = (_imported(v, w0, base, "problem.w0") if isinstance(w0, str)   # a list is a vector,
          else np.asarray(v.number_list("problem.w0", w0))              # not a pytree of numbers
          if isinstance(w0, list) else v.number("problem.w0", w0))
    w0 = _initial(v, prob["w0"], w0) if callable(w0) else w0
    if isinstance(optimum, tuple) and not isinstance(w0, (tuple, list, dict)):
        optimum = np.asarray(optimum)   # a list is a vector like w0, unless w0 is a tuple pytree
    try:
        value, flat = problems_lib.custom(loss, optimum=optimum, **values).bind(w0)
    except ValueError as e:
        v.fail(config_key_of(e), e.detail if isinstance(e, ArgumentError) else str(e))
    spec = problems_lib.ProblemSpec(
        make=lambda **p: problems_lib.custom(loss, optimum=optimum, **p).bind(w0)[0],
        params=params, summary=f"the user loss {prob['loss']}")
    extra = {k: prob[k] for k in ("loss", "optimum") if k in prob}
    if isinstance(prob.get("w0"), str):
        extra["w0"] = prob["w0"]
    return ProblemSection("custom", spec, values, tuple(float(x) for x in np.ravel(flat))
                          if np.ndim(flat) else float(flat), value, extra)


def _initial(v: Validator, spec: str, start: Callable) -> Any:
    """``w0 = "module:function"``: the function is called with no arguments (w0 is one starting
    point for every run, whatever the loss's parameters) and returns the initial parameters."""
    try:
        inspect.signature(start).bind()
    except TypeError:
        v.fail("problem.w0", f"{spec!r} takes arguments {inspect.signature(start)}; a w0 function "
                             "takes none and returns the initial parameters (a number, an array "
                             "or a pytree): define it as start() or give w0 as a number or list")
    except ValueError:   # no signature to read (a builtin): call it and see
        pass
    try:
        return start()
    except USER_CODE_ERRORS as e:  # whatever the user's code raises
        v.fail("problem.w0", f"{spec!r} raised {one_line(e)}")


def config_key_of(e: ValueError) -> str:
    arg = e.argument if isinstance(e, ArgumentError) else "problem"
    return arg if arg.startswith("problem.") else f"problem.{arg.split('[')[0]}"


def _imported(v: Validator, spec: object, base: Path, key: str) -> object:
    try:
        return import_path(spec, base, key)
    except ArgumentError as e:
        v.fail(key, e.detail)


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
    sweep = table.get("sweep")
    swept = sweep if isinstance(sweep, Mapping) else {}
    for k, x in hparams.items():   # each in the range its spec declares (gdlab.optimizers),
        why = None if k in swept else spec.refusal(k, x)   # unless an axis replaces it
        if why:
            v.fail(f"optimizer.{k}", f"{show_value(opt.get(k, x))} {why}")
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
    rates = problem.value.rate_names if isinstance(problem.value, Layered) else ()
    sweepable = ["alpha", *problem.spec.sweepable, *optimizer.spec.defaults, *rates, "w0"]
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
    axes, sizes = {}, {}
    for name in ["alpha", *(k for k in sw if k != "alpha")]:
        try:
            axes[name] = _axis(sw[name], f"sweep.{name}")
            sizes[name] = grids.axis_size(axes[name], name=f"sweep.{name}")
        except ValueError as e:
            raise ConfigError(f"{v.where}: {e}") from None
    mapped = [k for k in axes if sizes[k] > 1 or k != "alpha"]
    if len(mapped) > 2:
        v.fail("sweep", f"{len(mapped)} axes ({', '.join(mapped)}); at most 2 can be mapped "
                        "(fix alpha to one value, e.g. alpha = [0.5], to map two others)")
    for k in optimizer.spec.ranges:
        if k in axes:
            refused = axis_refusal(optimizer.spec, k, axes[k], f"sweep.{k}")
            if refused:
                v.fail(f"sweep.{k}{refused[0]}", refused[1])
    for k, p in problem.spec.params.items():
        if k in axes and p.nonzero and _some(axes[k], sizes[k], k, lambda x: x == 0.0):
            v.fail(f"sweep.{k}", "contains 0.0; the optimum needs a nonzero value")
        if k in axes and p.positive and _some(axes[k], sizes[k], k, lambda x: x <= 0.0):
            v.fail(f"sweep.{k}", "contains a value <= 0; it must be > 0")
    return SweepSection(axes, {k: sw[k] for k in axes}, shard)


def _axis(spec: Any, name: str) -> Any:
    """An axis as the config keeps it: a ``{start, stop, num, scale}`` range as its (checked)
    mapping, never built here; an explicit list as its float64 values. ValueError if malformed."""
    if isinstance(spec, Mapping):
        grids.axis_size(spec, name=name)   # checks every key without building the range
        return dict(spec)
    return grids.axis_values(spec, name=name)


def _some(axis: Any, size: int, name: str, test: Any) -> bool:
    """Whether ``test`` (float64 values → booleans) holds for some value of ``axis``: the values
    exactly as computed in float64 (a range's ``np.linspace``/``np.geomspace``), read
    ``grids.CHUNK`` at a time, so a long range is never built whole."""
    if not isinstance(axis, Mapping):
        return bool(np.any(test(axis)))
    return any(bool(np.any(test(grids.axis_part(axis, lo, lo + grids.CHUNK,
                                                name=f"sweep.{name}"))))
               for lo in range(0, size, grids.CHUNK))


def _ends(axis: Any, size: int, name: str) -> tuple[float, float]:
    """The first and last float64 values of ``axis``, computed alone."""
    first, last = (grids.axis_part(axis, i, i + 1, name=f"sweep.{name}")[0] for i in (0, size - 1))
    return float(first), float(last)


class ZoomSection(NamedTuple):
    center: tuple[float, float]   # (α, the other axis): the point zoomed into
    frames: int
    factor: float                 # each frame's window is this fraction of the one before


def zoom_table(v: Validator, table: dict, axes: dict[str, Any]) -> ZoomSection:
    """``[zoom]``: ``center = [α, other]`` on a 2-D α × other map, ``frames`` (default 4) and
    ``factor`` (default 0.5). ``axes``: the sweep's, as :func:`sweep_table` keeps them."""
    z = v.table(table, "zoom", ["center", "frames", "factor"])
    sizes = {k: grids.axis_size(x, name=f"sweep.{k}") for k, x in axes.items()}
    mapped = [k for k, n in sizes.items() if n > 1]
    if len(axes) != 2 or len(mapped) != 2:
        v.fail("zoom", f"needs a 2-D map of alpha × one other axis; this sweep maps "
                       f"{', '.join(mapped) or 'nothing'}")
    if "center" not in z:
        v.fail("zoom.center", "missing; e.g. center = [300.0, 150.0], a point on the boundary")
    center = v.number_list("zoom.center", z["center"])
    if len(center) != 2:
        v.fail("zoom.center", f"{list(center)!r} must be two numbers [alpha, {mapped[1]}]")
    frames = v.integer("zoom.frames", z.get("frames", 4), 1, 64)
    factor = v.number("zoom.factor", z.get("factor", 0.5), positive=True)
    if not factor < 1:
        v.fail("zoom.factor", f"{factor!r} must be below 1: each frame shrinks the window")
    for value, (name, axis) in zip(center, axes.items()):
        first, last = _ends(axis, sizes[name], name)
        if not min(first, last) <= value <= max(first, last):
            v.fail("zoom.center", f"{value!r} lies outside sweep.{name} [{first:g}, {last:g}]")
    return ZoomSection((center[0], center[1]), frames, factor)


class TrackSection(NamedTuple):
    every: int      # steps between sharpness measurements (divides run.steps)
    k: int          # top eigenvalues measured
    iters: int      # Lanczos iterations per measurement (>= k)


_TRACK_KEYS = {"every": 10, "k": 1, "iters": 20}
TRACK_OPTIMIZERS = ("sgd", "momentum", "adam")   # those whose edge-of-stability threshold is known
MAX_LANCZOS = 1000


def track_table(v: Validator, table: dict, problem: ProblemSection, optimizer: OptimizerSection,
                sweep: SweepSection, steps: int) -> TrackSection:
    """``[track]``: a tracked run (``gdlab.track``) — the loss every step and the top-``k``
    sharpness every ``every`` steps (dividing ``run.steps``) by ``iters`` >= k Lanczos iterations,
    for one copy per α of a problem with initial weights, optimizer sgd, momentum or adam."""
    t = v.table(table, "track", _TRACK_KEYS)
    r = {k: t.get(k, d) for k, d in _TRACK_KEYS.items()}
    every = v.integer("track.every", r["every"], 1, steps)
    if steps % every:
        v.fail("track.every", f"{every} must divide run.steps = {steps}")
    iters = v.integer("track.iters", r["iters"], 1, MAX_LANCZOS)
    k = v.integer("track.k", r["k"], 1)
    if k > iters:
        v.fail("track.k", f"{k} exceeds track.iters = {iters}: Lanczos gives at most iters "
                          "eigenvalues; raise track.iters")
    if not isinstance(problem.value, WithInit):
        v.fail("problem.name", f"{problem.name!r} has no initial weights to track from; "
                               "[track] needs a network (mlp, digits_mlp)")
    if problem.w0 is not None:
        v.fail("problem.w0", "a tracked run starts from the network's own initial weights "
                             "(problem.seed); remove w0")
    if optimizer.name not in TRACK_OPTIMIZERS:
        v.fail("optimizer.name", f"{optimizer.name!r}: [track] knows the thresholds of "
                                 f"{', '.join(TRACK_OPTIMIZERS)} only")
    extra = [name for name in sweep.axes if name != "alpha"] + (["shard"] if sweep.shard else [])
    if extra:
        v.fail(f"sweep.{extra[0]}", "a tracked run sweeps alpha alone (one program over the "
                                    "step sizes); remove this key")
    alpha = sweep.axes["alpha"]
    if _some(alpha, grids.axis_size(alpha, name="sweep.alpha"), "alpha", lambda a: a <= 0):
        v.fail("sweep.alpha", "contains a value <= 0; a tracked run needs step sizes > 0")
    return TrackSection(every, k, iters)


def run_table(v: Validator, table: dict, problem: ProblemSection) -> RunSection:
    """``[run]``: steps, tol (representable in dtype), dtype (default float32; a network's
    float64), unroll, chunk_size, devices."""
    run = v.table(table, "run", _RUN_KEYS)
    defaults = dict(_RUN_KEYS)
    if isinstance(problem.value, WithInit):
        defaults["dtype"] = problem.value.default_dtype
    r = {k: run.get(k, d) for k, d in defaults.items()}
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
    given = (v.integer("report.max_period", rep["max_period"], 1) if "max_period" in rep
             else None)
    if orbit_window > steps:
        v.fail("report.orbit_window", f"{orbit_window} must be <= run.steps = {steps}; "
                                      + _window_fix(steps, given))
    if orbit_window < 2 and not isinstance(problem, Linear):
        v.fail("run.steps", f"{steps} is too short for an orbit study; use at least 2 steps")
    max_period = given if given is not None else max(1, min(64, orbit_window // 2))
    if max_period > max(1, orbit_window // 2):
        v.fail("report.max_period", f"{max_period} must be <= orbit_window/2 = "
                                    f"{orbit_window // 2}; set report.max_period <= "
                                    f"{orbit_window // 2}" + (
                                        f", or report.orbit_window >= {2 * max_period}"
                                        if 2 * max_period <= steps else ""))
    return ReportSection(trajectories, table_steps, orbit_window, max_period)


def _window_fix(steps: int, max_period: int | None) -> str:
    """What makes ``report`` fit ``run.steps``: the orbit window at most ``steps``, and the longest
    period (if given) at most half of it, said together (both dependent limits at once)."""
    fix = f"set report.orbit_window <= {steps}"
    if max_period is not None and max_period > steps // 2:
        fix += f" and report.max_period <= {max(1, steps // 2)} (at most half the window)"
    elif max_period is not None:
        fix += f" (and >= {2 * max_period}, twice report.max_period = {max_period})"
    return fix + f", e.g. orbit_window = {steps}"


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
