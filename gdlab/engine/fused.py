"""The GPU fast path of the engine: one kernel per block of runs, the whole horizon in registers.

XLA runs the step loop as a while loop whose body is one or a few kernels, so every iteration (or
every ``unroll`` steps) reads and writes each carried array in GPU memory, and the statistics add
carried arrays. Here one Pallas (Triton) kernel gives each block of :data:`BLOCK` runs its inputs,
loops over all T steps with the iterate, the optimizer state and the statistics in registers, and
writes the results once: the sweep costs its arithmetic, not its memory traffic.

The steps are those of the CPU tiles (:class:`gdlab.engine._tile.Tile`, the same operations in the
same order as ``gdlab.engine._loop._run``), in tiles of :data:`TILE` steps. With a stateless
optimizer each tile is speculated and checked by one reduction over the block:

* a block whose active runs have *settled* (steps_to_tol set, |e| within the noise floor) takes a
  quiet tile, which tracks the iterate and the running max but not the counters (none of which can
  change while |e| stays within the floor); if a run left the floor during the tile, it is redone:
* the full tile, without the freeze masks (about half a step's work); if an active run left the
  divergence bound or became NaN, it is redone:
* the exact tile, with the per-step masks.

Each guess is kept only where it equals the exact result, so results are those of the per-step
engine (bit for bit for gradient descent under Pallas' interpreter; on a GPU against XLA's loop, 1.0
agreement of freeze steps, steps to tol, flips and k_obs, ``benchmarks/fused_tuning.py``). The
running max restarts at T//2 (err_early / err_late); a partial last tile of each half takes the
exact step.

Scope (:func:`eligible`): the CPU tiles' scope, and every problem field and hyperparameter a
scalar per run. On a CPU the kernel runs in Pallas' interpreter (tests compare it there with the
per-step engine); lowering it for a GPU needs no GPU (``tests/test_fused.py`` lowers it for CUDA).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from numpy.typing import DTypeLike

from gdlab.engine import tiled
from gdlab.engine._common import Chunk, ChunkSpec, FastPath
from gdlab.engine._tile import Tile

__all__ = ["PATH", "FusedPath", "eligible", "program", "BLOCK", "TILE", "WARPS"]

# Measured on an H100 (benchmarks/fused_tuning.py, benchmarks/results/): one run per thread; 8 per
# thread (1024 runs, 4 warps) spilled registers and ran 40x slower. Small blocks settle (and take
# quiet tiles) sooner: 32 runs 2.15e12 updates/s, 64 1.65e12, 128 1.59e12 on the canonical sweep.
BLOCK = 32    # runs per kernel instance
WARPS = 1     # warps per kernel instance: 32 · WARPS threads, one run each
TILE = 20     # steps per tile: unrolled in the kernel; one speculation check each
              # (50: 16 s compile)


def eligible(args: tuple, p_axes: Any, h_axes: dict, steps: int, record_every: int | None) -> bool:
    """The CPU tiles' scope, and every input one scalar per run (axis 0) or a shared scalar."""
    problem, hparams, w0, r, _ = args
    n = w0.shape[0]
    axes = _leaves((p_axes, h_axes))
    leaves = jax.tree.leaves((problem, hparams))
    scalar = len(axes) == len(leaves) and all(
        jnp.shape(a) == ((n,) if ax == 0 else ()) for a, ax in zip(leaves, axes))
    return scalar and tiled.eligible(w0.shape[1:], w0.dtype, steps, record_every, problem,
                                     schedule=False)


class _Kernel(NamedTuple):
    """The static configuration of a kernel (:func:`program`)."""

    tile: Tile          # the steps
    p_axes: Any         # per problem field: 0 (one value per run) or None (shared)
    h_axes: dict        # likewise per hyperparameter
    steps: int          # T
    dtype: Any
    block: int          # runs per kernel instance
    warps: int
    length: int         # steps per tile
    quiet: bool         # settled blocks take quiet tiles (with statistics only)
    interpret: bool     # Pallas' interpreter

    @property
    def axes(self) -> tuple:
        """in_axes of (problem, hparams, w0, r, tol)."""
        return (self.p_axes, self.h_axes, 0, 0 if self.tile.rate else None, None)


class _Block(NamedTuple):
    """One kernel instance: its runs' inputs and what every tile reads."""

    kernel: _Kernel
    args: tuple         # (problem, hparams, w0, r, tol), per run or shared
    consts: tuple       # per run: w*, e₀ and the noise floor (Tile.constants), once, not per tile
    speculate: bool     # as on the CPU: stateless optimizers only


