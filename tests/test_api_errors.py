"""The Python API refuses bad arguments with gdlab's own exception, naming the argument, on one
line, without warnings; sizes are refused before any work; nothing non-finite reaches a result."""

import dataclasses
import time
import tracemalloc
import warnings

import numpy as np
import pytest
from engines import fast_path

import gdlab
from gdlab._sweep import finish_sweep, simulate_shard
from gdlab.errors import ArgumentError, TooLargeError

P = gdlab.problems.scalar_regression(x=1.0, y=100.0)
Q = gdlab.problems.quadratic(dim=3)


def call(**kw):
    """gdlab.sweep with small defaults; ``problem``/``alphas`` may be overridden; with ``shard``
    simulate_shard, with ``simulation`` finish_sweep."""
    problem = kw.pop("problem", P)
    alphas = kw.pop("alphas", [0.5])
    kw = {"steps": 5, "progress": False, **kw}
    if "shard" in kw:
        return simulate_shard(problem, alphas, **kw)
    if "simulation" in kw:
        return finish_sweep(problem, alphas, kw.pop("simulation"), **kw)
    return gdlab.sweep(problem, alphas, **kw)


BAD = [
    # problem: not a problem value, or a parameter that cannot be one
    ("problem str", dict(problem="scalar_regression"), "problem"),
    ("problem None", dict(problem=None), "problem"),
    ("problem dict", dict(problem={"x": 1.0, "y": 2.0}), "problem"),
    ("problem type", dict(problem=gdlab.problems.ScalarRegression), "problem"),
    ("problem.x text", dict(problem=P._replace(x="a")), "problem.x"),
    ("problem.x array", dict(problem=P._replace(x=np.ones(3))), "problem.x"),
    ("problem.x nan", dict(problem=P._replace(x=float("nan"))), "problem.x"),
    ("problem.x overflows", dict(problem=P._replace(x=1e300)), "problem.x"),
    ("problem.y complex", dict(problem=P._replace(y=1j)), "problem.y"),
    ("no optimum", dict(problem=P._replace(x=0.0)), "problem"),
    ("optimum too large", dict(problem=P._replace(y=1e30)), "problem"),
    ("no optimum on an axis", dict(over={"x": [0.0, 1.0]}), "over['x']"),
    # w0
    ("w0 shape", dict(w0=[1.0, 2.0]), "w0"),
    ("w0 shape n-d", dict(problem=Q, w0=[1.0, 2.0]), "w0"),
    ("w0 complex", dict(w0=1 + 2j), "w0"),
    ("w0 text", dict(w0="0"), "w0"),
    ("w0 bool", dict(w0=True), "w0"),
    ("w0 ragged", dict(problem=Q, w0=[[1.0], [2.0, 3.0]]), "w0"),
    ("w0 inf", dict(w0=float("inf")), "w0"),
    ("w0 overflows", dict(w0=1e40), "w0"),
    ("w0 too far", dict(w0=1e30), "w0"),
    # alphas
    ("alphas text", dict(alphas="0.5"), "alphas"),
    ("alphas 2-D", dict(alphas=np.ones((2, 2))), "alphas"),
    ("alphas empty", dict(alphas=[]), "alphas"),
    ("alphas None", dict(alphas=None), "alphas"),
    ("alphas nan", dict(alphas=[0.5, float("nan")]), "alphas"),
    ("alphas object", dict(alphas=np.array([0.5, None], dtype=object)), "alphas"),
    ("alphas bool", dict(alphas=[True, False]), "alphas"),
    ("alphas huge int", dict(alphas=[10**400]), "alphas"),
    ("alphas huge int scalar", dict(alphas=10**400), "alphas"),
    ("alphas overflow float32", dict(alphas=[1e39]), "alphas"),
    ("alphas num 0", dict(alphas={"start": 0.0, "stop": 1.0, "num": 0}), "alphas.num"),
    ("alphas range no num", dict(alphas={"start": 0.0, "stop": 1.0}), "alphas"),
    ("alphas range huge start", dict(alphas={"start": -10**400, "stop": 1.0, "num": 3}),
     "alphas.start"),
    # integers and their bounds
    ("steps 2**40", dict(steps=2**40), "steps"),
    ("steps 2**31", dict(steps=2**31), "steps"),
    ("steps 0", dict(steps=0), "steps"),
    ("steps float", dict(steps=2.5), "steps"),
    ("unroll huge", dict(unroll=10**6), "unroll"),
    ("unroll 0", dict(unroll=0), "unroll"),
    ("record_every 0", dict(record_every=0), "record_every"),
    ("chunk_size 0", dict(chunk_size=0), "chunk_size"),
    ("block 0", dict(block=0), "block"),
    ("block text", dict(block="big"), "block"),
    # tol against the dtype
    ("tol inf in float32", dict(tol=1e300), "tol"),
    ("tol 0 in float32", dict(tol=1e-50), "tol"),
    ("tol text", dict(tol="1"), "tol"),
    ("tol huge int", dict(tol=10**400), "tol"),
    ("tol nan", dict(tol=float("nan")), "tol"),
    # choices
    ("dtype float16", dict(dtype="float16"), "dtype"),
    ("dtype numpy type", dict(dtype=np.float32), "dtype"),
    ("keep x", dict(keep="x"), "keep"),
    ("optimizer unknown", dict(optimizer="sgdd"), "optimizer"),
    ("optimizer None", dict(optimizer=None), "optimizer"),
    ("recurrence text", dict(recurrence="yes"), "recurrence"),
    ("recurrence momentum", dict(optimizer="momentum", recurrence=True), "recurrence"),
    ("progress text", dict(progress="x"), "progress"),
    # hyperparameters
    ("hparams text", dict(optimizer="momentum", hparams={"beta": "a"}), "hparams['beta']"),
    ("hparams None", dict(optimizer="momentum", hparams={"beta": None}), "hparams['beta']"),
    ("hparams array", dict(optimizer="momentum", hparams={"beta": [0.1, 0.2]}), "hparams['beta']"),
    ("hparams nan", dict(optimizer="momentum", hparams={"beta": float("nan")}), "hparams['beta']"),
    ("hparams unknown", dict(hparams={"beta": 0.9}), "hparams"),
    ("hparams not a mapping", dict(optimizer="momentum", hparams=[0.9]), "hparams"),
    # outside the ranges the optimizers declare (gdlab.optimizers.OptimizerSpec.ranges)
    ("hparams beta 1", dict(optimizer="momentum", hparams={"beta": 1.0}), "hparams['beta']"),
    ("hparams beta -1", dict(optimizer="nesterov", hparams={"beta": -1.0}), "hparams['beta']"),
    ("hparams b2 1.5", dict(optimizer="adam", hparams={"b2": 1.5}), "hparams['b2']"),
    ("hparams eps -1", dict(optimizer="adam", hparams={"eps": -1.0}), "hparams['eps']"),
    ("hparams decay 1", dict(optimizer="rmsprop", hparams={"decay": 1.0}), "hparams['decay']"),
    ("over b1 stop 1.5", dict(optimizer="adam", over={"b1": {"start": 0.0, "stop": 1.5,
                                                            "num": 11}}), "over['b1'].stop"),
    ("over b1 list", dict(optimizer="adam", over={"b1": [0.5, 1.5]}), "over['b1']"),
    # extra axes
    ("over unknown", dict(over={"z": [1.0]}), "over"),
    ("over alpha", dict(over={"alpha": [1.0]}), "over"),
    ("over not a mapping", dict(over=[1.0]), "over"),
    ("over empty", dict(over={"x": []}), "over['x']"),
    ("over 2-D", dict(over={"x": np.ones((2, 2))}), "over['x']"),
    ("over text", dict(over={"y": "1,2"}), "over['y']"),
    ("over matrix field", dict(problem=Q, over={"Q": [1.0]}), "over"),
    ("over hparam nan", dict(optimizer="momentum", over={"beta": [0.5, np.inf]}), "over['beta']"),
    # devices
    ("devices 0", dict(devices=0), "devices"),
    ("devices text", dict(devices="some"), "devices"),
    ("devices bool", dict(devices=True), "devices"),
    ("devices too many", dict(devices=10**6), "devices"),
    # sharding and merged simulations
    ("shard out of range", dict(shard=(1, 1)), "shard"),
    ("shard text", dict(shard="0/2"), "shard"),
    ("simulation text", dict(simulation="x"), "simulation"),
]


