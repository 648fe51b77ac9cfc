"""The GPU fast path of the engine: one kernel per block of runs, the whole horizon in registers.

XLA runs the step loop as a while loop whose body is one or a few kernels, so every iteration (or
every ``unroll`` steps) reads and writes each carried array in GPU memory, and the statistics add
carried arrays. Here one Pallas (Triton) kernel gives each block of :data:`BLOCK` runs its inputs,
loops over all T steps with the iterate, the optimizer state and the statistics in registers, and
writes the results once: the sweep costs its arithmetic, not its memory traffic.

The steps are those of the CPU tiles (:class:`gdlab.engine.tiled.Tile`, the same operations in the
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

import jax
import jax.numpy as jnp
from jax import lax

from gdlab.engine import tiled

__all__ = ["eligible", "program", "BLOCK", "TILE", "WARPS"]

# Measured on an H100 (benchmarks/fused_tuning.py, benchmarks/results/): one run per thread; 8 per
# thread (1024 runs, 4 warps) spilled registers and ran 40x slower. Small blocks settle (and take
# quiet tiles) sooner: 32 runs 2.15e12 updates/s, 64 1.65e12, 128 1.59e12 on the canonical sweep.
BLOCK = 32    # runs per kernel instance
WARPS = 1     # warps per kernel instance: 32 · WARPS threads, one run each
TILE = 20     # steps per tile: unrolled in the kernel; one speculation check each
              # (50: 16 s compile)


def eligible(args, p_axes, h_axes, steps: int, record_every) -> bool:
    """The CPU tiles' scope, and every input one scalar per run (axis 0) or a shared scalar."""
    problem, hparams, w0, r, _ = args
    n = w0.shape[0]
    axes = _leaves((p_axes, h_axes))
    leaves = jax.tree.leaves((problem, hparams))
    scalar = len(axes) == len(leaves) and all(
        jnp.shape(a) == ((n,) if ax == 0 else ()) for a, ax in zip(leaves, axes))
    return scalar and tiled.eligible(w0.shape[1:], w0.dtype, steps, record_every, problem,
                                     schedule=False)


