"""Disjoint shards of one sweep, run by separate processes or hosts, merged into one run directory.

``gdlab run CONFIG --set sweep.shard=i/n --out DIR_i`` simulates only the i-th of n contiguous
slices of the flattened grid and writes the engine's raw per-run statistics (``shard.npz``) with the
resolved config (``shard.json``). ``gdlab merge DIR_0 … DIR_{n−1} --out DIR`` checks that the shards
belong to one config and cover it exactly once, concatenates them, and finishes the study from the
merged statistics: the run directory equals a single-process run's (timings aside). No process needs
to see another, so this works across hosts with nothing but a shared (or copied) filesystem.

Merge trusts nothing it reads: each shard.json key is type- and range-checked and its config
validated again, and each array of shard.npz must be whole, have the dtype and shape the config
implies, and hold only values the engine can produce (``_DISTANCE``, ``_BY_LOSS``). A bad shard
is one GdlabError line naming the directory, the file, the key or array (with an index and value)
and the fix, raised before anything is written.
"""

from __future__ import annotations

import json
import reprlib
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Callable, NamedTuple, NoReturn

import numpy as np

from gdlab import config as config_lib
from gdlab import engine, rundir
from gdlab._npz_checks import INF as _INF
from gdlab._npz_checks import Spec as _Spec
from gdlab._npz_checks import first_bad
from gdlab.errors import GdlabError
from gdlab.interfaces import Modal, WithOptimum, studied_as_map

__all__ = ["write_shard", "merge"]


def write_shard(cfg: config_lib.SweepConfig, out: Path, sim: engine.Simulation, *,
                overwrite: bool, environment: dict, log: Callable[[str], None] = print) -> dict:
    """Write shard ``cfg.shard`` = (i, n) of a sweep into ``out``: the engine's raw per-run
    statistics of its runs (shard.npz, see ``_DISTANCE`` or ``_BY_LOSS``) and the resolved config
    with the timings
    and ``environment`` (shard.json); return shard.json's content."""
    i, n = cfg.shard
    arrays = {"w_final": np.asarray(sim.w_final)}
    arrays.update({f"stats_{k}": np.asarray(v) for k, v in sim.stats._asdict().items()
                   if v is not None})
    if sim.snapshots is not None:
        arrays["snapshots"] = np.asarray(sim.snapshots)
    meta = {"config_path": cfg.path, "config": cfg.resolved, "shard": [i, n],
            "runs": int(arrays["w_final"].shape[0]), "compile_s": sim.compile_s, "run_s": sim.run_s,
            **environment}
    line = (f"shard {i}/{n}: {meta['runs']} runs simulated in {sim.run_s:.3f} s → "
            f"{out}/shard.npz; when all {n} are done: gdlab merge DIR_0 … DIR_{n - 1} --out DIR")
    rundir.write_run(out, overwrite,
                     lambda tmp: rundir.RunFiles({"shard.npz": arrays, "shard.json": meta}, [line]),
                     log=log)
    return meta


# shard.npz's arrays (gdlab._npz_checks.Spec): kind "int" is int32 here, "float" the config's
# run.dtype; a tail is the same in every shard.
_DISTANCE = {   # every array write_shard writes for a problem with a known optimum
    "w_final": _Spec("float", -_INF, _INF, tail=("w",)),
    "stats_t_freeze": _Spec("int", 1, "T", also=-1),
    "stats_steps_to_tol": _Spec("int", -1, "T"),
    "stats_flips": _Spec("int", 0, "T"),
    "stats_err_early": _Spec("float", 0, _INF),
    "stats_err_late": _Spec("float", 0, _INF),
    "stats_err_obs": _Spec("float", 0, _INF),
    "stats_k_obs": _Spec("int", 0, "T"),
    "stats_rec_dev": _Spec("float", 0, _INF),
    "stats_mode_flips": _Spec("int", 0, "T", tail=("w",)),   # exactly when the problem has modes
    "snapshots": _Spec("float", -_INF, _INF, tail=(None, "w")),  # in every shard or in none
}
_BY_LOSS = {   # … and for one judged by its loss (engine.LossStats)
    "w_final": _Spec("float", -_INF, _INF, tail=("w",)),
    "stats_t_freeze": _Spec("int", 0, "T", also=-1),
    "stats_steps_to_tol": _Spec("int", -1, "T"),
    "stats_ratio_sum": _Spec("float", -_INF, _INF),
    "stats_inv_sum": _Spec("float", -_INF, _INF),
    "stats_last_sum": _Spec("float", -_INF, _INF),
    "stats_final_ratio": _Spec("float", -_INF, _INF),
    "stats_min_ratio": _Spec("float", -_INF, _INF),
    "snapshots": _Spec("float", -_INF, _INF, tail=(None, "w")),
}


