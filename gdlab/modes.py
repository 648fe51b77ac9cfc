r"""Exact evaluation of linear optimizers on quadratics, one eigen-direction at a time.

On a quadratic with Hessian eigenvalues λ_i, ``sgd``, ``momentum`` and ``nesterov`` act on each
eigen-direction as the 2×2 map s_{t+1} = M(α, β, λ_i) s_t of ``gdlab.stability`` (state
s = (e_i, v_i), starting from (c_i, 0) with c_i = q_iᵀ(w₀ − w*)). Iterating M in float64 gives the
error e_t of every run *as theory has it* — no problem gradient, no optax — and from it the
quantities the simulation measures, with the same definitions: the first t with ‖e_t‖ < tol, the
engine's sign-flip rule (a step whose error is resolvable, above the noise floor plus 64 ulps of
the previous error, flips when it points against the last resolvable error e_ref,
⟨e_t, e_ref⟩ < 0; e_ref starts at e₀), and the growth of the largest error from the early to the
late half of the horizon.

**Rounding, propagated by the map.** One simulated step rounds numbers of magnitude |w*| and ‖e_t‖
scaled by up to 1 + 4αλ (``theory._sign_by_rounding`` bounds one gradient step's roundings by
u·((1 + 2αλ)|w*| + (1 + 4αλ)‖e_t‖), u = eps/2). Taken as independent errors uniform within that
bound (variance bound²/3), spread evenly over the d eigen-directions, they perturb each direction by
variance σ_t² = (eps·((1 + 2αλ_max)|w*| + (1 + 4αλ_max)‖e_t‖))²/(12d), which the map then carries
like the error itself:

    C_{t+1} = M C_t Mᵀ + σ_t²·e₁e₁ᵀ,   C_0 = 0,   so   C_t = Σ_k σ_k² (M^{t−1−k} e₁)(M^{t−1−k} e₁)ᵀ:

the random walk √(Σ_k ‖M^k‖²) of roundings, with the transient growth ‖M^k‖ ≫ ρ^k of a non-normal
M (momentum near a double root) that ρ^k alone misses. s_t = √(Σ_i C_t[i]_ee) is the spread of
‖e_t^sim − e_t‖, and a quantity is *rounding-sensitive* when it is decided within c·s_t
(c = ``NOISE_SIGMAS``). Such runs are reported and left out of the agreement, never counted:

* near tol: ‖e_t‖ within c·s_t of ``tol`` at a step before steps-to-tol is decided, with s_t the
  spread along e_t, √(Σ_i (e_i/‖e‖)² C_t[i]_ee) (to first order ‖e + δ‖ − ‖e‖ = ⟨e/‖e‖, δ⟩);
* flips: the rule with the floor raised by c·s_t and the sign test made stricter by c·s_t (flips
  rounding cannot remove) disagrees with the rule with the floor lowered and the sign test relaxed
  (flips rounding may create): a sign change that lands near the floor, or an error that sinks into
  rounding noise larger than the floor;
* growth: the late/early growth within twice the growth band of 1, where the simulation's
  "neither growing nor shrinking" band decides — exactly 1 too (a root on the unit circle, whose
  orbit repeats its roundings, which then add up coherently), unless α = 0 and nothing moves.
* at the floor: the floor lies between max_t ‖e_t‖ − c·s_t and max_t ‖e_t‖ + c·s_t (and e₀'s own
  rounding), so rounding decides whether the error ever rises above it — a run that never does is
  at the optimum (``gdlab.regimes.quiet``); a run started at w* whose map grows its roundings is
  one.

The step whose error passes the divergence bound is seen (the simulation computes it, then freezes
the run), for its sign only; the steps after it are not. In n-D the simulation's inner product of
that error with e_ref can overflow (a product beyond the dtype's largest number, or a component
itself beyond it, whose signs may then meet as ∞ − ∞ = NaN): such a flip is counted as possible,
not certain.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gdlab import stability
from gdlab.engine import flip_floor
from gdlab.regimes import decide

__all__ = ["ModePrediction", "evaluate", "length", "gradient_gain", "NOISE_SIGMAS"]

_MAX_ELEMENTS = 2_000_000  # runs × directions evaluated at once (bounded memory)

# c: rounding decides a quantity within c·s_t. Measured |‖e_t^sim‖ − ‖e_t‖|/s_t at the steps that
# decide steps-to-tol, over every converging run of a sixth to a half of each bundled linear
# config's grid (float32): median 0.24–0.64, 99th percentile 1.2–1.7, largest 1.5–2.5 — but 6.4 in
# the 10-D sweep at α = 1.995, where the stiffest direction's near period-2 orbit repeats its
# roundings, which then add up coherently rather than as a random walk. c = 3; the flagged
# fraction grows about linearly with c (10-D sweep: c = 2 → 2.3 %, 3 → 3.3 %, 4 → 4.6 %,
# 8 → 9.7 %).
NOISE_SIGMAS = 3.0


class ModePrediction(NamedTuple):
    regime: np.ndarray        # int8
    steps_to_tol: np.ndarray  # int32
    rho: np.ndarray           # float64, spectral radius over the directions the error has
    growth: np.ndarray        # float64, max ‖e_t‖ late half / early half
    near_tol: np.ndarray      # bool: rounding may move steps-to-tol
    flip_noise: np.ndarray    # bool: rounding may add or remove the only sign flips
    growth_band: np.ndarray   # bool: the growth is within the simulation's band of 1
    floor_noise: np.ndarray   # bool: rounding may decide whether ‖e_t‖ ever rises above the floor
    spread: np.ndarray        # float64, c·s_T: rounding's reach on ‖e_T‖ at the horizon
    underflow: np.ndarray     # bool: a gradient term is subnormal before steps-to-tol is decided

    @property
    def sensitive(self) -> np.ndarray:
        return (self.near_tol | self.flip_noise | self.growth_band | self.floor_noise
                | self.underflow)


def evaluate(optimizer: str, alpha: np.ndarray, beta: np.ndarray, lam: np.ndarray, c: np.ndarray,
             *, steps: int, tol: float, floor: np.ndarray, band: np.ndarray, eps: float,
             tiny: float, w_star_abs: np.ndarray, bound: float) -> ModePrediction:
    """Predicted statistics for runs with flat inputs.

    Args:
      alpha, beta: (N,) hyperparameters; lam, c: (N, d) eigenvalues and initial components;
      floor, band, w_star_abs: (N,) noise floor, log-growth band and |w*| of the simulation;
      eps, tiny, bound: its machine epsilon, smallest normal number and divergence bound (a run
      is frozen from the step its error would pass the bound; that step's sign is seen, nothing
      after it).
    """
    n, d = np.shape(lam)
    chunk = max(1, _MAX_ELEMENTS // max(d, 1))
    parts = [_evaluate(optimizer, alpha[s:s + chunk], beta[s:s + chunk], lam[s:s + chunk],
                       c[s:s + chunk], steps, tol, floor[s:s + chunk], band[s:s + chunk], eps,
                       tiny, w_star_abs[s:s + chunk], bound) for s in range(0, n, chunk)]
    return ModePrediction(*(np.concatenate(x) for x in zip(*parts)))


def _norm(e: np.ndarray) -> np.ndarray:
    """‖e‖ per run of an (n, d) array of eigen-components."""
    return np.sqrt(np.einsum("ij,ij->i", e, e))


class _Flips:
    """The engine's sign-flip rule for one floor: e_ref ← e₀; at each step a resolvable error
    (‖e‖ > floor) flips iff ⟨e, e_ref⟩ < −sense·reach, and becomes e_ref if ⟨e, e_ref⟩ ≠ 0.

    ``sense`` = 1 counts only flips whose sign rounding cannot change, −1 also those it could
    create, 0 is the exact rule. With e off by at most s (this step's reach) and e_ref by s_ref (the
    reach when it was observed), ⟨e, e_ref⟩ moves by at most
    reach = s·‖e_ref‖ + s_ref·‖e‖ + s·s_ref — not s·(‖e‖ + ‖e_ref‖): a run whose error grows
    ‖e‖/‖e_ref‖ > 1/(c·eps)-fold in one step (αλ = 10¹⁶) is no closer to rounding's sign for it.
    """

    def __init__(self, e0: np.ndarray, reach0: np.ndarray, sense: float) -> None:
        self.ref, self.norm_ref, self.reach_ref = e0.copy(), _norm(e0), reach0
        self.sense = sense
        self.seen = np.zeros(len(e0), bool)

    def step(self, e: np.ndarray, norm: np.ndarray, floor: np.ndarray, reach: np.ndarray,
             overflow: tuple | None = None) -> None:
        """One observation: ``floor`` the floor it must clear, ``reach`` its own rounding's.

        ``overflow`` = (bound, d, unscaled bound), the divergence bound √max in the lengths'
        units: the simulation's ⟨e, e_ref⟩ may be inf or NaN where a product of entries can pass
        max (‖e‖·‖e_ref‖ > max/d) or an entry of e can (‖e‖ > max); ``sense`` = 1 then counts no
        flip. Written as ratios to the bound, which cannot overflow float64."""
        dot = np.einsum("ij,ij->i", e, self.ref)
        resolvable = norm > floor
        if overflow is not None and self.sense > 0:
            bound, d, unscaled = overflow
            resolvable &= ((norm / bound) * (self.norm_ref / bound) <= 1.0 / d) & (
                (norm / bound) / unscaled <= 1.0)
        if self.sense:
            moved = reach * self.norm_ref + self.reach_ref * norm + reach * self.reach_ref
            self.seen |= resolvable & (dot < -self.sense * moved)
        else:
            self.seen |= resolvable & (dot < 0)
        new_ref = resolvable & (dot != 0)
        self.ref = np.where(new_ref[:, None], e, self.ref)
        self.norm_ref = np.where(new_ref, norm, self.norm_ref)
        self.reach_ref = np.where(new_ref, reach, self.reach_ref)


def _along(e: np.ndarray, norm: np.ndarray, c_ee: np.ndarray) -> np.ndarray:
    """The spread of ‖e + δ‖ − ‖e‖ ≈ ⟨e/‖e‖, δ⟩: √(Σ_i (e_i/‖e‖)² C_i) (the whole ‖δ‖ at e = 0)."""
    if e.shape[1] == 1:
        return np.sqrt(c_ee[:, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(norm[:, None] > 0, (e / norm[:, None]) ** 2, 1.0)
    return np.sqrt(np.einsum("ij,ij->i", w, c_ee))


class _Map:
    """s ← M s for the (e, v) state and C ← M C Mᵀ + q·e₁e₁ᵀ for its rounding's covariance
    (C_ee, C_ev, C_vv), with M's products computed once. Without momentum (M₀₁ = 0) the e-row
    alone is closed: e ← M₀₀ e, C_ee ← M₀₀² C_ee + q."""

    def __init__(self, M: np.ndarray) -> None:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        self.a, self.b, self.c, self.d = a, b, c, d
        self.coupled = bool(np.any(b != 0))
        with np.errstate(over="ignore", invalid="ignore"):  # |α| near float max: ∞, a run frozen
            self.k_ee = (a * a, 2 * a * b, b * b)         # at its first step
            self.k_ev = (a * c, a * d + b * c, b * d)
            self.k_vv = (c * c, 2 * c * d, d * d)

    def state(self, e: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.coupled:
            return self.a * e, v
        return self.a * e + self.b * v, self.c * e + self.d * v

    def spread(self, cov: tuple, q: np.ndarray) -> tuple:
        ee, ev, vv = cov
        if not self.coupled:
            return self.k_ee[0] * ee + q, ev, vv
        new = tuple(k0 * ee + k1 * ev + k2 * vv for k0, k1, k2 in (self.k_ee, self.k_ev,
                                                                    self.k_vv))
        return new[0] + q, new[1], new[2]


def _step_variance(eps: float, w_star_abs: np.ndarray, norm: np.ndarray, alpha_lam: np.ndarray,
                   d: int) -> np.ndarray:
    """Variance of one step's rounding along each of d directions (see the module docstring)."""
    return (eps * ((1 + 2 * alpha_lam) * w_star_abs + (1 + 4 * alpha_lam) * norm)) ** 2 / (12 * d)


