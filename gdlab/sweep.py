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
import numbers
from typing import Mapping

import jax
import numpy as np

from gdlab import engine, grids
from gdlab import optimizers as optimizers_lib
from gdlab.regimes import classify, growth_band

__all__ = ["sweep", "SweepResult", "DTYPES"]

DTYPES = ("float32", "float64")
_DEFAULT_CHUNK_BYTES = 256 * 2**20
CPU_BLOCK = 4096  # runs whose carried state (~10 arrays) fits in a CPU core's L2 cache
_GPU_UNROLL = 16  # measured best on an H200 (1/4/8/16/32: 0.57/1.9/3.2/3.8/1.1 × 10¹¹ updates/s)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Per-run results on the sweep grid (every array has shape ``grid_shape`` first).

    ``axes`` maps each swept name to its values as simulated (cast to ``dtype``), in grid order.
    ``problem``/``hparams``/``w0`` hold every run's inputs on the grid, so theory can be evaluated on
    exactly the numbers the simulation used. With ``keep="compact"`` only ``regime`` and
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
      keep: "all" (every statistic, inputs and theory-ready fields) or "compact" (only ``regime`` and
        ``steps_to_tol``: computed chunk by chunk, so 10⁸ runs fit in about a gigabyte).
      recurrence: measure the Q4.3 recurrence deviation at every step (``recurrence_dev``); None: on
        for gradient descent on a scalar parameter with keep="all". It costs one more carried
        statistic (about 2× on a CPU).
      shard: (i, n) simulates only the i-th of n contiguous slices of the flattened grid and returns
        the engine's raw ``Simulation`` of it, for ``gdlab merge`` (disjoint shards per process).
      simulation: the raw simulation of the whole grid (merged shards): skip simulating, finish the
        result from it — identical to simulating here.
    """
    _check_int("steps", steps, 1)
    # GPUs pay ~9 µs per loop iteration; the CPU tiles and the GPU kernel (gdlab.fused) unroll
    # their own steps, so this only matters for runs outside their scope.
    if unroll == "auto":
        unroll = default_unroll()
    _check_int("unroll", unroll, 1)
    _check_positive("tol", tol)
    if record_every is not None:
        _check_int("record_every", record_every, 1)
    if chunk_size is not None:
        _check_int("chunk_size", chunk_size, 1)
    spec = optimizers_lib.get(optimizer)
    hp = dict(spec.defaults)
    for name, value in (hparams or {}).items():
        if name not in spec.defaults:
            raise ValueError(f"hparams: {optimizer!r} has no hyperparameter {name!r}; "
                             f"known: {', '.join(spec.defaults) or 'none besides alpha'}")
        hp[name] = value
    np_dtype = np.dtype(dtype) if dtype in DTYPES else _check_choice("dtype", dtype, DTYPES)

    axes = {"alpha": grids.cast_axis(grids.axis_values(alphas, name="alphas"), np_dtype,
                                     name="alphas")}
    fields = getattr(problem, "_fields", ())
    for name, values in (over or {}).items():
        if name not in fields and name not in hp and name != "w0":
            raise ValueError(f"over: {name!r} is not a parameter of {type(problem).__name__} "
                             f"({', '.join(fields)}), of {optimizer!r} or 'w0'")
        axes[name] = grids.cast_axis(grids.axis_values(values, name=name), np_dtype, name=name)
    grid = _Grid(axes)
    n, grid_shape = grid.n, grid.shape
    if keep not in ("all", "compact"):
        raise ValueError(f"keep: {keep!r} must be 'all' or 'compact'")

    def shared(name, v):
        """A value every run shares (cast once, never copied per run)."""
        arr = np.asarray(v, np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: {v!r} must be finite")
        with np.errstate(over="ignore"):
            cast = arr.astype(np_dtype)
        if not np.all(np.isfinite(cast)):
            raise ValueError(f"{name}: {v!r} overflows {np_dtype.name}; use float64 or rescale")
        return cast

    param_shape = tuple(problem.param_shape)
    fixed_problem = {f: shared(f, getattr(problem, f)) for f in fields if f not in axes}
    fixed_hp = {k: shared(k, v) for k, v in hp.items() if k not in axes}
    fixed_w0 = None if "w0" in axes else shared("w0", w0)
    if fixed_w0 is not None:
        try:
            np.broadcast_to(fixed_w0, param_shape)
        except ValueError:
            raise ValueError(f"w0: shape {np.shape(w0)} does not fit the parameter shape "
                             f"{param_shape}; give a scalar or an array of that shape") from None
    batched = frozenset(axes)

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
        return w_star, lam, _norm(w_star, param_shape), _norm(w0_at(lo, hi) - w_star, param_shape)

    eps = float(np.finfo(np_dtype).eps)
    bound = engine.divergence_bound(np_dtype)
    chunk = chunk_size or default_chunk(n, np_dtype, param_shape, steps, record_every)
    for lo in range(0, n, chunk):  # checked before any work, chunk by chunk (bounded memory)
        w_star, _, w_abs, err0 = geometry(lo, min(n, lo + chunk))
        if not np.all(np.isfinite(w_star)):
            raise ValueError("problem: the optimum is not finite for some parameters "
                             "(e.g. x = 0 has no optimum); choose parameters with a finite optimum")
        if np.any(w_abs + err0 > bound / 1e3):
            raise ValueError(f"w0/problem: |w0| or |w*| exceeds {bound / 1e3:.3g}, too close to "
                             f"the {np_dtype.name} divergence bound; rescale the problem or use float64")

    # The linear contraction factor r = 1 − αλ, against which each step is checked (Q4.3);
    # defined for plain gradient descent on a scalar parameter (not kept in compact mode).
    linear_scalar = optimizer == "sgd" and param_shape == ()
    if recurrence and not linear_scalar:
        raise ValueError("recurrence: defined for optimizer 'sgd' on a scalar parameter only")
    with_r = linear_scalar and keep == "all" if recurrence is None else bool(recurrence)

    def r_at(lo, hi):
        lam = np.asarray(problem_at(lo, hi).curvature(), np.float64)
        return (1.0 - grid.column("alpha", lo, hi).astype(np.float64) * lam).astype(np_dtype)

    n_dev = engine.device_count(devices)
    if block == "auto":
        block = CPU_BLOCK if jax.default_backend() == "cpu" else None
    elif block is not None:
        _check_int("block", block, 1)
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
        if not (isinstance(n_shards, int) and isinstance(i, int) and 0 <= i < n_shards <= n):
            raise ValueError(f"shard: {i}/{n_shards} must be i/n with 0 <= i < n <= {n} runs")
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
        delta = growth_band(eps, w_abs, err0)
        growth = st.err_late.astype(np.float64) / np.maximum(st.err_early.astype(np.float64),
                                                             np.finfo(np.float64).tiny)
        regime = classify(growth, st.flips, st.t_freeze >= 0, err0, floor, window * delta)
        if keep == "compact":  # written in place: no list of parts, no concatenated copy
            compact["regime"][lo:hi] = regime
            compact["steps_to_tol"][lo:hi] = st.steps_to_tol
            return {"regime": None, "steps_to_tol": None}
        k = st.k_obs.astype(np.float64)
        ratio = st.err_obs.astype(np.float64) / np.maximum(err0, np.finfo(np.float64).tiny)
        with np.errstate(divide="ignore"):
            contraction = np.where(k > 0, ratio ** (1.0 / np.maximum(k, 1.0)), 1.0)
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
        if np.shape(simulation.w_final)[0] != n:
            raise ValueError(f"simulation: holds {np.shape(simulation.w_final)[0]} runs, the grid "
                             f"has {n}")
        parts = [finish(lo, min(n, lo + chunk), jax.tree.map(
                     lambda a: a[lo:lo + chunk], (simulation.w_final, simulation.stats,
                                                  simulation.snapshots)))
                 for lo in range(0, n, chunk)]
        compile_s, run_s = simulation.compile_s, simulation.run_s
    else:
        p, h, w, r = engine_inputs(0, n, lazy=True)
        with precision(dtype):
            sim = engine.simulate(p, h, w, r=r, reduce=finish, **run)
        parts, compile_s, run_s = sim.w_final, sim.compile_s, sim.run_s
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
                  dtype=np_dtype.name, compile_s=compile_s, run_s=run_s, n=n)
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


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: {value!r} must be an integer >= {minimum}")


def _check_positive(name, value):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not np.isfinite(value) or value <= 0):
        raise ValueError(f"{name}: {value!r} must be a finite number > 0")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}: {value!r} must be one of {', '.join(map(repr, choices))}")
