"""The homework Q1–Q3 suite: every derivation checked three ways, and reports of the results.

``run_homework_checks`` runs :func:`gdlab.gradcheck.check_gradient` on every case of
``gdlab.functions.CASES`` over sizes, β and extreme inputs; ``render_table``, ``render_markdown``
(the worked answer to Q1–Q3) and ``to_json`` present the results.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np

from gdlab import rundir
from gdlab.errors import ArgumentError, ArgumentTypeError
from gdlab.gradients.functions import CASES, get_case
from gdlab.gradients.gradcheck import FD_RTOL, RTOL, GradCheckResult, check_gradient, fmt_shape

__all__ = ["run_homework_checks", "render_table", "render_markdown", "to_json"]


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


def run_homework_checks(dtype: str = "float32", seed: int = 0, sizes: Sequence[int] = (1, 3, 64),
                        betas: Sequence[float] = (0.5, 1.0, 10.0, 100.0),
                        functions: list[str] | None = None,
                        extreme: float = 1e4) -> list[GradCheckResult]:
    """check_gradient for every homework function × size n (m = n + 1) × β, plus inputs with
    |x| = ``extreme`` (largest n; every β). ``functions=None`` checks them all."""
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
    cases = CASES if functions is None else [get_case(n) for n in functions]
    np_dtype = np.dtype(dtype)
    results = []
    for case in cases:
        settings = [(n, b, 1.0) for n in sizes for b in (betas if case.uses_beta else (None,))]
        settings += [(max(sizes), b, float(extreme))
                     for b in (betas if case.uses_beta else (None,))]
        for n, beta, scale in settings:
            m = n + 1  # never square: a missing transpose is a shape error
            args = case.make_inputs([seed, n], n, m, np_dtype, 1.0 if beta is None else beta, scale)
            r = check_gradient(case.value, case.grad, *args, argnum=case.argnum, name=case.name)
            setting = (f"n={n}" + (f", m={m}" if case.uses_m else "")
                       + (f", β={beta:g}" if beta else ""))
            setting += f", |x|≤{scale:g}" if scale != 1.0 else ""
            results.append(dataclasses.replace(r, question=case.question, formula=case.formula,
                                               derivation=case.derivation, setting=setting))
    return results


# --- rendering -----------------------------------------------------------------------------------

def render_table(results: Sequence[GradCheckResult]) -> str:
    """Plain-text table: function, setting, formula, traced shapes, errors, PASS/FAIL."""
    head = ("function", "dtype", "setting", "formula", "shape trace (traced)",
            "rel err vs autodiff", "rel err vs FD", "result")
    rows = [(r.name, r.dtype, r.setting or f"{r.param.split()[0]} {fmt_shape(r.param_shape)}",
             r.formula or "-", r.shape_trace.short(), f"{r.autodiff.max_rel_err:.1e}",
             f"{r.finite_differences.max_rel_err:.1e}", "PASS" if r.passed else "FAIL")
            for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    n_pass = sum(r.passed for r in results)
    dtypes = ", ".join(sorted({r.dtype for r in results}))
    out.append(f"{n_pass}/{len(results)} PASS ({dtypes})")
    out += [r.message + (f" (setting: {r.setting})" if r.setting else "")
            for r in results if not r.passed]
    return "\n".join(out)


def _example(group: list[GradCheckResult]) -> GradCheckResult:
    """The result whose shapes read best: plain inputs, most non-trivial dimensions, then
    smallest."""
    plain = [r for r in group if "|x|" not in r.setting] or group
    return min(plain, key=lambda r: (math.prod(r.param_shape) <= 1,
                                     -sum(d > 1 for d in r.param_shape), math.prod(r.param_shape)))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(results: Sequence[GradCheckResult]) -> str:
    """The worked answer to Q1-Q3: per function the formula, derivation, traced shape check and
    numbers."""
    results = list(results)
    n_pass = sum(r.passed for r in results)
    out = ["# Lecture 1 homework, Q1–Q3: gradients, derived and checked", "",
           f"{n_pass}/{len(results)} checks pass "
           f"({', '.join(sorted({r.dtype for r in results}))}). "
           "Each gradient is implemented from the closed form (gdlab/gradients/functions.py) and "
           "compared with jax autodiff in the same dtype and with central finite differences in "
           "float64; shapes are read from the traced program (jax.make_jaxpr), not written by "
           "hand.", ""]
    if results:
        out += [f"Tolerances: {results[0].tolerances}.", ""]
    groups: dict[str, list[GradCheckResult]] = {}
    for r in results:
        groups.setdefault(r.name, []).append(r)
    for name, group in groups.items():
        ex = _example(group)
        out += [f"## {ex.question or 'check'} `{name}`: {ex.formula or ''}".rstrip(), ""]
        if ex.derivation:
            out += (["Derivation:", ""] + [f"{i}. {s}" for i, s in enumerate(ex.derivation, 1)]
                    + [""])
        pname = ex.param.split()[0]
        final = (f"= [{math.prod(ex.output_shape)} outputs × {math.prod(ex.param_shape)} entries "
                 f"of {pname}] ✓"
                 if ex.layout.startswith("jacobian")
                 else f"= shape of {pname} {fmt_shape(ex.param_shape)} ✓")
        out += [f"Shape check, traced ({_md_cell(ex.setting)}):", "", "| quantity | shape |",
                "|---|---|"]
        out += [f"| input {n} | {fmt_shape(s)} |" for n, s in ex.shape_trace.inputs]
        out += [f"| {s.label} | {fmt_shape(s.shape)} |" for s in ex.shape_trace.named()]
        out += [f"| result ({ex.layout}) | {fmt_shape(ex.grad_shape)} {final} |", ""]
        out += ["| setting | dtype | rel err vs autodiff | rel err vs FD | result |",
                "|---|---|---|---|---|"]
        out += [f"| {_md_cell(r.setting)} | {r.dtype} | {r.autodiff.max_rel_err:.1e} | "
                f"{r.finite_differences.max_rel_err:.1e} | {'PASS' if r.passed else 'FAIL'} |"
                for r in group]
        out += [""] + [f"- {r.message}" for r in group if not r.passed]
    return "\n".join(out).rstrip() + "\n"


def to_json(results: Sequence[GradCheckResult]) -> dict:
    """A JSON-serialisable dict; a non-finite number becomes None (JSON null), read "undefined".

    Null, not a refusal as in a sweep's results: a non-finite number here is a measurement of a
    failing check (the relative error against an autodiff reference that overflowed to inf, say),
    and the report that shows the failure must still be written. The bundled
    configs/q1_q3_gradients.toml, whose 88 checks pass, holds none (every number is finite).
    """
    results = list(results)
    return {"passed": all(r.passed for r in results), "n_checks": len(results),
            "n_passed": sum(r.passed for r in results), "rtol": dict(RTOL), "fd_rtol": FD_RTOL,
            "results": [rundir.jsonable(r, nonfinite="null") for r in results]}
