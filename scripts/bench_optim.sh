#!/usr/bin/env bash
# Optimizer benchmark: release build (-O3 -march=native) in build/bench-optim, fnn_bench_optim (AdamW,
# SGD momentum, RMSProp, STREAM triad, plain loop) and torch.optim.AdamW(foreach=True) single-threaded,
# then bench/results/optim.md. Usage: scripts/bench_optim.sh [repetitions]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/bench-optim"
reps=${1:-5}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-O3 -march=native" \
  -DFNN_BUILD_BENCH=ON -DFNN_BUILD_TESTS=OFF -DFNN_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target fnn_bench_optim
"$build/bench/optim/fnn_bench_optim" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.2 --benchmark_out="$build/optim.json" --benchmark_out_format=json
# Debian's torch lives in the system interpreter, not in the python3 first on PATH.
OMP_NUM_THREADS=1 /usr/bin/python3 "$root/bench/optim/torch_adamw.py" 2048 1048576 16777216 67108864 \
  | tee "$build/torch.txt"
/usr/bin/python3 "$root/bench/optim/report.py" "$build/optim.json" "$build/torch.txt" "$root/bench/results/optim.md" \
  "scripts/bench_optim.sh $reps"
cat "$root/bench/results/optim.md"
