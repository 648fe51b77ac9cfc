"""Regime boundaries of a 1-D sweep, located by k-section on top of the grid.

Wherever two neighbouring grid values α_i < α_{i+1} fall in different regimes, the bracket
[α_i, α_{i+1}] is cut at m = 2^d − 1 interior points α_i + j·(α_{i+1} − α_i)/2^d, j = 1…m, all
simulated in one round, and replaced by every sub-interval whose ends fall in different regimes,
until it is narrower than ``precision``·max(1, |α|) or than the float resolution of the simulation
dtype.

Why m points, not a midpoint: the engine pads every batch to whole vectors of ``LANES`` = 64 runs,
and at large T a round costs T steps of one such vector whatever it holds (measured: 1, 4 and 64
α of 2·10⁶ float64 steps take the same time). All brackets are searched together, sharing one
batch of ``points`` α per round (K brackets: 2^d − 1 each, the largest that fits ⌊points/K⌋, the
widest doubling theirs while the batch has room), so a lone bracket shrinks 64× per round instead
of 2× — ~6× fewer rounds to 10⁻⁶ of a 10⁻³ cell (2 rounds, not 10). The points are dyadic: a
round of 2^d − 1 points visits every midpoint d rounds of bisection would, so an edge that
bisection lands on exactly (bounded_oscillation at α = 2 between grid values 1.5 and 2.5) is
landed on here too. Past ``points`` open brackets each gets one point (plain bisection) in a batch
of ``points``·2^k. Batch sizes are fixed, so the search compiles one program per size reached.

A sub-interval is kept for every label change among its points, so every edge the search meets
inside a grid cell is reported (a coarse grid with converging_monotone at α = 0.5 and
diverging_oscillating at 2.5 has converging_oscillating between: two edges, never one
"monotone → diverging" change); with one point per bracket this is plain bisection, a midpoint of
a third regime splitting its bracket in two. A regime narrower than the precision that no point
lands on (bounded_oscillation at exactly α = 2/λ, where 2/λ is not dyadic in the cell) is stepped
over: its bracket ends in the regimes on either side, a change inside the cell all the same.

The simulated edge is horizon-aware: at finite T a run with |r| = 1 − ε only looks converging once
its error shrinks by more than rounding over the horizon, so the located α can sit a little inside
the closed-form edge; the report shows both.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from gdlab import _sweep_checks as check
from gdlab import resources
from gdlab.engine import LANES
from gdlab.errors import TooLargeError
from gdlab.regimes import REGIME_NAMES

__all__ = ["Boundary", "Round", "Work", "locate", "estimate", "check_work", "widest_cell",
           "PRECISION",
           "MAX_SERIAL_STEPS"]

PRECISION = 1e-6   # relative: a bracket ends narrower than PRECISION·max(1, |α|)
MAX_SERIAL_STEPS = resources.MAX_STEPS   # rounds × steps a search may take (one run's limit)


class Boundary(NamedTuple):
    below: str      # regime just below the edge
    above: str      # regime just above the edge
    alpha: float    # midpoint of the final bracket
    lo: float
    hi: float
    rounds: int
    grid_lo: float  # the grid values around the edge: other edges found between the same two
    grid_hi: float  # grid values are regimes the grid does not resolve

    def as_dict(self) -> dict:
        return self._asdict()


class Round(NamedTuple):
    """A round of the search, as ``locate``'s ``progress`` receives it (round 0: the plan)."""

    round: int       # 0 before the first simulation, then 1, 2, …
    open: int        # brackets still open after the round (round 0: the brackets to search)
    runs: int        # α simulated in the round (round 0: in the next)
    seconds: float   # wall time of the round, its simulation included (round 0: 0)
    widest: float    # widest open bracket after the round, in units of max(1, |α|) (0: none)
    left: int        # rounds still expected at the current shares (0: done)


class Work(NamedTuple):
    """The expected cost of a search (:func:`estimate`)."""

    rounds: int         # rounds of simulation
    runs: int           # α simulated over all rounds
    serial_steps: int   # rounds × steps: the steps simulated one after another


class _Brackets(NamedTuple):
    """Brackets under search (arrays of one length): [lo, hi] holds a change below → above."""

    lo: np.ndarray
    hi: np.ndarray
    below: np.ndarray
    above: np.ndarray
    grid: np.ndarray      # index of the grid cell the bracket lies in
    rounds: np.ndarray


