"""Runs judged by their loss (a problem without a known optimum) against closed forms.

The reference is Sohl-Dickstein's (2024) judgment, written here in plain NumPy: the ratios
v_t = L_t/L_0 for t = 0 … T−1 (the losses *before* each update), clipped at 10⁶; converged iff
mean(v[-20:]) < 1, diverged iff it is > 1 (his two classes; exactly 1, a loss that never changed,
is undecided); score = −Σv if converged, else Σ1/v. gdlab adds the freeze: the first t ≤ T with
ρ_t = L_t/L_0 beyond √(largest float64) or a non-finite loss/iterate stops the run at w_{t−1}
(its remaining v_t count 10⁶), diverged.

On L(w) = c·w² from w0 = 1, gradient descent is w_{t+1} = w_t − α·2c·w_t = r·w_t with
r = 1 − 2cα, so w_t = r^t and ρ_t = r^(2t) exactly; every expected value below comes from that.

Tolerances. One step computes w − α·(2cw): a few roundings of size ε|w|(1 + |2cα|), which is
ε|w|(1 + |1−r|), i.e. ≤ 4ε(1 + |1−r|)/|r| relative to |w_{t+1}| = |r||w|. Over T steps w_T is
good to T times that and ρ_t = c·w_t²/L_0 to twice that; a sum of ≤ T such positive terms keeps
the worst relative error. :func:`rtol` is that bound (×2 for slack): ≤ 10⁻¹² for |r| ≥ 0.5 at
T = 80, larger only where r is near 0 (a cancellation in 1 − 2cα).
ATOL = 10⁻³⁰⁰ absorbs ratios that underflow to subnormals.

Discrete answers (the regime, the freeze step, steps_to_tol) are compared exactly, on step sizes
whose ratios are further (relative) than max(10⁻⁹, 10× the rounding bound) from every threshold
they are compared with: 10⁶, tol, and (the window mean) 1. :func:`near_threshold` finds the
others; the grids are chosen so that there are none, and the tests assert it.
"""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdlab
from gdlab.errors import ArgumentError
from gdlab.regimes import Regime

CLIP = 1e6       # Sohl-Dickstein's clip of the ratios (the reference's own constant)
BLOWUP = float(np.sqrt(np.finfo(np.float64).max))   # where gdlab freezes a run (its bound)
WINDOW = 20      # "the mean of the last 20 ratios"
TOL = 0.5        # steps_to_tol: the first t ≤ T with ρ_t < TOL
MARGIN = 1e-9    # relative distance from a threshold below which a discrete answer is not tested
ATOL = 1e-300
EPS = float(np.finfo(np.float64).eps)
STEPS = 80
FIELDS = ("regime", "steps_to_tol", "score", "diverged_at", "loss_ratio", "min_loss_ratio",
          "w_final")


def sq(w, c):
    """L(w) = c·w², ∇L = 2cw."""
    return c * w * w


# ---------------------------------------------------------------------------------------------
# The reference, in plain NumPy


def judge(rho: np.ndarray, steps: int, tol: float) -> dict:
    """Sohl-Dickstein's judgment (plus gdlab's freeze) of the ratios ρ_0 … ρ_T (rows: runs)."""
    rho = np.asarray(rho, np.float64)
    n = rho.shape[0]
    t = np.arange(steps + 1)
    with np.errstate(invalid="ignore"):
        out = ~np.isfinite(rho) | (rho > BLOWUP)           # out of bound: the run freezes
    frozen = out.any(axis=1)
    t_freeze = np.where(frozen, out.argmax(axis=1), -1)
    inbound = t[None, :] < np.where(frozen, t_freeze, steps + 1)[:, None]
    with np.errstate(invalid="ignore"):
        below = inbound & (rho < tol)
    steps_to_tol = np.where(below.any(axis=1), below.argmax(axis=1), -1)
    # The clipped v_t, t < T: a frozen run's remaining steps count 10⁶ (for a loss that grows
    # monotonically past 10⁶ that is exactly min(ρ_t, 10⁶), checked by the quadratic test).
    v = np.where(inbound[:, :steps], np.minimum(rho[:, :steps], CLIP), CLIP)
    last_mean = v[:, -WINDOW:].mean(axis=1)
    converged = ~frozen & (last_mean < 1)
    diverged = frozen | (last_mean > 1)
    with np.errstate(divide="ignore", over="ignore"):   # 1/ρ of a ρ that underflowed
        score = np.where(last_mean < 1, -v.sum(axis=1), (1 / v).sum(axis=1))
    t_end = np.where(frozen, t_freeze - 1, steps)            # the iterate the run ends at
    return {
        "regime": np.where(diverged, Regime.DIVERGED,
                           np.where(converged, Regime.CONVERGED, Regime.UNDECIDED)),
        "diverged_at": t_freeze, "steps_to_tol": steps_to_tol, "score": score,
        "loss_ratio": rho[np.arange(n), t_end],
        "min_loss_ratio": np.where(inbound, rho, np.inf).min(axis=1),
        "t_end": t_end, "last_mean": last_mean, "v": v, "frozen": frozen,
    }


