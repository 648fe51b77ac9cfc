"""Experiment configs: strict TOML in, frozen dataclasses out.

Every problem with a file is reported once, at the boundary, as a :class:`ConfigError` whose single
line names the file, the key path, the value and the fix::

    configs/x.toml: sweep.alpha.nmu: unknown key (did you mean 'num'?)

``--set KEY=VALUE`` overrides are applied to the parsed table before validation; VALUE is a TOML
literal (``run.steps=500``, ``sweep.alpha=[0.5, 1.5]``, ``run.dtype="float64"``), and a bare word
such as ``run.dtype=float64`` is taken as a string.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from gdlab import grids, resources
from gdlab import optimizers as optimizers_lib
from gdlab import problems as problems_lib
from gdlab._naming import did_you_mean
from gdlab._sweep import DTYPES
from gdlab.errors import GdlabError
from gdlab.interfaces import Linear

__all__ = ["ConfigError", "SweepConfig", "GradientsConfig", "load", "from_table", "parse_override",
           "config_key"]


class ConfigError(GdlabError):
    """A bad config file or override; the message is one line: file: key: value: fix."""


MAX_UNROLL = 1024        # compile time grows with the unroll; beyond this it is minutes
MAX_DEVICES = 2**16
MAX_INT = 2**31 - 1      # integer keys are int32 inside the engine
_MAX_CONFIG_BYTES = 16 * 2**20


def show_key(key: str) -> str:
    """A key as typed, but with control characters (newline, ANSI escapes) escaped."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: m[0].encode("unicode_escape").decode(),
                  str(key))


def show_value(value, limit: int = 80) -> str:
    """``repr`` of a value, shortened to ``limit`` characters (a 10⁶-element list stays one
    line)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int too long for repr, a deeply nested list
        text = f"<{type(value).__name__}>"
    return show_key(text if len(text) <= limit else text[: limit - 5] + " …" + text[-2:])


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A step-size sweep study (``[problem]``, ``[optimizer]``, ``[sweep]``, ``[run]``,
    ``[report]``)."""

    path: str
    problem: str
    problem_params: dict[str, float]
    w0: float
    optimizer: str
    hparams: dict[str, float]
    axes: dict[str, np.ndarray]      # name → float64 values; "alpha" first
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
    devices: int | str = 1           # "all" or a count: the run axis is split over devices
    shard: tuple[int, int] | None = None  # (i, n): simulate only slice i of n, for `gdlab merge`


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


_SWEEP_SECTIONS = ("problem", "optimizer", "sweep", "run", "report")
_RUN_KEYS = {"steps": 200, "tol": 1.0, "dtype": "float32", "unroll": "auto", "chunk_size": None,
             "devices": 1}
_REPORT_KEYS = {"trajectories": [], "table_steps": 10, "orbit_window": 256, "max_period": 64}
_GRADIENT_KEYS = {"functions": None, "dtypes": ["float32", "float64"], "seed": 0,
                  "sizes": [1, 3, 64], "betas": [0.5, 1.0, 10.0, 100.0]}


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"run.steps=500"`` → (["run", "steps"], 500). Raises ConfigError when malformed."""
    if re.search(r"[\x00-\x1f\x7f]", item):
        raise ConfigError(f"--set {show_value(item)}: contains a line break or control character; "
                          "give one KEY=VALUE on one line")
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key):
        raise ConfigError(f"--set {show_value(item)}: expected KEY=VALUE with a dotted key, "
                          "e.g. --set run.steps=500")
    text = text.strip()
    try:
        parsed = tomllib.loads(f"v = {text}")
        if set(parsed) != {"v"}:
            raise tomllib.TOMLDecodeError("more than one value")
        value = parsed["v"]
    except RecursionError:
        raise ConfigError(f"--set {key}: the value is nested too deeply") from None
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.+-]*|\d+/\d+", text):
            value = text  # a bare word is a string: run.dtype=float64, sweep.shard=0/2
        else:
            raise ConfigError(f"--set {key}={show_value(text)}: not a TOML value; write e.g. "
                              f"{key}=3, {key}=0.5, {key}=[0.5, 1.5] or {key}='\"text\"'") from None
    return key.split("."), value


def _read(path: Path, where: str) -> str:
    """The text of a config file: a regular UTF-8 file (a BOM is accepted) of sane size."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such config file; "
                          "`gdlab list` shows the bundled configs") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot be read ({e.strerror}); "
                          "give a readable TOML file") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{where}: is a directory, not a config file; give a .toml file in it")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{where}: is not a regular file (a pipe or device?); give a TOML file")
    if st.st_size > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: {st.st_size} bytes is too large for a config (at most "
                          f"{_MAX_CONFIG_BYTES}); put large data in a .npy file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a UTF-8 text file; a config is TOML text") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot be read ({e.strerror}); "
                          "give a readable TOML file") from None


