"""Axes built chunk by chunk in the simulation dtype (issue 14) against plain NumPy.

The reference for a ``{start, stop, num, scale}`` range is ``np.linspace``/``np.geomspace`` in
float64, then ``astype(dtype)``: the values must be equal bit for bit (compared as unsigned
integers, so -0.0 ≠ 0.0 and no tolerance), whatever the chunk size.
"""

import re
import tracemalloc
import warnings

import numpy as np
import pytest

from gdlab import config, grids
from gdlab.errors import ArgumentError

UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def reference(start, stop, num, scale="linear"):
    return (np.linspace if scale == "linear" else np.geomspace)(start, stop, num)


def bits(a):
    return a.view(UINT[a.dtype.itemsize])


def spec(start, stop, num, scale="linear"):
    return {"start": start, "stop": stop, "num": num, "scale": scale}


EDGES = [  # (start, stop, num, scale)
    (0.5, 0.5, 1, "linear"), (0.0, 4.0, 1, "linear"), (2.0, 8.0, 1, "log"),    # num = 1
    (0.0, 4.0, 2, "linear"), (1e-3, 4.0, 2, "log"),                          # num = 2
    (3.0, 3.0, 7, "linear"), (3.0, 3.0, 7, "log"),                           # start == stop
    (0.0, 5e-324, 9, "linear"), (-1e-320, 1e-320, 101, "linear"),            # step underflows
    (-1.0, 1.0, 11, "linear"), (-3.0, 7.0, 1001, "linear"), (-2.0, -1e-9, 33, "linear"),
    (-1e308, 7e307, 9, "linear"), (1e300, 1.5e300, 13, "linear"),            # huge
    (1e-310, 3e-310, 17, "linear"), (1e-300, 1e300, 1001, "log"),            # tiny
    (1.0, 1.0 + 1e-15, 50, "log"), (2.0 - 3e-8, 2.0 + 1e-7, 200, "linear"),  # below float32 ulp
    (7.904735632366619, 7.904735632366639, 59, "log"),  # geomspace's last value < the one before
]


