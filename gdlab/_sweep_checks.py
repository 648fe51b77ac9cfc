"""The argument checks of ``gdlab.sweep``: each returns the value it checked, normalised, or raises
:class:`gdlab.errors.ArgumentError` naming the argument, with a one-line message that says what to
do. :func:`gdlab._sweep_plan.plan` calls them in a fixed order, before any work.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gdlab import engine, grids, resources
from gdlab import optimizers as optimizers_lib
from gdlab.errors import USER_CODE_ERRORS, ArgumentError, one_line
from gdlab.interfaces import Bindable, Layered, Problem, WithInit, WithOptimum

__all__ = ["DTYPES", "precision"]

DTYPES = ("float32", "float64")


def precision(dtype: str) -> contextlib.AbstractContextManager:
    """Context in which ``dtype`` is usable: float64 turns on JAX's x64 mode for its duration."""
    choice("dtype", dtype, DTYPES)
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def integer(name: str, value: object, minimum: int, maximum: int | None = None, why: str = "",
            what: str = "an integer") -> int:
    """``value`` as an int in [minimum, maximum], else ArgumentError naming ``name``."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
            or value < minimum):
        raise ArgumentError(name, f"{grids.brief(value)} must be {what} >= {minimum}")
    if maximum is not None and value > maximum:
        raise ArgumentError(name, f"{grids.brief(value)} exceeds {maximum}" +
                            (f" ({why})" if why else ""))
    return int(value)


def tol(value: object, dtype: np.dtype) -> float:
    """tol: a finite number > 0 that ``dtype`` holds as a normal number (not 0, not inf)."""
    number = grids.real(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ArgumentError("tol", f"{grids.brief(value)} must be a finite number > 0")
    info = np.finfo(dtype)
    value = number
    if value > float(info.max):
        raise ArgumentError("tol", f"{value!r} is beyond the largest {dtype.name} "
                                   f"({float(info.max):.3g}): it would be inf; use a smaller tol "
                                   "or float64")
    if value < float(info.tiny):
        raise ArgumentError("tol", f"{value!r} is below the smallest normal {dtype.name} "
                                   f"({float(info.tiny):.3g}): it would round to 0 or a subnormal; "
                                   "use a larger tol or float64")
    return float(value)


def choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value``, one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ArgumentError(name, f"{grids.brief(value)} must be one of "
                                  f"{', '.join(map(repr, choices))}")
    return value


def rounding_check(value: object, dtype: np.dtype) -> bool:
    """rounding_check: True or False; True compares float32 runs with float64 ones."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError("rounding_check", f"{grids.brief(value)} must be True or False")
    if value and dtype != np.float32:
        raise ArgumentError("rounding_check", "compares each run with its float64 simulation: "
                                              "it needs dtype='float32'")
    return bool(value)


def flag(name: str, value: object) -> bool | None:
    """A tri-state switch: True, False or None (decide automatically)."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(name, f"{grids.brief(value)} must be True, False or None")
    return value


def bind(problem, w0) -> tuple[Problem, object]:
    """w0 (None: the problem's ``init()``, else 0.0) and a :class:`~gdlab.interfaces.Bindable`
    problem bound to its layout: (the problem to simulate, w0 as the engine takes it)."""
    if w0 is None:
        w0 = problem.init() if isinstance(problem, WithInit) else 0.0
    if isinstance(problem, Bindable):
        problem, w0 = problem.bind(w0)
    return problem, w0


def problem_fields(problem: object) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(fields, param_shape) of a problem value (a gdlab.problems NamedTuple); else
    ArgumentError."""
    ok = (isinstance(problem, tuple) and isinstance(getattr(type(problem), "_fields", None), tuple)
          and isinstance(problem, Problem))
    shape = None
    if ok:
        try:
            shape = tuple(int(d) for d in problem.param_shape)
        except (AttributeError, TypeError, ValueError):
            ok = False
    if not ok or any(d < 1 for d in shape):
        raise ArgumentError("problem", f"{grids.brief(problem)} is not a problem value; build one "
                                       "with gdlab.problems, e.g. "
                                       "gdlab.problems.scalar_regression(x=1.0, y=100.0)")
    return tuple(type(problem)._fields), shape


def shared(argument: str, value: object, dtype: np.dtype, scalar: bool = False) -> np.ndarray:
    """A value every run shares, cast once to ``dtype`` (never copied per run)."""
    arr = grids.as_numbers(value, argument)
    if scalar and arr.ndim:
        raise ArgumentError(argument, f"{grids.brief(value)} must be one number (shape "
                                      f"{arr.shape}); to vary it, make it an axis with over=")
    with np.errstate(over="ignore"):
        cast = arr.astype(dtype)
    if not np.all(np.isfinite(cast)):
        raise ArgumentError(argument, f"{grids.brief(value)} overflows {dtype.name}; "
                                      "use float64 or rescale")
    return cast


def w0_shape(w0: np.ndarray, param_shape: tuple[int, ...]) -> None:
    """``w0`` broadcasts to the parameter's shape."""
    try:
        np.broadcast_to(w0, param_shape)
    except ValueError:
        raise ArgumentError("w0", f"shape {w0.shape} does not fit the parameter shape "
                                  f"{param_shape}; give a scalar or an array of that "
                                  "shape") from None


def shard(shard: object, n: int) -> tuple[int, int]:
    """``shard`` as (i, count) with 0 <= i < count <= n runs."""
    if not (isinstance(shard, (tuple, list)) and len(shard) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
            for v in shard)):
        raise ArgumentError("shard", f"{grids.brief(shard)} must be a pair (i, n) of integers")
    i, count = int(shard[0]), int(shard[1])
    if not 0 <= i < count <= n:
        raise ArgumentError("shard", f"{i}/{count} must be i/n with 0 <= i < n <= {n} runs")
    return i, count