def _arrays_of(problem) -> dict[str, _Spec]:
    """The arrays of a shard of ``problem``: its statistics are judged by distance or by loss."""
    return _DISTANCE if isinstance(problem, WithOptimum) else _BY_LOSS


def _stats_type(problem) -> type:
    return engine.RunStats if isinstance(problem, WithOptimum) else engine.LossStats
# shard.json: key → (accepted types, what it must be).
_META = {"config_path": ((str,), "a string (the config's path)"),
         "config": ((dict,), "an object (the resolved config)"),
         "shard": ((list,), "[i, n] with 0 <= i < n"),
         "runs": ((int,), "an integer >= 1"),
         "compile_s": ((int, float), "a finite number of seconds >= 0"),
         "run_s": ((int, float), "a finite number of seconds >= 0")}
# What np.load raises on a truncated, corrupt or foreign file (RuntimeError: an encrypted member).
_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, MemoryError,
               NotImplementedError, RuntimeError)


class _Shard(NamedTuple):
    """One validated shard: its directory, config, index i of n, and arrays (``_arrays_of``)."""

    directory: str
    cfg: config_lib.SweepConfig
    index: int
    count: int
    compile_s: float
    run_s: float
    arrays: dict


def _fail(directory, file: str, problem: str, shard: str = "i/n") -> NoReturn:
    """Raise the one-line error: the shard, the file, what is wrong, and how to remake the shard."""
    message = (f"{directory}: {file}: {problem}; re-run that shard: gdlab run CONFIG "
               f"--set sweep.shard={shard} --out {directory}")
    raise GdlabError(message.replace("\r", "\\r").replace("\n", "\\n"))


def _read_meta(directory: Path) -> dict:
    """shard.json of an existing directory: a regular file holding a UTF-8 JSON object."""
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "no such directory"
        raise GdlabError(f"{directory}: {what}; give the shard directories written by "
                         "gdlab run CONFIG --set sweep.shard=i/n")
    path = directory / "shard.json"
    if not path.exists():
        raise GdlabError(f"{directory}: not a shard directory (no shard.json); shards are written "
                         "by gdlab run CONFIG --set sweep.shard=i/n")
    if not path.is_file():
        _fail(directory, "shard.json", "not a regular file")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        _fail(directory, "shard.json", "not UTF-8 text")
    except (ValueError, RecursionError) as e:   # json.JSONDecodeError, too many digits, too deep
        _fail(directory, "shard.json", f"not valid JSON ({e})")
    except OSError as e:
        _fail(directory, "shard.json", f"cannot be read ({e.strerror or e})")
    if not isinstance(meta, dict):
        _fail(directory, "shard.json", f"{reprlib.repr(meta)} must be a JSON object")
    return meta


def _null_at(table: dict):
    """The key of the first null in a JSON object (e.g. ``problem.w0[1]``), or None if none."""
    stack = [("", table)]
    while stack:
        key, value = stack.pop()
        if value is None:
            return key
        if isinstance(value, dict):
            stack += reversed([(f"{key}.{k}" if key else str(k), v) for k, v in value.items()])
        elif isinstance(value, list):
            stack += reversed([(f"{key}[{i}]", v) for i, v in enumerate(value)])
    return None


