"""The layouts a claimed gradient may take, and the reference Jacobian put into each.

For f: p ↦ f(p) with output shape ``out``, grad_f may return the gradient (p's shape, scalar f), the
Jacobian [out.size × p.size] (rows = outputs), the Jacobian in jax's layout ``out + p``, or, for an
elementwise f, p's shape (the Jacobian's diagonal). Any other shape fails the check with a message
naming the expected shapes (never an exception: a wrong gradient is a wrong answer, not bad input);
a 2-D gradient whose transpose has a layout is compared transposed, to say whether a transpose is
all that is wrong.
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


def _transposed_layout(grad: tuple, out: tuple, param: tuple) -> str | None:
    """For a 2-D, non-square gradient in no layout: the layout its transpose has, if any."""
    if len(grad) == 2 and grad[0] != grad[1]:
        return _layout(grad[::-1], out, param)
    return None


def _shape_problem(pdesc: str, param: tuple, out: tuple, grad: tuple, transposed: bool,
                   trace: ShapeTrace) -> str:
    """Why a gradient of shape ``grad`` is wrong: transposed, or the shapes it could have had."""
    if transposed:
        return (f"grad_f returned shape {fmt_shape(grad)} expected {fmt_shape(grad[::-1])}: "
                f"transposed? Traced: {trace.short()}")
    if math.prod(out) == 1:
        want = f"{pdesc}'s shape {fmt_shape(param)}"
    else:
        want = (f"the Jacobian {fmt_shape((math.prod(out), math.prod(param)))} (rows = outputs), "
                f"{out + param} in jax layout, or {fmt_shape(param)} if f is elementwise")
    return (f"grad_f returned shape {fmt_shape(grad)} but f has output {fmt_shape(out)}, so the "
            f"gradient must be {want}. Traced: {trace.short()}")


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
