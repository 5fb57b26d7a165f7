#!/usr/bin/env bash
# GPU check: on a machine with one NVIDIA GPU and torch, jax, optax, pandas, matplotlib and threadpoolctl
# already installed, and no network. Installs sigbench without downloading anything, then runs, in this
# order: the per-call overhead experiment (scripts/jax_gpu_overhead.py), the training step (every variant,
# PyTorch's `compiled` and `graphed` included, with the GEMM rate and each step's arithmetic floor),
# `sigbench check` on the GPU in float32 and float64, and the sigmoid sweep up to 2^26 elements. Writes
# everything under OUTDIR/gpu-<card>/, and after each stage a tarball of it to $SNAPSHOT when that is set
# (a run cut short keeps the stages it finished). Takes about 5 minutes (torch.compile compiles once per
# shape and process).
#
# STAGES (e.g. "train check") runs only the stages named (overhead, train, check, sigmoid).
#
#   usage: [SNAPSHOT=file.tgz] [STAGES="..."] scripts/gpu_check.sh OUTDIR
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
want() { [ -z "${STAGES:-}" ] || [[ " $STAGES " == *" $1 "* ]]; }
stage_done() {
    echo "stage done: $1 ($SECONDS s)"
    if [ -n "${SNAPSHOT:-}" ]; then tar czf "$SNAPSHOT" -C "$dir" . || true; fi
}

card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//' | tr 'A-Z' 'a-z')
dir="$out/gpu-${card:-unknown}"
mkdir -p "$dir"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv
    sb info
} | tee "$dir/info.txt"

stage_done info

# where JAX's per-call time goes at small n, against torch and plain loops outside sigbench
if want overhead; then
    python3 scripts/jax_gpu_overhead.py --device cuda --out "$dir/overhead" > "$dir/overhead.log" 2>&1 \
        || echo "overhead exit $?" | tee -a "$dir/overhead.log"
    stage_done overhead
fi
# the training step on the GPU, tutorial size and larger: every variant (torch compiled = one torch.compile'd
# step, graphed = one CUDA graph replay), the GEMM rate measured first, floor_s / floor_fraction per row
if want train; then
    sb run --device cuda -b torch -b jax -w train --batch 32 --batch 1024 --hidden 128 \
        -o "$dir/train" --quiet > "$dir/train.log" 2>&1 || echo "train run exit $?" | tee -a "$dir/train.log"
    stage_done train
fi
# step-by-step numerics on the GPU (TF32 off in PyTorch, JAX matmul precision "highest"), every variant
if want check; then
    for dtype in float32 float64; do
        sb check --device cuda --steps 10 --dtype "$dtype" > "$dir/check-$dtype.txt" 2>&1 \
            || echo "check $dtype exit $?" | tee -a "$dir/check-$dtype.txt"
    done
    stage_done check
fi
# sigmoid: per-call overhead at small n, bandwidth at large n; the device copy bandwidth is measured first
if want sigmoid; then
    sb run --device cuda -b torch -b jax -w sigmoid --size 2^16 --size 2^20 --size 2^24 --size 2^26 \
        -o "$dir/sigmoid" --quiet > "$dir/sigmoid.log" 2>&1 || echo "sigmoid run exit $?" | tee -a "$dir/sigmoid.log"
    stage_done sigmoid
fi
grep -h "PASS\|FAIL\|skipped\|exit" "$dir"/check-*.txt 2>/dev/null || true
grep -h "GEMM rate" "$dir/train/results.md" 2>/dev/null || true
sed -n '/## Summary/,/## Plots/p' "$dir/sigmoid/results.md" "$dir/train/results.md" 2>/dev/null || true
echo "gpu check written to $dir"
