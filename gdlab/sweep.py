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
_CPU_BLOCK = 4096  # runs whose carried state (~10 arrays) fits in a CPU core's L2 cache


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Per-run results on the sweep grid (every array has shape ``grid_shape`` first).

    ``axes`` maps each swept name to its values as simulated (cast to ``dtype``), in grid order.
    ``problem``/``hparams``/``w0`` hold every run's inputs on the grid, so theory can be evaluated on
    exactly the numbers the simulation used.
    """

    axes: dict[str, np.ndarray]
    regime: np.ndarray           # int8, see gdlab.regimes.Regime
    steps_to_tol: np.ndarray     # int32, first t with |w_t − w*| < tol, −1 if never (t ≤ steps)
    contraction: np.ndarray      # float64, measured mean per-step factor (|e_k|/|e_0|)^(1/k)
    flips: np.ndarray            # int32, observed sign changes of the error
    diverged_at: np.ndarray      # int32, step at which the run was frozen, −1 if never
    final_error: np.ndarray      # float64, |w_T − w*| (last in-bound iterate if frozen)
    max_error: np.ndarray        # float64, max_t |w_t − w*| over in-bound iterates
    growth: np.ndarray           # float64, max |e_t| late half / max |e_t| early half
    mode_flips: np.ndarray | None  # int32 grid_shape + (d,), sign flips per eigen-direction
    recurrence_dev: np.ndarray | None  # float64, max_t ||e_{t+1}| − |r||e_t|| / (|w*| + |e_t| + |e_{t+1}| + |αλe_t|)
    w_final: np.ndarray
    w_star: np.ndarray           # float64, grid_shape + param_shape: the optimum of each run
    curvature: np.ndarray        # float64, grid_shape: λ_max of each run's Hessian
    trajectory: np.ndarray | None  # grid_shape + (n_snapshots,) + param_shape, if recorded
    snapshot_steps: np.ndarray | None
    problem: object              # the problem with grid-shaped parameter arrays
    hparams: dict[str, np.ndarray]
    w0: np.ndarray
    optimizer: str
    steps: int
    tol: float
    dtype: str
    noise_floor: np.ndarray
    delta: np.ndarray
    compile_s: float
    run_s: float

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.regime.shape

    @property
    def alpha(self) -> np.ndarray:
        return self.axes["alpha"]

    @property
    def n_runs(self) -> int:
        return int(self.regime.size)

    @property
    def updates_per_s(self) -> float:
        return self.n_runs * self.steps / max(self.run_s, 1e-12)


def precision(dtype: str):
    """Context in which ``dtype`` is usable: float64 turns on JAX's x64 mode for its duration."""
    _check_choice("dtype", dtype, DTYPES)
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def sweep(problem, alphas, *, w0=0.0, steps: int = 200, tol: float = 1.0, optimizer: str = "sgd",
          hparams: Mapping[str, float] | None = None, over: Mapping[str, object] | None = None,
          dtype: str = "float32", unroll: int = 1, record_every: int | None = None,
          chunk_size: int | None = None, block: int | None | str = "auto",
          devices: int | str = 1, progress: bool | None = None, shard: tuple[int, int] | None = None,
          simulation: engine.Simulation | None = None):
    """Simulate gradient descent for every combination of ``alphas`` × the ``over`` axes.

    Args:
      problem: a problem value, e.g. ``gdlab.problems.scalar_regression(x=1.0, y=100.0)``.
      alphas: 1-D step sizes (any finite values; α ≤ 0 is simulated too).
      w0: initial point (scalar, or shaped like the parameter).
      steps: horizon T ≥ 1; tol > 0: the "reached the optimum" distance.
      optimizer: a name in ``gdlab.optimizers.OPTIMIZERS``; hparams: its fixed hyperparameters.
      over: further axes, name → values: a problem parameter, a hyperparameter, or ``"w0"``.
      dtype: "float32" (default) or "float64".
      record_every: keep w_t every k steps (and w_0, w_T) as ``trajectory``; None keeps none.
      chunk_size: runs per compiled chunk (default: from a 256 MiB budget).
      block: runs per cache-resident block within a chunk; "auto" is 4096 on CPU and none (one
        wide vmap) on accelerators.
      devices: split every chunk's runs over this many devices ("all": every visible one);
        results are identical to one device.
      shard: (i, n) simulates only the i-th of n contiguous slices of the flattened grid and returns
        the engine's raw ``Simulation`` of it, for ``gdlab merge`` (disjoint shards per process).
      simulation: the raw simulation of the whole grid (merged shards): skip simulating, finish the
        result from it — identical to simulating here.
    """
    _check_int("steps", steps, 1)
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
    grid_shape = tuple(len(v) for v in axes.values())
    mesh = dict(zip(axes, (m.ravel() for m in np.meshgrid(*axes.values(), indexing="ij"))))
    n = mesh["alpha"].size

    def value(name, v):
        """A swept value per run, or a shared value (cast once, not copied per run)."""
        if name in mesh:
            return mesh[name]
        arr = np.asarray(v, np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: {v!r} must be finite")
        return arr.astype(np_dtype)

    flat_problem = type(problem)(*(value(f, getattr(problem, f)) for f in fields))
    flat_hp = {"alpha": mesh["alpha"], **{k: value(k, v) for k, v in hp.items()}}
    param_shape = tuple(problem.param_shape)
    flat_w0 = value("w0", w0)
    if "w0" in mesh:  # a swept w0 moves every coordinate together
        flat_w0 = flat_w0.reshape((n,) + (1,) * len(param_shape))
    try:
        flat_w0 = np.broadcast_to(flat_w0, (n,) + param_shape)
    except ValueError:
        raise ValueError(f"w0: shape {np.shape(w0)} does not fit the parameter shape "
                         f"{param_shape}; give a scalar or an array of that shape") from None

    batched = frozenset(mesh) | {"alpha"}
    with np.errstate(all="ignore"):
        w_star = np.asarray(flat_problem.optimum(), np.float64)
        curvature = np.broadcast_to(np.asarray(flat_problem.curvature(), np.float64), (n,))
    w_star = np.broadcast_to(w_star, (n,) + param_shape)
    if not np.all(np.isfinite(w_star)):
        raise ValueError("problem: the optimum is not finite for some parameters "
                         "(e.g. x = 0 has no optimum); choose parameters with a finite optimum")
    w_star_abs = _norm(w_star, param_shape)
    err0 = _norm(flat_w0.astype(np.float64) - w_star, param_shape)
    bound = engine.divergence_bound(np_dtype)
    if np.any(w_star_abs + err0 > bound / 1e3):
        raise ValueError(f"w0/problem: |w0| or |w*| exceeds {bound / 1e3:.3g}, too close to the "
                         f"{np_dtype.name} divergence bound; rescale the problem or use float64")

    # The linear contraction factor r = 1 − αλ, against which each step is checked (Q4.3);
    # defined for plain gradient descent on a scalar parameter.
    r = None
    if optimizer == "sgd" and param_shape == ():
        r = (1.0 - mesh["alpha"].astype(np.float64) * curvature).astype(np_dtype)
        r = np.broadcast_to(r, (n,))

    eps = float(np.finfo(np_dtype).eps)
    budget_runs = _DEFAULT_CHUNK_BYTES // (64 + 4 * np_dtype.itemsize * max(1, _prod(param_shape))
                                           * (1 + (steps // record_every + 2 if record_every else 0)))
    chunk = chunk_size or max(1, min(n, budget_runs))
    n_dev = engine.device_count(devices)
    if block == "auto":
        block = _CPU_BLOCK if jax.default_backend() == "cpu" else None
    elif block is not None:
        _check_int("block", block, 1)
    run = dict(make_optimizer=spec.make, steps=steps, tol=tol, unroll=unroll,
               record_every=record_every, chunk_size=chunk, block=block, batched_fields=batched,
               devices=n_dev, progress=progress)
    if shard is not None:
        i, n_shards = shard
        if not (isinstance(n_shards, int) and isinstance(i, int) and 0 <= i < n_shards <= n):
            raise ValueError(f"shard: {i}/{n_shards} must be i/n with 0 <= i < n <= {n} runs")
        lo, hi = i * n // n_shards, (i + 1) * n // n_shards
        cut = lambda a, b: a[lo:hi] if b else a
        with precision(dtype):
            return engine.simulate(
                type(problem)(*(cut(a, f in batched) for f, a in zip(fields, flat_problem))),
                {k: cut(v, k in batched) for k, v in flat_hp.items()}, flat_w0[lo:hi],
                r=None if r is None else r[lo:hi], **run)
    if simulation is not None:
        if np.shape(simulation.w_final)[0] != n:
            raise ValueError(f"simulation: holds {np.shape(simulation.w_final)[0]} runs, the grid "
                             f"has {n}")
        sim = simulation
    else:
        with precision(dtype):
            sim = engine.simulate(flat_problem, flat_hp, flat_w0, r=r, **run)
    st = sim.stats
    floor = engine.noise_floor(eps, w_star_abs, err0)
    delta = growth_band(eps, w_star_abs, err0)
    window = steps - steps // 2
    growth = st.err_late.astype(np.float64) / np.maximum(st.err_early.astype(np.float64),
                                                         np.finfo(np.float64).tiny)
    k = st.k_obs.astype(np.float64)
    ratio = st.err_obs.astype(np.float64) / np.maximum(err0, np.finfo(np.float64).tiny)
    with np.errstate(divide="ignore"):
        contraction = np.where(k > 0, ratio ** (1.0 / np.maximum(k, 1.0)), 1.0)
    regime = classify(growth, st.flips, st.t_freeze >= 0, err0, floor, window * delta)
    w_final = np.asarray(sim.w_final)
    final_error = _norm(w_final.astype(np.float64) - w_star, param_shape)

    def grid(a):
        return None if a is None else np.asarray(a).reshape(grid_shape + np.shape(a)[1:])

    snapshot_steps = None
    if record_every is not None:
        snapshot_steps = np.arange(0, steps + 1, record_every)
        if snapshot_steps[-1] != steps:
            snapshot_steps = np.append(snapshot_steps, steps)
    return SweepResult(
        axes=axes, regime=grid(regime), steps_to_tol=grid(st.steps_to_tol),
        contraction=grid(contraction), flips=grid(st.flips), diverged_at=grid(st.t_freeze),
        final_error=grid(final_error),
        max_error=grid(np.maximum(st.err_early, st.err_late).astype(np.float64)),
        growth=grid(growth),
        mode_flips=None if st.mode_flips is None else grid(st.mode_flips),
        recurrence_dev=None if r is None else grid(st.rec_dev.astype(np.float64)),
        w_final=grid(w_final), w_star=grid(w_star), curvature=grid(curvature),
        trajectory=grid(sim.snapshots), snapshot_steps=snapshot_steps,
        problem=type(problem)(*(grid(a) if f in batched else a
                                for f, a in zip(fields, flat_problem))),
        hparams={k: grid(v) if k in batched else v for k, v in flat_hp.items()},
        w0=grid(flat_w0), optimizer=optimizer,
        steps=int(steps), tol=float(tol), dtype=np_dtype.name, noise_floor=grid(floor),
        delta=grid(delta), compile_s=sim.compile_s, run_s=sim.run_s)


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
