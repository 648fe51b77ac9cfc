"""The CPU fast path (tiles of steps, packed state) reproduces the per-step engine."""

import engines
import numpy as np
import pytest
from engines import FIELDS, P, assert_same, fast_path

import gdlab
from gdlab import engine


def per_step_engine():
    return fast_path("never")


def both(problem=P, **kw):
    return engines.both(problem, mode="tiled", **kw)


@pytest.mark.parametrize("dtype,steps", [("float32", 1), ("float32", 7), ("float32", 300),
                                         ("float32", 999), ("float64", 999)])
def test_gradient_descent_bit_identical(steps, dtype):
    # The schedule's cases (tiled._schedule): T = 1, one one-step tile (the first half is empty);
    # 7, one group of tiles of 4, a partial one ending the first half; 300, tiles of 15 that
    # divide the halves, in 4 groups; 999, odd T, tiles of 20 and partial ones, in 10 groups.
    # 20 000 runs: several engine blocks, each speculating on its own; for T ≥ 300 (float64:
    # 999, its bound is reached later) runs freeze before T/2, in the tile that moves the running
    # max to err_early, and after it. The schedule depends on T alone and the packing on the
    # dtype (float64: the three counters in one unit whatever T): float64 at T = 999, whose
    # tiles include partial ones and freezes (each dtype and T is a program of its own to compile).
    fast, slow = both(alphas=np.linspace(-0.2, 3.2, 20_000), steps=steps, tol=1.0, dtype=dtype)
    if steps >= {"float32": 300, "float64": 999}[dtype]:
        assert (fast.diverged_at > 0).sum() > 1000
    assert_same(fast, slow)


def test_momentum_same_regimes_and_freezes():
    # Stateful optimizers may contract a multiply-add differently: last-bit differences in w, so
    # compare what the results are made of, not bits.
    # (the grid and horizon of test_fused.py's momentum test: its per-step program serves here)
    kw = dict(alphas=np.linspace(0.0, 4.0, 201), optimizer="momentum",
              over={"beta": [0.0, 0.5, 0.9]}, steps=160, tol=1.0)
    fast, slow = both(**kw)
    np.testing.assert_array_equal(fast.diverged_at, slow.diverged_at)
    assert np.mean(fast.regime == slow.regime) >= 0.995
    assert np.mean(fast.steps_to_tol == slow.steps_to_tol) >= 0.995
    np.testing.assert_allclose(fast.w_final, slow.w_final, rtol=1e-5, atol=1e-5)


def test_out_of_scope_runs_use_the_per_step_loop():
    from gdlab.engine import tiled
    f32, f64 = np.float32, np.float64
    assert not tiled.eligible((3,), f32, 100, None, P)            # vector w
    assert not tiled.eligible((), f32, 100, 5, P)                 # snapshots
    assert not tiled.eligible((), f32, 2**24, None, P)            # step numbers inexact
    assert tiled.eligible((), f32, 5000, None, P) and tiled.eligible((), f64, 2**24, None, P)


@pytest.mark.parametrize("mode", ["tiled", "fused"])
def test_runs_frozen_before_half_time_end_with_no_late_error(mode):
    # α = 2.9 freezes at t = 62, long before T/2 = 101, and no other run freezes (α ≤ 1.5), so the
    # tile that resets the running max is speculated: the frozen run must take the reset too (on
    # the CPU tiles and in the GPU kernel, interpreted here). 1001 runs of 203 steps: the grid of
    # test_fused.py, whose kernel serves here.
    alphas = np.r_[0.5, 1.5, 2.9, np.linspace(0.3, 0.7, 998)]
    fast, slow = engines.both(alphas=alphas, steps=203, tol=1.0, mode=mode)
    assert fast.diverged_at[2] == 62 and fast.max_error[2] > 0
    assert (fast.diverged_at > 0).sum() == 1
    assert_same(fast, slow)


def _tiled(alphas, steps, r=True, detail=False):
    import jax

    from gdlab.engine import tiled
    a = np.asarray(alphas, np.float32)
    p = gdlab.problems.scalar_regression(np.float32(1.0), np.float32(100.0))
    fn = jax.jit(lambda a: tiled.run(
        p, {"alpha": a}, np.zeros(a.shape, np.float32), (1 - a) if r else None, np.float32(1.0),
        p_axes=type(p)(None, None), h_axes={"alpha": 0},
        make_optimizer=gdlab.optimizers.get("sgd").make, steps=steps, count=True))
    (w, stats, _), counts, checks = fn(a)
    failed, quiet, skipped = map(int, counts)
    return (failed, int(checks)) if not detail else (failed, quiet, skipped, int(checks))


