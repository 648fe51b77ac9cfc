r"""Long-run dynamics of gradient descent on non-quadratic losses: cycles, chaos, Lyapunov
exponents.

GD is the map f(w) = w − α∇L(w), f'(w) = 1 − α∇²L(w). After a transient, the last ``window``
iterates of each run are examined (host side, float64 of the simulated values):

* period p = the smallest p ≤ ``max_period`` with |w_{t+p} − w_t| ≤ √eps·scale over the window
  (p = 1: a fixed point; 0: none found), except that a run still converging geometrically to w*
  (Aitken's extrapolation of |w_t − w*| reaches 0) is a fixed point even if it is slow;
* a run with no fixed point in the window (the window may hold the transient — it is the whole
  run when ``window`` = ``steps`` — or a slow approach that looks like a 2-cycle) whose float64
  continuation (below) comes to rest, |α∇L(v_K)| ≤ √eps·scale, converges to v_K: p = 1. A run
  converging to a fixed point is never "periodic" with period 0;
* a run whose float64 continuation is unbounded — it leaves the float64 range, or its reach
  max|v_k − v₀| doubles from the first K/2 steps to the last (|e| growing by > 3.5·10⁻⁵ per step)
  — escapes (p = −1): it is diverging, not chaotic, even if |e| grew by only 1 % a step and the
  simulated horizon ended inside the float range;
* a detected cycle is kept only if it attracts: its multiplier m = Π_{i<p} f'(w_{T−p+i}), in
  float64 over the last period, has log|m| ≤ p·10⁻³ (``CYCLE_TOL`` per step: the cycle's own
  exponent log|m|/p is at most the chaos threshold of ``gdlab.regimes``, so a cycle at its
  bifurcation, |m| → 1, is not rejected by rounding). A chaotic orbit simulated in float32 falls
  onto one of float32's finitely many cycles, exactly periodic but repelling (log|m|/p ≥ 0.049 on
  ``configs/quartic_bifurcation.toml``): such a "cycle" is not a period (p = 0), and the run is
  chaotic or not by its Lyapunov exponent;
* the Lyapunov exponent λ_L = (1/K) Σ_{k<K} log|f'(v_k)|, v₀ = w_T, v_{k+1} = f(v_k), continued in
  float64 for K = ``lyapunov_steps`` (4·10⁴) steps past the horizon (a float32 orbit, fallen onto
  a float32 cycle, would average over that cycle only; the 400-step window was off by up to 0.41).
  Against 10⁶-step float64 references the error is ≤ ``LYAPUNOV_ERROR`` = 0.03 on chaotic orbits
  (measured on the 641 chaotic α of the quartic config: max 0.013, 99th percentile 0.008; at
  K = 10⁴ it was 0.062 at α = 1.378, by a periodic window whose intermittent laminar phases slow
  the average) and ≤ 2·10⁻⁴ on orbits that settle (the transient, /K). At an attracting fixed
  point λ_L = log|1 − α∇²L(w*)|, a closed form the tests check. It is NaN for runs that escaped.
* converging runs (p = 1) oscillate or not by the sign of the multiplier f'(w_∞) at the simulated
  fixed point w_∞ = w_T (w* for a run seen converging to it geometrically, v_K for one whose
  continuation came to rest; see :func:`orbits`).

Regimes (decided by ``gdlab.regimes.decide_orbit``): a run that left the float range keeps the
engine's diverging regime, one that escapes is diverging (oscillating or not by the sign of f');
p = 1 is converging; a 2-cycle whose multiplier is 1 to float64 rounding (a quadratic at αλ = 2)
is ``bounded_oscillation``; p ≥ 2 is ``periodic``; no period and λ_L > 10⁻³ is ``chaotic``; no
period otherwise (a cycle longer than ``max_period``) is ``periodic`` with period 0.
"""

from __future__ import annotations

import functools
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from gdlab._sweep import sweep
from gdlab.engine import divergence_bound
from gdlab.errors import ArgumentError
from gdlab.interfaces import WithHessian, WithOptimum
from gdlab.regimes import _LYAPUNOV_CHAOS, decide_orbit, quiet

__all__ = ["Orbits", "orbits", "lyapunov_exponent", "LYAPUNOV_STEPS", "LYAPUNOV_ERROR", "CYCLE_TOL"]

