"""Box-counting (fractal) dimension of a trainability boundary.

The boundary of a 2-D classification map (a regime image, a boolean "converged" image) is the set of
pixels whose 2×2 neighbourhood holds more than one class (Sohl-Dickstein 2024, "The boundary of
neural network trainability is fractal"); along a 1-D step-size axis it is the set of positions k
where labels[k] ≠ labels[k+1].

Cover that set with a grid of s×s boxes (s-long intervals in 1-D) laid from the origin, and count
the boxes N(s) that hold at least one of its pixels. For a set of box-counting dimension D,
N(s) ∝ s^(−D), so

    D = slope of  log N(s)  against  log(1/s),

fitted by least squares over a range of scales. A line or a smooth curve gives 1, a filled region
2, a point 0; the Koch curve log 4 / log 3 ≈ 1.262, the Cantor set log 2 / log 3 ≈ 0.631.

Which scales are fitted (:func:`dimension`, ``scales``): by default every counted size s with

* s ≥ 2: at s = 1 the count sees the pixel lattice, not the set's geometry (the 2×2 rule marks
  a slanted edge as a staircase up to two pixels across, a dust of points is one-pixel runs and
  gaps), and the first local slope is the most biased of all (Cantor set 0.42 for 0.63);
* at least ``MIN_FIT_BOXES`` = 8 boxes along the shorter side, ⌈n/s⌉ ≥ 8: with fewer, most boxes
  touch the set (N(s) saturates towards the number of boxes, whatever the set) and the image edge
  cuts the last box, so the largest-scale slopes are biased towards the dimension of the plane.

Counting itself goes to ``MIN_COUNT_BOXES`` = 4 boxes along the shorter side, so the local slopes
show where that saturation begins. Powers of two are the default sizes: each level is the previous
occupancy grid OR-pooled 2×2, so all of them cost about one pass over the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from gdlab.errors import ArgumentError

__all__ = ["FractalDimension", "DimensionSeries", "boundary", "box_counts", "dimension",
           "dimension_series", "MIN_COUNT_BOXES", "MIN_FIT_BOXES", "MIN_FIT_SCALES"]

MIN_COUNT_BOXES = 4   # default sizes: at least this many boxes along the shorter side
MIN_FIT_BOXES = 8     # default fit: at least this many boxes along the shorter side (see above)
MIN_FIT_SCALES = 3    # a slope with a standard error needs three points


class FractalDimension(NamedTuple):
    dimension: float          # least-squares slope of log N(s) against log(1/s) over fit_sizes
    sizes: np.ndarray         # shape=(k,), int64: every box edge length counted
    counts: np.ndarray        # shape=(k,), int64: N(s), boxes holding at least one set pixel
    local_slopes: np.ndarray  # shape=(k-1,): −Δlog N / Δlog s between consecutive sizes
    fit_sizes: np.ndarray     # shape=(m,), int64, m ≥ 3: the sizes the fit used
    stderr: float             # standard error of the slope (ordinary least squares)
    n_boundary: int           # set pixels: boundary pixels of labels, or True pixels of a mask

    def as_dict(self) -> dict:
        return {k: v.tolist() if isinstance(v, np.ndarray) else v
                for k, v in self._asdict().items()}


class DimensionSeries(NamedTuple):
    frames: tuple[FractalDimension, ...]  # one per frame, in order
    dimensions: np.ndarray                # shape=(n_frames,): frames[i].dimension
    median: float
    min: float
    max: float


def _as_image(x, name: str, *, mask: bool) -> np.ndarray:
    """``x`` as a 1-D or 2-D array (bool if ``mask``), else ArgumentError naming ``name``."""
    what = "mask" if mask else "label image"
    arr = np.asarray(x)
    if arr.ndim not in (1, 2):
        raise ArgumentError(name, f"shape {arr.shape} is {arr.ndim}-D; pass a 1-D or 2-D {what} "
                                  "(one frame of a stack: x[k])")
    if arr.dtype.kind not in ("biuf" if mask else "biufUS"):
        raise ArgumentError(name, f"dtype {arr.dtype} cannot hold classes; pass a boolean, integer"
                                  f" or float {what}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        first = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise ArgumentError(name, f"{int(np.isnan(arr).sum())} NaN value(s), the first at "
                                  f"{first}; give NaN pixels a class of their own first, e.g. "
                                  "np.where(np.isnan(x), -1, x)")
    if min(arr.shape) < (1 if mask else 2):
        raise ArgumentError(name, f"shape {arr.shape} is too small; a {what} needs at least "
                                  f"{1 if mask else 2} pixel(s) along each axis")
    if not mask:
        return arr
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ArgumentError(name, f"values other than 0/1 (e.g. {arr[~np.isin(arr, (0, 1))][0]}"
                                      "); pass a boolean mask, or class labels with is_mask=False")
        arr = arr.astype(bool)
    return arr


def boundary(labels: np.ndarray) -> np.ndarray:
    """Boundary pixels of a label image: where the classification changes.

    2-D, shape (H, W) → (H−1, W−1): pixel (i, j) is True when labels[i:i+2, j:j+2] holds more than
    one class. 1-D, shape (N,) → (N−1,): position k is True when labels[k] ≠ labels[k+1].
    """
    return _boundary(_as_image(labels, "labels", mask=False))


def _boundary(x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        return x[1:] != x[:-1]
    a = x[:-1, :-1]  # the block holds one class iff its three other corners all equal this one
    return (a != x[:-1, 1:]) | (a != x[1:, :-1]) | (a != x[1:, 1:])


def _default_sizes(shape: tuple[int, ...]) -> np.ndarray:
    """Powers of two 1, 2, 4, … while ⌈n/s⌉ ≥ MIN_COUNT_BOXES, n the shorter side."""
    n = min(shape)
    sizes = [1]
    while -(-n // (2 * sizes[-1])) >= MIN_COUNT_BOXES:
        sizes.append(2 * sizes[-1])
    return np.array(sizes, np.int64)


def _pool(occupied: np.ndarray, k: int) -> np.ndarray:
    """OR over k×k blocks (k-long runs in 1-D), zero-padded at the far end."""
    pad = [(0, -n % k) for n in occupied.shape]
    occupied = np.pad(occupied, pad)
    split = [d for n in occupied.shape for d in (n // k, k)]
    return occupied.reshape(split).any(axis=tuple(range(1, 2 * occupied.ndim, 2)))


def box_counts(mask: np.ndarray, sizes: Sequence[int] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """N(s): the number of s×s boxes (1-D: s-long intervals) holding at least one True pixel.

    Boxes lie on a grid from the origin; the last, partial box along each axis counts too.
    Default sizes: powers of two up to the largest with ⌈n/s⌉ ≥ 4 boxes along the shorter side n.
    Returns (sizes, counts), both int64.
    """
    m = _as_image(mask, "mask", mask=True)
    if sizes is None:
        s = _default_sizes(m.shape)
    else:
        s = np.asarray(sizes)
        if (s.ndim != 1 or s.size == 0 or s.dtype.kind not in "iu" or (s < 1).any()
                or (np.diff(s) <= 0).any()):
            raise ArgumentError("sizes", f"{sizes!r}; pass increasing positive integers, "
                                         "e.g. [2, 4, 8, 16]")
        s = s.astype(np.int64)
    counts = np.empty(s.size, np.int64)
    grid, prev = m, 1  # grid[I, J]: the prev-sized box (I, J) is occupied
    for i, size in enumerate(s.tolist()):
        # A box of size k·prev on the origin-anchored grid is exactly k×k boxes of size prev.
        grid = _pool(grid, size // prev) if size % prev == 0 else _pool(m, size)
        prev = size
        counts[i] = np.count_nonzero(grid)
    return s, counts


def _fit(sizes: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """OLS slope of log N against log(1/s) and its standard error."""
    x, y = -np.log(sizes.astype(float)), np.log(counts.astype(float))
    xc = x - x.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * xc
    return slope, math.sqrt(float(resid @ resid) / (x.size - 2) / sxx)


def dimension(labels_or_mask: np.ndarray, *, is_mask: bool = False,
              scales: tuple[int, int] | None = None,
              sizes: Sequence[int] | None = None) -> FractalDimension:
    """Box-counting dimension of the boundary of a label image (or of a mask's True pixels).

    D = least-squares slope of log N(s) against log(1/s) (see the module docstring).

    Args:
      labels_or_mask: a 2-D or 1-D label image (any classes; its :func:`boundary` is measured),
        or with ``is_mask=True`` a boolean set whose True pixels are measured directly.
      scales: (s_min, s_max), the inclusive range of box sizes fitted; default: s ≥ 2 and at least
        ``MIN_FIT_BOXES`` boxes along the shorter side.
      sizes: the box sizes counted (:func:`box_counts`); default powers of two.
    """
    name = "mask" if is_mask else "labels"
    return _dimension(labels_or_mask, name, is_mask, scales, sizes)


def _dimension(x, name: str, is_mask: bool, scales, sizes) -> FractalDimension:
    if is_mask:
        m = _as_image(x, name, mask=True)
        if not m.any():
            raise ArgumentError(name, f"no True pixel among {m.size}; the dimension of an empty "
                                      "set is undefined (pass is_mask=False for a label image)")
    else:
        lab = _as_image(x, name, mask=False)
        m = _boundary(lab)
        if not m.any():
            raise ArgumentError(name, f"no boundary: all {lab.size} pixels hold class "
                                      f"{lab.flat[0].item()!r}; a boundary needs at least two "
                                      "classes (pass is_mask=True to measure a set of pixels)")
    s, n = box_counts(m, sizes)
    if scales is None:
        keep = (s >= 2) & (-(-min(m.shape) // s) >= MIN_FIT_BOXES)
        if keep.sum() < MIN_FIT_SCALES:
            fix = (f"use a larger image (at least {_min_side(is_mask)} pixels per side)"
                   if sizes is None else "pass more sizes= or a scales= range")
            raise ArgumentError(name, f"shape {np.shape(x)} leaves {int(keep.sum())} box size(s) "
                                      f"{s[keep].tolist()} to fit (s ≥ 2, ≥ {MIN_FIT_BOXES} boxes "
                                      f"per side) of {s.tolist()}; need {MIN_FIT_SCALES}: {fix}")
    else:
        try:
            lo, hi = (int(v) for v in scales)
        except (TypeError, ValueError):
            raise ArgumentError("scales", f"{scales!r}; pass (s_min, s_max), e.g. (2, 64)"
                                ) from None
        keep = (s >= lo) & (s <= hi)
        if keep.sum() < MIN_FIT_SCALES:
            raise ArgumentError("scales", f"{scales!r} keeps {s[keep].tolist()} of the box sizes "
                                          f"{s.tolist()}; need {MIN_FIT_SCALES}: widen the range")
    slope, err = _fit(s[keep], n[keep])
    local = -np.diff(np.log(n.astype(float))) / np.diff(np.log(s.astype(float)))
    return FractalDimension(slope, s, n, local, s[keep], err, int(np.count_nonzero(m)))


def _min_side(is_mask: bool) -> int:
    """Shortest side whose default fit has MIN_FIT_SCALES sizes 2, 4, …, 2^MIN_FIT_SCALES.

    The largest needs ⌈n/s⌉ ≥ MIN_FIT_BOXES, i.e. n ≥ (MIN_FIT_BOXES − 1)·s + 1 mask pixels; a
    label image has one pixel more per side than its boundary.
    """
    return (MIN_FIT_BOXES - 1) * 2 ** MIN_FIT_SCALES + 1 + (not is_mask)


def dimension_series(frames: Sequence[np.ndarray], *, is_mask: bool = False,
                     scales: tuple[int, int] | None = None,
                     sizes: Sequence[int] | None = None) -> DimensionSeries:
    """:func:`dimension` of every frame of a zoom series, with their median, min and max.

    ``frames``: a sequence of images, which may differ in shape, or a stacked array (frames along
    axis 0). Errors name the frame (``frames[3]: …``).
    """
    frames = list(frames)
    if not frames:
        raise ArgumentError("frames", "empty; pass a list of label images (or masks)")
    out = tuple(_dimension(f, f"frames[{i}]", is_mask, scales, sizes)
                for i, f in enumerate(frames))
    d = np.array([r.dimension for r in out])
    return DimensionSeries(out, d, float(np.median(d)), float(d.min()), float(d.max()))
