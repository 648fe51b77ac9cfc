"""The regimes of a gradient-descent run, and how a simulation is classified into one.

One integer per run. The table below is the single source of names, descriptions and colours: the
results file (``regime_names``), the CLI and the plot legends all read it.

For gradient descent on a quadratic with curvature λ the error obeys e_{t+1} = r e_t with
r = 1 − αλ, so

=====================  ==========  ===========================================
regime                 r           αλ
=====================  ==========  ===========================================
converging_monotone    0 ≤ r < 1   0 < αλ ≤ 1   (αλ = 1: the optimum in one step)
converging_oscillating −1 < r < 0  1 < αλ < 2
bounded_oscillation    r = −1      αλ = 2       (the period-2 cycle)
diverging_oscillating  r < −1      αλ > 2
diverging_monotone     r > 1       αλ < 0
stalled                r = 1       α = 0
=====================  ==========  ===========================================

Non-quadratic losses add ``periodic`` (an attracting cycle of period p ≥ 2) and ``chaotic``
(bounded, no period, positive Lyapunov exponent). A loss without a known optimum (a network) is
judged by its loss ratios ρ_t = L_t/L_0 instead (:func:`judge_by_loss`): ``converged``, ``diverged``
or ``undecided``, with Sohl-Dickstein's (2024) continuous trainability score (:func:`score`).

The decisions are made here, once: :func:`decide` maps what a run's error did (grew, shrank or
neither; changed sign or not) to a regime, and :func:`decide_orbit` maps the period and Lyapunov
exponent that ``gdlab.dynamics`` measures on a non-quadratic loss. :func:`classify` turns simulation
statistics into those observations (the measured growth of the error and the observed sign flips,
never the formula), ``gdlab.theory`` derives them from the formula (|r| against 1, the sign of r),
and ``gdlab.modes`` from its exact per-direction evaluation; all three decide through this table.
Growth is measured as the largest error in the late half of the horizon over the largest in the
early half, so it is also robust for momentum, whose error rotates rather than shrinking step by
step.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Regime", "REGIME_NAMES", "REGIME_INFO", "RegimeInfo", "classify", "decide",
           "late_window", "decide_orbit", "growth_band", "growth_limits", "judge", "quiet",
           "settled",
           "judge_by_loss",
           "score"]


class Regime(enum.IntEnum):
    CONVERGING_MONOTONE = 0
    CONVERGING_OSCILLATING = 1
    BOUNDED_OSCILLATION = 2
    DIVERGING_OSCILLATING = 3
    DIVERGING_MONOTONE = 4
    STALLED = 5
    PERIODIC = 6
    CHAOTIC = 7
    CONVERGED = 8
    DIVERGED = 9
    UNDECIDED = 10


class RegimeInfo(NamedTuple):
    name: str
    description: str
    color: str


# Colours: Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/), plus Paul
# Tol's wine for diverging_monotone (Okabe–Ito's reddish purple is within ΔE 10 of the stalled grey
# for a deuteranope, and the two are neighbours at α = 0). Checked by simulating deuteranopia,
# protanopia and tritanopia (Machado et al. 2009): every pair that can share a plot stays ≥ 15 ΔE*ab
# apart, least 16.1 (tests/test_plots_honest.py). The runs judged by their loss (converged /
# diverged / undecided) never share a plot with the others and reuse the colours of that meaning.
REGIME_INFO: dict[Regime, RegimeInfo] = {
    Regime.CONVERGING_MONOTONE: RegimeInfo(
        "converging_monotone", "error shrinks without changing sign (GD: 0 < αλ ≤ 1)", "#0072B2"),
    Regime.CONVERGING_OSCILLATING: RegimeInfo(
        "converging_oscillating",
        "error shrinks and changes sign (GD: 1 < αλ < 2; n-D: the error vector reverses)",
        "#56B4E9"),
    Regime.BOUNDED_OSCILLATION: RegimeInfo(
        "bounded_oscillation", "period-2 cycle of constant amplitude (αλ = 2)", "#F0E442"),
    Regime.DIVERGING_OSCILLATING: RegimeInfo(
        "diverging_oscillating", "error grows and changes sign (GD: αλ > 2)", "#D55E00"),
    Regime.DIVERGING_MONOTONE: RegimeInfo(
        "diverging_monotone", "error grows without changing sign (αλ < 0)", "#882255"),
    Regime.STALLED: RegimeInfo(
        "stalled", "the iterate never moves (α = 0)", "#999999"),
    Regime.PERIODIC: RegimeInfo(
        "periodic", "non-quadratic loss: settles on a cycle of period p ≥ 2 (see `period`)",
        "#009E73"),
    Regime.CHAOTIC: RegimeInfo(
        "chaotic", "non-quadratic loss: bounded, aperiodic, positive Lyapunov exponent", "#E69F00"),
    Regime.CONVERGED: RegimeInfo(
        "converged", "no known optimum: mean loss ratio L_t/L_0 over the last 20 steps below 1 "
        "(the loss fell)",
        "#0072B2"),
    Regime.DIVERGED: RegimeInfo(
        "diverged", "no known optimum: that mean above 1, or the loss blew up (L_t/L_0 beyond "
        "the float range's square root, or not finite)",
        "#D55E00"),
    Regime.UNDECIDED: RegimeInfo(
        "undecided", "no known optimum: that mean exactly 1 (the loss never changed)",
        "#F0E442"),
}

REGIME_NAMES: tuple[str, ...] = tuple(REGIME_INFO[r].name for r in Regime)


def late_window(steps: int) -> int:
    """Steps in the late half t > T // 2: the engine compares the largest error there with the
    early half's, and the growth band of :func:`classify` is δ per step over this window."""
    return steps - steps // 2


