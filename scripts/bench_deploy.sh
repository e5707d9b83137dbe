#!/usr/bin/env bash
# Batch-1 latency of the main job's network (784-256-256-10): the fnn::deploy model vs net.infer() vs reading the
# weights once (bench/deploy/deploy_bench.cpp, release build -O3 -march=native in build/bench-deploy) and
# PyTorch eval (bench/deploy/torch_deploy.py), one thread, same run; medians of 5 repetitions of >= 0.2 s.
# Writes bench/results/deploy.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/bench-deploy
out=$root/bench/results/deploy.md
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-O3 -march=native" \
  -DFNN_BUILD_BENCH=ON -DFNN_BUILD_TESTS=OFF -DFNN_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target fnn_bench_deploy > /dev/null
fnn=$(OMP_NUM_THREADS=1 "$build/bench/deploy/fnn_bench_deploy" --benchmark_repetitions=5 --benchmark_min_time=0.2 \
  --benchmark_report_aggregates_only=true 2>/dev/null | grep '_median')
torch=$(/usr/bin/python3 "$root/bench/deploy/torch_deploy.py" --reps 5 --min-time 0.2)
ns() { printf '%s\n' "$fnn" | awk -v n="$1_median" '$1 == n { print $2 }'; }
deploy=$(ns deploy_predict); infer=$(ns infer); readw=$(ns read_weights)
torch_ns=$(printf '%s\n' "$torch" | awk '{ print $2 }')
{
  echo "# Deploy: batch-1 latency of the main job's network (784-256-256-10)"
  echo
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; $(c++ --version | head -1), -O3 -march=native"
  echo "fnn commit: $(git -C "$root" rev-parse --short HEAD); date: $(date -u '+%Y-%m-%d %H:%M UTC'); command: scripts/bench_deploy.sh"
  echo
  echo "| path | median µs | vs deploy |"
  echo "|---|---:|---:|"
  awk -v d="$deploy" -v i="$infer" -v r="$readw" -v t="$torch_ns" 'BEGIN {
    printf "| fnn::deploy model, predict() | %.1f | 1.00x |\n", d / 1000
    printf "| fnn net.infer() | %.1f | %.2fx |\n", i / 1000, i / d
    printf "| PyTorch eval (inference_mode, 1 thread) | %.1f | %.2fx |\n", t / 1000, t / d
    printf "| read the 1.08 MB of weights once (floor) | %.1f | %.2fx |\n", r / 1000, r / d
  }'
} > "$out"
cat "$out"
