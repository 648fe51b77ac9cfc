"""The research scripts in experiments/ run top to bottom against the public API (in this process:
the ``run_script`` fixture of conftest.py)."""


def test_q4_gd_dynamics_script(run_script, tmp_path):
    status, out = run_script("q4_gd_dynamics.py", "--out", tmp_path)
    assert status == 0, out
    assert "agreement: 1.0000" in out
    assert "converging_oscillating, steps to |w − 100| < 1: 7" in out
    assert (tmp_path / "q4_trajectories.png").exists() and (tmp_path / "q4_regimes.svg").exists()


def test_momentum_condition_number_script(run_script):
    status, out = run_script("momentum_condition_number.py")
    assert status == 0, out
    assert "momentum's advantage grows like √κ, as predicted" in out
