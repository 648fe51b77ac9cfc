"""experiments/logistic_gradient_check.py runs top to bottom, passes, and catches the planted sign
error."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_logistic_gradient_check_script_passes():
    proc = subprocess.run([sys.executable,
                           os.path.join("experiments", "logistic_gradient_check.py")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("PASS: logistic-loss gradient matches autodiff and finite differences in all 8 checks"
            in proc.stdout)
    assert "8/8 PASS (float32, float64)" in proc.stdout
    assert "FAIL logistic (sign flipped)" in proc.stdout and "the sign is wrong" in proc.stdout
