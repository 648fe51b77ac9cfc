"""``gdlab.sweep``: gradient descent over a grid of step sizes (and other parameters) at once.

    res = gdlab.sweep(gdlab.problems.scalar_regression(x=1.0, y=100.0),
                      alphas=np.linspace(0, 3, 3001), w0=0.0, steps=200, tol=1.0)
    res.regime          # (3001,) int8, names in gdlab.REGIME_NAMES
    res.steps_to_tol    # (3001,) int32, −1 where |w_t − w*| never fell below tol

Extra axes (``over={"x": xs}``) make a grid α × xs, simulated as one flat batch: any problem
parameter, optimizer hyperparameter, or ``w0`` can be an axis.

A sweep runs in three stages: the plan (every input checked and frozen,
:mod:`gdlab._sweep_plan`), the simulation (``gdlab.engine``), and the finish (:func:`finish_slice`,
pure: the engine's statistics of runs [lo, hi) → regimes and per-run results). Across processes the
stages split: :func:`simulate_shard` simulates one slice of the grid, and :func:`finish_sweep`
finishes the merged simulation (``gdlab run --set sweep.shard=i/n``, then ``gdlab merge``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from gdlab import engine
from gdlab._sweep_checks import DTYPES as DTYPES
from gdlab._sweep_checks import precision as precision
from gdlab._sweep_plan import CPU_BLOCK as CPU_BLOCK
from gdlab._sweep_plan import (
    Plan,
    distances,
    engine_inputs,
    engine_options,
    geometry,
    norm,
    plan,
    widened,
)
from gdlab._sweep_plan import default_chunk as default_chunk
from gdlab._sweep_plan import default_unroll as default_unroll
from gdlab.interfaces import Problem, WithOptimum
from gdlab.regimes import Regime, growth_band, growth_limits, judge, judge_by_loss, quiet, settled
from gdlab.regimes import score as trainability_score

__all__ = ["sweep", "simulate_shard", "finish_sweep", "SweepResult", "DTYPES"]

_TINY, _HUGE = float(np.finfo(np.float64).tiny), float(np.finfo(np.float64).max)
# A regime's trend, what rounding_check compares: the error shrinks (1), grows (2) or neither (0);
# whether it oscillates is left out (sign changes count above the noise floor, which float64
# resolves far below float32's). The other regimes are their own trend.
_TREND = np.array([{Regime.CONVERGING_MONOTONE: 1, Regime.CONVERGING_OSCILLATING: 1,
                    Regime.BOUNDED_OSCILLATION: 0, Regime.STALLED: 0,
                    Regime.DIVERGING_OSCILLATING: 2, Regime.DIVERGING_MONOTONE: 2}.get(r, int(r))
                   for r in Regime], np.int8)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Per-run results on the sweep grid (every array has shape ``grid_shape`` first).

    ``axes`` maps each swept name to its values as simulated (cast to ``dtype``), in grid order.
    ``problem``/``hparams``/``w0`` hold every run's inputs on the grid, so theory can be evaluated
    on exactly the numbers the simulation used. With ``keep="compact"`` only ``regime`` and
    ``steps_to_tol`` are kept (and ``score`` for runs judged by their loss); the other per-run
    fields are None. Runs of a problem without a known optimum are judged by their loss ratios
    L_t/L_0: ``steps_to_tol`` is then the first t with L_t/L_0 < tol, the distance-based fields are
    None and ``score``, ``loss_ratio``, ``min_loss_ratio`` are set.
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
    # Runs judged by their loss (a problem without a known optimum; see gdlab.engine._by_loss):
    score: np.ndarray | None = None          # float64, Sohl-Dickstein's trainability score
    loss_ratio: np.ndarray | None = None     # float64, L_T/L_0 (last in-bound ratio if frozen)
    min_loss_ratio: np.ndarray | None = None  # float64, min_t L_t/L_0
    # rounding_check=True: the same run simulated in float64 (its float32 inputs widened) has
    # another trend or steps_to_tol, so rounding decides it (see gdlab._sweep.rounding_sensitive)
    rounding_sensitive: np.ndarray | None = None

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


def sweep(problem: Problem, alphas: ArrayLike | Mapping[str, object], *,
          w0: ArrayLike | None = None, steps: int = 200, tol: float = 1.0, optimizer: str = "sgd",
          hparams: Mapping[str, float] | None = None, over: Mapping[str, object] | None = None,
          dtype: str | None = None, unroll: int | str = "auto", record_every: int | None = None,
          chunk_size: int | None = None, block: int | None | str = "auto",
          devices: int | str = "all", progress: bool | None = None, keep: str = "all",
          recurrence: bool | None = False, rounding_check: bool = False) -> SweepResult:
    """Simulate gradient descent for every combination of ``alphas`` × the ``over`` axes.

    Args:
      problem: a problem value, e.g. ``gdlab.problems.scalar_regression(x=1.0, y=100.0)``, a
        user's loss (``gdlab.problems.custom``) or a network (``gdlab.problems.mlp``).
      alphas: 1-D step sizes (any finite values; α ≤ 0 is simulated too).
      w0: initial point (scalar, shaped like the parameter, or for a user's loss any pytree);
        None: the problem's own initial weights (a network's), else 0.
      steps: horizon T ≥ 1; tol > 0: the "reached the optimum" distance (for a problem without
        a known optimum, the loss ratio L_t/L_0 that ``steps_to_tol`` waits for).
      optimizer: a name in ``gdlab.optimizers.OPTIMIZERS``; hparams: its fixed hyperparameters
        (and a network's per-layer step sizes ``alpha_2``, …).
      over: further axes, name → values: a problem parameter, a hyperparameter, or ``"w0"``.
      dtype: "float32" or "float64"; None: float64 for a network, else float32.
      unroll: ``lax.scan`` unroll of the per-step loop; "auto": 1 on CPU, 16 on accelerators.
      record_every: keep w_t every k steps (and w_0, w_T) as ``trajectory``; None keeps none.
      chunk_size: runs per compiled chunk (default: from a 256 MiB budget).
      block: runs per cache-resident block within a chunk; "auto" on CPU is 4096 scalar runs
        (fewer for larger parameters, see ``_sweep_plan.cpu_block``), none (one wide vmap) on
        accelerators.
      devices: split every chunk's runs over this many devices; "all" (default): every visible
        one — on a CPU every core, which gdlab exposes as a device of its own
        (:mod:`gdlab._cores`). Results are identical to one device.
      keep: "all" (every statistic, inputs and theory-ready fields) or "compact" (only ``regime``
        and ``steps_to_tol``: computed chunk by chunk, so 10⁸ runs fit in about a gigabyte).
      recurrence: measure the Q4.3 recurrence deviation at every step (``recurrence_dev``); None:
        wherever it is defined (gradient descent on a scalar parameter with keep="all"), as
        ``gdlab run`` asks for it. It costs one more carried statistic (on the canonical sweep,
        about +40 % on a CPU).
      rounding_check: also simulate every run in float64 and set ``rounding_sensitive`` where that
        changes its trend or steps_to_tol (:func:`rounding_sensitive`); float32 sweeps only. For
        optimizers without a closed form (Adam, …), whose labels nothing else can check.

    Raises:
      gdlab.errors.ArgumentError (a ValueError), before any work, for any bad argument; its
      ``argument`` names it (``alphas``, ``steps``, ``w0``, ``problem.x``, ``hparams['beta']``,
      ``over['x']`` …) and its message is one line. ``TooLargeError`` (a subclass) when the sweep's
      estimated memory exceeds ``gdlab.resources.memory_limit()``.
    """
    p = plan(problem, alphas, w0=w0, steps=steps, tol=tol, optimizer=optimizer, hparams=hparams,
             over=over, dtype=dtype, unroll=unroll, record_every=record_every,
             chunk_size=chunk_size, block=block, devices=devices, progress=progress, keep=keep,
             recurrence=recurrence, rounding_check=rounding_check)
    finished = _Finished(p)
    prob, h, w, r = engine_inputs(p, 0, p.n, lazy=True)
    with precision(p.dtype.name):
        sim = engine.simulate(prob, h, w, r=r, reduce=finished.add, device_reduce=on_device(p),
                              **engine_options(p))
    res = _result(p, finished, sim)
    if p.rounding_check:
        res = dataclasses.replace(res, rounding_sensitive=rounding_sensitive(p, res))
    return res


def rounding_sensitive(p: Plan, res: SweepResult) -> np.ndarray:
    """Runs of the float32 sweep ``p`` (its result ``res``) that rounding decides: simulated in
    float64 from the same inputs (the float32 values, widened), their trend — shrinks, grows or
    neither, :data:`_TREND` — or their steps_to_tol differs.

    The float64 statistics are judged at float32's resolution (the same noise floor and growth
    band, from ``p``), so what differs is what the arithmetic's precision changed, not what
    float64 can resolve. A lower bound: a run that both precisions get wrong alike (rounding noise
    amplified the same way) is not flagged. Costs a second simulation, in float64 (about 2× the
    float32 one on a CPU), and its compilation.
    """
    wide, compact = widened(p), dataclasses.replace(p, keep="compact")
    finished = _Finished(compact)
    prob, h, w, _ = engine_inputs(wide, 0, wide.n, lazy=True)
    with precision("float64"):
        engine.simulate(prob, h, w, reduce=finished.add, device_reduce=on_device(compact),
                        **engine_options(wide))
    other = {k: v.reshape(p.grid.shape) for k, v in finished.arrays().items()}
    return ((_TREND[res.regime] != _TREND[other["regime"]])
            | (res.steps_to_tol != other["steps_to_tol"]))


def simulate_shard(problem: WithOptimum, alphas: ArrayLike | Mapping[str, object], *,
                   shard: tuple[int, int], **options: object) -> engine.Simulation:
    """The engine's raw simulation of the i-th of n contiguous slices of the flattened grid.

    ``shard`` is (i, n); ``options`` are :func:`sweep`'s keyword arguments except ``keep`` (a
    shard keeps every statistic). Disjoint shards, in processes or hosts of their own, concatenated
    in order, are the raw simulation of the whole grid, which :func:`finish_sweep` finishes: the
    same result as :func:`sweep`, bit for bit (``gdlab run --set sweep.shard=i/n``, then
    ``gdlab merge``).
    """
    _check_options("simulate_shard", options, keep="a shard keeps every statistic",
                   rounding_check=_MERGED_ONLY)
    p = plan(problem, alphas, shard=shard, keep="all", **options)
    lo, hi = p.runs
    prob, h, w, r = engine_inputs(p, lo, hi, lazy=False)
    with precision(p.dtype.name):
        return engine.simulate(prob, h, w, r=r, **engine_options(p))


def finish_sweep(problem: WithOptimum, alphas: ArrayLike | Mapping[str, object],
                 simulation: engine.Simulation, **options: object) -> SweepResult:
    """The :class:`SweepResult` of a sweep from its raw ``simulation`` (merged shards, see
    :func:`simulate_shard`), without simulating: identical to :func:`sweep` with the same
    arguments. ``options`` are :func:`sweep`'s keyword arguments."""
    _check_options("finish_sweep", options, rounding_check=_MERGED_ONLY)
    p = plan(problem, alphas, simulation=simulation, **options)
    finished, n, chunk = _Finished(p), p.n, p.engine.chunk
    raw = (simulation.w_final, simulation.stats, simulation.snapshots)
    for lo in range(0, n, chunk):
        finished.add(lo, min(n, lo + chunk), jax.tree.map(lambda a, lo=lo: a[lo:lo + chunk], raw))
    return _result(p, finished, simulation)


