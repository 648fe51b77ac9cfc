"""The sweep's stages: a frozen plan, shards simulated apart and finished together bit for bit like
one sweep, and ``sweep`` itself always returning a SweepResult."""

import dataclasses
import inspect

import jax
import numpy as np
import pytest

import gdlab
from gdlab import _sweep as sweep_module
from gdlab import _sweep_plan as sweep_plan
from gdlab import engine
from gdlab._sweep import finish_sweep, simulate_shard
from gdlab._sweep_plan import EngineOptions, plan
from gdlab.errors import ArgumentError

P = gdlab.problems.scalar_regression(x=1.0, y=100.0)
Q = gdlab.problems.quadratic(dim=3)

CASES = {
    # a grid α × x with an odd number of runs: shards of unequal size
    "alpha x": (P, np.linspace(-0.5, 3.0, 37), dict(over={"x": [0.5, 1.0, 2.0]}, steps=60,
                                                    record_every=7)),
    # momentum on an n-d quadratic, w0 an axis
    "momentum n-d": (Q, np.linspace(0.0, 3.0, 11), dict(optimizer="momentum",
                                                        over={"w0": [0.5, 2.0]}, steps=40)),
}


def merged(shards):
    """The raw simulation of the whole grid from its shards, in order (as gdlab merge makes it)."""
    cat = lambda *xs: np.concatenate(xs)
    return engine.Simulation(cat(*(s.w_final for s in shards)),
                             jax.tree.map(cat, *(s.stats for s in shards)),
                             None if shards[0].snapshots is None else
                             cat(*(s.snapshots for s in shards)),
                             sum(s.compile_s for s in shards), sum(s.run_s for s in shards),
                             path="merged shards")


def assert_identical(a, b):
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name in ("compile_s", "run_s", "engine_path"):
            continue
        if x is None or y is None:
            assert x is None and y is None, f.name
        elif f.name == "problem":
            for u, v in zip(x, y):
                np.testing.assert_array_equal(u, v, err_msg=f.name)
        elif isinstance(x, dict):
            assert x.keys() == y.keys()
            for k in x:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{f.name}[{k!r}]")
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert x.tobytes() == y.tobytes(), f.name
        else:
            assert x == y, f.name


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("keep", ["all", "compact"])
def test_shards_finished_together_equal_one_sweep(case, keep):
    problem, alphas, kw = CASES[case]
    kw = dict(kw, progress=False)
    if keep == "compact":
        kw.pop("record_every", None)
    whole = gdlab.sweep(problem, alphas, keep=keep, **kw)
    n = whole.n_runs
    shards = [simulate_shard(problem, alphas, shard=(i, 3), **kw) for i in range(3)]
    assert [s.w_final.shape[0] for s in shards] == [(i + 1) * n // 3 - i * n // 3
                                                    for i in range(3)]
    done = finish_sweep(problem, alphas, merged(shards), keep=keep, **kw)
    assert isinstance(whole, gdlab.SweepResult) and isinstance(done, gdlab.SweepResult)
    assert done.engine_path == "merged shards"
    assert_identical(done, whole)


def test_sweep_always_returns_a_result():
    params = inspect.signature(gdlab.sweep).parameters
    assert "shard" not in params and "simulation" not in params
    with pytest.raises(TypeError):
        gdlab.sweep(P, [0.5], steps=5, shard=(0, 2))
    assert inspect.signature(gdlab.sweep).return_annotation == "SweepResult"


def test_sweep_and_plan_share_their_defaults():
    ours = inspect.signature(gdlab.sweep).parameters
    theirs = inspect.signature(plan).parameters
    for name, p in ours.items():
        assert theirs[name].default == p.default, name
        assert theirs[name].kind == p.kind, name


