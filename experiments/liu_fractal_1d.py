"""Liu et al. (2024) in one dimension: the fractal trainability boundary of a rippled parabola.

Y. Liu, "Complex fractal trainability boundary can arise from trivial non-convexity" (2024,
arXiv:2406.13971), multiplicative case. Gradient descent w_{t+1} = w_t − α f'(w_t) on

    f(w)   = w² (1 + δ cos(2πw/λ)),                          δ = 10⁻³, λ = 0.1, w₀ = 1,
    f'(w)  = 2w (1 + δ cos(2πw/λ)) − w² δ (2π/λ) sin(2πw/λ),
    f''(0) = 2(1 + δ):  w* = 0 is linearly stable iff α < α_c = 1/(1 + δ) ≈ 0.999.

f is a user loss (``gdlab.problems.custom``), differentiated by ``jax.grad``; 2^20 step sizes α
in [0, 1.5] are swept at once, 1000 steps each, in float64. The ripple is tiny in f but not in f'':
δ(2π/λ)² ≈ 3.9 > 2, so f is non-convex near w₀ = 1 and the orbit's fate near α_c depends on α in
a complicated way. (Writing w = b·u maps (λ, w₀) to (λ/b, w₀/b) with the same α and loss ratios,
so only w₀/λ and δ matter.)

Judgment: by the loss, without an optimum. Liu asks whether the loss stays bounded or blows up
(loss blow-up = divergence); gdlab's loss judgment (``gdlab.regimes.judge_by_loss``) is that
question: ``diverged`` = L_t/L₀ > 10⁶ or not finite at some step, ``converged`` = the mean of the
last 20 ratios below 1 (Sohl-Dickstein's "trained"; the sign of ``res.score`` is the same split,
checked on every run), ``undecided`` = neither. Passing ``optimum=0.0`` instead judges the distance
|w_t − 0| by its late-half over early-half maximum: that asks "does w reach the minimum", not
"does the loss blow up", and reads a bounded orbit's slow drift as convergence or divergence. At
2^16 step sizes it disagrees with the loss judgment on 599 runs, all at α ≥ 0.98: 204 bounded
orbits whose late loss stays below L₀ are "diverging" (late |w| peak / early peak = 1.0000001),
268 bounded orbits whose loss never falls below L₀ are "converging" (0.99999); the other 127 blew
up in one program and not in the other, whose rounding differs (see Rounding below).

The boundary: labels[i] = run i trained (``converged``); boundary point i where labels[i] ≠
labels[i+1] (``gdlab.fractal.boundary``). α = 0 cannot train (L_t = L₀): the point between α₀ = 0
and α₁ is a trivial, isolated boundary point that adds one box at every scale and is left out.
N(k) = the number of the 2^k equal α-intervals that hold a boundary point (box size 2^(K−k) grid
points on 2^K step sizes, k = 4 … K); D = least-squares slope of log N(k) against log 2^k
(``gdlab.fractal.dimension``). The same is measured for Liu's own split, bounded (not
``diverged``) vs divergent: the undecided runs, bounded orbits up to α ≈ 1.14, move that boundary.

Which scales are fitted, and why (``fit_scales``):

* finest: k ≤ K − 5. A box of 2^(K−k) samples is seen as holding a boundary only if two
  neighbouring samples in it differ; a box whose label changes cancel out between samples is
  missed, and fewer are missed the more samples the box holds. The local slope is biased low over
  the finest five octaves: 0.42, 0.47, 0.57, 0.69, 0.84 at k = 20 … 16 on 2^20 step sizes, against
  0.91–0.97 at k = 11 … 15. The bias follows the grid, not α: the same grid subsampled 2× and 4×
  shows the same falloff at the same distance K − k from its own spacing (printed as the
  "sampling check").
* coarsest: at least ``gdlab.fractal.MIN_FIT_BOXES`` = 8 boxes across the boundary's extent
  (0.9988 … 1.034 for the trained split): coarser boxes count the extent, not its structure.

With the defaults that is k = 9 … 15 (k = 7 … 15 for the bounded split). The standard error is
that of the least-squares slope; the local slopes inside the fit range (printed) show the
systematic spread, which is larger.

Rounding: near α_c the orbits are chaotic transients, so a run's fate is sensitive to rounding as
well as to α. Evaluating the same gradient in another algebraically equal order
(``--rounding-check``: f written as w² + δ w² cos(2πw/λ)) flips 4824 of the 2^20 labels, about as
many as there are boundary points (4917), while D moves from 0.933 to 0.944: the boundary's
statistics are the measurement, not its individual points.

Result at the defaults (δ = 10⁻³, λ = 0.1, 2^20 × 1000 steps): trained vs not, 4917 boundary
points in α ∈ [0.9988, 1.0341], D = 0.933 ± 0.007 over k = 9 … 15 (local slopes 0.89–0.97; with
the rounding check's spread, D ≈ 0.93–0.95). Bounded vs divergent, 6743 points in [1.0051, 1.1365],
D = 0.77 ± 0.01 over k = 7 … 15, but its local slopes wander from 0.61 to 0.88: that log-log plot
is not straight, and a single number describes it poorly.

Liu reports that this boundary is fractal; this script reports what it measures, not a comparison
with a number from the paper.

Run:  python experiments/liu_fractal_1d.py [--log2-n 20] [--steps 1000] [--delta 1e-3]
          [--lam 0.1] [--scales KLO KHI] [--rounding-check] [--out DIR]
Default size (2^20 runs × 1000 steps): 28 s of simulation on an idle 2-core CPU (38,000 runs/s),
59 s on a shared one; 2^14 step sizes take a second. Exits 1 if the score's sign and the regime
disagree on any run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

import gdlab
from gdlab import REGIME_INFO, Regime, fractal, plots

ALPHA_MAX = 1.5
W0 = 1.0
K_MIN = 4          # coarsest resolution counted: 2^4 intervals
FINE_OCTAVES = 5   # the finest octaves, biased low by sampling, left out of the fit (docstring)
LOSS_REGIMES = (Regime.CONVERGED, Regime.DIVERGED, Regime.UNDECIDED)


def loss(w, delta, lam):
    """f(w) = w² (1 + δ cos(2πw/λ))."""
    return w**2 * (1 + delta * jnp.cos(2 * jnp.pi * w / lam))


def loss_expanded(w, delta, lam):
    """The same f as w² + δ w² cos(2πw/λ): equal in exact arithmetic, rounded differently."""
    return w**2 + delta * w**2 * jnp.cos(2 * jnp.pi * w / lam)


class Boundary(NamedTuple):
    """The boundary of one binary split of the runs and its box-counting dimension."""

    name: str
    labels: np.ndarray       # shape=(n,), bool: the split
    points: np.ndarray       # shape=(n-1,), bool: labels[i] != labels[i+1], α_i > 0
    ks: np.ndarray           # shape=(m,), int: k = 4 … K, ascending
    counts: np.ndarray       # shape=(m,), int: N(k)
    slopes: np.ndarray       # shape=(m,): local slope between k−1 and k (nan at k = 4)
    fit: fractal.FractalDimension
    fit_ks: tuple[int, int]  # the fitted k range, inclusive
    fit_rule: str            # why these scales
    extent: tuple[float, float]  # α of the first and last boundary point's outer neighbours


class Study(NamedTuple):
    alpha: np.ndarray        # shape=(n,), float64
    result: object           # gdlab.SweepResult, keep="compact"
    trained: Boundary        # converged vs not
    bounded: Boundary        # not diverged vs diverged (Liu's split)
    sweep_wall_s: float
    score_agrees: bool       # sign(score) < 0 ⇔ regime == converged, on every run
    sampling: dict           # local slopes by octaves from the grid, grids 2^K, 2^(K−1), 2^(K−2)
    rounding: dict | None


def simulate(log2_n: int, steps: int, delta: float, lam: float, loss_fn=loss):
    """The sweep of 2^log2_n step sizes in [0, ALPHA_MAX]: (α, SweepResult, wall seconds)."""
    alpha = np.linspace(0.0, ALPHA_MAX, 2**log2_n)
    problem = gdlab.problems.custom(loss_fn, delta=delta, lam=lam)
    t0 = time.perf_counter()
    res = gdlab.sweep(problem, alpha, w0=W0, steps=steps, dtype="float64", keep="compact")
    return alpha, res, time.perf_counter() - t0


def boundary_points(labels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Positions i where the split changes between α_i and α_{i+1}, without the one at α = 0."""
    return fractal.boundary(labels) & (alpha[:-1] > 0)