def simulation(simulation: object, n: int, param_shape: tuple[int, ...]) -> None:
    """``simulation`` is the engine's raw simulation of all ``n`` runs (merged shards)."""
    if not isinstance(simulation, engine.Simulation) or simulation.stats is None:
        raise ArgumentError("simulation", f"{grids.brief(simulation)} is not the raw "
                                          "simulation of a sweep (gdlab merge makes one)")
    shape = tuple(np.shape(simulation.w_final))
    if shape[:1] != (n,) or shape[1:] != param_shape:
        raise ArgumentError("simulation", f"holds {shape[0] if shape else 0} runs of shape "
                                          f"{shape[1:]}, the grid has {n} runs of shape "
                                          f"{param_shape}")


def shapes(problem: Problem, fields: tuple[str, ...], param_shape: tuple[int, ...],
           axes: Mapping[str, np.ndarray], fixed: Mapping[str, np.ndarray],
           dtype: np.dtype) -> None:
    """The problem's loss is one number and its gradient (and optimum and curvature, when known)
    fit the parameter (traced, no computation).

    A field of the wrong shape (``x`` an array in a scalar problem), or a user's loss that returns
    a vector or cannot be differentiated, would otherwise surface as a JAX error deep inside the
    compiled loop.
    """
    leaf = lambda f: jax.ShapeDtypeStruct((), dtype) if f in axes else jax.ShapeDtypeStruct(
        fixed[f].shape, dtype)
    one = type(problem)(*(leaf(f) for f in fields))
    w = jax.ShapeDtypeStruct(param_shape, dtype)
    name = type(problem).__name__
    known = isinstance(problem, WithOptimum)
    with precision(dtype.name):
        try:
            loss = jax.eval_shape(lambda p, w: p.loss(w), one, w)
        except USER_CODE_ERRORS as e:  # whatever the problem's code raises
            loss, why = None, one_line(e)
        if loss is not None and isinstance(problem, Bindable):   # a user's loss
            if loss.shape != ():
                raise ArgumentError("problem.loss", f"{name}'s loss returns shape {loss.shape} "
                                                    f"({loss.dtype}); a loss must return one "
                                                    "real number, e.g. a sum or a mean")
            if not jnp.issubdtype(loss.dtype, jnp.floating):
                raise ArgumentError("problem.loss", f"{name}'s loss returns a value of dtype "
                                                    f"{loss.dtype}, not a real number (the dtype "
                                                    "is wrong, not the shape); a loss must "
                                                    "return one real number, computed in "
                                                    "floating point (an integer has no gradient)")
        try:
            g = jax.eval_shape(lambda p, w: p.grad(w), one, w)
        except USER_CODE_ERRORS as e:  # whatever the problem's code raises
            g = None
            why = why if loss is None else one_line(e)
            if loss is not None and isinstance(problem, Bindable):
                raise ArgumentError("problem.loss", f"{name}'s loss cannot be differentiated by "
                                                    f"jax.grad ({why})") from None
        opt = lam = w
        if g is not None and known:   # the optimum and the curvature, apart: their own error
            try:
                opt, lam = jax.eval_shape(lambda p: (p.optimum(), p.curvature()), one)
            except USER_CODE_ERRORS as e:  # whatever the problem's code raises
                g, why = None, one_line(e)   # a built-in's fields of the wrong shape: below
                if isinstance(problem, Bindable):
                    raise ArgumentError("problem.optimum", f"{name}'s optimum or the curvature "
                                                           f"there cannot be computed ({why})"
                                        ) from None
    if g is not None:
        fits = (g.shape == param_shape and g.dtype == dtype and (not known or (
            lam.shape == () and np.broadcast_shapes(opt.shape, param_shape) == param_shape)))
        if fits:
            return
        why = (f"its gradient has shape {g.shape} ({g.dtype})" + (
            f", optimum {opt.shape}, curvature {lam.shape}" if known else "")
            + f"; the parameter is {param_shape} ({dtype.name})")
    wide = [f for f in fields if f not in axes and fixed[f].ndim > len(param_shape)]
    if not param_shape and wide and not isinstance(problem, Bindable):
        f = wide[0]   # a built-in scalar problem: every parameter is a number
        raise ArgumentError(f"problem.{f}", f"shape {fixed[f].shape} does not fit {name}, whose "
                                            "parameters are numbers; give a number (or sweep it "
                                            "with over=)")
    raise ArgumentError("problem.loss" if isinstance(problem, Bindable) else "problem",
                        f"{name} does not fit its parameters: {why}")


