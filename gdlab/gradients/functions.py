"""The homework functions of Lecture 1 (Q1-Q3), each with its hand-derived gradient.

Convention (as in the homework): a vector is a column, an array of shape (n, 1) written [n×1]; a
matrix X is [m×n]. A loss returns a scalar (shape ()). Elementwise activations (sigmoid, softplus)
take any shape and their derivative has the shape of the input (the Jacobian is diagonal). The
softmax Jacobian is the [n×n] matrix J_ij = ∂s_i/∂x_j.

Every analytic gradient below is the closed form in its docstring, written out with jnp; none calls
jax.grad. Key intermediates are tagged with ``label`` so that ``gdlab.gradcheck.trace_shapes`` can
read their shapes off the traced program (the homework's "shape check").

Numerical stability (no overflow or NaN for |x| up to 1e4 in float32 and float64, β in (0, 100]):
sigmoid uses the two-branch form with both branches finite, softmax subtracts max(x), softplus uses
logaddexp, and σ'(x) is evaluated as σ(x)σ(−x), which keeps full relative accuracy in both tails.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name

from gdlab._naming import did_you_mean

__all__ = [
    "label",
    "sigmoid", "sigmoid_grad",
    "softmax", "softmax_jacobian",
    "softplus", "softplus_grad",
    "quadratic_form", "quadratic_form_grad",
    "l2_single", "l2_single_grad",
    "l2_batch", "l2_batch_grad",
    "linear_layer_loss", "linear_layer_grad_W", "linear_layer_grad_b",
    "softmax_sum_error", "Case", "CASES", "CASE_NAMES", "get_case",
]


def label(x: jax.Array, name: str) -> jax.Array:
    """Identity that tags ``x`` as the intermediate ``name`` in the traced program (a ``name``
    equation)."""
    return checkpoint_name(x, name)


def _scalar(a: jax.Array) -> jax.Array:
    """A [1×1] matrix is the scalar it holds."""
    return a.reshape(())


# --- Q1: activations ------------------------------------------------------------------------------

def sigmoid(x: jax.Array) -> jax.Array:
    """σ(x) = 1 / (1 + e^{−x}), elementwise.

    Stable form: 1/(1 + e^{−x}) for x ≥ 0 and e^{x}/(1 + e^{x}) for x < 0, so exp never sees a
    positive argument. Each branch gets an input that is safe for it ("double where"), so the unused
    branch can neither overflow nor put a NaN into the autodiff gradient.
    """
    pos = x >= 0
    x_pos = jnp.where(pos, x, 0.0)
    x_neg = jnp.where(pos, 0.0, x)
    return jnp.where(pos, 1.0 / (1.0 + jnp.exp(-x_pos)), jnp.exp(x_neg) / (1.0 + jnp.exp(x_neg)))


def sigmoid_grad(x: jax.Array) -> jax.Array:
    """σ'(x) = σ(x)(1 − σ(x)) = σ(x)σ(−x), elementwise; same shape as x.

    1 − σ(x) = σ(−x) exactly; the right-hand form avoids the cancellation in 1 − σ(x) for large x
    (in float32 σ(20) rounds to 1, so σ(1 − σ) would give 0 instead of 2.1e-9).
    """
    return label(sigmoid(x), "σ(x)") * label(sigmoid(-x), "σ(−x)")


def softmax(x: jax.Array) -> jax.Array:
    """s_i = e^{x_i} / Σ_j e^{x_j} for x [n×1]; s is [n×1].

    Computed as e^{x_i − c} / Σ_j e^{x_j − c} with c = max(x): the same s (softmax is
    shift-invariant), but every exponent is ≤ 0, so nothing overflows. c carries no gradient because
    s does not depend on it.
    """
    c = jax.lax.stop_gradient(jnp.max(x))
    e = jnp.exp(x - c)
    return e / jnp.sum(e)


def softmax_sum_error(s: np.ndarray) -> float:
    """|Σ_i s_i − 1| for a softmax s: 0 in exact arithmetic, for any logits."""
    return abs(float(np.sum(np.asarray(s, np.float64))) - 1.0)


def softmax_jacobian(x: jax.Array) -> jax.Array:
    """J = ∂s/∂x = diag(s) − s sᵀ, an [n×n] matrix: J_ii = s_i(1 − s_i), J_ij = −s_i s_j."""
    s = label(softmax(x), "s")
    return jnp.diagflat(s) - label(s @ s.T, "s sᵀ")


def softplus(x: jax.Array, beta: jax.Array | float = 1.0) -> jax.Array:
    """f(x) = (1/β) ln(1 + e^{βx}), elementwise; ln(1 + e^{t}) = logaddexp(0, t) never overflows."""
    return jnp.logaddexp(0.0, beta * x) / beta


def softplus_grad(x: jax.Array, beta: jax.Array | float = 1.0) -> jax.Array:
    """f'(x) = (1/β)·βe^{βx}/(1 + e^{βx}) = σ(βx), elementwise; same shape as x."""
    return sigmoid(label(beta * x, "βx"))