def near_threshold(rho: np.ndarray, last_mean: np.ndarray, tol: float,
                   rel: np.ndarray) -> np.ndarray:
    """Runs where a rounding could decide a discrete answer: some ρ_t within max(MARGIN, 10·rel)
    (relative; ``rel`` per run, from :func:`rtol`) of 10⁶ or of tol, or the window mean that close
    to 1 (but not exactly 1: r = ±1 is exact in floats)."""
    margin = np.maximum(MARGIN, 10 * np.asarray(rel))

    def near(x, a):
        m = margin if x.ndim == 1 else margin[:, None]
        with np.errstate(invalid="ignore"):
            return (x != a) & (np.abs(x - a) < m * a)
    return (near(rho, BLOWUP).any(axis=1) | near(rho, CLIP).any(axis=1)
            | near(rho, tol).any(axis=1) | near(last_mean, 1.0))


def rtol(r: np.ndarray, steps: int) -> np.ndarray:
    """Relative accuracy of ρ_t, t ≤ T, and of sums of them (see the module docstring)."""
    per_step = 4 * EPS * (1 + np.abs(1 - r)) / np.maximum(np.abs(r), 1e-3)
    return 2 * 2 * (steps + 1) * per_step          # ρ doubles w's error; ×2 for slack


def assert_close(got, want, rel, what):
    """|got − want| ≤ rel·|want| + ATOL elementwise (rel broadcasts: one per run, say)."""
    got, want, rel = (np.ravel(a) for a in np.broadcast_arrays(
        np.asarray(got, np.float64), np.asarray(want, np.float64), rel))
    both_inf = np.isinf(got) & np.isinf(want) & (np.sign(got) == np.sign(want))
    with np.errstate(invalid="ignore"):
        ok = both_inf | (np.abs(got - want) <= rel * np.abs(want) + ATOL)
    bad = np.flatnonzero(~ok)
    assert bad.size == 0, (f"{what}: {bad.size} values differ, first at {bad[:5]}: "
                           f"got {got[bad[:5]]}, want {want[bad[:5]]}")


def quadratic_alphas(c: float, steps: int) -> np.ndarray:
    """200 step sizes: 192 spread over r = 1 − 2cα ∈ [−1.4, 1.4], and 8 chosen ones.

    Chosen: r = 1 (α = 0), 0 (w_1 = 0 exactly), −1 (the exact period-2 cycle), ±r with
    ρ_{T−1} > TOL > ρ_T (steps_to_tol = T), ±r with ρ_{T−1} < 10⁶ < ρ_T (frozen at t = T by the
    final check), and r with the window mean in [TOL, 1) (converged, though above TOL).
    """
    mid = (1 / (steps - 1) + 1 / steps) / 2
    r_tol, r_blow = np.sqrt(TOL ** mid), np.sqrt(BLOWUP ** mid)
    # ρ_t = q^t, t = T−20 … T−1, with mean 0.75: q solved by bisection in plain float64.
    lo, hi = 0.5, 1.0
    window = np.arange(max(0, steps - WINDOW), steps)
    for _ in range(200):
        q = (lo + hi) / 2
        lo, hi = (q, hi) if np.mean(q ** window) < 0.75 else (lo, q)
    special = [1.0, 0.0, -1.0, r_tol, -r_tol, r_blow, -r_blow, np.sqrt(q)]
    return np.concatenate([np.linspace(-0.2, 1.2, 192) / c, (1 - np.array(special)) / (2 * c)])


