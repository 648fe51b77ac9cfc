"""Plot helpers: cell edges on linear and log axes, reproducible SVG output."""

import numpy as np

from gdlab import plots


def test_cell_edges_linear_and_log():
    np.testing.assert_allclose(plots.cell_edges(np.array([0.0, 1.0, 2.0])), [-0.5, 0.5, 1.5, 2.5])
    # On a log axis the edges are geometric midpoints: √(1·10) between 1 and 10.
    np.testing.assert_allclose(plots.cell_edges(np.array([1.0, 10.0, 100.0]), log=True),
                               [10 ** -0.5, 10 ** 0.5, 10 ** 1.5, 10 ** 2.5])


def test_svg_is_byte_reproducible(tmp_path):
    alpha = np.linspace(0, 3, 31)
    regime = np.where(alpha < 1, 0, np.where(alpha < 2, 1, 3)).astype(np.int8)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        plots.save(plots.regime_strip(alpha, regime, regime, {"αλ = 1": 1.0}), tmp_path / d, "s")
    assert (tmp_path / "a" / "s.svg").read_bytes() == (tmp_path / "b" / "s.svg").read_bytes()
