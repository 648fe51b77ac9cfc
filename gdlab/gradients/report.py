"""The homework Q1–Q3 suite: every derivation checked three ways, and reports of the results.

``run_homework_checks`` runs :func:`gdlab.gradcheck.check_gradient` on every case of
``gdlab.functions.CASES`` over sizes, β and extreme inputs; ``run_stability_checks`` checks the
softmax's value at logits up to ±1e4 (finite, sums to 1); ``render_table``, ``render_markdown``
(the worked answer to Q1–Q3, once for all dtypes) and ``to_json`` present the results.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gdlab import rundir
from gdlab.errors import ArgumentError, ArgumentTypeError
from gdlab.gradients.functions import CASES, Case, get_case
from gdlab.gradients.gradcheck import FD_RTOL, RTOL, GradCheckResult, check_gradient, fmt_shape

__all__ = ["run_homework_checks", "run_stability_checks", "StabilityCheck", "render_table",
           "render_markdown", "to_json"]


# --- the homework suite --------------------------------------------------------------------------

def _check_sequence(name: str, values: Any, ok: Callable[[Any], bool], why: str) -> tuple:
    try:
        values = tuple(values)
    except TypeError:
        raise ArgumentTypeError(name, f"{name} must be a sequence, got {values!r}",
                                prefix=False) from None
    for v in values:
        if isinstance(v, bool) or not ok(v):
            raise ArgumentError(name, f"{name}: {v!r} is not allowed; {why}", prefix=False)
    if not values:
        raise ArgumentError(name, f"{name} is empty; {why}", prefix=False)
    return values


def _validated(dtype: str, sizes: Any, betas: Any, functions: list[str] | None,
               extreme: Any) -> tuple[tuple, tuple, tuple]:
    """The suite's arguments checked (ArgumentError naming the argument): cases, sizes, betas."""
    if dtype not in RTOL:
        raise ArgumentError("dtype", f"dtype={dtype!r}; use one of {', '.join(map(repr, RTOL))}",
                            prefix=False)
    sizes = _check_sequence("sizes", sizes,
                            lambda n: isinstance(n, (int, np.integer)) and 1 <= n <= 4096,
                            "sizes are integers n in [1, 4096]")
    betas = _check_sequence("betas", betas, lambda b: isinstance(b, (int, float)) and 0 < b <= 100,
                            "softplus β must lie in (0, 100]")
    if not (isinstance(extreme, (int, float)) and 0 < extreme <= 1e4):
        raise ArgumentError("extreme", f"extreme={extreme!r}; use a magnitude in (0, 1e4]",
                            prefix=False)
    if isinstance(functions, str):
        raise ArgumentTypeError("functions", f"functions={functions!r}; pass a list of names, "
                                f"e.g. [{functions!r}], or None for all", prefix=False)
    cases = CASES if functions is None else tuple(get_case(n) for n in functions)
    return cases, sizes, betas


def _settings(case: Case, sizes: tuple, betas: tuple,
              extreme: float) -> list[tuple[int, float | None, float]]:
    """(n, β, scale) of every check of ``case``: each size n (at least case.min_n, where the
    gradient is not identically 0) × β, then |x| = ``extreme`` at the largest n, at least 3 (for
    +extreme, a moderate entry and −extreme, see functions._draw), every β."""
    ns = sorted({max(int(n), case.min_n) for n in sizes})
    bs = betas if case.uses_beta else (None,)
    return [(n, b, 1.0) for n in ns for b in bs] + [(max(ns[-1], 3), b, float(extreme))
                                                     for b in bs]


def _inputs(case: Case, seed: int, n: int, beta: float | None, scale: float,
            dtype: np.dtype) -> tuple[tuple, str]:
    """The inputs of one setting (m = n + 1: never square, so a missing transpose changes the
    shape) and its label, e.g. "n=3, m=4, β=10, |x|≤10000"."""
    m = n + 1
    args = case.make_inputs([seed, n], n, m, dtype, 1.0 if beta is None else beta, scale)
    setting = (f"n={n}" + (f", m={m}" if case.uses_m else "") + (f", β={beta:g}" if beta else "")
               + (f", |x|≤{scale:g}" if scale != 1.0 else ""))
    return args, setting


