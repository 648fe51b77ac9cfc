"""The CPU fast path of the engine: tiles of K steps, packed state, speculation on freezes.

Same results as the per-step loop ``gdlab.engine._loop._run``, several times faster on CPUs. XLA:CPU
emits one loop kernel per carried output array and recomputes, inside each kernel, every
intermediate that output depends on (no multi-output fusion), so a step costs in proportion to the
number of carried arrays times the work each one redoes. Here

* one scan iteration is a *tile* of K optimizer steps (a fully unrolled scan: the step is traced
  once), so the K-step recurrence streams through registers and the carried arrays are written once
  per K steps instead of once per step;
* the per-run state is packed as tightly as exactness allows (:class:`Packing`): in float32 the
  iterate, the running max |e|, err_obs and the three step counters k_obs, flips and steps_to_tol
  fill one complex128, so a tile of the canonical sweep is a single loop kernel;
* **speculation** (stateless optimizers): the tiles run without the freeze logic (no per-step
  masks, about half the work of a step). A run that leaves the divergence bound or becomes inf/NaN
  makes its running max exceed the bound (``max`` propagates NaN), so one reduction per block and
  :data:`GROUP` tiles tells whether the guess held; where an active run froze, the block redoes
  those tiles with the exact masked step. On the canonical sweep 3.6 % of the checks fail;
* err_early/err_late: the running max is moved to ``err_early`` at the tile starting at T//2 (the
  static schedule makes T//2 a tile boundary); partial tiles take the exact step, with a per-step
  mask.

Each step does the same operations in the same order as ``gdlab.engine._loop._run``, so for plain
gradient descent the results are bit-identical (tests check it); with stateful optimizers XLA may
contract multiply-adds differently, a last-bit difference. A run's result never depends on the runs
beside it (the engine pads batches to whole vectors; speculation is off where optimizer state could
round differently). Scope (``eligible``): a scalar parameter, no strided snapshots, no eigen-modes,
and step numbers exact in the dtype (T < 2²⁴ in float32; T ≤ 2²⁴ in float64, which bounds the
schedule); anything else runs the per-step engine. Measured by ``gdlab bench``.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gdlab.engine._common import RunStats, divergence_bound, noise_floor
from gdlab.interfaces import Modal

__all__ = ["eligible", "program", "run", "Packing", "Tile", "TILE", "GROUP", "SPECULATE_MAX",
           "SCHEDULE_MAX_STEPS", "CPU_COMPILER_OPTIONS"]

TILE = 20   # steps per tile: the unrolled body; compile time grows with it
GROUP = 5   # tiles per speculation check: fewer checks, larger redo when one fails
# Speculation pays when a check covers one cache-sized block of runs (the CPU engine's blocks); one
# freeze anywhere in a larger batch would send every group down the exact path.
SPECULATE_MAX = 8192
# The CPU tiles' schedule has a row per tile, built on the host and embedded in the program: 2²⁴
# steps (float32's own bound) is ~8·10⁵ rows; float64 runs beyond it take the per-step loop.
SCHEDULE_MAX_STEPS = 2**24

# The tile kernels are latency-bound: 512-bit vectors carry twice the runs per dependency chain.
CPU_COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}

_FLOATS = ("w", "m", "eo", "d")      # iterate, running max |e|, err_obs, rec_dev
_INTS = ("ko", "fl", "stt")          # k_obs, flips, steps_to_tol: integers in [-1, T]


def eligible(param_shape, dtype, steps, record_every, problem, *, schedule: bool = True) -> bool:
    """Scalar parameter, no snapshots, no modes, and step numbers exact in dtype.

    ``schedule``: the CPU tiles' static schedule (:func:`_schedule`, a constant of the program with
    one row per tile) is also bounded, to :data:`SCHEDULE_MAX_STEPS` steps; longer runs (float64
    only) take the per-step loop. The GPU kernel computes its tiles' steps and needs no schedule.
    """
    mant = np.finfo(dtype).nmant + 1
    return (tuple(param_shape) == () and record_every is None and not isinstance(problem, Modal)
            and steps + 2 < 2 ** mant and (not schedule or steps <= SCHEDULE_MAX_STEPS))


class Packing:
    """Per-run state ↔ a few complex arrays: each carried array costs one kernel per tile.

    Float fields keep their values; the integer fields (values in [-1, T]) are the digits of one
    radix-(T + 2) number per unit, stored by its bits in a float of the same width (offset so the
    pattern is a normal number, never a subnormal, inf or NaN). Units pair up as complex numbers of
    the simulation dtype, except in float32 with more than two units: there two 32-bit units make
    one 64-bit word and two words one complex128, so the canonical sweep's state, (w, m, err_obs,
    counters), is a single array. That halves the kernels but makes the loop 64-bit (8 runs per
    vector instead of 16): measured faster for three or four units, slower for two. The running
    max ``m`` sits in a low half, so it reads back exactly even when a speculative tile left NaN
    bits beside it. Wide packing needs 64-bit types: trace under :attr:`context`.
    """

    def __init__(self, dtype, steps: int, floats: tuple[str, ...], ints: tuple[str, ...]):
        self.dtype = np.dtype(dtype)
        finfo = np.finfo(self.dtype)
        self.unit = {32: jnp.uint32, 64: jnp.uint64}[finfo.bits]
        self.offset = 1 << finfo.nmant                        # exponent field 1: a normal number
        top = ((1 << finfo.nexp) - 1) << finfo.nmant          # inf/NaN patterns start here
        self.radix = steps + 2
        per = 1
        while self.offset + self.radix ** (per + 1) <= top:
            per += 1
        self.floats = floats
        self.int_groups = [ints[i:i + per] for i in range(0, len(ints), per)]
        self.wide = finfo.bits == 32 and len(floats) + len(self.int_groups) > 2

    def context(self):
        return jax.enable_x64(True) if self.wide else contextlib.nullcontext()

    def pack(self, state: dict) -> tuple:
        units = [state[k].astype(self.dtype) for k in self.floats]
        for group in self.int_groups:   # lax, not jnp: this is traced in every tile variant
            u = None
            for k in group:
                digit = lax.convert_element_type(state[k], jnp.int32)
                digit = lax.convert_element_type(lax.add(digit, lax.full_like(digit, 1)), self.unit)
                u = digit if u is None else lax.add(lax.mul(u, lax.full_like(u, self.radix)), digit)
            u = lax.add(u, lax.full_like(u, self.offset))
            units.append(lax.bitcast_convert_type(u, self.dtype))
        if self.wide:                                       # (hi, lo) float32 bits -> one float64
            units += [jnp.zeros_like(units[0])] * (-len(units) % 4)
            bits = [lax.convert_element_type(lax.bitcast_convert_type(u, jnp.uint32), jnp.uint64)
                    for u in units]
            units = [lax.bitcast_convert_type(
                lax.bitwise_or(lax.shift_left(hi, lax.full_like(hi, 32)), lo), jnp.float64)
                for hi, lo in zip(bits[::2], bits[1::2])]
        units += [jnp.zeros_like(units[0])] * (len(units) % 2)
        return tuple(lax.complex(re, im) for re, im in zip(units[::2], units[1::2]))

    def unpack(self, arrays: tuple) -> dict:
        units = [part(c) for c in arrays for part in (jnp.real, jnp.imag)]
        if self.wide:
            bits = [lax.bitcast_convert_type(u, jnp.uint64) for u in units]
            halves = lambda b: (lax.shift_right_logical(b, lax.full_like(b, 32)),
                                lax.bitwise_and(b, lax.full_like(b, 0xFFFFFFFF)))
            units = [lax.bitcast_convert_type(lax.convert_element_type(h, jnp.uint32), self.dtype)
                     for b in bits for h in halves(b)]
        state = dict(zip(self.floats, units))
        for group, x in zip(self.int_groups, units[len(self.floats):]):
            u = lax.bitcast_convert_type(x, self.unit)
            const = lambda c, u=u: lax.full_like(u, c)   # u's shape and dtype: fixed per group
            u = lax.sub(u, const(self.offset))
            for k in reversed(group):   # unsigned: lax.rem / lax.div are floor mod / floor div
                digit = lax.convert_element_type(lax.rem(u, const(self.radix)), jnp.int32)
                state[k] = lax.convert_element_type(lax.sub(digit, lax.full_like(digit, 1)),
                                                    self.dtype)
                u = lax.div(u, const(self.radix))
        return state


def _schedule(steps: int, tile: int, group: int):
    """Tiles covering [0, T//2) then [T//2, T), in groups of at most ``group`` tiles.

    Returns ((first step, valid steps, reset) per tile, shaped (groups, tiles per group)), the tile
    length and whether any tile is partial. Prefers a tile length dividing both halves (no partial
    tile), and a group size dividing the tile count (no padding, which would fail every check).
    """
    half = steps // 2
    tile = max(1, min(tile, steps - half))
    if half and steps == 2 * half:
        divisors = [k for k in range(tile, (tile + 1) // 2 - 1, -1) if half % k == 0]
        tile = divisors[0] if divisors else tile
    rows = [(t0, min(tile, hi - t0), t0 == half)
            for lo, hi in ((0, half), (half, steps)) for t0 in range(lo, hi, tile)]
    group = max(g for g in range(1, group + 1) if len(rows) % g == 0)
    t0, nv, reset = (np.array(c).reshape(-1, group) for c in zip(*rows))
    return (t0.astype(np.int32), nv.astype(np.int32), reset), tile, bool((nv < tile).any())


class Tile:
    """K steps of one run of ``gdlab.engine._loop._run`` on an unpacked state (shared by the CPU
    tiles and the GPU kernel, :mod:`gdlab.engine.fused`).

    The state is a dict: ``w`` (iterate), ``m`` (running max |e| since the last reset), ``eo``
    (err_obs), ``d`` (rec_dev) and the step counters ``ko``, ``fl``, ``stt`` as exact floats of the
    simulation dtype; beside it the optimizer state ``s`` and ``tf`` (t_freeze as a float, −1 while
    active). ``exact=False`` is the speculative tile: no freeze masks, so a run that leaves the
    bound shows it by a running max beyond the bound or NaN (``max`` propagates NaN).
    """

    def __init__(self, make_optimizer, dtype, statistics: bool, rate: bool):
        self.make_optimizer, self.dtype = make_optimizer, np.dtype(dtype)
        self.statistics, self.rate = statistics, rate and statistics
        self.bound = divergence_bound(self.dtype)

    def f(self, i):
        """Step numbers (and other small integers) as exact floats."""
        return jnp.asarray(i, self.dtype)

    def constants(self, p, w0):
        """w*, |e₀| and the noise floor of one run."""
        w_star = jnp.asarray(p.optimum(), self.dtype)
        err0 = jnp.abs(w0 - w_star)
        return w_star, err0, noise_floor(jnp.finfo(self.dtype).eps, jnp.abs(w_star), err0)

    def init(self, p, h, w0, tol):
        """(state, t_freeze, err_early, optimizer state) before step 1."""
        f = self.f
        _, err0, _ = self.constants(p, w0)
        state = dict(w=w0, m=err0, eo=err0, d=f(0), ko=f(0), fl=f(0),
                     stt=jnp.where(err0 < tol, f(0), f(-1)))
        return state, f(-1), err0, self.make_optimizer(**h).init(w0)

    def step(self, i, c, k, exact: bool, masked: bool, quiet: bool = False):
        """Step t0 + i, as ``gdlab.engine._loop._run`` takes it; without ``exact``, no freeze."""
        f, bound = self.f, self.bound
        p, h, r, tol, w_star, floor, t0, n_valid = k
        v, sv, e, a, st, s, tf, ok = c
        u, sv = self.make_optimizer(**h).update(p.grad(v), sv, v)
        v = v + u
        e_new = v - w_star
        a_new = jnp.abs(e_new)
        # Step numbers are exact floats. In a Python-unrolled tile t0 is already one and i a literal
        # (no conversion per step on a GPU); in a scan, i is traced and t0 an int.
        ti = t0 + i if jnp.issubdtype(jnp.result_type(t0), jnp.floating) else f(t0 + i)
        if exact:
            if masked:
                ok = ok & (i <= n_valid)
            bad = ~(a_new <= bound)                     # catches inf and NaN
            tf = jnp.where(ok & bad, ti, tf)
            ok = ok & ~bad                              # step i taken
        only = (lambda new, old: jnp.where(ok, new, old)) if exact else (lambda new, old: new)
        st = dict(st)
        st["m"] = only(jnp.maximum(st["m"], a_new), st["m"])   # also the speculation's check
        if quiet:                                       # see __call__
            st["q"] = jnp.maximum(st["q"], a_new)
        elif self.statistics:
            res = ok & (a > floor)
            st["stt"] = jnp.where((st["stt"] < 0) & ok & (a_new < tol), ti, st["stt"])
            st["fl"] = st["fl"] + (res & (a_new > floor) & (e_new * e < 0)).astype(self.dtype)
            st["eo"] = jnp.where(res, a_new, st["eo"])
            st["ko"] = jnp.where(res, ti, st["ko"])
        if self.rate:
            scale = jnp.abs(w_star) + a + a_new + jnp.abs(1 - r) * a
            # 0 where scale = 0 (w* = e_t = e_{t+1} = 0: both sides exactly 0), as the engine.
            dev = jnp.abs(a_new - jnp.abs(r) * a) / jnp.where(scale > 0, scale, 1)
            st["d"] = only(jnp.maximum(st["d"], dev), st["d"])
        st["w"] = only(v, st["w"])
        s = jax.tree.map(only, sv, s) if exact else sv
        return v, sv, e_new, a_new, st, s, tf, ok

    def __call__(self, p, h, w0, r, tol, st, s, tf, t0, length: int, *, exact: bool,
                 n_valid=None, unrolled: bool = False, constants=None, quiet: bool = False):
        """Steps t0 + 1 … t0 + length (only the first ``n_valid`` count, if given) of one run.

        ``unrolled``: a Python loop (for kernels whose compiler takes no loops with inputs);
        otherwise a fully unrolled ``lax.scan``, which traces the step once. ``constants``: those
        of :meth:`constants`, if already computed. ``quiet`` (speculative tiles only): skip the
        step counters and err_obs, and return in ``st["q"]`` the max of |e_t| over the tile's start
        and steps. Where steps_to_tol is already set and that max is within the noise floor, no
        step of the tile would have changed them (each needs |e_{t-1}| above the floor), so the
        quiet tile *is* the exact tile; the caller checks that and redoes the tile otherwise.
        """
        w_star, _, floor = constants if constants is not None else self.constants(p, w0)
        if unrolled:
            t0 = self.f(t0)                             # exact: step numbers < 2^mantissa
        e = st["w"] - w_star
        active = tf < 0
        if quiet:
            st = dict(st, q=jnp.abs(e))
        c = (st["w"], s, e, jnp.abs(e), st, s, tf, jnp.ones_like(active) if not exact else active)
        k = (p, h, r, tol, w_star, floor, t0, n_valid)
        masked = n_valid is not None
        if unrolled:
            for i in range(1, length + 1):
                c = self.step(i, c, k, exact, masked, quiet)
        else:
            c = lax.scan(lambda c, i: (self.step(i, c, k, exact, masked, quiet), None), c,
                         jnp.arange(1, length + 1, dtype=jnp.int32), unroll=length)[0]
        _, _, _, _, new, s_new, tf, _ = c
        if not exact:                                   # runs frozen before the tile stay put
            new = jax.tree.map(lambda x, y: jnp.where(active, x, y), new, st)
            s_new = jax.tree.map(lambda x, y: jnp.where(active, x, y), s_new, s)
        return new, s_new, tf

    def stats(self, st, tf, ee, tol):
        """(final w, RunStats, None) as ``jax.vmap(gdlab.engine._loop._run)`` returns them."""
        f = self.f
        if not self.statistics:  # as the engine's update_only: the freeze step, rest as at t = 0
            st = dict(st, m=jnp.zeros_like(ee), eo=ee, ko=jnp.zeros_like(ee),
                      fl=jnp.zeros_like(ee), stt=jnp.where(ee < tol, f(0), f(-1)))
        i32 = lambda v: v.astype(jnp.int32)
        stats = RunStats(t_freeze=i32(tf), steps_to_tol=i32(st["stt"]), flips=i32(st["fl"]),
                         err_early=ee, err_late=st["m"], err_obs=st["eo"], k_obs=i32(st["ko"]),
                         rec_dev=st["d"] if self.rate else jnp.zeros_like(ee), mode_flips=None)
        return st["w"], stats, None


def program(p_axes, h_axes, *, make_optimizer, steps: int, dtype, rate: bool,
            statistics: bool = True, tile: int = TILE, group: int = GROUP):
    """The tiled engine for batches of runs: ``(run, finish)``.

    ``run(problem, hparams, w0, r, tol)`` simulates a batch (leading axis on ``w0``, ``r`` and on
    the problem fields and hyperparameters marked 0 in ``p_axes``/``h_axes``; ``None``: shared) and
    returns its packed state; ``finish(state, tol)`` unpacks any concatenation of such states into
    (final w, RunStats, None), as ``jax.vmap(gdlab.engine._loop._run)`` returns them. ``rate``:
    ``r`` is given (the recurrence deviation is tracked). ``statistics=False`` takes the steps and
    the freeze alone, as the engine's ``update_only`` (the benchmark's floor).
    ``run(..., count=True)`` also returns (speculation checks that failed, checks made), to measure
    and test the speculation.
    """
    dtype = np.dtype(dtype)
    steps_ = Tile(make_optimizer, dtype, statistics, rate)
    rate = steps_.rate
    floats = _FLOATS if rate else _FLOATS[:3] if statistics else _FLOATS[:2]
    layout = Packing(dtype, steps, floats, _INTS if statistics else ())
    bound = steps_.bound
    sched, tile, masked = _schedule(steps, tile, group)
    axes = (p_axes, h_axes, 0, 0 if rate else None, None)

    def init(p, h, w0, r, tol):
        state, tf, ee, s = steps_.init(p, h, w0, tol)
        return layout.pack(state), tf, ee, s

    def advance(p, h, w0, r, tol, carry, sched, exact: bool):
        """One tile of one run."""
        t0, n_valid, reset = sched
        packed, tf, ee, s = carry
        st = layout.unpack(packed)
        if statistics:                                  # err_early := running max at t = T//2
            ee = jnp.where(reset, st["m"], ee)
        st["m"] = jnp.where(reset, 0, st["m"])
        new, s_new, tf = steps_(p, h, w0, r, tol, st, s, tf, t0, tile, exact=exact,
                                n_valid=n_valid if exact and masked else None)
        return layout.pack(new), tf, ee, s_new

    vadvance = {ex: jax.vmap(lambda *a, ex=ex: advance(*a, exact=ex),
                             in_axes=(*axes, (0, 0, 0, 0), None)) for ex in (False, True)}

    def run(problem, hparams, w0, r, tol, count=False):
        with layout.context():
            args = (problem, hparams, w0, r if rate else None, tol)
            carry = jax.vmap(init, in_axes=axes)(*args)
            # Stateless optimizers only: with optimizer state the guessed and the exact tile are
            # different programs that may round a multiply-add differently, and a run must not
            # depend on whether a neighbour in its block froze.
            speculate = w0.shape[0] <= SPECULATE_MAX and not jax.tree.leaves(carry[3])

            def tiles(carry, sched, exact):
                return lax.scan(lambda c, s: (vadvance[exact](*args, c, s), None), carry, sched)[0]

            def group_body(carry, sched):
                carry, failed = carry
                if not speculate:
                    return (tiles(carry, sched, True), failed), None
                guess = lax.optimization_barrier(tiles(carry, sched, False))
                # An active run that left the bound has a running max beyond it, or NaN (also in
                # err_early, if the group crossed T/2); partial tiles need the per-step mask.
                worst = jnp.maximum(layout.unpack(guess[0])["m"], guess[2])
                held = jnp.all(worst <= bound) & jnp.all(sched[1] == tile)
                carry = lax.cond(held, lambda: guess, lambda: tiles(carry, sched, True))
                return (carry, failed + (~held).astype(jnp.int32)), None

            (carry, failed), _ = lax.scan(group_body, (carry, jnp.int32(0)), sched)
            state = carry[:3]                           # packed, t_freeze, err_early
        return (state, failed, sched[0].shape[0] if speculate else 0) if count else state

    def finish(state, tol):
        packed, tf, ee = state
        with layout.context():
            st = layout.unpack(packed)
        return steps_.stats(st, tf, ee, tol)

    return run, finish


def run(problem, hparams, w0, r, tol, *, p_axes, h_axes, make_optimizer, steps, statistics=True,
        count=False, **kw):
    """One batch through :func:`program`: (final w, RunStats, None), and with ``count`` the
    speculation's (failed checks, checks)."""
    run_, finish = program(p_axes, h_axes, make_optimizer=make_optimizer, steps=steps,
                           dtype=w0.dtype, rate=r is not None, statistics=statistics, **kw)
    out = run_(problem, hparams, w0, r, tol, count=count)
    return (finish(out[0], tol), *out[1:]) if count else finish(out, tol)
