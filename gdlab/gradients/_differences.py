"""Central finite differences in float64, each entry at the best step of a ladder.

For the parameter p = args[argnum] and every Jacobian entry (output i, parameter j):

    D(h) = (f_i(p + h e_j) − f_i(p − h e_j)) / 2h,

with 2h the step actually taken, (p_j + h) − (p_j − h) in float64. The ladder is
h_k = 10^k·h_0, k = 0..3, from h_0 = ε^{1/3}·max(1, |p_j|) ≈ 6e-6·max(1, |p_j|) (ε: float64's
machine epsilon; h_0 balances truncation h²|f‴|/6 against rounding ε|f|/h, both ≈ ε^{2/3} ≈ 4e-11
at unit scale), and each h_k is also taken doubled, 2h_k. Each entry keeps the D(h_k) with the
smallest estimated error

    e(h) = |D(h) − D(2h)| + 16ε_f(|f_i(p + h e_j)| + |f_i(p − h e_j)|)/2h:

the first term bounds the truncation error (Richardson: D(h)'s truncation error ≈ |D(h) − D(2h)|/3,
so a 3x margin), the second the rounding of f, ε_f being the machine epsilon of f's output (float64
unless f rounds to a narrower type). An estimate that is NaN counts as infinite. A step above h_0
wins only where f is large compared with its variation over the step (a huge loss, a nearly linear
f). All 2·8 shifted evaluations of a column run as rows of one vmapped program, a few columns per
call.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__: list[str] = []

_FD_ROUNDING = 16.0  # allowed rounding of one f evaluation, in units of ε|f|


@partial(jax.jit, static_argnums=(0, 1))
def _f_shifted(f: Callable, argnum: int, cols: jax.Array, steps: jax.Array,
               *args: Any) -> jax.Array:
    """Row r: f with args[argnum].flat[cols[r]] += steps[r], flattened: [rows × out.size]."""
    p = args[argnum].ravel()

    def f_at(col, step):
        a = list(args)
        a[argnum] = (p + jnp.where(jnp.arange(p.size) == col, step, 0.0)).reshape(
            args[argnum].shape)
        return jnp.ravel(f(*a))
    return jax.vmap(f_at)(cols, steps)


_LEVELS = 10.0 ** np.arange(4)  # step levels h_k = 10^k·h_0


def _central_differences(f: Callable, argnum: int,
                         args: list) -> tuple[np.ndarray, np.ndarray]:
    """Central differences D and their error estimate e, each [out.size × p.size], every entry at
    the step of the ladder h_k = 10^k·h_0, k = 0..3, with the least e(h_k) (see the module
    docstring). Call under x64, with the floating arguments in float64.
    """
    p = np.asarray(args[argnum], np.float64).ravel()
    P, S = p.size, 2 * len(_LEVELS)
    h = np.finfo(np.float64).eps ** (1 / 3) * np.maximum(1.0, np.abs(p))
    steps = h[:, None] * np.concatenate([_LEVELS, 2 * _LEVELS])[None]       # [P × S]
    chunk = max(1, min(P, 2**22 // (2 * S * P)))                            # columns per call
    width = (p[:, None] + steps) - (p[:, None] - steps)                     # the steps taken
    fp, fm = [], []
    for start in range(0, P, chunk):
        cols = np.arange(start, start + chunk) % P                           # pad the last chunk
        c = np.repeat(cols, S)
        s = steps[cols].ravel()
        out = _f_shifted(f, argnum, jnp.asarray(np.concatenate([c, c])),
                         jnp.asarray(np.concatenate([s, -s])), *args)
        out = np.asarray(out, np.float64).reshape(2, chunk, S, -1)
        fp.append(out[0])
        fm.append(out[1])
    fp, fm = np.concatenate(fp)[:P], np.concatenate(fm)[:P]                 # [P × S × out]
    eps_out = np.finfo(jax.eval_shape(f, *args).dtype).eps
    D = (fp - fm) / width[..., None]
    rounding = _FD_ROUNDING * eps_out * (np.abs(fp) + np.abs(fm)) / width[..., None]
    K = len(_LEVELS)
    with np.errstate(invalid="ignore"):
        err = np.abs(D[:, :K] - D[:, K:]) + rounding[:, :K]
    err = np.where(np.isnan(err), np.inf, err)
    best = np.argmin(err, axis=1)[:, None]
    pick = lambda a: np.take_along_axis(a, best, axis=1)[:, 0].T  # noqa: E731
    return pick(D[:, :K]), pick(err)