def run_homework_checks(dtype: str = "float32", seed: int = 0, sizes: Sequence[int] = (1, 3, 64),
                        betas: Sequence[float] = (0.5, 1.0, 10.0, 100.0),
                        functions: list[str] | None = None,
                        extreme: float = 1e4) -> list[GradCheckResult]:
    """check_gradient for every homework function × size n (m = n + 1; softmax from n = 2) × β,
    plus inputs with |x| = ``extreme`` (largest n, at least 3; every β). ``functions=None`` checks
    them all. Every input has a non-zero gradient, so a wrong sign or factor fails
    (functions._draw)."""
    cases, sizes, betas = _validated(dtype, sizes, betas, functions, extreme)
    results = []
    for case in cases:
        for n, beta, scale in _settings(case, sizes, betas, extreme):
            args, setting = _inputs(case, seed, n, beta, scale, np.dtype(dtype))
            r = check_gradient(case.value, case.grad, *args, argnum=case.argnum, name=case.name)
            results.append(dataclasses.replace(r, question=case.question, formula=case.formula,
                                               derivation=case.derivation, setting=setting))
    return results


class StabilityCheck(NamedTuple):
    """f at extreme inputs: value and gradient finite, and an identity holds (softmax: Σ s = 1)."""

    name: str
    dtype: str
    setting: str
    passed: bool
    deviation: float     # |the identity's residual|, e.g. |Σ s_i − 1|
    tolerance: float     # 2(size + 1)ε of the dtype
    message: str


def _stability(case: Case, args: tuple, setting: str, dtype: str) -> StabilityCheck:
    """f and grad_f finite at args, and case.invariant within 2(k + 1)ε, k = f's output size: each
    of the k outputs carries ≤ ~2ε relative rounding (an exp, a division) and the normalising sum
    ≤ (k − 1)ε, so |Σ s_i − 1| ≤ (k + 1)ε; the factor 2 is margin for exp's last bit."""
    what, deviation_of = case.invariant
    with jax.enable_x64(dtype == "float64"):
        jargs = [jnp.asarray(a) for a in args]
        value = np.asarray(jax.jit(case.value)(*jargs), np.float64)
        grad = np.asarray(jax.jit(case.grad)(*jargs), np.float64)
    eps = float(np.finfo(np.dtype(dtype)).eps)
    tol = 2 * (value.size + 1) * eps
    finite = bool(np.all(np.isfinite(value)) and np.all(np.isfinite(grad)))
    dev = deviation_of(value) if finite else float("nan")
    passed = finite and dev <= tol
    message = (f"{'PASS' if passed else 'FAIL'} {case.name} [{dtype}] at {setting}: value and "
               f"gradient {'finite' if finite else 'NOT finite'}"
               + (f", |{what}| = {dev:.2g} "
                  f"{'≤' if dev <= tol else '>'} {tol:.2g}" if finite else ""))
    return StabilityCheck(case.name, dtype, setting, passed, dev, tol, message)


def run_stability_checks(dtype: str = "float32", seed: int = 0, sizes: Sequence[int] = (1, 3, 64),
                         functions: list[str] | None = None,
                         extreme: float = 1e4) -> list[StabilityCheck]:
    """For every homework function with an identity (``Case.invariant``; the softmax: Σ s_i = 1),
    at the suite's extreme inputs (|x| = ``extreme`` at the largest n; e^{1e4} overflows even
    float64, so a softmax that does not subtract max(x) returns NaN): its value and gradient are
    finite and the identity holds to rounding."""
    cases, sizes, _ = _validated(dtype, sizes, (1.0,), functions, extreme)
    checks = []
    for case in (c for c in cases if c.invariant is not None):
        n, beta, scale = _settings(case, sizes, (1.0,), extreme)[-1]
        args, setting = _inputs(case, seed, n, beta, scale, np.dtype(dtype))
        checks.append(_stability(case, args, setting, dtype))
    return checks


