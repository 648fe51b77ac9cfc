"""Double-well orbits and bisected edges against references written from the maths (issue 13).

The references are plain NumPy float64 iterations of the GD map f(w) = w − αw(w² − a²) and closed
forms (f'(a) = 1 − 2αa² changes sign at αa² = 1/2; the Q4 error flips sign from α = 1/x²), never
gdlab's own output.
"""

import numpy as np
import pytest

import gdlab
from gdlab import _study_edges, _study_theory, boundary, config, dynamics, orbit_study, study
from gdlab._study_log import summary_lines
from gdlab.regimes import Regime

DW = gdlab.problems.double_well(1.0)
# The quartic config's settings (configs/quartic_bifurcation.toml): its float32 orbits at these α
# are what the issue found. 1.452: a period-3 window; 1.555, 1.881: labelled "period 21" and
# "period 18" before (float32 cycles, chaos in float64); 1.707: chaotic, λ_L was off by 0.25.
QUARTIC = dict(w0=0.5, steps=4000, window=400, max_period=64)
ALPHAS = np.array([0.3, 1.1, 1.452, 1.555, 1.707, 1.881, 2.1, 2.2])


def _reference(alpha, a=1.0, w0=0.5, burn=2_000, steps=100_000, max_period=64):
    """Float64 NumPy: λ = mean log|f'(w_t)| over ``steps`` steps after ``burn``, and the period
    of the attracting cycle the orbit settles on (|w_{t+p} − w_t| < 1e-9 over 4·max_period steps
    at the end; 0: none), −1 if the orbit escaped."""
    w = np.full(alpha.shape, w0)
    total, trail = np.zeros_like(w), []
    with np.errstate(all="ignore"):
        for t in range(burn + steps):
            if t >= burn:
                total += np.log(np.abs(1 - alpha * (3 * w * w - a * a)))
            if t >= burn + steps - 4 * max_period:
                trail.append(w)
            w = w - alpha * w * (w * w - a * a)
    trail = np.array(trail).T
    escaped = ~np.isfinite(w) | (np.abs(w) > 1e6)
    period = np.zeros(alpha.shape, int)
    for p in range(max_period, 0, -1):
        period = np.where(np.max(np.abs(trail[:, p:] - trail[:, :-p]), axis=1) < 1e-9, p, period)
    return total / steps, np.where(escaped, -1, period)


@pytest.fixture(scope="module")
def quartic():
    orb = dynamics.orbits(DW, ALPHAS, **QUARTIC)
    # the α the float32 simulation used, in float64 (the same map for the reference)
    return orb, _reference(orb.alpha.astype(np.float64))


def test_cycles_are_verified_and_chaos_is_not_periodic(quartic):
    orb, (_, ref_period) = quartic
    settles = ref_period >= 1
    assert list(ref_period[:3]) == [1, 2, 3] and np.all(ref_period[3:6] == 0)   # the reference
    # periodic iff the float64 orbit settles on a cycle, with the same period
    assert np.array_equal(orb.regime[:6] == Regime.PERIODIC, ref_period[:6] >= 2)
    np.testing.assert_array_equal(orb.period[settles], ref_period[settles])
    assert np.all(orb.regime[3:6] == Regime.CHAOTIC)
    # a cycle gdlab keeps attracts: |Π f'| < 1 in float64 over its points (plain NumPy here)
    for i in np.flatnonzero(orb.period >= 1):
        w = orb.late[i, -orb.period[i]:]
        assert abs(np.prod(1 - orb.alpha[i].astype(np.float64) * (3 * w * w - 1))) < 1
    # the float32 cycles found at 1.555 and 1.881 were detected and rejected (|m| ≫ 1)
    assert np.all(np.abs(orb.multiplier[[3, 5]]) > 1e3)


