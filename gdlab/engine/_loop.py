"""The simulation engine: many gradient-descent runs at once, with online statistics.

One run is ``lax.scan`` over T steps of ``w ← w + optax_update(∇L(w))``; runs are batched with
``jax.vmap`` over every input that has a leading run axis (α, other hyperparameters, problem
parameters, w₀), and the batch is processed in host-side chunks of a fixed size so memory stays
bounded and one compiled program serves every chunk (the remainder is padded, then cut off).

Nothing of size N×T is kept unless strided snapshots are asked for. The carry holds the iterate,
the optimizer state and :class:`RunStats`. A run whose error leaves the divergence bound, or becomes
inf/NaN, is *frozen*: its iterate stays at the last in-bound value and ``t_freeze`` records the
step, so no inf or NaN ever reaches the results.

Runs within their scope take a fast path with the same results: on CPUs the tiles of
:mod:`gdlab.engine.tiled`, on GPUs the one-kernel sweep of :mod:`gdlab.engine.fused`
(see ``FAST_PATH``).
"""

from __future__ import annotations

import numbers
import time
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdlab import progress as progress_lib
from gdlab.engine import fused, tiled
from gdlab.engine._common import RunStats, divergence_bound, noise_floor
from gdlab.engine._common import norm as _norm
from gdlab.errors import ArgumentError
from gdlab.interfaces import Modal

__all__ = ["simulate", "Simulation", "compile_count", "device_count", "chunk_program", "LANES",
           "FAST_PATH", "FAST_PATHS"]

def _mode_flips(problem, e, e_new, floor, ok):
    """Per eigen-direction: did the error component change sign, both above the floor?"""
    m, m_new = problem.modes(e), problem.modes(e_new)
    return ((ok & (jnp.abs(m) > floor) & (jnp.abs(m_new) > floor) & (m * m_new < 0))
            .astype(jnp.int32))


