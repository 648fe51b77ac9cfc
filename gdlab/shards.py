"""Disjoint shards of one sweep, run by separate processes or hosts, merged into one run directory.

``gdlab run CONFIG --set sweep.shard=i/n --out DIR_i`` simulates only the i-th of n contiguous slices
of the flattened grid and writes the engine's raw per-run statistics (``shard.npz``) with the resolved
config (``shard.json``). ``gdlab merge DIR_0 … DIR_{n−1} --out DIR`` checks that the shards belong to
one config and cover it exactly once, concatenates them, and finishes the study from the merged
statistics: the run directory equals a single-process run's (timings aside). No process needs to see
another, so this works across hosts with nothing but a shared (or copied) filesystem.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gdlab import config as config_lib
from gdlab import engine, rundir

__all__ = ["write_shard", "merge"]

_FIELDS = engine.RunStats._fields


def write_shard(cfg, out: Path, sim: engine.Simulation, *, overwrite: bool, environment: dict,
                log=print) -> dict:
    i, n = cfg.shard
    arrays = {"w_final": np.asarray(sim.w_final)}
    arrays.update({f"stats_{k}": np.asarray(v) for k, v in sim.stats._asdict().items() if v is not None})
    if sim.snapshots is not None:
        arrays["snapshots"] = np.asarray(sim.snapshots)
    meta = {"config_path": cfg.path, "config": cfg.resolved, "shard": [i, n],
            "runs": int(arrays["w_final"].shape[0]), "compile_s": sim.compile_s, "run_s": sim.run_s,
            **environment}
    with rundir.run_directory(out, overwrite) as tmp:
        rundir.write_npz(tmp / "shard.npz", arrays)
        rundir.write_json(tmp / "shard.json", meta)
    log(f"shard {i}/{n}: {meta['runs']} runs simulated in {sim.run_s:.3f} s → {out}/shard.npz; "
        f"when all {n} are done: gdlab merge DIR_0 … DIR_{n - 1} --out DIR")
    return meta


def _load(directory: Path):
    meta_path = Path(directory) / "shard.json"
    if not meta_path.is_file():
        raise ValueError(f"{directory}: not a shard directory (no shard.json); shards are written by "
                         "gdlab run CONFIG --set sweep.shard=i/n")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(Path(directory) / "shard.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


def merge(directories: list[str], out: Path, *, overwrite: bool = False, progress=None,
          log=print) -> dict:
    """Merge shard directories into one complete run directory at ``out``."""
    from gdlab.study import run_sweep_study

    rundir.check_target(out, overwrite)
    if not directories:
        raise ValueError("merge: give the shard directories, e.g. gdlab merge runs/s0 runs/s1 --out runs/all")
    loaded = [_load(Path(d)) for d in directories]
    n = loaded[0][0]["shard"][1]
    base = {**loaded[0][0]["config"], "sweep": {k: v for k, v in loaded[0][0]["config"]["sweep"].items()
                                                if k != "shard"}}
    by_index = {}
    for d, (meta, arrays) in zip(directories, loaded):
        i, n_i = meta["shard"]
        cfg_i = {**meta["config"], "sweep": {k: v for k, v in meta["config"]["sweep"].items()
                                             if k != "shard"}}
        if n_i != n or cfg_i != base:
            raise ValueError(f"{d}: shard {i}/{n_i} belongs to a different sweep than "
                             f"{directories[0]}; merge shards of one config")
        if i in by_index:
            raise ValueError(f"{d}: shard {i}/{n} given twice ({by_index[i][0]} and {d})")
        by_index[i] = (d, arrays)
    missing = sorted(set(range(n)) - set(by_index))
    if missing:
        raise ValueError(f"merge: shards {', '.join(f'{i}/{n}' for i in missing)} are missing")
    parts = [by_index[i][1] for i in range(n)]
    cat = lambda key: np.concatenate([p[key] for p in parts]) if key in parts[0] else None
    stats = engine.RunStats(**{k: cat(f"stats_{k}") for k in _FIELDS})
    sim = engine.Simulation(cat("w_final"), stats, cat("snapshots"),
                            sum(m["compile_s"] for m, _ in loaded), sum(m["run_s"] for m, _ in loaded))
    cfg = config_lib.from_table(base, loaded[0][0]["config_path"])
    summary = run_sweep_study(cfg, out, overwrite=overwrite, progress=progress, log=log,
                              simulation=sim)
    return summary
