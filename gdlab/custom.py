"""Problems from any differentiable loss: ``gdlab.problems.custom(loss, optimum=None, **params)``.

A user's ``loss(w, **params) -> scalar`` takes w as any pytree of arrays (a number, a vector, a
dict of weight matrices …) and named parameters, numbers or arrays, any number of which may be
sweep axes (``over={"delta": …}``), exactly as ``x`` is for ``scalar_regression``. The problem is
a NamedTuple of those parameters, like every problem, whose class carries the loss (static: one
class, hence one compiled program, per loss and parameter layout).

The engine steps a flat vector: ``bind(w0)`` fixes the pytree's layout (:class:`Layout`, the
order of ``jax.tree.flatten``), returns the problem for it and w0 flattened; ``unravel(v)`` gives a
flat vector back as the pytree. The gradient is ``jax.grad`` of the loss through that layout.

With ``optimum=`` (a pytree like w, or a function of the parameters returning one) the problem is
judged by its distance to w* like the built-ins, and its curvature at w* is the top eigenvalue of
the Hessian (``gdlab.curvature``: dense for small parameter counts, Lanczos above). Without one,
runs are judged by the loss (``gdlab.regimes``: converged, diverged, undecided).

Checked before any work: the parameters against the loss's signature (and the optimum function's),
and that ∇L vanishes at the optimum (:func:`stationarity`).
"""

from __future__ import annotations

import functools
import inspect
import keyword
import math
import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdlab import curvature, grids
from gdlab._naming import did_you_mean
from gdlab.errors import USER_CODE_ERRORS, ArgumentError, ArgumentTypeError

__all__ = ["custom", "Layout", "CustomProblem", "RESERVED", "STATIONARY_STEP", "stationarity"]

# Names a parameter cannot take: the sweep's own axes and arguments, and the problem's methods.
RESERVED = frozenset({"alpha", "w0", "w", "loss", "grad", "optimum", "curvature", "bind",
                      "unravel", "param_shape", "layout"})

# The relative move of w* whose change of ∇L bounds ∇L(w*) (:func:`stationarity`).
STATIONARY_STEP = 1e-6


class Layout(NamedTuple):
    """How a flat vector maps to the pytree w: the tree structure and every leaf's shape."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    @property
    def param_shape(self) -> tuple[int, ...]:
        """The flat parameter's shape: a lone leaf keeps its own (so a scalar stays a scalar)."""
        return self.shapes[0] if self.is_leaf else (self.size,)

    @property
    def is_leaf(self) -> bool:
        return self.treedef.num_leaves == 1 and jax.tree.structure(0) == self.treedef

    def unravel(self, flat):
        """The pytree of the flat vector (a lone leaf: the array itself)."""
        if self.is_leaf:
            return flat
        leaves, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            leaves.append(flat[start:start + size].reshape(shape))
            start += size
        return jax.tree.unflatten(self.treedef, leaves)

    def ravel(self, tree) -> np.ndarray:
        """The flat float64 vector of a pytree with this layout."""
        leaves = jax.tree.leaves(tree)
        if self.is_leaf:
            return np.asarray(leaves[0], np.float64)
        return np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in leaves])


def layout_of(w0, argument: str = "w0") -> tuple[Layout, np.ndarray]:
    """The layout of the pytree ``w0`` and w0 flattened (float64, finite: else ArgumentError)."""
    leaves, treedef = jax.tree.flatten(w0)
    if not leaves:
        raise ArgumentError(argument, "is an empty pytree; give the initial parameters (a number, "
                                      "an array or a pytree of arrays)")
    arrays = [grids.as_numbers(a, argument) for a in leaves]
    layout = Layout(treedef, tuple(tuple(int(d) for d in a.shape) for a in arrays))
    return layout, layout.ravel(arrays)


class _Constant:
    """A fixed optimum as a hashable function of the parameters (one class per distinct value)."""

    def __init__(self, value):
        self.value = jax.tree.map(lambda a: np.asarray(a, np.float64), value)
        leaves, treedef = jax.tree.flatten(self.value)
        self._key = (treedef, tuple((a.shape, a.tobytes()) for a in leaves))

    def __call__(self, **params):
        return self.value

    def __eq__(self, other):
        return isinstance(other, _Constant) and self._key == other._key

    def __hash__(self):
        return hash(self._key)


