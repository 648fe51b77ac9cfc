"""The per-step loop: one gradient-descent run as ``lax.scan`` over T steps, with online statistics.

A step is ``w ← w + optax_update(∇L(w))``. Nothing of size T is kept unless strided snapshots are
asked for: the carry holds the iterate, the optimizer state and :class:`RunStats`. A run whose
error leaves the divergence bound, or becomes inf/NaN, is *frozen*: its iterate stays at the last
in-bound value and ``t_freeze`` records the step, so no inf or NaN ever reaches the results.

:func:`_run` is one run; the chunk program (:mod:`gdlab.engine._program`) vmaps it over a batch.
It is also the reference the fast paths reproduce (:mod:`gdlab.engine.tiled`,
:mod:`gdlab.engine.fused`: the same operations in the same order).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gdlab.engine._common import RunStats, divergence_bound, noise_floor, step_sizes
from gdlab.engine._common import norm as _norm
from gdlab.interfaces import Modal


class _Constants(NamedTuple):
    """What every step of one run reads."""

    problem: Any
    tx: Any                  # the optax GradientTransformation
    w_star: jnp.ndarray      # the optimum, broadcast to the parameter's shape
    w_star_abs: jnp.ndarray  # |w*|
    floor: jnp.ndarray       # the noise floor (see noise_floor)
    bound: jnp.ndarray       # the divergence bound
    tol: Any
    r: Any                   # the linear contraction factor, or None
    half: int                # T // 2: err_early covers t ≤ half


class _Step(NamedTuple):
    """One optimizer step and the freeze (see :func:`_freeze_step`)."""

    w: jnp.ndarray           # the iterate after the step, if taken (else unchanged)
    opt_state: Any           # likewise the optimizer state
    e: jnp.ndarray           # w_{t+1} − w* of the step computed (taken or not)
    err: jnp.ndarray         # |e|
    ok: jnp.ndarray          # bool: the step was taken
    t_freeze: jnp.ndarray    # int32: t + 1 if the run froze at this step


def _freeze_step(c: _Constants, w, opt_state, t_freeze, t) -> _Step:
    """The step ``w ← w + optax_update(∇L(w))``, taken only by an active run (t_freeze < 0) whose
    new error stays within the bound; the first step that leaves it (or is inf/NaN) freezes the run
    at its last in-bound iterate and records t + 1 in t_freeze."""
    updates, new_state = c.tx.update(c.problem.grad(w), opt_state, w)
    w_new = w + updates
    e_new = w_new - c.w_star
    err_new = _norm(e_new)
    active = t_freeze < 0
    ok = active & (err_new <= c.bound)  # False for inf and NaN
    t_freeze = jnp.where(active & ~ok, t + 1, t_freeze)
    w, opt_state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), (w_new, new_state),
                                (w, opt_state))
    return _Step(w, opt_state, e_new, err_new, ok, t_freeze)


def _update_only(c: _Constants, carry, t):
    """The benchmark's floor: the optimizer step and the freeze, no statistics."""
    w, opt_state, st = carry
    new = _freeze_step(c, w, opt_state, st.t_freeze, t)
    return (new.w, new.opt_state, st._replace(t_freeze=new.t_freeze)), None


def _mode_flips(problem, e, e_new, floor, ok):
    """Per eigen-direction: did the error component change sign, both above the floor?"""
    m, m_new = problem.modes(e), problem.modes(e_new)
    return ((ok & (jnp.abs(m) > floor) & (jnp.abs(m_new) > floor) & (m * m_new < 0))
            .astype(jnp.int32))


def _rec_dev(c: _Constants, rec_dev, err, err_new, ok):
    """max_t ||e_{t+1}| − |r||e_t|| / scale_t over the steps taken (unchanged without r).

    Relative to the magnitudes the step handles: |w*|, |e_t|, |e_{t+1}| and |αλ e_t|. scale = 0 only
    when w* = 0 and e_t = e_{t+1} = 0: both sides of the recurrence are then exactly 0 and the
    deviation is 0 (dividing by 1 there, not 0/0 = NaN).
    """
    if c.r is None:
        return rec_dev
    r = c.r
    scale = c.w_star_abs + err + err_new + jnp.abs(1 - r) * err
    dev = jnp.abs(err_new - jnp.abs(r) * err) / jnp.where(scale > 0, scale, 1)
    return jnp.where(ok, jnp.maximum(rec_dev, dev), rec_dev)


