"""Oscillations far below |w*|: with the optimum at 0 the engine resolves an error however small.

The flip rule's floor is 64 ulps of |w*| plus 64 ulps of the step's own magnitudes (README,
"Regimes"), so where w* = 0 rounding is relative and a sign change of the error is seen down to
√(smallest normal). Just above the momentum methods' oscillation onsets the first sign change comes
late and tiny: this is what lets the bundled α × β maps (``configs/*_alpha_beta.toml``, the
homework's ½(w − 100)² in its error e = w − 100) put their measured onsets within a grid cell of the
closed form.

The reference is exact: the error map of optax's heavy ball and Nesterov iterated in rational
arithmetic (``fractions.Fraction``) from the float64 inputs, no floating point at all; it says
whether and when the error changes sign. A floor made of |e₀| (the old rule: 64 ulps of
|w*| + |e₀|, 1.4e-12 here) hides every one of these sign changes; a floor too low, or a flip rule
that rounding fools, shows one where the exact map has none.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import gdlab

STEPS = 300


def _exact_errors(optimizer: str, alpha: float, beta: float, e0: float, steps: int) -> list:
    """e_0 … e_T of optax's sgd(α, momentum=β[, nesterov]) on ½e² (g = e), exactly:
    v ← g + βv; e ← e − αv (heavy ball) or e ← e − α(g + βv) (Nesterov)."""
    a, b = Fraction(alpha), Fraction(beta)
    e, v, out = Fraction(e0), Fraction(0), [Fraction(e0)]
    for _ in range(steps):
        v = e + b * v
        e = e - a * (e + b * v if optimizer == "nesterov" else v)
        out.append(e)
    return out


def _first_sign_change(e: list) -> tuple[int, float] | None:
    """(t, e_t) of the first e_t whose sign differs from e₀'s (exact zeros skipped), or None."""
    for t, x in enumerate(e[1:], 1):
        if x != 0 and (x > 0) != (e[0] > 0):
            return t, float(x)
    return None


# Cells of the bundled maps' grids (α over [0, 4] or [0, 2.5] in 300 steps, β over [0, 0.95] in
# 95) around each chosen column's closed-form onset αλ = (1 − √β)² (heavy ball) or
# ((1 − β)/(1 + β))² (Nesterov), λ = 1: the last cell below it and the first two above. The
# columns: the first few of each map whose first sign change, in the exact map, lies below the old
# floor (found over all 96 columns, a two-minute search), and a few ordinary ones.
COLUMNS = {"momentum": (1, 6, 9, 17, 18, 29, 50, 80), "nesterov": (2, 10, 20, 30, 52, 59, 70, 90)}
OLD_FLOOR = 64 * np.finfo(np.float64).eps * (100.0 + 100.0)   # 64 ulps of |w*| + |e₀|, w* = 100


def _cells(optimizer: str) -> list[tuple[float, float]]:
    stop = 4.0 if optimizer == "momentum" else 2.5
    alphas, betas = np.linspace(0.0, stop, 301), np.linspace(0.0, 0.95, 96)
    cells = []
    for beta in betas[list(COLUMNS[optimizer])]:
        onset = ((1 - np.sqrt(beta)) ** 2 if optimizer == "momentum"
                 else ((1 - beta) / (1 + beta)) ** 2)
        k = int(np.searchsorted(alphas, onset))
        cells += [(float(alphas[i]), float(beta)) for i in range(max(1, k - 1), k + 2)]
    return cells


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_sign_changes_far_below_w_star_are_seen(optimizer):
    cells = _cells(optimizer)
    alphas = sorted({a for a, _ in cells})
    betas = sorted({b for _, b in cells})
    res = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 0.0), alphas, optimizer=optimizer,
                      over={"beta": betas}, w0=-100.0, steps=STEPS, tol=1.0, dtype="float64",
                      progress=False)
    floor = np.sqrt(np.finfo(np.float64).tiny)
    tiny_crossings = 0
    for alpha, beta in cells:
        i, j = alphas.index(alpha), betas.index(beta)
        first = _first_sign_change(_exact_errors(optimizer, alpha, beta, -100.0, STEPS))
        name = gdlab.REGIME_NAMES[res.regime[i, j]]
        if first is None:
            assert res.flips[i, j] == 0 and name == "converging_monotone", (alpha, beta)
            continue
        t, e_t = first
        if abs(e_t) < 1e3 * floor:      # too close to the floor to call (none here: asserted)
            continue
        assert res.flips[i, j] >= 1 and name == "converging_oscillating", (alpha, beta, t, e_t)
        tiny_crossings += abs(e_t) < OLD_FLOOR
    # The crossings this test is about: below the old floor (and most below 1e-14, what a w near
    # w* = 100 resolves at all).
    assert tiny_crossings >= 4


def test_vector_errors_count_as_the_exact_map_down_to_where_their_squares_underflow():
    # A 5-D quadratic with w* = 0 in float32: errors decay through 1e-19 (√ of the smallest
    # normal), where XLA on a CPU flushes the squares and products of their entries to zero — so
    # a norm or an inner product there loses the entries and the flips came out wrong (176 for 178
    # at α = 1.83; 10 where the map has none). The floor for d entries is √(d·tiny/eps) ≈ 1e-15
    # (README, "Regimes"); the reference is the exact map in float64 (e_t = Q diag(1 − αλ)^t Qᵀe₀)
    # under the flip rule as the README states it, and the cases used are those where no error
    # comes within 1 % of its floor (float32 rounding moves an error near the floor by ~1e-6 of it).
    dim, steps = 5, 400
    q = gdlab.quadratics.quadratic(dim=dim, kappa=10.0, w_star=0.0, seed=0)
    lam, Q = np.asarray(q.eigenvalues(), np.float64), np.asarray(q.Q, np.float64)
    w0 = -100.0 * np.linspace(1.0, 0.3, dim)
    fi = np.finfo(np.float32)
    floor = np.sqrt(dim * fi.tiny / fi.eps)
    alphas = np.r_[1.83, 1.86, 1.88, np.linspace(1.505, 1.975, 16)]
    res = gdlab.sweep(q, alphas, w0=w0, steps=steps, tol=1.0, progress=False)
    compared = 0
    for i, a in enumerate(alphas):
        e = (Q @ ((1 - a * lam)[:, None] ** np.arange(steps + 1) * (Q.T @ w0)[:, None])).T
        norms = np.linalg.norm(e, axis=1)
        floors = floor + 64 * fi.eps * norms[:-1]
        if (np.abs(norms[1:] / floors - 1) < 0.01).any():
            continue
        ref, flips = e[0], 0
        for x, n, f in zip(e[1:], norms[1:], floors):
            if n > f and x @ ref != 0:
                flips += x @ ref < 0
                ref = x
        assert res.flips[i] == flips, (a, res.flips[i], flips)
        compared += 1
    assert compared >= 15
