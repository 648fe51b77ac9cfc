"""The shapes of a gradient's intermediates, traced without computing anything.

:func:`trace_shapes` lists every equation of ``jax.make_jaxpr(fn)(*args)`` (inside nested calls
too) with its output shape; intermediates tagged with :func:`gdlab.gradients.functions.label` are
named, so a wrong shape can be shown where it arises: ``Xw [6×1] → Xᵀ(Xw − y) [3×1] → result``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from gdlab.errors import ArgumentTypeError

__all__ = ["ShapeStep", "ShapeTrace", "trace_shapes", "fmt_shape"]


def fmt_shape(shape: Sequence[int]) -> str:
    """(3, 1) -> '[3×1]'; () -> 'scalar'."""
    return "[" + "×".join(map(str, shape)) + "]" if len(shape) else "scalar"


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
