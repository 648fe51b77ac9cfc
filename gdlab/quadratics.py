r"""n-D quadratic problems: a quadratic with a chosen spectrum, and least-squares linear regression.

Both have a constant Hessian H = Q diag(λ) Qᵀ, so gradient descent decouples along its
eigen-directions: the error component m_i = q_iᵀ(w − w*) obeys m_{i,t+1} = (1 − αλ_i) m_{i,t}. Hence
GD converges iff 0 < αλ_max < 2, oscillates along every direction with αλ_i > 1, contracts at the
rate max_i |1 − αλ_i|, which is smallest at α = 2/(λ_min + λ_max).

Matrix products use ``precision="highest"``: on GPUs the float32 default is a reduced-precision
multiply (relative error ~3e-4), which would move the stability edge.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from gdlab import grids, resources
from gdlab.errors import ArgumentError

__all__ = ["Quadratic", "LinearRegression", "quadratic", "linear_regression", "optimal_alpha",
           "linear_regression_bytes", "quadratic_bytes"]

_HI = "highest"


def _mv(a, v):
    return jnp.matmul(a, v, precision=_HI)


class Quadratic(NamedTuple):
    r"""L(w) = ½(w − w*)ᵀ H (w − w*), H = Q diag(λ) Qᵀ, λ_i = λ_max · κ^(−p_i).

    ∇L(w) = H(w − w*) = Q(λ ⊙ Qᵀ(w − w*)); curvature λ_max; condition number κ = λ_max/λ_min when
    the profile p spans [0, 1]. ``lam_max`` and ``kappa`` are scalars, so either can be swept.
    """

    lam_max: jnp.ndarray   # shape=()
    kappa: jnp.ndarray     # shape=()
    profile: jnp.ndarray   # shape=(d,), exponents in [0, 1]
    Q: jnp.ndarray         # shape=(d, d), orthonormal eigenvectors (columns)
    w_star: jnp.ndarray    # shape=(d,)

    @property
    def param_shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.w_star)[-1:])

    def eigenvalues(self) -> jnp.ndarray:
        lam_max, kappa = self.lam_max, self.kappa
        if np.ndim(lam_max) or np.ndim(kappa):  # swept (host side): one spectrum per run
            lam_max, kappa = np.asarray(lam_max)[..., None], np.asarray(kappa)[..., None]
        return lam_max * kappa ** (-self.profile)

    def modes(self, e: jnp.ndarray) -> jnp.ndarray:
        return _mv(self.Q.T, e)

    def grad(self, w: jnp.ndarray) -> jnp.ndarray:
        return _mv(self.Q, self.eigenvalues() * self.modes(w - self.w_star))

    def loss(self, w: jnp.ndarray) -> jnp.ndarray:
        m = self.modes(w - self.w_star)
        return 0.5 * jnp.sum(self.eigenvalues() * m * m)

    def optimum(self) -> jnp.ndarray:
        return self.w_star

    def curvature(self) -> jnp.ndarray:
        return self.lam_max


class LinearRegression(NamedTuple):
    r"""L(w) = (1/2m)‖Xw − y‖², ∇L(w) = (1/m)Xᵀ(Xw − y), H = XᵀX/m = Q diag(λ) Qᵀ.

    w* (least squares) and the eigen-decomposition are computed once, in float64, when the problem
    is built.
    """

    X: jnp.ndarray        # shape=(m, d)
    y: jnp.ndarray        # shape=(m,)
    lam: jnp.ndarray      # shape=(d,), eigenvalues of XᵀX/m, ascending
    Q: jnp.ndarray        # shape=(d, d)
    w_star: jnp.ndarray   # shape=(d,)

    @property
    def param_shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.w_star)[-1:])

    def eigenvalues(self) -> jnp.ndarray:
        return self.lam

    def modes(self, e: jnp.ndarray) -> jnp.ndarray:
        return _mv(self.Q.T, e)

    def grad(self, w: jnp.ndarray) -> jnp.ndarray:
        m = self.X.shape[-2]
        return _mv(self.X.T, _mv(self.X, w) - self.y) / m

    def loss(self, w: jnp.ndarray) -> jnp.ndarray:
        r = _mv(self.X, w) - self.y
        return 0.5 * jnp.sum(r * r) / self.X.shape[-2]

    def optimum(self) -> jnp.ndarray:
        return self.w_star

    def curvature(self) -> jnp.ndarray:
        return np.max(self.lam) if isinstance(self.lam, np.ndarray) else jnp.max(self.lam)


def optimal_alpha(eigenvalues: ArrayLike) -> float:
    """The α minimising max_i |1 − αλ_i|: 2/(λ_min + λ_max), with rate (κ − 1)/(κ + 1)."""
    lam = np.asarray(eigenvalues, np.float64)
    return 2.0 / (lam.min() + lam.max())


def _rotation(d: int, seed: int) -> np.ndarray:
    """A random orthonormal d×d matrix (QR of a Gaussian, signs fixed so it is Haar-distributed)."""
    g = np.random.default_rng(seed).standard_normal((d, d))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))


def quadratic_bytes(dim: int) -> int:
    """Memory that building a ``dim``-dimensional quadratic needs: the Gaussian, its QR factors and
    the eigenvectors, a few d × d float64 matrices (a Hessian of dim = 10⁶ would be 8 TB)."""
    return 4 * 8 * dim ** 2


def linear_regression_bytes(m: int, d: int) -> int:
    """Memory that generating (or holding) m × d least-squares data needs: X, the QR factor that
    generates it, their product and XᵀX's eigenvectors, a few float64 matrices."""
    return 4 * 8 * (m * d + d * d)