@pytest.mark.parametrize("kwargs, argument", [pytest.param(k, a, id=i) for i, k, a in BAD])
def test_bad_argument_is_named_on_one_line_without_warnings(kwargs, argument):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ArgumentError) as exc:
            call(**kwargs)
    err = exc.value
    assert err.argument == argument, str(err)
    assert str(err).startswith(f"{argument}: ") and "\n" not in str(err), str(err)
    assert len(str(err)) < 300, str(err)
    assert isinstance(err, ValueError)   # `except ValueError` keeps working


def test_edge_values_that_still_work():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # record_every beyond the horizon: w_0 and w_T, as record_every = steps
        res = call(alphas=[0.5, 1.5], record_every=100, steps=5)
        assert list(res.snapshot_steps) == [0, 5] and res.trajectory.shape == (2, 2)
        # a chunk larger than the grid is the grid; numpy integers; the largest unroll
        res = call(alphas=[0.5, 1.5], chunk_size=10**12, steps=np.int64(5), unroll=1024,
                   devices="all")
        assert res.steps == 5 and isinstance(res.steps, int)
        # a scalar α, Python ints beyond int64 (as an object array), a numpy hyperparameter
        assert call(alphas=0.5).n_runs == 1
        res = call(alphas=np.array([1, 2**70], dtype=object))
        assert res.alpha.dtype == np.float32 and res.alpha[1] == np.float32(2.0**70)
        call(optimizer="momentum", hparams={"beta": np.float32(0.5)}, over={"w0": [0.0, 1.0]})
        # a tol far below float32's range is fine in float64; w0 as an n-d vector
        assert call(tol=1e-300, dtype="float64").tol == 1e-300
        assert call(problem=Q, w0=[1.0, 2.0, 3.0]).w0.shape == (1, 3)


