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
import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gdlab import grids
from gdlab import optimizers as optimizers_lib
from gdlab import problems as problems_lib
from gdlab.sweep import DTYPES

__all__ = ["ConfigError", "SweepConfig", "GradientsConfig", "load", "from_table", "parse_override"]


class ConfigError(ValueError):
    """A bad config file or override; the message is one line: file: key: value: fix."""


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A step-size sweep study (``[problem]``, ``[optimizer]``, ``[sweep]``, ``[run]``, ``[report]``)."""

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
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key):
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, "
                          "e.g. --set run.steps=500")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.+-]*|\d+/\d+", text):
            value = text  # a bare word is a string: run.dtype=float64, sweep.shard=0/2
        else:
            raise ConfigError(f"--set {key}={text}: {text!r} is not a TOML value; write e.g. "
                              f"{key}=3, {key}=0.5, {key}=[0.5, 1.5] or {key}='\"text\"'") from None
    return key.split("."), value


def from_table(table: dict, where: str) -> SweepConfig | GradientsConfig:
    """Validate an already parsed table (e.g. the resolved config of a shard)."""
    v = _Validator(where)
    return v.gradients(table) if "gradients" in table else v.sweep(table)


def load(path: str | Path, overrides: list[str] = ()) -> SweepConfig | GradientsConfig:
    """Read, override and validate a config; raise ConfigError on the first problem."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ConfigError(f"{where}: no such config file; `gdlab list` shows the bundled configs")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a UTF-8 text file; a config is TOML text") from None
    for item in overrides:
        keys, value = parse_override(item)
        node = table
        for i, k in enumerate(keys[:-1]):
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: --set {item}: {'.'.join(keys[:i + 1])} is not a table")
        node[keys[-1]] = value
    v = _Validator(where)
    if "gradients" in table:
        return v.gradients(table)
    return v.sweep(table)