_MERGED_ONLY = "sweep() of the whole grid checks rounding"


def _check_options(caller: str, options: dict, **refused: str) -> None:
    """``options`` are keyword arguments of :func:`sweep`, none of ``refused`` (name → why), else
    the TypeError Python raises for an unknown keyword."""
    known = inspect.signature(sweep).parameters
    for name in options:
        if name in refused or name not in known or name in ("problem", "alphas"):
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}"
                            + (f" ({refused[name]})" if name in refused else ""))


def finish_slice(p: Plan, lo: int, hi: int,
                 out: tuple[np.ndarray, engine.RunStats, np.ndarray | None]) -> dict:
    """Per-run results of runs [lo, hi) from the engine's ``(w_final, stats, snapshots)`` of them
    (host, float64); with keep="compact" only ``regime`` and ``steps_to_tol``."""
    if not isinstance(p.problem, WithOptimum):
        return _finish_by_loss(p, out)
    w_final, st, snaps = out
    with np.errstate(over="ignore"):   # e.g. float64 from |e₀| = 1e-300 to the bound
        growth = _growth(st.err_early, st.err_late, np)
    if p.keep == "compact":
        floor, lower, upper = _limits(p, lo, hi)
        return {"regime": _judge(st, growth, floor, lower, upper, p.steps, np),
                "steps_to_tol": st.steps_to_tol}
    w_star, lam, w_abs, err0 = geometry(p, lo, hi)
    floor, delta, (_, lower, upper) = _judging(p, w_abs, err0)
    regime = _judge(st, growth, floor, lower, upper, p.steps, np)
    w_final = np.asarray(w_final)
    return {
        "regime": regime, "steps_to_tol": st.steps_to_tol, "contraction": _contraction(st, err0),
        "flips": st.flips, "diverged_at": st.t_freeze,
        "final_error": norm(w_final.astype(np.float64) - w_star, p.param_shape),
        "max_error": np.maximum(st.err_early, st.err_late).astype(np.float64),
        "growth": growth, "mode_flips": st.mode_flips,
        "recurrence_dev": st.rec_dev.astype(np.float64) if p.recurrence else None,
        "w_final": w_final, "trajectory": snaps, "w_star": w_star, "curvature": lam,
        "noise_floor": floor, "delta": delta}


