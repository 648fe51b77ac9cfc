"""The vmapped sweep against plain loops, the homework numbers, compilation and numerics."""

import warnings

import numpy as np
import pytest

import gdlab
from gdlab import engine
from gdlab.regimes import Regime

P = gdlab.problems.scalar_regression(x=1.0, y=100.0)
R = Regime


def numpy_gd(alpha, x, y, w0, steps, dtype=np.float32):
    """Plain-loop gradient descent, the reference: returns the trajectory w_0 … w_T."""
    alpha, x, y = dtype(alpha), dtype(x), dtype(y)
    w = [dtype(w0)]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            w.append(dtype(w[-1] - alpha * (x * (x * w[-1] - y))))
    return np.array(w, dtype)


def test_homework_q4_numbers():
    res = gdlab.sweep(P, [0.5, 1.5, 2.0, 2.5], w0=0.0, steps=200, tol=1.0, record_every=1)
    # w1..w3 by hand from w_{t+1} = w_t − α(w_t − 100):
    np.testing.assert_array_equal(res.trajectory[0, 1:4], [50.0, 75.0, 87.5])
    np.testing.assert_array_equal(res.trajectory[1, 1:4], [150.0, 75.0, 112.5])
    np.testing.assert_array_equal(res.trajectory[3, 1:4], [250.0, -125.0, 437.5])
    # |100 − w_t| = 100·0.5^t < 1 first at t = 7 (100/128 = 0.78).
    assert list(res.steps_to_tol[:2]) == [7, 7]
    # α = 2: the period-2 cycle 0, 200, 0, … forever.
    np.testing.assert_array_equal(res.trajectory[2, :6], [0, 200, 0, 200, 0, 200])
    names = [gdlab.REGIME_NAMES[r] for r in res.regime]
    assert names == ["converging_monotone", "converging_oscillating", "bounded_oscillation",
                     "diverging_oscillating"]
    assert res.steps_to_tol[2] == -1 and res.steps_to_tol[3] == -1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sweep_equals_plain_loop(dtype):
    alphas = [0.0, 0.3, 1.0, 1.7, 2.0, 2.2, -0.1]
    x, y, w0, steps = 1.3, 7.0, -2.0, 60
    res = gdlab.sweep(gdlab.problems.scalar_regression(x, y), alphas, w0=w0, steps=steps, tol=0.01,
                      dtype=dtype, record_every=1)
    npdt = np.dtype(dtype).type
    for i, a in enumerate(res.alpha):
        ref = numpy_gd(a, x, y, w0, steps, npdt)
        err = np.abs(ref.astype(np.float64) - float(npdt(y) / npdt(x)))
        d = int(res.diverged_at[i])
        live = slice(None) if d < 0 else slice(0, d)
        # XLA may fuse a·b − c into one FMA: allow a few ulps of |w| + |update| per step.
        np.testing.assert_allclose(res.trajectory[i][live], ref[live],
                                   rtol=64 * np.finfo(dtype).eps,
                                   atol=64 * np.finfo(dtype).eps * 10)
        if d >= 0:  # frozen at the last in-bound iterate, which the loop shows leaving the bound
            assert np.all(res.trajectory[i][d:] == res.trajectory[i][d - 1])
            assert not abs(ref[d] - y / x) <= np.sqrt(np.finfo(dtype).max)
        below = np.flatnonzero(err[live] < 0.01)
        assert res.steps_to_tol[i] == (below[0] if below.size else -1)
        assert res.max_error[i] == pytest.approx(err[live].max(), rel=1e-5)


def test_second_sweep_of_same_shape_does_not_recompile():
    before = engine.compile_count()
    gdlab.sweep(P, np.linspace(0.0, 3.0, 123), steps=37, tol=1.0)
    gdlab.sweep(P, np.linspace(0.5, 2.5, 123), steps=37, tol=0.5)   # new α values and tol
    gdlab.sweep(gdlab.problems.scalar_regression(2.0, 3.0), np.linspace(0, 1, 123), w0=1.0,
                steps=37, tol=0.1)                                    # new problem values too
    assert engine.compile_count() - before == 1


def test_chunks_with_padded_remainder_equal_one_chunk():
    # the default grid of Q4 (configs/q4_alpha_sweep.toml), whose whole-sweep program other tests
    # share (test_devices.py, test_theory.py)
    alphas = np.linspace(0.0, 3.0, 3001)
    whole = gdlab.sweep(P, alphas, steps=200, tol=1.0)
    before = engine.compile_count()
    # chunks of 1000 runs, rounded up to whole vectors (engine.LANES): 3 of 1024, the last one
    # padded
    parts = gdlab.sweep(P, alphas, steps=200, tol=1.0, chunk_size=1000)
    assert engine.compile_count() - before == 1                        # one program for all chunks
    for field in ("regime", "steps_to_tol", "flips", "diverged_at", "final_error", "w_final"):
        np.testing.assert_array_equal(getattr(parts, field), getattr(whole, field))