LYAPUNOV_STEPS = 40_000   # K: float64 steps λ_L is averaged over
LYAPUNOV_ERROR = 0.03     # |λ_L − λ_ref| on chaotic orbits at K = 4·10⁴ (module docstring)
CYCLE_TOL = _LYAPUNOV_CHAOS  # per step: a cycle attracts iff log|m| ≤ p·CYCLE_TOL
_TINY = 1e-300            # |f'| = 0 (a super-attracting point) is logged as log 1e-300 ≈ −691
_NEUTRAL = 4 * float(np.finfo(np.float64).eps)   # per step: |log|m|| within it is |m| = 1


class Orbits(NamedTuple):
    alpha: np.ndarray       # (N,)
    late: np.ndarray        # (N, window) float64: the last iterates
                            # (frozen runs: NaN-free, see mask)
    diverged: np.ndarray    # (N,) bool
    period: np.ndarray      # (N,) int32: 1 fixed point, p ≥ 2 attracting cycle, 0 none found
                            # (or not attracting), −1 diverged or escaping
    multiplier: np.ndarray  # (N,) float64: Π f'(w_i) over the detected cycle's last period
                            # (NaN where no cycle was detected); |m| > e^{p·CYCLE_TOL}: rejected
    lyapunov: np.ndarray    # (N,) float64: λ_L; NaN for diverged runs, where it is undefined
    regime: np.ndarray      # (N,) int8, gdlab.regimes.Regime
    result: object          # the underlying SweepResult (engine statistics)


def _hessian(problem):
    if isinstance(problem, WithHessian):
        return lambda w: np.asarray(problem.hessian(w), np.float64)
    h = jax.vmap(jax.grad(problem.grad))
    return lambda w: np.asarray(h(w.ravel()), np.float64).reshape(w.shape)


def orbits(problem: WithOptimum, alphas: ArrayLike | Mapping[str, object], *,
           w0: ArrayLike = 0.5, steps: int = 1200, tol: float = 1.0, window: int = 256,
           max_period: int = 64, dtype: str = "float32", lyapunov_steps: int = LYAPUNOV_STEPS,
           progress: bool | None = None) -> Orbits:
    """Simulate ``steps`` GD steps per α and classify the last ``window`` iterates.

    ``tol`` only sets ``result.steps_to_tol``, the first t with |w_t − w*| < tol (−1 if never),
    as in :func:`gdlab.sweep`, whose default (1.0, also ``[run] tol``'s) it shares; ``gdlab run``
    passes the config's ``run.tol``. No orbit decision depends on it: periods and fixed points are
    decided within √eps·scale (the module docstring), a threshold set by rounding, not by the user.

    A run at the optimum (its error never above the sweep's noise floor, ``gdlab.regimes.quiet``)
    has nothing to observe: it gets :func:`gdlab.sweep`'s regime for it (``gdlab.regimes.decide``:
    converging_monotone, whatever α) and period 1, not a label read off a repelling fixed point
    it never leaves.

    A run that converges (p = 1) is ``converging_oscillating`` iff f'(w_∞) < 0 at its simulated
    limit w_∞ = w_T, else ``converging_monotone``. This is a measurement, not the closed form:
    e_{t+1} = f'(w_∞)e_t + O(e_t²) near the point the orbit actually reached (whichever minimum,
    at whatever rounding), so the sign of f'(w_∞) is the sign the error keeps flipping with, read
    off the simulated orbit with the derivative λ_L uses. Counting sign changes cannot see it where
    |f'(w_∞)| ≪ 1: just above αλ* = 1 the error shrinks by |1 − αλ*| per step and falls below the
    rounding floor before a flip is resolved (the counted edge sat at αa² = 0.51445, not 0.5).
    """
    if np.ndim(w0) != 0:
        raise ArgumentError("w0", f"shape {np.shape(w0)}: orbits (periods, Lyapunov exponents) "
                                  "are of a scalar parameter; for more, use gdlab.sweep")
    if not 2 <= window <= steps:
        raise ArgumentError("window", f"{window!r} must be in [2, steps = {steps}]")
    if not 1 <= max_period <= window // 2:
        raise ArgumentError("max_period",
                            f"{max_period!r} must be in [1, window/2 = {window // 2}]")
    if not 1 <= lyapunov_steps < 2**31:
        raise ArgumentError("lyapunov_steps", f"{lyapunov_steps!r} must be in [1, 2³¹)")
    res = sweep(problem, alphas, w0=w0, steps=steps, tol=tol, record_every=1, dtype=dtype,
                progress=progress)
    late = res.trajectory[:, -window:].astype(np.float64)
    diverged = res.diverged_at >= 0
    alpha = res.alpha.astype(np.float64)
    w_star = np.broadcast_to(np.asarray(res.w_star, np.float64), (len(late),))
    eps = float(np.finfo(res.dtype).eps)
    ptol = np.sqrt(eps) * (np.abs(late).max(axis=1) + np.abs(w_star))
    found, to_w_star = _period(late, w_star, ptol, max_period)
    cont = _continue(problem, alpha, np.where(diverged, 0.0, late[:, -1]), lyapunov_steps)
    # No fixed point seen in the window (it may hold the transient, or a slow approach that looks
    # like a 2-cycle): a run whose float64 continuation comes to rest (its last step
    # |α∇L(v_K)| ≤ ptol) converges to that point.
    settles = (found != 1) & ~diverged & ~cont.escapes & (cont.last_step <= ptol)
    found = np.where(settles, 1, found)
    # The detected cycle's points: the last p iterates, or the fixed point itself for a run seen
    # converging to it (w*, or where the continuation came to rest): its last iterate may still
    # sit where |f'| > 1.
    points = late[:, -max_period:].copy()
    points[to_w_star, -1] = w_star[to_w_star]
    points[settles, -1] = cont.last[settles]
    deriv = 1.0 - alpha[:, None] * _hessian(problem)(points)   # f'(w), float64
    multiplier = _multiplier(deriv, found)
    with np.errstate(divide="ignore"):
        log_m = np.log(np.abs(multiplier))
    attracting = log_m <= found * CYCLE_TOL
    escapes = cont.escapes & ~diverged
    period = np.where(diverged | escapes, -1, np.where(attracting, found, 0)).astype(np.int32)
    lyap = np.where(diverged, np.nan, cont.lyapunov)
    # |m| = 1 to float64 rounding: the neutral 2-cycle of αλ = 2 (a quadratic's), not an attractor
    neutral = np.abs(log_m) <= found * _NEUTRAL
    regime = decide_orbit(period, np.nan_to_num(lyap), deriv[:, -1] < 0, alpha == 0, diverged,
                          res.regime, escapes=escapes, neutral=neutral)
    # At w* throughout: gdlab.sweep judged the run (regimes.decide's at_optimum, its error never
    # above the noise floor); that regime stands, and the orbit, w* throughout, is a fixed point.
    at_optimum = quiet(res.max_error, res.noise_floor, diverged)
    regime = np.where(at_optimum, res.regime, regime).astype(np.int8)
    period = np.where(at_optimum & ~diverged, 1, period).astype(np.int32)
    return Orbits(res.alpha, late, diverged, period, multiplier, lyap, regime, res)


