"""Check a hand-derived gradient of a new function with gdlab's public gradient checker.

Function: the logistic-regression loss with labels y_i ∈ {−1, +1},

    L(w) = (1/m) Σ_i ln(1 + exp(−y_i x_iᵀ w)) = (1/m) 1ᵀ softplus(−y ⊙ Xw),
    X [m×n], w [n×1], y [m×1].

Derivation (column vectors, as in the Lecture 1 homework):

    margins  t = y ⊙ Xw                         [m×1]
    dL/dt    = −(1/m) σ(−t)                      [m×1]   (softplus' = σ)
    dt/dw    = diag(y) X                         [m×n]
    ∇L(w)    = −(1/m) Xᵀ (y ⊙ σ(−y ⊙ Xw))        [n×m][m×1] = [n×1] = shape of w

The script checks this gradient against jax autodiff and float64 central differences in float32 and
float64 (including inputs with |x| up to 1e4), prints the results, and also confirms that a gradient
with the sign flipped is caught. It exits with status 1 if the correct gradient fails or the wrong
one passes.

Run (about 5 s on a laptop CPU):

    python experiments/logistic_gradient_check.py
"""
import sys

import jax.numpy as jnp
import numpy as np

from gdlab.gradients.functions import label, sigmoid, softplus
from gdlab.gradients.gradcheck import check_gradient
from gdlab.gradients.report import render_table


def logistic_loss(w, X, y):
    """L(w) = (1/m) Σ softplus(−y ⊙ Xw); softplus is stable for any margin."""
    m = X.shape[0]
    return jnp.sum(softplus(-y * (X @ w))) / m


def logistic_grad(w, X, y):
    """∇L(w) = −(1/m) Xᵀ(y ⊙ σ(−y ⊙ Xw)), [n×1]."""
    m = X.shape[0]
    t = label(y * label(X @ w, "Xw"), "t = y ⊙ Xw")
    dL_dt = label(-sigmoid(-t) / m, "∂L/∂t")
    return label(X.T @ (y * dL_dt), "Xᵀ(y ⊙ ∂L/∂t)")


def logistic_grad_wrong_sign(w, X, y):
    """A typical slip: the minus sign of −y_i dropped."""
    return -logistic_grad(w, X, y)


def make_data(seed, n, m, dtype, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)) * scale
    w = rng.standard_normal((n, 1))
    y = np.where(rng.standard_normal((m, 1)) > 0, 1.0, -1.0)
    return w.astype(dtype), X.astype(dtype), y.astype(dtype)


results = []
for dtype in (np.float32, np.float64):
    for n, m, scale in ((1, 4, 1.0), (5, 20, 1.0), (32, 100, 1.0), (5, 20, 1e4)):
        w, X, y = make_data(0, n, m, dtype, scale)
        r = check_gradient(logistic_loss, logistic_grad, w, X, y, argnum=0, name="logistic")
        results.append(r)

print(render_table(results))
print()
print(results[1].summary())
print()

w, X, y = make_data(1, 5, 20, np.float32)
wrong = check_gradient(logistic_loss, logistic_grad_wrong_sign, w, X, y,
                       name="logistic (sign flipped)")
print("deliberately wrong gradient:", wrong.message)
print()

ok = all(r.passed for r in results)
caught = not wrong.passed
if ok and caught:
    print("PASS: logistic-loss gradient matches autodiff and finite differences in all "
          f"{len(results)} checks; the sign-flipped gradient is caught")
    sys.exit(0)
print(f"FAIL: {sum(not r.passed for r in results)} of {len(results)} checks failed"
      + ("" if caught else "; the sign-flipped gradient was NOT caught"))
sys.exit(1)
