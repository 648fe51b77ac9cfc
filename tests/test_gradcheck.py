"""gdlab.gradcheck: wrong gradients are caught and located, shapes are traced, bad input fails
clearly."""
import dataclasses
import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

from gdlab.gradients import functions as F
from gdlab.gradients.gradcheck import GradCheckResult, check_gradient, trace_shapes
from gdlab.gradients.report import render_markdown, render_table, run_homework_checks, to_json


def inputs(name, n=3, m=4, dtype=np.float32, seed=0):
    return F.get_case(name).make_inputs(seed, n, m, np.dtype(dtype))


def worst_entry_in_message(result, got_fn, args):
    """The message names the worst entry with the autodiff value and grad_f's value there."""
    c = result.autodiff
    got = np.asarray(got_fn(*args), np.float64)
    assert f"worst at {list(c.worst_index)}" in result.message
    assert f"got {got[c.worst_index]:.6g}" in result.message
    assert f"expected {c.expected:.6g}" in result.message


# --- wrong gradients are caught -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_missing_transpose_in_dL_dW_is_caught_as_a_transpose(dtype):
    args = inputs("linear_layer_W", n=3, m=3, dtype=dtype)    # square W: the shapes still fit

    def wrong(W, x, b, y):
        return 2.0 * x @ (W @ x + b - y).T                          # x(z − y)ᵀ instead of (z − y)xᵀ
    r = check_gradient(F.linear_layer_loss, wrong, *args)
    assert not r.passed and not r.autodiff.passed and not r.finite_differences.passed
    assert "transpose is missing or extra" in r.message
    worst_entry_in_message(r, wrong, args)


def test_missing_transpose_with_non_square_W_fails_on_shape():
    args = inputs("linear_layer_W", n=3, m=5)

    def wrong(W, x, b, y):
        return 2.0 * x @ (W @ x + b - y).T
    r = check_gradient(F.linear_layer_loss, wrong, *args)          # a failed check, not a crash
    assert not r.passed and r.layout == "transposed gradient"
    assert "grad_f returned shape [3×5] expected [5×3]: transposed?" in r.message
    assert "its transpose matches autodiff" in r.message


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_missing_factor_2_is_caught_as_a_constant_factor(dtype):
    args = inputs("linear_layer_W", dtype=dtype)

    def wrong(W, x, b, y):
        return (W @ x + b - y) @ x.T
    r = check_gradient(F.linear_layer_loss, wrong, *args)
    assert not r.passed
    assert "got ≈ 0.5 × expected: a constant factor is off" in r.message
    worst_entry_in_message(r, wrong, args)


def test_missing_one_over_m_is_caught_as_a_factor_m():
    args = inputs("l2_batch", n=3, m=8)
    r = check_gradient(F.l2_batch, lambda w, X, y: X.T @ (X @ w - y), *args)
    assert not r.passed and "got ≈ 8 × expected" in r.message


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_missing_A_transpose_is_caught_and_located(dtype):
    args = inputs("quadratic_form", n=5, dtype=dtype)

    def wrong(x, A, z):
        return A @ x + z                                            # should be (A + Aᵀ)x + z
    r = check_gradient(F.quadratic_form, wrong, *args)
    assert not r.passed and r.autodiff.n_bad == 5
    assert "differs from autodiff in 5 of 5 entries" in r.message
    assert "not a constant multiple or a transpose" in r.message
    assert "finite differences agree with autodiff" in r.message
    x, A, z = (np.float64(a) for a in args)
    assert r.autodiff.expected == pytest.approx(((A + A.T) @ x + z)[r.autodiff.worst_index],
                                                rel=1e-5)
    worst_entry_in_message(r, wrong, args)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "l2_single", "linear_layer_b"])
def test_wrong_sign_is_caught(name):
    case = F.get_case(name)
    args = inputs(name)
    r = check_gradient(case.value, lambda *a: -case.grad(*a), *args, argnum=case.argnum)
    assert not r.passed and "the sign is wrong" in r.message


def test_sigmoid_derivative_without_the_one_minus_is_caught():
    r = check_gradient(F.sigmoid, lambda x: F.sigmoid(x) ** 2, *inputs("sigmoid", n=6))
    assert not r.passed and "differs from autodiff" in r.message


def test_elementwise_gradient_for_softmax_is_rejected():
    r = check_gradient(F.softmax, lambda x: F.softmax(x) * (1 - F.softmax(x)), *inputs("softmax"))
    assert r.layout == "elementwise" and not r.passed
    assert "f is not elementwise" in r.message and "full Jacobian [3×3]" in r.message


def test_non_finite_autodiff_reference_is_reported():
    def naive_sigmoid(x):                       # the jnp.where trap: the unused branch overflows
        return jnp.where(x >= 0, 1 / (1 + jnp.exp(-x)), jnp.exp(x) / (1 + jnp.exp(x)))
    r = check_gradient(naive_sigmoid, F.sigmoid_grad, np.array([[1e4], [0.5]], np.float32))
    assert not r.passed and "autodiff is not finite at [0, 0]" in r.message