@functools.cache
def quadratic(c: float, steps: int, tol: float = TOL, **options):
    """The sweep of L = c·w² from w0 = 1 over :func:`quadratic_alphas`, and its reference."""
    alphas = quadratic_alphas(c, steps)
    res = gdlab.sweep(gdlab.problems.custom(sq, c=c), alphas, w0=1.0, steps=steps, tol=tol,
                      dtype="float64", **options)
    r = 1 - 2 * c * res.alpha                   # the α as simulated
    rho = (r * r)[:, None] ** np.arange(steps + 1)[None, :]
    ref = judge(rho, steps, tol)
    ref["r"], ref["rho"] = r, rho
    ref["w_final"] = r ** ref["t_end"]
    ref["near"] = near_threshold(rho, ref["last_mean"], tol, rtol(r, steps))
    # Sohl-Dickstein clip the ratios themselves; here ρ grows monotonically once |r| > 1, so that
    # is exactly "the frozen steps count 10⁶".
    np.testing.assert_array_equal(ref["v"], np.minimum(rho[:, :steps], CLIP))
    return res, ref


def band(ref: dict, tol: float) -> np.ndarray:
    """Runs whose window mean lies between tol and 1 (either order), not frozen: where "mean < 1"
    and "mean < tol" disagree."""
    m = ref["last_mean"]
    return ~ref["frozen"] & (np.minimum(tol, 1) <= m) & (m < np.maximum(tol, 1))


CASES = [(2.0, STEPS), (0.5, STEPS), (2.0, 7)]   # T = 7 < 20: the window is the whole run


# ---------------------------------------------------------------------------------------------
# L = c·w²: every statistic against the closed form


@pytest.mark.parametrize("c,steps", CASES)
def test_grid_has_no_step_size_decided_by_rounding(c, steps):
    res, ref = quadratic(c, steps)
    assert res.alpha.shape == (200,)
    assert not ref["near"].any(), res.alpha[ref["near"]]
    # The grid covers every outcome: converged, undecided (α = 0, r = −1) and diverged (growing
    # within the bound, frozen inside the horizon and by the final check at T).
    regimes = set(ref["regime"].tolist())
    assert regimes == {Regime.CONVERGED, Regime.DIVERGED, Regime.UNDECIDED}
    assert steps in ref["diverged_at"] and steps in ref["steps_to_tol"]


@pytest.mark.parametrize("c,steps", CASES)
def test_regime(c, steps):
    res, ref = quadratic(c, steps)
    # Runs whose window mean lies in [TOL, 1) are the subject of the test below (3 of the 200 at
    # T = 80, the chosen ones; 21 at T = 7, whose window holds ρ_0 = 1); the others:
    keep = ~band(ref, TOL)
    assert not keep[192 + np.array([3, 4, 7])].any()   # steps_to_tol = T (±r), mean 0.75
    np.testing.assert_array_equal(res.regime[keep], ref["regime"][keep])
    # By hand: α = 0 never moves, r = −1 cycles at constant loss (mean exactly 1): undecided.
    at = lambda a: int(np.flatnonzero(res.alpha == a)[0])
    assert res.regime[at(0.0)] == res.regime[at(1 / c)] == Regime.UNDECIDED
    assert res.regime[at(1 / (2 * c))] == Regime.CONVERGED


