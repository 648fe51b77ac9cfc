"""gdlab.load (a run directory as an xarray Dataset) and ``gdlab export`` (netCDF, CSV).

The reference is results.npz read with plain NumPy: every exported array must equal it bit for bit
(values and dtypes; no tolerance, nothing is computed), the CSV text must parse back to the same
numbers, and the regime names must be ``regime_names[code]``.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import gdlab
from gdlab import cli
from gdlab.dataset import export, named
from gdlab.errors import GdlabError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# results.npz's arrays that the Dataset holds under another name, or as its layout
RENAMED = {"snapshot_steps": "step", "trajectory_steps": "trajectory_step"}
LAYOUT = {"axis_names", "regime_names"}


@pytest.fixture(scope="module")
def map_run(tmp_path_factory):
    """A 2-D map (α × x, 6 × 5 runs, 20 steps) as ``gdlab run`` writes it."""
    out = tmp_path_factory.mktemp("map") / "m"
    assert cli.main(["run", os.path.join(REPO, "configs", "q4_phase_alpha_x.toml"), "--out",
                     str(out), "--no-progress", "--set", "sweep.alpha.num=6",
                     "--set", "sweep.x.num=5", "--set", "run.steps=20"]) == 0
    return out


def _npz(run):
    with np.load(run / "results.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _assert_identical(a, b, name):
    a, b = np.asarray(a), np.asarray(b)
    assert (a.dtype, a.shape) == (b.dtype, b.shape), name
    assert a.tobytes() == b.tobytes(), name


def _assert_round_trip(run, tmp_path):
    ref = _npz(run)
    path = export(run, "netcdf", tmp_path / "r.nc")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        back = back.load()
    axes = [str(a) for a in ref["axis_names"]]
    assert list(back.regime.dims) == axes
    for name, values in ref.items():
        if name not in LAYOUT:
            _assert_identical(values, back[RENAMED.get(name, name)].values, name)
    for a in axes:  # the axes are the coordinates, α first
        assert a in back.indexes
        _assert_identical(ref[a], back[a].values, a)
    names = [str(n) for n in ref["regime_names"]]
    for var in ("regime", "predicted_regime"):
        assert back[var].attrs["flag_meanings"] == " ".join(names)
        np.testing.assert_array_equal(back[var].attrs["flag_values"], np.arange(len(names)))
        assert named(back[var]).values.tolist() == np.array(names)[ref[var]].tolist()
    return back


def test_netcdf_round_trip_is_bit_exact_1d(trajectories_run, tmp_path):
    back = _assert_round_trip(trajectories_run, tmp_path)
    # three grid runs and three trajectory runs: the trajectories keep their own dimension
    assert back.trajectory_w.dims == ("trajectory_alpha", "trajectory_step")
    assert back.snapshot_w.dims == ("alpha", "step")
    summary = json.loads((trajectories_run / "summary.json").read_text())
    assert json.loads(back.attrs["config_json"]) == summary["config"]
    assert back.attrs["versions_jax"] == summary["versions"]["jax"]
    assert back.attrs["steps"] == summary["steps"]


def test_netcdf_round_trip_is_bit_exact_2d(map_run, tmp_path):
    back = _assert_round_trip(map_run, tmp_path)
    assert back.regime.dims == ("alpha", "x") and back.regime.shape == (6, 5)
    ds = gdlab.load(map_run)
    assert ds.alpha.attrs["long_name"] == "step size α"


def _csv_columns(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return {h: [r[k] for r in rows[1:]] for k, h in enumerate(rows[0])}


@pytest.mark.parametrize("run", ["trajectories_run", "map_run"])
def test_csv_reads_back_as_the_npz(run, request, tmp_path):
    run = request.getfixturevalue(run)
    ref = _npz(run)
    axes = [str(a) for a in ref["axis_names"]]
    grid = ref["regime"].shape
    cols = _csv_columns(export(run, "csv", tmp_path / "r.csv"))
    mesh = np.meshgrid(*(ref[a] for a in axes), indexing="ij")  # rows in C order, α slowest
    for a, m in zip(axes, mesh):
        _assert_identical(np.array(cols[a], dtype=m.dtype), m.ravel(), a)
    names = np.array([str(n) for n in ref["regime_names"]])
    per_run = [k for k, v in ref.items()
               if v.shape == grid and k not in axes and not k.startswith("trajectory_")]
    assert list(cols) == [*axes, *per_run]
    for k in per_run:
        if k in ("regime", "predicted_regime"):
            assert cols[k] == names[ref[k].ravel()].tolist()
        elif ref[k].dtype == bool:
            assert cols[k] == [str(v) for v in ref[k].ravel()]
        else:
            _assert_identical(np.array(cols[k], dtype=ref[k].dtype), ref[k].ravel(), k)


@pytest.mark.parametrize("layout, says", [
    (None, "no such directory"),
    ({}, "not a gdlab run directory (no results.npz nor summary.json)"),
    ({"gradients.json": "{}", "report.md": ""}, "a gradient-check run holds no sweep"),
    ({"shard.json": "{}", "shard.npz": ""}, "merge the shards first"),
    ({"results.npz": "not a zip", "summary.json": "{}"}, "results.npz: unreadable"),
])
def test_not_a_run_directory_is_one_line(tmp_path, layout, says):
    run = tmp_path / "run"
    if layout is not None:
        run.mkdir()
        for name, text in layout.items():
            (run / name).write_text(text)
    with pytest.raises(GdlabError) as e:
        gdlab.load(run)
    assert says in str(e.value) and str(run) in str(e.value) and "\n" not in str(e.value)


def _export(capsys, *argv):
    try:
        status = cli.main(["export", *map(str, argv)])
    except SystemExit as stop:  # argparse refuses a bad option itself
        status = stop.code
    err = capsys.readouterr().err.strip()
    return status, err


def test_export_refuses_bad_input_and_writes_nothing(trajectories_run, tmp_path, capsys):
    run = tmp_path / "t"
    shutil.copytree(trajectories_run, run)
    before = sorted(os.listdir(run))
    for argv, says in [((tmp_path / "missing",), "no such directory"),
                       ((run, "--to", "parquet"), "invalid choice: 'parquet'"),
                       ((run, "--to", "csv", "--out", tmp_path / "r.nc"), "a .nc file"),
                       ((run, "--to", "netcdf", "--out", run / "summary.json", "--overwrite"),
                        "run's own files"),
                       ((run, "--out", tmp_path / "r.txt"), "a .txt file names no format"),
                       ((run, "--out", tmp_path / "no" / "r.nc"), "is not a directory")]:
        status, err = _export(capsys, *argv)
        assert status == 2 and says in err and len(err.splitlines()) == 1, (argv, err)
    assert sorted(os.listdir(run)) == before and sorted(os.listdir(tmp_path)) == ["t"]
    assert _export(capsys, run) == (0, "")
    written = (run / "results.nc").read_bytes()
    status, err = _export(capsys, run)   # the default output exists now
    assert status == 2 and "exists; pass --overwrite" in err
    assert (run / "results.nc").read_bytes() == written
    assert _export(capsys, run, "--overwrite")[0] == 0
    assert sorted(os.listdir(run)) == sorted([*before, "results.nc"])


def test_failed_write_leaves_nothing(trajectories_run, tmp_path, monkeypatch):
    from gdlab import dataset

    def broken(ds, path):
        path.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(dataset._WRITE, "csv", broken)
    with pytest.raises(GdlabError, match="writing failed .No space left on device.; nothing"):
        export(trajectories_run, "csv", tmp_path / "r.csv")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("atomic", [True, False])
def test_export_never_replaces_a_file_that_appeared_meanwhile(trajectories_run, tmp_path,
                                                              monkeypatch, atomic):
    """Another process writes the output while the export is being written: without --overwrite
    its file is kept, with it ours replaces it; no temporary file is left either way. ``atomic``
    False: no renameat2 (not Linux), the check-then-rename path."""
    from gdlab import dataset, rundir
    if not atomic:
        monkeypatch.setattr(rundir, "_libc", lambda: None)
    out = tmp_path / "r.csv"

    def racing(ds, path):
        path.write_text("ours")
        out.write_text("theirs")

    monkeypatch.setitem(dataset._WRITE, "csv", racing)
    with pytest.raises(GdlabError, match="r.csv: appeared while exporting; pass --overwrite"):
        export(trajectories_run, "csv", out)
    assert out.read_text() == "theirs" and os.listdir(tmp_path) == ["r.csv"]
    export(trajectories_run, "csv", out, overwrite=True)
    assert out.read_text() == "ours" and os.listdir(tmp_path) == ["r.csv"]


def test_load_imports_neither_matplotlib_nor_jax(trajectories_run):
    """Reading a result needs NumPy and xarray only: gdlab.load in a fresh interpreter leaves
    matplotlib and JAX unimported."""
    code = ("import sys, gdlab; gdlab.load(sys.argv[1]); "
            "print(sorted(m for m in ('matplotlib', 'jax') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(trajectories_run)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]
