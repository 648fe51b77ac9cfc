"""Helpers shared across modules: the "did you mean" hint and the JSON sanitizer."""

import json
from typing import NamedTuple

import numpy as np
import pytest

from gdlab import rundir
from gdlab._naming import did_you_mean


def test_did_you_mean():
    assert did_you_mean("stpes", ["steps", "tol"]) == " (did you mean 'steps'?)"
    assert did_you_mean("zzz", ["steps", "tol"]) == ""
    assert did_you_mean(12, ["123"]) == " (did you mean '123'?)"            # str() of a value
    assert did_you_mean("kapa", ["kappa"], cutoff=0.7, form="did you mean {!r}? ") == (
        "did you mean 'kappa'? ")
    assert did_you_mean("ab", ["abcd"], cutoff=0.7) == ""                 # ratio 0.67 < 0.7


class _Pair(NamedTuple):
    a: float
    b: tuple


def test_jsonable_refuses_or_nulls_non_finite_numbers():
    value = {1: _Pair(np.float32(0.5), (np.int64(2), np.array([1.0, 2.0]))), "x": [np.bool_(True)]}
    plain = rundir.jsonable(value)
    assert plain == {"1": {"a": 0.5, "b": [2, [1.0, 2.0]]}, "x": [True]}
    json.dumps(plain, allow_nan=False)
    with pytest.raises(FloatingPointError, match="non-finite value"):
        rundir.jsonable({"a": [np.float64("nan")]})
    assert rundir.jsonable([np.inf, -np.inf, np.float32("nan")], nonfinite="null") == [None] * 3
    with pytest.raises(ValueError, match="nonfinite"):
        rundir.jsonable(1.0, nonfinite="drop")
