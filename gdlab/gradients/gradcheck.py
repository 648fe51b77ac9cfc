"""Check a hand-derived gradient three ways, and trace the shapes of its intermediates.

For f(*args) and a claimed gradient g = grad_f(*args) with respect to args[argnum] (the parameter
p):

1. autodiff, same dtype: g_ad = jax.grad(f) for a scalar f, jax.jacobian(f) otherwise. Passes when
   ‖g − g_ad‖∞ ≤ rtol·‖g_ad‖∞ (an atol scaled by the gradient's magnitude), rtol = 1e-5 in float32
   (~84 ulp) and 1e-12 in float64 (~4500 ulp): room for the rounding of sums of ~100 terms computed
   in a different order, and still 4-11 orders below the O(1) relative error of a wrong formula.
2. central finite differences in float64, at the same point (the arguments as rounded to the
   check's dtype): D_j(h) = (f(p + h e_j) − f(p − h e_j)) / 2h, with 2h the step actually taken,
   (p_j + h) − (p_j − h) in float64. Each entry tries a ladder of steps h_k = 10^k·h_0, k = 0..3,
   from h_0 = ε^{1/3}·max(1, |p_j|) ≈ 6e-6·max(1, |p_j|) (which balances truncation h²|f'''|/6
   against rounding ε|f|/h, both ≈ ε^{2/3} ≈ 4e-11 at unit scale), each also at 2h_k, and keeps the
   step with the smallest estimated error
       e_j(h) = |D(h) − D(2h)| + 16ε(|f(p+h)| + |f(p−h)|)/2h:
   the first term bounds the truncation error (Richardson: D(h)'s truncation error ≈
   |D(h) − D(2h)|/3, so 3x margin), the second the rounding (an estimate that is NaN counts as
   infinite). A step above h_0 wins only where f is large compared with its variation over the
   step (a huge loss, a nearly linear f). Passes when |g − D| ≤ fd_tol·‖D‖∞ + e_j per entry, with
   fd_tol = max(fd_rtol, rtol) and fd_rtol = 1e-6: four orders of margin over the ≈1e-10 expected
   FD error. When autodiff fails too and the differences agree with it, the FD failure says so.
3. shapes, traced: jax.make_jaxpr(grad_f) lists every equation with its output shape; intermediates
   tagged with ``label`` are named. The result must be p's shape (scalar f), the Jacobian [out × p]
   (vector f; jax layout out.shape + p.shape also accepted), or p's shape for an elementwise f. Any
   other shape raises ValueError with the trace, so a wrong shape never reaches the numbers.

A check also fails when f is not finite at the inputs, or when grad_f returns p's shape for a vector
f whose Jacobian is not diagonal (f is not elementwise).

Matrix products run at "highest" precision (GPUs otherwise use ~1e-3-accurate float32 matmuls).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from functools import partial
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gdlab.errors import ArgumentError, ArgumentTypeError
from gdlab.gradients.functions import label

__all__ = [
    "RTOL", "FD_RTOL", "label", "ShapeStep", "ShapeTrace", "trace_shapes", "Comparison",
    "GradCheckResult", "check_gradient", "fmt_shape",
]

RTOL: dict[str, float] = {"float32": 1e-5, "float64": 1e-12}
FD_RTOL: float = 1e-6
_FD_ROUNDING = 16.0  # allowed rounding of one f evaluation, in units of ε|f|


def fmt_shape(shape: Sequence[int]) -> str:
    """(3, 1) -> '[3×1]'; () -> 'scalar'."""
    return "[" + "×".join(map(str, shape)) + "]" if len(shape) else "scalar"


# --- shape tracing -------------------------------------------------------------------------------

class ShapeStep(NamedTuple):
    primitive: str           # jaxpr primitive, "name" for a labelled intermediate
    shape: tuple[int, ...]   # shape of the equation's (first) output
    label: str | None        # the label given with gdlab.gradcheck.label, else None


class ShapeTrace(NamedTuple):
    inputs: tuple[tuple[str, tuple[int, ...]], ...]   # (argument name, shape)
    steps: tuple[ShapeStep, ...]                      # every equation, in program order
    output: tuple[int, ...]

    def named(self) -> tuple[ShapeStep, ...]:
        return tuple(s for s in self.steps if s.label is not None)

    def short(self) -> str:
        """'Xw [6×1] → Xw − y [6×1] → Xᵀ(Xw − y) [3×1] → result [3×1]'."""
        parts = [f"{s.label} {fmt_shape(s.shape)}" for s in self.named()]
        if not parts:  # nothing labelled: the last few equations
            parts = [f"{s.primitive} {fmt_shape(s.shape)}" for s in self.steps[-5:-1]]
        return " → ".join(parts + [f"result {fmt_shape(self.output)}"])


def _sub_jaxprs(params: dict) -> list:
    found = []
    for v in params.values():
        for item in v if isinstance(v, (tuple, list)) else (v,):
            inner = getattr(item, "jaxpr", item)
            if hasattr(inner, "eqns"):
                found.append(inner)
    return found


def _walk(jaxpr) -> list[ShapeStep]:
    steps = []
    for eqn in jaxpr.eqns:
        subs = _sub_jaxprs(eqn.params)
        if subs:  # pjit, custom_jvp_call, ...: list what runs inside
            for sub in subs:
                steps += _walk(sub)
            continue
        shape = tuple(getattr(eqn.outvars[0].aval, "shape", ())) if eqn.outvars else ()
        name = eqn.params.get("name") if eqn.primitive.name == "name" else None
        steps.append(ShapeStep(eqn.primitive.name, shape, None if name is None else str(name)))
    return steps


def _arg_names(fn: Callable, n: int) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"arg{i}" for i in range(n)]


def trace_shapes(fn: Callable, *args: Any) -> ShapeTrace:
    """Trace ``fn(*args)`` (no FLOPs) and list each equation's output shape; labelled ones are
    named."""
    closed = jax.make_jaxpr(fn)(*args)
    outs = closed.out_avals
    if len(outs) != 1:
        raise ArgumentTypeError("f", f"{getattr(fn, '__name__', 'fn')} returned {len(outs)} "
                                "arrays; return one array", prefix=False)
    names = _arg_names(fn, len(args))
    inputs = tuple((names[i], tuple(np.shape(a))) for i, a in enumerate(args))
    return ShapeTrace(inputs, tuple(_walk(closed.jaxpr)), tuple(outs[0].shape))


# --- comparisons ---------------------------------------------------------------------------------

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


# --- the check -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GradCheckResult:
    """Outcome of check_gradient; homework metadata (question, formula, ...) is empty for user
    checks."""

    name: str
    passed: bool
    dtype: str
    # "gradient" | "jacobian" | "jacobian (jax layout)" | "elementwise"
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
        return (f"{self.message}\n  shapes: {self.shape_trace.short()}\n"
                f"  vs autodiff: {self.autodiff.message}\n"
                f"  vs FD: {self.finite_differences.message}")


def _layout(grad: tuple, out: tuple, param: tuple) -> str | None:
    if math.prod(out) == 1:  # a scalar f: the gradient has the parameter's shape, nothing else
        return "gradient" if grad == param else None
    if len(grad) == 2 and grad == (math.prod(out), math.prod(param)):
        return "jacobian"
    if grad == out + param:
        return "jacobian (jax layout)"
    if grad == param == out:
        return "elementwise"
    return None


def _shape_error(fname, pdesc, param, out, grad, trace) -> ValueError:
    if math.prod(out) == 1:
        want = f"{pdesc}'s shape {fmt_shape(param)}"
    else:
        want = (f"the Jacobian {fmt_shape((math.prod(out), math.prod(param)))} (rows = outputs), "
                f"{out + param} in jax layout, or {fmt_shape(param)} if f is elementwise")
    hint = (f"; {fmt_shape(grad)} is {fmt_shape(param)} transposed: a transpose is missing or extra"
            if len(grad) == 2 and grad[::-1] == tuple(param) else "")
    return ValueError(f"{fname}: grad_f returned shape {fmt_shape(grad)} but f has output "
                      f"{fmt_shape(out)}, so the gradient must be {want}{hint}. "
                      f"Traced: {trace.short()}")


def _canonical_to_layout(J: np.ndarray, layout: str, out: tuple, param: tuple):
    """Jacobian J [out.size × p.size] in grad_f's layout; with an error message if f is not
    elementwise."""
    if layout == "gradient":
        return J.reshape(param), None
    if layout == "jacobian":
        return J, None
    if layout == "jacobian (jax layout)":
        return J.reshape(out + param), None
    off = J - np.diag(np.diag(J))
    if np.max(np.abs(off)) > 1e-6 * max(np.max(np.abs(J)), np.finfo(np.float64).tiny):
        i, j = np.unravel_index(int(np.argmax(np.abs(off))), off.shape)
        return np.diag(J).reshape(param), (
            f"f is not elementwise (∂f_{i}/∂p_{j} = {J[i, j]:.6g} ≠ 0), so grad_f must return the "
            f"full Jacobian {fmt_shape(J.shape)}, not {fmt_shape(param)}")
    return np.diag(J).reshape(param), None


@partial(jax.jit, static_argnums=(0, 1, 2))
def _evaluate(f, grad_f, argnum, *args):
    """f(*args), grad_f(*args) and the autodiff Jacobian [out.size × p.size]: jax.grad for a scalar
    f (output of size 1), jax.jacobian otherwise. One compiled program per (f, grad_f, shapes,
    dtypes)."""
    value = f(*args)
    if value.size == 1:
        J = jax.grad(lambda *a: jnp.reshape(f(*a), ()), argnums=argnum)(*args).reshape(1, -1)
    else:
        J = jax.jacobian(f, argnums=argnum)(*args).reshape(-1, args[argnum].size)
    return value, grad_f(*args), J


@partial(jax.jit, static_argnums=(0, 1))
def _f_shifted(f, argnum, cols, steps, *args):
    """Row r: f with args[argnum].flat[cols[r]] += steps[r], flattened: [rows × out.size]."""
    p = args[argnum].ravel()

    def f_at(col, step):
        a = list(args)
        a[argnum] = (p + jnp.where(jnp.arange(p.size) == col, step, 0.0)).reshape(
            args[argnum].shape)
        return jnp.ravel(f(*a))
    return jax.vmap(f_at)(cols, steps)


_LEVELS = 10.0 ** np.arange(4)  # step levels h_k = 10^k·h_0


def _central_differences(f, argnum: int, args: list) -> tuple[np.ndarray, np.ndarray]:
    """Central differences D and their error estimate, each [out.size × p.size]; call under x64.

    Per entry, the step is the one of h_k = 10^k·ε^{1/3}·max(1, |p_j|), k = 0..3, with the smallest
    estimated error |D(h_k) − D(2h_k)| + 16ε(|f(p + h_k)| + |f(p − h_k)|)/2h_k: the first term
    bounds the truncation error (3x its Richardson estimate), the second the rounding. k > 0 wins
    only where f is large compared with its variation over the step (a huge loss, a nearly
    linear f).
    """
    p = np.asarray(args[argnum], np.float64).ravel()
    P, S = p.size, 2 * len(_LEVELS)
    h = np.finfo(np.float64).eps ** (1 / 3) * np.maximum(1.0, np.abs(p))
    steps = h[:, None] * np.concatenate([_LEVELS, 2 * _LEVELS])[None]       # [P × S]
    chunk = max(1, min(P, 2**22 // (2 * S * P)))                            # columns per call
    width = (p[:, None] + steps) - (p[:, None] - steps)                     # the steps taken
    fp, fm = [], []
    for start in range(0, P, chunk):
        cols = np.arange(start, start + chunk) % P                           # pad the last chunk
        c = np.repeat(cols, S)
        s = steps[cols].ravel()
        out = _f_shifted(f, argnum, jnp.asarray(np.concatenate([c, c])),
                         jnp.asarray(np.concatenate([s, -s])), *args)
        out = np.asarray(out, np.float64).reshape(2, chunk, S, -1)
        fp.append(out[0])
        fm.append(out[1])
    fp, fm = np.concatenate(fp)[:P], np.concatenate(fm)[:P]                 # [P × S × out]
    eps_out = np.finfo(jax.eval_shape(f, *args).dtype).eps
    D = (fp - fm) / width[..., None]
    rounding = _FD_ROUNDING * eps_out * (np.abs(fp) + np.abs(fm)) / width[..., None]
    K = len(_LEVELS)
    with np.errstate(invalid="ignore"):
        err = np.abs(D[:, :K] - D[:, K:]) + rounding[:, :K]
    err = np.where(np.isnan(err), np.inf, err)
    best = np.argmin(err, axis=1)[:, None]
    pick = lambda a: np.take_along_axis(a, best, axis=1)[:, 0].T  # noqa: E731
    return pick(D[:, :K]), pick(err)


def _prepare(args: tuple, argnum: int, names: list[str]) -> tuple[list, np.dtype]:
    if not isinstance(argnum, int) or not 0 <= argnum < len(args):
        raise ArgumentError("argnum", f"argnum={argnum!r} but {len(args)} argument(s) were given; "
                            f"pass 0..{len(args) - 1}", prefix=False)
    p = np.asarray(args[argnum])
    if p.dtype not in (np.float32, np.float64):
        raise ArgumentTypeError(names[argnum], f"{names[argnum]} (argument {argnum}) has dtype "
                                f"{p.dtype}; the differentiated argument must be float32 or "
                                "float64, e.g. np.asarray(x, np.float32)", prefix=False)
    if p.size == 0:
        raise ArgumentError(names[argnum], f"{names[argnum]} (argument {argnum}) is empty "
                            f"(shape {p.shape}); pass at least one entry", prefix=False)
    out = []
    for i, a in enumerate(args):
        try:
            arr = np.asarray(a)
        except Exception as err:  # noqa: BLE001
            raise ArgumentTypeError(names[i], f"{names[i]} (argument {i}) is not an array: "
                                    f"{type(a).__name__}", prefix=False) from err
        if arr.dtype.kind not in "biuf":
            raise ArgumentTypeError(names[i], f"{names[i]} (argument {i}) has dtype {arr.dtype}; "
                                    "pass a numeric array", prefix=False)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            k = np.unravel_index(int(np.argmax(~np.isfinite(arr))), arr.shape) if arr.ndim else ()
            raise ArgumentError(names[i], f"{names[i]} (argument {i}, shape "
                                f"{fmt_shape(arr.shape)}) is not finite ({arr[k]} at "
                                f"{list(map(int, k))}); gradient checks need finite inputs",
                                prefix=False)
        if isinstance(a, float):
            out.append(a)              # keep Python scalars weakly typed
        else:
            out.append(arr.astype(p.dtype) if arr.dtype.kind == "f" else arr)
    return out, p.dtype


def _hashable(fn: Callable) -> Callable:
    """fn itself (jit caches on it), or a wrapper when fn cannot be hashed (a static jit
    argument)."""
    try:
        hash(fn)
        return fn
    except TypeError:
        return lambda *a: fn(*a)


def check_gradient(f: Callable, grad_f: Callable, *args: Any, argnum: int = 0,
                   name: str | None = None, rtol: float | None = None,
                   fd_rtol: float = FD_RTOL) -> GradCheckResult:
    """Compare grad_f(*args) with autodiff of f and float64 central differences; trace its shapes.

    All floating arguments are cast to the dtype of args[argnum] (float32 or float64; float64 runs
    under ``jax.enable_x64(True)``). Raises TypeError/ValueError for bad input or a gradient of the
    wrong shape; a wrong *value* gives a result with ``passed=False`` and a message naming the
    entry.
    """
    if not callable(f) or not callable(grad_f):
        bad = "f" if not callable(f) else "grad_f"
        raise ArgumentTypeError(bad, f"{bad} must be callable, got "
                                f"{type(f if bad == 'f' else grad_f).__name__}", prefix=False)
    fname = name or getattr(f, "__name__", "f")
    names = _arg_names(f, len(args))
    prepared, dtype = _prepare(args, argnum, names)
    dt = str(dtype)
    rtol = RTOL[dt] if rtol is None else float(rtol)
    fd_tol = max(float(fd_rtol), rtol)
    pdesc = f"{names[argnum]} (argument {argnum})"
    f, grad_f = _hashable(f), _hashable(grad_f)

    with jax.enable_x64(dt == "float64"), jax.default_matmul_precision("highest"):
        jargs = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in prepared]
        param = tuple(jargs[argnum].shape)
        shapes = [fmt_shape(np.shape(a)) for a in jargs]
        try:
            out = tuple(jax.eval_shape(f, *jargs).shape)
        except Exception as err:  # noqa: BLE001
            raise ArgumentError("f", f"{fname}: f failed on arguments of shapes {shapes}: {err}",
                                prefix=False) from err
        try:
            trace = trace_shapes(grad_f, *jargs)
        except Exception as err:  # noqa: BLE001
            raise ArgumentError("grad_f", f"{fname}: grad_f failed on arguments of shapes "
                                f"{shapes}: {err}", prefix=False) from err
        layout = _layout(trace.output, out, param)
        if layout is None:
            raise _shape_error(fname, pdesc, param, out, trace.output, trace)
        value, got, J_ad = (np.asarray(a, np.float64) for a in _evaluate(f, grad_f, argnum, *jargs))

    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        args64 = [jnp.asarray(a, jnp.float64)
                  if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                  for a in prepared]
        d1, allow = _central_differences(f, argnum, args64)

    expected, not_elementwise = _canonical_to_layout(J_ad, layout, out, param)
    if layout == "elementwise":
        d1, allow = np.diag(d1), np.diag(allow)
    fd_expected = d1.reshape(got.shape)
    tiny = float(np.finfo(dtype).tiny)  # below the smallest normal number, a value counts as 0
    ad = _compare("autodiff", got, expected, rtol, tiny)
    if not_elementwise:
        ad = ad._replace(passed=False, message=not_elementwise)
    fd = _compare("finite differences (float64)", got, fd_expected, fd_tol, tiny,
                  allow.reshape(got.shape))
    problems = [] if np.all(np.isfinite(np.asarray(value))) else ["f is not finite at these inputs"]
    passed = ad.passed and fd.passed and not problems
    verdict = "PASS" if passed else "FAIL"
    message = (f"{verdict} {fname} [{dt}]: d/d{names[argnum]} {fmt_shape(trace.output)} "
               f"({layout}), vs autodiff max rel err {ad.max_rel_err:.2g}, "
               f"vs FD {fd.max_rel_err:.2g}")
    # NaN: False
    fd_is_ad = np.max(np.abs(fd_expected - expected)) <= 1e-4 * np.max(np.abs(expected))
    if not ad.passed:
        problems.append(ad.message)
    if not fd.passed:
        problems.append("finite differences agree with autodiff" if not ad.passed and fd_is_ad
                        else fd.message)
    if problems:
        message += "; " + "; ".join(problems)
    tolerances = (f"autodiff: ‖g − g_ad‖∞ ≤ {rtol:g}·‖g_ad‖∞ ({dt} rounding, "
                  f"~{rtol / np.finfo(dtype).eps:.0f} ulp); central FD in float64, "
                  "step 10^k·ε^(1/3)·max(1,|p_j|) with the least estimated "
                  f"error: |g − D| ≤ {fd_tol:g}·‖D‖∞ + |D(h) − D(2h)| + {_FD_ROUNDING:g}ε|f|/h "
                  "per entry")
    return GradCheckResult(fname, passed, dt, layout, pdesc, param, out, tuple(trace.output), ad,
                           fd, trace, tolerances, message)
