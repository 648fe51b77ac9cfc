"""Theory vs simulation: predicted regimes and steps, agreement on the default grid, Q4.3."""

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import gdlab
from gdlab import theory
from gdlab.regimes import Regime

P = gdlab.problems.scalar_regression(x=1.0, y=100.0)


def brute_force_steps(r, e0, tol, steps):
    """First t ≤ steps with |r|^t e0 < tol, by plain iteration in float64."""
    e = e0
    for t in range(steps + 1):
        if e < tol:
            return t
        e *= abs(r)
    return -1


@settings(max_examples=200, deadline=None)
@given(r=st.floats(-3, 3), e0=st.floats(0, 1e4), tol=st.floats(1e-3, 10), steps=st.integers(1, 300))
def test_predicted_steps_equal_brute_force(r, e0, tol, steps):
    got = theory.predict_steps_to_tol(np.array([r]), np.array([e0]), tol, steps)[0]
    assert got == brute_force_steps(r, e0, tol, steps)


def test_predicted_regime_table():
    alpha = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5])
    got = theory.predict_regime(theory.rate(alpha, 1.0), np.full(7, 100.0))
    assert list(got) == [Regime.STALLED, Regime.CONVERGING_MONOTONE, Regime.CONVERGING_MONOTONE,
                         Regime.CONVERGING_OSCILLATING, Regime.BOUNDED_OSCILLATION,
                         Regime.DIVERGING_OSCILLATING, Regime.DIVERGING_MONOTONE]
    assert theory.critical_alphas(4.0) == {"oscillation": 0.25, "divergence": 0.5}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_agreement_is_one_on_the_default_grid(dtype):
    res = gdlab.sweep(P, {"start": 0.0, "stop": 3.0, "num": 3001}, steps=200, tol=1.0, dtype=dtype)
    pred = theory.predict(res)
    agree = theory.agreement(res, pred)
    assert agree.fraction == 1.0
    # Rounding-sensitive runs are few (α where 100|1 − α|^t lands within rounding of tol).
    assert agree.n_sensitive <= 0.01 * res.n_runs
    # The four landmarks of Q4 are decided by the formula, not by rounding.
    for a in (0.0, 1.0, 2.0, 2.5):
        assert not pred.sensitive[int(round(a * 1000))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recurrence_holds_to_rounding_at_every_step(dtype):
    # Each step computes w − α·x(xw − y): about 4 roundings, each ≤ eps/2 of a magnitude counted in
    # the normaliser, so the deviation is ≤ 2 eps; 4 eps leaves room for FMA contraction. 3001
    # runs of 200 steps, as on the default grid above: the program compiled there.
    res = gdlab.sweep(P, np.linspace(-0.5, 3.0, 3001), steps=200, tol=1.0, dtype=dtype,
                      recurrence=True)
    assert res.recurrence_dev.max() <= 4 * np.finfo(dtype).eps


@pytest.mark.filterwarnings("ignore::gdlab.grids.DuplicateGridWarning")
@settings(max_examples=25, deadline=None)
@given(x=st.floats(0.2, 3.0), y=st.floats(-50, 50), w0=st.floats(-50, 50),
       alphas=st.lists(st.floats(-0.5, 6.0), min_size=1, max_size=8))
# |e₀| = 7.9e-21 under the float32 floor (√ of the smallest normal, 1.1e-19) at α = 0: the error
# never rises above the floor, so the run is at the optimum in both (theory said stalled).
@example(x=1.0, y=7.892575598615985e-21, w0=0.0, alphas=[0.0])
def test_random_problems_agree_with_theory(x, y, w0, alphas):
    # (30 steps, as in configs/q4_trajectories.toml: the program of the command-line tests)
    res = gdlab.sweep(gdlab.problems.scalar_regression(x, y), alphas, w0=w0, steps=30,
                      tol=0.5, chunk_size=8)
    pred = theory.predict(res)
    keep = ~pred.sensitive
    assume(keep.any())   # an example whose every run rounding decides shows nothing: draw another
    np.testing.assert_array_equal(res.regime[keep], pred.regime[keep])
    np.testing.assert_array_equal(res.steps_to_tol[keep], pred.steps_to_tol[keep])


def test_phase_map_agrees_with_theory():
    res = gdlab.sweep(P, np.linspace(0.0, 3.0, 121), over={"x": np.linspace(0.5, 2.0, 61)},
                      steps=200, tol=1.0)
    agree = theory.agreement(res, theory.predict(res))
    assert agree.fraction == 1.0 and agree.n_sensitive < 0.02 * res.n_runs


def test_theory_refuses_other_optimizers():
    res = gdlab.sweep(P, np.linspace(0.0, 3.0, 3001), steps=200)   # any result: a program above
    res = dataclasses.replace(res, optimizer="adam")
    with pytest.raises(ValueError, match="no closed form here for optimizer 'adam'"):
        theory.predict(res)


def test_nothing_compared_gives_no_fraction():
    """A check that compares no run has no agreement fraction (None, never 1.0): at α = 0 the
    error never changes (|1 − αλ| = 1), so the closed-form region check's band holds the only
    run; with every run flagged rounding-sensitive the exact-map agreement compares none."""
    res = gdlab.sweep(P, [0.0], w0=0.0, steps=200, tol=1.0)
    pred = theory.predict(res)
    region = theory.closed_form(res, pred)["converges"]
    assert region["n_compared"] == 0 and region["n_band"] == 1
    assert region["fraction"] is None
    flagged = pred._replace(sensitive=np.ones_like(pred.sensitive))
    agree = theory.agreement(res, flagged)
    assert agree.n_compared == 0 and agree.fraction is None
    # with runs compared the fraction is one: r = 1 − 0.5 converges monotonically, as predicted
    half = gdlab.sweep(P, [0.5], w0=0.0, steps=200, tol=1.0)
    assert theory.agreement(half, theory.predict(half)).fraction == 1.0
