"""experiments/liu_fractal_1d.py: its loss is the stated f, its classification and box counts mean
what the script says, at a small size (2^12 step sizes, 200 steps: about 3 s)."""

import importlib.util
import json
import math
import os

import jax
import numpy as np
import pytest

import gdlab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DELTA, LAM = 1e-3, 0.1


@pytest.fixture(scope="module")
def liu():
    spec = importlib.util.spec_from_file_location(
        "liu_fractal_1d", os.path.join(ROOT, "experiments", "liu_fractal_1d.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small(liu, tmp_path_factory):
    out = tmp_path_factory.mktemp("liu")
    return liu.main(["--log2-n", "12", "--steps", "200", "--out", str(out)]), out


def analytic_grad(w):
    """f'(w) = 2w(1 + δ cos(2πw/λ)) − w² δ (2π/λ) sin(2πw/λ), in numpy float64."""
    k = 2 * np.pi / LAM
    return 2 * w * (1 + DELTA * np.cos(k * w)) - w**2 * DELTA * k * np.sin(k * w)


W = np.array([-3.7, -1.0, -0.013, 0.02, 0.37, 1.0, 1.234567, 8.9])


@pytest.mark.parametrize("name", ["loss", "loss_expanded"])
def test_loss_gradient_is_the_analytic_derivative(liu, name):
    loss = getattr(liu, name)
    with jax.enable_x64(True):
        got = np.array([float(jax.grad(loss)(w, DELTA, LAM)) for w in W])
        value = np.array([float(loss(w, DELTA, LAM)) for w in W])
    np.testing.assert_allclose(got, analytic_grad(W), rtol=1e-12, atol=0)
    np.testing.assert_allclose(value, W**2 * (1 + DELTA * np.cos(2 * np.pi * W / LAM)),
                               rtol=1e-14, atol=0)


def test_classification_along_alpha(small):
    study, _ = small
    alpha, trained = study.alpha, study.trained.labels
    assert alpha.size == 2**12 and alpha[0] == 0.0 and alpha[-1] == 1.5
    # Curvature ≈ 2 below α_c = 1/(1 + δ): |1 − 2α| < 1 trains; α = 0 never moves (L_t = L₀).
    assert trained[(alpha > 0) & (alpha < 0.9)].all()
    assert not trained[0] and study.result.regime[0] == gdlab.Regime.UNDECIDED
    assert not trained[alpha > 1.45].any()
    assert (study.result.regime[alpha > 1.45] == gdlab.Regime.DIVERGED).all()
    assert study.score_agrees


def test_boundary_points_and_box_counts(small):
    study, _ = small
    t = study.trained
    changes = t.labels[1:] != t.labels[:-1]
    assert changes[0] and not t.points[0]            # the trivial point at α = 0 is left out
    np.testing.assert_array_equal(t.points[1:], changes[1:])
    # N(k) = the number of the 2^k equal α-intervals (2^(12−k) grid points each) holding a point.
    idx = np.flatnonzero(t.points)
    assert t.ks.tolist() == list(range(4, 13))
    for k, n in zip(t.ks, t.counts):
        assert n == np.unique(idx // 2 ** (12 - k)).size <= 2**k
    assert t.fit.n_boundary == idx.size == t.counts[-1] > 0
    for b in (t, study.bounded):
        assert math.isfinite(b.fit.dimension) and 0.0 <= b.fit.dimension <= 1.0
        assert math.isfinite(b.fit.stderr) and b.fit.stderr >= 0
        assert b.fit_ks[1] - b.fit_ks[0] >= 2


def test_results_written(small):
    study, out = small
    data = json.loads((out / "liu_fractal_1d.json").read_text())
    t = data["trained_vs_not"]
    assert t["n_boundary"] == study.trained.fit.n_boundary
    assert t["dimension"] == pytest.approx(study.trained.fit.dimension)
    assert t["counts"] == study.trained.counts.tolist()
    assert data["sweep"] == {"n": 4096, "log2_n": 12, "alpha": [0.0, 1.5], "steps": 200,
                             "dtype": "float64", "engine_path": study.result.engine_path,
                             "judged_by": "loss ratio L_t/L_0 (no optimum)"}
    assert data["runtime"]["runs_per_s"] > 0
    assert (out / "liu_fractal_1d.png").stat().st_size > 10_000


def test_sweep_matches_a_plain_loop(liu):
    """The loss judgment on the script's f equals a numpy loop with the analytic gradient, at
    step sizes away from the chaotic band near α_c (where rounding decides)."""
    alphas = np.array([0.1, 0.45, 0.8, 0.97, 1.1, 1.3])
    problem = gdlab.problems.custom(liu.loss, delta=DELTA, lam=LAM)
    res = gdlab.sweep(problem, alphas, w0=1.0, steps=200, dtype="float64")
    for a, regime in zip(alphas, res.regime):
        w, f0, ratios = 1.0, 1 + DELTA * np.cos(2 * np.pi / LAM), []
        for _ in range(200):
            ratio = w**2 * (1 + DELTA * np.cos(2 * np.pi * w / LAM)) / f0
            if not ratio <= 1e6:
                break
            ratios.append(ratio)
            w -= a * analytic_grad(w)
        m = np.mean(ratios[-20:]) if len(ratios) == 200 else np.inf
        expected = (gdlab.Regime.CONVERGED if m < 1 else gdlab.Regime.DIVERGED if m > 1 else
                    gdlab.Regime.UNDECIDED)
        assert regime == expected, a
