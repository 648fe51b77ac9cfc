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
import numbers
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.extend import core as jex_core

from gdlab._naming import did_you_mean
from gdlab.errors import ArgumentError

__all__ = ["OptimizerSpec", "OPTIMIZERS", "get", "names", "check_fits", "rounded_products"]

class OptimizerSpec(NamedTuple):
    """``make(alpha, **hparams)`` builds the transformation; ``defaults`` lists the hparams but
    α."""

    make: Callable[..., optax.GradientTransformation]
    defaults: dict[str, float]
    summary: str


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


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(_sgd, {}, "plain gradient descent, w ← w − α∇L (optax.sgd)"),
    "momentum": OptimizerSpec(_exact(_momentum), {"beta": 0.9},
                              "heavy ball, v ← ∇L + βv, w ← w − αv (optax.sgd(momentum=β))"),
    "nesterov": OptimizerSpec(_exact(_nesterov), {"beta": 0.9},
                              "Nesterov, w ← w − α(∇L + βv) "
                              "(optax.sgd(momentum=β, nesterov=True))"),
    "adam": OptimizerSpec(_exact(_adam), {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
                          "optax.adam(α, b1, b2, eps)"),
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

    return OptimizerSpec(_exact(make), numeric, f"optax.{name}(α, {', '.join(numeric)})")


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
