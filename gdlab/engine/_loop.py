"""The per-step loop: one gradient-descent run as ``lax.scan`` over T steps, with online statistics.

A step is ``w ← w + optax_update(∇L(w))``. Nothing of size T is kept unless strided snapshots are
asked for: the carry holds the iterate, the optimizer state, :class:`RunStats` and the references
of the sign-flip rule (:class:`_Refs`). A run whose error leaves the divergence bound, or becomes
inf/NaN, is *frozen*: its iterate stays at the last in-bound value and ``t_freeze`` records the
step, so no inf or NaN ever reaches the results.

Sign flips are counted between *resolvable* observations, not only between consecutive steps: a
reference e_ref starts at e₀, and at each step taken, with e_new = e_{t+1},

    resolvable = |e_new| > floor + 64 ulps of |e_t|,   flip = resolvable ∧ ⟨e_new, e_ref⟩ < 0,
    e_ref ← e_new if resolvable ∧ ⟨e_new, e_ref⟩ ≠ 0.

So a sign change whose crossing step lands below the floor still counts once the error is seen
again on the other side; for consecutive resolvable steps it is ⟨e_{t+1}, e_t⟩ < 0. The step that
freezes a run is seen too: its error is computed, only not kept, so a run whose first step leaves
the bound (αλ = 10¹⁸ on the homework's loss) has its flip (unless that error is NaN, or a vector's
inner product overflows to NaN, which says nothing). A run started
exactly at the optimum (e₀ = 0) keeps e_ref = 0 and counts no flip: if rounding moves it off w* and
the map grows that, its growth alone labels it (``gdlab.theory`` flags such runs). For a scalar,
sign(e_ref) = sign(e₀)·(−1)^flips, which the fast paths use instead of carrying e_ref. Per
eigen-direction (``mode_flips``) the same rule holds for each component, against
:func:`~gdlab.engine._common.mode_floor` (``flip_floor`` is the whole error's).

:func:`_run` is one run; the chunk program (:mod:`gdlab.engine._program`) vmaps it over a batch.
It is also the reference the fast paths reproduce (:mod:`gdlab.engine.tiled`,
:mod:`gdlab.engine.fused`: the same operations in the same order).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gdlab.engine._common import (
    RunStats,
    divergence_bound,
    flip_floor,
    inner_sign,
    mode_floor,
    noise_floor,
    step_sizes,
)
from gdlab.engine._common import norm as _norm
from gdlab.interfaces import Modal


class _Constants(NamedTuple):
    """What every step of one run reads."""

    problem: Any
    tx: Any                  # the optax GradientTransformation
    w_star: jnp.ndarray      # the optimum, broadcast to the parameter's shape
    w_star_abs: jnp.ndarray  # |w*|
    floor: jnp.ndarray       # the noise floor (see noise_floor)
    eps: Any                 # the dtype's machine epsilon (flip_floor, mode_floor)
    bound: jnp.ndarray       # the divergence bound
    tol: Any
    r: Any                   # the linear contraction factor, or None
    half: int                # T // 2: err_early covers t ≤ half


class _Refs(NamedTuple):
    """The sign-flip rule's references (module docstring): the last resolvable error, and per
    eigen-direction the last resolvable component (None without modes)."""

    e: jnp.ndarray
    modes: Any = None


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
    w, opt_state, st, refs = carry
    new = _freeze_step(c, w, opt_state, st.t_freeze, t)
    return (new.w, new.opt_state, st._replace(t_freeze=new.t_freeze), refs), None


def _observe(x_new, ref, resolvable, sign):
    """The sign-flip rule (module docstring) for one observation ``x_new`` (resolvable or not)
    against ``ref``, ``sign`` = sign⟨x_new, ref⟩: (flip, the new reference)."""
    return resolvable & (sign < 0), jnp.where(resolvable & (sign != 0), x_new, ref)


def _mode_flips(c: _Constants, ref, e_new, err, err_new, active):
    """Per eigen-direction, the sign-flip rule for the component of e_{t+1} (of a step computed by
    an ``active`` run), resolvable above mode_floor: (flips (d,) int32, the new references)."""
    m_new = c.problem.modes(e_new)
    seen = active & (jnp.abs(m_new) > mode_floor(c.floor, c.eps, err, err_new))
    flip, ref = _observe(m_new, ref, seen, jnp.sign(m_new) * jnp.sign(ref))
    return flip.astype(jnp.int32), ref


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
    w, opt_state, st, refs = carry
    err = _norm(w - c.w_star)
    active = st.t_freeze < 0            # the step is computed, and seen even if it freezes the run
    new = _freeze_step(c, w, opt_state, st.t_freeze, t)
    ok, e_new, err_new = new.ok, new.e, new.err
    measured = ok & (err > c.floor)     # a step from a resolvable error: err_obs, k_obs
    resolvable = active & (err_new > flip_floor(c.floor, c.eps, err))  # False for NaN
    flip, e_ref = _observe(e_new, refs.e, resolvable, inner_sign(e_new, refs.e))
    mode_flips, m_ref = st.mode_flips, refs.modes
    if mode_flips is not None:
        flips_i, m_ref = _mode_flips(c, m_ref, e_new, err, err_new, active)
        mode_flips = mode_flips + flips_i
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
        err_obs=jnp.where(measured, err_new, st.err_obs),
        k_obs=jnp.where(measured, t + 1, st.k_obs),
        rec_dev=rec_dev,
        mode_flips=mode_flips,
    )
    return (new.w, new.opt_state, st, _Refs(e_ref, m_ref)), None


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
    e0 = w0 - w_star
    err0 = _norm(e0)
    floor = noise_floor(dtype, w_star_abs, w0.size)
    tx = make_optimizer(**step_sizes(problem, hparams))
    c = _Constants(problem, tx, w_star, w_star_abs, floor, eps, bound, tol, r, steps // 2)

    m0 = problem.modes(e0) if isinstance(problem, Modal) else None
    stats0 = RunStats(
        t_freeze=jnp.int32(-1),
        steps_to_tol=jnp.where(err0 < tol, 0, -1).astype(jnp.int32),
        flips=jnp.int32(0),
        err_early=err0,
        err_late=jnp.zeros((), dtype),
        err_obs=err0,
        k_obs=jnp.int32(0),
        rec_dev=jnp.zeros((), dtype),
        mode_flips=None if m0 is None else jnp.zeros(m0.shape, jnp.int32),
    )
    carry = (w0, tx.init(w0), stats0, _Refs(e0, m0) if statistics else None)
    body = functools.partial(_step if statistics else _update_only, c)

    if record_every is None:
        carry = _steps(body, carry, 0, steps, unroll)
        return carry[0], carry[2], None

    # Strided snapshots: w_0, w_k, w_2k, …, and w_T last (snapshot_count of them).
    n_outer, rest = divmod(steps, record_every)
    carry, snaps = jax.lax.scan(functools.partial(_stride, body, record_every, unroll), carry,
                                record_every * jnp.arange(n_outer, dtype=jnp.int32))
    if rest:
        carry = _steps(body, carry, n_outer * record_every, rest, unroll)
    snaps = [w0[None], snaps] + ([carry[0][None]] if rest else [])
    return carry[0], carry[2], jnp.concatenate(snaps)


def snapshot_count(steps: int, record_every: int) -> int:
    """Iterates a run recording every k-th of T steps keeps (:func:`_run`): w₀, w_k, …,
    w_{⌊T/k⌋k}, and w_T when k does not divide T — ⌈T/k⌉ + 1 in all."""
    return -(-steps // record_every) + 1
