"""Optimizer hyperparameter ranges, declared once on each spec (gdlab.optimizers) and checked by
gdlab.sweep, configs and gdlab.eos; and a study of heavy ball or Nesterov with a fixed β < 0, whose
closed-form edges are checked against NumPy's roots of the characteristic polynomials."""

import json
import warnings

import numpy as np
import pytest

import gdlab
from gdlab import _sweep_checks, cli, optimizers
from gdlab._study_theory import edge_alphas
from gdlab.errors import ArgumentError

P = gdlab.problems.scalar_regression(x=1.0, y=100.0)


@pytest.mark.parametrize("name", [*optimizers.OPTIMIZERS, *optimizers.GENERIC_RANGES])
def test_every_declared_range_holds_its_default(name):
    spec = optimizers.get(name)
    assert set(spec.ranges) <= set(spec.defaults)
    for k, allowed in spec.ranges.items():
        assert spec.defaults[k] in allowed and allowed.why, (name, k)
    assert name == "sgd" or spec.ranges   # every registered and listed optimizer declares some


def test_the_ranges_follow_the_maths():
    """β in (−1, 1) for heavy ball and Nesterov (a negative β is simulated and swept), Adam's
    moment weights in [0, 1), eps > 0; rmsprop's decay in [0, 1), its initial scale ≥ 0."""
    for name in ("momentum", "nesterov"):
        beta = optimizers.get(name).ranges["beta"]
        assert -0.999 in beta and -0.5 in beta and 0.0 in beta and 0.999 in beta
        assert -1.0 not in beta and 1.0 not in beta and str(beta) == "(-1, 1)"
    adam = optimizers.get("adam").ranges
    assert [str(adam[k]) for k in ("b1", "b2", "eps")] == ["[0, 1)", "[0, 1)", "(0, inf)"]
    assert 0.0 not in adam["eps"] and 1e-300 in adam["eps"]
    rms = optimizers.get("rmsprop").ranges
    assert 1.0 not in rms["decay"] and 0.0 in rms["initial_scale"] and -1e-9 not in rms["eps"]
    assert optimizers.get("lion").ranges == {}    # no declared meaning: any finite number


@pytest.mark.parametrize("beta", [-0.9, -0.5, -0.4, -1 / 3, -0.25, -0.05, 0.0, 0.5, 0.9])
@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_edge_alphas_against_numpy_roots(optimizer, beta):
    """The onset is where the dominant root of the characteristic polynomial stops being a
    positive real, the divergence where its modulus reaches 1; checked 1e-7 (relative) on either
    side with np.roots (root error ~1e-15, the moduli there differ by ≥ ~1e-8)."""
    lam = 2.0
    onset, divergence = edge_alphas(optimizer, lam, beta)

    def roots(alpha):
        x = alpha * lam
        coeffs = ([1.0, -(1 + beta - x), beta] if optimizer == "momentum"
                  else [1.0, -(1 + beta) * (1 - x), beta * (1 - x)])
        return np.roots(coeffs)

    def positive_dominant(alpha):
        z = roots(alpha)
        top = z[np.argmax(abs(z))]
        return abs(top.imag) < 1e-12 and top.real > 0 and abs(z).min() < abs(top) - 1e-12

    d = 1e-7
    assert positive_dominant(onset * (1 - d)) and not positive_dominant(onset * (1 + d))
    assert max(abs(roots(divergence * (1 - d)))) < 1 < max(abs(roots(divergence * (1 + d))))
    assert all(max(abs(roots(a))) < 1 for a in np.linspace(1e-3, 1 - 1e-3, 101) * divergence)


