"""What ``gdlab bench`` measures gdlab against, and how it times them side by side.

The references are written from the maths in plain NumPy (:func:`numpy_sweep`), or in plain JAX the
way the notebooks do it (:func:`notebook_mlp_map`: Sohl-Dickstein's trainability map), never from
gdlab's engine. :func:`time_round_robin` times variants in turns, so that a noisy machine slows them
alike; :func:`mlp_run` times gdlab's documented map call beside the notebook's code and compares
the two maps pair by pair (:func:`compare_map`).
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import gdlab
from gdlab import engine, resources
from gdlab.regimes import Regime

__all__ = ["numpy_sweep", "Variant", "time_round_robin", "notebook_mlp_map", "NotebookMap",
           "mlp_step_flops", "compare_map", "matmul_peak", "notebook_bytes", "check_map_fits",
           "mlp_axes", "mlp_run", "MLP_WINDOW"]


class Variant(NamedTuple):
    n: int                      # runs per call
    steps: int                  # steps per run
    once: Callable[[], float]   # one call; returns the seconds it measured


def time_round_robin(variants: dict[str, Variant], repeats: int) -> dict[str, list[float]]:
    """One untimed call of each variant (compiles), then ``repeats`` rounds of one call each."""
    for variant in variants.values():
        variant.once()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, variant in variants.items():
            times[name].append(variant.once())
    return times


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
    floor = engine.noise_floor(dtype, abs(w_star))
    t_freeze = np.full(alpha.shape, -1, np.int32)
    steps_to_tol = np.where(err0 < tol, 0, -1).astype(np.int32)
    flips = np.zeros(alpha.shape, np.int32)
    sign_ref = np.sign(w - w_star)   # of the last resolvable observation (e₀ to start with)
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
            # A sign change between resolvable observations, even across steps below the floor.
            # Resolvable: above the floor plus 64 ulps of the previous error.
            # The step that freezes the run is seen too (its error is computed, only not kept).
            resolvable_new = active & (err_new > floor + 64 * eps * err)
            # Against sign(e_ref) (exact; e_new·e_ref can underflow): a flip reverses it.
            sign = e_new * sign_ref
            flip = resolvable_new & (sign < 0)
            flips += flip
            sign_ref = np.where(flip, -sign_ref, sign_ref)
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


# --- Sohl-Dickstein's (2024) trainability map, as his notebook computes it -----------------------

_NOTEBOOK_PHI = {"tanh": lambda z: jnp.tanh(z * jnp.sqrt(2.0)),
                 "relu": lambda z: jax.nn.relu(z) * jnp.sqrt(2.0),
                 "identity": lambda z: z}
_MAX_VAL = 1e6  # the notebook's clip of the loss ratios
# log10 bounds of lr1 (layer 1) and lr2 (layer 2) spanning the trainability boundary of mlp()
# (tanh, width 16, mean field): runs converge below lr2 ≈ 10² and below lr1 ≈ 10⁵ (the first
# layer's gradient is ~1/width of the second's), with the fractal part where the two edges meet.
MLP_WINDOW = ((3.0, 6.0), (1.0, 3.0))


def mlp_axes(grid: int) -> tuple[np.ndarray, np.ndarray]:
    """lr1 and lr2, ``grid`` log-spaced values each over :data:`MLP_WINDOW`."""
    (a, b), (c, d) = MLP_WINDOW
    return np.logspace(a, b, grid), np.logspace(c, d, grid)


class NotebookMap(NamedTuple):
    """The notebook's map over the pairs (lr1[i], lr2[j]), shape (len(lr1), len(lr2))."""

    score: np.ndarray       # float64: −Σρ_t (converged) or Σ1/ρ_t (not)
    converged: np.ndarray   # bool: score < 0, i.e. mean of the last 20 ratios < 1
    blew_up: np.ndarray     # bool: some ratio ρ_t exceeded 10⁶ (not the notebook's; for comparing)


def _notebook_net(theta, X, nonlinearity: str, mean_field: bool):
    phi = _NOTEBOOK_PHI[nonlinearity]
    for W in theta:
        Z = jnp.dot(X, W) / jnp.sqrt(W.shape[0])
        X = phi(Z)
    # the notebook's mean-field output: once more 1/√fan_in (1/fan_in in all); standard: once
    return Z / jnp.sqrt(W.shape[0]) if mean_field else Z


