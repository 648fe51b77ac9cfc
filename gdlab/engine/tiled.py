"""The CPU fast path of the engine: tiles of K steps, packed state, speculation on freezes.

Same results as the per-step loop ``gdlab.engine._loop._run``, for the runs within its scope.
XLA:CPU emits one loop kernel per carried output array and recomputes, inside each kernel, every
intermediate that output depends on (no multi-output fusion), so a step costs in proportion to the
number of carried arrays times the work each one redoes. Here

* one scan iteration is a *tile* of K = :data:`TILE` optimizer steps (a fully unrolled scan of
  :class:`~gdlab.engine._tile.Tile`: the step is traced once), so the carried arrays are written
  once per K steps instead of once per step;
* the per-run state between tiles is packed as tightly as exactness allows
  (:class:`~gdlab.engine._packing.Packing`): in float32 the iterate, the running max |e|, err_obs
  and the three step counters k_obs, flips and steps_to_tol fill one complex128, so a tile of the
  canonical sweep is a single loop kernel (the sign-flip rule's reference is not carried: its sign
  is sign(e₀)·(−1)^flips);
* **speculation** (stateless optimizers, batches of at most :data:`SPECULATE_MAX` runs): a group of
  :data:`GROUP` tiles runs without the freeze logic (no per-step masks). A run that leaves the
  divergence bound or becomes inf/NaN makes its running max exceed the bound (``max`` propagates
  NaN), so one reduction over the batch per group tells whether the guess held; where an active
  run froze, the group is redone with the exact masked step;
* the schedule (:func:`_schedule`) is static, one row per tile: tiles cover [0, T//2), then
  [T//2, T), so T//2 is a tile boundary, where the running max moves to ``err_early`` (the rest
  becomes ``err_late``); a partial tile takes the exact step, with a per-step mask.

Each step does the same operations in the same order as the per-step loop, so for plain gradient
descent the results are bit-identical (``tests/test_tiled.py``); with stateful optimizers XLA may
contract multiply-adds differently, a last-bit difference. A run's result never depends on the runs
beside it (the engine pads batches to whole vectors; speculation is off where optimizer state could
round differently). Scope (:func:`eligible`): a scalar parameter, no strided snapshots, no
eigen-modes, step numbers exact in the dtype (T + 2 < 2²⁴ in float32) and T ≤
:data:`SCHEDULE_MAX_STEPS`; anything else runs the per-step loop. Speed and compile time: ``gdlab
bench``, and the README's measurements.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import DTypeLike

from gdlab.engine._common import Chunk, ChunkSpec, FastPath, RunStats
from gdlab.engine._packing import Packing
from gdlab.engine._tile import Tile, TileState
from gdlab.interfaces import Modal, WithOptimum

__all__ = ["PATH", "TiledPath", "eligible", "program", "run", "Packing", "Tile", "TileState",
           "TILE", "GROUP", "SPECULATE_MAX", "SCHEDULE_MAX_STEPS", "CPU_COMPILER_OPTIONS"]

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


def eligible(param_shape: tuple[int, ...], dtype: DTypeLike, steps: int, record_every: int | None,
             problem: Any, *, schedule: bool = True) -> bool:
    """Scalar parameter with a known optimum, no snapshots, no modes, and step numbers exact in
    dtype.

    ``schedule``: the CPU tiles' static schedule (:func:`_schedule`, a constant of the program with
    one row per tile) is also bounded, to :data:`SCHEDULE_MAX_STEPS` steps; longer runs (float64
    only) take the per-step loop. The GPU kernel computes its tiles' steps and needs no schedule.
    """
    mant = np.finfo(dtype).nmant + 1
    return (tuple(param_shape) == () and record_every is None and not isinstance(problem, Modal)
            and isinstance(problem, WithOptimum)
            and steps + 2 < 2 ** mant and (not schedule or steps <= SCHEDULE_MAX_STEPS))


def _schedule(steps: int, tile: int, group: int) -> tuple[tuple, int, bool]:
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


class _Program(NamedTuple):
    """The static parts of a tiled program (:func:`program`)."""

    tile: Tile        # the steps
    layout: Packing   # the per-run state between tiles
    sched: tuple      # (first step, valid steps, reset) per tile, shaped (groups, tiles per group)
    length: int       # steps per tile
    masked: bool      # some tile is partial: exact tiles take the per-step mask
    axes: tuple       # in_axes of (problem, hparams, w0, r, tol)
    half: int         # T // 2, where the running max is reset


class _Carry(NamedTuple):
    """One run's state between tiles (a batch's, vmapped)."""

    packed: tuple     # the TileState, packed (Packing.pack)
    tf: Any           # t_freeze as a float, −1 while active
    ee: Any           # err_early
    s: Any            # the optimizer state (None in a program's result)


def program(p_axes: Any, h_axes: dict, *, make_optimizer: Callable, steps: int, dtype: DTypeLike,
            rate: bool, statistics: bool = True, tile: int = TILE,
            group: int = GROUP) -> tuple[Callable, Callable]:
    """The tiled engine for batches of runs: ``(run, finish)``.

    ``run(problem, hparams, w0, r, tol)`` simulates a batch (leading axis on ``w0``, ``r`` and on
    the problem fields and hyperparameters marked 0 in ``p_axes``/``h_axes``; ``None``: shared) and
    returns its packed state; ``finish(state, tol)`` unpacks any concatenation of such states into
    (final w, RunStats, None), as ``jax.vmap(gdlab.engine._loop._run)`` returns them. ``rate``:
    ``r`` is given (the recurrence deviation is tracked). ``statistics=False`` takes the steps and
    the freeze alone, as the engine's ``update_only`` (the benchmark's floor).
    ``run(..., count=True)`` also returns the groups' counts — [speculation checks that failed,
    quiet groups kept, groups skipped] — and the number of groups, to measure
    and test the speculation.
    """
    dtype = np.dtype(dtype)
    steps_ = Tile(make_optimizer, dtype, statistics, rate)
    floats = _FLOATS if steps_.rate else _FLOATS[:3] if statistics else _FLOATS[:2]
    sched, length, masked = _schedule(steps, tile, group)
    prog = _Program(steps_, Packing(dtype, steps, floats, _INTS if statistics else ()), sched,
                    length, masked, (p_axes, h_axes, 0, 0 if steps_.rate else None, None),
                    steps // 2)
    return functools.partial(_run, prog), functools.partial(_finish, prog)


def _init(prog: _Program, p, h, w0, r, tol) -> _Carry:
    state, tf, ee, s = prog.tile.init(p, h, w0, tol)
    return _Carry(prog.layout.pack(state), tf, ee, s)


def _advance(prog: _Program, p, h, w0, r, tol, carry: _Carry, sched, *, exact: bool,
             quiet: bool = False) -> _Carry:
    """One tile of one run (``quiet``: the speculative tile without the counters)."""
    t0, n_valid, reset = sched
    st = prog.layout.unpack(carry.packed)
    ee = carry.ee
    if prog.tile.statistics:                            # err_early := running max at t = T//2
        ee = jnp.where(reset, st.m, ee)
    st = st._replace(m=jnp.where(reset, 0, st.m))
    new, s_new, tf = prog.tile(p, h, w0, r, tol, st, carry.s, carry.tf, t0, prog.length,
                               exact=exact, n_valid=n_valid if exact and prog.masked else None,
                               quiet=quiet)
    return _Carry(prog.layout.pack(new._replace(q=None)), tf, ee, s_new)


def _tiles(prog: _Program, args, carry: _Carry, sched, exact: bool,
           quiet: bool = False) -> _Carry:
    """A group of tiles of a batch: exact, or speculated without the freeze masks (and, quiet,
    without the counters)."""
    advance = jax.vmap(functools.partial(_advance, prog, exact=exact, quiet=quiet),
                       in_axes=(*prog.axes, 0, None))
    return lax.scan(lambda c, s: (advance(*args, c, s), None), carry, sched)[0]


def _group(prog: _Program, args, floor, speculate: bool, carry_failed, sched):
    """A group of tiles, down the ladder skip → quiet → speculated → exact (where speculation is
    allowed), each guess kept only where checked; counts [failed checks of speculated groups,
    quiet groups kept, groups skipped].

    * skip: no run of the batch is active (all froze) and the group does not hold T/2 (where even
      a frozen run's running max moves to err_early): the exact group would change nothing;
    * quiet (late half, whole tiles, no reset in the group, statistics on): every active run has
      settled — steps_to_tol set and every late error so far, the running max ``m``, within the
      noise floor. The quiet tiles take the steps and the running max only; they are the exact
      tiles if ``m`` is still within the floor after them (no step could then count a flip, move
      err_obs or k_obs, or freeze: :class:`~gdlab.engine._tile.Tile`, ``quiet``), else the group
      is speculated as below. The GPU kernel's ladder (:mod:`gdlab.engine.fused`), with the
      running max standing in for its per-tile maximum;
    * speculated: no freeze masks, redone exactly if an active run froze.
    """
    carry, counts = carry_failed
    tally = lambda k: counts.at[k].add(1)   # noqa: E731
    if not speculate:
        return (_tiles(prog, args, carry, sched, True), counts), None
    whole = jnp.all(sched[1] == prog.length)   # (floor: every run's noise floor, _floors)

    def speculated():
        guess = lax.optimization_barrier(_tiles(prog, args, carry, sched, False))
        # An active run that left the bound has a running max beyond it, or NaN (also in
        # err_early, if the group crossed T/2); partial tiles need the per-step mask.
        worst = jnp.maximum(prog.layout.unpack(guess.packed).m, guess.ee)
        held = jnp.all(worst <= prog.tile.bound) & whole
        return (lax.cond(held, lambda: guess, lambda: _tiles(prog, args, carry, sched, True)),
                counts.at[0].add((~held).astype(jnp.int32)))

    active = carry.tf < 0
    if not prog.tile.statistics:
        moving = speculated
    else:
        calm = lambda m: jnp.all((m <= floor) | ~active)   # noqa: E731
        st = prog.layout.unpack(carry.packed)
        late = whole & ~jnp.any(sched[2]) & (sched[0][0] > prog.half)
        settled = late & calm(st.m) & jnp.all((st.stt >= 0) | ~active)

        def moving():
            # Each variant traced once (compile time): the quiet guess where settled (else the
            # carry as it is), kept if still calm, else the speculated group.
            guess = lax.cond(settled, lambda: lax.optimization_barrier(
                _tiles(prog, args, carry, sched, False, quiet=True)), lambda: carry)
            kept = settled & calm(prog.layout.unpack(guess.packed).m)
            return lax.cond(kept, lambda: (guess, tally(1)), speculated)
    still = ~jnp.any(active) & ~jnp.any(sched[2])
    return lax.cond(still, lambda: (carry, tally(2)), moving), None


def _floors(prog: _Program, args) -> jax.Array:
    """The noise floor of every run of the batch (``Tile.constants``)."""
    p, _, w0, _, _ = args
    return jax.vmap(lambda p, w0: prog.tile.constants(p, w0)[2],
                    in_axes=(prog.axes[0], 0))(p, w0)


def _run(prog: _Program, problem: Any, hparams: dict, w0: jax.Array, r: Any, tol: Any,
         count: bool = False) -> _Carry | tuple[_Carry, jax.Array, int]:
    """A batch's packed result (a :class:`_Carry` without optimizer state); see :func:`program`."""
    with prog.layout.context():
        args = (problem, hparams, w0, r if prog.tile.rate else None, tol)
        carry = jax.vmap(functools.partial(_init, prog), in_axes=prog.axes)(*args)
        # Stateless optimizers only: with optimizer state the guessed and the exact tile are
        # different programs that may round a multiply-add differently, and a run must not depend
        # on whether a neighbour in its block froze.
        speculate = w0.shape[0] <= SPECULATE_MAX and not jax.tree.leaves(carry.s)
        floor = _floors(prog, args) if speculate and prog.tile.statistics else None
        (carry, counts), _ = lax.scan(functools.partial(_group, prog, args, floor, speculate),
                                      (carry, jnp.zeros(3, jnp.int32)), prog.sched)
        state = carry._replace(s=None)
    return (state, counts, prog.sched[0].shape[0] if speculate else 0) if count else state


def _finish(prog: _Program, state: _Carry, tol: Any) -> tuple[jax.Array, RunStats, None]:
    with prog.layout.context():
        st = prog.layout.unpack(state.packed)
    return prog.tile.stats(st, state.tf, state.ee, tol)


def run(problem: Any, hparams: dict, w0: jax.Array, r: Any, tol: Any, *, p_axes: Any,
        h_axes: dict, make_optimizer: Callable, steps: int, statistics: bool = True,
        count: bool = False, **kw: int) -> tuple:
    """One batch through :func:`program`: (final w, RunStats, None), and with ``count`` the
    groups' counts ([failed checks, quiet groups, skipped groups]) and the number of groups."""
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

    def program(self, chunk: Chunk, spec: ChunkSpec) -> tuple[Callable, Callable]:
        return program(spec.problem_axes(chunk.problem), spec.hparam_axes(),
                       make_optimizer=spec.make_optimizer, steps=spec.steps, dtype=chunk.w0.dtype,
                       rate=chunk.r is not None, statistics=spec.statistics)

    def compiler_options(self, backend: str) -> dict | None:
        return CPU_COMPILER_OPTIONS if backend == "cpu" else None


PATH = TiledPath()
