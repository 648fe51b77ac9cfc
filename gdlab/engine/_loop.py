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

import functools
import numbers
import time
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh
from jax.sharding import PartitionSpec as P

from gdlab import progress as progress_lib
from gdlab.engine import fused, tiled
from gdlab.engine._common import Chunk, ChunkSpec, FastPath, RunStats, divergence_bound, noise_floor
from gdlab.engine._common import norm as _norm
from gdlab.errors import ArgumentError
from gdlab.interfaces import Modal

__all__ = ["simulate", "Simulation", "compile_count", "device_count", "chunk_program", "LANES",
           "FAST_PATH", "FAST_PATH_MODES", "FAST_PATHS"]


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


LANES = 64  # runs per device are padded to a multiple of this (see _layout)
_COMPILED: dict[Any, Any] = {}
_COMPILE_COUNT = [0]
# The fast paths, in order of preference: a chunk takes the first one its mode offers and whose
# scope it is in, else the per-step loop.
FAST_PATHS: tuple[FastPath, ...] = (fused.PATH, tiled.PATH)
# Which fast paths are offered, FAST_PATH[0]: "auto" (default) those native to the backend (the
# tiles of gdlab.engine.tiled on CPUs, the kernel of gdlab.engine.fused on GPUs); "tiled" or "fused"
# that path on any backend (the kernel runs in Pallas' interpreter on a CPU); "never" none: the
# per-step loop (tests compare them).
FAST_PATH_MODES = ("auto", "tiled", "fused", "never")
FAST_PATH = ["auto"]


def compile_count() -> int:
    """How many programs the engine has compiled in this process (a new α never adds one)."""
    return _COMPILE_COUNT[0]


def _fast_path_mode() -> str:
    mode = FAST_PATH[0]
    if mode not in FAST_PATH_MODES:
        raise ValueError(f"engine.FAST_PATH: {mode!r} is not one of {', '.join(FAST_PATH_MODES)}")
    return mode


def _offered(spec: ChunkSpec) -> tuple[FastPath, ...]:
    """The fast paths ``spec.mode`` offers on ``spec.backend``, in order of preference."""
    if spec.mode == "auto":
        return tuple(path for path in FAST_PATHS if path.native(spec.backend))
    return tuple(path for path in FAST_PATHS if path.name == spec.mode)


def _compiled(chunk: Chunk, spec: ChunkSpec):
    """(program, path, compile seconds): the compiled chunk program for these argument shapes and
    this spec (cached), and which path it is — a fast path's name or "loop"."""
    leaves, treedef = jax.tree.flatten(chunk)
    key = (spec, treedef, tuple((x.shape, x.dtype) for x in leaves))
    if key in _COMPILED:
        return (*_COMPILED[key], 0.0)
    t0 = time.perf_counter()
    offered = _offered(spec)
    path = next((p for p in offered if p.eligible(chunk, spec)), None)
    # Every program compiled under a mode takes the options of the paths it offers, the per-step
    # loop too (as it always has: what it compiles to, and so its last bits, may depend on them).
    options = {k: v for p in offered for k, v in (p.compiler_options(spec.backend) or {}).items()}
    try:
        program = _compile(path, chunk, spec, options)
    except Exception as err:  # noqa: BLE001 — a GPU (or jaxlib) whose Triton cannot take it
        if path is None or not path.fallible:
            raise
        warnings.warn(f"gdlab: the {path.name} fast path (gdlab.engine.{path.name}) did not "
                      f"compile here ({type(err).__name__}: "
                      f"{(str(err).splitlines() or [''])[0][:200]}); running XLA's per-step loop "
                      f"instead", RuntimeWarning, stacklevel=2)
        path = None
        program = _compile(path, chunk, spec, options)
    _COMPILED[key] = (program, "loop" if path is None else path.name)
    _COMPILE_COUNT[0] += 1
    return (*_COMPILED[key], time.perf_counter() - t0)


def _compile(path: FastPath | None, chunk: Chunk, spec: ChunkSpec, options: dict):
    return (jax.jit(_build(path, chunk, spec)).lower(*chunk)
            .compile(compiler_options=options or None))


def _build(path: FastPath | None, chunk: Chunk, spec: ChunkSpec):
    """The chunk program, to be jitted: ``path``'s batch program (None: the per-step loop, vmapped)
    over blocks of runs (:func:`_blocks`), on each device's slice of the runs."""
    if path is None:
        one_run = functools.partial(_run, make_optimizer=spec.make_optimizer, steps=spec.steps,
                                    unroll=spec.unroll, record_every=spec.record_every,
                                    statistics=spec.statistics)
        vrun, finish = jax.vmap(one_run, in_axes=(spec.problem_axes(chunk.problem),
                                                  spec.hparam_axes(), 0, 0, None)), None
    else:
        vrun, finish = path.program(chunk, spec)
    run = functools.partial(_blocks, vrun, finish, spec)
    return _sharded(run, chunk, spec) if spec.devices > 1 else run