def _run(problem, hparams, w0, r, tol, *, make_optimizer, steps, unroll, record_every,
         statistics=True):
    """One run (vmapped by the caller). Returns (final w, RunStats, snapshots or None)."""
    dtype = w0.dtype
    eps = jnp.finfo(dtype).eps
    bound = jnp.asarray(divergence_bound(dtype), dtype)
    w_star = jnp.broadcast_to(problem.optimum(), w0.shape).astype(dtype)
    w_star_abs = _norm(w_star)
    err0 = _norm(w0 - w_star)
    floor = noise_floor(eps, w_star_abs, err0)
    tx = make_optimizer(**hparams)
    half = steps // 2

    def update_only(carry, t):
        """The benchmark's floor: the optimizer step and the freeze, no statistics."""
        w, opt_state, st = carry
        updates, new_state = tx.update(problem.grad(w), opt_state, w)
        w_new = w + updates
        ok = (st.t_freeze < 0) & (_norm(w_new - w_star) <= bound)
        st = st._replace(t_freeze=jnp.where((st.t_freeze < 0) & ~ok, t + 1, st.t_freeze))
        w = jnp.where(ok, w_new, w)
        opt_state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_state, opt_state)
        return (w, opt_state, st), None

    def step(carry, t):
        w, opt_state, st = carry
        e = w - w_star
        err = _norm(e)
        updates, new_state = tx.update(problem.grad(w), opt_state, w)
        w_new = w + updates
        e_new = w_new - w_star
        err_new = _norm(e_new)
        active = st.t_freeze < 0
        ok = active & (err_new <= bound)  # False for inf and NaN
        resolvable = ok & (err > floor)
        flip = resolvable & (err_new > floor) & (jnp.sum(e_new * e) < 0)
        late = t + 1 > half
        err_in = jnp.where(ok, err_new, 0)
        if r is None:
            rec_dev = st.rec_dev
        else:
            # Relative to the magnitudes the step handles: |w*|, |e_t|, |e_{t+1}| and |αλ e_t|.
            # scale = 0 only when w* = 0 and e_t = e_{t+1} = 0: both sides of the recurrence are
            # then exactly 0 and the deviation is 0 (dividing by 1 there, not 0/0 = NaN).
            scale = w_star_abs + err + err_new + jnp.abs(1 - r) * err
            dev = jnp.abs(err_new - jnp.abs(r) * err) / jnp.where(scale > 0, scale, 1)
            rec_dev = jnp.where(ok, jnp.maximum(st.rec_dev, dev), st.rec_dev)
        st = RunStats(
            t_freeze=jnp.where(active & ~ok, t + 1, st.t_freeze),
            steps_to_tol=jnp.where((st.steps_to_tol < 0) & ok & (err_new < tol), t + 1,
                                   st.steps_to_tol),
            flips=st.flips + flip.astype(jnp.int32),
            err_early=jnp.where(late, st.err_early, jnp.maximum(st.err_early, err_in)),
            err_late=jnp.where(late, jnp.maximum(st.err_late, err_in), st.err_late),
            err_obs=jnp.where(resolvable, err_new, st.err_obs),
            k_obs=jnp.where(resolvable, t + 1, st.k_obs),
            rec_dev=rec_dev,
            mode_flips=None if st.mode_flips is None else st.mode_flips + _mode_flips(
                problem, e, e_new, floor, ok),
        )
        w = jnp.where(ok, w_new, w)
        opt_state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_state, opt_state)
        return (w, opt_state, st), None

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
    body = step if statistics else update_only

    def counted(carry_t, _):
        carry, t = carry_t
        return (body(carry, t)[0], t + 1), None

    def loop(carry, t0, length):
        """Steps t0 … t0 + length − 1; the step number is carried, so no T-long array of step
        numbers is ever built (T can be 2³¹ − 1)."""
        (carry, _), _ = jax.lax.scan(counted, (carry, jnp.asarray(t0, jnp.int32)), None,
                                     length=length, unroll=unroll)
        return carry

    if record_every is None:
        carry = loop(carry, 0, steps)
        return carry[0], carry[2], None

    # Strided snapshots: w_0, w_k, w_2k, …, and w_T last.
    n_outer, rest = divmod(steps, record_every)

    def outer(carry, t0):
        carry = loop(carry, t0, record_every)
        return carry, carry[0]

    carry, snaps = jax.lax.scan(outer, carry, record_every * jnp.arange(n_outer, dtype=jnp.int32))
    if rest:
        carry = loop(carry, n_outer * record_every, rest)
    snaps = [w0[None], snaps] + ([carry[0][None]] if rest else [])
    return carry[0], carry[2], jnp.concatenate(snaps)


LANES = 64  # runs per device are padded to a multiple of this (see _layout)
_COMPILED: dict[Any, Any] = {}
_COMPILE_COUNT = [0]
# Runs within the fast paths' scope take them: "auto" (default) the tiles of gdlab.engine.tiled on
# CPUs and the kernel of gdlab.engine.fused on GPUs; "tiled" or "fused" that path on any backend
# (the kernel runs in Pallas' interpreter on a CPU); "never" forces the per-step loop (tests
# compare them).
FAST_PATHS = ("auto", "tiled", "fused", "never")
FAST_PATH = ["auto"]


def compile_count() -> int:
    """How many programs the engine has compiled in this process (a new α never adds one)."""
    return _COMPILE_COUNT[0]