def _judging(p: Plan, w_abs: np.ndarray, err0: np.ndarray) -> tuple:
    """(noise floor, growth band δ, (noise floor, lower, upper)) of runs with these |w*| and |e₀|:
    what :func:`gdlab.regimes.judge` needs besides the engine's statistics (host, float64)."""
    eps = float(np.finfo(p.dtype).eps)
    floor = engine.noise_floor(p.dtype, w_abs, int(np.prod(p.param_shape)))
    # Rounding relative to the errors the growth compares, which are above the floor unless the
    # run stays quiet: |e₀| below it (0 included) counts as the floor. From |e₀| = 1e-4 under a
    # float32 floor of 7.6e-4 at w* = 100, δ of |e₀| (0.48 a step) would call a run that grows
    # 1.5-fold a step neither growing nor shrinking; δ of the floor is at most 4 eps + 1/16.
    delta = growth_band(eps, w_abs, np.maximum(err0, floor))
    return floor, delta, (floor, *growth_limits(p.late_steps * delta))


def _limits(p: Plan, lo: int, hi: int) -> tuple:
    """(noise floor, lower, upper) of runs [lo, hi): the limits of :func:`_judging`, from their
    |w*| and |e₀| alone (no curvature)."""
    return _judging(p, *distances(p, lo, hi))[2]


