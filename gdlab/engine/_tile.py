"""K steps of one run on an unpacked state: the steps both fast paths take.

:class:`Tile` takes steps t0 + 1 … t0 + K of one run as the per-step loop
(``gdlab.engine._loop._run``) takes them, the same operations in the same order, on a
:class:`TileState` (the run's statistics as floats of the simulation dtype, step counters exactly).
Three kinds of tile, from most to least work per step:

* exact: the freeze masks of the per-step loop (a step is taken only by an active run whose new
  error stays within the divergence bound);
* speculative (``exact=False``): no masks; a run that left the bound shows it by a running max
  beyond the bound or NaN (``max`` propagates NaN), which the caller checks;
* quiet (speculative, ``quiet=True``): no step counters either, valid while |e| stays within the
  noise floor (checked by the caller through ``TileState.q``).

The CPU tiles (:mod:`gdlab.engine.tiled`) scan it over packed state; the GPU kernel
(:mod:`gdlab.engine.fused`) unrolls it inside one Pallas kernel.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import DTypeLike

from gdlab.engine._common import RunStats, divergence_bound, flip_floor, noise_floor

__all__ = ["Tile", "TileState"]


class TileState(NamedTuple):
    """The statistics of one run between tiles, as floats of the simulation dtype (the step
    counters exactly). A field a program does not track is None (e.g. ``d`` without ``r``). The
    fields are in alphabetical order, the leaf order the compiled programs were tuned with."""

    d: Any = None     # rec_dev so far
    eo: Any = None    # err_obs
    fl: Any = None    # flips (its parity also gives the sign-flip rule's reference, Tile.step)
    ko: Any = None    # k_obs
    m: Any = None     # running max |e_t| since the last reset (t = 0, then T//2)
    q: Any = None     # quiet tiles only: max |e_t| over the tile's start and steps
    stt: Any = None   # steps_to_tol (−1: not yet)
    w: Any = None     # the iterate (the last in-bound one, once frozen)


class _StepCarry(NamedTuple):
    """What one step of :meth:`Tile.step` hands to the next."""

    v: Any            # the iterate the steps compute (unmasked: it goes on past a freeze)
    sv: Any           # its optimizer state
    ref: Any          # sign of the sign-flip rule's reference: sign(e₀)·(−1)^flips (None: not
                      # counted)
    a: Any            # |v − w*|
    st: TileState     # the state kept (masked by ok when exact)
    s: Any            # the optimizer state kept
    tf: Any           # t_freeze as a float, −1 while active
    ok: Any           # bool: the run took every step so far (exact tiles)


class _TileConstants(NamedTuple):
    """What every step of a tile reads."""

    p: Any
    h: dict
    r: Any
    tol: Any
    w_star: Any
    floor: Any
    t0: Any           # the tile takes steps t0 + 1 … t0 + length
    n_valid: Any      # steps of the tile that count (masked tiles), else None


class Tile:
    """K steps of one run of ``gdlab.engine._loop._run`` on an unpacked state (shared by the CPU
    tiles and the GPU kernel, :mod:`gdlab.engine.fused`).

    The state is a :class:`TileState`; beside it the optimizer state ``s`` and ``tf`` (t_freeze as
    a float, −1 while active). ``exact=False`` is the speculative tile: no freeze masks, so a run
    that leaves the bound shows it by a running max beyond the bound or NaN (``max`` propagates
    NaN).
    """

    def __init__(self, make_optimizer: Callable, dtype: DTypeLike, statistics: bool, rate: bool):
        self.make_optimizer, self.dtype = make_optimizer, np.dtype(dtype)
        self.statistics, self.rate = statistics, rate and statistics
        self.bound = divergence_bound(self.dtype)
        self.eps = np.finfo(self.dtype).eps

    def f(self, i: Any) -> jax.Array:
        """Step numbers (and other small integers) as exact floats."""
        return jnp.asarray(i, self.dtype)

    def constants(self, p: Any, w0: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """w*, e₀ = w₀ − w* and the noise floor of one run."""
        w_star = jnp.asarray(p.optimum(), self.dtype)
        e0 = w0 - w_star
        return w_star, e0, noise_floor(self.dtype, jnp.abs(w_star))

    def init(self, p: Any, h: dict, w0: jax.Array,
             tol: Any) -> tuple[TileState, jax.Array, jax.Array, Any]:
        """(state, t_freeze, err_early, optimizer state) before step 1."""
        f = self.f
        err0 = jnp.abs(self.constants(p, w0)[1])
        state = TileState(w=w0, m=err0, eo=err0, d=f(0), ko=f(0), fl=f(0),
                          stt=jnp.where(err0 < tol, f(0), f(-1)))
        return state, f(-1), err0, self.make_optimizer(**h).init(w0)

    def step(self, i: Any, c: _StepCarry, k: _TileConstants, exact: bool, masked: bool,
             quiet: bool = False) -> _StepCarry:
        """Step t0 + i, as ``gdlab.engine._loop._run`` takes it; without ``exact``, no freeze."""
        u, sv = self.make_optimizer(**k.h).update(k.p.grad(c.v), c.sv, c.v)
        v = c.v + u
        e_new = v - k.w_star
        a_new = jnp.abs(e_new)
        # Step numbers are exact floats. In a Python-unrolled tile t0 is already one and i a literal
        # (no conversion per step on a GPU); in a scan, i is traced and t0 an int.
        ti = k.t0 + i if jnp.issubdtype(jnp.result_type(k.t0), jnp.floating) else self.f(k.t0 + i)
        ok, tf = c.ok, c.tf
        if exact:
            if masked:
                ok = ok & (i <= k.n_valid)
            bad = ~(a_new <= self.bound)                # catches inf and NaN
            tf = jnp.where(ok & bad, ti, tf)
        seen = ok                                       # step i computed: its sign is seen
        if exact:
            ok = ok & ~bad                              # step i taken
        only = (lambda new, old: jnp.where(ok, new, old)) if exact else (lambda new, old: new)
        st, ref = c.st, c.ref
        st = st._replace(m=only(jnp.maximum(st.m, a_new), st.m))  # also the speculation's check
        if quiet:                                       # see __call__
            st = st._replace(q=jnp.maximum(st.q, a_new))
        elif self.statistics:
            st, ref = self._counters(st, c, k, ok, seen, ti, e_new, a_new)
        if self.rate:
            scale = jnp.abs(k.w_star) + c.a + a_new + jnp.abs(1 - k.r) * c.a
            # 0 where scale = 0 (w* = e_t = e_{t+1} = 0: both sides exactly 0), as the engine.
            dev = jnp.abs(a_new - jnp.abs(k.r) * c.a) / jnp.where(scale > 0, scale, 1)
            st = st._replace(d=only(jnp.maximum(st.d, dev), st.d))
        st = st._replace(w=only(v, st.w))
        s = jax.tree.map(only, sv, c.s) if exact else sv
        return _StepCarry(v, sv, ref, a_new, st, s, tf, ok)

    def _counters(self, st: TileState, c: _StepCarry, k: _TileConstants, ok: jax.Array,
                  seen: jax.Array, ti: jax.Array, e_new: jax.Array,
                  a_new: jax.Array) -> tuple[TileState, Any]:
        """steps_to_tol, flips, err_obs and k_obs after a step (``ok``: taken; ``seen``: computed,
        so also the step that freezes the run) to ``e_new``, and the reference's new sign.

        The sign-flip rule of ``gdlab.engine._loop`` for a scalar: e_ref is the last resolvable
        error, so only its sign, ``c.ref`` = ±1 (0 if e₀ = 0), matters, and a flip reverses it. The
        product with ±1 or 0 is exact: the test is the sign test of the loop (``inner_sign``).
        """
        res = ok & (c.a > k.floor)
        stt = jnp.where((st.stt < 0) & ok & (a_new < k.tol), ti, st.stt)
        flip = seen & (a_new > flip_floor(k.floor, self.eps, c.a)) & (e_new * c.ref < 0)
        fl = st.fl + flip.astype(self.dtype)
        eo = jnp.where(res, a_new, st.eo)
        return (st._replace(stt=stt, fl=fl, eo=eo, ko=jnp.where(res, ti, st.ko)),
                jnp.where(flip, -c.ref, c.ref))

    def __call__(self, p: Any, h: dict, w0: jax.Array, r: Any, tol: Any, st: TileState, s: Any,
                 tf: jax.Array, t0: Any, length: int, *, exact: bool, n_valid: Any = None,
                 unrolled: bool = False, constants: tuple | None = None,
                 quiet: bool = False) -> tuple[TileState, Any, jax.Array]:
        """Steps t0 + 1 … t0 + length (only the first ``n_valid`` count, if given) of one run.

        ``unrolled``: a Python loop (for kernels whose compiler takes no loops with inputs);
        otherwise a fully unrolled ``lax.scan``, which traces the step once. ``constants``: those
        of :meth:`constants`, if already computed. ``quiet`` (speculative tiles only): skip the
        step counters and err_obs, and return in ``st.q`` the max of |e_t| over the tile's start
        and steps. Where steps_to_tol is already set and that max is within the noise floor, no
        step of the tile would have changed them (a flip, and the reference it is counted against,
        needs |e_t| above the floor, err_obs |e_{t-1}|), so the quiet tile *is* the exact tile; the
        caller checks that and redoes the tile otherwise.
        """
        w_star, e0, floor = constants if constants is not None else self.constants(p, w0)
        if unrolled:
            t0 = self.f(t0)                             # exact: step numbers < 2^mantissa
        a = jnp.abs(st.w - w_star)
        active = tf < 0
        if quiet:
            st = st._replace(q=a)
        c = _StepCarry(st.w, s, None if quiet or not self.statistics else self._ref(e0, st.fl),
                       a, st, s, tf, jnp.ones_like(active) if not exact else active)
        k = _TileConstants(p, h, r, tol, w_star, floor, t0, n_valid)
        masked = n_valid is not None
        if unrolled:
            for i in range(1, length + 1):
                c = self.step(i, c, k, exact, masked, quiet)
        else:
            c = lax.scan(lambda c, i: (self.step(i, c, k, exact, masked, quiet), None), c,
                         jnp.arange(1, length + 1, dtype=jnp.int32), unroll=length)[0]
        new, s_new, tf = c.st, c.s, c.tf
        if not exact:                                   # runs frozen before the tile stay put
            new = jax.tree.map(lambda x, y: jnp.where(active, x, y), new, st)
            s_new = jax.tree.map(lambda x, y: jnp.where(active, x, y), s_new, s)
        return new, s_new, tf

    def _ref(self, e0: jax.Array, fl: jax.Array) -> jax.Array:
        """sign(e_ref) = sign(e₀)·(−1)^flips (``gdlab.engine._loop``: each flip reverses it, other
        resolvable steps keep it, e₀ = 0 never gets one), from the flip counter's parity (exact:
        fl is an integer below 2^mantissa)."""
        f = self.f
        sign0 = jnp.where(e0 > 0, f(1), jnp.where(e0 < 0, f(-1), f(0)))
        half = fl * 0.5
        return jnp.where(jnp.floor(half) == half, sign0, -sign0)

    def stats(self, st: TileState, tf: jax.Array, ee: jax.Array,
              tol: Any) -> tuple[jax.Array, RunStats, None]:
        """(final w, RunStats, None) as ``jax.vmap(gdlab.engine._loop._run)`` returns them."""
        f = self.f
        if not self.statistics:  # as the engine's update_only: the freeze step, rest as at t = 0
            st = st._replace(m=jnp.zeros_like(ee), eo=ee, ko=jnp.zeros_like(ee),
                             fl=jnp.zeros_like(ee), stt=jnp.where(ee < tol, f(0), f(-1)))
        i32 = lambda v: v.astype(jnp.int32)
        stats = RunStats(t_freeze=i32(tf), steps_to_tol=i32(st.stt), flips=i32(st.fl),
                         err_early=ee, err_late=st.m, err_obs=st.eo, k_obs=i32(st.ko),
                         rec_dev=st.d if self.rate else jnp.zeros_like(ee), mode_flips=None)
        return st.w, stats, None
