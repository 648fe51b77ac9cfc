"""gdlab.problems.custom: a user's loss gives what the built-in problem written by hand gives.

References are gdlab's hand-derived problems (their gradients are tested against closed forms
elsewhere) and central differences in float64.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import gdlab
from gdlab.errors import ArgumentError


def _scalar_loss(w, x, y):
    return 0.5 * (x * w - y) ** 2


def test_scalar_regression_as_a_user_loss_matches_the_builtin():
    """Same regimes and steps to tol on a grid over α × x (the Q4 map), float32; the gradient
    jax.grad(½(xw − y)²) = (xw − y)·x equals the hand-written x(xw − y) bit for bit."""
    user = gdlab.problems.custom(_scalar_loss, optimum=lambda x, y: y / x, x=1.0, y=100.0)
    builtin = gdlab.problems.scalar_regression(x=1.0, y=100.0)
    alphas, xs = np.linspace(0.0, 2.5, 101), np.linspace(0.5, 2.0, 13)
    a = gdlab.sweep(user, alphas, over={"x": xs}, steps=120, tol=1.0)
    b = gdlab.sweep(builtin, alphas, over={"x": xs}, steps=120, tol=1.0)
    np.testing.assert_array_equal(a.regime, b.regime)
    np.testing.assert_array_equal(a.steps_to_tol, b.steps_to_tol)
    np.testing.assert_array_equal(a.curvature, b.curvature)   # λ = x² from the Hessian


def test_user_quadratic_matches_gdlab_quadratic():
    """½(w − w*)ᵀH(w − w*) written by the user, with H and w* from gdlab.problems.quadratic."""
    q = gdlab.problems.quadratic(dim=6, lam_max=2.0, kappa=20.0, seed=3)
    lam, qm = np.asarray(q.eigenvalues(), np.float64), np.asarray(q.Q, np.float64)
    h, w_star = (qm * lam) @ qm.T, np.asarray(q.w_star, np.float64)

    def loss(w, scale):
        e = w - jnp.asarray(w_star, w.dtype)
        return 0.5 * scale * e @ (jnp.asarray(h, w.dtype) @ e)

    user = gdlab.problems.custom(loss, optimum=w_star, scale=1.0)
    alphas = np.linspace(0.0, 1.2, 61)
    a = gdlab.sweep(user, alphas, w0=np.zeros(6), steps=150, tol=1e-3, dtype="float64")
    b = gdlab.sweep(q, alphas, w0=np.zeros(6), steps=150, tol=1e-3, dtype="float64")
    # float64 runs of the same map, gradients equal to ~1e-16: identical labels away from the
    # step where a distance crosses tol within rounding (none on this grid)
    np.testing.assert_array_equal(a.steps_to_tol, b.steps_to_tol)
    np.testing.assert_allclose(a.curvature, b.curvature, rtol=1e-12)   # λ_max = 2 by Hessian
    conv = lambda r: np.isin(r, [gdlab.Regime.CONVERGING_MONOTONE,
                                 gdlab.Regime.CONVERGING_OSCILLATING])
    np.testing.assert_array_equal(conv(a.regime), conv(b.regime))


def test_gradient_of_a_pytree_loss_matches_central_differences():
    def loss(w, c):
        return jnp.sum(jnp.tanh(w["W"] @ w["v"])) * c + jnp.sum(w["v"] ** 4)

    w0 = {"W": np.arange(6.0).reshape(2, 3) / 7, "v": np.array([0.3, -0.2, 0.5])}
    p = gdlab.problems.custom(loss, c=1.5)
    bound, flat = p.bind(w0)
    assert bound.param_shape == (9,)
    import jax
    with jax.enable_x64(True):
        g = np.asarray(bound.grad(jnp.asarray(flat)))
        f = lambda v: float(bound.loss(jnp.asarray(v)))
        h = 1e-6
        fd = np.array([(f(flat + h * e) - f(flat - h * e)) / (2 * h) for e in np.eye(9)])
    # central differences: error O(h²·f''') + O(eps·|f|/h) ≈ 1e-10 here
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)
    tree = bound.unravel(flat)
    np.testing.assert_array_equal(tree["W"], w0["W"])
    np.testing.assert_array_equal(tree["v"], w0["v"])


def test_pytree_runs_are_the_same_however_requested():
    """A dict-of-arrays loss without optimum: chunks, devices and compact keep change nothing."""
    def loss(w, d):
        return jnp.sum(w["a"] ** 2) * (1 + d * jnp.cos(w["b"])) + w["b"] ** 2

    p = gdlab.problems.custom(loss, d=0.3)
    w0 = {"a": np.ones(3), "b": 0.5}
    alphas = np.linspace(0.0, 1.5, 97)
    base = gdlab.sweep(p, alphas, w0=w0, steps=80, dtype="float64")
    assert base.engine_path == "loop" and base.score is not None
    assert set(np.unique(base.regime)) <= {gdlab.Regime.CONVERGED, gdlab.Regime.DIVERGED,
                                           gdlab.Regime.UNDECIDED}
    others = [gdlab.sweep(p, alphas, w0=w0, steps=80, dtype="float64", chunk_size=13),
              gdlab.sweep(p, alphas, w0=w0, steps=80, dtype="float64", chunk_size=5),
              gdlab.sweep(p, alphas, w0=w0, steps=80, dtype="float64", keep="compact")]
    import jax
    if jax.device_count() >= 2:
        others.append(gdlab.sweep(p, alphas, w0=w0, steps=80, dtype="float64", devices=2))
    for res in others:
        np.testing.assert_array_equal(res.regime, base.regime)
        np.testing.assert_array_equal(res.steps_to_tol, base.steps_to_tol)
        # bit for bit: the loss value (whose cos is vectorised differently at another batch
        # width) is always computed in blocks of the same size (see _sweep_plan.cpu_block)
        np.testing.assert_array_equal(res.score, base.score)


@pytest.mark.parametrize("loss,match", [
    (lambda w, c: w * c * jnp.ones(3), "one real number"),
    (lambda w, c: jnp.round(w * c).astype(jnp.int32), "one real number"),
    (lambda w, c: undefined_name * w, "NameError"),  # noqa: F821
])
def test_bad_user_losses_are_refused_before_any_work(loss, match):
    p = gdlab.problems.custom(loss, c=1.0)
    with pytest.raises(ArgumentError, match=match) as err:
        gdlab.sweep(p, [0.1, 0.2], w0=1.0, steps=5)
    assert err.value.argument == "problem.loss" and "\n" not in str(err.value)


def test_bad_custom_arguments():
    with pytest.raises(ArgumentError, match="not callable"):
        gdlab.problems.custom(3.0)
    with pytest.raises(ArgumentError, match="reserved"):
        gdlab.problems.custom(_scalar_loss, alpha=1.0)
    with pytest.raises(ArgumentError, match="initial loss"):
        gdlab.sweep(gdlab.problems.custom(lambda w, c: c * w * w, c=1.0), [0.1], w0=0.0)


_LOSSES = '''
import jax.numpy as jnp

def rosenbrock(w, a, b):
    return (a - w["x"]) ** 2 + b * (w["y"] - w["x"] ** 2) ** 2

def start():
    return {"x": -1.0, "y": 1.0}

def vector(w, a, b):
    return jnp.stack([w["x"], w["y"]]) * a

not_callable = 3

def start_of(a, b):
    return {"x": -a, "y": b}

def raises():
    raise RuntimeError("no start here")
'''

_CONFIG = '''
[problem]
name = "custom"
loss = "my_losses:rosenbrock"
a = 1.0
b = 10.0
w0 = "my_losses:start"

[sweep]
alpha = { start = 0.0001, stop = 0.05, num = 24 }
b = [5.0, 10.0, 20.0]

[run]
steps = 120
'''


@pytest.fixture
def user_config(tmp_path):
    (tmp_path / "my_losses.py").write_text(_LOSSES)
    (tmp_path / "rb.toml").write_text(_CONFIG)
    return tmp_path / "rb.toml"


def test_a_config_names_a_user_loss_next_to_it(user_config, tmp_path):
    from gdlab import cli
    assert cli.main(["run", str(user_config), "--out", str(tmp_path / "one")]) == 0
    with np.load(tmp_path / "one" / "results.npz", allow_pickle=False) as z:
        regime, score = z["regime"], z["score"]
    # the same sweep through the API: the config adds nothing of its own
    import importlib.util
    spec = importlib.util.spec_from_file_location("my_losses_test", tmp_path / "my_losses.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = gdlab.sweep(gdlab.problems.custom(mod.rosenbrock, a=1.0, b=10.0),
                      {"start": 0.0001, "stop": 0.05, "num": 24}, w0=mod.start(),
                      over={"b": [5.0, 10.0, 20.0]}, steps=120)
    np.testing.assert_array_equal(regime, res.regime)
    np.testing.assert_array_equal(score, res.score)
    assert {gdlab.Regime.CONVERGED, gdlab.Regime.DIVERGED} <= set(np.unique(regime).tolist())


def test_shards_of_a_user_loss_merge_to_the_single_run(user_config, tmp_path):
    from gdlab import cli
    assert cli.main(["run", str(user_config), "--out", str(tmp_path / "one")]) == 0
    for i in range(2):
        assert cli.main(["run", str(user_config), "--set", f"sweep.shard={i}/2",
                         "--out", str(tmp_path / f"s{i}")]) == 0
    assert cli.main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"),
                     "--out", str(tmp_path / "m")]) == 0
    with np.load(tmp_path / "one" / "results.npz", allow_pickle=False) as a, \
            np.load(tmp_path / "m" / "results.npz", allow_pickle=False) as b:
        for key in ("regime", "steps_to_tol", "score", "loss_ratio", "diverged_at"):
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("setting,message", [
    ('problem.loss="nope:f"', "no module 'nope'"),
    ('problem.loss="my_losses:nope"', "has no attribute 'nope'"),
    ('problem.loss="my_losses:not_callable"', "is not callable"),
    ('problem.loss="my_losses:vector"', "problem.loss: "),
    ('problem.loss="not a path"', "must be an import path"),
    ('problem.w0="my_losses:zz"', "problem.w0: module"),
    ('problem.w0="my_losses:start_of"', "problem.w0: 'my_losses:start_of' takes arguments (a, b); "
                                        "a w0 function takes none"),
    ('problem.w0="my_losses:raises"', "problem.w0: 'my_losses:raises' raised RuntimeError: no "
                                      "start here"),
    ('problem.optimum=[1.0, 1.0, 1.0]', "problem.optimum: 3 numbers in 3 arrays does not fit w, "
                                        "of 2 numbers in 2 arrays"),
])
def test_bad_user_losses_in_a_config_exit_2_and_write_nothing(user_config, tmp_path, setting,
                                                             message, capsys):
    from gdlab import cli
    out = tmp_path / "out"
    assert cli.main(["run", str(user_config), "--out", str(out), "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def _q(w):
    return 0.5 * (w - 3.0) ** 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_loss_without_parameters_sweeps_with_its_optimum(dtype):
    """L = ½(w − 3)², no parameters: e_{t+1} = (1 − α)e_t, so α = 0.5, 1.5, 2.5 are monotone,
    oscillating and diverging (closed form), and w* = 3 is used as given."""
    res = gdlab.sweep(gdlab.problems.custom(_q, optimum=3.0), [0.5, 1.5, 2.5], w0=0.0,
                      dtype=dtype, progress=False)
    R = gdlab.Regime
    assert res.regime.tolist() == [R.CONVERGING_MONOTONE, R.CONVERGING_OSCILLATING,
                                   R.DIVERGING_OSCILLATING]
    np.testing.assert_array_equal(np.asarray(res.w_star, np.float64), 3.0)
    assert float(np.asarray(res.problem.curvature())) == 1.0      # ∇²L = 1


@pytest.mark.parametrize("optimum, w0, message", [
    (np.array([3.0]), 0.0, "optimum: shape (1,) does not fit w, of shape () (set by w0)"),
    ([3.0, 3.0], np.zeros(3), "optimum: 2 numbers in 2 arrays does not fit w, of shape (3,)"),
])
def test_an_optimum_of_the_wrong_shape_is_named(optimum, w0, message):
    with pytest.raises(ArgumentError) as e:
        gdlab.sweep(gdlab.problems.custom(lambda w: 0.5 * jnp.sum((w - 3.0) ** 2),
                                          optimum=optimum), [0.5], w0=w0, progress=False)
    assert str(e.value).startswith(message) and "differentiated" not in str(e.value)


def test_an_optimum_that_cannot_be_computed_is_named_as_such():
    # the loss is fine (its gradient traces); only the optimum function raises: the error names
    # problem.optimum, not differentiation
    def q(w, a):
        return 0.5 * a * (w - 3.0) ** 2

    def no_closed_form(a):
        raise ValueError("no closed form here")

    with pytest.raises(ArgumentError) as err:
        gdlab.sweep(gdlab.problems.custom(q, a=1.0, optimum=no_closed_form), [0.5], w0=0.0)
    assert err.value.argument == "problem.optimum"
    assert "no closed form here" in str(err.value) and "differentiated" not in str(err.value)


def test_host_optimum_and_curvature_compile_once():
    """Asking a problem's optimum and curvature again (a fresh but equal problem, as every sweep
    builds) reuses the compiled host programs: the cache gains one entry per quantity and batching,
    not one per call (a fresh ``functools.partial`` key would miss every time, recompiling and
    keeping each program). The values are the closed forms w* = y/x, λ = x²."""
    from gdlab import custom
    before = custom._host_map.cache_info().currsize
    opt = lambda x, y: y / x   # noqa: E731
    p = gdlab.problems.custom(_scalar_loss, optimum=opt, x=2.0, y=6.0).bind(0.0)[0]
    assert (float(np.asarray(p.optimum())), float(np.asarray(p.curvature()))) == (3.0, 4.0)
    size = custom._host_map.cache_info().currsize
    for _ in range(3):
        q = gdlab.problems.custom(_scalar_loss, optimum=opt, x=2.0, y=6.0).bind(0.0)[0]
        q.optimum(), q.curvature()
    assert custom._host_map.cache_info().currsize == size
    assert size > before