# --- Q2: vector calculus --------------------------------------------------------------------------

def quadratic_form(x: jax.Array, A: jax.Array, z: jax.Array) -> jax.Array:
    """f(x) = xᵀ(Ax + z) with x, z [n×1] and A [n×n]; a scalar."""
    return _scalar(x.T @ (A @ x + z))


def quadratic_form_grad(x: jax.Array, A: jax.Array, z: jax.Array) -> jax.Array:
    """∇f(x) = (A + Aᵀ)x + z, an [n×1] vector."""
    sym = label(A + A.T, "A + Aᵀ")
    return label(sym @ x, "(A + Aᵀ)x") + z


def l2_single(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """L(w) = ½(wᵀx − y)² with w, x [n×1] and y [1×1]; a scalar."""
    r = w.T @ x - y
    return 0.5 * _scalar(r) ** 2


def l2_single_grad(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """∇L(w) = (wᵀx − y)x, an [n×1] vector ([1×1] times [n×1] is scalar times vector)."""
    r = label(label(w.T @ x, "wᵀx") - y, "wᵀx − y")
    return r * x


def l2_batch(w: jax.Array, X: jax.Array, y: jax.Array) -> jax.Array:
    """L(w) = (1/2m)‖Xw − y‖² with X [m×n], w [n×1], y [m×1]; a scalar."""
    m = X.shape[0]
    r = X @ w - y
    return _scalar(r.T @ r) / (2 * m)


def l2_batch_grad(w: jax.Array, X: jax.Array, y: jax.Array) -> jax.Array:
    """∇L(w) = (1/m) Xᵀ(Xw − y), an [n×1] vector."""
    m = X.shape[0]
    r = label(label(X @ w, "Xw") - y, "Xw − y")
    return label(X.T @ r, "Xᵀ(Xw − y)") / m


# --- Q3: a linear layer ---------------------------------------------------------------------------

def linear_layer_loss(W: jax.Array, x: jax.Array, b: jax.Array, y: jax.Array) -> jax.Array:
    """L = ‖z − y‖² with z = Wx + b; W [m×n], x [n×1], b, y [m×1]; a scalar."""
    z = W @ x + b
    return _scalar((z - y).T @ (z - y))


def linear_layer_grad_W(W: jax.Array, x: jax.Array, b: jax.Array, y: jax.Array) -> jax.Array:
    """∂L/∂W = 2(z − y)xᵀ, [m×1][1×n] = [m×n], the shape of W."""
    z = label(W @ x + b, "z = Wx + b")
    return label(2.0 * (z - y), "2(z − y)") @ label(x.T, "xᵀ")


def linear_layer_grad_b(W: jax.Array, x: jax.Array, b: jax.Array, y: jax.Array) -> jax.Array:
    """∂L/∂b = 2(z − y), [m×1], the shape of b (∂z/∂b = I)."""
    z = label(W @ x + b, "z = Wx + b")
    return 2.0 * (z - y)


# --- Registry -------------------------------------------------------------------------------------

class Case(NamedTuple):
    """One homework gradient: the value, its analytic gradient, and how to make example inputs."""

    name: str
    question: str
    title: str
    formula: str
    derivation: tuple[str, ...]
    value: Callable[..., jax.Array]
    grad: Callable[..., jax.Array]
    argnum: int                    # which argument is differentiated
    uses_beta: bool                # softplus: the inputs include β
    uses_m: bool                   # the inputs have a second size m (examples / outputs)
    # (seed, n, m, dtype, beta, scale) -> numpy args
    make_inputs: Callable[..., tuple[np.ndarray, ...]]
    # the smallest n whose gradient is not identically 0 (softmax of one logit is the constant 1)
    min_n: int = 1
    # (residual, f(value) -> |residual|): an identity of f's value (residual 0), checked at the
    # extreme inputs
    invariant: tuple[str, Callable[[np.ndarray], float]] | None = None


def _draw(seed, dtype, scale: float, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Standard normal arrays; with scale > 1, random signs and log-uniform magnitudes in
    [1e-2, scale] with, in this order of priority, +scale (the first entry), one standard normal
    entry (the second) and −scale (the last) attained: extreme and moderate entries are mixed, and
    an activation's derivative, 0 to rounding at ±scale, is not 0 everywhere (which would let a
    wrong sign or factor pass)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        if scale == 1.0:
            a = rng.standard_normal(shape)
        else:
            a = (rng.choice([-1.0, 1.0], shape)
                 * np.exp(rng.uniform(np.log(1e-2), np.log(scale), shape)))
            moderate = rng.standard_normal()
            a.flat[-1] = -scale
            if a.size > 1:
                a.flat[1] = moderate
            a.flat[0] = scale
        out.append(a.astype(dtype))
    return out


def _elementwise_inputs(seed, n, m, dtype, beta=1.0, scale=1.0):
    return tuple(_draw(seed, dtype, scale, (n, 1)))


def _softmax_inputs(seed, n, m, dtype, beta=1.0, scale=1.0):
    """Logits of moderate scale (standard normal); with scale > 1, those of _draw with the second
    entry moved to scale − |z|, z standard normal: without a logit near the largest the softmax is
    one-hot and its Jacobian exactly 0, so a wrong sign or factor would pass."""
    (x,) = _draw(seed, dtype, scale, (n, 1))
    if scale != 1.0 and n > 1:
        x[1, 0] = scale - abs(x[1, 0])
    return (x,)


def _softplus_inputs(seed, n, m, dtype, beta=1.0, scale=1.0):
    return (*_draw(seed, dtype, scale, (n, 1)), np.asarray(beta, dtype))


def _quadratic_inputs(seed, n, m, dtype, beta=1.0, scale=1.0):
    return tuple(_draw(seed, dtype, scale, (n, 1), (n, n), (n, 1)))


def _l2_single_inputs(seed, n, m, dtype, beta=1.0, scale=1.0):
    return tuple(_draw(seed, dtype, scale, (n, 1), (n, 1), (1, 1)))


def _l2_batch_inputs(seed, n, m, dtype, beta=1.0, scale=1.0):
    return tuple(_draw(seed, dtype, scale, (n, 1), (m, n), (m, 1)))


def _linear_inputs(seed, n, m, dtype, beta=1.0, scale=1.0):
    return tuple(_draw(seed, dtype, scale, (m, n), (n, 1), (m, 1), (m, 1)))


CASES: tuple[Case, ...] = (
    Case("sigmoid", "Q1.1", "Sigmoid", "σ'(x) = σ(x)(1 − σ(x))",
         ("σ(x) = (1 + e^{−x})^{−1}",
          "σ'(x) = e^{−x} / (1 + e^{−x})²   (chain rule)",
          "= [1 / (1 + e^{−x})]·[e^{−x} / (1 + e^{−x})] = σ(x)(1 − σ(x))",
          "elementwise: σ'(x) has the shape of x"),
         sigmoid, sigmoid_grad, 0, False, False, _elementwise_inputs),
    Case("softmax", "Q1.2", "Softmax", "∂s/∂x = diag(s) − s sᵀ",
         ("s_i = e^{x_i} / Σ_k e^{x_k}",
          "i = j: ∂s_i/∂x_i = (e^{x_i}Σ − e^{x_i}e^{x_i}) / Σ² = s_i − s_i²   (quotient rule)",
          "i ≠ j: ∂s_i/∂x_j = −e^{x_i}e^{x_j} / Σ² = −s_i s_j",
          "together: J = diag(s) − s sᵀ, [n×1][1×n] = [n×n]"),
         softmax, softmax_jacobian, 0, False, False, _softmax_inputs, min_n=2,
         invariant=("Σ s_i − 1", softmax_sum_error)),
    Case("softplus", "Q1.3", "Softplus", "f'(x) = σ(βx)",
         ("f(x) = (1/β) ln(1 + e^{βx})",
          "f'(x) = (1/β)·βe^{βx} / (1 + e^{βx})   (chain rule)",
          "= 1 / (1 + e^{−βx}) = σ(βx)"),
         softplus, softplus_grad, 0, True, False, _softplus_inputs),
    Case("quadratic_form", "Q2.1", "Quadratic form", "∇f = (A + Aᵀ)x + z",
         ("f(x) = xᵀAx + xᵀz",
          "∂(xᵀAx)/∂x = Ax + Aᵀx = (A + Aᵀ)x   (product rule)",
          "∂(xᵀz)/∂x = z",
          "∇f = (A + Aᵀ)x + z: [n×n][n×1] + [n×1] = [n×1] = shape of x"),
         quadratic_form, quadratic_form_grad, 0, False, False, _quadratic_inputs),
    Case("l2_single", "Q2.2", "L2 loss, one example", "∇L = (wᵀx − y)x",
         ("r = wᵀx − y: [1×n][n×1] = [1×1]",
          "L = ½r², ∂L/∂r = r",
          "∂r/∂w = x: [n×1]",
          "∇L = r·x = (wᵀx − y)x: [1×1]·[n×1] = [n×1] = shape of w"),
         l2_single, l2_single_grad, 0, False, False, _l2_single_inputs),
    Case("l2_batch", "Q2.3", "L2 loss, m examples", "∇L = (1/m)Xᵀ(Xw − y)",
         ("r = Xw − y: [m×n][n×1] = [m×1]",
          "L = (1/2m) rᵀr, ∂L/∂r = (1/m) r",
          "∂r/∂w = X [m×n], so ∇L = Xᵀ(∂L/∂r)   (chain rule)",
          "∇L = (1/m)Xᵀ(Xw − y): [n×m][m×1] = [n×1] = shape of w"),
         l2_batch, l2_batch_grad, 0, False, True, _l2_batch_inputs),
    Case("linear_layer_W", "Q3", "Linear layer, ∂L/∂W", "∂L/∂W = 2(z − y)xᵀ",
         ("z_i = Σ_j W_ij x_j + b_i, L = Σ_i (z_i − y_i)²",
          "∂L/∂z_i = 2(z_i − y_i), ∂z_i/∂W_ij = x_j",
          "∂L/∂W_ij = 2(z_i − y_i)x_j   (one position at a time)",
          "∂L/∂W = 2(z − y)xᵀ: [m×1][1×n] = [m×n] = shape of W"),
         linear_layer_loss, linear_layer_grad_W, 0, False, True, _linear_inputs),
    Case("linear_layer_b", "Q3", "Linear layer, ∂L/∂b", "∂L/∂b = 2(z − y)",
         ("∂L/∂z = 2(z − y): [m×1]",
          "∂z/∂b = I",
          "∂L/∂b = 2(z − y): [m×1] = shape of b"),
         linear_layer_loss, linear_layer_grad_b, 2, False, True, _linear_inputs),
)

CASE_NAMES: tuple[str, ...] = tuple(c.name for c in CASES)


def get_case(name: str) -> Case:
    """The registry entry called ``name``; ValueError listing the known names otherwise."""
    for case in CASES:
        if case.name == name:
            return case
    raise ValueError(f"unknown function {name!r}{did_you_mean(name, CASE_NAMES)}; "
                     f"known: {', '.join(CASE_NAMES)}")