def _notebook_step(theta, lrs, X, Y, nonlinearity, mean_field):
    def loss(theta):
        return jnp.mean((_notebook_net(theta, X, nonlinearity, mean_field) - Y) ** 2)
    value, g = jax.value_and_grad(loss)(theta)
    return jax.tree.map(lambda t, g, lr: t - lr * g, theta, g, list(lrs)), value


def _convergence_measure(losses):
    """The notebook's score of one run from its losses L_0 … L_{T−1}; also whether a ratio went
    past the clip (the comparison reports those apart)."""
    v = jnp.where(jnp.isfinite(losses), losses, _MAX_VAL)
    v = v / v[0]
    blew_up = jnp.any(v > _MAX_VAL)
    v = jnp.where(v > _MAX_VAL, _MAX_VAL, v)
    converged = jnp.mean(v[-20:]) < 1
    return jnp.where(converged, -jnp.sum(v), jnp.sum(1 / v)), blew_up


_convergence_measure_vmap = jax.jit(jax.vmap(_convergence_measure))


def _notebook_train(step, theta, hparams, X, Y, steps: int, chunk: int):
    """The notebook's ``train``: above ``chunk`` configurations, the two halves one after the
    other; else θ tiled over the batch and a Python loop of jitted, vmapped steps."""
    bs = hparams.shape[0]
    if bs > chunk:
        half = bs // 2
        parts = [_notebook_train(step, theta, hparams[:half], X, Y, steps, chunk),
                 _notebook_train(step, theta, hparams[half:], X, Y, steps, chunk)]
        return tuple(jnp.concatenate(pair) for pair in zip(*parts))
    theta = [jnp.tile(t[None], (bs,) + (1,) * t.ndim) for t in theta]
    hparams = jnp.asarray(hparams)
    losses = []
    for _ in range(steps):
        theta, value = step(theta, hparams, X, Y)
        losses.append(value)
    return _convergence_measure_vmap(jnp.stack(losses, axis=-1))


def notebook_mlp_map(net, lr1: ArrayLike, lr2: ArrayLike, steps: int,
                     chunk: int = 50_000) -> NotebookMap:
    """Sohl-Dickstein's trainability map of a ``gdlab.problems.mlp`` network written the way his
    notebook computes it (float64): a jitted ``vmap`` of one training step over the
    configurations (lr1 for the first layer, lr2 for the second), a Python loop over the T
    steps, the T losses of each run kept and scored at the end (non-finite → 10⁶, ratios to L_0
    clipped at 10⁶, converged iff the mean of the last 20 is below 1; score −Σρ or Σ1/ρ). Same
    data, initial weights, nonlinearity and parameterization as ``net``; pairs in the order of
    ``gdlab.sweep(net, lr1, over={"alpha_2": lr2})``, whose other layers (depth > 1) take lr1."""
    lr1, lr2 = np.asarray(lr1, np.float64).ravel(), np.asarray(lr2, np.float64).ravel()
    with jax.enable_x64(True):
        X = jnp.asarray(net.X, jnp.float64)
        Y = jnp.asarray(net.y, jnp.float64)[:, None]
        theta = [jnp.asarray(W, jnp.float64) for W in net.weights(np.asarray(net.init()))]
        step = _notebook_step_vmap(net.nonlinearity, net.parameterization == "mean_field",
                                   len(theta))
        a, b = np.meshgrid(lr1, lr2, indexing="ij")
        hparams = np.stack([a.ravel(), b.ravel()], axis=-1)
        score, blew_up = _notebook_train(step, theta, hparams, X, Y, int(steps), int(chunk))
    shape = (len(lr1), len(lr2))
    score = np.asarray(score, np.float64).reshape(shape)
    return NotebookMap(score, score < 0, np.asarray(blew_up).reshape(shape))


@functools.lru_cache(maxsize=None)
def _notebook_step_vmap(nonlinearity: str, mean_field: bool, n_layers: int):
    """The notebook's ``train_step_lrvmap`` (built once per network kind, so that it compiles once
    per shape, as in the notebook)."""
    def step(theta, lrs, X, Y):
        # layer 2 takes lr2, every other layer lr1 (gdlab's alpha_2; a rate not given is alpha);
        # for the notebook's one-hidden-layer network simply [lr1, lr2]
        rates = [lrs[0], lrs[1]] + [lrs[0]] * (n_layers - 2)
        return _notebook_step(theta, rates, X, Y, nonlinearity, mean_field)
    return jax.jit(jax.vmap(step, in_axes=(0, 0, None, None)), donate_argnums=(0,))


