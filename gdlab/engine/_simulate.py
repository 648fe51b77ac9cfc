"""The host side of the engine: N runs in chunks, each through one compiled program.

``simulate`` cuts the flat per-run inputs into chunks of a fixed size (the remainder padded with
copies of the last run, then cut off), so memory stays bounded and one compiled program
(:mod:`gdlab.engine._program`) serves every chunk; a chunk is dispatched while the host collects
the previous one. ``device_count`` checks the ``devices`` argument.

Under ``jax.distributed`` with every process's devices in the mesh (``devices="all"``), every
process runs this same code on the same host chunks. The host arrays go to the program as they
do on one process: JAX copies to each device only its own slice of the runs (so a process
transfers only its share, and no input crosses processes). The outputs are global arrays of which
a process holds its own shards; they are gathered (:func:`_gathered`, an all-gather) so that every
process gets the whole chunk's results, where one process fetches them with ``jax.device_get``.
"""

from __future__ import annotations

import numbers
import time
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils

from gdlab import progress as progress_lib
from gdlab.engine._common import Chunk, RunStats
from gdlab.engine._program import _compiled, _layout, spans_processes
from gdlab.errors import ArgumentError

__all__ = ["simulate", "Simulation", "device_count", "pad"]


def device_count(devices: int | str) -> int:
    """``"all"`` → every visible device (under ``jax.distributed``: every process's); a positive
    int → that many (checked: ArgumentError). Under ``jax.distributed`` a count is at most this
    process's devices (each process then simulates every run) or all of them."""
    if isinstance(devices, str) and devices == "all":
        return len(jax.devices())
    if (isinstance(devices, (bool, np.bool_)) or not isinstance(devices, numbers.Integral)
            or devices < 1):
        shown = devices if isinstance(devices, (str, numbers.Number)) else type(devices).__name__
        raise ArgumentError("devices", f"{shown!r} must be \"all\" or an integer >= 1")
    available, local = len(jax.devices()), len(jax.local_devices())
    if devices > available:
        raise ArgumentError("devices", f"{devices} requested but only {available} "
                                       f"{jax.default_backend()} device(s) are visible; use "
                                       f"\"all\" or at most {available}")
    if local < devices < available:
        raise ArgumentError("devices", f"{devices}: with {jax.process_count()} processes use "
                                       f"\"all\" ({available} devices) or at most this "
                                       f"process's {local}")
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


def simulate(problem: Any, hparams: dict, w0: np.ndarray, *, make_optimizer: Callable,
             steps: int, tol: float, r: np.ndarray | None = None, unroll: int = 1,
             record_every: int | None = None, chunk_size: int, block: int | None = None,
             batched_fields: frozenset = frozenset(), devices: int = 1,
             reduce: Callable | None = None, device_reduce: Callable | None = None,
             statistics: bool = True, progress: bool | None = None) -> Simulation:
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
    ``Simulation.parts``; stats and snapshots are then None. ``device_reduce(start, stop,
    outputs)``, if given, is applied first, to the chunk's outputs where they are (the device;
    padded to the chunk), and only what it returns is copied to the host.
    ``statistics=False`` runs the update and the freeze alone (the benchmark's floor).
    """
    n = int(w0.shape[0])
    chunk, spec = _layout(problem, hparams, n, chunk_size, block=block, devices=devices,
                          make_optimizer=make_optimizer, steps=steps, unroll=unroll,
                          record_every=record_every, batched_fields=batched_fields,
                          statistics=statistics)
    fields = getattr(problem, "_fields", ())
    h_axes = spec.hparam_axes()
    cut = lambda a, ax, start, stop: pad(np.asarray(a[start:stop]), chunk) if ax == 0 else a
    outputs, compile_s, path = [], 0.0, "loop"
    bar = progress_lib.Progress(total=n, enabled=progress, unit="runs", work_per_unit=steps)
    spans = spans_processes(spec)   # under jax.distributed: outputs gathered from every process

    def collect(start, stop, result, t_run):
        """Wait for a chunk, cut its padding and hand it to ``reduce`` (host work)."""
        out = jax.tree.map(lambda a: a[: stop - start],
                           _gathered(result) if spans else jax.device_get(result))
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
        if device_reduce is not None:   # still on the device, still dispatched
            result = device_reduce(start, stop, result)
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


def pad(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` (runs on the leading axis, at least one, at most ``size``) padded to ``size`` runs
    with copies of its last run: a chunk's remainder, so that one program serves every chunk."""
    if a.shape[0] == size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - a.shape[0], axis=0)])


def _gathered(result: Any) -> Any:
    """A chunk's outputs as whole host arrays in every process: a global array (each process
    holding its shards) is all-gathered over the processes, anything else fetched as it is."""
    return jax.tree.map(lambda a: multihost_utils.process_allgather(a, tiled=True)
                        if isinstance(a, jax.Array) and not a.is_fully_addressable
                        else jax.device_get(a), result)
