"""Tracked runs: the loss at every step and the sharpness every k steps, many step sizes at once.

``gdlab.track(problem, alphas, optimizer="sgd", steps=T, every=k)`` trains one copy of the problem
per step size α from the same w₀ (full batch, the optax optimizer of :mod:`gdlab.optimizers` with
traced hyperparameters) and records

* ``loss[i, t]`` = L(w_t) for t = 0 … T (the loss whose gradient step t takes, then the last);
* ``sharpness[i, j]`` = λ₁ … λ_k of ∇²L(w_t) at t = j·every, j = 0 … T/every (:mod:`gdlab.eos`);
* for Adam also ``preconditioned[i, j]`` = λ₁(P⁻¹∇²L(w_t)), P = diag(√v̂_t + ε) (NaN at t = 0,
  where v̂ is not defined yet).

All step sizes are one compiled program, ``jit(lax.map(run))`` over α: the runs one after another
inside it, where a run is a scan of T/k blocks, each a scan of k optimizer steps followed by one
Lanczos. Sequential, not vmapped: a vmapped batch's matrix products round differently with the
batch size, so one α's numbers would depend on which other α share the call; run one at a time,
each α gives the same bits whatever the others are and wherever it stands among them. (On a CPU
each step is already a large matrix product: the batch saved little; the one compilation is what
one program buys.) The optimizer step is the same operation as an untracked run's
(``w + update(∇L(w))``).

:func:`summary` reduces a result to Cohen et al.'s (2021) figures per step size: the first step at
which the sharpness reaches the threshold (2/α for GD, 2(1 + β)/α heavy ball, (2 + 2β₁)/((1 − β₁)α)
for Adam's preconditioned sharpness), and the ratio sharpness/threshold over the last half of
training (median, min, max). Runs are not frozen: a diverged run's numbers turn inf/NaN, and the
summary says ``diverged``.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from gdlab import curvature, eos, grids, optimizers
from gdlab._sweep_checks import DTYPES, choice, integer, precision, shared
from gdlab.errors import USER_CODE_ERRORS, ArgumentError, one_line
from gdlab.interfaces import Bindable, Problem, WithInit

__all__ = ["track", "TrackResult", "summary"]


@dataclasses.dataclass(frozen=True)
class TrackResult:
    """A tracked sweep over α (arrays have the α axis first)."""

    alphas: np.ndarray             # (N,)
    optimizer: str
    hparams: dict                  # the optimizer's other hyperparameters (shared by all runs)
    steps: int
    every: int
    loss: np.ndarray               # (N, T + 1): L(w_t)
    sharpness: np.ndarray          # (N, T/every + 1, k): top-k Hessian eigenvalues at t = j·every
    preconditioned: np.ndarray | None   # (N, T/every + 1): λ₁(P⁻¹H) (Adam), else None
    threshold: np.ndarray          # (N,): the edge-of-stability threshold of each run
    compile_s: float
    run_s: float
    dtype: str

    @property
    def sharpness_steps(self) -> np.ndarray:
        return np.arange(0, self.steps + 1, self.every)

    @property
    def edge_measure(self) -> np.ndarray:
        """(N, T/every + 1): what is compared to ``threshold`` (preconditioned for Adam)."""
        return self.preconditioned if self.preconditioned is not None else self.sharpness[..., 0]


def _blocks(problem, w0, hp, alpha, *, make, steps, every, k, iters, dense_max, adam, measure):
    """One run: (losses (T+1,), sharpness (T/every+1, k), preconditioned (T/every+1,))."""
    tx = make(alpha=alpha, **hp)
    value_and_grad = jax.value_and_grad(problem.loss)

    def step(carry, _):
        w, state = carry
        loss, g = value_and_grad(w)
        updates, state = tx.update(g, state, w)
        return (w + updates, state), loss

    def sharpness(w):
        """λ₁ … λ_k of ∇²L(w) (zeros when not measuring)."""
        if not measure:
            return jnp.zeros((k,), w.dtype)
        return curvature.top_eigenvalues(problem.loss, w, k, iters=iters, dense_max=dense_max)

    def preconditioned(w, state):
        """Adam's λ₁(P⁻¹∇²L(w)), P = diag(√v̂ + ε) (NaN for the others, 0 when not measuring)."""
        if not measure:
            return jnp.zeros((), w.dtype)
        if not adam:
            return jnp.full((), jnp.nan, w.dtype)
        v_hat = eos.adam_v_hat(state, hp["b2"])
        return eos.preconditioned_eigenvalues(problem.loss, w, v_hat, hp["eps"], 1, iters=iters,
                                              dense_max=dense_max)[0]

    def block(carry, _):
        carry, losses = jax.lax.scan(step, carry, None, length=every)
        return carry, (losses, sharpness(carry[0]), preconditioned(*carry))

    (w, _), (losses, lam, pre) = jax.lax.scan(block, (w0, tx.init(w0)), None,
                                              length=steps // every)
    pre0 = jnp.full((), jnp.nan, w0.dtype)   # v̂₀ = 0/0: no preconditioner before the first step
    return (jnp.concatenate([losses.reshape(-1), problem.loss(w)[None]]),
            jnp.concatenate([sharpness(w0)[None], lam]), jnp.concatenate([pre0[None], pre]))


def _start(problem, w0, dtype: str):
    """(the problem as simulated, w₀ as a ``dtype`` array): w₀ defaults to ``problem.init()``; a
    user's loss (:class:`~gdlab.interfaces.Bindable`) is bound to w₀'s layout and steps it flat.
    w₀ must be finite in ``dtype`` and of the problem's parameter shape, and the loss must take it
    and return one number (traced, nothing computed)."""
    if not isinstance(problem, Problem):
        raise ArgumentError("problem", f"{grids.brief(problem)} is not a gdlab problem; build one "
                                       "with gdlab.problems, e.g. gdlab.problems.mlp()")
    name = type(problem).__name__
    if w0 is None:
        if not isinstance(problem, WithInit):
            raise ArgumentError("w0", f"{name} has no init(): give w0")
        w0 = problem.init()
    given, blame = w0, "w0" if isinstance(problem, Bindable) else "problem"
    if isinstance(problem, Bindable):
        problem, w0 = problem.bind(w0)
    w = shared("w0", w0, np.dtype(dtype))
    expected = tuple(problem.param_shape)
    if w.shape != expected:
        raise ArgumentError("w0", f"shape {w.shape} differs from {name}'s parameter shape "
                                  f"{expected}; give an array of shape {expected}")
    with precision(dtype):
        try:
            out = jax.eval_shape(problem.loss, jax.ShapeDtypeStruct(w.shape, dtype))
        except USER_CODE_ERRORS as e:  # whatever the problem's code raises
            raise ArgumentError(blame, f"{name}'s loss does not take w0 = {grids.brief(given)} "
                                       f"({one_line(e)})") from None
    if out.shape != ():
        raise ArgumentError("problem.loss", f"{name}'s loss returns shape {out.shape}; a loss "
                                            "must return one number, e.g. a sum or a mean")
    return problem, w


def track(problem, alphas, *, optimizer: str = "sgd", hparams: dict | None = None, w0=None,
          steps: int, every: int = 10, k: int = 1, iters: int = 20,
          dense_max: int = curvature.DENSE_MAX, dtype: str | None = None,
          sharpness: bool = True) -> TrackResult:
    """Train ``problem`` from w₀ (default ``problem.init()``) for ``steps`` steps at each α of
    ``alphas``, one after another in one compiled program (each α's numbers the same bits
    whatever the other α), recording the loss every step and the top-``k`` sharpness every ``every``
    steps by ``iters`` Lanczos iterations (dense below ``dense_max`` parameters).
    ``sharpness=False`` skips the eigenvalues (zeros): the same program without Lanczos, for
    timing. ``dtype`` defaults to the problem's ``default_dtype`` (float64 for networks).
    ``hparams`` (a mapping, e.g. ``{"beta": 0.9}``) override the optimizer's defaults; the
    thresholds need the ranges each optimizer declares (``gdlab.optimizers.OptimizerSpec.ranges``:
    β in (−1, 1), β₁, β₂ in [0, 1), ε > 0).
    Every argument is checked, in one line, before anything is compiled."""
    steps = integer("steps", steps, 1)
    every = integer("every", every, 1)
    if steps % every:
        raise ArgumentError("every", f"{every} must divide steps = {steps}")
    k, iters = integer("k", k, 1), integer("iters", iters, 1)
    if k > iters:
        raise ArgumentError("k", f"{k} exceeds iters = {iters}; raise iters")
    dtype = dtype or (problem.default_dtype if isinstance(problem, WithInit) else "float32")
    choice("dtype", dtype, DTYPES)
    hp = eos.check_hparams(optimizer, {} if hparams is None else hparams, dtype=dtype)
    spec = optimizers.get(optimizer)
    alphas = np.asarray(alphas, np.float64).reshape(-1)
    if alphas.size == 0 or not np.all(np.isfinite(alphas) & (alphas > 0)):
        raise ArgumentError("alphas", "must be a non-empty list of finite step sizes > 0")
    problem, w0 = _start(problem, w0, dtype)
    with precision(dtype):
        cast = lambda x: (jnp.asarray(x, dtype) if jnp.issubdtype(jnp.asarray(x).dtype,
                                                                  jnp.floating) else x)
        prob = jax.tree.map(cast, problem)
        w = jnp.asarray(w0, dtype)
        hp_arrays = {name: jnp.asarray(v, dtype) for name, v in hp.items()}
        run = functools.partial(_blocks, make=spec.make, steps=steps, every=every, k=k,
                                iters=iters, dense_max=dense_max, adam=optimizer == "adam",
                                measure=bool(sharpness))
        program = jax.jit(lambda prob, w, hp, a: jax.lax.map(
            functools.partial(run, prob, w, hp), a))
        a = jnp.asarray(alphas, dtype)
        t0 = time.perf_counter()
        compiled = program.lower(prob, w, hp_arrays, a).compile()
        t1 = time.perf_counter()
        loss, lam, pre = jax.device_get(compiled(prob, w, hp_arrays, a))
        t2 = time.perf_counter()
    simulated = np.asarray(a, np.float64)
    return TrackResult(alphas=simulated, optimizer=optimizer, hparams=hp, steps=steps,
                       every=every, loss=np.asarray(loss), sharpness=np.asarray(lam),
                       preconditioned=np.asarray(pre) if optimizer == "adam" else None,
                       threshold=np.asarray(eos.threshold(optimizer, simulated, **hp)),
                       compile_s=t1 - t0, run_s=t2 - t1, dtype=dtype)


def summary(result: TrackResult) -> list[dict]:
    """Per step size: the first step at which the tracked sharpness reaches the threshold (None if
    never) and sharpness/threshold over the last half of training, t ≥ T/2 (median, min, max)."""
    steps = result.sharpness_steps
    late = steps >= result.steps / 2
    rows = []
    for i, alpha in enumerate(result.alphas):
        ratio = result.edge_measure[i] / result.threshold[i]
        reached = np.flatnonzero(ratio >= 1)
        tail = ratio[late]
        diverged = not np.isfinite(result.loss[i, -1]) or not np.all(np.isfinite(tail))
        rows.append({
            "alpha": float(alpha), "threshold": float(result.threshold[i]),
            "first_step_at_threshold": int(steps[reached[0]]) if reached.size else None,
            "ratio_median": None if diverged else float(np.median(tail)),
            "ratio_min": None if diverged else float(np.min(tail)),
            "ratio_max": None if diverged else float(np.max(tail)),
            "final_loss": float(result.loss[i, -1]) if np.isfinite(result.loss[i, -1]) else None,
            "diverged": bool(diverged)})
    return rows