def random_specs(count=80, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        if k % 2:
            a = 10 ** rng.uniform(-30, 30)
            b = a * (1 + 10 ** rng.uniform(-16, 3))
            out.append((a, b, int(rng.integers(1, 200)), "log"))
        else:
            a, b = sorted(rng.choice([-1, 1], 2) * 10 ** rng.uniform(-30, 30, 2))
            out.append((float(a), float(b), int(rng.integers(1, 200)), "linear"))
    return out


@pytest.mark.filterwarnings("ignore::gdlab.grids.DuplicateGridWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_range_is_numpy_bit_for_bit(dtype):
    for start, stop, num, scale in EDGES + random_specs():
        want = reference(start, stop, num, scale)
        with np.errstate(over="ignore"):
            cast = want.astype(dtype)
        for chunk in (1, 7, 64, grids.CHUNK):
            if not np.all(np.isfinite(cast)):   # beyond float32: refused (the test below)
                with pytest.raises(ArgumentError, match="overflows"):
                    grids.axis(spec(start, stop, num, scale), dtype, chunk=chunk)
                continue
            got = grids.axis(spec(start, stop, num, scale), dtype, chunk=chunk)
            assert got.dtype == dtype
            assert np.array_equal(bits(got), bits(cast)), (start, stop, num, chunk)
        assert np.array_equal(bits(grids.axis_values(spec(start, stop, num, scale))), bits(want))


@pytest.mark.filterwarnings("ignore::gdlab.grids.DuplicateGridWarning")
@pytest.mark.parametrize("scale", ["linear", "log"])
def test_range_longer_than_a_chunk(scale):
    num = grids.CHUNK + 3            # the default chunk and a last chunk of 3 values
    want = reference(1e-3, 4.0, num, scale).astype(np.float32)
    assert np.array_equal(bits(grids.axis(spec(1e-3, 4.0, num, scale), "float32")), bits(want))


def duplicates(call):
    """(n_in, n_out) of the DuplicateGridWarning ``call()`` emits, None if none; its file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    hits = [w for w in caught if issubclass(w.category, grids.DuplicateGridWarning)]
    if not hits:
        return None, None
    assert len(hits) == 1
    m = re.search(r"(\d+) of (\d+) distinct values coincide", str(hits[0].message))
    return (int(m[2]), int(m[2]) - int(m[1])), hits[0].filename


@pytest.mark.parametrize("start, stop, num, scale", [
    (2.0 - 1e-7, 2.0 + 1e-7, 101, "linear"),    # float32 steps of 2.4e-7: runs of equal values
    (1.9, 2.1, 3001, "log"),
    (-1e-6, 1e-6, 257, "linear"),               # crosses 0: float32 resolves it all
    (7.904735632366619, 7.904735632366639, 59, "log"),  # unsorted float64 values
    (0.0, 4.0, 5, "linear"),
])
def test_duplicate_counts_match_numpy_unique(start, stop, num, scale):
    values = reference(start, stop, num, scale)
    n_in, n_out = np.unique(values).size, np.unique(values.astype(np.float32)).size
    want = (n_in, n_out) if n_out < n_in else None
    for chunk in (1, 2, 5, 64, grids.CHUNK):   # runs of duplicates straddle chunk boundaries
        counts, where = duplicates(
            lambda c=chunk: grids.axis(spec(start, stop, num, scale), np.float32, chunk=c))
        assert counts == want, chunk
        assert where in (None, __file__)         # the warning points at the caller
    counts, where = duplicates(lambda: grids.cast_axis(values, np.float32))
    assert counts == want and where in (None, __file__)


def test_explicit_list_is_cast_as_before():
    alphas = [2.0 - 1e-9, 2.0, 2.0 + 1e-9, 0.5]      # unsorted, three collide in float32
    counts, where = duplicates(lambda: grids.axis(alphas, np.float32, name="alphas"))
    assert counts == (4, 2) and where == __file__
    got = np.asarray([v for v in grids.axis(alphas, "float64")])
    assert np.array_equal(bits(got), bits(np.asarray(alphas)))


@pytest.mark.parametrize("dtype, top", [
    # IEEE round-to-nearest: the cast overflows from max + ulp(max)/2 (a tie goes to even: inf)
    (np.float32, (2 - 2**-23) * 2.0**127 + 2.0**103),
    (np.float16, 65504.0 + 16.0),
])
def test_overflow_names_the_first_overflowing_value(dtype, top):
    start, stop, num = -top, 1.25 * top, 41
    first = next(v for v in reference(start, stop, num) if abs(v) >= top)
    assert first == start     # the range's ends are checked first: named as the key written
    for chunk in (1, 3, 40, grids.CHUNK):
        with pytest.raises(ArgumentError, match=re.escape(f"alphas.start: {float(first)!r} "
                                                          f"overflows {np.dtype(dtype).name}")):
            grids.axis(spec(start, stop, num), dtype, name="alphas", chunk=chunk)


def test_range_wider_than_float64_is_refused_in_one_line():
    with pytest.raises(ArgumentError, match=r"^alphas: stop - start = 1e\+308 - \(-1e\+308\) "
                                            r"overflows float64; use a narrower range$"):
        grids.axis(spec(-1e308, 1e308, 3), np.float32, name="alphas")


@pytest.mark.parametrize("chunk", [0, -1, 2.5, True])
def test_bad_chunk_is_refused(chunk):
    with pytest.raises(ArgumentError, match="^chunk: .* must be an integer >= 1$"):
        grids.axis(spec(0.0, 1.0, 3), np.float32, chunk=chunk)


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_peak_memory_is_the_cast_array_and_one_chunk(scale):
    """NumPy reports its buffers to tracemalloc: the peak is the float32 array plus one chunk in
    flight (at most CHUNK_BYTES_PER_VALUE per value, as the memory estimate assumes), not the
    float64 array beside it (12 bytes per value and more)."""
    num, chunk = 2**21, 2**14
    tracemalloc.start()
    try:
        out = grids.axis(spec(1e-3, 4.0, num, scale), np.float32, chunk=chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.nbytes == 4 * num
    # 64 KiB slack: Python objects of the loop and the warning machinery, not per value
    assert peak <= 4 * num + grids.CHUNK_BYTES_PER_VALUE * chunk + 2**16, peak


def test_a_config_sizes_its_axes_once(monkeypatch):
    cfg = config.load("configs/q4_phase_alpha_x.toml", ["sweep.x=[0.5, 1.0, 2.0]"])
    calls = []
    size = grids.axis_size
    monkeypatch.setattr(grids, "axis_size", lambda *a, **k: calls.append(a) or size(*a, **k))
    assert cfg.axis_sizes == {"alpha": 401, "x": 3}   # a { num = 401 } range, a list of 3
    assert cfg.runs == 401 * 3 and cfg.axis_sizes == {"alpha": 401, "x": 3}
    assert len(calls) == 2        # once per axis, however often the sizes are read


@pytest.mark.parametrize("spec, key, value", [
    ({"start": 0.0, "stop": 1e39, "num": 301}, "alpha.stop", "1e+39"),
    ({"start": -1e39, "stop": 0.0, "num": 3}, "alpha.start", "-1e+39"),
    ({"start": 1.0, "stop": 1e39, "num": 5, "scale": "log"}, "alpha.stop", "1e+39"),
])
def test_a_range_end_beyond_the_dtype_is_named_as_written(spec, key, value):
    """The audit's `--set sweep.alpha.stop=1e39` named a grid value the user never wrote
    ("sweep.alpha: 3.4033333333333336e+38 overflows float32"): the end is checked first."""
    with pytest.raises(ArgumentError) as exc:
        grids.axis(spec, "float32", name="alpha")
    assert exc.value.argument == key and str(exc.value).startswith(f"{key}: {value} overflows")
