"""Fixes from the review of the audit fixes: each case failed before its fix."""

import json

import numpy as np

from gdlab import _study_plan, cli, config, resources
from gdlab._sweep_plan import padded_chunk, plan

LOSS = "def quad(w, a):\n    return 0.5 * a * (w - 3.0) ** 2\n"


def _config(tmp_path, body):
    (tmp_path / "my_losses.py").write_text(LOSS)
    path = tmp_path / "cfg.toml"
    path.write_text(body)
    return path


def test_a_user_loss_without_optimum_runs_a_1d_study(tmp_path, capsys):
    """No optimum: runs judged by the loss, and no error heatmap to draw (w* unknown). It was
    a TypeError on w_star = None while drawing it (an internal error, exit 1)."""
    path = _config(tmp_path, '[problem]\nname = "custom"\nloss = "my_losses:quad"\na = 2.0\n'
                             'w0 = 0.0\n[sweep]\nalpha = { start = 0.0, stop = 1.5, num = 31 }\n'
                             '[run]\nsteps = 50\n')
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    counts = summary["regime_counts"]
    # L_t/L_0 = (1 − 2α)^{2t}: falls for 0 < α < 1, not at α = 0 or 1, rises above α = 1
    assert counts["converged"] == 19 and counts["diverged"] == 10
    assert not (tmp_path / "o" / "error_heatmap.png").exists()


def test_a_config_hyperparameter_an_axis_replaces_is_not_refused(tmp_path, capsys):
    """`optimizer.beta = 1.0` beside a β axis: the axis replaces it (as gdlab.sweep's over= does),
    so only the axis' values are checked."""
    assert cli.main(["run", "momentum_alpha_beta", "--set", "optimizer.beta=1.0",
                     "--set", "sweep.alpha.num=5", "--set", "sweep.beta.num=3",
                     "--set", "run.steps=20", "--out", str(tmp_path / "o")]) == 0
    assert cli.main(["run", "momentum_alpha_beta", "--set", "sweep.beta.stop=1.0",
                     "--out", str(tmp_path / "p")]) == 2
    assert "sweep.beta.stop" in capsys.readouterr().err


def test_the_study_sizes_memory_as_the_sweep_does(monkeypatch):
    """The study's keep="all" estimate counts the same padded chunk as the sweep's own check
    (before, a limit between the two made the sweep refuse what compact would have fitted)."""
    cfg = config.load("configs/linreg_alpha_sweep.toml")
    runs = padded_chunk(cfg.problem_value, cfg.runs, dtype=cfg.dtype, steps=cfg.steps,
                        record_every=None, chunk_size=cfg.chunk_size, devices=cfg.devices)
    p = plan(cfg.problem_value, cfg.axes["alpha"], w0=cfg.w0, steps=cfg.steps, tol=cfg.tol,
             dtype=cfg.dtype, devices=cfg.devices)
    assert runs == -(-min(cfg.runs, p.engine.chunk) // p.engine.block) * p.engine.block * (
        p.engine.devices if p.engine.block else 1) or runs >= cfg.runs
    seen = []
    real = resources.sweep_bytes
    monkeypatch.setattr(resources, "sweep_bytes",
                        lambda *a, **k: seen.append(k.get("chunk_runs")) or real(*a, **k))
    _study_plan.plan(cfg, lambda line: None)
    assert seen and all(r == runs for r in seen)
    assert np.isfinite(runs)
