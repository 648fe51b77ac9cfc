"""report.html (self-contained, the worked answers, the agreement figures) and `gdlab plot`.

The Q4.1 values are checked against the closed form 100·(1 − (1 − α)^t) written here from the
recurrence, not against gdlab's output; the figures of the agreement table against summary.json.
"""

import base64
import json
import shutil
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import gdlab
from gdlab import cli, engine, report, report_html, rundir
from gdlab._report_render import Block, render_html
from gdlab.regimes import Regime
from gdlab.report_html import report_files

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class _Page(HTMLParser):
    """The tables (rows of cell texts, header first), image sources, <pre> texts and all text."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.pres, self.text = [], [], [], []
        self._cell = self._pre = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "pre":
            self._pre = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "pre":
            self.pres.append("".join(self._pre))
            self._pre = None

    def handle_data(self, data):
        self.text.append(data)
        for part in (self._cell, self._pre):
            if part is not None:
                part.append(data)


def _page(run_dir: Path) -> tuple[str, _Page]:
    raw = (run_dir / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(raw)
    page.close()
    return raw, page


def _self_contained(run_dir: Path, files: list[str]) -> _Page:
    """report.html parses, fetches nothing, and embeds every PNG of the run byte for byte."""
    raw, page = _page(run_dir)
    assert "http://" not in raw and "https://" not in raw
    assert "<script" not in raw and "<link" not in raw
    pngs = [f for f in files if f.endswith(".png")]
    assert len(page.images) == len(pngs)
    prefix = "data:image/png;base64,"
    for src, name in zip(page.images, pngs):
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix):]) == (run_dir / name).read_bytes()
    return page


def _agreement_row(page: _Page, starts: str) -> list[str]:
    table = next(t for t in page.tables if t[0][0] == "compared")
    return next(r for r in table[1:] if r[0].startswith(starts))


def test_q4_report_holds_the_worked_answer(trajectories_run):
    summary = json.loads((trajectories_run / "summary.json").read_text())
    page = _self_contained(trajectories_run, summary["files"])
    text = "".join(page.text)
    # Q4.1: w_t = 100·(1 − (1 − α)^t) from w₀ = 0 (x = 1, y = 100); float32 GD, so rtol 1e-6
    # (≈ 8 float32 ulps: each of ≤ 10 steps rounds once, and these values are nearly exact).
    tables = [t for t in page.tables if t[0][:2] == ["t", "w_t (simulated)"]]
    assert len(tables) == 3
    rows_wanted = summary["config"]["report"]["table_steps"] + 1
    for alpha, table in zip((0.5, 1.5, 2.5), tables):
        body = table[1:]
        assert len(body) == rows_wanted
        t = np.array([int(r[0]) for r in body])
        w = np.array([float(r[1]) for r in body])
        np.testing.assert_allclose(w, 100 * (1 - (1 - alpha) ** t), rtol=1e-6, atol=1e-9)
    # Q4.2: the closed-form conditions and the edges read off the sweep
    assert "α > 1/λ = 1" in text and "0 < α < 2/λ = 2" in text
    for b in summary["boundaries"]["bisected"]:
        assert f"{b['alpha']:.9g}" in text
    # Q4.3: the measured residual of 100 − w_{t+1} = (1 − α)(100 − w_t)
    rec = summary["recurrence"]
    assert f"max deviation {rec['max_dev']:.3g} = {rec['max_dev_in_eps']:.2f} ε" in text
    # the agreement figures are summary.json's
    a = summary["agreement"]
    row = _agreement_row(page, "simulated regime and steps-to-tol")
    assert row[1] == f"{a['n_compared']} of {a['n_runs']}"
    assert row[2].startswith(f"{a['fraction']:.6f}") and row[3] == str(a["n_sensitive"])
    for name, c in summary["closed_form"].items():
        row = _agreement_row(page, name)
        assert row[1] == str(c["n_compared"]) and row[3] == str(c["n_band"])
        assert row[2].startswith(f"{c['fraction']:.6f}")
    # the config, as TOML that reads back to summary.json's
    assert tomllib.loads(page.pres[0]) == summary["config"]
    versions = next(t for t in page.tables if t[0] == ["package", "version"])
    assert dict(map(tuple, versions[1:])) == summary["versions"]
    # report.md: the same answer, once
    md = (trajectories_run / "report.md").read_text(encoding="utf-8")
    assert md.count("## Q4.1") == md.count("## Q4.2") == md.count("## Q4.3") == 1
    assert "| 3 | 437.5 |" in md and "| 3 | 112.5 |" in md


def test_everything_from_the_run_is_escaped(trajectories_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(trajectories_run, run)
    summary = json.loads((run / "summary.json").read_text())
    summary["config_path"] = "configs/<script>alert(1)</script>&.toml"
    (run / "summary.json").write_text(json.dumps(summary))
    text = report_files(run)["report.html"]
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;.toml" in text
    assert "&lt;b&gt;" in render_html("t", [Block("p", "<b>")])


@pytest.fixture
def no_simulation(monkeypatch):
    """Simulating raises: `gdlab plot` must draw from the files alone."""
    def refuse(*args, **kwargs):
        raise AssertionError("gdlab plot simulated")
    monkeypatch.setattr(gdlab, "sweep", refuse)
    monkeypatch.setattr(engine, "simulate", refuse)


def _replot_reproduces(original: Path, tmp_path: Path) -> None:
    """Delete the plots and the report of a copy, `gdlab plot` it: the same files, byte for byte
    (PNG and SVG carry no date and SVG a fixed hash salt), and the marker still recognised."""
    run = tmp_path / "copy"
    shutil.copytree(original, run)
    drawn = [f for f in rundir.listed_files(original)
             if f.endswith((".png", ".svg")) or f == "report.html"]
    for f in drawn:
        (run / f).unlink()
    assert cli.main(["plot", str(run)]) == 0
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in original.iterdir())
    for f in drawn:
        assert (run / f).read_bytes() == (original / f).read_bytes(), f
    assert rundir.is_gdlab_directory(run)


def test_plot_redraws_a_sweep_without_simulating(trajectories_run, tmp_path, no_simulation):
    _replot_reproduces(trajectories_run, tmp_path)


def test_plot_adds_the_report_to_an_older_run(trajectories_run, tmp_path, no_simulation):
    run = tmp_path / "old"
    shutil.copytree(trajectories_run, run)
    for f in ("report.html", "report.md", rundir.MARKER):
        (run / f).unlink()
    assert cli.main(["plot", str(run)]) == 0
    assert {"report.html", "report.md"} <= set(rundir.listed_files(run))
    assert rundir.is_gdlab_directory(run)


def test_plot_refuses_what_is_no_run_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    for target in (tmp_path, tmp_path / "missing"):
        assert cli.main(["plot", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gdlab: error: ") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


_SMALL = {
    "orbits": ("quartic_bifurcation.toml", ["sweep.alpha={start=0.1,stop=1.5,num=41}",
                                            "run.steps=300", "report.orbit_window=100",
                                            "report.max_period=16"]),
    "map": ("momentum_alpha_beta.toml", ["sweep.alpha={start=0.0,stop=4.0,num=21}",
                                         "sweep.beta={start=0.0,stop=0.9,num=11}",
                                         "run.steps=50"]),
}


@pytest.mark.parametrize("kind", list(_SMALL))
def test_other_studies_report_and_replot(kind, tmp_path, monkeypatch):
    config, sets = _SMALL[kind]
    run = tmp_path / kind
    args = ["run", str(CONFIGS / config), "--out", str(run), "-q"]
    assert cli.main([*args, *(x for s in sets for x in ("--set", s))]) == 0
    summary = json.loads((run / "summary.json").read_text())
    page = _self_contained(run, summary["files"])
    assert not (run / "report.md").exists()          # no homework question here
    if kind == "orbits":
        ly = summary["lyapunov_check"]
        row = _agreement_row(page, ly["claim"])
        assert row[1] == str(ly["cells"]) and row[2] == f"max |Δ| {ly['max_abs_dev']:.3g}"
    else:
        a = summary["agreement"]
        row = _agreement_row(page, "simulated regime")
        assert row[2].startswith(f"{a['fraction']:.6f}") and row[3] == str(a["n_sensitive"])
    monkeypatch.setattr(gdlab, "sweep", lambda *a, **k: pytest.fail("simulated"))
    monkeypatch.setattr(engine, "simulate", lambda *a, **k: pytest.fail("simulated"))
    _replot_reproduces(run, tmp_path)


def test_gradient_lab_report(tmp_path):
    run = tmp_path / "grad"
    assert cli.main(["run", str(CONFIGS / "q1_q3_gradients.toml"), "--out", str(run), "-q",
                     "--set", "gradients.sizes=[1, 3]", "--set", 'gradients.dtypes=["float64"]',
                     "--set", 'gradients.functions=["sigmoid"]']) == 0
    summary = json.loads((run / "gradients.json").read_text())
    page = _self_contained(run, [])
    text = "".join(page.text)
    assert "Q1–Q3" in text and "sigmoid" in text
    row = _agreement_row(page, "hand-derived gradients")
    assert row[1] == str(summary["checks"]) and row[3] == str(summary["failed"])
    assert tomllib.loads(page.pres[0]) == summary["config"]
    assert cli.main(["plot", str(run)]) == 0


def _gd_regimes(alpha):
    """GD's regime on L = ½(w − w*)² (λ = 1) from r = 1 − α alone (the table of regimes.py)."""
    a = np.asarray(alpha, np.float64)
    return np.select([a == 0, a <= 1, a < 2, a == 2],
                     [Regime.STALLED, Regime.CONVERGING_MONOTONE, Regime.CONVERGING_OSCILLATING,
                      Regime.BOUNDED_OSCILLATION], Regime.DIVERGING_OSCILLATING).astype(np.int8)


