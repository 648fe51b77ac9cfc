"""The command line end to end, in temporary directories."""

import collections
import json
import os
import re
import shutil
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

import gdlab
from gdlab import _study_edges, cli, study

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def run(*argv):
    return cli.main([str(a) for a in argv])


def test_main_job_writes_a_complete_run_directory(tmp_path, capsys):
    out = tmp_path / "q4"
    assert run("run", os.path.join(CONFIGS, "q4_alpha_sweep.toml"), "--out", out) == 0
    text = capsys.readouterr().out
    assert re.search(r"agreement with theory \(.*\): 1\.000000 on 2985 of 3001 runs; 16 left out",
                     text)
    assert ("closed form, oscillates (the dominant root not a positive real): agreement 1.000000"
            in text)
    # Q4.1, α = 0.5: w_7 = 100(1 − 0.5⁷) = 99.21875, |w_7 − w*| = 0.78125
    assert re.search(r"(?m)^\s*7\s+99\.2188\s+0\.78125\s*$", text), text
    with np.load(out / "results.npz", allow_pickle=False) as z:
        for key in ("alpha", "regime", "regime_names", "predicted_regime", "steps_to_tol",
                    "predicted_steps_to_tol", "contraction", "diverged_at", "rounding_sensitive"):
            assert key in z.files, key
        assert z["alpha"].shape == (3001,) and z["regime"].dtype == np.int8
        assert list(z["regime_names"]) == ["converging_monotone", "converging_oscillating",
                                           "bounded_oscillation", "diverging_oscillating",
                                           "diverging_monotone", "stalled", "periodic", "chaotic",
                                           "converged", "diverged", "undecided"]
        assert np.all(np.isfinite(z["final_error"]))
        i = {a: int(np.argmin(np.abs(z["alpha"] - a))) for a in (0.5, 1.5, 2.0, 2.5)}
        assert z["steps_to_tol"][i[0.5]] == 7 and z["steps_to_tol"][i[1.5]] == 7
        assert z["regime_names"][z["regime"][i[2.0]]] == "bounded_oscillation"
        assert z["regime_names"][z["regime"][i[2.5]]] == "diverging_oscillating"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agreement"]["fraction"] == 1.0
    assert summary["config"]["sweep"]["alpha"] == {"start": 0.0, "stop": 3.0, "num": 3001}
    assert set(summary["versions"]) >= {"gdlab", "jax", "jaxlib", "numpy", "optax"}
    assert summary["dtype"] == "float32" and summary["device"]["backend"] == "cpu"
    # [run] devices = "all" (the default): the sweep ran on every device JAX sees
    assert summary["device"]["used"] == summary["device"]["count"] == len(jax.devices())
    assert summary["regime_counts"]["bounded_oscillation"] == 1
    assert {"compile_s", "run_s"} <= set(summary["timings"])
    for f in ("regime_strip", "error_heatmap", "trajectories"):
        assert (out / f"{f}.png").stat().st_size > 10_000 and (out / f"{f}.svg").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial dirs left


def test_set_overrides_and_phase_map(tmp_path, capsys):
    out = tmp_path / "phase"
    assert run("run", os.path.join(CONFIGS, "q4_phase_alpha_x.toml"), "--out", out,
               "--set", "sweep.alpha={start=0.0, stop=3.0, num=41}",
               "--set", "sweep.x={start=0.5, stop=2.0, num=21}", "--set", "run.dtype=float64") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grid_shape"] == [41, 21] and summary["dtype"] == "float64"
    assert summary["agreement"]["fraction"] == 1.0
    with np.load(out / "results.npz", allow_pickle=False) as z:
        assert z["x"].shape == (21,) and z["regime"].shape == (41, 21)
        assert list(z["axis_names"]) == ["alpha", "x"]
    assert (out / "phase_map.png").exists()


def test_existing_directory_needs_overwrite(tmp_path, capsys, trajectories_run):
    out = tmp_path / "t"
    cfg = os.path.join(CONFIGS, "q4_trajectories.toml")
    shutil.copytree(trajectories_run, out)                      # what `gdlab run cfg` wrote
    capsys.readouterr()
    (out / "summary.json").write_text("old")
    assert run("run", cfg, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"gdlab: error: {out}: run directory already exists; pass --overwrite to "
                   "replace it or --out DIR to write elsewhere")
    assert (out / "summary.json").read_text() == "old"
    assert run("run", cfg, "--out", out, "--overwrite") == 0   # gdlab's own directory: replaced
    assert (out / "summary.json").read_text() != "old"


