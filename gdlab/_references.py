"""Reference implementations the benchmarks time gdlab against, written from the maths in plain
NumPy (or plain JAX, the way the notebooks do it), never from gdlab's engine."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from gdlab import engine

__all__ = ["numpy_sweep"]


def numpy_sweep(alpha: ArrayLike, x: float, y: float, w0: float, steps: int, tol: float,
                dtype: DTypeLike = np.float32, recurrence: bool = True) -> dict[str, np.ndarray]:
    """Gradient descent on ½(xw − y)² vectorised over α in NumPy, with the engine's statistics.

    ``recurrence`` adds the Q4.3 recurrence deviation, as the engine does when asked
    (the benchmark compares both without it).
    """
    dtype = np.dtype(dtype).type
    alpha = np.asarray(alpha, dtype)
    x, y = dtype(x), dtype(y)
    w_star = y / x
    w = np.full(alpha.shape, w0, dtype)
    r = (1.0 - alpha.astype(np.float64) * float(x) * float(x)).astype(dtype)
    eps, bound = np.finfo(dtype).eps, dtype(engine.divergence_bound(dtype))
    err0 = np.abs(w - w_star)
    floor = engine.noise_floor(eps, abs(w_star), err0)
    t_freeze = np.full(alpha.shape, -1, np.int32)
    steps_to_tol = np.where(err0 < tol, 0, -1).astype(np.int32)
    flips = np.zeros(alpha.shape, np.int32)
    err_early, err_late, err_obs = err0.copy(), np.zeros_like(err0), err0.copy()
    half = steps // 2
    k_obs = np.zeros(alpha.shape, np.int32)
    rec = np.zeros(alpha.shape, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            e = w - w_star
            err = np.abs(e)
            w_new = w - alpha * (x * (x * w - y))
            e_new = w_new - w_star
            err_new = np.abs(e_new)
            active = t_freeze < 0
            ok = active & (err_new <= bound)
            resolvable = ok & (err > floor)
            flips += resolvable & (err_new > floor) & (e_new * e < 0)
            if recurrence:
                scale = abs(w_star) + err + err_new + np.abs(1 - r) * err
                # scale = 0 only when w* = e_t = e_{t+1} = 0: both sides are 0, no deviation
                dev = np.abs(err_new - np.abs(r) * err) / np.where(scale > 0, scale, 1)
                rec = np.where(ok, np.maximum(rec, dev), rec)
            t_freeze = np.where(active & ~ok, t + 1, t_freeze)
            steps_to_tol = np.where((steps_to_tol < 0) & ok & (err_new < tol), t + 1, steps_to_tol)
            err_in = np.where(ok, err_new, 0)
            if t + 1 > half:
                err_late = np.maximum(err_late, err_in)
            else:
                err_early = np.maximum(err_early, err_in)
            err_obs = np.where(resolvable, err_new, err_obs)
            k_obs = np.where(resolvable, t + 1, k_obs)
            w = np.where(ok, w_new, w)
    return {"t_freeze": t_freeze, "steps_to_tol": steps_to_tol, "flips": flips, "w": w,
            "err_early": err_early, "err_late": err_late, "rec_dev": rec}