def program(p_axes: Any, h_axes: dict, *, make_optimizer: Callable, steps: int, dtype: DTypeLike,
            rate: bool, statistics: bool = True, block: int | None = None,
            warps: int | None = None, tile: int | None = None, quiet: bool = True,
            interpret: bool = False) -> Callable:
    """``run(problem, hparams, w0, r, tol) -> (final w, RunStats, None)`` for a batch of runs.

    Same signature and results as ``jax.vmap(gdlab.engine._loop._run)`` over the leading axis of
    ``w0``, ``r`` and the problem fields and hyperparameters marked 0 in ``p_axes``/``h_axes``;
    those marked ``None`` are scalars shared by every run (uniform values in the kernel, not per-run
    registers). The batch is padded to a multiple of ``block`` (a power of two) inside. ``block``,
    ``warps``, ``tile``: default :data:`BLOCK`, :data:`WARPS`, :data:`TILE`. ``quiet``: blocks whose
    active runs have settled (within tol and the noise floor) take tiles without the counters,
    checked (:class:`gdlab.engine._tile.Tile`, ``quiet``). ``interpret``: run the kernel in Pallas'
    interpreter (any backend; slow).
    """
    block, warps, tile = block or BLOCK, warps or WARPS, tile or TILE
    if block < 1 or block & (block - 1):
        raise ValueError(f"fused.program: block = {block} must be a power of two")
    kernel = _Kernel(Tile(make_optimizer, dtype, statistics, rate), p_axes, h_axes, steps,
                     dtype, block, warps, tile, quiet and statistics, interpret)
    return functools.partial(_run, kernel)


