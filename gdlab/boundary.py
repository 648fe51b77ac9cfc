"""Regime boundaries of a 1-D sweep, located by bisection on top of the grid.

Wherever two neighbouring grid values α_i < α_{i+1} fall in different regimes, the bracket
[α_i, α_{i+1}] is halved until it is narrower than ``precision``·max(1, |α|) or than the float
resolution of the simulation dtype. All brackets are bisected together: each round is one sweep of K
midpoints (K = number of boundaries), so the whole search compiles one program.

The simulated edge is horizon-aware: at finite T a run with |r| = 1 − ε only looks converging once
its error shrinks by more than rounding over the horizon, so the located α can sit a little inside
the closed-form edge; the report shows both.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from gdlab.regimes import REGIME_NAMES

__all__ = ["Boundary", "locate"]


class Boundary(NamedTuple):
    below: str      # regime just below the edge
    above: str      # regime just above the edge
    alpha: float    # midpoint of the final bracket
    lo: float
    hi: float
    rounds: int

    def as_dict(self) -> dict:
        return self._asdict()


def locate(run: Callable[[np.ndarray], ArrayLike], alphas: ArrayLike, regime: ArrayLike, *,
           dtype: DTypeLike = "float32", precision: float = 1e-6,
           max_rounds: int = 60) -> list[Boundary]:
    """Bisect every regime change of a sorted 1-D sweep.

    Args:
      run: ``run(alphas) -> regimes`` simulating the same problem/optimizer/horizon at new α.
      alphas, regime: the grid and its simulated regimes.
    """
    a = np.asarray(alphas, np.float64)
    reg = np.asarray(regime)
    order = np.argsort(a)
    a, reg = a[order], reg[order]
    edges = np.flatnonzero(reg[1:] != reg[:-1])
    if edges.size == 0:
        return []
    lo, hi = a[edges].copy(), a[edges + 1].copy()
    below, above = reg[edges].copy(), reg[edges + 1].copy()
    cast = np.dtype(dtype).type
    rounds = np.zeros(edges.size, int)
    for _ in range(max_rounds):
        mid = 0.5 * (lo + hi)
        open_ = ((hi - lo) > precision * np.maximum(1.0, np.abs(mid))) & \
                (cast(mid) != cast(lo)) & (cast(mid) != cast(hi))
        if not open_.any():
            break
        got = np.asarray(run(mid))
        same = got == below
        lo = np.where(open_ & same, mid, lo)
        hi = np.where(open_ & ~same, mid, hi)
        rounds += open_
    return [Boundary(REGIME_NAMES[b], REGIME_NAMES[c], float(0.5 * (low + high)), float(low),
                     float(high), int(k))
            for b, c, low, high, k in zip(below, above, lo, hi, rounds)]