# --- correct gradients pass; result contents ------------------------------------------------------

def test_correct_gradient_result_contents():
    args = inputs("l2_batch", n=3, m=6)
    r = check_gradient(F.l2_batch, F.l2_batch_grad, *args)
    assert (isinstance(r, GradCheckResult) and r.passed
            and r.message.startswith("PASS l2_batch [float32]"))
    assert (r.param, r.param_shape, r.grad_shape, r.output_shape, r.layout) == (
        "w (argument 0)", (3, 1), (3, 1), (), "gradient")
    assert r.autodiff.max_rel_err <= 1e-5 and r.finite_differences.max_rel_err <= 1e-5
    assert "1e-05" in r.tolerances and "float64" in r.tolerances
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.passed = False


def test_float64_inputs_are_checked_in_float64_without_global_x64():
    r = check_gradient(F.l2_batch, F.l2_batch_grad, *inputs("l2_batch", dtype=np.float64))
    assert r.passed and r.dtype == "float64" and r.autodiff.rtol == 1e-12
    assert r.autodiff.max_rel_err < 1e-14


def test_jacobian_layouts_are_accepted():
    x = inputs("softmax", n=4)[0]
    matrix = check_gradient(F.softmax, F.softmax_jacobian, x)
    jax_layout = check_gradient(F.softmax, lambda x: F.softmax_jacobian(x).reshape(4, 1, 4, 1), x)
    assert matrix.passed and matrix.layout == "jacobian" and matrix.grad_shape == (4, 4)
    assert jax_layout.passed and jax_layout.layout == "jacobian (jax layout)"


def test_unhashable_callables_work():
    class Loss:
        __hash__ = None

        def __call__(self, w, X, y):
            return F.l2_batch(w, X, y)
    assert check_gradient(Loss(), F.l2_batch_grad, *inputs("l2_batch")).passed


def test_finite_differences_stay_accurate_for_a_huge_loss():
    # L ~ 1e20 while |b_j| can be 1e-2: the fixed step ε^(1/3)·max(1,|b_j|) is all rounding; the
    # step ladder picks a larger one, so the FD check keeps its meaning (error well below the
    # tolerance).
    case = F.get_case("linear_layer_b")
    args = case.make_inputs(0, 16, 17, np.float64, 1.0, 1e4)
    r = check_gradient(case.value, case.grad, *args, argnum=2)
    assert r.passed and r.finite_differences.max_rel_err < 1e-5


# --- shape traces ---------------------------------------------------------------------------------

def test_l2_batch_shape_trace():
    n, m = 3, 7
    t = trace_shapes(F.l2_batch_grad, *inputs("l2_batch", n=n, m=m))
    assert [(s.label, s.shape) for s in t.named()] == [("Xw", (m, 1)), ("Xw − y", (m, 1)),
                                                        ("Xᵀ(Xw − y)", (n, 1))]
    assert t.output == (n, 1) and dict(t.inputs)["w"] == (n, 1)
    assert t.short() == "Xw [7×1] → Xw − y [7×1] → Xᵀ(Xw − y) [3×1] → result [3×1]"
    # Xᵀ, read off the jaxpr
    assert ("transpose", (n, m)) in [(s.primitive, s.shape) for s in t.steps]


@pytest.mark.parametrize("name, expected", [
    ("quadratic_form", [("A + Aᵀ", (3, 3)), ("(A + Aᵀ)x", (3, 1))]),
    ("softmax", [("s", (3, 1)), ("s sᵀ", (3, 3))]),
    ("l2_single", [("wᵀx", (1, 1)), ("wᵀx − y", (1, 1))]),
    ("linear_layer_W", [("z = Wx + b", (4, 1)), ("2(z − y)", (4, 1)), ("xᵀ", (1, 3))]),
])
def test_shape_traces_name_the_intermediates(name, expected):
    case = F.get_case(name)
    r = check_gradient(case.value, case.grad, *inputs(name, n=3, m=4), argnum=case.argnum)
    assert [(s.label, s.shape) for s in r.shape_trace.named()] == expected
    assert r.passed


def test_gradient_of_the_wrong_shape_fails_loudly():
    args = inputs("l2_batch", n=3, m=6)
    r = check_gradient(F.l2_batch, lambda w, X, y: (X.T @ (X @ w - y)).T / 6, *args)
    assert not r.passed and re.search(re.escape("grad_f returned shape [1×3] expected [3×1]: "
                                                "transposed?") + ".*Traced: .*result \\[1×3\\]",
                                      r.message)
    r = check_gradient(F.l2_batch, lambda w, X, y: (X.T @ (X @ w - y)).ravel(), *args)
    assert not r.passed and "grad_f returned shape [3] but f has output scalar" in r.message


