"""One sweep over several processes or hosts: the ``jax.distributed`` set-up.

After :func:`initialize`, ``jax.devices()`` lists the devices of every process (process by
process) and ``jax.local_devices()`` this process's own. A sweep with ``devices="all"`` then runs
each chunk on one global 1-D mesh over all of them: every process builds the same host chunk,
places only its own shards (its slice of the runs), simulates them, and the results are gathered
back so that every process holds the whole sweep (:mod:`gdlab.engine._simulate`). Every process
must make the same calls in the same order (SPMD); only process 0 writes run directories
(:func:`is_writer`, checked by :func:`gdlab.rundir.write_run`).

From a research script, on every process::

    import gdlab.distributed
    gdlab.distributed.initialize()        # from SLURM / Open MPI, or coordinator=..., ...
    res = gdlab.sweep(problem, alphas, ..., devices="all")   # identical on every process
    if gdlab.distributed.is_writer():
        ...                                                   # save, print

``initialize`` must run before anything else uses JAX in the process (before the first array,
``jax.devices()`` included): JAX reads the cluster when it starts its backends.
"""

from __future__ import annotations

import numbers
import sys

from gdlab.errors import ArgumentError, GdlabError, one_line

__all__ = ["DistributedError", "MAX_PROCESSES", "check_cluster", "initialize", "process_index",
           "process_count",
           "is_writer"]


class DistributedError(GdlabError):
    """``jax.distributed`` could not start (no cluster found, JAX already started, …)."""


_ARGUMENTS = ("coordinator", "num_processes", "process_id")
# JAX's coordinator keeps state per process and grows by about 0.2 kB a process a second while it
# waits for them (measured: 176 MB for 65536 processes after 10 s, 379 MB for 10⁶, and a machine's
# whole memory for 10⁹): more than one process per accelerator of the largest clusters is a typo.
MAX_PROCESSES = 65536


def check_cluster(coordinator: str | None, num_processes: int | None, process_id: int | None, *,
                  names: tuple[str, str, str] = _ARGUMENTS) -> tuple[str, int, int] | None:
    """The explicit cluster (``"HOST:PORT"``, N, I) checked, or None when none of the three is
    given (JAX then detects the cluster: SLURM, Open MPI, …). All three or none; the port in
    1..65535, 1 ≤ N ≤ ``MAX_PROCESSES``, 0 ≤ I < N. A bad one raises ArgumentError naming it as
    ``names`` does (the command line passes its option names)."""
    given = dict(zip(_ARGUMENTS, (coordinator, num_processes, process_id)))
    name = dict(zip(_ARGUMENTS, names))
    if all(v is None for v in given.values()):
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ArgumentError(name[missing[0]], f"missing: {', '.join(names[:2])} and {names[2]} "
                                              "go together (or none of them, to let JAX detect "
                                              "the cluster: SLURM, Open MPI)")
    host, _, port = str(coordinator).rpartition(":")
    if not host or not port.isdecimal() or not 1 <= int(port) <= 65535:
        raise ArgumentError(name["coordinator"], f"{coordinator!r} must be HOST:PORT with a port "
                                                 "in 1..65535, e.g. 10.0.0.1:12345")
    for key, low in (("num_processes", 1), ("process_id", 0)):
        v = given[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ArgumentError(name[key], f"{v!r} must be an integer >= {low}")
    if num_processes > MAX_PROCESSES:
        raise ArgumentError(name["num_processes"], f"{num_processes} processes is more than "
                                                   f"gdlab starts ({MAX_PROCESSES}, one per "
                                                   "accelerator of the largest clusters); give "
                                                   "the number of processes you launch")
    if process_id >= num_processes:
        raise ArgumentError(name["process_id"], f"{process_id} must be below "
                                                f"{name['num_processes']} ({num_processes}): "
                                                f"the ids are 0..{num_processes - 1}")
    return str(coordinator), int(num_processes), int(process_id)


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Start ``jax.distributed`` for this process: from the environment (JAX's cluster detection:
    SLURM, Open MPI, …) when no argument is given, else as process ``process_id`` of
    ``num_processes`` with the coordinator (process 0's host) at ``"HOST:PORT"``.

    CPU backends exchange data with gloo collectives (unless ``jax_cpu_collectives_implementation``
    is set to "mpi"). A second call is a no-op. Call it before any other JAX use in the process;
    it returns once every process has joined (JAX's time-out: 5 minutes).
    """
    cluster = check_cluster(coordinator, num_processes, process_id)
    import jax
    if jax.distributed.is_initialized():
        return
    if _backends_started():   # JAX would refuse too, in words that may change
        raise DistributedError(f"jax.distributed cannot start: {_TOO_LATE}")
    if jax.config.jax_cpu_collectives_implementation != "mpi":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {} if cluster is None else dict(zip(
        ("coordinator_address", "num_processes", "process_id"), cluster))
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        hint = (_TOO_LATE if "before any JAX" in str(e) else   # where _backends_started is None
                "outside a cluster job (SLURM, Open MPI) give the coordinator's HOST:PORT, the "
                "number of processes and this process's id (gdlab run --coordinator HOST:PORT "
                "--num-processes N --process-id I)" if cluster is None else
                "check that every process uses the same coordinator and number of processes")
        raise DistributedError(f"jax.distributed did not start ({one_line(e)}); {hint}") from None


_TOO_LATE = ("JAX had already started in this process (an array, a compiled function or "
             "jax.devices()): initialize before any other JAX use")


def _backends_started() -> bool | None:
    """Have JAX's backends started in this process? That is what ``jax.distributed.initialize``
    checks first (it cannot join a cluster after). JAX has no public question for it (asking for
    the devices starts them), so its private ``jax._src.xla_bridge.backends_are_initialized``
    answers; None where a JAX lacks it (``initialize`` then reads JAX's error)."""
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:
        return None
    return backends_are_initialized()


def _started():
    """jax, if ``jax.distributed`` has started in this process (by gdlab or by the user), else
    None: asking JAX otherwise would start its backends."""
    jax = sys.modules.get("jax")
    return jax if jax is not None and jax.distributed.is_initialized() else None


def process_index() -> int:
    """This process's index (0 without ``jax.distributed``)."""
    jax = _started()
    return 0 if jax is None else jax.process_index()


def process_count() -> int:
    """How many processes take part (1 without ``jax.distributed``)."""
    jax = _started()
    return 1 if jax is None else jax.process_count()


def is_writer() -> bool:
    """Does this process write files and print results? Process 0 only."""
    return process_index() == 0