def _step(c: _Constants, carry, t):
    """One step with the online statistics (:class:`RunStats`)."""
    w, opt_state, st = carry
    e = w - c.w_star
    err = _norm(e)
    new = _freeze_step(c, w, opt_state, st.t_freeze, t)
    ok, e_new, err_new = new.ok, new.e, new.err
    resolvable = ok & (err > c.floor)
    flip = resolvable & (err_new > c.floor) & (jnp.sum(e_new * e) < 0)
    late = t + 1 > c.half
    err_in = jnp.where(ok, err_new, 0)
    rec_dev = _rec_dev(c, st.rec_dev, err, err_new, ok)
    st = RunStats(
        t_freeze=new.t_freeze,
        steps_to_tol=jnp.where((st.steps_to_tol < 0) & ok & (err_new < c.tol), t + 1,
                               st.steps_to_tol),
        flips=st.flips + flip.astype(jnp.int32),
        err_early=jnp.where(late, st.err_early, jnp.maximum(st.err_early, err_in)),
        err_late=jnp.where(late, jnp.maximum(st.err_late, err_in), st.err_late),
        err_obs=jnp.where(resolvable, err_new, st.err_obs),
        k_obs=jnp.where(resolvable, t + 1, st.k_obs),
        rec_dev=rec_dev,
        mode_flips=None if st.mode_flips is None else st.mode_flips + _mode_flips(
            c.problem, e, e_new, c.floor, ok),
    )
    return (new.w, new.opt_state, st), None


def _counted(body, carry_t, _):
    carry, t = carry_t
    return (body(carry, t)[0], t + 1), None


def _steps(body, carry, t0, length, unroll):
    """Steps t0 … t0 + length − 1; the step number is carried, so no T-long array of step numbers
    is ever built (T can be 2³¹ − 1)."""
    (carry, _), _ = jax.lax.scan(functools.partial(_counted, body),
                                 (carry, jnp.asarray(t0, jnp.int32)), None, length=length,
                                 unroll=unroll)
    return carry


def _stride(body, record_every, unroll, carry, t0):
    """``record_every`` steps from t0, and the iterate after them (a snapshot)."""
    carry = _steps(body, carry, t0, record_every, unroll)
    return carry, carry[0]


def _run(problem: Any, hparams: dict, w0: jax.Array, r: Any, tol: Any, *,
         make_optimizer: Callable, steps: int, unroll: int, record_every: int | None,
         statistics: bool = True) -> tuple[jax.Array, RunStats, jax.Array | None]:
    """One run (vmapped by the caller). Returns (final w, RunStats, snapshots or None)."""
    dtype = w0.dtype
    eps = jnp.finfo(dtype).eps
    bound = jnp.asarray(divergence_bound(dtype), dtype)
    w_star = jnp.broadcast_to(problem.optimum(), w0.shape).astype(dtype)
    w_star_abs = _norm(w_star)
    err0 = _norm(w0 - w_star)
    floor = noise_floor(eps, w_star_abs, err0)
    tx = make_optimizer(**step_sizes(problem, hparams))
    c = _Constants(problem, tx, w_star, w_star_abs, floor, bound, tol, r, steps // 2)

    stats0 = RunStats(
        t_freeze=jnp.int32(-1),
        steps_to_tol=jnp.where(err0 < tol, 0, -1).astype(jnp.int32),
        flips=jnp.int32(0),
        err_early=err0,
        err_late=jnp.zeros((), dtype),
        err_obs=err0,
        k_obs=jnp.int32(0),
        rec_dev=jnp.zeros((), dtype),
        mode_flips=(jnp.zeros(problem.modes(w0 - w_star).shape, jnp.int32)
                    if isinstance(problem, Modal) else None),
    )
    carry = (w0, tx.init(w0), stats0)
    body = functools.partial(_step if statistics else _update_only, c)

    if record_every is None:
        carry = _steps(body, carry, 0, steps, unroll)
        return carry[0], carry[2], None

    # Strided snapshots: w_0, w_k, w_2k, …, and w_T last.
    n_outer, rest = divmod(steps, record_every)
    carry, snaps = jax.lax.scan(functools.partial(_stride, body, record_every, unroll), carry,
                                record_every * jnp.arange(n_outer, dtype=jnp.int32))
    if rest:
        carry = _steps(body, carry, n_outer * record_every, rest, unroll)
    snaps = [w0[None], snaps] + ([carry[0][None]] if rest else [])
    return carry[0], carry[2], jnp.concatenate(snaps)
