"""An edge-of-stability study end to end: what ``gdlab run`` does for a config with ``[track]``.

Each step size α of ``[sweep] alpha`` trains one copy of the network from the same w₀, all in one
compiled program (:func:`gdlab.track`): the loss L(w_t) every step, the top-``k`` Hessian
eigenvalues every ``every`` steps by ``iters`` Lanczos iterations (for Adam also λ₁(P⁻¹H),
P = diag(√v̂ + ε)). The figures are :func:`gdlab.tracking.summary`'s: the first step at which the
tracked sharpness reaches the threshold (2/α for GD, 2(1 + β)/α heavy ball,
(2 + 2β₁)/((1 − β₁)α) Adam), and sharpness/threshold over t ≥ T/2 (median, min, max).

Writes (complete or absent, :func:`gdlab.rundir.write_run`): results.npz (:func:`result_arrays`),
summary.json (the rows, the thresholds, config, versions, timings), ``eos_<optimizer>.png/.svg``
(:func:`figure`) and report.html. ``experiments/eos_digits.py`` uses the same pieces.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

import gdlab
from gdlab import plots, rundir, tracking
from gdlab.config import SweepConfig

__all__ = ["MEASURE", "THRESHOLD_RULE", "run_track_study", "figure", "table", "result_arrays",
           "from_arrays", "redraw"]

MEASURE = {"sgd": "λ₁", "momentum": "λ₁", "adam": "λ₁(P⁻¹H)"}   # what meets the threshold
THRESHOLD_RULE = {"sgd": "2/α", "momentum": "2(1 + β)/α", "adam": "(2 + 2β₁)/((1 − β₁)α)"}


def run_track_study(cfg: SweepConfig, out: Path, *, overwrite: bool = False,
                    progress: bool | None = None, log: Callable[[str], None] = print,
                    environment: dict) -> dict:
    """Track ``cfg`` over its step sizes, write ``out`` atomically, log the table; return the
    summary. ``progress`` is accepted for the common signature (one program: no stages);
    ``environment`` is summary.json's versions and device."""
    t_start = time.perf_counter()
    rundir.check_target(out, overwrite)
    tr = cfg.track
    res = gdlab.track(cfg.problem_value, cfg.axis_values("alpha"), optimizer=cfg.optimizer,
                      hparams=cfg.hparams, steps=cfg.steps, every=tr.every, k=tr.k,
                      iters=tr.iters, dtype=cfg.dtype)
    rows = tracking.summary(res)
    stem = f"eos_{cfg.optimizer}"
    summary = {
        "config_path": cfg.path, "config": cfg.resolved, **environment, "dtype": cfg.dtype,
        "n_runs": len(rows), "steps": cfg.steps, "optimizer": cfg.optimizer,
        "hparams": res.hparams,
        "edge_of_stability": {"measure": MEASURE[cfg.optimizer],
                              "threshold_rule": THRESHOLD_RULE[cfg.optimizer],
                              "every": tr.every, "k": tr.k, "iters": tr.iters,
                              "late": "t >= steps/2", "rows": rows}}
    lines = [f"gdlab {gdlab.__version__}: {cfg.path}: {len(rows)} step sizes × {cfg.steps} steps, "
             f"{cfg.dtype}, {jax.default_backend()} — {cfg.optimizer}, top-{tr.k} sharpness every "
             f"{tr.every} steps ({tr.iters} Lanczos iterations)",
             f"{cfg.optimizer} (compile {res.compile_s:.1f} s, run {res.run_s:.1f} s), "
             f"{MEASURE[cfg.optimizer]}/threshold ({THRESHOLD_RULE[cfg.optimizer]}) over the "
             "last half:", *table(rows).splitlines()]

    def contents(tmp: Path) -> rundir.RunFiles:
        files = plots.save(figure(res, cfg.optimizer), tmp, stem)
        summary["timings"] = {"compile_s": res.compile_s, "run_s": res.run_s,
                              "total_s": time.perf_counter() - t_start}
        summary["files"] = ["results.npz", "summary.json", *files]
        return rundir.RunFiles({"results.npz": result_arrays(res), "summary.json": summary}, [
            *lines, f"results: {out}/results.npz, {out}/summary.json; plot: {out}/{stem}.png"])

    rundir.write_run(out, overwrite, contents, log=log)
    return summary


