"""The Bokeh document of ``gdlab view``: the regime map, its hover, zoom and click.

* ``map``: one rectangle per run (``quad`` on explicit cell edges, so log axes are exact), coloured
  by regime (:data:`gdlab.REGIME_INFO`); hover names α, the second axis, the regime, steps to tol,
  rate, contraction and score. Closed-form edges are overlaid: α(y) curves on a 2-D map of a
  linear optimizer, vertical lines at summary.json's ``closed_form_edges`` on a 1-D one.
* A change of the visible window (box or wheel zoom, pan; ranges set from outside) is debounced
  for ``DEBOUNCE_MS`` and then simulated at screen resolution (min(frame pixels, ``resolution``)
  points per axis) in a worker thread; the status line says "computing…" meanwhile and what was
  computed when done. Only the newest window matters (:class:`_Newest`): a change cancels the
  simulation of the window before it if still queued, skips it if it had not yet started, and
  never draws it if it was already running.
* A click (tap) on a run simulates it again with every step recorded and draws its error
  ‖w_t − w*‖ (loss ratio L_t/L_0 for a network) in ``trajectory``, on a log axis.
"""

from __future__ import annotations

import concurrent.futures
import functools
from typing import Any, Callable

import numpy as np
from bokeh.layouts import column
from bokeh.models import (
    BoxZoomTool,
    ColumnDataSource,
    Div,
    HoverTool,
    PanTool,
    Range1d,
    ResetTool,
    TapTool,
    WheelZoomTool,
)
from bokeh.plotting import figure

from gdlab import _view_data as data
from gdlab.plots import closed_form_lines, symbol

__all__ = ["make_document", "DEBOUNCE_MS"]

DEBOUNCE_MS = 250
_WIDTH, _HEIGHT = 720, 520
_DASHES = ("dashed", "dotted", "dashdot")


def make_document(spec: data.MapSpec, first: data.Window, executor: concurrent.futures.Executor,
                  resolution: int, title: str) -> Callable[[Any], None]:
    """The function Bokeh calls for every new browser session to fill its document."""
    return functools.partial(_fill, spec, first, executor, resolution, title)


def _map_figure(spec: data.MapSpec, source: ColumnDataSource, title: str):
    lo_x, hi_x = float(source.data["left"][0]), float(source.data["right"][-1])
    lo_y, hi_y = float(min(source.data["bottom"])), float(max(source.data["top"]))
    dims = "both" if spec.y_name else "width"
    fig = figure(name="map", title=title, width=_WIDTH, height=_HEIGHT,
                 x_axis_type="log" if spec.log_x else "linear",
                 y_axis_type="log" if spec.log_y else "linear",
                 x_range=Range1d(lo_x, hi_x, name="x_range"),
                 y_range=Range1d(lo_y, hi_y, name="y_range"),
                 tools=[PanTool(dimensions=dims), BoxZoomTool(dimensions=dims),
                        WheelZoomTool(dimensions=dims), TapTool(), ResetTool()],
                 active_scroll="auto", x_axis_label="step size α",
                 y_axis_label=symbol(spec.y_name) if spec.y_name else "")
    quads = fig.quad(left="left", right="right", bottom="bottom", top="top", fill_color="color",
                     line_color=None, source=source, legend_field="regime",
                     nonselection_fill_alpha=1.0, selection_fill_alpha=1.0)   # clicks: no fade
    tips = [("α", "@alpha{0.000000}"), ("regime", "@regime"), ("steps to tol", "@steps"),
            ("rate", "@rate"), ("contraction", "@contraction")]
    if spec.y_name:
        tips.insert(1, (symbol(spec.y_name), "@y{0.000000}"))
    if spec.by_loss:
        tips.append(("score", "@score"))
    fig.add_tools(HoverTool(renderers=[quads], tooltips=tips))
    fig.legend.location = "top_right"
    fig.legend.background_fill_alpha = 0.7
    if not spec.y_name:
        fig.yaxis.visible = False
    _overlay_edges(fig, spec, lo_y, hi_y)
    return fig


def _overlay_edges(fig, spec: data.MapSpec, lo_y: float, hi_y: float) -> None:
    """Closed-form edges: α(y) curves on a 2-D map of a linear optimizer, lines on a 1-D one."""
    if spec.y_name:
        from gdlab import stability
        from gdlab._study_plots import _overlays
        from gdlab.interfaces import Linear
        if spec.cfg.optimizer not in stability.LINEAR_OPTIMIZERS or not isinstance(
                spec.cfg.problem_value, Linear):
            return
        ys = (np.geomspace if spec.log_y else np.linspace)(lo_y, hi_y, 400)
        curves = _overlays(spec.cfg.problem_value, spec.cfg, spec.y_name)
        for (label, fn), dash in zip(curves.items(), _DASHES):
            fig.line(np.asarray(fn(ys), np.float64), ys, line_color="black", line_width=1.5,
                     line_dash=dash, legend_label=label)
        return
    for (label, a), dash in zip(closed_form_lines(spec.edges).items(), _DASHES):
        fig.line([a, a], [lo_y, hi_y], line_color="black", line_dash=dash, legend_label=label)


def _trajectory_figure(spec: data.MapSpec) -> tuple[Any, ColumnDataSource]:
    source = ColumnDataSource({"t": [], "value": []}, name="trajectory_source")
    fig = figure(name="trajectory", width=_WIDTH, height=260, y_axis_type="log",
                 title="click a run on the map to draw its trajectory",
                 x_axis_label="step t", y_axis_label="L_t / L_0" if spec.by_loss
                 else "‖w_t − w*‖", tools="pan,box_zoom,wheel_zoom,reset")
    fig.line("t", "value", source=source, line_width=1.5)
    fig.scatter("t", "value", source=source, size=3)
    return fig, source