def test_diverging_runs_are_frozen_never_inf_or_nan():
    res = gdlab.sweep(P, [2.5, 3.0, 10.0, -1.0], steps=1000, tol=1.0, record_every=10)
    assert np.all(res.diverged_at > 0)
    for a in (res.w_final, res.final_error, res.max_error, res.contraction, res.trajectory):
        assert np.all(np.isfinite(a))
    # Frozen at the first step beyond √(float32 max): |e_t| = 100·|1 − α|^t.
    bound = np.sqrt(np.finfo(np.float32).max)
    expect = [int(np.ceil(np.log(bound / 100) / np.log(abs(1 - a))))
              for a in (2.5, 3.0, 10.0, -1.0)]
    for got, want in zip(res.diverged_at, expect):
        assert abs(int(got) - want) <= 1
    assert list(res.regime) == [Regime.DIVERGING_OSCILLATING] * 3 + [Regime.DIVERGING_MONOTONE]
    # The measured contraction factor is |1 − α| (to rounding of the logs over ~100 steps).
    np.testing.assert_allclose(res.contraction, [1.5, 2.0, 9.0, 2.0], rtol=1e-5)


def test_contraction_and_flips_measured():
    res = gdlab.sweep(P, [0.25, 1.0, 1.75, 0.0], steps=50, tol=1e-3)
    np.testing.assert_allclose(res.contraction[[0, 2]], [0.75, 0.75], rtol=1e-4)
    assert res.contraction[1] == 0.0          # one step to w* exactly
    assert res.contraction[3] == 1.0          # α = 0 never moves
    assert res.flips[0] == 0 and res.flips[2] > 10 and res.flips[3] == 0
    assert res.regime[3] == Regime.STALLED


def test_float64_resolves_what_float32_cannot():
    alphas = [2.0 - 1e-9, 2.0, 2.0 + 1e-9]
    with pytest.warns(gdlab.grids.DuplicateGridWarning):
        r32 = gdlab.sweep(P, alphas, steps=50, tol=1.0)      # the program of the test above
    assert len(set(r32.alpha.tolist())) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r64 = gdlab.sweep(P, alphas, steps=50, tol=1.0, dtype="float64")
    assert r64.dtype == "float64" and r64.w_final.dtype == np.float64
    assert r64.regime[1] == Regime.BOUNDED_OSCILLATION


def test_two_parameter_grid_over_alpha_and_x():
    xs = np.array([0.5, 1.0, 2.0])
    res = gdlab.sweep(P, np.linspace(0.05, 3.0, 60), over={"x": xs}, steps=200, tol=1.0)
    assert res.grid_shape == (60, 3)
    assert res.problem.x.shape == (60, 3)
    a = res.alpha[:, None].astype(np.float64)
    lam = xs[None, :] ** 2
    conv = (a * lam > 0) & (a * lam < 2)
    sim_conv = np.isin(res.regime, [Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING])
    np.testing.assert_array_equal(sim_conv, conv)


def test_w0_axis_and_start_at_optimum():
    res = gdlab.sweep(P, [0.5, 2.5], over={"w0": [0.0, 100.0]}, steps=50, tol=1.0)  # as above
    assert res.grid_shape == (2, 2)
    assert list(res.steps_to_tol[:, 1]) == [0, 0]
    assert list(res.regime[:, 1]) == [Regime.CONVERGING_MONOTONE] * 2


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, r"steps: 0 must be an integer >= 1"),
    ({"steps": 2.5}, r"steps: 2.5 must be an integer >= 1"),
    ({"tol": 0.0}, r"tol: 0.0 must be a finite number > 0"),
    ({"tol": float("nan")}, r"tol: nan must be a finite number > 0"),
    ({"dtype": "float16"}, r"dtype: 'float16' must be one of 'float32', 'float64'"),
    ({"optimizer": "sgdd"}, r"unknown optimizer 'sgdd' \(did you mean 'sgd'\?\)"),
    ({"over": {"z": [1.0]}}, r"over: 'z' is not a parameter of ScalarRegression"),
    ({"w0": float("inf")}, r"w0: inf must be finite"),
    ({"hparams": {"beta": 0.9}}, r"hparams: 'sgd' has no hyperparameter 'beta'"),
])
def test_bad_api_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gdlab.sweep(P, [0.5], **{"steps": 10, **kwargs})


