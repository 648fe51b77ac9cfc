"""The arguments of a gradient check, validated at the boundary and cast to the check's dtype."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from gdlab.errors import ArgumentError, ArgumentTypeError
from gdlab.gradients._shapes import fmt_shape

__all__: list[str] = []


def _require_callables(f: Any, grad_f: Any) -> None:
    """TypeError (ArgumentTypeError) naming whichever of f and grad_f is not callable."""
    if not callable(f) or not callable(grad_f):
        bad = "f" if not callable(f) else "grad_f"
        raise ArgumentTypeError(bad, f"{bad} must be callable, got "
                                f"{type(f if bad == 'f' else grad_f).__name__}", prefix=False)


def _prepare(args: tuple, argnum: int, names: list[str]) -> tuple[list, np.dtype]:
    """The arguments, checked (numeric, finite; args[argnum] float32 or float64 and not empty), the
    floating ones cast to args[argnum]'s dtype (Python floats kept weakly typed), and that dtype."""
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