@pytest.mark.parametrize("tol", [TOL, 2.0])
def test_converged_means_window_mean_below_one_whatever_tol(tol):
    """Sohl-Dickstein: converged iff mean(v[-20:]) < 1 — the criterion the score's sign uses too.
    ``tol`` sets steps_to_tol; it must not move the regime (tol = 2: α = 0 never moves, yet a
    window mean of 1 < 2 would call it converged)."""
    res, ref = quadratic(2.0, STEPS, tol)
    disagree = band(ref, tol)
    assert disagree.sum() >= 3           # the grid does hold such runs
    np.testing.assert_array_equal(res.regime, ref["regime"])
    # The regime and the sign of the score tell the same story on every run that did not blow up.
    live = res.diverged_at < 0
    np.testing.assert_array_equal(res.regime[live] == Regime.CONVERGED, res.score[live] < 0)


def shifted(w, k, w_star):
    """q(w) = ½k(w − w*)²: no optimum given, so judged by its loss."""
    return 0.5 * k * (w - w_star) ** 2


def test_growing_loss_is_diverged_and_the_score_sign_is_the_regime():
    """q(w) = ½(w − 3)² from w0 = 0 for 50 steps: GD's error is (1 − α)^t·(−3), so
    ρ_t = (1 − α)^{2t} exactly. A loss that grows (|1 − α| > 1: α = 2.5 gives ρ_50 = 1.5¹⁰⁰ =
    4.07·10¹⁷, α = 2.1 gives 1.1¹⁰⁰ = 1.38·10⁴, both far inside the float64 bound, never frozen)
    is diverged, with a positive score; a loss that falls (|1 − α| < 1) is converged, with a
    negative one; α = 2 (ρ_t = 1 exactly, the period-2 cycle) and α = 0 are undecided."""
    alphas = np.array([0.0, 1e-3, 0.5, 1.0, 1.5, 1.999, 2.0, 2.001, 2.1, 2.5])
    res = gdlab.sweep(gdlab.problems.custom(shifted, k=1.0, w_star=3.0), alphas, w0=0.0,
                      steps=50, dtype="float64")
    r = np.abs(1 - res.alpha)
    want = np.where(r > 1, Regime.DIVERGED, np.where(r < 1, Regime.CONVERGED, Regime.UNDECIDED))
    np.testing.assert_array_equal(res.regime, want)
    assert (res.diverged_at == -1).all()
    np.testing.assert_allclose(res.loss_ratio, r ** 100, rtol=1e-12)
    np.testing.assert_allclose(res.loss_ratio[-2:], [1.1 ** 100, 1.5 ** 100], rtol=1e-12)
    # the sign of the score is the regime: negative converged, positive diverged (and undecided)
    np.testing.assert_array_equal(np.sign(res.score), np.where(r < 1, -1.0, 1.0))
    # the score itself, Σ_{t<50} 1/min(ρ_t, 10⁶) for the growing runs: 1/(1 − 1.5⁻²)·(1 − …)
    v = np.minimum(r[-2:, None] ** (2 * np.arange(50)), CLIP)
    np.testing.assert_allclose(res.score[-2:], (1 / v).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("c,steps", CASES)
def test_diverged_at_and_steps_to_tol(c, steps):
    res, ref = quadratic(c, steps)
    np.testing.assert_array_equal(res.diverged_at, ref["diverged_at"])
    np.testing.assert_array_equal(res.steps_to_tol, ref["steps_to_tol"])
    # By hand for c = 2 (r = 1 − 4α): α = −0.1 (the grid's first) → ρ_t = 1.96^t grows past the
    # score's clip 10⁶ at t = 21 but stays far below the bound (1.96⁸⁰ = 2.4·10²³): not frozen,
    # yet diverged (the last 20 ratios average 10⁶ > 1); α = 1/4 → ρ_1 = 0 < 0.5.
    if c == 2.0 and steps == STEPS:
        assert res.alpha[0] == -0.1 and res.diverged_at[0] == -1 and res.steps_to_tol[0] == -1
        assert res.regime[0] == Regime.DIVERGED
        assert res.steps_to_tol[np.flatnonzero(res.alpha == 0.25)[0]] == 1


@pytest.mark.parametrize("c,steps", CASES)
def test_score(c, steps):
    res, ref = quadratic(c, steps)
    assert_close(res.score, ref["score"], rtol(ref["r"], steps), "score")
    # By hand: α = 0 (ρ ≡ 1, not converged) scores Σ1/1 = T; r = 0 (ρ = 1, 0, 0, …) scores −1.
    at = lambda a: int(np.flatnonzero(res.alpha == a)[0])
    assert res.score[at(0.0)] == steps and res.score[at(1 / (2 * c))] == -1.0


@pytest.mark.parametrize("c,steps", CASES)
def test_loss_ratios_and_final_iterate(c, steps):
    res, ref = quadratic(c, steps)
    rel = rtol(ref["r"], steps)
    assert_close(res.loss_ratio, ref["loss_ratio"], rel, "loss_ratio")
    assert_close(res.min_loss_ratio, ref["min_loss_ratio"], rel, "min_loss_ratio")
    # w_final = r^T, or r^(t−1) for a run frozen at t: always finite, always in bound.
    assert_close(res.w_final, ref["w_final"], rel, "w_final")
    assert np.isfinite(res.w_final).all()
    assert (c * res.w_final ** 2 <= BLOWUP * c).all()


def test_compact_keeps_regime_steps_and_score():
    full, _ = quadratic(2.0, STEPS)
    compact, _ = quadratic(2.0, STEPS, keep="compact")
    for f in ("regime", "steps_to_tol", "score"):
        np.testing.assert_array_equal(getattr(compact, f), getattr(full, f), err_msg=f)
    assert compact.loss_ratio is None and compact.w_final is None


@pytest.mark.parametrize("options", [{"chunk_size": 50}, {"block": 16}])
def test_chunks_and_blocks_change_nothing(options):
    one, _ = quadratic(2.0, STEPS)
    other, _ = quadratic(2.0, STEPS, **options)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(other, f), getattr(one, f), err_msg=f)


