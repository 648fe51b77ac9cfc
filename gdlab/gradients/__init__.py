"""The gradient lab (homework Q1–Q3): hand-derived gradients checked three ways.

``check_gradient(f, grad_f, *args)`` compares a hand-written gradient with autodiff in the same
dtype and with float64 central differences (:mod:`gdlab.gradients.gradcheck`); the homework's
functions and their derivations are in :mod:`gdlab.gradients.functions`; the report and the study
behind ``gdlab run configs/q1_q3_gradients.toml`` in :mod:`~gdlab.gradients.report` and
:mod:`~gdlab.gradients.study`.
"""

from gdlab.gradients import functions as functions
from gdlab.gradients.gradcheck import GradCheckResult as GradCheckResult
from gdlab.gradients.gradcheck import check_gradient as check_gradient
from gdlab.gradients.report import run_homework_checks as run_homework_checks

__all__ = ["GradCheckResult", "check_gradient", "functions", "run_homework_checks"]
