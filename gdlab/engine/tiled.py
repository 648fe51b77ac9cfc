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
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gdlab.engine._common import Chunk, ChunkSpec, FastPath, RunStats, divergence_bound, noise_floor
from gdlab.interfaces import Modal

__all__ = ["PATH", "TiledPath", "eligible", "program", "run", "Packing", "Tile", "TILE", "GROUP",
           "SPECULATE_MAX", "SCHEDULE_MAX_STEPS", "CPU_COMPILER_OPTIONS"]

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

_FLOATS = ("w", "m", "eo", "d")      # TileState fields kept as floats: w, m, err_obs, rec_dev
_INTS = ("ko", "fl", "stt")          # and those packed as integers in [-1, T]


class TileState(NamedTuple):
    """The statistics of one run between tiles, as floats of the simulation dtype (the step
    counters exactly). A field a program does not track is None (e.g. ``d`` without ``r``). The
    fields are in alphabetical order, the leaf order the compiled programs were tuned with."""

    d: Any = None     # rec_dev so far
    eo: Any = None    # err_obs
    fl: Any = None    # flips
    ko: Any = None    # k_obs
    m: Any = None     # running max |e_t| since the last reset (t = 0, then T//2)
    q: Any = None     # quiet tiles only: max |e_t| over the tile's start and steps
    stt: Any = None   # steps_to_tol (−1: not yet)
    w: Any = None     # the iterate (the last in-bound one, once frozen)


