"""The GPU kernel (gdlab.engine.fused) over its tuning knobs, beside XLA's per-step loop, \
on one device.

    python benchmarks/fused_tuning.py [--n 10000000] [--steps 1000] [--json fused_tuning.json]

The canonical sweep (L = ½(xw − y)², x = 1, y = 100, w₀ = 0, α ∈ [0, 3], float32, statistics on):
updates/s of the kernel for each (runs per block, warps, tile), of the update alone, of float64,
and of the per-step engine (``FAST_PATH = "never"``, unroll 16). Before timing, each kernel's steps
to tolerance, flips and freeze steps are compared with the per-step engine on the same device
(last-bit differences of multiply-add contraction may move a run near a class edge). On a CPU the
kernel runs interpreted: use a small --n there, to check the script, not to measure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import numpy as np

import gdlab
import gdlab.bench
from gdlab import engine
from gdlab.engine import fused

P_AXES = gdlab.problems.scalar_regression(1.0, 100.0)._replace(x=None, y=None)  # shared x, y
H_AXES = {"alpha": 0}                                                         # α per run

CONFIGS = [  # (runs per block, warps, tile, quiet): runs per thread = block / (32 · warps)
    (128, 4, 10, False), (128, 4, 10, True), (128, 4, 20, True), (128, 4, 32, True),
    (64, 2, 20, True), (256, 8, 20, True), (32, 1, 20, True), (128, 4, 50, True),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default="fused_tuning.json")
    ap.add_argument("--bench-json", default=None,
                    help="then run `gdlab bench` with the fastest configuration, writing this JSON")
    a = ap.parse_args()
    cpu = jax.default_backend() == "cpu"
    sgd = gdlab.optimizers.get("sgd").make
    rows = []

    def inputs(dtype):
        p = gdlab.problems.scalar_regression(1.0, 100.0)
        p = p._replace(x=np.asarray(1.0, dtype), y=np.asarray(100.0, dtype))
        alphas = np.linspace(0.0, 3.0, a.n).astype(dtype)
        return jax.device_put((p, {"alpha": alphas}, np.zeros(a.n, dtype), None,
                               np.asarray(1.0, dtype)))

    def timed(label, fn, args, compile_s=None, **info):
        """``fn`` jitted (or already compiled, with its compile time), then timed."""
        if compile_s is None:
            t0 = time.perf_counter()
            fn = jax.jit(fn).lower(*args).compile()
            compile_s = time.perf_counter() - t0
        compiled = fn
        out = jax.block_until_ready(compiled(*args))
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        row = dict(variant=label, N=a.n, T=a.steps, compile_s=round(compile_s, 3),
                   median_run_s=round(med, 5), updates_per_s=a.n * a.steps / med, **info)
        rows.append(row)
        print(json.dumps(row), flush=True)
        return out

    args32 = inputs(np.float32)
    engine.FAST_PATH[0] = "never"
    fn, compile_s = engine.chunk_program(*args32, make_optimizer=sgd, steps=a.steps, unroll=16,
                                         batched_fields=frozenset({"alpha"}))
    ref = timed("xla per-step, unroll 16", fn, args32, compile_s)
    _, ref_stats, _ = jax.device_get(ref)

    for block, warps, tile, quiet in CONFIGS:
        run = fused.program(P_AXES, H_AXES, make_optimizer=sgd, steps=a.steps, dtype=np.float32,
                            rate=False, block=block, warps=warps, tile=tile, quiet=quiet,
                            interpret=cpu)
        label = f"fused {block}/{warps}/{tile}" + (" quiet" if quiet else "")
        try:
            _, st, _ = jax.device_get(timed(label, run, args32, block=block, warps=warps,
                                            tile=tile, quiet=quiet))
        except Exception as err:   # a configuration the compiler refuses: report and go on
            print(json.dumps(dict(variant=label, error=repr(err)[:300])))
            continue
        rows[-1]["agree"] = {k: float(np.mean(getattr(st, k) == getattr(ref_stats, k)))
                             for k in ("t_freeze", "steps_to_tol", "flips", "k_obs")}
        print("  agreement with the per-step engine:", rows[-1]["agree"], flush=True)

    run = fused.program(P_AXES, H_AXES, make_optimizer=sgd, steps=a.steps, dtype=np.float32,
                        rate=False, statistics=False, interpret=cpu)
    timed("fused update-only", run, args32)
    with jax.enable_x64(True):
        args64 = inputs(np.float64)
        run = fused.program(P_AXES, H_AXES, make_optimizer=sgd, steps=a.steps, dtype=np.float64,
                            rate=False, interpret=cpu)
        timed("fused float64", run, args64)
    best = max((r for r in rows if r.get("quiet")), key=lambda r: r["updates_per_s"], default=None)
    with open(a.json, "w") as fh:
        json.dump(dict(device=str(jax.devices()[0].device_kind), jax=jax.__version__, rows=rows,
                       best=best), fh, indent=1)
    if a.bench_json and best:
        fused.BLOCK, fused.WARPS, fused.TILE = best["block"], best["warps"], best["tile"]
        print(f"gdlab bench with block {fused.BLOCK}, warps {fused.WARPS}, tile {fused.TILE}:")
        engine.FAST_PATH[0] = "auto"
        t0 = time.perf_counter()
        gdlab.bench.main(["--json", a.bench_json])
        print(f"bench wall {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
