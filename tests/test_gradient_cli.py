"""`gdlab run` on a [gradients] config: table, JSON and the worked-answer report; bad input."""

import json

import pytest

from gdlab import cli


def write(tmp_path, body):
    (tmp_path / "g.toml").write_text("[gradients]\n" + body, encoding="utf-8")
    return str(tmp_path / "g.toml")


def test_gradient_run_writes_report(tmp_path, capsys):
    cfg = write(tmp_path, 'functions = ["sigmoid", "linear_layer_W"]\nsizes = [1, 3]\n'
                          'dtypes = ["float32"]\n')
    assert cli.main(["run", cfg, "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "PASS" in text and "FAIL" not in text
    summary = json.loads((tmp_path / "out" / "gradients.json").read_text())
    assert summary["failed"] == 0 and summary["checks"] == 6
    report = (tmp_path / "out" / "report.md").read_text()
    assert "∂L/∂W = 2(z − y)xᵀ" in report and "[4×3]" in report


@pytest.mark.parametrize("body, message", [
    ('functions = ["sigmoidd"]\n', r"unknown function 'sigmoidd'.*did you mean 'sigmoid'"),
    ("betas = [0.0]\n", r"g.toml: gradients.betas\[0\]: 0.0 must be > 0"),
    ("betas = [200.0]\n", r"g.toml: gradients.betas\[0\]: 200.0 must be in \(0, 100\]"),
    ("sizes = [0]\n", r"g.toml: gradients.sizes\[0\]: 0 must be >= 1"),
    ('dtypes = ["float16"]\n', r"g.toml: gradients.dtypes\[0\]: 'float16' is not one of"),
    ("seeds = 1\n", r"g.toml: gradients.seeds: unknown key \(did you mean 'seed'\?\)"),
    ("betas = [nan]\n", r"g.toml: gradients.betas\[0\]: nan must be finite"),
])
def test_bad_gradient_configs(tmp_path, capsys, body, message):
    import re
    cfg = write(tmp_path, body)
    assert cli.main(["run", cfg, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not (tmp_path / "out").exists()
