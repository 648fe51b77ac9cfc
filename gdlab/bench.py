"""``gdlab bench``: the canonical sweep against a NumPy implementation, side by side in one process.

Canonical sweep: L = ½(xw − y)², x = 1, y = 100, w₀ = 0, N step sizes in [0, 3], T steps, float32,
with the engine's online statistics (freeze step, steps-to-tol, sign flips, max error, contraction
observation, recurrence deviation). The NumPy reference computes the same statistics vectorised over
α; it runs fewer steps by default (its per-update cost does not depend on T) and its statistics are
checked equal to the engine's on the same horizon before any figure is printed.

Rows: ``gdlab`` — exactly the README's call with its defaults,
``gdlab.sweep(gdlab.problems.scalar_regression(x=1.0, y=100.0), alphas, w0=0.0, steps=T,
tol=1.0)``, its wall time after a first (compiling) call: every core, every statistic kept,
classification on the host; ``gdlab-compact`` — the same call with ``keep="compact"`` (regimes
classified on the device, 5 bytes a run copied back); ``gdlab-run`` — ``gdlab run
configs/q4_alpha_sweep.toml --set sweep.alpha.num=N --set run.steps=T`` in this process: its
sweep stage (``summary.json`` → ``timings.run_s``, with the Q4.3 recurrence statistic the study
measures) against ``numpy+rec`` (the NumPy loop with the recurrence too), and its whole wall time
beside it (theory, bisection, plots, files); ``engine`` (the simulation end to end: the statistics
as host arrays, what the NumPy reference returns), ``kernel`` (the compiled chunk alone on
device-resident inputs, statistics on the device), ``kernel-update`` (the same without
statistics), ``update-only`` (end to end without statistics) and ``numpy``. ``--devices`` applies
to the engine and kernel rows; the ``gdlab`` rows take the defaults. Prints one table (variant, N,
T, dtype, device, compile s, median run s, updates/s, ratio to NumPy, ratio to update-only, peak
memory), and writes it as JSON with ``--json PATH``.

``gdlab bench --mlp``: Sohl-Dickstein's trainability map of ``gdlab.problems.mlp()`` (float64),
gdlab's documented call beside his notebook's code (``gdlab._references.mlp_run``): runs (pairs)
per second, their ratio, the agreement of the two maps and the fraction of the machine's float64
matmul peak reached.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import jax
import numpy as np

import gdlab
from gdlab import config, engine, resources
from gdlab import study as study_lib
from gdlab._args import EXIT_BAD_INPUT, ArgumentParser
from gdlab._bundled import BUNDLED
from gdlab._references import Variant, check_map_fits, mlp_run, time_round_robin
from gdlab._references import numpy_sweep as numpy_sweep
from gdlab._sweep import CPU_BLOCK, default_chunk, default_unroll

__all__ = ["numpy_sweep", "main", "format_mlp_table"]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _device_peak_mib() -> float | None:
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**20


def _row(variant, n, steps, dtype, compile_s, times, peak) -> dict:
    med = statistics.median(times)
    return {"variant": variant, "N": n, "T": steps, "dtype": dtype,
            "device": f"{jax.default_backend()}:{jax.devices()[0].device_kind}",
            "compile_s": round(compile_s, 4), "median_run_s": round(med, 4),
            "updates_per_s": n * steps / med, "peak_mib": None if peak is None else round(peak, 1)}


class BenchmarkError(RuntimeError):
    """The benchmark cannot give figures (the engine disagrees with NumPy, a sub-run failed)."""


def run(n: int, steps: int, numpy_n: int, numpy_steps: int, repeats: int, unroll: int,
        check: bool = True, devices: int = 1, with_study: bool = True) -> list[dict]:
    """Every variant timed ``repeats`` times, round-robin, so that a noisy machine slows them alike
    (ratios come from medians measured side by side); compile times come from the first calls."""
    problem = gdlab.problems.scalar_regression(1.0, 100.0)
    p32 = problem._replace(x=np.float32(1.0), y=np.float32(100.0))
    alphas = np.linspace(0.0, 3.0, n)
    np_alphas = np.linspace(0.0, 3.0, numpy_n)
    block = CPU_BLOCK if jax.default_backend() == "cpu" else None  # as gdlab.sweep(block="auto")
    compile_s: dict[str, float] = {}
    study: dict[str, float] = {}
    variants = {"gdlab": _sweep_variant(alphas, steps, compile_s),
                "gdlab-compact": _sweep_variant(alphas, steps, compile_s, keep="compact"),
                **({"gdlab-run": _study_variant(n, steps, study)} if with_study else {}),
                **_kernel_variants(p32, alphas, steps, unroll, block, devices, compile_s),
                **_engine_variants(p32, alphas, steps, unroll, block, devices, compile_s),
                "numpy": _numpy_variant(np_alphas, numpy_steps, recurrence=False),
                **({"numpy+rec": _numpy_variant(np_alphas, numpy_steps, recurrence=True)}
                   if with_study else {})}
    times = time_round_robin(variants, repeats)
    # engine and gdlab run the same chunk program: it compiled once, in whichever ran first.
    compile_s["engine"] = compile_s["gdlab"] = max(compile_s.get("engine", 0.0),
                                                   compile_s.get("gdlab", 0.0))
    rows = _rows(variants, times, compile_s, devices)
    for row in rows:
        if row["variant"] == "gdlab-run":
            row["total_s"] = round(statistics.median(study["total_s"]), 3)
            row["compile_s"] = round(study["compile_s"][0], 4)
    if check:
        _check_against_numpy(problem, np_alphas, numpy_steps)
    _add_ratios(rows)
    return rows


def _sweep_variant(alphas, steps, compile_s, **keep) -> Variant:
    """gdlab: the README's call, exactly, with its defaults (and ``keep="compact"`` for the compact
    row); its wall time less compilation (the first, untimed call compiles; later ones find the
    program in the process's cache)."""
    label = "gdlab-compact" if keep else "gdlab"

    def once():
        t0 = time.perf_counter()
        res = gdlab.sweep(gdlab.problems.scalar_regression(x=1.0, y=100.0), alphas, w0=0.0,
                          steps=steps, tol=1.0, **keep)
        wall = time.perf_counter() - t0
        compile_s[label] = compile_s.get(label, 0.0) + res.compile_s
        return wall - res.compile_s
    return Variant(len(alphas), steps, once)


def _study_variant(n, steps, study) -> Variant:
    """``gdlab run`` of the main config scaled to ``n`` α and ``steps`` steps, in this process, into
    a temporary directory: its sweep stage (``timings.run_s``); its wall time kept in ``study``."""
    path = BUNDLED / "q4_alpha_sweep.toml"
    cfg = config.load(path, [f"sweep.alpha.num={n}", f"run.steps={steps}"])

    def once():
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summary = study_lib.run_sweep_study(cfg, Path(tmp) / "run", progress=False,
                                                log=lambda line: None)
            study.setdefault("total_s", []).append(time.perf_counter() - t0)
        study.setdefault("compile_s", []).append(summary["timings"]["compile_s"])
        return summary["timings"]["run_s"]
    return Variant(n, steps, once)


def _kernel_variants(p32, alphas, steps, unroll, block, devices, compile_s) -> dict[str, Variant]:
    """The device computation alone: one chunk on device-resident inputs, statistics kept on the
    device (no transfers, no host classification); with and without the statistics. Compiles
    both programs now."""
    n = len(alphas)
    unit = devices * (block if block and n >= devices * block else engine.LANES)
    nk = max(unit, (n // unit) * unit)                   # whole blocks (or vectors) per device
    variants = {}
    for label, stats in (("kernel", True), ("kernel-update", False)):
        args = (p32, {"alpha": alphas[:nk].astype(np.float32)}, np.zeros(nk, np.float32), None,
                np.float32(1.0))
        fn, compile_s[label] = engine.chunk_program(
            *args, make_optimizer=_sgd(), steps=steps, unroll=unroll, block=block,
            batched_fields=frozenset({"alpha"}), statistics=stats, devices=devices)
        variants[label] = Variant(nk, steps, functools.partial(_time_kernel, fn,
                                                               jax.device_put(args)))
    return variants


def _time_kernel(fn, args) -> float:
    # One untimed call first: after the host-bound variants a GPU is back at idle clocks, and a
    # ~10 ms kernel would be timed mostly at those.
    jax.block_until_ready(fn(*args))
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def _engine_variants(p32, alphas, steps, unroll, block, devices, compile_s) -> dict[str, Variant]:
    """The engine end to end (chunks, transfers, statistics as host arrays: what NumPy returns), and
    the floor: the same optax step and freeze with the statistics switched off."""
    n = len(alphas)

    def simulate(label, stats):
        def once():
            sim = engine.simulate(p32, {"alpha": alphas.astype(np.float32)},
                                  np.zeros(n, np.float32), make_optimizer=_sgd(), steps=steps,
                                  tol=1.0, unroll=unroll, chunk_size=default_chunk(n, np.float32),
                                  block=block, batched_fields=frozenset({"alpha"}),
                                  statistics=stats, devices=devices)
            compile_s[label] = compile_s.get(label, 0.0) + sim.compile_s
            return sim.run_s
        return Variant(n, steps, once)
    return {"engine": simulate("engine", True), "update-only": simulate("update-only", False)}


def _numpy_variant(alphas, steps, recurrence: bool) -> Variant:
    """NumPy, vectorised over α, same statistics (``recurrence``: also the Q4.3 deviation)."""
    def once():
        t0 = time.perf_counter()
        numpy_sweep(alphas, 1.0, 100.0, 0.0, steps, 1.0, recurrence=recurrence)
        return time.perf_counter() - t0
    return Variant(len(alphas), steps, once)


def _sgd():
    """Gradient descent as the engine takes it: optax.sgd built from a traced α."""
    return gdlab.optimizers.get("sgd").make


def _rows(variants, times, compile_s, devices) -> list[dict]:
    """One row per variant; the peak memory (device, or RSS on a CPU) is the gdlab row's."""
    peak = _peak_rss_mib() if jax.default_backend() == "cpu" else _device_peak_mib()
    rows = [_row(name, v.n, v.steps, "float32", compile_s.get(name, 0.0), times[name],
                 peak if name == "gdlab" else None) for name, v in variants.items()]
    every = len(jax.devices())
    for row in rows:
        row["devices"] = (1 if row["variant"].startswith("numpy") else
                          every if row["variant"].startswith("gdlab") else devices)
    return rows


def _check_against_numpy(problem, alphas, steps) -> None:
    """BenchmarkError unless the engine's statistics equal NumPy's (up to 0.1 % of the runs)."""
    ref = numpy_sweep(alphas, 1.0, 100.0, 0.0, steps, 1.0, recurrence=False)
    same = gdlab.sweep(problem, alphas, steps=steps, tol=1.0, progress=False)
    for name, mine in (("t_freeze", same.diverged_at), ("steps_to_tol", same.steps_to_tol),
                       ("flips", same.flips)):
        bad = np.flatnonzero(mine != ref[name])
        if bad.size > 0.001 * len(alphas):
            raise BenchmarkError(f"engine and NumPy disagree on {name} for {bad.size} runs "
                                 f"(e.g. α = {alphas[bad[0]]}): figures withheld")


def _add_ratios(rows: list[dict]) -> None:
    """×numpy against the NumPy loop with the same statistics: ``numpy+rec`` for the rows that
    measure the Q4.3 recurrence (``gdlab-run``), ``numpy`` for the others."""
    speed = {r["variant"]: r["updates_per_s"] for r in rows}
    floor = speed["update-only"]
    for row in rows:
        base = speed["numpy+rec" if row["variant"] in ("gdlab-run", "numpy+rec") else "numpy"]
        row["ratio_to_numpy"] = round(row["updates_per_s"] / base, 2)
        row["ratio_to_update_only"] = round(row["updates_per_s"] / floor, 3)


def format_table(rows: list[dict]) -> str:
    """The rows of :func:`run` as the printed table."""
    head = (f"{'variant':<12} {'N':>10} {'T':>6} {'dtype':<8} {'device':<14} {'compile s':>9} "
            f"{'median s':>9} {'updates/s':>10} {'×numpy':>7} {'×update':>8} {'peak MiB':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        device = f"{r['device'][:10]} ×{r['devices']}"
        lines.append(f"{r['variant']:<12} {r['N']:>10} {r['T']:>6} {r['dtype']:<8} "
                     f"{device:<14} {r['compile_s']:>9.3f} {r['median_run_s']:>9.3f} "
                     f"{r['updates_per_s']:>10.3g} {r['ratio_to_numpy']:>7.2f} "
                     f"{r['ratio_to_update_only']:>8.3f} "
                     f"{r['peak_mib'] if r['peak_mib'] is not None else '-':>9}")
    for r in rows:
        if "total_s" in r:
            lines.append(f"{r['variant']}: the row is its sweep stage (timings.run_s, with the "
                         f"Q4.3 recurrence, against numpy+rec); the whole command took "
                         f"{r['total_s']:.2f} s (compile {r['compile_s']:.2f} s, theory, "
                         f"bisection, plots, files)")
    return "\n".join(lines)


def _one_compact(n: int, steps: int) -> dict:
    """One compact sweep of the canonical problem, measured in this (fresh) process."""
    problem = gdlab.problems.scalar_regression(1.0, 100.0)
    t0 = time.perf_counter()
    res = gdlab.sweep(problem, {"start": 0.0, "stop": 3.0, "num": n}, steps=steps, tol=1.0,
                      keep="compact", progress=False)
    total = time.perf_counter() - t0
    return {"N": n, "T": steps, "total_s": round(total, 3), "run_s": round(res.run_s, 3),
            "compile_s": round(res.compile_s, 3), "updates_per_s": n * steps / res.run_s,
            "peak_rss_mib": round(_peak_rss_mib(), 1),
            "regime_counts": np.bincount(res.regime.ravel(), minlength=8).tolist()}


def memory_curve(ns: list[int], steps: int) -> list[dict]:
    """Each N in its own process (peak RSS is per process): time and peak memory vs N·T."""
    rows = []
    for n in ns:
        p = subprocess.run([sys.executable, "-m", "gdlab", "bench", "--one", str(n),
                            "--steps", str(steps)], capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchmarkError(f"N = {n} failed: {p.stderr.strip().splitlines()[-1:]}")
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"N = {n:>11,}  T = {steps}  {r['total_s']:>8.2f} s  "
              f"{r['updates_per_s']:.3g} updates/s  peak RSS {r['peak_rss_mib']:>7.1f} MiB",
              flush=True)
    return rows


def _checked(rows: list[dict]) -> list[dict]:
    """``mlp_run``'s rows, unless the maps differ on more than 5 % of the pairs other than by the
    freeze at a loss ratio of 10⁶ (BenchmarkError: figures withheld)."""
    r = rows[0]
    if r["differ_other"] > 0.05 * r["pairs"]:
        raise BenchmarkError(f"gdlab and the notebook classify {r['differ_other']} of "
                             f"{r['pairs']} pairs differently: figures withheld")
    return rows


def format_mlp_table(rows: list[dict]) -> str:
    """The rows of :func:`mlp_run` as the printed table (runs are (lr1, lr2) pairs)."""
    r0 = rows[0]
    head = (f"{'variant':<12} {'N pairs':>9} {'T':>6} {'dtype':<8} {'compile s':>9} "
            f"{'median s':>9} {'runs/s':>9} {'×notebook':>9} {'agree':>13} {'of peak':>8}")
    lines = [f"float64 matmul peak {r0['peak_gflops']:.1f} GFLOP/s; "
             f"{r0['flops_per_run_step']} flops per run-step; {r0['device']}", head,
             "-" * len(head)]
    for r in rows:
        agree = f"{r['agree']}/{r['pairs']}"
        lines.append(f"{r['variant']:<12} {r['N']:>9} {r['T']:>6} {r['dtype']:<8} "
                     f"{r['compile_s']:>9.3f} {r['median_run_s']:>9.3f} {r['runs_per_s']:>9.4g} "
                     f"{r['ratio_to_notebook']:>9.2f} {agree:>13} "
                     f"{100 * r['peak_fraction']:>7.1f}%")
    lines.append(f"differing pairs: {r0['pairs'] - r0['agree']} (at the boundary, where one "
                 f"rounding decides: the notebook's own map moves on about as many when the rates "
                 f"move by one ulp; {r0['differ_blowup']} of them passed a loss ratio of 10⁶); max "
                 f"relative score difference where they agree: "
                 f"{r0['score_rel_diff_converged']:.2g} (converged), "
                 f"{r0['score_rel_diff_not_converged']:.2g} (not)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``gdlab bench`` with ``argv``; returns the exit status: 0, 2 for input refused before any
    work (one line on stderr), 1 when the benchmark gives no figures. As for every ``gdlab``
    command, argparse's own refusals and ``--help`` exit through SystemExit."""
    a = _parser().parse_args(argv)
    if a.steps is None:   # the notebook's reference costs the same per step at any T
        a.steps = 100 if a.mlp and jax.default_backend() == "cpu" else 1000
    error = _input_error(a)
    if error is not None:
        print(f"gdlab bench: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if a.one is not None:
        print(json.dumps(_one_compact(a.one, a.steps)))
        return 0
    if a.memory_curve:
        return _main_memory_curve(a)
    return _main_table(a)


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="gdlab bench", description=__doc__.splitlines()[0])
    gpu = jax.default_backend() != "cpu"
    p.add_argument("--n", type=int, default=10_000_000 if gpu else 1_000_000,
                   help="step sizes (default 10⁶ on CPU, 10⁷ on an accelerator)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per run (default 1000; with --mlp on a CPU 100)")
    p.add_argument("--numpy-n", type=int, default=None,
                   help="NumPy step sizes (default: --n, at most 10⁶)")
    p.add_argument("--numpy-steps", type=int, default=100, help="NumPy steps (default 100)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per variant (default 5)")
    p.add_argument("--unroll", type=int, default=default_unroll(),
                   help="lax.scan unroll (default 1 on CPU, 16 on an accelerator, as gdlab.sweep)")
    p.add_argument("--json", metavar="PATH",
                   help="also write the table as JSON to PATH (default: nothing is written)")
    p.add_argument("--fast-path", choices=engine.FAST_PATH_MODES, default="auto",
                   help="auto (default): the tiles of gdlab.engine.tiled on CPUs, the kernel of "
                        "gdlab.engine.fused on GPUs; tiled, fused (interpreted on a CPU) or never "
                        "(the per-step loop)")
    p.add_argument("--devices", default="all",
                   help='devices for the engine: a count or "all" (default; on a CPU, one device '
                        'per core)')
    p.add_argument("--memory-curve", action="store_true",
                   help="compact sweeps for N = 10³ … --max-n, each in its own process: time and "
                        "peak RSS vs N")
    p.add_argument("--max-n", type=int, default=100_000_000, help="largest N of the memory curve")
    p.add_argument("--mlp", action="store_true",
                   help="Sohl-Dickstein's trainability map of gdlab.problems.mlp() (float64), "
                        "gdlab's documented call against his notebook's code, on --grid² pairs")
    p.add_argument("--grid", type=int, default=64, help="--mlp: lr pairs per side (default 64)")
    p.add_argument("--ref-grid", type=int, default=None,
                   help="--mlp: the notebook's pairs per side (default --grid; its runs/s hardly "
                        "depend on it beyond its chunk)")
    p.add_argument("--ref-chunk", type=int, default=50_000,
                   help="--mlp: the notebook's configurations per batch (default 50 000, his)")
    p.add_argument("--peak-size", type=int, default=2048,
                   help="--mlp: matrix size of the float64 matmul peak (default 2048)")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    return p


_MAXIMA = {"steps": resources.MAX_STEPS, "numpy_steps": resources.MAX_STEPS, "unroll": 1024,
           "repeats": 1000, "peak_size": 16384}   # 16384²: three float64 matrices of 2 GiB


def _input_error(a: argparse.Namespace) -> str | None:
    """Why the options are refused (every number, the memory, the --json directory), or None."""
    for name in ("n", "steps", "numpy_n", "numpy_steps", "repeats", "unroll", "max_n", "grid",
                 "ref_grid", "ref_chunk", "peak_size"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            return f"--{name.replace('_', '-')} {getattr(a, name)} must be >= 1"
    for name, top in _MAXIMA.items():
        if getattr(a, name) > top:
            return f"--{name.replace('_', '-')} {getattr(a, name)} must be <= {top}"
    if a.mlp and a.memory_curve:
        return "--mlp and --memory-curve are separate benchmarks; give one"
    try:
        if a.mlp:
            check_map_fits(a.grid, a.ref_grid or a.grid, a.ref_chunk, a.steps)
        else:
            resources.check_fits(resources.sweep_bytes(a.n), argument="--n",
                                 what=f"a benchmark of {a.n} runs", fix="give a smaller --n")
            resources.check_fits(resources.sweep_bytes(a.n) + 200 * _numpy_n(a),
                                 argument="--numpy-n",
                                 what=f"{a.n} runs beside a NumPy reference of {_numpy_n(a)}",
                                 fix="give a smaller --numpy-n")
        if a.memory_curve:
            resources.check_fits(resources.sweep_bytes(a.max_n, keep="compact"),
                                 argument="--max-n", what=f"a compact sweep of {a.max_n} runs",
                                 fix="give a smaller --max-n")
    except ValueError as e:
        return str(e)
    json_dir = Path(a.json or ".").absolute().parent
    if a.json is not None and (not a.json or Path(a.json).is_dir()):
        return f"--json {a.json!r}: give a file's path"
    if a.json and not (json_dir.is_dir() and os.access(json_dir, os.W_OK)):
        return f"--json {a.json}: {json_dir} is not a writable directory"
    if a.max_n < 1000 and a.memory_curve:
        return f"--max-n {a.max_n} must be >= 1000 (the curve starts at 10³)"
    return None


def _numpy_n(a: argparse.Namespace) -> int:
    return a.numpy_n or min(a.n, 1_000_000)


def _main_memory_curve(a: argparse.Namespace) -> int:
    ns = [10 ** k for k in range(3, 12) if 10 ** k <= a.max_n]
    try:
        rows = memory_curve(ns, a.steps)
    except BenchmarkError as e:
        print(f"gdlab bench: {e}", file=sys.stderr)
        return 1
    _write_json(a.json, rows)
    return 0


def _main_table(a: argparse.Namespace) -> int:
    try:
        devices = engine.device_count(int(a.devices) if a.devices.isdecimal() else a.devices)
    except ValueError as e:
        print(f"gdlab bench: error: --{e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with _fast_path(a.fast_path):
            if a.mlp:
                rows = _checked(mlp_run(a.grid, a.steps, a.repeats, ref_grid=a.ref_grid,
                                        ref_chunk=a.ref_chunk, devices=devices,
                                        peak_size=a.peak_size))
            else:
                rows = run(a.n, a.steps, _numpy_n(a), a.numpy_steps, a.repeats, a.unroll,
                           devices=devices)
    except BenchmarkError as e:
        print(f"gdlab bench: {e}", file=sys.stderr)
        return 1
    print(format_mlp_table(rows) if a.mlp else format_table(rows))
    _write_json(a.json, rows)
    return 0


@contextlib.contextmanager
def _fast_path(mode: str) -> Iterator[None]:
    """``engine.FAST_PATH`` set to ``mode`` inside the block only: a caller's process keeps its
    own setting."""
    saved, engine.FAST_PATH[0] = engine.FAST_PATH[0], mode
    try:
        yield
    finally:
        engine.FAST_PATH[0] = saved


def _write_json(path: str | None, rows: list[dict]) -> None:
    if path is None:   # only what was asked for
        return
    Path(path).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    sys.exit(main())
