"""Agreement with theory, checked against references written from the maths, not from gdlab.

Examples of issue 13: a scalar GD run whose sign of r = 1 − αλ only the rounded numbers decide, a
heavy-ball run whose steps-to-tol rounding moves near a double root, a 10-D quadratic whose
rounding-sensitive set must be narrow, and the closed-form agreement that sees a flip-rule defect
the iterated map would share.
"""

import dataclasses
import functools

import numpy as np

import gdlab
from gdlab import theory
from gdlab.regimes import Regime


def numpy_gd_float32(x, y, w0, alpha, steps):
    """Scalar GD in float32 as gdlab's problem writes its gradient, x·(x·w − y), and w ← w − α·g;
    returns the errors e_t = w_t − fl(y/x), t = 0 … steps, in float64."""
    x, y, a = np.float32(x), np.float32(y), np.float32(alpha)
    w = np.float32(w0)
    out = [w]
    for _ in range(steps):
        w = np.float32(w - a * (x * (x * w - y)))
        out.append(w)
    return np.array(out, np.float64) - np.float64(y / x)


def test_sign_of_r_is_decided_from_the_numbers_simulated_and_flagged():
    # Issue 13, example a: α = fl32(1/x²). In exact arithmetic on the float32 numbers the run
    # uses, αx² = 1 + 2.5e-8 (r < 0); fl32(x²) would give r > 0. 3000 more α on a grid (3001 runs
    # of 200 steps: the program of tests/test_theory.py) show how rarely the flag is raised.
    x, y, w0, tol = 2.648379549788219, 11.75697548498222, 13.77746295928955, 0.0235
    a32, x32 = np.float32(1 / x ** 2), np.float32(x)
    r_exact = 1.0 - float(a32) * float(x32) ** 2          # exact to 1e-16: 24 + 48 bits
    assert -3e-8 < r_exact < -2e-8
    alphas = np.append(1 / x ** 2, np.linspace(0.0, 3.0, 3000) / x ** 2)
    res = gdlab.sweep(gdlab.problems.scalar_regression(x, y), alphas, w0=w0, steps=200, tol=tol,
                      dtype="float32", progress=False)
    pred = theory.predict(res)
    assert np.sign(pred.r[0]) == np.sign(r_exact)
    # The float32 loop never sees the sign change (|e₁| is rounding noise, below any floor), so
    # the simulation's label cannot be theory's: the run must be flagged, for that reason.
    e = numpy_gd_float32(x, y, w0, 1 / x ** 2, 200)
    assert np.all(np.abs(e[1:]) < 1e-5 * abs(e[0]))
    assert res.regime[0] == Regime.CONVERGING_MONOTONE
    assert pred.regime[0] == Regime.CONVERGING_OSCILLATING and pred.sensitive[0]
    assert pred.why["sign of r by rounding"][0]
    # The bound (a few ulps of |w*|/|e₀| + 5 in |r|) flags only α within ulps of 1/x².
    assert pred.why["sign of r by rounding"][1:].sum() <= 1


def numpy_heavy_ball(x, y, alpha, beta, steps, dtype):
    """optax's heavy ball, v ← g + βv, w ← w − αv, with g = x·(x·w − y), from w = v = 0, on the
    float32-rounded parameters (those simulated), computed in ``dtype``; returns
    |e_t| = |w_t − y/x|, t = 0 … steps, in float64."""
    x, y, a, b = (dtype(np.float32(v)) for v in (x, y, alpha, beta))
    w, v = dtype(0), dtype(0)
    out = [w]
    for _ in range(steps):
        v = dtype(x * (x * w - y) + b * v)
        w = dtype(w - a * v)
        out.append(w)
    return np.abs(np.array(out, np.float64) - np.float64(np.float32(y / x)))


def first_below(err, tol):
    hits = np.flatnonzero(err < tol)
    return int(hits[0]) if hits.size else -1


@functools.lru_cache(maxsize=1)
def heavy_ball_map():
    """Heavy ball on ½(1.3w − 100)² over 121 α × 25 β, 800 steps (the program of
    tests/test_stability.py), with example b's α = 2.246, β = 0.9 at [-1, -1]."""
    alphas = np.append(np.linspace(0.02, 2.4, 120), 2.246)
    betas = np.append(np.linspace(0.0, 0.95, 24), 0.9)
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.3, 100.0), alphas, optimizer="momentum",
                      over={"beta": betas}, w0=0.0, steps=800, tol=1.0, dtype="float32",
                      progress=False)
    return res, theory.predict(res)


def test_heavy_ball_near_a_double_root_is_flagged():
    # Issue 13, example b: αλ = 3.796 just inside 2(1 + β) = 3.8, a near-double complex root,
    # where M^k amplifies rounding far beyond ρ^k. On the simulated (float32) parameters the exact
    # error passes |e_75| = 1.004, 0.4 % above tol, and reaches tol at 141; float32 rounding moves
    # |e_75| by 0.05 % in this loop, and by more in XLA's programs, whose order and fusion of the
    # operations differ: issue 13's single-run sweep reached tol at 141, this map's run at 75.
    exact = numpy_heavy_ball(1.3, 100.0, 2.246, 0.9, 200, np.float64)
    rounded = numpy_heavy_ball(1.3, 100.0, 2.246, 0.9, 200, np.float32)
    assert 0.003 < exact[75] - 1.0 < 0.005 and abs(rounded[75] - exact[75]) > 1e-4
    assert first_below(exact, 1.0) == first_below(rounded, 1.0) == 141
    res, pred = heavy_ball_map()
    assert res.steps_to_tol[-1, -1] in (75, 141)
    assert pred.steps_to_tol[-1, -1] == 141
    assert pred.sensitive[-1, -1] and pred.why["near tol"][-1, -1]


