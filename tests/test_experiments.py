"""The research scripts in experiments/ run top to bottom against the public API."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_q4_gd_dynamics_script(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "q4_gd_dynamics.py"),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "agreement: 1.0000" in p.stdout
    assert "converging_oscillating, steps to |w − 100| < 1: 7" in p.stdout
    assert (tmp_path / "q4_trajectories.png").exists() and (tmp_path / "q4_regimes.svg").exists()


def test_momentum_condition_number_script():
    p = subprocess.run([sys.executable,
                        os.path.join(ROOT, "experiments", "momentum_condition_number.py")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "momentum's advantage grows like √κ, as predicted" in p.stdout