DEVICES_SCRIPT = """
import sys, numpy as np, jax, gdlab
assert jax.device_count() >= 2, jax.devices()
def sq(w, c):
    return c * w * w
res = gdlab.sweep(gdlab.problems.custom(sq, c=2.0), np.load(sys.argv[1]), w0=1.0, steps=80,
                  tol=0.5, dtype="float64", devices=2, chunk_size=96)
np.savez(sys.argv[2], **{f: getattr(res, f) for f in sys.argv[3].split(",")})
"""


def test_two_devices_change_nothing(tmp_path):
    one, _ = quadratic(2.0, STEPS)
    if jax.device_count() >= 2:
        two = gdlab.sweep(gdlab.problems.custom(sq, c=2.0), one.alpha, w0=1.0, steps=STEPS,
                          tol=TOL, dtype="float64", devices=2, chunk_size=96)
        got = {f: getattr(two, f) for f in FIELDS}
    else:   # JAX fixes its device count at start-up: two CPU devices in a process of their own
        np.save(tmp_path / "alphas.npy", one.alpha)
        env = dict(os.environ, JAX_NUM_CPU_DEVICES="2", JAX_PLATFORMS="cpu")
        p = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT, str(tmp_path / "alphas.npy"),
                            str(tmp_path / "two.npz"), ",".join(FIELDS)],
                           env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        got = dict(np.load(tmp_path / "two.npz"))
    for f in FIELDS:
        np.testing.assert_array_equal(got[f], getattr(one, f), err_msg=f)


def test_new_alphas_and_parameter_values_compile_nothing():
    quadratic(2.0, STEPS)
    before = gdlab.engine.compile_count()
    for c, shift in [(2.0, 1e-3), (3.0, 0.0)]:
        gdlab.sweep(gdlab.problems.custom(sq, c=c), quadratic_alphas(2.0, STEPS) + shift, w0=1.0,
                    steps=STEPS, tol=TOL, dtype="float64")
    assert gdlab.engine.compile_count() == before


# ---------------------------------------------------------------------------------------------
# Snapshots: w_t = r^t, held at w_{t−1} once frozen