class _Validator:
    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str):
        raise ConfigError(f"{self.where}: {key}: {message}")

    def table(self, parent: Mapping, name: str, known, *, required=False) -> dict:
        if name not in parent:
            if required:
                self.fail(name, f"missing table; add a [{name}] section")
            return {}
        t = parent[name]
        if not isinstance(t, dict):
            self.fail(name, f"{t!r} must be a table ([{name}])")
        if known is not None:
            for k in t:
                if k not in known:
                    self.unknown(f"{name}.{k}", k, known)
        return t

    def unknown(self, key: str, name: str, known):
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
        self.fail(key, f"unknown key{hint}")

    def number(self, key: str, value, *, positive=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"{value!r} must be a number")
        if not math.isfinite(value):
            self.fail(key, f"{value!r} must be finite")
        if positive and value <= 0:
            self.fail(key, f"{value!r} must be > 0")
        return float(value)

    def integer(self, key: str, value, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"{value!r} must be an integer (e.g. {max(minimum, 1)})")
        if value < minimum:
            self.fail(key, f"{value!r} must be >= {minimum}")
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
            if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
                self.fail(key, f"{value!r} must be a list of rows, e.g. [[1.0, 0.0], [0.0, 2.0]]")
            v = [list(self.number_list(f"{key}[{i}]", r)) for i, r in enumerate(value)]
            if len({len(r) for r in v}) != 1 or not v[0]:
                self.fail(key, "rows must be non-empty and of equal length")
        if spec.nonzero and v == 0:
            self.fail(key, f"{value!r} must be nonzero (the optimum would not exist)")
        return v

    def choice(self, key: str, value, choices) -> str:
        if not isinstance(value, str) or value not in choices:
            close = difflib.get_close_matches(str(value), list(choices), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(key, f"{value!r} is not one of {', '.join(map(repr, choices))}{hint}")
        return value

    def number_list(self, key: str, value, *, integer=False, positive=False) -> tuple:
        if not isinstance(value, list):
            self.fail(key, f"{value!r} must be a list, e.g. [0.5, 1.5]")
        if integer:
            return tuple(self.integer(f"{key}[{i}]", x, 1) for i, x in enumerate(value))
        return tuple(self.number(f"{key}[{i}]", x, positive=positive) for i, x in enumerate(value))

    def sweep(self, table: dict) -> SweepConfig:
        for k in table:
            if k not in _SWEEP_SECTIONS:
                self.unknown(k, k, _SWEEP_SECTIONS)
        prob = self.table(table, "problem", None, required=True)
        if "name" not in prob:
            self.fail("problem.name", f"missing; one of {', '.join(problems_lib.PROBLEMS)}")
        pname = self.choice("problem.name", prob["name"], problems_lib.PROBLEMS)
        pspec = problems_lib.get(pname)
        self.table(table, "problem", ["name", "w0", *pspec.params])
        params = {k: self.param(f"problem.{k}", prob.get(k, p.default), p)
                  for k, p in pspec.params.items()}
        w0 = prob.get("w0", 0.0)
        w0 = (self.number_list("problem.w0", w0) if isinstance(w0, list)
              else self.number("problem.w0", w0))
        try:
            problem = pspec.make(**{k: v for k, v in params.items()})
        except ValueError as e:
            raise ConfigError(f"{self.where}: problem: {e}") from None

        shape = tuple(problem.param_shape)
        if isinstance(w0, tuple) and (len(shape) != 1 or len(w0) != shape[0]):
            need = "a number" if not shape else f"a number or a list of {shape[0]} numbers"
            self.fail("problem.w0", f"{list(w0)!r} must be {need} for {pname}")

        opt = self.table(table, "optimizer", None)
        oname = opt.get("name", "sgd")
        if not isinstance(oname, str):
            self.fail("optimizer.name", f"{oname!r} must be a name, e.g. \"sgd\"")
        try:
            ospec = optimizers_lib.get(oname)
        except ValueError as e:
            self.fail("optimizer.name", str(e).replace(f"unknown optimizer {oname!r}",
                                                        f"{oname!r} is not a known optimizer"))
        self.table(table, "optimizer", ["name", *ospec.defaults])
        hparams = {k: self.number(f"optimizer.{k}", opt.get(k, d)) for k, d in ospec.defaults.items()}

        sweepable = ["alpha", *pspec.sweepable, *ospec.defaults, "w0"]
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
                close = difflib.get_close_matches(k, sweepable, n=1, cutoff=0.7)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.fail(f"sweep.{k}", f"not a sweepable parameter ({hint}sweepable here: "
                                        f"{', '.join(sweepable)})")
        if "alpha" not in sw:
            self.fail("sweep.alpha", "missing; e.g. alpha = { start = 0.0, stop = 3.0, num = 301 }")
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
        for k, p in pspec.params.items():
            if k in axes and p.nonzero and np.any(axes[k] == 0.0):
                self.fail(f"sweep.{k}", "contains 0.0; the optimum needs a nonzero value")
            if k in axes and p.positive and np.any(axes[k] <= 0.0):
                self.fail(f"sweep.{k}", "contains a value <= 0; it must be > 0")

        run = self.table(table, "run", _RUN_KEYS)
        r = {k: run.get(k, d) for k, d in _RUN_KEYS.items()}
        steps = self.integer("run.steps", r["steps"], 1)
        tol = self.number("run.tol", r["tol"], positive=True)
        dtype = self.choice("run.dtype", r["dtype"], DTYPES)
        unroll = r["unroll"]
        if unroll != "auto":
            if isinstance(unroll, str):
                self.fail("run.unroll", f"{unroll!r} must be \"auto\" or an integer >= 1")
            unroll = self.integer("run.unroll", unroll, 1)
        chunk = None if r["chunk_size"] is None else self.integer("run.chunk_size", r["chunk_size"], 1)
        devices = r["devices"]
        if devices != "all":
            if isinstance(devices, str):
                self.fail("run.devices", f"{devices!r} must be \"all\" or an integer >= 1")
            devices = self.integer("run.devices", devices, 1)

        rep = self.table(table, "report", _REPORT_KEYS)
        trajectories = self.number_list("report.trajectories", rep.get("trajectories", []))
        table_steps = self.integer("report.table_steps", rep.get("table_steps", 10), 1)
        orbit_window = self.integer("report.orbit_window", rep.get("orbit_window", min(256, steps)),
                                    2 if "orbit_window" in rep else 1)
        if orbit_window > steps:
            self.fail("report.orbit_window", f"{orbit_window} must be <= run.steps = {steps}")
        if orbit_window < 2 and not hasattr(problem, "eigenvalues"):
            self.fail("run.steps", f"{steps} is too short for an orbit study; use at least 2 steps")
        max_period = self.integer("report.max_period",
                                  rep.get("max_period", max(1, min(64, orbit_window // 2))), 1)
        if "max_period" not in rep:
            max_period = max(1, min(max_period, orbit_window // 2))
        if max_period > max(1, orbit_window // 2):
            self.fail("report.max_period", f"{max_period} must be <= orbit_window/2 = "
                                           f"{orbit_window // 2}")

        resolved = {
            "problem": {"name": pname, **{k: v for k, v in params.items() if v is not None},
                        "w0": list(w0) if isinstance(w0, tuple) else w0},
            "optimizer": {"name": oname, **hparams},
            "sweep": {k: sw[k] for k in axes} | ({"shard": f"{shard[0]}/{shard[1]}"} if shard else {}),
            "run": {"steps": steps, "tol": tol, "dtype": dtype, "unroll": unroll,
                    "devices": devices, **({"chunk_size": chunk} if chunk else {})},
            "report": {"trajectories": list(trajectories), "table_steps": table_steps,
                       "orbit_window": orbit_window, "max_period": max_period},
        }
        return SweepConfig(self.where, pname, params, w0, oname, hparams, axes, steps, tol, dtype,
                           unroll, chunk, trajectories, table_steps, resolved, problem,
                           orbit_window, max_period, devices, shard)

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
