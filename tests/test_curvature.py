"""gdlab.curvature: top Hessian eigenvalues, dense and by Lanczos, against closed forms.

References: quadratics ½(w − c)ᵀH(w − c) built from a known spectrum (numpy QR), whose Hessian's
eigenvalues are that spectrum exactly, and numpy's eigvalsh of an explicit Hessian.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdlab import curvature


def _quadratic(spectrum, seed=0):
    d = len(spectrum)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    h = (q * spectrum) @ q.T
    return lambda w: 0.5 * w @ jnp.asarray(h) @ w


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_dense_matches_the_spectrum():
    spectrum = np.linspace(3.0, -1.0, 40)   # indefinite: the top-k are the algebraically largest
    loss = _quadratic(spectrum)
    # jitted, as gdlab.custom calls it (one program, not the Hessian's operations one by one)
    got = np.asarray(jax.jit(lambda w: curvature.dense_eigenvalues(loss, w, 3))(jnp.zeros(40)))
    # eigvalsh of a float64 matrix built from the spectrum: agreement to ~10 ulps of |λ| ≤ 3
    np.testing.assert_allclose(got, spectrum[:3], rtol=0, atol=1e-13)


def test_lanczos_converges_with_the_iterations():
    """The top Ritz value approaches λ_max from below, the error shrinking with m: the effect of
    the ``iters`` parameter, measured (a log spectrum of 400 values over 3 decades, gap 1.7 %)."""
    spectrum = 5.0 * np.logspace(0, -3, 400)
    loss = _quadratic(spectrum, seed=1)
    w = jnp.zeros(400)
    errors = [float(spectrum[0] - jax.jit(
        lambda w, m=m: curvature.lanczos_eigenvalues(loss, w, 1, iters=m))(w)[0])
        for m in (5, 20, 80)]
    assert all(e >= -1e-12 for e in errors)          # Ritz values never exceed λ_max
    assert errors[0] > 1e-3 and errors[-1] < 1e-9    # 5 steps are far, 80 are exact to 1e-9
    assert all(b <= a + 1e-12 for a, b in zip(errors, errors[1:]))


def test_top_eigenvalues_switches_to_lanczos_above_dense_max():
    spectrum = np.linspace(2.0, 0.1, 300)
    loss = _quadratic(spectrum, seed=2)
    w = jnp.zeros(300)
    # jitted, as gdlab.custom calls them
    dense = jax.jit(lambda w: curvature.top_eigenvalues(loss, w, 2, dense_max=1000))(w)
    lanczos = jax.jit(lambda w: curvature.top_eigenvalues(loss, w, 2, dense_max=10, iters=120))(w)
    # well-separated top pair (gap 2 %): 120 Lanczos steps agree with the dense answer to 1e-8
    np.testing.assert_allclose(lanczos, dense, rtol=0, atol=1e-8)
    np.testing.assert_allclose(dense, spectrum[:2], atol=1e-12)


def test_nonquadratic_hessian_and_vmap():
    """¼(w² − a²)² has ∇²L = 3w² − a²; a pytree-free scalar and a vmapped batch."""
    loss = lambda w: jnp.sum(0.25 * (w * w - 1.0) ** 2)
    ws = jnp.array([[0.5, 1.0], [2.0, -0.3]])
    got = jax.jit(jax.vmap(lambda w: curvature.top_eigenvalues(loss, w, 2)))(ws)
    want = np.sort(3 * np.asarray(ws) ** 2 - 1.0, axis=1)[:, ::-1]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert float(curvature.top_eigenvalues(lambda w: 0.25 * (w * w - 1) ** 2,
                                           jnp.asarray(1.0))[0]) == pytest.approx(2.0)


def test_hvp_matches_the_matrix():
    spectrum = np.array([4.0, 1.0, 0.5])
    loss = _quadratic(spectrum, seed=3)
    v = jnp.array([1.0, -2.0, 0.5])
    h = np.asarray(jax.hessian(loss)(jnp.zeros(3)))
    np.testing.assert_allclose(curvature.hvp(loss, jnp.zeros(3), v), h @ np.asarray(v),
                               atol=1e-14)


def test_k_beyond_the_krylov_dimension_is_refused():
    with pytest.raises(ValueError, match="Krylov dimension"):
        curvature.lanczos_eigenvalues(lambda w: jnp.sum(w * w), jnp.zeros(3), k=5, iters=4)