class _Newest:
    """Work on the shared ``executor`` of which only the newest request matters.

    Each request gets the next generation g; :meth:`supersede` starts a new one and cancels the
    queued work of the old. Work starting under a newer generation is skipped (it was picked up
    before it could be cancelled), and a result arriving under one is dropped, so a burst of
    requests costs at most the one running and the newest. Results reach ``doc`` through
    ``add_next_tick_callback``, the document's only thread-safe entry point.
    """

    def __init__(self, executor: concurrent.futures.Executor, doc: Any) -> None:
        self._executor, self._doc = executor, doc
        self.generation = 0
        self._future: concurrent.futures.Future | None = None

    def supersede(self) -> None:
        """What was requested so far is stale."""
        self.generation += 1
        if self._future is not None:
            self._future.cancel()

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None],
               failed: Callable[[BaseException], None]) -> None:
        """Supersede, then run ``work()`` on the executor; ``done(result)`` or ``failed(error)``
        run on the document's thread unless a newer request came meanwhile."""
        self.supersede()
        generation = self.generation
        self._future = self._executor.submit(self._start, generation, work)
        self._future.add_done_callback(functools.partial(self._ended, generation, done, failed))

    def _start(self, generation: int, work: Callable[[], Any]) -> Any:
        """On the executor's thread: ``work()``, or nothing once a newer request came."""
        return work() if generation == self.generation else None

    def _ended(self, generation: int, done: Callable[[Any], None],
               failed: Callable[[BaseException], None], future: concurrent.futures.Future) -> None:
        """On the executor's thread (or here, if cancelled): hand the outcome to the document."""
        if not future.cancelled():
            self._doc.add_next_tick_callback(
                functools.partial(self._finish, generation, future, done, failed))

    def _finish(self, generation: int, future: concurrent.futures.Future,
                done: Callable[[Any], None], failed: Callable[[BaseException], None]) -> None:
        """On the document's thread: deliver the outcome unless a newer request came."""
        if generation != self.generation:
            return
        if future.exception() is None:
            done(future.result())
        else:
            failed(future.exception())


def _fill(spec: data.MapSpec, first: data.Window, executor: concurrent.futures.Executor,
          resolution: int, title: str, doc: Any) -> None:
    log = (spec.log_x, spec.log_y)
    source = ColumnDataSource(data.cells(first, log), name="map_source")
    fig = _map_figure(spec, source, title)
    status = Div(name="status", text=_done_text(spec, first, "the run's own results"))
    traj_fig, traj_source = _trajectory_figure(spec)
    windows, trajectories = _Newest(executor, doc), _Newest(executor, doc)
    timer: dict[str, Any] = {"pending": None}

    def show(window: data.Window) -> None:
        source.data = data.cells(window, log)
        status.text = _done_text(spec, window, "simulated")

    def failed(error: BaseException) -> None:
        status.text = f"failed: {error}"

    def simulate() -> None:
        timer["pending"] = None
        xw = (fig.x_range.start, fig.x_range.end)
        yw = (fig.y_range.start, fig.y_range.end) if spec.y_name else None
        n = (min(resolution, _WIDTH), min(resolution, _HEIGHT) if spec.y_name else 1)
        status.text = (f"computing… {n[0]}{f' × {n[1]}' if spec.y_name else ''} runs on "
                       f"α ∈ [{xw[0]:.6g}, {xw[1]:.6g}]")
        windows.submit(functools.partial(data.simulate_window, spec, xw, yw, n), show, failed)

    def window_changed(attr, old, new) -> None:    # debounced: a wheel zoom changes it often
        windows.supersede()                          # what is on its way shows an old window
        if timer["pending"] is not None:
            doc.remove_timeout_callback(timer["pending"])
        timer["pending"] = doc.add_timeout_callback(simulate, DEBOUNCE_MS)

    def clicked(attr, old, new) -> None:
        if not new:
            return
        k = new[0]
        alpha = float(source.data["alpha"][k])
        y = float(source.data["y"][k]) if spec.y_name else None
        where = f"α = {alpha:.6g}" + (f", {symbol(spec.y_name)} = {y:.6g}" if spec.y_name else "")
        traj_fig.title.text = f"computing the trajectory at {where}…"
        regime = source.data["regime"][k]

        def draw(result) -> None:
            t, value, what = result
            traj_source.data = {"t": np.asarray(t, np.float64),
                                "value": np.asarray(value, np.float64)}
            traj_fig.title.text = f"{what} at {where} ({regime})"

        def trajectory_failed(e: BaseException) -> None:
            traj_fig.title.text = f"the trajectory at {where} failed: {e}"

        trajectories.submit(functools.partial(data.trajectory, spec, alpha, y), draw,
                            trajectory_failed)

    for r in (fig.x_range, fig.y_range) if spec.y_name else (fig.x_range,):
        r.on_change("start", window_changed)
        r.on_change("end", window_changed)
    source.selected.on_change("indices", clicked)
    doc.add_root(column(status, fig, traj_fig))
    doc.title = f"gdlab view — {title}"


def _done_text(spec: data.MapSpec, w: data.Window, how: str) -> str:
    grid = f"{w.x.size}" + (f" × {w.y.size}" if w.y is not None else "")
    cost = f" in {w.seconds:.2f} s" if w.seconds else ""
    return (f"{how}: {w.runs} runs ({grid}){cost}, {w.dtype}; α ∈ [{w.x[0]:.6g}, {w.x[-1]:.6g}]"
            + (f", {symbol(spec.y_name)} ∈ [{w.y[0]:.6g}, {w.y[-1]:.6g}]" if spec.y_name else ""))
