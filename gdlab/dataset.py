"""A run directory as an :class:`xarray.Dataset`, and exported as netCDF or a tidy CSV table.

:func:`load` reads ``results.npz`` (and ``zoom.npz``) with ``allow_pickle=False`` and
``summary.json``, and keeps every array bit for bit (values and dtypes):

* the sweep axes (``axis_names``: α first, then the second axis) are the coordinates;
* every per-run array is a variable on them; its further dimensions are named — ``param`` (the
  components of a vector w₀), ``mode`` (``mode_flips``: eigen-directions), ``step`` (``snapshot_w``,
  whose coordinate ``step`` holds ``snapshot_steps``), ``late_iterate`` (``late_iterates``);
* the regimes (``regime``, ``predicted_regime``, the zoom frames' and the boundaries' regimes) are
  categorical in CF's way: integer codes with ``flag_values`` and ``flag_meanings`` (the names,
  space-separated); :func:`named` turns codes into names;
* arrays not on the grid have their own dimensions: the ``trajectory_*`` arrays are on
  ``trajectory_alpha`` (``trajectory_w`` also on ``trajectory_step``, the coordinate holding
  ``trajectory_steps``), the ``heatmap_*`` arrays (the α a 1-D grid too large to record whole
  draws its heatmap from) on ``heatmap_alpha`` (``heatmap_w`` also on ``heatmap_step``), the
  zoom frames (``zoom_x``, ``zoom_y``, ``zoom_regime``, ``zoom_score``)
  on (``zoom_frame``, ``zoom_i``, ``zoom_j``), summary.json's bisected regime boundaries
  (``boundary_alpha``, ``boundary_lo``, ``boundary_below``, …) on ``boundary``, and any other array
  on ``NAME_dim0``, ``NAME_dim1``, …;
* ``summary.json`` becomes attributes: netCDF attributes are flat, so the config is the JSON string
  ``config_json``, the whole summary ``summary_json``, and its scalars flat (``dtype``, ``steps``,
  ``tol``, and one level down ``versions_jax``, ``timings_total_s``, ``agreement_fraction``, …).

Nothing read is trusted: the arrays' dtypes, shapes (against the axes and the other coordinates),
finiteness and regime codes are checked before the Dataset is built (:mod:`gdlab._npz_checks`), a
file gdlab did not write so being one ArgumentError line.

:func:`export` writes the Dataset as netCDF-4 (through h5netcdf: every dtype kept, int8 codes,
int64 steps and booleans included, which netCDF-3 cannot hold) or one CSV row per run (the axis
values, the regimes by name, every per-run scalar), through a temporary file renamed into place
(the netCDF built in memory, then written with plain file I/O: a full disk is one OSError).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from gdlab import rundir
from gdlab._naming import symbol
from gdlab._npz_checks import check_results, check_sizes
from gdlab.errors import ArgumentError, OutputError, one_line

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["load", "named", "table", "export", "read_npz", "read_summary", "FORMATS"]

FORMATS = {"netcdf": ".nc", "csv": ".csv"}   # --to → the default file's suffix
# Other names a netCDF-4 file goes by (it is HDF5), and none: taken as netCDF without --to.
_NETCDF_SUFFIXES = ("", ".nc", ".nc4", ".cdf", ".netcdf", ".h5", ".hdf5")
_CATEGORICAL = ("regime", "predicted_regime")
# Coordinates of dimensions other than the axes: results.npz name → the dimension (and name).
_COORDS = {"snapshot_steps": "step", "trajectory_steps": "trajectory_step",
           "trajectory_alpha": "trajectory_alpha", "heatmap_steps": "heatmap_step",
           "heatmap_alpha": "heatmap_alpha"}
# Arrays on runs of their own, not the grid's: name prefix → their leading dimension.
_OWN_RUNS = {"trajectory_": "trajectory_alpha", "heatmap_": "heatmap_alpha"}
# The names of an array's dimensions after the grid's (or after trajectory_alpha's, …).
_TRAILING = {"snapshot_w": ("step", "param"), "trajectory_w": ("trajectory_step", "param"),
             "heatmap_w": ("heatmap_step", "param"),
             "mode_flips": ("mode",), "w0": ("param",), "w_star": ("param",),
             "trajectory_w_star": ("param",), "heatmap_w_star": ("param",),
             "late_iterates": ("late_iterate",)}
_ZOOM_DIMS = {"x": ("zoom_frame", "zoom_i"), "y": ("zoom_frame", "zoom_j"),
              "regime": ("zoom_frame", "zoom_i", "zoom_j"),
              "score": ("zoom_frame", "zoom_i", "zoom_j")}
_LONG_NAMES = {
    "regime": "simulated regime",
    "predicted_regime": "predicted regime (closed form or linear map in float64)",
    "steps_to_tol": "first t with |w_t − w*| < tol (−1: never within T)",
    "predicted_steps_to_tol": "predicted first t with |w_t − w*| < tol (−1: never within T)",
    "rounding_sensitive": "outcome decided by rounding (left out of the agreement)",
    "rate": "r = 1 − αλ",
    "contraction": "measured mean per-step contraction factor",
    "spectral_radius": "spectral radius ρ of the linear map",
    "flips": "sign changes of the error between resolvable observations",
    "mode_flips": "sign changes per eigen-direction",
    "diverged_at": "step at which the run left the float range and was frozen (−1: never)",
    "final_error": "‖w_T − w*‖ (frozen runs: at the last in-bound iterate; mask diverged_at >= 0)",
    "max_error": "max over t of ‖w_t − w*‖",
    "recurrence_dev": "deviation from |w* − w_{t+1}| = |1 − αλ|·|w* − w_t| (Q4.3)",
    "w0": "initial parameters w₀",
    "score": "trainability score (−Σρ if converged, else Σ1/ρ; ρ = L_t/L_0 clipped at 10⁶)",
    "loss_ratio": "L_T/L_0",
    "min_loss_ratio": "min over t of L_t/L_0",
    "period": "period of the late orbit (1 fixed point, p ≥ 2 attracting cycle, 0 none)",
    "lyapunov": "Lyapunov exponent, mean log|1 − α∇²L| (0 for escaped runs)",
    "late_iterates": "late iterates w_t of the orbit (0 for escaped runs)",
    "snapshot_w": "iterate w_t at the snapshot steps",
    "step": "step t",
    "trajectory_alpha": "step size α of the trajectory runs",
    "trajectory_step": "step t",
    "trajectory_w": "iterate w_t of the trajectory runs",
    "trajectory_diverged_at": "step at which the trajectory run was frozen (−1: never)",
    "trajectory_w_star": "optimum w* of the trajectory runs",
    "trajectory_curvature": "curvature λ (largest Hessian eigenvalue) of the trajectory runs",
    "heatmap_alpha": "step size α of the runs the error heatmap is drawn from",
    "heatmap_step": "step t",
    "heatmap_index": "grid index of each heatmap α (every k-th grid value, and the last)",
    "heatmap_w": "iterate w_t of the heatmap runs",
    "heatmap_diverged_at": "step at which the heatmap run was frozen (−1: never)",
    "heatmap_w_star": "optimum w* of the heatmap runs",
    "heatmap_noise_floor": "rounding-noise floor of the heatmap runs' error ‖w_t − w*‖ (64 ulps "
                           "of |w*|, plus where its squares underflow)",
    "w_star": "optimum w*",
    "noise_floor": "rounding-noise floor of the error ‖w_t − w*‖ (64 ulps of |w*|, plus where its "
                   "squares underflow); a sign flip must also clear 64 ulps of the previous error",
    "zoom_x": "first axis's values in each zoom frame",
    "zoom_y": "second axis's values in each zoom frame",
    "zoom_regime": "regime in each zoom frame",
    "zoom_score": "trainability score in each zoom frame",
}


def _refuse(message: str) -> ArgumentError:
    return ArgumentError("run_dir", message, prefix=False)


def load(run_dir: str | os.PathLike) -> xr.Dataset:
    """The run directory ``run_dir`` (written by ``gdlab run``) as an :class:`xarray.Dataset`.

    Arrays equal results.npz's bit for bit; see the module docstring for the layout. A directory
    that holds no sweep (missing, not gdlab's, the gradient lab's, a shard, unreadable files)
    raises :class:`~gdlab.errors.ArgumentError` with one line naming it and what to do.
    """
    path = Path(run_dir)
    return _dataset(path, *_read(path))


def _dataset(path: Path, arrays: dict[str, np.ndarray], zoom: dict[str, np.ndarray],
             summary: dict) -> xr.Dataset:
    """The Dataset of run directory ``path``'s files, checked first (:mod:`gdlab._npz_checks`):
    a file gdlab did not write so is ArgumentError ``run_dir``, one line."""
    import xarray as xr

    results = path / "results.npz"
    check_results(results, arrays, path / "zoom.npz", zoom)
    axes = [str(a) for a in arrays.pop("axis_names")]
    names = [str(n) for n in arrays.pop("regime_names")]
    grid = tuple(arrays[a].size for a in axes)
    on = {**{a: a for a in axes}, **{k: d for k, d in _COORDS.items() if k in arrays}}
    coords = {dim: arrays.pop(name) for name, dim in on.items()}   # npz name → its dimension
    variables = {name: (_dims(name, a.shape, axes, grid), a) for name, a in arrays.items()}
    variables.update({f"zoom_{k}": (_ZOOM_DIMS.get(k) or _own_dims(f"zoom_{k}", a.ndim), a)
                      for k, a in zoom.items()})
    variables.update(_boundaries(summary, names))
    check_sizes(results, {**{name: ((dim,), coords[dim]) for name, dim in on.items()},
                          **variables}, {f"zoom_{k}": path / "zoom.npz" for k in zoom})
    try:
        return xr.Dataset({k: (dims, a, _var_attrs(k, names))
                           for k, (dims, a) in variables.items()},
                          coords={d: (d, v, _coord_attrs(d, axes)) for d, v in coords.items()},
                          attrs=_attrs(summary))
    except (ValueError, TypeError) as e:   # a layout the checks above did not foresee
        raise _refuse(f"{results}: its arrays do not fit together ({one_line(e)}); run the "
                      "config again") from None


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """results.npz, zoom.npz (or {}) and summary.json of ``path``, checked."""
    if not path.exists():
        raise _refuse(f"{path}: no such directory; give a run directory that `gdlab run CONFIG "
                      "--out DIR` wrote")
    if not path.is_dir():
        raise _refuse(f"{path}: is a file, not a run directory; give the directory that holds "
                      "its results.npz and summary.json")
    try:
        present = set(os.listdir(path))
    except OSError as e:
        raise _refuse(f"{path}: cannot be read ({e.strerror or e})") from None
    if "gradients.json" in present and "results.npz" not in present:
        raise _refuse(f"{path}: a gradient-check run holds no sweep to load; its results are "
                      "gradients.json (json.load) and report.md")
    if {"shard.json", "shard.npz"} <= present:
        raise _refuse(f"{path}: a shard of a sweep; merge the shards first (gdlab merge "
                      "SHARD_DIR... --out DIR) and load the merged directory")
    missing = [f for f in ("results.npz", "summary.json") if f not in present]
    if missing:
        raise _refuse(f"{path}: not a gdlab run directory (no {' nor '.join(missing)}); give a "
                      "directory that `gdlab run CONFIG --out DIR` wrote")
    summary = read_summary(path / "summary.json")
    if "edge_of_stability" in summary:
        raise _refuse(f"{path}: an edge-of-stability run (loss and sharpness over steps, not a "
                      "map); read its results.npz with np.load(path, allow_pickle=False)")
    arrays = read_npz(path / "results.npz")
    for key in ("axis_names", "regime_names", "regime"):   # the axes: check_results
        if key not in arrays:
            raise _refuse(f"{path / 'results.npz'}: has no {str(key)!r} array (not written by "
                          "this gdlab); run the config again")
    zoom = read_npz(path / "zoom.npz") if "zoom.npz" in present else {}
    return arrays, zoom, summary


def read_summary(file: Path) -> dict:
    """A run's summary.json (a JSON object); ArgumentError ``run_dir`` (one line) where it cannot
    be read as one."""
    try:
        summary = json.loads(Path(file).read_text(encoding="utf-8"),
                             parse_constant=_no_constant)
    except (OSError, ValueError) as e:
        raise _refuse(f"{file}: unreadable ({one_line(e)}); run the config again") from None
    if not isinstance(summary, dict):
        raise _refuse(f"{file}: not a gdlab summary (a JSON object); run the config again")
    return summary


def _no_constant(name: str) -> None:
    """gdlab writes JSON without NaN or Infinity (``allow_nan=False``): refuse them."""
    raise ValueError(f"{name} is not a value gdlab writes")


def read_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array of a run's .npz (``allow_pickle=False``); ArgumentError ``run_dir`` (one line)
    where it cannot be read."""
    try:
        with np.load(file, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise _refuse(f"{file}: unreadable ({one_line(e)}); run the config again") from None


def _coord_attrs(dim: str, axes: list[str]) -> dict[str, str]:
    return {"long_name": _axis_long_name(dim) if dim in axes else _LONG_NAMES[dim]}


def _axis_long_name(axis: str) -> str:
    """The axis as the plots name it: ``step size α``, β, β₁, α₂, λ …"""
    return f"step size {symbol(axis)}" if axis.startswith("alpha") else symbol(axis)


def _own_dims(name: str, ndim: int) -> tuple[str, ...]:
    return tuple(f"{name}_dim{k}" for k in range(ndim))


def _dims(name: str, shape: tuple[int, ...], axes: list[str],
          grid: tuple[int, ...]) -> tuple[str, ...]:
    """The dimensions of results.npz's array ``name``: the grid's (``trajectory_*``,
    ``heatmap_*``: those runs') and those named after them; an array on none has its own."""
    own = [dim for prefix, dim in _OWN_RUNS.items() if name.startswith(prefix)]
    if own:   # the runs drawn as trajectories or in the heatmap, even if the grid has as many
        lead = (own[0],)
    elif shape[:len(grid)] == grid:
        lead = tuple(axes)
    else:
        return _own_dims(name, len(shape))
    extra = len(shape) - len(lead)
    # a scalar problem's snapshots have no parameter axis: (α, step), not (α, step, param)
    trailing = _TRAILING.get(name, ())[:extra]
    return (*lead, *trailing, *(f"{name}_dim{k}" for k in range(len(trailing), extra)))


def _var_attrs(name: str, regime_names: list[str]) -> dict[str, Any]:
    attrs = {"long_name": _LONG_NAMES[name]} if name in _LONG_NAMES else {}
    if name in _CATEGORICAL or name in ("zoom_regime", "boundary_below", "boundary_above"):
        attrs.update(_flags(regime_names))
    return attrs


def _flags(names: list[str]) -> dict[str, Any]:
    """CF's categorical attributes: code k means ``names[k]``."""
    return {"flag_values": np.arange(len(names), dtype=np.int8),
            "flag_meanings": " ".join(names)}


def _boundaries(summary: dict, names: list[str]) -> dict[str, tuple]:
    """summary.json's bisected regime boundaries as variables on ``boundary``: ``boundary_alpha``,
    ``boundary_lo``/``_hi`` (the bracket), ``boundary_grid_lo``/``_hi``, ``boundary_rounds``,
    ``boundary_below``/``_above`` (regime codes)."""
    found = summary.get("boundaries")
    found = found.get("bisected") if isinstance(found, dict) else found
    if not (isinstance(found, list) and found and all(isinstance(b, dict) for b in found)):
        return {}
    out = {}
    for key in found[0]:
        values = [b.get(key) for b in found]
        if key in ("below", "above"):
            if all(v in names for v in values):
                codes = [names.index(v) for v in values]
                out[f"boundary_{key}"] = (("boundary",), np.array(codes, np.int8))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[f"boundary_{key}"] = (("boundary",), np.array(values))
    return out


def _attrs(summary: dict) -> dict[str, Any]:
    """summary.json as flat netCDF attributes: its scalars, the scalars one level down as
    ``KEY_SUBKEY``, the config and the whole summary as JSON strings."""
    attrs: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            attrs.update({f"{key}_{k}": _scalar(v) for k, v in value.items()
                          if _scalar(v) is not None})
        elif _scalar(value) is not None:
            attrs[key] = _scalar(value)
    attrs["config_json"] = json.dumps(summary.get("config", {}), ensure_ascii=False)
    attrs["summary_json"] = json.dumps(summary, ensure_ascii=False)
    return attrs


def _scalar(value: Any) -> str | int | float | None:
    """A netCDF attribute value (a bool as 0/1), or None for what is not a scalar."""
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, (str, int, float)) else None