class CustomProblem:
    """Methods shared by every custom problem class (the fields are the loss's parameters)."""

    _loss: Callable
    _optimum: Callable | None = None   # set on the classes whose optimum is known
    _ndims: tuple[int, ...]           # each parameter's own ndim (a swept one has one more)
    layout: Layout | None              # None until bound to a w0
    param_shape: tuple[int, ...] | None

    def _params(self) -> dict:
        return dict(zip(self._fields, self))

    def unravel(self, flat):
        """The pytree w of a flat parameter vector (``SweepResult.w_final[i]`` …)."""
        return self.layout.unravel(flat)

    def loss(self, w):
        """L(w): w flat once bound (the engine's), else the pytree itself."""
        return self._loss(w if self.layout is None else self.layout.unravel(w), **self._params())

    def grad(self, w):
        return jax.grad(self.loss)(w)

    def bind(self, w0) -> tuple[CustomProblem, np.ndarray]:
        """This problem for the layout of ``w0``, and w0 flattened (float64); a bound problem
        keeps its layout for a flat w0 of its own shape."""
        if self.layout is not None and np.shape(w0) == self.layout.param_shape:
            return self, np.asarray(grids.as_numbers(w0, "w0"), np.float64)
        layout, flat = layout_of(w0)
        if isinstance(self._optimum, _Constant):
            _check_fits(self._optimum.value, layout)
        cls = _problem_class(self._loss, self._optimum, self._fields,
                             self._ndims, layout)
        bound = cls(*self)
        if isinstance(bound, _WithOptimum):
            try:
                bound.verify()
            except ArgumentError:
                raise
            except USER_CODE_ERRORS:  # noqa: S110 — the user's code fails: the sweep's shape
                pass           # checks name the failing part (loss or optimum) in one line
        return bound, flat

    def _batched(self) -> tuple[bool, ...]:
        """Per field: whether it holds one value per run (a swept parameter's column)."""
        return tuple(np.ndim(v) > nd for v, nd in zip(self, self._ndims))

    def _host(self, fn, *static):
        """``fn(*static, params)`` evaluated on the host in float64, vmapped over swept
        parameters (compiled once per ``fn``, ``static`` and batching); a tuple of outputs
        comes back as a tuple of NumPy arrays."""
        batched = self._batched()
        with jax.enable_x64(True):
            args = tuple(jnp.asarray(v, jnp.float64) for v in self)
            try:
                program = _host_map(fn, static, batched)
            except TypeError:   # an unhashable callable of the user's: compiled for this call
                program = _host_map.__wrapped__(fn, static, batched)
            return jax.tree.map(np.asarray, program(args))


@functools.lru_cache(maxsize=256)
def _host_map(fn, static, batched):
    """The compiled ``fn(*static, ·)``: keyed on its parts (a fresh partial per call would never
    hit the cache, compiling again each time and keeping every program)."""
    f = functools.partial(fn, *static)
    axes = tuple(0 if b else None for b in batched)
    return jax.jit(jax.vmap(f, in_axes=(axes,)) if any(batched) else f)


