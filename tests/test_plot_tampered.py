"""`gdlab plot` on a run directory edited after gdlab wrote it, or on a full disk: one line naming
the file and the key or array (exit 2), no traceback, and every file left as it was."""

import errno
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from gdlab import cli

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _run(tmp_path_factory, config: str, *sets: str) -> Path:
    out = tmp_path_factory.mktemp("tampered") / "run"
    args = ["run", str(CONFIGS / config), "--out", str(out), "-q"]
    assert cli.main([*args, *(x for s in sets for x in ("--set", s))]) == 0
    return out


@pytest.fixture(scope="module")
def line_run(tmp_path_factory):
    """Homework Q4 on 50 α × 50 steps: a regime strip, an α × t heatmap, trajectories."""
    return _run(tmp_path_factory, "q4_alpha_sweep.toml", "sweep.alpha.num=50", "run.steps=50")


@pytest.fixture(scope="module")
def map_run(tmp_path_factory):
    """Heavy ball over 11 α × 6 β: a phase map."""
    return _run(tmp_path_factory, "momentum_alpha_beta.toml",
                "sweep.alpha={start=0.0,stop=4.0,num=11}",
                "sweep.beta={start=0.0,stop=0.9,num=6}", "run.steps=30")


def _npz(name, change):
    def tamper(run: Path) -> None:
        with np.load(run / "results.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        arrays[name] = change(arrays[name])
        np.savez_compressed(run / "results.npz", **arrays)
    return tamper


def _summary(key, value):
    def tamper(run: Path) -> None:
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, key: value}))
    return tamper


def _code_99(regime):
    regime = regime.copy()
    regime.flat[0] = 99
    return regime


# case → (run, tampering, what the line says after "gdlab: error: RUN_DIR/")
_CASES = {
    "regime_code_99": ("line", _npz("regime", _code_99),
                       "results.npz: regime[0] = 99 (1 of 50 values bad); it must be in [0, 10]"),
    "regime_as_text": ("line", _npz("regime", lambda r: r.astype(str)),
                       "results.npz: regime has dtype <U"),
    "regime_truncated": ("line", _npz("regime", lambda r: r[:5]),
                         "results.npz: regime has shape (5,), it must be (50,)"),
    "snapshot_steps_length": ("line", _npz("snapshot_steps", lambda s: s[:-3]),
                              "results.npz: snapshot_steps has shape (48,), it must be (51,)"),
    "timings_a_string": ("line", _summary("timings", "fast"),
                         "summary.json: timings: 'fast' must be an object"),
    "files_a_number": ("line", _summary("files", 5), "summary.json: files: 5 must be a list"),
    "agreement_fraction_text": ("line", _summary("agreement", {"fraction": "x"}),
                                "summary.json: agreement.fraction: 'x' must be null or a number"),
    "map_regime_code_99": ("map", _npz("regime", _code_99),
                           "results.npz: regime[0, 0] = 99 (1 of 66 values bad)"),
    "map_regime_truncated": ("map", _npz("regime", lambda r: r.ravel()[:5]),
                             "results.npz: regime has shape (5,), it must be (11, 6)"),
}


def _contents(run: Path) -> dict[str, str]:
    """Every file's name (hidden ones too) → its SHA-1."""
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in run.iterdir()}


def _refused(run: Path, capsys) -> str:
    """`gdlab plot run` exits 2 with one line and no traceback, and changes no file."""
    before = _contents(run)
    capsys.readouterr()
    assert cli.main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert _contents(run) == before
    return err


@pytest.mark.parametrize("case", list(_CASES))
def test_plot_of_a_tampered_run_is_one_line(case, line_run, map_run, tmp_path, capsys):
    which, tamper, expected = _CASES[case]
    run = tmp_path / "run"
    shutil.copytree(line_run if which == "line" else map_run, run)
    tamper(run)
    err = _refused(run, capsys)
    assert err.startswith(f"gdlab: error: {run}/{expected}"), err
    assert err.rstrip().endswith("run the config again"), err


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["regime_strip.png", "report.html"])
def test_plot_on_a_full_disk_is_one_line(failing, line_run, tmp_path, capsys, monkeypatch):
    """A full disk while a plot or the report is written: that file named, all left as they
    were (each file is replaced atomically), no hidden temporary file left behind."""
    run = tmp_path / "run"
    shutil.copytree(line_run, run)
    if failing.endswith(".png"):
        monkeypatch.setattr(Figure, "savefig", _no_space)
    else:
        write_text = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda p, *a, **k: _no_space() if p.name.startswith(
            f".{failing}.tmp-") else write_text(p, *a, **k))
    err = _refused(run, capsys)
    assert err == (f"gdlab: error: {run}/{failing}: writing failed (No space left on device); "
                   "it was left as it was; free space and run gdlab plot again\n")


def test_a_reworded_q4_answer_is_shown_as_written(line_run, tmp_path):
    """A Q4.2 answer without gdlab's "simulated: …; theory …" wording goes on the page as is."""
    run = tmp_path / "run"
    shutil.copytree(line_run, run)
    summary = json.loads((run / "summary.json").read_text())
    summary["q4_answer"]["oscillation"] = "my own words"
    (run / "summary.json").write_text(json.dumps(summary))
    assert cli.main(["plot", str(run)]) == 0
    assert "my own words" in (run / "report.html").read_text()
