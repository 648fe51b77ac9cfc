"""gdlab.load and ``gdlab export`` on files a user hands them: a tampered results.npz, zoom.npz or
summary.json, a full disk, an output named only by a suffix, a dangling symbolic link.

Each is one GdlabError line naming the file, the array and the value (exit status 2 from the CLI,
no traceback), and nothing is left written.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import gdlab
from gdlab import cli
from gdlab.dataset import export
from gdlab.errors import GdlabError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def map_run(tmp_path_factory):
    """A 2-D map (α × β, 4 × 3 runs, 20 steps) as ``gdlab run`` writes it."""
    out = tmp_path_factory.mktemp("map") / "m"
    assert cli.main(["run", os.path.join(REPO, "configs", "momentum_alpha_beta.toml"), "--out",
                     str(out), "--no-progress", "-q", "--set", "sweep.alpha.num=4",
                     "--set", "sweep.beta.num=3", "--set", "run.steps=20"]) == 0
    return out


def _tampered(run, tmp_path, change, file="results.npz"):
    """A copy of ``run`` whose ``file`` (an .npz) went through ``change(arrays)``."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    path = copy / file
    arrays = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez_compressed(path, **arrays)
    return copy


def _set(name, value, at=0):
    def change(z):
        z[name] = z[name].copy()
        z[name].flat[at] = value
    return change


def _replace(name, f):
    return lambda z: z.update({name: f(z[name])})


def _export_cli(capsys, *argv):
    status = cli.main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, err.strip()


def _assert_refused(capsys, run, says, file="results.npz"):
    """gdlab.load raises one line naming the file and ``says``; export exits 2 writing nothing."""
    with pytest.raises(GdlabError) as e:
        gdlab.load(run)
    message = str(e.value)
    assert str(run / file) in message and says in message and "\n" not in message, message
    before = sorted(os.listdir(run))
    status, err = _export_cli(capsys, run, "--to", "netcdf")
    assert status == 2 and err == f"gdlab: error: {message}", err
    assert sorted(os.listdir(run)) == before


TAMPERED_1D = {   # trajectories_run: α = 0.5, 1.5, 2.5; 31 snapshots; 3 trajectory runs
    "2-D alpha": (_replace("alpha", lambda a: a[:, None]), "alpha has shape (3, 1), an axis "
                                                           "must be 1-D"),
    "short snapshot_steps": (_replace("snapshot_steps", lambda a: a[:-1]),
                             "snapshot_w has shape (3, 31), but snapshot_steps makes step 30 "
                             "long"),
    "NaN final_error": (_set("final_error", np.nan, 1),
                        "final_error[1] = nan (1 of 3 values bad); it must be finite"),
    "inf contraction": (_set("contraction", np.inf), "contraction[0] = inf"),
    "NaN trajectory_w": (_set("trajectory_w", np.nan, 5), "trajectory_w[0, 5] = nan"),
    "truncated regime": (_replace("regime", lambda a: a[:-1]),
                         "regime has shape (2,), but the grid alpha is (3,)"),
    "regime code 99": (_set("regime", 99, 2), "regime[2] = 99 (1 of 3 values bad); it must be "
                                              "in [0, 10]"),
    "regime code -1": (_set("predicted_regime", -1), "predicted_regime[0] = -1"),
    "text regime": (_replace("regime", lambda a: a.astype(str)), "regime has dtype <U"),
    "float regime": (_replace("regime", lambda a: a.astype(float)),
                     "regime has dtype float64, it must be an integer array"),
    "steps_to_tol -5": (_set("steps_to_tol", -5), "steps_to_tol[0] = -5"),
    "boolean final_error": (_replace("final_error", lambda a: a > 0), "final_error has dtype bool"),
    "regime_names renamed": (_set("regime_names", "great"), "regime_names ['great'"),
    "2-D axis_names": (_replace("axis_names", lambda a: a[:, None]), "axis_names must be a 1-D"),
    "axis_names naming regime": (_replace("axis_names", lambda a: np.array(["regime"])),
                                 "axis_names names 'regime', which is no axis"),
    "short trajectory_alpha": (_replace("trajectory_alpha", lambda a: a[:-1]),
                               "but trajectory_alpha makes trajectory_alpha 2 long"),
}


@pytest.mark.parametrize("case", TAMPERED_1D)
def test_tampered_results_are_one_line(trajectories_run, tmp_path, capsys, case):
    change, says = TAMPERED_1D[case]
    _assert_refused(capsys, _tampered(trajectories_run, tmp_path, change), says)


TAMPERED_2D = {   # map_run: α × β = 4 × 3
    "regime short along beta": (_replace("regime", lambda a: a[:, :-1]),
                                "regime has shape (4, 2), but the grid alpha, beta is (4, 3)"),
    "2-D beta": (_replace("beta", lambda a: np.stack([a, a])), "beta has shape (2, 3)"),
    "NaN spectral_radius": (_set("spectral_radius", np.nan, 4), "spectral_radius[1, 1] = nan"),
}


