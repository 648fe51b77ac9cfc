"""A run whose gradient is subnormal is flagged "underflow", not compared.

A CPU flushes subnormal numbers to zero (XLA's default), so a step whose residual x·e, gradient
x²·e or update α·x²·e falls below the smallest normal number computes a zero update and the run
stops, although r = 1 − αx² is an ordinary number: float32, x = 3e-20, y = 3e-19 (w* = 10),
α = 3e38 gives r = 0.73, and the closed form reaches tol = 1 at t = 8, while x²·|e₀| = 9e-39 is
flushed and the run stalls at w₀. Theory flagged only |w*| + |e₀| near the threshold, so it
predicted 8 steps, unflagged, and the agreement fell to 0 (found by an audit against NumPy).

The references: the products in float64 against ``np.finfo(dtype).tiny``, the closed form
|e_t| = |r|^t·|e₀|, and NumPy's own float32 iteration, which keeps subnormals and converges.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdlab
from gdlab import theory


def _numpy_steps_to_tol(x, y, alpha, steps, tol, dtype):
    """First t with |w_t − w*| < tol for w ← w − α·x(xw − y) in NumPy's ``dtype`` (subnormals
    kept), −1 if never within ``steps``."""
    x, y, alpha = dtype(x), dtype(y), dtype(alpha)
    w, w_star = dtype(0.0), y / x
    with np.errstate(under="ignore"):
        for t in range(1, steps + 1):
            w = w - alpha * (x * (x * w - y))
            if abs(w - w_star) < tol:
                return t
    return -1


@pytest.mark.parametrize("dtype,x,y,alpha", [
    ("float32", 3e-20, 3e-19, 3e38),     # x²|e₀| = 9e-39 < 1.2e-38 from the first step
    ("float32", 3e-20, 3e-19, 1e38),
    ("float64", 1e-154, 1e-153, 1e307),  # x²|e_t| passes 2.2e-308 once |e_t| < 2.2, before tol 1
])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_a_subnormal_gradient_is_flagged(dtype, x, y, alpha, optimizer):
    fi = np.finfo(dtype)
    lam = float(fi.dtype.type(x)) ** 2
    assert lam * 1.0 < fi.tiny                 # the gradient at |e| = 1 (= tol) is subnormal
    r = 1.0 - float(fi.dtype.type(alpha)) * lam
    assert 0 < r < 1                           # an ordinary contraction for the closed form
    hp = {"beta": 0.5} if optimizer == "momentum" else None
    res = gdlab.sweep(gdlab.problems.scalar_regression(x=x, y=y), [alpha], w0=0.0, steps=200,
                      tol=1.0, dtype=dtype, optimizer=optimizer, hparams=hp, progress=False)
    pred = theory.predict(res)
    assert pred.why["underflow"][0], {k: bool(v[0]) for k, v in pred.why.items()}
    if optimizer == "sgd":
        # The closed form and NumPy (subnormals kept) converge; the CPU simulation does not.
        closed = next(t for t in range(201) if abs(r) ** t * 10.0 < 1.0)
        assert pred.steps_to_tol[0] == closed
        assert _numpy_steps_to_tol(x, y, alpha, 200, 1.0, fi.dtype.type) == closed
        assert res.steps_to_tol[0] == -1


def test_ordinary_runs_are_not_flagged_underflow():
    # The homework's sweep and a momentum map at w* = 0 (errors decay towards 0, but reach tol
    # long before any gradient term nears 1.2e-38): no run is flagged for underflow.
    p = gdlab.problems.scalar_regression(1.0, 100.0)
    res = gdlab.sweep(p, np.linspace(-0.5, 3.0, 351), w0=0.0, steps=200, tol=1e-3,
                      progress=False)
    assert not theory.predict(res).why["underflow"].any()
    z = gdlab.problems.scalar_regression(1.0, 0.0)
    res = gdlab.sweep(z, np.linspace(0.05, 3.5, 70), w0=-100.0, steps=400, tol=1e-6,
                      optimizer="momentum", over={"beta": np.linspace(0.0, 0.9, 10)},
                      progress=False)
    why = theory.predict(res).why
    assert not why["underflow"].any()
