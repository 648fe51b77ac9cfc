#!/usr/bin/env bash
# The GPU figures of the README, in one short run on a machine with JAX preinstalled and no network:
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. the default benchmark (N = 10⁷, T = 1000, float32, unroll 16, NumPy side by side);
# 2. the engine at unroll 1, 8 and 32 for the unroll curve, and the tiled engine on the GPU;
# 3. the main job and the momentum map on the GPU, whose summaries must show agreement 1.0.
set -uo pipefail
out=${1:-runs/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -c "import jax, optax; print('jax', jax.__version__, 'optax', optax.__version__, jax.devices())"
nvidia-smi -L || true
python3 -m gdlab bench --json "$out/bench_default.json"
for u in 1 8 32; do
  python3 -m gdlab bench --unroll "$u" --numpy-n 100000 --numpy-steps 20 --repeats 2 \
    --json "$out/bench_unroll$u.json" | sed -n 3,4p
done
python3 -m gdlab bench --fast-path always --numpy-n 100000 --numpy-steps 20 --repeats 2 \
  --json "$out/bench_tiled.json" | sed -n 3,4p
python3 -m gdlab run configs/q4_alpha_sweep.toml --out "$out/q4" --overwrite --no-progress | tail -4
python3 -m gdlab run configs/momentum_alpha_beta.toml --out "$out/momentum" --overwrite --no-progress | tail -4
cp "$out/q4/summary.json" "$out/q4_summary.json"
cp "$out/momentum/summary.json" "$out/momentum_summary.json"
