"""The sign-flip rule of the engine (``gdlab.engine._loop``): a flip is a sign change between
resolvable observations, even where the crossing step lands below the noise floor; per
eigen-direction, against a floor that includes the rounding of the current step.

The references are written here from the recurrences in plain NumPy, in float64, with the rule as
stated (``_count``), never from gdlab's output. Each case is chosen so that float32 rounding
cannot change the count: the margins that decide it are asserted next to it.
"""

import engines
import numpy as np
import pytest

import gdlab

EPS32, EPS64 = np.finfo(np.float32).eps, np.finfo(np.float64).eps
F32 = np.float32
P = gdlab.problems.scalar_regression(1.0, 100.0)


TINY32 = np.finfo(np.float32).tiny


def _floor(eps, w_star, tiny=TINY32):
    """The engine's base noise floor, 64 ulps of |w*| + √(smallest normal) (README, "Regimes")."""
    return 64 * eps * np.linalg.norm(w_star) + np.sqrt(tiny)


def _floors(base, eps, e):
    """The floor e_{t+1} must clear, per step t → t + 1: the base plus 64 ulps of ‖e_t‖."""
    norms = np.linalg.norm(np.asarray(e, np.float64).reshape(len(e), -1), axis=1)
    return base + 64 * eps * norms[:-1]


def _count(e, floors):
    """Flips of the sequence e_0 … e_T by the rule: e_ref = e₀; at each step, if |e_{t+1}| >
    floor_t: a flip if e_{t+1}·e_ref < 0, and e_ref ← e_{t+1} unless that product is 0. ``e``:
    (T + 1,) or (T + 1, d) (each column on its own); ``floors``: one per step, or a scalar."""
    e = np.asarray(e, np.float64)
    e = e.reshape(len(e), -1)
    floors = np.broadcast_to(np.asarray(floors, np.float64), (len(e) - 1,))
    ref, flips = e[0].copy(), np.zeros(e.shape[1], int)
    for x, floor in zip(e[1:], floors):
        seen = (np.abs(x) > floor) & (x * ref != 0)
        flips += seen & (x * ref < 0)
        ref = np.where(seen, x, ref)
    return flips if flips.size > 1 else int(flips[0])


def _nesterov_errors(alpha, beta, e0, steps):
    """optax's Nesterov on ½(w − w*)² (λ = 1, g = e): v ← g + βv, e ← e − α(g + βv)."""
    e, v, out = float(e0), 0.0, [float(e0)]
    for _ in range(steps):
        v = e + beta * v
        e = e - alpha * (e + beta * v)
        out.append(e)
    return np.array(out)


def test_nesterov_crossing_below_the_floor_is_an_oscillation():
    # The example: x = 1, y = 100, w₀ = 0, α = 101/120, β = 0.09, float32. The error goes
    # −100, −8.26, −2.5e-4 (below the floor, 64 ulps of 100 ≈ 7.6e-4 plus 64 ulps of the step's
    # 8.26), +0.118: a sign change seen on both sides far above the floor. The closed-form onset of
    # oscillation is αλ = ((1−β)/(1+β))² = 0.697 < 0.842.
    alpha, beta, steps = F32(101 / 120), F32(0.09), 800
    assert alpha > ((1 - beta) / (1 + beta)) ** 2
    e = _nesterov_errors(alpha, beta, -100.0, steps)
    floors = _floors(_floor(EPS32, 100.0), EPS32, e)
    # Robust to float32 rounding (~1e-5 here, 1/50 of the floor): e₂ is 3× below its floor, e₃
    # 140× above its own, and no later error of the other sign comes within 10× of the floor.
    assert abs(e[2]) < floors[1] / 3 and e[3] > 100 * floors[2]
    assert (e[4:][e[4:] < 0] > -floors.min() / 10).all()
    expected = _count(e, floors)
    assert expected == 1
    # The grid and horizon of test_stability.py's Nesterov map (its program serves here), with
    # the example in one cell.
    alphas, betas = np.linspace(0.0, 2.5, 121), np.linspace(0.0, 0.95, 25)
    alphas[40], betas[2] = 101 / 120, 0.09
    res = gdlab.sweep(P, alphas, optimizer="nesterov", over={"beta": betas}, w0=0.0, steps=steps,
                      tol=1.0, progress=False)
    assert res.flips[40, 2] == expected
    assert gdlab.REGIME_NAMES[res.regime[40, 2]] == "converging_oscillating"


