"""gdlab.zoom: windows shrinking around a point, every frame one run of the same program."""

import numpy as np
import pytest

import gdlab
from gdlab import engine, zoom
from gdlab.errors import ArgumentError


def test_windows_shrink_by_the_factor_around_the_center():
    lin = np.linspace(0.0, 4.0, 9)
    w = zoom.windows(lin, 1.0, 3, 0.5)
    np.testing.assert_allclose(w[:, [0, -1]], [[-1.0, 3.0], [0.0, 2.0], [0.5, 1.5]])
    log = np.geomspace(1.0, 1e4, 5)
    w = zoom.windows(log, 100.0, 2, 0.5)   # log₁₀ window [0, 4] around 2 → [1, 3]
    np.testing.assert_allclose(np.log10(w[:, [0, -1]]), [[0.0, 4.0], [1.0, 3.0]], atol=1e-12)
    assert w.shape == (2, 5)
    with pytest.raises(ArgumentError, match="outside"):
        zoom.windows(lin, 9.0, 2, 0.5)


def test_a_series_compiles_once_and_measures_each_frame():
    p = gdlab.problems.custom(lambda w, b: (1 - w[0]) ** 2 + b * (w[1] - w[0] ** 2) ** 2, b=10.0)
    alphas, bs = np.geomspace(1e-3, 0.1, 16), np.geomspace(1.0, 100.0, 16)
    kw = dict(w0=np.array([-1.0, 1.0]), steps=40, dtype="float64")
    zs = zoom.series(p, alphas, "b", bs, (0.01, 10.0), frames=1, factor=0.5, **kw)
    before = engine.compile_count()
    zs = zoom.series(p, alphas, "b", bs, (0.01, 10.0), frames=3, factor=0.5, **kw)
    assert engine.compile_count() == before            # same shapes: no new program
    assert zs.regime.shape == (3, 16, 16) and zs.score.shape == (3, 16, 16)
    # the first frame is the map itself; each frame equals a plain sweep of its window
    res = gdlab.sweep(p, zs.x[2], over={"b": zs.y[2]}, keep="compact", **kw)
    np.testing.assert_array_equal(zs.regime[2], res.regime)
    np.testing.assert_allclose(zs.x[0], alphas, rtol=1e-12)
    s = zs.summary()
    assert s["frames"] == 3 and len(s["dimensions"]) == 3
    assert all(d is None for d in s["dimensions"])      # 16² frames are too small to measure
    assert "58 pixels" in s["why_missing"][0]


def test_bad_zoom_settings():
    p = gdlab.problems.custom(lambda w, c: c * w * w, c=1.0)
    with pytest.raises(ArgumentError, match="zoom.factor"):
        zoom.series(p, [0.1, 0.2], "c", [1.0, 2.0], (0.1, 1.0), frames=2, factor=1.5, w0=1.0)
    with pytest.raises(ArgumentError, match="zoom.frames"):
        zoom.series(p, [0.1, 0.2], "c", [1.0, 2.0], (0.1, 1.0), frames=0, factor=0.5, w0=1.0)


@pytest.mark.parametrize("setting,message", [
    ("zoom.center=[1e9, 150.0]", "zoom.center: 1000000000.0 lies outside sweep.alpha"),
    ("zoom.factor=2.0", "zoom.factor: 2.0 must be below 1"),
    ("zoom.center=[300.0]", "must be two numbers"),
    ("zoom.frames=0", "zoom.frames"),
])
def test_bad_zoom_sections_exit_2(tmp_path, capsys, setting, message):
    from gdlab import cli
    out = tmp_path / "out"
    assert cli.main(["run", "configs/mlp_trainability.toml", "--out", str(out),
                     "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not out.exists()


def test_frames_use_the_phase_maps_symbols_and_regime_colours():
    """zoom_frames.png said `alpha`, `alpha_2` and red/blue; phase_map.png says α, α₂ in the
    Okabe–Ito colours of the regime table. Same data, same symbols, same colours, same legend."""
    from matplotlib.colors import to_rgba

    from gdlab import plots
    from gdlab.regimes import REGIME_INFO, Regime

    x = np.geomspace(1.0, 1e4, 8)
    y = np.geomspace(10.0, 1e3, 6)
    regime = np.where(np.add.outer(np.log10(x), np.log10(y)) > 4.5, Regime.DIVERGED,
                      Regime.CONVERGED).astype(np.int8)
    regime[0, 0] = Regime.UNDECIDED
    zs = zoom.ZoomSeries("alpha", "alpha_2", np.stack([x, x]), np.stack([y, y]),
                         np.stack([regime, regime]), None,
                         [{"dimension": None, "why": "small"}] * 2)
    fig = zoom.frames_figure(zs)
    ref = plots.phase_map(x, y, "alpha_2", regime, x_name="alpha")
    colours = lambda mesh: mesh.to_rgba(np.asarray(mesh.get_array()).ravel())   # noqa: E731
    for ax in fig.axes:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("α", "α₂")
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")   # as the map's axes
        (mesh,) = ax.collections
        # each cell in its regime's colour from the shared table (regime is indexed [x, y])
        expected = [to_rgba(REGIME_INFO[Regime(int(r))].color) for r in regime.T.ravel()]
        np.testing.assert_allclose(colours(mesh), expected)
        np.testing.assert_allclose(colours(mesh), colours(ref.axes[0].collections[0]))
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["converged", "diverged", "undecided"]