def fit_scales(points: np.ndarray, alpha: np.ndarray, log2_n: int) -> tuple[int, int, str]:
    """The fitted k range (docstring): k ≤ K − FINE_OCTAVES and ≥ 8 boxes across the extent."""
    idx = np.flatnonzero(points)
    extent = alpha[idx[-1] + 1] - alpha[idx[0]]
    k_lo = max(K_MIN, math.ceil(math.log2(fractal.MIN_FIT_BOXES * (alpha[-1] - alpha[0])
                                          / extent)))
    k_hi = log2_n - FINE_OCTAVES
    if k_hi - k_lo >= 2:
        return k_lo, k_hi, (f"k ≤ K − {FINE_OCTAVES} (finer octaves biased low by sampling), "
                            f"≥ {fractal.MIN_FIT_BOXES} boxes across the boundary's extent")
    k_hi = min(log2_n, max(k_hi, K_MIN + 2))
    return k_hi - 2, k_hi, ("grid too coarse for both limits: the three scales nearest them, "
                            "indicative only")


def measure(name: str, labels: np.ndarray, alpha: np.ndarray, log2_n: int,
            scales: tuple[int, int] | None) -> Boundary:
    """Boundary points of the split ``labels`` and D = slope of log N(k) over log 2^k."""
    points = boundary_points(labels, alpha)
    if not points.any():
        raise SystemExit(f"{name}: no boundary point among {alpha.size} step sizes; "
                         "nothing to measure (try a larger δ or more steps)")
    if scales is None:
        k_lo, k_hi, rule = fit_scales(points, alpha, log2_n)
    else:
        (k_lo, k_hi), rule = scales, "given by --scales"
    sizes = 2 ** np.arange(0, log2_n - K_MIN + 1)           # size 2^(K−k) ⇔ resolution k
    fit = fractal.dimension(points, is_mask=True, sizes=sizes,
                            scales=(2 ** (log2_n - k_hi), 2 ** (log2_n - k_lo)))
    ks = log2_n - np.log2(fit.sizes).astype(int)
    idx = np.flatnonzero(points)
    return Boundary(name, labels, points, ks[::-1], fit.counts[::-1],
                    np.concatenate([[np.nan], fit.local_slopes[::-1]]), fit, (k_lo, k_hi), rule,
                    (float(alpha[idx[0]]), float(alpha[idx[-1] + 1])))


