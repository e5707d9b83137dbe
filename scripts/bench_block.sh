#!/usr/bin/env bash
# Fused dense+batch_norm+GELU block benchmark: release build (-O3 -march=native) in build/bench-block,
# fnn_bench_block (fnn::fused vs fnn::unfused, B=256 1024->1024 and B=128 784->256, forward and
# forward+backward in train mode) and bench/network/torch_block.py (nn.Sequential(Linear, BatchNorm1d, GELU))
# at 1 and 2 threads, 5 repetitions of >= 0.2 s each (medians), then bench/network/report.py writes
# bench/results/block.md and block.png. JSON outputs are kept as bench/results/block_*.json.
#   usage: scripts/bench_block.sh [extra google-benchmark flags]
# OMP_WAIT_POLICY defaults to passive (both fnn and PyTorch run on OpenMP): on a machine shared with other
# jobs a thread spinning at the end-of-region barrier holds the core its preempted partner needs, and a
# 2-thread 784x256 forward measured 8 ms with the spinning policy against 0.4 ms passive. Set it to override;
# the value is recorded in block.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/bench-block
out=$root/bench/results
mkdir -p "$out"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
reps=5
min_time=0.2
meta=$build/block_meta.txt

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-O3 -march=native" \
  -DFNN_BUILD_BENCH=ON -DFNN_BUILD_TESTS=OFF -DFNN_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target fnn_bench_block
exe=$build/bench/network/fnn_bench_block

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs ($(grep -o -m1 'avx512f' /proc/cpuinfo || echo 'no avx512f')), $(uname -sr)"
  echo "compiler: $(c++ --version | head -1), flags -O3 -march=native, CMAKE_BUILD_TYPE=Release"
  echo "fnn commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- include || echo ' (include/ modified)')"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "OMP_WAIT_POLICY: $OMP_WAIT_POLICY"
  echo "load average before (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$meta"

fnn_json=()
torch_json=()
for nt in 1 2; do
  echo "== fnn, $nt thread(s)"
  cmd=("$exe" "--benchmark_filter=/nt:$nt/" "--benchmark_repetitions=$reps" "--benchmark_min_time=$min_time"
       "--benchmark_report_aggregates_only=true" "--benchmark_format=json" "$@")
  "${cmd[@]}" > "$out/block_fnn_nt$nt.json"
  echo "command (fnn, $nt thread): ${cmd[*]/#$root\//} > bench/results/block_fnn_nt$nt.json" >> "$meta"
  echo "load average after fnn nt=$nt: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$meta"
  fnn_json+=("$out/block_fnn_nt$nt.json")

  echo "== PyTorch, $nt thread(s)"
  # Debian's torch lives in the system interpreter, not in the python3 first on PATH.
  tcmd=(/usr/bin/python3 "$root/bench/network/torch_block.py" --threads "$nt" --reps "$reps" --min-time "$min_time")
  "${tcmd[@]}" > "$out/block_torch_nt$nt.json"
  echo "command (torch, $nt thread): ${tcmd[*]/#$root\//} > bench/results/block_torch_nt$nt.json" >> "$meta"
  echo "load average after torch nt=$nt: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$meta"
  torch_json+=("$out/block_torch_nt$nt.json")
done

/usr/bin/python3 "$root/bench/network/report.py" --fnn "${fnn_json[@]}" --torch "${torch_json[@]}" \
  --meta "$meta" --out "$out/block.md"
cat "$out/block.md"
