"""Memory a request will need, estimated before any work, and the limit it must fit in.

A sweep's memory is dominated by per-run results. Measured here (peak RSS above the interpreter,
scalar problem, ``theory.predict`` included): ``keep="all"`` ≈ 290–320 B per run, ``keep="compact"``
≈ 110 B per run at 4·10⁶ runs (the int8 regime and int32 steps, the float64 grid while it is built,
and two chunks in flight). The estimates below take about twice those figures, so a request that
passes cannot run the machine out of memory, and one refused would have needed at least half of it.

The limit is ``$GDLAB_MEMORY_LIMIT`` (bytes, or with a suffix: ``512M``, ``8G``) when set, else 80 %
of the memory the system reports available when the request is made.
"""

from __future__ import annotations

import os
import re

from gdlab.errors import TooLargeError

__all__ = ["memory_limit", "sweep_bytes", "check_fits", "format_bytes", "parse_bytes",
           "MAX_STEPS", "ENV_LIMIT"]

ENV_LIMIT = "GDLAB_MEMORY_LIMIT"
MAX_STEPS = 2**31 - 1          # step counters are int32
BASE_BYTES = 400 * 2**20       # the interpreter, JAX, compiled programs
CHUNK_BYTES = 2 * 256 * 2**20  # two chunks of the engine's 256 MiB budget alive at once
FULL_PER_RUN = 640             # keep="all": every statistic, inputs, theory (≈ 2 × measured)
COMPACT_PER_RUN = 32           # keep="compact": regime + steps + axis values (+ margin)
ENGINE_COPIES = 8              # parameter vectors a simulated run holds on the device: w, the
                               # gradient, the optimizer's state and the step's temporaries
                               # (measured: 5.6 for GD on a 10⁶-parameter user loss, 64 runs)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``"8G"`` → 8·2³⁰; a plain integer is bytes. ValueError if malformed."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"{text!r} is not a size; write e.g. 8G, 512M or 1000000000")
    return int(float(m[1]) * _UNITS[m[2].upper()])


def _available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def memory_limit() -> int:
    """Bytes a single request may use: ``$GDLAB_MEMORY_LIMIT`` or 80 % of available memory."""
    text = os.environ.get(ENV_LIMIT)
    if text:
        try:
            return parse_bytes(text)
        except ValueError as e:
            raise TooLargeError(ENV_LIMIT, f"{e}") from None
    return int(0.8 * _available())


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def sweep_bytes(n: int, *, keep: str = "all", param_size: int = 1, itemsize: int = 4,
                snapshots: int = 0, shared_bytes: int = 0, chunk_runs: int = 0) -> int:
    """Estimated peak bytes of a sweep of ``n`` runs.

    ``param_size`` entries per parameter vector, ``snapshots`` recorded iterates per run (each kept
    on the device, on the host and once in float64 for the plots), ``shared_bytes`` for inputs every
    run shares (a Hessian, a data matrix: counted three times, float64 original, cast and device),
    ``chunk_runs`` the runs one chunk simulates, its padding to whole vectors or blocks included
    (``gdlab.engine.chunk_runs``): two chunks are alive at once, each ``ENGINE_COPIES`` parameter
    vectors a run on the device, or the 256 MiB chunk budget if that is more.
    """
    n, d = int(n), max(1, int(param_size))
    per_run = COMPACT_PER_RUN if keep == "compact" else FULL_PER_RUN + 48 * d
    per_run += snapshots * d * (2 * itemsize + 8)
    chunk = 2 * max(CHUNK_BYTES // 2, int(chunk_runs) * (200 + ENGINE_COPIES * d * itemsize))
    return BASE_BYTES + chunk + 3 * int(shared_bytes) + n * per_run


def check_fits(needed: int, *, argument: str, what: str, fix: str) -> None:
    """Raise TooLargeError naming ``argument`` when ``needed`` bytes exceed :func:`memory_limit`."""
    limit = memory_limit()
    if needed > limit:
        raise TooLargeError(argument, f"{what} needs about {format_bytes(needed)}, more than the "
                                      f"{format_bytes(limit)} allowed ({_limit_source()}); {fix}")


def _limit_source() -> str:
    if os.environ.get(ENV_LIMIT):
        return f"${ENV_LIMIT}"
    return f"80 % of available memory; raise it with ${ENV_LIMIT}"