def sampling_check(labels: np.ndarray, alpha: np.ndarray, log2_n: int) -> dict:
    """Local slopes by octave o = K' − k from the grid spacing, for the grid and its 2×, 4×
    subsamples (K' = K, K−1, K−2): a bias that follows the grid has equal columns."""
    octaves = min(8, log2_n - 2 - K_MIN)
    out = {}
    for j in range(3):
        points = boundary_points(labels[::2**j], alpha[::2**j])
        _, n = fractal.box_counts(points, 2 ** np.arange(octaves + 1))
        out[f"2^{log2_n - j}"] = (-np.diff(np.log(np.maximum(n, 1))) / math.log(2)).tolist()
    return out


def run(log2_n: int = 20, steps: int = 1000, delta: float = 1e-3, lam: float = 0.1,
        scales: tuple[int, int] | None = None, rounding_check: bool = False) -> Study:
    """Sweep, classify, and measure both boundaries (the docstring's study, without I/O)."""
    alpha, res, wall = simulate(log2_n, steps, delta, lam)
    trained = res.regime == Regime.CONVERGED
    t = measure("trained vs not", trained, alpha, log2_n, scales)
    b = measure("bounded vs divergent", res.regime != Regime.DIVERGED, alpha, log2_n, scales)
    rounding = None
    if rounding_check:
        _, alt, _ = simulate(log2_n, steps, delta, lam, loss_expanded)
        r = measure("trained (expanded f)", alt.regime == Regime.CONVERGED, alpha, log2_n,
                    t.fit_ks)
        rounding = {"labels_flipped": int(np.count_nonzero(r.labels != trained)),
                    "n_boundary": r.fit.n_boundary, "dimension": r.fit.dimension,
                    "stderr": r.fit.stderr, "counts": r.counts.tolist()}
    return Study(alpha, res, t, b, wall, bool(np.array_equal(res.score < 0, trained)),
                 sampling_check(trained, alpha, log2_n), rounding)


