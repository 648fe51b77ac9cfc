"""Every kind of bad input: exit status 2, one line naming file, key, value and fix, no output."""

import re
from pathlib import Path

import pytest

from gdlab import cli, config

GOOD = """\
[problem]
name = "scalar_regression"
x = 1.0
y = 100.0
w0 = 0.0
[optimizer]
name = "sgd"
[sweep]
alpha = { start = 0.0, stop = 3.0, num = 31 }
[run]
steps = 20
tol = 1.0
dtype = "float32"
"""


def replace(old, new):
    assert old in GOOD
    return GOOD.replace(old, new)


CASES = [
    # hyperparameters outside the ranges their optimizer declares (gdlab.optimizers)
    ("beta 1", GOOD, ["optimizer.name=momentum", "optimizer.beta=1.0"],
     r"cfg.toml: optimizer.beta: 1.0 must be in \(-1, 1\) \(heavy ball converges on a "
     r"quadratic iff \|β\| < 1"),
    ("beta -1.5", GOOD, ["optimizer.name=nesterov", "optimizer.beta=-1.5"],
     r"cfg.toml: optimizer.beta: -1.5 must be in \(-1, 1\)"),
    ("b2 1.5", GOOD, ["optimizer.name=adam", "optimizer.b2=1.5"],
     r"cfg.toml: optimizer.b2: 1.5 must be in \[0, 1\)"),
    ("eps -1", GOOD, ["optimizer.name=adam", "optimizer.eps=-1"],
     r"cfg.toml: optimizer.eps: -1 must be in \(0, inf\)"),
    ("swept b1 stop", GOOD, ["optimizer.name=adam", "sweep.b1={start=0.0, stop=1.5, num=11}"],
     r"cfg.toml: sweep.b1.stop: 1.5 must be in \[0, 1\)"),
    ("swept beta start", GOOD, ["optimizer.name=momentum",
                                "sweep.beta={start=-1.0, stop=0.5, num=11}"],
     r"cfg.toml: sweep.beta.start: -1.0 must be in \(-1, 1\)"),
    ("swept b1 list", GOOD, ["optimizer.name=adam", "sweep.b1=[0.5, 1.0]"],
     r"cfg.toml: sweep.b1: contains 1.0, which must be in \[0, 1\)"),
    ("invalid TOML", replace("steps = 20", "steps = = 20"), [],
     r"cfg.toml: invalid TOML: .*line 11"),
    ("duplicate key", replace("steps = 20", "steps = 20\nsteps = 30"), [],
     r"cfg.toml: invalid TOML: .*"),
    ("unknown key", replace("num = 31", "nmu = 31"), [],
     r"cfg.toml: sweep.alpha: unknown key 'nmu'; use start, stop, num and optionally scale"),
    ("misspelt key", replace("steps = 20", "stpes = 20"), [],
     r"cfg.toml: run.stpes: unknown key \(did you mean 'steps'\?\)"),
    ("misspelt section", replace("[run]", "[rnu]"), [],
     r"cfg.toml: rnu: unknown key \(did you mean 'run'\?\)"),
    ("wrong type", replace("steps = 20", 'steps = "20"'), [],
     r"cfg.toml: run.steps: '20' must be an integer \(e.g. 1\)"),
    ("float steps", replace("steps = 20", "steps = 20.5"), [],
     r"cfg.toml: run.steps: 20.5 must be an integer"),
    ("num < 1", replace("num = 31", "num = 0"), [],
     r"cfg.toml: sweep.alpha.num: 0 must be an integer >= 1"),
    ("steps < 1", replace("steps = 20", "steps = 0"), [], r"cfg.toml: run.steps: 0 must be >= 1"),
    ("tol <= 0", replace("tol = 1.0", "tol = 0.0"), [], r"cfg.toml: run.tol: 0.0 must be > 0"),
    ("tol < 0", replace("tol = 1.0", "tol = -1"), [], r"cfg.toml: run.tol: -1 must be > 0"),
    ("non-finite", replace("x = 1.0", "x = nan"), [], r"cfg.toml: problem.x: nan must be finite"),
    ("inf in axis", replace("stop = 3.0", "stop = inf"), [],
     r"cfg.toml: sweep.alpha.stop: inf must be a finite number"),
    ("nan in list", replace("alpha = { start = 0.0, stop = 3.0, num = 31 }", "alpha = [0.5, nan]"),
     [], r"cfg.toml: sweep.alpha: .* non-finite value"),
    ("start > stop", replace("start = 0.0", "start = 4.0"), [],
     r"cfg.toml: sweep.alpha: start 4.0 > stop 3.0; swap them"),
    ("x = 0", replace("x = 1.0", "x = 0.0"), [], r"cfg.toml: problem.x: 0.0 must be nonzero"),
    ("unknown problem", replace('"scalar_regression"', '"scalar_regresion"'), [],
     r"cfg.toml: problem.name: 'scalar_regresion' is not one of 'scalar_regression', .* "
     r"\(did you mean 'scalar_regression'\?\)"),
    ("unknown optimizer", replace('"sgd"', '"sdg"'), [],
     r"cfg.toml: optimizer.name: 'sdg' is not a known optimizer \(did you mean 'sgd'\?\); "
     r"known: sgd, momentum"),
    ("bad dtype", replace('"float32"', '"float16"'), [],
     r"cfg.toml: run.dtype: 'float16' is not one of 'float32', 'float64'"),
    ("missing alpha", replace("alpha = { start = 0.0, stop = 3.0, num = 31 }", ""), [],
     r"cfg.toml: sweep.alpha: missing; e.g. alpha = "),
    ("missing section", replace("[sweep]\nalpha = { start = 0.0, stop = 3.0, num = 31 }\n", ""), [],
     r"cfg.toml: sweep: missing table; add a \[sweep\] section"),
    ("log scale needs positive", replace("num = 31 }", 'num = 31, scale = "log" }'), [],
     r'cfg.toml: sweep.alpha.start: 0.0 must be > 0 with scale = "log"'),
    ("malformed --set", GOOD, ["run.steps"], r"--set 'run.steps': expected KEY=VALUE"),
    ("malformed --set value", GOOD, ["run.steps=[1,"], r"--set run.steps='\[1,': not a TOML value"),
    ("--set unknown key", GOOD, ["run.stepz=5"],
     r"cfg.toml: run.stepz: unknown key \(did you mean 'steps'\?\)"),
    ("--set bad value", GOOD, ["run.steps=-3"], r"cfg.toml: run.steps: -3 must be >= 1"),
    ("--set into a value", GOOD, ["run.steps.x=1"],
     r"cfg.toml: --set run.steps.x=1: run.steps is not a table"),
    ("bad trajectories", GOOD + "[report]\ntrajectories = 0.5\n", [],
     r"cfg.toml: report.trajectories: 0.5 must be a list, e.g. \[0.5, 1.5\]"),
]