def names(problem: object, optimizer: str, hparams: object, over: object,
          recurrence: bool | None, dtype: np.dtype | None = None,
          ) -> tuple[optimizers_lib.OptimizerSpec, tuple[str, ...], tuple[int, ...], dict]:
    """(optimizer spec, problem fields, param_shape, hyperparameters with their values) after
    checking the optimizer, ``hparams`` and ``over`` name what exists, fit the problem, and give
    every hyperparameter a value in the range its spec declares (:func:`hparam_ranges`; also once
    rounded to ``dtype``, when given)."""
    try:
        spec = optimizers_lib.get(optimizer)
    except ValueError as e:
        raise ArgumentError("optimizer", str(e)) from None
    if hparams is not None and not isinstance(hparams, Mapping):
        raise ArgumentError("hparams", f"{grids.brief(hparams)} must be a mapping "
                                       "name → value, e.g. {'beta': 0.9}")
    if over is not None and not isinstance(over, Mapping):
        raise ArgumentError("over", f"{grids.brief(over)} must be a mapping name → values, "
                                    "e.g. {'x': [0.5, 1.0]}")
    fields, param_shape = problem_fields(problem)
    hp = dict(spec.defaults)
    # a layered problem's per-layer step sizes: hyperparameters too (absent: alpha)
    rates = problem.rate_names if isinstance(problem, Layered) else ()
    for name, value in (hparams or {}).items():
        if name not in spec.defaults and name not in rates:
            known = ", ".join([*spec.defaults, *rates]) or "none besides alpha"
            raise ArgumentError("hparams", f"{optimizer!r} has no hyperparameter {name!r}; "
                                           f"known: {known}")
        hp[name] = value
    for name, _value in (over or {}).items():
        if name == "alpha":
            raise ArgumentError("over", "'alpha' is swept by the alphas argument")
        if not isinstance(name, str) or (name not in fields and name not in hp
                                         and name not in rates and name != "w0"):
            layers = f", a layer's step size ({', '.join(rates)})" if rates else ""
            raise ArgumentError("over", f"{name!r} is not a parameter of {type(problem).__name__} "
                                        f"({', '.join(fields)}), of {optimizer!r}{layers} or "
                                        "'w0'")
        if name in rates:
            hp[name] = None   # swept: one value per run
        if name in fields and np.ndim(getattr(problem, name)) != 0:
            raise ArgumentError("over", f"{name!r} is not a number in {type(problem).__name__} "
                                        f"(shape {np.shape(getattr(problem, name))}); only a "
                                        "scalar parameter can be an axis")
    if recurrence and not (optimizer == "sgd" and param_shape == ()
                           and isinstance(problem, WithOptimum)):
        raise ArgumentError("recurrence", "defined for optimizer 'sgd' on a scalar parameter "
                                          "with a known optimum only")
    try:
        optimizers_lib.check_fits(optimizer, param_shape)
    except ValueError as e:
        raise ArgumentError("optimizer", str(e)) from None
    hparam_ranges(spec, hp, over or {}, dtype)
    return spec, fields, param_shape, hp


