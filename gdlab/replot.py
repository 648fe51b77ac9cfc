"""``gdlab plot RUN_DIR``: a run directory's plots and report drawn again from its stored results.

Nothing is simulated: the config is rebuilt from summary.json (``config``), the per-run results
are read from results.npz (and zoom.npz), and each study kind's own drawing code runs on them —
``gdlab._study_plots.redraw`` for sweep maps, network maps and merged shards,
``gdlab.orbit_study.redraw`` for bifurcation studies (the gradient lab has no plots). Every file is
replaced atomically (``gdlab.rundir.replace_file``), then report.html (and report.md for homework
Q4) is written again and the marker lists every file written. What is read is checked before
anything is drawn (``gdlab._replot_checks``); a failure while writing (a full disk) is one line
naming the file, and leaves it as it was.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np

from gdlab import config as config_lib
from gdlab import eos_study, orbit_study, report_html, rundir, zoom
from gdlab._replot_checks import NotARunDirectory, check
from gdlab._study_plots import redraw as redraw_sweep
from gdlab.dataset import read_npz, read_summary
from gdlab.errors import ArgumentError, GdlabError, OutputError, one_line
from gdlab.plots import save

__all__ = ["replot", "NotARunDirectory"]


def replot(run_dir: Path) -> list[str]:
    """Draw every plot of the run in ``run_dir`` again from its files and rewrite its report;
    return the names written. Raises NotARunDirectory (one line) for anything else, and
    OutputError (one line) where writing fails."""
    run_dir = Path(run_dir)
    kind, summary = _kind(run_dir)
    with _writing(run_dir):
        written = [] if kind == "gradients" else _redraw(run_dir, kind, summary)
        for name, text in _report(run_dir).items():
            rundir.replace_file(run_dir / name,
                                lambda p, t=text: p.write_text(t, encoding="utf-8"))
            written.append(name)
        rundir.record_files(run_dir, written)
    return written


@contextlib.contextmanager
def _writing(run_dir: Path) -> Iterator[None]:
    """A failure to write a file of ``run_dir`` (``rundir.replace_file``: the file left as it
    was) as one OutputError line naming it."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"{e.filename or run_dir}: writing failed "
                          f"({e.strerror or one_line(e)}); it was left as it was; free space and "
                          "run gdlab plot again") from None


def _report(run_dir: Path) -> dict[str, str]:
    """:func:`gdlab.report_html.report_files`; a plot that summary.json lists but that cannot be
    read is NotARunDirectory."""
    try:
        return report_html.report_files(run_dir)
    except OSError as e:
        raise NotARunDirectory(f"{e.filename}: listed in {run_dir / 'summary.json'} (files) but "
                               f"unreadable ({e.strerror or one_line(e)}); run the config "
                               "again") from None


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
    zoom_file = run_dir / "zoom.npz"
    frames = _npz(zoom_file) if zoom_file.is_file() else None
    check(run_dir, kind, cfg, summary, arrays, frames)
    try:
        if kind == "orbits":
            return orbit_study.redraw(run_dir, cfg, arrays)
        if kind == "track":
            return eos_study.redraw(run_dir, cfg, arrays)
        written = redraw_sweep(run_dir, cfg, arrays, summary)
        if frames is not None:
            written += _redraw_zoom(run_dir, cfg, summary, frames)
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


def _redraw_zoom(run_dir: Path, cfg: config_lib.SweepConfig, summary: dict,
                 frames: dict[str, np.ndarray]) -> list[str]:
    """The zoom series' frames from zoom.npz (``frames``) and summary.json ``zoom`` (the
    dimensions)."""
    x_name, y_name = list(cfg.axes)
    zs = zoom.ZoomSeries(x_name, y_name, frames["x"], frames["y"], frames["regime"],
                         frames.get("score"),
                         [{"dimension": d} for d in summary["zoom"]["dimensions"]])
    return save(zoom.frames_figure(zs), run_dir, "zoom_frames")