SNAP_STEPS, SNAP_EVERY = 30, 7      # snapshots at 0, 7, 14, 21, 28 and 30
# r = 1 − 4α: 1, 0.8, 0.2, 0, −0.6, −1, 1.1, −1.2 stay in bound; r = ±5000 (ρ_t = 2.5·10⁷^t,
# beyond the bound B = 1.34·10¹⁵⁴ first at t = 21: ρ_20 = 9.1·10¹⁴⁷) freeze at t = 21, and
# r = B^(1/59)…, with ρ_29 < B < ρ_30, by the final check at t = 30.
SNAP_ALPHAS = np.array([0.0, 0.05, 0.2, 0.25, 0.4, 0.5, -0.025, 0.55, (1 - 5000) / 4,
                        (1 + 5000) / 4, (1 - np.sqrt(BLOWUP ** ((1 / 29 + 1 / 30) / 2))) / 4])


@functools.cache
def snapshots():
    res = gdlab.sweep(gdlab.problems.custom(sq, c=2.0), SNAP_ALPHAS, w0=1.0, steps=SNAP_STEPS,
                      tol=TOL, dtype="float64", record_every=SNAP_EVERY)
    r = 1 - 4 * res.alpha
    ref = judge((r * r)[:, None] ** np.arange(SNAP_STEPS + 1)[None, :], SNAP_STEPS, TOL)
    np.testing.assert_array_equal(ref["diverged_at"], [-1] * 8 + [21, 21, 30])
    s = np.arange(0, SNAP_STEPS + 1, SNAP_EVERY).tolist() + [SNAP_STEPS]
    held = np.minimum(np.array(s)[None, :], ref["t_end"][:, None])   # a frozen run stays put
    return res, r, ref["frozen"], r[:, None] ** held


def test_snapshots_of_runs_in_bound():
    res, r, frozen, want = snapshots()
    np.testing.assert_array_equal(res.snapshot_steps, [0, 7, 14, 21, 28, 30])
    np.testing.assert_array_equal(res.diverged_at, [-1] * 8 + [21, 21, 30])
    rel = rtol(r, SNAP_STEPS)[:, None]
    assert_close(res.trajectory[~frozen], want[~frozen], rel[~frozen], "trajectory")
    np.testing.assert_array_equal(res.trajectory[~frozen, -1], res.w_final[~frozen])
    assert_close(res.w_final, want[:, -1], rel[:, 0], "w_final")


def test_snapshots_of_frozen_runs_hold_the_frozen_iterate():
    """A run frozen at t = 21 stays at w_20: its snapshots at 21, 28 and 30 show w_20 = ±5000²⁰, as
    w_final does — not the out-of-bound w_21 = ±5000²¹ that the freeze rejected; a run frozen by
    the final check at T = 30 ends at w_29, in w_final and in the last snapshot alike."""
    res, r, frozen, want = snapshots()
    assert_close(res.trajectory[frozen], want[frozen], rtol(r[frozen], SNAP_STEPS)[:, None],
                 "trajectory")
    np.testing.assert_array_equal(res.trajectory[:, -1], res.w_final)


def test_a_non_finite_iterate_never_reaches_the_results():
    """L = √|w| from w0 = 1 with α = 2: w_1 = 1 − 2·½ = 0 exactly (ρ_1 = 0), where ∇L is not
    finite, so w_2 is not: frozen at t = 2, held at w_1 = 0 in w_final and every snapshot."""
    res = gdlab.sweep(gdlab.problems.custom(lambda w: jnp.sqrt(jnp.abs(w))), [2.0], w0=1.0,
                      steps=4, tol=TOL, dtype="float64", record_every=1)
    assert res.diverged_at.tolist() == [2] and res.regime.tolist() == [Regime.DIVERGED]
    assert res.steps_to_tol.tolist() == [1] and res.w_final.tolist() == [0.0]
    assert res.loss_ratio.tolist() == [0.0] and res.min_loss_ratio.tolist() == [0.0]
    np.testing.assert_array_equal(res.trajectory, [[1.0, 0.0, 0.0, 0.0, 0.0]])


# ---------------------------------------------------------------------------------------------
# A non-finite loss freezes the run


NONFINITE_ALPHAS = np.array([-0.1, 1.1, -0.2, 1.2, 0.3, 0.0, 0.45])


