"""The edge of stability on a real dataset: sharpness along full-batch training on sklearn's digits.

Cohen et al. (2021, 2022): full-batch gradient descent with step α raises the sharpness
λ₁ = λ_max(∇²L) ("progressive sharpening") until it reaches 2/α, then hovers there while the loss
keeps falling, non-monotonically. Heavy ball (optax form) settles at 2(1 + β)/α, Adam's
preconditioned sharpness λ₁(P⁻¹H), P = diag(√v̂ + ε), at (2 + 2β₁)/((1 − β₁)α) = 38/α at β₁ = 0.9.

Setup (``gdlab.networks.digits_mlp``): the first 1000 of scikit-learn's 1797 8×8 digit images
(shipped on disk), pixels in [0, 1] centred, one-hot targets, tanh MLP 64-128-128-10 (standard
parameterization, 25 856 parameters), L = mean over examples of ‖f(x) − y‖², float32. Each
optimizer's step sizes run as one compiled program (``gdlab.track``): the loss every step, the
sharpness every ``--every`` steps by ``--iters`` Lanczos iterations.

Writes to ``--out``: results.npz (per optimizer, prefixed ``<optimizer>_``: alpha, loss (N, T+1),
sharpness (N, T/k+1, 1), preconditioned for Adam, threshold, sharpness_steps —
``gdlab.eos_study.result_arrays``), summary.json (per step size: the first step at
the threshold, sharpness/threshold over the last half: median, min, max), and eos_<optimizer>.png
(loss over steps; sharpness over steps with the thresholds dashed). ``--bench`` also times the
multi-α program against a loop of single-α programs, and the same program without Lanczos.

Run:  python experiments/eos_digits.py --out runs/eos_digits   (about 2 minutes on 2 CPU cores)
One optimizer as a config: ``gdlab run configs/eos_digits.toml`` (``gdlab.eos_study``, the same
figures, table and plots).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import gdlab
from gdlab import tracking
from gdlab.eos_study import MEASURE, figure, result_arrays, table

DEFAULT_ALPHAS = {"sgd": "4,6,8,10", "momentum": "8,12,16", "adam": "0.004,0.008,0.016"}


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/eos_digits"))
    ap.add_argument("--optimizers", default="sgd,momentum,adam")
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--hidden", default="128,128")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--dtype", default="float32")
    for name, alphas in DEFAULT_ALPHAS.items():
        ap.add_argument(f"--alphas-{name}", default=alphas)
    ap.add_argument("--bench", action="store_true")
    return ap.parse_args(argv)


def bench(problem, alphas, args) -> dict:
    """The multi-α program vs a loop of single-α programs (one learning rate per run, as the
    published code), and the same multi-α program without Lanczos."""
    kw = dict(steps=args.steps, every=args.every, iters=args.iters, dtype=args.dtype)
    multi = gdlab.track(problem, alphas, **kw)
    loop_compile = loop_run = 0.0
    for a in alphas:
        one = gdlab.track(problem, [a], **kw)
        loop_compile += one.compile_s
        loop_run += one.run_s
    bare = gdlab.track(problem, alphas, sharpness=False, **kw)
    return {"alphas": [float(a) for a in alphas], "multi_compile_s": multi.compile_s,
            "multi_run_s": multi.run_s, "loop_compile_s": loop_compile, "loop_run_s": loop_run,
            "no_lanczos_run_s": bare.run_s,
            "lanczos_share": 1 - bare.run_s / multi.run_s}


def main(argv=None) -> dict:
    args = parse(argv)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    problem = gdlab.networks.digits_mlp(hidden=hidden, points=args.points)
    args.out.mkdir(parents=True, exist_ok=True)
    arrays, summary = {}, {"setup": {k: (str(v) if isinstance(v, Path) else v)
                                     for k, v in vars(args).items()}}
    for name in args.optimizers.split(","):
        alphas = [float(a) for a in getattr(args, f"alphas_{name}").split(",")]
        t0 = time.perf_counter()
        res = gdlab.track(problem, alphas, optimizer=name, steps=args.steps, every=args.every,
                          iters=args.iters, dtype=args.dtype)
        rows = tracking.summary(res)
        summary[name] = {"rows": rows, "hparams": res.hparams, "compile_s": res.compile_s,
                         "run_s": res.run_s, "wall_s": time.perf_counter() - t0}
        arrays.update({f"{name}_{k}": v for k, v in result_arrays(res).items()})
        figure(res, name).savefig(args.out / f"eos_{name}.png", dpi=110)
        print(f"{name} (compile {res.compile_s:.1f} s, run {res.run_s:.1f} s), "
              f"{MEASURE[name]}/threshold over the last half:")
        print(table(rows))
    if args.bench:
        summary["bench"] = b = bench(problem, [float(a) for a in args.alphas_sgd.split(",")], args)
        print(f"bench (sgd, {len(b['alphas'])} step sizes): one program {b['multi_run_s']:.2f} s "
              f"(+{b['multi_compile_s']:.1f} s compile); loop of single-α programs "
              f"{b['loop_run_s']:.2f} s (+{b['loop_compile_s']:.1f} s compile); without Lanczos "
              f"{b['no_lanczos_run_s']:.2f} s: Lanczos share {b['lanczos_share']:.0%}")
    np.savez(args.out / "results.npz", **arrays)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False,
                                                      default=str))
    return summary


if __name__ == "__main__":
    main()
