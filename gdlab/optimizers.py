"""Optimizers by name, as optax transformations with *traced* hyperparameters.

Each entry builds an ``optax.GradientTransformation`` from hyperparameter arrays inside the vmapped
simulation, so α (and every other hyperparameter) is data: a new α or β of the same shape reuses
the compiled program. A Python float baked in at trace time would recompile for every value
(optax issue 577).

``alpha`` is always the learning rate. Update rules (optax conventions, v the momentum trace):

* ``sgd``:      w ← w − α∇L(w)
* ``momentum``: v ← ∇L + βv,  w ← w − αv                    (heavy ball, optax.sgd(momentum=β))
* ``nesterov``: v ← ∇L + βv,  w ← w − α(∇L + βv)            (optax.sgd(momentum=β, nesterov=True))
* ``adam``:     optax.adam(α, b1, b2, eps)
* any other optax optimizer whose hyperparameters are numbers (``rmsprop``, ``adagrad``, ``lion``,
  …): its numeric keyword arguments become sweepable hyperparameters with optax's defaults.

Each hyperparameter's allowed values are declared once, on its spec (``OptimizerSpec.ranges``, an
:class:`Interval` with the reason), and checked by ``gdlab.sweep`` (fixed values and every value of
an axis), by configs and by :mod:`gdlab.eos`: β in (−1, 1) (heavy ball converges on a quadratic
only there; a negative β is a legitimate, damped, dynamics), Adam's b1, b2 in [0, 1) and eps > 0,
and likewise for the optax optimizers of :data:`GENERIC_RANGES`; a hyperparameter without a
declared range takes any finite number.

Every optimizer but ``sgd`` rounds each product it computes before it is added
(:func:`rounded_products`): XLA's CPU and GPU compilers contract ``a·b + c`` into one fused
multiply-add (one rounding instead of two) wherever the code generator sees the pattern, and which
product of ``a·b + c·d`` it fuses depends on the program around the step (a hyperparameter shared
or one per run, a recorded or unrecorded scan, the CPU tiles or the per-step loop). Without it a
run's last bits, and where dynamics amplify rounding its label, depended on how it was asked for.
``sgd`` (``w + (−α)·∇L``) has one product per sum, so no choice to make, and keeps its fused
multiply-add.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from typing import Callable, Iterable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.extend import core as jex_core

from gdlab._naming import did_you_mean
from gdlab.errors import ArgumentError

__all__ = ["OptimizerSpec", "Interval", "OPTIMIZERS", "GENERIC_RANGES", "get", "names",
           "check_fits", "rounded_products"]


class Interval(NamedTuple):
    """The values ``low ≤ x < high`` (``low < x < high`` when ``open_low``) a hyperparameter may
    take, and ``why``."""

    low: float
    high: float
    why: str
    open_low: bool = False

    def __contains__(self, x: float) -> bool:
        return (self.low < x if self.open_low else self.low <= x) and x < self.high

    def __str__(self) -> str:
        return f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g})"


class OptimizerSpec(NamedTuple):
    """``make(alpha, **hparams)`` builds the transformation; ``defaults`` lists the hparams but
    α; ``ranges`` the values a hyperparameter may take (none listed: any finite number)."""

    make: Callable[..., optax.GradientTransformation]
    defaults: dict[str, float]
    summary: str
    ranges: Mapping[str, Interval] = {}

    def refusal(self, name: str, value: float, dtype=None) -> str | None:
        """Why the finite number ``value`` is not a value of hyperparameter ``name`` (once rounded
        to ``dtype`` too, when given: the run's precision), worded to follow the value in a
        message ("must be in [0, 1) (why)"); None if it is one."""
        allowed = self.ranges.get(name)
        if allowed is None:
            return None
        if value not in allowed:
            return f"must be in {allowed} ({allowed.why})"
        if dtype is not None:
            with np.errstate(over="ignore"):
                rounded = float(np.asarray(value, dtype))
            if not (math.isfinite(rounded) and rounded in allowed):
                return (f"rounds to {rounded!r} in {np.dtype(dtype).name}, outside {allowed} "
                        f"({allowed.why}); use float64 or a value further inside")
        return None

    def first_refusal(self, name: str, values: Iterable[float],
                      dtype=None) -> tuple[float, str] | None:
        """(the first of ``values`` that :meth:`refusal` refuses, why), or None."""
        if name not in self.ranges:
            return None
        for value in values:
            why = self.refusal(name, float(value), dtype)
            if why:
                return float(value), why
        return None


def rounded_products(tx: optax.GradientTransformation,
                     one: jax.Array) -> optax.GradientTransformation:
    """``tx`` whose update rounds every product to the dtype before anything adds it.

    A floating-point product ``p = a·b`` of the update (or the incoming gradient, a product of the
    problem's) that may reach a sum becomes ``p·one``, where ``one`` is exactly 1 but unknown to
    the compiler (a runtime value): a sum ``p·one + c`` that the code generator contracts is
    ``fma(p, 1, c) = fl(p + c)``, the sum of the rounded product, as when it does not. Likewise
    ``√b·one`` keeps XLA from rewriting ``a / √b`` as ``a · rsqrt(b)``, and ``rsqrt(x)`` is taken
    as ``1 / √x``: XLA's rsqrt is an approximation whose last bit depends on the vector width the
    code generator picks. So the update's bits are those of its operations evaluated one at a
    time (IEEE 754, each correctly rounded), in every program that contains it. The update is
    evaluated from its jaxpr; calls, ``custom_jvp``/``custom_vjp`` functions and ``cond``
    branches are entered, other primitives (loops) are bound as they are. Cost: one multiply per
    product that may reach a sum.
    """
    def update(updates, state, params=None):
        closed, shape = jax.make_jaxpr(tx.update, return_shape=True)(updates, state, params)
        out = _evaluate(closed, one, *jax.tree.leaves((updates, state, params)),
                        inputs=len(jax.tree.leaves(updates)))
        return jax.tree.unflatten(jax.tree.structure(shape), out)

    return optax.GradientTransformation(tx.init, update)


def _rounded(x: jax.Array, one: jax.Array) -> jax.Array:
    """x·one for floating x (see :func:`rounded_products`); integers are exact anyway."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    return lax.mul(x, jnp.asarray(one, x.dtype))


def _evaluate(closed: jex_core.ClosedJaxpr, one: jax.Array, *args, inputs: int = 0) -> list:
    """``closed`` on ``args`` as :func:`rounded_products` evaluates it; the first ``inputs``
    arguments are products too (the gradient)."""
    jaxpr, env = closed.jaxpr, {}
    read = lambda v: v.val if isinstance(v, jex_core.Literal) else env[v]
    rounded = _to_round(jaxpr)
    env.update(zip(jaxpr.constvars, closed.consts))
    env.update((v, _rounded(x, one) if i < inputs and v in rounded else x)
               for i, (v, x) in enumerate(zip(jaxpr.invars, args)))
    for eqn in jaxpr.eqns:
        values = [read(v) for v in eqn.invars]
        rule = _RULES.get(eqn.primitive)
        if rule is not None:
            out = rule(eqn, one, *values)
        else:
            out = eqn.primitive.bind(*values, **eqn.primitive.get_bind_params(eqn.params))
        out = out if eqn.primitive.multiple_results else [out]
        env.update((v, _rounded(x, one) if v in rounded else x)
                   for v, x in zip(eqn.outvars, out) if not isinstance(v, jex_core.DropVar))
    return [read(v) for v in jaxpr.outvars]


def _to_round(jaxpr: jex_core.Jaxpr) -> set:
    """The variables of ``jaxpr`` that :func:`rounded_products` rounds: products (and inputs)
    that may reach a sum — consumed by anything but a multiplication, division, comparison or
    function of them, or leaving the update (the caller adds it to w, the next step to its
    state) — and the operands of a division that XLA would rewrite: a square root divided by
    (a / √b → a · rsqrt(b)), a quotient divided or divided by ((a / b) / c → a / (b · c),
    a / (b / c) → a · c / b)."""
    loose = {v for v in jaxpr.outvars if isinstance(v, jex_core.Var)}
    loose.update(v for eqn in jaxpr.eqns if eqn.primitive not in _CONTAINED
                 for v in eqn.invars if isinstance(v, jex_core.Var))
    made = lambda *prims: {eqn.outvars[0] for eqn in jaxpr.eqns if eqn.primitive in prims}
    divisions = [eqn.invars for eqn in jaxpr.eqns if eqn.primitive is lax.div_p]
    divided = {v for num, den in divisions for v in (num, den)}
    quotients = made(lax.div_p)
    return ((made(*_PRODUCTS) & loose) | (made(lax.sqrt_p) & {den for _, den in divisions})
            | (quotients & divided) | (set(jaxpr.invars) & loose))


def _rsqrt(eqn, one, x):
    """1/√x as two correctly rounded operations (a divisor √x·one that XLA does not rewrite)."""
    one = jnp.asarray(one, x.dtype)
    return one / (jnp.sqrt(x) * one)


def _call(eqn, one, *values):
    """A call, custom_jvp or custom_vjp function: its body (the closed jaxpr among its
    parameters), evaluated in place."""
    body = next(v for v in eqn.params.values() if isinstance(v, jex_core.ClosedJaxpr))
    return _evaluate(body, one, *values)


def _cond(eqn, one, index, *operands):
    """``lax.cond``/``switch``: each branch evaluated as :func:`rounded_products` does."""
    branches = [functools.partial(_evaluate, branch, one) for branch in eqn.params["branches"]]
    return lax.switch(index, branches, *operands)


_PRODUCTS = frozenset({lax.mul_p, lax.integer_pow_p, lax.square_p})  # XLA multiplies
# Consumers through which a product cannot become part of a multiply-add.
_CONTAINED = _PRODUCTS | {lax.div_p, lax.sqrt_p, lax.rsqrt_p, lax.pow_p, lax.exp_p,
                          lax.log_p, lax.abs_p, lax.sign_p, lax.max_p, lax.min_p,
                          lax.lt_p, lax.le_p, lax.gt_p, lax.ge_p, lax.eq_p, lax.ne_p}
_RULES = {lax.rsqrt_p: _rsqrt, lax.cond_p: _cond,
          **dict.fromkeys((jex_core.primitives.jit_p, jex_core.primitives.custom_jvp_call_p,
                           jex_core.primitives.custom_vjp_call_p), _call)}


def _one(alpha) -> jax.Array:
    """1 as a runtime scalar: 1 + 0·α (exact for every finite α; an inf or NaN α poisons the
    update anyway). Compilers do not fold 0·α for floats (it is NaN for α = ±inf or NaN). A
    per-entry α (a network's layers) gives its first entry's: a scalar never changes a shape."""
    alpha = jnp.asarray(alpha)
    return 1 + 0 * (alpha if alpha.ndim == 0 else jnp.ravel(alpha)[0])


def _exact(make: Callable[..., optax.GradientTransformation]
           ) -> Callable[..., optax.GradientTransformation]:
    """``make`` whose transformation rounds every product (:func:`rounded_products`)."""
    @functools.wraps(make)
    def exact(alpha, **hp):
        return rounded_products(make(alpha, **hp), _one(alpha))
    return exact


def _sgd(alpha):
    return optax.sgd(learning_rate=alpha)


def _momentum(alpha, beta):
    return optax.sgd(learning_rate=alpha, momentum=beta)


def _nesterov(alpha, beta):
    return optax.sgd(learning_rate=alpha, momentum=beta, nesterov=True)


def _adam(alpha, b1, b2, eps):
    return optax.adam(learning_rate=alpha, b1=b1, b2=b2, eps=eps)


_INF = math.inf
# Heavy ball's iteration on a quadratic has the characteristic polynomial z² − (1 + β − αλ)z + β
# (gdlab.stability); by the Jury criterion it converges iff |β| < 1 and 0 < αλ < 2(1 + β). So no α
# converges at |β| ≥ 1 (β = 1 is undamped: every run's label is decided by rounding), while any
# β in (−1, 1) has a convergent band; a negative β (damped, oscillating momentum) is legitimate.
_HEAVY_BALL_BETA = Interval(-1.0, 1.0, "heavy ball converges on a quadratic iff |β| < 1 and "
                            "0 < αλ < 2(1 + β) (Jury criterion, gdlab.stability); at |β| ≥ 1 no "
                            "step size converges", open_low=True)
# Nesterov's polynomial z² − (1 + β)(1 − αλ)z + β(1 − αλ) converges in a band of αλ around 1 even
# for |β| ≥ 1, but there the trace v ← ∇L + βv no longer forgets old gradients (it is no momentum
# average) and gdlab.stability's closed forms (divergence and oscillation edges) are derived for
# |β| < 1 only.
_NESTEROV_BETA = Interval(-1.0, 1.0, "the momentum trace v ← ∇L + βv forgets old gradients only "
                          "for |β| < 1, where gdlab.stability's closed forms for Nesterov hold",
                          open_low=True)
_B1 = Interval(0.0, 1.0, "m ← b1·m + (1 − b1)·∇L averages past gradients for 0 ≤ b1 < 1; at b1 = 1 "
               "no gradient enters, and Adam's edge-of-stability threshold (2 + 2β₁)/((1 − β₁)α) "
               "is infinite")
_B2 = Interval(0.0, 1.0, "ν ← b2·ν + (1 − b2)·∇L² averages squared gradients, ≥ 0 so that √ν̂ is "
               "real, for 0 ≤ b2 < 1; at b2 = 1 the bias correction ν/(1 − b2ᵗ) is 0/0")
_EPS = Interval(0.0, _INF, "the divisor √ν̂ + eps must be > 0 where every gradient so far was 0 "
                "(ν̂ = 0)", open_low=True)
_EPS_ROOT = Interval(0.0, _INF, "it is added to ν̂ under the square root, √(ν̂ + eps_root), which "
                     "a negative value can make NaN")
_ADAM = {"b1": _B1, "b2": _B2, "eps": _EPS, "eps_root": _EPS_ROOT}

OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(_sgd, {}, "plain gradient descent, w ← w − α∇L (optax.sgd)"),
    "momentum": OptimizerSpec(_exact(_momentum), {"beta": 0.9},
                              "heavy ball, v ← ∇L + βv, w ← w − αv (optax.sgd(momentum=β))",
                              {"beta": _HEAVY_BALL_BETA}),
    "nesterov": OptimizerSpec(_exact(_nesterov), {"beta": 0.9},
                              "Nesterov, w ← w − α(∇L + βv) "
                              "(optax.sgd(momentum=β, nesterov=True))",
                              {"beta": _NESTEROV_BETA}),
    "adam": OptimizerSpec(_exact(_adam), {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
                          "optax.adam(α, b1, b2, eps)", {k: _ADAM[k] for k in ("b1", "b2", "eps")}),
}

# The ranges of optax optimizers reached by name (:func:`get`): those built on Adam's moments
# (optax.scale_by_adam or scale_by_amsgrad: b1, b2, eps, eps_root as above), and RMSprop and
# AdaGrad (optax.scale_by_rms: ν ← decay·ν + (1 − decay)·g², g/√(ν + eps), ν₀ = initial_scale;
# optax.scale_by_rss: a sum of g² from initial_accumulator_value, g/√(sum + eps) where the sum is
# > 0). Others (lion, yogi, adan, …) take any finite number.
GENERIC_RANGES: dict[str, dict[str, Interval]] = {
    **dict.fromkeys(("adamw", "amsgrad", "nadam", "nadamw", "radam", "lamb"), _ADAM),
    "rmsprop": {
        "decay": _B2._replace(why="ν ← decay·ν + (1 − decay)·∇L² averages squared gradients, "
                                  "≥ 0 so that √(ν + eps) is real, for 0 ≤ decay < 1"),
        "eps": _EPS._replace(why="the divisor √(ν + eps) must be > 0 where every gradient so far "
                                 "was 0 (ν = 0)"),
        "initial_scale": Interval(0.0, _INF, "ν starts at initial_scale; a negative start can "
                                             "make √(ν + eps) NaN")},
    "adagrad": {
        "initial_accumulator_value": Interval(0.0, _INF, "the sum of squared gradients starts "
                                                         "there; a negative start can make its "
                                                         "square root NaN (optax: must be >= 0)"),
        "eps": Interval(0.0, _INF, "it is added to the sum of squared gradients under the square "
                                   "root")},
}


@functools.lru_cache(maxsize=None)
def _generic(name: str) -> OptimizerSpec | None:
    """optax.<name> if it takes ``learning_rate`` and its other defaults include numbers."""
    fn = getattr(optax, name, None)
    if not callable(fn) or name.startswith("_"):
        return None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if "learning_rate" not in params:
        return None
    numeric = {k: float(p.default) for k, p in params.items()
               if k != "learning_rate" and isinstance(p.default, numbers.Real)
               and not isinstance(p.default, bool)}

    def make(alpha, **hp):
        return fn(learning_rate=alpha, **hp)

    ranges = {k: r for k, r in GENERIC_RANGES.get(name, {}).items() if k in numeric}
    return OptimizerSpec(_exact(make), numeric, f"optax.{name}(α, {', '.join(numeric)})", ranges)


def names() -> list[str]:
    return list(OPTIMIZERS)


def get(name: str) -> OptimizerSpec:
    """The optimizer ``name`` (registered, or any numeric optax optimizer); ValueError otherwise."""
    if name in OPTIMIZERS:
        return OPTIMIZERS[name]
    spec = _generic(str(name)) if isinstance(name, str) else None
    if spec is not None:
        return spec
    raise ArgumentError("optimizer", f"unknown optimizer {name!r}{did_you_mean(name, OPTIMIZERS)}; "
                        f"known: {', '.join(OPTIMIZERS)} or any optax optimizer taking "
                        "learning_rate", prefix=False)


def check_fits(name: str, param_shape: tuple[int, ...] = ()) -> None:
    """Trace one step ``w ← w + update(∇L(w))`` of optimizer ``name`` with traced hyperparameters on
    a parameter of ``param_shape`` (no computation: ``jax.eval_shape``). Some optax optimizers need
    more than the gradient (``lbfgs`` wants the loss, ``dpsgd`` per-example gradients); ValueError
    with one line says which and why, before any work."""
    get(name)  # an unknown name is reported as such
    # The registered optimizers are built for this step; optax's others are traced, once per shape.
    why = None if name in OPTIMIZERS else _misfit(name, tuple(param_shape))
    if why:
        raise ArgumentError("optimizer", why, prefix=False)


@functools.lru_cache(maxsize=None)
def _misfit(name: str, param_shape: tuple) -> str | None:
    """Why ``name`` does not fit gdlab's step on ``param_shape``, or None (traced once per pair)."""
    spec = get(name)
    scalar = jax.ShapeDtypeStruct((), "float32")
    w = jax.ShapeDtypeStruct(param_shape, "float32")

    def step(h, w):
        tx = spec.make(**h)
        updates, _ = tx.update(w, tx.init(w), w)
        return updates

    try:
        out = jax.eval_shape(step, {"alpha": scalar, **{k: scalar for k in spec.defaults}}, w)
    except Exception as e:  # noqa: BLE001 — whatever optax raises, the answer is "does not fit"
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        return (f"{name!r} does not fit gdlab's step w ← w + update(∇L(w)) with traced "
                f"hyperparameters ({type(e).__name__}: {why}); choose one whose update "
                "needs only the gradient, e.g. sgd, momentum, nesterov, adam, rmsprop")
    if getattr(out, "shape", None) != w.shape:
        return (f"{name!r} does not fit gdlab's step: its update has "
                f"shape {getattr(out, 'shape', None)}, the parameter {w.shape}; choose another")
    return None