@pytest.mark.parametrize("case", TAMPERED_2D)
def test_tampered_map_is_one_line(map_run, tmp_path, capsys, case):
    change, says = TAMPERED_2D[case]
    _assert_refused(capsys, _tampered(map_run, tmp_path, change), says)


@pytest.mark.parametrize("frames, says", [
    ({"x": np.zeros((1, 2)), "y": np.zeros((1, 2)), "regime": np.full((1, 2, 2), 99, np.int8)},
     "regime[0, 0, 0] = 99"),
    ({"x": np.zeros((1, 2)), "y": np.zeros((1, 3)), "regime": np.zeros((1, 2), np.int8)},
     "zoom_regime has shape (1, 2), it must have 3 dimension(s)"),
])
def test_tampered_zoom_frames_are_one_line(trajectories_run, tmp_path, capsys, frames, says):
    run = _tampered(trajectories_run, tmp_path, lambda z: z.update(frames), "zoom.npz")
    _assert_refused(capsys, run, says, "zoom.npz")


def test_nan_in_summary_is_one_line(trajectories_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trajectories_run, run)
    text = (run / "summary.json").read_text()
    (run / "summary.json").write_text(text.replace('"tol": 1.0', '"tol": NaN', 1))
    _assert_refused(capsys, run, "NaN is not a value gdlab writes", "summary.json")


_LIMITED_EXPORT = """
import resource, signal, sys
from gdlab import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (256, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(cli.main(["export", sys.argv[1], "--out", sys.argv[2]]))
"""


def _export_process(argv, **kw):
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, **kw)


def test_a_failing_netcdf_write_is_one_line(trajectories_run, tmp_path):
    """Writes past 256 bytes fail (RLIMIT_FSIZE, as a full disk would): one line naming the file and
    the cause, exit 2, nothing left — HDF5 never writes to the disk itself, so it neither prints
    its error stack nor crashes."""
    out, name = tmp_path / "out", "x.nc"
    out.mkdir()
    done = _export_process(["-c", _LIMITED_EXPORT, str(trajectories_run), str(out / name)])
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.splitlines() == [f"gdlab: error: {out / name}: writing failed (File too "
                                        "large); nothing was kept; free space or choose "
                                        "another --out"]
    assert os.listdir(out) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"),
                    reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_one_line(trajectories_run, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(full)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        done = _export_process(["-m", "gdlab", "export", str(trajectories_run), "--out",
                                str(full / "x.nc")])
        listed = os.listdir(full)
    finally:
        subprocess.run(["umount", str(full)], check=True)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.splitlines() == [f"gdlab: error: {full / 'x.nc'}: writing failed (No "
                                        "space left on device); nothing was kept; free space "
                                        "or choose another --out"]
    assert listed == []


def test_no_space_while_writing_netcdf_is_an_output_error(trajectories_run, tmp_path,
                                                          monkeypatch):
    """The netCDF bytes are written with plain file I/O, whose OSError becomes one line."""
    from pathlib import Path

    def full(self, data):
        with open(self, "wb") as f:
            f.write(bytes(data)[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(GdlabError, match=r"x.nc: writing failed \(No space left on device\)"):
        export(trajectories_run, "netcdf", tmp_path / "x.nc")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", [".csv", ".nc", ".CSV", ".hdf5"])
@pytest.mark.parametrize("to", [None, "csv", "netcdf"])
def test_a_name_that_is_only_a_suffix_is_refused(trajectories_run, tmp_path, capsys, name, to):
    argv = [trajectories_run, "--out", tmp_path / name, *(["--to", to] if to else [])]
    status, err = _export_cli(capsys, *argv)
    assert status == 2 and err == (f"gdlab: error: {tmp_path / name}: names only a suffix; give "
                                   f"a file name such as {tmp_path / ('results' + name)}"), err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("target", ["missing.csv", "there.csv"])
def test_a_symbolic_link_as_output_is_refused(trajectories_run, tmp_path, capsys, target):
    """A dangling link is not a file that 'appeared while exporting'; no link is ever replaced
    by the export nor written through, --overwrite or not."""
    (tmp_path / "there.csv").write_text("theirs")
    link = tmp_path / "l.csv"
    link.symlink_to(target)
    for extra in ([], ["--overwrite"]):
        status, err = _export_cli(capsys, trajectories_run, "--out", link, *extra)
        assert status == 2 and err == (f"gdlab: error: {link}: is a symbolic link; give the "
                                       "file it should be as --out"), err
    assert os.readlink(link) == target and (tmp_path / "there.csv").read_text() == "theirs"
    assert sorted(os.listdir(tmp_path)) == ["l.csv", "there.csv"]


def test_a_tampered_run_is_refused_before_the_output_is_checked(trajectories_run, tmp_path,
                                                                capsys):
    run = _tampered(trajectories_run, tmp_path, _set("regime", 99))
    status, err = _export_cli(capsys, run, "--out", tmp_path / "no" / "x.nc")
    assert status == 2 and "regime[0] = 99" in err
