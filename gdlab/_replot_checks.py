"""What ``gdlab plot`` reads from a run directory, checked before anything is drawn.

A run directory is input like a config: its files may have been edited, truncated or written by
another program. :func:`check` holds them to what gdlab writes, as ``gdlab.shards`` holds a shard
to its spec table: summary.json's keys (``_SUMMARY``: the types the plots and report.html read),
and each array of results.npz and zoom.npz (``_ARRAYS``: dtype, shape against the sweep's axes
and the config, finite values, regime codes of :class:`gdlab.regimes.Regime`). The first problem
is one :class:`NotARunDirectory` line naming the file, the key or array, the value and the fix.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import numpy as np

from gdlab._npz_checks import INF, Spec, first_bad
from gdlab.config import SweepConfig
from gdlab.errors import OutputError
from gdlab.regimes import Regime

__all__ = ["NotARunDirectory", "check"]

_FIX = "run the config again"


class NotARunDirectory(OutputError):
    """``gdlab plot`` was given a directory that gdlab's study did not write (or not as written)."""


def _fail(file: Path, problem: str) -> NoReturn:
    message = f"{file}: {problem} (not as gdlab wrote it); {_FIX}"
    raise NotARunDirectory(message.replace("\r", "\\r").replace("\n", "\\n"))


# --- summary.json -------------------------------------------------------------------------------

class _Leaf(NamedTuple):
    """A JSON value of one of ``types`` (a bool is no number)."""

    types: tuple
    words: str


class _Map(NamedTuple):
    """A JSON object whose every value is ``value``."""

    value: Any


class _List(NamedTuple):
    """A JSON list whose every item is ``item`` (and ``length`` items, if given)."""

    item: Any
    length: int | None = None


class _Null(NamedTuple):
    """null, or ``value``."""

    value: Any


ANY = _Leaf((object,), "any value")
NUM = _Leaf((int, float), "a number")
INT = _Leaf((int,), "an integer")
TEXT = _Leaf((str,), "a string")
BOOL = _Leaf((bool,), "true or false")
# A schema is a _Leaf, _Map, _List, _Null, or a dict: an object with those keys ("key?": optional).
_AGREEMENT = {"compared_with": ANY, "n_compared": ANY, "n_runs": ANY, "fraction": _Null(NUM),
              "regime_mismatches": ANY, "steps_mismatches": ANY, "n_sensitive": ANY,
              "sensitive_why": _Map(ANY)}
_CLOSED_FORM = {"n_compared": ANY, "fraction": _Null(NUM), "n_band": ANY, "band_why": _Map(ANY),
                "max_boundary_distance?": _Null(NUM),
                "max_relative_deviation_from_rho?": _Null(NUM)}
_EDGE = {"below": ANY, "above": ANY, "alpha": NUM, "grid_lo": NUM, "grid_hi": NUM}
_PROGRESS = {"below": ANY, "above": ANY, "lo": NUM, "hi": NUM, "meaning": ANY,
             "closed_form_abs_alpha?": _Null(_Map(_List(NUM, 2))),
             "bracket_holds_closed_form?": ANY}
