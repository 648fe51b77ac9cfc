"""The CPU fast path (tiles of steps, packed state) reproduces the per-step engine."""

import numpy as np
import pytest

import gdlab
from gdlab import engine

P = gdlab.problems.scalar_regression(1.0, 100.0)
FIELDS = ("regime", "steps_to_tol", "flips", "diverged_at", "contraction", "final_error",
          "max_error", "growth", "recurrence_dev", "w_final")


def both(**kw):
    try:
        engine.FAST_PATH[0] = "never"
        slow = gdlab.sweep(P, **kw)
    finally:
        engine.FAST_PATH[0] = "cpu"
    return gdlab.sweep(P, **kw), slow


@pytest.mark.parametrize("steps", [1, 7, 50, 999, 1000])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_descent_bit_identical(steps, dtype):
    fast, slow = both(alphas=np.linspace(-0.2, 3.2, 3001), steps=steps, tol=1.0, dtype=dtype)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(fast, f), getattr(slow, f), err_msg=f)


def test_momentum_same_regimes_and_freezes():
    # Stateful optimizers may contract a multiply-add differently: last-bit differences in w, so
    # compare what the results are made of, not bits.
    kw = dict(alphas=np.linspace(0.0, 4.0, 201), optimizer="momentum", over={"beta": [0.0, 0.5, 0.9]},
              steps=300, tol=1.0)
    fast, slow = both(**kw)
    np.testing.assert_array_equal(fast.diverged_at, slow.diverged_at)
    assert np.mean(fast.regime == slow.regime) >= 0.995
    assert np.mean(fast.steps_to_tol == slow.steps_to_tol) >= 0.995
    np.testing.assert_allclose(fast.w_final, slow.w_final, rtol=1e-5, atol=1e-5)


def test_out_of_scope_runs_use_the_per_step_loop():
    from gdlab import tiled
    assert not tiled.eligible(np.zeros(3, np.float32), 100, None, True, P)        # vector w
    assert not tiled.eligible(np.float32(0), 100, 5, True, P)                     # snapshots
    assert not tiled.eligible(np.float32(0), 5000, None, True, P)                 # (T+2)² ≥ 2²⁴
    assert tiled.eligible(np.float64(0), 5000, None, True, P)