class _WithOptimum(CustomProblem):
    """A custom problem whose optimum is known: judged by the distance to it."""

    def optimum(self):
        if _traced(self):   # inside the engine: the run's own parameters, in its dtype
            return _ravel_jax(self.layout, self._optimum(**self._params()), _run_dtype(self))
        return self._host(_optimum_flat, self._optimum, self._fields, self.layout)

    def curvature(self):
        """λ_max of ∇²L at the optimum (host, float64; dense or Lanczos, ``gdlab.curvature``)."""
        if _traced(self):
            return _curvature_at_optimum(self._loss, self._optimum, self._fields, self.layout,
                                         tuple(self), _run_dtype(self))
        return self._host(_curvature_at_optimum, self._loss, self._optimum, self._fields,
                          self.layout)

    def verify(self) -> None:
        """ArgumentError naming ``problem.optimum`` unless ∇L(w*) ≈ 0 for every run (host,
        float64, one vectorised call: :func:`stationarity`); :class:`~gdlab.interfaces.Verifiable`,
        called by ``bind`` and, for every chunk of swept values, before a sweep simulates."""
        grad, allowed = self._host(stationarity, self._loss, self._optimum, self._fields,
                                   self.layout)
        with np.errstate(invalid="ignore"):   # w* or ∇L(w*) not finite: not judged here
            bad = np.ravel(np.isfinite(grad) & (np.abs(grad) > allowed))
        if not bad.any():
            return
        j = int(np.flatnonzero(bad)[0])
        g, tol = float(np.ravel(grad)[j]), float(np.ravel(allowed)[j])
        batched = self._batched()
        swept = [(f, np.ravel(v)[j]) for f, v, b in zip(self._fields, self, batched) if b]
        at = (" at " + ", ".join(f"{f} = {float(x):.6g}" for f, x in swept)) if swept else ""
        name = type(self).__name__
        if self.layout.param_shape == ():
            w = float(np.ravel(self.optimum())[j])
            what = f"∇L({w:.6g}) = {g:.3g}, not 0{at}: {w:.6g} is not a minimum of {name}"
        else:
            what = f"|∇L(w*)| = {g:.3g}, not 0{at}: w* is not a minimum of {name}"
        raise ArgumentError("problem.optimum", f"{what} (allowed: |∇L| ≤ {tol:.2g}, its change "
                                               f"when w* moves by {STATIONARY_STEP:g} of itself); "
                                               "give the loss's minimiser, or leave optimum out "
                                               "to judge runs by the loss")


def _traced(problem) -> bool:
    """Whether ``problem`` is being traced (the engine, ``jit``, ``eval_shape``): a field is a
    tracer, or an array made now is one (inside a trace JAX stages every operation: so a problem
    without fields, or with constant ones, is not sent down the host path, whose ``np.asarray``
    cannot read a tracer)."""
    return any(isinstance(v, jax.core.Tracer) for v in (*problem, jnp.zeros(())))


def _run_dtype(problem):
    """The dtype a traced problem runs in: its fields', or JAX's default float without fields."""
    return jnp.result_type(*problem, float)


def _optimum_flat(optimum, fields, layout, args):
    return _ravel_jax(layout, optimum(**dict(zip(fields, args))))


def stationarity(loss, optimum, fields, layout, args):
    """(∇L(w*), the largest |∇L(w*)| accepted) of one run, float64: w* passes when ∇L there is no
    larger than the change of ∇L when w* moves by ``h`` = :data:`STATIONARY_STEP` of itself,

        |∇L(w*)| ≤ max± |∇L(w* ± δ) − ∇L(w*)|,  δ = h·|w*| componentwise (δ = h where w* = 0),

    with |·| the Euclidean norm (∇L itself, signed, for a scalar parameter). Scale-aware: on a
    quadratic, ∇²L = H, the bound is h·|H·|w*||, so a w* off by a relative ε passes iff ε ≤ h,
    whatever the scales of w* and H: float64 rounding (ε ~ 1e-16; a float32 value, ε ~ 6e-8)
    passes with a wide margin, a w* off by 1.1e-6 does not. A flat minimum (H = 0 there, as in
    (w − c)⁴, where ∇L grows like δ³) is held to about 3h.

    Checked: stationarity, ∇L(w*) ≈ 0, where w* and ∇L(w*) are finite (elsewhere the sweep's own
    checks refuse a non-finite optimum or curvature). Not checked: that w* is a minimum — a
    maximum or a saddle, where ∇L = 0 too, passes (its curvature, λ_max ≤ 0 at a maximum, says so)
    — nor that it is the minimum a run from w0 reaches (a double well's other one)."""
    params = dict(zip(fields, args))
    grad = jax.grad(lambda w: loss(layout.unravel(w), **params))
    w_star = _ravel_jax(layout, optimum(**params), jnp.float64)
    g = grad(w_star)
    step = STATIONARY_STEP * jnp.abs(w_star)
    step = jnp.where(jnp.any(step > 0), step, STATIONARY_STEP)   # w* = 0: an absolute step
    size = lambda v: v if v.ndim == 0 else jnp.linalg.norm(v.reshape(-1))
    moved = jnp.fmax(jnp.abs(size(grad(w_star + step) - g)),
                     jnp.abs(size(grad(w_star - step) - g)))   # fmax: a NaN side is ignored
    return size(g), moved