BAD_SWEEPS = [
    (dict(optimizer="momentum", hparams={"beta": 1.0}),
     r"^hparams\['beta'\]: 1\.0 must be in \(-1, 1\) \(heavy ball converges on a quadratic iff "
     r"\|β\| < 1"),
    (dict(optimizer="momentum", hparams={"beta": 1.5}), r"^hparams\['beta'\]: 1\.5 must be in"),
    (dict(optimizer="nesterov", hparams={"beta": -1}), r"^hparams\['beta'\]: -1 must be in"),
    (dict(optimizer="adam", hparams={"b2": 1.5}), r"^hparams\['b2'\]: 1\.5 must be in \[0, 1\)"),
    (dict(optimizer="adam", hparams={"eps": -1.0}),
     r"^hparams\['eps'\]: -1\.0 must be in \(0, inf\) \(the divisor √ν̂ \+ eps must be > 0"),
    (dict(optimizer="adam", hparams={"b1": np.float32(1.0)}), r"^hparams\['b1'\]: .*must be in"),
    (dict(optimizer="rmsprop", hparams={"decay": 1.0}), r"^hparams\['decay'\]: 1\.0 must be in"),
    (dict(optimizer="adam", over={"b1": {"start": 0.0, "stop": 1.5, "num": 11}}),
     r"^over\['b1'\]\.stop: 1\.5 must be in \[0, 1\)"),
    (dict(optimizer="momentum", over={"beta": {"start": -1.0, "stop": 0.5, "num": 4}}),
     r"^over\['beta'\]\.start: -1\.0 must be in \(-1, 1\)"),
    (dict(optimizer="adam", over={"b1": [0.0, 0.5, 1.5, 0.9]}),
     r"^over\['b1'\]: contains 1\.5, which must be in \[0, 1\)"),
]


@pytest.mark.parametrize("kwargs, message", BAD_SWEEPS)
def test_sweep_refuses_out_of_range_hyperparameters_before_any_work(monkeypatch, kwargs,
                                                                    message):
    def simulated(*a, **k):
        raise AssertionError("simulated before the hyperparameters were checked")
    monkeypatch.setattr(gdlab.engine, "simulate", simulated)
    with pytest.raises(ArgumentError, match=message) as err:
        gdlab.sweep(P, [0.1, 0.5], w0=0.0, steps=5, progress=False, **kwargs)
    assert "\n" not in str(err.value)


def test_a_long_range_is_checked_by_its_ends_without_being_built(monkeypatch):
    """10¹² values of β: refused at its stop, and nothing of that size is built (grids.axis_part
    is asked for single values only)."""
    asked = []
    real_part = gdlab.grids.axis_part
    monkeypatch.setattr(gdlab.grids, "axis_part", lambda spec, lo, hi, **k: (
        asked.append(hi - lo), real_part(spec, lo, hi, **k))[1])
    with pytest.raises(ArgumentError, match=r"^over\['beta'\]\.stop: 1\.0 must be in"):
        gdlab.sweep(P, [0.1], optimizer="momentum", steps=5, progress=False,
                    over={"beta": {"start": 0.0, "stop": 1.0, "num": 10**12}})
    assert asked and max(asked) == 1


def test_rounding_to_the_run_dtype_is_checked_when_known():
    """b2 = 1 − 1e-9 is in [0, 1) in float64, but is 1.0 in float32 (the ulp of 1 is 6e-8)."""
    spec = optimizers.get("adam")
    _sweep_checks.hparam_ranges(spec, {"b2": 1 - 1e-9}, {}, np.dtype("float64"))
    with pytest.raises(ArgumentError, match=r"^hparams\['b2'\]: 0\.999999999 rounds to 1\.0 in "
                                            r"float32, outside \[0, 1\)"):
        _sweep_checks.hparam_ranges(spec, {"b2": 1 - 1e-9}, {}, np.dtype("float32"))
    with pytest.raises(ArgumentError, match=r"^over\['b1'\]: contains 0\.99999999, which rounds "
                                            r"to 1\.0 in float32"):
        _sweep_checks.hparam_ranges(spec, {}, {"b1": [0.5, 0.99999999]}, np.dtype("float32"))


