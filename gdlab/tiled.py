"""The CPU fast path of the engine: tiles of K steps with packed state (same results, ~4× faster).

XLA:CPU emits one loop kernel per carried output array and recomputes, inside each kernel, every
intermediate that output depends on (no multi-output fusion). The per-step engine carries ~9 arrays,
so each step runs ~9 kernels that each redo the update and the freeze logic. Here

* one scan iteration is a *tile* of K optimizer steps unrolled in Python; each step updates every
  statistic forward (running masks, no look-back), so the K-step recurrence streams through registers
  and the carried arrays are written once per K steps instead of once per step;
* the per-run state is packed into three complex64 (complex128) arrays — (w, err_obs),
  (running max, rec_dev), and the integer statistics stored as exact floats two per slot,
  (t_freeze, steps_to_tol) and (flips, k_obs), as (a + 1)·R + (b + 1) with R = T + 2 — so a complex
  output computes both halves in one loop: three heavy kernels per tile instead of ~9 per step;
* err_early/err_late: one running max moved to ``err_early`` at the tile starting at T//2; the static
  tile schedule makes T//2 a tile boundary, and a scalar per-step mask lets one compiled tile body
  serve partial tiles.

Each step does the same operations in the same order as ``gdlab.engine._run``, so for plain gradient
descent the results are bit-identical (tests check it); with stateful optimizers XLA may contract
multiply-adds differently, a last-bit difference. Scope (``eligible``): a scalar parameter, no
strided snapshots, all statistics, no eigen-modes, and (T + 2)² exactly representable
(T ≤ 4094 in float32); anything else runs the per-step engine. Measured by ``gdlab bench``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gdlab.engine import RunStats, divergence_bound, noise_floor

__all__ = ["eligible", "run", "TILE", "CPU_COMPILER_OPTIONS"]

TILE = 25  # steps per scan iteration: compile < 1 s (50 is ~8% faster and compiles in ~1.4 s)

# The tile kernels are latency-bound: 512-bit vectors carry twice the runs per dependency chain.
CPU_COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


def eligible(w0, steps, record_every, statistics, problem) -> bool:
    """Scalar parameter, no snapshots, full statistics, no modes, and step numbers exact in dtype."""
    mant = np.finfo(w0.dtype).nmant + 1
    return (w0.ndim == 0 and record_every is None and statistics and not hasattr(problem, "modes")
            and (steps + 2) ** 2 < 2 ** mant)


def run(problem, hparams, w0, r, tol, *, make_optimizer, steps, tile=TILE):
    """One run, as ``gdlab.engine._run`` but in tiles of ``tile`` steps (vmapped by the caller)."""
    dtype = w0.dtype
    eps = jnp.finfo(dtype).eps
    bound = jnp.asarray(divergence_bound(dtype), dtype)
    w_star = jnp.asarray(problem.optimum(), dtype)
    w_star_abs = jnp.abs(w_star)
    err0 = jnp.abs(w0 - w_star)
    floor = noise_floor(eps, w_star_abs, err0)
    tx = make_optimizer(**hparams)
    f = lambda i: jnp.asarray(i, dtype)                 # step numbers as exact floats
    C = lax.complex
    R = steps + 2                                       # int values in [-1, steps] -> digit + 1

    def pack(a, b):
        return f((a.astype(jnp.int32) + 1) * R + (b.astype(jnp.int32) + 1))

    def unpack(p):
        p = p.astype(jnp.int32)
        return f(p // R - 1), f(p % R - 1)

    def tile_body(carry, sched):
        t0, n_valid, reset = sched                      # scalars: first step, steps to take, new half
        c1, c2, c3, ee, s = carry
        w, eo = jnp.real(c1), jnp.imag(c1)
        m, d = jnp.real(c2), jnp.imag(c2)
        ee = jnp.where(reset, m, ee)                    # err_early := running max at t = T//2
        m = jnp.where(reset, 0, m)
        tf, stt = unpack(jnp.real(c3))
        fl, ko = unpack(jnp.imag(c3))
        ok = tf < 0                                     # still running
        v, sv = w, s                                    # raw iterate (frozen runs: ignored)
        e = v - w_star
        a = jnp.abs(e)
        for i in range(1, tile + 1):
            u, sv = tx.update(problem.grad(v), sv, v)
            v = v + u
            e_new = v - w_star
            a_new = jnp.abs(e_new)
            ti = f(t0 + i)
            if masked:
                ok = ok & (i <= n_valid)
            bad = ~(a_new <= bound)                     # catches inf and NaN
            tf = jnp.where(ok & bad, ti, tf)
            ok = ok & ~bad                              # step i taken
            res = ok & (a > floor)
            stt = jnp.where((stt < 0) & ok & (a_new < tol), ti, stt)
            fl = fl + (res & (a_new > floor) & (e_new * e < 0)).astype(dtype)
            m = jnp.where(ok, jnp.maximum(m, a_new), m)
            eo = jnp.where(res, a_new, eo)
            ko = jnp.where(res, ti, ko)
            if r is not None:
                scale = w_star_abs + a + a_new + jnp.abs(1 - r) * a
                dev = jnp.abs(a_new - jnp.abs(r) * a) / scale
                d = jnp.where(ok, jnp.maximum(d, dev), d)
            w = jnp.where(ok, v, w)
            s = jax.tree.map(lambda p, q: jnp.where(ok, p, q), sv, s)
            e, a = e_new, a_new
        return (C(w, eo), C(m, d), C(pack(tf, stt), pack(fl, ko)), ee, s), None

    # Static schedule: tiles cover [0, T//2) then [T//2, T); the last tile of each half may be
    # partial (a scalar per-step mask). Prefer a tile length dividing both halves (no mask at all).
    half = steps // 2
    tile = max(1, min(tile, steps - half))
    if half and steps == 2 * half:
        divisors = [k for k in range(tile, (tile + 1) // 2 - 1, -1) if half % k == 0]
        tile = divisors[0] if divisors else tile
    masked = half % tile != 0 or (steps - half) % tile != 0
    t0s, nvs, resets = [], [], []
    for lo, hi in ((0, half), (half, steps)):
        for t0 in range(lo, hi, tile):
            t0s.append(t0); nvs.append(min(tile, hi - t0)); resets.append(t0 == half)
    sched = (jnp.asarray(t0s, jnp.int32), jnp.asarray(nvs, jnp.int32), jnp.asarray(resets))
    stt0 = jnp.where(err0 < tol, f(0), f(-1))
    carry = (C(w0, err0), C(err0, f(0)), C(pack(f(-1), stt0), pack(f(0), f(0))), err0, tx.init(w0))
    carry, _ = lax.scan(tile_body, carry, sched)
    c1, c2, c3, ee, _ = carry
    m = jnp.real(c2)                                    # (steps == 1: the first tile resets)
    tf, stt = unpack(jnp.real(c3))
    fl, ko = unpack(jnp.imag(c3))
    i32 = lambda v: v.astype(jnp.int32)
    stats = RunStats(t_freeze=i32(tf), steps_to_tol=i32(stt), flips=i32(fl), err_early=ee,
                            err_late=m, err_obs=jnp.imag(c1), k_obs=i32(ko),
                            rec_dev=jnp.imag(c2), mode_flips=None)
    return jnp.real(c1), stats, None