_SUMMARY = {   # summary.json as the plots and report.html read it, whatever the study
    "config_path": TEXT, "n_runs": INT, "steps": INT, "dtype": TEXT, "tol?": NUM,
    "versions?": _Map(ANY), "device?": _Map(ANY), "timings?": _Map(NUM), "files?": _List(TEXT),
    "plots_not_drawn?": _Map(TEXT), "regime_counts?": _Map(INT),
    "predicted_regime_counts?": _Map(INT), "closed_form_edges?": _Map(_Null(NUM)),
    "agreement?": _AGREEMENT, "closed_form?": _Map(_CLOSED_FORM),
    "recurrence?": {"claim": ANY, "max_dev": NUM, "max_dev_in_eps": NUM, "measure": ANY},
    "rounding_check?": {"rule": ANY, "n_runs": ANY, "n_flagged": ANY},
    "q4_answer?": _Map(TEXT), "compact?": TEXT,
    "boundaries?": {"bisected": _List(_EDGE), "precision": ANY, "closed_form?": _Map(NUM),
                    "progress?": _List(_PROGRESS)},
    "trainability?": {"judged_by": ANY, "rules": {"converged": ANY}, "trained_fraction": NUM},
    "zoom?": {"dimensions": _List(_Null(NUM))},
    "lyapunov_check?": {"claim": ANY, "cells": ANY, "max_abs_dev": _Null(NUM)},
    "period_doubling?": {"closed_form_alpha": NUM, "bisected": _Null({"alpha": NUM})},
    "cycles?": {"claim": ANY, "rejected": ANY, "rejected_as": _Map(ANY)},
    "edge_of_stability?": {
        "measure": ANY, "threshold_rule": ANY, "late": ANY,
        "rows": _List({"alpha": NUM, "threshold": NUM, "diverged": BOOL,
                       "first_step_at_threshold": _Null(INT), "ratio_median": _Null(NUM),
                       "ratio_min": _Null(NUM), "ratio_max": _Null(NUM)})},
}
# … the keys each kind of study (``gdlab.replot._kind``) must have besides, and their types
_BY_KIND = {"sweep": {"tol": NUM},
            "orbits": {"period_doubling": _SUMMARY["period_doubling?"],
                       "cycles": _SUMMARY["cycles?"],
                       "boundaries?": _List(ANY)},   # not a sweep's: report.html skips them
            "track": {}}


def _words(schema) -> str:
    if isinstance(schema, _Leaf):
        return schema.words
    if isinstance(schema, _Null):
        return f"null or {_words(schema.value)}"
    if isinstance(schema, _List):
        return "a list" if schema.length is None else f"a list of {schema.length}"
    return "an object"


def _mismatch(value, schema, key: str) -> tuple[str, str] | None:
    """(key path, problem) of the first place where ``value`` does not fit ``schema``, or None."""
    if isinstance(schema, _Null):
        wrong = None if value is None else _mismatch(value, schema.value, key)
        return (key, f"{reprlib.repr(value)} must be {_words(schema)}") if wrong and (
            wrong[0] == key) else wrong
    if isinstance(schema, _Leaf):
        fits = isinstance(value, schema.types) and (
            not isinstance(value, bool) or {bool, object} & set(schema.types))
        return None if fits else (key, f"{reprlib.repr(value)} must be {schema.words}")
    kind = list if isinstance(schema, _List) else dict
    if not isinstance(value, kind) or (isinstance(schema, _List) and schema.length is not None
                                       and len(value) != schema.length):
        return key, f"{reprlib.repr(value)} must be {_words(schema)}"
    missing = []
    if isinstance(schema, _List):
        items = [(f"{key}[{i}]", v, schema.item) for i, v in enumerate(value)]
    elif isinstance(schema, _Map):
        items = [(f"{key}.{k}", v, schema.value) for k, v in value.items()]
    else:   # an object: its keys' values, then the keys it lacks
        items = [(f"{key}.{name.rstrip('?')}".lstrip("."), value[name.rstrip("?")], sub)
                 for name, sub in schema.items() if name.rstrip("?") in value]
        missing = [(key, f"has no {name!r}") for name in schema
                   if not name.endswith("?") and name not in value]
    wrong = next(filter(None, (_mismatch(v, s, k) for k, v, s in items)), None)
    return wrong or next(iter(missing), None)


def _check_summary(file: Path, kind: str, summary: dict) -> None:
    """summary.json against ``_SUMMARY`` and its kind's keys; its files plain names; the
    predicted regime counts for the simulated regimes."""
    own = {k.rstrip("?") for k in _BY_KIND[kind]}
    schema = {k: v for k, v in _SUMMARY.items() if k.rstrip("?") not in own} | _BY_KIND[kind]
    wrong = _mismatch(summary, schema, "")
    if wrong:
        _fail(file, f"{wrong[0]}: {wrong[1]}" if wrong[0] else wrong[1])
    for i, name in enumerate(summary.get("files", [])):
        if Path(name).name != name or name in ("", ".", ".."):
            _fail(file, f"files[{i}]: {reprlib.repr(name)} must be a file name of the directory")
    predicted = summary.get("predicted_regime_counts")
    missing = set(summary.get("regime_counts", {})) - set(predicted or {})
    if predicted and missing:
        _fail(file, f"predicted_regime_counts: has no {sorted(missing)[0]!r}, which "
                    "regime_counts has")


