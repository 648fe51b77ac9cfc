"""Sweep axes: values computed in float64, then cast to the simulation dtype.

float32 cannot hold a fine grid near α = 2 (2 ± 3e-8 and 2 + 1e-7 all round to 2.0), so a grid is
computed in float64 and cast once; values that collapse onto each other are reported, not hidden.
A ``{start, stop, num}`` range is computed and cast a chunk at a time (:func:`axis`), so 10⁸ float32
values need 400 MB, not 800 MB of float64 beside them.

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

__all__ = ["axis", "axis_values", "axis_size", "axis_part", "cast_axis", "as_numbers", "real",
           "brief", "DuplicateGridWarning", "CHUNK"]

CHUNK = 2**20               # values of a range computed at once (float64, then cast)
# Bytes per value of the one chunk in flight, for the memory estimate: at most 16 live (the float64
# indices turned exponents and their powers, log scale; or values, cast ≤ 8 and a boolean mask),
# measured with tracemalloc; doubled, as resources' estimates are, for the allocator's slack.
CHUNK_BYTES_PER_VALUE = 32


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
    if isinstance(value, (list, tuple)) and _holds_bool(value):   # [True, 1.0] → [1., 1.]
        raise ArgumentError(argument, f"{brief(value)} holds booleans; give real numbers")
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
    if scale == "linear" and not math.isfinite(stop - start):
        raise ArgumentError(name, f"stop - start = {stop!r} - ({start!r}) overflows float64; "
                                  "use a narrower range")
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
    A range is ``np.linspace``/``np.geomspace`` bit for bit, built in chunks (see :func:`axis`).
    """
    if isinstance(spec, Mapping):
        return _build(spec, np.dtype(np.float64), name)[0]
    return _explicit(spec, name)


def axis_part(spec: ArrayLike | Mapping[str, object], lo: int, hi: int, *,
              name: str = "axis") -> np.ndarray:
    """float64 values ``lo:hi`` (0 ≤ lo ≤ hi, clipped to the size) of one axis, checked as
    :func:`axis_values` checks it: ``axis_values(spec)[lo:hi]`` bit for bit, a range's computed
    for those indices alone (``hi − lo`` values of memory whatever ``num``), so that a caller can
    scan a long range a chunk at a time or read its ends without building it whole."""
    if not isinstance(spec, Mapping):
        return _explicit(spec, name)[lo:hi]
    start, stop, num, scale = _range(spec, name)
    lo, hi = min(lo, num), min(hi, num)
    return _range_values(start, stop, num, scale, lo, hi) if lo < hi else np.empty(0)


def axis(spec: ArrayLike | Mapping[str, object], dtype: DTypeLike, *, name: str = "axis",
         chunk: int = CHUNK) -> np.ndarray:
    """The values of one axis in ``dtype``: checked, cast, and warned about as :func:`cast_axis`.

    A ``{start, stop, num, scale}`` range is written straight into a ``dtype`` array, ``chunk``
    values at a time (each computed in float64, then cast), so it needs ``itemsize · num`` bytes
    plus one chunk, not the float64 array beside the cast; the values are exactly
    ``np.linspace(start, stop, num)`` (or ``np.geomspace``) in float64 cast to ``dtype``.
    An explicit list is ``cast_axis(axis_values(spec), dtype)``.
    """
    dtype = np.dtype(dtype)
    if not isinstance(spec, Mapping):
        values = _explicit(spec, name)
        return _checked_cast(values, _cast(values, dtype, name), dtype, name)
    out, counts = _build(spec, dtype, name, chunk)
    _warn_duplicates(*counts, dtype, name, stacklevel=3)
    return out


def cast_axis(values: np.ndarray, dtype: DTypeLike, *, name: str = "axis") -> np.ndarray:
    """Cast float64 axis values to ``dtype``, warning when distinct values collapse."""
    values, dtype = np.asarray(values, np.float64), np.dtype(dtype)
    return _checked_cast(values, _cast(values, dtype, name), dtype, name)


