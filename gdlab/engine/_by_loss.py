"""Runs judged by their loss: a problem without a known optimum (a user's loss, a network).

Each step evaluates the loss and its gradient together, L_t, ∇L(w_t) = value_and_grad(L)(w_t), and
tracks the ratio ρ_t = L_t / L_0 online (nothing of size T is kept). A run is *frozen* at the first
step t whose ratio is not finite or blows up, ρ_t > :func:`blowup` (√ of the dtype's largest
number, the divergence bound of every gdlab run), or whose iterate holds a non-finite entry: it
stays at w_{t−1}, the last iterate whose loss was in bound, and ``t_freeze`` = t. The iterate is
also checked after the last step and wherever a snapshot is taken, so no rejected iterate is ever
recorded.

:class:`LossStats` also holds what Sohl-Dickstein's (2024) trainability score needs, from
ρ_0 … ρ_{T−1} clipped at ``SCORE_CLIP`` = 10⁶ as in his notebook (a frozen run's remaining steps
count as 10⁶): the sums Σρ_t and Σ1/ρ_t and the sum over the last ``SCORE_WINDOW`` steps, from
which ``gdlab.regimes`` decides converged (mean of the last ratios below 1) and the score −Σρ_t
(converged) or Σ1/ρ_t (not). A run that passes 10⁶ and comes back is not frozen, as in the notebook.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gdlab.engine import _loop
from gdlab.engine._common import divergence_bound, step_sizes

__all__ = ["LossStats", "run", "SCORE_CLIP", "SCORE_WINDOW", "blowup"]

SCORE_CLIP = 1e6    # the notebook's clip of the ratios in the score
SCORE_WINDOW = 20   # the notebook's "mean of the last 20 ratios"


def blowup(dtype) -> float:
    """ρ beyond which a run is frozen as diverged: the divergence bound √(largest finite)."""
    return divergence_bound(dtype)


class LossStats(NamedTuple):
    """Online statistics of a run judged by its loss (per-run shapes)."""

    t_freeze: jnp.ndarray      # int32: first t with ρ_t non-finite or > blowup; −1 if never
    steps_to_tol: jnp.ndarray  # int32: first t ≤ T with ρ_t < tol; −1 if never
    ratio_sum: jnp.ndarray     # Σ_{t<T} min(ρ_t, SCORE_CLIP) (frozen steps count SCORE_CLIP)
    inv_sum: jnp.ndarray       # Σ_{t<T} 1/ρ_t, likewise
    last_sum: jnp.ndarray      # Σ of the clipped ρ_t over the last SCORE_WINDOW steps t < T
    final_ratio: jnp.ndarray   # ρ_T, or the last in-bound ratio of a frozen run
    min_ratio: jnp.ndarray     # min_t ρ_t over in-bound steps


class _Carry(NamedTuple):
    w: jnp.ndarray             # first: the snapshots read it
    opt_state: Any
    w_prev: jnp.ndarray        # w_{t−1}: where a run freezes
    stats: LossStats
    tol: jnp.ndarray


def _in_bound(loss, loss0, w, active):
    """(ρ = L/L₀, live): the run is active and both ρ and w are finite, ρ ≤ blowup (L₀ > 0 is
    checked by the sweep's plan)."""
    ratio = loss / loss0
    bound = blowup(w.dtype)
    live = active & jnp.isfinite(ratio) & (ratio <= bound) & jnp.all(jnp.isfinite(w))
    return ratio, live


def _step(problem, tx, loss0, steps, carry: _Carry, t):
    loss, g = jax.value_and_grad(problem.loss)(carry.w)
    st = carry.stats
    active = st.t_freeze < 0
    ratio, live = _in_bound(loss, loss0, carry.w, active)
    clipped = jnp.where(live, jnp.minimum(ratio, SCORE_CLIP), SCORE_CLIP).astype(
        st.ratio_sum.dtype)
    st = _seen(st, ratio, live, active, t, carry.tol)._replace(
        ratio_sum=st.ratio_sum + clipped,
        inv_sum=st.inv_sum + 1 / clipped,
        last_sum=st.last_sum + jnp.where(t >= steps - SCORE_WINDOW, clipped, 0))
    updates, new_state = tx.update(g, carry.opt_state, carry.w)
    w = jnp.where(live, carry.w + updates, jnp.where(active, carry.w_prev, carry.w))
    # w_prev and the optimizer state are read only while the run is active: no select needed
    return carry._replace(w=w, opt_state=new_state, w_prev=carry.w, stats=st), None


def _seen(st: LossStats, ratio, live, active, t, tol) -> LossStats:
    """The statistics of seeing ρ_t (the freeze, steps to tol, final and least ratio)."""
    return st._replace(
        t_freeze=jnp.where(active & ~live, t, st.t_freeze),
        steps_to_tol=jnp.where((st.steps_to_tol < 0) & live & (ratio < tol), t, st.steps_to_tol),
        final_ratio=jnp.where(live, ratio, st.final_ratio),
        min_ratio=jnp.where(live, jnp.minimum(st.min_ratio, ratio), st.min_ratio))


def _check(problem, loss0, carry: _Carry, t) -> _Carry:
    """Check w_t now (after the last step, and before a snapshot records it): freeze at t, back
    to w_{t−1}, if out of bound. The next step sees the same ρ_t, so checking twice changes
    nothing."""
    active = carry.stats.t_freeze < 0
    ratio, live = _in_bound(problem.loss(carry.w), loss0, carry.w, active)
    st = _seen(carry.stats, ratio, live, active, t, carry.tol)
    return carry._replace(w=jnp.where(active & ~live, carry.w_prev, carry.w), stats=st)


def _checked_stride(body, check, record_every: int, unroll: int, carry: _Carry, t0):
    """``record_every`` steps from t0, the check of the iterate reached, and that iterate."""
    carry = _loop._steps(body, carry, t0, record_every, unroll)
    carry = check(carry, t0 + record_every)
    return carry, carry.w


def run(problem, hparams: dict, w0, r, tol, *, make_optimizer: Callable, steps: int, unroll: int,
        record_every: int | None, statistics: bool = True):
    """One run judged by its loss (vmapped by the caller): (final w, LossStats, snapshots)."""
    del r, statistics   # no linear rate; the statistics are the judgment itself
    tx = make_optimizer(**step_sizes(problem, hparams))
    loss0 = problem.loss(w0)
    dtype = w0.dtype
    zero = jnp.zeros((), dtype)
    stats = LossStats(t_freeze=jnp.int32(-1), steps_to_tol=jnp.int32(-1), ratio_sum=zero,
                      inv_sum=zero, last_sum=zero, final_ratio=jnp.ones((), dtype),
                      min_ratio=jnp.ones((), dtype))
    carry = _Carry(w0, tx.init(w0), w0, stats, jnp.asarray(tol, dtype))
    body = functools.partial(_step, problem, tx, loss0, steps)
    check = functools.partial(_check, problem, loss0)
    snaps = None
    if record_every is None:
        carry = check(_loop._steps(body, carry, 0, steps, unroll), steps)
    else:   # every stride ends with a check, the last one at T
        n_outer, rest = divmod(steps, record_every)
        carry, snaps = jax.lax.scan(
            functools.partial(_checked_stride, body, check, record_every, unroll), carry,
            record_every * jnp.arange(n_outer, dtype=jnp.int32))
        parts = [w0[None], snaps]
        if rest:
            carry = check(_loop._steps(body, carry, n_outer * record_every, rest, unroll), steps)
            parts.append(carry.w[None])
        snaps = jnp.concatenate(parts)
    return carry.w, carry.stats, snaps
