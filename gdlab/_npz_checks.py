"""What gdlab's own .npz files may hold, checked when they are read back.

``gdlab merge`` checks shard.npz against its tables of :class:`Spec` (:mod:`gdlab.shards`);
:func:`gdlab.load` checks results.npz and zoom.npz here (:func:`check_results`,
:func:`check_sizes`): the text layout (``axis_names``, ``regime_names``), each array's dtype kind,
its values (finite, counts and steps in range, regime codes that ``regime_names`` lists) and its
shape against the grid. Both word a bad value the same way (:func:`first_bad`). NumPy only:
loading a result needs no JAX.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, NoReturn

import numpy as np

from gdlab.errors import ArgumentError
from gdlab.regimes import REGIME_NAMES

__all__ = ["INF", "Spec", "allowed", "first_bad", "check_results", "check_sizes"]

INF = math.inf


class Spec(NamedTuple):
    """What one array may hold. ``kind``: "int", "float" or "bool"; every value is in [lo, hi]
    ("T": run.steps) or equals ``also``, and a float is finite. ``tail`` (shard.npz) is the shape
    after the run axis, "w" standing for the parameter's shape and None for any length."""

    kind: str
    lo: float
    hi: float | str
    also: int | None = None
    tail: tuple = ()


def allowed(s: Spec, steps: int | None = None) -> str:
    """The values ``s`` admits, in words."""
    hi = steps if s.hi == "T" else s.hi
    if s.kind == "float":
        return "finite" if s.lo == -INF else f"finite and >= {s.lo}"
    also = "" if s.also is None else f"{s.also} or "
    if hi == INF:
        return f"{also}>= {s.lo}"
    return f"{also}in [{s.lo}, {hi}]" + (f" (run.steps = {steps})" if s.hi == "T" else "")


def first_bad(name: str, a: np.ndarray, s: Spec, steps: int | None = None) -> str | None:
    """The first value of ``a`` that ``s`` refuses, in words (``NAME[i, j] = v (k of n values
    bad); it must be …``), or None where every value is admitted."""
    hi = steps if s.hi == "T" else s.hi
    ok = (a >= s.lo) & (a <= hi)
    if s.kind == "float":
        ok &= np.isfinite(a)
    if s.also is not None:
        ok |= a == s.also
    bad = np.flatnonzero(~ok)
    if not bad.size:
        return None
    at = np.unravel_index(bad[0], a.shape)
    return (f"{name}[{', '.join(map(str, at))}] = {a[at].item()!r} ({bad.size} of {a.size} "
            f"values bad); it must be {allowed(s, steps)}")


_FLOAT = Spec("float", -INF, INF)
_COUNT = Spec("int", 0, INF)
_STEP = Spec("int", -1, INF)      # a step t, or −1: never
# results.npz's arrays that are not floats; every other one (the axes too) is finite floats.
_RESULTS = {"steps_to_tol": _STEP, "predicted_steps_to_tol": _STEP, "diverged_at": _STEP,
            "trajectory_diverged_at": _STEP, "heatmap_diverged_at": _STEP,
            "period": _STEP,   # −1: diverged or escaped, 0: no period found
            "flips": _COUNT, "mode_flips": _COUNT, "snapshot_steps": _COUNT,
            "trajectory_steps": _COUNT, "heatmap_steps": _COUNT, "heatmap_index": _COUNT,
            "rounding_sensitive": Spec("bool", 0, 1)}
_CODES = ("regime", "predicted_regime")
# Per-run arrays: their leading dimensions are the grid's.
_ON_GRID = {*_CODES, "steps_to_tol", "predicted_steps_to_tol", "diverged_at", "flips",
            "mode_flips", "period", "rounding_sensitive", "contraction", "rate",
            "spectral_radius", "final_error", "max_error", "recurrence_dev", "w0", "score",
            "loss_ratio", "min_loss_ratio", "lyapunov", "late_iterates", "snapshot_w", "w_star",
            "noise_floor"}