def _curvature_at_optimum(loss, optimum, fields, layout, args, dtype=None):
    params = dict(zip(fields, args))
    w_star = _ravel_jax(layout, optimum(**params), dtype)
    lam = curvature.top_eigenvalues(lambda w: loss(layout.unravel(w), **params), w_star, 1)
    return lam[0]


def _ravel_jax(layout: Layout, tree, dtype=None):
    """The flat w* of the pytree ``tree`` (a lone leaf broadcast to the parameter's shape), in
    ``dtype`` (None: as given; a traced run's own, so that no float64 is asked of a float32 run)."""
    leaves = [jnp.asarray(a, dtype) for a in jax.tree.leaves(tree)]
    if layout.is_leaf:
        return jnp.broadcast_to(leaves[0], layout.param_shape)
    return jnp.concatenate([a.reshape(-1) for a in leaves])


def _check_fits(optimum, layout: Layout) -> None:
    """A fixed optimum, flattened like w, broadcasts to w's flat shape: ArgumentError naming
    ``optimum`` otherwise (one number is w* = c everywhere)."""
    shapes = [np.shape(a) for a in jax.tree.leaves(optimum)]
    size = sum(math.prod(s) for s in shapes)
    if layout.is_leaf:
        fits = len(shapes) == 1 and _broadcasts(shapes[0], layout.param_shape)
    else:
        fits = size in (1, layout.size)
    if not fits:
        got = (f"shape {shapes[0]}" if len(shapes) == 1
               else f"{size} numbers in {len(shapes)} arrays")
        want = (f"shape {layout.param_shape}" if layout.is_leaf
                else f"{layout.size} numbers in {len(layout.shapes)} arrays")
        raise ArgumentError("optimum", f"{got} does not fit w, of {want} (set by w0); give w* "
                                       "like w0, or one number")


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, to) == to
    except ValueError:
        return False


@functools.lru_cache(maxsize=None)
def _problem_class(loss: Callable, optimum: Callable | None, fields: tuple[str, ...],
                   ndims: tuple[int, ...], layout: Layout | None) -> type:
    """The NamedTuple class of one loss, parameter list and layout (cached: one class, hence one
    compiled program, for every problem built from the same loss)."""
    base = CustomProblem if optimum is None else _WithOptimum
    # named as the user named the loss ("quad", "<lambda>"): messages print the class's name
    name = _name_of(loss)
    identifier = "Custom_" + re.sub(r"\W", "_", name)   # whatever the loss is called
    tuple_cls = NamedTuple(identifier, [(f, Any) for f in fields])
    attrs = {"_loss": staticmethod(loss), "_ndims": ndims, "layout": layout,
             "param_shape": None if layout is None else layout.param_shape,
             "__doc__": f"The user loss {name!r} with parameters {', '.join(fields) or 'none'}."}
    if optimum is not None:
        attrs["_optimum"] = staticmethod(optimum)
    return type(name, (tuple_cls, base), attrs)


def _name_of(fn: Callable) -> str:
    """The name a user knows a function by (a callable object without one: its class's)."""
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name else type(fn).__name__


