"""Homework Q1–Q3 from the command line: every hand-derived gradient checked, reported and saved.

What ``gdlab run configs/q1_q3_gradients.toml`` does: run the suite of ``gdlab.gradients.report``
(the gradient checks and the overflow-stability checks) in each requested dtype, print a table per
dtype, and write ``gradients.json`` and ``report.md`` (the worked answer, once, with a column group
per dtype) into the run directory — atomically, like every run directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from gdlab import rundir
from gdlab._sweep import precision
from gdlab.config import ConfigError, GradientsConfig
from gdlab.gradients import report as gradreport

__all__ = ["run_gradient_study"]


def run_gradient_study(cfg: GradientsConfig, out: Path, *, overwrite: bool = False,
                       log: Callable[[str], None] = print) -> dict:
    """Run every check in each of ``cfg.dtypes``, write ``out`` (gradients.json, report.md)
    atomically, log the tables; return the summary. Raises GradientCheckFailed (after writing)
    when a check failed."""
    from gdlab.study import environment

    t0 = time.perf_counter()
    rundir.check_target(out, overwrite)
    results, stability = {}, {}
    functions = list(cfg.functions) if cfg.functions else None
    for dtype in cfg.dtypes:
        with precision(dtype):
            try:
                results[dtype] = gradreport.run_homework_checks(
                    dtype=dtype, seed=cfg.seed, sizes=cfg.sizes, betas=cfg.betas,
                    functions=functions)
                stability[dtype] = gradreport.run_stability_checks(
                    dtype=dtype, seed=cfg.seed, sizes=cfg.sizes, functions=functions)
            except ValueError as e:
                raise ConfigError(f"{cfg.path}: gradients: {e}") from None
    every = [*(r for c in results.values() for r in c), *(s for c in stability.values() for s in c)]
    n, failed = len(every), sum(not r.passed for r in every)
    summary = {"config_path": cfg.path, "config": cfg.resolved, **environment(),
               "checks": n, "failed": failed,
               "results": {d: gradreport.to_json(c) for d, c in results.items()},
               "stability": {d: rundir.jsonable(c, nonfinite="null")
                             for d, c in stability.items()}}
    lines = []
    for dtype, checks in results.items():
        lines += [f"== {dtype}", gradreport.render_table(checks, stability[dtype])]
    lines.append(f"{n - failed} of {n} checks passed "
                 f"({sum(map(len, stability.values()))} of them overflow-stability checks)")

    def contents(tmp: Path) -> rundir.RunFiles:
        summary["timings"] = {"total_s": time.perf_counter() - t0}
        summary["files"] = ["gradients.json", "report.md"]
        md = gradreport.render_markdown([r for c in results.values() for r in c],
                                        [s for c in stability.values() for s in c])
        return rundir.RunFiles({"gradients.json": summary, "report.md": md}, [
            *lines, f"results: {out}/gradients.json; worked answer: {out}/report.md"])

    rundir.write_run(out, overwrite, contents, log=log)
    if failed:
        raise GradientCheckFailed(f"{failed} of {n} gradient checks failed; see {out}/report.md")
    return summary


class GradientCheckFailed(RuntimeError):
    """A hand-derived gradient disagreed with autodiff or finite differences."""
