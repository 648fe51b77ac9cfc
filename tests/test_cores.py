"""Every CPU core is a JAX device by default — in the Python API as in the command line — unless
the program chose, or JAX had already started (gdlab._cores). Each case in a fresh process: JAX
reads the setting once, when its backends start."""

import os
import subprocess
import sys

import pytest

# Each program prints: CPU devices, available cores, and the devices a default sweep used.
_SWEEP = ("res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), [0.5, 1.5, 2.5], "
          "steps=20); import jax, os; "
          "print(len(jax.devices()), len(os.sched_getaffinity(0)), res.regime.tolist())")
CASES = {
    # the public API, nothing configured: one device per core
    "api": ("import gdlab; " + _SWEEP, {}, "cores"),
    # the engine imported directly (not through gdlab's lazy names)
    "engine first": ("import gdlab.engine, gdlab; " + _SWEEP, {}, "cores"),
    # the user's choice, in the environment or in JAX's config before gdlab is loaded, stands
    "environment": ("import gdlab; " + _SWEEP, {"JAX_NUM_CPU_DEVICES": "1"}, 1),
    "config": ("import jax; jax.config.update('jax_num_cpu_devices', 3); import gdlab; " + _SWEEP,
               {}, 3),
    # JAX already ran something: the setting cannot change; the sweep uses what there is
    "started": ("import jax; jax.numpy.ones(1).block_until_ready(); import gdlab; " + _SWEEP,
                {}, 1),
}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs os.sched_getaffinity")
def test_every_core_is_a_device_unless_the_program_chose():
    base = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    procs = {name: subprocess.Popen([sys.executable, "-c", code], text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={**base, "JAX_PLATFORMS": "cpu", **env})
             for name, (code, env, _) in CASES.items()}
    for name, p in procs.items():
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, (name, err)
        devices, cores, regimes = out.split(maxsplit=2)
        expected = CASES[name][2]
        assert int(devices) == (int(cores) if expected == "cores" else expected), name
        # converging monotone / oscillating, diverging oscillating: the same on any device count
        assert regimes.strip() == "[0, 1, 3]", name