def _checked_cast(values: np.ndarray, cast: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``cast`` after warning when it holds fewer distinct values than ``values``: counted along
    the values where they are sorted (O(N) memory), else by sorting copies (``np.unique``)."""
    counts = _Distinct()
    counts.add(values, cast)
    if counts.sorted:
        _warn_duplicates(counts.n_in, counts.n_out, dtype, name)
    else:
        _warn_duplicates(np.unique(values).size, np.unique(cast).size, dtype, name)
    return cast


def _warn_duplicates(n_in: int, n_out: int, dtype: np.dtype, name: str, *,
                     stacklevel: int = 4) -> None:
    """DuplicateGridWarning when ``n_out`` < ``n_in``, pointing ``stacklevel`` frames up (the
    default: the caller of a public function that calls this through one helper)."""
    if n_out < n_in:
        warnings.warn(f"{name}: {n_in - n_out} of {n_in} distinct values coincide in "
                      f"{dtype.name}; use float64 or a coarser grid",
                      DuplicateGridWarning, stacklevel=stacklevel)


def _cast(values: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """float64 ``values`` as ``dtype``; ArgumentError naming the first value that overflows."""
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    if not np.all(np.isfinite(cast)):
        big = float(values[~np.isfinite(cast)][0])
        raise ArgumentError(name, f"{big!r} overflows {dtype.name} (largest "
                                  f"{float(np.finfo(dtype).max):.3g}); use float64 or smaller "
                                  "values")
    return cast


class _Distinct:
    """Distinct values of a sorted sequence and of its cast, counted chunk by chunk.

    For sorted ``v``, distinct(v) = 1 + #{i : v[i+1] ≠ v[i]}; the pair across a chunk boundary
    is compared through the previous chunk's last value. ``sorted`` turns False (and the counts
    mean nothing, so they stop) as soon as some v[i+1] < v[i], the boundary pairs included.
    """

    def __init__(self):
        self.n_in = self.n_out = 0
        self.sorted = True
        self._last = None   # (float64, cast) last values of the previous chunk

    def add(self, values: np.ndarray, cast: np.ndarray) -> None:
        if not self.sorted or values.size == 0:
            return
        if self._last is None:
            self.n_in = self.n_out = 1
        else:
            last_v, last_c = self._last
            self.sorted = bool(values[0] >= last_v)
            self.n_in += int(values[0] != last_v)
            self.n_out += int(cast[0] != last_c)
        self.sorted = self.sorted and bool(np.all(values[1:] >= values[:-1]))
        if self.sorted:
            self.n_in += int(np.count_nonzero(values[1:] != values[:-1]))
            self.n_out += int(np.count_nonzero(cast[1:] != cast[:-1]))
        self._last = (values[-1], cast[-1])


def _build(spec: Mapping, dtype: np.dtype, name: str, chunk: int = CHUNK):
    """(``dtype`` array of the range ``spec``, (distinct values in float64, in ``dtype``))."""
    if isinstance(chunk, (bool, np.bool_)) or not isinstance(chunk, numbers.Integral) or chunk < 1:
        raise ArgumentError("chunk", f"{brief(chunk)} must be an integer >= 1")
    start, stop, num, scale = _range(spec, name)
    for key, end in (("start", start), ("stop", stop)):   # the range's largest |value|: an end
        _cast(np.array([end]), dtype, f"{name}.{key}")
    chunk = min(int(chunk), num)
    resources.check_fits(dtype.itemsize * num + CHUNK_BYTES_PER_VALUE * chunk,
                         argument=f"{name}.num", what=f"an axis of {num} values",
                         fix="use fewer values")
    out = np.empty(num, dtype)
    counts = _Distinct()
    for lo, values in _chunks(start, stop, num, scale, chunk):
        out[lo:lo + values.size] = cast = _cast(values, dtype, name)
        counts.add(values, cast)
        del values, cast  # freed before the next chunk is computed
    # Unsorted only where neighbours lie within pow's last-bit error (log scale); a float64 cast
    # is the identity, so its two (adjacent-difference) counts are then equal and warn of nothing.
    if counts.sorted or dtype == np.float64:
        return out, (counts.n_in, counts.n_out)
    return out, _unsorted_counts((start, stop, num, scale), out, chunk, name)


def _unsorted_counts(rng: tuple, cast: np.ndarray, chunk: int, name: str) -> tuple[int, int]:
    """Distinct values of an unsorted range ``rng`` (float64) and of its ``cast``, by sorting.

    Reached only when ``np.geomspace``'s exact endpoints or pow's rounding put a value below its
    predecessor, which needs neighbours within about one ulp of each other. Beside ``cast``: the
    sorted copy and mask of ``np.unique(cast)`` (≤ 9 B per value, itemsize ≤ 4 here), then the
    float64 values and their mask (9 B per value) and one chunk.
    """
    num = cast.size
    resources.check_fits(cast.nbytes + 9 * num + CHUNK_BYTES_PER_VALUE * chunk,
                         argument=f"{name}.num", fix="use fewer values",
                         what=f"counting the distinct values of an axis of {num} values")
    n_out = np.unique(cast).size
    values = np.empty(num)
    for lo, part in _chunks(*rng, chunk):
        values[lo:lo + part.size] = part
    values.sort()
    return 1 + int(np.count_nonzero(values[1:] != values[:-1])), n_out


def _chunks(start: float, stop: float, num: int, scale: str, chunk: int):
    """(lo, float64 values lo:lo + chunk of the range) for lo = 0, chunk, 2·chunk, …"""
    for lo in range(0, num, chunk):
        yield lo, _range_values(start, stop, num, scale, lo, min(lo + chunk, num))


def _range_values(start: float, stop: float, num: int, scale: str, lo: int, hi: int) -> np.ndarray:
    """float64 values ``lo:hi`` of ``np.linspace(start, stop, num)`` or, for ``scale = "log"``,
    of ``np.geomspace(start, stop, num)``, bit for bit (numpy 2's own steps, elementwise).

    geomspace(a, b, n)_i = 10 ** linspace(log10 a, log10 b, n)_i, with the first value a and the
    last b exactly (NumPy multiplies by sign(a) = 1 as well, an identity for a > 0).
    """
    if scale == "linear":
        return _linspace(start, stop, num, lo, hi)
    log_start, log_stop = (np.log10(np.asarray(v, np.float64)) for v in (start, stop))
    values = np.power(10.0, _linspace(log_start, log_stop, num, lo, hi))
    if lo == 0:
        values[0] = start
    if hi == num and num > 1:
        values[-1] = stop
    return values


def _linspace(start, stop, num: int, lo: int, hi: int) -> np.ndarray:
    """float64 values ``lo:hi`` of ``np.linspace(start, stop, num)``, bit for bit.

    y_i = i · step + start with step = (stop − start)/(num − 1); when that step underflows to 0
    NumPy computes (i/(num − 1)) · (stop − start) instead (gh-5437); y_{num−1} = stop exactly;
    for num = 1, y_0 = 0 · (stop − start) + start.
    """
    div, delta = num - 1, np.subtract(stop, start, dtype=np.float64)
    y = np.arange(lo, hi, dtype=np.float64)
    if div > 0:
        step = delta / div
        if step == 0:
            y /= div
            y *= delta
        else:
            y *= step
    else:
        y = y * delta
    y += start
    if hi == num and num > 1:
        y[-1] = stop
    return y


def real(value: object) -> float | None:
    """One real number (a Python or NumPy number, a 0-d numeric NumPy array) as a float — ±inf
    for an integer beyond float64; None for anything else (a bool, a string, a list …)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:        # an int beyond float64
        return math.inf if value > 0 else -math.inf


def _holds_bool(items: list | tuple) -> bool:
    """Whether a nested list holds a boolean, which np.asarray would turn into 1.0 or 0.0 beside
    numbers."""
    return any(isinstance(v, (bool, np.bool_)) or (isinstance(v, (list, tuple)) and _holds_bool(v))
               for v in items)


def _finite(value, name: str) -> float:
    out = real(value)
    if out is None or not math.isfinite(out):
        raise ArgumentError(name, f"{brief(value)} must be a finite number")
    return out
