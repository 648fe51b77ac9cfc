"""gdlab.sharpness against independent references: numpy's eigvalsh of the dense Hessian, the
quadratics' closed-form spectra, numpy's eigenvalues of P⁻¹H, and a numpy simulation of the
frozen-preconditioner Adam recurrence on either side of its threshold."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdlab
from gdlab import eos as sh


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _net():
    # 4 inputs, one hidden layer of 4, 1 output, 8 points: 20 parameters, a genuinely non-convex
    # loss away from its minimum
    p = gdlab.problems.mlp(width=4, depth=1, points=8, seed=1)
    return p, jnp.asarray(p.init())


def test_lanczos_matches_dense_hessian_on_a_network(x64):
    p, w = _net()
    h = np.asarray(jax.jit(jax.hessian(p.loss))(w), np.float64)
    want = np.linalg.eigvalsh(0.5 * (h + h.T))[::-1]
    # Lanczos (dense_max=0 forces it) with iters = d = 20 spans the whole space: the Ritz values
    # are H's eigenvalues up to rounding of ~d ulps per reorthogonalised step, so 1e-10 relative
    # to λ₁ is loose in float64 (measured ~1e-14).
    got = np.asarray(gdlab.sharpness(p, w, 3, iters=20, dense_max=0))
    np.testing.assert_allclose(got, want[:3], rtol=0, atol=1e-10 * abs(want[0]))
    # the default (dense below DENSE_MAX, 20 < 256) gives the same numbers
    np.testing.assert_allclose(np.asarray(gdlab.sharpness(p, w, 3)), want[:3], rtol=0,
                               atol=1e-12 * abs(want[0]))
    # fewer iterations: the top Ritz value is below λ₁ (Cauchy interlacing), never above (up to
    # rounding, 1e-12 relative); the README's table shows the error shrinking with iters
    err = want[0] - float(gdlab.sharpness(p, w, 3, iters=4, dense_max=0)[0])
    assert -1e-12 * want[0] <= err < 0.5 * want[0], err


def test_sharpness_of_a_network_is_in_its_default_dtype():
    """digits_mlp is float64 by default (``gdlab list``, gdlab.track): gdlab.sharpness, called with
    x64 off, computes in float64 too — 1e-12 of numpy's float64 eigvalsh, which float32 (~1e-7)
    cannot meet — and in float32 when asked."""
    net = gdlab.problems.digits_mlp(hidden=(2,), points=50)    # 160 parameters: dense
    assert net.default_dtype == "float64" and not jax.config.jax_enable_x64
    got = gdlab.sharpness(net, net.init(), 2)
    with jax.enable_x64(True):
        h = np.asarray(jax.hessian(net.loss)(jnp.asarray(net.init(), jnp.float64)))
    want = np.linalg.eigvalsh(0.5 * (h + h.T))[::-1][:2]
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    assert gdlab.sharpness(net, net.init(), dtype="float32").dtype == jnp.float32


@pytest.mark.parametrize("lam_max, kappa", [(3.0, 10.0), (0.5, 1000.0)])
def test_quadratic_sharpness_is_lam_max(x64, lam_max, kappa):
    q = gdlab.problems.quadratic(dim=300, lam_max=lam_max, kappa=kappa, seed=2)
    # closed form λ_i = λ_max κ^(−p_i): the top three, from the profile (0, 1/(d−1), 2/(d−1))
    want = lam_max * kappa ** (-np.arange(3) / 299.0)
    # 300 > DENSE_MAX: Lanczos, 64 iterations. The top eigenvalue is separated from the next by
    # the ratio κ^(1/299) (0.8 % or 2.3 %): the Ritz value converges fast, measured error ~1e-13
    got = np.asarray(gdlab.sharpness(q, jnp.zeros(300), 1))
    np.testing.assert_allclose(got, want[:1], rtol=1e-9)


def test_sharpness_vmaps_over_runs(x64):
    q = gdlab.problems.quadratic(dim=5, lam_max=2.0, kappa=4.0, seed=0)
    ws = jnp.stack([jnp.zeros(5), jnp.ones(5)])
    out = jax.jit(jax.vmap(lambda w: gdlab.sharpness(q, w, 2)))(ws)
    want = 2.0 * 4.0 ** (-np.arange(2) / 4.0)
    np.testing.assert_allclose(np.asarray(out), np.stack([want, want]), rtol=1e-12)


def _frozen_adam_case(seed=0, d=12):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    h = a @ a.T / d + 0.1 * np.eye(d)                   # SPD Hessian
    v_hat = rng.uniform(0.01, 4.0, d)                   # a frozen second moment
    return h, v_hat


def test_preconditioned_sharpness_is_top_eigenvalue_of_pinv_h(x64):
    h, v_hat = _frozen_adam_case()
    eps = 1e-3
    p = np.sqrt(v_hat) + eps
    want = np.max(np.linalg.eigvals(h / p[:, None]).real)      # P⁻¹H, non-symmetric, numpy
    loss = lambda w: 0.5 * w @ jnp.asarray(h) @ w
    # dense path (12 parameters) and Lanczos with iters = d: eigvalsh of S H S in float64 vs
    # numpy's general eig, both backward stable: agreement ~1e-14, 1e-10 leaves room
    for dense_max in (256, 0):
        got = sh.preconditioned_sharpness(loss, jnp.ones(12), jnp.asarray(v_hat), eps,
                                          iters=12, dense_max=dense_max)
        assert float(got[0]) == pytest.approx(want, rel=1e-10)


def _frozen_adam_diverges(h, v_hat, alpha, eps, b1, steps):
    """The Adam recurrence with P frozen (no bias correction), in numpy: m ← β₁m + (1−β₁)∇L,
    w ← w − α m/(√v̂ + ε), on L = ½wᵀHw; True if ‖w‖ grew (a root of modulus ≥ 1.3 beyond the
    edge, √β₁ ≈ 0.95 below it: 200 steps separate them by many orders)."""
    w = np.ones(len(v_hat))
    m = np.zeros_like(w)
    for _ in range(steps):
        m = b1 * m + (1 - b1) * (h @ w)
        w = w - alpha * m / (np.sqrt(v_hat) + eps)
    return bool(np.linalg.norm(w) > np.linalg.norm(np.ones(len(v_hat))))


def test_preconditioned_threshold_separates_stable_from_unstable(x64):
    """With α set so that λ₁(P⁻¹H) is 0.97 or 1.03 times (2 + 2β₁)/((1 − β₁)α), the frozen Adam
    recurrence converges, respectively diverges (the edge that Cohen et al. 2022 state)."""
    h, v_hat = _frozen_adam_case(seed=3)
    eps, b1 = 1e-3, 0.9
    loss = lambda w: 0.5 * w @ jnp.asarray(h) @ w
    lam = float(sh.preconditioned_sharpness(loss, jnp.zeros(12), jnp.asarray(v_hat), eps)[0])
    for factor, diverges in ((0.97, False), (1.03, True)):
        alpha = factor * sh.adam_threshold(1.0, b1) / lam      # λ/threshold(α) = factor
        assert lam / sh.adam_threshold(alpha, b1) == pytest.approx(factor, rel=1e-12)
        assert _frozen_adam_diverges(h, v_hat, alpha, eps, b1, 200) is diverges


def test_thresholds_closed_forms():
    assert sh.gd_threshold(0.1) == pytest.approx(20.0)
    assert sh.momentum_threshold(0.1, 0.9) == pytest.approx(38.0)
    assert sh.adam_threshold(0.1, 0.9) == pytest.approx(380.0)   # 38/α
    assert sh.threshold("momentum", 0.1, beta=0.5) == pytest.approx(30.0)


@pytest.mark.parametrize("optimizer, hparams, message", [
    ("adam", {"b1": 1.0}, r"b1: 1\.0 must be in \[0, 1\) \(m ← b1·m \+ \(1 − b1\)·∇L averages "
                          r"past gradients .*Adam's edge-of-stability threshold"),
    ("adam", {"b1": 1}, r"b1: 1 must be in \[0, 1\)"),
    ("adam", {"b1": float("nan")}, r"b1: nan must be a number in \[0, 1\)"),
    ("adam", {"b1": "0.9"}, r"b1: '0\.9' must be a number in \[0, 1\)"),
    ("adam", {"eps": 0.0}, r"eps: 0\.0 must be in \(0, inf\)"),
    ("adam", {"b2": 1.5}, r"b2: 1\.5 must be in \[0, 1\)"),
    ("momentum", {"beta": 1.0}, r"beta: 1\.0 must be in \(-1, 1\) \(heavy ball converges"),
    ("momentum", {"beta": -1.0}, r"beta: -1\.0 must be in \(-1, 1\)"),
    ("momentum", {"beta": float("inf")}, r"beta: inf must be a number in \(-1, 1\)"),
    ("adam", {"beta1": 0.5}, r"beta1: 'beta1' is not a hyperparameter of 'adam' \(it has: "
                             r"b1, b2, eps\)"),
    ("nesterov", {}, r"optimizer: no edge-of-stability threshold for 'nesterov'; known: sgd, "
                     r"momentum, adam"),
])
def test_threshold_refuses_hyperparameters_outside_its_range(optimizer, hparams, message):
    with pytest.raises(gdlab.errors.ArgumentError, match="^" + message + ".*$"):
        sh.threshold(optimizer, 0.1, **hparams)


def test_threshold_range_edges_and_defaults():
    # the lower edges are inside: β₁ = 0 is RMSProp-like, (2 + 0)/(1·α) = 2/α; β = 0 is GD
    assert sh.threshold("adam", 0.1, b1=0.0, b2=0.0) == pytest.approx(20.0)
    assert sh.threshold("momentum", 0.1, beta=0) == pytest.approx(20.0)
    # just below 1: finite, (2 + 2β₁)/((1 − β₁)α) ≈ 4/(1e-12 · 0.1)
    assert sh.threshold("adam", 0.1, b1=1 - 1e-12, eps=1e-300) == pytest.approx(4e13, rel=1e-3)
    # the defaults of gdlab.optimizers: β = β₁ = 0.9
    assert sh.threshold("adam", 0.1) == pytest.approx(380.0)
    assert sh.threshold("momentum", 0.1) == pytest.approx(38.0)
    assert sh.check_hparams("adam", {"b1": np.float32(0.5)}) == {
        "b1": 0.5, "b2": 0.999, "eps": 1e-8}


@pytest.mark.parametrize("beta", [-0.9, -0.5, -0.1, 0.5])
def test_momentum_threshold_is_the_jury_edge_for_negative_beta_too(beta):
    """Heavy ball on λ: z² − (1 + β − αλ)z + β (optax's form). NumPy's roots, not gdlab's: the
    largest |z| is < 1 at 0.999× the threshold and > 1 at 1.001× it, for β < 0 as for β ≥ 0 (the
    spectral radius moves by ~1e-4 per 1e-3 of λ there, far above the roots' ~1e-15 error)."""
    alpha = 0.1
    edge = sh.threshold("momentum", alpha, beta=beta)
    assert edge == pytest.approx(2 * (1 + beta) / alpha, rel=1e-15)
    radius = lambda lam: max(abs(np.roots([1.0, -(1 + beta - alpha * lam), beta])))
    assert radius(0.999 * edge) < 1 < radius(1.001 * edge)


def test_adam_v_hat_is_bias_corrected_second_moment(x64):
    import optax
    tx = optax.adam(0.1, b2=0.9)
    g = jnp.array([1.0, -2.0])
    state = tx.init(g)
    _, state = tx.update(g, state)
    np.testing.assert_allclose(np.asarray(sh.adam_v_hat(state, 0.9)), [1.0, 4.0], rtol=1e-12)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(gdlab.errors.ArgumentError, match="k: 0 must be"):
        gdlab.sharpness(lambda w: w @ w, jnp.ones(3), 0)
    with pytest.raises(gdlab.errors.ArgumentError, match="exceeds iters"):
        gdlab.sharpness(lambda w: w @ w, jnp.ones(3), 5, iters=4)
    with pytest.raises(gdlab.errors.ArgumentError, match="not a gdlab problem"):
        gdlab.sharpness(3.0, jnp.ones(3))
