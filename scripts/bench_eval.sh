#!/usr/bin/env bash
# Eval-mode (inference) latency, one thread: fnn's infer on 784-1024-1024-10 and 784-256-256-10 against the time to
# read their weights once, the deploy model and PyTorch (bench/eval/eval_bench.cpp, release build -O3
# -march=native in build/bench-eval; bench/eval/torch_eval.py), in ROUNDS alternating rounds (default 3), each
# case the median of 5 repetitions of >= 0.2 s per round; the table gives the median over rounds.
# BASE=<commit> also builds the same benchmark against that commit's headers (build/bench-eval-base) and times it
# in the same rounds (the "before" column).
# Writes bench/results/eval.md and the raw outputs bench/results/eval_raw.txt.
#   scripts/bench_eval.sh            BASE=6002497 ROUNDS=3 scripts/bench_eval.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/bench-eval
out=$root/bench/results/eval.md
raw=$root/bench/results/eval_raw.txt
rounds=${ROUNDS:-3}
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
configure() {  # source dir, build dir
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-O3 -march=native" \
    -DFNN_BUILD_BENCH=ON -DFNN_BUILD_TESTS=OFF -DFNN_BUILD_EXAMPLES=OFF > /dev/null
}
configure "$root" "$build"
cmake --build "$build" --target fnn_bench_eval > /dev/null
bins=("$build/bench/eval/fnn_bench_eval")
if [[ -n "${BASE:-}" ]]; then
  # The base commit's library headers with this benchmark source: the same cases, the old infer.
  base_src=$(mktemp -d)
  git -C "$root" archive "$BASE" | tar -x -C "$base_src"
  mkdir -p "$base_src/bench/eval"
  cp "$root/bench/eval/eval_bench.cpp" "$root/bench/eval/CMakeLists.txt" "$base_src/bench/eval/"
  grep -q ' eval)' "$base_src/bench/CMakeLists.txt" ||
    sed -i 's/^foreach(area IN ITEMS \(.*\))/foreach(area IN ITEMS \1 eval)/' "$base_src/bench/CMakeLists.txt"
  configure "$base_src" "$root/build/bench-eval-base"
  cmake --build "$root/build/bench-eval-base" --target fnn_bench_eval > /dev/null
  bins+=("$root/build/bench-eval-base/bench/eval/fnn_bench_eval")
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$raw"
for r in $(seq 1 "$rounds"); do
  for i in "${!bins[@]}"; do
    tag=$([[ $i == 0 ]] && echo fnn || echo base)
    "${bins[$i]}" --benchmark_repetitions=5 --benchmark_min_time=0.2 --benchmark_report_aggregates_only=true \
      2>/dev/null | awk -v t="$tag" -v r="$r" '$1 ~ /_median$/ { sub(/_median$/, "", $1); print r, t, $1, $2, $4 }' >> "$raw"
  done
  /usr/bin/python3 "$root/bench/eval/torch_eval.py" --reps 5 --min-time 0.2 --batches 1,4 |
    awk -v r="$r" '!/^#/ { print r, "torch", $1, $2, $3 }' >> "$raw"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
torch_version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')
med() {  # tag name [field: 4 wall (default), 5 cpu] -> median ns over rounds
  awk -v t="$1" -v n="$2" -v f="${3:-4}" '$2 == t && $3 == n { print $f }' "$raw" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
us() { awk -v v="$1" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.1f", v / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan") print "n/a"; else printf "%.2fx", a / b }'; }
{
  echo "# Eval: inference latency, one thread"
  echo
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc --all) CPUs (shared VM); $(c++ --version | head -1), -O3 -march=native"
  echo "fnn commit: $(git -C "$root" rev-parse --short HEAD)${BASE:+, base $BASE}; torch $torch_version; date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command: ${BASE:+BASE=$BASE }ROUNDS=$rounds scripts/bench_eval.sh; load average before/after: $load_before / $load_after"
  echo "each figure: median over $rounds alternating rounds of the median of 5 repetitions (>= 0.2 s each); µs per call;"
  echo "CPU time of the process (the comparable figure on a loaded machine), wall time in the second table"
  echo
  echo "| case (CPU time) | fnn | ${BASE:+fnn before | }PyTorch | torch / fnn${BASE:+ | before / fnn} | fnn / weight read |"
  echo "|---|---:|---:|---:|${BASE:+---:|---:|}---:|"
  for net in big main; do
    for b in 1 4; do
      f=$(med fnn "infer_$net/$b" 5); t=$(med torch "torch_$net/$b" 5); rd=$(med fnn "read_$net" 5)
      row="| ${net} batch $b | $(us "$f") | "
      [[ -n "${BASE:-}" ]] && row+="$(us "$(med base "infer_$net/$b" 5)") | "
      row+="$(us "$t") | $(ratio "$t" "$f") | "
      [[ -n "${BASE:-}" ]] && row+="$(ratio "$(med base "infer_$net/$b" 5)" "$f") | "
      row+="$([[ $b == 1 ]] && ratio "$f" "$rd" || echo -) |"
      echo "$row"
    done
  done
  echo
  echo "| case (wall time) | fnn | ${BASE:+fnn before | }PyTorch | torch / fnn |"
  echo "|---|---:|---:|${BASE:+---:|}---:|"
  for net in big main; do
    for b in 1 4; do
      f=$(med fnn "infer_$net/$b"); t=$(med torch "torch_$net/$b")
      row="| ${net} batch $b | $(us "$f") | "
      [[ -n "${BASE:-}" ]] && row+="$(us "$(med base "infer_$net/$b")") | "
      echo "$row$(us "$t") | $(ratio "$t" "$f") |"
    done
  done
  echo
  echo "| other case | CPU µs | wall µs |"
  echo "|---|---:|---:|"
  for n in read_big read_main deploy_main infer_big/2 infer_big/8 infer_big/16 infer_big/17 infer_big/64 infer_main/8 \
    product_gemv/1 product_gemm/1 product_gemv/4 product_gemm/4 product_gemv/8 product_gemm/8 product_gemv/16 \
    product_gemm/16 product_gemv/32 product_gemm/32 block_gemm_then_pass/32 block_prefolded/32 \
    block_gemm_then_pass/64 block_prefolded/64 block_gemm_then_pass/256 block_prefolded/256; do
    echo "| $n | $(us "$(med fnn "$n" 5)") | $(us "$(med fnn "$n")") |"
  done
  if [[ -n "${BASE:-}" ]]; then
    for n in infer_big/2 infer_big/8 infer_big/16 infer_big/17 infer_big/64 infer_main/8 deploy_main; do
      echo "| $n (before) | $(us "$(med base "$n" 5)") | $(us "$(med base "$n")") |"
    done
  fi
} > "$out"
cat "$out"
