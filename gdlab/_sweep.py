"""``gdlab.sweep``: gradient descent over a grid of step sizes (and other parameters) at once.

    res = gdlab.sweep(gdlab.problems.scalar_regression(x=1.0, y=100.0),
                      alphas=np.linspace(0, 3, 3001), w0=0.0, steps=200, tol=1.0)
    res.regime          # (3001,) int8, names in gdlab.REGIME_NAMES
    res.steps_to_tol    # (3001,) int32, −1 where |w_t − w*| never fell below tol

Extra axes (``over={"x": xs}``) make a grid α × xs, simulated as one flat batch: any problem
parameter, optimizer hyperparameter, or ``w0`` can be an axis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from typing import Mapping

import jax
import numpy as np

from gdlab import engine, grids, resources
from gdlab import optimizers as optimizers_lib
from gdlab.errors import ArgumentError
from gdlab.interfaces import WithOptimum
from gdlab.regimes import classify, growth_band

__all__ = ["sweep", "SweepResult", "DTYPES"]

DTYPES = ("float32", "float64")
_DEFAULT_CHUNK_BYTES = 256 * 2**20
CPU_BLOCK = 4096  # runs whose carried state (~10 arrays) fits in a CPU core's L2 cache
_GPU_UNROLL = 16  # measured best on an H200 (1/4/8/16/32: 0.57/1.9/3.2/3.8/1.1 × 10¹¹ updates/s)
MAX_UNROLL = 1024  # unroll copies the step body that many times: compile time grows with it
DELTA_MAX = float(np.finfo(np.float64).max) / 2**32  # the growth band where e₀ = 0 (see finish)
_TINY, _HUGE = float(np.finfo(np.float64).tiny), float(np.finfo(np.float64).max)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Per-run results on the sweep grid (every array has shape ``grid_shape`` first).

    ``axes`` maps each swept name to its values as simulated (cast to ``dtype``), in grid order.
    ``problem``/``hparams``/``w0`` hold every run's inputs on the grid, so theory can be evaluated
    on exactly the numbers the simulation used. With ``keep="compact"`` only ``regime`` and
    ``steps_to_tol`` are kept; the other per-run fields are None.
    """

    axes: dict[str, np.ndarray]
    regime: np.ndarray           # int8, see gdlab.regimes.Regime
    steps_to_tol: np.ndarray     # int32, first t with |w_t − w*| < tol, −1 if never (t ≤ steps)
    optimizer: str
    steps: int
    tol: float
    dtype: str
    compile_s: float
    run_s: float
    n: int
    engine_path: str = "loop"  # the program that simulated: "fused", "tiled" or "loop"
    contraction: np.ndarray | None = None    # float64, mean per-step factor (|e_k|/|e_0|)^(1/k)
    flips: np.ndarray | None = None          # int32, observed sign changes of the error
    diverged_at: np.ndarray | None = None    # int32, step at which the run was frozen, −1 if never
    final_error: np.ndarray | None = None    # float64, |w_T − w*| (last in-bound iterate if frozen)
    max_error: np.ndarray | None = None      # float64, max_t |w_t − w*| over in-bound iterates
    growth: np.ndarray | None = None         # float64, max |e_t| late half / max |e_t| early half
    mode_flips: np.ndarray | None = None     # int32 grid_shape + (d,), flips per eigen-direction
    recurrence_dev: np.ndarray | None = None  # float64, max_t ||e_{t+1}| − |r||e_t|| / scale_t
    w_final: np.ndarray | None = None
    w_star: np.ndarray | None = None         # float64, grid_shape + param_shape
    curvature: np.ndarray | None = None      # float64, grid_shape: λ_max of each run's Hessian
    trajectory: np.ndarray | None = None     # grid_shape + (n_snapshots,) + param_shape
    snapshot_steps: np.ndarray | None = None
    problem: object = None                   # the problem with grid-shaped swept parameters
    hparams: dict | None = None
    w0: np.ndarray | None = None
    noise_floor: np.ndarray | None = None
    delta: np.ndarray | None = None

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.regime.shape

    @property
    def alpha(self) -> np.ndarray:
        return self.axes["alpha"]

    @property
    def n_runs(self) -> int:
        return int(self.n)

    @property
    def updates_per_s(self) -> float:
        return self.n_runs * self.steps / max(self.run_s, 1e-12)


