"""Homework Q4, top to bottom, as a research script against gdlab's public API.

Gradient descent on L(w) = ½(xw − y)² with x = 1, y = 100, w₀ = 0. Because ∇L(w) = x(xw − y),

    100 − w_{t+1} = (1 − α)(100 − w_t),

so |100 − w_t| = |1 − α|^t · 100: oscillation iff 1 − α < 0 (α > 1), convergence iff |1 − α| < 1
(0 < α < 2), a bounded two-cycle at α = 2. This script shows the three trajectories of Q4.1, then
sweeps 3001 step sizes at once and checks every run against that statement.

Run:  python experiments/q4_gd_dynamics.py [--out DIR]   (about 5 s on a 2-core CPU)
Exits non-zero if the simulation disagrees with the theory.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import gdlab
from gdlab import plots, report, theory

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="runs/q4_gd_dynamics", help="where to save the figures")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

problem = gdlab.problems.scalar_regression(x=1.0, y=100.0)

# Q4.1 — the three trajectories, every step recorded.
traj = gdlab.sweep(problem, [0.5, 1.5, 2.5], w0=0.0, steps=12, tol=1.0, record_every=1)
for i, alpha in enumerate(traj.alpha):
    print(report.trajectory_table(float(alpha), traj.snapshot_steps, traj.trajectory[i], 100.0,
                                  rows=6, diverged_at=int(traj.diverged_at[i])))
    print(f"  → {gdlab.REGIME_NAMES[traj.regime[i]]}, "
          f"steps to |w − 100| < 1: {traj.steps_to_tol[i]}\n")

# Q4.2 — sweep α over [0, 3] and read the conditions off the simulation.
res = gdlab.sweep(problem, np.linspace(0.0, 3.0, 3001), w0=0.0, steps=200, tol=1.0, recurrence=True)
for key, sentence in report.q4_statement(res.alpha, res.regime, curvature=1.0).items():
    print(f"{key:>13}: {sentence}")

# Q4.3 — every simulated step obeys |100 − w_{t+1}| = |1 − α|·|100 − w_t| to rounding, and the
# predicted regime and steps-to-tolerance agree with the simulation.
pred = theory.predict(res)
agree = theory.agreement(res, pred)
eps = np.finfo(np.float32).eps
print(f"recurrence: max deviation {res.recurrence_dev.max() / eps:.2f} eps over "
      f"{res.n_runs} runs × {res.steps} steps")
print(f"agreement: {agree.fraction:.4f} of {agree.n_compared} runs "
      f"({agree.n_sensitive} rounding-sensitive runs set aside)")

plots.save(plots.trajectories(traj.alpha, traj.snapshot_steps, traj.trajectory,
                              np.full(3, 100.0), traj.diverged_at), out, "q4_trajectories")
plots.save(plots.regime_strip(res.alpha, res.regime, pred.regime, {"α = 1": 1.0, "α = 2": 2.0}),
           out, "q4_regimes")
print(f"figures in {out}/")

ok = (agree.fraction == 1.0 and res.recurrence_dev.max() <= 4 * eps
      and list(traj.steps_to_tol[:2]) == [7, 7])
sys.exit(0 if ok else 1)