def custom(loss: Callable, *, optimum=None, **params) -> CustomProblem:
    """A problem from ``loss(w, **params) -> scalar``, differentiated by ``jax.grad``.

    ``params``: named numbers or arrays passed to the loss (a number can be a sweep axis);
    ``optimum``: w* when known — a pytree like w, or a function ``optimum(**params)`` returning
    one (needed when a parameter it depends on is swept). The parameter's layout is fixed by the
    sweep's ``w0`` (a number, an array or a pytree), see :meth:`CustomProblem.bind`.

    Refused at once (ArgumentError naming ``problem.<name>``): a parameter the loss does not take
    (unless it takes ``**kwargs``) and one it needs but is not given; an optimum function that
    does not take the same parameters (``problem.optimum``). When bound, and for every swept
    value before a sweep simulates: an optimum where ∇L ≠ 0 (:func:`stationarity`).
    """
    if not callable(loss):
        raise ArgumentTypeError("loss", f"{grids.brief(loss)} is not callable; give a function "
                                        "loss(w, **params) returning a scalar")
    for name in params:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ArgumentError(f"problem.{name}", "is not a usable parameter name; use a "
                                                   "Python identifier not starting with _")
        if name in RESERVED:
            raise ArgumentError(f"problem.{name}", f"{name!r} is reserved "
                                                   f"({', '.join(sorted(RESERVED))}); rename "
                                                   "the loss's parameter")
    _check_signature(loss, params)
    if callable(optimum):
        _check_optimum_signature(optimum, params)
    values = {k: grids.as_numbers(v, f"problem.{k}") for k, v in params.items()}
    if optimum is not None and not callable(optimum):
        optimum = _Constant(_finite_tree(optimum))
    cls = _problem_class(loss, optimum, tuple(values), tuple(v.ndim for v in values.values()),
                         None)
    return cls(*values.values())


def _signature(fn: Callable) -> inspect.Signature | None:
    """``fn``'s signature without annotations (None: it has none to read, e.g. a builtin)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                       return_annotation=sig.empty)


def _by_keyword(params: list[inspect.Parameter]) -> tuple[list[str], list[str], bool]:
    """(the names ``params`` take by keyword, those of them without a default, whether a
    ``**kwargs`` takes any name)."""
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in params if p.default is p.empty and p.kind not in (
        p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return [p.name for p in named], required, any(p.kind == p.VAR_KEYWORD for p in params)


def _check_signature(loss: Callable, params: dict) -> None:
    """The parameters given are the ones ``loss(w, **params)`` takes: ArgumentError naming the
    first unknown one (with the closest of the loss's own names) or a missing one."""
    sig = _signature(loss)
    if sig is None:
        return
    ps = list(sig.parameters.values())
    if not ps or ps[0].kind not in (ps[0].POSITIONAL_ONLY, ps[0].POSITIONAL_OR_KEYWORD):
        return   # no positional slot for w (``*args`` …): the loss's own error says more
    shown = f"{_name_of(loss)}{sig}"
    names, required, any_name = _by_keyword(ps[1:])
    for k in params:
        if k == ps[0].name:
            raise ArgumentError(f"problem.{k}", f"is w in {shown}, the parameter descent moves "
                                                "(its start is w0); rename the loss's parameter")
        if k not in names and not any_name:
            hint = did_you_mean(k, names)
            fix = hint or (f"; {shown} takes {', '.join(names)}" if names else
                           f"; {shown} takes no parameters besides w")
            raise ArgumentError(f"problem.{k}", f"not a parameter of {shown}{fix}")
    for k in required:
        if k not in params:
            raise ArgumentError(f"problem.{k}", f"missing: {shown} has no default for it; "
                                                f"give {k} a value")


def _check_optimum_signature(optimum: Callable, params: dict) -> None:
    """``optimum(**params)`` takes every parameter given and needs no other: ArgumentError naming
    ``problem.optimum`` otherwise."""
    sig = _signature(optimum)
    if sig is None:
        return
    shown = f"{_name_of(optimum)}{sig}"
    names, required, any_name = _by_keyword(list(sig.parameters.values()))
    for k in required:
        if k not in params:
            hint = did_you_mean(k, params)
            given = ", ".join(params) or "none"
            raise ArgumentError("problem.optimum", f"{shown} needs {k!r}, which is not among the "
                                                   f"parameters given ({given}){hint}; the "
                                                   "optimum function is called with those alone "
                                                   f"(a default of the loss is not passed): give "
                                                   f"{k} a value")
    for k in params:
        if k not in names and not any_name:
            raise ArgumentError("problem.optimum", f"{shown} does not take {k!r}; the optimum "
                                                   "function is called with every parameter of "
                                                   "the loss: add it, or end the list with "
                                                   "**params")


def _finite_tree(tree):
    """Every leaf of ``tree`` as finite float64 numbers (ArgumentError naming ``optimum``)."""
    return jax.tree.map(lambda a: grids.as_numbers(a, "optimum"), tree)