def mlp_step_flops(net) -> int:
    """Floating-point operations of one training step of one run (multiply-add = 2), counting
    the matrix products and the update, not the nonlinearity: per hidden layer of fan-in a and
    width b on P points, forward z = hW (2Pab) and backward ∇W = hᵀ∂z (2Pab), plus ∂h = ∂z Wᵀ
    (2Pab) for every layer but the first; the output layer of fan-in m: forward and ∇W, 2Pm each,
    and ∂h = ∂f Wᵀ, an outer product, Pm; the update w ← w − α∇L, 2 per weight. Width 16, depth 1,
    P = 272 points, 272 weights: 4·272·16² + 5·272·16 + 2·272 = 300 832."""
    points = net.X.shape[0]
    hidden = net.shapes[:-1]
    flops = sum(4 * points * a * b for a, b in hidden)
    flops += sum(2 * points * a * b for a, b in hidden[1:])
    flops += 5 * points * net.shapes[-1][0]
    return int(flops + 2 * math.prod(net.param_shape))


def compare_map(regime: np.ndarray, score: np.ndarray, ref: NotebookMap) -> dict:
    """gdlab's map against the notebook's on the same pairs: converged (``Regime.CONVERGED`` ↔
    score < 0) on how many pairs. ``differ_blowup``: of the differing pairs, those whose notebook
    run passed a ratio of 10⁶ and came back (gdlab follows such a run on, as the notebook does:
    these differ only by rounding, like the rest); ``differ_other``: the rest — at the fractal
    boundary, where the last bits decide (the notebook's own map changes on as many pairs when the
    rates move by one rounding). Score
    differences, relative, over the pairs that agree, converged and not: ~10⁻¹⁵ at small rates;
    near the boundary the dynamics amplify rounding (the notebook's own scores move by up to
    ~10⁻² at T = 100 when the rates move by one ulp)."""
    mine = np.asarray(regime) == Regime.CONVERGED
    differ = mine != ref.converged
    blowup = differ & ref.converged & ref.blew_up
    rel = np.abs(np.asarray(score) - ref.score) / np.abs(ref.score)
    worst = lambda where: float(rel[where].max()) if where.any() else 0.0
    return {"pairs": int(mine.size), "converged": int(ref.converged.sum()),
            "agree": int(mine.size - differ.sum()),
            "differ_blowup": int(blowup.sum()), "differ_other": int((differ & ~blowup).sum()),
            "score_rel_diff_converged": worst(~differ & mine),
            "score_rel_diff_not_converged": worst(~differ & ~mine)}


def matmul_peak(size: int = 2048, repeats: int = 3) -> float:
    """The machine's float64 matrix-multiply rate, GFLOP/s: the best of ``repeats`` products of
    two size × size matrices (2·size³ flops each) on the default device, after one to compile."""
    with jax.enable_x64(True):
        a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float64)
        b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float64)
        dot = jax.jit(jnp.dot)
        dot(a, b).block_until_ready()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            dot(a, b).block_until_ready()
            best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def notebook_bytes(net, pairs: int, chunk: int, steps: int) -> int:
    """Memory of :func:`notebook_mlp_map`: its batch of runs (each its weights, the activations and
    their gradients, twice: the step's input and output) with the batch's T losses, and a score
    per pair."""
    batch = min(pairs, chunk)
    return batch * (2 * net.run_bytes(8) + 8 * steps) + 16 * pairs


def check_map_fits(grid: int, ref_grid: int, ref_chunk: int, steps: int) -> None:
    """TooLargeError (a ValueError) naming ``--grid`` or ``--ref-chunk`` unless both maps of
    :func:`mlp_run` fit in memory: gdlab's compact sweep, and the notebook's batches of runs."""
    net = gdlab.problems.mlp()
    pairs, ref_pairs = grid ** 2, ref_grid ** 2
    resources.check_fits(resources.sweep_bytes(pairs, keep="compact", param_size=net.param_shape[0],
                                               itemsize=8),
                         argument="--grid", what=f"a map of {pairs} pairs",
                         fix="give a smaller --grid")
    resources.check_fits(notebook_bytes(net, ref_pairs, ref_chunk, steps), argument="--ref-chunk",
                         what=f"the notebook's map of {ref_pairs} pairs",
                         fix="give a smaller --ref-chunk or --ref-grid")


