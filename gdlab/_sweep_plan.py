"""The plan of a sweep: every input checked once, in a fixed order, and frozen (:func:`plan`).

From the plan alone follow the per-run columns of any slice of runs [lo, hi) of the flattened grid:
the problem and w0 (:func:`problem_at`, :func:`w0_at`), the float64 geometry w*, λ_max, |w*|, |e₀|
(:func:`geometry`; |w*| and |e₀| alone: :func:`distances`), the linear contraction factor
r = 1 − αλ (:func:`rate`), and all of them as the engine takes them (:func:`engine_inputs`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from gdlab import _sweep_checks as check
from gdlab import engine, grids, resources
from gdlab.errors import ArgumentError
from gdlab.interfaces import Problem, Verifiable, WithInit, WithOptimum, WithWorkingSet
from gdlab.regimes import late_window

__all__ = ["Plan", "EngineOptions", "plan", "widened", "default_chunk", "default_unroll",
           "auto_block", "padded_chunk", "CPU_BLOCK"]

_DEFAULT_CHUNK_BYTES = 256 * 2**20
CPU_BLOCK = 4096  # runs whose carried state (~10 arrays) fits in a CPU core's L2 cache
_CPU_CACHE_BYTES = 2**20
# lax.scan unroll of XLA's per-step loop on accelerators: the fastest of 1, 4, 8, 16, 32 (0.57, 1.9,
# 3.2, 3.8, 1.1 × 10¹¹ updates/s with statistics) on an H200, in an earlier GPU run not kept in
# benchmarks/results/. The H100 runs kept there measured 16 only: 3.6 × 10¹¹ (bench_xla.json).
_GPU_UNROLL = 16
MAX_UNROLL = 1024  # unroll copies the step body that many times: compile time grows with it


def default_unroll() -> int:
    """``unroll="auto"``: 1 on CPU (the tiles unroll themselves), 16 on accelerators."""
    return 1 if jax.default_backend() == "cpu" else _GPU_UNROLL


def default_chunk(n: int, dtype: DTypeLike, param_shape: tuple[int, ...] = (), steps: int = 1,
                  record_every: int | None = None) -> int:
    """Runs per chunk from a 256 MiB budget: per run the engine's inputs, state and outputs
    (~100 B), the host's float64 post-processing (~100 B), and any snapshots."""
    per_run = 200 + 4 * np.dtype(dtype).itemsize * max(1, math.prod(param_shape)) * (
        1 + (engine.snapshot_count(steps, record_every) if record_every else 0))
    return max(1, min(n, _DEFAULT_CHUNK_BYTES // per_run))


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """How the runs are simulated, never what they compute: any choice gives the same results."""

    unroll: int             # lax.scan unroll of the per-step loop
    chunk: int              # runs per compiled chunk, and per slice finished on the host
    block: int | None       # runs per cache-resident block within a chunk; None: one wide vmap
    devices: int            # every chunk's runs are split over this many devices
    progress: bool | None   # a progress bar; None: when the output is a terminal


class Grid:
    """The flattened grid: column(name, lo, hi) is that axis's value for flat runs [lo, hi)."""

    def __init__(self, axes: dict[str, np.ndarray]) -> None:
        self.axes = axes
        self.shape = tuple(len(v) for v in axes.values())
        self.n = math.prod(self.shape)
        self._pos = {name: k for k, name in enumerate(axes)}

    def column(self, name: str, lo: int, hi: int) -> np.ndarray:
        values = self.axes[name]
        if len(self.shape) == 1:
            return values[lo:hi]
        idx = np.unravel_index(np.arange(lo, hi), self.shape)[self._pos[name]]
        return values[idx]


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """A sweep's inputs, checked and cast to ``dtype``; what is not an axis every run shares."""

    problem: object                        # as given: its type builds each slice's problem
    fields: tuple[str, ...]                # the problem's parameters
    param_shape: tuple[int, ...]
    optimizer: str
    make_optimizer: Callable
    hparam_names: tuple[str, ...]          # the optimizer's hyperparameters besides alpha
    grid: Grid                             # the axes (alpha first), values cast to dtype
    fixed_problem: dict[str, np.ndarray]   # problem parameters that are not axes
    fixed_hparams: dict[str, np.ndarray]   # hyperparameters that are not axes, each one number
    fixed_w0: np.ndarray | None            # None where w0 is an axis
    dtype: np.dtype
    steps: int
    tol: float
    record_every: int | None
    keep: str                              # "all" or "compact"
    recurrence: bool                       # measure the deviation from e_{t+1} = r e_t (Q4.3)
    rounding_check: bool                   # also simulate in float64 (gdlab._sweep)
    runs: tuple[int, int]                  # the runs [lo, hi) simulated: all, or a shard's
    engine: EngineOptions

    @property
    def n(self) -> int:
        return self.grid.n

    @property
    def late_steps(self) -> int:
        """Steps in the late half t > T // 2, over which the engine measures late growth."""
        return late_window(self.steps)

    @property
    def geometry_swept(self) -> bool:
        """Whether a problem parameter or w0 is an axis; if not, every run has the same w*,
        λ_max, |e₀| and L(w₀) (α and the hyperparameters move none of them)."""
        return self.fixed_w0 is None or any(f in self.grid.axes for f in self.fields)


_SIMULATE = object()  # plan(simulation=...) left out: the runs are to be simulated, not finished


def plan(problem: Problem, alphas: ArrayLike | Mapping[str, object], *,
         w0: ArrayLike | None = None, steps: int = 200, tol: float = 1.0, optimizer: str = "sgd",
         hparams: Mapping[str, float] | None = None, over: Mapping[str, object] | None = None,
         dtype: str | None = None, unroll: int | str = "auto",
         record_every: int | None = None, chunk_size: int | None = None,
         block: int | None | str = "auto", devices: int | str = "all",
         progress: bool | None = None,
         keep: str = "all", recurrence: bool | None = False, rounding_check: bool = False,
         shard: tuple[int, int] | None = None,
         simulation: engine.Simulation | object = _SIMULATE) -> Plan:
    """Check every argument of ``gdlab.sweep`` before any work and freeze them in a :class:`Plan`.

    ``shard`` (i, n) plans the i-th of n contiguous slices of the flattened grid; ``simulation``,
    the raw simulation a plan is to finish, is checked to hold every run of the grid. Raises
    ArgumentError naming the first bad argument.
    """
    a = _checked_args(problem, w0, steps=steps, unroll=unroll, dtype=dtype, tol=tol,
                      rounding_check=rounding_check, record_every=record_every,
                      chunk_size=chunk_size, block=block, keep=keep, recurrence=recurrence,
                      progress=progress, devices=devices)
    spec, fields, param_shape, hp = check.names(a.problem, optimizer, hparams, over, a.recurrence,
                                                a.dtype)
    # The axes' sizes (a {start, stop, num} range is not built yet), then every shared value.
    specs = {"alpha": ("alphas", alphas),
             **{name: (f"over[{name!r}]", values) for name, values in (over or {}).items()}}
    sizes = {name: grids.axis_size(v, name=arg) for name, (arg, v) in specs.items()}
    n = math.prod(sizes.values())
    fixed_problem, fixed_hp, fixed_w0 = _shared_values(a.problem, fields, hp, a.w0, sizes,
                                                       a.dtype, param_shape)
    runs, where = _shard_runs(shard, n)
    if simulation is not _SIMULATE:
        check.simulation(simulation, n, param_shape)
    options = _engine_options(a, n, param_shape)
    check.memory(sizes, runs=runs[1] - runs[0], where=where, keep=a.keep, steps=a.steps,
                 record_every=a.record_every, param_shape=param_shape, dtype=a.dtype,
                 shared_bytes=sum(v.size * 8 for v in fixed_problem.values()),
                 chunk_runs=engine.chunk_runs(a.problem, runs[1] - runs[0], options.chunk,
                                              block=options.block, devices=options.devices)[0])
    axes = {name: grids.axis(v, a.dtype, name=arg) for name, (arg, v) in specs.items()}
    check.shapes(a.problem, fields, param_shape, axes, fixed_problem, a.dtype)
    out = Plan(
        problem=a.problem, fields=fields, param_shape=param_shape, optimizer=optimizer,
        make_optimizer=spec.make, hparam_names=tuple(hp), grid=Grid(axes),
        fixed_problem=fixed_problem, fixed_hparams=fixed_hp, fixed_w0=fixed_w0, dtype=a.dtype,
        steps=a.steps, tol=a.tol, record_every=a.record_every, keep=a.keep,
        recurrence=_recurrence(a, optimizer, param_shape), rounding_check=a.rounding_check,
        runs=runs, engine=options)
    _check_geometry(out)
    return out


class _Args(NamedTuple):
    """The arguments of :func:`plan` that need nothing else, checked (:func:`_checked_args`)."""

    problem: Problem
    w0: ArrayLike | None
    steps: int
    unroll: int
    dtype: np.dtype
    tol: float
    rounding_check: bool
    record_every: int | None   # at most ``steps``
    chunk_size: int | None
    block: int | None | str    # "auto" resolved later (:func:`_engine_options`)
    keep: str
    recurrence: bool | None    # None resolved later (:func:`_recurrence`)
    progress: bool | None
    devices: int


def _checked_args(problem, w0, *, steps, unroll, dtype, tol, rounding_check, record_every,
                  chunk_size, block, keep, recurrence, progress, devices) -> _Args:
    """Each argument that needs nothing else checked, in a fixed order, before any work."""
    steps = check.integer("steps", steps, 1, resources.MAX_STEPS, "the step counters are int32")
    # GPUs pay ~9 µs per loop iteration; the CPU tiles and the GPU kernel (gdlab.engine.fused)
    # unroll their own steps, so this only matters for runs outside their scope.
    if isinstance(unroll, str) and unroll == "auto":
        unroll = default_unroll()
    unroll = check.integer("unroll", unroll, 1, MAX_UNROLL,
                           "compile time grows with the unroll; 16 is the fastest measured")
    problem, w0 = check.bind(problem, w0)
    if dtype is None:   # a network is simulated in float64 unless asked otherwise
        dtype = problem.default_dtype if isinstance(problem, WithInit) else "float32"
    np_dtype = np.dtype(check.choice("dtype", dtype, check.DTYPES))
    tol = check.tol(tol, np_dtype)
    rounding_check = check.rounding_check(rounding_check, np_dtype)
    if record_every is not None:
        # Beyond the horizon it records w_0 and w_T only, as record_every = steps does.
        record_every = min(check.integer("record_every", record_every, 1), steps)
    if chunk_size is not None:
        chunk_size = check.integer("chunk_size", chunk_size, 1)
    if not (isinstance(block, str) and block == "auto") and block is not None:
        block = check.integer("block", block, 1, what='"auto", None or an integer')
    if not (isinstance(keep, str) and keep in ("all", "compact")):
        raise ArgumentError("keep", f"{grids.brief(keep)} must be 'all' or 'compact'")
    recurrence, progress = check.flag("recurrence", recurrence), check.flag("progress", progress)
    return _Args(problem, w0, steps, unroll, np_dtype, tol, rounding_check, record_every,
                 chunk_size, block, keep, recurrence, progress, engine.device_count(devices))


def _shard_runs(shard: tuple[int, int] | None, n: int) -> tuple[tuple[int, int], str]:
    """The runs [lo, hi) of the i-th of ``shard`` = (i, count) contiguous slices of the n runs
    (all of them for None), and how a message names them ("" for all)."""
    if shard is None:
        return (0, n), ""
    i, count = check.shard(shard, n)
    runs = (i * n // count, (i + 1) * n // count)
    return runs, f"shard {i}/{count} ({runs[1] - runs[0]} runs) of "


def _recurrence(a: _Args, optimizer: str, param_shape: tuple[int, ...]) -> bool:
    """Whether the deviation from e_{t+1} = r e_t, r = 1 − αλ, is measured at every step (Q4.3):
    as asked, or for None wherever it is defined — plain gradient descent on a scalar parameter
    with a known optimum — and every statistic is kept."""
    if a.recurrence is not None:
        return bool(a.recurrence)
    return (optimizer == "sgd" and param_shape == () and isinstance(a.problem, WithOptimum)
            and a.keep == "all")


def _engine_options(a: _Args, n: int, param_shape: tuple[int, ...]) -> EngineOptions:
    """How the n runs are simulated: ``block="auto"`` and the chunk size resolved."""
    block = a.block
    if isinstance(block, str):
        block = auto_block(a.problem, param_shape, a.dtype)
    chunk = _chunk(n, a.chunk_size, a.dtype, param_shape, a.steps, a.record_every)
    return EngineOptions(a.unroll, chunk, block, a.devices, a.progress)


def _chunk(n: int, chunk_size: int | None, dtype: DTypeLike, param_shape: tuple[int, ...],
           steps: int, record_every: int | None) -> int:
    """Runs per chunk: ``chunk_size`` if given (at most n), else :func:`default_chunk`."""
    return (min(n, chunk_size) if chunk_size
            else default_chunk(n, dtype, param_shape, steps, record_every))


def auto_block(problem: Problem, param_shape: tuple[int, ...], dtype: np.dtype) -> int | None:
    """``block="auto"``: :func:`cpu_block` on a CPU, else None (one vmap per chunk)."""
    return (cpu_block(problem, param_shape, np.dtype(dtype).itemsize)
            if jax.default_backend() == "cpu" else None)


def padded_chunk(problem: Problem, n: int, *, dtype: DTypeLike, steps: int,
                 record_every: int | None, chunk_size: int | None, devices: int | str) -> int:
    """The runs one chunk of ``n`` simulates, padding included, as :func:`plan` lays them out
    with ``block="auto"`` (``resources.sweep_bytes``' ``chunk_runs``): for a caller that sizes
    memory before asking for the sweep (``gdlab._study_plan``)."""
    shape = tuple(problem.param_shape)
    return engine.chunk_runs(problem, n, _chunk(n, chunk_size, dtype, shape, steps, record_every),
                             block=auto_block(problem, shape, dtype),
                             devices=engine.device_count(devices))[0]


def widened(p: Plan) -> Plan:
    """The plan of the same runs in float64, to simulate (not to finish): every input exactly as
    the sweep's dtype holds it, widened (grid values, shared values, tol), so that only the
    arithmetic's precision differs; regimes and steps to tol only, no snapshots."""
    f64 = np.dtype(np.float64)
    wide = lambda values: {k: np.asarray(v).astype(f64) for k, v in values.items()}
    return dataclasses.replace(
        p, dtype=f64, grid=Grid(wide(p.grid.axes)), fixed_problem=wide(p.fixed_problem),
        fixed_hparams=wide(p.fixed_hparams),
        fixed_w0=None if p.fixed_w0 is None else np.asarray(p.fixed_w0).astype(f64),
        tol=float(np.asarray(p.tol, p.dtype)), record_every=None, keep="compact",
        recurrence=False, rounding_check=False)


def cpu_block(problem: Problem, param_shape: tuple[int, ...], itemsize: int) -> int:
    """``block="auto"`` on a CPU: runs whose working set stays in a core's cache for all T steps —
    ``CPU_BLOCK`` runs of a scalar problem with a known optimum; for a network, as many as keep its
    activations (points × width per layer, a few copies) within ~1 MiB, at least 8; for another
    problem judged by its loss, with more than one parameter or a user's, at most ``LANES``.

    Those (``gdlab.engine.exact_blocks``) always run in blocks of this many runs, whatever the
    chunk size or device count: XLA's vectorised and scalar transcendental functions (cos,
    tanh, …) differ in the last bit, and the loss value is fused apart from the gradient, so a
    batch of another width would change a score's last bit (measured: 62 of 144 network scores
    with one wide vmap); and its CPU matrix products and reductions pick their kernels by the
    batch width too (measured: ``quadratic(dim=5)``, 301 α, 150 steps: 77 of 301 runs' w_T moved
    with ``chunk_size=64``, 239 with Adam, one regime). A built-in scalar problem's runs are
    elementwise, the same at any width of whole vectors.
    """
    if isinstance(problem, WithWorkingSet):
        return max(8, min(CPU_BLOCK, _CPU_CACHE_BYTES // max(1, problem.run_bytes(itemsize))))
    if engine.exact_blocks(problem):
        return max(8, min(engine.LANES, CPU_BLOCK // max(1, math.prod(param_shape))))
    return CPU_BLOCK


def _shared_values(problem, fields, hp, w0, swept, dtype, param_shape):
    """The problem parameters, hyperparameters and w0 that are not axes, each checked and cast
    once: every run shares them."""
    fixed_problem = {f: check.shared(f"problem.{f}", getattr(problem, f), dtype) for f in fields
                     if f not in swept}
    fixed_hp = {k: check.shared(f"hparams[{k!r}]", v, dtype, scalar=True)
                for k, v in hp.items() if k not in swept}
    fixed_w0 = None if "w0" in swept else check.shared("w0", w0, dtype)
    if fixed_w0 is not None:
        check.w0_shape(fixed_w0, param_shape)
    return fixed_problem, fixed_hp, fixed_w0


def _check_geometry(p: Plan) -> None:
    """Every run's optimum and curvature are finite and far enough inside the divergence bound
    (judged by the loss: its initial loss is finite and positive), checked chunk by chunk (bounded
    memory) before any work."""
    if not isinstance(p.problem, WithOptimum):
        return _check_initial_loss(p)
    bound = engine.divergence_bound(p.dtype)
    limit = bound / 1e3
    for lo, hi in _checked_slices(p):
        if isinstance(p.problem, Verifiable):   # a user's optimum is stationary, at every value
            problem_at(p, lo, hi).verify()
        w_star, lam, w_abs, err0 = geometry(p, lo, hi)
        bad = ~np.isfinite(w_star.reshape(len(w_abs), -1)).all(axis=1)
        if bad.any():
            arg, at = _blame(p, lo, bad, "problem")
            raise ArgumentError(arg, f"the optimum is not finite{at}; choose parameters with a "
                                     "finite optimum (e.g. x ≠ 0 in scalar_regression)")
        bad = ~np.isfinite(lam)
        if bad.any():
            arg, at = _blame(p, lo, bad, "problem")
            raise ArgumentError(arg, f"the curvature λ_max is not finite{at}; rescale the problem")
        bad = w_abs > limit
        if bad.any():
            arg, at = _blame(p, lo, bad, "problem")
            raise ArgumentError(arg, f"|w*| = {w_abs[bad][0]:.3g}{at} exceeds {limit:.3g}, too "
                                     f"close to the {p.dtype.name} divergence bound; rescale the "
                                     "problem or use float64")
        bad = w_abs + err0 > limit
        if bad.any():
            raise ArgumentError("w0" if p.fixed_w0 is not None else "over['w0']",
                                f"|w*| + |w0 − w*| = {(w_abs + err0)[bad][0]:.3g} exceeds "
                                f"{limit:.3g}, too close to the {p.dtype.name} divergence bound; "
                                "start nearer the optimum, rescale the problem or use float64")


def _check_initial_loss(p: Plan) -> None:
    """L(w₀) of every run is finite and > 0: the runs are judged by the ratio L_t / L_0."""
    for lo, hi in _checked_slices(p):
        loss0 = initial_loss(p, lo, hi)
        bad = ~(np.isfinite(loss0) & (loss0 > 0))
        if bad.any():
            arg, at = _blame(p, lo, bad, "w0" if p.fixed_w0 is not None else "over['w0']")
            raise ArgumentError(arg, f"the initial loss L(w0) = {float(loss0[bad][0])!r}{at}; runs "
                                     "without a known optimum are judged by L_t/L_0, which needs "
                                     "a finite L_0 > 0 (give optimum= if it is known, or start "
                                     "elsewhere)")


def _checked_slices(p: Plan) -> list[tuple[int, int]]:
    """The runs [lo, hi) whose geometry (or initial loss) stands for every run's: each chunk,
    or the first run alone where a run's geometry is every run's (:attr:`Plan.geometry_swept`;
    a failure then names no run, as it would name none in the first chunk)."""
    if not p.geometry_swept:
        return [(0, 1)]
    return [(lo, min(p.n, lo + p.engine.chunk)) for lo in range(0, p.n, p.engine.chunk)]


def initial_loss(p: Plan, lo: int, hi: int) -> np.ndarray:
    """L(w₀) of runs [lo, hi) in the sweep's dtype, as float64 (one evaluation when nothing that
    it depends on is swept)."""
    swept = [f in p.grid.axes for f in p.fields]
    w_swept = p.fixed_w0 is None
    with check.precision(p.dtype.name):
        prob = problem_at(p, lo, hi if p.geometry_swept else lo + 1)
        w0 = w0_at(p, lo, hi) if w_swept else p.fixed_w0
        axes = type(p.problem)(*(0 if b else None for b in swept))
        fn = _loss_map(type(p.problem), axes, 0 if w_swept else None)
        loss = np.asarray(fn(prob, jnp.asarray(w0, p.dtype)), np.float64)
    return np.broadcast_to(loss, (hi - lo,))


@functools.lru_cache(maxsize=64)
def _loss_map(cls: type, axes, w_axis):
    """``cls`` is part of the cache key: axes of two problem classes can be equal tuples."""
    loss = lambda prob, w: prob.loss(w)
    if all(a is None for a in axes) and w_axis is None:
        return jax.jit(loss)
    return jax.jit(jax.vmap(loss, in_axes=(axes, w_axis)))


def _blame(p: Plan, lo, bad, default):
    """The argument behind the first bad run of [lo, lo + len(bad)), and where it is."""
    swept = [f for f in p.fields if f in p.grid.axes]
    if not swept or bad.all():
        return default, ""
    j = lo + int(np.flatnonzero(bad)[0])
    at = ", ".join(f"{f} = {float(p.grid.column(f, j, j + 1)[0])!r}" for f in swept)
    return (f"over[{swept[0]!r}]" if len(swept) == 1 else "over"), f" (at {at})"


def problem_at(p: Plan, lo: int, hi: int) -> WithOptimum:
    """The problem of runs [lo, hi): swept parameters as columns, the others shared."""
    return type(p.problem)(*(p.grid.column(f, lo, hi) if f in p.grid.axes else p.fixed_problem[f]
                             for f in p.fields))


def w0_at(p: Plan, lo: int, hi: int) -> np.ndarray:
    """w0 of runs [lo, hi), shape (hi − lo,) + param_shape (a broadcast view, not a copy)."""
    if p.fixed_w0 is None:  # a swept w0 moves every coordinate together
        col = p.grid.column("w0", lo, hi).reshape((hi - lo,) + (1,) * len(p.param_shape))
        return np.broadcast_to(col, (hi - lo,) + p.param_shape)
    return np.broadcast_to(p.fixed_w0, (hi - lo,) + p.param_shape)


def geometry(p: Plan, lo: int, hi: int,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float64 per-run w*, λ_max, |w*|, |e₀| of runs [lo, hi)."""
    prob = problem_at(p, lo, hi)
    w_star, w_abs, err0 = _distances(p, prob, lo, hi)
    with np.errstate(all="ignore"):
        lam = np.broadcast_to(np.asarray(prob.curvature(), np.float64), (hi - lo,))
    return w_star, lam, w_abs, err0


def distances(p: Plan, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 per-run |w*| and |e₀| = |w₀ − w*| of runs [lo, hi), as :func:`geometry` has them,
    without the curvature: what judging a run needs besides its statistics."""
    return _distances(p, problem_at(p, lo, hi), lo, hi)[1:]


def _distances(p: Plan, prob: WithOptimum, lo: int, hi: int) -> tuple:
    """(w*, |w*|, |w₀ − w*|) of runs [lo, hi) of the problem ``prob`` of those runs."""
    with np.errstate(all="ignore"):
        w_star = np.broadcast_to(np.asarray(prob.optimum(), np.float64),
                                 (hi - lo,) + p.param_shape)
        return (w_star, norm(w_star, p.param_shape),
                norm(w0_at(p, lo, hi) - w_star, p.param_shape))


def rate(p: Plan, lo: int, hi: int) -> np.ndarray:
    """The linear contraction factor r = 1 − αλ of runs [lo, hi), in the sweep's dtype."""
    with np.errstate(over="ignore", invalid="ignore"):
        lam = np.asarray(problem_at(p, lo, hi).curvature(), np.float64)
        r = 1.0 - p.grid.column("alpha", lo, hi).astype(np.float64) * lam
    # |r| beyond the dtype's range is held at its largest finite value: such a run leaves the
    # divergence bound at its first step unless e_t = 0, where inf · 0 would be NaN.
    top = float(np.finfo(p.dtype).max)
    return np.clip(r, -top, top).astype(p.dtype)


class Lazy:
    """A run-indexed input computed on demand for a slice (keeps huge sweeps in bounded memory)."""

    def __init__(self, fn: Callable[[int, int], np.ndarray], lo: int, hi: int) -> None:
        self.fn, self.lo, self.hi = fn, lo, hi
        self.shape = (hi - lo,) + np.shape(fn(lo, min(hi, lo + 1)))[1:]

    def __getitem__(self, item: slice) -> np.ndarray:
        start, stop, _ = item.indices(self.hi - self.lo)
        return self.fn(self.lo + start, self.lo + stop)


def engine_inputs(p: Plan, lo: int, hi: int, *, lazy: bool, with_rate: bool = True) -> tuple:
    """(problem, hparams, w0, r) of runs [lo, hi) as ``engine.simulate`` takes them: swept values
    one per run, the others shared; ``lazy``: each computed only for the chunk that needs it."""
    at = (lambda fn: Lazy(fn, lo, hi)) if lazy else (lambda fn: fn(lo, hi))
    column = lambda name: at(functools.partial(p.grid.column, name))
    prob = type(p.problem)(*(column(f) if f in p.grid.axes else p.fixed_problem[f]
                             for f in p.fields))
    h = {"alpha": column("alpha"),
         **{k: column(k) if k in p.grid.axes else p.fixed_hparams[k] for k in p.hparam_names}}
    w0 = at(functools.partial(w0_at, p))
    return prob, h, w0, at(functools.partial(rate, p)) if p.recurrence and with_rate else None


def engine_options(p: Plan) -> dict:
    """The keyword arguments of ``engine.simulate`` for this plan."""
    e = p.engine
    return dict(make_optimizer=p.make_optimizer, steps=p.steps, tol=p.tol, unroll=e.unroll,
                record_every=p.record_every, chunk_size=e.chunk, block=e.block,
                batched_fields=frozenset(p.grid.axes), devices=e.devices, progress=e.progress)


def norm(e: np.ndarray, param_shape: tuple[int, ...]) -> np.ndarray:
    """|e| per run over the parameter axes (the trailing ``len(param_shape)``)."""
    if not param_shape:
        return np.abs(e)
    return np.sqrt(np.sum(e * e, axis=tuple(range(-len(param_shape), 0))))