# --- results.npz and zoom.npz -------------------------------------------------------------------

class _Array(NamedTuple):
    """One array: ``kind`` "float" (finite), "int" or "regime" (integer codes of Regime);
    ``shape`` names its dimensions: "grid" the sweep's axes, "w" the parameter's shape, "T+1"
    run.steps + 1, any other name a length bound by the first array that has it. ``needs``: the
    arrays that must come with it."""

    kind: str
    shape: tuple
    required: bool = False
    needs: tuple = ()


_SWEEP = {
    "regime": _Array("regime", ("grid",), True),
    "steps_to_tol": _Array("int", ("grid",), True),
    "predicted_regime": _Array("regime", ("grid",)),
    "diverged_at": _Array("int", ("grid",)),
    "score": _Array("float", ("grid",)),
    "w_star": _Array("float", ("grid", "w")),
    "noise_floor": _Array("float", ("grid",)),
    "snapshot_w": _Array("float", ("grid", "S", "w"), needs=("snapshot_steps", "diverged_at")),
    "snapshot_steps": _Array("int", ("S",), needs=("snapshot_w",)),
    "trajectory_w": _Array("float", ("K", "S_t", "w"), needs=("trajectory_alpha",)),
    "trajectory_alpha": _Array("float", ("K",), needs=("trajectory_w", "trajectory_steps")),
    "trajectory_steps": _Array("int", ("S_t",), needs=("trajectory_w",)),
    "trajectory_diverged_at": _Array("int", ("K",)),
    "trajectory_w_star": _Array("float", ("K", "w")),
    "trajectory_curvature": _Array("float", ("K",)),
    "heatmap_w": _Array("float", ("H", "S_h", "w"), needs=("heatmap_index",)),
    "heatmap_index": _Array("int", ("H",), needs=(
        "heatmap_alpha", "heatmap_w", "heatmap_steps", "heatmap_diverged_at", "heatmap_w_star")),
    "heatmap_alpha": _Array("float", ("H",)),
    "heatmap_steps": _Array("int", ("S_h",)),
    "heatmap_diverged_at": _Array("int", ("H",)),
    "heatmap_w_star": _Array("float", ("H", "w")),
    "heatmap_noise_floor": _Array("float", ("H",)),
}
_ARRAYS = {   # study kind → results.npz's arrays that redrawing reads
    "sweep": _SWEEP,
    "orbits": {"regime": _Array("regime", ("grid",), True),
               "diverged_at": _Array("int", ("grid",), True),
               "late_iterates": _Array("float", ("grid", "W"), True),
               "lyapunov": _Array("float", ("grid",), True)},
    "track": {"loss": _Array("float", ("K", "T+1"), True),
              "alpha": _Array("float", ("K",), True),
              "threshold": _Array("float", ("K",), True),
              "sharpness": _Array("float", ("K", "M", "k"), True),
              "sharpness_steps": _Array("int", ("M",), True),
              "preconditioned": _Array("float", ("K", "M"))},
    "zoom": {"regime": _Array("regime", ("F", "I", "J"), True),
             "x": _Array("float", ("F", "I"), True), "y": _Array("float", ("F", "J"), True),
             "score": _Array("float", ("F", "I", "J"))},
}
_DTYPES = {"float": ("f", "a float array"), "int": ("iu", "an integer array"),
           "regime": ("iu", "an integer array (regime codes)")}
# The values each kind admits, worded as gdlab.load and gdlab merge word them (gdlab._npz_checks).
_VALUES = {"float": Spec("float", -INF, INF), "regime": Spec("int", min(Regime), max(Regime))}