def _compiled(args, static):
    """(program, path, compile seconds): the compiled chunk program for these argument shapes and
    static options (cached), and which path it is — "fused", "tiled" or "loop"."""
    leaves, treedef = jax.tree.flatten(args)
    cpu = jax.default_backend() == "cpu"
    mode = FAST_PATH[0]
    if mode not in FAST_PATHS:
        raise ValueError(f"engine.FAST_PATH: {mode!r} is not one of {', '.join(FAST_PATHS)}")
    use_tiles = mode == "tiled" or (mode == "auto" and cpu)
    use_kernel = mode == "fused" or (mode == "auto" and not cpu)
    key = (treedef, tuple((x.shape, x.dtype) for x in leaves), static,
           jax.config.jax_enable_x64, jax.default_backend(), mode)
    if key not in _COMPILED:
        make_optimizer, steps, unroll, record_every, block, axes_key, devices, statistics = static
        p_axes, h_axes = axes_key
        p_axes = jax.tree.unflatten(jax.tree.structure(args[0]), p_axes)
        h_axes = dict(h_axes)

        chosen = []  # which program was built: "fused", "tiled" or "loop"

        def build(kernel: bool):
            """The chunk program: the GPU kernel, the CPU tiles or the per-step loop."""
            finish = None
            chosen[:] = ["fused" if kernel else "loop"]
            if kernel:
                vrun = fused.program(p_axes, h_axes, make_optimizer=make_optimizer, steps=steps,
                                     dtype=args[2].dtype, rate=args[3] is not None,
                                     statistics=statistics, interpret=cpu)
            elif use_tiles and tiled.eligible(args[2].shape[1:], args[2].dtype, steps, record_every,
                                         args[0]):
                vrun, finish = tiled.program(p_axes, h_axes, make_optimizer=make_optimizer,
                                             steps=steps, dtype=args[2].dtype,
                                             rate=args[3] is not None, statistics=statistics)
                chosen[:] = ["tiled"]
            else:
                def one_run(p, h, w0, r, tol):
                    return _run(p, h, w0, r, tol, make_optimizer=make_optimizer, steps=steps,
                                unroll=unroll, record_every=record_every, statistics=statistics)

                vrun = jax.vmap(one_run, in_axes=(p_axes, h_axes, 0, 0, None))

            def run(p, h, w0, r, tol):
                out = blocks(p, h, w0, r, tol)
                return out if finish is None else finish(out, tol)   # tiled: unpack once per chunk

            def blocks(p, h, w0, r, tol):
                n = w0.shape[0]
                if block is None or block >= n:
                    return vrun(p, h, w0, r, tol)
                # Blocks of runs one after another (lax.map), each vmapped: a block's carry stays
                # in cache for all T steps instead of streaming N-long arrays through memory every
                # step. Only batched inputs are split; shared ones (e.g. a Hessian) are closed over.
                split = lambda a: a.reshape((n // block, block) + a.shape[1:])
                pb = [split(a) if ax == 0 else None
                      for a, ax in zip(jax.tree.leaves(p), axes_key[0])]
                hb = {k: split(v) if h_axes[k] == 0 else None for k, v in h.items()}

                def one(args):
                    pbl, hbl, w0b, rb = args
                    pp = jax.tree.unflatten(jax.tree.structure(p), [
                        b if b is not None else a for a, b in zip(jax.tree.leaves(p), pbl)])
                    hh = {k: hbl[k] if hbl[k] is not None else h[k] for k in h}
                    return vrun(pp, hh, w0b, rb, tol)

                out = jax.lax.map(one, (pb, hb, split(w0), jax.tree.map(split, r)))
                return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

            return _sharded(run, devices, args, axes_key) if devices > 1 else run

        t0 = time.perf_counter()
        options = tiled.CPU_COMPILER_OPTIONS if cpu and use_tiles else None
        use_kernel = use_kernel and fused.eligible(args, p_axes, h_axes, steps, record_every)
        try:
            program = jax.jit(build(use_kernel)).lower(*args).compile(compiler_options=options)
        except Exception as err:  # noqa: BLE001 — a GPU (or jaxlib) whose Triton cannot take it
            if not use_kernel:
                raise
            warnings.warn(f"gdlab: the GPU kernel (gdlab.engine.fused) did not compile here "
                          f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}); "
                          f"running XLA's per-step loop instead", RuntimeWarning, stacklevel=2)
            program = jax.jit(build(False)).lower(*args).compile(compiler_options=options)
        _COMPILED[key] = (program, chosen[0])
        _COMPILE_COUNT[0] += 1
        return (*_COMPILED[key], time.perf_counter() - t0)
    return (*_COMPILED[key], 0.0)


