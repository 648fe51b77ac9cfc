"""The benchmark's NumPy reference computes the engine's statistics (figures are only comparable
then)."""

import json

import numpy as np
import pytest

import gdlab
from gdlab import bench, cli


def test_numpy_reference_matches_engine():
    alphas = np.linspace(-0.2, 3.0, 3201)
    ref = bench.numpy_sweep(alphas, 1.0, 100.0, 0.0, 150, 1.0)
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), alphas, steps=150, tol=1.0)
    # Identical programs up to XLA's FMA contraction: allow 0.1 % of runs to differ by rounding.
    for name, mine in (("t_freeze", res.diverged_at), ("steps_to_tol", res.steps_to_tol),
                       ("flips", res.flips)):
        assert np.mean(mine != ref[name]) <= 1e-3, name
    live = res.diverged_at < 0
    np.testing.assert_allclose(res.max_error[live],
                               np.maximum(ref["err_early"], ref["err_late"])[live], rtol=1e-5)
    np.testing.assert_allclose(res.recurrence_dev, ref["rec_dev"], atol=1e-7)


def test_bench_command_prints_table_and_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert cli.main(["bench", "--n", "3000", "--steps", "40", "--numpy-steps", "40",
                           "--repeats", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())
    by = {r["variant"]: r for r in rows}
    printed = {line.split()[0]: line.split() for line in text.splitlines()[2:] if line.strip()}
    for name, r in by.items():   # every row printed with the figures written to the JSON
        assert printed[name][1:3] == [str(r["N"]), str(r["T"])], name
        assert float(printed[name][-3]) == pytest.approx(r["ratio_to_numpy"], abs=0.006), name
    assert list(by) == ["gdlab", "kernel", "kernel-update", "engine", "update-only", "numpy"]
    assert by["numpy"]["ratio_to_numpy"] == 1.0 and by["update-only"]["ratio_to_update_only"] == 1.0
    assert all(r["updates_per_s"] > 0 and r["devices"] >= 1 for r in rows)
    assert by["engine"]["compile_s"] == by["gdlab"]["compile_s"] > 0  # one program, compiled once


def test_bench_rejects_bad_numbers(capsys):
    assert cli.main(["bench", "--n", "0"]) == 2
    assert "--n 0 must be >= 1" in capsys.readouterr().err


def test_bench_rejects_bad_devices(capsys):
    assert cli.main(["bench", "--devices", "many"]) == 2
    assert "--devices: 'many' must be \"all\" or an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv,msg", [(["--numpy-n", "0"], "--numpy-n 0 must be >= 1"),
                                      (["--memory-curve", "--steps", "0"],
                                       "--steps 0 must be >= 1"),
                                      (["--memory-curve", "--max-n", "10"],
                                       "--max-n 10 must be >= 1000")])
def test_bench_checks_every_number_before_any_work(argv, msg, capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", *argv, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
    assert not out.exists()