def _period(late: np.ndarray, w_star: np.ndarray, ptol: np.ndarray,
            max_period: int) -> tuple[np.ndarray, np.ndarray]:
    """The smallest p ≤ ``max_period`` with |w_{t+p} − w_t| ≤ ``ptol`` over the window (0: none),
    and p = 1 for a run still converging geometrically to w* (second output: those runs)."""
    period = np.zeros(len(late), np.int32)
    for p in range(max_period, 0, -1):  # descending, so the smallest matching p wins
        ok = np.max(np.abs(late[:, p:] - late[:, :-p]), axis=1) <= ptol
        period = np.where(ok, p, period)
    # Slow convergence to w* (near a bifurcation |f'(w*)| ≈ 1) can look like a 2-cycle over a short
    # window. The distance d_t = |w_t − w*| at three equally spaced even steps extrapolates
    # (Aitken's Δ²) to its limit: 0 for convergence to w*, the cycle's amplitude for a cycle.
    window = late.shape[1]
    k = 2 * (window // 4)
    d0, d1, d2 = (np.abs(late[:, i] - w_star) for i in (0, k, 2 * k - (2 * k >= window) * 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = d2 - (d2 - d1) ** 2 / ((d2 - d1) - (d1 - d0))
    to_w_star = (d0 > d1) & (d1 > d2) & ((d0 - d1) > (d1 - d2)) & (np.abs(limit) <= ptol)
    return np.where(to_w_star, 1, period).astype(np.int32), to_w_star


def _multiplier(deriv: np.ndarray, period: np.ndarray) -> np.ndarray:
    """m = Π f'(w_t) over the last ``period`` columns of ``deriv``, per row (NaN: period < 1)."""
    p = np.clip(period, 1, deriv.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):   # frozen (diverged) rows overflow
        back = np.cumprod(deriv[:, ::-1], axis=1)        # back[:, j] = Π of the last j + 1
    m = np.take_along_axis(back, (p - 1)[:, None], axis=1)[:, 0]
    return np.where(period >= 1, m, np.nan)


class _Continuation(NamedTuple):
    """Each orbit continued in float64 for K steps from v₀ (numpy, one value per α)."""

    lyapunov: np.ndarray    # λ_L = (1/K') Σ log|f'(v_k)| over the K' ≤ K steps within bounds
    last: np.ndarray        # v_K (where it left the float64 range, if it did)
    last_step: np.ndarray   # |v_{K+1} − v_K| = |α∇L(v_K)|: 0 at a fixed point
    escapes: np.ndarray     # unbounded: left the float64 range, or its reach doubled (below)


def lyapunov_exponent(problem: WithOptimum, alpha: ArrayLike, w: ArrayLike,
                      steps: int = LYAPUNOV_STEPS) -> np.ndarray:
    """λ_L = (1/K) Σ_{k<K} log|f'(v_k)| with v₀ = ``w``, v_{k+1} = f(v_k) = v_k − α∇L(v_k), in
    float64 for K = ``steps`` (one value per α; scalar w). An orbit that leaves the float64 range
    is averaged over the steps before it left."""
    return _continue(problem, alpha, w, steps).lyapunov


def _continue(problem: WithOptimum, alpha: ArrayLike, w: ArrayLike,
              steps: int) -> _Continuation:
    """The orbits from ``w`` continued in float64 for K = ``steps`` steps (:class:`_Continuation`).

    An orbit escapes if it leaves the float64 range, or if its reach r = max |v_k − v₀| over the
    second half of the steps is more than twice that over the first: a bounded orbit (a fixed
    point, a cycle, a chaotic attractor) has explored its set within K/2 steps and reaches no
    further, while |e| growing by a factor 1 + ε per step doubles its reach once ε > 2 log 2 / K
    (3.5·10⁻⁵ at K = 4·10⁴; slower growth has λ_L < 10⁻³, never called chaotic)."""
    alpha, w = np.broadcast_arrays(np.asarray(alpha, np.float64), np.asarray(w, np.float64))
    # padded (with copies of the last run) to a power of two ≥ 8: the bisection's small batches
    # of midpoints reuse a few compiled programs
    size = max(8, 1 << max(0, int(alpha.size - 1).bit_length()))
    pad = lambda x: np.concatenate([x.ravel(), np.full(size - x.size, x.ravel()[-1])])
    with jax.enable_x64(True):
        total, n, last, last_step, reach = _log_derivative_sum(
            problem, jnp.asarray(pad(alpha)), jnp.asarray(pad(w)), steps)
    cut = lambda x: np.asarray(x)[:alpha.size].reshape(alpha.shape + np.shape(x)[1:])
    n, reach = cut(n), cut(reach)
    return _Continuation(cut(total) / np.maximum(n, 1), cut(last), cut(last_step),
                         (n < steps) | (reach[..., 1] > 2 * reach[..., 0]))


@functools.partial(jax.jit, static_argnames="steps")
def _log_derivative_sum(problem: WithOptimum, alpha: jax.Array, w: jax.Array,
                        steps: int) -> tuple[jax.Array, ...]:
    """Σ log|f'(v_k)| over the in-bound steps of each orbit, their number, v_K, |α∇L(v_K)| and
    the reach max |v_k − v₀| over the first and second half of the steps (vmapped over α).

    The sum is kept as a product m·2^e with m renormalised by ``frexp`` every step (exact to
    float64 rounding, and 3× cheaper on CPU than a log per step); log m + e·log 2 at the end."""
    hessian = problem.hessian if isinstance(problem, WithHessian) else jax.grad(problem.grad)
    bound = divergence_bound(jnp.float64)

    def one(a, v0):
        def step(carry, k):
            v, m, e, n, out, reach = carry
            d = jnp.where(out, 1.0, jnp.maximum(jnp.abs(1 - a * hessian(v)), _TINY))
            m, de = jnp.frexp(m * d)
            nxt = v - a * problem.grad(v)
            n = n + (~out)
            out = out | ~(jnp.abs(nxt) <= bound)
            half = (k >= steps // 2).astype(jnp.int32)
            reach = reach.at[half].max(jnp.abs(v - v0))
            return (jnp.where(out, v, nxt), m, e + de, n, out, reach), None

        int0 = jnp.zeros((), jnp.int32)
        init = (v0, jnp.ones((), jnp.float64), int0, int0, jnp.zeros((), bool),
                jnp.zeros(2, jnp.float64))
        (v, m, e, n, _, reach), _ = jax.lax.scan(step, init, jnp.arange(steps))
        return jnp.log(m) + e * np.log(2.0), n, v, jnp.abs(a * problem.grad(v)), reach

    return jax.vmap(one)(alpha, w)
