"""Regime strips of a degenerate α range: one α repeated, or one huge α (audit finding 10).

matplotlib warned "Attempting to set identical low and high xlims" and drew zero-width bars. The
expected drawing follows from the input alone: one bar per distinct α, centred on it, of positive
width, inside x-limits that hold it.
"""

import warnings

import numpy as np
import pytest

from gdlab import plots
from gdlab.regimes import Regime

Q4_EDGES = {"oscillation_onset": 1.0, "divergence": 2.0}   # GD on ½(w − 100)²: 1/λ, 2/λ


def _strip(alpha, regime, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # any warning (matplotlib's included) fails
        fig = plots.regime_strip(alpha, regime, **kw)
        fig.canvas.draw()                       # drawing warns too, if anything is singular
    return fig


@pytest.mark.parametrize("alpha", [[1.0, 1.0, 1.0], [1e30], [1e30, 1e30], [0.0, 0.0], [1e-30]])
@pytest.mark.parametrize("theory", [{}, {"closed_form": Q4_EDGES},
                                    {"predicted": "same"}])
def test_a_degenerate_alpha_range_is_padded_and_drawn_once(alpha, theory):
    alpha = np.asarray(alpha, np.float32)
    regime = np.full(alpha.shape, Regime.CONVERGING_MONOTONE, np.int8)
    if theory.get("predicted") == "same":
        theory = {"predicted": regime}
    fig = _strip(alpha, regime, **theory)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    a = float(alpha[0])
    assert lo < a < hi and hi - lo >= max(1.0, abs(a))          # a visible range around α
    bars = [c for c in ax.collections if c.get_gid() == "simulated_alpha"]
    rows = 2 if "predicted" in theory else 1
    assert len(bars) == rows
    for c in bars:
        (path,) = c.get_paths()                                  # one bar per row: α once
        x = path.vertices[:, 0]
        assert x.min() < a < x.max()
        assert x.max() - x.min() > 0.005 * (hi - lo)             # wide enough to see


def test_duplicates_in_a_longer_list_are_drawn_once_in_order():
    alpha = np.array([0.5, 2.5, 1.5, 0.5, 1.5])
    regime = np.array([Regime.CONVERGING_MONOTONE, Regime.DIVERGING_OSCILLATING,
                       Regime.CONVERGING_OSCILLATING, Regime.CONVERGING_MONOTONE,
                       Regime.CONVERGING_OSCILLATING], np.int8)
    fig = _strip(alpha, regime, closed_form=Q4_EDGES)
    (bars,) = [c for c in fig.axes[0].collections if c.get_gid() == "simulated_alpha"]
    centres = [np.ptp(p.vertices[:, 0]) / 2 + p.vertices[:, 0].min()
               for p in bars.get_paths()]
    np.testing.assert_allclose(sorted(centres), [0.5, 1.5, 2.5], rtol=1e-9)
    lo, hi = fig.axes[0].get_xlim()
    assert lo < 0.5 and hi > 2.5


def test_edges_outside_the_drawn_range_are_not_in_the_legend():
    # α = 1e30 alone: the closed-form edges at 1 and 2 lie far left of the axis, so no line of
    # them is visible and the legend names none
    fig = _strip(np.array([1e30], np.float32), np.array([Regime.DIVERGING_OSCILLATING], np.int8),
                 closed_form=Q4_EDGES)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert not any("starts" in label for label in labels)
    fig = _strip(np.array([1.0, 1.0]), np.array([Regime.CONVERGING_MONOTONE] * 2, np.int8),
                 closed_form=Q4_EDGES)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "oscillation starts" in labels and "divergence starts" not in labels   # 1 in, 2 out
