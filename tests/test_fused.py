"""The GPU kernel (gdlab.engine.fused) reproduces the per-step engine, and lowers to Triton.

On a CPU the kernel runs in Pallas' interpreter: the same kernel body, tiles, speculation and
redo, executed by XLA:CPU, so its results are compared bit for bit with the per-step loop. Lowering
for CUDA needs no GPU: it checks that every operation the kernel uses has a Triton lowering.
"""

import warnings

import jax
import numpy as np
import pytest
from engines import FIELDS, P, assert_same, both, fast_path

import gdlab
from gdlab.engine import fused

SGD = gdlab.optimizers.get("sgd")
P32 = P._replace(x=np.float32(1.0), y=np.float32(100.0))
P_AXES = P._replace(x=None, y=None)


# Gradient descent below (and in test_tiled.py) runs N step sizes for T steps: the kernel takes
# seconds to compile in Pallas' interpreter, and the engine keeps one program per (N, T, dtype).
N, T = 1001, 203


def fused_both(problem=P, **kw):
    return both(problem, mode="fused", **kw)


@pytest.mark.parametrize("dtype,steps", [("float32", 1), ("float32", 7), ("float32", T),
                                         ("float64", T)])
def test_gradient_descent_bit_identical(steps, dtype):
    # T = 1 (an empty first half) and 7: shorter than a tile, each half one partial tile; 203:
    # several whole tiles, then a partial tile ends each half (halves of 101 and 102 steps); α
    # beyond 2 freezes inside speculated tiles, which are redone. The schedule of tiles does not
    # depend on the dtype: float64 (its own noise floor and bound) at T = 203, which takes every
    # kind of tile (each dtype and T is a kernel of its own to compile, seconds each).
    fast, slow = fused_both(alphas=np.linspace(-0.2, 4.2, N), steps=steps, tol=1.0,
                            dtype=dtype)
    if steps >= 50 and dtype == "float32":     # |1 − α|^t · 100 passes √max f32 by t ≈ 35
        assert (fast.diverged_at > 0).sum() > 100
    assert_same(fast, slow)


def test_runs_that_leave_the_noise_floor_are_redone():
    # w₀ within the noise floor of w* (64 ulps of 100 ≈ 7.6e-4) and within tol: every block starts
    # settled and takes quiet tiles (no counters). For α > 2 the error then grows by |1 − α| per
    # step past the floor inside a tile, so those tiles must be redone with the counters.
    fast, slow = fused_both(alphas=np.linspace(0.0, 3.0, N), w0=100.0001, steps=T, tol=1.0)
    assert (slow.flips > 10).sum() > 100 and (slow.diverged_at > 0).sum() > 100
    assert_same(fast, slow)
    # tol below the floor: runs sit within the floor before steps_to_tol is set, and must not take
    # quiet tiles then (they would miss the step that sets it).
    fast, slow = fused_both(alphas=np.linspace(0.0, 2.0, N), steps=T, tol=2e-5)
    assert (slow.steps_to_tol > 0).sum() > 300
    assert_same(fast, slow)


def test_double_well_bit_identical_through_chaos_and_escape():
    fast, slow = fused_both(gdlab.problems.double_well(1.0), alphas=np.linspace(0.0, 3.0, 2000),
                            w0=0.5, steps=200, tol=1e-3)
    assert (fast.diverged_at > 0).sum() > 50 and len(np.unique(fast.regime)) >= 3
    assert_same(fast, slow)


@pytest.mark.parametrize("optimizer,over", [("momentum", {"beta": [0.0, 0.5, 0.9]}),
                                            ("adam", {"b1": [0.0, 0.9]})])
def test_stateful_optimizers_same_regimes_and_freezes(optimizer, over):
    # No speculation with optimizer state (exact tiles only). Compare what results are made of:
    # a multiply-add may be contracted differently in the two programs (last bits of w). Halves of
    # whole tiles (T = 160): a partial tile would add a second unrolled exact tile to compile (the
    # gradient-descent tests cover partial tiles).
    fast, slow = fused_both(alphas=np.linspace(0.0, 4.0, 201), optimizer=optimizer, over=over,
                            steps=160, tol=1.0)
    np.testing.assert_array_equal(fast.diverged_at, slow.diverged_at)
    assert np.mean(fast.regime == slow.regime) >= 0.995
    assert np.mean(fast.steps_to_tol == slow.steps_to_tol) >= 0.995
    np.testing.assert_allclose(fast.w_final, slow.w_final, rtol=1e-5, atol=1e-5)


def test_update_only_as_the_per_step_loop():
    a = np.linspace(-0.5, 3.5, 500).astype(np.float32)
    args = (P32, {"alpha": a}, np.zeros(a.size, np.float32), None, np.float32(1.0))
    kw = dict(make_optimizer=SGD.make, steps=120, dtype=np.float32, rate=False, statistics=False)
    w, st, _ = jax.jit(fused.program(P_AXES, {"alpha": 0}, interpret=True, block=64, **kw))(*args)
    ref_w, ref, _ = jax.vmap(lambda h, w0: gdlab.engine._loop._run(
        P32, h, w0, None, np.float32(1.0), make_optimizer=SGD.make, steps=120, unroll=1,
        record_every=None, statistics=False))({"alpha": a}, args[2])
    assert (np.asarray(st.t_freeze) > 0).sum() > 100
    np.testing.assert_array_equal(w, ref_w)
    for f in ("t_freeze", "steps_to_tol", "flips", "err_early", "err_late", "err_obs", "k_obs"):
        np.testing.assert_array_equal(getattr(st, f), getattr(ref, f), err_msg=f)


