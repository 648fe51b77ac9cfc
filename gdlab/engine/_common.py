"""What every engine path shares: the online statistics of a run, the rounding-noise floor and the
divergence bound. A leaf module: the per-step loop, the CPU tiles and the GPU kernel import it."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

__all__ = ["RunStats", "noise_floor", "divergence_bound", "norm"]

_FLOOR_ULPS = 64.0  # errors below 64 ulps of the numbers involved are rounding noise


class RunStats(NamedTuple):
    """Online statistics of one run (per-run shapes; a leading run axis after vmap)."""

    t_freeze: jnp.ndarray      # int32: first t with |e_t| beyond the bound (or non-finite);
                               # −1 if never
    steps_to_tol: jnp.ndarray  # int32: first t with |e_t| < tol; −1 if never within the horizon
    flips: jnp.ndarray         # int32: steps with ⟨e_{t+1}, e_t⟩ < 0, both above the noise floor
    err_early: jnp.ndarray     # float: max |e_t| for t ≤ T/2 (in-bound iterates)
    err_late: jnp.ndarray      # float: max |e_t| for t > T/2 (in-bound iterates)
    err_obs: jnp.ndarray       # float: |e_k| at the last step k whose predecessor was above
                               # the floor
    k_obs: jnp.ndarray         # int32: that k (0 if no step was resolvable)
    rec_dev: jnp.ndarray       # float: max_t ||e_{t+1}| − |r||e_t|| / scale_t; 0 without r
                               # (see _run)
    mode_flips: Any = None     # int32 (d,): sign flips per eigen-direction, if the problem
                               # has modes


def noise_floor(eps, w_star_abs, err0):
    """|e| below which rounding noise dominates: 64 ulps of |w*| + |e₀|."""
    return _FLOOR_ULPS * eps * (w_star_abs + err0)


def divergence_bound(dtype) -> float:
    """|e| beyond which a run is frozen: √(largest finite), so squares and products stay finite."""
    return float(np.sqrt(np.finfo(dtype).max))


def norm(e):
    """|e| for a scalar, the Euclidean norm for a vector (one run)."""
    return jnp.abs(e) if e.ndim == 0 else jnp.sqrt(jnp.sum(e * e))
