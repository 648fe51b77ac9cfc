"""Progress of a chunked sweep: a tqdm bar on a terminal, plain lines in a log.

Updated between chunks, after each chunk's results have been fetched (which blocks), so it is honest
about work done; nothing runs inside the compiled loop (callbacks there cost 4–28×).

``enabled=None`` (the API's default): a bar when the stream is a terminal, nothing otherwise.
``enabled=True`` (``gdlab run``): a bar on a terminal; elsewhere (a log file, a pipe, a batch job)
one plain line per chunk — at most one every ``min_interval`` seconds, and always the last — so
that a log shows how far a run got. ``enabled=False``: nothing.

The rate shown is updates per second of compute, ``done · work_per_unit / seconds``, where
``seconds`` is the union of the chunks' intervals (they overlap: the next chunk runs while the last
is collected), not the wall time since the start.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]

_FORMAT = "{n_fmt}/{total_fmt} {unit} ({percentage:.0f} %) [{elapsed}<{remaining}{postfix}]"


class Progress:
    def __init__(self, total: int, *, enabled: bool | None = None, unit: str = "runs",
                 work_per_unit: int = 1, stream: TextIO | None = None,
                 min_interval: float = 1.0) -> None:
        self.stream = stream or sys.stderr
        tty = _isatty(self.stream)
        self.enabled = tty if enabled is None else bool(enabled)
        self.total, self.unit, self.work_per_unit = total, unit, work_per_unit
        self.min_interval = min_interval
        self.done, self.seconds, self.start = 0, 0.0, time.perf_counter()
        self._last_end = -float("inf")
        self._last_line = -float("inf")
        self._bar = (tqdm(total=total, unit=unit, file=self.stream, dynamic_ncols=True,
                          bar_format="|{bar}| " + _FORMAT)
                     if self.enabled and tty else None)

    def update(self, n: int, *, seconds: float = 0.0) -> None:
        """``n`` more units done by work that took the last ``seconds`` until now. Intervals may
        overlap (the next chunk runs while the last is collected): only their union is counted,
        so the rate is the real one."""
        now = time.perf_counter()
        self.done += n
        self.seconds += max(0.0, now - max(now - seconds, self._last_end))
        self._last_end = now
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(self._rate(), refresh=False)
            self._bar.update(n)
        elif self.done >= self.total or now - self._last_line >= self.min_interval:
            self._last_line = now
            self.stream.write(tqdm.format_meter(self.done, self.total, now - self.start,
                                                unit=self.unit, bar_format=_FORMAT,
                                                postfix=self._rate()) + "\n")
            self.stream.flush()

    def set_total(self, total: int) -> None:
        """The units expected in all, revised (a search that learns how many rounds it needs)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def _rate(self) -> str:
        """Updates per second of compute (see the module docstring)."""
        rate = self.done * self.work_per_unit / max(self.seconds, 1e-9)
        return f"{tqdm.format_sizeof(rate)} updates/s"     # 1.23G: SI prefixes

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # no isatty, or a closed stream
        return False