def precision(dtype: str):
    """Context in which ``dtype`` is usable: float64 turns on JAX's x64 mode for its duration."""
    _check_choice("dtype", dtype, DTYPES)
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def sweep(problem, alphas, *, w0=0.0, steps: int = 200, tol: float = 1.0, optimizer: str = "sgd",
          hparams: Mapping[str, float] | None = None, over: Mapping[str, object] | None = None,
          dtype: str = "float32", unroll: int | str = "auto", record_every: int | None = None,
          chunk_size: int | None = None, block: int | None | str = "auto",
          devices: int | str = 1, progress: bool | None = None, keep: str = "all",
          recurrence: bool | None = None,
          shard: tuple[int, int] | None = None, simulation: engine.Simulation | None = None):
    """Simulate gradient descent for every combination of ``alphas`` × the ``over`` axes.

    Args:
      problem: a problem value, e.g. ``gdlab.problems.scalar_regression(x=1.0, y=100.0)``.
      alphas: 1-D step sizes (any finite values; α ≤ 0 is simulated too).
      w0: initial point (scalar, or shaped like the parameter).
      steps: horizon T ≥ 1; tol > 0: the "reached the optimum" distance.
      optimizer: a name in ``gdlab.optimizers.OPTIMIZERS``; hparams: its fixed hyperparameters.
      over: further axes, name → values: a problem parameter, a hyperparameter, or ``"w0"``.
      dtype: "float32" (default) or "float64".
      unroll: ``lax.scan`` unroll of the per-step loop; "auto": 1 on CPU, 16 on accelerators.
      record_every: keep w_t every k steps (and w_0, w_T) as ``trajectory``; None keeps none.
      chunk_size: runs per compiled chunk (default: from a 256 MiB budget).
      block: runs per cache-resident block within a chunk; "auto" is 4096 on CPU and none (one
        wide vmap) on accelerators.
      devices: split every chunk's runs over this many devices ("all": every visible one);
        results are identical to one device.
      keep: "all" (every statistic, inputs and theory-ready fields) or "compact" (only ``regime``
        and ``steps_to_tol``: computed chunk by chunk, so 10⁸ runs fit in about a gigabyte).
      recurrence: measure the Q4.3 recurrence deviation at every step (``recurrence_dev``); None: on
        for gradient descent on a scalar parameter with keep="all". It costs one more carried
        statistic (about 2× on a CPU).
      shard: (i, n) simulates only the i-th of n contiguous slices of the flattened grid and returns
        the engine's raw ``Simulation`` of it, for ``gdlab merge`` (disjoint shards per process).
      simulation: the raw simulation of the whole grid (merged shards): skip simulating, finish the
        result from it — identical to simulating here.

    Raises:
      gdlab.errors.ArgumentError (a ValueError), before any work, for any bad argument; its
      ``argument`` names it (``alphas``, ``steps``, ``w0``, ``problem.x``, ``hparams['beta']``,
      ``over['x']`` …) and its message is one line. ``TooLargeError`` (a subclass) when the sweep's
      estimated memory exceeds ``gdlab.resources.memory_limit()``.
    """
    # Arguments that need nothing else, each checked before any work.
    steps = _check_int("steps", steps, 1, resources.MAX_STEPS, "the step counters are int32")
    # GPUs pay ~9 µs per loop iteration; the CPU tiles and the GPU kernel (gdlab.engine.fused)
    # unroll their own steps, so this only matters for runs outside their scope.
    if isinstance(unroll, str) and unroll == "auto":
        unroll = default_unroll()
    unroll = _check_int("unroll", unroll, 1, MAX_UNROLL,
                        "compile time grows with the unroll; 16 is the fastest measured")
    np_dtype = np.dtype(_check_choice("dtype", dtype, DTYPES))
    dtype = np_dtype.name
    tol = _check_tol(tol, np_dtype)
    if record_every is not None:
        # Beyond the horizon it records w_0 and w_T only, as record_every = steps does.
        record_every = min(_check_int("record_every", record_every, 1), steps)
    if chunk_size is not None:
        chunk_size = _check_int("chunk_size", chunk_size, 1)
    if not (isinstance(block, str) and block == "auto") and block is not None:
        block = _check_int("block", block, 1, what='"auto", None or an integer')
    if not (isinstance(keep, str) and keep in ("all", "compact")):
        raise ArgumentError("keep", f"{grids.brief(keep)} must be 'all' or 'compact'")
    for name, flag in (("recurrence", recurrence), ("progress", progress)):
        if flag is not None and not isinstance(flag, (bool, np.bool_)):
            raise ArgumentError(name, f"{grids.brief(flag)} must be True, False or None")
    n_dev = engine.device_count(devices)
    try:
        spec = optimizers_lib.get(optimizer)
    except ValueError as e:
        raise ArgumentError("optimizer", str(e)) from None
    if hparams is not None and not isinstance(hparams, Mapping):
        raise ArgumentError("hparams", f"{grids.brief(hparams)} must be a mapping "
                                       "name → value, e.g. {'beta': 0.9}")
    if over is not None and not isinstance(over, Mapping):
        raise ArgumentError("over", f"{grids.brief(over)} must be a mapping name → values, "
                                    "e.g. {'x': [0.5, 1.0]}")
    fields, param_shape = _check_problem(problem)
    hp = dict(spec.defaults)
    for name, value in (hparams or {}).items():
        if name not in spec.defaults:
            known = ", ".join(spec.defaults) or "none besides alpha"
            raise ArgumentError("hparams", f"{optimizer!r} has no hyperparameter {name!r}; "
                                           f"known: {known}")
        hp[name] = value
    for name, _value in (over or {}).items():
        if name == "alpha":
            raise ArgumentError("over", "'alpha' is swept by the alphas argument")
        if not isinstance(name, str) or (name not in fields and name not in hp and name != "w0"):
            raise ArgumentError("over", f"{name!r} is not a parameter of {type(problem).__name__} "
                                        f"({', '.join(fields)}), of {optimizer!r} or 'w0'")
        if name in fields and np.ndim(getattr(problem, name)) != 0:
            raise ArgumentError("over", f"{name!r} is not a number in {type(problem).__name__} "
                                        f"(shape {np.shape(getattr(problem, name))}); only a "
                                        "scalar parameter can be an axis")
    if recurrence and not (optimizer == "sgd" and param_shape == ()):
        raise ArgumentError("recurrence", "defined for optimizer 'sgd' on a scalar parameter only")
    try:
        optimizers_lib.check_fits(optimizer, param_shape)
    except ValueError as e:
        raise ArgumentError("optimizer", str(e)) from None

    # The axes' sizes (a {start, stop, num} range is not built yet), then every shared value.
    specs = {"alpha": ("alphas", alphas),
             **{name: (f"over[{name!r}]", values) for name, values in (over or {}).items()}}
    sizes = {name: grids.axis_size(v, name=arg) for name, (arg, v) in specs.items()}
    n = _prod(sizes.values())

    def shared(argument, v, scalar=False):
        """A value every run shares (cast once, never copied per run)."""
        arr = grids.as_numbers(v, argument)
        if scalar and arr.ndim:
            raise ArgumentError(argument, f"{grids.brief(v)} must be one number (shape "
                                          f"{arr.shape}); to vary it, make it an axis with over=")
        with np.errstate(over="ignore"):
            cast = arr.astype(np_dtype)
        if not np.all(np.isfinite(cast)):
            raise ArgumentError(argument, f"{grids.brief(v)} overflows {np_dtype.name}; "
                                          "use float64 or rescale")
        return cast

    fixed_problem = {f: shared(f"problem.{f}", getattr(problem, f)) for f in fields
                     if f not in sizes}
    fixed_hp = {k: shared(f"hparams[{k!r}]", v, scalar=True) for k, v in hp.items()
                if k not in sizes}
    fixed_w0 = None if "w0" in sizes else shared("w0", w0)
    if fixed_w0 is not None:
        try:
            np.broadcast_to(fixed_w0, param_shape)
        except ValueError:
            raise ArgumentError("w0", f"shape {fixed_w0.shape} does not fit the parameter shape "
                                      f"{param_shape}; give a scalar or an array of that "
                                      "shape") from None
    runs_here, where = n, ""
    if shard is not None:
        if not (isinstance(shard, (tuple, list)) and len(shard) == 2 and all(
                isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                for v in shard)):
            raise ArgumentError("shard", f"{grids.brief(shard)} must be a pair (i, n) of integers")
        shard = (int(shard[0]), int(shard[1]))
        i, n_shards = shard
        if not 0 <= i < n_shards <= n:
            raise ArgumentError("shard", f"{i}/{n_shards} must be i/n with 0 <= i < n <= {n} runs")
        if simulation is not None:
            raise ArgumentError("simulation", "give shard (simulate a slice) or simulation (finish "
                                              "a merged one), not both")
        runs_here = (i + 1) * n // n_shards - i * n // n_shards
        where = f"shard {i}/{n_shards} ({runs_here} runs) of "
    if simulation is not None:
        if not isinstance(simulation, engine.Simulation) or simulation.stats is None:
            raise ArgumentError("simulation", f"{grids.brief(simulation)} is not the raw "
                                              "simulation of a sweep (gdlab merge makes one)")
        shape = tuple(np.shape(simulation.w_final))
        if shape[:1] != (n,) or shape[1:] != param_shape:
            raise ArgumentError("simulation", f"holds {shape[0] if shape else 0} runs of shape "
                                              f"{shape[1:]}, the grid has {n} runs of shape "
                                              f"{param_shape}")

    # The memory the request needs, before allocating anything per run.
    size_txt = " × ".join(map(str, sizes.values()))
    snapshots = steps // record_every + 2 if record_every else 0
    fixes = ["keep='compact'"] * (keep == "all") + ["fewer runs"] + (
        ["a coarser record_every"] if record_every else [])
    fix = "use " + (f"{', '.join(fixes[:-1])} or {fixes[-1]}" if len(fixes) > 1 else fixes[0])
    resources.check_fits(
        resources.sweep_bytes(runs_here, keep="all" if shard is not None else keep,
                              param_size=_prod(param_shape), itemsize=np_dtype.itemsize,
                              snapshots=snapshots,
                              shared_bytes=sum(a.size * 8 for a in fixed_problem.values())),
        argument="over" if over else "alphas",
        what=f"{where}a sweep of {n} runs" + (f" ({size_txt})" if len(sizes) > 1 else "")
             + f" with keep={keep!r}" + (f", record_every={record_every}" if record_every else ""),
        fix=fix)

    axes = {name: grids.cast_axis(grids.axis_values(v, name=arg), np_dtype, name=arg)
            for name, (arg, v) in specs.items()}
    grid = _Grid(axes)
    grid_shape = grid.shape
    batched = frozenset(axes)
    _check_shapes(problem, fields, param_shape, axes, fixed_problem, np_dtype)

    def problem_at(lo, hi):
        return type(problem)(*(grid.column(f, lo, hi) if f in axes else fixed_problem[f]
                               for f in fields))

    def w0_at(lo, hi):
        if fixed_w0 is None:  # a swept w0 moves every coordinate together
            col = grid.column("w0", lo, hi).reshape((hi - lo,) + (1,) * len(param_shape))
            return np.broadcast_to(col, (hi - lo,) + param_shape)
        return np.broadcast_to(fixed_w0, (hi - lo,) + param_shape)

    def geometry(lo, hi):
        """float64 per-run w*, λ_max, |w*|, |e₀| of runs [lo, hi)."""
        with np.errstate(all="ignore"):
            p = problem_at(lo, hi)
            w_star = np.broadcast_to(np.asarray(p.optimum(), np.float64), (hi - lo,) + param_shape)
            lam = np.broadcast_to(np.asarray(p.curvature(), np.float64), (hi - lo,))
            return (w_star, lam, _norm(w_star, param_shape),
                    _norm(w0_at(lo, hi) - w_star, param_shape))

    def blame(lo, bad, default):
        """The argument behind the first bad run of [lo, lo + len(bad)), and where it is."""
        swept = [f for f in fields if f in axes]
        if not swept or bad.all():
            return default, ""
        j = lo + int(np.flatnonzero(bad)[0])
        at = ", ".join(f"{f} = {float(grid.column(f, j, j + 1)[0])!r}" for f in swept)
        return (f"over[{swept[0]!r}]" if len(swept) == 1 else "over"), f" (at {at})"

    eps = float(np.finfo(np_dtype).eps)
    bound = engine.divergence_bound(np_dtype)
    chunk = min(n, chunk_size) if chunk_size else default_chunk(n, np_dtype, param_shape, steps,
                                                                record_every)
    for lo in range(0, n, chunk):  # checked before any work, chunk by chunk (bounded memory)
        w_star, lam, w_abs, err0 = geometry(lo, min(n, lo + chunk))
        bad = ~np.isfinite(w_star.reshape(len(w_abs), -1)).all(axis=1)
        if bad.any():
            arg, at = blame(lo, bad, "problem")
            raise ArgumentError(arg, f"the optimum is not finite{at}; choose parameters with a "
                                     "finite optimum (e.g. x ≠ 0 in scalar_regression)")
        bad = ~np.isfinite(lam)
        if bad.any():
            arg, at = blame(lo, bad, "problem")
            raise ArgumentError(arg, f"the curvature λ_max is not finite{at}; rescale the problem")
        limit = bound / 1e3
        bad = w_abs > limit
        if bad.any():
            arg, at = blame(lo, bad, "problem")
            raise ArgumentError(arg, f"|w*| = {w_abs[bad][0]:.3g}{at} exceeds {limit:.3g}, too "
                                     f"close to the {np_dtype.name} divergence bound; rescale the "
                                     "problem or use float64")
        bad = w_abs + err0 > limit
        if bad.any():
            raise ArgumentError("w0" if fixed_w0 is not None else "over['w0']",
                                f"|w*| + |w0 − w*| = {(w_abs + err0)[bad][0]:.3g} exceeds "
                                f"{limit:.3g}, too close to the {np_dtype.name} divergence bound; "
                                "start nearer the optimum, rescale the problem or use float64")

    # The linear contraction factor r = 1 − αλ, against which each step is checked (Q4.3);
    # defined for plain gradient descent on a scalar parameter (not kept in compact mode).
    linear_scalar = optimizer == "sgd" and param_shape == ()
    with_r = linear_scalar and keep == "all" if recurrence is None else bool(recurrence)

    def r_at(lo, hi):
        with np.errstate(over="ignore", invalid="ignore"):
            lam = np.asarray(problem_at(lo, hi).curvature(), np.float64)
            r = 1.0 - grid.column("alpha", lo, hi).astype(np.float64) * lam
        # |r| beyond the dtype's range is held at its largest finite value: such a run leaves the
        # divergence bound at its first step unless e_t = 0, where inf · 0 would be NaN.
        top = float(np.finfo(np_dtype).max)
        return np.clip(r, -top, top).astype(np_dtype)

    if isinstance(block, str):
        block = CPU_BLOCK if jax.default_backend() == "cpu" else None
    run = dict(make_optimizer=spec.make, steps=steps, tol=tol, unroll=unroll,
               record_every=record_every, chunk_size=chunk, block=block, batched_fields=batched,
               devices=n_dev, progress=progress)

    def engine_inputs(lo, hi, lazy, rate=True):
        at = (lambda fn: _Lazy(fn, lo, hi)) if lazy else (lambda fn: fn(lo, hi))
        column = lambda name: at(lambda a, b: grid.column(name, a, b))
        p = type(problem)(*(column(f) if f in axes else fixed_problem[f] for f in fields))
        h = {"alpha": column("alpha"),
             **{k: column(k) if k in axes else fixed_hp[k] for k in hp}}
        return p, h, at(w0_at), at(r_at) if with_r and rate else None

    if shard is not None:
        i, n_shards = shard
        p, h, w, r = engine_inputs(i * n // n_shards, (i + 1) * n // n_shards, lazy=False)
        with precision(dtype):
            return engine.simulate(p, h, w, r=r, **run)

    window = steps - steps // 2
    compact = ({"regime": np.empty(n, np.int8), "steps_to_tol": np.empty(n, np.int32)}
               if keep == "compact" else None)

    def finish(lo, hi, out):
        """Per-run results of runs [lo, hi) from the engine's statistics (host, float64)."""
        w_final, st, snaps = out
        w_star, lam, w_abs, err0 = geometry(lo, hi)
        floor = engine.noise_floor(eps, w_abs, err0)
        # Where e₀ = 0 the band is infinite; held at DELTA_MAX, which still covers every growth.
        delta = np.minimum(growth_band(eps, w_abs, err0), DELTA_MAX)
        with np.errstate(over="ignore"):   # e.g. float64 from |e₀| = 1e-300 to the bound
            growth = st.err_late.astype(np.float64) / np.maximum(st.err_early.astype(np.float64),
                                                                 _TINY)
        growth = np.minimum(growth, _HUGE)
        regime = classify(growth, st.flips, st.t_freeze >= 0, err0, floor, window * delta)
        if keep == "compact":  # written in place: no list of parts, no concatenated copy
            compact["regime"][lo:hi] = regime
            compact["steps_to_tol"][lo:hi] = st.steps_to_tol
            return {"regime": None, "steps_to_tol": None}
        k = np.maximum(st.k_obs.astype(np.float64), 1.0)
        err_obs, err0_ = st.err_obs.astype(np.float64), np.maximum(err0, _TINY)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            contraction = (err_obs / err0_) ** (1.0 / k)
            # The ratio can overflow (float64 from |e₀| = 1e-300 to the bound): take its k-th root
            # in logarithms there, and hold the rare factor beyond float64 at its largest value.
            big = ~np.isfinite(contraction)
            if big.any():
                contraction[big] = np.minimum(np.exp(
                    (np.log(err_obs[big]) - np.log(err0_[big])) / k[big]), _HUGE)
        contraction = np.where(st.k_obs > 0, contraction, 1.0)
        w_final = np.asarray(w_final)
        return {
            "regime": regime, "steps_to_tol": st.steps_to_tol, "contraction": contraction,
            "flips": st.flips, "diverged_at": st.t_freeze,
            "final_error": _norm(w_final.astype(np.float64) - w_star, param_shape),
            "max_error": np.maximum(st.err_early, st.err_late).astype(np.float64),
            "growth": growth, "mode_flips": st.mode_flips,
            "recurrence_dev": st.rec_dev.astype(np.float64) if with_r else None,
            "w_final": w_final, "trajectory": snaps, "w_star": w_star, "curvature": lam,
            "noise_floor": floor, "delta": delta}

    if simulation is not None:
        parts = [finish(lo, min(n, lo + chunk), jax.tree.map(
                     lambda a, lo=lo: a[lo:lo + chunk], (simulation.w_final, simulation.stats,
                                                         simulation.snapshots)))
                 for lo in range(0, n, chunk)]
        compile_s, run_s, path = simulation.compile_s, simulation.run_s, simulation.path
    else:
        p, h, w, r = engine_inputs(0, n, lazy=True)
        with precision(dtype):
            sim = engine.simulate(p, h, w, r=r, reduce=finish, **run)
        parts, compile_s, run_s, path = sim.w_final, sim.compile_s, sim.run_s, sim.path
    merged = {k: None if parts[0][k] is None else
              (parts[0][k] if len(parts) == 1 else np.concatenate([q[k] for q in parts]))
              for k in parts[0]}

    def on_grid(a):
        return None if a is None else np.asarray(a).reshape(grid_shape + np.shape(a)[1:])

    snapshot_steps = None
    if record_every is not None:
        snapshot_steps = np.arange(0, steps + 1, record_every)
        if snapshot_steps[-1] != steps:
            snapshot_steps = np.append(snapshot_steps, steps)
    common = dict(axes=axes, optimizer=optimizer, steps=int(steps), tol=float(tol),
                  dtype=np_dtype.name, compile_s=compile_s, run_s=run_s, n=n, engine_path=path)
    if keep == "compact":
        return SweepResult(regime=on_grid(compact["regime"]),
                           steps_to_tol=on_grid(compact["steps_to_tol"]), **common)
    p, h, w, _ = engine_inputs(0, n, lazy=False, rate=False)  # every run's inputs, on the grid
    return SweepResult(
        **{k: on_grid(v) for k, v in merged.items()}, snapshot_steps=snapshot_steps,
        problem=type(problem)(*(on_grid(a) if f in axes else a for f, a in zip(fields, p))),
        hparams={k: on_grid(v) if k in axes else v for k, v in h.items()},
        w0=on_grid(w), **common)


class _Grid:
    """The flattened grid: column(name, lo, hi) is that axis's value for flat runs [lo, hi)."""

    def __init__(self, axes: dict[str, np.ndarray]):
        self.axes = axes
        self.shape = tuple(len(v) for v in axes.values())
        self.n = _prod(self.shape)
        self._pos = {name: k for k, name in enumerate(axes)}

    def column(self, name, lo, hi):
        values = self.axes[name]
        if len(self.shape) == 1:
            return values[lo:hi]
        idx = np.unravel_index(np.arange(lo, hi), self.shape)[self._pos[name]]
        return values[idx]


class _Lazy:
    """A run-indexed input computed on demand for a slice (keeps huge sweeps in bounded memory)."""

    def __init__(self, fn, lo, hi):
        self.fn, self.lo, self.hi = fn, lo, hi
        self.shape = (hi - lo,) + np.shape(fn(lo, min(hi, lo + 1)))[1:]

    def __getitem__(self, item):
        start, stop, _ = item.indices(self.hi - self.lo)
        return self.fn(self.lo + start, self.lo + stop)


def default_unroll() -> int:
    """``unroll="auto"``: 1 on CPU (the tiles unroll themselves), 16 on accelerators."""
    return 1 if jax.default_backend() == "cpu" else _GPU_UNROLL


def default_chunk(n: int, dtype, param_shape=(), steps: int = 1, record_every=None) -> int:
    """Runs per chunk from a 256 MiB budget: per run the engine's inputs, state and outputs
    (~100 B), the host's float64 post-processing (~100 B), and any snapshots."""
    per_run = 200 + 4 * np.dtype(dtype).itemsize * max(1, _prod(param_shape)) * (
        1 + (steps // record_every + 2 if record_every else 0))
    return max(1, min(n, _DEFAULT_CHUNK_BYTES // per_run))


def _norm(e: np.ndarray, param_shape) -> np.ndarray:
    if not param_shape:
        return np.abs(e)
    return np.sqrt(np.sum(e * e, axis=tuple(range(-len(param_shape), 0))))


def _check_int(name, value, minimum, maximum=None, why="", what="an integer"):
    """``value`` as an int in [minimum, maximum], else ArgumentError naming ``name``."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
            or value < minimum):
        raise ArgumentError(name, f"{grids.brief(value)} must be {what} >= {minimum}")
    if maximum is not None and value > maximum:
        raise ArgumentError(name, f"{grids.brief(value)} exceeds {maximum}" +
                            (f" ({why})" if why else ""))
    return int(value)


def _check_tol(value, dtype) -> float:
    """tol: a finite number > 0 that ``dtype`` holds as a normal number (not 0, not inf)."""
    try:
        number = float(value) if isinstance(value, numbers.Real) else math.nan
    except OverflowError:   # an int beyond float64
        number = math.inf
    if isinstance(value, (bool, np.bool_)) or not math.isfinite(number) or number <= 0:
        raise ArgumentError("tol", f"{grids.brief(value)} must be a finite number > 0")
    info = np.finfo(dtype)
    value = number
    if value > float(info.max):
        raise ArgumentError("tol", f"{value!r} is beyond the largest {dtype.name} "
                                   f"({float(info.max):.3g}): it would be inf; use a smaller tol "
                                   "or float64")
    if value < float(info.tiny):
        raise ArgumentError("tol", f"{value!r} is below the smallest normal {dtype.name} "
                                   f"({float(info.tiny):.3g}): it would round to 0 or a subnormal; "
                                   "use a larger tol or float64")
    return float(value)


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ArgumentError(name, f"{grids.brief(value)} must be one of "
                                  f"{', '.join(map(repr, choices))}")
    return value


def _check_problem(problem):
    """(fields, param_shape) of a problem value (a gdlab.problems NamedTuple); else
    ArgumentError."""
    ok = (isinstance(problem, tuple) and isinstance(getattr(type(problem), "_fields", None), tuple)
          and isinstance(problem, WithOptimum))
    shape = None
    if ok:
        try:
            shape = tuple(int(d) for d in problem.param_shape)
        except (AttributeError, TypeError, ValueError):
            ok = False
    if not ok or any(d < 1 for d in shape):
        raise ArgumentError("problem", f"{grids.brief(problem)} is not a problem value; build one "
                                       "with gdlab.problems, e.g. "
                                       "gdlab.problems.scalar_regression(x=1.0, y=100.0)")
    return tuple(type(problem)._fields), shape


def _check_shapes(problem, fields, param_shape, axes, fixed, dtype):
    """The problem's gradient, optimum and curvature fit the parameter (traced, no computation).

    A field of the wrong shape (``x`` an array in a scalar problem) would otherwise surface as a
    JAX error deep inside the compiled loop.
    """
    leaf = lambda f: jax.ShapeDtypeStruct((), dtype) if f in axes else jax.ShapeDtypeStruct(
        fixed[f].shape, dtype)
    one = type(problem)(*(leaf(f) for f in fields))
    w = jax.ShapeDtypeStruct(param_shape, dtype)
    name = type(problem).__name__
    with precision(dtype.name):
        try:
            g, opt, lam = jax.eval_shape(lambda p, w: (p.grad(w), p.optimum(), p.curvature()),
                                         one, w)
        except Exception as e:  # noqa: BLE001 — whatever the problem's code raises
            g = opt = lam = None
            why = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"
    if g is not None:
        fits = (g.shape == param_shape and g.dtype == dtype and lam.shape == ()
                and np.broadcast_shapes(opt.shape, param_shape) == param_shape)
        if fits:
            return
        why = (f"its gradient has shape {g.shape} ({g.dtype}), optimum {opt.shape}, curvature "
               f"{lam.shape}; the parameter is {param_shape} ({dtype.name})")
    wide = [f for f in fields if f not in axes and fixed[f].ndim > len(param_shape)]
    if not param_shape and wide:   # a scalar problem: every parameter is a number
        f = wide[0]
        raise ArgumentError(f"problem.{f}", f"shape {fixed[f].shape} does not fit {name}, whose "
                                            "parameters are numbers; give a number (or sweep it "
                                            "with over=)")
    raise ArgumentError("problem", f"{name} does not fit its parameters: {why}")


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out
