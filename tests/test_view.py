"""``gdlab view``: the command line, and the served page driven in a real (headless) Chromium.

The browser tests start ``gdlab view`` on a small Q4 phase map (40 × 30 runs of GD on
L(w) = ½(xw − 100)², w₀ = 0, T = 200, float32) in a subprocess with ``--port 0``, read the address
from its first line, and drive the page with Playwright on the system's Chromium. They skip, with
the reason, only where no browser (or Playwright) can be found.

Run as a script, this file takes the README's screenshot of the viewer:
``python tests/test_view.py docs/viewer.png``.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from gdlab import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--set", "sweep.alpha.num=40", "--set", "sweep.x.num=30"]
N = 24                                   # --resolution: runs per axis of a re-simulated window
WINDOW = ((0.9, 1.1), (0.95, 1.05))      # around the oscillation onset α = 1/x²
ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)/")
F32_EPS = float(np.finfo(np.float32).eps)


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_dir(out) -> str:
    assert cli.main(["run", "q4_phase_alpha_x", *SMALL, "--out", str(out), "--quiet"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(address, process) of ``gdlab view RUN_DIR --port 0`` on the small phase map."""
    run = _run_dir(tmp_path_factory.mktemp("view") / "q4")
    proc = subprocess.Popen([sys.executable, "-m", "gdlab", "view", run, "--port", "0",
                             "--resolution", str(N)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    first = proc.stdout.readline()
    try:
        yield first, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page(server):
    exe = _browser()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium); the browser tests need one")
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (pip install -e .[test])")
    address, _ = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 1000})
        page.goto(address.strip())
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                               "Bokeh.documents[0].get_model_by_name('map') !== null",
                               timeout=20_000)
        yield page
        browser.close()


def _source(page, name: str) -> dict[str, np.ndarray]:
    data = page.evaluate(f"""() => {{
        const d = Bokeh.documents[0].get_model_by_name('{name}').data;
        const out = {{}};
        for (const [k, v] of (d instanceof Map ? d.entries() : Object.entries(d)))
            out[k] = Array.from(v);
        return out; }}""")
    return {k: np.asarray(v) for k, v in data.items()}


def _status(page) -> str:
    return page.evaluate("() => Bokeh.documents[0].get_model_by_name('status').text")


def test_first_line_is_the_address_and_it_answers_http(server):
    from urllib.request import urlopen
    address, proc = server
    assert ADDRESS.fullmatch(address.strip()), address
    assert proc.poll() is None
    with urlopen(address.strip(), timeout=10) as r:
        assert r.status == 200 and b"bokeh" in r.read().lower()


@pytest.mark.parametrize("option, value, message", [
    ("--port", "70000", "70000 is not a port number; give 0 (any free port) to 65535"),
    ("--port", "-1", "-1 is not a port number; give 0 (any free port) to 65535"),
    ("--resolution", "0", "0 runs per axis is out of range; give 2 to 1000"),
    ("--resolution", "1001", "1001 runs per axis is out of range; give 2 to 1000")])
def test_bad_port_or_resolution_is_one_line_naming_the_option(option, value, message, capsys):
    assert cli.main(["view", "anything", option, value]) == 2
    assert capsys.readouterr().err == f"gdlab: error: {option}: {message}\n"


@pytest.mark.parametrize("host, why", [("999.1.1.1", "this machine cannot listen there"),
                                       ("nosuchhost.invalid", "this machine cannot listen there"),
                                       ("", "empty")])
