"""Momentum and Nesterov in optax's convention: the derived linear map, its region, and
simulations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gdlab
from gdlab import stability, theory

P = gdlab.problems.scalar_regression(1.0, 100.0)


@pytest.mark.parametrize("name, make", [
    ("sgd", lambda a, b: optax.sgd(a)),
    ("momentum", lambda a, b: optax.sgd(a, momentum=b)),
    ("nesterov", lambda a, b: optax.sgd(a, momentum=b, nesterov=True)),
])
def test_iteration_matrix_is_optax_update(name, make):
    """Three optax steps on ½λe² from (e, v) = (e0, 0) equal M³ (e0, 0)ᵀ, computed in float64."""
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for _ in range(20):
            a, b, lam, e0 = rng.uniform(0.01, 2), rng.uniform(0, 0.99), rng.uniform(0.1, 3), 1.7
            tx = make(a, b)
            w, state = jnp.float64(e0), tx.init(jnp.float64(e0))
            s = np.array([e0, 0.0])
            M = stability.iteration_matrix(name, a, lam, b)
            for _ in range(3):
                upd, state = tx.update(lam * w, state, w)
                w = w + upd
                s = M @ s
            assert float(w) == pytest.approx(s[0], rel=1e-12, abs=1e-12)


def test_roots_are_eigenvalues_and_region_is_spectral_radius_below_one():
    rng = np.random.default_rng(1)
    a, b, lam = rng.uniform(-0.5, 5, 4000), rng.uniform(0, 0.99, 4000), rng.uniform(0.1, 2, 4000)
    for name in stability.LINEAR_OPTIMIZERS:
        M = stability.iteration_matrix(name, a, lam, b)
        eig = np.sort_complex(np.linalg.eigvals(M))
        mine = np.sort_complex(stability.roots(name, a, lam, b))
        if name == "sgd":  # the trace row of M is unused by sgd: compare the e-root only
            eig, mine = np.abs(M[:, 0, 0]), np.abs(mine).max(axis=1)
        np.testing.assert_allclose(eig, mine, atol=1e-9)
        rho = stability.spectral_radius(name, a, lam, b)
        clear = np.abs(rho - 1) > 1e-9
        np.testing.assert_array_equal(stability.converges(name, a, lam, b)[clear], (rho < 1)[clear])


def test_closed_form_critical_alphas():
    assert stability.critical_alpha("sgd", 2.0) == 1.0
    assert stability.critical_alpha("momentum", 1.0, 0.5) == 3.0              # 2(1 + β)/λ
    assert stability.critical_alpha("nesterov", 1.0, 0.5) == pytest.approx(1.5)  # 2(1+β)/((1+2β)λ)
    assert stability.oscillation_onset("momentum", 1.0, 0.25) == pytest.approx(0.25)  # (1 − √β)²
    assert (stability.oscillation_onset("nesterov", 1.0, 1 / 3)
            == pytest.approx(0.25))  # ((1−β)/(1+β))²
    with pytest.raises(ValueError, match="no closed-form stability region"):
        stability.converges("adam", 1.0, 1.0)


@pytest.mark.parametrize("optimizer, stop", [("momentum", 4.0), ("nesterov", 2.5)])
def test_simulated_maps_match_closed_form_region(optimizer, stop):
    res = gdlab.sweep(P, np.linspace(0.0, stop, 121), optimizer=optimizer,
                      over={"beta": np.linspace(0.0, 0.95, 25)}, steps=800, tol=1.0)
    pred = theory.predict(res)
    region = theory.region_check(res, pred)
    # ≥ 99.9 % of the cells outside the band |log ρ|·T/2 ≤ 1 (growth/decay by < e over the compared
    # half of the horizon) or rounding-sensitive; the band is a small fraction of the map.
    assert region["fraction"] >= 0.999 and region["n_band"] < 0.1 * res.n_runs
    # The simulated edge is within one grid step of 2(1+β)/λ (or its Nesterov analogue).
    assert region["max_boundary_distance"] <= region["alpha_grid_step"]
    assert theory.agreement(res, pred).fraction == 1.0


@settings(max_examples=20, deadline=None)
@given(spectrum=st.lists(st.floats(0.05, 4.0), min_size=1, max_size=6),
       beta=st.floats(0.0, 0.95), optimizer=st.sampled_from(["sgd", "momentum", "nesterov"]),
       seed=st.integers(0, 3))
def test_random_quadratics_agree_with_theory(spectrum, beta, optimizer, seed):
    q = gdlab.problems.quadratic(spectrum=spectrum, seed=seed, w_star=1.0)
    hp = {} if optimizer == "sgd" else {"beta": beta}
    res = gdlab.sweep(q, np.linspace(0.0, 2.5 / max(spectrum), 24), optimizer=optimizer,
                      hparams=hp, w0=-1.0, steps=150, tol=0.05, chunk_size=24)
    pred = theory.predict(res)
    keep = ~pred.sensitive
    assume(keep.any())   # an example whose every run rounding decides shows nothing: draw another
    np.testing.assert_array_equal(res.regime[keep], pred.regime[keep])
    np.testing.assert_array_equal(res.steps_to_tol[keep], pred.steps_to_tol[keep])


def test_beta_is_traced_one_compile():
    before = gdlab.engine.compile_count()
    for b in (0.1, 0.5, 0.9):
        gdlab.sweep(P, np.linspace(0, 3, 17), optimizer="momentum", hparams={"beta": b}, steps=29)
    assert gdlab.engine.compile_count() - before == 1


def test_boundary_distance_does_not_depend_on_the_order_of_an_alpha_list():
    """The audit's list [2.5, 0.5, 1.5, 0.7, 2.1] on ½(w − 100)²: the largest converging α is 1.5,
    the next grid value 2.1, so the simulated edge is 1.8 against the closed form 2/λ = 2
    (distance 0.2), and the grid step is 0.8 (1.5 → 2.1 → … sorted: 0.2, 0.8, 0.6, 0.4)."""
    for alphas in ([2.5, 0.5, 1.5, 0.7, 2.1], [0.5, 0.7, 1.5, 2.1, 2.5]):
        res = gdlab.sweep(P, alphas, steps=200, tol=1.0, progress=False)
        region = theory.region_check(res, theory.predict(res))
        assert region["max_boundary_distance"] == pytest.approx(0.2)
        assert region["alpha_grid_step"] == pytest.approx(0.8)
