"""Orbit studies (``gdlab run`` on a user loss, ``gdlab.dynamics.orbits``) against closed forms:
the config's ``run.tol``, runs started at the optimum, and the bifurcation plot's scale.

References are closed forms of GD on a quadratic, e_{t+1} = (1 − αk)e_t, never gdlab's output.
"""

import numpy as np
import pytest
import user_losses

import gdlab
from gdlab import cli, config, dynamics, orbit_study
from gdlab.regimes import Regime

# Homework Q4 (½(xw − y)², x = 1, y = 100, w0 = 0) written as a user loss, on the α grid and with
# the run settings of configs/q4_alpha_sweep.toml (tol = 1.0).
_Q4_CUSTOM = '''
[problem]
name = "custom"
loss = "my_losses:quad"
c = 100.0
k = 1.0
optimum = 100.0
w0 = 0.0

[optimizer]
name = "sgd"

[sweep]
alpha = { start = 0.0, stop = 3.0, num = 3001 }

[run]
steps = 200
tol = 1.0
dtype = "float32"
'''


def _closed_form_steps(alpha, e0, tol, steps):
    """First t ≤ ``steps`` with |e0|·|1 − α|^t < tol (−1 if none), float64, and the value of
    |e0|·|1 − α|^t / tol at that t and the one before (how close the crossing is to tol)."""
    t = np.arange(steps + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        err = abs(e0) * np.abs(1.0 - alpha[:, None]) ** t[None, :] / tol
    below = err < 1.0
    first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
    i = np.maximum(first, 1)
    near = np.stack([err[np.arange(len(alpha)), i], err[np.arange(len(alpha)), i - 1]], axis=1)
    return first, near


def test_orbit_study_counts_steps_to_the_configs_tol(tmp_path):
    """It counted |w − w*| < 1e-6 whatever run.tol said: α = 0.5 gave 25, α = 0.1 gave −1."""
    (tmp_path / "my_losses.py").write_text(user_losses.QUAD)
    (tmp_path / "q4custom.toml").write_text(_Q4_CUSTOM)
    out = tmp_path / "run"
    assert cli.main(["run", str(tmp_path / "q4custom.toml"), "--out", str(out)]) == 0
    with np.load(out / "results.npz", allow_pickle=False) as z:
        alpha, steps_to_tol = z["alpha"].astype(np.float64), z["steps_to_tol"]
    expected, near = _closed_form_steps(alpha, 100.0, 1.0, 200)
    # the homework's numbers: 100·0.5^t < 1 first at t = 7, 100·0.9^t < 1 at t = 44
    at = lambda a: steps_to_tol[np.argmin(np.abs(alpha - a))]   # noqa: E731
    assert (at(0.5), at(0.1), at(1.5)) == (7, 44, 7)
    # Every α, except where the crossing is within float32 rounding of tol: per step the float32
    # update w − α(w − 100) rounds by ≤ 1.5 ulp(100) ≈ 1.1e-5, damped by |1 − α|, so the error
    # is off by ≤ 1.1e-5 / min(α, 2 − α) ≤ 5e-4 for the α that reach tol within 200 steps
    # (α ≥ 0.023, ≤ 1.977): a margin of 1e-3 relative to tol = 1.
    clear = np.all(np.abs(near - 1.0) > 1e-3, axis=1) | (expected < 1)
    assert clear.sum() >= 2950
    np.testing.assert_array_equal(steps_to_tol[clear], expected[clear])


def test_orbits_default_tol_is_the_sweeps():
    problem = gdlab.problems.custom(lambda w, k: 0.5 * k * (w - 100.0) ** 2, optimum=100.0, k=1.0)
    orb = dynamics.orbits(problem, [0.1, 0.5], w0=0.0, steps=200, window=200)
    np.testing.assert_array_equal(orb.result.steps_to_tol, [44, 7])      # tol = 1 (closed form)
    orb = dynamics.orbits(problem, [0.1, 0.5], w0=0.0, steps=200, window=200, tol=10.0)
    np.testing.assert_array_equal(orb.result.steps_to_tol, [22, 4])      # 100·r^t < 10


def test_a_run_started_at_the_optimum_is_converging_monotone_at_every_alpha():
    """w0 = w* = 3 on ½·2(w − 3)²: ∇L(w*) = 0, so every iterate is w* (checked below). gdlab.sweep
    calls such runs converging_monotone (regimes.decide's at_optimum); the orbit study called
    α > 1 chaotic (a repelling fixed point never left) and α = 0 stalled."""
    problem = gdlab.problems.custom(lambda w, k: 0.5 * k * (w - 3.0) ** 2, optimum=3.0, k=2.0)
    alpha = np.linspace(0.0, 1.5, 301)
    orb = dynamics.orbits(problem, alpha, w0=3.0, steps=200, window=200, lyapunov_steps=1000)
    assert np.all(orb.late == 3.0)
    assert np.all(orb.regime == Regime.CONVERGING_MONOTONE)
    assert np.all(orb.period == 1)
    # the same rule as the sweep's, on the same runs
    res = gdlab.sweep(problem, alpha, w0=3.0, steps=200)
    np.testing.assert_array_equal(orb.regime, res.regime)


@pytest.fixture(scope="module")
def quad_orbits():
    """The audit's ½·2(w − 3)² from w0 = 0 over α ∈ [0, 1.5], as its config ran it."""
    problem = gdlab.problems.custom(lambda w, k: 0.5 * k * (w - 3.0) ** 2, optimum=3.0, k=2.0)
    orb = dynamics.orbits(problem, np.linspace(0.0, 1.5, 301), w0=0.0, steps=200, window=200)
    return orb


def _quad_config(tmp_path):
    (tmp_path / "my_losses.py").write_text(user_losses.QUAD)
    (tmp_path / "quad.toml").write_text(
        _Q4_CUSTOM.replace("c = 100.0", "c = 3.0").replace("k = 1.0", "k = 2.0")
        .replace("optimum = 100.0", "optimum = 3.0")
        .replace("stop = 3.0, num = 3001", "stop = 1.5, num = 301"))
    return config.load(str(tmp_path / "quad.toml"))


def test_bifurcation_plot_is_scaled_by_the_bounded_orbits(quad_orbits, tmp_path):
    """Closed form: e_t = −3(1 − 2α)^t, bounded iff |1 − 2α| ≤ 1 (α ≤ 1), and then every iterate
    lies in [0, 6] (the 2-cycle 0 ↔ 6 at α = 1). The y axis ran to ±1.5e19 (late iterates of the
    runs escaping from α ≈ 1.005 were drawn), and their Lyapunov exponents were drawn too."""
    orb = quad_orbits
    alpha = orb.alpha.astype(np.float64)
    escaping = np.abs(1.0 - 2.0 * alpha) > 1.0
    assert np.all(orb.period[escaping] == -1)          # the study calls them escaping
    fig = orbit_study._figure(_quad_config(tmp_path), orb.alpha, orb.late, orb.diverged,
                              orb.regime, orb.lyapunov)
    top, _, bottom = fig.axes[:3]
    lo, hi = top.get_ylim()
    assert lo < 3.0 < hi                               # the fixed point is in view
    assert -3.0 <= lo and hi <= 9.0                    # within [0, 6] ± half its range
    (points,) = top.lines[:1]
    x, y = points.get_xdata(), points.get_ydata()
    shown = np.isfinite(y)
    assert shown.any() and np.all(np.abs(1.0 - 2.0 * x[shown]) <= 1.0)   # no escaping run drawn
    (lyap,) = [ln for ln in bottom.lines if "Lyapunov" in str(ln.get_label())]
    assert "not drawn where the run escaped" in lyap.get_label()
    assert np.all(np.isnan(lyap.get_ydata()[escaping]))
    assert np.all(np.isfinite(lyap.get_ydata()[~escaping]))
