#!/usr/bin/env bash
# The GPU figures of the README, in one short run on a machine with JAX preinstalled and no network:
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. the GPU kernel (gdlab.fused) over its tuning knobs, beside XLA's per-step loop, with agreement;
# 2. the default benchmark (N = 10⁷, T = 1000, float32; the kernel, NumPy side by side) with the
#    fastest knobs of 1 (the defaults of gdlab.fused are set from this), timed;
# 3. the same benchmark on XLA's per-step loop (--fast-path never) for comparison;
# 4. the main job and the momentum map on the GPU, whose summaries must show agreement 1.0;
# 5. end to end at N = 10⁸, T = 1000, float32 (issue 14's target: ≥ 10¹² updates/s): the README's
#    call with keep="compact" (regimes classified on the device, 5 bytes a run copied back), in a
#    fresh process, total and sweep-stage figures.
set -uo pipefail
out=${1:-runs/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
python3 -c "import jax, optax; print('jax', jax.__version__, 'optax', optax.__version__, jax.devices())"
nvidia-smi -L || true
timeout 330 python3 benchmarks/fused_tuning.py --json "$out/fused_tuning.json" \
  --bench-json "$out/bench_default.json"
timeout 90 python3 -m gdlab bench --fast-path never --numpy-n 100000 --numpy-steps 20 --repeats 2 \
  --json "$out/bench_xla.json" | sed -n 3,6p
timeout 60 python3 -m gdlab run configs/q4_alpha_sweep.toml --out "$out/q4" --overwrite --no-progress | tail -4
timeout 60 python3 -m gdlab run configs/momentum_alpha_beta.toml --out "$out/momentum" --overwrite --no-progress | tail -4
cp "$out/q4/summary.json" "$out/q4_summary.json"
cp "$out/momentum/summary.json" "$out/momentum_summary.json"
timeout 120 python3 -m gdlab bench --one 100000000 --steps 1000 | tee "$out/compact_1e8.json"