def test_a_study_derives_each_fact_once(tmp_path, monkeypatch):
    """A 1-D study finds the grid's regime changes (for the bisection and the boundaries) and the
    plots it does not draw (for summary.json and the plots) once each; `gdlab plot` reads
    summary.json once."""
    calls = collections.Counter()

    def count(module, name):
        fn = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a: calls.update([name]) or fn(*a))

    count(_study_edges, "grid_changes")
    count(study._study_plots, "not_drawn")
    out = tmp_path / "t"
    assert run("run", os.path.join(CONFIGS, "q4_trajectories.toml"), "--out", out, "--quiet") == 0
    assert calls == {"grid_changes": 1, "not_drawn": 1}
    summary = json.loads((out / "summary.json").read_text())
    assert "3 α values" in summary["plots_not_drawn"]["error_heatmap"]   # 3 α: no α × t map
    assert not (out / "error_heatmap.png").exists() and summary["boundaries"]["bisected"]
    reads, loads = [], json.loads
    monkeypatch.setattr(gdlab.dataset, "json", types.SimpleNamespace(
        loads=lambda text, **kw: reads.append(text) or loads(text, **kw)))
    assert run("plot", out) == 0
    assert len(reads) == 1


def _garbage(path):
    path.write_text("garbage\n")


def _drop_key(path, key):
    summary = json.loads(path.read_text())
    del summary[key]
    path.write_text(json.dumps(summary))


# A run directory damaged after gdlab wrote it: what is wrong, and the file it is in.
_DAMAGED = {
    "results_garbage": (lambda d: _garbage(d / "results.npz"), "results.npz: unreadable"),
    "summary_not_json": (lambda d: (d / "summary.json").write_text("{\n"),
                         "summary.json: unreadable (JSONDecodeError"),
    "summary_a_list": (lambda d: (d / "summary.json").write_text("[]"),
                       "summary.json: not a gdlab summary"),
    "results_missing": (lambda d: (d / "results.npz").unlink(), "without results.npz;"),
    "summary_missing": (lambda d: (d / "summary.json").unlink(), "without summary.json;"),
    "array_missing": (lambda d: np.savez(d / "results.npz", alpha=np.arange(3.0)),
                      "has no 'axis_names'"),
    "summary_key_missing": (lambda d: _drop_key(d / "summary.json", "steps"), "has no 'steps'"),
}


