"""The step that freezes a run is seen for its sign, and theory's flags stay narrow at huge α.

Three defects, each found at step sizes far beyond the stability edge:

* A run whose *first* step leaves the divergence bound (√(float32 max) ≈ 1.8e19) kept no in-bound
  error after e₀, so it counted no sign flip and was labelled ``diverging_monotone``: on the
  homework's loss every α > 1.8e17 (r = 1 − α < −1: the error changes sign every step) was.
  The step's error is computed before the run is frozen; its sign is now counted.
* ``gdlab.theory`` flagged every diverging run "oscillation below the floor" once |r|^(T−1)
  overflowed float64 (∞ ≤ ∞): at T = 5000, 185 of 401 runs of α ∈ [0, 4] were flagged.
* ``gdlab.modes`` called a momentum run's first flip "by rounding" when its error grew more than
  1/(c·eps)-fold in one step (αλ = 10¹⁶): it bounded the reference's rounding by the current
  step's, which is αλ times larger.

References are written from the maths: e₁ = (1 − αλ)·e₀ for gradient descent, optax's heavy-ball
recursion v ← g + βv, w ← w − αv in float64, and the bound √(float32 max) from NumPy's finfo.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from engines import assert_same, both

import gdlab
from gdlab import theory
from gdlab.regimes import Regime

BOUND32 = math.sqrt(float(np.finfo(np.float32).max))
P = gdlab.problems.scalar_regression(1.0, 100.0)
HUGE = [1e16, 1.7e17, 1.9e17, 1e18, 1e30, 3e38]  # float32; the last overflows w₁ to +inf


def _first_past_bound(r: float, e0: float, steps: int) -> int:
    """The first t ≤ T with |r|^t·|e₀| past the bound (the simulation's freeze step), −1 if none."""
    for t in range(1, steps + 1):
        if abs(r) ** t * abs(e0) > BOUND32:
            return t
    return -1


@pytest.mark.parametrize("how", [dict(), dict(keep="compact"), dict(record_every=1),
                                 dict(chunk_size=2)])
def test_a_run_leaving_the_bound_in_one_step_is_seen_to_flip(how):
    alphas = np.array(HUGE, np.float32)
    res = gdlab.sweep(P, alphas, w0=0.0, steps=50, tol=1.0, progress=False, **how)
    e0 = -100.0
    expected_t = [_first_past_bound(1.0 - float(a), e0, 50) for a in alphas]
    assert expected_t == [2, 2, 1, 1, 1, 1]       # α ≥ 1.9e17: |e₁| = 100(α − 1) > 1.8e19
    assert res.regime.tolist() == [Regime.DIVERGING_OSCILLATING] * len(HUGE)
    if "keep" not in how:
        assert res.diverged_at.tolist() == expected_t
        # r < 0: e_t changes sign at every step, the freeze step's included.
        assert res.flips.tolist() == expected_t
        assert np.isfinite(res.w_final).all() and (res.w_final == 0.0).tolist() == [
            t == 1 for t in expected_t]              # frozen at w₀ where the first step left
        pred = theory.predict(res)
        assert not pred.sensitive.any(), {k: v.nonzero() for k, v in pred.why.items()}
        assert pred.regime.tolist() == res.regime.tolist()


@pytest.mark.parametrize("mode", ["tiled", "fused"])
def test_every_engine_path_counts_the_freeze_step(mode):
    # The per-step loop, the CPU tiles and the GPU kernel (in Pallas' interpreter on a CPU) agree
    # bit for bit on every field, from α beyond 2 (frozen after tens of steps) to the huge ones.
    alphas = np.concatenate([np.linspace(2.5, 4.0, 7), HUGE]).astype(np.float32)
    fast, slow = both(P, mode=mode, alphas=alphas, w0=0.0, steps=40, tol=1.0)
    assert_same(fast, slow)
    r = 1.0 - alphas.astype(np.float64)
    expected_t = [_first_past_bound(q, -100.0, 40) for q in r]
    assert slow.diverged_at.tolist() == expected_t
    assert {-1, 1, 2, 37, 40} <= set(expected_t)          # never frozen, frozen early and late
    # r < −1: a flip at every step computed, the freeze step's included (all 40 if never frozen).
    assert slow.flips.tolist() == [t if t > 0 else 40 for t in expected_t]


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_momentum_at_huge_steps_flips_and_is_not_flagged(optimizer):
    alphas = np.array(HUGE, np.float32)
    res = gdlab.sweep(P, alphas, w0=0.0, steps=50, tol=1.0, optimizer=optimizer,
                      hparams={"beta": 0.5}, progress=False)
    assert res.regime.tolist() == [Regime.DIVERGING_OSCILLATING] * len(HUGE)
    # optax's heavy ball from v₀ = 0: v₁ = g₀ = e₀, e₁ = e₀ − α·v₁ = (1 − α)e₀ (Nesterov's first
    # step is e₀ − α(1 + β)e₀): against e₀ by 10¹⁶-fold and more, a sign that rounding of a few
    # ulps of |e₁| cannot decide, so theory must not flag the flip.
    assert all((1.0 - float(a)) * -100.0 > 0 for a in alphas)
    pred = theory.predict(res)
    assert not pred.why["flips by rounding"].any(), pred.why["flips by rounding"]
    assert pred.regime.tolist() == res.regime.tolist()


def test_a_vector_run_leaving_the_bound_in_one_step_flips():
    # Along each eigenvector e₁ᵢ = (1 − αλᵢ)e₀ᵢ, so ⟨e₁, e₀⟩ = Σ (1 − αλᵢ)e₀ᵢ² < 0 when every
    # αλᵢ > 1: a flip at the freeze step. For α = 3e38 the simulation's ⟨e₁, e₀⟩ may overflow in
    # float32, so theory may only say the flip is possible (flagged), never predict another label.
    q = gdlab.quadratics.quadratic(dim=3, lam_max=1.0, kappa=10.0)
    alphas = np.array(HUGE, np.float32)
    res = gdlab.sweep(q, alphas, steps=50, tol=1e-3, progress=False)
    assert (alphas.astype(np.float64) * (1.0 / 10.0) > 1).all()   # λ ≥ λ_max/κ = 0.1
    assert res.regime.tolist() == [Regime.DIVERGING_OSCILLATING] * len(HUGE)
    assert (res.flips >= 1).all()
    pred = theory.predict(res)
    assert pred.regime.tolist() == res.regime.tolist()
    assert not pred.sensitive[:-1].any(), {k: v.nonzero() for k, v in pred.why.items()}


def test_theory_does_not_flag_diverging_runs_at_long_horizons():
    # |r|^(T−1)·|e₀| overflows float64 for |r| > 1.16 at T = 5000: such an error passes the bound
    # (and is seen there) long before T, so no oscillation of a run with |r| > 1 is hidden.
    alphas = np.linspace(0.0, 4.0, 401)
    res = gdlab.sweep(P, alphas, w0=0.0, steps=5000, tol=1.0, progress=False)
    pred = theory.predict(res)
    r = 1.0 - np.asarray(res.hparams["alpha"], np.float64)
    diverging = np.abs(r) > 1.0
    assert diverging.sum() == 200
    assert not pred.why["oscillation below the floor"][diverging].any()
    # What is flagged at all: near tol only (runs that reach tol = 1 near a decisive step), a
    # handful, not the 185 the overflow flagged before.
    flagged = {k: int(v.sum()) for k, v in pred.why.items() if v.any()}
    assert set(flagged) <= {"near tol"} and pred.sensitive.sum() <= 10, flagged
    agreement = theory.agreement(res, pred)
    assert agreement.regime_mismatches == 0 and agreement.steps_mismatches == 0
    assert (res.regime[diverging & (r < 0)] == Regime.DIVERGING_OSCILLATING).all()
