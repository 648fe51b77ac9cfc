"""``gdlab run`` of a config with ``[track]`` (gdlab.eos_study): the run directory, its figures
against an independent NumPy reference, and the one-line refusals of bad values."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

from gdlab import cli, config, eos_study, tracking

CONFIG = "configs/eos_digits.toml"
# Two hidden units: 64·2 + 2·10 = 148 parameters, below curvature.DENSE_MAX = 256, so the
# sharpness is the dense Hessian's exact top eigenvalue (no Lanczos error to allow for).
TINY = ["problem.points=64", "problem.hidden=[2]", "run.steps=20", "track.every=10",
        "track.iters=5", "sweep.alpha=[4.0, 8.0]"]


def _gdlab_run(out, sets, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    argv = ["run", CONFIG, "--out", str(out)]
    for s in sets:
        argv += ["--set", s]
    return cli.main(argv)


def _numpy_loss_grad(w, x, y, hidden):
    """L = mean_n ‖tanh(√2·xW₁/√64)W₂/√H − y‖² and its gradient, by hand (backpropagation)."""
    w1, w2 = w[:64 * hidden].reshape(64, hidden), w[64 * hidden:].reshape(hidden, 10)
    h = np.tanh(math.sqrt(2) * x @ w1 / 8)
    r = h @ w2 / math.sqrt(hidden) - y
    d_out = 2 * r / len(x)
    d_w2 = h.T @ d_out / math.sqrt(hidden)
    d_z = (d_out @ w2.T / math.sqrt(hidden)) * (1 - h * h)
    d_w1 = x.T @ d_z * math.sqrt(2) / 8
    return np.mean(np.sum(r * r, axis=1)), np.concatenate([d_w1.ravel(), d_w2.ravel()])


def test_track_config_writes_the_run_directory(tmp_path, repo_root, monkeypatch, capsys):
    out = tmp_path / "eos"
    assert _gdlab_run(out, TINY, repo_root, monkeypatch) == 0
    printed = capsys.readouterr().out
    assert "| α | threshold |" in printed and "λ₁/threshold (2/α)" in printed
    summary = json.loads((out / "summary.json").read_text())
    with np.load(out / "results.npz", allow_pickle=False) as z:
        a = dict(z)
    assert a["loss"].shape == (2, 21) and a["sharpness"].shape == (2, 3, 1)
    np.testing.assert_array_equal(a["sharpness_steps"], [0, 10, 20])
    assert "preconditioned" not in a                       # sgd: the plain sharpness
    # summary.json's figures are tracking.summary of the stored arrays...
    cfg = config.from_table(summary["config"], summary["config_path"])
    rows = summary["edge_of_stability"]["rows"]
    assert rows == tracking.summary(eos_study.from_arrays(cfg, a))
    # ...and agree with NumPy from the definitions: threshold 2/α, ratio over t >= T/2 = 10
    np.testing.assert_allclose(a["threshold"], 2 / np.array([4.0, 8.0]), rtol=1e-7)  # α in f32
    for i, alpha in enumerate((4.0, 8.0)):
        ratio = a["sharpness"][i, 1:, 0] * alpha / 2
        assert rows[i]["ratio_median"] == pytest.approx(np.median(ratio), rel=1e-6)
        assert rows[i]["ratio_max"] == pytest.approx(ratio.max(), rel=1e-6)
    # the loss and sharpness at w₀ against a hand-written float64 network on sklearn's digits
    data = load_digits()
    x = data.data[:64] / 16.0
    x = x - x.mean(axis=0)
    y = np.eye(10)[data.target[:64]]
    from gdlab.networks import digits_mlp
    w0 = np.asarray(digits_mlp(hidden=(2,), points=64).init(), np.float64)
    loss0, _ = _numpy_loss_grad(w0, x, y, 2)
    eps = 1e-5   # central differences of the exact gradient: error O(eps²·L'''') ≈ 1e-10
    hess = np.stack([(_numpy_loss_grad(w0 + eps * e, x, y, 2)[1]
                      - _numpy_loss_grad(w0 - eps * e, x, y, 2)[1]) / (2 * eps)
                     for e in np.eye(w0.size)])
    lam0 = np.linalg.eigvalsh((hess + hess.T) / 2)[-1]
    # float32 run: the loss to ~1e-6 relative; λ₁ of a float32 Hessian of 148 parameters to 1e-4
    np.testing.assert_allclose(a["loss"][:, 0], loss0, rtol=1e-5)
    np.testing.assert_allclose(a["sharpness"][:, 0, 0], lam0, rtol=1e-4)
    for name in ("eos_sgd.png", "eos_sgd.svg", "report.html"):
        assert (out / name).stat().st_size > 0
    assert summary["files"] == ["results.npz", "summary.json", "eos_sgd.png", "eos_sgd.svg"]
    assert summary["config"]["track"] == {"every": 10, "k": 1, "iters": 5}
    assert summary["config"]["problem"]["hidden"] == [2]
    assert "λ₁ / (2/α = 0.5)" in (out / "report.html").read_text()
    png = (out / "eos_sgd.png").read_bytes()
    (out / "eos_sgd.png").unlink()
    assert eos_study.redraw(out, cfg, a) == ["eos_sgd.png", "eos_sgd.svg"]   # for `gdlab plot`
    assert (out / "eos_sgd.png").read_bytes() == png


@pytest.mark.parametrize("sets, message", [
    (["track.every=0"], r"track.every: 0 must be >= 1"),
    (["track.every=7"], r"track.every: 7 must divide run.steps = 20"),
    (["track.every=40"], r"track.every: 40 must be <= 20"),
    (["track.every=ten"], r"track.every: 'ten' must be an integer"),
    (["track.iters=0"], r"track.iters: 0 must be >= 1"),
    (["track.k=6"], r"track.k: 6 exceeds track.iters = 5"),
    (["track.evry=10"], r"track.evry: unknown key \(did you mean 'every'\?\)"),
    (["problem.hidden=[]"], r"problem.hidden: \[\] must list at least one integer >= 1"),
    (["problem.hidden=[8, 0]"], r"problem.hidden\[1\]: 0 must be >= 1"),
    (["problem.hidden=[8.5]"], r"problem.hidden\[0\]: 8.5 must be an integer"),
    (["problem.hidden=8"], r"problem.hidden: 8 must be a list"),
    (["problem.points=5000"], r"problem.points: 5000 must be an integer >= 1 and <= 1797"),
    (["optimizer.name=nesterov"], r"optimizer.name: 'nesterov': \[track\] knows the thresholds"),
    (["sweep.alpha=[-1.0, 2.0]"], r"sweep.alpha: contains a value <= 0"),
    (["problem.w0=0.5"], r"problem.w0: a tracked run starts from the network's own"),
])
def test_bad_track_config_is_one_line(tmp_path, repo_root, monkeypatch, capsys, sets, message):
    out = tmp_path / "eos"
    base = ["run.steps=20", "track.every=10", "track.iters=5", "problem.points=64"]
    assert _gdlab_run(out, [*base, *sets], repo_root, monkeypatch) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gdlab: error: {CONFIG}: "), captured.err
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()
