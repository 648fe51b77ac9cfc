"""Bad input an audit of the CLI and the API found accepted, misreported or fatal.

Each case failed before its fix: an absurd process count ran the machine out of memory; a user's
module calling ``sys.exit`` ended gdlab silently with that status; booleans beside numbers in a
list became 1.0; a list ``w0`` or ``optimum`` of a user's loss became a pytree of numbers; a vector
w0 reached the scalar orbit study as a traceback; and five messages named the wrong key.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest

import gdlab
from gdlab import cli, distributed

LOSS_CONFIG = """\
[problem]
name = "custom"
loss = "{loss}"
{extra}
[sweep]
alpha = {{ start = 0.1, stop = 1.2, num = 12 }}
[run]
steps = 40
tol = 1e-3
"""


def _one_line(capsys, pattern: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def _refused(tmp_path, capsys, monkeypatch, argv, pattern):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(argv) == 2
    _one_line(capsys, pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # nothing written


def test_an_absurd_process_count_is_refused():
    # (The command line's --num-processes: tests/test_distributed.py's cluster options.)
    with pytest.raises(ValueError, match=r"num_processes: 1000000000 processes is more than"):
        distributed.check_cluster("127.0.0.1:1234", 10**9, 0)
    assert distributed.check_cluster("127.0.0.1:1234", distributed.MAX_PROCESSES, 0)


@pytest.mark.parametrize("module", [
    "import sys\nsys.exit(0)\n",                              # on import, status 0
    "import sys\nsys.exit(3)\n",
    "def f(w):\n    raise SystemExit(0)\n",                   # when the loss is traced
])
def test_a_user_module_calling_sys_exit_is_one_line(tmp_path, capsys, monkeypatch, module):
    (tmp_path / "m.py").write_text(module)
    (tmp_path / "c.toml").write_text(LOSS_CONFIG.format(loss="m:f", extra="w0 = 0.5"))
    _refused(tmp_path, capsys, monkeypatch, ["run", "c.toml", "--out", "out"],
             r"c\.toml: problem\.loss: .*SystemExit")


@pytest.mark.parametrize("call, pattern", [
    (lambda p: gdlab.sweep(p, [True, 1.0], steps=5), r"alphas: \[True, 1\.0\] holds booleans"),
    (lambda p: gdlab.sweep(p, [0.5], over={"x": [True, 2.0]}, steps=5),
     r"over\['x'\]: .* holds booleans"),
    (lambda p: gdlab.problems.quadratic(spectrum=[2.0, True]), r"spectrum: .* holds booleans"),
    (lambda p: gdlab.problems.quadratic(dim=3, w_star=[1.0, False, 2.0]),
     r"w_star: .* holds booleans"),
    (lambda p: gdlab.problems.quadratic(dim=3, w_star=[1.0, 2.0]),
     r"w_star: shape \(2,\) does not fit dimension 3"),
])
def test_booleans_beside_numbers_are_not_ones(call, pattern):
    # np.asarray([True, 1.0]) is [1.0, 1.0]: the boolean would silently be a step size of 1.
    assert np.asarray([True, 1.0]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=pattern):
        call(gdlab.problems.scalar_regression())


@pytest.mark.parametrize("key", ["sweep.alpha", "sweep.w0"])
def test_booleans_beside_numbers_in_a_config_are_refused(tmp_path, capsys, monkeypatch, key):
    (tmp_path / "c.toml").write_text(textwrap.dedent("""\
        [problem]
        name = "scalar_regression"
        [sweep]
        alpha = { start = 0.0, stop = 2.0, num = 5 }
        [run]
        steps = 5
        """))
    _refused(tmp_path, capsys, monkeypatch,
             ["run", "c.toml", "--out", "out", "--set", f"{key}=[true, 1.0]"],
             rf"c\.toml: {re.escape(key)}: .* holds booleans")


SUMSQ = "import jax.numpy as jnp\n\ndef sumsq(w):\n    return jnp.sum((w - 1.0) ** 2)\n"


def test_a_list_w0_of_a_user_loss_is_a_vector(tmp_path, capsys, monkeypatch):
    # L(w) = ‖w − 1‖², w ∈ R²: judged by its loss (no optimum given). GD: e ← (1 − 2α)e, so from
    # w₀ = 0 every α in (0, 1) converges; the loss ratio ρ_T = L_T/L_0 = (1 − 2α)^(2T).
    (tmp_path / "ml.py").write_text(SUMSQ)
    (tmp_path / "c.toml").write_text(LOSS_CONFIG.format(loss="ml:sumsq", extra="w0 = [0.0, 0.0]"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "c.toml", "--out", "out", "--quiet"]) == 0
    res = np.load(tmp_path / "out" / "results.npz", allow_pickle=False)
    assert res["w0"].shape == (12, 2)                     # w₀ of each run, a vector
    alpha = res["alpha"].astype(np.float64)
    converging = (alpha > 0.02) & (alpha < 0.98)
    names = res["regime_names"][res["regime"]]
    assert (names[converging] == "converged").all() and (names[alpha > 1.02] == "diverged").all()
    # float32 resolves |w − 1| to ulp(1) = 1.2e-7, so ρ down to ~1e-14: compare above 1e-10.
    ratio, seen = (1 - 2 * alpha) ** 80, res["loss_ratio"]
    big = converging & (ratio > 1e-10)
    assert big.sum() == 2 and np.allclose(seen[big], ratio[big], rtol=1e-3)
    assert (seen[converging & ~big] < 1e-10).all()


def test_a_vector_w0_with_an_optimum_is_refused_for_the_orbit_study(tmp_path, capsys,
                                                                    monkeypatch):
    (tmp_path / "ml.py").write_text(SUMSQ)
    (tmp_path / "c.toml").write_text(LOSS_CONFIG.format(
        loss="ml:sumsq", extra="optimum = [1.0, 1.0]\nw0 = [0.0, 0.0]"))
    _refused(tmp_path, capsys, monkeypatch, ["run", "c.toml", "--out", "out"],
             r"c\.toml: problem\.w0: 2 parameters; the orbit study .* takes one")
    with pytest.raises(ValueError, match=r"w0: shape \(2,\): orbits .* scalar parameter"):
        gdlab.dynamics.orbits(gdlab.problems.double_well(), [0.1], w0=[0.5, 0.5])


@pytest.mark.parametrize("config, sets, pattern", [
    ("linreg_alpha_sweep", ["problem.seed=-1"], r"problem\.seed: -1 must be >= 0"),
    ("linreg_alpha_sweep", ["problem.kappa=1e300"], r"problem\.kappa: 1e\+300 makes XᵀX singular"),
    ("mlp_trainability", ["problem.depth=100000"], r"problem\.depth: .* use a smaller depth"),
])
def test_messages_name_the_key_at_fault(tmp_path, capsys, monkeypatch, config, sets, pattern):
    argv = ["run", config, "--out", "out"]
    for s in sets:
        argv += ["--set", s]
    _refused(tmp_path, capsys, monkeypatch, argv, pattern)


def test_bench_blames_numpy_n(capsys):
    assert cli.main(["bench", "--numpy-n", "1000000000000"]) == 2
    _one_line(capsys, r"--numpy-n: .* give a smaller --numpy-n")


def test_linear_regression_seed_is_checked_by_the_api():
    with pytest.raises(ValueError, match=r"seed: -1 must be an integer >= 0"):
        gdlab.problems.linear_regression(seed=-1)


def test_view_names_set_given_with_a_run_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "q4_alpha_sweep", "--out", "r", "--quiet", "--set", "run.steps=5",
                     "--set", "sweep.alpha.num=5"]) == 0
    capsys.readouterr()
    assert cli.main(["view", "r", "--set", "run.steps=5"]) == 2
    _one_line(capsys, r"--set run\.steps=5: --set applies to a CONFIG, not to the run directory")