def test_speculation_holds_without_freezes_and_fails_on_one():
    from gdlab.engine import tiled
    assert (tiled.TILE, tiled.GROUP) == (20, 5)      # the counts below follow from these
    # T = 1000 is 10 groups of 5 tiles of 20 steps, each checked once.
    assert _tiled(np.linspace(0.0, 1.99, 512), 1000) == (0, 10)
    # α = 2.5 freezes at t = 98 (|1.5|^t · 100 > √max f32): only the group holding t = 98 fails.
    t = int(np.ceil(np.log(np.sqrt(np.finfo(np.float32).max) / 100) / np.log(1.5)))
    assert 76 <= t <= 100
    assert _tiled(np.r_[np.linspace(0.0, 1.99, 511), 2.5], 1000, r=False) == (1, 10)
    # Groups divide the tile count, so no group is padded: T = 1001 has 25 + 26 tiles (the last one
    # of a single step), in 17 groups of 3; only the group with that partial tile takes the exact
    # step.
    assert _tiled(np.linspace(0.0, 1.99, 512), 1001) == (1, 17)
    # T = 1100: halves of 550 steps take tiles of 11 (the largest divisor of 550 in [10, 20], so no
    # partial tile): 100 tiles in groups of 5.
    assert _tiled(np.linspace(0.0, 1.99, 512), 1100) == (0, 20)


def test_settled_blocks_take_quiet_groups_and_frozen_ones_skip():
    # T = 1000: 10 groups of 5 tiles; the late half starts with the group holding the reset at
    # t = 500 (groups 5), so groups 6–9 can be quiet. |1 − α| ≤ 0.7 settles within the float32
    # noise floor (64 ulps of |w*|: 7.6e-4) by t = 40: every late group after the reset is
    # quiet and nothing fails. With α = 1.99 beside them (|r| = 0.99: still 4e-3 from w* at
    # t = 500) the block is not settled: no quiet group.
    assert _tiled(np.linspace(0.3, 1.7, 512), 1000, detail=True) == (0, 4, 0, 10)
    assert _tiled(np.r_[np.linspace(0.3, 1.7, 511), 1.99], 1000, detail=True) == (0, 0, 0, 10)
    # Every run frozen (α = 2.9 at t = 62, group 0): groups 1–4 and 6–9 skip; the group holding
    # T/2 still runs (a frozen run's running max moves to err_early there), speculated, and holds.
    assert _tiled(np.full(512, 2.9), 1000, detail=True) == (1, 0, 8, 10)
    # and the results are the per-step loop's, bit for bit (engines.both), quiet groups included
    fast, slow = both(alphas=np.r_[np.linspace(0.3, 1.7, 4095), 2.9], steps=1000, tol=1.0)
    assert_same(fast, slow)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_a_run_does_not_depend_on_the_runs_beside_it(optimizer):
    # Shards and sub-sweeps must reproduce the whole sweep bit for bit: batch sizes are padded to
    # whole vectors so that every batch is compiled the same way (see engine._program._layout).
    alphas = np.random.default_rng(0).uniform(0.0, 4.0, 37)
    # 3 values each: 111 runs padded to 128, the parts to 64 or 128 (engine.LANES), so each
    # optimizer compares two programs of different widths, and the placements in them.
    over = {"sgd": {"x": [0.5, 1.0, 1.5]}, "momentum": {"beta": [0.0, 0.5, 0.9]},
            "adam": {"b1": [0.0, 0.5, 0.9]}}[optimizer]
    # (200 steps: the whole Adam sweep takes the program of test_cli.py's small Adam study)
    kw = dict(optimizer=optimizer, over=over, steps=200, tol=1.0, progress=False, recurrence=None)
    full = gdlab.sweep(P, alphas, **kw)
    for lo, hi in ((0, 18), (18, 37), (5, 6), (3, 30)):
        part = gdlab.sweep(P, alphas[lo:hi], **kw)
        for f in FIELDS + ("recurrence_dev",):
            if getattr(full, f) is not None:
                np.testing.assert_array_equal(getattr(part, f), getattr(full, f)[lo:hi],
                                              err_msg=f"{f} [{lo}:{hi}]")


