"""gdlab.networks: the mlp problem against a hand-written NumPy forward and backward pass."""

import jax
import numpy as np
import pytest

from gdlab import networks
from gdlab.errors import ArgumentError

_PHI = {  # φ and φ' as the notebook defines the nonlinearities
    "tanh": (lambda z: np.tanh(np.sqrt(2) * z),
             lambda z: np.sqrt(2) * (1 - np.tanh(np.sqrt(2) * z) ** 2)),
    "relu": (lambda z: np.maximum(z, 0) * np.sqrt(2), lambda z: np.sqrt(2) * (z > 0)),
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
}


def _numpy_loss_and_grad(net, w):
    """Forward and backward pass written from the equations, float64 NumPy."""
    phi, dphi = _PHI[net.nonlinearity]
    weights, start = [], 0
    for a, b in net.shapes:
        weights.append(w[start:start + a * b].reshape(a, b))
        start += a * b
    x, y = np.asarray(net.X), np.asarray(net.y)
    hs, zs = [x], []
    for W in weights[:-1]:
        zs.append(hs[-1] @ W / np.sqrt(W.shape[0]))
        hs.append(phi(zs[-1]))
    W = weights[-1]
    s = W.shape[0] if net.parameterization == "mean_field" else np.sqrt(W.shape[0])
    f = (hs[-1] @ W / s)[:, 0]
    loss = np.mean((f - y) ** 2)
    df = 2 * (f - y) / len(y)
    grads = [hs[-1].T @ df[:, None] / s]
    dh = df[:, None] @ W.T / s
    for k in range(len(weights) - 2, -1, -1):
        dz = dh * dphi(zs[k])
        grads.insert(0, hs[k].T @ dz / np.sqrt(weights[k].shape[0]))
        dh = dz @ weights[k].T / np.sqrt(weights[k].shape[0])
    return loss, np.concatenate([g.reshape(-1) for g in grads])


@pytest.mark.parametrize("nonlinearity", networks.NONLINEARITIES)
@pytest.mark.parametrize("depth,parameterization", [(1, "mean_field"), (2, "standard")])
def test_gradient_matches_numpy_backward_pass(nonlinearity, depth, parameterization):
    net = networks.mlp(width=6, depth=depth, nonlinearity=nonlinearity,
                       parameterization=parameterization, seed=3)
    w = np.asarray(net.init()) * 0.7 + 0.1
    with jax.enable_x64(True):   # jitted, as the engine runs them (one program each)
        loss, grad = float(jax.jit(net.loss)(w)), np.asarray(jax.jit(net.grad)(w))
    want_loss, want_grad = _numpy_loss_and_grad(net, w)
    # the same float64 operations in a different order: agreement to ~1e-13 relative
    assert loss == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-13 * np.abs(want_grad).max())


def test_sohl_dickstein_defaults():
    net = networks.mlp()
    assert net.shapes == ((16, 16), (16, 1))
    assert net.param_shape == (272,) and net.X.shape == (272, 16) and net.y.shape == (272,)
    assert net.rate_names == ("alpha_2",)
    # the identity network trains on `width` points, as in the notebook
    assert networks.mlp(nonlinearity="identity").X.shape == (16, 16)
    # same seed, same network; another seed, another
    np.testing.assert_array_equal(networks.mlp(seed=1).w_init, networks.mlp(seed=1).w_init)
    assert not np.array_equal(networks.mlp(seed=1).X, net.X)


def test_step_sizes_per_layer():
    net = networks.mlp(width=3, depth=2)
    with jax.enable_x64(True):
        steps = np.asarray(net.step_sizes(0.5, {"alpha_3": 2.0}))
    np.testing.assert_array_equal(steps, [0.5] * 9 + [0.5] * 9 + [2.0] * 3)


@pytest.mark.parametrize("kwargs,argument", [
    ({"width": 0}, "problem.width"), ({"depth": 1.5}, "problem.depth"),
    ({"nonlinearity": "gelu"}, "problem.nonlinearity"),
    ({"parameterization": "ntk"}, "problem.parameterization"), ({"points": 0}, "problem.points"),
    ({"width": 100_000}, "problem.width")])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ArgumentError) as err:
        networks.mlp(**kwargs)
    assert err.value.argument == argument and "\n" not in str(err.value)
