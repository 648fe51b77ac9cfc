"""``gdlab plot RUN_DIR``: a run directory's plots and report drawn again from its stored results.

Nothing is simulated: the config is rebuilt from summary.json (``config``), the per-run results
are read from results.npz (and zoom.npz), and each study kind's own drawing code runs on them —
``gdlab._study_plots.redraw`` for sweep maps, network maps and merged shards,
``gdlab.orbit_study.redraw`` for bifurcation studies (the gradient lab has no plots). Every file is
replaced atomically (``gdlab.rundir.replace_file``), then report.html (and report.md for homework
Q4) is written again and the marker lists every file written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gdlab import config as config_lib
from gdlab import eos_study, orbit_study, report_html, rundir, zoom
from gdlab._study_plots import redraw as redraw_sweep
from gdlab.dataset import read_npz, read_summary
from gdlab.errors import ArgumentError, GdlabError, OutputError
from gdlab.plots import save

__all__ = ["replot", "NotARunDirectory"]


class NotARunDirectory(OutputError):
    """``gdlab plot`` was given a directory that gdlab's study did not write."""


def replot(run_dir: Path) -> list[str]:
    """Draw every plot of the run in ``run_dir`` again from its files and rewrite its report;
    return the names written. Raises NotARunDirectory (one line) for anything else."""
    run_dir = Path(run_dir)
    kind, summary = _kind(run_dir)
    written = [] if kind == "gradients" else _redraw(run_dir, kind, summary)
    for name, text in report_html.report_files(run_dir).items():
        rundir.replace_file(run_dir / name, lambda p, t=text: p.write_text(t, encoding="utf-8"))
        written.append(name)
    rundir.record_files(run_dir, written)
    return written


def _redraw(run_dir: Path, kind: str, summary: dict) -> list[str]:
    """The plots of a study of ``kind`` (see :func:`_kind`) from its stored results; a file that
    lacks what they are drawn from (an array, a summary key: not written by this gdlab) is
    NotARunDirectory, in one line."""
    try:
        cfg = config_lib.from_table(summary["config"], str(summary["config_path"]))
    except (GdlabError, KeyError, TypeError) as e:
        raise NotARunDirectory(f"{run_dir}: summary.json holds no usable config ({e}); "
                               "run the config again") from None
    arrays = _npz(run_dir / "results.npz")
    try:
        if kind == "orbits":
            return orbit_study.redraw(run_dir, cfg, arrays)
        if kind == "track":
            return eos_study.redraw(run_dir, cfg, arrays)
        written = redraw_sweep(run_dir, cfg, arrays, summary)
        if (run_dir / "zoom.npz").is_file():
            written += _redraw_zoom(run_dir, cfg, summary)
        return written
    except KeyError as e:
        raise NotARunDirectory(f"{run_dir}: its results.npz, zoom.npz or summary.json has no "
                               f"{e} (not written by this gdlab); run the config again") from None


def _kind(run_dir: Path) -> tuple[str, dict | None]:
    """("sweep", "orbits" or "track" (edge of stability), its summary.json) or ("gradients",
    None); NotARunDirectory for a directory gdlab did not write as a study (a shard's is refused
    too: it has no plots until merged)."""
    if not run_dir.is_dir():
        raise NotARunDirectory(f"{run_dir}: not a directory; give a run directory such as "
                               "runs/q4_alpha_sweep")
    listed = rundir.listed_files(run_dir)
    if listed is None:
        raise NotARunDirectory(f"{run_dir}: not a gdlab run directory (no .gdlab-run.json nor "
                               "a summary listing its files)")
    if "shard.json" in listed:
        raise NotARunDirectory(f"{run_dir}: a shard of a sweep has no plots; merge the shards "
                               "first (gdlab merge SHARD_DIR... --out DIR)")
    if "gradients.json" in listed and (run_dir / "gradients.json").is_file():
        return "gradients", None
    missing = [f for f in ("summary.json", "results.npz")
               if not (f in listed and (run_dir / f).is_file())]
    if missing:
        raise NotARunDirectory(f"{run_dir}: a gdlab directory without {' nor '.join(missing)}; "
                               "run the config again")
    summary = _summary(run_dir / "summary.json")
    return ("orbits" if "lyapunov_check" in summary else
            "track" if "edge_of_stability" in summary else "sweep"), summary


def _summary(file: Path) -> dict:
    """summary.json, read as :func:`gdlab.load` reads it; NotARunDirectory (one line) where it
    cannot be."""
    try:
        return read_summary(file)
    except ArgumentError as e:
        raise NotARunDirectory(str(e)) from None


def _npz(file: Path) -> dict[str, np.ndarray]:
    """The arrays of ``file``, read as :func:`gdlab.load` reads them; NotARunDirectory (one line)
    where they cannot be."""
    try:
        return read_npz(file)
    except ArgumentError as e:
        raise NotARunDirectory(str(e)) from None


def _redraw_zoom(run_dir: Path, cfg: config_lib.SweepConfig, summary: dict) -> list[str]:
    """The zoom series' frames from zoom.npz and summary.json ``zoom`` (the dimensions)."""
    frames = _npz(run_dir / "zoom.npz")
    x_name, y_name = list(cfg.axes)
    zs = zoom.ZoomSeries(x_name, y_name, frames["x"], frames["y"], frames["regime"],
                         frames.get("score"),
                         [{"dimension": d} for d in summary["zoom"]["dimensions"]])
    return save(zoom.frames_figure(zs), run_dir, "zoom_frames")
