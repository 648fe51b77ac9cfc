"""Plots that do not mislead (issue 13): legends off the data, markers drawn whole, the theory row
from the closed-form intervals, no heatmap from a handful of α, rounding and frozen cells named,
integer step ticks, the closed-form trajectory overlay, symbols on the axes, colours a colour-blind
reader can tell apart. Every expected value is computed here from the maths, in NumPy."""

import itertools
import types

import numpy as np
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.colors import to_rgb

from gdlab import _study_plan, _study_plots, plots
from gdlab import config as config_lib
from gdlab._bundled import config_path
from gdlab.errors import ArgumentError
from gdlab.problems import scalar_regression
from gdlab.regimes import Regime

MONO, OSC, BOUNDED = Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING, \
    Regime.BOUNDED_OSCILLATION
DIV_OSC, DIV_MONO, STALLED = Regime.DIVERGING_OSCILLATING, Regime.DIVERGING_MONOTONE, \
    Regime.STALLED


def _gd_regime(alpha, lam=1.0):
    """Scalar GD, e_{t+1} = (1 − αλ) e_t: the regime of each α from r = 1 − αλ."""
    r = 1.0 - np.asarray(alpha, np.float64) * lam
    out = np.select([r == 1, r > 1, r >= 0, r > -1, r == -1],
                    [STALLED, DIV_MONO, MONO, OSC, BOUNDED], DIV_OSC)
    return out.astype(np.int8)


def _drawn(fig):
    fig.draw_without_rendering()
    return fig


# ---- momentum phase map: the legend covers no data ----------------------------------------------

def test_phase_map_legend_covers_no_edge_and_axes_use_symbols():
    a, b = np.linspace(0, 4, 41), np.linspace(0, 0.95, 20)
    # Heavy ball on λ = 1: converges iff 0 < α < 2(1 + β), oscillates iff α > (1 − √β)².
    A, B = np.meshgrid(a, b, indexing="ij")
    grid = np.where(A >= 2 * (1 + B), DIV_OSC, np.where(A > (1 - np.sqrt(B)) ** 2, OSC, MONO))
    divergence = lambda beta: 2 * (1 + beta)
    fig = _drawn(plots.phase_map(a, b, "beta", grid.astype(np.int8),
                                 {"divergence": divergence,
                                  "onset": lambda beta: (1 - np.sqrt(beta)) ** 2}))
    ax = fig.axes[0]
    legends = [*fig.legends, *([ax.get_legend()] if ax.get_legend() else [])]
    assert legends
    beta = np.linspace(0, 0.95, 200)
    pts = ax.transData.transform(np.column_stack([divergence(beta), beta]))
    inside_axes = ax.get_window_extent().contains
    pts = pts[[inside_axes(x, y) for x, y in pts]]
    for legend in legends:
        box = legend.get_window_extent()
        assert not any(box.contains(x, y) for x, y in pts)
    assert ax.get_ylabel() == "β" and "β" in ax.get_title() and "beta" not in ax.get_title()


def test_symbols():
    assert [plots.symbol(n) for n in ("beta", "b1", "b2", "alpha", "lam", "alpha_2", "x", "w0")] \
        == ["β", "β₁", "β₂", "α", "λ", "α₂", "x", "w0"]


# ---- regime strip: markers whole, rows separated, theory from the closed form --------------------

def test_strip_markers_are_drawn_whole_and_above_the_lines():
    alpha = np.linspace(0, 3, 3001)        # the Q4 grid: α = 0 and α = 2 are one cell each
    regime = _gd_regime(alpha)
    fig = _drawn(plots.regime_strip(alpha, regime, regime, {"αλ = 2": 2.0}))
    ax = fig.axes[0]
    box = ax.get_window_extent()
    markers = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert {float(x) for ln in markers for x in ln.get_xdata()} == {0.0, 2.0}
    for ln in markers:
        # Half the marker's size plus its edge, in pixels (points × dpi / 72).
        half = (ln.get_markersize() / 2 + ln.get_markeredgewidth()) * fig.dpi / 72
        for x, y in ax.transData.transform(np.column_stack([ln.get_xdata(), ln.get_ydata()])):
            assert box.x0 + half <= x <= box.x1 - half and box.y0 + half <= y <= box.y1 - half
    vlines = [ln for ln in ax.lines if ln.get_marker() != "v"]
    assert vlines and min(m.get_zorder() for m in markers) > max(v.get_zorder() for v in vlines)


def _theory_row(fig):
    """(x edges, codes, y range) of the strip's theory row: the mesh highest up."""
    meshes = [c for c in fig.axes[0].collections if isinstance(c, QuadMesh)]
    top = max(meshes, key=lambda m: m.get_coordinates()[0, 0, 1])
    xy = top.get_coordinates()
    return xy[0, :, 0], np.ravel(top.get_array()), (xy[0, 0, 1], xy[-1, 0, 1])


