"""A run is at the optimum when its error never rises above the noise floor, not when it starts
within it.

Before, a run whose |e₀| lay within the floor was labelled ``converging_monotone`` whatever it then
did: in float32 at w* = 100 (floor 64 ulps of 100 ≈ 7.6e-4) w₀ = 100.0001 with α = 2.5 grew to
|e₆₀| = 3.8e6 and was called converging; gdlab.theory predicted it the same way (its n-D rule
reused the floor of |e₀|), so the agreement could not see it. The references here are written from
the maths in float64 — the closed form |e_t| = |1 − αλ|^t|e₀|, optax's heavy-ball map iterated in
plain Python, the double well's map w ← w − αw(w² − a²) — with the floor written from its
definition (64·eps·|w*| + √(smallest normal), README "Regimes"), not read from gdlab.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdlab
from gdlab import theory
from gdlab.regimes import Regime, quiet

EPS32, TINY32 = float(np.finfo(np.float32).eps), float(np.finfo(np.float32).tiny)
FLOOR = 64 * EPS32 * 100.0 + np.sqrt(TINY32)       # the scalar floor at w* = 100, float32
W0 = 100.0001                                        # |e₀| = 9.9e-5 in float32: under the floor
STEPS = 60


def _expected_scalar(alpha: float, e0: float) -> Regime:
    """The regime from the closed form e_t = (1 − α)^t e₀ (λ = 1): at the optimum if no |e_t|,
    t ≤ T, exceeds the floor, else by |r| and the sign of r."""
    r = 1.0 - alpha
    top = max(abs(e0) * abs(r) ** t for t in range(STEPS + 1))
    if top <= FLOOR:
        return Regime.CONVERGING_MONOTONE
    if abs(r) > 1:
        return Regime.DIVERGING_OSCILLATING if r < 0 else Regime.DIVERGING_MONOTONE
    assert abs(r) < 1, "no example here sits at |r| = 1"
    return Regime.CONVERGING_OSCILLATING if r < 0 else Regime.CONVERGING_MONOTONE


ALPHAS = [-0.5, 0.0, 0.5, 1.5, 2.5, 3.0]


@pytest.mark.parametrize("how", [dict(), dict(keep="compact"), dict(record_every=1),
                                 dict(chunk_size=2)])
def test_a_run_started_within_the_floor_is_judged_by_what_it_does(how):
    e0 = float(np.float32(W0)) - 100.0
    assert 0 < e0 < FLOOR
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), ALPHAS, w0=W0, steps=STEPS,
                      tol=0.5, progress=False, **how)
    expected = [_expected_scalar(a, e0) for a in ALPHAS]
    assert expected == [Regime.DIVERGING_MONOTONE, Regime.CONVERGING_MONOTONE,
                        Regime.CONVERGING_MONOTONE, Regime.CONVERGING_MONOTONE,
                        Regime.DIVERGING_OSCILLATING, Regime.DIVERGING_OSCILLATING]
    assert res.regime.tolist() == expected
    if "keep" not in how:
        pred = theory.predict(res)
        assert not pred.sensitive.any(), {k: v.nonzero() for k, v in pred.why.items()}
        assert pred.regime.tolist() == expected


def _heavy_ball(alpha: float, beta: float, e0: float, steps: int) -> np.ndarray:
    """|e_0| … |e_T| of optax's sgd(α, momentum=β) on ½e², in float64: v ← e + βv; e ← e − αv."""
    e, v, out = e0, 0.0, [abs(e0)]
    for _ in range(steps):
        v = e + beta * v
        e = e - alpha * v
        out.append(abs(e))
    return np.array(out)


def test_momentum_started_within_the_floor_diverges_when_its_map_does():
    # Heavy ball, β = 0.5: the divergence edge is αλ = 2(1 + β) = 3; α = 3.5 beyond it. |e₀| is
    # 66 % of the floor here: from 13 ulps of w* (W0) one step's rounding at αλ = 3.5, up to
    # 4 ulps of w*, is a third of the error, and theory rightly cannot say whether the flip
    # rule sees a sign change (flagged "flips by rounding").
    w0 = 100.0005
    e0 = float(np.float32(w0)) - 100.0
    assert 0.5 * FLOOR < e0 < FLOOR
    beta = 0.5
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), [0.2, 3.5], w0=w0,
                      steps=STEPS, tol=0.5, optimizer="momentum", over={"beta": [beta]},
                      progress=False)
    quiet_run, wild = _heavy_ball(0.2, beta, e0, STEPS), _heavy_ball(3.5, beta, e0, STEPS)
    assert quiet_run.max() <= FLOOR and wild[-1] > 1e6 * FLOOR
    got = [gdlab.REGIME_NAMES[r] for r in res.regime.ravel()]
    assert got[0] == "converging_monotone" and got[1].startswith("diverging"), got
    pred = theory.predict(res)
    assert not pred.sensitive.any()
    np.testing.assert_array_equal(pred.regime, res.regime)


