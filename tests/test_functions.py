"""The homework functions (Q1-Q3): closed-form values, stability at extremes, and the three-way
check."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdlab.gradients import functions as F
from gdlab.gradients.report import run_homework_checks

DTYPES = ("float32", "float64")


@pytest.fixture(scope="module", params=DTYPES)
def suite(request):
    """The homework suite once per dtype: n ∈ {1, 32} (m = n + 1; n = 64 is checked by
    test_suite_covers_sizes_from_1_to_64), 4 β, plus |x| up to 1e4. n = 1 takes the scalar-output
    and one-column paths, n = 32 the matrix ones and finite differences in several calls (a middle
    size such as 5 takes no path these two miss)."""
    return request.param, run_homework_checks(request.param, seed=3, sizes=(1, 32),
                                              betas=(0.01, 1.0, 10.0, 100.0))


@pytest.mark.parametrize("name", F.CASE_NAMES)
def test_every_function_passes_the_three_way_check(suite, name):
    dtype, results = suite
    mine = [r for r in results if r.name == name]
    n_beta = 4 if F.get_case(name).uses_beta else 1
    assert len(mine) == 3 * n_beta  # 2 sizes + the extreme inputs, each per β
    assert any("|x|≤10000" in r.setting for r in mine)
    for r in mine:
        assert r.passed, r.summary()
        assert r.dtype == dtype
        assert r.autodiff.max_rel_err <= (1e-5 if dtype == "float32" else 1e-12)
        assert np.isfinite(r.finite_differences.max_rel_err)


def test_suite_covers_sizes_from_1_to_64():
    results = run_homework_checks("float32", sizes=(1, 64), functions=["l2_batch"])
    shapes = {r.param_shape for r in results}
    assert shapes == {(1, 1), (64, 1)}
    assert {r.setting for r in results} >= {"n=1, m=2", "n=64, m=65"}


# --- closed forms ---------------------------------------------------------------------------------

def test_sigmoid_closed_forms():
    assert float(F.sigmoid(jnp.zeros((1, 1)))[0, 0]) == 0.5
    assert float(F.sigmoid_grad(jnp.zeros((1, 1)))[0, 0]) == 0.25          # σ'(0) = 1/4
    x = np.linspace(-30, 30, 61).reshape(-1, 1)
    with jax.enable_x64(True):
        s = 1 / (1 + np.exp(-x))
        np.testing.assert_allclose(F.sigmoid(jnp.asarray(x)), s, rtol=1e-14)
        np.testing.assert_allclose(F.sigmoid_grad(jnp.asarray(x)),
                                   np.exp(-x) / (1 + np.exp(-x)) ** 2, rtol=1e-13)


def test_sigmoid_grad_keeps_relative_accuracy_in_the_tail_in_float32():
    # σ(20) rounds to 1 in float32, so σ(1 − σ) would give 0; σ(x)σ(−x) keeps ~1 ulp.
    x = jnp.asarray([[20.0], [-20.0], [80.0]], jnp.float32)
    want = np.exp(-np.abs(np.float64(x))) / (1 + np.exp(-np.abs(np.float64(x)))) ** 2
    np.testing.assert_allclose(np.float64(F.sigmoid_grad(x)), want, rtol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 64])   # degenerate, smallest non-trivial, large
def test_softmax_of_a_uniform_vector(n):
    x = jnp.full((n, 1), 3.7)
    np.testing.assert_allclose(F.softmax(x), np.full((n, 1), 1 / n), rtol=1e-6)
    want = (np.eye(n) - np.ones((n, n)) / n) / n                              # (1/n)(I − 11ᵀ/n)
    np.testing.assert_allclose(F.softmax_jacobian(x), want, rtol=1e-5, atol=1e-7)


def test_softmax_jacobian_matches_numpy():
    x = np.array([[0.3], [-1.2], [2.0]])
    e = np.exp(x)
    s = e / e.sum()
    with jax.enable_x64(True):
        np.testing.assert_allclose(F.softmax_jacobian(jnp.asarray(x)), np.diagflat(s) - s @ s.T,
                                   rtol=1e-14)


@pytest.mark.parametrize("beta", [0.01, 0.5, 1.0, 10.0, 100.0])
def test_softplus_closed_forms(beta):
    zero = jnp.zeros((1, 1))
    np.testing.assert_allclose(F.softplus(zero, beta), np.log(2) / beta, rtol=1e-6)    # (1/β)ln 2
    np.testing.assert_allclose(F.softplus_grad(zero, beta), 0.5, rtol=1e-7)            # σ(0)
    x = np.array([[-2.0], [0.1], [3.0]])
    with jax.enable_x64(True):
        np.testing.assert_allclose(F.softplus(jnp.asarray(x), beta),
                                   np.logaddexp(0, beta * x) / beta, rtol=1e-13)
        np.testing.assert_allclose(F.softplus_grad(jnp.asarray(x), beta),
                                   1 / (1 + np.exp(-beta * x)), rtol=1e-13)


def test_q2_q3_gradients_match_plain_numpy():
    rng = np.random.default_rng(0)
    n, m = 4, 7
    x, z, w = (rng.standard_normal((n, 1)) for _ in range(3))
    A, X, W = rng.standard_normal((n, n)), rng.standard_normal((m, n)), rng.standard_normal((m, n))
    y1, ym, b = (rng.standard_normal((1, 1)), rng.standard_normal((m, 1)),
                 rng.standard_normal((m, 1)))
    with jax.enable_x64(True):
        j = jnp.asarray
        np.testing.assert_allclose(F.quadratic_form(j(x), j(A), j(z)), (x.T @ (A @ x + z)).item(),
                                   rtol=1e-13)
        np.testing.assert_allclose(F.quadratic_form_grad(j(x), j(A), j(z)), (A + A.T) @ x + z,
                                   rtol=1e-13)
        np.testing.assert_allclose(F.l2_single(j(w), j(x), j(y1)), 0.5 * (w.T @ x - y1).item() ** 2,
                                   rtol=1e-13)
        np.testing.assert_allclose(F.l2_single_grad(j(w), j(x), j(y1)), (w.T @ x - y1).item() * x,
                                   rtol=1e-13)
        np.testing.assert_allclose(F.l2_batch(j(w), j(X), j(ym)),
                                   np.sum((X @ w - ym) ** 2) / (2 * m), rtol=1e-13)
        np.testing.assert_allclose(F.l2_batch_grad(j(w), j(X), j(ym)), X.T @ (X @ w - ym) / m,
                                   rtol=1e-13)
        zz = W @ x + b
        np.testing.assert_allclose(F.linear_layer_loss(j(W), j(x), j(b), j(ym)),
                                   np.sum((zz - ym) ** 2), rtol=1e-13)
        np.testing.assert_allclose(F.linear_layer_grad_W(j(W), j(x), j(b), j(ym)),
                                   2 * (zz - ym) @ x.T, rtol=1e-13)
        np.testing.assert_allclose(F.linear_layer_grad_b(j(W), j(x), j(b), j(ym)), 2 * (zz - ym),
                                   rtol=1e-13)


# --- stability at extremes ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", F.CASE_NAMES)
def test_no_nan_or_inf_at_extreme_inputs(dtype, name):
    case = F.get_case(name)
    # value, gradient and autodiff in one program, compiled once for every β
    outputs = jax.jit(lambda *a: (case.value(*a), case.grad(*a),
                                  jax.jacobian(case.value, argnums=case.argnum)(*a)))
    with jax.enable_x64(dtype == "float64"):
        for beta in (0.01, 1.0, 100.0) if case.uses_beta else (1.0,):
            args = [jnp.asarray(a) for a in case.make_inputs(7, 16, 17, np.dtype(dtype), beta, 1e4)]
            assert np.abs(np.asarray(args[case.argnum])).max() == 1e4
            value, grad, auto = outputs(*args)
            for what, a in (("value", value), ("gradient", grad), ("autodiff", auto)):
                assert np.all(np.isfinite(np.asarray(a))), (
                    f"{name} {dtype} β={beta}: {what} not finite")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_activation_limits_are_exact(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.asarray([[1e4], [-1e4]], dtype)
        np.testing.assert_array_equal(F.sigmoid(x), [[1.0], [0.0]])
        np.testing.assert_array_equal(F.sigmoid_grad(x), [[0.0], [0.0]])
        np.testing.assert_allclose(F.softplus(x, 100.0), [[1e4], [0.0]], rtol=1e-7)
        np.testing.assert_array_equal(F.softplus_grad(x, 100.0), [[1.0], [0.0]])
        logits = jnp.asarray([[1e4], [-1e4], [9e3]], dtype)
        np.testing.assert_array_equal(F.softmax(logits), [[1.0], [0.0], [0.0]])
        np.testing.assert_array_equal(F.softmax_jacobian(logits), np.zeros((3, 3)))


# --- registry -------------------------------------------------------------------------------------

def test_registry_entries_are_complete():
    assert len(set(F.CASE_NAMES)) == len(F.CASES) == 8
    assert {c.question for c in F.CASES} == {"Q1.1", "Q1.2", "Q1.3", "Q2.1", "Q2.2", "Q2.3", "Q3"}
    for c in F.CASES:
        assert 2 <= len(c.derivation) <= 5 and c.formula and c.value.__doc__ and c.grad.__doc__
        args = c.make_inputs(0, 3, 4, np.float32)
        assert all(a.dtype == np.float32 for a in args)
        assert np.shape(args[c.argnum]) in {(3, 1), (4, 3), (4, 1)}


def test_make_inputs_follow_the_column_vector_convention():
    w, X, y = F.get_case("l2_batch").make_inputs(0, 3, 5, np.float64)
    assert (w.shape, X.shape, y.shape) == ((3, 1), (5, 3), (5, 1))
    W, x, b, y = F.get_case("linear_layer_W").make_inputs(0, 3, 5, np.float64)
    assert (W.shape, x.shape, b.shape, y.shape) == ((5, 3), (3, 1), (5, 1), (5, 1))
    x, beta = F.get_case("softplus").make_inputs(0, 3, 5, np.float32, beta=10.0)
    assert x.shape == (3, 1) and float(beta) == 10.0


def test_get_case_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"unknown function 'softmx' \(did you mean 'softmax'\?\); "
                                         r"known: sigmoid"):
        F.get_case("softmx")
