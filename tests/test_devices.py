"""Several devices: the run axis sharded over 4 CPU devices gives the single-device results.

JAX fixes its device count at start-up, so the sharded sweep runs in its own process with
JAX_NUM_CPU_DEVICES=4 and writes its arrays for this process to compare.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import gdlab

SCRIPT = """
import sys, numpy as np, jax, gdlab
assert len(jax.devices()) == 4, jax.devices()
p = gdlab.problems.scalar_regression(1.0, 100.0)
before = gdlab.engine.compile_count()
res = gdlab.sweep(p, np.linspace(0.0, 3.0, 3001), steps=200, tol=1.0, devices="all", chunk_size=96)
res2 = gdlab.sweep(p, np.linspace(0.1, 2.9, 3001), steps=200, tol=1.0, devices=4, chunk_size=96)
q = gdlab.problems.quadratic(dim=4, seed=0)
resq = gdlab.sweep(q, np.linspace(0.0, 2.5, 37), over={"kappa": [1.0, 10.0, 100.0]}, steps=150,
                   tol=1e-2, optimizer="momentum", hparams={"beta": 0.5}, devices=4)
np.savez(sys.argv[1], regime=res.regime, steps=res.steps_to_tol, w=res.w_final,
         regime_q=resq.regime, steps_q=resq.steps_to_tol,
         compiles=gdlab.engine.compile_count() - before)
"""


def test_four_devices_equal_one(tmp_path):
    out = tmp_path / "sharded.npz"
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="4", JAX_PLATFORMS="cpu")
    with subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        # The single-device sweeps meanwhile, here; the default grid of Q4
        # (configs/q4_alpha_sweep.toml), whose program other tests share.
        P = gdlab.problems.scalar_regression(1.0, 100.0)
        one = gdlab.sweep(P, np.linspace(0.0, 3.0, 3001), steps=200, tol=1.0)
        q = gdlab.problems.quadratic(dim=4, seed=0)
        oneq = gdlab.sweep(q, np.linspace(0.0, 2.5, 37), over={"kappa": [1.0, 10.0, 100.0]},
                           steps=150, tol=1e-2, optimizer="momentum", hparams={"beta": 0.5})
        _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    z = np.load(out, allow_pickle=False)
    np.testing.assert_array_equal(z["regime"], one.regime)
    np.testing.assert_array_equal(z["steps"], one.steps_to_tol)
    np.testing.assert_array_equal(z["w"], one.w_final)
    np.testing.assert_array_equal(z["regime_q"], oneq.regime)
    np.testing.assert_array_equal(z["steps_q"], oneq.steps_to_tol)
    # 3001 runs in chunks of 96 (the last one, of 25, padded): one program for the two scalar
    # sweeps, one for the quadratic.
    assert int(z["compiles"]) == 2


def test_device_count_errors():
    with pytest.raises(ValueError, match=r"devices: 0 must be \"all\" or an integer >= 1"):
        gdlab.sweep(gdlab.problems.scalar_regression(), [0.5], steps=3, devices=0)
    with pytest.raises(ValueError, match=r"devices: 64 requested but only \d cpu device"):
        gdlab.sweep(gdlab.problems.scalar_regression(), [0.5], steps=3, devices=64)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                    reason="needs two cores to tell every core from JAX's default of one device")
def test_the_command_line_gives_one_cpu_device_per_core():
    # `gdlab` (cli.main) exposes every available core as a CPU device unless the user chose
    # (JAX_NUM_CPU_DEVICES=1); both cases at once, in two processes pinned to two cores, so that
    # JAX's default (one device) fails the first. JAX is imported after the command has run.
    two = sorted(os.sched_getaffinity(0))[:2]
    code = (f"import os; os.sched_setaffinity(0, {two}); from gdlab import cli; "
            "cli.main(['run', '/no/such/config.toml']); import jax; print(len(jax.devices()))")
    base = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    cases = [({}, 2), ({"JAX_NUM_CPU_DEVICES": "1"}, 1)]
    procs = [subprocess.Popen([sys.executable, "-c", code], text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**base, "JAX_PLATFORMS": "cpu", **env})
             for env, _ in cases]
    for (env, expected), p in zip(cases, procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert int(out.split()[-1]) == expected, (env, out, err)
