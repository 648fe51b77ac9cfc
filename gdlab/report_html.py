"""A run directory's report on one page: ``report.html``, self-contained, made from its own files.

:func:`report_files` reads what a run wrote (summary.json or the gradient lab's gradients.json,
results.npz, the PNG plots, the gradient lab's report.md) and returns the report's files:
``report.html`` — opens offline from the file system, with every plot embedded as a base64 PNG and
its style inline (no script, font or stylesheet fetched) — and, for homework Q4, ``report.md``
with the same worked answer. Both are written by ``gdlab.rundir.write_run`` (every run) and again
by ``gdlab plot``. The page holds the worked answer where the config is a homework question (Q4:
trajectory tables, the oscillation and convergence conditions read off the sweep, the proof from
e_{t+1} = (1 − αλ) e_t with the measured residual; Q1–Q3: the gradient lab's), the agreement with
theory (what was compared, how many runs were left out and why — a run can be left out for
several reasons — and no fraction where none was compared), the plots, the config as TOML,
the versions and the timings. Everything from the run (names, paths, values) is escaped.

A page is a list of blocks (``gdlab._report_render``), rendered to HTML or Markdown, so the Q4
answer is written once for both files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gdlab import report
from gdlab._report_render import Block, markdown_blocks, render_html, render_markdown, toml_text
from gdlab._report_render import table as _table

__all__ = ["report_files", "is_q4", "Q4_ALPHAS"]

Q4_ALPHAS = (0.5, 1.5, 2.5)   # the step sizes homework Q4.1 tabulates


# --- the pages ----------------------------------------------------------------------------------

def report_files(run_dir: Path) -> dict[str, str]:
    """File name → text of the report of the run in ``run_dir``: ``report.html`` (and ``report.md``
    for homework Q4); nothing for a directory without a summary (a shard)."""
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        summary = _read_json(run_dir / "summary.json")
        with np.load(run_dir / "results.npz", allow_pickle=False) as z:   # only what Q4 reads
            arrays = {k: z[k] for k in z.files if k.startswith("trajectory_")}
        q4 = _q4_blocks(summary, arrays)
        blocks = [*_head(summary), *q4, *_agreement_blocks(summary, bool(q4)),
                  *_plot_blocks(run_dir, summary), *_tail(summary)]
        files = {"report.html": render_html(_title(summary), blocks)}
        if q4:
            files["report.md"] = render_markdown([Block("h1", _title(summary)), *q4])
        return files
    if (run_dir / "gradients.json").is_file():
        summary = _read_json(run_dir / "gradients.json")
        answer = markdown_blocks((run_dir / "report.md").read_text(encoding="utf-8"))
        checks = [("hand-derived gradients vs jax autodiff (same dtype) and float64 central "
                   "differences; softmax overflow at extreme inputs", summary["checks"],
                   f"{summary['checks'] - summary['failed']} passed", summary["failed"],
                   "failed checks: see the tables below" if summary["failed"] else "–")]
        blocks = [*_head(summary), Block("h2", "Agreement"),
                  _table(("compared", "checks", "result", "failed", "why"), checks),
                  *[b._replace(kind="h2" if b.kind == "h1" else
                               "h3" if b.kind == "h2" else b.kind) for b in answer],
                  *_tail(summary)]
        return {"report.html": render_html(_title(summary), blocks)}
    return {}


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _title(summary: dict) -> str:
    return f"gdlab report: {Path(str(summary.get('config_path', 'run'))).name}"


def _head(summary: dict) -> list[Block]:
    path = str(summary.get("config_path", "?"))
    what = (f"{summary['n_runs']} runs × {summary['steps']} steps, {summary['dtype']}"
            if "n_runs" in summary else f"{summary.get('checks', 0)} gradient checks")
    device = summary.get("device", {})
    return [Block("h1", _title(summary)),
            Block("p", f"Config `{path}` (resolved below, overrides included), run with "
                       f"`gdlab run {path}`; {what} on {device.get('backend', '?')} "
                       f"({device.get('count', '?')} × {device.get('kind', '?')}).")]


def _tail(summary: dict) -> list[Block]:
    blocks = [Block("h2", "Config"), Block("pre", toml_text(summary.get("config", {})))]
    blocks += [Block("h2", "Versions"),
               _table(("package", "version"), summary.get("versions", {}).items())]
    if "device" in summary:
        blocks.append(_table(("device", ""), summary["device"].items()))
    timings = summary.get("timings", {})
    blocks += [Block("h2", "Timings"),
               _table(("stage", "value"), [(k, f"{v:.4g}") for k, v in timings.items()])]
    return blocks


def _plot_blocks(run_dir: Path, summary: dict) -> list[Block]:
    pngs = [f for f in summary.get("files", []) if f.endswith(".png")]
    blocks = [Block("h2", "Plots")] if pngs or summary.get("plots_not_drawn") else []
    for name in pngs:
        blocks.append(Block("img", name, data=(run_dir / name).read_bytes()))
    for name, why in summary.get("plots_not_drawn", {}).items():
        blocks.append(Block("p", f"{name}.png {why}"))
    return blocks


# --- homework Q4 --------------------------------------------------------------------------------

def is_q4(summary: dict, arrays: dict[str, np.ndarray]) -> bool:
    """Homework Q4's setting: gradient descent on a scalar ``scalar_regression`` over α alone,
    answered by the sweep (summary.json ``q4_answer``), with α = 0.5, 1.5, 2.5 among the runs
    shown step by step."""
    cfg = summary.get("config", {})
    return ("q4_answer" in summary and cfg.get("problem", {}).get("name") == "scalar_regression"
            and cfg.get("optimizer", {}).get("name") == "sgd" and "trajectory_alpha" in arrays
            and bool(np.isin(Q4_ALPHAS, arrays["trajectory_alpha"].astype(np.float64)).all()))


def _q4_blocks(summary: dict, arrays: dict[str, np.ndarray]) -> list[Block]:
    if not is_q4(summary, arrays):
        return []
    p = summary["config"]["problem"]
    x, y, w0 = float(p["x"]), float(p["y"]), float(p.get("w0", 0.0))
    return [*_q41(summary, arrays, x, y, w0), *_q42(summary, x, y), *_q43(summary, x, y)]


def _q41(summary: dict, arrays: dict[str, np.ndarray], x: float, y: float,
         w0: float) -> list[Block]:
    """Q4.1: the first steps of α = 0.5, 1.5, 2.5 as simulated, next to the closed form."""
    lam, w_star = x * x, y / x
    rows = int(summary["config"].get("report", {}).get("table_steps", 10))
    alpha = arrays["trajectory_alpha"].astype(np.float64)
    steps, w = arrays["trajectory_steps"], arrays["trajectory_w"]
    frozen = arrays.get("trajectory_diverged_at", np.full(alpha.shape, -1))
    blocks = [Block("h2", "Q4.1: trajectories for α = 0.5, 1.5, 2.5"),
              Block("p", f"Gradient descent w_{{t+1}} = w_t − α·x(x·w_t − y) on "
                         f"L(w) = ½(xw − y)² with x = {x:g}, y = {y:g}, w₀ = {w0:g}, as simulated "
                         f"({summary['dtype']}), beside the closed form w* − (1 − αx²)^t·(w* − w₀)"
                         f" (w* = y/x = {w_star:g}, float64)"
                         f"{report.stride_note(steps[: rows + 1])}.")]
    for a in Q4_ALPHAS:
        i = int(np.flatnonzero(alpha == a)[0])
        table = []
        for t, wt in zip(steps[: rows + 1], w[i][: rows + 1]):
            if 0 <= frozen[i] <= t:
                table.append((t, "diverged: frozen (beyond the float range)", "–", "–"))
                break
            closed = w_star - (1.0 - a * lam) ** float(t) * (w_star - w0)
            table.append((t, str(wt), f"{abs(w_star - float(wt)):.9g}", f"{closed:.9g}"))
        blocks += [Block("h3", f"α = {a:g}"),
                   _table(("t", "w_t (simulated)", "|w* − w_t|", "closed form"), table)]
    return blocks


def _q42(summary: dict, x: float, y: float) -> list[Block]:
    """Q4.2: the conditions, and the regimes and their edges as read off the sweep."""
    lam = x * x
    # q4_statement's "simulated: …; theory (|1 − αλ|, λ = …): …" as two columns
    answer = [(k, *v.removeprefix("simulated: ").partition("; theory ")[::2])
              for k, v in summary["q4_answer"].items()]
    answer = [(k, s, t.split("): ", 1)[-1]) for k, s, t in answer]
    return [Block("h2", "Q4.2: when does gradient descent oscillate, when does it converge?"),
            Block("p", f"The error e_t = w_t − w* (w* = y/x = {y / x:g}) obeys "
                       f"e_{{t+1}} = (1 − αλ)·e_t with λ = x² = {lam:g}. It changes sign at every "
                       f"step (w_t oscillates around w*) iff 1 − αλ < 0, i.e. α > 1/λ = "
                       f"{1 / lam:.6g}; it converges iff |1 − αλ| < 1, i.e. 0 < α < 2/λ = "
                       f"{2 / lam:.6g}. At α = 2/λ it cycles between two values; above, and for "
                       "α < 0, it diverges."),
            Block("p", "Read off the sweep (regime of every simulated α, classified from the "
                       "iterates alone). The grid values are listed; an interval is given only "
                       f"where the grid resolves it: more than {report.LISTED_MAX} consecutive "
                       "grid values behave alike, and no grid cell between them holds several "
                       "bisected edges."),
            _table(("behaviour", "simulated α", "theory"),
                   [(k, s, t) for k, s, t in answer]),
            *_boundary_blocks(summary)]


def _q43(summary: dict, x: float, y: float) -> list[Block]:
    """Q4.3: the proof from the recurrence, and its residual measured on the sweep."""
    w_star, lam = y / x, x * x
    ax = "α" if lam == 1 else f"{lam:g}α"
    rec = summary.get("recurrence")
    measured = ("Not measured in this run." if rec is None else
                f"Measured on every run and step of this sweep: max deviation "
                f"{rec['max_dev']:.3g} = {rec['max_dev_in_eps']:.2f} ε ({rec['measure']}); "
                "the recurrence holds to rounding.")
    return [Block("h2", "Q4.3: proof from the recurrence"),
            Block("p", f"∇L(w) = x(xw − y), so w_{{t+1}} = w_t − αx(xw_t − y). With "
                       f"y = x·w*: w* − w_{{t+1}} = (w* − w_t) − αx²(w* − w_t) = "
                       f"(1 − αx²)(w* − w_t). Here x = {x:g}, w* = {w_star:g}: "
                       f"{w_star:g} − w_{{t+1}} = (1 − {ax})({w_star:g} − w_t), hence "
                       f"{w_star:g} − w_t = (1 − {ax})^t·({w_star:g} − w₀). The distance "
                       "to the optimum is multiplied by |1 − αx²| at each step: it shrinks to 0 "
                       "iff |1 − αx²| < 1, and its sign alternates (w_t jumps over w*) iff "
                       "1 − αx² < 0. ∎"),
            Block("p", measured)]


def _boundary_blocks(summary: dict) -> list[Block]:
    """The regime edges bisected on a 1-D α grid, and the closed-form ones."""
    b = summary.get("boundaries")
    if not isinstance(b, dict):
        return []
    rows = [(e["below"], e["above"], f"{e['alpha']:.9g}",
             f"{e['grid_lo']:.7g} … {e['grid_hi']:.7g}") for e in b["bisected"]]
    closed = ", ".join(f"{k} α = {v:.9g}" for k, v in b.get("closed_form", {}).items())
    return [Block("h3", "Regime boundaries"),
            Block("p", f"Bisected between grid values ({b['precision']}); closed form: "
                       f"{closed or 'none'}."),
            _table(("below", "above", "α (bisected)", "between grid values"), rows),
            *_progress_blocks(b.get("progress", []))]


def _progress_blocks(progress: list[dict]) -> list[Block]:
    """The edges of "stalled" (summary.json ``boundaries.progress``), apart from the regime
    edges: where the horizon starts to show progress, with the closed form where there is one."""
    if not progress:
        return []
    rows = []
    for p in progress:
        closed = p.get("closed_form_abs_alpha")
        rows.append((p["below"], p["above"], f"[{p['lo']:.3g}, {p['hi']:.3g}]",
                     "–" if closed is None else "; ".join(
                         f"{dt}: {lo:.4g}" if lo == hi else f"{dt}: {lo:.4g} … {hi:.4g}"
                         for dt, (lo, hi) in closed.items()),
                     "–" if closed is None else
                     ("yes" if p["bracket_holds_closed_form"] else "NO")))
    return [Block("h3", "Not a regime edge: where the horizon starts to show progress"),
            Block("p", f"The smallest |α| whose progress is visible within the horizon: "
                       f"{progress[0]['meaning']}."),
            _table(("below", "above", "bracket (bisected, float64)",
                    "closed form |α| (by dtype)", "bracket holds it"), rows)]


# --- agreement ----------------------------------------------------------------------------------

_COMPARED = {"converges": "the closed-form stability region (every direction)",
             "oscillates": "the closed form's dominant root not a positive real",
             "rate": "the contraction against ρ, the largest root modulus"}


def _why(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "–"


def _reasons(counts: dict) -> str:
    """Why runs are left out (``report.reasons``: overlapping reasons said so), "–" if none."""
    return report.reasons(counts) or "–"


def _fraction(fraction: float | None) -> str:
    """The agreement fraction, or, with no run compared, that none was."""
    return "no run to compare" if fraction is None else f"{fraction:.6f}"


def _agreement_rows(summary: dict) -> list[tuple]:
    """(compared, runs compared, agreement, left out, why) for every check the summary holds."""
    rows = []
    if "agreement" in summary:
        a = summary["agreement"]
        rows.append((f"simulated regime and steps-to-tol vs {a['compared_with']}",
                     f"{a['n_compared']} of {a['n_runs']}",
                     _fraction(a["fraction"]) + ("" if a["fraction"] is None else
                                                 f" ({a['regime_mismatches']} regime, "
                                                 f"{a['steps_mismatches']} steps mismatches)"),
                     a["n_sensitive"], _reasons(a["sensitive_why"])))
    for name, c in summary.get("closed_form", {}).items():
        note = []
        if c.get("max_boundary_distance") is not None:
            note.append(f"largest |simulated − closed-form edge| {c['max_boundary_distance']:.3g}")
        if c.get("max_relative_deviation_from_rho") is not None:
            note.append(f"largest |contraction/ρ − 1| {c['max_relative_deviation_from_rho']:.3g}")
        rows.append((f"{name}: {_COMPARED.get(name, 'closed form')}", c["n_compared"],
                     "; ".join([_fraction(c["fraction"]), *note]), c["n_band"],
                     _reasons(c["band_why"])))
    if "recurrence" in summary:
        r = summary["recurrence"]
        rows.append((r["claim"], summary["n_runs"],
                     f"max deviation {r['max_dev']:.3g} = {r['max_dev_in_eps']:.2f} ε", 0, "–"))
    if "rounding_check" in summary:
        r = summary["rounding_check"]
        rows.append((f"float32 vs float64 re-simulation ({r['rule']})", r["n_runs"],
                     f"{r['n_flagged']} flagged as rounding-sensitive", 0, "–"))
    return rows + _orbit_rows(summary) + _trainability_rows(summary) + _edge_rows(summary)


def _orbit_rows(summary: dict) -> list[tuple]:
    if "lyapunov_check" not in summary:
        return []
    ly, pd, cy = summary["lyapunov_check"], summary["period_doubling"], summary["cycles"]
    bis = pd["bisected"]
    dev = "–" if ly["max_abs_dev"] is None else f"max |Δ| {ly['max_abs_dev']:.3g}"
    return [(ly["claim"], ly["cells"], dev, "–", "only attracting fixed points are compared"),
            ("period doubling: bisected edge vs closed form α = 2/λ*", "–",
             f"closed form {pd['closed_form_alpha']:.7g}; bisected "
             + ("none on this grid" if bis is None else f"{bis['alpha']:.7g}"), "–", "–"),
            (cy["claim"], "–", f"{cy['rejected']} detected cycles rejected", "–",
             _why(cy["rejected_as"]))]


def _trainability_rows(summary: dict) -> list[tuple]:
    t = summary.get("trainability")
    if t is None:
        return []
    return [(f"judged by {t['judged_by']}: converged = {t['rules']['converged']}",
             summary["n_runs"], f"trained {100 * t['trained_fraction']:.1f} % (no closed form)",
             0, "–")]


def _edge_rows(summary: dict) -> list[tuple]:
    """A tracked run's (``gdlab.eos_study``): per α, the tracked sharpness against its
    edge-of-stability threshold over the last half of training."""
    e = summary.get("edge_of_stability")
    if e is None:
        return []
    def agreement(r: dict) -> str:
        first = r["first_step_at_threshold"]
        return (f"median {r['ratio_median']:.3f} (min {r['ratio_min']:.3f}, max "
                f"{r['ratio_max']:.3f}); first at threshold: "
                + ("never" if first is None else f"step {first}"))

    return [(f"α = {r['alpha']:g}: {e['measure']} / ({e['threshold_rule']} = "
             f"{r['threshold']:.4g}) over {e['late']}", 1,
             "–" if r["diverged"] else agreement(r), int(r["diverged"]),
             "diverged" if r["diverged"] else "–") for r in e["rows"]]


def _agreement_blocks(summary: dict, q4: bool) -> list[Block]:
    """The agreement table, the regime boundaries (unless the Q4 answer shows them) and the
    regime counts, simulated and predicted."""
    rows = _agreement_rows(summary)
    blocks = [Block("h2", "Agreement with theory")]
    if rows:
        blocks.append(_table(("compared", "runs compared", "agreement", "left out",
                              "why left out"), rows))
    else:
        blocks.append(Block("p", "Nothing to compare with: no closed form for this optimizer "
                                 "and problem."))
    if "compact" in summary:
        blocks.append(Block("p", summary["compact"]))
    if not q4:
        blocks += _boundary_blocks(summary)
    counts = summary.get("regime_counts", {})
    predicted = summary.get("predicted_regime_counts")
    blocks += [Block("h3", "Regimes"),
               _table(("regime", "simulated", *(["predicted"] if predicted else [])),
                      [(k, v, *([predicted[k]] if predicted else [])) for k, v in counts.items()
                       if v or (predicted and predicted[k])])]
    return blocks