def test_grad_f_that_cannot_be_traced_names_the_shapes():
    args = inputs("linear_layer_W", n=3, m=4)
    with pytest.raises(ValueError, match=re.escape("grad_f failed on arguments of shapes "
                                                   "['[4×3]', '[3×1]'")):
        check_gradient(F.linear_layer_loss, lambda W, x, b, y: 2 * (W @ x + b - y) @ x, *args)


# --- bad input ------------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors():
    w, X, y = inputs("l2_batch", n=3, m=6)
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=re.escape("X (argument 1, shape [6×3]) is not finite "
                                                   "(nan at [2, 1])")):
        check_gradient(F.l2_batch, F.l2_batch_grad, w, bad, y)
    with pytest.raises(TypeError, match=re.escape("w (argument 0) has dtype int64; the "
                                                  "differentiated argument "
                                                  "must be float32 or float64")):
        check_gradient(F.l2_batch, F.l2_batch_grad, np.ones((3, 1), np.int64), X, y)
    with pytest.raises(ValueError,
                       match=re.escape("argnum=3 but 3 argument(s) were given; pass 0..2")):
        check_gradient(F.l2_batch, F.l2_batch_grad, w, X, y, argnum=3)
    with pytest.raises(TypeError, match="grad_f must be callable, got str"):
        check_gradient(F.l2_batch, "grad", w, X, y)
    with pytest.raises(ValueError, match=re.escape("l2_batch: f failed on arguments of shapes "
                                                   "['[3×1]', '[6×4]'")):
        check_gradient(F.l2_batch, F.l2_batch_grad, w, np.ones((6, 4), np.float32), y)


def test_run_homework_checks_validates_its_arguments():
    with pytest.raises(ValueError, match=r"unknown function 'softmx' \(did you mean 'softmax'\?\); "
                                         r"known: sigmoid, "):
        run_homework_checks(functions=["softmx"])
    with pytest.raises(ValueError, match="dtype='float16'; use one of 'float32', 'float64'"):
        run_homework_checks("float16")
    with pytest.raises(ValueError,
                       match=re.escape("betas: 0 is not allowed; softplus β must lie in (0, 100]")):
        run_homework_checks(betas=(1.0, 0))
    with pytest.raises(ValueError, match=re.escape("betas: 101.0 is not allowed")):
        run_homework_checks(betas=(101.0,))
    with pytest.raises(ValueError, match=re.escape("sizes: 0 is not allowed")):
        run_homework_checks(sizes=(0, 3))


# --- rendering ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run():
    return run_homework_checks("float32", sizes=(1, 3), betas=(1.0,),
                               functions=["softplus", "l2_batch"])


def test_render_table(small_run):
    table = render_table(small_run)
    lines = table.splitlines()
    for col in ("function", "formula", "shape trace (traced)", "rel err vs autodiff",
                "rel err vs FD", "result"):
        assert col in lines[0]
    assert "∇L = (1/m)Xᵀ(Xw − y)" in table and "Xw − y [4×1]" in table
    assert lines[-1] == f"{len(small_run)}/{len(small_run)} PASS (float32)"


def test_render_markdown_reads_as_the_worked_answer(small_run):
    md = render_markdown(small_run)
    assert md.startswith("# Lecture 1 homework, Q1–Q3")
    assert "## Q2.3 `l2_batch`: ∇L = (1/m)Xᵀ(Xw − y)" in md and "## Q1.3 `softplus`" in md
    assert "2. L = (1/2m) rᵀr, ∂L/∂r = (1/m) r" in md
    assert "| Xw − y | [4×1] |" in md and "| result (gradient) | [3×1] = shape of w [3×1] ✓ |" in md
    assert re.search(r"\| n=3, m=4 \| [0-9.e+-]+ \| [0-9.e+-]+ \| PASS \|", md)
    assert "| setting | vs autodiff (float32) | vs FD (float32) | result (float32) |" in md


def test_to_json_is_strict_json():
    good = run_homework_checks("float32", sizes=(2,), functions=["sigmoid"])
    bad = check_gradient(lambda x: jnp.where(x >= 0, 1 / (1 + jnp.exp(-x)),
                                             jnp.exp(x) / (1 + jnp.exp(x))),
                         F.sigmoid_grad, np.array([[1e4], [0.5]], np.float32))
    doc = to_json(good + [bad])
    text = json.dumps(doc, allow_nan=False)
    assert doc["passed"] is False and doc["n_checks"] == 3 and doc["n_passed"] == 2
    back = json.loads(text)["results"]
    assert back[0]["shape_trace"]["output"] == [2, 1] and back[0]["autodiff"]["passed"] is True
    assert back[-1]["autodiff"]["max_rel_err"] is None                    # inf → None
