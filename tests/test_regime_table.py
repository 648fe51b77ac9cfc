"""The one regime decision table (gdlab.regimes.decide, decide_orbit), row by row."""

import numpy as np
import pytest

from gdlab.regimes import Regime, classify, decide, decide_orbit

R = Regime


@pytest.mark.parametrize("grows, shrinks, oscillates, expected", [
    (False, False, False, R.STALLED),
    (False, False, True, R.BOUNDED_OSCILLATION),
    (False, True, False, R.CONVERGING_MONOTONE),
    (False, True, True, R.CONVERGING_OSCILLATING),
    (True, False, False, R.DIVERGING_MONOTONE),
    (True, False, True, R.DIVERGING_OSCILLATING),
    (True, True, True, R.DIVERGING_OSCILLATING),      # grows wins over shrinks
])
def test_decide_is_the_table(grows, shrinks, oscillates, expected):
    regime = decide(grows, shrinks, oscillates, False)
    assert regime.dtype == np.int8 and regime.shape == () and regime == expected
    assert decide(grows, shrinks, oscillates, True) == R.CONVERGING_MONOTONE  # at the optimum


def test_decide_broadcasts_and_classify_uses_it():
    grows = np.array([[True], [False]])
    regime = decide(grows, ~grows, np.array([False, True, False]), np.array([False, False, True]))
    assert regime.tolist() == [[R.DIVERGING_MONOTONE, R.DIVERGING_OSCILLATING,
                                R.CONVERGING_MONOTONE],
                               [R.CONVERGING_MONOTONE, R.CONVERGING_OSCILLATING,
                                R.CONVERGING_MONOTONE]]
    growth = np.array([0.5, 0.5, 1.0, 1.0, 2.0, 2.0, 2.0])
    flips = np.array([0, 3, 0, 3, 0, 3, 0])
    frozen = np.array([False] * 6 + [True])
    got = classify(np.where(frozen, 0.5, growth), flips, frozen, 1.0, 1e-9, 1e-6)
    assert got.tolist() == [R.CONVERGING_MONOTONE, R.CONVERGING_OSCILLATING, R.STALLED,
                            R.BOUNDED_OSCILLATION, R.DIVERGING_MONOTONE,
                            R.DIVERGING_OSCILLATING, R.DIVERGING_MONOTONE]


def test_decide_orbit():
    period = np.array([1, 1, 2, 8, 0, 0, -1, 1])
    lyap = np.array([-0.5, -0.5, -0.1, -0.1, 0.2, 1e-4, 0.0, 0.0])
    flips = np.array([False, True, True, True, True, True, True, False])
    stalled = np.array([False] * 7 + [True])
    diverged = np.array([False] * 6 + [True, False])
    engine = np.full(8, R.DIVERGING_OSCILLATING, np.int8)
    regime = decide_orbit(period, lyap, flips, stalled, diverged, engine)
    assert regime.dtype == np.int8
    assert regime.tolist() == [R.CONVERGING_MONOTONE, R.CONVERGING_OSCILLATING, R.PERIODIC,
                               R.PERIODIC, R.CHAOTIC, R.PERIODIC, R.DIVERGING_OSCILLATING,
                               R.STALLED]
