"""Homework Q1–Q3 from the command line: every hand-derived gradient checked, reported and saved.

What ``gdlab run configs/q1_q3_gradients.toml`` does: run the suite of ``gdlab.gradients.report`` in
each requested dtype, print the table, and write ``gradients.json`` and ``report.md`` (the worked
answer) into the run directory — atomically, like every run directory.
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
    results = {}
    for dtype in cfg.dtypes:
        with precision(dtype):
            try:
                checks = gradreport.run_homework_checks(
                    dtype=dtype, seed=cfg.seed, sizes=cfg.sizes, betas=cfg.betas,
                    functions=list(cfg.functions) if cfg.functions else None)
            except ValueError as e:
                raise ConfigError(f"{cfg.path}: gradients: {e}") from None
        results[dtype] = checks
    n = sum(len(c) for c in results.values())
    failed = sum(not r.passed for c in results.values() for r in c)
    summary = {"config_path": cfg.path, "config": cfg.resolved, **environment(),
               "checks": n, "failed": failed,
               "results": {d: gradreport.to_json(c) for d, c in results.items()}}
    lines = []
    for dtype, checks in results.items():
        lines += [f"== {dtype}", gradreport.render_table(checks)]
    lines.append(f"{n - failed} of {n} checks passed")

    def contents(tmp: Path) -> rundir.RunFiles:
        summary["timings"] = {"total_s": time.perf_counter() - t0}
        summary["files"] = ["gradients.json", "report.md"]
        md = "\n\n---\n\n".join(gradreport.render_markdown(checks) for checks in results.values())
        return rundir.RunFiles({"gradients.json": summary, "report.md": md}, [
            *lines, f"results: {out}/gradients.json; worked answer: {out}/report.md"])

    rundir.write_run(out, overwrite, contents, log=log)
    if failed:
        raise GradientCheckFailed(f"{failed} of {n} gradient checks failed; see {out}/report.md")
    return summary


class GradientCheckFailed(RuntimeError):
    """A hand-derived gradient disagreed with autodiff or finite differences."""