def _check_meta(directory: Path, meta: dict) -> tuple:
    """Check shard.json's keys (see ``_META``): shard = [i, n] integers with 0 <= i < n; config a
    valid quadratic sweep config whose sweep.shard is i/n; runs the size of slice i of n of the
    config's N runs, [i·N//n, (i+1)·N//n); compile_s and run_s finite and >= 0.
    Returns (config, i, n)."""
    fail = lambda key, problem, shard="i/n": _fail(directory, "shard.json", f"{key}: {problem}",
                                                   shard)
    for key, (types, what) in _META.items():
        if key not in meta:
            fail(key, f"missing; it must be {what}")
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, types):
            fail(key, f"{reprlib.repr(value)} must be {what}")
    shard = meta["shard"]
    if (len(shard) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in shard)
            or not 0 <= shard[0] < shard[1]):
        fail("shard", f"{reprlib.repr(shard)} must be [i, n] with integers 0 <= i < n")
    i, n = shard
    spec = f"{i}/{n}"
    if meta["runs"] < 1:
        fail("runs", f"{meta['runs']!r} must be an integer >= 1", spec)
    for key in ("compile_s", "run_s"):   # exact comparisons: False for NaN, inf and 10**400
        if not 0 <= meta[key] <= sys.float_info.max:
            fail(key, f"{reprlib.repr(meta[key])} must be a finite number of seconds >= 0", spec)
    null = _null_at(meta["config"])
    if null is not None:
        fail("config", f"{null}: null is not a config value (TOML has none)", spec)
    try:
        cfg = config_lib.from_table(meta["config"], meta["config_path"])
    except ValueError as e:
        fail("config", str(e), spec)
    if not isinstance(cfg, config_lib.SweepConfig) or not studied_as_map(cfg.problem_value):
        fail("config", "not a quadratic or loss-judged sweep config; only those are sharded",
             spec)
    if cfg.shard != (i, n):
        fail("config", f"sweep.shard = {cfg.resolved['sweep'].get('shard')!r} disagrees with "
                       f"shard = [{i}, {n}]", spec)
    total = cfg.runs
    size = (i + 1) * total // n - i * total // n
    if meta["runs"] != size:
        fail("runs", f"{meta['runs']!r}, but shard {spec} of the config's {total} runs "
                     f"holds {size}", spec)
    return cfg, i, n


def _read_arrays(directory: Path, spec: str) -> dict:
    """shard.npz: a regular file, a readable .npz archive of plain .npy arrays (no pickle)."""
    path = directory / "shard.npz"
    if not path.is_file():
        _fail(directory, "shard.npz", "not a regular file" if path.exists() else "missing", spec)
    try:
        arrays = np.load(path, allow_pickle=False)
        if isinstance(arrays, np.lib.npyio.NpzFile):
            with arrays:
                arrays = {k: arrays[k] for k in arrays.files}
    except _NPZ_ERRORS as e:
        _fail(directory, "shard.npz", f"unreadable, truncated or corrupt ({type(e).__name__}: {e})",
              spec)
    if not isinstance(arrays, dict):
        _fail(directory, "shard.npz", "a single .npy array, not an .npz archive", spec)
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            _fail(directory, "shard.npz", f"member {name!r} is not a .npy array", spec)
    return arrays


def _check_arrays(directory: Path, arrays: dict, cfg, runs: int, spec: str) -> None:
    """Check shard.npz against ``_arrays_of(problem)``: every array present (stats_mode_flips
    exactly when the problem has eigen-modes, snapshots optional) and no other; each array's
    dtype, its shape (runs, *tail) and its values; name the first offending array and an index
    and value."""
    fail = lambda problem: _fail(directory, "shard.npz", problem, spec)
    problem = cfg.problem_value
    specs = _arrays_of(problem)
    expected = [k for k in specs if k != "stats_mode_flips" or isinstance(problem, Modal)]
    for name in expected:
        if name not in arrays and name != "snapshots":
            fail(f"array {name} is missing")
    for name in arrays:
        if name not in expected:
            fail(f"unexpected array {name!r}; a shard of this config holds {', '.join(expected)}")
    w_shape = tuple(problem.param_shape)
    for name, s in specs.items():
        if name not in arrays:
            continue
        a = arrays[name]
        dtype = np.dtype(np.int32 if s.kind == "int" else cfg.dtype)
        if a.dtype != dtype:
            fail(f"{name} has dtype {a.dtype}, it must be {dtype}")
        want = (runs,) + tuple(d for t in s.tail for d in (w_shape if t == "w" else (t,)))
        if a.ndim != len(want) or any(w is not None and w != d for w, d in zip(want, a.shape)):
            shown = str(tuple("k" if w is None else w for w in want)).replace("'", "")
            fail(f"{name} has shape {a.shape}, it must be {shown} (runs = {runs})")
        bad = first_bad(name, a, s, cfg.steps)
        if bad:
            fail(bad)