def _power_of_two(x: np.ndarray) -> np.ndarray:
    """2^k with 2^(k−1) ≤ x < 2^k (1 for x = 0; at most 2¹⁰²³): a unit to divide lengths by
    without rounding."""
    return np.ldexp(1.0, np.minimum(np.frexp(x)[1], 1023))


def length(v: np.ndarray) -> np.ndarray:
    """‖v‖ of each row of an (n, d) array, its squares taken in units of a power of two near the
    row's largest entry (an exact scaling): |w*| = 7e-217 would square to 0 in float64, and with
    it the rounding this model scales by |w*|."""
    unit = _power_of_two(np.abs(v).max(axis=1))
    return unit * np.sqrt(np.sum((v / unit[:, None]) ** 2, axis=1))


def gradient_gain(alpha: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The smallest factor between an error component e_i and a number the step computes from it:
    min(√λ_i, λ_i, |α|λ_i) — a residual √λ·e, the gradient λe, the update αλe (|α|λ_i left out at
    α = 0, where nothing moves). ∞ where λ_i = 0: its gradient is exactly 0, not rounded there.

    Below the smallest normal number a CPU flushes such a product to 0 and the run stops moving
    (float32, x = 3e-20, y = 3e-19, α = 3e38: r = 0.73, yet λ·|e₀| = 9e-39 is flushed and the run
    stalls at w₀), while a GPU keeps it as a subnormal."""
    lam = np.asarray(lam, np.float64)
    a = np.abs(np.asarray(alpha, np.float64))
    with np.errstate(invalid="ignore"):
        gain = np.minimum(np.minimum(np.sqrt(np.abs(lam)), np.abs(lam)),
                          np.where(a != 0, a * np.abs(lam), np.inf))
    return np.where(lam != 0, gain, np.inf)


def _evaluate(optimizer, alpha, beta, lam, c, steps, tol, floor, band, eps, tiny, w_star_abs,
              bound):
    # Lengths in units of a power of two near max(|w*|, max_i |c_i|, floor) per run, so that no
    # square underflows (float64, w* = 9e-150: a step's rounding variance (eps·|w*|)² = 4e-330
    # would be 0) and, the scaling being exact, nothing else changes; every test below is
    # homogeneous in lengths, and only the spread, a length, is scaled back.
    unit = _power_of_two(np.maximum(np.maximum(w_star_abs, np.abs(c).max(axis=1)), floor))
    c, tol, floor = c / unit[:, None], tol / unit, floor / unit
    w_star_abs, bound = w_star_abs / unit, bound / unit
    M = stability.iteration_matrix(optimizer, alpha[:, None], lam, beta[:, None])  # (n, d, 2, 2)
    rho_modes = stability.spectral_radius(optimizer, alpha[:, None], lam, beta[:, None])
    rho = np.where(c != 0, rho_modes, 0.0).max(axis=1)
    d = lam.shape[1]
    alpha_lam = np.abs(alpha * lam.max(axis=1))

    step = _Map(M)
    e, v = c.astype(np.float64), np.zeros_like(c, dtype=np.float64)
    cov = (np.zeros(e.shape), np.zeros(e.shape), np.zeros(e.shape))
    norm0 = _norm(e)
    half = steps // 2
    early, late = norm0.copy(), np.zeros_like(norm0)
    first = np.where(norm0 < tol, 0, -1)
    norm, live = norm0, np.ones(len(e), bool)
    # Where the simulation's ⟨e, e_ref⟩ can overflow (_Flips.step), with max = bound² (unscaled).
    overflow = (bound, d, bound * unit) if d > 1 else None
    norm_prev = norm0
    near_tol = np.zeros(len(e), bool)
    gain, underflow = gradient_gain(alpha[:, None], lam), np.zeros(len(e), bool)
    # max_t ‖e_t‖ as rounding may leave it: ± e₀'s rounding, then ± c·s_t (nothing moves at α = 0)
    a0 = 4.0 * eps * (w_star_abs + norm0)
    exact, certain, possible = _Flips(e, a0, 0.0), _Flips(e, a0, 1.0), _Flips(e, a0, -1.0)
    top_lo, top_hi = norm0 - a0, norm0 + a0
    moving = alpha_lam != 0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            # A component above the floor whose gradient terms are subnormal, at a step that
            # decides steps-to-tol (lengths scaled back by unit).
            small = (np.abs(e) > floor[:, None]) & (gain * np.abs(e) * unit[:, None] < 2 * tiny)
            underflow |= (first < 0) & live & small.any(axis=1)
            cov = step.spread(cov, _step_variance(eps, w_star_abs, norm, alpha_lam, d)[:, None])
            e, v = step.state(e, v)
            norm = _norm(e)
            seen = live              # computed: the step that freezes the run is seen too
            live = live & (norm <= bound)  # False for inf and NaN: the simulation froze
            slack = NOISE_SIGMAS * np.sqrt(np.sum(cov[0], axis=1))
            reach = np.where(moving, slack, 0.0)
            top_lo = np.maximum(top_lo, np.where(live, norm - reach, np.inf))
            top_hi = np.maximum(top_hi, np.where(live, norm + reach, np.inf))
            floor_t = np.where(seen, flip_floor(floor, eps, norm_prev), np.inf)  # the engine's
            exact.step(e, norm, floor_t, slack)
            certain.step(e, norm, floor_t + slack, slack, overflow)
            possible.step(e, norm, floor_t - slack, slack)
            norm_prev = norm
            grown = np.where(np.isfinite(norm), norm, np.inf)
            if t + 1 > half:
                late = np.maximum(late, grown)
            else:
                early = np.maximum(early, grown)
            # Within rounding of tol at a step that decides steps-to-tol.
            undecided = (first < 0) & live
            near_tol |= undecided & (np.abs(norm - tol) <= NOISE_SIGMAS * _along(e, norm, cov[0]))
            first = np.where(undecided & (norm < tol), t + 1, first)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_g = np.log(late / early)
    log_g = np.where(np.isnan(log_g), np.inf, log_g)
    at_optimum = np.maximum(early, late) <= floor   # never above the floor: regimes.quiet
    regime = decide(log_g > 0, log_g < 0, exact.seen, at_optimum)
    moves = ~at_optimum
    return (regime, first.astype(np.int32), rho, np.exp(log_g), near_tol & moves,
            (certain.seen != possible.seen) & moves,
            (np.abs(log_g) <= 2 * band) & ((log_g != 0) | moving) & moves,
            (top_lo <= floor) & (floor < top_hi), slack * unit, underflow & moves)
