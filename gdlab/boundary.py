"""Regime boundaries of a 1-D sweep, located by bisection on top of the grid.

Wherever two neighbouring grid values α_i < α_{i+1} fall in different regimes, the bracket
[α_i, α_{i+1}] is halved until it is narrower than ``precision``·max(1, |α|) or than the float
resolution of the simulation dtype. A midpoint whose regime is neither end's splits its bracket in
two, so every edge the bisection meets inside a grid cell is reported (a coarse grid with
converging_monotone at α = 0.5 and diverging_oscillating at 2.5 has converging_oscillating between:
two edges, never one "monotone → diverging" change). All brackets are bisected together: each
round is one sweep of their midpoints, padded to a power of two, so the search compiles a program
per size reached (one, unless brackets split).

The simulated edge is horizon-aware: at finite T a run with |r| = 1 − ε only looks converging once
its error shrinks by more than rounding over the horizon, so the located α can sit a little inside
the closed-form edge; the report shows both.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from gdlab.regimes import REGIME_NAMES

__all__ = ["Boundary", "locate", "PRECISION"]

PRECISION = 1e-6   # relative: a bracket ends narrower than PRECISION·max(1, |α|)


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


class _Brackets(NamedTuple):
    """Brackets under bisection (arrays of one length): [lo, hi] holds a change below → above."""

    lo: np.ndarray
    hi: np.ndarray
    below: np.ndarray
    above: np.ndarray
    grid: np.ndarray      # index of the grid cell the bracket lies in
    rounds: np.ndarray


def locate(run: Callable[[np.ndarray], ArrayLike], alphas: ArrayLike, regime: ArrayLike, *,
           dtype: DTypeLike = "float32", precision: float = PRECISION,
           max_rounds: int = 60) -> list[Boundary]:
    """Bisect every regime change of a 1-D sweep; the edges, sorted by α.

    Args:
      run: ``run(alphas) -> regimes`` simulating the same problem/optimizer/horizon at new α.
      alphas, regime: the grid and its simulated regimes (``run``'s labels at the grid values).
      dtype: the dtype ``run`` simulates α in (a bracket ends at its resolution).
    """
    a = np.asarray(alphas, np.float64)
    reg = np.asarray(regime)
    order = np.argsort(a)
    a, reg = a[order], reg[order]
    edges = np.flatnonzero(reg[1:] != reg[:-1])
    if edges.size == 0:
        return []
    br = _Brackets(a[edges], a[edges + 1], reg[edges], reg[edges + 1], edges,
                   np.zeros(edges.size, int))
    cast = np.dtype(dtype).type
    for _ in range(max_rounds):
        mid = 0.5 * (br.lo + br.hi)
        open_ = np.flatnonzero(((br.hi - br.lo) > precision * np.maximum(1.0, np.abs(mid)))
                               & (cast(mid) != cast(br.lo)) & (cast(mid) != cast(br.hi)))
        if open_.size == 0:
            break
        br = _halve(br, open_, mid[open_], _run_padded(run, mid[open_], len(br.lo)))
    order = np.argsort(0.5 * (br.lo + br.hi))
    return [Boundary(REGIME_NAMES[b], REGIME_NAMES[c], float(0.5 * (low + high)), float(low),
                     float(high), int(k), float(a[g]), float(a[g + 1]))
            for low, high, b, c, g, k in zip(*(x[order] for x in br))]


def _run_padded(run: Callable[[np.ndarray], ArrayLike], x: np.ndarray, size: int) -> np.ndarray:
    """``run(x)``, padded with copies of x[-1] to the power of two ≥ ``size`` (the brackets held),
    so that rounds with fewer open brackets reuse one compiled program."""
    n = 1 << max(0, int(size - 1).bit_length())
    return np.asarray(run(np.concatenate([x, np.full(n - x.size, x[-1])])))[:x.size]


def _halve(br: _Brackets, idx: np.ndarray, mid: np.ndarray, got: np.ndarray) -> _Brackets:
    """The open brackets ``idx`` halved at ``mid`` by its regime ``got``: the half whose ends
    differ is kept; a third regime keeps both, [lo, mid] (below → got) and [mid, hi]
    (got → above)."""
    lo, hi, above, rounds = br.lo.copy(), br.hi.copy(), br.above.copy(), br.rounds.copy()
    rounds[idx] += 1
    lower = got == br.below[idx]
    third = ~lower & (got != br.above[idx])
    lo[idx[lower]] = mid[lower]
    hi[idx[~lower]] = mid[~lower]
    above[idx[third]] = got[third]
    s = idx[third]
    return _Brackets(np.concatenate([lo, mid[third]]), np.concatenate([hi, br.hi[s]]),
                     np.concatenate([br.below, got[third]]), np.concatenate([above, br.above[s]]),
                     np.concatenate([br.grid, br.grid[s]]),
                     np.concatenate([rounds, rounds[s]]))
