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
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Callable, NamedTuple

import jax
import optax

from gdlab._naming import did_you_mean
from gdlab.errors import ArgumentError

__all__ = ["OptimizerSpec", "OPTIMIZERS", "get", "names", "check_fits"]


class OptimizerSpec(NamedTuple):
    """``make(alpha, **hparams)`` builds the transformation; ``defaults`` lists the hparams but
    α."""

    make: Callable[..., optax.GradientTransformation]
    defaults: dict[str, float]
    summary: str


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
    "momentum": OptimizerSpec(_momentum, {"beta": 0.9},
                              "heavy ball, v ← ∇L + βv, w ← w − αv (optax.sgd(momentum=β))"),
    "nesterov": OptimizerSpec(_nesterov, {"beta": 0.9},
                              "Nesterov, w ← w − α(∇L + βv) "
                              "(optax.sgd(momentum=β, nesterov=True))"),
    "adam": OptimizerSpec(_adam, {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
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

    return OptimizerSpec(make, numeric, f"optax.{name}(α, {', '.join(numeric)})")


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
