"""A run that lands on the optimum is not diverging (user audit: 45 runs of
``configs/adam_alpha_beta.toml`` ended at |e_T| = 0 labelled ``diverging_oscillating``).

Reference: optax's own Adam on ½(w − 100)² in float32, stepped in a plain Python loop (no gdlab
code): the error swings wider in the late half than in the early one, which alone would say
"grows", and then sits at w* to float32 rounding for hundreds of steps.
"""

import numpy as np
import optax
import pytest

import gdlab
from gdlab import regimes

P = gdlab.problems.scalar_regression(x=1.0, y=100.0)
T = 1000


def optax_errors(alpha, b1, steps=T):
    opt = optax.adam(np.float32(alpha), b1=np.float32(b1), b2=np.float32(0.999),
                     eps=np.float32(1e-8))
    w = np.float32(0.0)
    state = opt.init(w)
    errs = [abs(float(w) - 100.0)]
    for _ in range(steps):
        g = np.float32(w - np.float32(100.0))
        upd, state = opt.update(g, state)
        w = np.float32(w + np.asarray(upd, np.float32))
        errs.append(abs(float(w) - 100.0))
    return np.array(errs)


@pytest.mark.parametrize("alpha, b1", [(50.118725, 0.495), (63.095734, 0.12375)])
def test_adam_run_that_lands_on_the_optimum_converges(alpha, b1):
    e = optax_errors(alpha, b1)
    floor = 64 * np.finfo(np.float32).eps * (100 + 100)   # gdlab.engine.noise_floor
    h = T // 2
    assert e[h + 1:].max() > e[:h + 1].max()               # the late swing is the wider
    landed = np.flatnonzero(e > floor)[-1] + 1            # at the floor from here on
    assert landed < T - T // 100
    res = gdlab.sweep(P, [alpha], over={"b1": [b1]}, optimizer="adam", w0=0.0, steps=T,
                      tol=1.0, progress=False)
    assert gdlab.REGIME_NAMES[res.regime[0, 0]] == "converging_oscillating"
    compact = gdlab.sweep(P, [alpha], over={"b1": [b1]}, optimizer="adam", w0=0.0, steps=T,
                          tol=1.0, keep="compact", progress=False)
    assert compact.regime[0, 0] == res.regime[0, 0]       # judged on the device alike


def test_settled_needs_a_stretch_at_the_floor():
    """k_obs (the last step whose predecessor was above the floor) at most T − max(2, T//100)."""
    assert regimes.settled(np.array([0, 990, 991, 1000]), 1000).tolist() == [True, True, False,
                                                                             False]
    assert regimes.settled(np.array([8, 9]), 10).tolist() == [True, False]   # 2 steps at least
    # settled overrides growth, not freezing; a growing run that is not settled still grows
    got = regimes.judge(np.array([5.0, 5.0, 5.0]), np.array([3, 3, 3]),
                        np.array([False, True, False]), False, 0.9, 1.1,
                        np.array([True, True, False]))
    assert [regimes.REGIME_NAMES[r] for r in got] == ["converging_oscillating",
                                                      "diverging_oscillating",
                                                      "diverging_oscillating"]