def mlp_run(grid: int, steps: int, repeats: int, *, ref_grid: int | None = None,
            ref_chunk: int = 50_000, devices: int = 1, peak_size: int = 2048) -> list[dict]:
    """gdlab's documented trainability-map call (``gdlab.sweep(net, lr1, over={"alpha_2": lr2},
    keep="compact")``: float64, every other argument at its default — every core — and again on
    ``devices`` devices if that is another count) and
    the notebook's code (:func:`notebook_mlp_map`, ``ref_grid``² pairs) on ``mlp()``, timed
    round-robin after one untimed call each (compile excluded: gdlab's as it measures it, the
    notebook's compiled ahead of time by :func:`notebook_compile_s`), and the maps compared on
    the notebook's grid. One row per variant, the notebook's last."""
    net = gdlab.problems.mlp()
    ref_grid = ref_grid or grid
    kept: dict[str, object] = {}
    compile_s: dict[str, float] = {}

    def documented(label: str, n_dev: int | None) -> Variant:
        chosen = {} if n_dev is None else {"devices": n_dev}
        def once():
            t0 = time.perf_counter()
            res = gdlab.sweep(net, mlp_axes(grid)[0], over={"alpha_2": mlp_axes(grid)[1]},
                              steps=steps, keep="compact", **chosen)
            compile_s.setdefault(label, res.compile_s)
            kept[label] = res
            return time.perf_counter() - t0 - res.compile_s
        return Variant(grid * grid, steps, once)

    def notebook():
        t0 = time.perf_counter()
        kept["notebook"] = notebook_mlp_map(net, *mlp_axes(ref_grid), steps, chunk=ref_chunk)
        return time.perf_counter() - t0

    variants = {"gdlab": documented("gdlab", None)}
    if devices != len(jax.devices()):
        variants[f"gdlab ×{devices}"] = documented(f"gdlab ×{devices}", devices)
    variants["notebook"] = Variant(ref_grid * ref_grid, steps, notebook)
    compile_s["notebook"] = notebook_compile_s(net, ref_grid * ref_grid, ref_chunk, steps)
    peak = matmul_peak(peak_size)
    times = time_round_robin(variants, repeats)
    peak = max(peak, matmul_peak(peak_size))   # the better of before and after: a busy machine
    res = kept["gdlab"]
    if ref_grid != grid:   # gdlab's map on the notebook's grid, untimed
        res = gdlab.sweep(net, mlp_axes(ref_grid)[0], over={"alpha_2": mlp_axes(ref_grid)[1]},
                          steps=steps, keep="compact", progress=False)
    shared = dict(compare_map(res.regime, res.score, kept["notebook"]), T=steps, dtype="float64",
                  device=f"{jax.default_backend()}:{jax.devices()[0].device_kind}",
                  flops_per_run_step=mlp_step_flops(net), peak_gflops=peak)
    rows = [_map_row(name, v.n, times[name], compile_s[name], shared) for name, v in
            variants.items()]
    for row in rows:
        row["devices"] = (int(row["variant"].split("×")[1]) if "×" in row["variant"] else
                          1 if row["variant"] == "notebook" else len(jax.devices()))
        row["ratio_to_notebook"] = row["runs_per_s"] / rows[-1]["runs_per_s"]
    return rows


def notebook_compile_s(net, pairs: int, chunk: int, steps: int) -> float:
    """Seconds to compile the notebook's programs for its first batch (the jitted, vmapped step and
    the score) ahead of time: called before the notebook's first run, which then finds them
    compiled."""
    batch = pairs
    while batch > chunk:
        batch //= 2
    with jax.enable_x64(True):
        step = _notebook_step_vmap(net.nonlinearity, net.parameterization == "mean_field",
                                   len(net.shapes))
        f64 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float64)
        theta = [f64(batch, *shape) for shape in net.shapes]
        t0 = time.perf_counter()
        step.lower(theta, f64(batch, 2), f64(*net.X.shape), f64(len(net.y), 1)).compile()
        _convergence_measure_vmap.lower(f64(batch, steps)).compile()
        return time.perf_counter() - t0


def _map_row(variant: str, pairs: int, times: list[float], compile_s: float,
             shared: dict) -> dict:
    med = statistics.median(times)
    gflops = pairs * shared["T"] * shared["flops_per_run_step"] / med / 1e9
    return {"variant": variant, "N": pairs, **shared, "compile_s": compile_s,
            "median_run_s": med, "run_s": times, "runs_per_s": pairs / med,
            "updates_per_s": pairs * shared["T"] / med, "gflops": gflops,
            "peak_fraction": gflops / shared["peak_gflops"]}
