"""A run's result does not depend on how it was asked for (issue 13), and Adam's rounding flag.

The same runs asked for with and without recorded iterates (the CPU tiles, or the per-step loop
that records), with a hyperparameter fixed or as an axis, one run per chunk or all in one: every
statistic bit for bit, and for the optimizers that round each product (momentum, Nesterov, Adam)
the trajectory of a NumPy float32 reference written from the update rule, one IEEE operation at a
time. x = 1, so ∇L = w − y is one exact operation in both (the problem's gradient is not the
optimizer's). Gradient descent keeps its fused multiply-add (gdlab.optimizers): its ways are
compared with each other.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from engines import FIELDS, P

import gdlab
from gdlab import REGIME_NAMES

f32 = np.float32
Y = f32(100.0)           # P = scalar_regression(1, 100): w* = 100, w₀ = 0
# How a run is asked for (None: its first hyperparameter as an axis of one value). Recording takes
# the per-step loop, the others the CPU tiles; a chunk is padded to whole vectors (engine.LANES).
WAYS = {"as_is": {}, "recorded": {"record_every": 1}, "recorded_every_7": {"record_every": 7},
        "one_run_per_chunk": {"chunk_size": 1}, "as_an_axis": None}


def adam_f32(alpha, b1, steps, b2=0.999, eps=1e-8, dtype=f32):
    """optax.adam's update on ½(w − 100)² from w₀ = 0, in ``dtype`` one operation at a time:
    m ← (1 − b1)g + b1·m, v ← (1 − b2)g² + b2·v, w ← w + (−α)·(m̂ / (√v̂ + eps)),
    m̂ = m / (1 − b1ᵗ), v̂ = v / (1 − b2ᵗ); bᵗ the exact power of the float32 b, rounded."""
    a, b1, b2, eps, y = (dtype(f32(v)) for v in (alpha, b1, b2, eps, Y))
    w = m = v = dtype(0)
    out = [w]
    for t in range(1, steps + 1):
        g = w - y
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * (g * g) + b2 * v
        m_hat, v_hat = m / (1 - dtype(float(b1) ** t)), v / (1 - dtype(float(b2) ** t))
        w = w + (-a) * (m_hat / (np.sqrt(v_hat) + eps))
        out.append(w)
    return np.array(out)


def heavy_ball_f32(alpha, beta, steps, nesterov=False):
    """optax.sgd(α, momentum=β[, nesterov]) in float32, one operation at a time:
    v ← g + β·v, u = v (heavy ball) or g + β·v (Nesterov), w ← w + (−α)·u."""
    a, b = f32(alpha), f32(beta)
    w = v = f32(0)
    out = [w]
    for _ in range(steps):
        g = w - Y
        v = g + b * v
        w = w + (-a) * (g + b * v if nesterov else v)
        out.append(w)
    return np.array(out)


def ask(way, alphas, *, optimizer, hparams, steps):
    """The sweep asked for in ``way`` (WAYS): per-run fields, and the recorded iterates with their
    steps (None if not recorded)."""
    kw = dict(w0=0.0, steps=steps, tol=1.0, optimizer=optimizer, progress=False)
    if WAYS[way] is None:
        (name, value), *rest = hparams.items()
        res = gdlab.sweep(P, alphas, hparams=dict(rest), over={name: [value]}, **kw)
        return {f: getattr(res, f)[:, 0] for f in FIELDS}, None
    res = gdlab.sweep(P, alphas, hparams=hparams, **WAYS[way], **kw)
    return {f: getattr(res, f) for f in FIELDS}, (res.trajectory, res.snapshot_steps)


def assert_every_way_alike(alphas, ways, *, optimizer, hparams, steps, reference=None):
    """Every way in ``ways`` gives the first one's fields bit for bit; with ``reference(α)`` (a
    trajectory w₀ … w_T), its iterates where recorded, its w_T and its max |w_t − w*|."""
    first = None
    for way in ways:
        got, recorded = ask(way, alphas, optimizer=optimizer, hparams=hparams, steps=steps)
        first = first or got
        for f in FIELDS:
            np.testing.assert_array_equal(got[f], first[f], err_msg=f"{way}: {f}")
        if reference is not None and recorded is not None and recorded[0] is not None:
            for i, a in enumerate(alphas):
                np.testing.assert_array_equal(recorded[0][i], reference(a)[recorded[1]],
                                              err_msg=f"{way}: α = {a}")
    if reference is not None:
        refs = [reference(a) for a in alphas]
        np.testing.assert_array_equal(first["w_final"], [r[-1] for r in refs])
        np.testing.assert_array_equal(first["max_error"],
                                      [np.abs(r - Y).astype(np.float64).max() for r in refs])
    return first


def test_the_issues_adam_runs_whichever_way_asked():
    # α = 100: converging_oscillating (max error 188.8) without recording and
    # diverging_oscillating (263.1) with record_every=1, before; α = 95.48 and 90.07: b1 as an
    # axis and b1 fixed gave different labels (in a larger grid) and different bits. Now every
    # way gives the float32 reference's run; at α = 100 its error peaks late (growth > 1) and
    # then lands on w* for good: converging (gdlab.regimes.settled), not diverging.
    alphas = [100.0, 95.48, 90.07, 10.0, 1.0]
    first = assert_every_way_alike(alphas, ["as_is", "recorded", "as_an_axis", "one_run_per_chunk"],
                                   optimizer="adam", hparams={"b1": 0.5}, steps=1000,
                                   reference=lambda a: adam_f32(a, 0.5, 1000))
    ref = np.abs(adam_f32(100.0, 0.5, 1000) - Y)
    assert ref[501:].max() > ref[:501].max()      # late max over early max (T // 2 = 500)
    assert (ref[-10:] == 0).all()                  # … and at w* over the last T/100 steps
    assert REGIME_NAMES[first["regime"][0]] == "converging_oscillating"


@pytest.mark.parametrize("optimizer,beta,alphas,ways", [
    # before: momentum, β as an axis vs fixed, differed at these α; Nesterov, the CPU tiles vs the
    # recording loop (T = 16)
    ("momentum", 0.9, [0.224, 0.398, 0.65, 1.5, 3.0],
     ["as_is", "recorded_every_7", "as_an_axis", "one_run_per_chunk"]),
    ("nesterov", 0.7, [0.185, 0.456, 1.153, 1.5], ["as_is", "recorded"]),
])
def test_linear_optimizers_whichever_way_asked(optimizer, beta, alphas, ways):
    assert_every_way_alike(alphas, ways, optimizer=optimizer, hparams={"beta": beta}, steps=16,
                           reference=lambda a: heavy_ball_f32(a, beta, 16,
                                                              nesterov=optimizer == "nesterov"))


def test_gradient_descent_whichever_way_asked():
    # (T = 200, recorded at every step: test_sweep.py's homework program serves here)
    assert_every_way_alike([0.3, 1.0, 1.7, 2.3], ["as_is", "recorded"], optimizer="sgd",
                           hparams={}, steps=200)


def test_rounding_check_flags_the_runs_float64_decides_otherwise():
    # α = 95.48 (b1 = 0.5): in float32 the iterate lands exactly on w* = 100 at t = 120 and stays;
    # in float64, from the same inputs, it keeps oscillating and its late error passes its early
    # one: the trend differs (shrinks against grows), so rounding decides. α = 90.07 lands in both
    # precisions (float32 at t = 260, float64 at 686, each after a late swing), so both converge.
    # α = 10, 1 converge in both, reaching tol at the same step. The trend written from the rule:
    # grows when the late max passes the early one, unless the error sits at the noise floor
    # (64 ulps of |w*|) over the last T/100 steps.
    alphas = [95.48, 90.07, 10.0, 1.0]
    res = gdlab.sweep(P, alphas, w0=0.0, steps=1000, tol=1.0, optimizer="adam",
                      hparams={"b1": 0.5}, progress=False, rounding_check=True)
    for i, a in enumerate(alphas):
        trends, first = [], []
        for dtype in (np.float32, np.float64):
            e = np.abs(adam_f32(a, 0.5, 1000, dtype=dtype) - dtype(Y)).astype(np.float64)
            floor = 64 * np.finfo(dtype).eps * (100 + 100)
            trends.append(e[501:].max() > e[:501].max() and not (e[-11:-1] <= floor).all())
            first.append(int(np.argmax(e < 1.0)))
        assert res.rounding_sensitive[i] == (trends[0] != trends[1] or first[0] != first[1]), a
    np.testing.assert_array_equal(res.rounding_sensitive, [True, False, False, False])


def test_rounding_check_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match=r"^rounding_check: compares each run with its float64 "
                                         r"simulation: it needs dtype='float32'$"):
        gdlab.sweep(P, [0.5], steps=3, dtype="float64", rounding_check=True)
    with pytest.raises(ValueError, match=r"^rounding_check: 'yes' must be True or False$"):
        gdlab.sweep(P, [0.5], steps=3, rounding_check="yes")
    with pytest.raises(TypeError, match="rounding_check"):
        gdlab.simulate_shard(P, [0.5], shard=(0, 2), steps=3, rounding_check=True)


def _w_bits(res):
    return {k: np.asarray(getattr(res, k)) for k in ("w_final", "regime", "steps_to_tol",
                                                    "flips", "diverged_at", "final_error")}


def _matmul_loss(w, h):
    return 0.5 * w @ (h @ w)


def _mean_squares(w, x, y):
    return 0.5 * jnp.mean((x * w - y) ** 2)   # one parameter, a reduction over data


_H = np.diag([4.0, 2.0, 1.0, 0.5, 0.25])
_X, _Y = np.linspace(0.5, 1.5, 37), np.linspace(1.0, 3.0, 37)


@pytest.mark.parametrize("problem, w0", [
    (gdlab.problems.quadratic(dim=5, kappa=10.0), None),
    (gdlab.problems.linear_regression(m=40, d=6, seed=1), None),
    (gdlab.problems.custom(_matmul_loss, optimum=lambda h: np.zeros(5), h=_H), np.ones(5)),
    (gdlab.problems.custom(_mean_squares, optimum=lambda x, y: jnp.sum(x * y) / jnp.sum(x * x),
                           x=_X, y=_Y), 0.0),
], ids=["quadratic", "linear_regression", "user_matmul", "user_scalar_mean"])
@pytest.mark.parametrize("optimizer, hparams", [("sgd", None), ("adam", {"b1": 0.5})])
def test_matrix_products_and_reductions_whichever_way_asked(problem, w0, optimizer, hparams):
    """Problems whose gradient holds matrix products or sums over a parameter or data axis (the
    built-in n-D quadratics, a user's w·Hw, a user's mean over data with one parameter): XLA's CPU
    kernels for those pick their code by the batch width, so these run in fixed blocks of runs.
    Reference: the same α asked for in chunks of 7 and 64, on one device, one α alone and in a
    larger sweep — each bit for bit the default sweep (before the fixed blocks, quadratic(dim=5)
    moved 77 of 301 runs' w_T with chunk_size=64, Adam 239, and one regime)."""
    alphas = np.linspace(0.0, 2.5, 151)
    kw = dict(w0=w0, steps=120, tol=1e-3, optimizer=optimizer, hparams=hparams, progress=False)
    base = _w_bits(gdlab.sweep(problem, alphas, **kw))
    for way in ({"chunk_size": 7}, {"chunk_size": 64}, {"devices": 1}):
        other = _w_bits(gdlab.sweep(problem, alphas, **kw, **way))
        for k in base:
            np.testing.assert_array_equal(other[k], base[k], err_msg=f"{way}: {k}")
    for i in (3, 100):
        alone = _w_bits(gdlab.sweep(problem, alphas[i:i + 1], **kw))
        for k in base:
            np.testing.assert_array_equal(alone[k][0], base[k][i], err_msg=f"α alone: {k}")