def test_lyapunov_within_the_stated_bound(quartic):
    orb, (ref_lyap, ref_period) = quartic
    bounded = ref_period >= 0
    # LYAPUNOV_ERROR is the bound against 10⁶-step references; a 10⁵-step reference is itself
    # within 0.013 of those (max over the 641 chaotic α of the quartic config, measured).
    np.testing.assert_allclose(orb.lyapunov[bounded], ref_lyap[bounded],
                               atol=dynamics.LYAPUNOV_ERROR + 0.015)
    assert not np.any((orb.regime == Regime.PERIODIC) & (orb.lyapunov > 0))


def test_escaped_runs_have_no_lyapunov_exponent_drawn(quartic):
    orb, (_, ref_period) = quartic
    escaped = ref_period == -1
    assert escaped.sum() == 2 and np.array_equal(orb.diverged, escaped)
    assert np.all(np.isnan(orb.lyapunov[escaped])) and np.all(np.isfinite(orb.lyapunov[~escaped]))
    cfg = config.load("configs/quartic_bifurcation.toml")
    fig = orbit_study._figure(cfg, orb.alpha, orb.late, orb.diverged, orb.regime, orb.lyapunov)
    (line,) = [ln for ax in fig.axes for ln in ax.lines if "Lyapunov" in ln.get_label()]
    assert np.all(np.isnan(line.get_ydata()[escaped]))


@pytest.mark.parametrize("a", [1.0, 0.8])
def test_monotone_to_oscillating_edge_is_where_the_multiplier_changes_sign(a):
    # (λ_L only separates chaos from cycles here: 10³ steps are plenty, and ~20 rounds cheap)
    problem, kw = gdlab.problems.double_well(a), {**QUARTIC, "w0": 0.5 * a, "lyapunov_steps": 1000}
    grid = np.array([0.45, 0.55]) / a**2    # the counted edge was at 0.51445/a² before
    found = boundary.locate(lambda al: dynamics.orbits(problem, al, **kw).regime,
                            grid, dynamics.orbits(problem, grid, **kw).regime)
    (edge,) = found
    assert (edge.below, edge.above) == ("converging_monotone", "converging_oscillating")
    # closed form f'(a) = 1 − 2αa² = 0; the bracket is the stated precision (float32 α resolves
    # it: ulp ≈ 6e-8 at 0.78)
    assert abs(edge.alpha - 0.5 / a**2) <= boundary.PRECISION * max(1, edge.alpha)


@pytest.fixture(scope="module")
def q4_config():
    return config.load("configs/q4_alpha_sweep.toml")


def _sweep(cfg):
    return gdlab.sweep(cfg.problem_value, cfg.axes["alpha"], progress=False,
                       **study.sweep_options(cfg))


def test_q4_oscillation_edge_within_the_stated_precision(q4_config):
    found = _study_edges.bisect(q4_config, _sweep(q4_config))
    (edge,) = [b for b in found if b.above == "converging_oscillating"]
    # closed form: e_{t+1} = (1 − αx²)e_t flips sign from α = 1/x² = 1
    assert edge.lo <= 1.0 <= edge.hi and edge.hi - edge.lo <= boundary.PRECISION


def test_coarse_grid_reports_every_edge_between():
    # the override; in float64 the sweep reuses the bisection's program (one compile
    # less), and the grid is as coarse
    cfg = config.load("configs/q4_alpha_sweep.toml",
                      ["sweep.alpha=[0.5, 2.5]", "run.dtype=float64"])
    res = _sweep(cfg)
    found = _study_edges.bisect(cfg, res)
    # closed form: monotone up to α = 1/x² = 1, oscillating up to 2/x² = 2 (the float64 run
    # over T = 200 steps looks neutral within ~1e-6 of 2), diverging above
    pairs = [(b.below, b.above) for b in found]
    assert len(pairs) >= 2 and pairs[0] == ("converging_monotone", "converging_oscillating")
    assert pairs[1][0] == "converging_oscillating"
    assert abs(found[0].alpha - 1.0) <= boundary.PRECISION
    assert all(abs(b.alpha - 2.0) < 1e-5 for b in found[1:])
    assert found[-1].above == "diverging_oscillating"
    no_theory = _study_theory.Theory(False, None, None, None, None, {})
    text = "\n".join(summary_lines(cfg, res, None, {
        "regime_counts": {}, "steps": cfg.steps,
        "boundaries": _study_edges.boundaries(cfg, res, no_theory, found)}))
    assert "do not resolve what lies between them" in text
    assert "converging_monotone → diverging_oscillating" not in text