class _StepCarry(NamedTuple):
    """What one step of :meth:`Tile.step` hands to the next."""

    v: Any            # the iterate the steps compute (unmasked: it goes on past a freeze)
    sv: Any           # its optimizer state
    e: Any            # v − w*
    a: Any            # |e|
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

    def pack(self, state: TileState) -> tuple:
        units = [getattr(state, k).astype(self.dtype) for k in self.floats]
        for group in self.int_groups:   # lax, not jnp: this is traced in every tile variant
            u = None
            for k in group:
                digit = lax.convert_element_type(getattr(state, k), jnp.int32)
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

    def unpack(self, arrays: tuple) -> TileState:
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
        return TileState(**state)


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

    The state is a :class:`TileState`; beside it the optimizer state ``s`` and ``tf`` (t_freeze as
    a float, −1 while active). ``exact=False`` is the speculative tile: no freeze masks, so a run
    that leaves the bound shows it by a running max beyond the bound or NaN (``max`` propagates
    NaN).
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
        state = TileState(w=w0, m=err0, eo=err0, d=f(0), ko=f(0), fl=f(0),
                          stt=jnp.where(err0 < tol, f(0), f(-1)))
        return state, f(-1), err0, self.make_optimizer(**h).init(w0)

    def step(self, i, c: _StepCarry, k: _TileConstants, exact: bool, masked: bool,
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
            ok = ok & ~bad                              # step i taken
        only = (lambda new, old: jnp.where(ok, new, old)) if exact else (lambda new, old: new)
        st = c.st
        st = st._replace(m=only(jnp.maximum(st.m, a_new), st.m))  # also the speculation's check
        if quiet:                                       # see __call__
            st = st._replace(q=jnp.maximum(st.q, a_new))
        elif self.statistics:
            st = self._counters(st, c, k, ok, ti, e_new, a_new)
        if self.rate:
            scale = jnp.abs(k.w_star) + c.a + a_new + jnp.abs(1 - k.r) * c.a
            # 0 where scale = 0 (w* = e_t = e_{t+1} = 0: both sides exactly 0), as the engine.
            dev = jnp.abs(a_new - jnp.abs(k.r) * c.a) / jnp.where(scale > 0, scale, 1)
            st = st._replace(d=only(jnp.maximum(st.d, dev), st.d))
        st = st._replace(w=only(v, st.w))
        s = jax.tree.map(only, sv, c.s) if exact else sv
        return _StepCarry(v, sv, e_new, a_new, st, s, tf, ok)

    def _counters(self, st: TileState, c: _StepCarry, k: _TileConstants, ok, ti, e_new, a_new):
        """steps_to_tol, flips, err_obs and k_obs after a step (``ok``: taken) to ``e_new``."""
        res = ok & (c.a > k.floor)
        stt = jnp.where((st.stt < 0) & ok & (a_new < k.tol), ti, st.stt)
        fl = st.fl + (res & (a_new > k.floor) & (e_new * c.e < 0)).astype(self.dtype)
        eo = jnp.where(res, a_new, st.eo)
        return st._replace(stt=stt, fl=fl, eo=eo, ko=jnp.where(res, ti, st.ko))

    def __call__(self, p, h, w0, r, tol, st, s, tf, t0, length: int, *, exact: bool,
                 n_valid=None, unrolled: bool = False, constants=None, quiet: bool = False):
        """Steps t0 + 1 … t0 + length (only the first ``n_valid`` count, if given) of one run.

        ``unrolled``: a Python loop (for kernels whose compiler takes no loops with inputs);
        otherwise a fully unrolled ``lax.scan``, which traces the step once. ``constants``: those
        of :meth:`constants`, if already computed. ``quiet`` (speculative tiles only): skip the
        step counters and err_obs, and return in ``st.q`` the max of |e_t| over the tile's start
        and steps. Where steps_to_tol is already set and that max is within the noise floor, no
        step of the tile would have changed them (each needs |e_{t-1}| above the floor), so the
        quiet tile *is* the exact tile; the caller checks that and redoes the tile otherwise.
        """
        w_star, _, floor = constants if constants is not None else self.constants(p, w0)
        if unrolled:
            t0 = self.f(t0)                             # exact: step numbers < 2^mantissa
        e = st.w - w_star
        active = tf < 0
        if quiet:
            st = st._replace(q=jnp.abs(e))
        c = _StepCarry(st.w, s, e, jnp.abs(e), st, s, tf,
                       jnp.ones_like(active) if not exact else active)
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

    def stats(self, st, tf, ee, tol):
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


class _Program(NamedTuple):
    """The static parts of a tiled program (:func:`program`)."""

    tile: Tile        # the steps
    layout: Packing   # the per-run state between tiles
    sched: tuple      # (first step, valid steps, reset) per tile, shaped (groups, tiles per group)
    length: int       # steps per tile
    masked: bool      # some tile is partial: exact tiles take the per-step mask
    axes: tuple       # in_axes of (problem, hparams, w0, r, tol)


class _Carry(NamedTuple):
    """One run's state between tiles (a batch's, vmapped)."""

    packed: tuple     # the TileState, packed (Packing.pack)
    tf: Any           # t_freeze as a float, −1 while active
    ee: Any           # err_early
    s: Any            # the optimizer state (None in a program's result)


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
    floats = _FLOATS if steps_.rate else _FLOATS[:3] if statistics else _FLOATS[:2]
    sched, length, masked = _schedule(steps, tile, group)
    prog = _Program(steps_, Packing(dtype, steps, floats, _INTS if statistics else ()), sched,
                    length, masked, (p_axes, h_axes, 0, 0 if steps_.rate else None, None))
    return functools.partial(_run, prog), functools.partial(_finish, prog)


def _init(prog: _Program, p, h, w0, r, tol) -> _Carry:
    state, tf, ee, s = prog.tile.init(p, h, w0, tol)
    return _Carry(prog.layout.pack(state), tf, ee, s)


def _advance(prog: _Program, p, h, w0, r, tol, carry: _Carry, sched, *, exact: bool) -> _Carry:
    """One tile of one run."""
    t0, n_valid, reset = sched
    st = prog.layout.unpack(carry.packed)
    ee = carry.ee
    if prog.tile.statistics:                            # err_early := running max at t = T//2
        ee = jnp.where(reset, st.m, ee)
    st = st._replace(m=jnp.where(reset, 0, st.m))
    new, s_new, tf = prog.tile(p, h, w0, r, tol, st, carry.s, carry.tf, t0, prog.length,
                               exact=exact, n_valid=n_valid if exact and prog.masked else None)
    return _Carry(prog.layout.pack(new), tf, ee, s_new)


def _tiles(prog: _Program, args, carry: _Carry, sched, exact: bool) -> _Carry:
    """A group of tiles of a batch: exact, or speculated without the freeze masks."""
    advance = jax.vmap(functools.partial(_advance, prog, exact=exact),
                       in_axes=(*prog.axes, 0, None))
    return lax.scan(lambda c, s: (advance(*args, c, s), None), carry, sched)[0]


def _group(prog: _Program, args, speculate: bool, carry_failed, sched):
    """A group of tiles, speculated (where allowed) and redone exactly if an active run froze;
    counts the failed checks."""
    carry, failed = carry_failed
    if not speculate:
        return (_tiles(prog, args, carry, sched, True), failed), None
    guess = lax.optimization_barrier(_tiles(prog, args, carry, sched, False))
    # An active run that left the bound has a running max beyond it, or NaN (also in err_early, if
    # the group crossed T/2); partial tiles need the per-step mask.
    worst = jnp.maximum(prog.layout.unpack(guess.packed).m, guess.ee)
    held = jnp.all(worst <= prog.tile.bound) & jnp.all(sched[1] == prog.length)
    carry = lax.cond(held, lambda: guess, lambda: _tiles(prog, args, carry, sched, True))
    return (carry, failed + (~held).astype(jnp.int32)), None


def _run(prog: _Program, problem, hparams, w0, r, tol, count=False):
    """A batch's packed result (a :class:`_Carry` without optimizer state); see :func:`program`."""
    with prog.layout.context():
        args = (problem, hparams, w0, r if prog.tile.rate else None, tol)
        carry = jax.vmap(functools.partial(_init, prog), in_axes=prog.axes)(*args)
        # Stateless optimizers only: with optimizer state the guessed and the exact tile are
        # different programs that may round a multiply-add differently, and a run must not depend
        # on whether a neighbour in its block froze.
        speculate = w0.shape[0] <= SPECULATE_MAX and not jax.tree.leaves(carry.s)
        (carry, failed), _ = lax.scan(functools.partial(_group, prog, args, speculate),
                                      (carry, jnp.int32(0)), prog.sched)
        state = carry._replace(s=None)
    return (state, failed, prog.sched[0].shape[0] if speculate else 0) if count else state


def _finish(prog: _Program, state: _Carry, tol):
    with prog.layout.context():
        st = prog.layout.unpack(state.packed)
    return prog.tile.stats(st, state.tf, state.ee, tol)


def run(problem, hparams, w0, r, tol, *, p_axes, h_axes, make_optimizer, steps, statistics=True,
        count=False, **kw):
    """One batch through :func:`program`: (final w, RunStats, None), and with ``count`` the
    speculation's (failed checks, checks)."""
    run_, finish = program(p_axes, h_axes, make_optimizer=make_optimizer, steps=steps,
                           dtype=w0.dtype, rate=r is not None, statistics=statistics, **kw)
    out = run_(problem, hparams, w0, r, tol, count=count)
    return (finish(out[0], tol), *out[1:]) if count else finish(out, tol)


class TiledPath(FastPath):
    """The CPU tiles as the engine's fast path: :func:`eligible` and :func:`program` for a chunk."""

    name = "tiled"

    def native(self, backend: str) -> bool:
        return backend == "cpu"

    def eligible(self, chunk: Chunk, spec: ChunkSpec) -> bool:
        return eligible(chunk.w0.shape[1:], chunk.w0.dtype, spec.steps, spec.record_every,
                        chunk.problem)

    def program(self, chunk: Chunk, spec: ChunkSpec):
        return program(spec.problem_axes(chunk.problem), spec.hparam_axes(),
                       make_optimizer=spec.make_optimizer, steps=spec.steps, dtype=chunk.w0.dtype,
                       rate=chunk.r is not None, statistics=spec.statistics)

    def compiler_options(self, backend: str) -> dict | None:
        return CPU_COMPILER_OPTIONS if backend == "cpu" else None


PATH = TiledPath()
