"""Helpers for the fast-path tests: run a sweep on a chosen engine path and compare results."""

import contextlib

import numpy as np

import gdlab
from gdlab import engine

P = gdlab.problems.scalar_regression(1.0, 100.0)
FIELDS = ("regime", "steps_to_tol", "flips", "diverged_at", "contraction", "final_error",
          "max_error", "growth", "w_final")


@contextlib.contextmanager
def fast_path(mode):
    """Everything inside runs on ``mode`` ("never": the per-step loop, the reference)."""
    try:
        engine.FAST_PATH[0] = mode
        yield
    finally:
        engine.FAST_PATH[0] = "auto"


def both(problem=P, mode="auto", **kw):
    """The sweep on ``mode`` and on the per-step loop: (fast, slow)."""
    kw.setdefault("progress", False)
    kw.setdefault("recurrence", None)   # measured wherever it is defined: the paths compare it too
    with fast_path("never"):
        slow = gdlab.sweep(problem, **kw)
    with fast_path(mode):
        return gdlab.sweep(problem, **kw), slow


def assert_same(fast, slow):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(fast, f), getattr(slow, f), err_msg=f)
    # XLA may fuse |r|·|e_t| into a multiply-add in one program and not in the other: the
    # deviation then moves by at most ½ ulp(|r||e_t|)/scale ≤ eps/2 (scale ≥ |r||e_t|), plus the
    # rounding of the division. Everything else is bit-identical.
    eps = np.finfo(fast.w_final.dtype).eps
    assert (fast.recurrence_dev is None) == (slow.recurrence_dev is None)
    if fast.recurrence_dev is not None:
        np.testing.assert_allclose(fast.recurrence_dev, slow.recurrence_dev, rtol=0, atol=eps)