def test_update_only_freezes_as_the_per_step_loop():
    a = np.linspace(-0.5, 3.5, 1000)
    args = (P._replace(x=np.float32(1.0), y=np.float32(100.0)), {"alpha": a.astype(np.float32)},
            np.zeros(a.size, np.float32))
    kw = dict(make_optimizer=gdlab.optimizers.get("sgd").make, steps=500, tol=1.0, chunk_size=1000,
              block=4096, batched_fields=frozenset({"alpha"}), statistics=False)
    fast = engine.simulate(*args, **kw)
    with per_step_engine():
        slow = engine.simulate(*args, **kw)
    assert (fast.stats.t_freeze > 0).sum() > 100
    np.testing.assert_array_equal(fast.w_final, slow.w_final)
    for f, x in fast.stats._asdict().items():
        if x is not None:
            np.testing.assert_array_equal(x, getattr(slow.stats, f), err_msg=f)


def test_simulate_keeps_what_reduce_returns_in_parts():
    a = np.linspace(-0.5, 3.5, 300).astype(np.float32)
    args = (P._replace(x=np.float32(1.0), y=np.float32(100.0)), {"alpha": a},
            np.zeros(a.size, np.float32))
    kw = dict(make_optimizer=gdlab.optimizers.get("sgd").make, steps=200, tol=1.0, chunk_size=128,
              batched_fields=frozenset({"alpha"}))
    whole = engine.simulate(*args, **kw)
    sim = engine.simulate(*args, reduce=lambda lo, hi, out: (lo, hi, out[1].t_freeze), **kw)
    assert [(lo, hi) for lo, hi, _ in sim.parts] == [(0, 128), (128, 256), (256, 300)]
    np.testing.assert_array_equal(np.concatenate([t for _, _, t in sim.parts]),
                                  whole.stats.t_freeze)
    assert sim.w_final is None and sim.stats is None and sim.snapshots is None
    assert whole.parts is None


def test_fast_paths_declare_their_interface_and_the_mode_is_checked():
    assert [path.name for path in engine.FAST_PATHS] == ["fused", "tiled"]
    assert all(isinstance(path, engine.FastPath) for path in engine.FAST_PATHS)
    with fast_path("sometimes"), pytest.raises(ValueError, match="FAST_PATH.*'sometimes'"):
        gdlab.sweep(P, [0.5], steps=10, progress=False)


def test_double_well_bit_identical_through_chaos_and_escape():
    # A non-quadratic loss: period doubling, chaos, and escapes that freeze at different steps.
    fast, slow = both(gdlab.problems.double_well(1.0), alphas=np.linspace(0.0, 3.0, 6000), w0=0.5,
                      steps=400, tol=1e-3)
    assert (fast.diverged_at > 0).sum() > 100 and len(np.unique(fast.regime)) >= 3
    for f in ("regime", "steps_to_tol", "flips", "diverged_at", "final_error", "max_error",
              "growth", "w_final"):
        np.testing.assert_array_equal(getattr(fast, f), getattr(slow, f), err_msg=f)


def test_the_engine_routes_to_the_path_it_says():
    """The bit-identity tests above would pass if the engine stopped routing to the tiles: the
    result records which program ran, and the routing rules are checked here."""
    # 1001 runs of 7 steps, as in test_fused.py: the loop and the kernel compiled there serve here
    kw = dict(alphas=np.linspace(0.0, 3.0, 1001), steps=7, progress=False)
    with fast_path("auto"):
        assert gdlab.sweep(P, **kw).engine_path == "tiled"                 # CPU default
        assert gdlab.sweep(P, record_every=5, **kw).engine_path == "loop"  # out of the tiles' scope
        assert gdlab.sweep(gdlab.problems.quadratic(dim=3), **kw).engine_path == "loop"  # modes
    with fast_path("never"):
        assert gdlab.sweep(P, **kw).engine_path == "loop"
    with fast_path("fused"):
        assert gdlab.sweep(P, **kw).engine_path == "fused"   # Pallas' interpreter on a CPU