def report(s: Study, args) -> str:
    res, t, b = s.result, s.trained, s.bounded
    regimes = {REGIME_INFO[r].name: int(np.count_nonzero(res.regime == r)) for r in LOSS_REGIMES}
    lines = [
        f"Liu (2024), 1-D: f(w) = w²(1 + δ cos(2πw/λ)), δ = {args.delta:g}, λ = {args.lam:g}, "
        f"w₀ = {W0:g}; α_c = 1/(1 + δ) = {1 / (1 + args.delta):.6f}",
        f"2^{args.log2_n} = {res.n_runs} step sizes in [0, {ALPHA_MAX:g}], {res.steps} steps, "
        f"{res.dtype} (engine path: {res.engine_path})",
        f"runtime: {s.sweep_wall_s:.1f} s wall (compile {res.compile_s:.1f} s, simulate "
        f"{res.run_s:.1f} s); {res.n_runs / res.run_s:,.0f} runs/s, "
        f"{res.updates_per_s:.3g} updates/s",
        "regimes: " + ", ".join(f"{k} {v}" for k, v in regimes.items())
        + f"; score sign = trained on every run: {'yes' if s.score_agrees else 'NO'}",
    ]
    for x in (t, b):
        lines.append(f"{x.name}: {x.fit.n_boundary} boundary points (α = 0 left out) in "
                     f"α ∈ [{x.extent[0]:.5f}, {x.extent[1]:.5f}]")
    lines.append(f"\n{'k':>3} {'N(k) trained':>13} {'slope':>6}  {'N(k) bounded':>13} "
                 f"{'slope':>6}   (* fitted)")
    for i, k in enumerate(t.ks):
        mark = "*" if t.fit_ks[0] <= k <= t.fit_ks[1] else " "
        sl = [("" if np.isnan(x.slopes[i]) else f"{x.slopes[i]:.3f}") for x in (t, b)]
        lines.append(f"{k:>3}{mark}{t.counts[i]:>13} {sl[0]:>6}  {b.counts[i]:>13} {sl[1]:>6}")
    for x in (t, b):
        lo, hi = x.fit_ks
        inside = x.slopes[(x.ks > lo) & (x.ks <= hi)]
        lines.append(f"D ({x.name}) = {x.fit.dimension:.3f} ± {x.fit.stderr:.3f} over k = "
                     f"{lo} … {hi} ({x.fit_rule}); local slopes there "
                     f"{inside.min():.2f} … {inside.max():.2f}")
    lines.append("sampling check, local slope at o = K' − k octaves from the grid spacing "
                 "(o = 0 finest):")
    for grid, sl in s.sampling.items():
        lines.append(f"  grid {grid:>5}: " + " ".join(f"{x:.2f}" for x in sl))
    if s.rounding is not None:
        r = s.rounding
        lines.append(f"rounding check (f as w² + δw²cos): {r['labels_flipped']} labels flipped; "
                     f"{r['n_boundary']} boundary points, D = {r['dimension']:.3f} ± "
                     f"{r['stderr']:.3f} over the same scales")
    return "\n".join(lines)


def as_json(s: Study, args) -> dict:
    res = s.result
    def split(x: Boundary) -> dict:
        return {"n_boundary": x.fit.n_boundary, "alpha_extent": x.extent,
                "k": x.ks.tolist(), "counts": x.counts.tolist(),
                "local_slopes": [None if np.isnan(v) else v for v in x.slopes.tolist()],
                "fit_k": list(x.fit_ks), "fit_rule": x.fit_rule,
                "dimension": x.fit.dimension, "stderr": x.fit.stderr}
    return {
        "problem": {"loss": "w^2 (1 + delta cos(2 pi w / lam))", "delta": args.delta,
                    "lam": args.lam, "w0": W0, "alpha_c": 1 / (1 + args.delta)},
        "sweep": {"n": res.n_runs, "log2_n": args.log2_n, "alpha": [0.0, ALPHA_MAX],
                  "steps": res.steps, "dtype": res.dtype, "engine_path": res.engine_path,
                  "judged_by": "loss ratio L_t/L_0 (no optimum)"},
        "runtime": {"wall_s": s.sweep_wall_s, "compile_s": res.compile_s, "run_s": res.run_s,
                    "runs_per_s": res.n_runs / res.run_s, "updates_per_s": res.updates_per_s},
        "regimes": {REGIME_INFO[r].name: int(np.count_nonzero(res.regime == r))
                    for r in LOSS_REGIMES},
        "score_sign_agrees": s.score_agrees,
        "trained_vs_not": split(s.trained), "bounded_vs_divergent": split(s.bounded),
        "sampling_check": s.sampling, "rounding_check": s.rounding,
    }


