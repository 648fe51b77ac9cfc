"""One comparison of a claimed gradient with a reference, entry by entry, norm-wise.

:func:`_compare` passes when every |g_i − e_i| ≤ tol_i = rtol·‖e‖∞ + allow_i, and otherwise names
the worst entry and what is wrong (:func:`_diagnose`). Every explanation the diagnosis offers is
tested with the check's own per-entry tolerance tol_i, so it is as certain as the verdict itself:

- g = c·e for one c ≠ 1 (c fitted by least squares, c = ⟨g, e⟩/⟨e, e⟩): |g_i − c·e_i| ≤ |c|·tol_i
  for every i (g/c would pass), with at least two entries that fail — one entry fits any c, so a
  fitted factor needs a second witness. c = −1 is a sign flip, c = 0 a missing term (|g_i| ≤ tol_i).
- g = eᵀ for a square, non-symmetric e: |g_i − eᵀ_i| ≤ tolᵀ_i everywhere.
- a few wrong entries: the failing entries are at most half of the non-zero ones (|e_i| or |g_i|
  above tol_i; entries where both are 0 are no evidence either way). A wrong formula agrees with the
  right one, to rtol ≤ 1e-5, only by coincidence, so a majority of matching entries says the formula
  is right but for those positions (an index slip, a term that applies to some entries only).
- anything else is disagreement without a pattern: re-check each term.
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
    n_nonzero: int           # entries with |e_i| > tol_i: where a sign or factor error would show
    message: str


_SHOWN = 3  # wrong entries named by index, worst first


def _fmt_factor(c: float) -> str:
    """c with enough digits to tell it from ±1 (1.00003, not 1)."""
    gap = abs(abs(c) - 1)
    digits = 4 if gap >= 1e-3 else 2 + int(np.ceil(-np.log10(max(gap, 1e-16))))
    return f"{c:.{digits}g}"


def _fmt_percent(r: float) -> str:
    """0.001 -> '0.1 %'."""
    return f"{100 * abs(r):.2g} %"


def _factor_hint(got: np.ndarray, exp: np.ndarray, tol: np.ndarray, n_bad: int) -> str | None:
    """A sign flip, a missing term (g ≈ 0) or one constant factor c ≠ 1, each within tolerance."""
    if np.all(np.abs(got + exp) <= tol):
        return "got ≈ −expected: the sign is wrong"
    if np.all(np.abs(got) <= tol):
        return "got ≈ 0 where expected is not: a term is missing"
    ee = float(np.sum(exp * exp))
    c = float(np.sum(got * exp)) / ee if ee > 0 else 0.0
    if n_bad >= 2 and c != 0 and np.all(np.abs(got - c * exp) <= abs(c) * tol):
        return (f"got ≈ {_fmt_factor(c)} × expected: a constant factor is off, in every entry "
                "(e.g. a missing or extra 2, ½ or 1/m)")
    return None


def _index_list(bad: np.ndarray, excess: np.ndarray) -> str:
    """The failing entries' indices, worst (largest excess over tolerance) first, at most _SHOWN."""
    flat = np.flatnonzero(bad.ravel())
    order = flat[np.argsort(-excess.ravel()[flat], kind="stable")][:_SHOWN]
    idx = ", ".join(str(list(map(int, np.unravel_index(i, bad.shape)))) for i in order)
    return idx + (", …" if flat.size > _SHOWN else "")


def _diagnose(got: np.ndarray, exp: np.ndarray, tol: np.ndarray, bad: np.ndarray) -> str:
    """What is wrong with got (see the module docstring for the tests and their thresholds)."""
    if not np.all(np.isfinite(got)):
        return "grad_f returned non-finite values; compute it in a numerically stable form"
    n_bad = int(bad.sum())
    factor = _factor_hint(got, exp, tol, n_bad)
    if factor:
        return factor
    if (got.ndim == 2 and got.shape[0] == got.shape[1] > 1
            and np.all(np.abs(got - exp.T) <= tol.T)):
        return ("got ≈ expectedᵀ: a transpose is missing or extra "
                "(e.g. x(z − y)ᵀ instead of (z − y)xᵀ)")
    nonzero = int(np.sum((np.abs(exp) > tol) | (np.abs(got) > tol)))
    excess = np.abs(got - exp) - tol
    where = _index_list(bad, excess)
    if 2 * n_bad <= nonzero:
        k = np.unravel_index(int(np.argmax(np.where(bad, excess, -np.inf))), got.shape)
        off = (f", the worst off by {_fmt_percent(got[k] / exp[k] - 1)} of its value"
               if exp[k] != 0 else "")
        return (f"{n_bad} of {got.size} entries wrong (at {where}{off}), the other "
                f"{nonzero - n_bad} non-zero entries match: the formula is right except there "
                "(an index slip, or a term that belongs to those entries only)")
    if nonzero == 1:
        return ("the only non-zero entry is wrong; one entry cannot tell a constant factor from a "
                "wrong term: re-check each term")
    return (f"not a constant multiple or a transpose of the expected gradient, and {n_bad} of "
            f"{nonzero} non-zero entries are wrong (at {where}): re-check each term")


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
    n_nonzero = int(np.sum(np.abs(np.where(finite, exp, 0.0)) > tol))
    if passed:
        msg = f"matches {against}: max rel err {rel:.2g} ≤ {rtol:g}"
    elif not finite.all():
        msg = (f"{against} is not finite at {list(map(int, worst))} ({e}): f is not differentiable "
               "there in floating point (e.g. an overflowing branch inside jnp.where), so it "
               "cannot be the reference")
    else:
        msg = (f"differs from {against} in {int(bad.sum())} of {bad.size} entries; worst at "
               f"{list(map(int, worst))}: expected {e:.6g}, got {g:.6g} (max rel err {rel:.2g} > "
               f"{rtol:g}); diagnosis: {_diagnose(got, exp, tol, bad)}")
    return Comparison(against, passed, max_abs, rel, rtol, float(np.max(allow)),
                      tuple(map(int, worst)), e, g, int(bad.sum()), int(bad.size), n_nonzero, msg)


def _not_compared(against: str, rtol: float, size: int, message: str) -> Comparison:
    """A failed comparison that could not be made (a gradient of a shape in no layout)."""
    nan = float("nan")
    return Comparison(against, False, nan, nan, rtol, 0.0, (), nan, nan, size, size, 0, message)