# Double well ¼(w² − 1)², α ≈ 1.2: f(w) = w − αw(w² − 1) has f′(1) = −1.4 (w* = 1 unstable) and an
# attracting period-2 cycle {0.731, 1.140} around it. From w₀ = 0.54083085 (e₀ = −0.459) the first
# step lands ~2.4e-6 from w* (below the float32 floor, 64 ulps of 1 ≈ 7.6e-6), the error then grows
# by −1.4 per step, changing sign below the floor, and is first resolvable a few steps later, on one
# side of w* or the other with the float32 neighbours of α = 1.2: a sign change across sub-floor
# steps where that side is not e₀'s, the error far above the floor before and after.
DW = gdlab.problems.double_well(1.0)
DW_W0, DW_ALPHA = 0.54083085, 1.2


def _double_well_alphas(n):
    """n step sizes: 1.2 and its 199 float32 neighbours 1.2 ± k ulp (each lands within the floor
    of w*, first resolvable a few steps later on either side), then a grid over [0, 3]."""
    a = F32(DW_ALPHA)
    return np.r_[a + np.spacing(a) * np.arange(-100, 100), np.linspace(0.0, 3.0, n - 200)]


@pytest.fixture(scope="module")
def double_well():
    """(per-step loop, fused kernel) over 2000 α × 200 steps: the shapes of test_fused.py's
    double-well sweep, whose programs serve here."""
    fast, slow = engines.both(DW, mode="fused", alphas=_double_well_alphas(2000), w0=DW_W0,
                              steps=200, tol=1e-3)
    return slow, fast


def _double_well_errors(w0, alpha, steps):
    w, out = float(w0), []
    for _ in range(steps + 1):
        out.append(w - 1.0)
        w = w - alpha * w * (w * w - 1.0)
    return np.array(out)


def test_gradient_descent_crossing_below_the_floor_is_counted(double_well):
    loop, _ = double_well
    steps, w0 = loop.steps, F32(DW_W0)          # the float32 inputs, iterated in float64
    crossed = 0
    for k, alpha in enumerate(loop.alpha[:200]):
        e = _double_well_errors(w0, alpha, steps)
        ratio = np.abs(e[1:]) / _floors(_floor(EPS32, 1.0), EPS32, e)
        first = int(np.argmax(ratio > 1)) + 1       # the first resolvable step
        # Rounding moves |e_t| by a few % in float32 (w₁ is ~20 ulps from w*, each step adds
        # ½ ulp): only cases whose sub-floor errors and first resolvable one are 15 % from it.
        if not ((ratio[:first - 1] < 0.85).all() and ratio[first - 1] > 1.15
                and (ratio[first - 1:] > 1.15).all() and (e[first + 1:] * e[first:-1] < 0).all()):
            continue
        assert (e[1:first] * e[2:first + 1] < 0).all()      # sign changes below the floor
        expected = _count(e, _floors(_floor(EPS32, 1.0), EPS32, e))
        assert expected == steps - first + (e[first] * e[0] < 0)    # the cycle, and the crossing
        assert loop.flips[k] == expected
        crossed += e[first] * e[0] < 0
    assert crossed >= 10        # first resolvable across w* from e₀, each counted


