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
"""

from __future__ import annotations

import functools
import keyword
import math
import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdlab import curvature, grids
from gdlab.errors import ArgumentError, ArgumentTypeError

__all__ = ["custom", "Layout", "CustomProblem", "RESERVED"]

# Names a parameter cannot take: the sweep's own axes and arguments, and the problem's methods.
RESERVED = frozenset({"alpha", "w0", "w", "loss", "grad", "optimum", "curvature", "bind",
                      "unravel", "param_shape", "layout"})


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
        return cls(*self), flat

    def _host(self, fn, *static):
        """``fn(*static, params)`` evaluated on the host in float64, vmapped over swept
        parameters (compiled once per ``fn``, ``static`` and batching)."""
        batched = tuple(np.ndim(v) > nd for v, nd in zip(self, self._ndims))
        with jax.enable_x64(True):
            args = tuple(jnp.asarray(v, jnp.float64) for v in self)
            try:
                program = _host_map(fn, static, batched)
            except TypeError:   # an unhashable callable of the user's: compiled for this call
                program = _host_map.__wrapped__(fn, static, batched)
            return np.asarray(program(args))


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
    name = re.sub(r"\W", "_", getattr(loss, "__name__", "loss"))
    tuple_cls = NamedTuple(f"Custom_{name}", [(f, Any) for f in fields])
    attrs = {"_loss": staticmethod(loss), "_ndims": ndims, "layout": layout,
             "param_shape": None if layout is None else layout.param_shape,
             "__doc__": f"The user loss {name!r} with parameters {', '.join(fields) or 'none'}."}
    if optimum is not None:
        attrs["_optimum"] = staticmethod(optimum)
    return type(f"Custom_{name}", (tuple_cls, base), attrs)


def custom(loss: Callable, *, optimum=None, **params) -> CustomProblem:
    """A problem from ``loss(w, **params) -> scalar``, differentiated by ``jax.grad``.

    ``params``: named numbers or arrays passed to the loss (a number can be a sweep axis);
    ``optimum``: w* when known — a pytree like w, or a function ``optimum(**params)`` returning
    one (needed when a parameter it depends on is swept). The parameter's layout is fixed by the
    sweep's ``w0`` (a number, an array or a pytree), see :meth:`CustomProblem.bind`.
    """
    if not callable(loss):
        raise ArgumentTypeError("loss", f"{grids.brief(loss)} is not callable; give a function "
                                        "loss(w, **params) returning a scalar")
    for name in params:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ArgumentError(f"params[{name!r}]", "is not a usable parameter name; use a "
                                                     "Python identifier not starting with _")
        if name in RESERVED:
            raise ArgumentError(f"params[{name!r}]", f"{name!r} is reserved "
                                                     f"({', '.join(sorted(RESERVED))}); rename "
                                                     "the loss's parameter")
    values = {k: grids.as_numbers(v, f"problem.{k}") for k, v in params.items()}
    if optimum is not None and not callable(optimum):
        optimum = _Constant(_finite_tree(optimum))
    cls = _problem_class(loss, optimum, tuple(values), tuple(v.ndim for v in values.values()),
                         None)
    return cls(*values.values())


def _finite_tree(tree):
    """Every leaf of ``tree`` as finite float64 numbers (ArgumentError naming ``optimum``)."""
    return jax.tree.map(lambda a: grids.as_numbers(a, "optimum"), tree)
