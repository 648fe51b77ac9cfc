"""A host-side progress bar for chunked sweeps.

Updated between chunks, after each chunk's results have been fetched (which blocks), so it is honest
about work done; nothing runs inside the compiled loop (callbacks there cost 4–28×). Off unless
stderr is a terminal, or when ``enabled=False``.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, *, enabled: bool | None = None, unit: str = "runs",
                 work_per_unit: int = 1, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else bool(enabled)
        self.total, self.unit, self.work_per_unit = total, unit, work_per_unit
        self.done, self.seconds, self.start = 0, 0.0, time.perf_counter()
        self._last_end = -float("inf")

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
        frac = self.done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        rate = self.done * self.work_per_unit / max(self.seconds, 1e-9)
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        self.stream.write(f"\r[{bar:<30}] {self.done}/{self.total} {self.unit}  "
                          f"{rate / 1e9:.2f} G updates/s  eta {eta:.0f}s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
