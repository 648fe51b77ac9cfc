"""The chunk program: which path runs a chunk of runs, and how its program is built and cached.

A chunk's program is keyed by its :class:`ChunkSpec` and its arguments' shapes and dtypes, compiled
once and reused for every chunk with that key (a new α never compiles anything). The path is the
first fast path the mode (``FAST_PATH[0]``) offers whose scope the chunk is in (``FAST_PATHS``:
the GPU kernel of :mod:`gdlab.engine.fused`, the CPU tiles of :mod:`gdlab.engine.tiled`), else the
per-step loop of :mod:`gdlab.engine._loop`, vmapped. Inside a chunk the runs go in cache-resident
blocks (``lax.map`` over vmapped blocks) and, with several devices, each device takes its slice of
the run axis (``jax.shard_map``); under ``jax.distributed`` the mesh may hold every process's
devices (:func:`mesh_devices`, :func:`spans_processes`).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import AxisType, Mesh
from jax.sharding import PartitionSpec as P

from gdlab.engine import _by_loss, fused, tiled
from gdlab.engine._common import Chunk, ChunkSpec, FastPath
from gdlab.engine._loop import _run
from gdlab.interfaces import Bindable, WithOptimum

__all__ = ["compile_count", "chunk_program", "chunk_runs", "exact_blocks", "mesh_devices",
           "spans_processes", "LANES", "FAST_PATH", "FAST_PATH_MODES", "FAST_PATHS"]


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


def _compiled(chunk: Chunk, spec: ChunkSpec) -> tuple[jax.stages.Compiled, str, float]:
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


def _compile(path: FastPath | None, chunk: Chunk, spec: ChunkSpec,
             options: dict) -> jax.stages.Compiled:
    return (jax.jit(_build(path, chunk, spec)).lower(*chunk)
            .compile(compiler_options=options or None))


def _build(path: FastPath | None, chunk: Chunk, spec: ChunkSpec) -> Callable:
    """The chunk program, to be jitted: ``path``'s batch program (None: the per-step loop, vmapped)
    over blocks of runs (:func:`_blocks`), on each device's slice of the runs."""
    if path is None:
        # a problem without a known optimum is judged by its loss (gdlab.engine._by_loss)
        body = _run if isinstance(chunk.problem, WithOptimum) else _by_loss.run
        one_run = functools.partial(body, make_optimizer=spec.make_optimizer, steps=spec.steps,
                                    unroll=spec.unroll, record_every=spec.record_every,
                                    statistics=spec.statistics)
        vrun, finish = jax.vmap(one_run, in_axes=(spec.problem_axes(chunk.problem),
                                                  spec.hparam_axes(), 0, 0, None)), None
    else:
        vrun, finish = path.program(chunk, spec)
    run = functools.partial(_blocks, vrun, finish, spec)
    return _sharded(run, chunk, spec) if spec.devices > 1 else run


def _blocks(vrun: Callable, finish: Callable | None, spec: ChunkSpec, p: Any, h: dict,
            w0: jax.Array, r: Any, tol: Any) -> Any:
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


def _sharded(run: Callable, chunk: Chunk, spec: ChunkSpec) -> Callable:
    """``run`` on each of ``spec.devices`` devices (:func:`mesh_devices`) over its slice of the
    run axis (``jax.shard_map``).

    A 1-D mesh with an *Auto* axis (``jax.make_mesh`` defaults to Explicit in jax 0.10, which was
    several times slower here); swept inputs are split, shared ones replicated.
    """
    mesh = Mesh(np.array(mesh_devices(spec.devices)), ("runs",), axis_types=(AxisType.Auto,))
    p_specs = jax.tree.unflatten(jax.tree.structure(chunk.problem),
                                 [P("runs") if ax == 0 else P() for ax in spec.p_axes])
    h_specs = {k: P("runs") if ax == 0 else P() for k, ax in spec.h_axes}
    in_specs = (p_specs, h_specs, P("runs"), None if chunk.r is None else P("runs"), P())
    return jax.shard_map(run, mesh=mesh, in_specs=in_specs, out_specs=P("runs"), check_vma=False)


