"""What every engine path shares: the online statistics of a run, the rounding-noise floor and the
divergence bound, a chunk of runs and the spec of its program, and the interface of a fast path. A
leaf module: the per-step loop, the CPU tiles and the GPU kernel import it."""

from __future__ import annotations

import abc
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import DTypeLike

from gdlab.interfaces import Layered

__all__ = ["step_sizes", "RunStats", "Chunk", "ChunkSpec", "FastPath", "noise_floor",
           "flip_floor", "mode_floor", "divergence_bound", "norm", "inner_sign"]

_FLOOR_ULPS = 64.0  # errors below 64 ulps of the numbers involved are rounding noise


class RunStats(NamedTuple):
    """Online statistics of one run (per-run shapes; a leading run axis after vmap)."""

    t_freeze: jnp.ndarray      # int32: first t with |e_t| beyond the bound (or non-finite);
                               # −1 if never
    steps_to_tol: jnp.ndarray  # int32: first t with |e_t| < tol; −1 if never within the horizon
    flips: jnp.ndarray         # int32: sign changes between resolvable observations: steps taken
                               # with |e_{t+1}| above the noise floor and ⟨e_{t+1}, e_ref⟩ < 0,
                               # e_ref the last such e (e₀ to start; see the per-step loop)
    err_early: jnp.ndarray     # float: max |e_t| for t ≤ T/2 (in-bound iterates)
    err_late: jnp.ndarray      # float: max |e_t| for t > T/2 (in-bound iterates)
    err_obs: jnp.ndarray       # float: |e_k| at the last step k whose predecessor was above
                               # the floor
    k_obs: jnp.ndarray         # int32: that k (0 if no step was resolvable)
    rec_dev: jnp.ndarray       # float: max_t ||e_{t+1}| − |r||e_t|| / scale_t; 0 without r
                               # (see _run)
    mode_flips: Any = None     # int32 (d,): the same per eigen-direction, each against its
                               # own reference and mode_floor, if the problem has modes


def noise_floor(dtype: DTypeLike, w_star_abs: Any, size: int = 1) -> Any:
    """The base noise floor: 64 ulps of |w*|, plus the error below which squares and products of
    its entries lose it — √(smallest normal) for a scalar; for d = ``size`` entries √(d·tiny/eps),
    since each square or product under the smallest normal is flushed to zero (as XLA does on a
    CPU) and d of them may then drop eps of ‖e‖² (a norm) or of an inner product. No error at or
    below it is told from w* by the simulation. A step's own magnitudes add to it
    (:func:`flip_floor`, :func:`mode_floor`)."""
    fi = np.finfo(dtype)
    under = np.sqrt(fi.tiny) if size <= 1 else np.sqrt(size * fi.tiny / fi.eps).astype(fi.dtype)
    return _FLOOR_ULPS * fi.eps * w_star_abs + under


def flip_floor(floor: Any, eps: Any, err: Any) -> Any:
    """The floor the error e_{t+1} must clear to be *resolvable* (to count a sign change, or to be
    one): ``floor`` + 64 ulps of ‖e_t‖.

    A step rounds numbers of size |w*| (the base floor) and of size ‖e_t‖ (its gradient and
    momentum terms, up to a few times ‖e_t‖), and then w_{t+1}, whose rounding relative to
    e_{t+1} itself (eps·‖e_{t+1}‖) cannot reverse it. So an error far below |w*| is resolvable
    where the simulation can represent it — every nonzero error of a problem with w* = 0, where
    rounding is relative — and a step that cancels its error to within 64 ulps of the previous
    one (a sign rounding could make) is not.
    """
    return floor + _FLOOR_ULPS * eps * err


def mode_floor(floor: Any, eps: Any, err: Any, err_new: Any) -> Any:
    """The floor of one eigen-component at step t → t + 1: ``floor`` + 64 ulps of
    max(‖e_t‖, ‖e_{t+1}‖).

    Unlike the whole error's (:func:`flip_floor`), a component's own size can be far below ‖e‖:
    the rounding of w_{t+1} and of the gradient lands in every direction, so a component that has
    decayed is swamped by noise of order eps·‖e‖ leaking from the largest one (a diverging run's
    exploding mode, hence ‖e_{t+1}‖ too). That noise is carried along the component, and where
    the component contracts faster than ‖e‖ grows it adds up to a bounded multiple of one step's.
    Measured on the 10-D least squares of ``configs/linreg_alpha_sweep.toml`` (41 α in [1.5, 2.5],
    400 steps, every iterate recorded): the simulated components of the decaying directions stay
    within 0.11 of this floor of the exact map's in float32, 0.35 in float64.
    """
    return floor + _FLOOR_ULPS * eps * jnp.maximum(err, err_new)


