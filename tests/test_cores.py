"""Every CPU core is a JAX device by default — in the Python API as in the command line, whichever
gdlab module is imported first — unless the program chose, or JAX had already started
(gdlab._cores). Each case in a fresh process (JAX reads the setting once, when its backends start)
pinned to two cores, so that "every core" (2) differs from JAX's default (1 device) and from the
user's choices below (1, 3) on any machine."""

import os
import subprocess
import sys

import pytest

AFFINITY = hasattr(os, "sched_getaffinity")
TWO_CORES = sorted(os.sched_getaffinity(0))[:2] if AFFINITY else []
_PIN = f"import os; os.sched_setaffinity(0, {TWO_CORES}); "
# Each program prints the CPU devices and the regimes of a default sweep.
_SWEEP = ("res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), [0.5, 1.5, 2.5], "
          "steps=20); import jax; print(len(jax.devices()), res.regime.tolist())")
CASES = {
    # the public API, nothing configured: one device per core
    "api": ("import gdlab; " + _SWEEP, {}, 2),
    # a submodule imported directly (not through gdlab's lazy names) starts JAX first
    "engine first": ("import gdlab.engine, gdlab; " + _SWEEP, {}, 2),
    "network first": ("from gdlab.networks import mlp; mlp(); import gdlab; " + _SWEEP, {}, 2),
    # the user's choice, in the environment or in JAX's config (before gdlab is loaded, or after,
    # before JAX runs anything), stands
    "environment": ("import gdlab; " + _SWEEP, {"JAX_NUM_CPU_DEVICES": "1"}, 1),
    "config": ("import jax; jax.config.update('jax_num_cpu_devices', 3); import gdlab; " + _SWEEP,
               {}, 3),
    "config after": ("import gdlab, jax; jax.config.update('jax_num_cpu_devices', 3); " + _SWEEP,
                     {}, 3),
    # JAX already ran something: the setting cannot change; the sweep uses what there is
    "started": ("import jax; jax.numpy.ones(1).block_until_ready(); import gdlab; " + _SWEEP,
                {}, 1),
}


@pytest.mark.skipif(len(TWO_CORES) < 2, reason="needs os.sched_getaffinity and two cores")
def test_every_core_is_a_device_unless_the_program_chose():
    base = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    procs = {name: subprocess.Popen([sys.executable, "-c", _PIN + code], text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={**base, "JAX_PLATFORMS": "cpu", **env})
             for name, (code, env, _) in CASES.items()}
    for name, p in procs.items():
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, (name, err)
        devices, regimes = out.split(maxsplit=1)
        assert int(devices) == CASES[name][2], name
        # converging monotone / oscillating, diverging oscillating: the same on any device count
        assert regimes.strip() == "[0, 1, 3]", name