def hparam_ranges(spec: optimizers_lib.OptimizerSpec, hp: Mapping[str, object],
                  over: Mapping[str, object], dtype: np.dtype | None = None) -> None:
    """Every value of a hyperparameter with a declared range (``spec.ranges``) lies in it: a fixed
    value of ``hp``, and each value of an axis of ``over`` — an explicit list's every value, a
    ``{start, stop, num}`` range's first and last (a linear or log range is monotone, so its ends
    bound it; the range is not built). ArgumentError ``hparams['beta']``, ``over['beta']`` or
    ``over['beta'].stop`` otherwise. A value that is not one finite number, or a malformed axis,
    is left to the checks that report those (:func:`shared`, ``grids``)."""
    for name in spec.ranges:
        if name in over:
            argument = f"over[{name!r}]"
            refused = axis_refusal(spec, name, over[name], argument, dtype)
            if refused:
                raise ArgumentError(argument + refused[0], refused[1])
        elif name in hp:
            number = _one_number(hp[name])
            why = None if number is None else spec.refusal(name, number, dtype)
            if why:
                raise ArgumentError(f"hparams[{name!r}]", f"{grids.brief(hp[name])} {why}")


def axis_refusal(spec: optimizers_lib.OptimizerSpec, name: str, axis: object, argument: str,
                 dtype: np.dtype | None = None) -> tuple[str, str] | None:
    """Why an axis of hyperparameter ``name`` (a list, or a ``{start, stop, num}`` range, as
    ``over`` or a config's ``[sweep]`` gives it) leaves its declared range: (".start", ".stop" or
    "" to add to the axis' own key, the message), or None. A range is judged by its two ends
    (linear or log, it is monotone; it is not built), a list by its every value; ``argument``
    names the axis in the errors of a malformed one (``grids``)."""
    if isinstance(axis, Mapping):
        size = grids.axis_size(axis, name=argument)   # checks the range (as grids.axis will)
        ends = {"start": grids.axis_part(axis, 0, 1, name=argument)[0],
                "stop": grids.axis_part(axis, size - 1, size, name=argument)[0]}
        for end, value in ends.items():
            why = spec.refusal(name, float(value), dtype)
            if why:
                return f".{end}", f"{float(value)!r} {why}"
        return None
    found = spec.first_refusal(name, grids.axis_values(axis, name=argument), dtype)
    return ("", f"contains {found[0]!r}, which {found[1]}") if found else None


def _one_number(value: object) -> float | None:
    """``value`` as a float if it is one finite real number (a Python, NumPy or JAX scalar, a 0-d
    array), else None."""
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 — whatever cannot be an array is not a number
        return None
    if arr.ndim or arr.dtype.kind not in "iuf":
        return None
    number = grids.real(arr)
    return number if number is not None and math.isfinite(number) else None


def memory(sizes: dict[str, int], *, runs: int, where: str, keep: str, steps: int,
           record_every: int | None, param_shape: tuple[int, ...], dtype: np.dtype,
           shared_bytes: int, chunk_runs: int = 0) -> None:
    """The memory the request needs fits (``resources.check_fits``), before anything per run;
    ``chunk_runs``: the runs one chunk simulates, padding included (``resources.sweep_bytes``)."""
    n = math.prod(sizes.values())
    size_txt = " × ".join(map(str, sizes.values()))
    snapshots = engine.snapshot_count(steps, record_every) if record_every else 0
    fixes = ["keep='compact'"] * (keep == "all") + ["fewer runs"] + (
        ["a coarser record_every"] if record_every else [])
    fix = "use " + (f"{', '.join(fixes[:-1])} or {fixes[-1]}" if len(fixes) > 1 else fixes[0])
    resources.check_fits(
        resources.sweep_bytes(runs, keep=keep, param_size=math.prod(param_shape),
                              itemsize=dtype.itemsize, snapshots=snapshots,
                              shared_bytes=shared_bytes, chunk_runs=chunk_runs),
        argument="over" if len(sizes) > 1 else "alphas",
        what=f"{where}a sweep of {n} runs" + (f" ({size_txt})" if len(sizes) > 1 else "")
             + f" with keep={keep!r}" + (f", record_every={record_every}" if record_every else ""),
        fix=fix)
