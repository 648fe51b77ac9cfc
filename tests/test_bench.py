"""The benchmark's references compute what gdlab computes (figures are only comparable then): the
NumPy sweep the engine's statistics, the notebook's code the trainability map of a network."""

import json

import numpy as np
import pytest

import gdlab
from gdlab import _references, bench, cli


def test_numpy_reference_matches_engine():
    alphas = np.linspace(-0.2, 3.0, 3201)
    ref = bench.numpy_sweep(alphas, 1.0, 100.0, 0.0, 150, 1.0)
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), alphas, steps=150, tol=1.0,
                      recurrence=True)
    # Identical programs up to XLA's FMA contraction: allow 0.1 % of runs to differ by rounding.
    for name, mine in (("t_freeze", res.diverged_at), ("steps_to_tol", res.steps_to_tol),
                       ("flips", res.flips)):
        assert np.mean(mine != ref[name]) <= 1e-3, name
    live = res.diverged_at < 0
    np.testing.assert_allclose(res.max_error[live],
                               np.maximum(ref["err_early"], ref["err_late"])[live], rtol=1e-5)
    np.testing.assert_allclose(res.recurrence_dev, ref["rec_dev"], atol=1e-7)


def test_numpy_reference_counts_flips_of_tiny_errors_as_the_engine():
    # w* = 0 and e₀ = 1e-30 in float32: for α > 2 the error grows from where e_t·e₀ underflows to 0
    # (1e-30 · 1e-10 < 1.2e-38), so the reference's sign test takes the signs, not the product, as
    # the engine does (gdlab.engine.inner_sign). It counted 66 and 100 flips where the engine
    # counts 88 and 114.
    alphas = np.array([2.5, 3.0])
    ref = bench.numpy_sweep(alphas, 1.0, 0.0, 1e-30, 150, 1.0)
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 0.0), alphas, w0=1e-30, steps=150,
                      tol=1.0)
    assert (res.flips > 50).all()
    np.testing.assert_array_equal(ref["flips"], res.flips)


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
    assert list(by) == ["gdlab", "gdlab-compact", "gdlab-run", "kernel", "kernel-update",
                        "engine", "update-only", "numpy", "numpy+rec"]
    # the study's row is compared with the NumPy loop that also measures the recurrence
    assert by["gdlab-run"]["ratio_to_numpy"] == pytest.approx(
        by["gdlab-run"]["updates_per_s"] / by["numpy+rec"]["updates_per_s"], abs=0.006)
    assert by["gdlab-run"]["total_s"] > by["gdlab-run"]["median_run_s"]
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
                                       "--max-n 10 must be >= 1000"),
                                      (["--mlp", "--grid", "0"], "--grid 0 must be >= 1"),
                                      (["--mlp", "--ref-chunk", "0"], "--ref-chunk 0 must be >= 1"),
                                      (["--mlp", "--memory-curve"],
                                       "--mlp and --memory-curve are separate benchmarks"),
                                      (["--mlp", "--grid", "100000"],
                                       "--grid: a map of 10000000000 pairs needs about")])
def test_bench_checks_every_number_before_any_work(argv, msg, capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", *argv, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("nonlinearity,parameterization", [("tanh", "mean_field"),
                                                           ("relu", "standard")])
def test_notebook_map_matches_sweep_away_from_the_boundary(nonlinearity, parameterization):
    # small rates: no chaos to amplify rounding, so the scores agree to float64 rounding
    net = gdlab.problems.mlp(width=4, nonlinearity=nonlinearity,
                             parameterization=parameterization)
    lr1, lr2 = np.array([0.1, 1.0]), np.array([0.1, 1.0, 1e4])
    ref = _references.notebook_mlp_map(net, lr1, lr2, 30)
    res = gdlab.sweep(net, lr1, over={"alpha_2": lr2}, steps=30, keep="compact")
    np.testing.assert_array_equal(res.regime == gdlab.Regime.CONVERGED, ref.converged)
    assert ref.converged[:, :2].all() and not ref.converged[:, 2].any()
    np.testing.assert_allclose(res.score[:, :2], ref.score[:, :2], rtol=1e-12)


def test_bench_mlp_prints_table_and_agrees(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert cli.main(["bench", "--mlp", "--grid", "4", "--steps", "20", "--repeats", "1",
                     "--peak-size", "128", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["gdlab", "notebook"]
    assert lines[0].startswith("float64 matmul peak") and lines[1].split()[0] == "variant"
    for r, line in zip(rows, lines[3:5]):   # every row printed with the figures written
        cells = line.split()
        assert cells[:4] == [r["variant"], "16", "20", "float64"]
        assert float(cells[7]) == pytest.approx(r["ratio_to_notebook"], abs=0.006)
        assert cells[8] == "16/16"   # the 4 × 4 map across the boundary: every pair agrees
        assert r["runs_per_s"] > 0 and 0 < r["peak_fraction"] and r["compile_s"] >= 0
    assert rows[0]["agree"] == rows[0]["pairs"] == 16 and rows[1]["ratio_to_notebook"] == 1.0
    assert 0 < rows[0]["converged"] < 16   # the grid spans the boundary
    assert rows[0]["flops_per_run_step"] == 4 * 272 * 16**2 + 5 * 272 * 16 + 2 * 272