def growth_band(eps: float, w_star_abs: ArrayLike, err0: ArrayLike) -> np.ndarray:
    """Per-step relative band δ inside which a contraction factor is indistinguishable from 1.

    One step of GD in floating point perturbs the error by a few units of roundoff of the numbers
    involved, |w*| + |e|; relative to |e| that is ≈ eps·(1 + |w*|/|e|). We take 4× that: a measured
    per-step factor ρ with |ρ − 1| ≤ δ is "neither growing nor shrinking". ``gdlab.theory`` uses the
    same δ to flag runs whose predicted |r| is that close to 1. Over a window of k steps the band on
    log(growth) is k·δ.
    """
    err0 = np.maximum(np.asarray(err0, np.float64), np.finfo(np.float64).tiny)
    with np.errstate(over="ignore"):
        return 4.0 * eps * (1.0 + np.asarray(w_star_abs, np.float64) / err0)


# The decision table: (grows, shrinks, oscillates) -> regime, indexed by
# oscillates + 2·shrinks + 4·grows. Rows: the error's trend; columns: monotone, oscillating.
_BY_CODE = np.array([Regime.STALLED, Regime.BOUNDED_OSCILLATION,                # neither
                     Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING,  # shrinks
                     Regime.DIVERGING_MONOTONE, Regime.DIVERGING_OSCILLATING],   # grows
                    np.int8)

_LYAPUNOV_CHAOS = 1e-3  # λ_L above this (per step) and no period: chaos


def decide(grows: ArrayLike, shrinks: ArrayLike, oscillates: ArrayLike,
           at_optimum: ArrayLike, *, xp=np) -> np.ndarray:
    """The regime (int8) of runs from what their error did; boolean arrays that broadcast together.

    ``grows`` wins over ``shrinks`` (callers pass exclusive ones); neither is "no measurable
    change" (stalled, or the bounded period-2 cycle if it oscillates). A run at the optimum
    (``at_optimum``: its error never rose above the noise floor, :func:`quiet`) has nothing to
    observe and is converged. ``xp``: the array namespace (numpy,
    or ``jax.numpy`` inside a compiled program: the same table, the same answer).
    """
    grows = xp.asarray(grows, bool)
    shrinks = xp.asarray(shrinks, bool) & ~grows
    code = (xp.asarray(oscillates, bool).astype(xp.int8) + 2 * shrinks.astype(xp.int8)
            + 4 * grows.astype(xp.int8))
    regime = xp.where(xp.asarray(at_optimum, bool), xp.int8(Regime.CONVERGING_MONOTONE),
                      xp.asarray(_BY_CODE)[code])
    return xp.asarray(regime, xp.int8)


