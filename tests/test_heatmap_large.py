"""The α × t error heatmap of a 1-D sweep too large to record whole: drawn from a subsample of the
grid swept again with snapshots (gdlab.study), stored, loaded and redrawn.

The limits are made small here (monkeypatch) so a grid of 1001 α is "over the limit"; the
reference iterates are plain numpy gradient descent on L(w) = ½(xw − y)², written from the maths.
"""

import json
import os

import numpy as np
import pytest

import gdlab
from gdlab import _study_plan, _study_plots, cli, config, plots, resources

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
Q4 = os.path.join(CONFIGS, "q4_alpha_sweep.toml")   # x = 1, y = 100, w₀ = 0, α ∈ [0, 3], float32
N, T, SAMPLE = 1001, 30, 40
# Every k-th grid index and the last, with k the smallest stride giving at most SAMPLE α:
# k = ⌈(N − 1)/(SAMPLE − 1)⌉ = ⌈1000/39⌉ = 26 → 0, 26, …, 988 (39 values) and 1000.
STRIDE = 26
INDEX = np.r_[np.arange(0, N, STRIDE), N - 1]


@pytest.fixture
def small_limits(monkeypatch):
    """1001 α × 31 snapshots = 31,031 values: over a limit of 1000; the subsample ≤ 40 α."""
    monkeypatch.setattr(_study_plots, "HEATMAP_MAX_VALUES", 1000)
    monkeypatch.setattr(_study_plots, "HEATMAP_SAMPLE", SAMPLE)


def _gd(alpha, steps, x=1.0, y=100.0, w0=0.0):
    """w_{t+1} = w_t − α x (x w_t − y) in float64, for each α; w_t at ``steps`` (α × steps)."""
    w = np.full(alpha.shape, w0, np.float64)
    out = np.empty((alpha.size, steps.size))
    for t in range(int(steps.max()) + 1):
        out[:, steps == t] = w[:, None]
        w = w - alpha * x * (x * w - y)
    return out


def test_over_the_limit_the_heatmap_is_drawn_from_a_stored_subsample(small_limits, tmp_path,
                                                                     monkeypatch):
    drawn = []
    heatmap = plots.error_heatmap
    monkeypatch.setattr(plots, "error_heatmap", lambda alpha, *a, **kw: drawn.append(
        (np.asarray(alpha), kw["title"])) or heatmap(alpha, *a, **kw))
    out = tmp_path / "big"
    assert cli.main(["run", Q4, "--set", f"sweep.alpha.num={N}", "--set", f"run.steps={T}",
                     "--out", str(out), "--quiet"]) == 0
    with np.load(out / "results.npz") as z:
        r = {k: z[k] for k in z.files}
    summary = json.loads((out / "summary.json").read_text())
    assert "plots_not_drawn" not in summary and "error_heatmap.png" in summary["files"]
    assert (out / "error_heatmap.png").is_file() and "snapshot_w" not in r
    grid = np.linspace(0.0, 3.0, N)
    np.testing.assert_array_equal(r["heatmap_index"], INDEX)
    np.testing.assert_array_equal(r["heatmap_alpha"], r["alpha"][INDEX])   # grid values
    np.testing.assert_array_equal(r["heatmap_alpha"], grid[INDEX].astype(np.float32))
    np.testing.assert_array_equal(r["heatmap_steps"], np.arange(T + 1))   # k = ⌈T/200⌉ = 1
    assert r["heatmap_w"].shape == (INDEX.size, T + 1)
    # No run leaves float32's range within 30 steps (|1 − α|^30·100 ≤ 2^30·100).
    np.testing.assert_array_equal(r["heatmap_diverged_at"], -1)
    np.testing.assert_array_equal(r["heatmap_w_star"], 100.0)
    assert r["heatmap_noise_floor"].shape == (INDEX.size,)
    # The iterates are gradient descent's at the α the run used (the float32 grid value).
    # float32 tolerance: each step rounds with relative error ≤ ε = 2⁻²³ at the magnitudes
    # involved (|w_t|, |w*|), and a rounding error then evolves as the error does (×(1 − α) per
    # step), so after t ≤ 30 steps |Δw_t| ≤ 4tε·(|w_t| + |w*|) with room to spare.
    alpha = r["heatmap_alpha"].astype(np.float64)
    ref = _gd(alpha, r["heatmap_steps"])
    eps = float(np.finfo(np.float32).eps)
    bound = 4 * T * eps * (np.abs(ref) + 100.0)
    assert np.all(np.abs(r["heatmap_w"] - ref) <= bound)
    # Drawn from the subsample, one α per column, and said so.
    (a, title), = drawn
    np.testing.assert_array_equal(a, r["heatmap_alpha"])
    assert f"{INDEX.size} of {N:,} α (every {STRIDE}th grid value)" in title
    # gdlab.load gives the subsample its own dimensions.
    ds = gdlab.load(out)
    assert ds.heatmap_w.dims == ("heatmap_alpha", "heatmap_step")
    assert ds.heatmap_diverged_at.dims == ("heatmap_alpha",)
    np.testing.assert_array_equal(ds.heatmap_alpha.values, r["heatmap_alpha"])
    np.testing.assert_array_equal(ds.heatmap_step.values, r["heatmap_steps"])
    # gdlab plot draws it again from the stored arrays.
    (out / "error_heatmap.png").unlink()
    assert cli.main(["plot", str(out)]) == 0
    assert (out / "error_heatmap.png").is_file()
    (a, title2) = drawn[1]
    np.testing.assert_array_equal(a, r["heatmap_alpha"])
    assert title2 == title