def locate(run: Callable[[np.ndarray], ArrayLike], alphas: ArrayLike, regime: ArrayLike, *,
           dtype: DTypeLike = "float32", precision: float = PRECISION, points: int = LANES,
           max_rounds: int = 60,
           progress: Callable[[Round], None] | None = None) -> list[Boundary]:
    """Every regime change of a 1-D sweep, bracketed by k-section; the edges, sorted by α.

    Args:
      run: ``run(alphas) -> regimes`` simulating the same problem/optimizer/horizon at new α.
      alphas, regime: the grid and its simulated regimes (``run``'s labels at the grid values).
      dtype: the dtype ``run`` simulates α in (a bracket ends at its resolution).
      points: α per round (a multiple of the engine's ``LANES`` costs no more than one vector).
      progress: called with the plan (``Round`` 0) and after every round.
    """
    points = check.integer("points", points, 1)
    a = np.asarray(alphas, np.float64)
    reg = np.asarray(regime)
    order = np.argsort(a)
    a, reg = a[order], reg[order]
    edges = np.flatnonzero(reg[1:] != reg[:-1])
    br = _Brackets(a[edges], a[edges + 1], reg[edges], reg[edges + 1], edges,
                   np.zeros(edges.size, int))
    cast = np.dtype(dtype).type
    report = progress or (lambda r: None)
    is_open = _open(br, precision, cast)
    if is_open.any():
        report(_round(0, br, is_open, 0, 0.0, precision, points))
    for k in range(1, max_rounds + 1):
        if not is_open.any():
            break
        t0 = time.perf_counter()
        br, runs = _cut(run, br, is_open, points, cast)
        is_open = _open(br, precision, cast)
        report(_round(k, br, is_open, runs, time.perf_counter() - t0, precision, points))
    order = np.argsort(0.5 * (br.lo + br.hi), kind="stable")
    return [Boundary(REGIME_NAMES[b], REGIME_NAMES[c], float(0.5 * (low + high)), float(low),
                     float(high), int(k), float(a[g]), float(a[g + 1]))
            for low, high, b, c, g, k in zip(*(x[order] for x in br))]


def estimate(alphas: ArrayLike, steps: int, *, precision: float = PRECISION,
             points: int = LANES) -> Work:
    """The work of searching one change in the grid's widest cell (relative to max(1, |α|)) with
    ``points`` α per round: rounds = ⌈log(width/precision) / log(m + 1)⌉, m = 2^d − 1 ≤ points
    the dyadic share of a lone bracket — what a grid with any change there costs at least; K
    changes share the points, so take a few rounds more. ``alphas``: the grid, or just its widest
    cell (:func:`widest_cell`, for a grid too long to hold)."""
    points = check.integer("points", points, 1)
    a = np.sort(np.asarray(alphas, np.float64).ravel())
    if a.size < 2:
        return Work(0, 0, 0)
    rounds = _rounds_needed(float(_cell_widths(a).max()), precision, _dyadic(points))
    return Work(rounds, rounds * points, rounds * int(steps))


def widest_cell(parts: Iterable[ArrayLike]) -> np.ndarray:
    """The two α of the widest cell (relative to max(1, |α|), as :func:`estimate` measures) of a
    monotone grid given in consecutive parts that overlap by one value (a long range read a chunk
    at a time); one value if the grid has one."""
    best, ends = -1.0, np.empty(0)
    for part in parts:
        a = np.asarray(part, np.float64).ravel()
        if a.size < 2:
            ends = a if ends.size == 0 else ends
            continue
        a = a if a[0] <= a[-1] else a[::-1]
        w = _cell_widths(a)
        i = int(np.argmax(w))
        if w[i] > best:
            best, ends = float(w[i]), a[i:i + 2].copy()
    return ends


def _cell_widths(a: np.ndarray) -> np.ndarray:
    """Each cell of sorted ``a``, in units of max(1, |α|) at its midpoint."""
    return np.diff(a) / np.maximum(1.0, np.abs(0.5 * (a[1:] + a[:-1])))


def check_work(alphas: ArrayLike, steps: int, *, argument: str = "steps",
               precision: float = PRECISION, points: int = LANES,
               limit: int = MAX_SERIAL_STEPS) -> Work:
    """:func:`estimate`, or TooLargeError naming ``argument`` when its rounds × steps exceed
    ``limit`` (by default one run's step limit): a search that would simulate more steps one
    after another than the longest run gdlab accepts is refused before any work."""
    work = estimate(alphas, steps, precision=precision, points=points)
    if work.serial_steps > limit:
        raise TooLargeError(argument, f"{steps}: locating the regime edges in float64 would take "
                                      f"≈{work.rounds} rounds of {steps} steps "
                                      f"({work.serial_steps:.3g} steps one after another, more "
                                      f"than the {limit} one run may take); use at most "
                                      f"{limit // work.rounds} steps")
    return work


