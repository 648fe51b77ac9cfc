"""``benchmarks/onsets.py``, the figure behind issue 13's onset claim, runs and still holds.

The bundled maps (float64, the homework's quadratic in its error, w* = 0): in every β column the
measured oscillation onset — the smallest grid α labelled oscillating — lies at most one grid cell
above the closed-form onset, and never below it; in all but one heavy-ball column the first cell
the closed form calls oscillating is already labelled so (the exception: β = 0.16, whose onset
αλ = 0.36 the grid point 0.36000000000000004 exceeds by rounding alone, a double root whose first
sign change comes after any horizon; it lies in the stated band). A flip rule that missed a
resolvable oscillation, or a floor that hid small ones (the old 64 ulps of |w*| + |e₀| gave 87 and
69 of 96), lowers the counts; one that saw oscillations that are not there puts an onset below the
closed form (a negative offset).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("onsets", ROOT / "benchmarks" / "onsets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("config, within", [
    ("configs/momentum_alpha_beta.toml", 95),
    ("configs/nesterov_alpha_beta.toml", 96),
])
def test_bundled_onsets_within_one_cell(monkeypatch, config, within):
    monkeypatch.chdir(ROOT)
    o = _script().onsets(config)
    assert o["columns"] == 96
    assert o["beyond_unexplained"] == 0
    assert o["within_one_cell"] >= within
    assert o["offset_at_most_one_cell"] == 96
    assert 0.0 < o["offset_cells"][0] and o["offset_cells"][1] <= 1.0 + 1e-9
