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
    """Reference: a plain jitted scan of optax steps per α (one run at a time, as track runs
    them), recording L(w_t), and w_t; rows stacked."""
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
    runs = [jax.jit(run)(jnp.asarray(a)) for a in alphas]
    return tuple(jnp.stack(parts) for parts in zip(*runs))


def _op_by_op(problem, tx_of, alphas, steps):
    """Reference: L(w_t) of the runs (one row per α) stepped by ``tx_of(α)`` evaluated eagerly,
    one operation at a time, so every product is rounded before it is added (no fused
    multiply-add: the rounding gdlab.optimizers promises for every optimizer but sgd); the
    gradients by a jitted ``jax.value_and_grad`` of the problem's loss, one run at a time."""
    value_and_grad = jax.jit(jax.value_and_grad(problem.loss))
    rows = []
    for alpha in alphas:
        tx, w = tx_of(jnp.asarray(alpha)), jnp.asarray(problem.init())
        state, losses = tx.init(w), []
        for _ in range(steps):
            loss, g = value_and_grad(w)
            u, state = tx.update(g, state, w)
            w = w + u
            losses.append(loss)
        losses.append(jax.jit(problem.loss)(w))
        rows.append(np.stack(losses))
    return np.stack(rows)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_tracked_loss_is_untracked_loss_bit_for_bit(optimizer):
    p = gdlab.problems.mlp(width=4, depth=1, points=8, seed=1)
    with jax.enable_x64(True):
        res = gdlab.track(p, ALPHAS, optimizer=optimizer, steps=12, every=4, iters=8)
        if optimizer == "sgd":
            loss, ws = _plain(p, optax.sgd, res.alphas, 12)
        else:
            # optax's heavy ball, v ← ∇L + βv, w ← w − αv, is gdlab's "momentum"
            loss = _op_by_op(p, lambda a: optax.sgd(a, momentum=0.9), res.alphas, 12)
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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_runs_numbers_do_not_depend_on_the_other_step_sizes(dtype):
    """α = 8 and α = 4 give the same bits alone, in a pair and among three, in any position: a
    run's result never depends on which other runs share its call (a vmapped batch's matrix
    products round differently with its size)."""
    net = gdlab.problems.digits_mlp(hidden=(16, 16), points=64)
    kw = dict(steps=40, every=10, iters=8, dtype=dtype)
    runs = [gdlab.track(net, alphas, **kw) for alphas in ([8.0], [4.0, 8.0], [8.0, 4.0, 2.0])]
    for alpha in (8.0, 4.0):
        rows = [(r.loss[i], r.sharpness[i]) for r in runs
                for i in np.flatnonzero(r.alphas == alpha)]
        assert len(rows) == (3 if alpha == 8.0 else 2)
        for loss, lam in rows[1:]:
            np.testing.assert_array_equal(loss, rows[0][0])
            np.testing.assert_array_equal(lam, rows[0][1])


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
    with pytest.raises(gdlab.errors.ArgumentError,
                       match=r"^optimizer: .*'adma' \(did you mean 'adam'\?\); known: sgd, "):
        gdlab.track(p, [0.1], optimizer="adma", steps=10, every=5)
    with pytest.raises(gdlab.errors.ArgumentError, match="alphas"):
        gdlab.track(p, [-0.1], steps=10, every=5)


@pytest.fixture
def nothing_compiled(monkeypatch):
    """track's per-run program raises if it is ever traced: a refusal must come first."""
    def traced(*args, **kwargs):
        raise AssertionError("the tracked program was traced before the arguments were checked")
    monkeypatch.setattr(tracking, "_blocks", traced)