@pytest.mark.parametrize("case", list(_DAMAGED))
def test_plot_of_a_damaged_run_directory_is_one_line(case, tmp_path, capsys, trajectories_run):
    """`gdlab plot` on a run directory whose files were damaged after gdlab wrote them says in
    one line which file and what (exit 2), as `gdlab export` and `gdlab.load` do; no traceback."""
    out = tmp_path / "t"
    shutil.copytree(trajectories_run, out)
    damage, expected = _DAMAGED[case]
    damage(out)
    capsys.readouterr()
    assert run("plot", out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gdlab: error: {out}") and err.count("\n") == 1, err
    assert expected in err, err


def test_interrupted_run_leaves_no_directory(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(study.plots, "trajectories", boom)
    out = tmp_path / "t"
    assert run("run", os.path.join(CONFIGS, "q4_trajectories.toml"), "--out", out) == 130
    assert list(tmp_path.iterdir()) == []


def test_list_shows_configs_problems_optimizers(capsys):
    assert run("list") == 0
    text = capsys.readouterr().out
    for word in ("q4_alpha_sweep", "q4_trajectories", "q4_phase_alpha_x",
                 "scalar_regression", "sgd"):
        assert word in text


def test_python_dash_m_and_console_script(tmp_path):
    listing, nope = (subprocess.Popen([sys.executable, "-m", "gdlab", *argv], cwd=cwd, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for argv, cwd in ((["list"], None), (["run", "nope.toml"], tmp_path)))
    out, _ = listing.communicate(timeout=120)
    assert listing.returncode == 0 and "scalar_regression" in out
    _, err = nope.communicate(timeout=120)
    assert nope.returncode == 2
    assert err.strip().splitlines() == [
        "gdlab: error: nope.toml: no such config file; `gdlab list` shows the bundled configs"]
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


SMALL = {
    "linreg_alpha_sweep.toml": ["sweep.alpha={start=0.0, stop=2.5, num=101}", "run.steps=300"],
    "momentum_alpha_beta.toml": ["sweep.alpha={start=0.0, stop=4.0, num=41}",
                                 "sweep.beta={start=0.0, stop=0.9, num=10}", "run.steps=400"],
    "nesterov_alpha_beta.toml": ["sweep.alpha={start=0.0, stop=2.5, num=41}",
                                 "sweep.beta={start=0.0, stop=0.9, num=10}", "run.steps=400"],
    "adam_alpha_beta.toml": ["sweep.alpha={start=0.01, stop=100.0, num=21, scale='log'}",
                             "sweep.b1={start=0.0, stop=0.9, num=5}", "run.steps=200"],
    "quartic_bifurcation.toml": ["sweep.alpha={start=0.1, stop=2.2, num=120}", "run.steps=1200",
                                 "report.orbit_window=200"],
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_bundled_study_runs_small(tmp_path, capsys, name):
    argv = ["run", os.path.join(CONFIGS, name), "--out", tmp_path / "o"]
    for s in SMALL[name]:
        argv += ["--set", s]
    assert run(*argv) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    if name.startswith(("linreg", "momentum", "nesterov")):
        assert summary["agreement"]["fraction"] == 1.0
        assert summary["region"]["fraction"] >= 0.999
        assert (tmp_path / "o" / ("regime_strip.png" if "linreg" in name
                                  else "phase_map.png")).exists()
    if name.startswith("adam"):
        assert "agreement" not in summary and (tmp_path / "o" / "phase_map.png").exists()
    if name.startswith("quartic"):
        assert summary["period_doubling"]["closed_form_alpha"] == 1.0
        assert summary["regime_counts"]["chaotic"] > 0 and summary["regime_counts"]["periodic"] > 0
        assert summary["lyapunov_check"]["max_abs_dev"] < 1e-4
        with np.load(tmp_path / "o" / "results.npz", allow_pickle=False) as z:
            assert np.all(np.isfinite(z["late_iterates"])) and "lyapunov" in z.files


def test_two_non_alpha_axes_with_fixed_alpha(tmp_path, capsys):
    cfg = tmp_path / "bk.toml"
    cfg.write_text('[problem]\nname = "quadratic"\ndim = 4\n[optimizer]\nname = "momentum"\n'
                   "[sweep]\nalpha = [1.2]\nbeta = { start = 0.0, stop = 0.9, num = 7 }\n"
                   'kappa = { start = 1.0, stop = 100.0, num = 5, scale = "log" }\n'
                   "[run]\nsteps = 150\ntol = 0.01\n", encoding="utf-8")
    assert run("run", cfg, "--out", tmp_path / "o") == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["grid_shape"] == [1, 7, 5] and summary["agreement"]["fraction"] == 1.0
    assert (tmp_path / "o" / "phase_map.png").exists()


def test_persistent_compile_cache_changes_no_result(tmp_path):
    # gdlab run keeps compiled programs in GDLAB_CACHE_DIR; a second process loads them and must
    # produce the same results. GDLAB_CACHE_DIR= (empty) switches the cache off: a third process,
    # run beside the first.
    cache, off = tmp_path / "cache", tmp_path / "off"
    cfg = os.path.join(CONFIGS, "q4_alpha_sweep.toml")
    argv = [sys.executable, "-m", "gdlab", "run", cfg, "--set", "sweep.alpha.num=301",
            "--set", "report.trajectories=[]", "--no-progress", "--overwrite"]

    def start(i, **env):
        return subprocess.Popen(argv + ["--out", str(tmp_path / f"run{i}")], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ, **env))

    def finish(p):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err

    first, uncached = start(0, GDLAB_CACHE_DIR=str(cache)), start(2, GDLAB_CACHE_DIR="",
                                                                  XDG_CACHE_HOME=str(off))
    finish(first)
    assert any(cache.iterdir())                           # programs written on the first run
    finish(start(1, GDLAB_CACHE_DIR=str(cache)))
    finish(uncached)
    results = []
    for i in range(2):
        with np.load(tmp_path / f"run{i}" / "results.npz", allow_pickle=False) as z:
            results.append({k: z[k] for k in z.files})
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=k)
    assert not (off / "gdlab").exists()           # (matplotlib may cache its fonts there)


@pytest.mark.parametrize("argv", [["run", "--bogus", "x"], ["run"], ["bench", "--n", "abc"],
                                  ["bench", "--fast-path", "bogus"]])
def test_bad_options_are_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "--help" in err, err


@pytest.mark.parametrize("argv, prog", [(["run", "q4_alpha_sweep", "--bogus"], "gdlab run"),
                                        (["plot", "a", "b"], "gdlab plot"),
                                        (["--bogus", "run", "q4_alpha_sweep"], "gdlab")])
def test_an_unknown_argument_points_at_its_own_commands_help(argv, prog, capsys):
    """An argument `gdlab run` does not know is `gdlab run`'s error: the line points at
    `gdlab run --help`, where the options are; one before the command is gdlab's."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    extra = " ".join(a for a in argv if a in ("--bogus", "b"))
    assert capsys.readouterr().err == (f"{prog}: error: unrecognized arguments: {extra} "
                                       f"(see {prog} --help)\n")


def test_short_grids_are_listed_and_nothing_compared_has_no_fraction(tmp_path, capsys):
    """Q4.2 on the homework's three α says what was simulated at which α (three points make no
    interval); a one-run sweep whose only run the band holds prints no agreement fraction; small
    runs print their rate with an SI prefix, not 0.000 G."""
    assert run("run", os.path.join(CONFIGS, "q4_trajectories.toml"), "--out", tmp_path / "t",
               "--no-progress") == 0
    text = capsys.readouterr().out
    assert "convergence: simulated: at α = 0.5, 1.5; theory" in text
    assert "oscillation: simulated: at α = 1.5, 2.5; theory" in text
    assert "divergence: simulated: at α = 2.5; theory" in text
    assert "≤ α ≤" not in text.split("Q4.2")[1].split("agreement")[0]
    assert re.search(r"run [\d.]+ s \([\d.]+[kMGT]? updates/s", text), text
    assert run("run", os.path.join(CONFIGS, "q4_alpha_sweep.toml"), "--set",
               "sweep.alpha.num=1", "--out", tmp_path / "one", "--no-progress") == 0
    text = capsys.readouterr().out
    assert ": 1 run × 200 steps," in text
    assert re.search(r"closed form, converges \(.*\): no run to compare: all 1 left out \(", text)
    assert "on 0 runs" not in text and "on 1 runs" not in text


def test_stalled_edge_is_listed_apart_with_its_closed_form(tmp_path, capsys):
    """α = 0 stalls and every α > 0 converges: the stalled → converging edge is no regime edge
    but the smallest α whose progress shows within T steps. From regimes.py a run is stalled while
    its growth g = max_{t>h}|e_t| / max_{t≤h}|e_t| = (1 − α)^{h+1} (λ = 1, h = T//2) stays above
    e^{−b}, b = (T − h)·4ε(1 + |w*|/|e₀|): the edge is α = 1 − e^{−b/(h+1)}."""
    out = tmp_path / "s"
    assert run("run", os.path.join(CONFIGS, "q4_trajectories.toml"), "--set",
               "sweep.alpha=[0.0, 0.5]", "--out", out, "--no-progress") == 0
    text = capsys.readouterr().out
    b = json.loads((out / "summary.json").read_text())["boundaries"]
    assert all("stalled" not in (e["below"], e["above"]) for e in b["bisected"])
    (edge,) = b["progress"]
    assert (edge["below"], edge["above"]) == ("stalled", "converging_monotone")
    T, h = 30, 15
    for dtype, (lo, hi) in edge["closed_form_abs_alpha"].items():
        band = (T - h) * 4 * float(np.finfo(dtype).eps) * (1 + 100 / 100)
        np.testing.assert_allclose([lo, hi], 1 - np.exp(-band / (h + 1)), rtol=1e-12)
        # and the simulation turns there: stalled just below, converging just above
        got = gdlab.sweep(gdlab.problems.scalar_regression(x=1.0, y=100.0), [0.9 * lo, 1.1 * lo],
                          w0=0.0, steps=T, tol=1.0, dtype=dtype, progress=False).regime
        assert [gdlab.REGIME_NAMES[r] for r in got] == ["stalled", "converging_monotone"]
    assert edge["bracket_holds_closed_form"] and edge["lo"] <= lo
    assert "not a regime edge: stalled → converging_monotone" in text
    assert "regime boundaries" not in text or "stalled →" not in text.split(
        "regime boundaries")[1].split("\n")[0]


def test_q41_tables_show_the_first_steps_at_any_horizon(tmp_path, capsys):
    """With T = 200001 the trajectories are recorded every 3rd step; the Q4.1 tables (log and
    report.md) still show t = 0, 1, …, 10: w_t = 100·(1 − (1 − α)^t) from w₀ = 0."""
    out = tmp_path / "long"
    assert run("run", os.path.join(CONFIGS, "q4_trajectories.toml"), "--set",
               "run.steps=200001", "--out", out, "--no-progress") == 0
    text = capsys.readouterr().out
    md = (out / "report.md").read_text(encoding="utf-8")
    for alpha in (0.5, 1.5, 2.5):
        for t in range(11):
            w = 100 * (1 - (1 - alpha) ** t)
            assert re.search(rf"(?m)^\s*{t}\s+{re.escape(f'{w:.6g}')}\s", text), (alpha, t)
    assert "| 3 | 437.5 |" in md and "| 3 | 112.5 |" in md and "| 10 | " in md
    assert "recorded every" not in text
    with np.load(out / "results.npz", allow_pickle=False) as z:
        steps = z["trajectory_steps"]
    assert list(steps[:12]) == [*range(11), 12] and steps[-1] == 200001


def test_summary_says_how_many_devices_the_sweep_used(tmp_path):
    """``device.used`` is the devices ``[run] devices`` asked for, beside ``count``, those JAX
    sees (one per core here): a run on one device says 1."""
    out = tmp_path / "one"
    assert run("run", os.path.join(CONFIGS, "q4_trajectories.toml"), "--out", out,
               "--set", "run.devices=1", "--quiet") == 0
    device = json.loads((out / "summary.json").read_text())["device"]
    assert device["used"] == 1 and device["count"] == len(jax.devices())
