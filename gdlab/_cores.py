"""Every CPU core as a JAX device, by default, in the command line and in the Python API.

XLA:CPU runs one compiled program on one thread per device (the engine's tile kernels are loops
with no intra-op parallelism), so a sweep uses every core only when each core is a device of its
own: ``jax_num_cpu_devices`` = the cores this process may run on. JAX reads that setting once,
when its backends start (the first JAX operation of the process), so gdlab sets it as early as it
can — when the ``gdlab`` command starts, and when a program first loads gdlab's engine or one of
its public names (``gdlab.sweep``, ``gdlab.problems``, …).

What it costs a program that uses JAX itself: ``jax.devices()`` lists one CPU device per core
instead of one; arrays are still created on device 0, so single-device code runs as before, while
``jax.pmap`` or a mesh over ``jax.devices()`` spans every core. It is left alone where the user
chose — ``JAX_NUM_CPU_DEVICES`` or an ``XLA_FLAGS`` device count in the environment, or
``jax.config.update("jax_num_cpu_devices", n)`` before gdlab is loaded — and where JAX has already
run something (the setting can no longer change; ``devices="all"`` is then the devices it has).
"""

from __future__ import annotations

import os

__all__ = ["use_every_core", "available_cores"]

_DONE = [False]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def use_every_core() -> None:
    """Set ``jax_num_cpu_devices`` to :func:`available_cores` unless the user chose or JAX has
    started (see the module docstring). Idempotent; imports JAX."""
    if _DONE[0]:
        return
    _DONE[0] = True
    if "JAX_NUM_CPU_DEVICES" in os.environ or "device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    import jax
    if jax.config.jax_num_cpu_devices != -1:   # set by the program before gdlab was loaded
        return
    try:
        jax.config.update("jax_num_cpu_devices", available_cores())
    except RuntimeError:   # JAX's backends have started: keep the devices they have
        pass