def test_an_n_dimensional_run_started_within_the_floor_diverges_when_its_map_does():
    q = gdlab.problems.quadratic(dim=4, kappa=4.0, w_star=1.0)
    w_star = np.ones(4)
    e0 = 5e-6 * np.array([1.0, -1.0, 1.0, 1.0])   # ‖e₀‖ = 1e-5, the floor 64 eps·‖w*‖ = 1.5e-5
    assert np.linalg.norm(e0) < 64 * EPS32 * 2.0
    res = gdlab.sweep(q, [0.5, 2.5], w0=w_star + e0, steps=STEPS, tol=0.5, progress=False)
    # αλ_max = 2.5: the stiffest direction's error is multiplied by −1.5 a step (1.5⁶⁰ ≈ 4e10).
    assert gdlab.REGIME_NAMES[res.regime[0]] == "converging_monotone"
    assert gdlab.REGIME_NAMES[res.regime[1]] == "diverging_oscillating"
    pred = theory.predict(res)
    assert not pred.sensitive.any()
    np.testing.assert_array_equal(pred.regime, res.regime)


def test_a_run_that_rounding_moves_off_w_star_is_flagged():
    # w₀ = fl(w*) exactly, but fl(x·w₀) − y ≠ 0: the gradient there is 2.8e-6, which αλ = 2.5
    # multiplies by −1.5 a step. Whether such a run leaves w* is rounding's: theory flags it.
    x = 0.3678392
    xf, yf = np.float32(x), np.float32(100.0)
    w_star = yf / xf
    assert xf * (xf * w_star - yf) != 0
    lam = float(xf) ** 2
    res = gdlab.sweep(gdlab.problems.scalar_regression(x, 100.0), [2.5 / lam, 0.5 / lam],
                      w0=float(w_star), steps=200, tol=0.5, progress=False)
    assert res.max_error[0] > 1e10 and gdlab.REGIME_NAMES[res.regime[0]].startswith("diverging")
    assert res.max_error[1] == 0 and gdlab.REGIME_NAMES[res.regime[1]] == "converging_monotone"
    pred = theory.predict(res)
    assert pred.why["at the noise floor"].tolist() == [True, False]


@pytest.mark.parametrize("x, y, alpha", [(1.5, 1.3205344921977592e-149, 2.0),
                                          (3.0, 2.0703656489765815e-216, 3.0)])
def test_a_tiny_optimum_kicked_by_rounding_is_flagged_for_momentum_too(x, y, alpha):
    # float64, w* = y/x = 8.8e-150: one step's rounding, eps·|w*| ≈ 2e-165, is far under the floor
    # (√ of the smallest normal, 1.5e-154), but heavy ball at αλ = 4.5 (beyond its edge
    # 2(1 + β) = 3) multiplies it by ~4.4 a step, to far above the floor by step 60. Whether the
    # run leaves w* is rounding's, as for gradient descent. The mode model squared the rounding
    # (4e-330, zero in float64) and predicted a quiet run, unflagged; at w* = 6.9e-217 it squared
    # |w*| itself to 0 (and αλ = 27 grows one ulp of w* past the floor by step 60).
    beta = 0.5
    w_star = y / x
    floor = 64 * np.finfo(np.float64).eps * w_star + np.sqrt(np.finfo(np.float64).tiny)
    errs = _heavy_ball(alpha * x * x, beta, float(np.spacing(w_star)), STEPS)   # one ulp's kick
    assert errs.max() > 1e5 * floor           # the reference leaves the floor far behind
    res = gdlab.sweep(gdlab.problems.scalar_regression(x, y), [alpha], w0=w_star, steps=STEPS,
                      tol=0.5, dtype="float64", optimizer="momentum", over={"beta": [beta]},
                      progress=False)
    assert res.max_error.max() > 1e5 * floor
    pred = theory.predict(res)
    assert pred.why["at the noise floor"].all()


def test_quiet_is_the_largest_error_within_the_floor_and_not_frozen():
    early = np.array([1e-5, 1e-5, 1e-3, 1e-5])
    late = np.array([2e-5, 1e-2, 0.0, 1e-5])
    frozen = np.array([False, False, False, True])
    assert quiet(np.maximum(early, late), 1e-4, frozen).tolist() == [True, False, False, False]


def test_a_double_well_run_started_within_the_floor_keeps_its_orbit():
    # L = ¼(w² − 1)², α = 1.2: the minimum w = 1 repels (f'(1) = 1 − 2α = −1.4); from
    # w₀ = 1 + 4e-6 (within the float32 floor, 64 ulps of 1 = 7.6e-6) the orbit leaves it for an
    # attracting 2-cycle. It was labelled converging_monotone with period 1.
    a, w0 = 1.2, float(np.float32(1.000004))
    assert abs(w0 - 1.0) < 64 * EPS32
    w = w0
    for _ in range(4000):                     # the map in float64
        w = w - a * w * (w * w - 1.0)
    p, q = w, w - a * w * (w * w - 1.0)
    assert abs((q - a * q * (q * q - 1.0)) - p) < 1e-12 and abs(p - q) > 0.1   # a 2-cycle
    multiplier = (1 - a * (3 * p * p - 1)) * (1 - a * (3 * q * q - 1))
    assert abs(multiplier) < 1                                                   # attracting
    o = gdlab.dynamics.orbits(gdlab.problems.double_well(1.0), [a], w0=w0, steps=400,
                              progress=False)
    assert o.period.tolist() == [2] and gdlab.REGIME_NAMES[o.regime[0]] == "periodic"