def _sharded(run, devices: int, args, axes_key):
    """``run`` on each of ``devices`` devices over its slice of the run axis (``jax.shard_map``).

    A 1-D mesh with an *Auto* axis (``jax.make_mesh`` defaults to Explicit in jax 0.10, which was
    several times slower here); swept inputs are split, shared ones replicated.
    """
    from jax.sharding import AxisType, Mesh
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:devices]), ("runs",), axis_types=(AxisType.Auto,))
    p_specs = jax.tree.unflatten(jax.tree.structure(args[0]),
                                 [P("runs") if ax == 0 else P() for ax in axes_key[0]])
    h_specs = {k: P("runs") if ax == 0 else P() for k, ax in axes_key[1]}
    in_specs = (p_specs, h_specs, P("runs"), None if args[3] is None else P("runs"), P())
    return jax.shard_map(run, mesh=mesh, in_specs=in_specs, out_specs=P("runs"), check_vma=False)


def device_count(devices) -> int:
    """``"all"`` → every visible device; a positive int → that many (checked: ArgumentError)."""
    if isinstance(devices, str) and devices == "all":
        return len(jax.devices())
    if (isinstance(devices, (bool, np.bool_)) or not isinstance(devices, numbers.Integral)
            or devices < 1):
        shown = devices if isinstance(devices, (str, numbers.Number)) else type(devices).__name__
        raise ArgumentError("devices", f"{shown!r} must be \"all\" or an integer >= 1")
    available = len(jax.devices())
    if devices > available:
        raise ArgumentError("devices", f"{devices} requested but only {available} "
                                       f"{jax.default_backend()} device(s) are visible")
    return int(devices)


class Simulation(NamedTuple):
    """Host (numpy) results of :func:`simulate`, one entry per run."""

    w_final: np.ndarray
    stats: RunStats
    snapshots: np.ndarray | None
    compile_s: float
    run_s: float
    path: str = "loop"   # the program that ran: "fused" (GPU kernel), "tiled" (CPU tiles), "loop"


