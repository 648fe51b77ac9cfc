"""The k-section of regime edges (gdlab.boundary): closed-form edges to the stated precision, every
change a cell holds, progress, whole lane vectors per round, and the work estimate."""

import warnings

import numpy as np
import pytest

import gdlab
from gdlab import boundary
from gdlab.engine import LANES
from gdlab.errors import TooLargeError
from gdlab.regimes import REGIME_NAMES, Regime

MONO, OSC, DIV = (Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING,
                  Regime.DIVERGING_OSCILLATING)


def heavy_ball_labels(alpha, lam, beta):
    """Closed-form regimes of heavy ball on ½λ(w − w*)², from the roots of
    z² − (1 + β − αλ)z + β = 0 (β = 0: GD, z = 1 − αλ): diverging when the larger |z| > 1,
    else monotone when the dominant root is a positive real, else oscillating."""
    b = np.full_like(alpha, beta)
    z = np.stack([np.roots([1.0, -(1 + beta - a * lam), beta]) for a in alpha]).astype(complex)
    dom = z[np.arange(alpha.size), np.argmax(np.abs(z), axis=1)]
    positive = (np.abs(dom.imag) == 0) & (dom.real > 0) & (b >= 0)
    return np.where(np.abs(dom) > 1, DIV, np.where(positive, MONO, OSC)).astype(np.int8)


def within_precision(found, closed):
    return abs(found - closed) <= boundary.PRECISION * max(1.0, abs(closed))


@pytest.mark.parametrize("lam, beta", [(3.0, 0.0), (0.7, 0.0), (3.0, 0.5), (1.3, 0.81)])
def test_edges_of_the_closed_form_regimes(lam, beta):
    # GD (β = 0): oscillation from α = 1/λ, divergence from 2/λ; heavy ball: the roots turn
    # complex at (1 − √β)²/λ and one leaves the unit disc at 2(1 + β)/λ
    run = lambda a: heavy_ball_labels(np.asarray(a, np.float64), lam, beta)
    grid = np.linspace(1e-3, 2.5 * (1 + beta) / lam, 7)
    found = boundary.locate(run, grid, run(grid), dtype="float64")
    onset, divergence = (1 - np.sqrt(beta)) ** 2 / lam, 2 * (1 + beta) / lam
    assert [(b.below, b.above) for b in found] == [
        ("converging_monotone", "converging_oscillating"),
        ("converging_oscillating", "diverging_oscillating")]
    assert within_precision(found[0].alpha, onset) and within_precision(found[1].alpha, divergence)
    for b in found:
        assert b.hi - b.lo <= boundary.PRECISION * max(1.0, abs(b.alpha))


@pytest.mark.parametrize("optimizer, beta, lam", [("sgd", 0.0, 3.0), ("momentum", 0.5, 3.0)])
def test_simulated_edges_match_the_closed_forms(optimizer, beta, lam):
    problem = gdlab.problems.scalar_regression(np.sqrt(lam), 1.0)    # L = ½λ(w − 1/√λ)²
    kw = dict(steps=400, tol=1e-3, optimizer=optimizer, hparams={"beta": beta} if beta else {},
              dtype="float64", progress=False)
    run = lambda a: gdlab.sweep(problem, a, **kw).regime
    grid = np.linspace(0.01, 1.2 * 2 * (1 + beta) / lam, 13)
    found = {(b.below, b.above): b.alpha
             for b in boundary.locate(run, grid, run(grid), dtype="float64")}
    onset = found[("converging_monotone", "converging_oscillating")]
    assert within_precision(found[("converging_oscillating", "diverging_oscillating")],
                            2 * (1 + beta) / lam)
    if beta == 0:
        assert within_precision(onset, 1 / lam)
    else:
        # heavy ball: just above (1 − √β)²/λ the complex pair turns by θ ≈ 0 per step, so the
        # first sign change comes after the error has shrunk (by √β per step) below float64's
        # rounding: the simulated onset sits above the closed form, by ~1 % at β = 0.5
        closed = (1 - np.sqrt(beta)) ** 2 / lam
        assert closed < onset < 1.02 * closed


def flicker(a):
    """MONO below 1, OSC on [1, 1.2) ∪ [1.3, 1.3 + 1e-3), MONO on [1.2, 1.3), DIV above."""
    a = np.asarray(a, np.float64)
    osc = ((a >= 1) & (a < 1.2)) | ((a >= 1.3) & (a < 1.301))
    return np.where(a >= 1.301, DIV, np.where(osc, OSC, MONO)).astype(np.int8)


def test_a_cell_holding_several_changes_reports_each_inside_it():
    grid = np.array([0.5, 2.5])          # one cell: MONO at 0.5, DIV at 2.5, four edges between
    found = boundary.locate(flicker, grid, flicker(grid), dtype="float64")
    assert [round(b.alpha, 5) for b in found] == [1.0, 1.2, 1.3, 1.301]
    assert all(within_precision(b.alpha, e) for b, e in zip(found, [1.0, 1.2, 1.3, 1.301]))
    for b in found:   # every edge says which grid cell it lies in, and is a change of `run`
        assert (b.grid_lo, b.grid_hi) == (0.5, 2.5) and 0.5 <= b.lo < b.hi <= 2.5
        assert REGIME_NAMES[flicker([b.lo])[0]] == b.below
        assert REGIME_NAMES[flicker([b.hi])[0]] == b.above
    # chained: each edge starts in the regime the previous one ended in
    assert all(p.above == q.below for p, q in zip(found, found[1:]))


