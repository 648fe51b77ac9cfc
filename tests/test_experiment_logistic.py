"""experiments/logistic_gradient_check.py runs top to bottom, passes, and catches the planted sign
error (in this process: the ``run_script`` fixture of conftest.py)."""


def test_logistic_gradient_check_script_passes(run_script):
    status, out = run_script("logistic_gradient_check.py")
    assert status == 0, out
    assert ("PASS: logistic-loss gradient matches autodiff and finite differences in all 8 checks"
            in out)
    assert "8/8 PASS (float32, float64)" in out
    assert "FAIL logistic (sign flipped)" in out and "the sign is wrong" in out