def refused(tmp_path, capsys, monkeypatch, text, sets, message):
    """The config ``text`` with ``sets`` is refused: exit 2, one line matching ``message``, nothing
    written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.toml").write_text(text, encoding="utf-8")
    argv = ["run", "cfg.toml", "--out", "out"]
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("gdlab: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.toml"]  # no output directory


@pytest.mark.parametrize("name, text, sets, message", CASES, ids=[c[0] for c in CASES])
def test_bad_config_exits_2_with_one_line(tmp_path, capsys, monkeypatch, name, text, sets, message):
    refused(tmp_path, capsys, monkeypatch, text, sets, message)


def test_good_config_loads_and_bare_word_override_is_a_string(tmp_path):
    (tmp_path / "cfg.toml").write_text(GOOD, encoding="utf-8")
    cfg = config.load(tmp_path / "cfg.toml", ["run.dtype=float64", "sweep.alpha=[0.5, 1.5, 2.5]"])
    assert cfg.dtype == "float64" and list(cfg.axes["alpha"]) == [0.5, 1.5, 2.5]
    assert cfg.resolved["run"]["steps"] == 20


def test_missing_file_and_non_utf8(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: no such config file" in capsys.readouterr().err
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    assert cli.main(["run", str(tmp_path / "bin.toml")]) == 2
    assert "bin.toml: not a UTF-8 text file" in capsys.readouterr().err


def test_output_path_that_is_a_file(tmp_path, capsys):
    (tmp_path / "cfg.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "f").write_text("x")
    assert cli.main(["run", str(tmp_path / "cfg.toml"), "--out", str(tmp_path / "f")]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


QUAD = """\
[problem]
name = "quadratic"
dim = 4
kappa = 10.0
[optimizer]
name = "momentum"
beta = 0.5
[sweep]
alpha = { start = 0.0, stop = 3.0, num = 11 }
[run]
steps = 20
"""

CASES_PROBLEMS = [
    ("unknown axis", QUAD.replace("[run]", "gamma = [1.0]\n[run]"), [],
     r"cfg.toml: sweep.gamma: not a sweepable parameter "
     r"\(sweepable here: alpha, lam_max, kappa, beta, w0\)"),
    ("misspelt axis", QUAD.replace("[run]", "kapa = [1.0]\n[run]"), [],
     r"cfg.toml: sweep.kapa: not a sweepable parameter \(did you mean 'kappa'\? "),
    ("misspelt hparam", QUAD.replace("beta = 0.5", "betta = 0.5"), [],
     r"cfg.toml: optimizer.betta: unknown key \(did you mean 'beta'\?\)"),
    ("unknown optimizer", QUAD.replace('"momentum"', '"adamm"'), [],
     r"cfg.toml: optimizer.name: 'adamm' is not a known optimizer \(did you mean 'adam'\?\)"),
    ("bad spectrum", QUAD.replace("dim = 4", "spectrum = [1.0, -1.0]"), [],
     r"cfg.toml: problem.spectrum\[1\]: -1.0 must be > 0"),
    ("kappa axis <= 0", QUAD.replace("[run]", "kappa = [0.0, 1.0]\n[run]"), [],
     r"cfg.toml: sweep.kappa: contains a value <= 0; it must be > 0"),
    ("three axes", QUAD.replace("[run]", "kappa = [2.0]\nbeta = [0.1]\n[run]"), [],
     r"cfg.toml: sweep: 3 axes \(alpha, kappa, beta\); at most 2 can be mapped"),
    ("dim not int", QUAD.replace("dim = 4", "dim = 4.5"), [],
     r"cfg.toml: problem.dim: 4.5 must be an integer"),
    ("singular data", QUAD.replace('name = "quadratic"\ndim = 4\nkappa = 10.0',
                                   'name = "linear_regression"\nX = [[1.0, 2.0], [2.0, 4.0]]\n'
                                   'y = [1.0, 2.0]'),
     [], r"cfg.toml: problem.X: XᵀX is singular"),
    ("ragged X", QUAD.replace('name = "quadratic"\ndim = 4\nkappa = 10.0',
                              'name = "linear_regression"\nX = [[1.0, 2.0], [2.0]]\n'
                              'y = [1.0, 2.0]'),
     [], r"cfg.toml: problem.X: rows must be non-empty and of equal length"),
    ("orbit window", QUAD + "[report]\norbit_window = 50\n", [],
     r"cfg.toml: report.orbit_window: 50 must be <= run.steps = 20"),
    ("--set beta out of type", QUAD, ["optimizer.beta=fast"],
     r"cfg.toml: optimizer.beta: 'fast' must be a number"),
]


@pytest.mark.parametrize("name, text, sets, message", CASES_PROBLEMS,
                         ids=[c[0] for c in CASES_PROBLEMS])
def test_bad_problem_and_optimizer_config_is_refused(tmp_path, capsys, monkeypatch, name, text,
                                                     sets, message):
    refused(tmp_path, capsys, monkeypatch, text, sets, message)


@pytest.mark.parametrize("value, message", [
    ('"some"', r"run.devices: 'some' must be \"all\" or an integer >= 1"),
    ("0", r"run.devices: 0 must be >= 1"),
])
def test_bad_devices(tmp_path, capsys, monkeypatch, value, message):
    refused(tmp_path, capsys, monkeypatch,
            GOOD.replace("steps = 20", f"steps = 20\ndevices = {value}"), [], message)


def test_too_many_devices_is_a_clear_error(tmp_path, capsys, monkeypatch):
    refused(tmp_path, capsys, monkeypatch, GOOD.replace("steps = 20", "steps = 20\ndevices = 99"),
            [], r"cfg.toml: run.devices: 99 requested but only \d+ cpu device")


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("w0 = 0.0", "w0 = [1.0, 2.0]"),
     r"cfg.toml: problem.w0: \[1.0, 2.0\] must be a number for scalar_regression"),
    (GOOD.replace("w0 = 0.0", "w0 = 1e40"), r"cfg.toml: problem.w0: 1e\+40 overflows float32"),
    (GOOD.replace("w0 = 0.0", "w0 = 1e30"), r"cfg.toml: problem.w0: .*exceeds"),
    (QUAD.replace('name = "quadratic"\ndim = 4\nkappa = 10.0',
                  'name = "linear_regression"\ny = [1.0]'),
     r"cfg.toml: problem: X, y: give both \(the data\) or neither"),
])
def test_values_checked_against_the_problem(tmp_path, capsys, monkeypatch, text, message):
    refused(tmp_path, capsys, monkeypatch, text, [], message)


def test_unroll_auto_or_integer(tmp_path, capsys, monkeypatch):
    ok = tmp_path / "ok.toml"
    ok.write_text(GOOD.replace("steps = 20", 'steps = 20\nunroll = "auto"'))
    assert config.load(ok).unroll == "auto"
    ok.unlink()
    refused(tmp_path, capsys, monkeypatch,
            GOOD.replace("steps = 20", 'steps = 20\nunroll = "fast"'),
            [], r"run.unroll: 'fast' must be \"auto\" or an integer >= 1")


_QUARTIC = "configs/quartic_bifurcation.toml"   # orbit_window = 400, max_period = 64


@pytest.mark.parametrize("sets, message", [
    # both dependent limits said at once: the window fits the steps, the period half the window
    (["run.steps=200"], r"report.orbit_window: 400 must be <= run.steps = 200; set "
                        r"report.orbit_window <= 200 \(and >= 128, twice report.max_period = "
                        r"64\), e.g. orbit_window = 200$"),
    (["run.steps=100"], r"report.orbit_window: 400 must be <= run.steps = 100; set "
                        r"report.orbit_window <= 100 and report.max_period <= 50 \(at most half "
                        r"the window\), e.g. orbit_window = 100$"),
    (["run.steps=200", "report.orbit_window=100"],
     r"report.max_period: 64 must be <= orbit_window/2 = 50; set report.max_period <= 50, or "
     r"report.orbit_window >= 128$"),
])
def test_orbit_window_errors_say_the_values_that_fit(tmp_path, capsys, monkeypatch, sets,
                                                     message):
    refused(tmp_path, capsys, monkeypatch, Path(_QUARTIC).read_text(encoding="utf-8"), sets,
            message)


def test_negative_beta_loads_fixed_and_swept(tmp_path):
    """β in (−1, 1), a negative one included: the README's β axis from −0.5 keeps working."""
    (tmp_path / "cfg.toml").write_text(GOOD, encoding="utf-8")
    cfg = config.load(tmp_path / "cfg.toml", ["optimizer.name=momentum", "optimizer.beta=-0.99",
                                              "sweep.beta={start=-0.5, stop=0.5, num=11}"])
    assert cfg.hparams == {"beta": -0.99} and cfg.axes["beta"]["start"] == -0.5