def named(codes: xr.DataArray) -> xr.DataArray:
    """The names of a categorical variable's codes, e.g. ``named(ds.regime)``: the code
    ``flag_values[k]`` means the k-th word of ``flag_meanings`` (CF conventions)."""
    try:
        values = np.asarray(codes.attrs["flag_values"])
        meanings = np.array(str(codes.attrs["flag_meanings"]).split())
    except (AttributeError, KeyError):
        raise ArgumentError("codes", "has no flag_values and flag_meanings attributes; pass a "
                                     "categorical variable such as ds.regime") from None
    index = np.searchsorted(values, codes.values) if values.size else np.zeros(codes.shape, int)
    index = np.minimum(index, max(values.size - 1, 0))
    if values.size != meanings.size or not np.all(values[index] == codes.values):
        raise ArgumentError("codes", "holds codes that flag_values does not list")
    return codes.copy(data=meanings[index]).assign_attrs(
        {k: v for k, v in codes.attrs.items() if not k.startswith("flag_")})


def table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per run: the axis values, the regimes by name, every per-run scalar variable."""
    axes = ds["regime"].dims
    per_run = [k for k, v in ds.data_vars.items() if v.dims == axes]
    frame = ds[per_run].reset_coords(drop=True).to_dataframe().reset_index()
    for k in per_run:
        if "flag_meanings" in ds[k].attrs:
            frame[k] = named(ds[k]).values.reshape(-1)
    return frame


def export(run_dir: str | os.PathLike, to: str | None = None,
           out: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
    """Write the run ``run_dir`` as netCDF-4 (``to="netcdf"``) or a tidy CSV table (``"csv"``; see
    :func:`table`); returns the path written. ``to=None``: from ``out``'s suffix (.csv; .nc, another
    netCDF name or none: netCDF; any other is refused). ``out=None``: ``run_dir/results.nc`` or
    ``run_dir/results.csv``.

    The file is written under a temporary name and renamed into place, so a failure leaves
    nothing. An existing file is replaced only with ``overwrite=True``, a run's own files never.
    """
    to = _format(to, out)
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / f"results{FORMATS[to]}"
    ds = load(run_dir)   # a bad run directory is refused before the output is checked
    _check_out(out, run_dir, overwrite)
    _write(out, overwrite, lambda tmp: _WRITE[to](ds, tmp))
    if out.resolve().parent == run_dir.resolve():   # gdlab's file now: --overwrite replaces it
        rundir.record_files(run_dir, [out.name])
    return out


def _format(to: str | None, out: str | os.PathLike | None) -> str:
    """The format asked for, or the one ``out``'s suffix names; a contradiction is refused."""
    suffix = Path(out).suffix.lower() if out is not None else ""
    base = Path(out).name if out is not None else ""
    if base.lower() in (*FORMATS.values(), *_NETCDF_SUFFIXES[1:]):   # Path(".csv").suffix is ""
        raise OutputError(f"{out}: names only a suffix; give a file name such as "
                          f"{Path(out).with_name('results' + base)}")
    implied = next((name for name, s in FORMATS.items() if s == suffix), None)
    if to is None:
        if implied is None and suffix not in _NETCDF_SUFFIXES:
            raise OutputError(f"{out}: a {suffix} file names no format gdlab exports; name it "
                              f"{Path(out).with_suffix('.nc')} or "
                              f"{Path(out).with_suffix('.csv')}, or pass --to netcdf|csv")
        return implied or "netcdf"
    if to not in FORMATS:
        raise ArgumentError("to", f"{to!r} is not a format; use one of {', '.join(FORMATS)}")
    if implied not in (None, to):
        raise OutputError(f"{out}: a {suffix} file but the format asked for is {to}; name it "
                          f"{Path(out).with_suffix(FORMATS[to])} or ask for --to {implied}")
    return to