@pytest.mark.parametrize("hparams", [[("beta", 0.9)], 0.9, "beta=0.9", 0])
def test_hparams_not_a_mapping_is_refused(nothing_compiled, hparams):
    p = gdlab.problems.mlp(width=4, depth=1, points=8)
    message = r"^hparams: .* must be a mapping name → value, e\.g\. \{'beta': 0\.9\}$"
    with pytest.raises(gdlab.errors.ArgumentError, match=message):
        gdlab.track(p, [0.1], optimizer="momentum", hparams=hparams, steps=4, every=2)


_BAD_HPARAMS = [
    ("adam", {"b1": 1.0}, r"hparams\['b1'\]: 1\.0 must be in \[0, 1\) \(m ← b1·m"),
    ("adam", {"b1": -0.1}, r"hparams\['b1'\]: -0\.1 must be in \[0, 1\)"),
    ("adam", {"b2": 1.0}, r"hparams\['b2'\]: 1\.0 must be in \[0, 1\)"),
    ("adam", {"eps": 0.0}, r"hparams\['eps'\]: 0\.0 must be in \(0, inf\)"),
    ("adam", {"eps": -1e-8}, r"hparams\['eps'\]: -1e-08 must be in \(0, inf\)"),
    ("adam", {"b1": float("nan")}, r"hparams\['b1'\]: nan must be a number in \[0, 1\)"),
    ("adam", {"eps": float("inf")}, r"hparams\['eps'\]: inf must be a number in \(0, inf\)"),
    ("adam", {"b1": "0.9"}, r"hparams\['b1'\]: '0\.9' must be a number in \[0, 1\)"),
    ("adam", {"b1": [0.9]}, r"hparams\['b1'\]: \[0\.9\] must be a number in \[0, 1\)"),
    ("adam", {"b1": None}, r"hparams\['b1'\]: None must be a number in \[0, 1\)"),
    ("momentum", {"beta": True}, r"hparams\['beta'\]: True must be a number in \(-1, 1\)"),
    ("momentum", {"beta": 1.0}, r"hparams\['beta'\]: 1\.0 must be in \(-1, 1\)"),
    ("momentum", {"beta": -1.5}, r"hparams\['beta'\]: -1\.5 must be in \(-1, 1\)"),
    ("momentum", {"bta": 0.5}, r"hparams: 'bta' is not a hyperparameter of 'momentum' "
                               r"\(did you mean 'beta'\?\) \(it has: beta\)"),
    ("sgd", {"beta": 0.5}, r"hparams: 'beta' is not a hyperparameter of 'sgd' \(it has: none\)"),
    # in range as written, not once rounded to the run's float32
    ("adam", {"b2": 1 - 1e-9}, r"hparams\['b2'\]: 0\.999999999 rounds to 1\.0 in float32, "
                               r"outside \[0, 1\)"),
    ("adam", {"eps": 1e-50}, r"hparams\['eps'\]: 1e-50 rounds to 0\.0 in float32"),
]


@pytest.mark.parametrize("optimizer, hparams, message",
                         [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in _BAD_HPARAMS])