def tomllib_loads(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {show_key(str(e))}") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid TOML: nested too deeply; flatten the tables") from None


def from_table(table: dict, where: str) -> SweepConfig | GradientsConfig:
    """Validate an already parsed table (e.g. the resolved config of a shard)."""
    v = _Validator(where)
    return v.gradients(table) if "gradients" in table else v.sweep(table)


def load(path: str | Path, overrides: list[str] = ()) -> SweepConfig | GradientsConfig:
    """Read, override and validate a config; raise ConfigError on the first problem."""
    path = Path(path)
    where = show_key(str(path))
    table = tomllib_loads(_read(path, where), where)
    for item in overrides:
        keys, value = parse_override(item)
        node = table
        for i, k in enumerate(keys[:-1]):
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: --set {item}: {'.'.join(keys[:i + 1])} is not a table")
        node[keys[-1]] = value
    return from_table(table, where)


def config_key(cfg: SweepConfig, argument: str) -> str:
    """The config key a ``gdlab.sweep`` argument comes from (``alphas`` → ``sweep.alpha``)."""
    name = argument.split("[")[-1].strip("'\"]") if "[" in argument else argument
    if argument == "alphas":
        return "sweep.alpha"
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


def _axis_length(spec) -> int:
    """Values an axis spec will have, without building it (malformed specs count 1: the axis
    builder reports them)."""
    if isinstance(spec, list):
        return max(1, len(spec))
    if isinstance(spec, dict) and isinstance(spec.get("num"), int) and not isinstance(
            spec.get("num"), bool):
        return max(1, spec["num"])
    return 1


class _Problem(NamedTuple):
    name: str
    spec: problems_lib.ProblemSpec
    params: dict[str, Any]                 # validated; None keeps the problem's default
    w0: float | tuple[float, ...]
    value: Any                             # the problem built from params


class _Optimizer(NamedTuple):
    name: str
    spec: optimizers_lib.OptimizerSpec
    hparams: dict[str, float]              # every hyperparameter but α, defaults filled in


class _Sweep(NamedTuple):
    axes: dict[str, np.ndarray]            # name → float64 values; "alpha" first
    specs: dict[str, Any]                  # the same axes as written in the file
    shard: tuple[int, int] | None


class _Run(NamedTuple):
    steps: int
    tol: float
    dtype: str
    unroll: int | str
    chunk_size: int | None
    devices: int | str


class _Report(NamedTuple):
    trajectories: tuple[float, ...]
    table_steps: int
    orbit_window: int
    max_period: int


