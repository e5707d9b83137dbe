#!/usr/bin/env bash
# GEMM benchmark: release build (-O3 -march=native) in build/bench, fnn vs OpenBLAS vs oneDNN vs the measured
# FMA peak at 1 and 2 threads, 5 repetitions each (medians), then bench/kernels/report.py writes
# bench/results/kernels.md and bench/results/kernels.png. Each library runs in its own process so that one
# library's idle worker threads cannot steal the cores of the next.
#   usage: scripts/bench_kernels.sh [extra google-benchmark flags]
# On a machine shared with other jobs, run it as OMP_WAIT_POLICY=passive scripts/bench_kernels.sh: with the
# default (spinning) policy a thread spinning at the end-of-region barrier holds a core that the other, preempted
# thread needs, and every 2-thread OpenMP call (fnn's and oneDNN's) can take a whole scheduler slice (~8 ms
# measured for a 40 us product). The policy is recorded in kernels.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/bench
out=$root/bench/results
mkdir -p "$out"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-O3 -march=native" \
  -DFNN_BUILD_BENCH=ON -DFNN_BUILD_TESTS=OFF -DFNN_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target fnn_bench_gemm
exe=$build/bench/kernels/fnn_bench_gemm

for lib in peak fnn openblas onednn; do
  if ! "$exe" --benchmark_list_tests=true | grep -q "^bm_${lib}/"; then
    echo "skipping $lib (not built)"
    continue
  fi
  echo "== $lib"
  "$exe" --benchmark_filter="^bm_${lib}/" --benchmark_repetitions=5 --benchmark_min_time=0.2 \
    --benchmark_report_aggregates_only=true --benchmark_format=json --benchmark_out_format=json \
    --benchmark_out="$out/kernels_${lib}.json" --benchmark_format=console "$@"
done

/usr/bin/python3 "$root/bench/kernels/report.py" "$out" --load "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrote $out/kernels.md and $out/kernels.png"