def program(p_axes, h_axes, *, make_optimizer, steps: int, dtype, rate: bool,
            statistics: bool = True, block: int | None = None, warps: int | None = None,
            tile: int | None = None, quiet: bool = True, interpret: bool = False):
    """``run(problem, hparams, w0, r, tol) -> (final w, RunStats, None)`` for a batch of runs.

    Same signature and results as ``jax.vmap(gdlab.engine._loop._run)`` over the leading axis of
    ``w0``, ``r`` and the problem fields and hyperparameters marked 0 in ``p_axes``/``h_axes``;
    those marked ``None`` are scalars shared by every run (uniform values in the kernel, not per-run
    registers). The batch is padded to a multiple of ``block`` (a power of two) inside. ``block``,
    ``warps``, ``tile``: default :data:`BLOCK`, :data:`WARPS`, :data:`TILE`. ``quiet``: blocks whose
    active runs have settled (within tol and the noise floor) take tiles without the counters,
    checked (:class:`gdlab.engine.tiled.Tile`, ``quiet``). ``interpret``: run the kernel in Pallas'
    interpreter (any backend; slow).
    """
    block, warps, tile = block or BLOCK, warps or WARPS, tile or TILE
    from jax.experimental import pallas as pl

    if block < 1 or block & (block - 1):
        raise ValueError(f"fused.program: block = {block} must be a power of two")
    steps_ = tiled.Tile(make_optimizer, dtype, statistics, rate)
    rate = steps_.rate
    half = steps // 2

    axes = (p_axes, h_axes, 0, 0 if rate else None, None)

    def kernel(treedef, flat_axes, *refs):
        n_in = len(flat_axes)
        p, h, w0, r, tol = jax.tree.unflatten(treedef, [
            ref[...] if ax == 0 else ref[0] for ref, ax in zip(refs, flat_axes)])
        args = (p, h, w0, r, tol)
        st, tf, ee, s = jax.vmap(steps_.init, in_axes=(p_axes, h_axes, 0, None))(p, h, w0, tol)
        consts = jax.vmap(steps_.constants, in_axes=(p_axes, 0))(p, w0)   # once, not per tile
        speculate = not jax.tree.leaves(s)   # as on the CPU: stateless optimizers only

        w_star, _, floor = consts
        count = lambda flags: jnp.sum(flags.astype(jnp.int32))   # over the block's runs

        def tiles(t0, length, carry, exact, quiet=False):
            one = lambda p, h, w0, r, tol, c, st, s, tf: steps_(
                p, h, w0, r, tol, st, s, tf, t0, length, exact=exact, unrolled=True, constants=c,
                quiet=quiet)
            return jax.vmap(one, in_axes=(*axes, 0, 0, 0, 0))(*args, consts, *carry)

        def span(lo, hi, carry):
            """Steps lo + 1 … hi: whole tiles (speculating), then the rest exactly."""
            count_tiles, rest = divmod(hi - lo, tile)

            def body(j, carry):
                t0 = lo + j * tile
                exact = lambda: tiles(t0, tile, carry, True)
                if not speculate:
                    return exact()

                def full():                # no freeze masks; redone exactly if a run froze
                    guess = tiles(t0, tile, carry, False)
                    escaped = count(~(guess[0]["m"] <= steps_.bound))
                    return lax.cond(escaped == 0, lambda: guess, exact)

                if not (quiet and statistics):
                    return full()
                st, _, tf = carry
                active = tf < 0

                def calm():                # no counters; redone in full if a run stirred
                    st_q, s_q, tf_q = tiles(t0, tile, carry, False, quiet=True)
                    st_q = dict(st_q)
                    stirred = count(active & ~(st_q.pop("q") <= floor))
                    return lax.cond(stirred == 0, lambda: (st_q, s_q, tf_q), full)

                # Active runs already within tol, and within the noise floor at the tile's start.
                unsettled = active & ~((jnp.abs(st["w"] - w_star) <= floor) & (st["stt"] >= 0))
                return lax.cond(count(unsettled) == 0, calm, full)

            if count_tiles:
                carry = lax.fori_loop(0, count_tiles, body, carry)
            if rest:
                carry = tiles(jnp.int32(lo + count_tiles * tile), rest, carry, True)
            return carry

        carry = span(0, half, (st, s, tf))
        st, s, tf = carry
        if statistics:                                   # err_early := running max at t = T//2
            ee = st["m"]
        st = dict(st, m=jnp.zeros_like(st["m"]))
        st, s, tf = span(half, steps, (st, s, tf))
        out = jax.tree.leaves(jax.vmap(steps_.stats, in_axes=(0, 0, 0, None))(st, tf, ee, tol))
        for ref, value in zip(refs[n_in:], out):
            ref[...] = value

    def run(problem, hparams, w0, r, tol):
        n = w0.shape[0]
        padded = -(-n // block) * block
        leaves, treedef = jax.tree.flatten((problem, hparams, w0, r if rate else None,
                                            jnp.asarray(tol, dtype)))
        flat_axes = [*_leaves(p_axes), *_leaves(h_axes), 0] + [0] * rate + [None]
        # Per-run inputs padded to whole blocks; shared scalars as one-element arrays.
        leaves = [jnp.pad(a, (0, padded - n), mode="edge") if ax == 0 else jnp.reshape(a, (1,))
                  for a, ax in zip(leaves, flat_axes)]
        specs = [pl.BlockSpec((block,), lambda i: (i,)) if ax == 0
                 else pl.BlockSpec((1,), lambda i: (0,)) for ax in flat_axes]
        # Output structure and dtypes: (w, RunStats) from the initial state, traced abstractly.
        out_leaves, out_tree = jax.tree.flatten(jax.eval_shape(
            jax.vmap(lambda p, h, w0, tol: steps_.stats(*steps_.init(p, h, w0, tol)[:3], tol),
                     in_axes=(p_axes, h_axes, 0, None)), problem, hparams, w0, tol))
        params = None
        if not interpret:
            from jax.experimental.pallas import triton as plt
            params = plt.CompilerParams(num_warps=warps, num_stages=1)
        outs = pl.pallas_call(
            lambda *refs: kernel(treedef, flat_axes, *refs),
            out_shape=[jax.ShapeDtypeStruct((padded,), o.dtype) for o in out_leaves],
            grid=(padded // block,), in_specs=specs,
            out_specs=[pl.BlockSpec((block,), lambda i: (i,))] * len(out_leaves),
            interpret=interpret, compiler_params=params, name="gdlab_sweep")(*leaves)
        return jax.tree.unflatten(out_tree, [o[:n] for o in outs])

    return run


def _leaves(axes):
    return jax.tree.leaves(axes, is_leaf=lambda a: a is None)