def result_arrays(res: tracking.TrackResult) -> dict[str, np.ndarray]:
    """results.npz of a tracked run: alpha (N,), loss (N, T+1), sharpness (N, T/every+1, k),
    sharpness_steps (T/every+1,), threshold (N,), and for Adam preconditioned (N, T/every+1)."""
    arrays = {"alpha": res.alphas, "loss": res.loss, "sharpness": res.sharpness,
              "sharpness_steps": res.sharpness_steps, "threshold": res.threshold}
    if res.preconditioned is not None:
        arrays["preconditioned"] = res.preconditioned
    return arrays


def from_arrays(cfg: SweepConfig, arrays: dict[str, np.ndarray]) -> tracking.TrackResult:
    """The :class:`~gdlab.tracking.TrackResult` a run directory's results.npz (``arrays``, as
    :func:`result_arrays` wrote them) and its config hold (timings not kept: 0)."""
    return tracking.TrackResult(
        alphas=arrays["alpha"], optimizer=cfg.optimizer, hparams=dict(cfg.hparams),
        steps=cfg.steps, every=cfg.track.every, loss=arrays["loss"],
        sharpness=arrays["sharpness"], preconditioned=arrays.get("preconditioned"),
        threshold=arrays["threshold"], compile_s=0.0, run_s=0.0, dtype=cfg.dtype)


def redraw(directory: Path, cfg: SweepConfig, arrays: dict[str, np.ndarray]) -> list[str]:
    """The plot again from a run directory's results.npz, without simulating; the file names."""
    return plots.save(figure(from_arrays(cfg, arrays), cfg.optimizer), directory,
                      f"eos_{cfg.optimizer}")


def figure(res: tracking.TrackResult, name: str) -> plots.Figure:
    """The loss over steps (log scale) and the tracked sharpness over steps, each run's threshold
    dashed in its colour."""
    fig = plots.Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_sharp = fig.subplots(1, 2)
    t = np.arange(res.steps + 1)
    for i, alpha in enumerate(res.alphas):
        color = f"C{i}"
        ax_loss.plot(t, res.loss[i], color=color, lw=1, label=f"α = {alpha:g}")
        ax_sharp.plot(res.sharpness_steps, res.edge_measure[i], color=color, lw=1.2)
        ax_sharp.axhline(res.threshold[i], color=color, ls="--", lw=1)
    measure = MEASURE[res.optimizer]
    ax_loss.set(xlabel="step", ylabel="train loss", yscale="log", title=f"{name}: loss")
    ax_loss.legend()
    ax_sharp.set(xlabel="step", ylabel=measure, title=f"{name}: {measure} (dashed: threshold)")
    return fig


def table(rows: list[dict]) -> str:
    """:func:`gdlab.tracking.summary`'s rows as a Markdown table."""
    lines = ["| α | threshold | first step at threshold | median | min | max | final loss |",
             "|---|---|---|---|---|---|---|"]
    fmt = lambda v: "—" if v is None else f"{v:.3f}"
    for r in rows:
        first = r["first_step_at_threshold"]
        lines.append(f"| {r['alpha']:g} | {r['threshold']:.4g} | "
                     f"{'never' if first is None else first} | {fmt(r['ratio_median'])} | "
                     f"{fmt(r['ratio_min'])} | {fmt(r['ratio_max'])} | "
                     f"{'diverged' if r['diverged'] else fmt(r['final_loss'])} |")
    return "\n".join(lines)
