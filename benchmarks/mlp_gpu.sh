#!/usr/bin/env bash
# Sohl-Dickstein's trainability map of gdlab.problems.mlp() (tanh, width 16, float64) on one GPU,
# on a machine with JAX preinstalled and no network. Two parts, each fits one 10-minute command:
#
#   bash benchmarks/mlp_gpu.sh OUTDIR check        # ~3 min: gdlab bench --mlp, side by side
#   bash benchmarks/mlp_gpu.sh OUTDIR map [FIRST [LAST]]   # ≤ ~8 min: shards of the full map
#
# check: gdlab's documented call (gdlab.sweep(net, lr1, over={"alpha_2": lr2}, keep="compact"))
#   beside his notebook's code on the same 128² pairs, T = 100 (both cost the same per step at any
#   T; a 1000-step check would take ~10× longer), float64: runs/s, the ratio (target ≥ 2), the
#   agreement of the two maps and the fraction of the GPU's float64 matmul peak (4096² product),
#   written to OUTDIR/bench_mlp_gpu.json. Expected: agreement on all pairs but a few at the
#   boundary (see gdlab._references.compare_map).
# map: the full-size map, 4096 × 4096 pairs × 1000 steps, in 1024 resumable row shards of 16 384
#   pairs (benchmarks/mlp_map.py), written to OUTDIR/map/shard_*.npz. 5.0·10¹⁸ flops in all: about
#   21 h at the H200's whole float64 peak, so one command computes a few shards and prints the
#   time the rest need at the measured rate; rerun (with the same OUTDIR) to continue.
set -uo pipefail
out=${1:?usage: bash benchmarks/mlp_gpu.sh OUTDIR check|map [FIRST [LAST]]}
part=${2:-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
nvidia-smi -L || true
case "$part" in
  check)
    timeout 420 python3 -m gdlab bench --mlp --grid 128 --steps 100 --repeats 2 \
      --peak-size 4096 --json "$out/bench_mlp_gpu.json" ;;
  map)
    timeout 560 python3 benchmarks/mlp_map.py "$out/map" --grid 4096 --steps 1000 \
      --shards 1024 --first "${3:-0}" ${4:+--last "$4"} --budget-s 300 ;;
  *) echo "unknown part '$part': give check or map" >&2; exit 2 ;;
esac