def test_a_run_started_at_the_optimum_has_no_flip():
    # w₀ = w* exactly (e₀ = 0), but x·(x·w* − y) ≠ 0 in float32 for x = 6.1: the first step moves
    # off w* by rounding and r = 1 − αx² = −2 amplifies it, past the floor, with alternating signs.
    # Started at the optimum there is nothing to observe: e_ref = e₀ = 0, and ⟨e, 0⟩ = 0 is no
    # flip (the run is labelled converging_monotone: |e₀| within the floor).
    x, y, alpha = F32(6.1), F32(100.0), F32(3 / 6.1**2)
    w_star = y / x
    e1 = -float(alpha * (x * (x * w_star - y)))      # the first step, then e_{t+1} = −2 e_t
    assert e1 != 0
    e = np.r_[0.0, e1 * (-2.0) ** np.arange(100)]
    floors = _floors(_floor(EPS32, w_star), EPS32, e)
    above = np.abs(e[1:]) > floors
    assert (above[1:] & above[:-1] & (e[2:] * e[1:-1] < 0)).sum() > 50  # what the old rule counted
    assert _count(e, floors) == 0
    # 1001 runs of 203 steps on the CPU tiles and the per-step loop: the programs of
    # test_tiled.py's test_runs_frozen_before_half_time_end_with_no_late_error serve here.
    alphas = np.linspace(0.0, 3.0, 1001) / 6.1**2
    fast, slow = engines.both(gdlab.problems.scalar_regression(6.1, 100.0), mode="tiled",
                              alphas=alphas, w0=float(w_star), steps=203, tol=1.0)
    assert slow.max_error[-1] > 1e3 * floors[0]               # α = 3/x² moved far above it
    assert (slow.flips == 0).all() and (fast.flips == 0).all()


def test_fast_paths_count_as_the_loop(double_well):
    # Runs whose crossings land below the floor, on the CPU tiles and in the GPU kernel (Pallas'
    # interpreter here): the double-well runs above (first resolvable steps of both parities), and
    # gradient descent on ½(w − 100)² from w₀ = 100.0003 (e₀ = 40 ulps of 100, within the floor of
    # 100 ulps): for α > 2 the error is first resolvable a few steps later, on either side of w*.
    loop, fused = double_well
    assert len(np.unique(loop.flips[:200] % 2)) == 2
    engines.assert_same(fused, loop)
    # The shapes of test_tiled.py's double-well test (6000 × 400) and of the gradient-descent
    # sweeps of test_fused.py and test_tiled.py (1001 × 203): their programs serve here.
    engines.assert_same(*engines.both(DW, mode="tiled", alphas=_double_well_alphas(6000),
                                      w0=DW_W0, steps=400, tol=1e-3))
    for mode in ("tiled", "fused"):
        fast, slow = engines.both(mode=mode, alphas=np.linspace(0.0, 3.0, 1001), w0=100.0003,
                                  steps=203, tol=1.0)
        assert (slow.flips > 10).sum() > 100
        engines.assert_same(fast, slow)


def test_mode_flips_against_the_modes_iterated_in_float64():
    # The 10-D least squares of configs/linreg_alpha_sweep.toml at α = 2.1, float64: mode 9
    # (λ = 1) has 1 − αλ = −1.1 and grows, modes 0–7 have 1 − αλᵢ > 0 and never change sign, mode
    # 8 has −0.26 and flips until it decays below its floor. Rounding of size eps·‖e_t‖ leaking
    # from mode 9 used to show as flips of the others.
    p = gdlab.problems.linear_regression(m=100, d=10, kappa=100.0, noise=0.1, seed=0)
    alpha, steps = 2.1, 400
    X, y = np.asarray(p.X, np.float64), np.asarray(p.y, np.float64)
    lam, Q = np.linalg.eigh(X.T @ X / X.shape[0])               # ascending, as gdlab's modes
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    c = Q.T @ (0.0 - w_star)
    m = (1 - alpha * lam) ** np.arange(steps + 1)[:, None] * c      # modes of e_t, exact map
    norms = np.linalg.norm(m, axis=1)
    floors = (_floor(EPS64, w_star, np.finfo(np.float64).tiny)
              + 64 * EPS64 * np.maximum(norms[:-1], norms[1:]))     # per step t → t + 1
    expected = _count(m, floors)
    factor = 1 - alpha * lam
    assert (expected[factor > 0] == 0).all() and (expected[factor < -1] == steps).all()
    res = gdlab.sweep(p, [alpha], w0=0.0, steps=steps, tol=0.01, dtype="float64",
                      progress=False)
    np.testing.assert_allclose(np.sort(np.asarray(p.eigenvalues())), lam, rtol=1e-12)
    got = res.mode_flips[0]
    # Exact where the sign never changes or the mode grows; ±1 for mode 8, whose last resolvable
    # step is decided by a component that shrinks 4× per step against its floor, both known to
    # the simulation only up to its rounding.
    np.testing.assert_array_equal(got[(factor > 0) | (factor < -1)],
                                  expected[(factor > 0) | (factor < -1)])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1)