def inner_sign(a: jax.Array, b: jax.Array) -> jax.Array:
    """sign⟨a, b⟩ for one run's errors: sign(a)·sign(b) for scalars, exactly (the product of two
    small errors can underflow to 0 where their signs cannot), else the sign of the dot product."""
    if a.ndim == 0:
        return jnp.sign(a) * jnp.sign(b)
    return jnp.sign(jnp.sum(a * b))


def divergence_bound(dtype: DTypeLike) -> float:
    """|e| beyond which a run is frozen: √(largest finite), so squares and products stay finite."""
    return float(np.sqrt(np.finfo(dtype).max))


def norm(e: jax.Array) -> jax.Array:
    """|e| for a scalar, the Euclidean norm for a vector (one run)."""
    return jnp.abs(e) if e.ndim == 0 else jnp.sqrt(jnp.sum(e * e))


class Chunk(NamedTuple):
    """The arguments of a chunk program: a batch of N runs."""

    problem: Any   # problem pytree; the fields the spec marks 0 carry a leading run axis N
    hparams: dict  # hyperparameter name → array; likewise
    w0: Any        # (N,) + param_shape, the simulation dtype
    r: Any         # (N,) linear contraction factors, or None (no recurrence deviation)
    tol: Any       # shape (), the simulation dtype


class ChunkSpec(NamedTuple):
    """All a chunk program depends on besides its arguments' shapes and dtypes: with those, the key
    of the engine's program cache."""

    make_optimizer: Callable   # hyperparameters → optax GradientTransformation
    steps: int                 # T
    unroll: int                # the per-step loop's scan unroll
    record_every: int | None   # snapshot stride, or None
    block: int | None          # runs per cache-resident block; None: the chunk is one vmap
    p_axes: tuple              # per problem field: 0 (one value per run) or None (shared)
    h_axes: tuple              # sorted (hyperparameter, 0 or None) pairs
    devices: int               # the run axis is split over this many devices
    statistics: bool           # False: the update and the freeze alone (the benchmark's floor)
    backend: str               # jax.default_backend()
    x64: bool                  # jax_enable_x64
    mode: str                  # the engine's FAST_PATH setting

    def problem_axes(self, problem: Any) -> Any:
        """``p_axes`` in the structure of ``problem`` (for ``in_axes``)."""
        return jax.tree.unflatten(jax.tree.structure(problem), self.p_axes)

    def hparam_axes(self) -> dict:
        """``h_axes`` as a dict (for ``in_axes``)."""
        return dict(self.h_axes)


class FastPath(abc.ABC):
    """A program that replaces the per-step loop for the chunks within its scope, with its results.

    The engine offers a mode's fast paths in order (``gdlab.engine.FAST_PATHS``) and builds the
    first one that is ``eligible``; none: the per-step loop.
    """

    name: str                  # recorded as the program that ran (``Simulation.path``)
    fallible: bool = False     # a failed compile falls back to the per-step loop, with a warning

    @abc.abstractmethod
    def native(self, backend: str) -> bool:
        """Whether the "auto" mode offers this path on ``backend``."""

    @abc.abstractmethod
    def eligible(self, chunk: Chunk, spec: ChunkSpec) -> bool:
        """Whether this path gives the per-step loop's results for these runs."""

    @abc.abstractmethod
    def program(self, chunk: Chunk, spec: ChunkSpec) -> tuple[Callable, Callable | None]:
        """``(run, finish)``: ``run(problem, hparams, w0, r, tol)`` takes a batch (a block of the
        chunk) and ``finish(out, tol)``, if not None, turns the concatenated outputs into
        (final w, RunStats, snapshots), as ``jax.vmap`` of the per-step loop returns them."""

    def compiler_options(self, backend: str) -> dict | None:
        """XLA options for every program compiled under a mode that offers this path."""
        return None


def step_sizes(problem, hparams: dict) -> dict:
    """A layered problem's per-layer step sizes folded into one per-entry ``alpha`` vector."""
    if not isinstance(problem, Layered):
        return hparams
    rates = {k: hparams[k] for k in problem.rate_names if k in hparams}
    rest = {k: v for k, v in hparams.items() if k not in rates}
    return {**rest, "alpha": problem.step_sizes(hparams["alpha"], rates)}