def _growth(err_early, err_late, xp):
    """max |e_t| over the late half / over the early half, in float64 (held below its largest
    value: from |e₀| = 1e-300 to the bound overflows)."""
    ratio = xp.asarray(err_late, xp.float64) / xp.maximum(xp.asarray(err_early, xp.float64), _TINY)
    return xp.minimum(ratio, _HUGE)


def _last_mean(last_sum, window: int, xp):
    """The mean of the last ``window`` (clipped) loss ratios, Sohl-Dickstein's convergence
    measure."""
    return xp.asarray(last_sum, xp.float64) / window


def _finish_by_loss(p: Plan, out) -> dict:
    """Per-run results of runs judged by their loss ratios ρ_t = L_t/L_0 (``engine.LossStats``)."""
    w_final, st, snaps = out
    last_mean = _last_mean(st.last_sum, min(engine.SCORE_WINDOW, p.steps), np)
    regime = judge_by_loss(st.t_freeze >= 0, last_mean)
    score = trainability_score(st.ratio_sum, st.inv_sum, last_mean)
    if p.keep == "compact":
        return {"regime": regime, "steps_to_tol": st.steps_to_tol, "score": score}
    return {"regime": regime, "steps_to_tol": st.steps_to_tol, "score": score,
            "diverged_at": st.t_freeze, "loss_ratio": st.final_ratio.astype(np.float64),
            "min_loss_ratio": st.min_ratio.astype(np.float64), "w_final": np.asarray(w_final),
            "trajectory": snaps}


def _contraction(st: engine.RunStats, err0: np.ndarray) -> np.ndarray:
    """The mean per-step factor (|e_k|/|e₀|)^(1/k) over the k observed steps; 1 where k = 0."""
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
    return np.where(st.k_obs > 0, contraction, 1.0)


def on_device(p: Plan) -> Callable | None:
    """``engine.simulate``'s ``device_reduce`` for a compact sweep (None otherwise): each chunk's
    ``regime`` and ``steps_to_tol`` (and ``score``) computed where the chunk ran, by the same
    functions as :func:`finish_slice` with ``jax.numpy`` (comparisons, one division and a table:
    bit for bit the same), so that only 5 bytes a run come back (9 with a score), not the
    statistics. What it needs from the host, the limits of :func:`_judging`, is computed there
    in float64 as before: once for the sweep, one value for every run, unless a swept parameter
    moves them (:attr:`Plan.geometry_swept`), else per chunk, padded to it as the engine pads."""
    if p.keep != "compact":
        return None
    if not isinstance(p.problem, WithOptimum):
        window = min(engine.SCORE_WINDOW, p.steps)

        def scored(lo: int, hi: int, result):
            st = result[1]
            with jax.enable_x64(True):
                return _scored(st.t_freeze, st.steps_to_tol, st.last_sum, st.ratio_sum,
                               st.inv_sum, window)
        return scored
    shared = None
    if not p.geometry_swept:
        with jax.enable_x64(True):
            shared = tuple(a[0] for a in _limits(p, 0, 1))

    def judged(lo: int, hi: int, result):
        st = result[1]
        chunk = st.t_freeze.shape[0]   # the engine's chunk, padded
        with jax.enable_x64(True):
            limits = (shared if shared is not None else
                      tuple(engine.pad(a, chunk) for a in _limits(p, lo, hi)))
            return _judged(st, *limits, steps=p.steps)
    return judged