def test_a_change_narrower_than_the_sampling_still_gives_a_change_inside_the_cell():
    # OSC only on [1, 1 + 1e-7): no round-1 point lands in it; whatever is found is a change of
    # `run` inside the cell, to the precision
    run = lambda a: np.where(np.asarray(a) >= 1 + 1e-7, DIV,
                             np.where(np.asarray(a) >= 1, OSC, MONO)).astype(np.int8)
    grid = np.array([0.0, 2.0])
    found = boundary.locate(run, grid, run(grid), dtype="float64")
    assert found and all(0.0 <= b.lo < b.hi <= 2.0 and b.below != b.above for b in found)
    assert all(REGIME_NAMES[run([b.lo])[0]] == b.below
               and REGIME_NAMES[run([b.hi])[0]] == b.above for b in found)
    assert all(abs(b.alpha - 1.0) <= 2 * boundary.PRECISION for b in found)


def gd_labels(a):
    return heavy_ball_labels(np.asarray(a, np.float64), 1.0, 0.0)


def test_rounds_shrink_by_a_lane_vector_and_progress_says_so():
    # one cell of 1e-3: 1e-3 / 1e-6 = 10³ needs ⌈log 10³ / log 64⌉ = 2 rounds of 63 dyadic
    # points (one lane vector each), where bisection needs ⌈log₂ 10³⌉ = 10
    calls, rounds = [], []

    def run(a):
        calls.append(len(a))
        return gd_labels(a)

    grid = np.array([0.9995, 1.0005])
    (edge,) = boundary.locate(run, grid, gd_labels(grid), dtype="float64",
                              progress=rounds.append)
    assert within_precision(edge.alpha, 1.0) and edge.rounds == 2
    assert calls == [LANES - 1, LANES - 1]          # 2⁶ − 1 points: one vector, no more
    assert [r.round for r in rounds] == [0, 1, 2]
    assert rounds[0].left == 2 and rounds[0].open == 1 and rounds[-1].left == 0
    assert rounds[1].widest == pytest.approx(1e-3 / LANES, rel=1e-6)
    (bisected,) = boundary.locate(gd_labels, grid, gd_labels(grid), dtype="float64", points=1)
    assert bisected.rounds == 10 and within_precision(bisected.alpha, 1.0)


def test_many_brackets_share_whole_vectors():
    # edges at α = 1, 11 and 21 (the label flips at each), each inside its own cell of 0.2
    sizes = []

    def run(a):
        sizes.append(len(a))
        flips = sum((np.asarray(a) >= e).astype(int) for e in (1.0, 11.0, 21.0))
        return np.where(flips % 2, OSC, MONO).astype(np.int8)

    grid = np.array([0.9, 1.1, 10.9, 11.1, 20.9, 21.1])
    found = boundary.locate(run, grid, run(grid), dtype="float64")
    # three brackets share a vector: 2⁴ − 1 = 15 dyadic points each, the widest doubling to 31
    # while the vector has room (31 + 15 + 15 = 61 ≤ 64)
    assert [b.grid_lo for b in found] == [0.9, 10.9, 20.9] and set(sizes[1:]) == {61}
    assert all(within_precision(b.alpha, e) for b, e in zip(found, (1.0, 11.0, 21.0)))
    # 0.2/max(1, α) is 2·10⁵, 1.8·10⁴ and 9.5·10³ times the precision; 15 or 31 points per
    # round cut 16× or 32× (the widest at the time doubling): 4 rounds each (bisection: 18, 15
    # and 14)
    assert [b.rounds for b in found] == [4, 4, 4]


def test_float32_points_run_as_the_values_simulated():
    # near float32's resolution many points round to one value: they run as copies of it, so the
    # sweep sees no distinct values that coincide (no DuplicateGridWarning)
    problem = gdlab.problems.scalar_regression(1.0, 100.0)
    run = lambda a: gdlab.sweep(problem, a, steps=200, tol=1.0, progress=False).regime
    grid = np.array([0.9, 1.1], np.float32).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = boundary.locate(run, grid, run(grid), dtype="float32")
    assert found and all(np.float64(np.float32(b.lo)) == b.lo for b in found)


def test_work_estimate_and_refusal():
    # Q4's grid: cells of 1e-3 → 2 rounds; 10 values over [0, 3]: cells of 1/3 → 1/3 / 1e-6 needs
    # ⌈log(3.3·10⁵) / log 65⌉ = 4 rounds
    assert boundary.estimate(np.linspace(0, 3, 3001), 200) == (2, 2 * LANES, 400)
    assert boundary.estimate(np.linspace(0, 3, 10), 10**8).rounds == 4
    assert boundary.estimate([1.0], 10).rounds == 0
    boundary.check_work(np.linspace(0, 3, 10), 10**8)
    with pytest.raises(TooLargeError, match=r"^steps: 2147483647: locating the regime edges in "
                                            r"float64 would take ≈4 rounds .* use at most "
                                            r"536870911 steps$"):
        boundary.check_work(np.linspace(0, 3, 10), 2**31 - 1)


@pytest.mark.parametrize("points", [0, 2.5])
def test_points_checked(points):
    with pytest.raises(ValueError, match=rf"^points: {points} must be an integer >= 1$"):
        boundary.locate(gd_labels, [0.5, 1.5], gd_labels([0.5, 1.5]), points=points)