def test_negative_beta_is_simulated_as_numpy_iterates_it():
    """Fixed and swept β < 0 are accepted; heavy ball's w_T matches a float64 NumPy loop of
    v ← g + βv, w ← w − αv (optax's form) to 1e-9 relative (float64 rounding over 40 steps)."""
    alphas, betas = np.array([0.3, 0.9, 1.2]), np.array([-0.9, -0.5, -0.1])
    res = gdlab.sweep(P, alphas, w0=0.0, steps=40, optimizer="momentum", over={"beta": betas},
                      dtype="float64", progress=False)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            w = v = 0.0
            for _ in range(40):
                v = (w - 100.0) + b * v
                w = w - a * v
            assert res.w_final[i, j] == pytest.approx(w, rel=1e-9, abs=1e-9)
    fixed = gdlab.sweep(P, alphas, w0=0.0, steps=40, optimizer="momentum",
                        hparams={"beta": -0.5}, dtype="float64", progress=False)
    np.testing.assert_array_equal(fixed.w_final, res.w_final[:, 1])


def _reference_edges(beta, lam=1.0):
    """The onset and divergence in α of heavy ball on curvature λ, by bisection on NumPy's roots
    of z² − (1 + β − αλ)z + β (60 halvings of [0, 4]: to ~4e-18, below float64's ulp)."""
    roots = lambda a: np.roots([1.0, -(1 + beta - a * lam), beta])

    def oscillates(a):
        z = roots(a)
        top = z[np.argmax(abs(z))]
        return not (abs(top.imag) < 1e-12 and top.real > 0 and abs(z).min() < abs(top))

    def bisect(test):
        lo, hi = 1e-9, 4.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if test(mid) else (mid, hi)
        return hi

    return bisect(oscillates), bisect(lambda a: max(abs(roots(a))) >= 1)


def test_study_with_a_fixed_negative_beta_runs_and_states_its_closed_form(tmp_path, capsys,
                                                                        monkeypatch):
    """The audit's command (it printed every table, then "oscillation_onset α = nan" and a
    FloatingPointError, exit 1): exit 0, the closed-form line with the onset at αλ = 1 + β and
    divergence at 2(1 + β), the same in summary.json, and no warning."""
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = cli.main(["run", "q4_alpha_sweep", "--set", "optimizer.name=momentum",
                       "--set", "optimizer.beta=-0.5", "--out", str(tmp_path / "m")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert [str(w.message) for w in caught] == []
    line = next(x for x in out.out.splitlines() if x.startswith("closed form: "))
    assert line.startswith("closed form: oscillation_onset α = 0.5, divergence α = 1 (β = -0.5 "
                           "< 0: the roots of z² − (1 + β − αλ)z + β are real and of opposite "
                           "signs, and the negative one dominates from αλ = 1 + β on"), line
    edges = json.loads((tmp_path / "m" / "summary.json").read_text())["closed_form_edges"]
    onset, divergence = _reference_edges(-0.5)      # Q4: λ = x² = 1
    assert edges == {"oscillation_onset": pytest.approx(onset, rel=1e-12),
                     "divergence": pytest.approx(divergence, rel=1e-12)}


def test_nesterov_study_with_a_negative_beta_has_its_onset_at_one_over_lambda(tmp_path, capsys):
    """Nesterov, β = −0.25: the onset is αλ = 1 (the 0 ≤ β < 1 form ((1 − β)/(1 + β))² gave
    2.78), the divergence 2(1 + β)/(1 + 2β) = 3 (β ≥ −1/3), and the bisected regime edges of the
    simulation agree to 1e-6 (the edge search's bracket)."""
    rc = cli.main(["run", "q4_alpha_sweep", "--set", "optimizer.name=nesterov",
                   "--set", "optimizer.beta=-0.25", "--set",
                   "sweep.alpha={start=0.0, stop=3.5, num=351}", "--out", str(tmp_path / "n")])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["closed_form_edges"] == {"oscillation_onset": pytest.approx(1.0, rel=1e-15),
                                            "divergence": pytest.approx(3.0, rel=1e-15)}
    found = {(b["below"], b["above"]): b["alpha"] for b in summary["boundaries"]["bisected"]}
    assert found[("converging_monotone", "converging_oscillating")] == pytest.approx(1.0, abs=1e-6)
