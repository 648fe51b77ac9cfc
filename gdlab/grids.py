"""Sweep axes: values built in float64, then cast to the simulation dtype.

float32 cannot hold a fine grid near α = 2 (2 ± 3e-8 and 2 + 1e-7 all round to 2.0), so a grid is
computed in float64 and cast once; values that collapse onto each other are reported, not hidden.

Every malformed axis raises :class:`gdlab.errors.ArgumentError` naming it (``name``, or
``name.num`` etc. for a key of a ``{start, stop, num}`` range), on one line.
"""

from __future__ import annotations

import math
import numbers
import reprlib
import warnings
from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from gdlab import resources
from gdlab.errors import ArgumentError

__all__ = ["axis_values", "axis_size", "cast_axis", "as_numbers", "brief", "DuplicateGridWarning"]


class DuplicateGridWarning(UserWarning):
    """Distinct requested values became equal after casting to the simulation dtype."""


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlong, _REPR.maxlist, _REPR.maxtuple = 40, 60, 40, 6, 6
_REPR.maxdict, _REPR.maxset = 4, 6


def brief(value: object) -> str:
    """A short one-line repr of ``value`` for error messages (long numbers and lists cut)."""
    if isinstance(value, np.ndarray) and value.size > 6:
        return f"array of shape {value.shape} ({value.dtype})"
    return " ".join(_REPR.repr(value).split())


def as_numbers(value: object, argument: str) -> np.ndarray:
    """``value`` as a float64 array of finite real numbers, else ArgumentError naming ``argument``.

    Refused: None, strings, booleans, complex numbers, ragged nested lists, non-numeric objects,
    integers beyond float64, NaN and ±inf. Arrays of Python numbers (dtype object) are accepted.
    """
    if value is None or isinstance(value, (str, bytes, bool, np.bool_, Mapping)):
        raise ArgumentError(argument, f"{brief(value)} is not a number")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise ArgumentError(argument, f"{brief(value)} is not a number or a regular (non-ragged) "
                                      "array of numbers") from None
    if arr.dtype == object:
        if not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                   for v in arr.flat):
            raise ArgumentError(argument, f"{brief(value)} holds something that is not a real "
                                          "number")
        try:
            arr = arr.astype(np.float64)
        except OverflowError:
            raise ArgumentError(argument, f"{brief(value)} holds an integer too large for float64 "
                                          "(beyond 1.8e308); use smaller values") from None
    if arr.dtype.kind not in "iuf":
        what = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes"}.get(
            arr.dtype.kind, f"{arr.dtype} values")
        raise ArgumentError(argument, f"{brief(value)} holds {what}; give real numbers")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ArgumentError(argument, f"{brief(value)} must be finite" if arr.ndim == 0 else
                            f"{brief(value)} contains a non-finite value; use finite numbers")
    return arr


def _range(spec: Mapping, name: str):
    """(start, stop, num, scale) of a checked ``{start, stop, num, scale}`` mapping."""
    unknown = set(spec) - {"start", "stop", "num", "scale"}
    if unknown:
        raise ArgumentError(name, f"unknown key {sorted(map(str, unknown))[0]!r}; "
                                  "use start, stop, num and optionally scale")
    missing = [k for k in ("start", "stop", "num") if k not in spec]
    if missing:
        raise ArgumentError(name, f"missing {missing[0]!r}; "
                                  "write e.g. { start = 0.0, stop = 3.0, num = 301 }")
    start, stop = _finite(spec["start"], f"{name}.start"), _finite(spec["stop"], f"{name}.stop")
    num, scale = spec["num"], spec.get("scale", "linear")
    if isinstance(num, (bool, np.bool_)) or not isinstance(num, numbers.Integral) or num < 1:
        raise ArgumentError(f"{name}.num", f"{brief(num)} must be an integer >= 1")
    if start > stop:
        raise ArgumentError(name, f"start {start!r} > stop {stop!r}; swap them")
    if not isinstance(scale, str) or scale not in ("linear", "log"):
        raise ArgumentError(f"{name}.scale", f"{brief(scale)} must be \"linear\" or \"log\"")
    if scale == "log" and start <= 0:
        raise ArgumentError(f"{name}.start", f"{start!r} must be > 0 with scale = \"log\"")
    return start, stop, int(num), scale


def _explicit(spec, name: str) -> np.ndarray:
    if isinstance(spec, (str, bytes)) or spec is None:
        raise ArgumentError(name, f"{brief(spec)} must be a non-empty list of numbers "
                                  "or { start, stop, num }")
    try:
        shape = np.shape(spec)
    except (ValueError, TypeError):  # ragged nested lists
        shape = None
    if shape is None or len(shape) > 1:
        raise ArgumentError(name, f"{brief(spec)} must be a 1-D list of numbers "
                                  "or { start, stop, num }")
    if shape == (0,):
        raise ArgumentError(name, f"{brief(spec)} must be a non-empty list of numbers "
                                  "or { start, stop, num }")
    values = np.atleast_1d(as_numbers(spec, name))
    return values


def axis_size(spec: ArrayLike | Mapping[str, object], *, name: str = "axis") -> int:
    """The number of values of an axis, checked as :func:`axis_values` checks it, without building
    a ``{start, stop, num}`` range (so a sweep can size itself before any allocation)."""
    if isinstance(spec, Mapping):
        return _range(spec, name)[2]
    return int(_explicit(spec, name).size)


def axis_values(spec: ArrayLike | Mapping[str, object], *,
                name: str = "axis") -> np.ndarray:
    """float64 values of one axis from ``{start, stop, num, scale}`` or an explicit list.

    ``scale = "log"`` spaces values geometrically (start and stop must then be > 0). Raises
    :class:`~gdlab.errors.ArgumentError` (a ValueError) naming ``name`` for anything malformed.
    """
    if isinstance(spec, Mapping):
        start, stop, num, scale = _range(spec, name)
        # the float64 values and the cast beside them, before allocating
        resources.check_fits(16 * num, argument=f"{name}.num", what=f"an axis of {num} values",
                             fix="use fewer values")
        if scale == "linear":
            return np.linspace(start, stop, num, dtype=np.float64)
        return np.geomspace(start, stop, num, dtype=np.float64)
    return _explicit(spec, name)


def cast_axis(values: np.ndarray, dtype: DTypeLike, *, name: str = "axis") -> np.ndarray:
    """Cast float64 axis values to ``dtype``, warning when distinct values collapse."""
    values = np.asarray(values, np.float64)
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    if not np.all(np.isfinite(cast)):
        big = float(values[~np.isfinite(cast)][0])
        raise ArgumentError(name, f"{big!r} overflows {np.dtype(dtype).name} (largest "
                                  f"{float(np.finfo(dtype).max):.3g}); use float64 or smaller "
                                  "values")
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
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentError(name, f"{brief(value)} must be a finite number")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ArgumentError(name, f"{brief(value)} must be a finite number")
    return out
