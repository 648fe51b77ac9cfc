"""Plot helpers: cell edges on linear and log axes, reproducible SVG output."""

import io

import numpy as np
from matplotlib.collections import QuadMesh

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


# ---- reduction to the figure's resolution: plots cost O(pixels), not O(runs) -------------------

def _groups(alpha, reduced_edges, log):
    """Start indices of the merged cells: reduced edges are a subset of the original ones."""
    full = plots.cell_edges(alpha, log)
    idx = np.searchsorted(full, reduced_edges)
    assert np.array_equal(full[idx], reduced_edges)  # exact original edges, nothing interpolated
    return idx


def test_reduced_strip_keeps_block_boundaries_at_the_right_alpha():
    n, cap = 200_000, 500
    alpha = np.geomspace(1e-3, 1e3, n)              # log axis: equal slices of log10 α
    edges, _ = plots.reduce_regimes(alpha, np.zeros(n, np.int8), cap)
    idx = _groups(alpha, edges, log=True)
    assert edges.size - 1 <= cap and idx[0] == 0 and idx[-1] == n
    # Boundaries: two on a merged cell's edge (must be exact), two inside a cell (majority side
    # wins).
    on_edge = [idx[57], idx[301]]
    inside = [idx[120] + (idx[121] - idx[120]) // 4, idx[400] + 3 * (idx[401] - idx[400]) // 4]
    bounds = sorted(on_edge + inside)
    codes = np.array([0, 1, 3, 1, 2], np.int8)
    regime = codes[np.searchsorted(bounds, np.arange(n), side="right")]
    edges, reduced = plots.reduce_regimes(alpha, regime, cap)
    full = plots.cell_edges(alpha, log=True)
    change = edges[1:-1][reduced[1:] != reduced[:-1]]
    assert change.size == len(bounds)
    for b, got in zip(bounds, change):
        if b in on_edge:
            assert got == full[b]                  # exact, on the log axis
        else:
            g = np.searchsorted(idx, b, side="right") - 1
            s, e = idx[g], idx[g + 1]
            assert s < b < e
            assert got == (full[s] if e - b > b - s else full[e])
    # The colours are the blocks' colours in order: no regime lost, none invented.
    assert np.array_equal(reduced[np.r_[0, np.flatnonzero(np.diff(reduced)) + 1]], codes)


def test_reduced_cells_take_the_mode_of_their_runs_and_never_invent_a_regime():
    rng = np.random.default_rng(0)
    n, cap = 50_000, 700
    alpha = np.sort(rng.uniform(0, 3, n))            # non-uniform, linear axis
    # Runs of random length with a random regime, from a subset of the codes.
    regime = np.repeat(rng.choice(np.array([0, 1, 3, 5], np.int8), n), rng.integers(1, 60, n))[:n]
    edges, reduced = plots.reduce_regimes(alpha, regime, cap)
    idx = _groups(alpha, edges, log=False)
    assert reduced.size == idx.size - 1 <= cap and reduced.dtype == regime.dtype
    for g, code in enumerate(reduced):
        counts = np.bincount(regime[idx[g]:idx[g + 1]], minlength=8)
        assert counts[code] > 0                      # present in its cell
        assert code == np.argmax(counts)             # the most frequent, ties to the lower code
    # 2-D: block mode over both axes.
    x, y = np.geomspace(0.1, 10, 300), np.linspace(0, 1, 200)
    grid = rng.choice(np.array([0, 1, 2, 6], np.int8), (300, 200))
    ex, ey, red = plots.reduce_regime_map(x, y, grid, (37, 23))
    ix, iy = _groups(x, ex, log=True), _groups(y, ey, log=False)
    assert red.shape == (ix.size - 1, iy.size - 1) and red.shape[0] <= 37 and red.shape[1] <= 23
    for i in range(red.shape[0]):
        for j in range(red.shape[1]):
            counts = np.bincount(grid[ix[i]:ix[i + 1], iy[j]:iy[j + 1]].ravel(), minlength=8)
            assert counts[red[i, j]] > 0 and red[i, j] == np.argmax(counts)


def test_reduced_heatmap_shows_the_largest_log_error_and_any_frozen_step():
    rng = np.random.default_rng(1)
    alpha, steps = np.linspace(0.01, 2, 900), np.arange(300)
    z = rng.normal(size=(900, 300))
    frozen = rng.random((900, 300)) < 0.01
    ea, et, zr, fr = plots.reduce_log_errors(alpha, steps, z, frozen, (100, 40))
    ia, it = _groups(alpha, ea, log=False), _groups(steps, et, log=False)
    assert zr.shape == fr.shape == (ia.size - 1, it.size - 1)
    assert zr.shape[0] <= 100 and zr.shape[1] <= 40
    i, j = 17, 5
    block = (slice(ia[i], ia[i + 1]), slice(it[j], it[j + 1]))
    assert zr[i, j] == z[block].max() and fr[i, j] == frozen[block].any()


def test_small_inputs_are_returned_unchanged():
    alpha = np.linspace(0, 3, 3001)                  # the bundled Q4 sweep
    regime = np.where(alpha < 1, 0, np.where(alpha < 2, 1, 3)).astype(np.int8)
    edges, out = plots.reduce_regimes(alpha, regime)
    assert out is regime and np.array_equal(edges, plots.cell_edges(alpha))
    edges, out = plots.reduce_regimes(alpha, regime, max_cells=3001)   # n == cap: unchanged
    assert out is regime
    x, y = np.geomspace(0.01, 100, 1000), np.linspace(0, 0.95, 96)
    grid = np.zeros((1000, 96), np.int8)
    ex, ey, out = plots.reduce_regime_map(x, y, grid)
    assert out is grid and np.array_equal(ex, plots.cell_edges(x, log=True))
    assert np.array_equal(ey, plots.cell_edges(y))
    z, frozen = np.zeros((3001, 202)), np.zeros((3001, 202), bool)
    *_, zo, fo = plots.reduce_log_errors(alpha, np.arange(202), z, frozen)
    assert zo is z and fo is frozen
    # The drawn figure is the unreduced one, byte for byte.
    svgs = []
    for cap in (plots.STRIP_MAX_CELLS, None):
        buf = io.BytesIO()
        plots.regime_strip(alpha, regime, regime, {"αλ = 1": 1.0}, max_cells=cap).savefig(
            buf, format="svg", metadata={"Date": None})
        svgs.append(buf.getvalue())
    assert svgs[0] == svgs[1]


def _mesh_cells(fig):
    (mesh,) = [c for ax in fig.axes for c in ax.collections if isinstance(c, QuadMesh)]
    return mesh.get_array().size


def test_huge_sweeps_draw_at_most_the_capped_number_of_cells(tmp_path):
    # The issue had 2·10⁷ step sizes. Past the cap a strip is the same O(n) merge at any n, so
    # 2·10⁵ (≈ 50 runs per drawn cell; without the merge, 4·10⁵ cells) takes the same path; the
    # single-α regime is still far below the marker threshold (n // 200 runs).
    n = 200_000
    assert n > 10 * plots.STRIP_MAX_CELLS
    alpha = np.geomspace(1e-4, 10, n)
    regime = np.zeros(n, np.int8)
    regime[alpha > 1] = 1
    regime[alpha > 2] = 3
    regime[n // 2] = 2                              # a single-α regime: flagged by a marker
    fig = plots.regime_strip(alpha, regime, regime, {"αλ = 2": 2.0})
    assert _mesh_cells(fig) <= 2 * plots.STRIP_MAX_CELLS
    markers = [ln for ln in fig.axes[0].lines if ln.get_marker() == "v"]
    assert [ln.get_xdata().size for ln in markers] == [1, 1]
    assert plots.save(fig, tmp_path, "strip") == ["strip.png", "strip.svg"]
    del alpha, regime, fig
    # both axes beyond plots.MAP_MAX_CELLS: both merged
    a, o = np.geomspace(0.01, 10, 1600), np.linspace(0, 0.95, 1500)
    assert a.size > plots.MAP_MAX_CELLS[0] and o.size > plots.MAP_MAX_CELLS[1]
    grid = np.where(a[:, None] * (1 + o[None, :]) < 2, 0, 3).astype(np.int8)
    fig = plots.phase_map(a, o, "β", grid)
    assert _mesh_cells(fig) <= np.prod(plots.MAP_MAX_CELLS)
    assert plots.save(fig, tmp_path, "map") == ["map.png", "map.svg"]
    for f in ("strip.png", "strip.svg", "map.png", "map.svg"):
        assert (tmp_path / f).stat().st_size > 0