def test_bad_host_is_one_line_naming_the_option_before_any_work(host, why, capsys):
    """With --port 0 the free port used to be looked up on the host first: a traceback (audit)."""
    assert cli.main(["view", "anything", "--host", host, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gdlab: error: --host: ") and why in err and err.count("\n") == 1
    assert "127.0.0.1" in err


def test_missing_run_directory_is_one_line(tmp_path, capsys):
    assert cli.main(["view", str(tmp_path / "nope"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gdlab: error:") and err.count("\n") == 0 and "nope" in err


def test_window_dtype_switches_to_float64_below_float32_resolution():
    from gdlab._view_data import window_dtype
    assert window_dtype("float32", (0.9, 1.1)) == "float32"       # relative width 0.18
    assert window_dtype("float32", (0.9, 1.1), (1.0, 1.001)) == "float64"   # 1e-3 < 1.2e-2
    assert window_dtype("float64", (1.0, 1.0 + 1e-9)) == "float64"


class _Queue:
    """An executor whose work runs only when the test says so, in order. ``cancellable=False``
    models work the worker already picked up: ``cancel()`` fails, as on a running future."""

    def __init__(self, cancellable: bool):
        self.cancellable, self.jobs, self.futures = cancellable, [], []

    def submit(self, fn, *args):
        future = concurrent.futures.Future()
        if not self.cancellable:
            future.cancel = lambda: False
        self.jobs.append((future, fn, args))
        self.futures.append(future)
        return future

    def run(self):
        while self.jobs:
            future, fn, args = self.jobs.pop(0)
            if future.set_running_or_notify_cancel():
                future.set_result(fn(*args))


class _Doc:
    """The part of a Bokeh document the viewer uses; timers and ticks run when the test says."""

    def __init__(self):
        self.roots, self.timers, self.ticks, self.title = [], {}, [], ""

    def add_root(self, model):
        self.roots.append(model)

    def add_timeout_callback(self, callback, ms):
        handle = object()
        self.timers[handle] = callback
        return handle

    def remove_timeout_callback(self, handle):
        del self.timers[handle]

    def add_next_tick_callback(self, callback):
        self.ticks.append(callback)

    def fire(self):
        for handle in list(self.timers):
            self.timers.pop(handle)()

    def tick(self):
        while self.ticks:
            self.ticks.pop(0)()


@pytest.mark.parametrize("cancellable", [True, False])
def test_only_the_newest_window_is_simulated_and_drawn(monkeypatch, cancellable):
    """Zooms faster than the simulation: the stale windows are cancelled while queued (or skipped
    when they start, where cancelling failed), and one that finished stale is never drawn."""
    from gdlab import _view_app
    from gdlab import _view_data as data
    x = np.linspace(0.1, 1.0, 4)
    spec = data.MapSpec(None, x, None, None, False, False, False, {})
    simulated = []

    def simulate_window(spec, xw, yw, n):
        simulated.append(xw)
        xs = np.linspace(*xw, n[0])
        zeros = np.zeros((n[0], 1), np.int8)
        return data.Window(xs, None, {"regime": zeros, "steps_to_tol": zeros}, n[0], 0.1,
                           "float64")

    monkeypatch.setattr(data, "simulate_window", simulate_window)
    executor, doc = _Queue(cancellable), _Doc()
    _view_app.make_document(spec, data.Window(x, None, {"regime": np.zeros((4, 1), np.int8),
                                                         "steps_to_tol": np.zeros((4, 1))},
                                              4, 0.0, "float64"), executor, 8, "t")(doc)
    status, fig, _ = doc.roots[0].children
    source = fig.select_one({"name": "map_source"})
    drawn = []
    source.on_change("data", lambda attr, old, new: drawn.append((new["alpha"][0],
                                                                 new["alpha"][-1])))

    def zoom(lo, hi):       # each zoom outlasts the debounce, none the simulation
        fig.x_range.start, fig.x_range.end = lo, hi
        doc.fire()

    for lo, hi in [(0.2, 0.9), (0.3, 0.8), (0.4, 0.7)]:
        zoom(lo, hi)
    executor.run()
    doc.tick()
    assert simulated == [(0.4, 0.7)] and drawn == [(0.4, 0.7)]
    assert [f.cancelled() for f in executor.futures] == [cancellable, cancellable, False]
    assert status.text.startswith("simulated: 8 runs (8)") and "α ∈ [0.4, 0.7]" in status.text
    zoom(0.5, 0.6)
    executor.run()           # finished, but a newer window comes before it is drawn
    fig.x_range.start = 0.55
    doc.fire()
    executor.run()
    doc.tick()
    assert simulated[1:] == [(0.5, 0.6), (0.55, 0.6)] and drawn[1:] == [(0.55, 0.6)]


def test_page_shows_the_run_map(page):
    src = _source(page, "map_source")
    assert src["code"].size == 40 * 30                    # the run's own 40 × 30 results
    assert _status(page).startswith("the run's own results: 1200 runs")


def test_zoom_resimulates_the_window_as_gdlab_sweep_does(page):
    import gdlab
    (a0, a1), (x0, x1) = WINDOW
    page.evaluate(f"""() => {{ const m = Bokeh.documents[0].get_model_by_name('map');
        m.x_range.setv({{start: {a0}, end: {a1}}}); m.y_range.setv({{start: {x0}, end: {x1}}});
        }}""")
    page.wait_for_function(f"() => Bokeh.documents[0].get_model_by_name('status').text"
                           f".startsWith('simulated: {N * N} runs')", timeout=20_000)
    assert "float32" in _status(page)
    src = _source(page, "map_source")
    alpha, x = np.linspace(a0, a1, N), np.linspace(x0, x1, N)
    np.testing.assert_allclose(src["alpha"].reshape(N, N)[:, 0], alpha, rtol=0, atol=1e-12)
    np.testing.assert_allclose(src["y"].reshape(N, N)[0], x, rtol=0, atol=1e-12)
    want = gdlab.sweep(gdlab.problems.scalar_regression(1.0, 100.0), alpha, over={"x": x},
                       w0=0.0, steps=200, tol=1.0, dtype="float32", keep="compact").regime
    np.testing.assert_array_equal(src["code"].reshape(N, N), want)
    # and the closed form, away from the edges: e_t = (1 − αx²)^t e_0 converges without sign
    # changes for αx² < 1 and with them for 1 < αx² < 2 (2 % margin: the horizon and float32's
    # rounding decide the cells next to αx² = 1)
    ax2 = alpha[:, None] * x[None, :] ** 2
    names = np.asarray(src["regime"]).reshape(N, N)
    assert np.all(names[ax2 < 0.98] == "converging_monotone")
    assert np.all(names[(ax2 > 1.02) & (ax2 < 1.98)] == "converging_oscillating")


def test_click_draws_the_trajectory(page):
    src = _source(page, "map_source")
    k = 5 * N + 10                                  # α-major: cell (i = 5, j = 10)
    alpha, x = float(src["alpha"][k]), float(src["y"][k])
    left, bottom = float(src["left"][k]), float(src["bottom"][k])
    right, top = float(src["right"][k]), float(src["top"][k])
    px, py = page.evaluate(f"""() => {{
        const m = Bokeh.documents[0].get_model_by_name('map');
        const v = Bokeh.index.find_one(m);
        const r = v.el.getBoundingClientRect();
        return [r.left + v.frame.x_scale.compute({(left + right) / 2}),
                r.top + v.frame.y_scale.compute({(bottom + top) / 2})]; }}""")
    page.mouse.click(px, py)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('trajectory_source')"
                           ".get_length() > 0", timeout=20_000)
    traj = _source(page, "trajectory_source")
    t = traj["t"]
    np.testing.assert_array_equal(t, np.arange(201))
    # |w_t − w*| = |1 − αx²|^t |w₀ − w*|, w* = 100/x, w₀ = 0. Tolerance: float32 rounds each
    # update (relative 6e-8 per step, compounding: 1e-5·(t + 1) relative), and w_t ≈ w* ≈ 100
    # is itself held to within ulp(100) = 7.6e-6, so the error has an absolute floor: 1e-4
    # (about 13 ulps) covers the rounding of the steps after the error reached it.
    want = np.abs(1 - alpha * x * x) ** t * (100.0 / x)
    off = np.abs(traj["value"] - want) - (1e-4 + 1e-5 * (t + 1) * want)
    assert np.all(off <= 0), (alpha, x, np.flatnonzero(off > 0)[:5])
    value = traj["value"]   # the page's own curve: starts at |w₀ − w*| and decays
    assert value[0] == pytest.approx(100.0 / x) and value[-1] < value[0]


def _screenshot(path: str) -> None:
    """The viewer on the full Q4 phase map (config sizes), zoomed onto the oscillation onset and
    with one trajectory drawn, saved as ``path``."""
    from playwright.sync_api import sync_playwright
    proc = subprocess.Popen([sys.executable, "-m", "gdlab", "view", "q4_phase_alpha_x",
                             "--port", "0"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        address = proc.stdout.readline().strip()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_browser(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 760, "height": 880})
            page.goto(address)
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                                   "Bokeh.documents[0].get_model_by_name('map') !== null",
                                   timeout=60_000)
            box = page.evaluate("""() => { const m = Bokeh.documents[0].get_model_by_name('map');
                const v = Bokeh.index.find_one(m); const r = v.el.getBoundingClientRect();
                return [r.left + v.frame.x_scale.compute(1.0),
                        r.top + v.frame.y_scale.compute(1.2)]; }""")
            page.mouse.click(*box)
            page.wait_for_function("() => Bokeh.documents[0].get_model_by_name("
                                   "'trajectory_source').get_length() > 0", timeout=60_000)
            page.mouse.move(box[0] + 120, box[1] - 80)
            time.sleep(1.0)
            page.screenshot(path=path, full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    _screenshot(sys.argv[1] if len(sys.argv) > 1 else "docs/viewer.png")
