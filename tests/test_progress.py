"""The host-side progress bar: honest counts when on, silent when off or not a terminal."""

import io

import numpy as np

import gdlab
from gdlab.progress import Progress


def test_progress_bar_counts_chunks():
    out = io.StringIO()
    bar = Progress(total=10, enabled=True, stream=out, work_per_unit=100)
    bar.update(4, seconds=0.5)
    bar.update(6, seconds=0.5)
    bar.close()
    text = out.getvalue()
    assert "4/10 runs" in text and "10/10 runs" in text and text.endswith("\n")


def test_progress_off_when_not_a_terminal(capsys):
    gdlab.sweep(gdlab.problems.scalar_regression(), np.linspace(0, 3, 50), steps=10, chunk_size=10)
    assert capsys.readouterr().err == ""
    assert not Progress(total=1, stream=io.StringIO()).enabled   # StringIO is not a TTY


def test_progress_rate_counts_overlapping_chunks_once(monkeypatch):
    """Chunk k+1 runs while chunk k is collected: the intervals [0, 2] and [1, 3] took 3 s, not
    4."""
    import gdlab.progress as progress_mod
    clock = iter([0.0, 2.0, 3.0])
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: next(clock))
    bar = Progress(total=2, enabled=False)
    bar.update(1, seconds=2.0)
    bar.update(1, seconds=2.0)
    assert bar.seconds == 3.0