class _Validator:
    """Checks one file's tables; each method validates one key or table and returns its value,
    or raises ConfigError naming the key."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str):
        raise ConfigError(f"{self.where}: {show_key(key)}: {message}")

    def table(self, parent: Mapping, name: str, known, *, required=False) -> dict:
        if name not in parent:
            if required:
                self.fail(name, f"missing table; add a [{name}] section")
            return {}
        t = parent[name]
        if not isinstance(t, dict):
            self.fail(name, f"{show_value(t)} must be a table ([{name}])")
        if known is not None:
            for k in t:
                if k not in known:
                    self.unknown(f"{name}.{k}", k, known)
        return t

    def unknown(self, key: str, name: str, known):
        hint = did_you_mean(name, known) or f"; known: {', '.join(known)}"
        self.fail(key, f"unknown key{hint}")

    def number(self, key: str, value, *, positive=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"{show_value(value)} must be a number")
        try:
            number = float(value)
        except OverflowError:
            self.fail(key, f"{show_value(value)} is too large for a floating-point number; "
                           "use a value below 1e308")
        if not math.isfinite(number):
            self.fail(key, f"{show_value(value)} must be finite")
        if positive and number <= 0:
            self.fail(key, f"{show_value(value)} must be > 0")
        return number

    def integer(self, key: str, value, minimum: int, maximum: int = MAX_INT) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"{show_value(value)} must be an integer (e.g. {max(minimum, 1)})")
        if value < minimum:
            self.fail(key, f"{show_value(value)} must be >= {minimum}")
        if value > maximum:
            self.fail(key, f"{show_value(value)} must be <= {maximum}")
        return value

    def param(self, key: str, value, spec):
        """A problem parameter by its kind (float, int, vector, matrix); None keeps the default."""
        if value is None:
            return None
        if spec.kind == "int":
            v = self.integer(key, value, 1 if spec.positive else -2**31)
        elif spec.kind == "float":
            v = self.number(key, value, positive=spec.positive)
        elif spec.kind == "vector":
            if not isinstance(value, list):
                return self.number(key, value, positive=spec.positive)
            v = list(self.number_list(key, value, positive=spec.positive))
            if not v:
                self.fail(key, "[] must not be empty")
        else:  # matrix: a list of equally long rows
            if (not isinstance(value, list) or not value
                    or not all(isinstance(r, list) for r in value)):
                self.fail(key, f"{show_value(value)} must be a list of rows, "
                               "e.g. [[1.0, 0.0], [0.0, 2.0]]")
            v = [list(self.number_list(f"{key}[{i}]", r)) for i, r in enumerate(value)]
            if len({len(r) for r in v}) != 1 or not v[0]:
                self.fail(key, "rows must be non-empty and of equal length")
        if spec.nonzero and v == 0:
            self.fail(key, f"{show_value(value)} must be nonzero (the optimum would not exist)")
        return v

    def fits(self, key: str, needed: int, what: str, fix: str) -> None:
        """Refuse, naming ``key``, what would need more memory than the limit allows."""
        try:
            resources.check_fits(needed, argument=key, what=what, fix=fix)
        except GdlabError as e:
            raise ConfigError(f"{self.where}: {e}") from None

    def choice(self, key: str, value, choices) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(key, f"{show_value(value)} is not one of "
                           f"{', '.join(map(repr, choices))}{did_you_mean(value, choices)}")
        return value

    def number_list(self, key: str, value, *, integer=False, positive=False) -> tuple:
        if not isinstance(value, list):
            self.fail(key, f"{show_value(value)} must be a list, e.g. [0.5, 1.5]")
        if integer:
            return tuple(self.integer(f"{key}[{i}]", x, 1) for i, x in enumerate(value))
        return tuple(self.number(f"{key}[{i}]", x, positive=positive) for i, x in enumerate(value))

    def sweep(self, table: dict) -> SweepConfig:
        for k in table:
            if k not in _SWEEP_SECTIONS:
                self.unknown(k, k, _SWEEP_SECTIONS)
        problem = self.problem_table(table)
        optimizer = self.optimizer_table(table, problem)
        sweep = self.sweep_table(table, problem, optimizer)
        run = self.run_table(table)
        report = self.report_table(table, run.steps, problem.value)
        w0 = problem.w0
        resolved = {
            "problem": {"name": problem.name,
                        **{k: v for k, v in problem.params.items() if v is not None},
                        "w0": list(w0) if isinstance(w0, tuple) else w0},
            "optimizer": {"name": optimizer.name, **optimizer.hparams},
            "sweep": sweep.specs | ({"shard": f"{sweep.shard[0]}/{sweep.shard[1]}"}
                                    if sweep.shard else {}),
            "run": {"steps": run.steps, "tol": run.tol, "dtype": run.dtype, "unroll": run.unroll,
                    "devices": run.devices,
                    **({"chunk_size": run.chunk_size} if run.chunk_size else {})},
            "report": {"trajectories": list(report.trajectories),
                       "table_steps": report.table_steps, "orbit_window": report.orbit_window,
                       "max_period": report.max_period},
        }
        return SweepConfig(
            path=self.where, problem=problem.name, problem_params=problem.params, w0=w0,
            optimizer=optimizer.name, hparams=optimizer.hparams, axes=sweep.axes,
            steps=run.steps, tol=run.tol, dtype=run.dtype, unroll=run.unroll,
            chunk_size=run.chunk_size, trajectories=report.trajectories,
            table_steps=report.table_steps, resolved=resolved, problem_value=problem.value,
            orbit_window=report.orbit_window, max_period=report.max_period, devices=run.devices,
            shard=sweep.shard)

    def problem_table(self, table: dict) -> _Problem:
        """``[problem]``: the name, the problem's own parameters and w0; builds the problem."""
        prob = self.table(table, "problem", None, required=True)
        if "name" not in prob:
            self.fail("problem.name", f"missing; one of {', '.join(problems_lib.PROBLEMS)}")
        name = self.choice("problem.name", prob["name"], problems_lib.PROBLEMS)
        spec = problems_lib.get(name)
        self.table(table, "problem", ["name", "w0", *spec.params])
        params = {k: self.param(f"problem.{k}", prob.get(k, p.default), p)
                  for k, p in spec.params.items()}
        w0 = prob.get("w0", 0.0)
        w0 = (self.number_list("problem.w0", w0) if isinstance(w0, list)
              else self.number("problem.w0", w0))
        size, size_key = spec.size(**{k: v for k, v in params.items() if v is not None})
        self.fits(size_key, resources.BASE_BYTES + size, f"this {name} problem",
                  "choose a smaller problem")
        try:
            value = spec.make(**params)
        except ValueError as e:
            raise ConfigError(f"{self.where}: problem: {e}") from None
        shape = tuple(value.param_shape)
        if isinstance(w0, tuple) and (len(shape) != 1 or len(w0) != shape[0]):
            need = "a number" if not shape else f"a number or a list of {shape[0]} numbers"
            self.fail("problem.w0", f"{list(w0)!r} must be {need} for {name}")
        return _Problem(name, spec, params, w0, value)

    def optimizer_table(self, table: dict, problem: _Problem) -> _Optimizer:
        """``[optimizer]``: the name (default sgd) and its hyperparameters."""
        opt = self.table(table, "optimizer", None)
        name = opt.get("name", "sgd")
        if not isinstance(name, str):
            self.fail("optimizer.name", f"{name!r} must be a name, e.g. \"sgd\"")
        try:
            spec = optimizers_lib.get(name)
        except ValueError as e:
            self.fail("optimizer.name", str(e).replace(f"unknown optimizer {name!r}",
                                                        f"{name!r} is not a known optimizer"))
        self.table(table, "optimizer", ["name", *spec.defaults])
        hparams = {k: self.number(f"optimizer.{k}", opt.get(k, d))
                   for k, d in spec.defaults.items()}
        if name not in optimizers_lib.OPTIMIZERS:
            try:
                optimizers_lib.check_fits(name, tuple(problem.value.param_shape))
            except ValueError as e:
                self.fail("optimizer.name", str(e))
        return _Optimizer(name, spec, hparams)

    def sweep_table(self, table: dict, problem: _Problem, optimizer: _Optimizer) -> _Sweep:
        """``[sweep]``: one axis per swept parameter (alpha required, at most two mapped) and the
        optional shard "i/n"."""
        sweepable = ["alpha", *problem.spec.sweepable, *optimizer.spec.defaults, "w0"]
        sw = dict(self.table(table, "sweep", None, required=True))
        shard = None
        if "shard" in sw:
            text = sw.pop("shard")
            m = re.fullmatch(r"(\d+)/(\d+)", text) if isinstance(text, str) else None
            if not m or not int(m[1]) < int(m[2]):
                self.fail("sweep.shard", f"{text!r} must be \"i/n\" with 0 <= i < n, e.g. \"0/2\"")
            shard = (int(m[1]), int(m[2]))
        for k in sw:
            if k not in sweepable:
                hint = did_you_mean(k, sweepable, cutoff=0.7, form="did you mean {!r}? ")
                self.fail(f"sweep.{k}", f"not a sweepable parameter ({hint}sweepable here: "
                                        f"{', '.join(sweepable)})")
        if "alpha" not in sw:
            self.fail("sweep.alpha", "missing; e.g. alpha = { start = 0.0, stop = 3.0, num = 301 }")
        lengths = {k: _axis_length(v) for k, v in sw.items()}
        n_runs = math.prod(lengths.values())
        longest = max(lengths, key=lengths.get)
        self.fits(f"sweep.{longest}" + (".num" if isinstance(sw[longest], dict) else ""),
                  resources.sweep_bytes(n_runs, keep="compact"),
                  (f"{' × '.join(map(str, lengths.values()))} = " if len(lengths) > 1 else "")
                  + f"{n_runs} runs",
                  "use fewer runs")
        axes = {}
        for name in ["alpha", *(k for k in sw if k != "alpha")]:
            try:
                axes[name] = grids.axis_values(sw[name], name=f"sweep.{name}")
            except ValueError as e:
                raise ConfigError(f"{self.where}: {e}") from None
        mapped = [k for k, v in axes.items() if v.size > 1 or k != "alpha"]
        if len(mapped) > 2:
            self.fail("sweep", f"{len(mapped)} axes ({', '.join(mapped)}); at most 2 can be mapped "
                               "(fix alpha to one value, e.g. alpha = [0.5], to map two others)")
        for k, p in problem.spec.params.items():
            if k in axes and p.nonzero and np.any(axes[k] == 0.0):
                self.fail(f"sweep.{k}", "contains 0.0; the optimum needs a nonzero value")
            if k in axes and p.positive and np.any(axes[k] <= 0.0):
                self.fail(f"sweep.{k}", "contains a value <= 0; it must be > 0")
        return _Sweep(axes, {k: sw[k] for k in axes}, shard)

    def run_table(self, table: dict) -> _Run:
        """``[run]``: steps, tol (representable in dtype), dtype, unroll, chunk_size, devices."""
        run = self.table(table, "run", _RUN_KEYS)
        r = {k: run.get(k, d) for k, d in _RUN_KEYS.items()}
        steps = self.integer("run.steps", r["steps"], 1, resources.MAX_STEPS)
        tol = self.number("run.tol", r["tol"], positive=True)
        dtype = self.choice("run.dtype", r["dtype"], DTYPES)
        with np.errstate(all="ignore"):
            tol_cast = float(np.asarray(tol).astype(dtype))
        if not 0 < tol_cast < math.inf:
            self.fail("run.tol", f"{tol!r} {'overflows' if tol_cast else 'underflows to 0 in'} "
                                 f"{dtype}; use a value in [{np.finfo(dtype).tiny:.3g}, "
                                 f"{np.finfo(dtype).max:.3g}] or another run.dtype")
        unroll = r["unroll"]
        if unroll != "auto":
            if isinstance(unroll, str):
                self.fail("run.unroll", f"{show_value(unroll)} must be \"auto\" or an integer >= 1")
            unroll = self.integer("run.unroll", unroll, 1, MAX_UNROLL)
        chunk = (None if r["chunk_size"] is None
                 else self.integer("run.chunk_size", r["chunk_size"], 1))
        devices = r["devices"]
        if devices != "all":
            if isinstance(devices, str):
                self.fail("run.devices", f"{show_value(devices)} must be \"all\" "
                                         "or an integer >= 1")
            devices = self.integer("run.devices", devices, 1, MAX_DEVICES)
        return _Run(steps, tol, dtype, unroll, chunk, devices)

    def report_table(self, table: dict, steps: int, problem) -> _Report:
        """``[report]``: trajectories tabulated, table rows, and the orbit window and longest
        period of non-quadratic losses (defaults fitted to ``steps``)."""
        rep = self.table(table, "report", _REPORT_KEYS)
        trajectories = self.number_list("report.trajectories", rep.get("trajectories", []))
        table_steps = self.integer("report.table_steps", rep.get("table_steps", 10), 1)
        orbit_window = self.integer("report.orbit_window", rep.get("orbit_window", min(256, steps)),
                                    2 if "orbit_window" in rep else 1)
        if orbit_window > steps:
            self.fail("report.orbit_window", f"{orbit_window} must be <= run.steps = {steps}")
        if orbit_window < 2 and not isinstance(problem, Linear):
            self.fail("run.steps", f"{steps} is too short for an orbit study; use at least 2 steps")
        max_period = self.integer("report.max_period",
                                  rep.get("max_period", max(1, min(64, orbit_window // 2))), 1)
        if "max_period" not in rep:
            max_period = max(1, min(max_period, orbit_window // 2))
        if max_period > max(1, orbit_window // 2):
            self.fail("report.max_period", f"{max_period} must be <= orbit_window/2 = "
                                           f"{orbit_window // 2}")
        return _Report(trajectories, table_steps, orbit_window, max_period)

    def gradients(self, table: dict) -> GradientsConfig:
        for k in table:
            if k != "gradients":
                self.unknown(k, k, ["gradients"])
        g = self.table(table, "gradients", _GRADIENT_KEYS)
        r = {k: g.get(k, d) for k, d in _GRADIENT_KEYS.items()}
        functions = r["functions"]
        if functions is not None:
            if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
                self.fail("gradients.functions", f"{functions!r} must be a list of names")
            if not functions:
                self.fail("gradients.functions", "[] names no function; omit the key to check all")
            functions = tuple(functions)
        if not isinstance(r["dtypes"], list) or not r["dtypes"]:
            self.fail("gradients.dtypes", f"{r['dtypes']!r} must be a non-empty list, e.g. "
                                          "[\"float32\", \"float64\"]")
        dtypes = tuple(self.choice(f"gradients.dtypes[{i}]", d, DTYPES)
                       for i, d in enumerate(r["dtypes"]))
        seed = self.integer("gradients.seed", r["seed"], 0)
        sizes = self.number_list("gradients.sizes", r["sizes"], integer=True)
        betas = self.number_list("gradients.betas", r["betas"], positive=True)
        for i, b in enumerate(betas):
            if b > 100:
                self.fail(f"gradients.betas[{i}]", f"{b!r} must be in (0, 100]")
        if not sizes or not betas:
            self.fail("gradients", "sizes and betas must be non-empty lists")
        resolved = {"gradients": {"functions": list(functions) if functions else None,
                                  "dtypes": list(dtypes), "seed": seed, "sizes": list(sizes),
                                  "betas": list(betas)}}
        if resolved["gradients"]["functions"] is None:
            del resolved["gradients"]["functions"]
        return GradientsConfig(self.where, functions, dtypes, seed, sizes, betas, resolved)
