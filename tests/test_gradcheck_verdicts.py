"""check_gradient's verdicts say what is wrong; a wrong shape is a failed check; every check of the
homework suite can fail; report.md holds the worked answer once.

References are plain NumPy closed forms (∂L/∂W = 2(z − y)xᵀ for L = ‖Wx + b − y‖²), corrupted on
purpose; the tolerance is the check's own (rtol = 1e-5 in float32: ‖g − e‖∞ ≤ 1e-5·‖e‖∞)."""
import dataclasses
import os
import re
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdlab import cli
from gdlab.gradients import functions as F
from gdlab.gradients import report
from gdlab.gradients._compare import _compare
from gdlab.gradients._layouts import _layout
from gdlab.gradients.gradcheck import check_gradient
from gdlab.gradients.report import _settings, run_stability_checks

RTOL_OF = {"float32": 1e-5, "float64": 1e-12}  # check_gradient's autodiff tolerances
RTOL = RTOL_OF["float32"]
TINY = float(np.finfo(np.float32).tiny)


def dL_dW(W, x, b, y):
    """∂L/∂W = 2(Wx + b − y)xᵀ, in float64 NumPy (the independent reference)."""
    W, x, b, y = (np.asarray(a, np.float64) for a in (W, x, b, y))
    return 2 * (W @ x + b - y) @ x.T


@pytest.fixture(scope="module")
def ref():
    """∂L/∂W at the inputs the suite uses for n = 3, m = 4: a [4×3] reference with 12 entries."""
    return dL_dW(*F.get_case("linear_layer_W").make_inputs(0, 3, 4, np.dtype(np.float32)))


def diagnosis(got, exp):
    """The failed comparison's message, which ends with the diagnosis."""
    c = _compare("autodiff", got, exp, RTOL, TINY)
    assert not c.passed
    return c.message


# --- the diagnosis names the actual mistake -------------------------------------------------------

def test_one_entry_off_by_a_tenth_of_a_percent_is_one_wrong_entry(ref):
    got = ref.copy()
    got[2, 1] *= 1.001                                  # 1e-3 relative > 1e-5: fails at that entry
    d = diagnosis(got, ref)
    assert "constant factor is off" not in d
    assert ("diagnosis: 1 of 12 entries wrong (at [2, 1], the worst off by 0.1 % of its value), "
            "the other 11 non-zero entries match") in d, d


def test_a_few_wrong_entries_are_counted_and_the_worst_is_named(ref):
    got = ref.copy()
    for (i, j), rel in (((0, 0), 0.01), ((3, 2), 0.5), ((1, 1), 0.002)):
        got[i, j] *= 1 + rel
    excess = (np.abs(got - ref) - RTOL * np.abs(ref).max()).ravel()
    order = ", ".join(str(list(map(int, np.unravel_index(k, ref.shape))))
                      for k in np.argsort(-excess)[:3])            # worst first: [3, 2] (50 %)
    d = diagnosis(got, ref)
    assert (f"diagnosis: 3 of 12 entries wrong (at {order}, the worst off by 50 % of its "
            "value)") in d, d
    assert "the other 9 non-zero entries match" in d


@pytest.mark.parametrize("c, want", [
    (0.5, "got ≈ 0.5 × expected: a constant factor is off, in every entry"),
    (3.0, "got ≈ 3 × expected: a constant factor is off, in every entry"),
    (-1.0, "got ≈ −expected: the sign is wrong"),
    (0.0, "got ≈ 0 where expected is not: a term is missing"),
])
def test_a_global_factor_a_sign_and_a_missing_term(ref, c, want):
    assert f"diagnosis: {want}" in diagnosis(c * ref, ref)


def test_a_factor_just_outside_the_tolerance_is_still_a_factor(ref):
    # c = 1 + 3·rtol: the entries with |e_i| > ‖e‖∞/3 fail, every one by the same factor
    c = 1 + 3 * RTOL
    assert np.sum(np.abs(ref) * (c - 1) > RTOL * np.abs(ref).max()) >= 2  # ≥ 2 witnesses
    d = diagnosis(c * ref, ref)
    assert "diagnosis: got ≈ 1.00003 × expected: a constant factor is off" in d, d


def test_one_witness_is_not_enough_for_a_constant_factor():
    # a scalar gradient twice too large fits "c = 2" trivially: say so instead of claiming it
    d = diagnosis(np.array([[2.0]]), np.array([[1.0]]))
    assert "a constant factor is off" not in d and "the only non-zero entry is wrong" in d


def test_a_transpose_of_a_square_non_symmetric_gradient(ref):
    e = ref[:3, :3]
    assert not np.allclose(e, e.T)
    assert "diagnosis: got ≈ expectedᵀ: a transpose is missing or extra" in diagnosis(e.T.copy(), e)


