"""Problems: the analytic gradient and curvature equal autodiff; the optimum has zero gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdlab import problems

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
nonzero = finite.filter(lambda v: abs(v) > 1e-2)


@settings(max_examples=60, deadline=None)
@given(x=nonzero, y=finite, w=finite)
def test_scalar_regression_gradient_matches_autodiff(x, y, w):
    with jax.enable_x64(True):
        p = problems.scalar_regression(jnp.float64(x), jnp.float64(y))
        w = jnp.float64(w)
        auto = jax.grad(p.loss)(w)
        # Closed form x(xw − y), evaluated in plain numpy as the reference.
        ref = x * (x * w - y)
        assert np.isclose(float(p.grad(w)), ref, rtol=1e-12, atol=1e-9)
        # Autodiff and the analytic gradient agree to float64 rounding of the products involved.
        assert np.isclose(float(auto), float(p.grad(w)), rtol=1e-12, atol=1e-9)
        assert np.isclose(float(jax.hessian(p.loss)(w)), x * x, rtol=1e-12)
        assert np.isclose(float(p.curvature()), x * x, rtol=1e-15)


def test_scalar_regression_optimum_and_jit():
    p = problems.scalar_regression(2.0, 10.0)
    assert float(p.optimum()) == 5.0
    assert float(jax.jit(p.grad)(jnp.float32(5.0))) == 0.0
    assert float(jax.jit(p.loss)(jnp.float32(0.0))) == 50.0
    assert jax.jit(p.grad)(jnp.float32(1.0)).dtype == jnp.float32


def test_problem_is_a_pytree_that_vmaps():
    p = problems.scalar_regression(jnp.array([1.0, 2.0]), jnp.array([100.0, 100.0]))
    g = jax.vmap(lambda q, w: q.grad(w))(p, jnp.zeros(2))
    np.testing.assert_array_equal(np.asarray(g), [-100.0, -200.0])


def test_unknown_problem_suggests_name():
    with pytest.raises(ValueError, match=r"unknown problem 'scalar_regresion' "
                                         r"\(did you mean 'scalar_regression'\?\)"):
        problems.get("scalar_regresion")