def decide_orbit(period: np.ndarray, lyapunov: np.ndarray, oscillates: np.ndarray,
                 stalled: np.ndarray, diverged: np.ndarray, diverged_regime: np.ndarray, *,
                 escapes: ArrayLike = False, neutral: ArrayLike = False) -> np.ndarray:
    """The regime (int8) of runs on a non-quadratic loss from their late orbit (arrays of one
    shape).

    Args:
      period: 1 a fixed point, p ≥ 2 a cycle, 0 none found, −1 diverged (``gdlab.dynamics``).
      lyapunov: the Lyapunov exponent λ_L of the late orbit, per step.
      oscillates: the error changes sign (f' < 0 at the orbit's last point).
      stalled: α = 0, the iterate never moves.
      diverged, diverged_regime: the run left the float range, and the engine's regime for it.
      escapes: the run stayed in range but its orbit is unbounded (|e| keeps growing).
      neutral: the detected cycle's multiplier is 1 to rounding.

    A fixed point is converging (oscillating or monotone by the sign of f'); a neutral 2-cycle is
    the bounded oscillation of αλ = 2; p ≥ 2 is periodic; no period is chaotic if λ_L > 10⁻³, else
    periodic with period 0 (a cycle longer than the longest looked for). An escaping run is
    diverging (chaos is bounded), a diverged run keeps the engine's regime, and α = 0 is stalled.
    """
    regime = decide(False, True, oscillates, False)     # a fixed point: the error shrinks
    regime = np.where(period >= 2, np.where(neutral & (period == 2),
                                            Regime.BOUNDED_OSCILLATION, Regime.PERIODIC), regime)
    regime = np.where(period == 0, np.where(lyapunov > _LYAPUNOV_CHAOS, Regime.CHAOTIC,
                                            Regime.PERIODIC), regime)
    regime = np.where(escapes, decide(True, False, oscillates, False), regime)
    regime = np.where(diverged, diverged_regime, regime)
    regime = np.where(stalled & ~diverged, Regime.STALLED, regime)
    return regime.astype(np.int8)


def classify(growth: ArrayLike, flips: ArrayLike, frozen: ArrayLike, max_err: ArrayLike,
             floor: ArrayLike, band: ArrayLike, settled: ArrayLike = False) -> np.ndarray:
    """Empirical regime per run from simulation statistics (numpy, any shape).

    Args:
      growth: max |e_t| over the late half of the horizon / max |e_t| over the early half; robust
        to rotating (complex-eigenvalue) dynamics where a single endpoint is not.
      flips: sign changes between resolvable observations (⟨e_{t+1}, e_ref⟩ < 0, e_ref the last
        error above ``floor``; see gdlab.engine._loop).
      frozen: whether the run left the divergence bound (and was frozen there).
      max_err: max |e_t| over the run's in-bound iterates, t = 0 … T; floor: the error below
        which rounding noise dominates; a run whose error never rose above it is at the optimum
        (:func:`quiet`).
      band: |log growth| ≤ band is "neither growing nor shrinking" (see growth_band), decided on
        the growth itself against :func:`growth_limits` (:func:`judge`).
      settled: the error sat at the floor over the end of the horizon (:func:`settled` of the
        engine's ``k_obs``): the run landed, and shrinks whatever its growth.
    """
    return judge(growth, flips, frozen, quiet(max_err, floor, frozen),
                 *growth_limits(band), settled)


def quiet(max_err: ArrayLike, floor: ArrayLike, frozen: ArrayLike, *, xp=np) -> np.ndarray:
    """Whether a run's error never rose above the noise floor: ``max_err`` = max |e_t| over its
    in-bound iterates, t = 0 … T, ≤ ``floor``, and it was not frozen. Such a run is at the
    optimum (:func:`decide`): whatever it did, it did within rounding noise. Its |e₀| alone does
    not say so: from |e₀| below the floor a step size with |r| > 1 grows the error far above it
    (float32, w* = 100, |e₀| = 1e-4 under a floor of 7.6e-4, α = 2.5: |e₆₀| = 3.8e6)."""
    return (xp.asarray(max_err, xp.float64) <= floor) & ~xp.asarray(frozen, bool)