def _judge(st: engine.RunStats, growth, floor, lower, upper, steps: int, xp):
    """:func:`gdlab.regimes.judge` of the engine's statistics, in the array namespace ``xp``."""
    frozen = st.t_freeze >= 0
    top = xp.maximum(st.err_early, st.err_late)   # max |e_t|, t = 0 … T (err_early includes e₀)
    return judge(growth, st.flips, frozen, quiet(top, floor, frozen, xp=xp), lower, upper,
                 settled(xp.asarray(st.k_obs), steps), xp=xp)


@functools.partial(jax.jit, static_argnames="steps")
def _judged(st: engine.RunStats, floor, lower, upper, *, steps):
    growth = _growth(st.err_early, st.err_late, jnp)
    return {"regime": _judge(st, growth, floor, lower, upper, steps, jnp),
            "steps_to_tol": st.steps_to_tol}


@functools.partial(jax.jit, static_argnums=5)
def _scored(t_freeze, steps_to_tol, last_sum, ratio_sum, inv_sum, window):
    last_mean = _last_mean(last_sum, window, jnp)
    return {"regime": judge_by_loss(t_freeze >= 0, last_mean, xp=jnp),
            "steps_to_tol": steps_to_tol,
            "score": trainability_score(ratio_sum, inv_sum, last_mean, xp=jnp)}


class _Finished:
    """Finished slices of runs, in run order; ``add`` is the engine's ``reduce``. Compact results
    are written in place into arrays of every run: no list of parts, no concatenated copy."""

    def __init__(self, p: Plan):
        self.plan, self.parts = p, []
        self.compact = None
        if p.keep == "compact":
            self.compact = {"regime": np.empty(p.n, np.int8),
                            "steps_to_tol": np.empty(p.n, np.int32)}
            if not isinstance(p.problem, WithOptimum):
                self.compact["score"] = np.empty(p.n, np.float64)

    def add(self, lo: int, hi: int, out) -> None:
        """Runs [lo, hi): the engine's ``(w_final, stats, snapshots)``, or the per-run results
        :func:`on_device` already computed (a dict)."""
        part = out if isinstance(out, dict) else finish_slice(self.plan, lo, hi, out)
        if self.compact is None:
            self.parts.append(part)
        else:
            for name, values in part.items():
                self.compact[name][lo:hi] = values

    def arrays(self) -> dict:
        """Every per-run field over all runs (None where it was not measured)."""
        if self.compact is not None:
            return self.compact
        first = self.parts[0]
        return {k: None if first[k] is None else
                (first[k] if len(self.parts) == 1 else np.concatenate([q[k] for q in self.parts]))
                for k in first}


def _result(p: Plan, finished: _Finished, sim: engine.Simulation) -> SweepResult:
    """The SweepResult: per-run fields reshaped to the grid, with every run's inputs on it."""
    def on_grid(a):
        return None if a is None else np.asarray(a).reshape(p.grid.shape + np.shape(a)[1:])

    common = dict(axes=p.grid.axes, optimizer=p.optimizer, steps=int(p.steps), tol=float(p.tol),
                  dtype=p.dtype.name, compile_s=sim.compile_s, run_s=sim.run_s, n=p.n,
                  engine_path=sim.path)
    arrays = finished.arrays()
    if p.keep == "compact":
        return SweepResult(**{k: on_grid(v) for k, v in arrays.items()}, **common)
    snapshot_steps = None
    if p.record_every is not None:
        snapshot_steps = np.arange(0, p.steps + 1, p.record_every)
        if snapshot_steps[-1] != p.steps:
            snapshot_steps = np.append(snapshot_steps, p.steps)
    prob, h, w, _ = engine_inputs(p, 0, p.n, lazy=False, with_rate=False)  # on the grid
    swept = p.grid.axes
    return SweepResult(
        **{k: on_grid(v) for k, v in arrays.items()}, snapshot_steps=snapshot_steps,
        problem=type(p.problem)(*(on_grid(a) if f in swept else a for f, a in zip(p.fields, prob))),
        hparams={k: on_grid(v) if k in swept else v for k, v in h.items()}, w0=on_grid(w),
        **common)