def _check_fits(dim: int, argument: str) -> None:
    """TooLargeError naming ``argument`` unless a ``dim``-dimensional quadratic fits in memory
    (:func:`gdlab.resources.check_fits`, the limit every request is held to)."""
    resources.check_fits(resources.BASE_BYTES + quadratic_bytes(dim), argument=argument,
                         what=f"a quadratic of dimension {dim}", fix=f"choose a smaller {argument}")


def quadratic(dim: int = 10, lam_max: float = 1.0, kappa: float = 10.0,
              spectrum: ArrayLike | None = None, seed: int = 0,
              w_star: ArrayLike = 1.0) -> Quadratic:
    """A d-dimensional quadratic with eigenvalues geometrically spaced from λ_max to λ_max/κ.

    ``spectrum`` (positive numbers) replaces the geometric spacing; ``seed`` picks the eigenvectors
    (seed < 0: the identity, i.e. axis-aligned); ``w_star`` is a scalar (all coordinates) or a
    vector. A dimension whose d × d matrices would not fit in memory is refused before any is
    allocated.
    """
    if spectrum is not None:
        lam = grids.as_numbers(spectrum, "spectrum")       # finite real numbers, no booleans
        if lam.ndim != 1 or lam.size == 0 or not np.all(lam > 0):
            raise ArgumentError("spectrum",
                                f"{spectrum!r} must be a non-empty list of finite numbers > 0")
        _check_fits(lam.size, "spectrum")
        dim, lam_max = lam.size, float(lam.max())
        kappa = float(lam.max() / lam.min())
        profile = np.log(lam_max / lam) / np.log(kappa) if kappa > 1 else np.zeros(dim)
    else:
        if dim < 1:
            raise ArgumentError("dim", f"{dim!r} must be >= 1")
        if not lam_max > 0:
            raise ArgumentError("lam_max", f"{lam_max!r} must be > 0 (the largest eigenvalue)")
        if not kappa >= 1:
            raise ArgumentError("kappa", f"{kappa!r} must be >= 1 (the condition number "
                                         "λ_max/λ_min)")
        _check_fits(dim, "dim")
        profile = np.linspace(0.0, 1.0, dim) if dim > 1 else np.zeros(1)
    Q = np.eye(dim) if seed < 0 else _rotation(dim, seed)
    w_star = grids.as_numbers(w_star, "w_star")
    if w_star.ndim > 1 or w_star.size not in (1, dim):
        raise ArgumentError("w_star", f"shape {w_star.shape} does not fit dimension {dim}; give "
                                      f"one number or {dim}")
    w = np.broadcast_to(w_star, (dim,)).copy()
    return Quadratic(lam_max=float(lam_max), kappa=float(kappa), profile=profile, Q=Q, w_star=w)


def linear_regression(X: ArrayLike | None = None, y: ArrayLike | None = None, *, m: int = 50,
                      d: int = 10, kappa: float = 100.0, noise: float = 0.1,
                      seed: int = 0) -> LinearRegression:
    """Least squares on given data (X, y), or on data generated with condition number κ of XᵀX.

    Generated: X = √m · U diag(s) Vᵀ with s_i² from 1 down to 1/κ (so XᵀX/m has eigenvalues in
    [1/κ, 1]), w_true ~ N(0, I), y = X w_true + noise · N(0, I).
    """
    if (X is None) != (y is None):
        raise ArgumentError("X, y", "give both (the data) or neither (generated data)")
    generated = X is None
    if generated:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ArgumentError("seed", f"{seed!r} must be an integer >= 0 (NumPy's generator)")
        if not kappa >= 1:
            raise ArgumentError("kappa", f"{kappa!r} must be >= 1 (the condition number of XᵀX)")
        if m < d:
            raise ArgumentError("m", f"{m!r} must be >= d = {d!r} for a unique least-squares "
                                     "optimum")
        resources.check_fits(resources.BASE_BYTES + linear_regression_bytes(m, d), argument="m",
                             what=f"least-squares data of {m} × {d}",
                             fix="choose a smaller m (rows) or d (columns)")
        rng = np.random.default_rng(seed)
        U = np.linalg.qr(rng.standard_normal((m, d)))[0]
        V = _rotation(d, seed + 1)
        s = np.sqrt(np.geomspace(1.0, 1.0 / kappa, d))
        X = np.sqrt(m) * (U * s) @ V.T
        y = X @ rng.standard_normal(d) + noise * rng.standard_normal(m)
    X, y = grids.as_numbers(X, "X"), grids.as_numbers(y, "y")   # finite, no booleans
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ArgumentError("X, y", f"shapes {X.shape} and {y.shape} do not fit; X is m×d and y "
                                    "has m entries")
    lam, Q = np.linalg.eigh(X.T @ X / X.shape[0])
    if lam[0] <= 1e-12 * lam[-1]:
        if generated:
            raise ArgumentError("kappa", f"{kappa!r} makes XᵀX singular in float64 (eigenvalues "
                                         f"{lam[0]:.3g} … {lam[-1]:.3g}); use kappa < 1e12")
        raise ArgumentError("X", f"XᵀX is singular (eigenvalues {lam[0]:.3g} … {lam[-1]:.3g}); the "
                         "optimum is not unique — use more rows or independent columns")
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    return LinearRegression(X=X, y=y, lam=lam, Q=Q, w_star=w_star)