def test_the_subsample_is_every_kth_grid_value_and_the_last():
    for n, most in ((10**6, 4096), (1001, 40), (40, 40), (41, 40), (14, 13)):
        index = _study_plots.heatmap_sample(n, most)
        k = -(-(n - 1) // (most - 1))          # the smallest stride with ≤ most values
        assert index.size <= most and index[0] == 0 and index[-1] == n - 1
        np.testing.assert_array_equal(np.diff(index)[:-1], k)
        assert 1 <= index[-1] - index[-2] <= k


@pytest.mark.parametrize("every", [1, 3, 5, 7])
def test_snapshot_count_is_the_engines(every):
    """w₀, w_k, w_2k, … and w_T: ⌈T/k⌉ + 1 iterates (T/k + 1 when k divides T)."""
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), [0.5], steps=35,
                      record_every=every, w0=0.0, progress=False)
    expected = len(set(range(0, 36, every)) | {35})
    assert res.trajectory.shape[1] == res.snapshot_steps.size == expected
    assert gdlab.engine.snapshot_count(35, every) == expected


def test_the_memory_estimate_counts_the_subsample(small_limits, monkeypatch):
    """With the limit at exactly what the main sweep needs, the subsample's recording tips the
    study into keep = "compact"."""
    cfg = config.load(Q4, [f"sweep.alpha.num={N}", f"run.steps={T}"])
    main = resources.sweep_bytes(N, keep="all", param_size=1, itemsize=4)
    monkeypatch.setattr(resources, "memory_limit", lambda: main)
    assert _study_plan.plan(cfg, lambda line: None).keep == "compact"
    monkeypatch.setattr(resources, "memory_limit", lambda: 2 * main)
    plan = _study_plan.plan(cfg, lambda line: None)
    assert plan.keep == "all" and plan.record_every is None
    np.testing.assert_array_equal(plan.heatmap_sample, INDEX)


def test_a_compact_study_still_gets_the_subsample_where_it_fits(small_limits, monkeypatch):
    """keep = "compact" keeps no iterates, so the heatmap's α are swept again, as above the
    recording limit — unless their snapshots would not fit beside the compact results."""
    cfg = config.load(Q4, [f"sweep.alpha.num={N}", f"run.steps={T}"])
    compact = resources.sweep_bytes(N, keep="compact", param_size=1, itemsize=4)
    snaps = gdlab.engine.snapshot_count(T, _study_plots.heatmap_every(T))
    extra = (resources.sweep_bytes(INDEX.size, param_size=1, itemsize=4, snapshots=snaps)
             - resources.sweep_bytes(0, param_size=1, itemsize=4))
    monkeypatch.setattr(resources, "memory_limit", lambda: compact + extra)
    plan = _study_plan.plan(cfg, lambda line: None)
    assert plan.keep == "compact" and plan.record_every is None
    np.testing.assert_array_equal(plan.heatmap_sample, INDEX)
    monkeypatch.setattr(resources, "memory_limit", lambda: compact + extra - 1)
    plan = _study_plan.plan(cfg, lambda line: None)
    assert plan.keep == "compact" and plan.heatmap_sample is None