def _blocks(vrun, finish, spec: ChunkSpec, p, h, w0, r, tol):
    """``vrun`` over blocks of ``spec.block`` runs one after another (``lax.map``), each vmapped: a
    block's carry stays in cache for all T steps instead of streaming N-long arrays through memory
    every step; then ``finish`` (the tiles' unpacking) once over the whole chunk."""
    n = w0.shape[0]
    block = spec.block
    if block is None or block >= n:
        out = vrun(p, h, w0, r, tol)
        return out if finish is None else finish(out, tol)
    # Only batched inputs are split; shared ones (e.g. a Hessian) are closed over.
    split = lambda a: a.reshape((n // block, block) + a.shape[1:])
    h_axes = spec.hparam_axes()
    pb = [split(a) if ax == 0 else None for a, ax in zip(jax.tree.leaves(p), spec.p_axes)]
    hb = {k: split(v) if h_axes[k] == 0 else None for k, v in h.items()}

    def one(args):
        pbl, hbl, w0b, rb = args
        pp = jax.tree.unflatten(jax.tree.structure(p), [
            b if b is not None else a for a, b in zip(jax.tree.leaves(p), pbl)])
        hh = {k: hbl[k] if hbl[k] is not None else h[k] for k in h}
        return vrun(pp, hh, w0b, rb, tol)

    out = jax.lax.map(one, (pb, hb, split(w0), jax.tree.map(split, r)))
    out = jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)
    return out if finish is None else finish(out, tol)


def _sharded(run, chunk: Chunk, spec: ChunkSpec):
    """``run`` on each of ``spec.devices`` devices over its slice of the run axis
    (``jax.shard_map``).

    A 1-D mesh with an *Auto* axis (``jax.make_mesh`` defaults to Explicit in jax 0.10, which was
    several times slower here); swept inputs are split, shared ones replicated.
    """
    mesh = Mesh(np.array(jax.devices()[:spec.devices]), ("runs",), axis_types=(AxisType.Auto,))
    p_specs = jax.tree.unflatten(jax.tree.structure(chunk.problem),
                                 [P("runs") if ax == 0 else P() for ax in spec.p_axes])
    h_specs = {k: P("runs") if ax == 0 else P() for k, ax in spec.h_axes}
    in_specs = (p_specs, h_specs, P("runs"), None if chunk.r is None else P("runs"), P())
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
    """Host (numpy) results of :func:`simulate`, one entry per run; with ``reduce``, the reducer's
    outputs in ``parts`` and no stats or snapshots."""

    w_final: np.ndarray | None
    stats: RunStats | None
    snapshots: np.ndarray | None
    compile_s: float
    run_s: float
    path: str = "loop"   # the program that ran: "fused" (GPU kernel), "tiled" (CPU tiles), "loop"
    parts: list | None = None   # reduce's outputs, one per chunk in order (w_final is then None)


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
    chunk's host results and only what it returns is kept (bounded memory for huge sweeps), in
    ``Simulation.parts``; stats and snapshots are then None.
    ``statistics=False`` runs the update and the freeze alone (the benchmark's floor).
    """
    n = int(w0.shape[0])
    chunk, spec = _layout(problem, hparams, n, chunk_size, block=block, devices=devices,
                          make_optimizer=make_optimizer, steps=steps, unroll=unroll,
                          record_every=record_every, batched_fields=batched_fields,
                          statistics=statistics)
    fields = getattr(problem, "_fields", ())
    h_axes = spec.hparam_axes()
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
        w0_piece = cut(w0, 0, start, stop)
        piece = Chunk(
            problem=type(problem)(*(cut(a, ax, start, stop) for a, ax in zip(problem, spec.p_axes)))
            if fields else problem,
            hparams={k: cut(v, h_axes[k], start, stop) for k, v in hparams.items()},
            w0=w0_piece, r=None if r is None else cut(r, 0, start, stop),
            tol=np.asarray(tol, w0_piece.dtype))
        fn, path, dt = _compiled(piece, spec)
        compile_s += dt
        t_run = time.perf_counter()
        result = fn(*piece)                    # dispatched: runs while the host finishes the last
        if pending is not None:
            collect(*pending)
        pending = (start, stop, result, t_run)
    if pending is not None:
        collect(*pending)
    bar.close()
    run_s = time.perf_counter() - t_start - compile_s
    if reduce is not None:
        return Simulation(None, None, None, compile_s, run_s, path, parts=outputs)
    w_final, stats, snaps = (
        jax.tree.map(lambda *xs: np.concatenate(xs), *outputs) if len(outputs) > 1 else outputs[0])
    return Simulation(w_final, stats, snaps, compile_s, run_s, path)


def _layout(problem, hparams, n, chunk_size, *, block, devices, make_optimizer, steps, unroll,
            record_every, batched_fields, statistics) -> tuple[int, ChunkSpec]:
    """Chunk size (a multiple of devices × block) and the spec of the chunk program."""
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
    spec = ChunkSpec(
        make_optimizer=make_optimizer, steps=int(steps), unroll=int(unroll),
        record_every=record_every, block=block,
        p_axes=tuple(0 if f in batched_fields else None for f in fields),
        h_axes=tuple(sorted((k, 0 if k in batched_fields else None) for k in hparams)),
        devices=int(devices), statistics=bool(statistics), backend=jax.default_backend(),
        x64=bool(jax.config.jax_enable_x64), mode=_fast_path_mode())
    return chunk, spec


def chunk_program(problem, hparams, w0, r, tol, *, make_optimizer, steps, unroll=1,
                  record_every=None, block=None, batched_fields=frozenset(), devices=1,
                  statistics=True):
    """The compiled program for one chunk holding exactly these runs, and its compile time.

    For measuring the device computation alone (``gdlab bench``): call it on device-resident
    arguments and block on the result; ``simulate`` adds transfers and host post-processing.
    """
    n = int(w0.shape[0])
    chunk, spec = _layout(problem, hparams, n, n, block=block, devices=devices,
                          make_optimizer=make_optimizer, steps=steps, unroll=unroll,
                          record_every=record_every, batched_fields=batched_fields,
                          statistics=statistics)
    if chunk != n:
        raise ValueError(f"chunk_program: {n} runs is not a multiple of devices × block; "
                         f"use {chunk}")
    program, _, compile_s = _compiled(Chunk(problem, hparams, w0, r, np.asarray(tol, w0.dtype)),
                                      spec)
    return program, compile_s


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - a.shape[0], axis=0)])