def _code_at(edges, codes, a):
    return int(codes[np.searchsorted(edges, a) - 1])


def test_theory_row_is_drawn_from_the_closed_form_intervals():
    lam = 1.0
    alpha = np.array([0.5, 1.5, 2.5])     # configs/q4_trajectories.toml
    edges = {"oscillation_onset": 1 / lam, "divergence": 2 / lam}
    for grid in (alpha, np.array([0.5, 2.5])):       # also the issue's --set sweep.alpha=[0.5, 2.5]
        fig = plots.regime_strip(grid, _gd_regime(grid), _gd_regime(grid), closed_form=edges)
        x, codes, (y0, _) = _theory_row(fig)
        (sep,) = [ln for ln in fig.axes[0].lines if ln.get_gid() == "row_separator"]
        assert np.all(np.asarray(sep.get_ydata()) == y0) and sep.get_linewidth() >= 3
        assert to_rgb(sep.get_color()) == (1.0, 1.0, 1.0)   # a white band between the rows
        probe = np.array([0.6, 0.99, 1.01, 1.5, 1.9, 1.99, 2.01, 2.4])
        assert [_code_at(x, codes, p) for p in probe] == list(_gd_regime(probe, lam))
        assert _code_at(x, codes, 1.9) == OSC
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any("simulated" in t for t in labels) and any("closed form" in t for t in labels)


def test_theory_row_of_an_n_d_quadratic_follows_the_dominant_mode():
    lam_min, lam_max = 0.1, 1.0
    edges = {"oscillation_onset_stiffest_mode": 1 / lam_max,
             "oscillation_dominates": 2 / (lam_min + lam_max), "divergence": 2 / lam_max}
    alpha = np.linspace(0.05, 2.5, 50)
    fig = plots.regime_strip(alpha, np.zeros(50, np.int8), np.zeros(50, np.int8),
                             closed_form=edges)
    x, codes, _ = _theory_row(fig)
    # GD on diag(λ_min, λ_max): e_t per mode is (1 − αλ_i)^t e_0,i; the mode with the larger
    # |1 − αλ_i| dominates, and the error oscillates iff that mode's factor is negative.
    probe = np.array([0.5, 1.2, 1.8, 1.85, 1.95, 2.2])
    r = 1 - probe[:, None] * np.array([lam_min, lam_max])
    dom = r[np.arange(probe.size), np.argmax(np.abs(r), axis=1)]
    expected = np.where(np.abs(dom) > 1, DIV_OSC, np.where(dom < 0, OSC, MONO))
    assert [_code_at(x, codes, p) for p in probe] == list(expected)
    names = {h.get_label() for h in fig.legends[0].legend_handles}
    assert {"stiffest mode starts to oscillate (1/λ_max)",
            "oscillating mode dominates (2/(λ_min+λ_max))", "divergence (2/λ_max)"} <= names


def _row_extents(fig, y0):
    """(x0, x1, RGB) of everything filled in the strip row y0 … y0 + 1: mesh cells and bars."""
    ax = fig.axes[0]
    out = []
    for c in ax.collections:
        if isinstance(c, QuadMesh):
            xy = c.get_coordinates()                       # (rows + 1, cells + 1, 2)
            colors = c.to_rgba(np.asarray(c.get_array()).reshape(xy.shape[0] - 1, -1))
            for j in np.flatnonzero(xy[:-1, 0, 1] == y0):
                out += [(xy[j, i, 0], xy[j, i + 1, 0], tuple(colors[j, i, :3]))
                        for i in range(xy.shape[1] - 1)]
        elif c.get_gid() == "simulated_alpha":
            for path, color in zip(c.get_paths(), c.get_facecolors()):
                (x0, y), (x1, _) = path.vertices.min(0), path.vertices.max(0)
                if y == y0:
                    out.append((x0, x1, tuple(color[:3])))
    return out


