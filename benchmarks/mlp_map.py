"""Sohl-Dickstein's full-size trainability map of ``gdlab.problems.mlp()`` (tanh, width 16, mean
field, float64), in row shards that can be resumed and spread over sessions or machines.

    python benchmarks/mlp_map.py OUTDIR [--grid 4096] [--steps 1000] [--shards 1024]
                                 [--first 0] [--last 1024] [--budget-s 420]

Shard i holds the rows lr1[i·g/s : (i+1)·g/s] of the map against every lr2 (g = --grid, s =
--shards), computed by gdlab's documented call ``gdlab.sweep(net, lr1_rows, over={"alpha_2": lr2},
steps=T, keep="compact")`` and written to ``OUTDIR/shard_<i>.npz`` (``regime`` int8, ``score``
float64, ``lr1``, ``lr2``); a shard already written is skipped, so rerunning continues the map. The
rates span ``gdlab._references.MLP_WINDOW`` (log-spaced, lr1 ∈ [10³, 10⁶], lr2 ∈ [10¹, 10³]).

Cost: 300 832 flops per run-step (``gdlab._references.mlp_step_flops``), so 4096² pairs × 1000
steps is 5.0·10¹⁸ flops — about 21 hours at the H200's whole float64 peak (~67 TFLOP/s), longer at
what the sweep reaches: far beyond one device session, hence the shards (by default 1024 shards of
4 rows, 16 384 pairs, 4.9·10¹⁵ flops each). After each shard the script prints the measured runs/s
and the time the remaining shards need at that rate; it starts no shard once --budget-s is spent
(a shard started then still runs to its end: give a budget that leaves one shard's time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import gdlab
from gdlab._references import mlp_axes, mlp_step_flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--grid", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--shards", type=int, default=1024)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--last", type=int, default=None, help="one past the last shard (default all)")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="start no shard after this many seconds")
    a = ap.parse_args()
    if a.grid % a.shards:
        ap.error(f"--shards {a.shards} must divide --grid {a.grid}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    net = gdlab.problems.mlp()
    lr1, lr2 = mlp_axes(a.grid)
    rows = a.grid // a.shards
    last = a.shards if a.last is None else min(a.last, a.shards)
    t_start, done = time.perf_counter(), []
    for i in range(a.first, last):
        path = out / f"shard_{i:05d}.npz"
        if path.exists():
            continue
        if time.perf_counter() - t_start > a.budget_s:
            print(f"budget spent: stopped before shard {i}", flush=True)
            break
        part = lr1[i * rows:(i + 1) * rows]
        t0 = time.perf_counter()
        res = gdlab.sweep(net, part, over={"alpha_2": lr2}, steps=a.steps, keep="compact",
                          progress=False)
        wall = time.perf_counter() - t0
        np.savez(path, regime=res.regime, score=res.score, lr1=part, lr2=lr2)
        rate = res.regime.size / max(wall - res.compile_s, 1e-9)
        done.append({"shard": i, "pairs": int(res.regime.size), "wall_s": wall,
                     "compile_s": res.compile_s, "runs_per_s": rate,
                     "gflops": rate * a.steps * mlp_step_flops(net) / 1e9,
                     "converged": int((res.regime == gdlab.Regime.CONVERGED).sum())})
        left = (last - i - 1) * rows * a.grid / rate
        print(json.dumps(done[-1]) + f"  # remaining shards at this rate: {left / 3600:.2f} h",
              flush=True)
    with open(out / f"timing_{a.first}_{last}.json", "w") as f:
        json.dump(done, f, indent=1)


if __name__ == "__main__":
    main()
