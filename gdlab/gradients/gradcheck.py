"""Check a hand-derived gradient three ways, and trace the shapes of its intermediates.

For f(*args) and a claimed gradient g = grad_f(*args) with respect to args[argnum] (the parameter
p):

1. autodiff, same dtype: g_ad = jax.grad(f) for a scalar f, jax.jacobian(f) otherwise. Passes when
   ‖g − g_ad‖∞ ≤ rtol·‖g_ad‖∞ (an atol scaled by the gradient's magnitude), rtol = 1e-5 in float32
   (~84 ulp) and 1e-12 in float64 (~4500 ulp): room for the rounding of sums of ~100 terms computed
   in a different order, and still 4-11 orders below the O(1) relative error of a wrong formula.
2. central finite differences in float64 (:mod:`gdlab.gradients._differences`), at the same point
   (the arguments as rounded to the check's dtype): every Jacobian entry (output i, parameter j)
   takes D(h) = (f_i(p + h e_j) − f_i(p − h e_j))/2h, 2h being the step actually taken, at the step
   of the ladder h_k = 10^k·h_0, k = 0..3, h_0 = ε^{1/3}·max(1, |p_j|) ≈ 6e-6·max(1, |p_j|), with
   the least estimated error
       e(h) = |D(h) − D(2h)| + 16ε_f(|f_i(p + h e_j)| + |f_i(p − h e_j)|)/2h
   (the truncation error, 3x its Richardson estimate, plus the rounding of f; ε is float64's
   machine epsilon, ε_f that of f's output; NaN counts as infinite). Passes when
   |g − D| ≤ fd_tol·‖D‖∞ + e per entry, with fd_tol = max(fd_rtol, rtol) and fd_rtol = 1e-6: four
   orders of margin over the ≈1e-10 expected FD error at h_0. When autodiff fails too and the
   differences agree with it, the FD failure says so.
3. shapes, traced (:mod:`gdlab.gradients._shapes`): jax.make_jaxpr(grad_f) lists every equation
   with its output shape; intermediates tagged with ``label`` are named. The result must be p's
   shape (scalar f), the Jacobian [out × p] (vector f; jax layout out.shape + p.shape also
   accepted), or p's shape for an elementwise f. Any other shape fails the check with the expected
   shapes and the trace (a wrong gradient is a failed check, never an exception); a 2-D gradient
   whose transpose has one of these shapes ("shape [3×4] expected [4×3]: transposed?") is also
   compared transposed, to say whether the transpose is all that is wrong.

A check also fails when f is not finite at the inputs, or when grad_f returns p's shape for a vector
f whose Jacobian is not diagonal (f is not elementwise). A check whose reference is 0 to within the
tolerance at every entry passes but says it is vacuous: a sign or factor error would pass too.

Matrix products run at "highest" precision (GPUs otherwise use ~1e-3-accurate float32 matmuls).
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdlab.errors import USER_CODE_ERRORS, ArgumentError
from gdlab.gradients._compare import Comparison, _compare, _not_compared
from gdlab.gradients._differences import _FD_ROUNDING, _central_differences
from gdlab.gradients._inputs import _hashable, _prepare, _require_callables
from gdlab.gradients._layouts import (
    _canonical_to_layout,
    _layout,
    _shape_problem,
    _transposed_layout,
)
from gdlab.gradients._shapes import ShapeStep, ShapeTrace, _arg_names, fmt_shape, trace_shapes
from gdlab.gradients.functions import label

__all__ = [
    "RTOL", "FD_RTOL", "label", "ShapeStep", "ShapeTrace", "trace_shapes", "Comparison",
    "GradCheckResult", "check_gradient", "fmt_shape",
]

RTOL: dict[str, float] = {"float32": 1e-5, "float64": 1e-12}
FD_RTOL: float = 1e-6


@dataclasses.dataclass(frozen=True)
class GradCheckResult:
    """Outcome of check_gradient; homework metadata (question, formula, ...) is empty for user
    checks."""

    name: str
    passed: bool
    dtype: str
    # "gradient" | "jacobian" | "jacobian (jax layout)" | "elementwise" | "wrong shape", or
    # "transposed <layout>" for a 2-D gradient whose transpose has that layout (a failed check)
    layout: str
    param: str                     # e.g. "w (argument 0)"
    param_shape: tuple[int, ...]
    output_shape: tuple[int, ...]  # shape of f(*args)
    grad_shape: tuple[int, ...]
    autodiff: Comparison
    finite_differences: Comparison
    shape_trace: ShapeTrace
    tolerances: str
    message: str
    question: str = ""
    formula: str = ""
    derivation: tuple[str, ...] = ()
    setting: str = ""

    def summary(self) -> str:
        """The message, the shape trace and both comparisons, one per line."""
        return (f"{self.message}\n  shapes: {self.shape_trace.short()}\n"
                f"  vs autodiff: {self.autodiff.message}\n"
                f"  vs FD: {self.finite_differences.message}")


class _Evaluated(NamedTuple):
    """What the check computes in its own dtype (:func:`_evaluate_in_dtype`)."""

    param: tuple[int, ...]   # p's shape
    out: tuple[int, ...]     # f's output shape
    trace: ShapeTrace        # grad_f's shapes
    layout: str              # grad_f's layout (see gdlab.gradients._layouts), or "wrong shape"
    shape_problem: str | None  # why grad_f's shape is wrong; None when it has a layout
    value: np.ndarray        # f(*args), as float64
    got: np.ndarray          # grad_f(*args), as float64 (transposed when that gives the layout)
    J_ad: np.ndarray         # the autodiff Jacobian [out.size × p.size], as float64


@partial(jax.jit, static_argnums=(0, 1, 2))
def _evaluate(f: Callable, grad_f: Callable, argnum: int,
              *args: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """f(*args), grad_f(*args) and the autodiff Jacobian [out.size × p.size]: jax.grad for a scalar
    f (output of size 1), jax.jacobian otherwise. One compiled program per (f, grad_f, shapes,
    dtypes)."""
    value = f(*args)
    if value.size == 1:
        J = jax.grad(lambda *a: jnp.reshape(f(*a), ()), argnums=argnum)(*args).reshape(1, -1)
    else:
        J = jax.jacobian(f, argnums=argnum)(*args).reshape(-1, args[argnum].size)
    return value, grad_f(*args), J


def _trace(f: Callable, grad_f: Callable, jargs: list, fname: str) -> tuple[tuple, ShapeTrace]:
    """f's output shape and grad_f's shape trace; ArgumentError where either fails to trace."""
    shapes = [fmt_shape(np.shape(a)) for a in jargs]
    try:
        out = tuple(jax.eval_shape(f, *jargs).shape)
    except USER_CODE_ERRORS as err:  # whatever the user's f raises
        raise ArgumentError("f", f"{fname}: f failed on arguments of shapes {shapes}: {err}",
                            prefix=False) from err
    try:
        trace = trace_shapes(grad_f, *jargs)
    except USER_CODE_ERRORS as err:  # whatever the user's grad_f raises
        raise ArgumentError("grad_f", f"{fname}: grad_f failed on arguments of shapes "
                            f"{shapes}: {err}", prefix=False) from err
    return out, trace


def _evaluate_in_dtype(f: Callable, grad_f: Callable, argnum: int, prepared: list, dt: str,
                       fname: str, pdesc: str) -> _Evaluated:
    """In the check's dtype: the shapes and grad_f's layout (for a shape in none, why; a 2-D
    gradient whose transpose has a layout is transposed), then f, grad_f and the autodiff
    Jacobian."""
    with jax.enable_x64(dt == "float64"), jax.default_matmul_precision("highest"):
        jargs = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in prepared]
        param = tuple(jargs[argnum].shape)
        out, trace = _trace(f, grad_f, jargs, fname)
        grad = tuple(trace.output)
        layout, problem = _layout(grad, out, param), None
        if layout is None:
            transposed = _transposed_layout(grad, out, param)
            problem = _shape_problem(pdesc, param, out, grad, transposed is not None, trace)
            layout = "wrong shape" if transposed is None else f"transposed {transposed}"
        value, got, J_ad = (np.asarray(a, np.float64) for a in _evaluate(f, grad_f, argnum, *jargs))
    if layout.startswith("transposed "):
        got = got.T
    return _Evaluated(param, out, trace, layout, problem, value, got, J_ad)


def _differences_in_float64(f: Callable, argnum: int,
                            prepared: list) -> tuple[np.ndarray, np.ndarray]:
    """The central differences and their error estimates, at the prepared arguments widened to
    float64 (see gdlab.gradients._differences)."""
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        args64 = [jnp.asarray(a, jnp.float64)
                  if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                  for a in prepared]
        return _central_differences(f, argnum, args64)


def _comparisons(ev: _Evaluated, d1: np.ndarray, allow: np.ndarray, rtol: float, fd_tol: float,
                 dtype: np.dtype) -> tuple[Comparison, Comparison, bool]:
    """grad_f against autodiff and against the differences, both in grad_f's layout, and whether
    the differences agree with autodiff (to 1e-4 of its magnitude). A gradient of the wrong shape
    fails both; a transposed one is compared transposed, and fails both whatever they find."""
    if ev.layout == "wrong shape":
        size = ev.got.size
        return (_not_compared("autodiff", rtol, size, ev.shape_problem),
                _not_compared("finite differences (float64)", fd_tol, size, ev.shape_problem),
                False)
    layout = ev.layout.removeprefix("transposed ")
    expected, not_elementwise = _canonical_to_layout(ev.J_ad, layout, ev.out, ev.param)
    if layout == "elementwise":
        d1, allow = np.diag(d1), np.diag(allow)
    fd_expected = d1.reshape(ev.got.shape)
    tiny = float(np.finfo(dtype).tiny)  # below the smallest normal number, a value counts as 0
    ad = _compare("autodiff", ev.got, expected, rtol, tiny)
    if not_elementwise:
        ad = ad._replace(passed=False, message=not_elementwise)
    fd = _compare("finite differences (float64)", ev.got, fd_expected, fd_tol, tiny,
                  allow.reshape(ev.got.shape))
    if ev.shape_problem:
        ad, fd = _as_transposed(ad, ev.shape_problem), _as_transposed(fd, ev.shape_problem)
    # NaN: False
    fd_is_ad = np.max(np.abs(fd_expected - expected)) <= 1e-4 * np.max(np.abs(expected))
    return ad, fd, fd_is_ad


def _as_transposed(c: Comparison, shape_problem: str) -> Comparison:
    """A comparison of gᵀ, for a g of the transposed shape: failed, saying what gᵀ gives."""
    found = (f"its transpose matches {c.against} (max rel err {c.max_rel_err:.2g}): a transpose "
             "is missing or extra (e.g. x(z − y)ᵀ instead of (z − y)xᵀ)" if c.passed
             else f"transposed, it {c.message}")
    return c._replace(passed=False, message=f"{shape_problem}; {found}")


def _verdict(fname: str, dt: str, pname: str, ev: _Evaluated, ad: Comparison, fd: Comparison,
             fd_is_ad: bool) -> tuple[bool, str]:
    """Whether the check passed, and its one-line message with every problem found."""
    problems = ([] if np.all(np.isfinite(np.asarray(ev.value)))
                else ["f is not finite at these inputs"])
    passed = ad.passed and fd.passed and not problems
    verdict = "PASS" if passed else "FAIL"
    message = f"{verdict} {fname} [{dt}]: d/d{pname} {fmt_shape(ev.trace.output)} ({ev.layout})"
    if ev.layout == "wrong shape":
        return False, f"{message}; {'; '.join(problems + [ev.shape_problem])}"
    of_transpose = " (of its transpose)" if ev.shape_problem else ""
    message += (f", vs autodiff max rel err{of_transpose} {ad.max_rel_err:.2g}, "
                f"vs FD {fd.max_rel_err:.2g}")
    if not ad.passed:
        problems.append(ad.message)
    if not fd.passed:
        problems.append("finite differences agree with autodiff" if not ad.passed and fd_is_ad
                        else fd.message)
    if passed and ad.n_nonzero == 0:
        problems.append("vacuous: the gradient is 0 to within the tolerance at these inputs, so a "
                        "wrong sign or factor would pass too; check where it is not 0")
    if problems:
        message += "; " + "; ".join(problems)
    return passed, message


def _tolerances(rtol: float, fd_tol: float, dtype: np.dtype) -> str:
    """Both tolerances, as the result states them."""
    return (f"autodiff: ‖g − g_ad‖∞ ≤ {rtol:g}·‖g_ad‖∞ ({dtype} rounding, "
            f"~{rtol / np.finfo(dtype).eps:.0f} ulp); central FD in float64, "
            "step 10^k·ε^(1/3)·max(1,|p_j|) with the least estimated "
            f"error: |g − D| ≤ {fd_tol:g}·‖D‖∞ + |D(h) − D(2h)| + {_FD_ROUNDING:g}ε|f|/h "
            "per entry")


def check_gradient(f: Callable, grad_f: Callable, *args: Any, argnum: int = 0,
                   name: str | None = None, rtol: float | None = None,
                   fd_rtol: float = FD_RTOL) -> GradCheckResult:
    """Compare grad_f(*args) with autodiff of f and float64 central differences; trace its shapes.

    All floating arguments are cast to the dtype of args[argnum] (float32 or float64; float64 runs
    under ``jax.enable_x64(True)``). ``rtol``: the autodiff tolerance (default :data:`RTOL` of that
    dtype); the differences, each at the best step of the ladder 10^k·ε^{1/3}·max(1, |p_j|),
    k = 0..3 (module docstring), pass within max(``fd_rtol``, rtol)·‖D‖∞ plus their own error
    estimate. Raises TypeError/ValueError for bad input (arguments, an f or grad_f that cannot be
    traced); a wrong gradient — a wrong value or a wrong shape — gives a result with
    ``passed=False`` and a message naming what is wrong.
    """
    _require_callables(f, grad_f)
    fname = name or getattr(f, "__name__", "f")
    names = _arg_names(f, len(args))
    prepared, dtype = _prepare(args, argnum, names)
    dt = str(dtype)
    rtol = RTOL[dt] if rtol is None else float(rtol)
    fd_tol = max(float(fd_rtol), rtol)
    pdesc = f"{names[argnum]} (argument {argnum})"
    f, grad_f = _hashable(f), _hashable(grad_f)
    ev = _evaluate_in_dtype(f, grad_f, argnum, prepared, dt, fname, pdesc)
    d1, allow = _differences_in_float64(f, argnum, prepared)
    ad, fd, fd_is_ad = _comparisons(ev, d1, allow, rtol, fd_tol, dtype)
    passed, message = _verdict(fname, dt, names[argnum], ev, ad, fd, fd_is_ad)
    return GradCheckResult(fname, passed, dt, ev.layout, pdesc, ev.param, ev.out,
                           tuple(ev.trace.output), ad, fd, ev.trace,
                           _tolerances(rtol, fd_tol, dtype), message)
