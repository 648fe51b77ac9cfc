"""n-D quadratics and linear regression: gradients, spectra, optimum, per-direction oscillation."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdlab
from gdlab import config, quadratics, theory
from gdlab.regimes import Regime


def test_quadratic_gradient_spectrum_and_hessian():
    q = gdlab.problems.quadratic(dim=6, lam_max=2.0, kappa=50.0, seed=3, w_star=0.5)
    H = q.Q @ np.diag(q.eigenvalues()) @ q.Q.T
    np.testing.assert_allclose(np.linalg.eigvalsh(H), np.geomspace(2.0 / 50, 2.0, 6), rtol=1e-12)
    with jax.enable_x64(True):
        w = jnp.asarray(np.random.default_rng(0).standard_normal(6))
        np.testing.assert_allclose(np.asarray(q.grad(w)), H @ (np.asarray(w) - 0.5), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(jax.grad(q.loss)(w)), np.asarray(q.grad(w)),
                                   rtol=1e-12)
        np.testing.assert_allclose(np.asarray(jax.hessian(q.loss)(w)), H, atol=1e-12)


def test_explicit_spectrum():
    q = gdlab.problems.quadratic(spectrum=[3.0, 0.5, 1.0], seed=-1)
    np.testing.assert_allclose(np.sort(q.eigenvalues()), [0.5, 1.0, 3.0], rtol=1e-12)
    assert (float(q.curvature()) == 3.0
            and quadratics.optimal_alpha([0.5, 3.0]) == pytest.approx(2 / 3.5))


def test_linear_regression_against_numpy():
    lr = gdlab.problems.linear_regression(m=40, d=5, kappa=30.0, seed=2)
    X, y = lr.X, lr.y
    np.testing.assert_allclose(lr.w_star, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-10)
    lam = np.linalg.eigvalsh(X.T @ X / 40)
    assert lam.max() / lam.min() == pytest.approx(30.0, rel=1e-8)
    with jax.enable_x64(True):
        w = jnp.ones(5)
        np.testing.assert_allclose(np.asarray(lr.grad(w)), X.T @ (X @ np.ones(5) - y) / 40,
                                   rtol=1e-12)
        np.testing.assert_allclose(np.asarray(jax.grad(lr.loss)(w)), np.asarray(lr.grad(w)),
                                   rtol=1e-10)
    inline = gdlab.problems.linear_regression([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], [1.0, 2.0, 3.0])
    assert inline.w_star.shape == (2,)


@pytest.mark.parametrize("kwargs, message", [
    ({"X": [[1.0, 2.0], [2.0, 4.0]], "y": [1.0, 2.0]}, "XᵀX is singular"),
    ({"X": [[1.0, 2.0]], "y": [1.0, 2.0]}, "do not fit"),
    ({"m": 3, "d": 5}, "must be >= d"),
])
def test_linear_regression_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gdlab.problems.linear_regression(**kwargs)


def test_quadratic_bad_spectrum():
    with pytest.raises(ValueError, match="must be a non-empty list of finite numbers > 0"):
        gdlab.problems.quadratic(spectrum=[1.0, -2.0])


def test_every_direction_with_alpha_lambda_above_one_oscillates():
    q = gdlab.problems.quadratic(spectrum=[0.2, 0.6, 1.0, 1.4, 2.0], seed=-1, w_star=0.0)
    res = gdlab.sweep(q, [0.6, 0.9], w0=10.0, steps=60, tol=1e-3)
    lam = np.array([0.2, 0.6, 1.0, 1.4, 2.0])
    for i, a in enumerate(res.alpha.astype(float)):
        np.testing.assert_array_equal(res.mode_flips[i] > 0, a * lam > 1)


def test_nd_gd_converges_iff_alpha_below_two_over_lambda_max_and_rate():
    q = gdlab.problems.quadratic(dim=8, kappa=20.0, seed=1)
    res = gdlab.sweep(q, np.linspace(0.05, 2.5, 50), w0=0.0, steps=400, tol=1e-2)
    conv = np.isin(res.regime, [Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING])
    a = res.alpha.astype(float)
    np.testing.assert_array_equal(conv[np.abs(a - 2) > 0.03], (a < 2)[np.abs(a - 2) > 0.03])
    # At α = 2/(λ_min + λ_max) the slowest direction contracts by (κ − 1)/(κ + 1) per step.
    opt = gdlab.sweep(q, [quadratics.optimal_alpha(q.eigenvalues())], dtype="float64", steps=60,
                      tol=1e-12)
    assert opt.contraction[0] == pytest.approx(19 / 21, rel=2e-2)
    pred = theory.predict(res)
    assert theory.agreement(res, pred).fraction == 1.0


def test_kappa_axis_one_batched_computation():
    q = gdlab.problems.quadratic(dim=4, seed=0)
    before = gdlab.engine.compile_count()
    res = gdlab.sweep(q, np.linspace(0.1, 2.2, 12), over={"kappa": {"start": 1, "stop": 1e3,
                                                                     "num": 7, "scale": "log"}},
                      steps=100, tol=1e-2)
    assert res.grid_shape == (12, 7) and gdlab.engine.compile_count() - before == 1
    assert theory.agreement(res, theory.predict(res)).fraction == 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"kappa": 0}, r"^kappa: 0 must be >= 1 \(the condition number λ_max/λ_min\)$"),
    ({"kappa": 0.5, "lam_max": 2.0}, r"^kappa: 0\.5 must be >= 1 "),
    ({"lam_max": 0.0}, r"^lam_max: 0\.0 must be > 0 \(the largest eigenvalue\)$"),
    ({"lam_max": -1.0, "kappa": 0}, r"^lam_max: -1\.0 must be > 0"),
])
def test_quadratic_bad_lam_max_or_kappa_names_only_what_is_wrong(kwargs, message):
    with pytest.raises(gdlab.errors.ArgumentError, match=message):
        gdlab.problems.quadratic(**kwargs)


def _tib(n_bytes: float) -> str:
    return f"{n_bytes / 2**40:.3g} TiB"


@pytest.mark.parametrize("kwargs, argument, dim", [
    ({"dim": 10**6}, "dim", 10**6),
    ({"spectrum": np.ones(300_000)}, "spectrum", 300_000),
])
def test_quadratic_too_large_for_memory_is_refused_before_allocating(monkeypatch, kwargs,
                                                                     argument, dim):
    """dim = 10⁶ would need four 10⁶ × 10⁶ float64 matrices (the Gaussian, its QR, the
    eigenvectors): 32·d² bytes plus the interpreter's 400 MiB, refused in one line naming the
    argument, as the config path refuses problem.dim, instead of NumPy's MemoryError."""
    monkeypatch.setenv("GDLAB_MEMORY_LIMIT", "1G")
    want = _tib(32 * dim**2 + 400 * 2**20)
    with pytest.raises(gdlab.errors.TooLargeError,
                       match=rf"^{argument}: a quadratic of dimension {dim} needs about "
                             rf"{re.escape(want)}, more than the 1 GiB allowed .*; choose a "
                             rf"smaller {argument}$"):
        gdlab.problems.quadratic(**kwargs)


