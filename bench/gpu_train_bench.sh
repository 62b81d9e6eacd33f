#!/usr/bin/env bash
# gpu_train_bench.sh — the GPU training benchmark, run on the GPU machine: sw (CUDA backend,
# bench/gpu_train_bench.c) and PyTorch (bench/torch_train_bench.py) on the same Qwen2.5-0.5B-shaped
# model and batch (8 × 1024 tokens), one after the other, each printing one table row per
# configuration (PyTorch: a JSON line and a readable one); results go to OUTDIR. Build first
# (here): make CUDA=1 B=build/cuda. sw-train itself against PyTorch, full and LoRA, several
# shapes: bench/gpu_suite.sh.
#
#   bench/gpu_train_bench.sh [BIN] [OUTDIR] [extra gpu_train_bench options...]
set -u
bin=${1:-build/cuda/bench/gpu_train_bench}
out=${2:-.}
shift 2 2>/dev/null || shift $#
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader \
    | tee "$out/gpu.txt"
timeout 240 "$bin" --precision bf16,tf32 --steps 6 --warmup 2 --profile "$@" 2>&1 \
    | tee "$out/sw_bench.txt"
PYTHONUNBUFFERED=1 timeout 150 python3 bench/torch_train_bench.py 2>&1 | tee "$out/torch_bench.txt"