def test_hyperparameters_outside_their_range_are_refused(nothing_compiled, optimizer, hparams,
                                                         message):
    p = gdlab.problems.mlp(width=4, depth=1, points=8)
    with pytest.raises(gdlab.errors.ArgumentError, match="^" + message) as err:
        gdlab.track(p, [0.1], optimizer=optimizer, hparams=hparams, steps=4, every=2,
                    dtype="float32")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("problem, w0, message", [
    (gdlab.problems.mlp(width=4, depth=1, points=8), np.ones(5),
     r"w0: shape \(5,\) differs from MLP_\w+'s parameter shape \(20,\); give an array of "
     r"shape \(20,\)$"),
    (gdlab.problems.mlp(width=4, depth=1, points=8), np.ones((4, 5)),
     r"w0: shape \(4, 5\) differs from MLP_\w+'s parameter shape \(20,\)"),
    (gdlab.problems.mlp(width=4, depth=1, points=8), 0.5,
     r"w0: shape \(\) differs from MLP_\w+'s parameter shape \(20,\)"),
    (gdlab.problems.mlp(width=4, depth=1, points=8), np.full(20, np.nan),
     r"w0: .* contains a non-finite value"),
    (gdlab.problems.mlp(width=4, depth=1, points=8), {"w": np.ones(20)}, r"w0: .* not a number"),
    (gdlab.problems.quadratic(dim=5, lam_max=2.0, kappa=4.0), np.ones(4),
     r"w0: shape \(4,\) differs from Quadratic's parameter shape \(5,\)"),
    (gdlab.problems.quadratic(dim=5, lam_max=2.0, kappa=4.0), None,
     r"w0: Quadratic has no init\(\): give w0"),
    (gdlab.problems.scalar_regression(x=1.0, y=2.0), 1e39, r"w0: 1e\+39 overflows float32"),
    # a user's loss: w0's layout is the parameter's; a pytree the loss cannot take is refused
    (gdlab.problems.custom(lambda w: jnp.sum(w["u"] ** 2) + jnp.sum(w["v"])), {"u": np.ones(2)},
     r"w0: \S+'s loss does not take w0 = \{'u': .*\} \(KeyError: 'v'\)"),
    (gdlab.problems.custom(lambda w: w ** 2), np.ones(3),
     r"problem.loss: \S+'s loss returns shape \(3,\); a loss must return one number"),
])
def test_w0_that_does_not_fit_is_refused(nothing_compiled, problem, w0, message):
    with pytest.raises(gdlab.errors.ArgumentError, match="^" + message):
        gdlab.track(problem, [0.1], w0=w0, steps=4, every=2, dtype="float32")


def test_a_users_loss_tracks_from_a_pytree_w0():
    """L(u, v) = ½(3u₀² + u₁²) + v²: w0 a dict; gradient descent scales each coordinate by
    (1 − αλᵢ) per step, λ = (3, 1, 2), so L_t = ½ Σ λᵢ (1 − αλᵢ)^{2t} w0ᵢ², and ∇²L's top
    eigenvalue is 3 everywhere."""
    p = gdlab.problems.custom(lambda w: 0.5 * (3 * w["u"][0] ** 2 + w["u"][1] ** 2) + w["v"] ** 2)
    w0 = {"u": np.array([1.0, -2.0]), "v": np.array(0.5)}
    alphas = np.array([0.1, 0.3])
    with jax.enable_x64(True):
        res = gdlab.track(p, alphas, w0=w0, steps=6, every=3, k=2, iters=3, dtype="float64")
    lam, e0 = np.array([3.0, 1.0, 2.0]), np.array([1.0, -2.0, 0.5])
    t = np.arange(7)
    want = 0.5 * np.sum(lam * e0 ** 2 * (1 - alphas[:, None, None] * lam) ** (2 * t[:, None]),
                        axis=2)
    np.testing.assert_allclose(res.loss, want, rtol=1e-13)
    np.testing.assert_allclose(res.sharpness, np.broadcast_to([3.0, 2.0], (2, 3, 2)), rtol=1e-13)


def test_adam_at_t0_measures_only_the_plain_sharpness(monkeypatch):
    """At t = 0 v̂ is undefined (0/0): the preconditioned Lanczos is in the program once, inside
    the block of steps, not also at t = 0 only to be discarded."""
    calls = []
    measure = tracking.eos.preconditioned_eigenvalues

    def counted(*args, **kwargs):
        calls.append(1)
        return measure(*args, **kwargs)

    monkeypatch.setattr(tracking.eos, "preconditioned_eigenvalues", counted)
    p = gdlab.problems.mlp(width=2, depth=1, points=4)
    res = gdlab.track(p, [0.01], optimizer="adam", steps=2, every=1, iters=4, dtype="float32")
    assert len(calls) == 1
    assert np.isnan(res.preconditioned[0, 0]) and np.isfinite(res.preconditioned[0, 1:]).all()


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
