"""Config axes are kept as written and never built whole in float64 at load (issue 14): a range's
checks read it a chunk at a time, the zoom reads its ends alone, and the study hands the mapping
itself to gdlab.sweep, which builds it in the run's dtype. References are plain NumPy."""

import tomllib
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from gdlab import _study_plan, config, dynamics, grids, study
from gdlab.config import ConfigError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
N = 10**7                      # 80 MB as float64: what the config must not hold
# Traced peak allowed while loading: two float64 chunks (17 MB), a fifth of that axis. A load
# legitimately holds the config objects and, scanning a range, one grids.CHUNK of float64 values
# (2²⁰, 8.4 MB) and its boolean mask (1 MB): 9.4 MB measured.
PEAK_BYTES = 2 * 8 * grids.CHUNK


def table(name: str = "q4_alpha_sweep.toml", **sweep) -> dict:
    t = tomllib.loads((CONFIGS / name).read_text(encoding="utf-8"))
    t["sweep"].update(sweep)
    return t


def load(t: dict):
    return config.from_table(t, "cfg.toml")


def traced_peak(fn):
    """(fn(), peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def rng(start, stop, num, **kw):
    return {"start": start, "stop": stop, "num": num, **kw}


def test_a_long_range_is_kept_as_written_not_built():
    alpha = rng(0.0, 3.0, N)
    cfg, peak = traced_peak(lambda: load(table(alpha=alpha)))
    assert cfg.axes["alpha"] == alpha and cfg.axis_sizes == {"alpha": N} and cfg.runs == N
    assert peak < PEAK_BYTES, peak
    # Built on demand, it is NumPy's float64 grid bit for bit (small here: a 5-value copy).
    small = load(table(alpha=rng(0.0, 3.0, 5))).axis_values("alpha")
    assert small.tobytes() == np.linspace(0.0, 3.0, 5).tobytes()


@pytest.mark.parametrize("num", [N, N + 1])
def test_a_long_parameter_range_is_checked_a_chunk_at_a_time(num):
    # x must be nonzero. NumPy's float64 grid: linspace(-1, 1, 10⁷ + 1)[5·10⁶] is exactly 0.0 (in
    # the fifth chunk), linspace(-1, 1, 10⁷) holds no 0.0.
    has_zero = bool(np.any(np.linspace(-1.0, 1.0, num) == 0.0))
    assert has_zero == (num == N + 1)
    t = table(alpha=[0.5], x=rng(-1.0, 1.0, num))

    def loaded():
        try:
            return load(t)
        except ConfigError as e:
            return str(e)

    out, peak = traced_peak(loaded)
    assert peak < PEAK_BYTES, peak
    if has_zero:
        assert out == "cfg.toml: sweep.x: contains 0.0; the optimum needs a nonzero value"
    else:
        assert out.axis_sizes == {"alpha": 1, "x": N}


# (start, stop, num) of x: zero reached only through float64 rounding, or straddled and missed.
ZERO_CASES = [(-0.3, 0.6, 4), (-0.1, 0.2, 4), (-1.0, 2.0, 10), (-0.7, 0.7, 21), (-0.7, 0.7, 20),
              (-3.0, 1e-300, 4), (1e-300, 1.0, 3), (-1e-300, 1e-300, 2), (-2.0, 1.0, 31)]


@pytest.mark.parametrize("start,stop,num", ZERO_CASES)
def test_contains_zero_is_numpys_float64_grid_across_chunks(monkeypatch, start, stop, num):
    monkeypatch.setattr(grids, "CHUNK", 3)   # the zero, if any, lies past the first chunk
    t = table(alpha=[0.5], x=rng(start, stop, num))
    if np.any(np.linspace(start, stop, num) == 0.0):
        with pytest.raises(ConfigError, match=r"^cfg.toml: sweep.x: contains 0.0; the optimum "
                                              r"needs a nonzero value$"):
            load(t)
    else:
        assert load(t).axis_sizes["x"] == num


def test_zero_cases_are_not_vacuous():
    hits = [bool(np.any(np.linspace(*c) == 0.0)) for c in ZERO_CASES]
    straddles = [c[0] < 0 < c[1] for c in ZERO_CASES]
    assert any(hits) and any(s and not h for s, h in zip(straddles, hits))


@pytest.mark.parametrize("kappa,refused", [
    (rng(0.0, 4.0, 7), True), (rng(-1e-300, 4.0, 7), True), (rng(1e-300, 4.0, 7), False),
    (rng(1e-3, 1e3, 13, scale="log"), False), ([3.0, 0.0], True)])
def test_positive_axes_are_checked_on_their_values(monkeypatch, kappa, refused):
    monkeypatch.setattr(grids, "CHUNK", 2)
    t = table("momentum_alpha_beta.toml")
    t["problem"] = {"name": "quadratic", "dim": 4}
    t["sweep"] = {"alpha": [0.5], "kappa": kappa}
    values = np.asarray(kappa) if isinstance(kappa, list) else (
        np.geomspace if kappa.get("scale") == "log" else np.linspace)(
            kappa["start"], kappa["stop"], kappa["num"])
    assert refused == bool(np.any(values <= 0.0))
    if refused:
        with pytest.raises(ConfigError, match="sweep.kappa: contains a value <= 0; it must be > 0"):
            load(t)
    else:
        load(t)


def test_zoom_center_is_checked_against_the_ends_alone():
    x = rng(0.5, 2.0, N)
    t = table("q4_phase_alpha_x.toml", alpha=rng(0.0, 3.0, 2), x=x)
    t["zoom"] = {"center": [1.5, 2.0]}          # on the last value: inside
    cfg, peak = traced_peak(lambda: load(t))
    assert cfg.zoom.center == (1.5, 2.0) and peak < PEAK_BYTES, peak
    t["zoom"] = {"center": [1.5, float(np.nextafter(2.0, 3.0))]}
    with pytest.raises(ConfigError, match=r"zoom.center: 2.0000000000000004 lies outside sweep.x "
                                          r"\[0.5, 2\]$"):
        load(t)


class Handed(Exception):
    """Raised by a stand-in for a simulation: what it was handed is in args."""


def test_the_study_hands_the_ranges_to_the_sweep(monkeypatch):
    cfg = load(table("q4_phase_alpha_x.toml"))
    plan = _study_plan.plan(cfg, print)

    def sweep(problem, alphas, **kw):
        raise Handed(alphas, kw["over"])

    monkeypatch.setattr(study.gdlab, "sweep", sweep)
    with pytest.raises(Handed) as e:
        study._simulate(cfg, plan, False, None)
    alphas, over = e.value.args
    assert alphas == rng(0.0, 3.0, 401) and over == {"x": rng(0.5, 2.0, 301)}
    # What the sweep builds from them: NumPy's float64 grid cast to float32, bit for bit.
    assert (grids.axis(alphas, np.float32).tobytes()
            == np.linspace(0.0, 3.0, 401).astype(np.float32).tobytes())


def test_a_shard_and_an_orbit_study_get_the_range(monkeypatch, tmp_path):
    def simulate(problem, alphas, **kw):
        raise Handed(alphas)

    monkeypatch.setattr(study, "simulate_shard", simulate)
    monkeypatch.setattr(dynamics, "orbits", simulate)
    for name, extra in [("q4_alpha_sweep.toml", {"shard": "0/2"}),
                        ("quartic_bifurcation.toml", {})]:
        t = table(name, **extra)
        cfg = load(t)
        with pytest.raises(Handed) as e:
            study.run_sweep_study(cfg, tmp_path / name, log=lambda line: None)
        assert isinstance(e.value.args[0], Mapping) and e.value.args[0] == t["sweep"]["alpha"]


def test_a_sweep_argument_maps_back_to_its_config_key():
    cfg = load(table("q4_phase_alpha_x.toml"))
    assert [config.config_key(cfg, a) for a in ("alphas", "alphas.num", "over['x']",
                                                "over['x'].start")] == [
        "sweep.alpha", "sweep.alpha.num", "sweep.x", "sweep.x.start"]


@pytest.mark.parametrize("spec,reference", [
    (rng(-1.0, 2.0, 7), np.linspace(-1.0, 2.0, 7)),
    (rng(1e-3, 10.0, 9, scale="log"), np.geomspace(1e-3, 10.0, 9)),
    ([0.5, -2.0, 3.0], np.array([0.5, -2.0, 3.0]))])
def test_axis_part_is_the_slice_of_numpys_grid(spec, reference):
    n = reference.size
    for lo in range(n + 1):
        for hi in range(lo, n + 2):   # hi past the end is clipped, as a slice is
            part = grids.axis_part(spec, lo, hi, name="a")
            assert part.dtype == np.float64 and part.tobytes() == reference[lo:hi].tobytes()
