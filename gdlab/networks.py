"""A small neural network as a gdlab problem: Sohl-Dickstein's (2024) trainability-map setup.

``mlp(width=16, depth=1, nonlinearity="tanh")`` is a fully connected network with ``depth`` hidden
layers of ``width`` units on inputs of dimension ``width`` and one output, trained by full-batch
gradient descent on the mean squared error over ``points`` random examples:

    h₀ = x,   zₗ = hₗ₋₁Wₗ/√nₗ₋₁,   hₗ = φ(zₗ)   (l = 1 … depth),   f(x) = h_depth W_out / s,
    L = mean over examples of (f(x) − y)²,

with φ = tanh(√2 z), relu(z)·√2 or z, and s = n_depth (mean-field parameterization, the default)
or √n_depth (standard). Inputs, targets and initial weights are standard normal draws from
``jax.random.PRNGKey(seed)``, split in the notebook's order (weights, then x, then y), so the same
seed gives the notebook's network. Every run starts from those weights (``init()``); w is the flat
vector of the weight matrices in layer order.

Each layer can have its own step size: ``alpha`` for the first layer and ``alpha_2`` …
``alpha_{depth+1}`` (hyperparameters, hence sweep axes) for the later ones; a rate not given is
``alpha``. The update of layer l is then Wₗ ← Wₗ − αₗ∇_{Wₗ}L, as in the notebook.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdlab.errors import ArgumentError

__all__ = ["mlp", "digits_mlp", "MLP", "NONLINEARITIES", "PARAMETERIZATIONS", "layer_rate_names",
           "size_key"]

NONLINEARITIES = ("tanh", "relu", "identity")
PARAMETERIZATIONS = ("mean_field", "standard")
_SQRT2 = math.sqrt(2.0)


def size_key(width: int, depth: int, points: int | None) -> str:
    """The config key to blame for an MLP too large: ``points`` if given and the data (points ×
    width) outweighs the weights ((depth + 1)·width², also the default number of points), else the
    weights' larger factor, depth + 1 or width²."""
    if points is not None and points > (depth + 1) * width * width:
        return "problem.points"
    return "problem.depth" if depth + 1 > width * width else "problem.width"


def layer_rate_names(n_layers: int) -> tuple[str, ...]:
    """The step-size hyperparameters of layers 2 … n (layer 1's is ``alpha``)."""
    return tuple(f"alpha_{k}" for k in range(2, n_layers + 1))


class MLP:
    """Methods of every network class (fields: inputs X, targets y, initial weights w_init)."""

    shapes: tuple[tuple[int, int], ...]   # each weight matrix (fan_in, fan_out), in layer order
    nonlinearity: str
    parameterization: str
    param_shape: tuple[int, ...]
    default_dtype = "float64"   # the notebook's precision; float32 on request

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Entries of each layer's weight matrix in the flat w."""
        return tuple(a * b for a, b in self.shapes)

    @property
    def rate_names(self) -> tuple[str, ...]:
        return layer_rate_names(len(self.shapes))

    def weights(self, w) -> list:
        """The weight matrices of the flat vector w."""
        out, start = [], 0
        for fan_in, fan_out in self.shapes:
            out.append(w[start:start + fan_in * fan_out].reshape(fan_in, fan_out))
            start += fan_in * fan_out
        return out

    def predict(self, w, x):
        """f(x) for the rows of x, shape (points,), or (points, outputs) for several outputs."""
        h, weights = x, self.weights(w)
        for W in weights[:-1]:
            h = _activate(h @ W / math.sqrt(W.shape[0]), self.nonlinearity)
        W = weights[-1]
        scale = W.shape[0] if self.parameterization == "mean_field" else math.sqrt(W.shape[0])
        out = h @ W / scale
        return out[:, 0] if out.shape[1] == 1 else out

    def loss(self, w):
        """Mean over examples of the squared error ‖f(x) − y‖² (summed over outputs)."""
        r = self.predict(w, self.X) - self.y
        return jnp.mean(r * r) if r.ndim == 1 else jnp.mean(jnp.sum(r * r, axis=1))

    def grad(self, w):
        return jax.grad(self.loss)(w)

    def run_bytes(self, itemsize: int) -> int:
        """Memory one run touches per step: its weights, gradient and optimizer state (~6 copies
        of w) and each layer's activations and their gradients (~4 points × width arrays)."""
        points, width = self.X.shape
        return itemsize * (6 * self.param_shape[0] + 4 * points * width * len(self.shapes))

    def init(self):
        """The initial weights every run starts from (flat)."""
        return self.w_init

    def step_sizes(self, alpha, rates: dict) -> Any:
        """The per-entry step sizes of w: layer l's entries get αₗ (``rates``; ``alpha`` if
        absent)."""
        per_layer = [alpha] + [rates.get(name, alpha) for name in self.rate_names]
        return jnp.concatenate([jnp.full((size,), a, dtype=jnp.result_type(a))
                                for size, a in zip(self.layer_sizes, per_layer)])


def _activate(z, nonlinearity: str):
    if nonlinearity == "tanh":
        return jnp.tanh(z * _SQRT2)
    if nonlinearity == "relu":
        return jax.nn.relu(z) * _SQRT2
    return z