def test_q4_answer_lists_a_short_grid_and_gives_intervals_only_where_resolved():
    """Three α do not make an interval: the answer says what was simulated at which α. A run of
    more than LISTED_MAX grid values is an interval, cut at a grid cell holding several edges."""
    short = report.q4_statement([0.5, 1.5, 2.5], _gd_regimes([0.5, 1.5, 2.5]), 1.0)
    assert short["convergence"].startswith("simulated: at α = 0.5, 1.5; theory")
    assert short["oscillation"].startswith("simulated: at α = 1.5, 2.5; theory")
    assert short["divergence"].startswith("simulated: at α = 2.5; theory")
    assert short["bounded cycle"].startswith("simulated: at no grid value; theory")
    assert not any("≤ α ≤" in v.split("; theory")[0] for v in short.values())
    dense = np.linspace(0.0, 3.0, 3001)
    answer = report.q4_statement(dense, _gd_regimes(dense), 1.0)
    # 0 < α < 2 converges: grid values 0.001 … 1.999, 1999 of them
    assert answer["convergence"].startswith(
        "simulated: on 0.001 ≤ α ≤ 1.999 (1999 grid values, spacing 0.001); theory")
    assert answer["bounded cycle"].startswith("simulated: at α = 2; theory")
    # a cell the bisection found several edges in cuts the interval there
    cut = report.q4_statement(dense, _gd_regimes(dense), 1.0, unresolved=[(dense[999],
                                                                          dense[1000])])
    assert cut["convergence"].startswith("simulated: on 0.001 ≤ α ≤ 0.999 (999 grid values, "
                                         "spacing 0.001); on 1 ≤ α ≤ 1.999 (1000 grid values")
    # 12 consecutive values are listed, 13 make an interval
    assert "at α = 0.1, " in report.q4_statement(dense[100:112], _gd_regimes(dense[100:112]),
                                                  1.0)["convergence"]
    assert "on 0.1 ≤ α ≤ 0.112 (13 grid values" in report.q4_statement(
        dense[100:113], _gd_regimes(dense[100:113]), 1.0)["convergence"]


def test_left_out_reasons_say_they_overlap_and_nothing_compared_has_no_fraction():
    why = {"k unknown": 26014, "the divergence bound in reach": 5612, "double root": 2}
    assert report.left_out(26024, why) == (
        "26024 left out; by reason, a run counted under each that applies: k unknown: 26014; "
        "the divergence bound in reach: 5612; double root: 2")
    assert report.left_out(20, {"near tol": 20, "underflow": 0}) == "20 left out (near tol: 20)"
    assert report.left_out(0, {"near tol": 0}) == "0 left out"
    assert report.agreement_text(None, 0, 1, {"band": 1}) == (
        "no run to compare: all 1 left out (band: 1)")
    assert report.agreement_text(1.0, 1, 0, {}) == "agreement 1.000000 on 1 run; 0 left out"
    summary = {"closed_form": {"converges": {"fraction": None, "n_compared": 0, "n_band": 1,
                                             "band_why": {"band": 1}}}}
    row = report_html._agreement_rows(summary)[0]
    assert row[1:] == (0, "no run to compare", 1, "band: 1")
