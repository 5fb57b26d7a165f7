#!/usr/bin/env bash
# GPU check: on a machine with one NVIDIA GPU and torch, jax, optax, pandas, matplotlib and threadpoolctl
# already installed, and no network. Installs sigbench without downloading anything, then runs the
# sigmoid sweep up to 2^28 elements, the training step (every variant, PyTorch's `compiled` and `graphed`
# included, with the GEMM rate and each step's arithmetic floor), and `sigbench check` on the GPU, and writes
# everything under OUTDIR/gpu-<card>/. Takes about 4-6 minutes (torch.compile compiles once per shape).
#
#   usage: scripts/gpu_check.sh OUTDIR
set -euo pipefail
out=${1:?usage: scripts/gpu_check.sh OUTDIR}
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
# `run` gives each backend its own worker processes (JAX's already allocates as it goes); `check` runs
# every backend in one process, where JAX must not take 75% of the GPU up front
export XLA_PYTHON_CLIENT_PREALLOCATE=false

if ! python3 -m pip install --quiet --no-index --no-deps --no-build-isolation -e . 2>/dev/null; then
    export PYTHONPATH="$PWD:$PWD/backends${PYTHONPATH:+:$PYTHONPATH}"  # no pip or no setuptools: run in place
fi
sb() { python3 -m sigbench "$@"; }

card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//' | tr 'A-Z' 'a-z')
dir="$out/gpu-${card:-unknown}"
mkdir -p "$dir"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv
    sb info
} | tee "$dir/info.txt"

# sigmoid: per-call overhead at small n, bandwidth at large n; the device copy bandwidth is measured first
sb run --device cuda -b torch -b jax -w sigmoid --size 2^16 --size 2^20 --size 2^24 --size 2^26 --size 2^28 \
    --max-time 0.2 -o "$dir/sigmoid" --quiet > "$dir/sigmoid.log" 2>&1 || echo "sigmoid run exit $?" | tee -a "$dir/sigmoid.log"
# the training step on the GPU, tutorial size and larger: every variant (torch compiled = one torch.compile'd
# step, graphed = one CUDA graph replay), the GEMM rate measured first, floor_s / floor_fraction per row
sb run --device cuda -b torch -b jax -w train --batch 32 --batch 1024 --hidden 128 --hidden 1024 \
    --max-time 0.2 -o "$dir/train" --quiet > "$dir/train.log" 2>&1 || echo "train run exit $?" | tee -a "$dir/train.log"
# step-by-step numerics on the GPU (TF32 off in PyTorch, JAX matmul precision "highest"), every variant
for dtype in float32 float64; do
    sb check --device cuda --steps 10 --dtype "$dtype" > "$dir/check-$dtype.txt" 2>&1 \
        || echo "check $dtype exit $?" | tee -a "$dir/check-$dtype.txt"
done
grep -h "PASS\|FAIL\|skipped\|exit" "$dir"/check-*.txt || true
grep -h "GEMM rate" "$dir/train/results.md" || true
sed -n '/## Summary/,/## Plots/p' "$dir/sigmoid/results.md" "$dir/train/results.md" || true
echo "gpu check written to $dir"