def _check_out(out: Path, run_dir: Path, overwrite: bool) -> None:
    if out.is_symlink():   # as gdlab run refuses one (rundir.check_target)
        raise OutputError(f"{out}: is a symbolic link; give the file it should be as --out")
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; give a file name such as {out / 'results.nc'}")
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: exists; pass --overwrite to replace it or --out PATH to "
                          "write elsewhere")
    exported = {f"results{suffix}" for suffix in FORMATS.values()}   # may be exported again
    if (out.exists() and out.resolve().parent == run_dir.resolve()
            and out.name in _listed(run_dir) - exported):
        raise OutputError(f"{out}: is one of the run's own files; choose another --out")
    parent = out.parent
    if not parent.is_dir():
        raise OutputError(f"{out}: {parent} is not a directory; create it or choose another "
                          "--out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: {parent} is not writable; choose another --out")


def _listed(run_dir: Path) -> set[str]:
    """The files gdlab wrote in ``run_dir`` (:func:`gdlab.rundir.listed_files`) and its marker."""
    return {rundir.MARKER, *(rundir.listed_files(run_dir) or [])}


def _write(out: Path, overwrite: bool, write: Callable[[Path], None]) -> None:
    """``write`` ``out`` atomically (:func:`gdlab.rundir.replace_file`; never onto a file that
    appeared meanwhile unless ``overwrite``), a failure worded as one OutputError line."""
    try:
        rundir.replace_file(out, write, exclusive=not overwrite)
    except FileExistsError:
        raise OutputError(f"{out}: appeared while exporting; pass --overwrite to replace "
                          "it") from None
    except OSError as e:
        raise OutputError(f"{out}: writing failed ({e.strerror or one_line(e)}); nothing was "
                          "kept; free space or choose another --out") from None


def _to_netcdf(ds: xr.Dataset, path: Path) -> None:
    """HDF5 built in memory, then written as plain bytes: a full disk is then one OSError, not
    HDF5's error stack and a crash when its half-written file is finalised."""
    # zlib as results.npz is compressed; no _FillValue: gdlab stores no missing values
    encoding = {k: {"_FillValue": None, **({"zlib": True, "complevel": 4, "shuffle": True}
                                           if v.ndim and v.size else {})}
                for k, v in ds.variables.items()}
    buffer = io.BytesIO()
    ds.to_netcdf(buffer, engine="h5netcdf", encoding=encoding)
    path.write_bytes(buffer.getbuffer())


def _to_csv(ds: xr.Dataset, path: Path) -> None:
    table(ds).to_csv(path, index=False)   # floats: the shortest text that reads back exactly


_WRITE = {"netcdf": _to_netcdf, "csv": _to_csv}