def test_random_disagreement_has_no_pattern(ref):
    got = ref + np.random.default_rng(1).standard_normal(ref.shape)
    d = diagnosis(got, ref)
    assert ("diagnosis: not a constant multiple or a transpose of the expected gradient, and "
            "12 of 12 non-zero entries are wrong") in d, d


def test_the_issue_example_end_to_end():
    W, x, b, y = F.get_case("linear_layer_W").make_inputs(0, 3, 4, np.dtype(np.float32))
    off = np.ones((4, 3), np.float32)
    off[2, 1] = 1.001

    def hand(W, x, b, y):                                   # one entry 0.1 % off
        return 2.0 * (W @ x + b - y) @ x.T * off
    r = check_gradient(F.linear_layer_loss, hand, W, x, b, y)
    assert not r.passed and r.autodiff.worst_index == (2, 1)
    assert "constant factor is off" not in r.message
    assert "1 of 12 entries wrong (at [2, 1], the worst off by 0.1 % of its value)" in r.message


# --- a wrong shape is a failed check, never an exception -----------------------------------------

@pytest.fixture(scope="module")
def layer():
    return F.get_case("linear_layer_W").make_inputs(0, 3, 4, np.dtype(np.float32))


def test_non_square_transposed_dL_dW_is_a_failed_check(layer):
    r = check_gradient(F.linear_layer_loss, lambda W, x, b, y: 2.0 * x @ (W @ x + b - y).T, *layer)
    assert not r.passed and not r.autodiff.passed and not r.finite_differences.passed
    assert r.grad_shape == (3, 4) and r.layout == "transposed gradient"
    assert "grad_f returned shape [3×4] expected [4×3]: transposed?" in r.message
    assert "its transpose matches autodiff" in r.message
    # the numbers are those of gᵀ against the NumPy reference
    assert r.autodiff.max_rel_err <= RTOL
    np.testing.assert_allclose(r.autodiff.expected, dL_dW(*layer)[r.autodiff.worst_index],
                               rtol=1e-6)


def test_transposed_and_wrong_as_well_says_both(layer):
    r = check_gradient(F.linear_layer_loss, lambda W, x, b, y: x @ (W @ x + b - y).T, *layer)
    assert not r.passed and "transposed?" in r.message
    assert "transposed, it differs from autodiff" in r.message and "0.5 × expected" in r.message


def test_a_shape_in_no_layout_is_a_failed_check(layer):
    r = check_gradient(F.linear_layer_loss,
                       lambda W, x, b, y: (2.0 * (W @ x + b - y) @ x.T).ravel(), *layer)
    assert not r.passed and r.layout == "wrong shape"
    assert re.search(re.escape("grad_f returned shape [12] but f has output scalar, so the "
                               "gradient must be W (argument 0)'s shape [4×3]. Traced: ")
                     + ".*result \\[12\\]", r.message), r.message


# --- every check of the suite can fail -----------------------------------------------------------

def _sigma(t):
    """σ(t) without overflow: e^{−|t|} ≤ 1."""
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1 / (1 + e), e / (1 + e))


def _softmax_J(x):
    s = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    return np.diagflat(s) - s @ s.T


# The homework gradients in float64 NumPy, from the closed forms (layout: the one the suite uses)
CLOSED_FORMS = {
    "sigmoid": lambda x: np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2,
    "softmax": _softmax_J,
    "softplus": lambda x, beta: _sigma(beta * x),
    "quadratic_form": lambda x, A, z: (A + A.T) @ x + z,
    "l2_single": lambda w, x, y: (w.T @ x - y) * x,
    "l2_batch": lambda w, X, y: X.T @ (X @ w - y) / X.shape[0],
    "linear_layer_W": lambda W, x, b, y: dL_dW(W, x, b, y),
    "linear_layer_b": lambda W, x, b, y: 2 * (W @ x + b - y),
}
CORRUPTIONS = {"sign": lambda g: -g, "factor 2": lambda g: 2 * g, "transpose": lambda g: g.T}