def numpy_gd_modes(lam, c, alphas, steps):
    """‖e_t‖ of GD on a quadratic, exactly: e_{i,t} = c_i (1 − αλ_i)^t, shape (len(alphas), T+1)."""
    r = 1.0 - np.asarray(alphas, np.float64)[:, None] * np.asarray(lam)[None, :]
    t = np.arange(steps + 1)
    e = c[None, None, :] * r[:, None, :] ** t[None, :, None]
    return np.sqrt(np.sum(e * e, axis=-1))


def test_rounding_sensitive_set_is_narrow_on_a_kappa_100_quadratic():
    # Issue 13, example c: the 10-D κ = 100 quadratic had 40 % of its runs flagged while 0.1 %
    # differed (here the old bound flagged 7 of 50). The flagged set must be a few percent, and
    # every run outside it must agree with the exact map — steps-to-tol from the closed form
    # ‖e_t‖ = ‖(c_i (1 − αλ_i)^t)_i‖. (8-D, 50 α, 400 steps: the program of
    # tests/test_quadratics.py.)
    q = gdlab.problems.quadratic(dim=8, lam_max=1.0, kappa=100.0, seed=1)
    steps, tol = 400, 0.01
    res = gdlab.sweep(q, np.linspace(0.5, 1.95, 50), w0=0.0, steps=steps, tol=tol,
                      dtype="float32", progress=False)
    pred = theory.predict(res)
    assert pred.sensitive.sum() <= 0.05 * res.n_runs
    lam = np.asarray(q.eigenvalues(), np.float64)
    c = (0.0 - np.asarray(q.w_star, np.float64)) @ np.asarray(q.Q, np.float64)
    norms = numpy_gd_modes(lam, c, res.alpha.astype(np.float64), steps)
    exact = np.array([first_below(n, tol) for n in norms])
    assert (exact > 0).sum() > 20                          # most runs reach tol: a real test
    keep = ~pred.sensitive
    np.testing.assert_array_equal(pred.steps_to_tol[keep], exact[keep])
    np.testing.assert_array_equal(res.steps_to_tol[keep], exact[keep])


def test_closed_form_agreement_on_a_momentum_map_sees_a_flip_defect():
    # The closed forms compare without any flip rule: every cell outside the derived bands agrees,
    # the bands are a small part of the map, and a defective label is seen. The onset
    # (1 − √β)²/λ is written here from the maths.
    res, pred = heavy_ball_map()
    closed = theory.closed_form(res, pred)
    assert all(c["fraction"] == 1.0 for c in closed.values())
    assert closed["converges"]["n_band"] <= 0.02 * res.n_runs
    assert closed["oscillates"]["n_band"] <= 0.05 * res.n_runs
    onset = (1 - np.sqrt(res.axes["beta"].astype(np.float64))) ** 2 / 1.3 ** 2
    above = res.alpha.astype(np.float64)[:, None] > onset[None, :]
    oscillating = np.isin(res.regime, [Regime.CONVERGING_OSCILLATING, Regime.BOUNDED_OSCILLATION,
                                       Regime.DIVERGING_OSCILLATING])
    # Within a grid step of the onset, rounding and the horizon may decide; elsewhere the label
    # is the closed form's.
    near = np.abs(res.alpha.astype(np.float64)[:, None] - onset[None, :]) < 0.04
    assert np.array_equal(oscillating[~near], above[~near])
    # A flip rule that misses sign changes (the defect of issue 13) relabels oscillating runs
    # monotone; an iterated map with the same rule would agree with it, the closed form does not.
    regime = res.regime.copy()
    regime[oscillating & ~near] = Regime.CONVERGING_MONOTONE
    defective = theory.closed_form(dataclasses.replace(res, regime=regime), pred)["oscillates"]
    assert defective["fraction"] < 0.5


def test_rate_check_covers_converging_runs_and_sees_a_wrong_rate():
    # The main job (Q4 in float32, 3001 α over [0, 3], 200 steps): the measured contraction
    # c = (|e_k|/|e₀|)^{1/k} against ρ = |1 − α|, written here from the maths. Its rounding enters c
    # divided by k (theory._fewest_steps), so the check compares nearly every run that stays within
    # the divergence bound, not only those whose error stays far above the floor — and is tight
    # enough that a contraction 10 % off, on runs with 0.3 ≤ ρ ≤ 0.9, is seen (its bound allows each
    # step of a float32 run near the floor its worst-case rounding, several % of ρ).
    alphas = np.linspace(0.0, 3.0, 3001)
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), alphas, w0=0.0, steps=200,
                      tol=1.0, progress=False)
    pred = theory.predict(res)
    rate = theory.closed_form(res, pred)["rate"]
    bounded = alphas <= 2.0
    assert rate["fraction"] == 1.0
    assert rate["n_compared"] >= 0.95 * bounded.sum()
    rho = np.abs(1.0 - alphas)
    off = (rho >= 0.3) & (rho <= 0.9)
    contraction = np.where(off, res.contraction * 1.1, res.contraction)
    assert np.allclose(res.contraction[off], rho[off], rtol=2e-3)     # the measured rate is ρ
    defective = theory.closed_form(dataclasses.replace(res, contraction=contraction), pred)["rate"]
    # Seen on at least a quarter of them (measured: half; the bound widens as ρ → 1).
    assert defective["fraction"] <= 1.0 - 0.25 * off.sum() / defective["n_compared"]