def _check_array(file: Path, name: str, a: np.ndarray, spec: _Array, dims: dict) -> None:
    """One array's dtype, shape (binding its free dimensions in ``dims``: name → (length, the
    array that set it)) and values."""
    kinds, words = _DTYPES[spec.kind]
    if a.dtype.kind not in kinds:
        _fail(file, f"{name} has dtype {a.dtype}, it must be {words}")
    want, free = [], []
    for d in spec.shape:
        if isinstance(dims.get(d, (None,))[0], tuple):   # "grid", "w": several dimensions
            want += dims[d][0]
            continue
        if d not in dims and len(want) < a.ndim and a.shape[len(want)] >= 1:
            dims[d] = (a.shape[len(want)], name)
            free.append(d)
        want.append(dims[d][0] if d in dims else "≥ 1")
    if tuple(want) != a.shape:   # say where the lengths it must have come from
        set_by = [f"{d} = {dims[d][0]} from {dims[d][1]}" for d in spec.shape
                  if d in dims and d not in free and dims[d][0] != ()]
        shown = str(tuple(want)).replace("'", "")
        _fail(file, f"{name} has shape {a.shape}, it must be {shown}"
                    + (f" ({'; '.join(set_by)})" if set_by else ""))
    values = _VALUES.get(spec.kind)
    bad = values and first_bad(name, a, values)
    if bad:
        _fail(file, bad)


def _check_arrays(file: Path, arrays: dict, specs: dict, dims: dict) -> None:
    """Every array of ``specs`` that ``arrays`` holds (the required ones, and those another
    needs, must be there)."""
    for name, spec in specs.items():
        if name in arrays:
            missing = [n for n in spec.needs if n not in arrays]
            if missing:
                _fail(file, f"has {name} but no {missing[0]!r}")
            _check_array(file, name, arrays[name], spec, dims)
        elif spec.required:
            _fail(file, f"has no {name!r}")


def _grid(file: Path, cfg: SweepConfig, arrays: dict) -> tuple[int, ...]:
    """The grid's shape from ``axis_names`` (the config's axes, in order) and the axes' values
    (1-D, finite floats)."""
    if "axis_names" not in arrays:
        _fail(file, "has no 'axis_names'")
    names = arrays["axis_names"]
    if names.dtype.kind != "U" or names.ndim != 1 or list(names) != list(cfg.axes):
        _fail(file, f"axis_names = {reprlib.repr(names.tolist())}, it must be "
                    f"{list(cfg.axes)} (the config's sweep axes)")
    for n in cfg.axes:
        if n not in arrays:
            _fail(file, f"has no {n!r}")
        if arrays[n].ndim != 1 or arrays[n].size < 1:
            _fail(file, f"axis {n} has shape {arrays[n].shape}, it must be one-dimensional")
        _check_array(file, n, arrays[n], _Array("float", (n,)), {})
    return tuple(arrays[n].size for n in cfg.axes)


def check(run_dir: Path, kind: str, cfg: SweepConfig, summary: dict,
          arrays: dict[str, np.ndarray], zoom: dict[str, np.ndarray] | None) -> None:
    """Raise NotARunDirectory (one line) unless summary.json, results.npz (``arrays``) and
    zoom.npz (``zoom``, None if absent) of a study of ``kind`` ("sweep", "orbits", "track") hold
    what gdlab writes, as far as redrawing its plots and report reads them."""
    _check_summary(run_dir / "summary.json", kind, summary)
    file = run_dir / "results.npz"
    dims = {"T+1": (cfg.steps + 1, "run.steps")}
    if kind != "track":
        dims["grid"] = (_grid(file, cfg, arrays), "the axes")
        dims["w"] = (tuple(cfg.problem_value.param_shape), "the problem's parameters")
    _check_arrays(file, arrays, _ARRAYS[kind], dims)
    if zoom is not None:
        if "zoom" not in summary:
            _fail(run_dir / "summary.json", "has no 'zoom' (zoom.npz is there)")
        zdims = {"F": (len(summary["zoom"]["dimensions"]), "summary.json zoom.dimensions")}
        _check_arrays(run_dir / "zoom.npz", zoom, _ARRAYS["zoom"], zdims)
