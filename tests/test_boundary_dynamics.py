"""Bisected regime boundaries vs closed forms; orbits, periods, chaos and Lyapunov exponents."""

import numpy as np
import pytest

import gdlab
from gdlab import boundary, dynamics, stability
from gdlab.regimes import Regime

P = gdlab.problems.scalar_regression(1.0, 100.0)


def run_for(**kw):
    return lambda a: gdlab.sweep(P, a, progress=False, **kw).regime


def test_bisection_finds_two_over_lambda():
    alphas = np.linspace(0.0, 3.0, 31)
    kw = dict(steps=200, tol=1.0)
    found = boundary.locate(run_for(**kw), alphas, gdlab.sweep(P, alphas, **kw).regime)
    edges = {(b.below, b.above): b for b in found}
    div = [b for (lo, hi), b in edges.items()
           if hi == "bounded_oscillation" or hi.startswith("diverging")]
    # Over T = 200 steps in float32 a run with |1 − α| = 1 − ε looks neutral once
    # ε·T/2 ≲ the rounding band (~1e-4), so the located edge is within ~1e-5 of 2; the bracket
    # itself is narrower than 1e-6·max(1, α) or than float32 resolution.
    assert any(abs(b.alpha - 2.0) < 1e-5 for b in div)
    for b in found:
        assert b.hi - b.lo <= max(1e-6 * max(1.0, b.hi), 4 * np.finfo(np.float32).eps * b.hi)
    onset = [b for b in found if b.above == "converging_oscillating"]
    assert onset and abs(onset[0].alpha - 1.0) < 1e-4


def test_bisection_momentum_edge():
    kw = dict(steps=600, tol=1.0, optimizer="momentum", hparams={"beta": 0.5})
    alphas = np.linspace(0.5, 4.0, 15)
    found = boundary.locate(run_for(**kw), alphas, gdlab.sweep(P, alphas, **kw).regime)
    crit = float(stability.critical_alpha("momentum", 1.0, 0.5))  # 2(1 + β)/λ = 3
    assert any(abs(b.alpha - crit) < 1e-3 for b in found)


DW = gdlab.problems.double_well(1.0)


def test_double_well_orbits_periods_and_lyapunov():
    orb = dynamics.orbits(DW, [0.3, 0.8, 1.1, 1.4, 2.1], w0=0.5, steps=3000, window=256)
    # Fixed point w* = 1 (λ* = 2): Lyapunov exponent is log|1 − 2α| (closed form).
    np.testing.assert_allclose(orb.lyapunov[:2], np.log(np.abs(1 - 2 * np.array([0.3, 0.8]))),
                               atol=1e-4)
    assert list(orb.period[:3]) == [1, 1, 2]
    # The 2-cycle {p, q} of f(w) = w − αw(w² − 1) satisfies f(p) = q, f(q) = p (plain numpy).
    p, q = orb.late[2, -2], orb.late[2, -1]
    f = lambda w: w - 1.1 * w * (w * w - 1)
    assert (f(p) == pytest.approx(q, abs=1e-5) and f(q) == pytest.approx(p, abs=1e-5)
            and abs(p - q) > 0.1)
    assert orb.regime[3] == Regime.CHAOTIC and orb.lyapunov[3] > 0.1
    assert orb.diverged[4] and orb.regime[4] in (Regime.DIVERGING_OSCILLATING,
                                                 Regime.DIVERGING_MONOTONE)
    assert np.all(np.isfinite(orb.late[~orb.diverged]))


def test_period_doubling_edge_near_two_over_lambda_star():
    kw = dict(w0=0.5, steps=3000, window=256)
    alphas = np.linspace(0.9, 1.1, 5)
    orb = dynamics.orbits(DW, alphas, **kw)
    found = boundary.locate(lambda a: dynamics.orbits(DW, a, **kw).regime, alphas, orb.regime)
    first = [b for b in found if b.above == "periodic"][0]
    # A flip bifurcation converges algebraically (not geometrically) at α = 2/λ* = 1, so a finite
    # horizon places the simulated edge slightly below it: within 1e-3 at T = 3000.
    assert abs(first.alpha - 1.0) < 1e-3


@pytest.mark.parametrize("kw, message", [
    ({"window": 1}, "window: 1 must be in"), ({"max_period": 200}, "max_period: 200 must be in"),
])
def test_orbit_arguments_checked(kw, message):
    with pytest.raises(ValueError, match=message):
        dynamics.orbits(DW, [0.5], steps=300, **kw)