def _rounds_needed(width: float, precision: float, share: int) -> int:
    """Rounds for ``share`` points per round to cut a bracket of relative ``width`` below
    ``precision``: each round divides it by share + 1."""
    if width <= precision:
        return 0
    return max(1, math.ceil(math.log(width / precision) / math.log(share + 1) - 1e-9))


def _relative(br: _Brackets) -> np.ndarray:
    """Each bracket's width in units of max(1, |α|) at its midpoint."""
    return (br.hi - br.lo) / np.maximum(1.0, np.abs(0.5 * (br.lo + br.hi)))


def _open(br: _Brackets, precision: float, cast: type) -> np.ndarray:
    """Brackets wider than the precision whose midpoint the dtype tells from both ends."""
    mid = 0.5 * (br.lo + br.hi)
    return ((_relative(br) > precision) & (cast(mid) != cast(br.lo))
            & (cast(mid) != cast(br.hi)))


def _batch(brackets: int, points: int) -> int:
    """α simulated in a round of ``brackets`` open brackets: ``points``, or ``points``·2^k ≥
    ``brackets`` (one point each at least), so that rounds reuse a few compiled programs."""
    return points << max(0, math.ceil(math.log2(brackets / points))) if brackets else 0


def _dyadic(n: int) -> int:
    """The largest 2^d − 1 ≤ n (n ≥ 1): interior points that cut a bracket into 2^d equal parts."""
    return (1 << (n + 1).bit_length() - 1) - 1


def _shares(br: _Brackets, is_open: np.ndarray, points: int) -> np.ndarray:
    """Points per open bracket: 2^d − 1 each, the largest that fits the batch split evenly; then,
    widest first, brackets double theirs (2^(d+1) − 1) while the batch has room."""
    k = int(is_open.sum())
    n = _batch(k, points)
    base = _dyadic(n // k)
    share, spare = np.full(k, base), n - k * base
    for i in np.argsort(-_relative(br)[is_open], kind="stable"):
        if spare < base + 1:
            break
        share[i], spare = 2 * base + 1, spare - (base + 1)
    return share


def _round(k: int, br: _Brackets, is_open: np.ndarray, runs: int, seconds: float,
           precision: float, points: int) -> Round:
    """The ``Round`` for progress after round ``k`` (``runs`` α simulated in ``seconds``)."""
    if not is_open.any():
        return Round(k, 0, runs, seconds, 0.0, 0)
    widths, share = _relative(br)[is_open], _shares(br, is_open, points)
    left = max(_rounds_needed(w, precision, s) for w, s in zip(widths, share))
    n_open = int(is_open.sum())
    return Round(k, n_open, runs or _batch(n_open, points), seconds, float(widths.max()), left)


def _cut(run: Callable[[np.ndarray], ArrayLike], br: _Brackets, is_open: np.ndarray,
         points: int, cast: type) -> tuple[_Brackets, int]:
    """One round: each open bracket cut at its share of evenly spaced interior points, all
    simulated in one ``run``, and replaced by every sub-interval whose ends' regimes differ
    (below → got₁, got₁ → got₂, …, → above); closed brackets are kept. Also the α simulated.

    The points are the values ``cast`` simulates (kept inside their bracket): near the dtype's
    resolution several round to one, and are run as exact copies of it."""
    idx = np.flatnonzero(is_open)
    share = _shares(br, is_open, points)
    seg = share + 2                                 # lo, the interior points, hi
    owner = np.repeat(idx, seg)                     # the bracket each position belongs to
    j = np.arange(seg.sum()) - np.repeat(np.cumsum(seg) - seg, seg)   # 0 … share + 1
    last = j == np.repeat(share + 1, seg)
    x = br.lo[owner] + (br.hi - br.lo)[owner] * (j / np.repeat(share + 1, seg))
    x = np.where(last, br.hi[owner], x)             # the ends exactly, not lo + (hi − lo)·1
    inner = (j > 0) & ~last
    x[inner] = np.clip(cast(x[inner]).astype(np.float64), br.lo[owner[inner]],
                       br.hi[owner[inner]])
    got = np.asarray(run(x[inner]))
    label = np.where(j == 0, br.below[owner], br.above[owner])
    label[inner] = got
    change = np.flatnonzero((label[:-1] != label[1:]) & ~last[:-1])
    keep = ~is_open
    new = _Brackets(x[change], x[change + 1], label[change], label[change + 1],
                    br.grid[owner[change]], br.rounds[owner[change]] + 1)
    merged = _Brackets(*(np.concatenate([old[keep], add]) for old, add in zip(br, new)))
    return merged, int(inner.sum())
