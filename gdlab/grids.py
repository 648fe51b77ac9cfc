"""Sweep axes: values built in float64, then cast to the simulation dtype.

float32 cannot hold a fine grid near α = 2 (2 ± 3e-8 and 2 + 1e-7 all round to 2.0), so a grid is
computed in float64 and cast once; values that collapse onto each other are reported, not hidden.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping

import numpy as np

__all__ = ["axis_values", "cast_axis", "DuplicateGridWarning"]


class DuplicateGridWarning(UserWarning):
    """Distinct requested values became equal after casting to the simulation dtype."""


def axis_values(spec, *, name: str = "axis") -> np.ndarray:
    """float64 values of one axis from ``{start, stop, num, scale}`` or an explicit list.

    ``scale = "log"`` spaces values geometrically (start and stop must then be > 0). Raises
    ValueError naming ``name`` for anything malformed.
    """
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"start", "stop", "num", "scale"}
        if unknown:
            raise ValueError(f"{name}: unknown key {sorted(unknown)[0]!r}; "
                             "use start, stop, num and optionally scale")
        missing = [k for k in ("start", "stop", "num") if k not in spec]
        if missing:
            raise ValueError(f"{name}: missing {missing[0]!r}; "
                             "write e.g. { start = 0.0, stop = 3.0, num = 301 }")
        start, stop = _finite(spec["start"], f"{name}.start"), _finite(spec["stop"], f"{name}.stop")
        num, scale = spec["num"], spec.get("scale", "linear")
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"{name}.num: {num!r} must be an integer >= 1")
        if start > stop:
            raise ValueError(f"{name}: start {start!r} > stop {stop!r}; swap them")
        if scale == "linear":
            return np.linspace(start, stop, num, dtype=np.float64)
        if scale == "log":
            if start <= 0:
                raise ValueError(f"{name}.start: {start!r} must be > 0 with scale = \"log\"")
            return np.geomspace(start, stop, num, dtype=np.float64)
        raise ValueError(f"{name}.scale: {scale!r} must be \"linear\" or \"log\"")
    values = np.atleast_1d(np.asarray(spec))
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "iuf" or values.dtype == bool:
        raise ValueError(f"{name}: {spec!r} must be a non-empty list of numbers "
                         "or { start, stop, num }")
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name}: {spec!r} contains a non-finite value; use finite numbers")
    return values


def cast_axis(values: np.ndarray, dtype, *, name: str = "axis") -> np.ndarray:
    """Cast float64 axis values to ``dtype``, warning when distinct values collapse."""
    cast = np.asarray(values, np.float64).astype(dtype)
    if not np.all(np.isfinite(cast)):
        raise ValueError(f"{name}: a value overflows {np.dtype(dtype).name}; use smaller values")
    values = np.asarray(values, np.float64)
    if values.size > 1 and np.all(values[1:] >= values[:-1]):  # sorted (every range): O(N) memory
        n_in = 1 + int(np.count_nonzero(values[1:] != values[:-1]))
        n_out = 1 + int(np.count_nonzero(cast[1:] != cast[:-1]))
    else:
        n_in, n_out = np.unique(values).size, np.unique(cast).size
    if n_out < n_in:
        warnings.warn(f"{name}: {n_in - n_out} of {n_in} distinct values coincide in "
                      f"{np.dtype(dtype).name}; use float64 or a coarser grid",
                      DuplicateGridWarning, stacklevel=2)
    return cast


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: {value!r} must be a finite number")
    return float(value)