def test_config_and_factory_refuse_the_same_size(monkeypatch, tmp_path):
    """One estimate, two entry points: the config's problem.dim and quadratic(dim=…)."""
    monkeypatch.setenv("GDLAB_MEMORY_LIMIT", "1G")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[problem]\nname = "quadratic"\ndim = 100000\n[optimizer]\nname = "sgd"\n'
                   '[sweep]\nalpha = [0.1]\n')
    want = f"{(32 * 10**10 + 400 * 2**20) / 2**30:.3g} GiB"     # 298 GiB
    with pytest.raises(ValueError, match=rf"problem\.dim: .* needs about {want}"):
        config.load(cfg)
    with pytest.raises(ValueError, match=rf"^dim: .* needs about {want}"):
        gdlab.problems.quadratic(dim=100_000)


def test_generated_least_squares_too_large_is_refused_before_allocating(monkeypatch):
    """m × d = 10⁷ × 10⁴ generated data would need X, its QR factor, their product and XᵀX's
    eigenvectors: 32·(m·d + d²) bytes plus the interpreter's 400 MiB — refused in one line naming
    m, instead of NumPy's MemoryError."""
    monkeypatch.setenv("GDLAB_MEMORY_LIMIT", "1G")
    m, d = 10**7, 10**4
    want = _tib(32 * (m * d + d * d) + 400 * 2**20)
    with pytest.raises(gdlab.errors.TooLargeError,
                       match=rf"^m: least-squares data of {m} × {d} needs about "
                             rf"{re.escape(want)}, more than the 1 GiB allowed .*; choose a "
                             rf"smaller m \(rows\) or d \(columns\)$"):
        gdlab.problems.linear_regression(m=m, d=d)