def _load(directory) -> _Shard:
    """Read and check one shard directory (shard.json, then shard.npz against its config)."""
    directory = Path(directory)
    meta = _read_meta(directory)
    cfg, i, n = _check_meta(directory, meta)
    arrays = _read_arrays(directory, f"{i}/{n}")
    _check_arrays(directory, arrays, cfg, meta["runs"], f"{i}/{n}")
    return _Shard(str(directory), cfg, i, n, float(meta["compile_s"]), float(meta["run_s"]), arrays)


def _unsharded(cfg) -> dict:
    """The resolved config without sweep.shard: equal for every shard of one sweep."""
    return {**cfg.resolved,
            "sweep": {k: v for k, v in cfg.resolved["sweep"].items() if k != "shard"}}


def _check_together(shards: list[_Shard]) -> list[_Shard]:
    """The shards, in order: one sweep (same config and n), each index once, none missing, and the
    same arrays with the same per-run shapes in each. Returns them sorted by index."""
    first = shards[0]
    by_index = {}
    for s in shards:
        if s.count != first.count or _unsharded(s.cfg) != _unsharded(first.cfg):
            raise GdlabError(f"{s.directory}: shard {s.index}/{s.count} belongs to a different "
                             f"sweep than {first.directory}; merge shards of one config")
        if s.index in by_index:
            raise GdlabError(f"{s.directory}: shard {s.index}/{s.count} given twice "
                             f"({by_index[s.index].directory} and {s.directory})")
        by_index[s.index] = s
        for name in sorted(set(s.arrays) | set(first.arrays)):
            if name not in s.arrays or name not in first.arrays:
                has, lacks = (s, first) if name in s.arrays else (first, s)
                _fail(lacks.directory, "shard.npz", f"array {name} is missing but "
                      f"{has.directory} has it", f"{lacks.index}/{lacks.count}")
            if s.arrays[name].shape[1:] != first.arrays[name].shape[1:]:
                _fail(s.directory, "shard.npz", f"{name} has per-run shape "
                      f"{s.arrays[name].shape[1:]} but {first.directory} has "
                      f"{first.arrays[name].shape[1:]}", f"{s.index}/{s.count}")
    missing = sorted(set(range(first.count)) - set(by_index))
    if missing:
        names = ", ".join(f"{i}/{first.count}" for i in missing)
        raise GdlabError(f"merge: shards {names} are missing")
    return [by_index[i] for i in range(first.count)]


def merge(directories: list[str]) -> tuple[config_lib.SweepConfig, engine.Simulation]:
    """The configuration and the raw simulation of the whole grid, from its shard directories.

    Every shard is checked first (``_load``, ``_check_together``); a bad one raises GdlabError with
    one line naming the directory, the file, the key or array and the fix. The caller finishes the
    study from the result: ``study.run_sweep_study(cfg, out, simulation=sim)`` (``gdlab merge``).
    """
    if not directories:
        raise GdlabError("merge: give the shard directories, e.g. "
                         "gdlab merge runs/s0 runs/s1 --out runs/all")
    parts = _check_together([_load(d) for d in directories])
    cat = lambda key: (np.concatenate([p.arrays[key] for p in parts]) if key in parts[0].arrays
                       else None)
    stats_type = _stats_type(parts[0].cfg.problem_value)
    stats = stats_type(**{k: cat(f"stats_{k}") for k in stats_type._fields})
    sim = engine.Simulation(cat("w_final"), stats, cat("snapshots"),
                            sum(p.compile_s for p in parts), sum(p.run_s for p in parts),
                            path="merged shards")
    return config_lib.from_table(_unsharded(parts[0].cfg), parts[0].cfg.path), sim