def figure(s: Study, args) -> Figure:
    """The regime along α (all of it, and the boundary's neighbourhood), and log N(k) vs k."""
    codes = [int(r) for r in LOSS_REGIMES]
    cmap = ListedColormap([REGIME_INFO[r].color for r in LOSS_REGIMES])
    norm = BoundaryNorm(np.array(codes + [codes[-1] + 1]) - 0.5, len(codes))
    fig = Figure(figsize=(9, 8), layout="constrained")
    full, zoom, loglog = fig.subplots(3, 1, height_ratios=[1, 1, 4])
    lo, hi = min(s.trained.extent[0], s.bounded.extent[0]), max(s.trained.extent[1],
                                                                 s.bounded.extent[1])
    pad = 0.05 * (hi - lo)
    near = (s.alpha >= lo - pad) & (s.alpha <= hi + pad)
    for ax, sel in ((full, slice(None)), (zoom, near)):
        edges, cells = plots.reduce_regimes(s.alpha[sel], s.result.regime[sel][None, :], log=False)
        ax.pcolormesh(edges, [0, 1], cells, cmap=cmap, norm=norm, rasterized=True)
        ax.axvline(1 / (1 + args.delta), color="black", ls="--", lw=1)
        ax.set_yticks([])
    for a in (lo - pad, hi + pad):
        full.axvline(a, color="black", lw=0.8)
    full.set_title(f"regime along α: 2^{args.log2_n} runs, {s.result.steps} steps (dashed: "
                   "α_c = 1/(1 + δ); solid: the range zoomed below)", fontsize=10)
    zoom.set_xlabel("step size α")
    full.legend(handles=[Patch(color=REGIME_INFO[r].color, label=REGIME_INFO[r].name)
                         for r in LOSS_REGIMES], loc="upper left", fontsize=8)
    for x, color in ((s.trained, "#2166ac"), (s.bounded, "#b2182b")):
        fitted = (x.ks >= x.fit_ks[0]) & (x.ks <= x.fit_ks[1])
        loglog.plot(x.ks, np.log2(x.counts), "o", mfc="none", color=color)
        loglog.plot(x.ks[fitted], np.log2(x.counts[fitted]), "o", color=color,
                    label=f"{x.name}: D = {x.fit.dimension:.3f} ± {x.fit.stderr:.3f}")
        kk = np.array(x.fit_ks, float)
        intercept = np.mean(np.log2(x.counts[fitted]) - x.fit.dimension * x.ks[fitted])
        loglog.plot(kk, intercept + x.fit.dimension * kk, "-", color=color)
    k0 = s.trained.fit_ks[0]
    loglog.plot(s.trained.ks, s.trained.ks - k0 + np.log2(s.trained.counts[s.trained.ks == k0]),
                ":", color="gray", label="slope 1")
    loglog.set_xlabel("k (2^k equal α-intervals)")
    loglog.set_ylabel("log₂ N(k)")
    loglog.set_title("box counts of the boundary points (filled: fitted scales)", fontsize=10)
    loglog.legend(fontsize=9)
    return fig


def main(argv: list[str] | None = None) -> Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-n", type=int, default=20, help="2^N step sizes (default 20)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--delta", type=float, default=1e-3, help="ripple amplitude δ")
    parser.add_argument("--lam", type=float, default=0.1, help="ripple wavelength λ")
    parser.add_argument("--scales", type=int, nargs=2, metavar=("KLO", "KHI"),
                        help="fit k = KLO … KHI instead of the rule in the docstring")
    parser.add_argument("--rounding-check", action="store_true",
                        help="rerun with f written as w² + δw²cos(2πw/λ) (twice the time)")
    parser.add_argument("--out", help="directory for liu_fractal_1d.json and .png")
    args = parser.parse_args(argv)
    if not 8 <= args.log2_n <= 26:
        parser.error(f"--log2-n {args.log2_n}: use 8 … 26 (at least 3 scales above k = 4)")
    if not (abs(args.delta) < 1 and args.lam > 0):
        parser.error(f"--delta {args.delta} --lam {args.lam}: need |δ| < 1 (so f > 0 off w = 0, "
                     "L₀ > 0) and λ > 0")
    if args.scales is not None and not K_MIN <= args.scales[0] <= args.scales[1] - 2 \
            <= args.log2_n - 2:
        parser.error(f"--scales {args.scales[0]} {args.scales[1]}: need {K_MIN} ≤ KLO ≤ KHI − 2, "
                     f"KHI ≤ {args.log2_n}")
    study = run(args.log2_n, args.steps, args.delta, args.lam,
                None if args.scales is None else tuple(args.scales), args.rounding_check)
    print(report(study, args))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "liu_fractal_1d.json").write_text(json.dumps(as_json(study, args), indent=1))
        figure(study, args).savefig(out / "liu_fractal_1d.png", dpi=130,
                                    metadata={"Software": None})
        print(f"results in {out}/liu_fractal_1d.json, figure in {out}/liu_fractal_1d.png")
    return study


if __name__ == "__main__":
    sys.exit(0 if main().score_agrees else 1)