# --- rendering -----------------------------------------------------------------------------------

def _word(r: GradCheckResult) -> str:
    """PASS, FAIL, or "PASS (vacuous)": the reference is 0, a wrong sign or factor would pass."""
    return "FAIL" if not r.passed else "PASS (vacuous)" if r.autodiff.n_nonzero == 0 else "PASS"


def render_table(results: Sequence[GradCheckResult],
                 stability: Sequence[StabilityCheck] = ()) -> str:
    """Plain-text table: function, setting, formula, traced shapes, errors, PASS/FAIL; then the
    message of every failed or vacuous check, and the overflow-stability checks."""
    head = ("function", "dtype", "setting", "formula", "shape trace (traced)",
            "rel err vs autodiff", "rel err vs FD", "result")
    rows = [(r.name, r.dtype, r.setting or f"{r.param.split()[0]} {fmt_shape(r.param_shape)}",
             r.formula or "-", r.shape_trace.short(), f"{r.autodiff.max_rel_err:.1e}",
             f"{r.finite_differences.max_rel_err:.1e}", _word(r))
            for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    n_pass = sum(r.passed for r in results)
    dtypes = ", ".join(sorted({r.dtype for r in results}))
    out.append(f"{n_pass}/{len(results)} PASS ({dtypes})")
    out += [r.message + (f" (setting: {r.setting})" if r.setting else "")
            for r in results if _word(r) != "PASS"]
    out += [f"overflow stability: {c.message}" for c in stability]
    return "\n".join(out)


def _example(group: list[GradCheckResult]) -> GradCheckResult:
    """The result whose shapes read best: plain inputs, most non-trivial dimensions, then
    smallest."""
    plain = [r for r in group if "|x|" not in r.setting] or group
    return min(plain, key=lambda r: (math.prod(r.param_shape) <= 1,
                                     -sum(d > 1 for d in r.param_shape), math.prod(r.param_shape)))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ([f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
            + [f"| {' | '.join(map(_md_cell, row))} |" for row in rows])


def _vacuous_note(results: list[GradCheckResult]) -> str:
    """Whether every check could fail: a wrong sign or factor fails unless the gradient is 0."""
    vacuous = sum(_word(r) == "PASS (vacuous)" for r in results)
    if not vacuous:
        return ("The gradient is not 0 at any check's inputs, so a wrong sign or factor would fail "
                "every check.")
    return (f"{vacuous} check(s) are vacuous: the gradient is 0 at their inputs, so a wrong sign "
            "or factor would pass them too.")


def _dtype_summary(results: list[GradCheckResult], dtypes: list[str]) -> list[str]:
    """One row per dtype: checks passed and the tolerances."""
    rows = []
    for dt in dtypes:
        mine = [r for r in results if r.dtype == dt]
        rows.append((dt, f"{sum(r.passed for r in mine)}/{len(mine)}", mine[0].tolerances))
    return _md_table(("dtype", "checks passed", "tolerances"), rows)


def _worked_answer(group: list[GradCheckResult]) -> list[str]:
    """Formula, derivation and the traced shape check of one function (dtype-independent)."""
    ex = _example(group)
    out = [f"## {ex.question or 'check'} `{ex.name}`: {ex.formula or ''}".rstrip(), ""]
    if ex.derivation:
        out += ["Derivation:", ""] + [f"{i}. {s}" for i, s in enumerate(ex.derivation, 1)] + [""]
    pname = ex.param.split()[0]
    final = (f"= [{math.prod(ex.output_shape)} outputs × {math.prod(ex.param_shape)} entries "
             f"of {pname}] ✓"
             if ex.layout.startswith("jacobian")
             else f"= shape of {pname} {fmt_shape(ex.param_shape)} ✓")
    out += [f"Shape check, traced ({_md_cell(ex.setting)}):", ""]
    out += _md_table(("quantity", "shape"),
                     [(f"input {n}", fmt_shape(s)) for n, s in ex.shape_trace.inputs]
                     + [(s.label, fmt_shape(s.shape)) for s in ex.shape_trace.named()]
                     + [(f"result ({ex.layout})", f"{fmt_shape(ex.grad_shape)} {final}")])
    return out + [""]


def _checks_by_dtype(group: list[GradCheckResult], dtypes: list[str]) -> list[str]:
    """One row per setting, the relative errors and the verdict in each dtype side by side."""
    by = {(r.setting, r.dtype): r for r in group}
    settings = list(dict.fromkeys(r.setting for r in group))
    head = ["setting"] + [f"{h} ({dt})" for dt in dtypes
                          for h in ("vs autodiff", "vs FD", "result")]
    rows = []
    for st in settings:
        row = [st]
        for dt in dtypes:
            r = by.get((st, dt))
            row += ([f"{r.autodiff.max_rel_err:.1e}", f"{r.finite_differences.max_rel_err:.1e}",
                     _word(r)] if r else ["–"] * 3)
        rows.append(row)
    return _md_table(head, rows)


def render_markdown(results: Sequence[GradCheckResult],
                    stability: Sequence[StabilityCheck] = ()) -> str:
    """The worked answer to Q1-Q3, once whatever the dtypes: per function the formula, derivation
    and traced shape check, then a table of its checks with a column group per dtype; then the
    overflow-stability checks."""
    results = list(results)
    dtypes = sorted({r.dtype for r in results})
    n_pass = sum(r.passed for r in results)
    out = ["# Lecture 1 homework, Q1–Q3: gradients, derived and checked", "",
           f"{n_pass}/{len(results)} checks pass ({', '.join(dtypes)}). "
           "Each gradient is implemented from the closed form (gdlab/gradients/functions.py) and "
           "compared with jax autodiff in the same dtype and with central finite differences in "
           "float64; shapes are read from the traced program (jax.make_jaxpr), not written by "
           f"hand. {_vacuous_note(results)}", ""]
    if results:
        out += _dtype_summary(results, dtypes) + [""]
    groups: dict[str, list[GradCheckResult]] = {}
    for r in results:
        groups.setdefault(r.name, []).append(r)
    for group in groups.values():
        out += _worked_answer(group) + _checks_by_dtype(group, dtypes)
        out += [""] + [f"- {r.message}" for r in group if _word(r) != "PASS"] + [""]
    if stability:
        out += ["## Overflow stability at extreme inputs", "",
                "Softmax logits up to ±1e4 (e^{1e4} overflows even float64): the value and the "
                "hand-derived Jacobian must be finite and the outputs sum to 1 to rounding, "
                "2(n + 1)ε. A softmax that does not subtract max(x) returns NaN here.", ""]
        out += _md_table(("function", "setting", "dtype", "check", "result"),
                         [(c.name, c.setting, c.dtype, c.message.split(": ", 1)[1],
                           "PASS" if c.passed else "FAIL") for c in stability])
    return "\n".join(out).rstrip() + "\n"


def to_json(results: Sequence[GradCheckResult]) -> dict:
    """A JSON-serialisable dict; a non-finite number becomes None (JSON null), read "undefined".

    Null, not a refusal as in a sweep's results: a non-finite number here is a measurement of a
    failing check (the relative error against an autodiff reference that overflowed to inf, say,
    or NaN for a gradient of the wrong shape, which is not compared), and the report that shows
    the failure must still be written. The bundled configs/q1_q3_gradients.toml, whose checks
    pass, holds none (every number is finite).
    """
    results = list(results)
    return {"passed": all(r.passed for r in results), "n_checks": len(results),
            "n_passed": sum(r.passed for r in results), "rtol": dict(RTOL), "fd_rtol": FD_RTOL,
            "results": [rundir.jsonable(r, nonfinite="null") for r in results]}