def _run(k: _Kernel, problem, hparams, w0, r, tol):
    """The kernel over a batch: per-run inputs padded to whole blocks, one instance per block."""
    # Imported here, on first use: ~80 ms that a CPU sweep never needs.
    from jax.experimental import pallas as pl

    n = w0.shape[0]
    padded = -(-n // k.block) * k.block
    rate = k.tile.rate
    leaves, treedef = jax.tree.flatten((problem, hparams, w0, r if rate else None,
                                        jnp.asarray(tol, k.dtype)))
    flat_axes = [*_leaves(k.p_axes), *_leaves(k.h_axes), 0] + [0] * rate + [None]
    # Per-run inputs padded to whole blocks; shared scalars as one-element arrays.
    leaves = [jnp.pad(a, (0, padded - n), mode="edge") if ax == 0 else jnp.reshape(a, (1,))
              for a, ax in zip(leaves, flat_axes)]
    specs = [pl.BlockSpec((k.block,), lambda i: (i,)) if ax == 0
             else pl.BlockSpec((1,), lambda i: (0,)) for ax in flat_axes]
    # Output structure and dtypes: (w, RunStats) from the initial state, traced abstractly.
    steps_ = k.tile
    out_leaves, out_tree = jax.tree.flatten(jax.eval_shape(
        jax.vmap(lambda p, h, w0, tol: steps_.stats(*steps_.init(p, h, w0, tol)[:3], tol),
                 in_axes=(k.p_axes, k.h_axes, 0, None)), problem, hparams, w0, tol))
    params = None
    if not k.interpret:
        from jax.experimental.pallas import triton as plt
        params = plt.CompilerParams(num_warps=k.warps, num_stages=1)
    outs = pl.pallas_call(
        lambda *refs: _kernel(k, treedef, flat_axes, *refs),
        out_shape=[jax.ShapeDtypeStruct((padded,), o.dtype) for o in out_leaves],
        grid=(padded // k.block,), in_specs=specs,
        out_specs=[pl.BlockSpec((k.block,), lambda i: (i,))] * len(out_leaves),
        interpret=k.interpret, compiler_params=params, name="gdlab_sweep")(*leaves)
    return jax.tree.unflatten(out_tree, [o[:n] for o in outs])


def _kernel(k: _Kernel, treedef, flat_axes, *refs):
    """One kernel instance: a block of runs from step 0 to T, the running max restarting at T//2."""
    n_in = len(flat_axes)
    p, h, w0, r, tol = jax.tree.unflatten(treedef, [
        ref[...] if ax == 0 else ref[0] for ref, ax in zip(refs, flat_axes)])
    steps_ = k.tile
    st, tf, ee, s = jax.vmap(steps_.init, in_axes=(k.p_axes, k.h_axes, 0, None))(p, h, w0, tol)
    consts = jax.vmap(steps_.constants, in_axes=(k.p_axes, 0))(p, w0)
    b = _Block(k, (p, h, w0, r, tol), consts, speculate=not jax.tree.leaves(s))
    st, s, tf = _span(b, 0, k.steps // 2, (st, s, tf))
    if steps_.statistics:                               # err_early := running max at t = T//2
        ee = st.m
    st = st._replace(m=jnp.zeros_like(st.m))
    st, s, tf = _span(b, k.steps // 2, k.steps, (st, s, tf))
    out = jax.tree.leaves(jax.vmap(steps_.stats, in_axes=(0, 0, 0, None))(st, tf, ee, tol))
    for ref, value in zip(refs[n_in:], out):
        ref[...] = value


def _span(b: _Block, lo: int, hi: int, carry):
    """Steps lo + 1 … hi: whole tiles (speculating), then the rest exactly."""
    count_tiles, rest = divmod(hi - lo, b.kernel.length)
    if count_tiles:
        carry = lax.fori_loop(0, count_tiles, functools.partial(_tile, b, lo), carry)
    if rest:
        carry = _tiles(b, jnp.int32(lo + count_tiles * b.kernel.length), rest, carry, True)
    return carry


def _tile(b: _Block, lo: int, j, carry):
    """Tile j of a span from lo, down the ladder quiet → full → exact: a block whose active runs
    have settled (within tol, and within the noise floor at the tile's start) takes the quiet tile;
    where a run stirred, the full tile; where a run froze, the exact one. Each guess is kept only
    where checked; without speculation, the exact tile."""
    t0 = lo + j * b.kernel.length
    if not b.speculate:
        return _exact(b, t0, carry)
    if not b.kernel.quiet:
        return _full(b, t0, carry)
    st, _, tf = carry
    active = tf < 0
    w_star, _, floor = b.consts
    unsettled = active & ~((jnp.abs(st.w - w_star) <= floor) & (st.stt >= 0))
    return lax.cond(_count(unsettled) == 0, lambda: _calm(b, t0, carry, active),
                    lambda: _full(b, t0, carry))


def _calm(b: _Block, t0, carry, active):
    """The quiet tile (no counters); the full tile instead if an active run left the floor."""
    st_q, s_q, tf_q = _tiles(b, t0, b.kernel.length, carry, False, quiet=True)
    stirred = _count(active & ~(st_q.q <= b.consts[2]))
    st_q = st_q._replace(q=None)
    return lax.cond(stirred == 0, lambda: (st_q, s_q, tf_q), lambda: _full(b, t0, carry))


def _full(b: _Block, t0, carry):
    """The tile without freeze masks; the exact tile instead if an active run froze."""
    guess = _tiles(b, t0, b.kernel.length, carry, False)
    escaped = _count(~(guess[0].m <= b.kernel.tile.bound))
    return lax.cond(escaped == 0, lambda: guess, lambda: _exact(b, t0, carry))


def _exact(b: _Block, t0, carry):
    return _tiles(b, t0, b.kernel.length, carry, True)


def _tiles(b: _Block, t0, length: int, carry, exact: bool, quiet: bool = False):
    """Steps t0 + 1 … t0 + length of every run of the block (unrolled)."""
    one = lambda p, h, w0, r, tol, c, st, s, tf: b.kernel.tile(
        p, h, w0, r, tol, st, s, tf, t0, length, exact=exact, unrolled=True, constants=c,
        quiet=quiet)
    return jax.vmap(one, in_axes=(*b.kernel.axes, 0, 0, 0, 0))(*b.args, b.consts, *carry)


def _count(flags):
    """How many runs of the block have ``flags`` set."""
    return jnp.sum(flags.astype(jnp.int32))


def _leaves(axes):
    return jax.tree.leaves(axes, is_leaf=lambda a: a is None)


class FusedPath(FastPath):
    """The GPU kernel as the engine's fast path: :func:`eligible` and :func:`program`, for a chunk
    (in Pallas' interpreter on a CPU). A GPU whose Triton cannot compile the kernel gets the
    per-step loop (``fallible``)."""

    name = "fused"
    fallible = True

    def native(self, backend: str) -> bool:
        return backend != "cpu"

    def eligible(self, chunk: Chunk, spec: ChunkSpec) -> bool:
        return eligible(chunk, spec.problem_axes(chunk.problem), spec.hparam_axes(), spec.steps,
                        spec.record_every)

    def program(self, chunk: Chunk, spec: ChunkSpec) -> tuple[Callable, None]:
        return program(spec.problem_axes(chunk.problem), spec.hparam_axes(),
                       make_optimizer=spec.make_optimizer, steps=spec.steps, dtype=chunk.w0.dtype,
                       rate=chunk.r is not None, statistics=spec.statistics,
                       interpret=spec.backend == "cpu"), None


PATH = FusedPath()