def test_strip_draws_no_regime_at_an_alpha_that_was_not_run():
    """The issue: q4_trajectories (α = 0.5, 1.5, 2.5) coloured all of [0, 3] as simulated,
    α = 0 (stalled) as converging. Each of a few α is its own bar, in its regime's colour, with
    nothing else in the row; the theory row covers the swept range and both share one axis."""
    edges = {"oscillation_onset": 1.0, "divergence": 2.0}
    for alpha in (np.array([0.5, 1.5, 2.5]), np.array([0.5, 2.5]), np.linspace(0.2, 2.9, 12)):
        fig = _drawn(plots.regime_strip(alpha, _gd_regime(alpha), closed_form=edges))
        lo, hi = fig.axes[0].get_xlim()
        span = alpha.max() - alpha.min()
        assert alpha.min() - 0.05 * span < lo < alpha.min()
        assert alpha.max() < hi < alpha.max() + 0.05 * span
        drawn = _row_extents(fig, 0.0)
        assert len(drawn) == alpha.size
        for (x0, x1, color), a, code in zip(sorted(drawn), alpha, _gd_regime(alpha)):
            assert x0 < a < x1 and x1 - x0 <= 0.02 * span
            assert color == to_rgb(plots.REGIME_COLORS[Regime(int(code))])
        x, _, _ = _theory_row(fig)
        assert (x[0], x[-1]) == (alpha.min(), alpha.max())


def test_strip_cells_end_at_the_first_and_last_alpha():
    """A grid's outer cells would reach half a step beyond it (below α = 0.1 here, into α < 0):
    both rows end at min α and max α, on a linear and on a log axis."""
    edges = {"oscillation_onset": 1.0, "divergence": 2.0}
    for alpha in (np.linspace(0.1, 2.9, 29), np.geomspace(0.01, 2.9, 40)):
        regime = _gd_regime(alpha)
        for fig in (plots.regime_strip(alpha, regime, closed_form=edges),
                    plots.regime_strip(alpha, regime, regime)):
            for y0 in (0.0, 1.0):
                drawn = _row_extents(fig, y0)
                assert min(d[0] for d in drawn) == alpha[0]
                assert max(d[1] for d in drawn) == alpha[-1]


# ---- error heatmap: not from 3 α, skips said, rounding and frozen cells named -----------------

def test_heatmap_needs_enough_alpha_and_says_why_not():
    alpha = np.array([0.5, 1.5, 2.5])
    with pytest.raises(ArgumentError, match="at least 13"):
        plots.error_heatmap(alpha, np.arange(4), np.ones((3, 4)), np.full(3, -1))
    cfg = types.SimpleNamespace(problem_value=scalar_regression(1.0, 100.0), steps=30)

    def res(n, trajectory=True, compact=False):
        a = np.linspace(0, 3, n)
        return types.SimpleNamespace(axes={"alpha": a}, alpha=a,
                                     diverged_at=None if compact else np.full(n, -1),
                                     trajectory=np.zeros((n, 32)) if trajectory else None)

    assert "3 α values" in _study_plots.not_drawn(cfg, res(3))["error_heatmap"]
    assert _study_plots.not_drawn(cfg, res(13)) == {}
    # Over the limit the grid records no iterates, and the heatmap is drawn from a subsample.
    heat = _study_plots.HeatmapSample(np.arange(0, 30_000, 8), res(3750), 30_000)
    assert _study_plots.not_drawn(cfg, res(30_000, trajectory=False), heat) == {}
    old = _study_plots.not_drawn(cfg, res(30_000, trajectory=False))["error_heatmap"]
    assert "no iterates were recorded" in old      # a run directory written before the subsample
    # The limit: 5·10⁶ values / (T/k + 1 snapshots, k = ⌈T/200⌉ = 1, as the engine stores
    # them: w₀, …, w_T) = 24,875 α at T = 200; one α more and a subsample is swept instead.
    most = 5_000_000 // (200 + 1)
    for num, recorded in ((most, True), (most + 1, False)):
        q4 = config_lib.load(config_path("q4_alpha_sweep"), [f"sweep.alpha.num={num}"])
        plan = _study_plan.plan(q4, print)
        assert q4.steps == 200 and (plan.record_every is not None) == recorded
        assert (plan.heatmap_sample is None) == recorded
    assert "compact" in _study_plots.not_drawn(cfg, res(100, False, True))["error_heatmap"]