def test_the_plan_is_frozen_and_knows_the_late_half():
    p = plan(P, [0.5, 1.5], over={"x": [1.0, 2.0]}, steps=7, chunk_size=3, devices=1,
             block=None, unroll=2, progress=False)
    assert (p.n, p.grid.shape, p.runs, p.late_steps) == (4, (2, 2), (0, 4), 4)
    assert p.engine == EngineOptions(unroll=2, chunk=3, block=None, devices=1,
                                     progress=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.steps = 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.engine.chunk = 4
    assert plan(P, [0.5] * 5, steps=3, shard=(1, 2)).runs == (2, 5)


def test_stage_arguments_are_checked():
    with pytest.raises(TypeError, match="'keep'.*every statistic"):
        simulate_shard(P, [0.5, 1.0], shard=(0, 2), steps=5, keep="compact")
    with pytest.raises(TypeError, match="unexpected keyword argument 'simulation'"):
        simulate_shard(P, [0.5, 1.0], shard=(0, 2), steps=5, simulation=None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'shard'"):
        finish_sweep(P, [0.5, 1.0], None, steps=5, shard=(0, 2))
    with pytest.raises(TypeError, match="unexpected keyword argument 'stpes'"):
        finish_sweep(P, [0.5, 1.0], None, stpes=5)
    with pytest.raises(ArgumentError, match=r"^simulation: None is not the raw simulation"):
        finish_sweep(P, [0.5], None, steps=5)
    sim = simulate_shard(P, [0.5, 1.0, 1.5], shard=(0, 1), steps=5, progress=False)
    with pytest.raises(ArgumentError, match=r"^simulation: holds 3 runs of shape \(\), the grid "
                                            r"has 2 runs"):
        finish_sweep(P, [0.5, 1.0], sim, steps=5)


def test_pad_fills_a_chunk_with_copies_of_the_last_run():
    runs = np.arange(6.0).reshape(3, 2)           # three runs of a 2-vector
    np.testing.assert_array_equal(engine.pad(runs, 5), [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]])
    np.testing.assert_array_equal(engine.pad(np.array([7, 8]), 4), [7, 8, 8, 8])
    assert engine.pad(runs, 3) is runs              # a full chunk is not copied


def _counted(monkeypatch, module, name):
    """Replace ``module.name`` by a wrapper that records the (lo, hi) of each call."""
    seen, fn = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda p, lo, hi: seen.append((lo, hi)) or fn(p, lo, hi))
    return seen


L = engine.LANES   # the engine rounds a chunk up to whole vectors of this many runs
CHUNKS = [(0, L), (L, 2 * L), (2 * L, 5 * L // 2)]   # 2.5 L runs in chunks of L, the last padded


@pytest.mark.parametrize("over, slices", [
    ({}, [(0, 1)]),                     # nothing moves w* or e₀: one run stands for all
    ({"x": [0.5, 2.0]}, CHUNKS),        # x moves w* = y/x: every chunk its own
    ({"w0": [0.0, 50.0]}, CHUNKS),      # w0 moves e₀: every chunk its own
])
def test_compact_limits_computed_once_unless_a_swept_parameter_moves_them(monkeypatch, over,
                                                                          slices):
    # the judging limits of keep="compact" need |w*| and |e₀| only, not the curvature
    alphas = np.linspace(0.0, 2.5, 5 * L // 2 // (2 if over else 1))
    kw = dict(over=over, steps=60, chunk_size=L, block=None, devices=1, progress=False)
    full = gdlab.sweep(P, alphas, **kw)
    seen = _counted(monkeypatch, sweep_module, "distances")
    monkeypatch.setattr(sweep_module, "geometry", None)
    compact = gdlab.sweep(P, alphas, keep="compact", **kw)
    assert seen == slices
    np.testing.assert_array_equal(compact.regime, full.regime)
    np.testing.assert_array_equal(compact.steps_to_tol, full.steps_to_tol)


def test_the_plan_checks_a_shared_geometry_on_one_run(monkeypatch):
    seen = _counted(monkeypatch, sweep_plan, "geometry")
    plan(P, np.linspace(0.0, 2.0, 12), steps=5, chunk_size=5)
    assert seen == [(0, 1)]
    seen.clear()
    plan(P, np.linspace(0.0, 2.0, 6), over={"x": [0.5, 2.0]}, steps=5, chunk_size=5)
    assert seen == [(0, 5), (5, 10), (10, 12)]
    with pytest.raises(ArgumentError, match=r"^problem: the optimum is not finite; "):
        plan(gdlab.problems.scalar_regression(0.0, 1.0), np.linspace(0.0, 2.0, 12), steps=5,
             chunk_size=5)