def mesh_devices(count: int) -> list:
    """The devices of a ``count``-device mesh: this process's first ``count`` when it has that
    many (without ``jax.distributed``: always), else the first ``count`` of every process's
    (``jax.devices()``, listed process by process; under ``jax.distributed`` the engine allows
    only all of them, see ``device_count``)."""
    local = jax.local_devices()
    return local[:count] if count <= len(local) else jax.devices()[:count]


def spans_processes(spec: ChunkSpec) -> bool:
    """Does the chunk program's mesh hold other processes' devices (``jax.distributed``)? Its
    outputs are then global arrays, to be gathered (``gdlab.engine._simulate``)."""
    return spec.devices > len(jax.local_devices())


def exact_blocks(problem: Any) -> bool:
    """Whether ``problem``'s runs are always computed in blocks of exactly the block size: a run
    judged by its loss, of a problem with more than one parameter, or of a user's loss. Their
    transcendentals (vectorised and scalar code differ in the last bit), matrix products and
    reductions (XLA's CPU kernels are chosen by the batch width) would otherwise round by how many
    runs share the batch; a built-in scalar problem's runs are elementwise, the same in any batch
    of whole vectors (see gdlab._sweep_plan.cpu_block)."""
    return (not isinstance(problem, WithOptimum) or isinstance(problem, Bindable)
            or math.prod(problem.param_shape) > 1)


def chunk_runs(problem: Any, n: int, chunk_size: int, *, block: int | None,
               devices: int) -> tuple[int, int | None]:
    """(runs a chunk simulates, padding included; the block size, None: one vmap) for ``n`` runs
    asked in chunks of ``chunk_size``: each device's share rounded up to whole blocks, or to whole
    vectors of ``LANES`` runs."""
    chunk = max(1, min(int(chunk_size), n))
    per_device = -(-chunk // devices)
    if block is not None and (per_device > block or exact_blocks(problem)):
        per_device = -(-per_device // block) * block
    else:
        block = None
        # Whole vectors of runs: LLVM vectorizes a loop or not depending on its trip count, and
        # vector and scalar code may fuse multiply-adds differently, so an odd batch size could
        # change the last bits of a run (and so a shard would differ from the whole sweep).
        per_device = -(-per_device // LANES) * LANES
    return per_device * devices, block


def _layout(problem: Any, hparams: dict, n: int, chunk_size: int, *, block: int | None,
            devices: int, make_optimizer: Callable, steps: int, unroll: int,
            record_every: int | None, batched_fields: frozenset,
            statistics: bool) -> tuple[int, ChunkSpec]:
    """Chunk size (a multiple of devices × block) and the spec of the chunk program."""
    chunk, block = chunk_runs(problem, n, chunk_size, block=block, devices=devices)
    fields = getattr(problem, "_fields", ())
    spec = ChunkSpec(
        make_optimizer=make_optimizer, steps=int(steps), unroll=int(unroll),
        record_every=record_every, block=block,
        p_axes=tuple(0 if f in batched_fields else None for f in fields),
        h_axes=tuple(sorted((k, 0 if k in batched_fields else None) for k in hparams)),
        devices=int(devices), statistics=bool(statistics), backend=jax.default_backend(),
        x64=bool(jax.config.jax_enable_x64), mode=_fast_path_mode())
    return chunk, spec


def chunk_program(problem: Any, hparams: dict, w0: Any, r: Any, tol: float, *,
                  make_optimizer: Callable, steps: int, unroll: int = 1,
                  record_every: int | None = None, block: int | None = None,
                  batched_fields: frozenset = frozenset(), devices: int = 1,
                  statistics: bool = True) -> tuple[jax.stages.Compiled, float]:
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