def test_heatmap_names_rounding_and_frozen_cells():
    n, steps = 20, np.arange(10)
    alpha = np.linspace(0.1, 2.5, n)
    err = 100 * np.abs(1 - alpha[:, None]) ** steps[None, :]
    err[3, 5:] = 0.0                       # a float32 iterate that landed exactly on w*
    err[4, 6:] = 1e-4                      # under the floor
    diverged = np.full(n, -1)
    diverged[-1] = 7
    err[-1, 7:] = 1.5e19                   # what a frozen run stores: its last in-bound error
    floor = np.full(n, 1e-3)
    fig = plots.error_heatmap(alpha, steps, err, diverged, floor=floor)
    mesh = next(c for c in fig.axes[0].collections if isinstance(c, QuadMesh))
    shown = np.asarray(mesh.get_array()).reshape(steps.size, n).T
    vmin, vmax = mesh.norm.vmin, mesh.norm.vmax
    below = err <= floor[:, None]
    frozen = steps[None, :] >= np.where(diverged >= 0, diverged, steps.size + 1)[:, None]
    assert np.all(shown[below & ~frozen] < vmin) and np.all(shown[frozen] > vmax)
    ok = ~below & ~frozen
    np.testing.assert_allclose(shown[ok], np.log10(err[ok]), rtol=1e-12)  # float64 log10, same op
    # The colour scale spans the measured errors only: the frozen 1.5e19 does not stretch it.
    np.testing.assert_allclose([vmin, vmax], [np.log10(err[ok]).min(), np.log10(err[ok]).max()],
                               rtol=1e-12)
    cmap = mesh.get_cmap()
    under, over = to_rgb(cmap.get_under()), to_rgb(cmap.get_over())
    assert under != over and under not in [to_rgb(c) for c in cmap(np.linspace(0, 1, 256))]
    assert mesh.colorbar.extend == "both"   # the colour bar shows both as its end triangles
    labels = [h.get_label() for h in fig.legends[0].legend_handles]
    assert any(t.startswith("below rounding") for t in labels)
    assert any(t.startswith("diverged: frozen") for t in labels)


# ---- trajectories: integer ticks, the closed-form overlay ---------------------------------------

ALPHAS, STEPS, W_STAR, W0 = np.array([0.5, 1.5, 2.5]), np.arange(31), 100.0, 0.0


def _q4_iterates():
    """w_{t+1} = w_t − α(w_t − w*) (λ = 1) from w₀, for each α, in float64."""
    w = np.empty((ALPHAS.size, STEPS.size))
    w[:, 0] = W0
    for t in range(1, STEPS.size):
        w[:, t] = w[:, t - 1] - ALPHAS * (w[:, t - 1] - W_STAR)
    return w


def test_trajectory_steps_have_integer_ticks():
    fig = _drawn(plots.trajectories(ALPHAS, STEPS, _q4_iterates(), np.full(3, W_STAR),
                                    np.full(3, -1)))
    for ax in fig.axes:
        ticks = ax.get_xticks()
        np.testing.assert_array_equal(ticks, np.round(ticks))


def test_trajectories_closed_form_overlay():
    alphas, steps, w_star, w0 = ALPHAS, STEPS, W_STAR, W0
    diverged = np.array([-1, -1, 20])         # pretend the last run froze at t = 20
    fig = plots.trajectories(alphas, steps, _q4_iterates(), np.full(3, w_star), diverged,
                             rates=1 - alphas)
    overlay = [ln for ln in fig.axes[1].lines if ln.get_gid() == "closed_form"]
    assert len(overlay) == 3
    for ln, a, d in zip(overlay, alphas, diverged):
        t = np.asarray(ln.get_xdata())
        assert t[0] == 0 and (t.max() < d if d >= 0 else t.max() == steps[-1])
        # Same float64 formula, so only pow's last-bit differences: rtol 1e-12.
        np.testing.assert_allclose(ln.get_ydata(), np.abs(1 - a) ** t * abs(w_star - w0),
                                   rtol=1e-12)
        assert ln.get_linewidth() < 1.5 and ln.get_linestyle() != "-"
    assert any("closed form" in t.get_text() for t in fig.axes[1].get_legend().get_texts())


# ---- colours a colour-blind reader can tell apart ------------------------------------------------

# Machado, Oliveira & Fernandes (2009), severity 1, on linear RGB.
_CVD = {"deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 1.968881]],
        "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                       [-0.003882, -0.048116, 1.051998]],
        "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                       [0.004733, 0.691367, 0.303900]]}


def _lab(color, cvd=None):
    """CIELAB (D65) of a colour as seen with ``cvd`` (None: normal vision)."""
    c = np.array(to_rgb(color))
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    if cvd:
        lin = np.clip(np.array(_CVD[cvd]) @ lin, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_regime_colours_stay_apart_for_colour_blind_readers():
    # Regimes that can share a plot: a quadratic's or a double well's (orbit) map; the runs judged
    # by their loss have their own maps. ΔE*ab ≈ 2.3 is just noticeable side by side; a map cell
    # matched to a legend patch away from it needs far more: 15 here (the palette's least is 16.1).
    together = [list(Regime)[:8], [Regime.CONVERGED, Regime.DIVERGED, Regime.UNDECIDED]]
    for group, cvd in itertools.product(together, [None, *_CVD]):
        for a, b in itertools.combinations(group, 2):
            de = np.linalg.norm(_lab(plots.REGIME_COLORS[a], cvd)
                                - _lab(plots.REGIME_COLORS[b], cvd))
            assert de >= 15, (a.name, b.name, cvd, de)
