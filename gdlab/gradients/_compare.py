"""One comparison of a claimed gradient with a reference, entry by entry, norm-wise.

:func:`_compare` passes when every |g_i − e_i| ≤ rtol·‖e‖∞ + allow_i, and otherwise names the worst
entry and, where it can, the likely mistake (a sign, a constant factor, a transpose, a missing
term).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Comparison"]


class Comparison(NamedTuple):
    against: str             # "autodiff" or "finite differences (float64)"
    passed: bool
    max_abs_err: float       # max_i |g_i − e_i|
    max_rel_err: float       # max_abs_err / ‖e‖∞ (norm-wise relative error)
    rtol: float
    fd_error: float          # max per-entry FD error allowance (0 for autodiff)
    worst_index: tuple[int, ...]
    expected: float          # e at the worst entry
    got: float               # g at the worst entry
    n_bad: int               # entries outside tolerance
    n_total: int
    message: str


def _hint(got: np.ndarray, exp: np.ndarray) -> str:
    """Name the likely mistake when got is a constant multiple or the transpose of exp."""
    if not np.all(np.isfinite(got)):
        return "grad_f returned non-finite values; compute it in a numerically stable form"
    scale = max(np.max(np.abs(got)), np.max(np.abs(exp)), np.finfo(np.float64).tiny)
    close = lambda a, b: np.max(np.abs(a - b)) <= 1e-3 * scale  # noqa: E731
    if got.ndim == 2 and got.shape[0] == got.shape[1] > 1 and close(got, exp.T):
        return ("got ≈ expectedᵀ: a transpose is missing or extra "
                "(e.g. x(z − y)ᵀ instead of (z − y)xᵀ)")
    ee = float(np.sum(exp * exp))
    c = float(np.sum(got * exp)) / ee if ee > 0 else 0.0
    if ee > 0 and close(got, c * exp):
        if abs(c + 1) < 1e-3:
            return "got ≈ −expected: the sign is wrong"
        if abs(c) < 1e-3:
            return "got ≈ 0 where expected is not: a term is missing"
        return (f"got ≈ {c:.4g} × expected: a constant factor is off "
                "(e.g. a missing or extra 2, ½ or 1/m)")
    return "not a constant multiple or a transpose of the expected gradient: re-check each term"


def _compare(against: str, got: np.ndarray, exp: np.ndarray, rtol: float, tiny: float,
             allow: Any = 0.0) -> Comparison:
    """Norm-wise: |g_i − e_i| ≤ rtol·max(‖e‖∞, tiny) + allow_i, tiny = the dtype's smallest
    normal."""
    finite = np.isfinite(exp)
    diff = np.abs(got - exp)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    scale = max(float(np.max(np.abs(exp), where=finite, initial=0.0)), tiny)
    tol = rtol * scale + np.broadcast_to(allow, diff.shape)
    bad = ~(diff <= tol) | ~finite
    passed = not bad.any()
    worst = np.unravel_index(
        int(np.argmax(diff if passed else np.where(finite, diff - tol, np.inf))), diff.shape)
    max_abs = float(np.max(diff))
    rel = max_abs / scale
    e, g = float(exp[worst]), float(got[worst])
    if passed:
        msg = f"matches {against}: max rel err {rel:.2g} ≤ {rtol:g}"
    elif not finite.all():
        msg = (f"{against} is not finite at {list(map(int, worst))} ({e}): f is not differentiable "
               "there in floating point (e.g. an overflowing branch inside jnp.where), so it "
               "cannot be the reference")
    else:
        msg = (f"differs from {against} in {int(bad.sum())} of {bad.size} entries; worst at "
               f"{list(map(int, worst))}: expected {e:.6g}, got {g:.6g} (max rel err {rel:.2g} > "
               f"{rtol:g}); hint: {_hint(got, exp)}")
    return Comparison(against, passed, max_abs, rel, rtol, float(np.max(allow)),
                      tuple(map(int, worst)), e, g, int(bad.sum()), int(bad.size), msg)
