"""Lose nothing: --overwrite replaces only gdlab's own directories, output paths are checked before
any work, a run that cannot be put in place keeps its results, failures while writing leave nothing,
and nothing non-finite is stored."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdlab import cli, rundir, study

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TRAJ = str(CONFIGS / "q4_trajectories.toml")


def run(*argv):
    return cli.main([str(a) for a in argv])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gdlab: error: "), err
    return err[0]


def test_overwrite_never_deletes_a_directory_gdlab_did_not_write(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("data")
    assert run("run", TRAJ, "--out", precious, "--overwrite") == 2
    assert "no gdlab marker" in one_error_line(capsys)
    assert (precious / "thesis.tex").read_text() == "data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


def test_overwrite_refuses_a_gdlab_directory_with_added_files(tmp_path, capsys,
                                                              trajectories_run):
    # (that --overwrite replaces gdlab's own directory as written: test_cli.py's
    # test_existing_directory_needs_overwrite, on a copy of the same run)
    out = tmp_path / "t"
    shutil.copytree(trajectories_run, out)                  # what `gdlab run TRAJ` wrote
    assert rundir.is_gdlab_directory(out)
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert run("run", TRAJ, "--out", out, "--overwrite") == 2
    assert "'notes.txt'" in one_error_line(capsys)
    assert (out / "notes.txt").read_text() == "mine"


def test_overwrite_never_the_config_directory_the_cwd_or_a_parent(tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    exp.mkdir()
    cfg = exp / "c.toml"
    cfg.write_text(Path(TRAJ).read_text())
    monkeypatch.chdir(tmp_path)
    for out in (exp, ".", "..", tmp_path):
        assert run("run", cfg, "--out", out, "--overwrite") == 2
        one_error_line(capsys)
    assert cfg.exists()
    dotdot = tmp_path / "..toml"   # its stem is "." and would name runs/ itself
    dotdot.write_text(Path(TRAJ).read_text())
    assert run("run", dotdot, "--overwrite") == 2
    assert "pass --out" in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("case", ["file_parent", "long_name", "dangling_link", "dot"])
def test_output_paths_are_checked_before_any_work(tmp_path, capsys, monkeypatch, case):
    calls = []
    monkeypatch.setattr(study.gdlab, "sweep", lambda *a, **k: calls.append(1))
    (tmp_path / "afile").write_text("x")
    out = {"file_parent": tmp_path / "afile" / "run",
           "long_name": tmp_path / ("n" * 250),
           "dangling_link": tmp_path / "link",
           "dot": tmp_path / "."}[case]
    if case == "dangling_link":
        os.symlink(tmp_path / "nowhere", out)
    assert run("run", TRAJ, "--out", out) == 2
    one_error_line(capsys)
    assert calls == []   # refused before the simulation
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["afile"] + (["link"] if case == "dangling_link" else []))


def test_no_run_directory_inside_another(tmp_path, capsys, monkeypatch, trajectories_run):
    """The issue: `--out runs/q4_alpha_sweep/sub` was written, and then `--overwrite` of
    runs/q4_alpha_sweep refused ("holds files gdlab did not write ('sub')"). Refused before any
    work, at any depth, with a place outside it; the enclosing run stays replaceable."""
    calls = []
    monkeypatch.setattr(study.gdlab, "sweep", lambda *a, **k: calls.append(1))
    runs = tmp_path / "runs"
    runs.mkdir()
    outer = runs / "t"
    shutil.copytree(trajectories_run, outer)
    (outer / "deeper").mkdir()
    before = sorted(p.name for p in outer.iterdir())
    for sub in (outer / "sub", outer / "deeper" / "sub"):
        assert run("run", TRAJ, "--out", sub) == 2
        assert one_error_line(capsys) == (
            f"gdlab: error: {sub}: is inside the gdlab run directory {outer} (whose --overwrite "
            f"would then refuse it); choose an --out outside it, such as {runs / 'sub'}")
    assert calls == [] and sorted(p.name for p in outer.iterdir()) == before
    assert run("merge", outer, "--out", outer / "merged") == 2   # gdlab merge too
    assert "is inside the gdlab run directory" in one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_parent_is_refused_up_front(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    assert run("run", TRAJ, "--out", ro / "run") == 2
    assert "not writable" in one_error_line(capsys)


def test_a_failure_while_writing_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(rundir.np, "savez_compressed", full)
    assert run("run", TRAJ, "--out", tmp_path / "t", "--no-progress") == 2
    assert "No space left on device" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_target_that_appears_meanwhile_is_not_replaced(tmp_path, capsys, monkeypatch):
    out = tmp_path / "t"
    save = study.plots.save

    def save_and_race(fig, directory, name):   # another process creates the target meanwhile
        out.mkdir(exist_ok=True)
        (out / "theirs.txt").write_text("theirs")
        return save(fig, directory, name)

    monkeypatch.setattr(study.plots, "save", save_and_race)
    assert run("run", TRAJ, "--out", out, "--no-progress") == 2
    line = one_error_line(capsys)
    assert "appeared while this run was computing" in line
    kept = tmp_path / f"t.conflict-{os.getpid()}"
    assert str(kept) in line and (kept / "results.npz").exists()
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]


def test_stale_partial_directories_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".t.partial-{dead.pid}"
    stale.mkdir()
    (stale / "results.npz").write_text("half")
    alive = tmp_path / f".t.partial-{os.getppid()}"   # a live process's: left alone
    alive.mkdir()
    assert run("run", TRAJ, "--out", tmp_path / "t") == 0
    assert not stale.exists() and alive.exists()


def test_nothing_non_finite_is_stored_when_the_optimum_is_the_start(tmp_path):
    out = tmp_path / "y0"
    assert run("run", TRAJ, "--out", out, "--set", "problem.y=0") == 0
    with np.load(out / "results.npz", allow_pickle=False) as z:
        for name in z.files:
            if z[name].dtype.kind == "f":
                assert np.all(np.isfinite(z[name])), name
        assert np.all(z["recurrence_dev"] == 0)
    text = (out / "summary.json").read_text()
    assert "NaN" not in text and '"nan"' not in text and "Infinity" not in text
    assert json.loads(text)["recurrence"]["max_dev"] == 0


def test_list_survives_odd_entries_in_configs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs" / "adir.toml").mkdir(parents=True)
    os.symlink(tmp_path / "missing", tmp_path / "configs" / "dangling.toml")
    (tmp_path / "configs" / "binary.toml").write_bytes(b"\xff\xfe\x00")
    assert run("list") == 0
    out = capsys.readouterr().out
    assert "adir.toml" not in out and "dangling.toml" not in out and "binary.toml" in out


def test_bad_input_creates_no_compilation_cache(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GDLAB_CACHE_DIR", str(cache))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    assert run("run", TRAJ, "--set", "run.stpes=3", "--out", tmp_path / "t") == 2
    one_error_line(capsys)
    assert not cache.exists() and not (tmp_path / "t").exists()


def test_huge_sweeps_use_compact_results_where_all_statistics_would_not_fit(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GDLAB_MEMORY_LIMIT", "1300M")   # 10⁶ runs: all ≈ 1.6 GB, compact ≈ 1 GB
    out = tmp_path / "big"
    assert run("run", CONFIGS / "q4_alpha_sweep.toml", "--out", out,
               "--set", "sweep.alpha.num=1000000", "--set", "run.steps=50") == 0
    assert "keep = \"compact\"" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["keep"] == "compact" and "compact" in summary
    with np.load(out / "results.npz", allow_pickle=False) as z:
        assert z["regime"].shape == (1_000_000,) and "final_error" not in z.files
        # the iterates were not kept, but the heatmap's subsample of α was swept again
        assert z["heatmap_w"].shape[0] == z["heatmap_index"].size <= 4096
    assert (out / "error_heatmap.png").exists() and "plots_not_drawn" not in summary
    monkeypatch.setenv("GDLAB_MEMORY_LIMIT", "600M")    # not even compact fits: refused up front
    assert run("run", CONFIGS / "q4_alpha_sweep.toml", "--out", tmp_path / "no",
               "--set", "sweep.alpha.num=1000000") == 2
    line = one_error_line(capsys)
    assert "sweep.alpha.num" in line and "GDLAB_MEMORY_LIMIT" in line
    assert not (tmp_path / "no").exists()


def test_merge_never_writes_over_one_of_its_shards(tmp_path, capsys):
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"s{i}")
        assert run("run", CONFIGS / "q4_alpha_sweep.toml", "--out", shards[-1],
                   "--set", f"sweep.shard={i}/2", "--set", "sweep.alpha.num=64") == 0
    capsys.readouterr()
    for out in (shards[0], tmp_path):
        assert run("merge", *shards, "--out", out, "--overwrite") == 2
        assert "an input of this run" in one_error_line(capsys)
    assert all((s / "shard.npz").exists() for s in shards)


def test_config_keys_in_messages_are_the_ones_written():
    from gdlab import config
    cfg = config.load(CONFIGS / "momentum_alpha_beta.toml")
    assert [config.config_key(cfg, a) for a in (
        "alphas", "over['beta']", "hparams['beta']", "w0", "problem.x", "devices", "steps")] == [
        "sweep.alpha", "sweep.beta", "sweep.beta", "problem.w0", "problem.x", "run.devices",
        "run.steps"]


def test_run_directories_of_earlier_versions_can_be_overwritten(tmp_path, capsys,
                                                                trajectories_run):
    """Before the marker, a run directory was recognisable by summary.json's list of files."""
    out = tmp_path / "t"
    shutil.copytree(trajectories_run, out)                  # what `gdlab run TRAJ` wrote
    for name in (rundir.MARKER, "report.html", "report.md"):   # (no report before the marker)
        (out / name).unlink(missing_ok=True)
    assert rundir.is_gdlab_directory(out)
    assert run("run", TRAJ, "--out", out, "--overwrite") == 0
    for name in (rundir.MARKER, "report.html", "report.md"):
        (out / name).unlink(missing_ok=True)
    (out / "summary.json").write_text(json.dumps({"files": ["results.npz"]}))  # plots not listed
    capsys.readouterr()
    assert run("run", TRAJ, "--out", out, "--overwrite") == 2
    one_error_line(capsys)
