"""gdlab.track: the tracked losses are an untracked run's bits, the tracked sharpness is numpy's top
eigenvalue of the Hessian there, and the summary figures follow their definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdlab
from gdlab import tracking

ALPHAS = np.array([0.05, 0.2, 0.8])


def _plain(problem, tx_of, alphas, steps):
    """Reference: a plain jitted, vmapped scan of optax steps, recording L(w_t), and w_t."""
    def run(alpha):
        tx = tx_of(alpha)
        def step(carry, _):
            w, s = carry
            loss, g = jax.value_and_grad(problem.loss)(w)
            u, s = tx.update(g, s, w)
            return (w + u, s), (loss, w)
        w0 = jnp.asarray(problem.init())
        (w, _), (losses, ws) = jax.lax.scan(step, (w0, tx.init(w0)), None, length=steps)
        return jnp.concatenate([losses, problem.loss(w)[None]]), ws
    return jax.jit(jax.vmap(run))(jnp.asarray(alphas))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_tracked_loss_is_untracked_loss_bit_for_bit(optimizer):
    p = gdlab.problems.mlp(width=4, depth=1, points=8, seed=1)
    with jax.enable_x64(True):
        res = gdlab.track(p, ALPHAS, optimizer=optimizer, steps=12, every=4, iters=8)
        tx_of = ((lambda a: optax.sgd(a)) if optimizer == "sgd"
                 else lambda a: gdlab.optimizers.get("momentum").make(alpha=a, beta=0.9))
        loss, ws = _plain(p, tx_of, res.alphas, 12)
        np.testing.assert_array_equal(res.loss, np.asarray(loss))   # the same bits
        if optimizer == "sgd":
            # the sharpness at t = 4 is the top eigenvalue of numpy's eigvalsh of the Hessian at
            # the reference's w_4 (20 parameters: the dense path; both float64 symmetric
            # eigensolvers, agreement ~1e-14, 1e-10 relative leaves room)
            hs = np.asarray(jax.jit(jax.vmap(jax.hessian(p.loss)))(ws[:, 4]))
            want = np.linalg.eigvalsh(0.5 * (hs + hs.transpose(0, 2, 1)))[:, -1]
            np.testing.assert_allclose(res.sharpness[:, 1, 0], want, rtol=1e-10)
    assert res.loss.shape == (3, 13) and res.sharpness.shape == (3, 4, 1)
    np.testing.assert_allclose(res.threshold, (2 if optimizer == "sgd" else 3.8) / ALPHAS)


def _result(edge, alphas, steps, every, loss_last=0.1):
    n, m = edge.shape
    return tracking.TrackResult(
        alphas=np.asarray(alphas), optimizer="sgd", hparams={}, steps=steps, every=every,
        loss=np.full((n, steps + 1), loss_last), sharpness=edge[..., None], preconditioned=None,
        threshold=2 / np.asarray(alphas), compile_s=0.0, run_s=0.0, dtype="float64")


def test_summary_figures_follow_their_definitions():
    # α = 1: threshold 2; sharpness at t = 0, 10, …, 100; reaches 2 at t = 30, then hovers
    edge = np.array([[1.0, 1.5, 1.9, 2.0, 2.1, 1.9, 2.2, 1.8, 2.0, 2.05, 1.95],
                     [0.5] * 11])
    rows = tracking.summary(_result(edge, [1.0, 1.0], 100, 10))
    assert rows[0]["first_step_at_threshold"] == 30
    tail = edge[0, 5:] / 2          # t = 50 … 100: the last half
    assert rows[0]["ratio_median"] == pytest.approx(np.median(tail))
    assert (rows[0]["ratio_min"], rows[0]["ratio_max"]) == pytest.approx((0.9, 1.1))
    assert rows[1]["first_step_at_threshold"] is None and rows[1]["ratio_max"] == 0.25
    diverged = tracking.summary(_result(edge, [1.0, 1.0], 100, 10, loss_last=np.nan))
    assert diverged[0]["diverged"] and diverged[0]["ratio_median"] is None


def test_bad_arguments_are_one_line_errors():
    p = gdlab.problems.mlp(width=4, depth=1, points=8)
    with pytest.raises(gdlab.errors.ArgumentError, match="every: 3 must divide steps = 10"):
        gdlab.track(p, [0.1], steps=10, every=3)
    with pytest.raises(gdlab.errors.ArgumentError, match="nesterov"):
        gdlab.track(p, [0.1], optimizer="nesterov", steps=10, every=5)
    with pytest.raises(gdlab.errors.ArgumentError, match="alphas"):
        gdlab.track(p, [-0.1], steps=10, every=5)


def test_eos_digits_script_writes_a_run_directory(run_script, tmp_path):
    import json
    status, out = run_script("eos_digits.py", "--out", tmp_path, "--points", 40, "--hidden", "6",
                             "--steps", 10, "--every", 5, "--iters", 4,
                             "--optimizers", "adam", "--alphas-adam", "0.01,0.02")
    assert status == 0, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    # the step sizes as simulated, in float32
    assert [r["alpha"] for r in summary["adam"]["rows"]] == pytest.approx([0.01, 0.02], rel=1e-7)
    with np.load(tmp_path / "results.npz", allow_pickle=False) as z:
        assert z["adam_loss"].shape == (2, 11) and z["adam_preconditioned"].shape == (2, 3)
        assert np.isnan(z["adam_preconditioned"][:, 0]).all()      # no v̂ before step 1
        assert np.isfinite(z["adam_preconditioned"][:, 1:]).all()
        np.testing.assert_array_equal(z["adam_sharpness_steps"], [0, 5, 10])
    assert (tmp_path / "eos_adam.png").exists()
    assert "| α | threshold |" in out


def test_digits_mlp_loss_is_numpy_forward_pass():
    """digits_mlp's data and loss against a forward pass written here in numpy from the maths."""
    from sklearn.datasets import load_digits

    p = gdlab.problems.digits_mlp(hidden=(5, 3), points=30, seed=2)
    d = load_digits()
    x = d.data[:30] / 16.0
    x = x - x.mean(axis=0)
    y = np.eye(10)[d.target[:30]]
    w = np.asarray(p.init())
    w1, w2, w3 = w[:320].reshape(64, 5), w[320:335].reshape(5, 3), w[335:].reshape(3, 10)
    h = np.tanh(np.sqrt(2) * (x @ w1) / 8)
    h = np.tanh(np.sqrt(2) * (h @ w2) / np.sqrt(5))
    f = h @ w3 / np.sqrt(3)                                  # standard parameterization
    want = np.mean(np.sum((f - y) ** 2, axis=1))
    with jax.enable_x64(True):
        got = float(p.loss(jnp.asarray(w)))
    assert got == pytest.approx(want, rel=1e-12)   # float64 both, a few roundings apart
    assert p.param_shape == (64 * 5 + 5 * 3 + 3 * 10,)
    with pytest.raises(gdlab.errors.ArgumentError, match="problem.points"):
        gdlab.problems.digits_mlp(points=2000)