def test_a_run_does_not_depend_on_the_runs_beside_it():
    # Blocks of fused.BLOCK runs speculate on their own: a freeze in one block must not change
    # another, and padding the last block must not change it either. The N runs of T steps of the
    # gradient-descent test above, whose kernel serves here: N = 1001 padded to 1024 (engine.LANES)
    # with copies of the last run, so the last block of 32 holds 9 runs and 23 copies. One batch
    # size, so one compiled kernel: the runs move instead, to other lanes, blocks and neighbours,
    # in and out of the padded block.
    a = np.random.default_rng(0).uniform(0.0, 3.0, N).astype(np.float32)
    fields = FIELDS + ("recurrence_dev",)

    def call(alphas):
        with fast_path("fused"), warnings.catch_warnings():
            warnings.simplefilter("ignore", gdlab.grids.DuplicateGridWarning)
            res = gdlab.sweep(P, alphas, steps=T, tol=1.0, progress=False, recurrence=True)
        assert res.engine_path == "fused"
        return {f: np.asarray(getattr(res, f)) for f in fields}

    def assert_equal(got, want):
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)

    full = call(a)
    t = full["diverged_at"]
    block = fused.BLOCK
    assert (t[:block] > 0).any() and (t[:block] < 0).any()     # runs freeze beside live ones
    # shifted by 37 (the block boundaries fall elsewhere, a[-37:] fills the first block and more)
    # and by a whole block
    for shift in (37, block):
        assert_equal(call(np.roll(a, shift)), {k: np.roll(v, shift) for k, v in full.items()})
    # a run with no other run beside it: every lane, padding included, holds its α
    assert_equal(call(np.full_like(a, a[10])), {k: np.full_like(v, v[10]) for k, v in full.items()})
    # the runs [37, 100) among runs that all freeze early (α = 2.9) or that all settle (α = 0.5)
    for other in (2.9, 0.5):
        b = np.full_like(a, other)
        b[37:100] = a[37:100]
        assert_equal({k: v[37:100] for k, v in call(b).items()},
                     {k: v[37:100] for k, v in full.items()})


# Every optimizer with statistics (float32 and float64) and without; the rate (the deviation
# from e_{t+1} = r e_t) with sgd only: a sweep measures it for gradient descent on a scalar (where
# it is defined), and its operations are the same whatever the optimizer.
@pytest.mark.parametrize("optimizer,dtype,statistics,rate", [
    (opt, dtype, statistics, rate)
    for dtype, statistics, rate in [(np.float32, True, False), (np.float32, True, True),
                                    (np.float32, False, False), (np.float64, True, False)]
    for opt in ["sgd", "momentum", "adam"] if opt == "sgd" or not rate])
def test_lowers_to_triton_for_cuda(optimizer, dtype, statistics, rate):
    # Lowering (not compiling) for CUDA runs on any machine: every primitive the kernel uses must
    # have a Triton lowering, or the GPU fast path would fail on first use.
    spec = gdlab.optimizers.get(optimizer)
    n = 300
    hp = {"alpha": np.linspace(0, 3, n).astype(dtype),
          **{k: np.asarray(v, dtype) for k, v in spec.defaults.items()}}
    p = P._replace(x=np.asarray(1.0, dtype), y=np.asarray(100.0, dtype))
    run = fused.program(P_AXES, {k: 0 if k == "alpha" else None for k in hp},
                        make_optimizer=spec.make, steps=40, dtype=dtype, rate=rate,
                        statistics=statistics)
    args = (p, hp, np.zeros(n, dtype), np.ones(n, dtype) if rate else None, np.asarray(1.0, dtype))
    with jax.enable_x64(dtype == np.float64):
        text = jax.jit(run).trace(*args).lower(lowering_platforms=("cuda",)).as_text()
    assert "xla.gpu.triton" in text and "gdlab_sweep" in text


def test_a_kernel_that_does_not_compile_falls_back_to_the_loop(monkeypatch):
    # A GPU whose Triton cannot take the kernel still gets its sweep (XLA's loop), with a warning.
    def broken(*args, **kw):
        def run(*a):
            raise NotImplementedError("no Triton lowering for this primitive")
        return run
    monkeypatch.setattr(fused, "program", broken)
    with pytest.warns(RuntimeWarning, match="did not compile here.*per-step loop"):
        fast, slow = fused_both(alphas=np.linspace(0.0, 3.0, 77), steps=30, tol=1.0)
    assert_same(fast, slow)


def test_scope_and_bad_block():
    n = 10
    args = lambda p, h: (p, h, np.zeros(n, np.float32), None, np.float32(1.0))
    h = {"alpha": np.zeros(n, np.float32)}
    assert fused.eligible(args(P32, h), P_AXES, {"alpha": 0}, 100, None)
    assert not fused.eligible(args(P32, h), P_AXES, {"alpha": 0}, 100, 5)        # snapshots
    assert not fused.eligible(args(P32, h), P_AXES, {"alpha": 0}, 2**24, None)   # T inexact
    wide = P32._replace(x=np.ones(3, np.float32))                             # a shared vector
    assert not fused.eligible(args(wide, h), P_AXES, {"alpha": 0}, 100, None)
    with pytest.raises(ValueError, match="power of two"):
        fused.program(P_AXES, {"alpha": 0}, make_optimizer=SGD.make, steps=10, dtype=np.float32,
                      rate=False, block=96)