def suite_config():
    with open(os.path.join(os.path.dirname(__file__), "..", "configs",
                           "q1_q3_gradients.toml"), "rb") as fh:
        return tomllib.load(fh)["gradients"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sign_factor_and_transpose_fail_at_every_suite_input(dtype):
    """Every input of configs/q1_q3_gradients.toml, every function: a sign flip, a factor 2 and a
    transpose of the right gradient each fail the check's comparison (or its shape rule). Skipped
    only where a transpose changes nothing: a [1×1] gradient, and the softmax Jacobian, which is
    symmetric (J = diag(s) − s sᵀ = Jᵀ: its transpose is no mistake)."""
    cfg = suite_config()
    rtol = RTOL_OF[dtype]
    for case in F.CASES:
        for n, beta, scale in _settings(case, cfg["sizes"], cfg["betas"], 1e4):
            args = case.make_inputs([cfg["seed"], n], n, n + 1, np.dtype(dtype),
                                    1.0 if beta is None else beta, scale)
            e = CLOSED_FORMS[case.name](*(np.asarray(a, np.float64) for a in args))
            where = f"{case.name} {dtype} n={n} β={beta} |x|≤{scale:g}"
            out = jax.eval_shape(case.value, *args).shape
            for kind, corrupt in CORRUPTIONS.items():
                g = corrupt(e)
                if g.shape != e.shape:           # fails on its shape: no layout has it
                    assert _layout(g.shape, out, np.shape(args[case.argnum])) is None, where
                    continue
                if np.array_equal(g, e):
                    assert kind == "transpose" and (g.size == 1 or case.name == "softmax"), where
                    continue
                c = _compare("autodiff", g, e, rtol, float(np.finfo(dtype).tiny))
                assert not c.passed, f"{where}: {kind} passes"


def test_sign_flipped_softmax_jacobian_fails_at_large_logits():
    # the issue's example: at |x| ≤ 1e4 the one-hot softmax had J = 0 and −J passed
    case = F.get_case("softmax")
    n, _, scale = _settings(case, (3,), (1.0,), 1e4)[-1]
    (x,) = case.make_inputs([0, n], n, n + 1, np.dtype(np.float32), 1.0, scale)
    assert np.abs(x).max() == 1e4 and np.abs(_softmax_J(np.float64(x))).max() > 0.1
    r = check_gradient(F.softmax, lambda x: -F.softmax_jacobian(x), x)
    assert not r.passed and "the sign is wrong" in r.message


def test_softmax_checks_use_informative_logits():
    # one logit: softmax ≡ 1, Jacobian 0; at ±1e4 without a near-tie: one-hot, Jacobian 0
    case = F.get_case("softmax")
    assert [s[0] for s in _settings(case, (1, 3), (1.0,), 1e4)] == [2, 3, 3]
    (x,) = case.make_inputs(0, 8, 9, np.dtype(np.float32), 1.0, 1e4)
    assert np.abs(x).max() == 1e4 and np.sort(x.ravel())[-2] >= 1e4 - 10  # a near-tie at the top


def test_softmax_overflow_stability_check():
    """The |x| ≤ 1e4 softmax: finite, sums to 1 within 2(n + 1)ε; a softmax without the max-shift
    (e^{1e4} = inf, inf/inf = NaN) fails it."""
    (c,) = run_stability_checks("float32", sizes=(3,), functions=["softmax"])
    assert c.passed and c.deviation <= 2 * 4 * np.finfo(np.float32).eps
    assert "value and gradient finite, |Σ s_i − 1| = " in c.message
    naive = F.get_case("softmax")._replace(value=lambda x: jnp.exp(x) / jnp.sum(jnp.exp(x)))
    args, setting = report._inputs(naive, 0, 3, None, 1e4, np.dtype(np.float32))
    bad = report._stability(naive, args, setting, "float32")
    assert not bad.passed and "value and gradient NOT finite" in bad.message


# --- report.md: the worked answer once, a column group per dtype ---------------------------------

def test_report_holds_the_worked_answer_once(tmp_path, monkeypatch, layer):
    """Two dtypes, one worked answer (the suite is stubbed: one real float32 check, relabelled as
    float64 too — what is rendered, not the numbers, is under test)."""
    case = F.get_case("linear_layer_W")
    r = dataclasses.replace(check_gradient(case.value, case.grad, *layer, name=case.name),
                            question=case.question, formula=case.formula,
                            derivation=case.derivation, setting="n=3, m=4")
    checks = {"float32": [r], "float64": [dataclasses.replace(r, dtype="float64")]}
    monkeypatch.setattr(report, "run_homework_checks", lambda dtype, **kw: checks[dtype])
    monkeypatch.setattr(report, "run_stability_checks", lambda dtype, **kw: [], raising=False)
    cfg = tmp_path / "g.toml"
    cfg.write_text('[gradients]\ndtypes = ["float32", "float64"]\n', encoding="utf-8")
    assert cli.main(["run", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.count("Derivation:") == 1 and md.count("## Q3 `linear_layer_W`") == 1
    assert md.count("∂L/∂W_ij = 2(z_i − y_i)x_j") == 1
    assert ("| setting | vs autodiff (float32) | vs FD (float32) | result (float32) | "
            "vs autodiff (float64) | vs FD (float64) | result (float64) |") in md
    assert re.search(r"\| n=3, m=4 \| [0-9.e+-]+ \| [0-9.e+-]+ \| PASS \| [0-9.e+-]+ \| "
                     r"[0-9.e+-]+ \| PASS \|", md)
    assert "| float32 | 1/1 |" in md and "| float64 | 1/1 |" in md