_TEXT = ("axis_names", "regime_names")
_KINDS = {"int": ("i", "an integer"), "float": ("f", "a floating-point"),
          "bool": ("b", "a boolean")}


def _fail(file: Path, problem: str) -> NoReturn:
    raise ArgumentError("run_dir", f"{file}: {problem} (not as gdlab writes it); run the config "
                        "again", prefix=False)


def check_results(file: Path, arrays: dict[str, np.ndarray],
                  zoom_file: Path | None = None, zoom: dict[str, np.ndarray] | None = None) -> None:
    """Check what :func:`gdlab.load` read: the layout, each array's dtype kind and values, the
    per-run arrays on the grid; zoom.npz's frames likewise. ArgumentError ``run_dir``, one line
    naming the file, the array, the value and the fix."""
    axes = _text(file, arrays, "axis_names")
    names = _text(file, arrays, "regime_names")
    if names != list(REGIME_NAMES[:len(names)]):
        _fail(file, f"regime_names {names} are not gdlab's regimes {list(REGIME_NAMES)}")
    code = Spec("int", 0, len(names) - 1)
    for a in axes:
        if a not in arrays:
            _fail(file, f"has no {a!r} array, which axis_names names")
        if a in _TEXT or a in _RESULTS or a in _ON_GRID:
            _fail(file, f"axis_names names {a!r}, which is no axis")
        if arrays[a].ndim != 1:
            _fail(file, f"{a} has shape {arrays[a].shape}, an axis must be 1-D")
    grid = tuple(arrays[a].size for a in axes)
    for name, a in arrays.items():
        if name not in _TEXT:
            _values(file, name, a, code if name in _CODES else _RESULTS.get(name, _FLOAT))
        if name in _ON_GRID and a.shape[:len(grid)] != grid:
            _fail(file, f"{name} has shape {a.shape}, but the grid {', '.join(axes)} is {grid}")
    for name, a in (zoom or {}).items():
        _values(zoom_file, name, a, code if name == "regime" else _FLOAT)


def _text(file: Path, arrays: dict[str, np.ndarray], name: str) -> list[str]:
    """The 1-D text array ``name`` (non-empty, without repeats) as a list."""
    a = arrays[name]
    if a.dtype.kind != "U" or a.ndim != 1 or not a.size or len(set(a.tolist())) != a.size:
        _fail(file, f"{name} must be a 1-D array of distinct names, not {a.dtype} {a.shape}")
    return [str(x) for x in a]


def _values(file: Path, name: str, a: np.ndarray, s: Spec) -> None:
    """``a``'s dtype is of ``s.kind`` and ``s`` admits every value."""
    kind, words = _KINDS[s.kind]
    if a.dtype.kind != kind:
        _fail(file, f"{name} has dtype {a.dtype}, it must be {words} array")
    bad = first_bad(name, a, s)
    if bad:
        _fail(file, bad)


def check_sizes(file: Path, arrays: dict[str, tuple[tuple[str, ...], np.ndarray]],
                elsewhere: dict[str, Path]) -> None:
    """Every array has as many dimensions as names (``arrays``: name → (dims, values)), and each
    dimension one length throughout, so the Dataset can be built; an array named in
    ``elsewhere`` is from that file, not ``file``."""
    seen: dict[str, tuple[int, str]] = {}
    for name, (dims, a) in arrays.items():
        file_of = elsewhere.get(name, file)
        if len(dims) != a.ndim:
            _fail(file_of, f"{name} has shape {a.shape}, it must have {len(dims)} dimension(s) "
                        f"({', '.join(dims)})")
        for dim, n in zip(dims, a.shape):
            length, first = seen.setdefault(dim, (n, name))
            if n != length:
                _fail(file_of, f"{name} has shape {a.shape}, but {first} makes {dim} {length} "
                               "long")