def growth_limits(band: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(e^−band, e^band): the growth factors outside which a run shrinks or grows, computed once
    in numpy, so that :func:`judge` needs no transcendental function and decides alike on the host
    and in a compiled program. e^−band is held at the smallest positive float64, so that a growth
    of exactly 0 (log = −∞) always shrinks."""
    band = np.asarray(band, np.float64)
    with np.errstate(over="ignore", under="ignore"):
        return np.maximum(np.exp(-band), _SMALLEST), np.exp(band)


_SMALLEST = float(np.nextafter(0.0, 1.0))


def judge(growth: ArrayLike, flips: ArrayLike, frozen: ArrayLike, at_optimum: ArrayLike,
          lower: ArrayLike, upper: ArrayLike, settled: ArrayLike = False, *,
          xp=np) -> np.ndarray:
    """:func:`classify` from the growth limits (:func:`growth_limits`): grows if frozen or
    growth > upper, shrinks if growth < lower, oscillates if it flipped. A run ``settled`` at the
    optimum (its error at the noise floor over the end of the horizon: :func:`settled`) shrinks
    whatever its growth: Adam at a large α can swing wider in the late half than in the early one
    and then land on w* (40 of the 45 runs of ``configs/adam_alpha_beta.toml`` that ended near
    w* labelled diverging); a linear map's error never comes back from growing. Comparisons and a
    table lookup only, in the array namespace ``xp`` (numpy, or ``jax.numpy`` inside a compiled
    program, where ``gdlab.sweep(keep="compact")`` classifies on the device): bit for bit the
    same."""
    growth = xp.asarray(growth, xp.float64)
    settled = xp.asarray(settled, bool)
    grows = xp.asarray(frozen, bool) | ((growth > upper) & ~settled)
    shrinks = ~grows & ((growth < lower) | settled)
    return decide(grows, shrinks, xp.asarray(flips) > 0, at_optimum, xp=xp)


def settled(k_obs, steps: int):
    """Whether a run's error sat at the noise floor over the last ``max(2, T // 100)`` steps of
    the horizon: ``k_obs`` (``gdlab.engine.RunStats``), the last step whose predecessor was above
    the floor, is at most T − that many (so |e_t| ≤ floor for k_obs ≤ t < T). A stretch, not
    one step: an error swinging through w* can touch the floor once by chance."""
    return k_obs <= steps - max(2, steps // 100)


def judge_by_loss(frozen: ArrayLike, last_mean: ArrayLike, *, xp=np) -> np.ndarray:
    """The regime (int8) of runs judged by their loss ratios ρ_t = L_t/L_0.

    Sohl-Dickstein's (2024) two classes, from ``last_mean``, the mean of the last (clipped) ratios:
    ``converged`` — below 1, the loss ends below where it started (his "trainable"; it says the
    loss fell, not how far: a slow run that fell 4 % is converged); ``diverged`` — above 1, the
    loss ends above its start, or it blew up (the run was frozen). ``undecided``: exactly 1, the
    loss never changed (α = 0, or a quadratic's period-2 cycle at αλ = 2). So the regime and the
    sign of :func:`score` agree on every run not frozen: negative converged, positive diverged or
    undecided. On a quadratic ρ_t = (1 − αλ)^{2t}: converged, undecided, diverged as |1 − αλ| is
    below, at or above 1.
    """
    frozen = xp.asarray(frozen, bool)
    last_mean = xp.asarray(last_mean)
    return xp.where(frozen | (last_mean > 1), xp.int8(Regime.DIVERGED),
                    xp.where(last_mean < 1, xp.int8(Regime.CONVERGED),
                             xp.int8(Regime.UNDECIDED))).astype(xp.int8)


def score(ratio_sum: ArrayLike, inv_sum: ArrayLike, last_mean: ArrayLike, *,
          xp=np) -> np.ndarray:
    """Sohl-Dickstein's trainability score from the clipped ratios ρ_0 … ρ_{T−1}: −Σρ_t where the
    mean of the last 20 is below 1 (trained: the more negative, the slower), else Σ1/ρ_t (not
    trained: the larger, the later it blew up). The sign is the trainability boundary."""
    return xp.where(xp.asarray(last_mean) < 1, -xp.asarray(ratio_sum, xp.float64),
                    xp.asarray(inv_sum, xp.float64))