@pytest.mark.parametrize("value", [np.inf, np.nan, -np.inf], ids=["inf", "nan", "-inf"])
def test_non_finite_loss_freezes_at_the_first_step_beyond(value):
    """L = w² for |w| ≤ 10, ``value`` beyond; w_t = r^t, r = 1 − 2α. r = ±1.2: |w_t| > 10 first at
    t = 13 (1.2¹² = 8.9, 1.2¹³ = 10.7); r = ±1.4 at t = 7 (1.4⁶ = 7.5, 1.4⁷ = 10.5). The ratio
    never exceeds 100 < 10⁶: only the non-finite loss can freeze these runs."""
    steps = 30
    loss = lambda w: jnp.where(jnp.abs(w) > 10, value, w * w)
    res = gdlab.sweep(gdlab.problems.custom(loss), NONFINITE_ALPHAS, w0=1.0, steps=steps,
                      tol=TOL, dtype="float64")
    r = 1 - 2 * res.alpha
    w = r[:, None] ** np.arange(steps + 1)[None, :]
    rho = np.where(np.abs(w) > 10, value, w * w)
    ref = judge(rho, steps, TOL)
    np.testing.assert_array_equal(ref["diverged_at"], [13, 13, 7, 7, -1, -1, -1])
    np.testing.assert_array_equal(res.diverged_at, ref["diverged_at"])
    np.testing.assert_array_equal(res.regime, ref["regime"])
    np.testing.assert_array_equal(res.steps_to_tol, ref["steps_to_tol"])
    rel = rtol(r, steps)
    assert_close(res.score, ref["score"], rel, "score")
    assert_close(res.loss_ratio, ref["loss_ratio"], rel, "loss_ratio")
    assert_close(res.min_loss_ratio, ref["min_loss_ratio"], rel, "min_loss_ratio")
    assert np.isfinite(res.w_final).all()
    assert_close(res.w_final, r ** ref["t_end"], rel, "w_final")   # w_{t−1}: 1.2¹², 1.4⁶ …


# ---------------------------------------------------------------------------------------------
# A pytree parameter: L = a·‖A‖² + b·‖B‖², each leaf its own geometric sequence


W0 = {"A": np.array([1.0, -2.0]), "B": np.array([[0.5, 1.5, -1.0]])}


def pytree_loss(w, a, b):
    return a * jnp.sum(w["A"] ** 2) + b * jnp.sum(w["B"] ** 2)


def test_pytree_parameter():
    a, b, steps = 1.0, 3.0, 60
    alphas = np.concatenate([np.linspace(-0.1, 0.45, 49), [0.0]])
    res = gdlab.sweep(gdlab.problems.custom(pytree_loss, a=a, b=b), alphas, w0=W0, steps=steps,
                      tol=TOL, dtype="float64")
    ra, rb = 1 - 2 * a * res.alpha, 1 - 2 * b * res.alpha      # per-leaf factors
    na, nb = a * np.sum(W0["A"] ** 2), b * np.sum(W0["B"] ** 2)   # 5 and 10.5
    t = np.arange(steps + 1)[None, :]
    rho = (na * (ra * ra)[:, None] ** t + nb * (rb * rb)[:, None] ** t) / (na + nb)
    ref = judge(rho, steps, TOL)
    rel = np.maximum(rtol(ra, steps), rtol(rb, steps))
    assert not near_threshold(rho, ref["last_mean"], TOL, rel).any()
    assert set(ref["regime"].tolist()) == {Regime.CONVERGED, Regime.DIVERGED, Regime.UNDECIDED}
    # Fast B, slow A: ρ_t first falls then, for r_b < −1, climbs again — the minimum is inside,
    # and the run is diverged (its loss ends above the start).
    assert ((ref["min_loss_ratio"] < 1) & (ref["regime"] == Regime.DIVERGED)).any()
    assert not band(ref, TOL).any()     # no window mean in [TOL, 1): see the threshold's test
    np.testing.assert_array_equal(res.regime, ref["regime"])
    np.testing.assert_array_equal(res.diverged_at, ref["diverged_at"])
    np.testing.assert_array_equal(res.steps_to_tol, ref["steps_to_tol"])
    assert_close(res.score, ref["score"], rel, "score")
    assert_close(res.loss_ratio, ref["loss_ratio"], rel, "loss_ratio")
    assert_close(res.min_loss_ratio, ref["min_loss_ratio"], rel, "min_loss_ratio")
    assert res.w_final.shape == (50, 5)
    for i in range(len(alphas)):
        tree = res.problem.unravel(res.w_final[i])
        assert isinstance(tree, dict) and set(tree) == {"A", "B"}
        assert np.shape(tree["A"]) == (2,) and np.shape(tree["B"]) == (1, 3)
        te = ref["t_end"][i]
        assert_close(tree["A"], W0["A"] * ra[i] ** te, rel[i], f"A at α = {alphas[i]}")
        assert_close(tree["B"], W0["B"] * rb[i] ** te, rel[i], f"B at α = {alphas[i]}")