@pytest.mark.parametrize("alphas, message", [
    ([0.5, float("nan")], r"alphas: .* non-finite"),
    ([], r"alphas: .* non-empty"),
    ({"start": 1.0, "stop": 0.0, "num": 3}, r"alphas: start 1.0 > stop 0.0"),
    ({"start": 0.0, "stop": 1.0, "num": 0}, r"alphas.num: 0 must be an integer >= 1"),
])
def test_bad_alphas(alphas, message):
    with pytest.raises(ValueError, match=message):
        gdlab.sweep(P, alphas, steps=10)


def test_problem_without_optimum_is_rejected():
    with pytest.raises(ValueError, match="optimum is not finite"):
        gdlab.sweep(gdlab.problems.scalar_regression(0.0, 1.0), [0.5], steps=5)


def test_compact_mode_keeps_regime_and_steps_only():
    alphas = np.linspace(-0.1, 3.0, 20_001)
    full = gdlab.sweep(P, alphas, steps=120, tol=1.0, chunk_size=4096)
    compact = gdlab.sweep(P, alphas, steps=120, tol=1.0, chunk_size=4096, keep="compact")
    np.testing.assert_array_equal(compact.regime, full.regime)
    np.testing.assert_array_equal(compact.steps_to_tol, full.steps_to_tol)
    assert compact.contraction is None and compact.w_final is None and compact.n_runs == 20_001
    with pytest.raises(ValueError, match="keep: 'some' must be 'all' or 'compact'"):
        gdlab.sweep(P, alphas[:3], steps=3, keep="some")


def test_compact_classifies_on_the_device_as_the_host_does():
    # keep="compact" judges each chunk where it ran (gdlab._sweep.on_device), keep="all" on the
    # host: the same labels for every run, also where the limits differ per run (x and w0 swept:
    # |w*| and |e₀| move the noise floor and the growth band), with runs at the optimum (w0 = 100
    # at x = 1), stalled (α = 0), bounded (αx² = 2) and diverging; the host's labels are checked
    # against the closed form where it is clear (|1 − αx²| away from 1 by 10 %).
    alphas = np.linspace(0.0, 2.5, 41)
    over = {"x": [0.5, 1.0, 2.0], "w0": [0.0, 100.0, 150.0]}
    kw = dict(steps=60, tol=1.0, over=over, chunk_size=200)   # 369 runs: two chunks
    full = gdlab.sweep(P, alphas, **kw)
    compact = gdlab.sweep(P, alphas, keep="compact", **kw)
    np.testing.assert_array_equal(compact.regime, full.regime)
    np.testing.assert_array_equal(compact.steps_to_tol, full.steps_to_tol)
    a, x, w0 = np.meshgrid(alphas, over["x"], over["w0"], indexing="ij")
    r = 1 - a * x**2
    at_optimum = w0 == 100 / x
    clear = (np.abs(np.abs(r) - 1) > 0.1) & ~at_optimum
    expected = np.where(np.abs(r) < 1, np.where(r >= 0, R.CONVERGING_MONOTONE,
                                                R.CONVERGING_OSCILLATING),
                        R.DIVERGING_OSCILLATING)
    np.testing.assert_array_equal(full.regime[clear], expected[clear])
    assert (full.regime[at_optimum] == R.CONVERGING_MONOTONE).all()
    # a momentum map, whose late error rotates: the same on both sides too
    kw = dict(steps=80, tol=1.0, optimizer="momentum", over={"beta": [0.0, 0.5, 0.9]})
    np.testing.assert_array_equal(gdlab.sweep(P, alphas, keep="compact", **kw).regime,
                                  gdlab.sweep(P, alphas, **kw).regime)


def test_two_axis_grid_columns_match_meshgrid():
    xs, ys = np.array([0.5, 1.0, 2.0]), np.array([-3.0, 7.0])
    # (60 steps, as test_sweep_stages.py's α × x grid, and 50 below: programs other tests compile)
    res = gdlab.sweep(P, [0.1, 0.2, 0.3, 0.4], over={"x": xs}, steps=60, chunk_size=5)
    A, X = np.meshgrid(res.alpha, xs.astype(np.float32), indexing="ij")
    np.testing.assert_array_equal(res.hparams["alpha"], A)
    np.testing.assert_array_equal(res.problem.x, X)
    res2 = gdlab.sweep(P, [0.5, 1.5], over={"w0": ys}, steps=50)
    np.testing.assert_array_equal(res2.w0, np.broadcast_to(ys.astype(np.float32), (2, 2)))