def _quadratic(w, k):
    return 0.5 * k * (w - 3.0) ** 2


def _quadratic_regimes(alpha, k):
    """The closed form for L = ½k(w − 3)², e_{t+1} = (1 − αk)e_t (gdlab.regimes' table)."""
    r = 1 - alpha * k
    return np.select([alpha == 0, np.abs(r) < 1, np.abs(r) == 1, r < -1],
                     [Regime.STALLED, np.where(r >= 0, Regime.CONVERGING_MONOTONE,
                                               Regime.CONVERGING_OSCILLATING),
                      Regime.BOUNDED_OSCILLATION, Regime.DIVERGING_OSCILLATING],
                     Regime.DIVERGING_MONOTONE)


def test_a_quadratic_user_loss_gets_its_closed_form_orbit_labels(recwarn):
    """The issue's config: window = all 200 steps (the transient included). Every α of the grid
    gets the quadratic's exact regime: no "periodic" with period 0 for a run converging to w*
    (0.14–1.87 were), none "chaotic" for one whose error grows 1 %/step (2.01–2.24 were), and the
    cycle at αk = 2 is the bounded oscillation. No float64 is asked of the float32 run."""
    problem = gdlab.problems.custom(_quadratic, optimum=3.0, k=1.0)
    orb = dynamics.orbits(problem, np.linspace(0.0, 3.0, 301), w0=0.0, steps=200, window=200,
                          max_period=64)
    alpha = orb.alpha.astype(np.float64)     # the float32 α the runs used
    np.testing.assert_array_equal(orb.regime, _quadratic_regimes(alpha, 1.0))
    converging = np.abs(1 - alpha) < 1
    assert np.all(orb.period[converging & (alpha > 0)] == 1)
    assert np.all(orb.period[np.abs(1 - alpha) > 1] == -1)
    # at the fixed point λ_L = log|1 − αk| (closed form; αk = 1 is super-attracting)
    finite = converging & (alpha > 0) & (alpha != 1)
    np.testing.assert_allclose(orb.lyapunov[finite], np.log(np.abs(1 - alpha[finite])),
                               atol=1e-4)
    # a second sweep of the same problem, as the orbit study's bisection runs (the first ran
    # float64 Lyapunov continuations): the warnings came from there
    dynamics.orbits(problem, [0.5, 2.5], w0=0.0, steps=200, window=200, max_period=64)
    assert not [w for w in recwarn if "float64" in str(w.message)]


def test_slow_convergers_on_the_double_well_are_converging():
    """T = 200 steps, a 100-step window: at α = 0.010–0.013 the orbit still approaches w = 1 at
    the rate 1 − 2α (f'(1) = 1 − 2α > 0, closed form), far from w* over the whole window (plain
    float64 NumPy below): converging_monotone with period 1, never "periodic" with period 0."""
    alpha = np.array([0.010, 0.011, 0.012, 0.013])
    orb = dynamics.orbits(DW, alpha, w0=0.5, steps=200, window=100, max_period=32)
    w = np.full(alpha.shape, 0.5)
    for _ in range(100):
        w = w - alpha * w * (w * w - 1)
    assert np.all(np.abs(w - 1) > 0.01)                    # the window starts far from w*
    assert np.all(orb.period == 1)
    assert np.all(orb.regime == Regime.CONVERGING_MONOTONE)