def simulate(problem, hparams: dict, w0, *, make_optimizer: Callable, steps: int, tol: float,
             r=None, unroll: int = 1, record_every: int | None = None, chunk_size: int,
             block: int | None = None, batched_fields: frozenset = frozenset(),
             devices: int = 1, reduce: Callable | None = None, statistics: bool = True,
             progress: bool | None = None) -> Simulation:
    """Run N gradient-descent runs given flat per-run inputs (leading axis N), in chunks.

    ``problem`` is a problem pytree and ``hparams`` maps hyperparameter names to arrays; the fields
    and hyperparameters named in ``batched_fields`` carry a leading run axis N, the others are
    shared by every run. ``w0`` has shape (N,) + param_shape, ``r`` is None or the (N,) linear
    contraction factors against which the recurrence deviation is measured. All arrays must already
    have the simulation dtype. ``block``: runs per cache-resident block inside a chunk (None: the
    whole chunk is one vmap, best on GPUs); the chunk is rounded up to a multiple of it.
    ``devices``: the run axis of each chunk is split over that many devices (the chunk is padded to
    a multiple). ``reduce(start, stop, (w_final, stats, snapshots))``, if given, is applied to each
    chunk's host results and only what it returns is kept (bounded memory for huge sweeps); the
    Simulation then holds the list of those in place of w_final, and stats/snapshots are None.
    ``statistics=False`` runs the update and the freeze alone (the benchmark's floor).
    """
    n = int(w0.shape[0])
    chunk, static, p_axes, h_axes = _layout(problem, hparams, n, chunk_size, block, devices,
                                            make_optimizer, steps, unroll, record_every,
                                            batched_fields, statistics)
    fields = getattr(problem, "_fields", ())
    cut = lambda a, ax, start, stop: _pad(np.asarray(a[start:stop]), chunk) if ax == 0 else a
    outputs, compile_s, path = [], 0.0, "loop"
    bar = progress_lib.Progress(total=n, enabled=progress, unit="runs", work_per_unit=steps)

    def collect(start, stop, result, t_run):
        """Wait for a chunk, cut its padding and hand it to ``reduce`` (host work)."""
        out = jax.tree.map(lambda a: a[: stop - start], jax.device_get(result))
        outputs.append(out if reduce is None else reduce(start, stop, out))
        bar.update(stop - start, seconds=time.perf_counter() - t_run)

    pending = None
    t_start = time.perf_counter()
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        # Pad the remainder with copies of the last run: one program serves every chunk.
        piece = (
            type(problem)(*(cut(a, ax, start, stop) for a, ax in zip(problem, p_axes)))
            if fields else problem,
            {k: cut(v, dict(h_axes)[k], start, stop) for k, v in hparams.items()},
            cut(w0, 0, start, stop), None if r is None else cut(r, 0, start, stop))
        tol_arr = np.asarray(tol, piece[2].dtype)
        fn, path, dt = _compiled((*piece, tol_arr), static)
        compile_s += dt
        t_run = time.perf_counter()
        result = fn(*piece, tol_arr)           # dispatched: runs while the host finishes the last
        if pending is not None:
            collect(*pending)
        pending = (start, stop, result, t_run)
    if pending is not None:
        collect(*pending)
    bar.close()
    run_s = time.perf_counter() - t_start - compile_s
    if reduce is not None:
        return Simulation(outputs, None, None, compile_s, run_s, path)
    w_final, stats, snaps = (
        jax.tree.map(lambda *xs: np.concatenate(xs), *outputs) if len(outputs) > 1 else outputs[0])
    return Simulation(w_final, stats, snaps, compile_s, run_s, path)


def _layout(problem, hparams, n, chunk_size, block, devices, make_optimizer, steps, unroll,
            record_every, batched_fields, statistics):
    """Chunk size (a multiple of devices × block) and the static key of the chunk program."""
    chunk = max(1, min(int(chunk_size), n))
    per_device = -(-chunk // devices)
    if block is not None and per_device > block:
        per_device = -(-per_device // block) * block
    else:
        block = None
        # Whole vectors of runs: LLVM vectorizes a loop or not depending on its trip count, and
        # vector and scalar code may fuse multiply-adds differently, so an odd batch size could
        # change the last bits of a run (and so a shard would differ from the whole sweep).
        per_device = -(-per_device // LANES) * LANES
    chunk = per_device * devices
    fields = getattr(problem, "_fields", ())
    p_axes = tuple(0 if f in batched_fields else None for f in fields)
    h_axes = tuple(sorted((k, 0 if k in batched_fields else None) for k in hparams))
    static = (make_optimizer, int(steps), int(unroll), record_every, block, (p_axes, h_axes),
              int(devices), bool(statistics))
    return chunk, static, p_axes, h_axes


def chunk_program(problem, hparams, w0, r, tol, *, make_optimizer, steps, unroll=1,
                  record_every=None, block=None, batched_fields=frozenset(), devices=1,
                  statistics=True):
    """The compiled program for one chunk holding exactly these runs, and its compile time.

    For measuring the device computation alone (``gdlab bench``): call it on device-resident
    arguments and block on the result; ``simulate`` adds transfers and host post-processing.
    """
    n = int(w0.shape[0])
    chunk, static, _, _ = _layout(problem, hparams, n, n, block, devices, make_optimizer, steps,
                                  unroll, record_every, batched_fields, statistics)
    if chunk != n:
        raise ValueError(f"chunk_program: {n} runs is not a multiple of devices × block; "
                         f"use {chunk}")
    program, _, compile_s = _compiled((problem, hparams, w0, r, np.asarray(tol, w0.dtype)), static)
    return program, compile_s


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - a.shape[0], axis=0)])