# ---------------------------------------------------------------------------------------------
# Refused before any work


def refused(problem, **kwargs) -> ArgumentError:
    before = gdlab.engine.compile_count()
    with pytest.raises(ArgumentError) as info:
        gdlab.sweep(problem, np.linspace(0.0, 0.4, 5), steps=10, dtype="float64", **kwargs)
    assert gdlab.engine.compile_count() == before          # nothing was compiled
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{info.value.argument}: "), msg
    return info.value


INITIAL = [
    (sq, 0.0, "0.0"),                                                   # L(w0) = 0
    (lambda w: -w * w, 1.0, "-1.0"),                                    # L(w0) < 0
    (lambda w: jnp.where(jnp.abs(w) > 10, jnp.inf, w * w), 20.0, "inf"),
    (lambda w: jnp.sqrt(w) + w * w, -1.0, "nan"),                       # √−1
]


@pytest.mark.parametrize("loss,w0,shown", INITIAL, ids=["zero", "negative", "inf", "nan"])
def test_initial_loss_must_be_finite_and_positive(loss, w0, shown):
    params = {"c": 2.0} if loss is sq else {}
    err = refused(gdlab.problems.custom(loss, **params), w0=w0)
    assert err.argument == "w0" and "L(w0) = " in str(err) and shown in str(err)


@pytest.mark.parametrize("loss,w0,shown", INITIAL[:1], ids=["zero"])
def test_initial_loss_message_shows_the_number(loss, w0, shown):
    """The message shows L(w0) as the user would write it, not as numpy's repr."""
    err = refused(gdlab.problems.custom(loss, c=2.0), w0=w0)
    assert f"L(w0) = {shown};" in str(err), str(err)


def test_initial_loss_of_a_swept_parameter_names_the_axis():
    err = refused(gdlab.problems.custom(sq, c=1.0), w0=1.0, over={"c": [1.0, 0.0, 2.0]})
    assert err.argument == "over['c']" and "c = 0.0" in str(err)


def _callback_loss(w):
    return jax.pure_callback(lambda x: np.float64(x) ** 2, jax.ShapeDtypeStruct((), w.dtype), w)


def _while_loss(w):   # w³ by a loop: reverse mode cannot go through lax.while_loop
    return jax.lax.while_loop(lambda s: s[0] < 2, lambda s: (s[0] + 1, s[1] * w), (0, w))[1] ** 2


@pytest.mark.parametrize("loss,w0", [
    (sq, np.ones(3)),                                  # c·w² of a vector is a vector
    (lambda w: jnp.stack([w, 2 * w]), 1.0),            # a vector from a number
    (lambda w: jnp.round(w * w).astype(jnp.int32), 1.0),   # an integer
    (_callback_loss, 1.0),                             # a host callback: no derivative
    (_while_loss, 1.0),                                # lax.while_loop: no reverse mode
], ids=["vector-of-vector", "vector", "integer", "callback", "while_loop"])
def test_loss_must_be_a_differentiable_real_number(loss, w0):
    params = {"c": 2.0} if loss is sq else {}
    err = refused(gdlab.problems.custom(loss, **params), w0=w0)
    assert err.argument == "problem.loss", str(err)