@functools.lru_cache(maxsize=None)
def _network_class(shapes, nonlinearity, parameterization) -> type:
    name = f"MLP_{nonlinearity}_{'x'.join(str(b) for _, b in shapes)}"
    tuple_cls = NamedTuple(name, [("X", Any), ("y", Any), ("w_init", Any)])
    attrs = {"shapes": shapes, "nonlinearity": nonlinearity, "parameterization": parameterization,
             "param_shape": (sum(a * b for a, b in shapes),),
             "__doc__": f"A {nonlinearity} network with layers {shapes} ({parameterization})."}
    return type(name, (tuple_cls, MLP), attrs)


def mlp(width: int = 16, depth: int = 1, nonlinearity: str = "tanh",
        parameterization: str = "mean_field", points: int | None = None,
        seed: int = 0) -> MLP:
    """Sohl-Dickstein's network: ``depth`` hidden layers of ``width`` (inputs of dimension
    ``width``, one output), ``points`` random examples (default: as many as parameters, 272 for
    width 16; ``width`` for the identity network, as in the notebook), all from ``seed``."""
    for name, value, lo in (("width", width, 1), ("depth", depth, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ArgumentError(f"problem.{name}", f"{value!r} must be an integer >= {lo}")
    if nonlinearity not in NONLINEARITIES:
        raise ArgumentError("problem.nonlinearity", f"{nonlinearity!r} must be one of "
                                                    f"{', '.join(map(repr, NONLINEARITIES))}")
    if parameterization not in PARAMETERIZATIONS:
        raise ArgumentError("problem.parameterization",
                            f"{parameterization!r} must be one of "
                            f"{', '.join(map(repr, PARAMETERIZATIONS))}")
    shapes = tuple((width, width) for _ in range(depth)) + ((width, 1),)
    n_params = sum(a * b for a, b in shapes)
    given = points
    if points is None:
        points = width if nonlinearity == "identity" else n_params
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 1:
        raise ArgumentError("problem.points", f"{points!r} must be an integer >= 1")
    if n_params * 8 > 2**31 or points * width * 8 > 2**31:
        key = size_key(width, depth, given)
        raise ArgumentError(key, f"{width} × {depth} layers with {points} points is too large for "
                                 f"a trainability map; use a smaller {key.split('.')[1]}")
    weights, x, y = _draw(int(seed), shapes, int(points), int(width))
    cls = _network_class(shapes, nonlinearity, parameterization)
    return cls(X=x, y=y, w_init=np.concatenate([w.reshape(-1) for w in weights]))


DIGITS = 1797   # examples in scikit-learn's load_digits (8 × 8 images, 10 classes)


def digits_mlp(hidden: tuple[int, ...] = (128, 128), nonlinearity: str = "tanh",
               parameterization: str = "standard", points: int = 1000, seed: int = 0) -> MLP:
    """An MLP on scikit-learn's handwritten digits: 64 inputs, ``hidden`` layers, 10 outputs, mean
    squared error on one-hot targets (Cohen et al.'s (2021) setup on a dataset shipped on disk).

    The first ``points`` of the 1797 images (a fixed subset), pixels scaled from 0…16 to [0, 1]
    and centred (each feature's mean over the subset subtracted); targets one-hot (10 columns);
    initial weights standard normal from ``seed``. L = mean over examples of ‖f(x) − y‖².
    """
    if isinstance(hidden, (int, np.integer)):
        hidden = (hidden,)
    hidden = tuple(hidden)
    for name, value, lo, hi in (("points", points, 1, DIGITS), ("seed", seed, 0, None),
                                *(("hidden", h, 1, None) for h in hidden)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo \
                or (hi is not None and value > hi):
            raise ArgumentError(f"problem.{name}", f"{value!r} must be an integer >= {lo}"
                                                   + (f" and <= {hi}" if hi else ""))
    if not hidden:
        raise ArgumentError("problem.hidden", "give at least one hidden layer width")
    for name, value, choices in (("nonlinearity", nonlinearity, NONLINEARITIES),
                                 ("parameterization", parameterization, PARAMETERIZATIONS)):
        if value not in choices:
            raise ArgumentError(f"problem.{name}", f"{value!r}: choose from {choices}")
    from sklearn.datasets import load_digits  # ships the data on disk: nothing is downloaded

    data = load_digits()
    x = data.data[:points].astype(np.float64) / 16.0
    x = x - x.mean(axis=0)
    y = np.eye(10)[data.target[:points]]
    sizes = (x.shape[1], *hidden, 10)
    shapes = tuple(zip(sizes[:-1], sizes[1:]))
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.PRNGKey(int(seed)), len(shapes))
        w = np.concatenate([np.asarray(jax.random.normal(k, s, jnp.float64)).reshape(-1)
                            for k, s in zip(keys, shapes)])
    cls = _network_class(shapes, nonlinearity, parameterization)
    return cls(X=x, y=y, w_init=w)


def _draw(seed: int, shapes, points: int, width: int):
    """Initial weights, inputs and targets (float64), drawn as the notebook draws them."""
    with jax.enable_x64(True):
        rng = jax.random.PRNGKey(seed)
        rng, key = jax.random.split(rng)
        keys = jax.random.split(key, len(shapes))
        weights = [np.asarray(jax.random.normal(k, s, jnp.float64)) for k, s in zip(keys, shapes)]
        rng, key = jax.random.split(rng)
        x = np.asarray(jax.random.normal(key, (points, width), jnp.float64))
        rng, key = jax.random.split(rng)
        y = np.asarray(jax.random.normal(key, (points, 1), jnp.float64))[:, 0]
    return weights, x, y
