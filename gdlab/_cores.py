"""Every CPU core as a JAX device, by default, in the command line and in the Python API.

XLA:CPU runs one compiled program on one thread per device (the engine's tile kernels are loops
with no intra-op parallelism), so a sweep uses every core only when each core is a device of its
own: ``jax_num_cpu_devices`` = the cores this process may run on. JAX reads that setting once,
when its backends start (the first JAX operation of the process).

Where gdlab sets it: in one place, ``import gdlab`` (which every ``import gdlab.…`` runs first),
through :func:`use_every_core`. If JAX is imported already it is set at once; else right after JAX's
own import, whoever imports it (:class:`_AfterJaxImport`) — gdlab's engine, a network, a custom
loss, ``gdlab.eos``, or the program itself. Backends cannot start before JAX is imported, so no
route into JAX comes first; and ``import gdlab`` itself stays free of JAX (the ``gdlab`` command
handles Ctrl-C from its first moment, and ``gdlab list`` never loads JAX).

What it costs a program that uses JAX itself: ``jax.devices()`` lists one CPU device per core
instead of one; arrays are still created on device 0, so single-device code runs as before, while
``jax.pmap`` or a mesh over ``jax.devices()`` spans every core. It is left alone where the user
chose — ``JAX_NUM_CPU_DEVICES`` or an ``XLA_FLAGS`` device count in the environment, or
``jax.config.update("jax_num_cpu_devices", n)`` (before gdlab is loaded, or any time before JAX
runs something: the user's update comes after gdlab's) — and where JAX has already run something
(the setting can no longer change; ``devices="all"`` is then the devices it has).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

__all__ = ["use_every_core", "available_cores"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def use_every_core() -> None:
    """Have ``jax_num_cpu_devices`` set to :func:`available_cores` (unless the user chose or JAX
    has started: see the module docstring): now if JAX is imported, else as soon as it is. Does
    not import JAX. Idempotent."""
    if "jax" in sys.modules:
        _set_device_count()
    elif not any(isinstance(f, _AfterJaxImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterJaxImport())


def _set_device_count() -> None:
    """``jax_num_cpu_devices`` = :func:`available_cores`, unless chosen or too late."""
    if "JAX_NUM_CPU_DEVICES" in os.environ or "device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    import jax
    if jax.config.jax_num_cpu_devices != -1:   # set by the program, or by an earlier call
        return
    try:
        jax.config.update("jax_num_cpu_devices", available_cores())
    except RuntimeError:   # JAX's backends have started: keep the devices they have
        pass


class _AfterJaxImport(importlib.abc.MetaPathFinder):
    """An import hook for ``jax`` alone: it finds JAX as the other finders would and has
    :func:`_set_device_count` run once JAX's own ``__init__`` has run (before any code can use
    JAX). It then leaves no trace: it is off ``sys.meta_path``, and JAX's module and spec hold
    JAX's own loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "jax":
            return None
        # Once only, and the search below must not find this hook again. A new list, not
        # list.remove: an import iterating the old one (this one's caller, another thread's)
        # must not skip a finder.
        sys.meta_path = [f for f in sys.meta_path if f is not self]
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenSetDeviceCount(spec.loader)
        return spec


class _ThenSetDeviceCount(importlib.abc.Loader):
    """JAX's loader, followed by :func:`_set_device_count`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader   # JAX as it always looks
        self.loader.exec_module(module)
        _set_device_count()