def test_too_large_is_refused_before_any_work(monkeypatch):
    monkeypatch.setenv("GDLAB_MEMORY_LIMIT", "1G")
    over = {"x": np.linspace(1.0, 2.0, 10**5), "y": np.linspace(0.0, 1.0, 10**4)}  # 10⁹ runs
    for keep in ("all", "compact"):
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            with pytest.raises(TooLargeError) as exc:
                gdlab.sweep(P, [0.5], over=over, steps=10, keep=keep, progress=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert time.perf_counter() - t0 < 5.0
        assert peak < 64 * 2**20        # nothing per run was allocated
        msg = str(exc.value)
        assert exc.value.argument == "over" and "\n" not in msg
        assert "a sweep of 1000000000 runs" in msg and "GiB" in msg and "$GDLAB_MEMORY_LIMIT" in msg
        fix = msg.rsplit("; ", 1)[1]
        assert fix == ("use keep='compact' or fewer runs" if keep == "all" else "use fewer runs")
    # a range's values are not built before the check either (10¹² float64 would be 8 TB)
    with pytest.raises(TooLargeError, match=r"^alphas: a sweep of 1000000000000 runs"):
        call(alphas={"start": 0.0, "stop": 1.0, "num": 10**12})
    # snapshots count: two runs recording every one of 2³¹ − 1 steps
    with pytest.raises(TooLargeError, match=r"coarser record_every$"):
        call(alphas=[0.5, 1.0], steps=2**31 - 1, record_every=1)


def _float_fields(res):
    out = {f"axes[{k!r}]": v for k, v in res.axes.items()}
    for f in dataclasses.fields(res):
        v = getattr(res, f.name)
        if isinstance(v, float) or (isinstance(v, np.ndarray) and v.dtype.kind == "f"):
            out[f.name] = np.asarray(v)
    for f, v in zip(res.problem._fields, res.problem):
        out[f"problem.{f}"] = np.asarray(v)
    return out


FINITE_CASES = {
    # y = 0 and w0 = 0: w* = w0 = 0, the recurrence's scale is 0 at every step
    "y0": (P._replace(y=0.0), dict(alphas=[-0.5, 0.0, 0.5, 1.0, 2.0, 2.5], w0=0.0, steps=50)),
    # started at the optimum: e₀ = 0, an infinite growth band
    "at optimum": (P, dict(alphas=[-0.5, 0.5, 2.0, 2.5], w0=100.0, steps=50)),
    # |e₀| = 1e-300 in float64 growing to the bound: the contraction ratio overflows
    "tiny e0": (P._replace(y=0.0), dict(alphas=[1e10, 3.0, 0.5], w0=1e-300, steps=60,
                                        dtype="float64")),
    # αλ = 1e40: r is beyond float32, and e_t = 0 at the start (50 steps: the program of "y0")
    "huge r": (P._replace(x=1e5, y=1e5), dict(alphas=[1e30, 0.5], w0=1.0, steps=50)),
    # the canonical sweep: many runs diverge and are frozen
    "diverging": (P, dict(alphas=np.linspace(-1.0, 3.5, 101), steps=200)),
}


@pytest.mark.parametrize("mode", ["never", "tiled"])
@pytest.mark.parametrize("case", list(FINITE_CASES))
def test_nothing_non_finite_reaches_a_result(mode, case):
    problem, kw = FINITE_CASES[case]
    with warnings.catch_warnings(), fast_path(mode):
        warnings.simplefilter("error")
        res = gdlab.sweep(problem, progress=False, recurrence=True, **kw)
    assert res.recurrence_dev is not None
    bad = {k: v for k, v in _float_fields(res).items() if not np.all(np.isfinite(v))}
    assert not bad, bad
    if case == "y0":   # both sides of the recurrence are exactly 0: no deviation
        assert np.all(res.recurrence_dev == 0) and np.all(res.final_error == 0)


def test_trajectories_and_n_d_results_are_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = call(problem=P._replace(y=0.0), alphas=[0.5, 2.5, 1e30], w0=0.0, steps=30,
                   record_every=3)
        q = call(problem=Q, alphas=np.linspace(0.0, 3.0, 7), w0=Q.w_star, steps=30,
                 optimizer="momentum")
    for r in (res, q):
        bad = {k: v for k, v in _float_fields(r).items() if not np.all(np.isfinite(v))}
        assert not bad, bad


def test_an_integer_valued_loss_is_refused_for_its_dtype():
    """The shape () is right; the message says the dtype is what is wrong (it said "returns shape
    () (int32)")."""
    import jax.numpy as jnp
    p = gdlab.problems.custom(lambda w, c: jnp.round(w * c).astype(jnp.int32), c=1.0)
    with pytest.raises(ArgumentError) as exc:
        call(problem=p, w0=1.0)
    assert exc.value.argument == "problem.loss"
    assert exc.value.detail.endswith(
        "'s loss returns a value of dtype int32, not a real number (the dtype is wrong, not the "
        "shape); a loss must return one real number, computed in floating point (an integer has "
        "no gradient)"), str(exc.value)
