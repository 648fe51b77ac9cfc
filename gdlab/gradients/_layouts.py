"""The layouts a claimed gradient may take, and the reference Jacobian put into each.

For f: p ↦ f(p) with output shape ``out``, grad_f may return the gradient (p's shape, scalar f), the
Jacobian [out.size × p.size] (rows = outputs), the Jacobian in jax's layout ``out + p``, or, for an
elementwise f, p's shape (the Jacobian's diagonal). Any other shape is an error that names the
expected shapes.
"""

from __future__ import annotations

import math

import numpy as np

from gdlab.gradients._shapes import ShapeTrace, fmt_shape

__all__: list[str] = []


def _layout(grad: tuple, out: tuple, param: tuple) -> str | None:
    """The layout of a gradient of shape ``grad`` for f with output ``out`` and parameter ``param``
    ("gradient", "jacobian", "jacobian (jax layout)" or "elementwise"), or None for none of them."""
    if math.prod(out) == 1:  # a scalar f: the gradient has the parameter's shape, nothing else
        return "gradient" if grad == param else None
    if len(grad) == 2 and grad == (math.prod(out), math.prod(param)):
        return "jacobian"
    if grad == out + param:
        return "jacobian (jax layout)"
    if grad == param == out:
        return "elementwise"
    return None


def _shape_error(fname: str, pdesc: str, param: tuple, out: tuple, grad: tuple,
                 trace: ShapeTrace) -> ValueError:
    """The error for a gradient of a shape in no layout: the shapes it could have, and the trace."""
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


def _canonical_to_layout(J: np.ndarray, layout: str, out: tuple,
                         param: tuple) -> tuple[np.ndarray, str | None]:
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
